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
import itertools
import json
import os
import random
import re
import ssl
import struct
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import amqp
from amqp.serialization import dumps as _amqp_dumps
from oslo_config import cfg
from oslo_utils import netutils

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

    True for ``rabbit://`` with the 2.0 envelope, whatever the queue type
    (classic, quorum, HA), TLS or not, one host or several. Left to
    oslo.messaging (False): the 1.0 format, ``kombu_compression`` (oslo
    compresses the body and names the method in a header) and the option
    combinations oslo's driver refuses (quorum with HA queues, stream fanout
    without its prerequisites, an unknown ``ssl_version`` or URL query
    option), so that the error the operator sees is oslo's.
    """
    if not transport_url.startswith("rabbit://") or version != 2.0:
        return False
    try:
        settings = _Settings.read(conf, transport_url)
    except (RuntimeError, ValueError, cfg.Error) as exc:
        LOG.debug("nova_notifier: batches left to oslo.messaging: %s", exc)
        return False
    return not settings.compression


def _rabbit_options(conf: cfg.ConfigOpts, url: Any) -> Any:
    """``[oslo_messaging_rabbit]`` as oslo.messaging's rabbit driver reads it.

    The group's options are registered as the driver registers them (a
    no-op when the transport already did), and an option named in the
    transport URL's query (``?ssl=1``) overrides the configured value, as
    the driver's ``ConfigOptsProxy`` does. Raises ``cfg.Error`` for a query
    option the driver does not know.
    """
    from oslo_messaging._drivers import amqp as rpc_amqp
    from oslo_messaging._drivers import common as rpc_common
    from oslo_messaging._drivers import impl_rabbit

    group = cfg.OptGroup(name="oslo_messaging_rabbit", title="RabbitMQ driver options")
    conf.register_group(group)
    conf.register_opts(impl_rabbit.rabbit_opts, group=group)
    conf.register_opts(rpc_amqp.amqp_opts, group=group)
    return rpc_common.ConfigOptsProxy(conf, url, group.name).oslo_messaging_rabbit


def _queue_arguments(rabbit: Any) -> dict[str, Any]:
    """The arguments oslo.messaging 18.3's ``notify_send`` declares the queue
    named after the routing key with (``_get_queue_arguments`` as
    ``_publish_and_creates_default_queue`` calls it).

    ``x-ha-policy: all`` with ``rabbit_ha_queues``; ``x-queue-type:
    quorum`` with ``rabbit_quorum_queue``, plus ``x-delivery-limit``,
    ``x-max-in-memory-length`` and ``x-max-in-memory-bytes`` for the quorum
    options that are not 0. Never ``x-expires`` (oslo passes a TTL of 0 for
    this queue: ``rabbit_transient_queues_ttl`` is for reply and fanout
    queues) nor a stream type (``rabbit_stream_fanout`` is for fanout
    queues). Raises RuntimeError for quorum and HA together, as oslo does.
    """
    if rabbit.rabbit_quorum_queue and rabbit.rabbit_ha_queues:
        raise RuntimeError(
            "Configuration Error: rabbit_quorum_queue and rabbit_ha_queues "
            "both enabled, queue type is quorum or HA (mirrored) not both"
        )
    args: dict[str, Any] = {}
    if rabbit.rabbit_ha_queues:
        args["x-ha-policy"] = "all"
    if rabbit.rabbit_quorum_queue:
        args["x-queue-type"] = "quorum"
        for option, argument in (
            ("rabbit_quorum_delivery_limit", "x-delivery-limit"),
            ("rabbit_quorum_max_memory_length", "x-max-in-memory-length"),
            ("rabbit_quorum_max_memory_bytes", "x-max-in-memory-bytes"),
        ):
            value = getattr(rabbit, option)
            if value:
                args[argument] = value
    return args


def _check_stream_fanout(rabbit: Any) -> None:
    """Raise oslo's RuntimeError when ``rabbit_stream_fanout`` lacks what
    oslo's ``Connection`` requires with it (it then sends nothing)."""
    if not rabbit.rabbit_stream_fanout:
        return
    if rabbit.rabbit_qos_prefetch_count <= 0:
        raise RuntimeError(
            "Configuration Error: rabbit_stream_fanout need "
            "rabbit_qos_prefetch_count to be set to a value greater than 0."
        )
    if not rabbit.rabbit_transient_quorum_queue:
        raise RuntimeError(
            "Configuration Error: rabbit_stream_fanout need "
            "rabbit_transient_quorum_queue to be set to true."
        )


