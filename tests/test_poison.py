"""Poison messages: what the broker refuses for good is set aside, the rest flows.

On the real broker: a queue with ``x-overflow=reject-publish`` that is
always full (nacks), a message over ``max_message_size`` (the broker closes
the channel), a control exchange declared with another type
(PRECONDITION_FAILED). Each time the refused message is dead-lettered
(spool) or dropped (background), counted and logged once with the broker's
reason; the good messages of the same batch arrive exactly once, and later
ones still arrive. On ``fake://`` (the oslo.messaging path): a permanent
AMQP error wrapped by ``MessageDeliveryFailure`` is set aside, a connection
error never is.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

import amqp
import oslo_messaging
import pytest

import nova_notifier
from nova_notifier import _rabbit_batch, delivery, lifecycle
from nova_notifier.tools.amqp_queues import delete_queues
from tests.conftest import (
    PRIORITIES,
    RABBIT_URL,
    Collector,
    _start_listener,
    _stop_listener,
    broker_available,
    make_conf,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _amqp() -> amqp.Connection:
    conn = amqp.Connection("127.0.0.1:5672", userid="guest", password="guest")
    conn.connect()
    return conn


class _Gate:
    """Holds the sender back until every message is queued: one batch."""

    def __init__(self, monkeypatch) -> None:
        self.open = threading.Event()
        original = delivery.Delivery._take_batch

        def gated(this):
            self.open.wait(30)
            return original(this)

        monkeypatch.setattr(delivery.Delivery, "_take_batch", gated)


def _wait(condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"waited {timeout}s for {what}: {nova_notifier.stats()}"
            )
        time.sleep(0.02)


def _refusal_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "the broker refused" in r.msg]


def _dead_letters(spool: str) -> list[tuple[str, str, int]]:
    db = sqlite3.connect(spool)
    try:
        return db.execute(
            "SELECT record, reason, attempts FROM dead_letter ORDER BY id"
        ).fetchall()
    finally:
        db.close()


class Poison:
    """A unique topic, a listener, and the library set up on demand."""

    def __init__(self, tmp_path, priorities=PRIORITIES) -> None:
        self.topic = f"nn-poison-{uuid.uuid4().hex[:12]}"
        self.tmp_path = tmp_path
        self.spool = str(tmp_path / "spool.db")
        self.collector = Collector()
        for priority in set(PRIORITIES) - set(priorities):
            delattr(self.collector, priority)  # no queue for it, no listener
        self.listeners: list[tuple[object, object]] = []
        self.exchanges: list[str] = []

    def listen(self, **overrides) -> None:
        conf = make_conf(RABBIT_URL, self.topic)
        for name, value in overrides.items():
            conf.set_override(name, value)
        transport = oslo_messaging.get_notification_transport(conf)
        self.listeners.append(
            (transport, _start_listener(transport, self.topic, self.collector))
        )

    def init(self, mode: str, **overrides) -> None:
        conf = make_conf(
            RABBIT_URL,
            self.topic,
            notifications__delivery_mode=mode,
            notification_delivery__retry_backoff_max=0.05,
            notification_delivery__dead_letter_after=3,
            notification_delivery__flush_timeout=5,
            **overrides,
        )
        if mode == "spool":
            conf.set_override("spool_path", self.spool, group="notification_delivery")
        nova_notifier.init(conf)

    def arrived(self, event_type: str) -> list:
        return [i for i in self.collector.items if i.event_type == event_type]

    def close(self) -> None:
        nova_notifier.cleanup()
        for transport, listener in self.listeners:
            _stop_listener(listener)
            transport.cleanup()
        delete_queues(RABBIT_URL, [f"{self.topic}.{p}" for p in PRIORITIES])
        if self.exchanges:
            conn = _amqp()
            try:
                for name in self.exchanges:
                    conn.channel().exchange_delete(name)
            finally:
                conn.close()


@pytest.fixture
def poison(tmp_path):
    if not broker_available():
        pytest.fail("RabbitMQ is not answering on 127.0.0.1:5672")
    env = Poison(tmp_path, priorities=("info", "error"))
    try:
        yield env
    finally:
        env.close()


def _emit_seqs(notifier, seqs, event_type="test.good") -> None:
    for seq in seqs:
        notifier.info({}, event_type, {"seq": seq})


def _assert_good_once(env: Poison, seqs) -> None:
    got = env.arrived("test.good")
    counts = collections.Counter(g.payload["seq"] for g in got)
    assert counts == {seq: 1 for seq in seqs}, counts
    for g in got:
        assert (g.priority, g.publisher_id) == ("INFO", "compute.poison")
        assert g.payload == {"seq": g.payload["seq"]}


def _settle(env: Poison) -> None:
    """A marker at info after everything else: once it is back, all is."""
    marker = f"test.marker.{uuid.uuid4().hex[:6]}"
    nova_notifier.get_notifier("test", "marker").info({}, marker, {})
    env.collector.wait_for(1, event_type=marker, timeout=30)


def _poison_in_a_batch(env: Poison, mode, monkeypatch, caplog, emit_poison) -> None:
    """One batch of 5 good messages, the poison, 5 good; then 5 more good.

    Returns once the poison is set aside and everything else arrived, each
    good message exactly once."""
    env.listen()
    gate = _Gate(monkeypatch)
    caplog.set_level(logging.WARNING, logger="nova_notifier")
    env.init(mode)
    notifier = nova_notifier.get_notifier("compute", "poison")
    _emit_seqs(notifier, range(0, 5))
    emit_poison(notifier)
    _emit_seqs(notifier, range(5, 10))
    gate.open.set()  # the sender takes all eleven at once
    _wait(lambda: nova_notifier.stats()["dead_lettered"] == 1, what="the dead letter")
    _emit_seqs(notifier, range(10, 15))  # later messages still flow
    _settle(env)
    _assert_good_once(env, range(15))


pytestmark = pytest.mark.broker


@pytest.mark.parametrize("mode", ["background", "spool"])
def test_a_nacked_message_is_set_aside_and_its_batch_arrives_once(
    poison, mode, monkeypatch, caplog
):
    """A queue a consumer declared always full with reject-publish: the
    broker nacks what is routed to it. The publisher uses that queue as it
    is (its own declaration would be refused), only the nacked message is
    retried, then set aside; the info messages of the batch arrive once."""
    full = f"{poison.topic}.sample"
    conn = _amqp()
    try:
        conn.channel().queue_declare(
            full,
            arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
            auto_delete=False,
        )
    finally:
        conn.close()
    _poison_in_a_batch(
        poison,
        mode,
        monkeypatch,
        caplog,
        lambda notifier: notifier.sample({}, "test.poison", {"size": "full"}),
    )
    stats = nova_notifier.stats()
    assert stats["dead_lettered"] == 1
    assert stats["dropped"] == (1 if mode == "background" else 0)
    [line] = _refusal_lines(caplog)
    assert "test.poison" in line and "basic.nack" in line and "3 times" in line
    if mode == "spool":
        [(record, reason, attempts)] = _dead_letters(poison.spool)
        assert "basic.nack" in reason and attempts == 3
        assert '"event_type": "test.poison"' in record
    # the full queue got nothing, the listener no sample
    assert not poison.arrived("test.poison")


@pytest.fixture
def small_max_message_size():
    """The broker's max_message_size at 64 KiB, restored afterwards."""

    def ctl(expr: str) -> str:
        return subprocess.run(
            ["rabbitmqctl", "eval", expr], capture_output=True, text=True, check=True
        ).stdout.strip()

    old = ctl("application:get_env(rabbit, max_message_size).")
    assert old.startswith("{ok,"), old
    value = old[len("{ok,") : -1]
    ctl("application:set_env(rabbit, max_message_size, 65536).")
    try:
        # the lowered limit applies to channels opened from now on
        conn = _amqp()
        try:
            channel = conn.channel()
            channel.basic_publish(amqp.Message("x" * 70_000), routing_key="nowhere")
            with pytest.raises(amqp.exceptions.PreconditionFailed, match="65536"):
                channel.basic_qos(0, 1, False)  # a round trip that sees the close
        finally:
            conn.close()
        yield
    finally:
        ctl(f"application:set_env(rabbit, max_message_size, {value}).")
        assert ctl("application:get_env(rabbit, max_message_size).") == old


