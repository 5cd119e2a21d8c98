"""FaultWrapper and send_api_fault: HTTP faults and the api.fault notification."""

from __future__ import annotations

import importlib.metadata
import json
import uuid

import pytest
import webob
import webob.exc
from oslo_context import context as oslo_context
from paste.deploy import loadfilter
from thread_util import run_in_thread

import nova_notifier
from nova_notifier import api_fault as api_fault_mod
from nova_notifier import faultwrap
from nova_notifier import notifier as notifier_mod

PATH = "/v2.1/servers/srv-1?detail=1"
URL = "http://localhost" + PATH
SECRET = "hunter2-s3cr3t"
TOKEN = "tok-1a2b3c4d5e"


class Boom(Exception):
    """An exception carrying what FaultWrapper reads: code, headers, safe."""

    def __init__(self, message=f"db password={SECRET}", **attrs):
        super().__init__(message)
        for name, value in attrs.items():
            setattr(self, name, value)


class QuotaError(Exception):
    """An exception that formats its own user-facing message, like Nova's."""

    code = 413
    safe = True

    def format_message(self):
        return "Quota exceeded for ram"


def raising(exc):
    def app(environ, start_response):
        raise exc

    return app


def returning(status, body=b"inner body", headers=()):
    def app(environ, start_response):
        start_response(status, [("Content-Type", "text/plain"), *headers])
        return [body]

    return app


def call(app, path=PATH, method="GET"):
    return webob.Request.blank(path, method=method).get_response(
        nova_notifier.FaultWrapper(app)
    )


def explanation(status):
    return webob.exc.status_map[status].explanation


@pytest.fixture
def enabled(fake_env):
    fake_env.override("notify_on_api_faults", True, group="notifications")
    return fake_env


def faults(env):
    return [(g.event_type, g.priority, g.publisher_id, g.payload) for g in env.settle()]


def fault_event(status, exception="Boom", url=URL):
    return (
        "api.fault",
        "ERROR",
        "api.testhost",
        {"url": url, "status": status, "exception": exception},
    )


@pytest.mark.parametrize(
    ("code", "status", "name"),
    [
        (400, 400, "badRequest"),
        (401, 401, "unauthorized"),
        (403, 403, "forbidden"),
        (404, 404, "itemNotFound"),
        (405, 405, "badMethod"),
        (409, 409, "conflictingRequest"),
        (413, 413, "overLimit"),
        (415, 415, "badMediaType"),
        (422, 422, "computeFault"),
        (429, 429, "overLimit"),
        (500, 500, "computeFault"),
        (501, 501, "notImplemented"),
        (503, 503, "serviceUnavailable"),
        (None, 500, "computeFault"),
        (999, 500, "computeFault"),
        (302, 500, "computeFault"),
    ],
)
def test_raised_exception_becomes_a_json_fault(enabled, code, status, name):
    exc = Boom() if code is None else Boom(code=code)

    response = call(raising(exc))

    assert response.status_int == status
    assert response.content_type == "application/json"
    assert response.json_body == {
        name: {"code": status, "message": explanation(status)}
    }
    assert SECRET not in response.text
    assert faults(enabled) == [fault_event(status)]


@pytest.mark.parametrize("code", [413, 429])
def test_over_limit_faults_carry_retry_after(fake_env, code):
    exc = Boom(code=code, headers={"Retry-After": 30, "X-Limit": 1.5})

    response = call(raising(exc))

    assert response.status_int == code
    assert response.json_body["overLimit"] == {
        "code": code,
        "message": explanation(code),
        "retryAfter": "30",
    }
    assert response.headers["Retry-After"] == "30"
    assert response.headers["X-Limit"] == "1.5"


@pytest.mark.parametrize(("code", "headers"), [(413, {}), (503, {"Retry-After": "10"})])
def test_retry_after_only_for_over_limit_faults_that_have_one(fake_env, code, headers):
    response = call(raising(Boom(code=code, headers=headers)))

    [fault] = response.json_body.values()
    assert "retryAfter" not in fault
    assert response.headers.get("Retry-After") == headers.get("Retry-After")


def test_exception_headers_are_kept_as_text(fake_env):
    exc = Boom(code=401, headers=[("WWW-Authenticate", "Keystone uri=x"), ("X-N", 3)])

    response = call(raising(exc))

    assert response.status_int == 401
    assert response.headers["WWW-Authenticate"] == "Keystone uri=x"
    assert response.headers["X-N"] == "3"
    assert response.content_type == "application/json"
    assert int(response.headers["Content-Length"]) == len(response.body)


