"""The library's lifecycle and its notifier: ``init``, ``cleanup``, ``get_notifier``.

This module owns the one notification transport of the process and the
``[DEFAULT] host`` option. Every helper of the library emits through
:class:`Notifier`, so there is a single delivery path to change (or to make
asynchronous) for all of them.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from oslo_config import cfg

from nova_notifier import _settings
from nova_notifier import delivery as delivery_mod
from nova_notifier._log import RateLimited, get_logger
from nova_notifier._messaging import oslo_messaging
from nova_notifier.delivery import Delivery
from nova_notifier.exceptions import ConfigError, NotInitializedError
from nova_notifier.serializer import (
    PayloadSerializer,
    clean_text,
    is_secret_key,
    to_wire,
)

LOG = get_logger(__name__)


class _HostOpt(cfg.StrOpt):
    """``[DEFAULT] host`` as the library registers it when the application
    has not (yet) registered its own.

    oslo.config refuses a second, different option of the same name. When
    the application registers its ``host`` after the library did (after
    ``init()`` or ``monkey_patch()``), this option takes on the
    application's definition instead of refusing it, so the application's
    registration works and both read the same value.
    """

    def __ne__(self, other: object) -> bool:
        if (
            isinstance(other, cfg.Opt)
            and not isinstance(other, _HostOpt)
            and other.dest == self.dest
        ):
            vars(self).update(vars(other))
            return False
        return bool(super().__ne__(other))

    __hash__ = cfg.Opt.__hash__


OPTS = [
    _HostOpt(
        "host",
        default=socket.gethostname(),
        sample_default="<hostname>",
        help="Name of this host; the second half of the default publisher_id "
        "('<service>.<host>'). Registered only when the application has "
        "not registered its own [DEFAULT] host.",
    ),
]

PRIORITIES = _settings.PRIORITIES


class _State:
    """What ``init()`` built: the conf, transport and oslo.messaging notifier."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.conf: cfg.ConfigOpts | None = None
        self.transport: Any = None
        self.base: Any = None
        self.prepared: dict[str, Any] = {}
        self.delivery: Delivery | None = None
        self.enabled = False  # a driver other than noop is configured
        self.reinit = False  # set in a forked child: rebuild before sending
        self.stats: Counter[str] = Counter()
        self.settings: _settings.Settings | None = None
        self.conf_cache: dict[Any, Any] | None = None
        self.notifiers: dict[tuple[str, str | None], Notifier] = {}


