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

import dataclasses
import json
import re
import struct
from collections.abc import Callable, Sequence
from typing import Any

import amqp
from amqp.serialization import dumps as _amqp_dumps
from oslo_config import cfg

from nova_notifier._direct import unique_hex
from nova_notifier._log import get_logger
from nova_notifier._messaging import oslo_messaging

LOG = get_logger(__name__)


class _ConnectError(Exception):
    """Connecting or logging in failed: never the fault of one message."""


# AMQP reply codes that refuse what was sent, whatever the retry: the
# broker will answer the same until an operator changes something.
_PERMANENT_CODES = {
    311: "CONTENT_TOO_LARGE",
    403: "ACCESS_REFUSED",
    404: "NOT_FOUND",
    406: "PRECONDITION_FAILED",
    501: "FRAME_ERROR",
    502: "SYNTAX_ERROR",
}
NACK_REASON = (
    "basic.nack: the broker refused the message (e.g. a full queue with "
    "x-overflow=reject-publish)"
)


def permanent_reason(exc: BaseException) -> str | None:
    """The broker's reason when ``exc`` is a permanent refusal, else None.

    Looks through the exception and what it wraps (``__cause__`` and
    ``__context__``, as oslo.messaging's ``MessageDeliveryFailure`` wraps
    the kombu/amqp error) for an AMQP error whose reply code refuses the
    content or a declaration (ACCESS_REFUSED, NOT_FOUND,
    PRECONDITION_FAILED, CONTENT_TOO_LARGE, frame errors) on an exchange,
    queue or basic method, or a nack. Connection losses, timeouts, a forced
    close, a refused login (a connection method), a cluster node that is
    away (NOT_FOUND "home node ... is down"), RESOURCE_LOCKED and anything
    else are transient: None.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _ConnectError):
            return None
        if isinstance(current, amqp.exceptions.MessageNacked):
            return NACK_REASON  # kombu's confirm_publish on oslo's path
        if isinstance(current, amqp.exceptions.AMQPError):
            return _refusal(current)
        current = current.__cause__ or current.__context__
    return None


# AMQP classes whose methods concern a message or its destination:
# exchange, queue, basic. A refusal of a connection method (class 0 or 10:
# a login refused, a vhost closed) says nothing about the message.
_MESSAGE_CLASSES = (40, 50, 60)
# NOT_FOUND texts that mean a cluster node is away, not a missing queue.
_NODE_DOWN = ("home node", "is down or inaccessible")


def _refusal(error: amqp.exceptions.AMQPError) -> str | None:
    code = getattr(error, "reply_code", None)
    if code not in _PERMANENT_CODES:
        return None
    method = getattr(error, "method_sig", None)
    if method is not None and (
        not isinstance(method, tuple) or not method or method[0] not in _MESSAGE_CLASSES
    ):
        return None
    text = getattr(error, "reply_text", "") or str(error)
    if code == 404 and any(words in text for words in _NODE_DOWN):
        return None
    if "Login was refused" in text:
        return None
    return f"{code} {text}"


# RabbitMQ's refusal of a message over max_message_size names the limit.
_MAX_SIZE_TEXT = re.compile(r"larger than configured max size (\d+)")


@dataclasses.dataclass
class PublishResult:
    """What became of each message of a batch, by its index in the batch.

    ``acked``: confirmed by the broker. ``refused``: refused for good (a
    nack, or a permanent error on its queue's or exchange's declaration),
    with the reason. ``error``: why the batch stopped early (the rest are
    unconfirmed: not known to be delivered), or None.
    """

    acked: set[int]
    refused: dict[int, str]
    error: BaseException | None = None


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


# What oslo.messaging's envelope puts around the message's JSON text: the
# text json.dumps gives for {"oslo.version": "2.0", "oslo.message": text}.
_ENVELOPE_HEAD = '{"oslo.version": "2.0", "oslo.message": '
_quote = json.encoder.encode_basestring_ascii
_json = json.JSONEncoder().encode


def unique_ids(count: int) -> list[str]:
    """``count`` texts as ``uuid.uuid4().hex`` gives them."""
    return [unique_hex() for _ in range(count)]


def encode(ctxt: dict[str, Any], message: dict[str, Any], unique_id: str) -> bytes:
    """The AMQP body oslo.messaging's messagingv2 driver sends: the message,
    its ``_unique_id`` and ``_context_*`` keys, as JSON text inside the 2.0
    envelope (byte for byte what ``json.dumps`` of the envelope gives)."""
    raw = dict(message)
    raw["_unique_id"] = unique_id
    for key, value in ctxt.items():
        raw[f"_context_{key}"] = value
    return f"{_ENVELOPE_HEAD}{_quote(_json(raw))}}}".encode("ascii")


# The content header's properties: the same for every message (py-amqp's
# serialisation of the amqp.Message oslo.messaging's driver would build).
_PROPERTIES = amqp.Message(
    b"",
    content_type="application/json",
    content_encoding="utf-8",
    delivery_mode=2,
    priority=0,
    application_headers={},
)._serialize_properties()
_FRAME_END = b"\xce"
# frame type, channel, size, then class, weight, body size
_HEADER = struct.Struct(">BHIHHQ")
_FRAME = struct.Struct(">BHI")
_BASIC_PUBLISH = struct.pack(">HH", 60, 40)


def _content_frames(channel: int, body: bytes, chunk_size: int) -> list[bytes]:
    """The frames py-amqp writes after basic.publish's method frame: the
    content header, then the body in frames of at most ``chunk_size``."""
    parts = [
        _HEADER.pack(2, channel, 12 + len(_PROPERTIES), 60, 0, len(body)),
        _PROPERTIES,
        _FRAME_END,
    ]
    for start in range(0, len(body), chunk_size):
        piece = body[start : start + chunk_size]
        parts.append(_FRAME.pack(3, channel, len(piece)))
        parts.append(piece)
        parts.append(_FRAME_END)
    return parts


class BatchPublisher:
    """Publishes ``(routing_key, ctxt, message)`` batches with confirms.

    Not thread-safe: the background sender is its only user. Any error
    closes the connection; the next batch reconnects, trying the URL's hosts
    in turn. Declarations go over a channel of their own, so a refused
    declaration never closes the channel messages are confirmed on.
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
        self._declare_channel: Any = None
        self._exchange_refused: str | None = None
        self._declared: set[str] = set()
        self._published = 0  # delivery tag of the last message published
        self._unconfirmed: set[int] = set()  # published, not yet acked
        self._nacked_tags: set[int] = set()
        self._nacked = False
        self._methods: dict[str, bytes] = {}  # routing key -> method frame
        # A body this big may be over the broker's max_message_size, which
        # closes the channel and loses the confirms of what went before it:
        # it waits for those first. Lowered to the limit once the broker
        # named it.
        self._big = 65536

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
        try:
            conn.connect()
        except Exception as exc:
            raise _ConnectError(f"cannot connect to {host.hostname}: {exc}") from exc
        channel = conn.channel()
        channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        self._channel = channel
        self._declare_channel = None
        self._declared = set()
        self._published = 0
        self._unconfirmed = set()
        self._nacked_tags = set()
        self._nacked = False
        self._methods = {}
        self._exchange_refused = self._declare_exchange()
        return channel

    def close(self) -> None:
        """Drop the connection (reconnects on the next batch)."""
        conn, self._conn, self._channel = self._conn, None, None
        self._declare_channel = None
        if conn is not None:
            try:
                conn.collect()  # no handshake: the socket may be dead
            except Exception as exc:
                LOG.debug("closing the publisher connection: %s", exc)

    def _settle(self, delivery_tag: int, multiple: bool) -> set[int]:
        # Confirms may come out of order; "multiple" covers every tag up to it.
        if multiple:
            settled = {t for t in self._unconfirmed if t <= delivery_tag}
        else:
            settled = {delivery_tag} & self._unconfirmed
        self._unconfirmed -= settled
        return settled

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._nacked = True
        self._nacked_tags |= self._settle(delivery_tag, multiple)

    # -- declarations ------------------------------------------------------

    def _declaring(self, operation: Any) -> str | None:
        """Run ``operation(channel)`` on the declaration channel.

        Returns None, or the broker's reason when it refused for good (the
        broker then closed that channel: the next call opens another).
        Anything else (a lost connection) raises.
        """
        assert self._conn is not None
        if self._declare_channel is None:
            self._declare_channel = self._conn.channel()
        try:
            operation(self._declare_channel)
        except amqp.exceptions.ChannelError as exc:
            self._declare_channel = None
            reason = permanent_reason(exc)
            if reason is None:
                raise
            return reason
        return None

    def _declare_exchange(self) -> str | None:
        """Declare ``control_exchange`` as oslo.messaging does; the refusal, if any.

        An exchange that exists with another type or durability is refused
        (PRECONDITION_FAILED): publishing to it would route differently from
        what listeners expect, so messages are not sent to it.
        """
        return self._declaring(
            lambda ch: ch.exchange_declare(
                self._exchange,
                "topic",
                durable=self._durable,
                auto_delete=self._auto_delete,
            )
        )

    def _declare(self, routing_key: str) -> str | None:
        """Make sure the queue oslo.messaging declares before its first send
        exists and is bound, so notifications published before any listener
        exists are kept. Returns the broker's refusal, if any.

        A queue that already exists is used as it is: a consumer that
        declared it with arguments of its own (``x-max-length``, a
        dead-letter exchange, a queue type) owns it, and declaring it again
        with oslo.messaging's arguments would only fail with
        PRECONDITION_FAILED. So the queue is checked (passive declare)
        first, declared only when missing, and bound in both cases.
        """
        if routing_key in self._declared:
            return None
        exists = (
            self._declaring(lambda ch: ch.queue_declare(routing_key, passive=True))
            is None
        )
        if not exists:
            refused = self._declaring(
                lambda ch: ch.queue_declare(
                    routing_key, durable=self._durable, auto_delete=self._auto_delete
                )
            )
            if refused is not None and not refused.startswith("406 "):
                return refused  # 406: declared meanwhile by someone else
        refused = self._declaring(
            lambda ch: ch.queue_bind(routing_key, self._exchange, routing_key)
        )
        if refused is None:
            self._declared.add(routing_key)
        return refused

    # -- publishing --------------------------------------------------------

    @staticmethod
    def body(ctxt: dict[str, Any], message: dict[str, Any]) -> str:
        """The AMQP body oslo.messaging's messagingv2 driver would send."""
        return encode(ctxt, message, unique_ids(1)[0]).decode("ascii")

    def _method_frame(self, channel: int, routing_key: str) -> bytes:
        """The basic.publish method frame for ``routing_key`` (cached)."""
        frame = self._methods.get(routing_key)
        if frame is None:
            args = _BASIC_PUBLISH + _amqp_dumps(
                "Bssbb", (0, self._exchange, routing_key, False, False)
            )
            frame = _FRAME.pack(1, channel, len(args)) + args + _FRAME_END
            self._methods[routing_key] = frame
        return frame

    def _wait_confirms(self) -> None:
        # Every earlier batch was settled before this one started: what is
        # unconfirmed belongs to this batch.
        assert self._conn is not None
        while self._unconfirmed:
            self._conn.drain_events(timeout=self._timeout)

    # Bytes of frames gathered before one write to the socket: the broker
    # starts on the first messages while the rest are being encoded.
    _WRITE_SIZE = 65536

    def publish(
        self,
        batch: Sequence[tuple[str, dict[str, Any], dict[str, Any]]],
        bodies: Sequence[bytes | None] | None = None,
        idle: Callable[[], None] | None = None,
        pause: Callable[[], None] | None = None,
    ) -> PublishResult:
        """Publish every item, then wait until the broker confirmed them all.

        ``bodies``, when given, are the items' bodies already encoded
        (:func:`encode`); ``idle`` is called once everything is written,
        before the wait for the confirms (the sender prepares its next
        batch meanwhile); what it raises is logged, not the batch's fault.
        ``pause`` is called after each message (the sender lets other
        threads have the GIL).

        Never raises: the result says, per item, whether the broker
        confirmed it, refused it for good (nack, refused declaration) or
        left it unconfirmed because the batch stopped on ``error``. Only the
        unconfirmed and refused ones need sending again.
        """
        refused: dict[int, str] = {}
        tags: dict[int, int] = {}  # delivery tag -> index in the batch
        error: BaseException | None = None
        try:
            channel = self._channel if self._channel is not None else self._connect()
            if self._exchange_refused is not None:
                exchange_refused = self._exchange_refused
                self.close()  # declare again on the next attempt
                return PublishResult(
                    set(), dict.fromkeys(range(len(batch)), exchange_refused)
                )
            refusals = {key: self._declare(key) for key, _, _ in batch}
            assert self._conn is not None
            write = self._conn.transport.write
            channel_id = channel.channel_id
            chunk_size = self._conn.frame_max - 8
            pending: list[bytes] = []
            size = 0
            ids = unique_ids(len(batch)) if bodies is None else None
            for index, (routing_key, ctxt, message) in enumerate(batch):
                reason = refusals[routing_key]
                if reason is not None:
                    refused[index] = reason
                    continue
                body = None if bodies is None else bodies[index]
                if body is None:
                    uid = ids[index] if ids is not None else unique_ids(1)[0]
                    body = encode(ctxt, message, uid)
                if len(body) >= self._big:
                    if pending:
                        write(b"".join(pending))
                        pending, size = [], 0
                    self._wait_confirms()
                pending.append(self._method_frame(channel_id, routing_key))
                pending.extend(_content_frames(channel_id, body, chunk_size))
                self._published += 1
                self._unconfirmed.add(self._published)
                tags[self._published] = index
                size += len(body)
                if pause is not None:
                    pause()
                if size >= self._WRITE_SIZE:
                    write(b"".join(pending))
                    pending, size = [], 0
            if pending:
                write(b"".join(pending))
            self._conn.bytes_sent += 1  # as py-amqp counts its writes
            if idle is not None:
                try:
                    idle()
                except Exception:
                    LOG.exception("nova_notifier: preparing the next batch")
            self._wait_confirms()
        except Exception as exc:
            error = exc
            self.close()
            limit = _MAX_SIZE_TEXT.search(str(exc))
            if limit:
                self._big = min(self._big, int(limit.group(1)))
        unconfirmed = self._unconfirmed
        acked = {
            index
            for tag, index in tags.items()
            if tag not in unconfirmed and tag not in self._nacked_tags
        }
        for tag, index in tags.items():
            if tag in self._nacked_tags:
                refused[index] = NACK_REASON
        self._nacked_tags -= tags.keys()
        self._unconfirmed -= tags.keys()
        self._nacked = False
        return PublishResult(acked, refused, error)