@pytest.mark.parametrize(
    ("exc", "status", "message"),
    [
        (Boom("Flavor m1.huge not found", code=404, safe=True), 404, None),
        (QuotaError(), 413, "QuotaError: Quota exceeded for ram"),
        (Boom("Flavor m1.huge not found", code=404, safe=False), 404, "generic"),
        (Boom("Flavor m1.huge not found", code=404), 404, "generic"),
    ],
    ids=["safe", "safe-format_message", "safe-false", "no-safe"],
)
def test_message_is_generic_unless_the_exception_is_safe(
    fake_env, exc, status, message
):
    if message is None:
        message = "Boom: Flavor m1.huge not found"
    elif message == "generic":
        message = explanation(status)

    response = call(raising(exc))

    [fault] = response.json_body.values()
    assert fault["message"] == message


@pytest.mark.parametrize("code", [400, 404, 409, 500, 503])
def test_api_fault_never_carries_the_exceptions_str(enabled, code):
    call(raising(Boom(f"failed with password={SECRET} token={TOKEN}", code=code)))

    [got] = enabled.settle()
    assert got.payload == {"url": URL, "status": code, "exception": "Boom"}
    assert SECRET not in json.dumps(got.payload)


def test_api_fault_uses_an_exceptions_own_formatted_message(enabled):
    call(raising(QuotaError()))

    assert faults(enabled) == [fault_event(413, "QuotaError: Quota exceeded for ram")]


class BadFormat(Exception):
    code = 400
    safe = True

    def format_message(self):
        raise KeyError("a message template without its arguments")


def test_exception_whose_message_cannot_be_formatted_still_faults(enabled):
    response = call(raising(BadFormat()))

    assert response.status_int == 400
    assert response.json_body == {
        "badRequest": {"code": 400, "message": explanation(400)}
    }
    assert faults(enabled) == [fault_event(400, "BadFormat")]


@pytest.mark.parametrize(
    ("status", "notified"),
    [
        ("500 Internal Server Error", True),
        ("502 Bad Gateway", True),
        ("503 Service Unavailable", True),
        ("404 Not Found", False),
        ("409 Conflict", False),
        ("200 OK", False),
        ("202 Accepted", False),
    ],
)
def test_returned_5xx_response_is_notified_and_passed_through(
    enabled, status, notified
):
    response = call(returning(status, headers=[("X-Inner", "yes")]))

    assert response.status == status
    assert response.body == b"inner body"
    assert response.headers["X-Inner"] == "yes"
    assert response.content_type == "text/plain"
    code = int(status[:3])
    expected = [fault_event(code, f"HTTP {status}")] if notified else []
    assert faults(enabled) == expected


def test_webob_error_response_returned_by_the_app_is_notified(enabled):
    response = call(webob.exc.HTTPServiceUnavailable(explanation="maintenance"))

    assert response.status_int == 503
    assert "maintenance" in response.text
    assert faults(enabled) == [fault_event(503, "HTTP 503 Service Unavailable")]


@pytest.mark.parametrize(
    "app",
    [
        raising(Boom(code=404)),
        raising(Boom(code=500)),
        returning("503 Service Unavailable"),
    ],
    ids=["raised-404", "raised-500", "returned-503"],
)
def test_nothing_is_sent_when_api_faults_are_off(fake_env, app):
    response = call(app)

    assert response.status_int in (404, 500, 503)
    assert faults(fake_env) == []


def test_successful_request_passes_through_untouched(enabled, monkeypatch):
    body = [b"hello ", b"world"]

    def app(environ, start_response):
        start_response("201 Created", [("Content-Type", "text/x-t"), ("X-A", "1")])
        return body

    environ = webob.Request.blank(PATH, method="POST").environ
    seen = []
    built = []
    monkeypatch.setattr(
        webob.request.BaseRequest,
        "__init__",
        lambda self, *a, **k: built.append(1),
    )

    result = nova_notifier.FaultWrapper(app)(
        environ, lambda status, headers, exc_info=None: seen.append((status, headers))
    )

    monkeypatch.undo()
    assert result is body
    assert seen == [("201 Created", [("Content-Type", "text/x-t"), ("X-A", "1")])]
    assert built == []  # no webob Request on the happy path
    assert faults(enabled) == []


def test_generator_app_output_is_streamed_and_closed(enabled):
    closed = []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            yield b"one "
            yield b"two"
        finally:
            closed.append(True)

    response = call(app)

    assert (response.status_int, response.body) == (200, b"one two")
    assert closed == [True]
    assert faults(enabled) == []


