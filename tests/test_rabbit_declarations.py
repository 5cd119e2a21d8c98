"""The batch publisher declares and publishes what oslo.messaging does.

For each ``[oslo_messaging_rabbit]`` option that changes what oslo.messaging
18.3's rabbit driver declares for a notification, a real oslo ``Notifier``
(driver messagingv2) and the batch publisher each send one notification to
the broker on 127.0.0.1:5672, on an exchange and topic of their own, while
py-amqp's ``Channel.exchange_declare``/``queue_declare``/``queue_bind`` are
recorded: both sides must ask the broker the same, and what they ask is
checked against the table below. The message properties are compared as
the broker hands the two messages out.
"""

from __future__ import annotations

import contextlib
import inspect
import uuid
from collections.abc import Iterator
from typing import Any

import amqp
import oslo_messaging
import pytest

from nova_notifier import _rabbit_batch
from nova_notifier.tools.amqp_queues import delete_queues
from tests.conftest import (
    RABBIT_URL,
    Collector,
    _start_listener,
    _stop_listener,
    broker_available,
    make_conf,
)

pytestmark = pytest.mark.broker

QUORUM_LIMITS = {
    "rabbit_quorum_queue": True,
    "rabbit_quorum_delivery_limit": 5,
    "rabbit_quorum_max_memory_length": 100,
    "rabbit_quorum_max_memory_bytes": 1048576,
}
STREAM_FANOUT = {
    "rabbit_stream_fanout": True,
    "rabbit_qos_prefetch_count": 10,
    "rabbit_transient_quorum_queue": True,
}
# option values -> (exchange durable, exchange and queue auto_delete,
# queue durable, queue arguments) that oslo.messaging 18.3.1 declares
CASES: dict[str, tuple[dict[str, Any], tuple[bool, bool, bool, dict[str, Any]]]] = {
    "classic": ({}, (False, False, False, {})),
    "durable": ({"amqp_durable_queues": True}, (True, False, True, {})),
    "auto_delete": ({"amqp_auto_delete": True}, (False, True, False, {})),
    "quorum": (
        {"rabbit_quorum_queue": True},
        (True, False, True, {"x-queue-type": "quorum"}),
    ),
    "quorum_limits": (
        QUORUM_LIMITS,
        (
            True,
            False,
            True,
            {
                "x-queue-type": "quorum",
                "x-delivery-limit": 5,
                "x-max-in-memory-length": 100,
                "x-max-in-memory-bytes": 1048576,
            },
        ),
    ),
    "quorum_and_durable": (
        {"rabbit_quorum_queue": True, "amqp_durable_queues": True},
        (True, False, True, {"x-queue-type": "quorum"}),
    ),
    "ha": ({"rabbit_ha_queues": True}, (False, False, False, {"x-ha-policy": "all"})),
    "ha_durable": (
        {"rabbit_ha_queues": True, "amqp_durable_queues": True},
        (True, False, True, {"x-ha-policy": "all"}),
    ),
    # reply and fanout queues only: the notification queue gets no x-expires
    "transient_ttl": ({"rabbit_transient_queues_ttl": 60}, (False, False, False, {})),
    # fanout queues only: the notification queue stays classic
    "stream_fanout": (STREAM_FANOUT, (False, False, False, {})),
}
METHODS = ("exchange_declare", "queue_declare", "queue_bind")


@pytest.fixture(autouse=True)
def _broker() -> None:
    if not broker_available():
        pytest.fail("RabbitMQ is not answering on 127.0.0.1:5672 (run .ci/run)")


