"""The emit path's shortcuts give exactly what the general code gives.

Issue 11 made the hot path quick with shortcuts: screened metadata and image
properties remembered by content, an oslo.context ``RequestContext`` read
field by field instead of through ``to_dict()`` plus a filter, the role list
and ``user_identity`` remembered, the message timestamp formatted once a
second, the drivers called without oslo's ``Notifier``. Each is checked here
against the general code it stands in for, on generated input and on the
input that is easiest to get wrong (equal keys of different types, secrets,
a cache hit after a change), and on the wire.
"""

from __future__ import annotations

import ctypes
import datetime
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oslo_context import context as oslo_context
from oslo_messaging.notify import _impl_test
from oslo_utils import timeutils

import nova_notifier
from nova_notifier import _direct, lifecycle, notifier, payload, serializer
from nova_notifier.masking import is_secret_key
from nova_notifier.testing.config import make_conf

SETTINGS = settings(
    max_examples=int(os.environ.get("NOVA_NOTIFIER_PROPERTY_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
SECRET = "Zk4-fast-path-secret-07"

text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "password",
            "adminPass",
            "api_key",
            "my-token-server",
            f"password={SECRET}",
            f"mysql://u:{SECRET}@db/x",
            "a=b",
            "\ud800",
            "caf\u00e9",
        ]
    ),
)
keys = st.one_of(text, st.integers(0, 2), st.booleans(), st.just(1.0), st.none())
values = st.one_of(text, st.integers(), st.booleans(), st.none(), st.floats())


@SETTINGS
@given(st.lists(st.dictionaries(keys, values, max_size=6), min_size=1, max_size=4))
def test_screened_equals_to_wire(mappings: list[dict[Any, Any]]) -> None:
    # Twice over: the second pass is served from the memo.
    for _ in range(2):
        for mapping in mappings:
            assert serializer.screened(mapping) == serializer.to_wire(
                mapping, screen=True
            )


@SETTINGS
@given(st.dictionaries(keys, values, max_size=8))
def test_screened_image_meta_equals_to_wire(sysmeta: dict[Any, Any]) -> None:
    expected = serializer.to_wire(payload.image_meta(sysmeta), screen=True)
    for _ in range(2):
        assert serializer.screened_image_meta(sysmeta) == expected


def test_memo_never_confuses_equal_keys_of_other_types() -> None:
    assert serializer.screened({"1": "a"}) == {"1": "a"}
    assert serializer.screened({1: "a"}) == {"1": "a"}
    assert serializer.screened({True: "a"}) == {"True": "a"}
    assert serializer.screened({1.0: "a"}) == {"1.0": "a"}
    for key in ({"image_x": 1}, {"image_x": True}, {"image_x": 1.0}):
        assert serializer.screened_image_meta(key) == {"x": next(iter(key.values()))}


def test_memo_result_is_a_new_dict_each_time() -> None:
    metadata = {"role": "web", "note": f"password={SECRET}"}
    first = serializer.screened(metadata)
    first["role"] = "changed"
    second = serializer.screened(metadata)
    assert second == {"role": "web", "note": "password=***"}
    assert metadata == {"role": "web", "note": f"password={SECRET}"}


def test_changed_metadata_is_screened_again() -> None:
    metadata = {"role": "web"}
    assert serializer.screened(metadata) == {"role": "web"}
    metadata["db_password"] = SECRET
    assert serializer.screened(metadata) == {"role": "web", "db_password": "***"}
    metadata["db_password"] = "my-token-server"  # a secret key's value: masked
    metadata["service"] = "my-token-server"  # a harmless one: unchanged
    assert serializer.screened(metadata) == {
        "role": "web",
        "db_password": "***",
        "service": "my-token-server",
    }


def _filtered_to_dict(ctxt: Any) -> dict[str, Any]:
    """The general rule: ``to_dict()`` without the secret-named keys."""
    return {
        key: serializer.to_wire(value)
        for key, value in ctxt.to_dict().items()
        if not is_secret_key(key)
    }


ids = st.one_of(st.none(), st.text(max_size=10), st.uuids().map(str))


@SETTINGS
@given(
    user=ids,
    project=ids,
    domain=ids,
    user_domain=ids,
    roles=st.lists(st.one_of(st.text(max_size=6), st.integers()), max_size=3),
    is_admin=st.booleans(),
    request_id=ids,
)
def test_oslo_context_read_by_field_equals_to_dict_filtered(**kw: Any) -> None:
    ctxt = oslo_context.RequestContext(
        user_id=kw["user"],
        project_id=kw["project"],
        domain_id=kw["domain"],
        user_domain_id=kw["user_domain"],
        roles=kw["roles"],
        is_admin=kw["is_admin"],
        request_id=kw["request_id"],
        auth_token=SECRET,
        overwrite=False,
    )
    for _ in range(2):  # the second time from the memos
        wire = notifier.wire_context(ctxt)
        assert wire == _filtered_to_dict(ctxt)
        assert SECRET not in repr(wire)


