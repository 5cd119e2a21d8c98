"""The library's lifecycle: ``init``, ``refresh``, ``cleanup``, fork and exit.

This module owns the one notification transport of the process, the
sender that delivers through it (direct, background or spool), the
settings snapshot the helpers read, and the delivery counters. Nothing
here builds a notification: the helpers build them and hand them to a
:class:`~nova_notifier.notifier.Notifier`, which reads this state.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from oslo_config import cfg

from nova_notifier import _settings, drivers, opts
from nova_notifier import delivery as delivery_mod
from nova_notifier._direct import DirectSender
from nova_notifier._log import RateLimited, describe, get_logger
from nova_notifier._messaging import oslo_messaging
from nova_notifier.conf import default as default_opts
from nova_notifier.delivery import Delivery
from nova_notifier.exceptions import ConfigError, NotInitializedError

LOG = get_logger(__name__)


class _State:
    """What ``init()`` built: the conf, transport and oslo.messaging notifier."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.conf: cfg.ConfigOpts | None = None
        self.transport: Any = None
        self.ready = False  # between init() and cleanup()
        self.direct: DirectSender | None = None
        self.delivery: Delivery | None = None
        self.enabled = False  # a driver other than noop is configured
        self.reinit = False  # set in a forked child: rebuild before sending
        self.stats: Counter[str] = Counter()
        self.settings: _settings.Settings | None = None
        self.conf_cache: dict[Any, Any] | None = None
        self.notifiers: dict[tuple[str, str | None], Any] = {}  # Notifiers
        # Direct senders for other topics (the versioned notifications'),
        # built at first use from the same conf and transport.
        self.other_direct: dict[tuple[str, ...], DirectSender] = {}
        self.other_lock = threading.Lock()


