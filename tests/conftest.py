"""Shared fixtures: a configured library and a real notification listener.

``fake_env`` runs the library on oslo.messaging's in-process ``fake://``
transport (which JSON-serialises every message as the wire does);
``broker_env`` publishes through the real RabbitMQ broker and consumes with a
separate oslo.messaging notification listener on a topic unique to the test.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kombu
import oslo_messaging
import pytest
from oslo_config import cfg

import nova_notifier
from nova_notifier import lifecycle, schemas
from nova_notifier.testing.config import make_conf as testing_conf
from nova_notifier.tools.amqp_queues import delete_queues, kombu_url
from tests.cluster_util import Cluster

RABBIT_URL = os.environ.get(
    "NOVA_NOTIFIER_TEST_RABBIT", "rabbit://guest:guest@127.0.0.1:5672/"
)
PRIORITIES = ("audit", "debug", "info", "warn", "error", "critical", "sample")
MARKER = "test.marker"
# Longest emit call a driver test accepts. Issue 12's aim is no call over
# 5 ms. Through the single broker (tests/test_driver_outage.py) the broker is
# the machine's own, at full priority on the same two cores, and the tests
# hold 250 ms: the line between "never waits on the broker" and oslo's own
# driver blocking for a second. On the cluster, whose nodes and listener run
# at nice 19 in their own scheduler groups (they stand for other machines),
# the longest calls measured were 1-10 ms (bench/cluster.py reports them
# against the 5 ms aim), and the cluster tests hold CLUSTER_CALL_MS: a call
# that waited on a broker or a disk would take longer. Both also hold every
# call to OWN_CALL_MS of its own (driver_child.own_ms: its time less its
# waits for a core and for garbage collections, which the machine decides):
# a wait on a lock, the GIL, a disk or the network counts.
NEVER_BLOCKED_MS = 250.0
CLUSTER_CALL_MS = 50.0
OWN_CALL_MS = 5.0


@dataclasses.dataclass
class Received:
    """One notification as the listener got it off the transport."""

    priority: str
    publisher_id: str
    event_type: str
    payload: Any
    metadata: dict[str, Any]
    ctxt: dict[str, Any]


def schema_problem(event_type: str, payload: Any) -> str | None:
    """Why ``payload`` does not match ``event_type``'s schema (None when it
    does, or when no schema describes that event type, as with test-only
    ones such as ``test.marker``)."""
    try:
        schemas.validate(event_type, payload)
    except schemas.UnknownEventType:
        return None
    except Exception as exc:  # jsonschema.ValidationError, or a broken schema
        where = getattr(exc, "json_path", "")
        message = getattr(exc, "message", None) or repr(exc)
        return f"{event_type}: {where}: {message}"
    return None


# Compile the schemas now, not in a listener thread as the first message arrives.
schema_problem("api.fault", {})

# The Collectors made during the current test (see _payloads_match_schemas).
_COLLECTORS: list[Collector] = []


class Collector:
    """A notification endpoint that records what arrives and lets tests wait.

    Each message whose event type has a schema (:mod:`nova_notifier.schemas`)
    is validated as it arrives; ``invalid`` lists those that did not match,
    and the autouse ``_payloads_match_schemas`` fixture fails the test when
    any did.
    """

    def __init__(self) -> None:
        self.items: list[Received] = []
        self.invalid: list[str] = []
        self._cond = threading.Condition()
        _COLLECTORS.append(self)
        for priority in PRIORITIES:
            setattr(self, priority, self._recorder(priority.upper()))

    def _recorder(self, priority: str) -> Callable[..., None]:
        def record(ctxt, publisher_id, event_type, payload, metadata):
            with self._cond:
                self.items.append(
                    Received(
                        priority, publisher_id, event_type, payload, metadata, ctxt
                    )
                )
                self._cond.notify_all()
            # Checked once recorded: tests wait on arrivals, not on this.
            problem = schema_problem(event_type, payload)
            if problem is not None:
                with self._cond:
                    self.invalid.append(problem)

        return record

    def wait_for(
        self,
        count: int = 1,
        event_type: str | None = None,
        timeout: float = 10.0,
    ) -> list[Received]:
        """Block until ``count`` notifications (of ``event_type``) arrived."""
        deadline = time.monotonic() + timeout

        def matching() -> list[Received]:
            return [
                item
                for item in self.items
                if event_type is None or item.event_type == event_type
            ]

        with self._cond:
            while len(matching()) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"waited {timeout}s for {count} x {event_type or 'any'}; "
                        f"got {[i.event_type for i in self.items]}"
                    )
                self._cond.wait(left)
            return matching()

    def events(self, exclude_marker: bool = True) -> list[Received]:
        with self._cond:
            return [
                i for i in self.items if not (exclude_marker and i.event_type == MARKER)
            ]


@pytest.fixture(autouse=True)
def _payloads_match_schemas(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test in which any Collector received a message that does not
    match its event type's schema, unless the test is marked
    ``payloads_unchecked`` (it sends payloads of its own under a real
    event type)."""
    _COLLECTORS.clear()
    yield
    collectors = list(_COLLECTORS)
    _COLLECTORS.clear()
    if request.node.get_closest_marker("payloads_unchecked"):
        return
    problems = [problem for c in collectors for problem in c.invalid]
    if problems:
        shown = "\n  ".join(problems[:10])
        more = f"\n  (+{len(problems) - 10} more)" if len(problems) > 10 else ""
        pytest.fail(
            f"{len(problems)} received messages do not match their schema:"
            f"\n  {shown}{more}",
            pytrace=False,
        )