@pytest.mark.parametrize("mode", ["background", "spool"])
def test_an_oversized_message_is_set_aside_and_the_rest_arrives_once(
    poison, mode, monkeypatch, caplog, small_max_message_size
):
    """The broker closes the channel on a message over max_message_size
    (lowered for new channels at runtime); the messages after it on that
    channel are lost to the broker and resent once, the big one is pinned
    down by sending one at a time, and set aside."""
    _poison_in_a_batch(
        poison,
        mode,
        monkeypatch,
        caplog,
        lambda notifier: notifier.info({}, "test.poison", {"blob": "x" * 100_000}),
    )
    assert not poison.arrived("test.poison")
    assert nova_notifier.stats()["dropped"] == (1 if mode == "background" else 0)
    [line] = _refusal_lines(caplog)
    assert "406 PRECONDITION_FAILED - message size" in line
    assert "larger than configured max size 65536" in line


def _spool_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nova_notifier.tools.cli", "spool", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("mode", "batch"),
    [("background", 200), ("spool", 200), ("spool", 1)],
    ids=["background", "spool", "spool-through-oslo"],
)
def test_a_mismatched_exchange_sets_messages_aside_until_it_is_fixed(
    poison, mode, batch, caplog
):
    """control_exchange already exists as a fanout exchange: declaring it
    as oslo.messaging does is refused (PRECONDITION_FAILED). Messages are
    set aside, not wedged; once the operator deletes the wrong exchange,
    new messages arrive, and in spool mode the dead letters can be listed
    and queued again (they arrive with their original message_id)."""
    exchange = f"nn-poison-x-{uuid.uuid4().hex[:8]}"
    poison.exchanges.append(exchange)
    conn = _amqp()
    try:
        conn.channel().exchange_declare(exchange, "fanout", auto_delete=False)
    finally:
        conn.close()
    caplog.set_level(logging.WARNING, logger="nova_notifier")
    poison.init(
        mode, control_exchange=exchange, notification_delivery__sender_batch_size=batch
    )
    notifier = nova_notifier.get_notifier("compute", "poison")
    notifier.info({}, "test.poison", {"seq": -1})
    _wait(lambda: nova_notifier.stats()["dead_lettered"] == 1, what="the dead letter")
    [line] = _refusal_lines(caplog)
    assert "406 PRECONDITION_FAILED - inequivalent arg 'type'" in line
    assert "received 'topic' but current is 'fanout'" in line
    # the operator removes the wrong exchange; a listener declares it right
    conn = _amqp()
    try:
        conn.channel().exchange_delete(exchange)
    finally:
        conn.close()
    poison.listen(control_exchange=exchange)
    _emit_seqs(notifier, range(3))
    poison.collector.wait_for(3, event_type="test.good", timeout=30)
    _assert_good_once(poison, range(3))
    stats = nova_notifier.stats()
    assert stats["dead_lettered"] == 1
    assert stats["dropped"] == (1 if mode == "background" else 0)
    if mode == "background":
        return
    listed = _spool_cli("list", "--spool-path", poison.spool)
    assert listed.returncode == 0, listed.stderr
    [row, total] = listed.stdout.strip().splitlines()
    assert total == "1 dead letters"
    assert f"\t3 attempts\t{poison.topic}\ttest.poison\t" in row
    assert "PRECONDITION_FAILED" in row
    [(record, _, _)] = _dead_letters(poison.spool)
    requeued = _spool_cli("requeue", "--spool-path", poison.spool)
    assert requeued.stdout.strip() == "requeued 1 dead letters", requeued.stderr
    [back] = poison.collector.wait_for(1, event_type="test.poison", timeout=30)
    assert (back.priority, back.publisher_id, back.payload) == (
        "INFO",
        "compute.poison",
        {"seq": -1},
    )
    assert back.metadata["message_id"] in record
    assert _dead_letters(poison.spool) == []
    assert _spool_cli("list", "--spool-path", poison.spool).stdout == "0 dead letters\n"


