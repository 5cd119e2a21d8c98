"""Direct delivery: the emit call hands the message to oslo.messaging's drivers.

What ``oslo_messaging.Notifier._notify`` does, without its per-call
overhead and without its one flaw for a caller that counts: it builds the
message (``message_id``, ``publisher_id``, ``event_type``, ``priority``,
``payload``, ``timestamp``) and calls every configured notification driver's
``notify(ctxt, message, priority, retry)``, the drivers' public plugin
interface, loaded by name through stevedore as oslo.messaging loads them.
oslo.messaging logs a failing driver with the whole payload and returns;
here the failure is raised to the caller of :meth:`DirectSender.send`
(the library's ``Notifier``, which counts and logs it as a drop, without
the payload).
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from oslo_config import cfg
from oslo_utils import timeutils
from stevedore import named

# The priority oslo.messaging's Notifier methods give their drivers.
WIRE_PRIORITY = {
    "audit": "AUDIT",
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARN",
    "warning": "WARN",
    "error": "ERROR",
    "critical": "CRITICAL",
    "sample": "SAMPLE",
}

# message_id: a random (version 4) UUID, as oslo.messaging sends, drawn from
# a generator of the library's own, seeded from the OS, rather than
# os.urandom per message: ids must be unique, not secret. It is seeded again
# in a process with another pid (a child forked by C code runs no Python
# fork hook), so a parent and its child never share the sequence.
_RANDOM = random.Random()
_SEEDED_PID = os.getpid()
_V4_MASK = ~(0xF000 << 64 | 0xC000 << 48)
_V4_BITS = 0x4000 << 64 | 0x8000 << 48


def unique_hex() -> str:
    """A new random UUID (version 4, RFC 4122 variant) as ``uuid4().hex``
    gives it (oslo.messaging's ``_unique_id``)."""
    global _SEEDED_PID
    if os.getpid() != _SEEDED_PID:
        _RANDOM.seed()
        _SEEDED_PID = os.getpid()
    return "%032x" % (_RANDOM.getrandbits(128) & _V4_MASK | _V4_BITS)


def message_id() -> str:
    """A new random UUID (version 4, RFC 4122 variant) as text."""
    h = unique_hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_SECOND: tuple[int, str] = (-1, "")
_UTCNOW = timeutils.utcnow


def faked_timestamp() -> str | None:
    """The timestamp text of a time oslo.utils was told to fake
    (``set_time_override``, or ``utcnow`` patched: tests do), else None."""
    if (
        timeutils.utcnow is not _UTCNOW
        or getattr(timeutils, "_override_time", None) is not None
        or getattr(timeutils.utcnow, "override_time", None) is not None
    ):
        return str(timeutils.utcnow())
    return None


def timestamp(now_ns: int | None = None) -> str:
    """The message's ``timestamp`` as oslo.messaging sends it,
    ``str(timeutils.utcnow())`` (``'2026-12-02 07:21:26.123456'``, no
    fraction when it is 0), for ``now_ns`` (``time.time_ns()``) or this
    moment (then following oslo.utils' ``set_time_override``),
    microseconds cut as ``datetime.now()`` cuts them. The text of the
    second is formatted once a second."""
    if now_ns is None:
        faked = faked_timestamp()
        if faked is not None:
            return faked
    second, nanos = divmod(time.time_ns() if now_ns is None else now_ns, 1_000_000_000)
    micro = nanos // 1000
    cached = _SECOND
    if cached[0] == second:
        text = cached[1]
    else:
        text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
        globals()["_SECOND"] = (second, text)
    return f"{text}.{micro:06d}" if micro else text


class DriverError(Exception):
    """A notification driver refused a message (its name and error in the text)."""


class DirectSender:
    """The configured notification drivers, called in the emit call.

    Loaded like an ``oslo_messaging.Notifier``'s: the names in
    ``[oslo_messaging_notifications] driver``, each built with the conf,
    ``topics`` (the configured ones unless given) and the transport.
    """

    def __init__(
        self, conf: cfg.ConfigOpts, transport: Any, topics: list[str] | None = None
    ) -> None:
        group = conf.oslo_messaging_notifications
        self.retry = group.retry
        topics = list(group.topics) if topics is None else topics
        self._manager: named.NamedExtensionManager[Any] = named.NamedExtensionManager(
            "oslo.messaging.notify.drivers",
            names=list(group.driver),
            invoke_on_load=True,
            invoke_args=(conf,),
            invoke_kwds={"topics": topics, "transport": transport},
        )
        self._drivers = tuple(
            (ext.name, ext.obj) for ext in self._manager.extensions if ext.obj
        )

    def send(
        self,
        ctxt: dict[str, Any],
        publisher_id: str,
        event_type: str,
        payload: Any,
        priority: str,
    ) -> list[str]:
        """Hand one message to every driver.

        Returns what went wrong with the drivers that failed while another
        took the message (usually nothing); raises :class:`DriverError`
        when none took it, ``ValueError`` for a priority that is not one of
        ``WIRE_PRIORITY``.
        """
        wire_priority = WIRE_PRIORITY.get(priority)
        if wire_priority is None:
            raise ValueError(f"unknown priority {priority!r}")
        message = {
            "message_id": message_id(),
            "publisher_id": publisher_id,
            "event_type": event_type,
            "priority": wire_priority,
            "payload": payload,
            "timestamp": timestamp(),
        }
        failed: list[str] = []
        for name, driver in self._drivers:
            try:
                driver.notify(ctxt, message, wire_priority, self.retry)
            except Exception as exc:
                failed.append(f"driver {name!r} failed: {type(exc).__name__}: {exc}")
        if failed and len(failed) == len(self._drivers):
            raise DriverError("; ".join(failed))
        return failed
