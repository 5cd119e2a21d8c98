"""FaultWrapper is total: whatever the inner app raises, a valid response and
an ``api.fault``; headers that are not valid HTTP never reach the response."""

from __future__ import annotations

import io
import json
import wsgiref.util
import wsgiref.validate

import pytest

import nova_notifier
from nova_notifier import FaultWrapper


class Prop:
    """A property that raises when read."""

    def __get__(self, obj, owner=None):
        raise RuntimeError("reading me fails")


class StrRaises(Exception):
    def __str__(self):
        raise RuntimeError("no text for you")


class CodeRaises(Exception):
    code = Prop()


class InfiniteCode(Exception):
    code = float("inf")


class NanCode(Exception):
    code = float("nan")


class TextCode(Exception):
    code = "not a number"


class HeadersRaise(Exception):
    code = 409

    class _Headers:
        def items(self):
            raise RuntimeError("headers unreadable")

        def __bool__(self):
            return True

    headers = _Headers()


class HeadersProp(Exception):
    code = 409
    headers = Prop()


class SafeStrRaises(Exception):
    code = 400
    safe = True

    def __str__(self):
        raise RuntimeError("no text")


class SafeProp(Exception):
    code = 400
    safe = Prop()


class FormatRaises(Exception):
    code = 503

    def format_message(self):
        raise RuntimeError("cannot format")


class BadHeaders(Exception):
    code = 429
    headers = {
        "Retry-After": "30",
        "": "empty name",
        "X-Split\r\nSet-Cookie": "evil=1",
        "X-Value": "line1\r\nInjected: yes",
        "X-Unicode": "caf\u00e9 \u2603",
        "X-Good": "kept",
        "X Space": "bad name",
    }


HOSTILE = [
    (StrRaises(), 500),
    (CodeRaises(), 500),
    (InfiniteCode(), 500),
    (NanCode(), 500),
    (TextCode(), 500),
    (HeadersRaise(), 409),
    (HeadersProp(), 409),
    (SafeStrRaises(), 400),
    (SafeProp(), 400),
    (FormatRaises(), 503),
    (BadHeaders(), 429),
    (KeyError("x"), 500),
]


def environ(**more):
    env = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/servers/s1",
        "QUERY_STRING": "",
        "SERVER_NAME": "api.example",
        "SERVER_PORT": "8774",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    env.update(more)
    return env


