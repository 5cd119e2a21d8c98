"""nova-notifier listen across a broker restart: it reconnects and keeps printing.

The listener process reaches RabbitMQ only through a ``FaultProxy``; the test
publishes straight to the broker. Cutting every proxied connection and
refusing new ones is what a client sees when its broker restarts, while the
shared broker itself (and the listener's pool queue on it) stays up.

The pool queue's lifetime across the outage: oslo.messaging declares a
listener pool's queue (named after the pool, bound to ``<topic>.<priority>``)
with ``auto_delete=amqp_auto_delete`` and ``durable=amqp_durable_queues`` (or
quorum queues), all False by default, and never exclusive. So it is not auto-delete: it
outlives its consumer's connection, and what is published while the listener
is away waits in it. (Not durable either: a *real* restart of a broker without
durable queues would lose the queue and its messages; the proxy models the
connection loss, not the broker's loss of state.) The test checks this on the
broker: during the outage the queue is still there, has no consumer, and holds
the second batch.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable

import oslo_messaging
import pytest
from oslo_config import cfg

from nova_notifier.testing.tcpproxy import FaultProxy
from nova_notifier.tools.amqp_queues import delete_queues
from tests.conftest import (
    PRIORITIES,
    RABBIT_URL,
    broker_available,
    queue_state,
    wait_until,
)
from tests.test_listen import _listen

OUTAGE = 3.0  # seconds the "broker" stays down
FIRST, SECOND, THIRD = 3, 3, 2  # before, during and after the outage
TOTAL = FIRST + SECOND + THIRD


class Lines:
    """Reads a subprocess pipe line by line in a thread; tests wait on it."""

    def __init__(self, pipe) -> None:
        self.lines: list[str] = []
        self.closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe) -> None:
        for line in pipe:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(
        self, done: Callable[[list[str]], bool], what: str, timeout: float = 30
    ) -> None:
        """Block until ``done(lines)``; fail after ``timeout`` or at EOF."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done(self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    why = "the pipe closed" if self.closed else f"{timeout}s passed"
                    raise AssertionError(f"{why} before {what}")
                self._cond.wait(left)

    def join(self, timeout: float = 10) -> None:
        self._thread.join(timeout)


def _markers(lines: list[str]) -> list[str]:
    return [json.loads(line)["payload"]["marker"] for line in lines]


def _wait_queue(
    name: str, check: Callable[[int, int], bool], what: str, timeout: float = 30
) -> int:
    """Wait until ``check(messages, consumers)`` holds; return the messages."""
    state: list[tuple[int, int] | None] = [None]

    def holds() -> bool:
        state[0] = queue_state(name)
        assert state[0] is not None, f"queue {name} is gone, waiting for {what}"
        return check(*state[0])

    try:
        wait_until(holds, what, timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; (messages, consumers) = {state[0]}") from None
    assert state[0] is not None
    return state[0][0]


class _Publisher:
    """Publishes markers on a topic of its own straight to the broker (not
    through the proxy); ``publish(batch, count)`` returns the markers sent."""

    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:10]
        self.topic = f"nn-test-{self.run}"
        conf = cfg.ConfigOpts()
        conf([], project="nova-notifier-test", default_config_files=[])
        self._transport = oslo_messaging.get_notification_transport(
            conf, url=RABBIT_URL
        )
        self._notifier = oslo_messaging.Notifier(
            self._transport, "test.reconnect", driver="messagingv2", topics=[self.topic]
        )

    def __call__(self, batch: str, count: int) -> list[str]:
        markers = [f"{self.run}-{batch}-{n}" for n in range(count)]
        for marker in markers:
            self._notifier.info({}, "test.reconnect", {"marker": marker})
        return markers

    def close(self) -> None:
        self._transport.cleanup()


def _ended(proc: subprocess.Popen, out: Lines, err: Lines) -> None:
    """Wait for the listener to exit and its pipes to be read to the end."""
    proc.wait(timeout=30)
    out.join()
    err.join()


def _clean_up(proc: subprocess.Popen, proxy: FaultProxy, publish: _Publisher) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)
    proxy.close()
    publish.close()