# -- the oslo.messaging path (fake://, sender_batch_size = 1) ----------------


def _failing_transport(monkeypatch, should_fail, cause):
    """Make the transport raise as oslo.messaging's rabbit driver does: a
    MessageDeliveryFailure raised while handling ``cause()``."""
    transport = lifecycle.transport()
    original = transport._send_notification
    calls = collections.Counter()

    def send(target, ctxt, message, **kw):
        calls[message["event_type"]] += 1
        if should_fail(message, calls):
            try:
                raise cause()
            except Exception as exc:  # chained as __context__, as oslo does
                raise oslo_messaging.MessageDeliveryFailure(  # noqa: B904
                    f"Unable to connect to AMQP server: {exc}"
                )
        return original(target, ctxt, message, **kw)

    monkeypatch.setattr(transport, "_send_notification", send)
    return calls


def _fake_background(env, **overrides) -> None:
    env.override("delivery_mode", "background", group="notifications")
    env.override("sender_batch_size", 1, group="notification_delivery")
    env.override("retry_backoff_max", 0.02, group="notification_delivery")
    env.override("dead_letter_after", 2, group="notification_delivery")
    for name, value in overrides.items():
        env.override(name, value, group="notifications")
    nova_notifier.init(env.conf)


@pytest.mark.parametrize(
    "cause",
    [
        lambda: amqp.exceptions.PreconditionFailed(
            "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'nova'"
        ),
        lambda: amqp.exceptions.AccessRefused(
            "ACCESS_REFUSED - write access to exchange 'nova' refused"
        ),
        lambda: amqp.exceptions.NotFound("NOT_FOUND - no exchange 'nova'"),
    ],
    ids=["precondition", "access", "not-found"],
)
def test_a_permanent_error_on_the_oslo_path_is_set_aside(
    fake_env, monkeypatch, caplog, cause
):
    caplog.set_level(logging.WARNING, logger="nova_notifier")
    _fake_background(fake_env)
    calls = _failing_transport(
        monkeypatch,
        lambda message, calls: message["event_type"] == "test.poison",
        cause,
    )
    notifier = nova_notifier.get_notifier("compute", "poison")
    notifier.info({}, "test.poison", {"seq": -1})
    notifier.info({}, "test.good", {"seq": 0})
    [got] = fake_env.collector.wait_for(1, event_type="test.good")
    assert (got.priority, got.publisher_id, got.payload) == (
        "INFO",
        "compute.poison",
        {"seq": 0},
    )
    _wait(lambda: nova_notifier.stats()["dead_lettered"] == 1)
    assert calls["test.poison"] == 2  # dead_letter_after
    [line] = _refusal_lines(caplog)
    assert str(cause()) in line and "dropped (background mode)" in line
    assert nova_notifier.stats()["dropped"] == 1