_STATE = _State()


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register every option of the library on ``conf`` (safe to call twice).

    Also registers oslo.messaging's transport and ``[oslo_messaging_notifications]``
    options, so they can be set (``set_override``) before ``init()``.
    """
    from oslo_messaging import opts as messaging_opts

    for group, group_opts in messaging_opts.list_opts():
        if group in (None, "oslo_messaging_notifications"):
            conf.register_opts(group_opts, group=group)

    for group, group_opts in opts.list_opts():
        for opt in group_opts:
            try:
                conf.register_opt(opt, group=None if group == "DEFAULT" else group)
            except cfg.DuplicateOptError:
                if opt.name != "host":
                    raise
                # The application owns [DEFAULT] host; we read theirs.


def _validate(conf: cfg.ConfigOpts) -> None:
    """Read every option once so a bad value fails now, naming the option."""
    for group, group_opts in opts.list_opts():
        section = conf if group == "DEFAULT" else conf[group]
        for opt in group_opts:
            try:
                getattr(section, opt.dest)
            except (ValueError, cfg.Error) as exc:
                raise ConfigError(
                    f"invalid value for option [{group}] {opt.name}: {exc}"
                ) from exc
    default_opts.check(conf)
    delivery_mod.check(conf)


def init(conf: cfg.ConfigOpts | None = None) -> None:
    """Set the library up from ``conf`` (default ``oslo_config.cfg.CONF``).

    Registers and validates the library's options (a bad value raises
    :class:`~nova_notifier.exceptions.ConfigError` naming the option), then
    builds the notification transport with
    ``oslo_messaging.get_notification_transport(conf)`` and a notifier that
    follows ``[oslo_messaging_notifications]`` driver, topics and retry.
    Calling it again releases the previous transport first.
    """
    conf = cfg.CONF if conf is None else conf
    register_opts(conf)
    _validate(conf)
    notify_conf = conf.oslo_messaging_notifications
    enabled = bool(set(notify_conf.driver) - {"noop"}) and bool(notify_conf.topics)
    with _STATE.lock:
        # Build everything first: a failure leaves the previous set-up (or
        # none) exactly as it was.
        stats: Counter[str] = Counter()
        transport = oslo_messaging.get_notification_transport(conf)
        delivery = direct = None
        try:
            if not enabled:
                pass
            elif (
                conf.notifications.delivery_mode == delivery_mod.DIRECT
                or delivery_mod.drivers_configured(conf)
            ):
                # With nova_notifier.background or .spool configured, the
                # driver is the sender: the emit call hands it the message.
                direct = DirectSender(conf, transport)
            else:
                # Started only once the previous set-up is released: two
                # senders must not overlap (and a transport's cleanup, as
                # fake://'s, may reach state the new one shares).
                delivery = Delivery(conf, transport, stats, start=False)
        except BaseException:
            _close_transport(transport)
            raise
        _release()
        _STATE.conf = conf
        _STATE.transport = transport
        _STATE.direct = direct
        _STATE.ready = True
        _STATE.reinit = False
        _STATE.stats = stats
        _snapshot(conf)
        _DROP_LOGS.clear()  # the counts start again with the counters
        _STATE.enabled = enabled
        _STATE.delivery = delivery
        if delivery is not None:
            delivery.start()
    if not _STATE.enabled:
        LOG.warning(
            "nova_notifier: [oslo_messaging_notifications] driver is not set; "
            "notifications will not be sent"
        )


def _snapshot(conf: cfg.ConfigOpts) -> _settings.Settings:
    snap = _settings.take(conf)
    _STATE.settings = snap
    _STATE.notifiers = {}
    cache = _settings.value_cache(conf)
    if cache is not None:
        cache[_settings.TOKEN] = True
    _STATE.conf_cache = cache
    return snap


_BAD_SETTINGS = RateLimited()


def refresh() -> _settings.Settings:
    """Read the configuration again now (what ``init()`` did, without the
    transport). Changes made through oslo.config are also picked up by
    themselves at the next emit. A value that no longer reads is logged
    and the previous settings stay."""
    conf = get_conf("refresh()")
    # No lock: a snapshot is built whole and assigned at once, and an emit
    # must never wait on init() or cleanup(), which hold the lock while the
    # sender drains.
    try:
        return _snapshot(conf)
    except Exception as exc:
        previous = _STATE.settings
        if previous is None:
            raise
        _BAD_SETTINGS.log(
            LOG,
            logging.ERROR,
            "nova_notifier: configuration change not taken, keeping the "
            "previous settings: %s",
            describe(exc),
        )
        if _STATE.conf_cache is not None:
            _STATE.conf_cache[_settings.TOKEN] = True
        return previous


def settings(what: str = "this call") -> _settings.Settings:
    """The settings snapshot, taken again when the configuration changed;
    raises ``NotInitializedError`` before ``init()``."""
    snap = _STATE.settings
    cache = _STATE.conf_cache
    if snap is not None and cache is not None and _settings.TOKEN in cache:
        return snap
    if snap is None or _STATE.conf is None:
        raise NotInitializedError(what)
    return refresh()


def direct_sender(topics: tuple[str, ...] | None) -> DirectSender | None:
    """The direct sender for ``topics`` (None: the configured topics); None
    when the library sends through a queue or spool instead."""
    direct = _STATE.direct
    if topics is None or direct is None:
        return direct
    found = _STATE.other_direct.get(topics)
    if found is not None:
        return found
    conf, transport, cache = _STATE.conf, _STATE.transport, _STATE.other_direct
    if conf is None:
        return None
    # Built outside the lock (stevedore loads the drivers): a fork or a
    # cleanup() meanwhile must find the lock free. Kept only if the set-up
    # it was built for is still the current one.
    built = DirectSender(conf, transport, topics=list(topics))
    with _STATE.other_lock:
        if _STATE.direct is not direct or _STATE.other_direct is not cache:
            return None
        return cache.setdefault(topics, built)


def _release() -> None:
    transport, delivery = _STATE.transport, _STATE.delivery
    _STATE.conf = None
    _STATE.transport = None
    _STATE.ready = False
    _STATE.direct = None
    with _STATE.other_lock:
        _STATE.other_direct = {}
    _STATE.delivery = None
    _STATE.settings = None
    _STATE.notifiers = {}
    stopped = delivery is None or delivery.close()
    if transport is not None:
        # A driver's sender on this transport (driver = nova_notifier.*).
        stopped = drivers.flush_drivers(transport=transport) and stopped
    if not stopped:
        # The sender is still using the transport: leave it to the sender.
        LOG.warning("nova_notifier: transport left open for a sender still running")
        transport = None
    if transport is not None:
        _close_transport(transport)


def _close_transport(transport: Any) -> None:
    try:
        transport.cleanup()
    except Exception:  # a broken transport must not stop a shutdown
        LOG.exception("nova_notifier: error while closing the transport")


def _after_fork_in_child() -> None:
    """A forked child must not use its parent's connections or sender thread.

    Forget them without closing (they are the parent's) and rebuild from the
    same configuration at the child's first emit.
    """
    _STATE.lock = threading.RLock()
    _STATE.other_lock = threading.Lock()
    _STATE.other_direct = {}
    if _STATE.conf is None:
        return
    if _STATE.delivery is not None:
        _STATE.delivery.forget_after_fork()
    _STATE.transport = None
    _STATE.ready = False
    _STATE.direct = None
    _STATE.delivery = None
    _STATE.reinit = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def reinit_after_fork() -> None:
    """In a forked child, rebuild what the parent had set up (first emit)."""
    with _STATE.lock:
        if _STATE.reinit and _STATE.conf is not None:
            init(_STATE.conf)


def cleanup() -> None:
    """Deliver what is queued (up to ``flush_timeout``), close the transport.

    Safe to call when not initialised.
    """
    with _STATE.lock:
        _release()


def _flush_at_exit() -> None:
    """At interpreter exit, a process that never called ``cleanup()`` still
    delivers (background) or keeps (spool) what it accepted, waiting at
    most ``flush_timeout``; what it could not deliver is logged."""
    if _STATE.delivery is None:
        return
    if not _STATE.lock.acquire(timeout=5):  # a thread stuck inside init()
        LOG.warning("nova_notifier: not flushed at exit: the library is busy")
        return
    try:
        cleanup()
    except Exception:  # never turn an exit into a traceback
        LOG.exception("nova_notifier: error while flushing at exit")
    finally:
        _STATE.lock.release()


atexit.register(_flush_at_exit)


def is_initialized() -> bool:
    """True between ``init()`` and ``cleanup()``."""
    return _STATE.ready or _STATE.reinit


def transport() -> Any:
    """The notification transport ``init()`` built (for a listener on ``fake://``)."""
    get_conf("transport()")
    return _STATE.transport


def is_enabled() -> bool:
    """True when initialised with a notification driver configured."""
    return (_STATE.ready or _STATE.reinit) and _STATE.enabled


def get_conf(what: str = "this call") -> cfg.ConfigOpts:
    """The ``ConfigOpts`` given to ``init()``; raises ``NotInitializedError``."""
    conf = _STATE.conf
    if conf is None:
        raise NotInitializedError(what)
    return conf


def stats() -> dict[str, Any]:
    """Delivery counters since the last ``init()``.

    ``queued`` (accepted by an emit call), ``sent`` (handed to the transport
    and, with a background mode, accepted by the broker), ``retried``
    (delivery attempts that failed), ``dropped`` (never to be sent),
    ``dead_lettered`` (refused for good by the broker ``dead_letter_after``
    times, then set aside: kept in the spool's dead_letter table in spool
    mode, also counted as dropped in background mode),
    ``backlog`` (accepted, not yet delivered) and ``oldest_undelivered_age``
    (seconds).
    """
    counters = _STATE.stats
    result: dict[str, Any] = {
        name: counters[name]
        for name in ("queued", "sent", "retried", "dropped", "dead_lettered")
    }
    delivery = _STATE.delivery
    result.update(
        delivery.status()
        if delivery is not None
        else {"backlog": 0, "oldest_undelivered_age": 0.0}
    )
    return result


def formats() -> tuple[bool, bool]:
    """Whether to send (the legacy, the versioned) notifications, as
    ``notification_format`` says; legacy only before ``init()``."""
    try:
        snap = settings()
    except NotInitializedError:
        return True, False
    return snap.legacy, snap.versioned


def sending_disabled() -> bool:
    """True when initialised without a notification driver: nothing to build."""
    return _STATE.ready and not _STATE.enabled


_DROP_LOGS: dict[str, RateLimited] = {}


def record_drop(event_type: str, reason: str) -> None:
    """Count a notification that will not be sent and log why (no traceback).

    The same reason is logged at most once every 10 s, with the count of the
    drops not logged in between.
    """
    _STATE.stats["dropped"] += 1
    # One limiter per kind of reason (its text up to the first colon, so an
    # exception's class), not per text: ids and times would defeat it.
    kind = reason.partition(":")[0][:80]
    limiter = _DROP_LOGS.get(kind)
    if limiter is None:
        if len(_DROP_LOGS) > 256:
            _DROP_LOGS.clear()
        limiter = _DROP_LOGS[kind] = RateLimited()
    limiter.log(
        LOG,
        logging.WARNING,
        "nova_notifier: dropped %s notification: %s",
        event_type,
        reason,
    )


@contextlib.contextmanager
def dropping(event_type: str) -> Iterator[None]:
    """Turn any exception in the block into a logged, counted drop."""
    try:
        yield
    except Exception as exc:
        record_drop(event_type, describe(exc))
