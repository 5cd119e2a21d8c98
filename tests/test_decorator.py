"""notify_decorator: one notification per call, received off the transport."""

from __future__ import annotations

import datetime
import json
import uuid

import pytest
from oslo_context import context as oslo_context
from thread_util import run_in_thread

import nova_notifier
from nova_notifier import notifier as notifier_mod

LEVELS = ("debug", "info", "warn", "error", "critical")
SECRET = "hunter2-s3cr3t"
TOKEN = "tok-9f8e7d6c5b4a"


def settle_all(env):
    """Everything that arrived, at any level the decorator can use."""
    return env.settle(priorities=LEVELS)


def only_one(env):
    got = settle_all(env)
    assert len(got) == 1, [(g.event_type, g.payload) for g in got]
    return got[0]


def make_context(**kwargs):
    """A RequestContext built off the main thread (building one makes it current)."""
    return run_in_thread(lambda: oslo_context.RequestContext(**kwargs))


class Custom:
    def __str__(self):
        return f"password={SECRET}"


def test_call_emits_one_notification_and_returns_fn_result(fake_env):
    result = object()

    def create_server(name, flavor, image=None, **extra):
        return result

    wrapped = nova_notifier.notify_decorator("compute.api.create_server", create_server)

    assert wrapped("vm1", 2, image="cirros", zone="az1") is result

    got = only_one(fake_env)
    assert got.event_type == "compute.api.create_server"
    assert got.priority == "INFO"
    assert got.publisher_id == "testhost"
    assert got.payload == {
        "args": ["vm1", 2],
        "kwarg": {"image": "cirros", "zone": "az1"},
    }


def test_notification_is_sent_before_fn_runs(fake_env):
    def fn():
        # The notification must already be on its way when fn starts.
        return [g.event_type for g in fake_env.collector.wait_for(1, "early.event")]

    wrapped = nova_notifier.notify_decorator("early.event", fn)

    assert wrapped() == ["early.event"]
    assert [g.event_type for g in settle_all(fake_env)] == ["early.event"]


def test_each_call_sends_its_own_notification(fake_env):
    wrapped = nova_notifier.notify_decorator("count.event", lambda n: n)

    assert [wrapped(i) for i in range(3)] == [0, 1, 2]

    got = settle_all(fake_env)
    assert [g.payload["args"] for g in got] == [[0], [1], [2]]


def test_exception_of_fn_propagates_unchanged_after_the_notification(fake_env):
    error = LookupError("no such server")

    def fn(server_id):
        raise error

    wrapped = nova_notifier.notify_decorator("failing.event", fn)

    with pytest.raises(LookupError) as excinfo:
        wrapped("srv-1")

    assert excinfo.value is error
    got = only_one(fake_env)
    assert (got.event_type, got.payload) == (
        "failing.event",
        {"args": ["srv-1"], "kwarg": {}},
    )


class Api:
    def __init__(self, base):
        self.base = base

    def _resize(self, server_id, flavor):
        return (self.base, server_id, flavor)

    def _make(cls, base):
        return cls(base)

    resize = nova_notifier.notify_decorator("api.resize", _resize)
    make = classmethod(nova_notifier.notify_decorator("api.make", _make))


def test_self_and_cls_are_left_out_of_the_payload(fake_env):
    api = Api.make(7)
    assert isinstance(api, Api) and api.base == 7
    assert api.resize("srv-1", flavor="m1.small") == (7, "srv-1", "m1.small")

    got = settle_all(fake_env)
    assert [(g.event_type, g.payload) for g in got] == [
        ("api.make", {"args": [7], "kwarg": {}}),
        ("api.resize", {"args": ["srv-1"], "kwarg": {"flavor": "m1.small"}}),
    ]