@pytest.mark.parametrize(
    "cause",
    [
        lambda: ConnectionRefusedError(111, "Connection refused"),
        lambda: TimeoutError("timed out"),
        lambda: amqp.exceptions.ConnectionForced("CONNECTION_FORCED - shutdown"),
        lambda: amqp.exceptions.RecoverableConnectionError("connection reset"),
    ],
    ids=["refused", "timeout", "forced", "reset"],
)
def test_a_transient_error_is_retried_never_set_aside(fake_env, monkeypatch, cause):
    _fake_background(fake_env)
    failures = 10  # five times dead_letter_after
    calls = _failing_transport(
        monkeypatch,
        lambda message, calls: calls[message["event_type"]] <= failures,
        cause,
    )
    nova_notifier.get_notifier("compute", "poison").info({}, "test.good", {"seq": 0})
    [got] = fake_env.collector.wait_for(1, event_type="test.good")
    assert got.payload == {"seq": 0}
    stats = nova_notifier.stats()
    assert calls["test.good"] == failures + 1
    assert stats["retried"] == failures
    assert stats["dead_lettered"] == stats["dropped"] == 0


def test_permanent_reason_reads_through_oslo_wrapping():
    wrapped = _through_oslo

    reason = _rabbit_batch.permanent_reason(
        wrapped(amqp.exceptions.ContentTooLarge("CONTENT_TOO_LARGE - body"))
    )
    assert reason == "311 CONTENT_TOO_LARGE - body"
    assert _rabbit_batch.permanent_reason(wrapped(OSError("reset"))) is None
    # a refused login says nothing about the message: transient
    try:
        raise _rabbit_batch._ConnectError("login") from amqp.exceptions.AccessRefused(
            "ACCESS_REFUSED - Login was refused"
        )
    except Exception as exc:
        assert _rabbit_batch.permanent_reason(exc) is None


