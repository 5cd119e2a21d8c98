"""Property tests: hostile input never escapes, never hangs, never leaks.

Over every emit helper, FaultWrapper and notify_decorator, with generated
input (missing, None and wrong-typed values, huge and deeply nested ones,
cycles, unicode and lone surrogates, objects whose attribute access, ``==`` or
``str()`` raises, random exceptions and WSGI environs):

* nothing raises into the caller;
* every message that goes out is strict JSON (no NaN/Infinity, encodable as
  UTF-8);
* a seeded secret never reaches the wire, and a harmless name that merely
  contains a secret-like word arrives unchanged;
* what is not sent is counted as a drop.

Messages are captured with oslo.messaging's ``test`` driver, which records
each one after the library's serializer, without a transport.
"""

from __future__ import annotations

import io
import json
import os
import re
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oslo_messaging.notify import _impl_test

import nova_notifier
from nova_notifier.testing.config import make_conf

SECRET = "Qx7-property-secret-91"
HARMLESS = [
    "my-token-server",
    "token-ring-01",
    "db-password-rotator",
    "keystone-auth-proxy",
    "secret-garden",
]
SECRET_KEYS = ["password", "adminPass", "X-Auth-Token", "api_key", "user_data"]
SECRET_TEXT = [
    f"password={SECRET}",
    f"--os-password {SECRET}",
    f'{{"token": "{SECRET}"}}',
    f"mysql://nova:{SECRET}@db/nova",
    f"Authorization: Bearer {SECRET}",
    f"?auth_token={SECRET}&x=1",
]
# More with NOVA_NOTIFIER_PROPERTY_EXAMPLES=1000 (the default keeps CI short).
SETTINGS = settings(
    max_examples=int(os.environ.get("NOVA_NOTIFIER_PROPERTY_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


# -- hostile values -------------------------------------------------------------


class Raises:
    """Every way of looking at it fails."""

    def __getattr__(self, name):
        raise RuntimeError(f"no attribute {name} password={SECRET}")

    def __str__(self):
        raise RuntimeError("no str")

    def __repr__(self):
        raise RuntimeError("no repr")

    def __eq__(self, other):
        raise RuntimeError("no eq")

    def __hash__(self):
        return 1

    def __bool__(self):
        raise RuntimeError("no bool")

    def __iter__(self):
        raise RuntimeError("no iter")


class BadMapping(dict):
    def items(self):
        raise RuntimeError("no items")

    def get(self, *args):
        raise RuntimeError("no get")


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def _cyclic(kind: str) -> Any:
    if kind == "list":
        loop: list[Any] = []
        loop.append(loop)
        return loop
    d: dict[str, Any] = {}
    d["self"] = d
    return d


surrogates = st.sampled_from(["\ud800", "a\udfffb", "\udbff\udc00"])
text = st.one_of(
    st.text(max_size=40),
    surrogates,
    st.sampled_from(HARMLESS),
    st.integers(10_000, 200_000).map(lambda n: "x" * n),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**64, max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
    st.binary(max_size=20),
    st.uuids(),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
    st.builds(Raises),
    st.builds(BadMapping),
    st.integers(0, 3000).map(_nested),
    st.sampled_from(["list", "dict"]).map(_cyclic),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(text, st.integers()), inner, max_size=4),
        st.tuples(inner, inner),
    ),
    max_leaves=12,
)
INSTANCE_FIELDS = [
    "uuid",
    "project_id",
    "user_id",
    "display_name",
    "hostname",
    "host",
    "node",
    "vm_state",
    "task_state",
    "flavor",
    "system_metadata",
    "metadata",
    "launched_at",
    "created_at",
    "progress",
    "access_ip_v4",
    "image_ref",
]
instances = st.one_of(
    st.dictionaries(st.sampled_from(INSTANCE_FIELDS), values, max_size=10),
    st.fixed_dictionaries(
        {"uuid": st.uuids().map(str)},
        optional={f: values for f in INSTANCE_FIELDS if f != "uuid"},
    ),
    values,
)
secret_seeds = st.one_of(
    st.sampled_from(SECRET_KEYS).map(lambda k: {k: SECRET}),
    st.sampled_from(SECRET_TEXT).map(lambda t: {"note": t}),
)


# -- the library, captured --------------------------------------------------------


@pytest.fixture(scope="module")
def captured():
    conf = make_conf("fake://", ["props"], driver="test", host="prop-host")
    conf.set_override("notify_on_state_change", "vm_and_task_state", "notifications")
    conf.set_override("notify_on_api_faults", True, "notifications")
    nova_notifier.init(conf)
    yield
    nova_notifier.cleanup()
    # The figures for the closing note; every check counted was an assertion.
    print(
        f"\nproperty examples: {TALLY.examples}, messages sent: {TALLY.sent}, "
        f"counted drops: {TALLY.dropped}, messages checked for the seeded "
        f"secret: {TALLY.secret_checks}, harmless values checked: "
        f"{TALLY.harmless_checks}"
    )


def sent() -> list[dict[str, Any]]:
    messages = [message for _, message, _, _ in _impl_test.NOTIFICATIONS]
    _impl_test.reset()
    return messages


class Tally:
    examples = 0
    sent = 0
    dropped = 0
    secret_checks = 0
    harmless_checks = 0


def wire(message: dict[str, Any]) -> str:
    """The message as strict JSON; fails on NaN, Infinity or lone surrogates."""
    text = json.dumps(message, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    TALLY.secret_checks += 1  # every caller asserts the secret is not in it
    return text


TALLY = Tally()


def account(before_dropped: int, messages: list[dict[str, Any]]) -> None:
    TALLY.examples += 1
    TALLY.sent += len(messages)
    TALLY.dropped += nova_notifier.stats()["dropped"] - before_dropped


# -- properties ---------------------------------------------------------------------


@SETTINGS
@given(
    instance=instances,
    suffix=st.one_of(
        st.sampled_from(["create.end", "create.error", "delete.start", "exists"]),
        st.text(max_size=10),
        st.none(),
        st.integers(),
    ),
    extra=st.one_of(st.none(), values, secret_seeds),
    network_info=st.one_of(st.none(), values),
    fault=st.one_of(
        st.none(),
        st.builds(RuntimeError, text),
        st.builds(lambda t: ValueError(f"password={SECRET} {t}"), text),
    ),
)
def test_usage_helpers(captured, instance, suffix, extra, network_info, fault):
    before = nova_notifier.stats()["dropped"]
    compute = nova_notifier.get_notifier("compute", "h1")
    nova_notifier.notify_about_instance_usage(
        compute,
        {},
        instance,
        suffix,
        network_info=network_info,
        extra_usage_info=extra,
        fault=fault,
    )
    nova_notifier.notify_usage_exists(compute, {}, instance, extra_usage_info=extra)
    messages = sent()
    for message in messages:
        assert SECRET not in wire(message)
        assert message["publisher_id"] == "compute.h1"
    assert len(messages) + nova_notifier.stats()["dropped"] - before == 2
    account(before, messages)


@SETTINGS
@given(name=st.sampled_from(HARMLESS), seed=secret_seeds, more=values)
def test_harmless_names_arrive_and_secrets_do_not(captured, name, seed, more):
    before = nova_notifier.stats()["dropped"]
    instance = {
        "uuid": str(uuid.uuid4()),
        "display_name": name,
        "hostname": name,
        "metadata": {"role": name, "more": more, **seed},
    }
    compute = nova_notifier.get_notifier("compute", name)
    nova_notifier.notify_about_instance_usage(
        compute, {}, instance, "create.end", extra_usage_info=seed
    )
    (message,) = sent()
    assert SECRET not in wire(message)
    payload = message["payload"]
    assert (payload["display_name"], payload["hostname"]) == (name, name)
    assert payload["metadata"]["role"] == name
    assert message["publisher_id"] == f"compute.{name}"
    TALLY.harmless_checks += 4
    account(before, [message])


@SETTINGS
@given(
    old=instances,
    new=instances,
    states=st.lists(st.one_of(st.none(), text, st.integers()), min_size=4, max_size=4),
    service=st.one_of(st.just("compute"), st.none(), text),
    verify=st.booleans(),
)
def test_update_helpers(captured, old, new, states, service, verify):
    before = nova_notifier.stats()["dropped"]
    nova_notifier.send_update({}, old, new, service=service)
    nova_notifier.send_update_with_states(
        {}, new, *states, service=service, verify_states=verify
    )
    messages = sent()
    for message in messages:
        assert SECRET not in wire(message)
        assert message["event_type"] == "compute.instance.update"
    account(before, messages)


@SETTINGS
@given(
    args=st.lists(values, max_size=4),
    kwargs=st.dictionaries(
        st.one_of(st.sampled_from(SECRET_KEYS + ["note", "x"]), st.text(max_size=8)),
        values,
        max_size=4,
    ),
    seed=st.sampled_from(SECRET_TEXT),
)
def test_notify_decorator(captured, args, kwargs, seed):
    before = nova_notifier.stats()["dropped"]

    def target(first, password, *rest, **kw):
        return (first, password, rest, kw)

    wrapped = nova_notifier.notify_decorator("svc.call", target)
    kwargs = {k: v for k, v in kwargs.items() if k not in ("first", "password")}
    first = seed
    result = wrapped(first, SECRET, *args, **kwargs)
    assert result[0] is first and result[1] is SECRET  # the call is untouched
    (message,) = sent()
    assert SECRET not in wire(message)
    assert message["event_type"] == "svc.call"
    account(before, [message])


class _RandomError(Exception):
    pass


exceptions = st.builds(
    lambda attrs, message: type("Generated", (_RandomError,), attrs)(message),
    st.fixed_dictionaries(
        {},
        optional={
            "code": st.one_of(values, st.integers(100, 700)),
            "headers": values,
            "safe": values,
            "format_message": st.one_of(
                st.just(lambda self: f"password={SECRET}"),
                st.just(lambda self: 1 / 0),
                values.map(lambda v: lambda self: v),
            ),
        },
    ),
    text,
)
environs = st.fixed_dictionaries(
    {"wsgi.input": st.just(io.BytesIO(b"")), "wsgi.errors": st.just(io.StringIO())},
    optional={
        "REQUEST_METHOD": st.sampled_from(["GET", "POST", "HEAD", ""]),
        "PATH_INFO": text,
        "SCRIPT_NAME": st.sampled_from(["", "/v2.1"]),
        "QUERY_STRING": st.one_of(text, st.just(f"token={SECRET}")),
        "SERVER_NAME": st.sampled_from(["api", ""]),
        "SERVER_PORT": st.sampled_from(["80", "8774", "x"]),
        "HTTP_HOST": st.sampled_from(["api:8774", ""]),
        "wsgi.url_scheme": st.sampled_from(["http", "https"]),
    },
)
_STATUS = re.compile(r"^[1-5]\d\d [^\r\n]+$")
_FIELD_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@SETTINGS
@given(exc=exceptions, env=environs)
def test_fault_wrapper(captured, exc, env):
    before = nova_notifier.stats()["dropped"]

    def app(environ, start_response):
        raise exc

    seen: dict[str, Any] = {}

    def start_response(status, headers, exc_info=None):
        seen.update(status=status, headers=headers)

    body = b"".join(nova_notifier.FaultWrapper(app)(env, start_response))
    assert _STATUS.match(seen["status"]), seen["status"]
    for name, value in seen["headers"]:
        assert _FIELD_NAME.match(name) and "\r" not in value and "\n" not in value
        value.encode("latin-1")
    if env.get("REQUEST_METHOD") != "HEAD":
        json.loads(body)
    (message,) = sent()
    assert message["event_type"] == "api.fault"
    assert SECRET not in wire(message)
    assert message["payload"]["status"] == int(seen["status"][:3])
    account(before, [message])
