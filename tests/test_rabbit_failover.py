"""The batch publisher's hosts, failover and heartbeats, as oslo.messaging's.

oslo.messaging shuffles a multi-host ``transport_url`` and kombu moves to
the next host (``kombu_failover_strategy``) at once when a connect fails or
a connection is lost, sleeping only after a whole round. The publisher does
the same inside one ``publish`` call, so the sender's backoff only starts
when every host failed. Hosts are closed ports, the real broker on
127.0.0.1:5672, and ``FaultProxy`` in front of it to cut a live connection.
"""

from __future__ import annotations

import json
import random
import socket
import time
import uuid
from typing import Any

import amqp
import oslo_messaging
import pytest

import nova_notifier
from nova_notifier import _rabbit_batch
from nova_notifier.testing.tcpproxy import FaultProxy
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

pytestmark = pytest.mark.broker
LIVE = 5672


@pytest.fixture(autouse=True)
def _broker() -> None:
    if not broker_available():
        pytest.fail("RabbitMQ is not answering on 127.0.0.1:5672 (run .ci/run)")


def closed_port() -> int:
    """A loopback port nothing listens on (connects are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def url_of(ports: list[int]) -> str:
    hosts = ",".join(f"guest:guest@127.0.0.1:{port}" for port in ports)
    return f"rabbit://{hosts}/"


@pytest.fixture
def topic():
    name = f"nn-failover-{uuid.uuid4().hex[:12]}"
    yield name
    delete_queues(RABBIT_URL, [f"{name}.{p}" for p in PRIORITIES])


@pytest.fixture
def connects(monkeypatch) -> list[int]:
    """The port of every connect py-amqp tries, in order."""
    tried: list[int] = []
    original = amqp.Connection.connect

    def connect(self, *args, **kwargs):
        tried.append(int(self.host.rsplit(":", 1)[1]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(amqp.Connection, "connect", connect)
    return tried


def publisher(url: str, topic: str, **rabbit: Any) -> _rabbit_batch.BatchPublisher:
    conf = make_conf(url, topic)
    for name, value in rabbit.items():
        conf.set_override(name, value, group="oslo_messaging_rabbit")
    assert _rabbit_batch.supports(conf, url, 2.0)
    return _rabbit_batch.BatchPublisher(conf, url, timeout=5)


def one(topic: str, n: int = 0) -> list[tuple[str, dict, dict]]:
    message = {
        "message_id": str(uuid.uuid4()),
        "publisher_id": "failover.test",
        "event_type": "failover.event",
        "priority": "INFO",
        "payload": {"n": n},
        "timestamp": "2026-01-01 00:00:00.000000",
    }
    return [(f"{topic}.info", {}, message)]


def ports_of(pub: _rabbit_batch.BatchPublisher) -> list[int]:
    return [host.port for host in pub._hosts]


def test_hosts_are_shuffled_once_as_oslo_shuffles_them(topic):
    ports = [closed_port() for _ in range(4)]
    orders = {tuple(ports_of(publisher(url_of(ports), topic))) for _ in range(40)}
    assert len(orders) > 1  # 4! orders: forty the same would be 1 in 10^53
    assert all(sorted(order) == sorted(ports) for order in orders)
    # the same random draw as oslo's Connection: one random.shuffle
    random.seed(12)
    mine = ports_of(publisher(url_of(ports), topic))
    random.seed(12)
    theirs = list(ports)
    random.shuffle(theirs)
    assert mine == theirs
    # a single host is left alone (and random untouched)
    state = random.getstate()
    assert ports_of(publisher(url_of([LIVE]), topic)) == [LIVE]
    assert random.getstate() == state


def test_round_robin_goes_on_to_the_next_host_at_once(topic, connects, monkeypatch):
    monkeypatch.setattr(random, "shuffle", lambda hosts: None)  # URL order
    ports = [closed_port(), closed_port(), LIVE, closed_port()]
    pub = publisher(url_of(ports), topic)
    order = ports_of(pub)
    assert order == ports
    started = time.monotonic()
    result = pub.publish(one(topic))
    elapsed = time.monotonic() - started
    pub.close()
    assert (result.acked, result.refused, result.error) == ({0}, {}, None)
    # every closed port before the live one in the shuffled order, each once
    assert connects == order[: order.index(LIVE) + 1]
    assert elapsed < 2  # refused connects cost nothing: no sleep between


def test_every_host_once_then_the_error_and_the_round_goes_on(topic, connects):
    ports = [closed_port() for _ in range(3)]
    pub = publisher(url_of(ports), topic)
    order = ports_of(pub)
    first = pub.publish(one(topic))
    assert connects == order and first.acked == set()
    assert isinstance(first.error, _rabbit_batch._ConnectError)
    second = pub.publish(one(topic))
    # round-robin: the next round starts after the last host tried
    assert connects == order + order and second.error is not None


def test_shuffle_tries_each_host_once_in_a_random_order(topic, connects):
    ports = [closed_port() for _ in range(4)]
    not_round_robin = 0
    for _ in range(12):
        pub = publisher(url_of(ports), topic, kombu_failover_strategy="shuffle")
        connects.clear()
        result = pub.publish(one(topic))
        assert result.error is not None
        assert sorted(connects) == sorted(ports)  # each once, none again
        assert connects[0] == ports_of(pub)[0]  # starts where oslo starts
        # then a random host each time: round-robin would follow the list
        not_round_robin += connects != ports_of(pub)
    assert not_round_robin > 0  # all twelve in list order: 1 in 6^12
    # and with a live host among them it is reached in the same call
    ports[2] = LIVE
    pub = publisher(url_of(ports), topic, kombu_failover_strategy="shuffle")
    connects.clear()
    result = pub.publish(one(topic))
    pub.close()
    assert result.acked == {0} and connects[-1] == LIVE
    assert len(set(connects)) == len(connects)


def test_a_cut_connection_moves_to_the_next_host_in_the_same_call(
    topic, connects, monkeypatch
):
    monkeypatch.setattr(random, "shuffle", lambda hosts: None)  # URL order
    with FaultProxy() as proxy:
        pub = publisher(url_of([proxy.port, LIVE]), topic)
        assert pub.publish(one(topic, 1)).acked == {0}
        assert connects == [proxy.port]
        proxy.cut()  # the open connection is closed, new ones refused
        result = pub.publish(one(topic, 2) + one(topic, 3))
        pub.close()
    assert (result.acked, result.error) == ({0, 1}, None)
    assert connects == [proxy.port, LIVE]
    # what each host got: the broker has all three messages in the queue
    with amqp.Connection("127.0.0.1:5672") as conn:
        channel = conn.channel()
        got = []
        while (message := channel.basic_get(f"{topic}.info", no_ack=True)) is not None:
            got.append(message.body)
    payloads = [json.loads(json.loads(body)["oslo.message"])["payload"] for body in got]
    assert sorted(p["n"] for p in payloads) == [1, 2, 3]


def test_the_sender_never_backs_off_while_a_host_is_live(topic, monkeypatch):
    """Through the library: half the hosts closed, a cut proxy among them;
    everything arrives and the sender never retried (no backoff wait)."""
    monkeypatch.setattr(random, "shuffle", lambda hosts: None)  # URL order
    proxy = FaultProxy()
    ports = [closed_port(), proxy.port, closed_port(), LIVE]
    conf = make_conf(
        url_of(ports),
        topic,
        notifications__delivery_mode="background",
        notifications__sender_batch_size=50,
    )
    listen_conf = make_conf(RABBIT_URL, topic)
    listen_transport = oslo_messaging.get_notification_transport(listen_conf)
    collector = Collector()
    listener = _start_listener(listen_transport, topic, collector)
    nova_notifier.init(conf)
    try:
        notifier = nova_notifier.get_notifier("compute", "failover")
        for n in range(100):
            notifier.info({}, "failover.event", {"n": n})
        collector.wait_for(100, event_type="failover.event")
        proxy.cut()
        for n in range(100, 200):
            notifier.info({}, "failover.event", {"n": n})
        got = collector.wait_for(200, event_type="failover.event")
        assert {item.payload["n"] for item in got} == set(range(200))
        assert nova_notifier.stats()["retried"] == 0
    finally:
        nova_notifier.cleanup()
        proxy.close()
        _stop_listener(listener)
        listen_transport.cleanup()


def test_an_idle_connection_without_heartbeats_is_closed_by_the_broker(topic):
    """The other direction of the next test: with a 2 s heartbeat and no
    tick() the broker gives up on the connection."""
    pub = publisher(url_of([LIVE]), topic, heartbeat_timeout_threshold=2)
    assert pub.publish(one(topic)).acked == {0}
    conn = pub._conn
    assert conn is not None and conn.heartbeat == 2
    deadline = time.monotonic() + 30
    with pytest.raises((OSError, amqp.exceptions.ConnectionError)):
        while time.monotonic() < deadline:
            conn.drain_events(timeout=0.2)  # reads, never sends
    pub.close()


def test_the_sender_keeps_an_idle_connection_alive_with_heartbeats(topic, monkeypatch):
    """Idle for longer than the broker waits without heartbeats (2 x 2 s):
    the sender's tick() keeps the one connection alive."""
    opened: list[Any] = []
    original = _rabbit_batch.BatchPublisher._connect

    def connect(self):
        opened.append(self)
        return original(self)

    monkeypatch.setattr(_rabbit_batch.BatchPublisher, "_connect", connect)
    beats = []
    send_heartbeat = amqp.Connection.send_heartbeat
    monkeypatch.setattr(
        amqp.Connection,
        "send_heartbeat",
        lambda self: (beats.append(time.monotonic()), send_heartbeat(self)),
    )
    conf = make_conf(RABBIT_URL, topic, notifications__delivery_mode="background")
    conf.set_override("heartbeat_timeout_threshold", 2, group="oslo_messaging_rabbit")
    listen_transport = oslo_messaging.get_notification_transport(
        make_conf(RABBIT_URL, topic)
    )
    collector = Collector()
    listener = _start_listener(listen_transport, topic, collector)
    nova_notifier.init(conf)
    try:
        notifier = nova_notifier.get_notifier("compute", "idle")
        notifier.info({}, "idle.event", {"n": 1})
        collector.wait_for(1, event_type="idle.event")
        # poll: idle until heartbeats covered 8 s (twice the broker's patience)
        deadline = time.monotonic() + 30
        while not beats or beats[-1] - beats[0] < 8:
            assert time.monotonic() < deadline, f"heartbeats: {beats}"
            time.sleep(0.1)
        notifier.info({}, "idle.event", {"n": 2})
        collector.wait_for(2, event_type="idle.event")
        assert len(opened) == 1  # never reconnected
        assert nova_notifier.stats()["retried"] == 0
    finally:
        nova_notifier.cleanup()
        _stop_listener(listener)
        listen_transport.cleanup()