def _ssl_options(rabbit: Any, hosts: Sequence[Any]) -> bool | dict[str, Any]:
    """What oslo's driver passes to kombu, and kombu to py-amqp, as ``ssl``
    (``Connection._fetch_ssl_params``): False without TLS; True for TLS with
    py-amqp's defaults (the system's CAs); else the ``ssl_version``,
    ``keyfile``, ``certfile`` and, with ``ssl_ca_file``, ``ca_certs``,
    ``cert_reqs=CERT_REQUIRED`` and ``server_hostname`` (the URL's host when
    it has one, else None: the host connected to, see ``_connect``).
    Raises RuntimeError for an ``ssl_version`` oslo does not know.
    """
    if not rabbit.ssl:
        return False
    from oslo_messaging._drivers import impl_rabbit

    params: dict[str, Any] = {}
    if rabbit.ssl_version:
        params["ssl_version"] = impl_rabbit.Connection.validate_ssl_version(
            rabbit.ssl_version
        )
    if rabbit.ssl_key_file:
        params["keyfile"] = rabbit.ssl_key_file
    if rabbit.ssl_cert_file:
        params["certfile"] = rabbit.ssl_cert_file
    if rabbit.ssl_ca_file:
        params["ca_certs"] = rabbit.ssl_ca_file
        params["cert_reqs"] = ssl.CERT_REQUIRED
        params["server_hostname"] = hosts[0].hostname if len(hosts) == 1 else None
    return params or True


@dataclasses.dataclass(frozen=True)
class _Settings:
    """What oslo.messaging's rabbit driver does with the configuration, for
    notifications: where and how it connects, and what it declares."""

    hosts: list[Any]  # oslo_messaging.TransportHost, in the URL's order
    virtual_host: str
    exchange: str
    durable: bool  # exchange and queue: amqp_durable_queues or quorum
    auto_delete: bool  # exchange and queue: amqp_auto_delete
    queue_arguments: dict[str, Any]
    ssl: bool | dict[str, Any]
    login_method: str
    heartbeat: int  # heartbeat_timeout_threshold; 0: none
    heartbeat_rate: int
    failover_strategy: str  # round-robin or shuffle
    compression: str | None

    @classmethod
    def read(cls, conf: cfg.ConfigOpts, transport_url: str) -> _Settings:
        """The settings for ``transport_url``; raises what oslo's driver
        raises for a configuration it refuses (RuntimeError, ``cfg.Error``)."""
        url = oslo_messaging.TransportURL.parse(conf, transport_url)
        rabbit = _rabbit_options(conf, url)
        _check_stream_fanout(rabbit)
        # A URL without a host ("rabbit://", oslo.messaging's default) means
        # guest@localhost:5672, as oslo.messaging's own driver reads it.
        hosts = list(url.hosts) or [
            oslo_messaging.TransportHost("localhost", 5672, "guest", "guest")
        ]
        return cls(
            hosts=hosts,
            virtual_host=url.virtual_host or "/",
            exchange=conf.control_exchange,
            durable=bool(rabbit.amqp_durable_queues or rabbit.rabbit_quorum_queue),
            auto_delete=bool(rabbit.amqp_auto_delete),
            queue_arguments=_queue_arguments(rabbit),
            ssl=_ssl_options(rabbit, hosts),
            login_method=rabbit.rabbit_login_method,
            heartbeat=max(0, rabbit.heartbeat_timeout_threshold),
            heartbeat_rate=rabbit.heartbeat_rate,
            failover_strategy=rabbit.kombu_failover_strategy,
            compression=rabbit.kombu_compression,
        )


