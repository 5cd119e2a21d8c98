"""Delivery modes: same wire format in every mode, bounded queue, fork."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest
from oslo_context import context as oslo_context

import nova_notifier
from nova_notifier import delivery, lifecycle
from nova_notifier._rabbit_batch import PublishResult

INSTANCE = {"uuid": "3f1c2b9e-1111-4d2b-9c3e-5f6a7b8c9d0e", "vm_state": "active"}


def _set_mode(env, mode, tmp_path):
    env.override("delivery_mode", mode, group="notifications")
    if mode == "spool":
        env.override(
            "spool_path", str(tmp_path / "spool.db"), group="notification_delivery"
        )
    nova_notifier.init(env.conf)


@pytest.mark.broker
def test_every_mode_puts_the_same_notification_on_the_wire(broker_env, tmp_path):
    """direct goes through oslo.messaging's Notifier; background and spool
    through the batching publisher: a listener must not see a difference."""
    seen = {}
    for mode in ("direct", "background", "spool"):
        _set_mode(broker_env, mode, tmp_path)
        ctxt = oslo_context.RequestContext(
            user_id="alice",
            request_id=f"req-{mode}",
            auth_token="tok-secret",
            overwrite=False,
        )
        nova_notifier.notify_about_instance_usage(
            nova_notifier.get_notifier("compute", "c1"),
            ctxt,
            INSTANCE,
            "create.error",
            fault=ValueError("boom"),
        )
        [got] = [
            g
            for g in broker_env.collector.wait_for(len(seen) + 1)
            if g.ctxt.get("request_id") == f"req-{mode}"
        ]
        seen[mode] = got
        nova_notifier.cleanup()
    direct = seen["direct"]
    for mode in ("background", "spool"):
        other = seen[mode]
        assert (other.priority, other.publisher_id, other.event_type) == (
            "ERROR",
            "compute.c1",
            "compute.instance.create.error",
        )
        assert other.payload == direct.payload
        assert (
            set(other.metadata) == set(direct.metadata) == {"message_id", "timestamp"}
        )
        assert {k: v for k, v in other.ctxt.items() if k != "request_id"} == {
            k: v for k, v in direct.ctxt.items() if k != "request_id"
        }
        assert "tok-secret" not in str(other.ctxt)


def test_a_full_queue_drops_and_counts_without_blocking(fake_env, monkeypatch):
    release = threading.Event()
    original = delivery.Delivery._send

    def stuck(self, units):
        release.wait(30)
        return original(self, units)

    monkeypatch.setattr(delivery.Delivery, "_send", stuck)
    fake_env.override("delivery_mode", "background", group="notifications")
    fake_env.override("queue_size", 5, group="notification_delivery")
    fake_env.override("sender_batch_size", 1, group="notification_delivery")
    nova_notifier.init(fake_env.conf)
    notifier = nova_notifier.get_notifier("compute")
    for seq in range(20):
        notifier.info({}, "test.fill", {"seq": seq})
    stats = nova_notifier.stats()
    # one in the sender's hands, five queued, the rest dropped
    assert stats["dropped"] == 20 - stats["queued"]
    assert 5 <= stats["queued"] <= 6
    release.set()
    fake_env.collector.wait_for(stats["queued"], event_type="test.fill")


@pytest.mark.broker
def test_a_forked_child_gets_its_own_sender(broker_env):
    broker_env.override("delivery_mode", "background", group="notifications")
    nova_notifier.init(broker_env.conf)
    nova_notifier.get_notifier("compute", "parent").info({}, "test.fork", {"who": 1})
    pid = os.fork()
    if pid == 0:  # the child: emit, flush, leave without running pytest's code
        code = 1
        try:
            nova_notifier.get_notifier("compute", "child").info(
                {}, "test.fork", {"who": 2}
            )
            nova_notifier.cleanup()
            code = 0 if nova_notifier.stats()["dropped"] == 0 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    got = broker_env.collector.wait_for(2, event_type="test.fork")
    assert sorted((g.publisher_id, g.payload["who"]) for g in got) == [
        ("compute.child", 2),
        ("compute.parent", 1),
    ]


def test_batch_waits_for_every_confirm_even_out_of_order():
    from nova_notifier._rabbit_batch import BatchPublisher
    from nova_notifier.testing.config import make_conf

    publisher = BatchPublisher(
        make_conf("rabbit://guest:guest@127.0.0.1:5672/"),
        "rabbit://guest:guest@127.0.0.1:5672/",
        timeout=1,
    )
    publisher._unconfirmed = {1, 2, 3, 4, 5}
    publisher._on_ack(5, False)  # a later tag first: 1-4 still pending
    assert publisher._unconfirmed == {1, 2, 3, 4}
    publisher._on_ack(3, True)  # multiple: everything up to 3
    assert publisher._unconfirmed == {4}
    publisher._on_nack(4, False)
    assert publisher._unconfirmed == set() and publisher._nacked


def test_a_process_without_a_driver_leaves_the_spool_alone(fake_env, tmp_path):
    spool = str(tmp_path / "spool.db")
    fake_env.override("delivery_mode", "spool", group="notifications")
    fake_env.override("spool_path", spool, group="notification_delivery")
    fake_env.override("retry_backoff_max", 0.1, group="notification_delivery")
    # a first process whose broker is unreachable leaves rows in the spool
    fake_env.override("driver", ["messagingv2"], group="oslo_messaging_notifications")
    nova_notifier.init(fake_env.conf)
    original = delivery.Delivery._send
    try:
        delivery.Delivery._send = lambda self, units: PublishResult(
            set(), {}, RuntimeError("broker down")
        )
        nova_notifier.get_notifier("compute").info({}, "test.kept", {"n": 1})
        nova_notifier.cleanup()
    finally:
        delivery.Delivery._send = original
    # a tool with no driver on the same spool must not consume it
    fake_env.override("driver", [], group="oslo_messaging_notifications")
    nova_notifier.init(fake_env.conf)
    nova_notifier.cleanup()
    # the next real sender still delivers it
    fake_env.override("driver", ["messagingv2"], group="oslo_messaging_notifications")
    nova_notifier.init(fake_env.conf)
    fake_env.collector.wait_for(1, event_type="test.kept")


def test_repeated_failures_are_logged_at_a_bounded_rate_with_counts(
    fake_env, monkeypatch, caplog
):
    """A broker down for many attempts and a queue that overflows many
    times: a few lines that carry the counts, not a line per failure."""
    failures = 40
    original = delivery.Delivery._send
    calls = [0]

    def send(self, units):
        calls[0] += 1
        if calls[0] <= failures:
            return PublishResult(set(), {}, ConnectionRefusedError("broker down"))
        return original(self, units)

    monkeypatch.setattr(delivery.Delivery, "_send", send)
    fake_env.override("delivery_mode", "background", group="notifications")
    fake_env.override("retry_backoff_max", 0.01, group="notification_delivery")
    fake_env.override("queue_size", 10, group="notification_delivery")
    caplog.set_level(logging.WARNING, logger="nova_notifier")
    nova_notifier.init(fake_env.conf)
    notifier = nova_notifier.get_notifier("compute")
    for seq in range(100):
        notifier.info({}, "test.bounded", {"seq": seq})
    stats = nova_notifier.stats()
    fake_env.collector.wait_for(stats["queued"], event_type="test.bounded")
    stats = nova_notifier.stats()
    assert stats["retried"] == failures and stats["dropped"] == 100 - stats["queued"]
    assert stats["dropped"] >= 80 and stats["dead_lettered"] == 0
    lines = [r.getMessage() for r in caplog.records]
    drops = [line for line in lines if "dropped test.bounded" in line]
    assert (
        len(drops) == 1 and "the delivery queue is full (1 dropped so far)" in drops[0]
    )
    stalls = [line for line in lines if "stalled" in line]
    assert len(stalls) == 1 and "broker down" in stalls[0]
    assert len([line for line in lines if "delivery resumed" in line]) == 1


def test_batch_frames_are_the_bytes_py_amqp_writes():
    """The batch publisher writes basic.publish frames itself (no per-message
    trip through py-amqp): they must be py-amqp's, byte for byte, for bodies
    below, at and above the frame size."""
    import amqp
    from amqp import spec
    from amqp.method_framing import frame_writer
    from amqp.serialization import dumps

    from nova_notifier import _rabbit_batch

    class Writes:
        def __init__(self):
            self.out = []

        def write(self, data):
            self.out.append(bytes(data))

    class Conn:
        frame_max = 131072
        bytes_sent = 0

    publisher = _rabbit_batch.BatchPublisher.__new__(_rabbit_batch.BatchPublisher)
    publisher._methods, publisher._exchange = {}, "openstack"
    for size in (0, 1, 2000, Conn.frame_max - 148, Conn.frame_max, 300_000):
        body = b"y" * size
        theirs = Writes()
        frame_writer(Conn(), theirs)(
            1,
            3,
            spec.Basic.Publish,
            dumps("Bssbb", (0, "openstack", "notifications.info", False, False)),
            amqp.Message(
                body,
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                priority=0,
                application_headers={},
            ),
        )
        ours = publisher._method_frame(3, "notifications.info") + b"".join(
            _rabbit_batch._content_frames(3, body, Conn.frame_max - 8)
        )
        assert ours == b"".join(theirs.out), size


def test_encoded_body_is_what_json_dumps_of_oslos_envelope_gives():
    import json
    import uuid

    from nova_notifier import _rabbit_batch

    ctxt = {"user_id": "al\u00efce", "roles": ["a", "b"], "is_admin": False}
    message = {
        "message_id": str(uuid.uuid4()),
        "event_type": 'quote"back\\slash',
        "payload": {"text": "caf\u00e9 \U0001f600\n\t", "n": 1.5, "none": None},
    }
    [unique_id] = _rabbit_batch.unique_ids(1)
    raw = dict(message, _unique_id=unique_id)
    raw.update({f"_context_{k}": v for k, v in ctxt.items()})
    expected = json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(raw)})
    assert _rabbit_batch.encode(ctxt, message, unique_id) == expected.encode("utf-8")


def test_unique_ids_are_uuid4_hex_texts():
    import uuid

    from nova_notifier import _rabbit_batch

    ids = _rabbit_batch.unique_ids(500)
    assert len(set(ids)) == 500
    for text in ids:
        value = uuid.UUID(hex=text)
        assert (value.hex, value.version, value.variant) == (
            text,
            4,
            uuid.RFC_4122,
        )


def test_background_sender_makes_message_id_and_timestamp_as_oslo(
    fake_env, monkeypatch
):
    """submit() only queues; the sender adds the message_id (a uuid4 text)
    and the timestamp in str(timeutils.utcnow()) form, of the emit call's
    time (or of the time oslo.utils is told to fake)."""
    import datetime
    import re
    import time
    import uuid

    from oslo_utils import timeutils

    fake_env.override("delivery_mode", "background", group="notifications")
    nova_notifier.init(fake_env.conf)
    notifier = nova_notifier.get_notifier("compute")
    before = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    notifier.info({}, "test.stamp", {"n": 1})
    after = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    timeutils.set_time_override(datetime.datetime(2026, 1, 2, 3, 4, 5))
    try:
        notifier.info({}, "test.stamp", {"n": 2})
    finally:
        timeutils.clear_time_override()
    # a whole second: str() of a datetime leaves the fraction out, as oslo's
    monkeypatch.setattr(time, "time", lambda: 1767225600.0)
    notifier.info({}, "test.stamp", {"n": 3})
    monkeypatch.undo()
    got = sorted(
        fake_env.collector.wait_for(3, event_type="test.stamp"),
        key=lambda g: g.payload["n"],
    )
    first = got[0].metadata["timestamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", first)
    assert before <= datetime.datetime.fromisoformat(first) <= after
    assert got[1].metadata["timestamp"] == "2026-01-02 03:04:05"
    assert got[2].metadata["timestamp"] == "2026-01-01 00:00:00"
    ids = [g.metadata["message_id"] for g in got]
    assert len(set(ids)) == 3
    assert all(str(uuid.UUID(i)) == i and uuid.UUID(i).version == 4 for i in ids)


def test_background_submit_copies_a_plain_payload_at_once(fake_env, monkeypatch):
    """The sender builds the message later: a caller changing its payload
    after the call must not change what is sent."""
    release = threading.Event()
    original = delivery.Delivery._take_batch

    def gated(self):
        release.wait(30)
        return original(self)

    monkeypatch.setattr(delivery.Delivery, "_take_batch", gated)
    fake_env.override("delivery_mode", "background", group="notifications")
    nova_notifier.init(fake_env.conf)
    payload = {"items": [1, 2], "name": "before"}
    nova_notifier.get_notifier("compute").info({}, "test.copy", payload)
    payload["items"].append(3)
    payload["name"] = "after"
    release.set()
    [got] = fake_env.collector.wait_for(1, event_type="test.copy")
    assert got.payload == {"items": [1, 2], "name": "before"}


# -- the sender yields to the emitting threads --------------------------------


def _may_change_policy() -> bool:
    """Linux, a runner under the normal policy, and allowed to change it."""
    if not hasattr(os, "SCHED_BATCH"):
        return False
    try:
        return os.sched_getscheduler(0) == os.SCHED_OTHER
    except OSError:
        return False


_LINUX_SCHED = pytest.mark.skipif(
    not _may_change_policy(),
    reason="needs Linux scheduling policies and a runner under SCHED_OTHER",
)


def _policy_in_thread(body):
    """Run ``body`` in a new OS thread; its return and the thread's policy."""
    got = {}

    def run():
        got["result"] = body()
        got["policy"] = os.sched_getscheduler(0)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert not thread.is_alive() and "policy" in got, "the thread did not finish"
    return got["result"], got["policy"]


