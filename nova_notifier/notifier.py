"""The library's notifier: ``Notifier`` and ``get_notifier``.

Every helper of the library emits through :class:`Notifier`, so there is a
single path from a built payload to the sender ``init()`` set up (see
:mod:`nova_notifier.lifecycle`): the context is reduced to what may go on
the wire, the payload screened unless the library built it, and the
message handed to the drivers (direct) or queued (background, spool).
"""

from __future__ import annotations

import logging
from typing import Any

from oslo_context import context as oslo_context

from nova_notifier import _settings, lifecycle
from nova_notifier._log import RateLimited, describe, get_logger
from nova_notifier.lifecycle import _STATE, record_drop
from nova_notifier.serializer import (
    clean_text,
    is_secret_key,
    sanitize,
    to_wire,
)

LOG = get_logger(__name__)


PRIORITIES = _settings.PRIORITIES
_PRIORITY_SET = frozenset(PRIORITIES)
_PARTIAL = RateLimited()


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return str.__str__(value)
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"


_OSLO_TO_DICT = oslo_context.RequestContext.to_dict


class WireContext(dict[str, Any]):
    """A context already reduced to what goes on the wire (JSON-safe, no
    credentials): :func:`wire_context` copies it as it is."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return dict(self)


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
    # Only text and None are hashed and kept: a caller's object may refuse
    # to be hashed, or format itself differently from an equal string.
    plain = all(type(part) is str or part is None for part in key)
    found = _IDENTITIES.get(key) if plain else None
    if found is None:
        found = key[0].format(
            user=key[1] or "-",
            project_id=key[2] or "-",
            domain=key[3] or "-",
            user_domain=key[4] or "-",
            p_domain=key[5] or "-",
        )
        if plain:
            if len(_IDENTITIES) >= 1024:
                _IDENTITIES.clear()
            _IDENTITIES[key] = found
    return found


def _roles(roles: Any) -> Any:
    """The role names as a new list (text roles as they are)."""
    if type(roles) is not list:
        return _context_value(roles)
    for role in roles:
        if type(role) is not str:  # only text is hashed and kept
            return to_wire(roles)
    key = tuple(roles)
    found = _ROLES.get(key)
    if found is not None:
        return list(found)
    wire = to_wire(roles)
    if len(_ROLES) >= 1024:
        _ROLES.clear()
    _ROLES[key] = list(wire)
    return wire


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
    if type(ctxt) is WireContext:
        return dict(ctxt)
    if getattr(type(ctxt), "to_dict", None) is _OSLO_TO_DICT and "to_dict" not in (
        getattr(ctxt, "__dict__", None) or ()
    ):
        return _oslo_context(ctxt)
    to_dict = getattr(ctxt, "to_dict", None)
    if isinstance(ctxt, dict) or not callable(to_dict):
        return {}
    wire: dict[str, Any] = {}
    for key, value in to_dict().items():
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

    __slots__ = ("publisher_id", "topics")

    def __init__(
        self, publisher_id: str, topics: tuple[str, ...] | None = None
    ) -> None:
        self.publisher_id = clean_text(_as_text(publisher_id))
        #: where the messages go; None: ``[oslo_messaging_notifications] topics``
        self.topics = None if topics is None else tuple(topics)

    def __repr__(self) -> str:
        topics = "" if self.topics is None else f" topics={list(self.topics)!r}"
        return f"<nova_notifier.Notifier publisher_id={self.publisher_id!r}{topics}>"

    def is_enabled(self) -> bool:
        """True when a notification driver is configured."""
        return lifecycle.is_enabled()

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
                lifecycle.reinit_after_fork()
            topics = self.topics
            direct = (
                _STATE.direct if topics is None else lifecycle.direct_sender(topics)
            )
            if direct is not None:
                failed = direct.send(
                    wire_context(ctxt),
                    self.publisher_id,
                    event_type,
                    sanitize(payload),
                    priority if priority in _PRIORITY_SET else str(priority).lower(),
                )
                stats = _STATE.stats
                stats["queued"] += 1
                stats["sent"] += 1
                if failed:  # another driver took it: sent, but say so
                    _PARTIAL.log(
                        LOG,
                        logging.WARNING,
                        "nova_notifier: %s sent, but not by every driver: %s",
                        event_type,
                        "; ".join(failed),
                    )
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
                        None if topics is None else list(topics),
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
    snap = lifecycle.settings("get_notifier()")
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