@contextlib.contextmanager
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict]]]:
    """Every exchange_declare/queue_declare/queue_bind py-amqp sends, with
    all its arguments (defaults filled in, no arguments as {})."""
    calls: list[tuple[str, dict]] = []
    for name in METHODS:
        original = getattr(amqp.Channel, name)
        signature = inspect.signature(original)

        def wrapper(self, *args, _name=name, _orig=original, _sig=signature, **kw):
            bound = _sig.bind(self, *args, **kw)
            bound.apply_defaults()
            record = dict(bound.arguments)
            del record["self"]
            record.pop("argsig", None)
            if record.get("arguments") is None:
                record["arguments"] = {}
            calls.append((_name, record))
            return _orig(self, *args, **kw)

        monkeypatch.setattr(amqp.Channel, name, wrapper)
    try:
        yield calls
    finally:
        monkeypatch.undo()


def _asked(calls: list[tuple[str, dict]], topic: str) -> set[tuple[str, str]]:
    """What was declared (not merely checked: passive), topic names made
    alike, as comparable texts."""
    out = set()
    for method, record in calls:
        if record.get("passive"):
            continue
        text = repr(sorted(record.items())).replace(topic, "TOPIC")
        out.add((method, text))
    return out


def _expected(exchange: str, want: tuple[bool, bool, bool, dict]) -> set:
    ex_durable, auto_delete, q_durable, arguments = want
    return {
        (
            "exchange_declare",
            repr(
                sorted(
                    {
                        "exchange": exchange,
                        "type": "topic",
                        "passive": False,
                        "durable": ex_durable,
                        "auto_delete": auto_delete,
                        "arguments": {},
                        "nowait": False,
                    }.items()
                )
            ),
        ),
        (
            "queue_declare",
            repr(
                sorted(
                    {
                        "queue": "TOPIC.info",
                        "passive": False,
                        "durable": q_durable,
                        "exclusive": False,
                        "auto_delete": auto_delete,
                        "nowait": False,
                        "arguments": arguments,
                    }.items()
                )
            ),
        ),
        (
            "queue_bind",
            repr(
                sorted(
                    {
                        "queue": "TOPIC.info",
                        "exchange": exchange,
                        "routing_key": "TOPIC.info",
                        "nowait": False,
                        "arguments": {},
                    }.items()
                )
            ),
        ),
    }


def _conf(topic: str, exchange: str, options: dict[str, Any], url: str = RABBIT_URL):
    conf = make_conf(url, topic)
    conf.set_override("control_exchange", exchange)
    for name, value in options.items():
        conf.set_override(name, value, group="oslo_messaging_rabbit")
    return conf


def _get(queue: str) -> amqp.Message:
    """Take the one message waiting in ``queue`` off the broker."""
    with amqp.Connection("127.0.0.1:5672") as conn:
        channel = conn.channel()
        message = channel.basic_get(queue, no_ack=True)
    assert message is not None, f"nothing in {queue}"
    return message


def _delete_exchange(name: str) -> None:
    with amqp.Connection("127.0.0.1:5672") as conn:
        conn.channel().exchange_delete(name)