@_LINUX_SCHED
def test_a_sender_thread_goes_under_sched_batch_and_its_caller_does_not():
    caller = threading.get_native_id()
    before = os.sched_getscheduler(0)
    changed, policy = _policy_in_thread(lambda: delivery._yield_to_callers(caller))
    assert (changed, policy) == (True, os.SCHED_BATCH)
    assert os.sched_getscheduler(0) == before == os.SCHED_OTHER


@_LINUX_SCHED
def test_a_sender_sharing_its_caller_s_os_thread_keeps_the_policy():
    # eventlet's green threads share one OS thread: a policy set there
    # would apply to every green thread of it
    changed, policy = _policy_in_thread(
        lambda: delivery._yield_to_callers(threading.get_native_id())
    )
    assert (changed, policy) == (False, os.SCHED_OTHER)


@_LINUX_SCHED
def test_a_policy_the_service_chose_is_left_alone():
    def idle_then_yield():
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return delivery._yield_to_callers(-1)

    assert _policy_in_thread(idle_then_yield) == (False, os.SCHED_IDLE)


@_LINUX_SCHED
def test_the_running_sender_is_under_sched_batch(fake_env):
    fake_env.override("delivery_mode", "background", group="notifications")
    nova_notifier.init(fake_env.conf)
    try:
        nova_notifier.get_notifier("compute", "c1").info({}, "test.sched", {"n": 1})
        sender = lifecycle._STATE.delivery
        assert sender is not None
        native = sender._thread.native_id
        assert native is not None and native != threading.get_native_id()
        deadline = time.monotonic() + 10
        while os.sched_getscheduler(native) != os.SCHED_BATCH:
            assert time.monotonic() < deadline, "the sender never left SCHED_OTHER"
            time.sleep(0.01)  # polling the sender thread's policy
        assert os.sched_getscheduler(0) == os.SCHED_OTHER
    finally:
        nova_notifier.cleanup()
