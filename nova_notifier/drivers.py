"""oslo.messaging notification drivers that never make the caller wait.

Any ``oslo_messaging.Notifier`` (Nova's own, ceilometermiddleware's,
keystonemiddleware's audit filter, ...) uses them when
``[oslo_messaging_notifications] driver`` names them:

``nova_notifier.background``
    ``notify()`` copies the message onto a bounded memory queue and
    returns; a sender thread publishes it. A full queue drops (counted,
    logged); what is still queued when the process dies is lost.
``nova_notifier.spool``
    ``notify()`` writes the message to a SQLite spool and returns; the
    sender deletes it once the broker confirmed it, and a process started
    on the same spool sends what is left: at-least-once, with the original
    ``message_id`` so consumers can drop duplicates.

Both publish what messagingv2 publishes (the 2.0 envelope, exchange
``control_exchange``, routing key ``<topic>.<priority>`` for each of the
Notifier's topics), in confirmed batches on ``rabbit://``, retrying
connection failures for ever and setting aside a message the broker refuses
for good. They ignore the per-call ``retry``: delivery is the sender's. Their
tuning is ``[notification_delivery]``.

Every Notifier of a process on the same transport shares one sender of
each kind. :func:`flush_drivers` stops them after
delivering what they hold; it also runs at interpreter exit.
"""

from __future__ import annotations

import atexit
import collections
import os
import threading
from typing import Any

from oslo_config import cfg

from nova_notifier import delivery
from nova_notifier._log import get_logger
from nova_notifier._messaging import oslo_messaging

LOG = get_logger(__name__)

_LOCK = threading.Lock()
# (mode, id(transport)) -> (transport, its sender); the transport is kept so
# that its id is not reused while the sender lives.
_SENDERS: dict[tuple[str, int], tuple[Any, delivery.Delivery]] = {}
_STATS: collections.Counter[str] = collections.Counter()


def _register(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(delivery.OPTS, group=delivery.GROUP)


def _sender(mode: str, conf: cfg.ConfigOpts, transport: Any) -> delivery.Delivery:
    """The one sender of ``mode`` over ``transport``, started on first use."""
    key = (mode, id(transport))
    with _LOCK:
        entry = _SENDERS.get(key)
        if entry is None:
            sender = delivery.Delivery(conf, transport, _STATS, mode=mode)
            _SENDERS[key] = entry = (transport, sender)
        return entry[1]


class _Driver(oslo_messaging.notify.notifier.Driver):
    mode = ""

    def __init__(self, conf: cfg.ConfigOpts, topics: list[str], transport: Any):
        super().__init__(conf, topics, transport)
        _register(conf)
        self.topics = list(topics)
        self._key = (self.mode, id(transport))
        _sender(self.mode, conf, transport)  # a bad option fails here, at start

    def notify(
        self, ctxt: dict[str, Any], msg: dict[str, Any], priority: str, retry: Any
    ) -> None:
        """Hand ``msg`` to the sender for every topic; returns at once."""
        entry = _SENDERS.get(self._key)
        sender = (
            entry[1]
            if entry is not None
            else _sender(self.mode, self.conf, self.transport)
        )
        sender.submit_message(ctxt, msg, self.topics)


class BackgroundDriver(_Driver):
    """``nova_notifier.background``: a memory queue and a sender thread."""

    mode = delivery.BACKGROUND


class SpoolDriver(_Driver):
    """``nova_notifier.spool``: a durable SQLite spool and a sender thread."""

    mode = delivery.SPOOL


def flush_drivers(timeout: float | None = None, transport: Any = None) -> bool:
    """Deliver what the drivers' senders hold (each waits at most
    ``timeout``, default ``flush_timeout``), then stop them; only those over
    ``transport`` when given. A Notifier that sends afterwards starts a new
    sender. False when a sender did not stop in time."""
    with _LOCK:
        keys = [k for k, (t, _) in _SENDERS.items() if transport in (None, t)]
        senders = [_SENDERS.pop(key)[1] for key in keys]
    return all([sender.close(timeout) for sender in senders])


def driver_stats() -> dict[str, Any]:
    """The drivers' counters since the process started (``queued``,
    ``sent``, ``retried``, ``dropped``, ``dead_lettered``, as
    ``nova_notifier.stats()`` names them) and the ``backlog`` of the senders
    running now."""
    result: dict[str, Any] = {
        name: _STATS[name]
        for name in ("queued", "sent", "retried", "dropped", "dead_lettered")
    }
    with _LOCK:
        senders = [sender for _, sender in _SENDERS.values()]
    result["backlog"] = sum(sender.status()["backlog"] for sender in senders)
    return result


def _after_fork_in_child() -> None:
    # The parent's senders are the parent's: forget them (their spools
    # without closing); the child's first notify starts its own.
    global _LOCK
    _LOCK = threading.Lock()
    for _, sender in list(_SENDERS.values()):
        sender.forget_after_fork()
    _SENDERS.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(flush_drivers)