@pytest.mark.broker
def test_listen_reconnects_after_a_broker_restart():
    if not broker_available():
        pytest.fail("RabbitMQ is not answering on 127.0.0.1:5672 (run .ci/run)")
    publish = _Publisher()
    topic, pool = publish.topic, f"nn-listen-{publish.run}"
    proxy = FaultProxy(("127.0.0.1", 5672))
    proc = _listen(
        proxy.url(),
        "--topic",
        topic,
        "--pool",
        pool,
        "--json",
        "--count",
        str(TOTAL),
        "--timeout",
        "120",
    )
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    try:
        err.wait_for(
            lambda lines: any(line.startswith("listening on") for line in lines),
            "the listener said 'listening on'",
        )
        _wait_queue(pool, lambda m, c: c == 1, "the pool queue had its consumer")
        connections = proxy.accepted

        first = publish("first", FIRST)
        out.wait_for(lambda lines: len(lines) >= FIRST, f"{FIRST} lines printed")

        proxy.cut()  # closes every open connection and refuses new ones
        cut_at = time.monotonic()
        # The broker saw the consumer go and kept its queue. oslo.messaging
        # acks from its polling thread a little after the endpoint returns,
        # so a notification printed just before the cut may be unacked: the
        # broker puts it back (held), and after the reconnect the listener's
        # msg_id_cache drops the redelivery ("ignoring duplicate message").
        held = _wait_queue(pool, lambda m, c: c == 0, "the broker lost the consumer")
        second = publish("during", SECOND)
        _wait_queue(pool, lambda m, c: m == held + SECOND, "the 2nd batch queued")
        # The listener is trying to come back, and is being refused.
        wait_until(lambda: proxy.accepted > connections, "a reconnection attempt")
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - cut_at)))  # the outage
        assert proc.poll() is None, f"listen died in the outage:\n{err.text()}"
        assert len(out.lines) == FIRST, "printed something while cut off"
        refused = proxy.accepted - connections
        proxy.restore()

        out.wait_for(
            lambda lines: len(lines) >= FIRST + SECOND, "the 2nd batch printed"
        )
        _wait_queue(pool, lambda m, c: c == 1, "the consumer was back")
        third = publish("after", THIRD)
        out.wait_for(lambda lines: len(lines) >= TOTAL, "the 3rd batch printed")
        _ended(proc, out, err)  # --count ends it
    finally:
        _clean_up(proc, proxy, publish)
        delete_queues(RABBIT_URL, [pool] + [f"{topic}.{p}" for p in PRIORITIES])

    stderr = err.text()
    print(
        f"{refused} reconnection attempts refused in the outage; {held} printed "
        f"but unacked at the cut were held for redelivery\n{stderr}"
    )
    assert proc.returncode == 0, stderr
    assert _markers(out.lines) == first + second + third
    assert err.lines[-1] == f"{TOTAL} notifications"
    assert "CRITICAL" not in stderr, stderr
    # The only tracebacks allowed are of redeliveries the listener dropped.
    assert stderr.count("Traceback") == stderr.count("ignoring duplicate message")
    # It noticed the cut (oslo.messaging logs each failed attempt at ERROR).
    assert "is unreachable" in stderr
    assert refused >= 1


@pytest.mark.broker
def test_a_one_off_listener_comes_back_on_a_new_queue_after_a_cut():
    """Without --pool the queue goes with the connection: what is sent while
    the listener is cut off is not kept for it, and after the reconnect it
    listens on a queue of the same name again and prints what comes next."""
    if not broker_available():
        pytest.fail("RabbitMQ is not answering on 127.0.0.1:5672 (run .ci/run)")
    publish = _Publisher()
    proxy = FaultProxy(("127.0.0.1", 5672))
    proc = _listen(proxy.url(), "--topic", publish.topic, "--json")
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    try:
        err.wait_for(
            lambda lines: any(line.startswith("listening on") for line in lines),
            "the listener said 'listening on'",
        )
        line = next(line for line in err.lines if line.startswith("listening on"))
        queue = line.split("one-off queue ")[1].split(",")[0]
        _wait_queue(queue, lambda m, c: c == 1, "the one-off queue had its consumer")
        before = publish("before", 2)
        out.wait_for(lambda lines: len(lines) >= 2, "2 lines printed")
        proxy.cut()
        wait_until(lambda: queue_state(queue) is None, "the broker deleted it")
        publish("during", 2)  # no queue of the listener's is bound: not kept
        proxy.restore()
        wait_until(lambda: queue_state(queue) == (0, 1), "the one-off queue was back")
        after = publish("after", 2)
        out.wait_for(lambda lines: len(lines) >= 4, "4 lines printed")
        proc.terminate()
        _ended(proc, out, err)
    finally:
        _clean_up(proc, proxy, publish)
    assert proc.returncode == 0, err.text()
    assert _markers(out.lines) == before + after
    wait_until(lambda: queue_state(queue) is None, "its queue was deleted at exit")
