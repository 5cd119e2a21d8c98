"""``compute.instance.<suffix>`` usage notifications, including ``exists``."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from nova_notifier import audit, lifecycle, notifier, payload
from nova_notifier._log import RateLimited, describe, get_logger
from nova_notifier.serializer import to_wire

LOG = get_logger(__name__)
_BAD_EXTRA = RateLimited()

PREFIX = "compute.instance."


def event_type_for(event_suffix: str) -> str:
    """``compute.instance.<suffix>``; a suffix already carrying the prefix
    (``instance.create.error``, ``compute.instance.create.error``) is not
    prefixed twice."""
    for prefix in (PREFIX, "instance."):
        if event_suffix.startswith(prefix):
            event_suffix = event_suffix[len(prefix) :]
            break
    return PREFIX + event_suffix


def priority_for(event_suffix: str) -> str:
    """``error`` for a suffix ending with ``error``, else ``info``."""
    return "error" if event_suffix.endswith("error") else "info"


def notify_about_instance_usage(
    notifier_: Any,
    context: Any,
    instance: Any,
    event_suffix: str,
    network_info: Iterable[Any] | None = None,
    system_metadata: Mapping[str, Any] | None = None,
    extra_usage_info: Mapping[str, Any] | None = None,
    fault: BaseException | None = None,
) -> None:
    """Emit ``compute.instance.<event_suffix>`` about ``instance``.

    ERROR priority when the suffix ends with ``error``, else INFO. The payload
    is :func:`~nova_notifier.info_from_instance` with ``extra_usage_info``
    merged in and, with ``fault``, its ``message``, ``code`` and
    ``exception``. ``notifier_`` is any notifier from ``get_notifier()`` (or an
    oslo.messaging ``Notifier``). Never raises: a malformed instance is
    logged and counted as a drop.
    """
    if lifecycle.sending_disabled() and type(notifier_) is notifier.Notifier:
        return
    event_type = _EVENT_TYPES.get(event_suffix) if type(event_suffix) is str else None
    if event_type is None:
        if not isinstance(event_suffix, str):
            lifecycle.record_drop(
                PREFIX + "?", f"event_suffix is not text: {type(event_suffix).__name__}"
            )
            return
        event_type = event_type_for(event_suffix)
        if len(_EVENT_TYPES) < 256 and type(event_suffix) is str:
            _EVENT_TYPES[event_suffix] = event_type
    legacy, versioned = lifecycle.formats()
    if legacy:
        _send_legacy(
            notifier_,
            context,
            instance,
            event_type,
            network_info,
            system_metadata,
            extra_usage_info,
            fault,
        )
    if versioned:
        _send_versioned(
            notifier_,
            context,
            instance,
            event_type[len(PREFIX) :],
            network_info,
            system_metadata,
            extra_usage_info,
            fault,
        )


def _send_legacy(
    notifier_: Any,
    context: Any,
    instance: Any,
    event_type: str,
    network_info: Iterable[Any] | None,
    system_metadata: Mapping[str, Any] | None,
    extra_usage_info: Mapping[str, Any] | None,
    fault: BaseException | None,
) -> None:
    try:
        body = payload.build_instance_info(
            instance, network_info, system_metadata, payload.image_base()
        )
        # Merged here rather than passed as **kw: a key such as "instance" or
        # "context" would otherwise clash with an argument and lose the event.
        if extra_usage_info:
            body.update(_extra(event_type, extra_usage_info))
        if fault is not None:
            body.update(payload.exception_to_dict(fault))
        priority = "error" if event_type.endswith("error") else "info"
        if type(notifier_) is notifier.Notifier:
            notifier_.notify(context, event_type, body, priority)
        else:
            getattr(notifier_, priority)(context, event_type, body)
    except Exception as exc:
        lifecycle.record_drop(event_type, describe(exc))


_EVENT_TYPES: dict[str, str] = {}


def _send_versioned(
    notifier_: Any, context: Any, instance: Any, suffix: str, *rest: Any
) -> None:
    """Nova's versioned message beside this legacy one (``notification_format``
    versioned or both); oslo.versionedobjects is loaded on the first."""
    with lifecycle.dropping("instance." + suffix):
        from nova_notifier.versioned import send

        publisher = getattr(notifier_, "publisher_id", None)
        send.beside_usage(
            context,
            instance,
            publisher if isinstance(publisher, str) else "",
            suffix,
            *rest,
        )


def _extra(event_type: str, extra: Any) -> dict[str, Any]:
    """``extra_usage_info`` screened for secrets; {} (logged) when it is not a
    mapping: the event still goes out, without what could not be read."""
    if not extra:
        return {}
    wire = to_wire(extra, screen=True) if isinstance(extra, Mapping) else None
    if not isinstance(wire, dict):
        _BAD_EXTRA.log(
            LOG,
            logging.WARNING,
            "nova_notifier: %s sent without extra_usage_info: not a mapping (%s)",
            event_type,
            type(extra).__name__,
        )
        return {}
    return wire


def notify_usage_exists(
    notifier_: Any,
    context: Any,
    instance: Any,
    current_period: bool = False,
    system_metadata: Mapping[str, Any] | None = None,
    extra_usage_info: Mapping[str, Any] | None = None,
) -> None:
    """Emit ``compute.instance.exists``: the instance's usage for an audit period.

    Carries ``audit_period_beginning`` / ``audit_period_ending`` (the last
    completed period, or the current one with ``current_period=True``, as
    ``YYYY-MM-DD HH:MM:SS`` text like Nova), ``bandwidth`` and ``image_meta``.
    Never raises.
    """
    with lifecycle.dropping(PREFIX + "exists"):
        begin, end = audit.audit_period_bounds(current_period)
        extra: dict[str, Any] = {
            "audit_period_beginning": str(begin),
            "audit_period_ending": str(end),
            "bandwidth": {},
        }
        extra.update(_extra(PREFIX + "exists", extra_usage_info))
        notify_about_instance_usage(
            notifier_,
            context,
            instance,
            "exists",
            system_metadata=system_metadata,
            extra_usage_info=extra,
        )