def test_context_subclass_with_its_own_to_dict_uses_it() -> None:
    class NovaLike(oslo_context.RequestContext):
        def to_dict(self) -> dict[str, Any]:
            values = super().to_dict()
            values.update(remote_address="10.0.0.9", service_token=SECRET)
            return values

    ctxt = NovaLike(user_id="u", project_id="p", auth_token=SECRET, overwrite=False)
    wire = notifier.wire_context(ctxt)
    assert wire["remote_address"] == "10.0.0.9" and wire["user"] == "u"
    assert "service_token" not in wire and "auth_token" not in wire
    assert wire == _filtered_to_dict(ctxt)


def test_roles_list_is_a_copy() -> None:
    roles = ["member", "reader"]
    ctxt = oslo_context.RequestContext(roles=roles, overwrite=False)
    first = notifier.wire_context(ctxt)
    first["roles"].append("admin")
    assert notifier.wire_context(ctxt)["roles"] == ["member", "reader"]
    assert roles == ["member", "reader"]


@pytest.mark.parametrize(
    "moment_ns",
    [
        0,
        1_700_000_000_000_000_000,
        1_700_000_000_500_000_000,
        1_700_000_000_000_001_000,
        1_700_000_000_000_000_999,  # under a microsecond: cut, as now() cuts
        1_767_225_599_999_999_999,
    ],
)
def test_timestamp_text_is_oslo_text(moment_ns: int) -> None:
    expected = str(
        datetime.datetime(1970, 1, 1)
        + datetime.timedelta(microseconds=moment_ns // 1000)
    )
    assert _direct.timestamp(moment_ns) == expected


def test_timestamp_follows_time_override() -> None:
    timeutils.set_time_override(datetime.datetime(2020, 1, 2, 3, 4, 5, 6))
    try:
        assert _direct.timestamp() == "2020-01-02 03:04:05.000006"
    finally:
        timeutils.clear_time_override()
    assert _direct.timestamp() != "2020-01-02 03:04:05.000006"


def test_message_ids_are_version_4_uuids_and_distinct() -> None:
    seen = set()
    for _ in range(2000):
        value = _direct.message_id()
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == value
        seen.add(value)
    assert len(seen) == 2000


def _instance() -> dict[str, Any]:
    return {
        "uuid": "78eb5ff7-e2f3-45b9-b16b-c3be05e0ffb9",
        "project_id": "p1",
        "user_id": "u1",
        "display_name": "web-1",
        "vm_state": "active",
        "metadata": {"role": "web", "note": f"password={SECRET}"},
        "system_metadata": {"image_os_distro": "ubuntu", "image_api_key": SECRET},
        "created_at": datetime.datetime(2026, 5, 9, 7, 35, 25, 123456),
        "flavor": {"name": "m1.small", "flavorid": "2", "id": 5, "memory_mb": 2048},
        "image_ref": "0f3b5a8e",
    }


def test_direct_mode_wire_message_through_the_test_driver() -> None:
    nova_notifier.init(make_conf(driver="test"))
    try:
        _impl_test.reset()
        ctxt = oslo_context.RequestContext(
            user_id="u1", project_id="p1", auth_token=SECRET, overwrite=False
        )
        compute = nova_notifier.get_notifier("compute", "host-1")
        for _ in range(3):  # the later calls from the memos
            nova_notifier.notify_about_instance_usage(
                compute, ctxt, _instance(), "create.end"
            )
        assert len(_impl_test.NOTIFICATIONS) == 3
        ids = set()
        for wire_ctxt, message, priority, _retry in _impl_test.NOTIFICATIONS:
            assert priority == "INFO" and message["priority"] == "INFO"
            assert message["publisher_id"] == "compute.host-1"
            assert message["event_type"] == "compute.instance.create.end"
            body = message["payload"]
            assert body["metadata"] == {"role": "web", "note": "password=***"}
            assert body["image_meta"] == {"os_distro": "ubuntu", "api_key": "***"}
            assert body["display_name"] == "web-1"
            assert body["image_ref_url"].endswith("/images/0f3b5a8e")
            assert wire_ctxt["user"] == "u1" and "auth_token" not in wire_ctxt
            assert SECRET not in repr((wire_ctxt, message))
            datetime.datetime.strptime(message["timestamp"], "%Y-%m-%d %H:%M:%S.%f")
            ids.add(message["message_id"])
        assert len(ids) == 3
        assert nova_notifier.stats()["sent"] == 3
    finally:
        nova_notifier.cleanup()
        _impl_test.reset()


class _Refusing:
    def __init__(self, conf: Any, topics: Any, transport: Any) -> None:
        pass

    def notify(self, ctxt: Any, message: Any, priority: str, retry: Any) -> None:
        raise RuntimeError("broker said no")


@pytest.fixture
def test_driver_sender() -> Iterator[Any]:
    """Direct mode on oslo's test driver; yields the library's DirectSender."""
    nova_notifier.init(make_conf(driver="test"))
    _impl_test.reset()
    try:
        sender = lifecycle._STATE.direct
        assert sender is not None
        yield sender
    finally:
        nova_notifier.cleanup()
        _impl_test.reset()


def _emit_exists() -> None:
    nova_notifier.get_notifier("compute", "h").info(
        None, "compute.instance.exists", {"password": SECRET}
    )


def test_a_driver_failing_while_another_takes_it_is_sent_and_logged(
    test_driver_sender: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    drivers = (
        ("refusing", _Refusing(None, None, None)),
        test_driver_sender._drivers[0],
    )
    monkeypatch.setattr(test_driver_sender, "_drivers", drivers)
    _emit_exists()
    assert len(_impl_test.NOTIFICATIONS) == 1  # the other driver got it
    assert _impl_test.NOTIFICATIONS[0][1]["payload"] == {"password": "***"}
    counts = nova_notifier.stats()
    assert counts["dropped"] == 0 and counts["sent"] == 1
    assert "refusing" in caplog.text and "broker said no" in caplog.text
    assert SECRET not in caplog.text


def test_every_driver_failing_is_a_counted_drop(
    test_driver_sender: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    drivers = (("refusing", _Refusing(None, None, None)),)
    monkeypatch.setattr(test_driver_sender, "_drivers", drivers)
    _emit_exists()
    counts = nova_notifier.stats()
    assert counts["dropped"] == 1 and counts["sent"] == 0
    assert "dropped compute.instance.exists" in caplog.text
    assert "broker said no" in caplog.text and SECRET not in caplog.text
    nova_notifier.get_notifier("compute", "h").notify(
        None, "compute.instance.exists", {}, "loud"
    )
    assert nova_notifier.stats()["dropped"] == 2
    assert "unknown priority 'loud'" in caplog.text


class _BadHash(str):
    def __hash__(self) -> int:
        raise RuntimeError("no hash")


class _Opaque:
    def __hash__(self) -> int:
        raise RuntimeError("no hash")


def _nested(depth: int) -> tuple[Any, ...]:
    value: tuple[Any, ...] = ()
    for _ in range(depth):
        value = (value,)
    return value


def test_values_that_refuse_hashing_or_nest_deeply_still_go_out() -> None:
    deep = _nested(200_000)  # hashing it would exhaust the C stack
    for bad in (_Opaque(), deep):
        instance = {
            "uuid": "u1",
            "metadata": {"k": bad, "role": "web"},
            "system_metadata": {"image_a": "b", "x": bad},
        }
        info = payload.info_from_instance(None, instance, None, None)
        assert info["metadata"]["role"] == "web"
        assert info["image_meta"] == {"a": "b"}
        ctxt = oslo_context.RequestContext(
            user_id="u", roles=["member", bad], overwrite=False
        )
        wire = notifier.wire_context(ctxt)
        assert wire["user"] == "u" and wire["roles"][0] == "member"
    ctxt = oslo_context.RequestContext(user_id=_Opaque(), overwrite=False)
    assert notifier.wire_context(ctxt)["user"] == "<_Opaque>"


def test_an_object_equal_to_cached_text_is_not_served_that_text() -> None:
    class Equal:
        def __eq__(self, other: object) -> bool:
            return other == "v"

        def __hash__(self) -> int:
            return hash("v")

    assert serializer.screened({"k": "v"}) == {"k": "v"}
    assert serializer.screened({"k": Equal()}) == {"k": "<Equal>"}


def test_a_proxy_context_is_read_through_its_own_to_dict() -> None:
    class Proxy:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

    inner = oslo_context.RequestContext(user_id="u", auth_token=SECRET, overwrite=False)
    wire = notifier.wire_context(Proxy(inner))
    assert wire == _filtered_to_dict(inner) and wire["user"] == "u"


def test_message_ids_differ_after_a_fork_that_runs_no_python_hook() -> None:
    # A C-level fork (an embedding server) skips os.register_at_fork hooks.
    read, write = os.pipe()
    _direct.message_id()  # the parent's generator is seeded and in use
    pid = ctypes.CDLL(None).fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, _direct.message_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child_id = os.read(read, 64).decode()
    os.close(read)
    assert child_id and child_id != _direct.message_id()


def test_a_callers_own_notifier_works_before_init() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.sent: list[tuple[str, dict[str, Any]]] = []

        def info(self, ctxt: Any, event_type: str, body: dict[str, Any]) -> None:
            self.sent.append((event_type, body))

    assert not nova_notifier.is_initialized()
    recorder = Recorder()
    nova_notifier.notify_about_instance_usage(
        recorder, None, {"uuid": "u1"}, "create.end"
    )
    [(event_type, body)] = recorder.sent
    assert event_type == "compute.instance.create.end"
    assert body["instance_id"] == "u1" and body["image_ref_url"] == ""


def test_a_wire_context_goes_out_as_it_is_and_a_plain_dict_as_none() -> None:
    ready = notifier.WireContext(user="u", request_id="req-1")
    wire = notifier.wire_context(ready)
    assert wire == {"user": "u", "request_id": "req-1"} and wire is not ready
    assert notifier.wire_context({"user": "u", "auth_token": SECRET}) == {}

    class Mine(dict):  # any other dict: no context, as oslo.messaging sends it
        pass

    assert notifier.wire_context(Mine(user="u")) == {}