def _message(publisher_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A notification as the messagingv2 driver is handed it."""
    return {
        "message_id": str(uuid.uuid4()),
        "publisher_id": publisher_id,
        "event_type": "decl.event",
        "priority": "INFO",
        "payload": payload,
        "timestamp": "2026-01-01 00:00:00.000000",
    }


def _oslo_send(conf, topic: str, payload: dict[str, Any]) -> None:
    """One notification through oslo.messaging's own driver; raises on failure."""
    transport = oslo_messaging.get_notification_transport(conf)
    try:
        transport._send_notification(
            oslo_messaging.Target(topic=f"{topic}.info"),
            {"user": "u"},
            _message("decl.oslo", payload),
            version=2.0,
            retry=0,
        )
    finally:
        transport.cleanup()


def _ours(conf, url: str = RABBIT_URL) -> _rabbit_batch.BatchPublisher:
    assert _rabbit_batch.supports(conf, url, 2.0)
    return _rabbit_batch.BatchPublisher(conf, url, timeout=5)


def _our_send(conf, topic: str, payload: dict[str, Any], url: str = RABBIT_URL):
    publisher = _ours(conf, url)
    message = _message("decl.ours", payload)
    try:
        return publisher.publish([(f"{topic}.info", {"user": "u"}, message)])
    finally:
        publisher.close()


@pytest.mark.parametrize("case", sorted(CASES))
def test_declarations_and_properties_are_oslos(case, monkeypatch):
    options, want = CASES[case]
    exchange = f"nn-decl-{uuid.uuid4().hex[:10]}"
    theirs_topic = f"nn-decl-o-{uuid.uuid4().hex[:10]}"
    ours_topic = f"nn-decl-p-{uuid.uuid4().hex[:10]}"
    try:
        with recording(monkeypatch) as calls:
            _oslo_send(_conf(theirs_topic, exchange, options), theirs_topic, {"n": 1})
        theirs = _asked(calls, theirs_topic)
        with recording(monkeypatch) as calls:
            result = _our_send(
                _conf(ours_topic, exchange, options), ours_topic, {"n": 1}
            )
        ours = _asked(calls, ours_topic)
        assert (result.acked, result.refused, result.error) == ({0}, {}, None)
        assert ours == theirs
        assert theirs == _expected(exchange, want)
        # the same properties as the broker hands the messages out
        got_theirs = _get(f"{theirs_topic}.info")
        got_ours = _get(f"{ours_topic}.info")
        assert got_ours.properties == got_theirs.properties
        # a quorum queue counts deliveries in a header of its own
        quorum = want[3].get("x-queue-type") == "quorum"
        assert got_theirs.properties == {
            "content_type": "application/json",
            "content_encoding": "utf-8",
            "application_headers": {"x-delivery-count": 0} if quorum else {},
            "delivery_mode": 2,
            "priority": 0,
        }
    finally:
        delete_queues(RABBIT_URL, [f"{theirs_topic}.info", f"{ours_topic}.info"])
        _delete_exchange(exchange)


def test_options_in_the_url_query_count_as_oslo_reads_them(monkeypatch):
    """``?rabbit_quorum_queue=true`` in the transport URL overrides the
    configuration for both; an option oslo does not know leaves the batch to
    oslo (which refuses the URL)."""
    exchange = f"nn-decl-{uuid.uuid4().hex[:10]}"
    topic = f"nn-decl-q-{uuid.uuid4().hex[:10]}"
    url = RABBIT_URL.rstrip("/") + "/?rabbit_quorum_queue=true"
    try:
        with recording(monkeypatch) as calls:
            result = _our_send(_conf(topic, exchange, {}, url), topic, {"n": 1}, url)
        assert result.acked == {0}
        assert _asked(calls, topic) == _expected(exchange, CASES["quorum"][1])
    finally:
        delete_queues(RABBIT_URL, [f"{topic}.info"])
        _delete_exchange(exchange)
    bad = RABBIT_URL.rstrip("/") + "/?no_such_option=1"
    assert not _rabbit_batch.supports(_conf(topic, exchange, {}, bad), bad, 2.0)


@pytest.mark.parametrize(
    "options, fast",
    [
        ({}, True),
        ({"rabbit_quorum_queue": True}, True),
        ({"rabbit_ha_queues": True}, True),
        ({"ssl": True}, True),
        (STREAM_FANOUT, True),
        # what oslo's driver refuses stays oslo's to refuse
        ({"rabbit_quorum_queue": True, "rabbit_ha_queues": True}, False),
        ({"rabbit_stream_fanout": True, "rabbit_qos_prefetch_count": 10}, False),
        ({"ssl": True, "ssl_version": "nonsense"}, False),
        # oslo compresses the body and says so in a header
        ({"kombu_compression": "gzip"}, False),
    ],
)
def test_fast_path_serves_every_queue_type_and_tls(options, fast):
    conf = _conf("t", "e", options)
    assert _rabbit_batch.supports(conf, RABBIT_URL, 2.0) is fast
    assert not _rabbit_batch.supports(conf, RABBIT_URL, 1.0)


QUORUM = {"rabbit_quorum_queue": True, "rabbit_quorum_delivery_limit": 3}


@contextlib.contextmanager
def quorum_topic(prefix: str) -> Iterator[tuple[str, Any]]:
    """A fresh topic on an exchange of its own, and a quorum-queue conf
    factory for it; its queue and exchange are deleted afterwards."""
    exchange = f"nn-decl-{uuid.uuid4().hex[:10]}"
    topic = f"nn-decl-{prefix}-{uuid.uuid4().hex[:10]}"
    try:
        yield topic, lambda: _conf(topic, exchange, QUORUM)
    finally:
        delete_queues(RABBIT_URL, [f"{topic}.info"])
        _delete_exchange(exchange)


@contextlib.contextmanager
def listening(conf, topic: str) -> Iterator[Collector]:
    """A real oslo.messaging notification listener on ``topic``."""
    transport = oslo_messaging.get_notification_transport(conf)
    collector = Collector()
    listener = _start_listener(transport, topic, collector)
    try:
        yield collector
    finally:
        _stop_listener(listener)
        transport.cleanup()


def _check_received(collector: Collector, who: str) -> None:
    [got] = [i for i in collector.wait_for(2) if i.publisher_id == who]
    assert (got.event_type, got.priority, got.payload) == (
        "decl.event",
        "INFO",
        {"from": who},
    )
    assert got.ctxt["user"] == "u"


def _is_quorum(queue: str) -> bool:
    """Whether ``queue`` is a quorum queue: a classic re-declaration of a
    quorum queue is refused (PRECONDITION_FAILED), of a classic one not."""
    with amqp.Connection("127.0.0.1:5672") as conn:
        try:
            conn.channel().queue_declare(
                queue, durable=True, arguments={"x-queue-type": "classic"}
            )
        except amqp.exceptions.PreconditionFailed:
            return True
    return False


def test_oslo_declares_the_quorum_queue_then_we_publish_to_it():
    with quorum_topic("a") as (topic, conf):
        _oslo_send(conf(), topic, {"from": "decl.oslo"})
        assert _is_quorum(f"{topic}.info")
        result = _our_send(conf(), topic, {"from": "decl.ours"})
        assert (result.acked, result.refused, result.error) == ({0}, {}, None)
        with listening(conf(), topic) as collector:
            _check_received(collector, "decl.oslo")
            _check_received(collector, "decl.ours")


def test_we_declare_the_quorum_queue_then_oslo_publishes_and_listens():
    with quorum_topic("b") as (topic, conf):
        result = _our_send(conf(), topic, {"from": "decl.ours"})
        assert (result.acked, result.refused, result.error) == ({0}, {}, None)
        assert _is_quorum(f"{topic}.info")
        # oslo re-declares it with its own arguments: refused if they differed
        _oslo_send(conf(), topic, {"from": "decl.oslo"})
        with listening(conf(), topic) as collector:
            _check_received(collector, "decl.oslo")
            _check_received(collector, "decl.ours")


def test_an_existing_queue_is_used_as_it_is_where_oslo_is_refused():
    """The deliberate difference: a classic queue some consumer declared
    stays classic and gets the message, though quorum is configured; oslo
    re-declares it as quorum and is refused (PRECONDITION_FAILED)."""
    with quorum_topic("c") as (topic, conf):
        with amqp.Connection("127.0.0.1:5672") as conn:
            conn.channel().queue_declare(f"{topic}.info", durable=True)
        result = _our_send(conf(), topic, {"from": "decl.ours"})
        assert (result.acked, result.refused, result.error) == ({0}, {}, None)
        assert not _is_quorum(f"{topic}.info")
        assert "decl.ours" in _get(f"{topic}.info").body
        with pytest.raises(Exception) as raised:
            _oslo_send(conf(), topic, {"from": "decl.oslo"})
        assert "PRECONDITION_FAILED" in repr(raised.value) + repr(
            raised.value.__cause__ or raised.value.__context__
        )