def _lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection is gone or never came (refused,
    reset, timed out, closed by the broker, a failed TLS handshake or
    login): another host may do better. A refusal of a message or a channel
    error is not: it would be the same elsewhere."""
    if permanent_reason(exc) is not None:
        return False
    return isinstance(exc, (_ConnectError, OSError, amqp.exceptions.ConnectionError))


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


def _failover(strategy: str, count: int) -> Iterator[int]:
    """The host indexes kombu moves to after index 0 fails, for
    ``kombu_failover_strategy``: round-robin goes 1, 2, ..., 0, 1, ...;
    shuffle picks a random host each time (kombu's ``shufflecycle``)."""
    if strategy == "shuffle":
        return (random.randrange(count) for _ in itertools.count())
    cycle = itertools.cycle(range(count))
    next(cycle)  # kombu skips the first entry: it is the one in use
    return cycle


class BatchPublisher:
    """Publishes ``(routing_key, ctxt, message)`` batches with confirms.

    Not thread-safe: the background sender is its only user. Connects as
    oslo.messaging's rabbit driver does (TLS, login method, heartbeats, the
    URL's hosts shuffled, ``kombu_failover_strategy``) and declares what it
    declares for notifications. Any error closes the connection; a lost
    connection moves to the next host at once. Declarations go over a
    channel of their own, so a refused declaration never closes the channel
    messages are confirmed on.
    """

    def __init__(
        self, conf: cfg.ConfigOpts, transport_url: str, timeout: float
    ) -> None:
        settings = _Settings.read(conf, transport_url)
        self._settings = settings
        # oslo's Connection shuffles a multi-host URL's hosts, then kombu
        # starts on the first and fails over from it.
        self._hosts = list(settings.hosts)
        if len(self._hosts) > 1:
            random.shuffle(self._hosts)
        self._host_index = 0
        self._failover = _failover(settings.failover_strategy, len(self._hosts))
        self._vhost = settings.virtual_host
        self._timeout = timeout
        self._exchange = settings.exchange
        self._durable = settings.durable
        self._auto_delete = settings.auto_delete
        self._queue_arguments = settings.queue_arguments
        # oslo: heartbeat_check every threshold / rate / 2 seconds
        self._tick_every = (
            settings.heartbeat / max(settings.heartbeat_rate, 1) / 2.0
            if settings.heartbeat
            else None
        )
        self._next_tick = 0.0
        self._name = (
            f"{os.path.basename(sys.argv[0] if sys.argv else '')}:"
            f"{os.getpid()}:{uuid.uuid4()}"
        )
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

    def _switch(self, tried: set[int]) -> None:
        """Move to the next host as ``kombu_failover_strategy`` picks it;
        shuffle picks among the hosts not ``tried`` yet, while there are."""
        if len(self._hosts) < 2:
            return
        if self._settings.failover_strategy == "shuffle":
            left = [i for i in range(len(self._hosts)) if i not in tried]
            self._host_index = random.choice(left) if left else next(self._failover)
        else:
            self._host_index = next(self._failover)

    def _connect(self) -> Any:
        host = self._hosts[self._host_index]
        tls = self._settings.ssl
        if isinstance(tls, dict) and tls.get("server_hostname", "") is None:
            # kombu names the host it connects to when oslo named none
            tls = dict(tls, server_hostname=host.hostname)
        address = f"{netutils.escape_ipv6(host.hostname)}:{host.port or 5672}"
        try:
            conn = amqp.Connection(
                host=address,
                userid=host.username or "guest",
                password=host.password or "guest",
                login_method=self._settings.login_method,
                virtual_host=self._vhost,
                ssl=tls,
                connect_timeout=self._timeout,
                read_timeout=self._timeout,
                write_timeout=self._timeout,
                heartbeat=self._settings.heartbeat,
                client_properties={"connection_name": self._name},
            )
            self._conn = conn  # so that close() releases it if what follows fails
            conn.connect()
        except Exception as exc:
            raise _ConnectError(f"cannot connect to {address}: {exc}") from exc
        self._next_tick = time.monotonic() + (self._tick_every or 0.0)
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

    def tick(self) -> None:
        """Keep an idle connection alive, as oslo's heartbeat thread does;
        cheap enough to call between batches and every fraction of a second.

        At most every ``heartbeat_timeout_threshold / heartbeat_rate / 2``
        seconds: sends a heartbeat when one is due and reads what the broker
        sent meanwhile (its heartbeats, a close), without waiting. A
        connection found dead is dropped and the next host chosen; the next
        batch connects there. Never raises.
        """
        conn = self._conn
        if conn is None or self._tick_every is None or not conn.heartbeat:
            return
        now = time.monotonic()
        if now < self._next_tick:
            return
        self._next_tick = now + self._tick_every
        try:
            conn.heartbeat_tick(rate=self._settings.heartbeat_rate)
            try:
                conn.drain_events(timeout=0.001)
            except TimeoutError:
                pass  # nothing came: the usual case
        except Exception as exc:
            LOG.info("nova_notifier: broker connection lost while idle: %s", exc)
            self.close()
            self._switch({self._host_index})

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

        A missing queue is declared as oslo.messaging declares it: durable
        and auto-delete as the exchange, with :func:`_queue_arguments`
        (quorum, HA, delivery limit, in-memory limits). A queue that already
        exists is used as it is: a consumer that declared it with arguments
        of its own (``x-max-length``, a dead-letter exchange, another queue
        type) owns it. oslo.messaging declares it again instead, which is a
        no-op when the arguments are equal and PRECONDITION_FAILED when they
        differ; here the message is delivered to that queue either way. So
        the queue is checked (passive declare) first, declared only when
        missing, and bound in both cases.
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
                    routing_key,
                    durable=self._durable,
                    auto_delete=self._auto_delete,
                    arguments=self._queue_arguments,
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

        When the connection is lost or a connect fails, what is not
        confirmed yet goes at once to the next host of the URL
        (``kombu_failover_strategy``), each host tried once per call: the
        result has an ``error`` only when every host failed, or for an error
        another host would not change.

        Never raises: the result says, per item, whether the broker
        confirmed it, refused it for good (nack, refused declaration) or
        left it unconfirmed because the batch stopped on ``error``. Only the
        unconfirmed and refused ones need sending again.
        """
        result = PublishResult(set(), {})
        todo = list(range(len(batch)))
        tried: set[int] = set()
        for attempt in range(1, len(self._hosts) + 1):
            if not todo:
                break
            tried.add(self._host_index)
            part = self._publish_here(
                [batch[i] for i in todo],
                None if bodies is None else [bodies[i] for i in todo],
                idle,
                pause,
            )
            result.acked |= {todo[i] for i in part.acked}
            result.refused.update({todo[i]: r for i, r in part.refused.items()})
            result.error = part.error
            todo = [
                index
                for i, index in enumerate(todo)
                if i not in part.acked and i not in part.refused
            ]
            if part.error is None or not _lost(part.error):
                break
            self._switch(tried)
            if attempt == len(self._hosts):
                break
            LOG.info(
                "nova_notifier: %s; going on with host %s",
                part.error,
                self._hosts[self._host_index].hostname,
            )
        if NACK_REASON in result.refused.values():
            # A quorum queue whose leader's node died may go on nacking on
            # a connection made before (seen with RabbitMQ 3.10) while it
            # takes messages from a new one: retry on a fresh connection to
            # the next host. (A queue that is full for good nacks there too.)
            self.close()
            self._switch({self._host_index})
        return result

    def _publish_here(
        self,
        batch: Sequence[tuple[str, dict[str, Any], dict[str, Any]]],
        bodies: Sequence[bytes | None] | None,
        idle: Callable[[], None] | None,
        pause: Callable[[], None] | None,
    ) -> PublishResult:
        """One try of :meth:`publish` on the current connection or host."""
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