_STATE = _State()


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register every option of the library on ``conf`` (safe to call twice).

    Also registers oslo.messaging's transport and ``[oslo_messaging_notifications]``
    options, so they can be set (``set_override``) before ``init()``.
    """
    from oslo_messaging import opts as messaging_opts

    from nova_notifier import opts

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
    from nova_notifier import opts

    for group, group_opts in opts.list_opts():
        section = conf if group == "DEFAULT" else conf[group]
        for opt in group_opts:
            try:
                getattr(section, opt.dest)
            except (ValueError, cfg.Error) as exc:
                raise ConfigError(
                    f"invalid value for option [{group}] {opt.name}: {exc}"
                ) from exc
    from nova_notifier import audit, monkey

    try:
        # The option's regex cannot check the offset's range (hour@99).
        audit.last_completed_audit_period(conf.instance_usage_audit_period)
    except ConfigError as exc:
        raise ConfigError(
            f"invalid value for option [DEFAULT] instance_usage_audit_period: {exc}"
        ) from exc
    monkey.check_entries(conf)
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
        delivery = None
        try:
            base = oslo_messaging.Notifier(transport, serializer=PayloadSerializer())
            if enabled and conf.notifications.delivery_mode != delivery_mod.DIRECT:
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
        _STATE.base = base
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


def _release() -> None:
    transport, delivery = _STATE.transport, _STATE.delivery
    _STATE.conf = None
    _STATE.transport = None
    _STATE.base = None
    _STATE.delivery = None
    _STATE.settings = None
    _STATE.notifiers = {}
    _STATE.prepared = {}
    if delivery is not None and not delivery.close():
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
    if _STATE.conf is None:
        return
    if _STATE.delivery is not None:
        _STATE.delivery.forget_after_fork()
    _STATE.transport = None
    _STATE.base = None
    _STATE.delivery = None
    _STATE.prepared = {}
    _STATE.reinit = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def _reinit_after_fork() -> None:
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
    return _STATE.base is not None or _STATE.reinit


def transport() -> Any:
    """The notification transport ``init()`` built (for a listener on ``fake://``)."""
    get_conf("transport()")
    return _STATE.transport


def is_enabled() -> bool:
    """True when initialised with a notification driver configured."""
    return (_STATE.base is not None or _STATE.reinit) and _STATE.enabled


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


def sending_disabled() -> bool:
    """True when initialised without a notification driver: nothing to build."""
    return _STATE.base is not None and not _STATE.enabled


@contextlib.contextmanager
def dropping(event_type: str) -> Iterator[None]:
    """Turn any exception in the block into a logged, counted drop."""
    try:
        yield
    except Exception as exc:
        record_drop(event_type, describe(exc))


def describe(exc: BaseException) -> str:
    """``"<ClassName>: <text>"`` of an exception, even one whose ``str()`` raises."""
    try:
        text = str(exc)
    except Exception:
        text = "(its text could not be read)"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return str.__str__(value)
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"


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


class _WireContext:
    """A context already redacted, as oslo.messaging will send it.

    oslo.messaging redacts a context with ``ctxt.redacted_copy()``, which by
    default also makes the copy the thread's *current* context: an API's
    context would lose its auth token, and the admin context of an
    ``api.fault`` would become the current context of the next request on
    that thread. Handing it this object instead leaves the thread alone.
    """

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def redacted_copy(self, **kwargs: Any) -> _WireContext:
        return self

    def to_dict(self) -> dict[str, Any]:
        return dict(self._values)


def wire_context(ctxt: Any) -> Any:
    """What goes on the wire for ``ctxt``: its fields minus any credential.

    A ``RequestContext`` (or anything with ``to_dict()``) becomes its fields
    without the secret-named ones (auth_token, service_token...), read
    without making any context current; ``None`` and plain dicts become
    ``{}``, which oslo.messaging sends as no context.
    """
    to_dict = getattr(ctxt, "to_dict", None)
    if ctxt is None or isinstance(ctxt, dict) or not callable(to_dict):
        return {}
    values = to_dict()
    wire: dict[str, Any] = {}
    for key, value in values.items():
        name = key if type(key) is str else str(to_wire(key))
        if is_secret_key(name):
            continue
        kind = type(value)
        if kind is str:
            wire[name] = value if value.isascii() else clean_text(value)
        elif value is None or kind is bool or kind is int:
            wire[name] = value
        else:  # lists of roles, and anything unusual
            wire[name] = to_wire(value)
    return _WireContext(wire)


def _prepared(publisher_id: str) -> Any:
    sub = _STATE.prepared.get(publisher_id)
    if sub is None:
        base = _STATE.base
        if base is None:
            return None
        sub = base.prepare(publisher_id=publisher_id)
        _STATE.prepared[publisher_id] = sub
    return sub


class Notifier:
    """Emits notifications under one publisher_id.

    Has the methods of an oslo.messaging ``Notifier`` (``info(context,
    event_type, payload)`` and so on for every priority). A call never
    raises: a payload that cannot be serialised, a library that is not
    initialised or a failing driver is logged and counted as a drop.
    """

    __slots__ = ("publisher_id",)

    def __init__(self, publisher_id: str) -> None:
        self.publisher_id = clean_text(_as_text(publisher_id))

    def __repr__(self) -> str:
        return f"<nova_notifier.Notifier publisher_id={self.publisher_id!r}>"

    def is_enabled(self) -> bool:
        """True when a notification driver is configured."""
        return is_enabled()

    def notify(self, ctxt: Any, event_type: str, payload: Any, priority: str) -> None:
        """Emit ``event_type`` at ``priority`` (a name of :data:`PRIORITIES`)."""
        if not isinstance(event_type, str):
            record_drop("?", f"event_type is not text: {type(event_type).__name__}")
            return
        event_type = clean_text(str.__str__(event_type))
        try:
            if _STATE.reinit:
                _reinit_after_fork()
            delivery = _STATE.delivery
            if delivery is not None:
                if delivery.enabled:
                    wire = wire_context(ctxt)
                    delivery.submit(
                        self.publisher_id,
                        wire.to_dict() if isinstance(wire, _WireContext) else {},
                        event_type,
                        payload,
                        priority,
                    )
                return
            sub = _prepared(self.publisher_id)
            if sub is None:
                record_drop(event_type, "nova_notifier.init() has not been called")
                return
            if not _STATE.enabled:
                return
            method = getattr(sub, priority.lower())
            method(wire_context(ctxt), event_type, payload)
            _STATE.stats["queued"] += 1
            _STATE.stats["sent"] += 1
        except Exception as exc:
            record_drop(event_type, describe(exc))
            LOG.debug("nova_notifier: why %s was dropped", event_type, exc_info=True)

    def audit(self, ctxt: Any, event_type: str, payload: Any) -> None:
        self.notify(ctxt, event_type, payload, "audit")

    def debug(self, ctxt: Any, event_type: str, payload: Any) -> None:
        self.notify(ctxt, event_type, payload, "debug")

    def info(self, ctxt: Any, event_type: str, payload: Any) -> None:
        self.notify(ctxt, event_type, payload, "info")

    def warn(self, ctxt: Any, event_type: str, payload: Any) -> None:
        self.notify(ctxt, event_type, payload, "warn")

    def warning(self, ctxt: Any, event_type: str, payload: Any) -> None:
        self.notify(ctxt, event_type, payload, "warning")

    def error(self, ctxt: Any, event_type: str, payload: Any) -> None:
        self.notify(ctxt, event_type, payload, "error")

    def critical(self, ctxt: Any, event_type: str, payload: Any) -> None:
        self.notify(ctxt, event_type, payload, "critical")

    def sample(self, ctxt: Any, event_type: str, payload: Any) -> None:
        self.notify(ctxt, event_type, payload, "sample")


def get_notifier(
    service: str, host: str | None = None, publisher_id: str | None = None
) -> Notifier:
    """A :class:`Notifier` publishing as ``publisher_id``, else ``"service.host"``.

    ``host`` defaults to ``[DEFAULT] host``. Raises ``NotInitializedError``
    before ``init()``; ``service`` must be a non-empty name.
    """
    snap = settings("get_notifier()")
    if publisher_id:
        return Notifier(publisher_id)
    if not service:
        raise ValueError("get_notifier() needs a service name or a publisher_id")
    key = (service, host)
    found = _STATE.notifiers.get(key)
    if found is None:
        found = Notifier(f"{service}.{host or snap.host}")
        if len(_STATE.notifiers) < 1024:
            _STATE.notifiers[key] = found
    return found
