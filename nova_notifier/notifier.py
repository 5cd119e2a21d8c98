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
from oslo_context import context as oslo_context

from nova_notifier import _settings
from nova_notifier import delivery as delivery_mod
from nova_notifier._direct import DirectSender
from nova_notifier._log import RateLimited, get_logger
from nova_notifier._messaging import oslo_messaging
from nova_notifier.delivery import Delivery
from nova_notifier.exceptions import ConfigError, NotInitializedError
from nova_notifier.serializer import (
    clean_text,
    is_secret_key,
    sanitize,
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
_PRIORITY_SET = frozenset(PRIORITIES)


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
        delivery = direct = None
        try:
            if not enabled:
                pass
            elif conf.notifications.delivery_mode == delivery_mod.DIRECT:
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


def _release() -> None:
    transport, delivery = _STATE.transport, _STATE.delivery
    _STATE.conf = None
    _STATE.transport = None
    _STATE.ready = False
    _STATE.direct = None
    _STATE.delivery = None
    _STATE.settings = None
    _STATE.notifiers = {}
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
    _STATE.ready = False
    _STATE.direct = None
    _STATE.delivery = None
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


def sending_disabled() -> bool:
    """True when initialised without a notification driver: nothing to build."""
    return _STATE.ready and not _STATE.enabled


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


_OSLO_TO_DICT = oslo_context.RequestContext.to_dict


def _context_value(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return value if value.isascii() else clean_text(value)
    if value is None or kind is bool or kind is int:
        return value
    return to_wire(value)  # lists of roles, and anything unusual


_IDENTITIES: dict[tuple[Any, ...], str] = {}
_ROLES: dict[tuple[Any, ...], list[str]] = {}


def _identity(ctxt: Any) -> str:
    """``to_dict()``'s ``user_identity``, formatted once per distinct value."""
    key = (
        ctxt.user_idt_format,
        ctxt.user_id,
        ctxt.project_id,
        ctxt.domain_id,
        ctxt.user_domain_id,
        ctxt.project_domain_id,
    )
    try:
        found = _IDENTITIES.get(key)
    except TypeError:  # an unhashable id
        found = None
    if found is None:
        found = key[0].format(
            user=key[1] or "-",
            project_id=key[2] or "-",
            domain=key[3] or "-",
            user_domain=key[4] or "-",
            p_domain=key[5] or "-",
        )
        if all(type(part) is str or part is None for part in key):
            if len(_IDENTITIES) >= 1024:
                _IDENTITIES.clear()
            _IDENTITIES[key] = found
    return found


def _roles(roles: Any) -> Any:
    """The role names as a new list (text roles as they are)."""
    if type(roles) is list:
        key = tuple(roles)
        try:
            found = _ROLES.get(key)
        except TypeError:  # an unhashable role
            found = None
        if found is not None:
            return list(found)
        wire = to_wire(roles)
        if all(type(role) is str and role.isascii() for role in key):
            if len(_ROLES) >= 1024:
                _ROLES.clear()
            _ROLES[key] = list(wire)
        return wire
    return _context_value(roles)


def _oslo_context(ctxt: Any) -> dict[str, Any]:
    """An oslo.context ``RequestContext``'s ``to_dict()`` without its
    credentials, read straight from the attributes ``to_dict()`` reads."""
    project_id = ctxt.project_id
    values = {
        "user": ctxt.user_id,
        "project_id": project_id,
        "system_scope": ctxt.system_scope,
        "project": project_id,
        "domain": ctxt.domain_id,
        "user_domain": ctxt.user_domain_id,
        "project_domain": ctxt.project_domain_id,
        "is_admin": ctxt.is_admin,
        "read_only": ctxt.read_only,
        "show_deleted": ctxt.show_deleted,
        "request_id": ctxt.request_id,
        "global_request_id": ctxt.global_request_id,
        "resource_uuid": ctxt.resource_uuid,
        "roles": None,
        "user_identity": _identity(ctxt),
        "is_admin_project": ctxt.is_admin_project,
    }
    for key, value in values.items():
        if value is None or value is True or value is False:
            continue
        if type(value) is not str or not value.isascii():
            values[key] = _context_value(value)
    values["roles"] = _roles(ctxt.roles)
    return values


def wire_context(ctxt: Any) -> dict[str, Any]:
    """What goes on the wire for ``ctxt``: its fields minus any credential.

    A ``RequestContext`` (or anything with ``to_dict()``) becomes its fields
    without the secret-named ones (auth_token, service_token...), read
    without making any context current (oslo.messaging's
    ``redacted_copy()`` makes its copy the thread's current context);
    ``None`` and plain dicts become ``{}``, which oslo.messaging sends as
    no context. An oslo.context ``RequestContext`` whose class keeps
    oslo's ``to_dict()`` is read field by field, an allow-list of what
    ``to_dict()`` returns; any other context through its own ``to_dict()``.
    """
    if ctxt is None or type(ctxt) is dict:
        return {}
    to_dict = getattr(type(ctxt), "to_dict", None)
    if to_dict is _OSLO_TO_DICT:
        return _oslo_context(ctxt)
    if isinstance(ctxt, dict) or not callable(to_dict):
        return {}
    wire: dict[str, Any] = {}
    for key, value in ctxt.to_dict().items():
        name = key if type(key) is str else str(to_wire(key))
        if not is_secret_key(name):
            wire[name] = _context_value(value)
    return wire


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
        if type(event_type) is not str:
            if not isinstance(event_type, str):
                record_drop("?", f"event_type is not text: {type(event_type).__name__}")
                return
            event_type = str.__str__(event_type)
        if not event_type.isascii():
            event_type = clean_text(event_type)
        try:
            if _STATE.reinit:
                _reinit_after_fork()
            direct = _STATE.direct
            if direct is not None:
                direct.send(
                    wire_context(ctxt),
                    self.publisher_id,
                    event_type,
                    sanitize(payload),
                    priority if priority in _PRIORITY_SET else priority.lower(),
                )
                stats = _STATE.stats
                stats["queued"] += 1
                stats["sent"] += 1
                return
            delivery = _STATE.delivery
            if delivery is not None:
                if delivery.enabled:
                    delivery.submit(
                        self.publisher_id,
                        wire_context(ctxt),
                        event_type,
                        payload,
                        priority,
                    )
                return
            if not _STATE.ready:
                record_drop(event_type, "nova_notifier.init() has not been called")
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