def test_request_context_is_left_out_and_travels_as_the_context(fake_env):
    ctx = make_context(
        auth_token=TOKEN, request_id="req-dec-1", user_id="alice", project_id="p1"
    )

    def fn(context, server_id, context2=None):
        return server_id

    wrapped = nova_notifier.notify_decorator("ctx.event", fn)

    assert wrapped(ctx, "srv-1", context2=ctx) == "srv-1"

    got = only_one(fake_env)
    assert got.payload == {"args": ["srv-1"], "kwarg": {}}
    assert got.ctxt["request_id"] == "req-dec-1"
    assert got.ctxt["user"] == "alice"
    assert got.ctxt["project_id"] == "p1"
    assert TOKEN not in json.dumps(got.ctxt)
    assert "auth_token" not in got.ctxt


def test_sending_leaves_the_callers_current_context_alone(fake_env):
    """oslo.messaging's redaction must not replace the thread's context."""
    wrapped = nova_notifier.notify_decorator("ctx.current", lambda: None)

    def call():
        ctx = oslo_context.RequestContext(auth_token=TOKEN, request_id="req-cur-1")
        wrapped()
        current = oslo_context.get_current()
        return current is ctx, current.auth_token

    assert run_in_thread(call) == (True, TOKEN)
    got = only_one(fake_env)
    # With no context argument, the thread's current context is sent.
    assert got.ctxt["request_id"] == "req-cur-1"
    assert TOKEN not in json.dumps(got.ctxt)


def test_values_with_no_json_form_become_text_or_placeholders(fake_env):
    when = datetime.datetime(2012, 10, 29, 13, 42, 11, 123456)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")

    def fn(*args, **kwargs):
        return len(args)

    wrapped = nova_notifier.notify_decorator("types.event", fn)

    assert wrapped(object(), Custom(), when, ident, b"raw", {3}, (1, 2), opt=None) == 7

    got = only_one(fake_env)
    assert got.payload == {
        "args": [
            "<object>",
            "<Custom>",
            "2012-10-29T13:42:11.123456",
            "12345678-1234-5678-1234-567812345678",
            "raw",
            [3],
            [1, 2],
        ],
        "kwarg": {"opt": None},
    }
    assert SECRET not in json.dumps(got.payload)


def _login(user, password, auth_token=None, **extra):
    return user


@pytest.mark.parametrize(
    ("args", "kwargs", "payload"),
    [
        pytest.param(
            ("bob",),
            {"password": SECRET},
            {"args": ["bob"], "kwarg": {"password": "***"}},
            id="password-kwarg",
        ),
        pytest.param(
            ("bob", "x"),
            {"auth_token": SECRET},
            {"args": ["bob", "***"], "kwarg": {"auth_token": "***"}},
            id="auth-token-kwarg",
        ),
        pytest.param(
            ("bob", SECRET),
            {},
            {"args": ["bob", "***"], "kwarg": {}},
            id="positional-by-parameter-name",
        ),
        pytest.param(
            ("bob", "x"),
            {"extra": {"creds": {"admin_pass": SECRET, "user": "bob"}}},
            {
                "args": ["bob", "***"],
                "kwarg": {"extra": {"creds": {"admin_pass": "***", "user": "bob"}}},
            },
            id="nested-dict-key",
        ),
        pytest.param(
            ("bob", "x"),
            {"items": [{"secret": SECRET}, {"name": "ok"}]},
            {
                "args": ["bob", "***"],
                "kwarg": {"items": [{"secret": "***"}, {"name": "ok"}]},
            },
            id="dict-in-list",
        ),
        pytest.param(
            (f"user password={SECRET} end", "x"),
            {"note": f"--password {SECRET}"},
            {
                "args": ["user password=*** end", "***"],
                "kwarg": {"note": "--password ***"},
            },
            id="inside-strings",
        ),
    ],
)
def test_secrets_are_masked(fake_env, args, kwargs, payload):
    wrapped = nova_notifier.notify_decorator("login.event", _login)

    assert wrapped(*args, **kwargs) == args[0]

    got = only_one(fake_env)
    assert got.payload == payload
    assert SECRET not in json.dumps(got.payload)