def serve(app, env):
    """Run ``app`` as a server would; returns (status, headers, body)."""
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, headers
        return lambda data: None

    result = app(env, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return seen["status"], seen["headers"], body


def raising(exc):
    def app(environ, start_response):
        raise exc

    return app


@pytest.fixture
def faults_on(fake_env):
    fake_env.override("notify_on_api_faults", True, group="notifications")
    return fake_env


@pytest.mark.parametrize(
    "exc,code", HOSTILE, ids=[type(e).__name__ for e, _ in HOSTILE]
)
def test_any_exception_gets_a_valid_response_and_an_api_fault(faults_on, exc, code):
    # wsgiref's validator checks the response against PEP 3333.
    app = wsgiref.validate.validator(FaultWrapper(raising(exc)))
    status, headers, body = serve(app, environ())
    assert status.startswith(f"{code} ")
    for name, value in headers:
        assert name and "\r" not in name + value and "\n" not in name + value
        value.encode("latin-1")
    fault = json.loads(body)
    (inner,) = fault.values()
    assert inner["code"] == code
    (item,) = faults_on.settle()
    assert (item.event_type, item.priority, item.publisher_id) == (
        "api.fault",
        "ERROR",
        "api.testhost",
    )
    assert item.payload["url"] == "http://api.example:8774/servers/s1"
    assert item.payload["status"] == code
    assert item.payload["exception"].startswith(type(exc).__name__)


def test_invalid_headers_are_dropped_valid_ones_kept(faults_on):
    _, headers, body = serve(FaultWrapper(raising(BadHeaders())), environ())
    names = [name for name, _ in headers]
    assert "X-Good" in names and "Retry-After" in names
    assert not any(n in names for n in ("", "X Space", "X-Value", "X-Unicode"))
    assert not any("Set-Cookie" in n for n in names)
    assert json.loads(body)["overLimit"]["retryAfter"] == "30"
    faults_on.settle()


def test_no_path_info_still_sends_its_api_fault(faults_on):
    env = environ()
    del env["PATH_INFO"]
    status, _, _ = serve(FaultWrapper(raising(RuntimeError("x"))), env)
    assert status.startswith("500 ")
    (item,) = faults_on.settle()
    assert item.event_type == "api.fault"
    assert item.payload["url"] == "http://api.example:8774"


def test_no_server_name_at_all_still_sends_its_api_fault(faults_on):
    env = {"REQUEST_METHOD": "GET"}
    status, _, _ = serve(FaultWrapper(raising(RuntimeError("x"))), env)
    assert status.startswith("500 ")
    (item,) = faults_on.settle()
    assert (item.event_type, item.payload["status"]) == ("api.fault", 500)


def test_a_5xx_status_that_is_not_a_number_is_still_a_fault(faults_on):
    def app(environ, start_response):
        start_response("5xx Broken", [("Content-Type", "text/plain")])
        return [b"oops"]

    status, _, body = serve(FaultWrapper(app), environ())
    assert (status, body) == ("5xx Broken", b"oops")  # the app's own response
    (item,) = faults_on.settle()
    assert (item.event_type, item.payload["status"]) == ("api.fault", 500)


def test_a_valid_request_still_passes_through_untouched(faults_on):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"fine"]

    assert serve(FaultWrapper(app), environ()) == (
        "200 OK",
        [("Content-Type", "text/plain")],
        b"fine",
    )
    assert faults_on.settle() == []


def test_the_request_url_helper_matches_wsgiref(faults_on):
    env = environ(PATH_INFO="/a b", QUERY_STRING="x=1")
    serve(FaultWrapper(raising(RuntimeError())), env)
    (item,) = faults_on.settle()
    assert item.payload["url"] == wsgiref.util.request_uri(env).replace(" ", "%20")


def test_emit_helpers_never_raise_on_hostile_arguments(fake_env):
    compute = nova_notifier.get_notifier("compute", "h1")
    nova_notifier.notify_about_instance_usage(compute, {}, {"uuid": "u"}, None)
    nova_notifier.notify_about_instance_usage(None, {}, {"uuid": "u"}, "create.end")
    nova_notifier.send_api_fault(object(), object(), StrRaises())
    dropped = nova_notifier.stats()["dropped"]
    assert dropped >= 2


def test_start_response_then_a_generator_that_raises_is_a_fault(faults_on):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body():
            raise RuntimeError("failed before the first chunk")
            yield b"never"

        return body()

    status, _, body = serve(FaultWrapper(app), environ())
    assert status.startswith("500 ")
    assert "computeFault" in json.loads(body)
    (item,) = faults_on.settle()
    assert (item.event_type, item.payload["status"]) == ("api.fault", 500)


def test_a_generator_that_streams_passes_through(faults_on):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"one "
        yield b"two"

    assert serve(FaultWrapper(app), environ())[::2] == ("200 OK", b"one two")
    assert faults_on.settle() == []


def test_a_safe_exception_text_is_masked_in_the_response(faults_on):
    class Unsafe(Exception):
        code = 400
        safe = True

    exc = Unsafe("bad connection=mysql://nova:hunter2@db/nova for my-token-server")
    _, _, body = serve(FaultWrapper(raising(exc)), environ())
    message = json.loads(body)["badRequest"]["message"]
    assert (
        message == "Unsafe: bad connection=mysql://nova:***@db/nova for my-token-server"
    )
    faults_on.settle()
