"""Publishing to RabbitMQ in batches, with one wait for the broker's confirms.

oslo.messaging's rabbit driver waits for a publisher confirm after every
message, which caps a sender at one broker round trip per notification. The
background sender uses this publisher instead for ``rabbit://`` transports:
it publishes a batch on a confirm-mode channel, then waits once until the
broker has confirmed every message of the batch. What goes on the wire is
what oslo.messaging sends (exchange ``control_exchange``, routing key
``<topic>.<priority>``, the 2.0 envelope with ``_context_*`` keys and a
``_unique_id``), and the queue named after the routing key is declared as
oslo.messaging declares it, so listeners cannot tell the difference.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import amqp
from oslo_config import cfg

from nova_notifier._log import get_logger
from nova_notifier._messaging import oslo_messaging

LOG = get_logger(__name__)


class PublishError(Exception):
    """The broker refused (nack) or did not confirm a batch in time."""


def supports(conf: cfg.ConfigOpts, transport_url: str, version: float) -> bool:
    """Whether this publisher can stand in for oslo.messaging's driver.

    Plain ``rabbit://`` with the 2.0 envelope and classic queues only: TLS,
    quorum or stream queues and the 1.0 format are left to oslo.messaging.
    """
    if not transport_url.startswith("rabbit://") or version != 2.0:
        return False
    if "ssl=" in transport_url:
        return False
    rabbit = getattr(conf, "oslo_messaging_rabbit", None)
    for option in (
        "ssl",
        "rabbit_quorum_queue",
        "rabbit_stream_fanout",
        "rabbit_ha_queues",
    ):
        try:
            if getattr(rabbit, option, False):
                return False
        except cfg.NoSuchOptError:
            continue
    return True


class BatchPublisher:
    """Publishes ``(routing_key, ctxt, message)`` batches with confirms.

    Not thread-safe: the background sender is its only user. Any error
    closes the connection; the next batch reconnects, trying the URL's hosts
    in turn.
    """

    def __init__(
        self, conf: cfg.ConfigOpts, transport_url: str, timeout: float
    ) -> None:
        url = oslo_messaging.TransportURL.parse(conf, transport_url)
        # A URL without a host ("rabbit://", oslo.messaging's default) means
        # guest@localhost:5672, as oslo.messaging's own driver reads it.
        self._hosts = url.hosts or [
            oslo_messaging.TransportHost("localhost", 5672, "guest", "guest")
        ]
        self._vhost = url.virtual_host or "/"
        self._next_host = 0
        self._timeout = timeout
        self._exchange = conf.control_exchange
        rabbit = getattr(conf, "oslo_messaging_rabbit", None)
        self._durable = bool(getattr(rabbit, "amqp_durable_queues", False))
        self._auto_delete = bool(getattr(rabbit, "amqp_auto_delete", False))
        self._conn: amqp.Connection | None = None
        self._channel: Any = None
        self._declared: set[str] = set()
        self._published = 0  # delivery tag of the last message published
        self._unconfirmed: set[int] = set()  # published, not yet acked
        self._nacked = False

    # -- connection --------------------------------------------------------

    def _connect(self) -> Any:
        host = self._hosts[self._next_host % len(self._hosts)]
        self._next_host += 1
        conn = amqp.Connection(
            host=f"{host.hostname}:{host.port or 5672}",
            userid=host.username or "guest",
            password=host.password or "guest",
            virtual_host=self._vhost,
            connect_timeout=self._timeout,
            read_timeout=self._timeout,
            write_timeout=self._timeout,
            heartbeat=0,
        )
        self._conn = conn  # so that close() releases it if what follows fails
        conn.connect()
        channel = conn.channel()
        channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        channel.exchange_declare(
            self._exchange,
            "topic",
            durable=self._durable,
            auto_delete=self._auto_delete,
        )
        self._channel = channel
        self._declared = set()
        self._published = 0
        self._unconfirmed = set()
        self._nacked = False
        return channel

    def close(self) -> None:
        """Drop the connection (reconnects on the next batch)."""
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                conn.collect()  # no handshake: the socket may be dead
            except Exception as exc:
                LOG.debug("closing the publisher connection: %s", exc)

    def _settle(self, delivery_tag: int, multiple: bool) -> None:
        # Confirms may come out of order; "multiple" covers every tag up to it.
        if multiple:
            self._unconfirmed = {t for t in self._unconfirmed if t > delivery_tag}
        else:
            self._unconfirmed.discard(delivery_tag)

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._nacked = True
        self._settle(delivery_tag, multiple)

    # -- publishing --------------------------------------------------------

    def _declare(self, channel: Any, routing_key: str) -> None:
        """Declare the queue oslo.messaging declares before its first send,
        so notifications published before any listener exists are kept."""
        if routing_key in self._declared:
            return
        channel.queue_declare(
            routing_key, durable=self._durable, auto_delete=self._auto_delete
        )
        channel.queue_bind(routing_key, self._exchange, routing_key)
        self._declared.add(routing_key)

    @staticmethod
    def body(ctxt: dict[str, Any], message: dict[str, Any]) -> str:
        """The AMQP body oslo.messaging's messagingv2 driver would send."""
        raw = dict(message)
        raw["_unique_id"] = uuid.uuid4().hex
        for key, value in ctxt.items():
            raw[f"_context_{key}"] = value
        return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(raw)})

    def publish(
        self, batch: Sequence[tuple[str, dict[str, Any], dict[str, Any]]]
    ) -> None:
        """Publish every item, then wait until the broker confirmed them all.

        Raises on any failure (connection, nack, timeout); the caller retries
        the whole batch, so a message may arrive twice, never not at all.
        """
        try:
            channel = self._channel if self._channel is not None else self._connect()
            self._nacked = False
            for routing_key, ctxt, message in batch:
                self._declare(channel, routing_key)
                channel.basic_publish(
                    amqp.Message(
                        self.body(ctxt, message),
                        content_type="application/json",
                        content_encoding="utf-8",
                        delivery_mode=2,
                        priority=0,
                        application_headers={},
                    ),
                    exchange=self._exchange,
                    routing_key=routing_key,
                )
                self._published += 1
                self._unconfirmed.add(self._published)
            assert self._conn is not None
            while self._unconfirmed:
                self._conn.drain_events(timeout=self._timeout)
            if self._nacked:
                raise PublishError("the broker refused (nack) a notification")
        except Exception:
            self.close()
            raise