@pytest.mark.parametrize(
    ("level", "priority"),
    [
        ("DEBUG", "DEBUG"),
        ("INFO", "INFO"),
        ("WARN", "WARN"),
        ("ERROR", "ERROR"),
        ("CRITICAL", "CRITICAL"),
        ("error", "ERROR"),
    ],
)
def test_default_level_sets_the_priority(fake_env, level, priority):
    fake_env.override("default_level", level, group="notifications")
    wrapped = nova_notifier.notify_decorator("level.event", lambda: "done")

    assert wrapped() == "done"

    got = only_one(fake_env)
    assert (got.event_type, got.priority) == ("level.event", priority)


@pytest.mark.parametrize(
    ("publisher_id", "host", "expected"),
    [
        (None, None, "testhost"),
        (None, "compute-7", "compute-7"),
        ("my.publisher", "compute-7", "my.publisher"),
    ],
)
def test_publisher_is_default_publisher_id_else_host(
    fake_env, publisher_id, host, expected
):
    if publisher_id is not None:
        fake_env.override("default_publisher_id", publisher_id, group="notifications")
    if host is not None:
        fake_env.override("host", host)
    wrapped = nova_notifier.notify_decorator("pub.event", lambda: None)

    wrapped()

    assert only_one(fake_env).publisher_id == expected


def test_wrapper_keeps_the_functions_metadata():
    def original(a, b=2):
        """Original docstring."""
        return a + b

    original.custom = "kept"
    wrapped = nova_notifier.notify_decorator("meta.event", original)

    assert wrapped.__name__ == "original"
    assert wrapped.__qualname__ == original.__qualname__
    assert wrapped.__doc__ == "Original docstring."
    assert wrapped.__module__ == __name__
    assert wrapped.__wrapped__ is original
    assert wrapped.custom == "kept"


def test_call_runs_when_library_is_not_initialised(fake_env):
    wrapped = nova_notifier.notify_decorator("uninit.event", lambda a: a * 2)
    nova_notifier.cleanup()
    dropped = nova_notifier.stats()["dropped"]

    assert wrapped(21) == 42

    assert nova_notifier.stats()["dropped"] == dropped + 1


def test_call_runs_when_sending_fails(fake_env, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("cannot build the message")

    monkeypatch.setattr(notifier_mod, "wire_context", broken)
    wrapped = nova_notifier.notify_decorator("broken.event", lambda a: a + 1)
    dropped = nova_notifier.stats()["dropped"]

    assert wrapped(1) == 2

    assert nova_notifier.stats()["dropped"] == dropped + 1
    monkeypatch.undo()
    assert settle_all(fake_env) == []


@pytest.mark.broker
def test_decorator_through_rabbitmq(broker_env):
    broker_env.override("default_level", "ERROR", group="notifications")
    broker_env.override("default_publisher_id", "decorated.api", group="notifications")
    ctx = make_context(auth_token=TOKEN, request_id="req-broker-1", user_id="alice")

    def change_password(context, server_id, password, **kwargs):
        return f"changed {server_id}"

    wrapped = nova_notifier.notify_decorator("api.change_password", change_password)

    assert wrapped(ctx, "srv-9", SECRET, note=f"password={SECRET}") == "changed srv-9"

    got = broker_env.settle(priorities=LEVELS)
    assert len(got) == 1
    [item] = got
    assert (item.event_type, item.priority, item.publisher_id) == (
        "api.change_password",
        "ERROR",
        "decorated.api",
    )
    assert item.payload == {
        "args": ["srv-9", "***"],
        "kwarg": {"note": "password=***"},
    }
    assert item.ctxt["request_id"] == "req-broker-1"
    assert item.ctxt["user"] == "alice"
    wire = json.dumps([item.payload, item.ctxt])
    assert SECRET not in wire and TOKEN not in wire