def _generator_raising_first(environ, start_response):
    raise Boom(code=409)
    yield b"never"  # pragma: no cover


def _generator_started_then_raising(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    raise Boom(code=409)
    yield b"never"  # pragma: no cover


def _started_then_raising(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    raise Boom(code=409)


@pytest.mark.parametrize(
    "app",
    [_generator_raising_first, _generator_started_then_raising, _started_then_raising],
)
def test_exception_before_the_first_chunk_becomes_a_fault(enabled, app):
    response = call(app)

    assert response.status_int == 409
    assert response.json_body == {
        "conflictingRequest": {"code": 409, "message": explanation(409)}
    }
    assert faults(enabled) == [fault_event(409)]


def test_head_request_fault_has_no_body(enabled):
    response = call(raising(Boom(code=404)), method="HEAD")

    assert response.status_int == 404
    assert response.body == b""
    assert faults(enabled) == [fault_event(404)]


def _raise(*args, **kwargs):
    raise RuntimeError("notifier broken")


@pytest.mark.parametrize(
    ("owner", "name"),
    [
        (notifier_mod, "get_notifier"),
        (notifier_mod.Notifier, "notify"),
        (api_fault_mod, "current_context"),
        (faultwrap, "send_api_fault"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
@pytest.mark.parametrize(
    ("app", "status", "body"),
    [
        (
            raising(Boom(code=404)),
            404,
            b'{"itemNotFound": {"code": 404, "message": "%s"}}'
            % explanation(404).encode(),
        ),
        (returning("503 Service Unavailable"), 503, b"inner body"),
    ],
    ids=["raised-404", "returned-503"],
)
def test_a_broken_notifier_never_changes_the_response(
    enabled, monkeypatch, owner, name, app, status, body
):
    monkeypatch.setattr(owner, name, _raise)

    response = call(app)

    assert (response.status_int, response.body) == (status, body)
    monkeypatch.undo()
    assert faults(enabled) == []


def test_factory_returns_a_paste_filter(enabled):
    make_filter = nova_notifier.FaultWrapper.factory({"here": "/etc"}, option="x")
    wrapped = make_filter(raising(Boom(code=403)))

    assert isinstance(wrapped, nova_notifier.FaultWrapper)
    response = webob.Request.blank(PATH).get_response(wrapped)
    assert response.status_int == 403
    assert faults(enabled) == [fault_event(403)]


def test_faultwrap_entry_point_loads_with_paste_deploy(fake_env):
    [entry] = [
        ep
        for ep in importlib.metadata.entry_points(group="paste.filter_factory")
        if ep.name == "faultwrap"
    ]
    assert entry.load() == nova_notifier.FaultWrapper.factory

    wrapped = loadfilter("egg:nova_notifier#faultwrap")(raising(Boom(code=405)))

    assert webob.Request.blank(PATH).get_response(wrapped).json_body == {
        "badMethod": {"code": 405, "message": explanation(405)}
    }


def test_api_fault_carries_the_threads_request_context(enabled):
    def request():
        oslo_context.RequestContext(
            request_id="req-fault-1", auth_token=TOKEN, user_id="alice"
        )
        return call(raising(Boom(code=404))).status_int

    assert run_in_thread(request) == 404

    [got] = enabled.settle()
    assert got.event_type == "api.fault"
    assert got.ctxt["request_id"] == "req-fault-1"
    assert got.ctxt["user"] == "alice"
    assert TOKEN not in json.dumps(got.ctxt)


def test_api_fault_without_a_context_uses_an_admin_one(enabled):
    def request():
        status = call(raising(Boom(code=500))).status_int
        # The admin context must not become the thread's current context.
        return status, oslo_context.get_current()

    assert run_in_thread(request) == (500, None)

    [got] = enabled.settle()
    assert got.ctxt["is_admin"] is True
    assert got.ctxt["request_id"].startswith("req-")


@pytest.mark.parametrize(
    ("exception", "text"),
    [
        (ValueError(f"password={SECRET}"), "ValueError"),
        ("HTTP 502 Bad Gateway", "HTTP 502 Bad Gateway"),
        (f"upstream said password={SECRET}", "upstream said password=***"),
    ],
    ids=["exception", "text", "text-with-secret"],
)
def test_send_api_fault_payload(enabled, exception, text):
    nova_notifier.send_api_fault("http://api/v2/x", 502, exception)

    assert faults(enabled) == [fault_event(502, text, url="http://api/v2/x")]


@pytest.mark.broker
def test_api_fault_through_rabbitmq(broker_env):
    broker_env.override("notify_on_api_faults", True, group="notifications")

    # A fresh thread has no current RequestContext: the admin one is used.
    raised, returned = run_in_thread(
        lambda: (
            call(raising(Boom(f"password={SECRET}", code=409))),
            call(returning("502 Bad Gateway")),
        )
    )

    assert raised.status_int == 409
    assert raised.json_body["conflictingRequest"]["code"] == 409
    assert returned.status_int == 502
    got = broker_env.settle()
    assert sorted(
        (g.event_type, g.priority, g.publisher_id, g.payload["status"]) for g in got
    ) == [
        ("api.fault", "ERROR", "api.testhost", 409),
        ("api.fault", "ERROR", "api.testhost", 502),
    ]
    by_status = {g.payload["status"]: g for g in got}
    assert by_status[409].payload == {"url": URL, "status": 409, "exception": "Boom"}
    assert by_status[502].payload == {
        "url": URL,
        "status": 502,
        "exception": "HTTP 502 Bad Gateway",
    }
    assert by_status[409].ctxt["is_admin"] is True
    assert SECRET not in json.dumps([g.payload for g in got])


def test_admin_context_fields_are_an_admin_request_contexts():
    def fields():  # in a fresh thread: no current context there
        built = api_fault_mod._AdminContext(is_admin=True, overwrite=False)
        first = notifier_mod.wire_context(api_fault_mod.current_context())
        second = notifier_mod.wire_context(api_fault_mod.current_context())
        wire = notifier_mod.wire_context(built)
        return wire, first, second, oslo_context.get_current()

    built, first, second, current = run_in_thread(fields)

    assert current is None
    assert first["request_id"] != second["request_id"] != built["request_id"]
    assert first["request_id"].startswith("req-")
    assert uuid.UUID(first["request_id"][4:]).version == 4
    for fields in (first, second):
        assert {**fields, "request_id": None} == {**built, "request_id": None}


# (environ changes, why): _plain_url builds what webob builds, or hands over.
_URL_ENVIRONS = [
    ({}, "plain"),
    ({"QUERY_STRING": "token=abc&detail=1"}, "query"),
    ({"QUERY_STRING": ""}, "empty query"),
    ({"HTTP_HOST": "api:80"}, "default http port"),
    ({"HTTP_HOST": "api:443", "wsgi.url_scheme": "https"}, "default https port"),
    ({"HTTP_HOST": "api:443"}, "https port over http"),
    ({"HTTP_HOST": "[::1]"}, "ipv6 host"),
    ({"HTTP_HOST": "[::1]:8774"}, "ipv6 host and port"),
    ({"HTTP_HOST": "api:"}, "empty port"),
    ({"HTTP_HOST": None, "SERVER_NAME": "srv", "SERVER_PORT": "8774"}, "no host"),
    ({"HTTP_HOST": None, "SERVER_NAME": "srv", "SERVER_PORT": "80"}, "no host, 80"),
    ({"SCRIPT_NAME": "/compute", "PATH_INFO": "/v2.1/x"}, "script name"),
    ({"PATH_INFO": None}, "no path"),
    ({"PATH_INFO": "/a b/%2F/caf\xc3\xa9"}, "quoted path"),
    ({"PATH_INFO": "/v2.1/servers/x;a=b:c@d~e!$&'()*+,"}, "path-safe characters"),
    ({"SCRIPT_NAME": "/\xe9"}, "non-ascii script name"),
    ({"HTTP_HOST": b"api"}, "host in bytes"),
    ({"wsgi.url_scheme": None}, "no scheme"),
]


@pytest.mark.parametrize(
    "changes", [c for c, _ in _URL_ENVIRONS], ids=[i for _, i in _URL_ENVIRONS]
)
def test_fault_url_is_webobs(changes):
    environ = webob.Request.blank("/v2.1/servers/srv-1").environ
    environ.update(changes)
    for key in [key for key, value in changes.items() if value is None]:
        del environ[key]
    try:
        expected = webob.Request(
            {"PATH_INFO": "", **environ} if "PATH_INFO" not in environ else environ
        ).url
    except Exception:
        expected = None
    plain = faultwrap._plain_url(environ)

    assert plain is None or plain == expected
    slow = (
        "%" in environ.get("PATH_INFO", "")
        or "\xe9" in environ["SCRIPT_NAME"]
        or not isinstance(environ.get("HTTP_HOST", ""), str)
        or not environ.get("wsgi.url_scheme")
    )
    assert (plain is None) == slow  # quoting, bytes, no scheme: webob builds it
    if expected is not None:
        assert faultwrap._url(environ) == expected