@dataclasses.dataclass
class Env:
    conf: cfg.ConfigOpts
    collector: Collector
    topic: str

    def settle(self, priorities: tuple[str, ...] = ("info", "error")) -> list[Received]:
        """Send a marker at each priority and wait for all of them.

        Each priority is its own queue, delivered in order, so once the markers
        are back every notification sent before them has arrived too. Returns
        what arrived, markers left out.
        """
        sent_before = len([i for i in self.collector.items if i.event_type == MARKER])
        marker = nova_notifier.get_notifier("test", "marker")
        for priority in priorities:
            marker.notify({}, MARKER, {"marker": priority}, priority)
        self.collector.wait_for(sent_before + len(priorities), event_type=MARKER)
        return self.collector.events()

    def override(self, name: str, value: Any, group: str | None = None) -> None:
        self.conf.set_override(name, value, group=group)


def make_conf(transport_url: str, topic: str, **overrides: Any) -> cfg.ConfigOpts:
    """A fresh ConfigOpts with the library's options, sending to ``topic``.

    Overrides are ``group__name=value`` (``name=value`` for [DEFAULT]).
    """
    conf = testing_conf(transport_url, [topic], host="testhost")
    for key, value in overrides.items():
        group, _, name = key.rpartition("__")
        conf.set_override(name, value, group=group or None)
    # The whole suite can run under another delivery mode, e.g.
    # NOVA_NOTIFIER_TEST_DELIVERY=background.
    mode = os.environ.get("NOVA_NOTIFIER_TEST_DELIVERY")
    if mode:
        conf.set_override("delivery_mode", mode, group="notifications")
    if mode == "spool":
        spool = os.path.join(tempfile.mkdtemp(prefix="nn-spool-"), "spool.db")
        conf.set_override("spool_path", spool, group="notification_delivery")
    for key, value in overrides.items():
        group, _, name = key.rpartition("__")
        conf.set_override(name, value, group=group or None)
    return conf


def _start_listener(transport: Any, topic: str, collector: Collector) -> Any:
    listener = oslo_messaging.get_notification_listener(
        transport,
        [oslo_messaging.Target(topic=topic)],
        [collector],
        executor="threading",
    )
    listener.start()
    return listener


def _stop_listener(listener: Any, in_background: bool = False) -> None:
    listener.stop()
    if in_background:
        # wait() only joins the executor's idle worker threads, which futurist
        # lets linger about a second; on fake:// nothing else depends on it.
        threading.Thread(target=listener.wait, daemon=True).start()
    else:
        listener.wait()


@pytest.fixture
def fake_env() -> Iterator[Env]:
    """The library initialised on ``fake://`` with a listener on its transport."""
    topic = f"nn-test-{uuid.uuid4().hex[:12]}"
    conf = make_conf("fake://", topic)
    nova_notifier.init(conf)
    collector = Collector()
    listener = _start_listener(lifecycle.transport(), topic, collector)
    try:
        yield Env(conf, collector, topic)
    finally:
        _stop_listener(listener, in_background=True)
        nova_notifier.cleanup()


def queue_state(name: str) -> tuple[int, int] | None:
    """(ready messages, consumers) of a queue on the broker; None if missing."""
    with kombu.Connection(kombu_url(RABBIT_URL)) as conn:
        channel = conn.channel()
        try:
            _, messages, consumers = channel.queue_declare(name, passive=True)
        except conn.channel_errors:  # 404 NOT_FOUND closes the channel
            return None
        channel.close()
        return messages, consumers


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Poll ``check`` (a broker query) until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{timeout}s passed before {what}"
        time.sleep(0.05)


def broker_available(host: str = "127.0.0.1", port: int = 5672) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def broker_env() -> Iterator[Env]:
    """The library publishing through RabbitMQ; a separate listener consumes."""
    if not broker_available():
        pytest.fail("RabbitMQ is not answering on 127.0.0.1:5672 (run .ci/run)")
    topic = f"nn-test-{uuid.uuid4().hex[:12]}"
    conf = make_conf(RABBIT_URL, topic)
    listen_conf = make_conf(RABBIT_URL, topic)
    listen_transport = oslo_messaging.get_notification_transport(listen_conf)
    collector = Collector()
    listener = _start_listener(listen_transport, topic, collector)
    nova_notifier.init(conf)
    try:
        yield Env(conf, collector, topic)
    finally:
        nova_notifier.cleanup()
        _stop_listener(listener)
        listen_transport.cleanup()
        delete_queues(RABBIT_URL, [f"{topic}.{p}" for p in PRIORITIES])


@pytest.fixture(scope="session")
def rabbit_cluster() -> Iterator[Cluster]:
    """A running, joined RabbitMQ cluster (``tools/rabbit-cluster.sh``).

    Brought up if none of its nodes ran; then taken down at the end of the
    session, its scratch dir deleted if the session made it. A cluster that
    was (partly) running already is completed and left running.
    """
    cluster = Cluster()
    ours = not cluster.running_nodes()
    fresh = not Path(cluster.dir).exists()
    cluster.up()
    try:
        yield cluster
    finally:
        if ours:
            cluster.down(purge=fresh)


@pytest.fixture
def outage(tmp_path):
    """The library (or a service) behind a fault-injection proxy, a listener
    straight on the broker (``tests/test_outage.py``'s ``Outage``)."""
    from tests.test_outage import Outage

    if not broker_available():
        pytest.fail("RabbitMQ is not answering on 127.0.0.1:5672 (run .ci/run)")
    env = Outage(tmp_path)
    try:
        yield env
    finally:
        env.close()