def test_a_missing_queue_is_declared_so_messages_before_any_listener_are_kept():
    """The passive check finds no queue (the broker closes the declaration
    channel with NOT_FOUND): the publisher declares it as oslo.messaging
    does, on a fresh channel, and the messages wait in it."""
    if not broker_available():
        pytest.fail("RabbitMQ is not answering on 127.0.0.1:5672")
    from nova_notifier.testing.config import make_conf as plain_conf

    publisher = _rabbit_batch.BatchPublisher(plain_conf(RABBIT_URL), RABBIT_URL, 5)
    key = f"nn-poison-{uuid.uuid4().hex[:12]}.info"
    try:
        result = publisher.publish(
            [(key, {}, {"event_type": f"test.early.{n}"}) for n in range(3)]
        )
        assert (result.acked, result.refused, result.error) == ({0, 1, 2}, {}, None)
        conn = _amqp()
        try:
            channel = conn.channel()
            bodies = [channel.basic_get(key, no_ack=True).body for _ in range(3)]
            assert channel.basic_get(key, no_ack=True) is None
            assert [
                json.loads(json.loads(body)["oslo.message"])["event_type"]
                for body in bodies
            ] == [f"test.early.{n}" for n in range(3)]
        finally:
            conn.close()
    finally:
        publisher.close()
        delete_queues(RABBIT_URL, [key])


def _through_oslo(cause):
    """``cause`` as oslo.messaging raises it: MessageDeliveryFailure raised
    while handling the amqp/kombu error."""
    try:
        raise cause
    except Exception:
        try:
            raise oslo_messaging.MessageDeliveryFailure("Unable to connect")
        except Exception as exc:
            return exc


@pytest.mark.parametrize(
    "cause",
    [
        amqp.exceptions.AccessRefused(
            "ACCESS_REFUSED - Login was refused using authentication mechanism",
            (0, 0),
        ),
        amqp.exceptions.NotFound(
            "NOT_FOUND - home node 'rabbit@node-2' of durable queue 'q' in "
            "vhost '/' is down or inaccessible",
            (50, 10),
        ),
        amqp.exceptions.ResourceLocked("RESOURCE_LOCKED - exclusive queue", (50, 10)),
        amqp.exceptions.ConnectionForced("CONNECTION_FORCED - shutdown", (0, 0)),
    ],
    ids=["login-refused", "home-node-down", "resource-locked", "forced"],
)
def test_refusals_of_the_connection_or_a_node_away_are_transient(cause):
    assert _rabbit_batch.permanent_reason(_through_oslo(cause)) is None


@pytest.mark.parametrize(
    "cause,reason",
    [
        (
            amqp.exceptions.AccessRefused("ACCESS_REFUSED - no write", (60, 40)),
            "403 ACCESS_REFUSED - no write",
        ),
        (
            amqp.exceptions.NotFound("NOT_FOUND - no exchange 'nova'", (40, 10)),
            "404 NOT_FOUND - no exchange 'nova'",
        ),
        (amqp.exceptions.MessageNacked(), _rabbit_batch.NACK_REASON),
    ],
    ids=["access-on-publish", "missing-exchange", "nack-through-kombu"],
)
def test_refusals_of_the_message_or_its_destination_are_permanent(cause, reason):
    assert _rabbit_batch.permanent_reason(_through_oslo(cause)) == reason
