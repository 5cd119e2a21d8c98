"""Send Nova's versioned notifications (``instance.*``).

Imported only once ``[notifications] notification_format`` asks for the
versioned format: a service sending only legacy notifications never loads
oslo.versionedobjects. Every function here never raises: a payload that
cannot be built (a value Nova's field types refuse) is a logged, counted
drop of the versioned message alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nova_notifier import audit, lifecycle, notifier
from nova_notifier.versioned import build, events, objects


def publisher(source: str, host: str | None) -> str:
    """``<source>:<host>``, host defaulting to ``[DEFAULT] host``."""
    return f"{source}:{host or lifecycle.settings('versioned notification').host}"


def emit(
    context: Any,
    event_type: str,
    publisher_id: str,
    payload: objects.NotificationObject,
    error: bool = False,
) -> None:
    """Send a built payload to the versioned topics, at ERROR or INFO."""
    snap = lifecycle.settings("versioned notification")
    notifier.Notifier(publisher_id, topics=snap.versioned_topics).notify(
        context, event_type, payload.to_primitive(), "error" if error else "info"
    )


def _fault(exception: BaseException | None) -> Any:
    return None if exception is None else build.exception_payload(exception)


def notify_about_instance_action(
    context: Any,
    instance: Any,
    host: str | None,
    action: str,
    phase: str | None = None,
    source: str = "nova-compute",
    exception: BaseException | None = None,
    bdms: Iterable[Any] | None = None,
) -> None:
    """Send ``instance.<action>[.<phase>]`` about ``instance``.

    As Nova's function of that name: ERROR with the payload's ``fault``
    filled when ``exception`` is given, else INFO; publisher
    ``<source>:<host>``; ``bdms`` (block device mappings) are sent as
    given, else read from the instance when ``bdms_in_notifications`` is
    set. The payload is the one Nova sends for that action
    (InstanceCreatePayload for ``create``... InstanceActionPayload for
    most); an action whose payload needs data this call does not carry
    (``snapshot``: the image id, ``volume_attach``/``volume_detach``: the
    volume id) is dropped, logged and counted: send those with
    :func:`~nova_notifier.notify_about_instance_usage` and
    ``extra_usage_info``. Sent whatever ``notification_format`` says:
    calling it asks for the versioned form. Never raises.
    """
    event_type = f"instance.{action}" + (f".{phase}" if phase else "")
    with lifecycle.dropping(event_type):
        if lifecycle.sending_disabled():
            return
        snap = lifecycle.settings("notify_about_instance_action()")
        cls = events.payload_class(action)
        fields = _own_fields(cls, {}, exception)
        if fields is None:
            lifecycle.record_drop(
                event_type,
                f"{cls.__name__} needs {events.REQUIRED_EXTRA[cls]}: send it "
                "with notify_about_instance_usage(extra_usage_info=...)",
            )
            return
        body = build.instance_payload(
            cls,
            context,
            instance,
            bdms=bdms,
            bdms_in_notifications=snap.bdms_in_notifications,
            **fields,
        )
        emit(
            context,
            event_type,
            publisher(source, host),
            body,
            error=exception is not None or phase == "error",
        )


def _own_fields(
    cls: type[objects.InstancePayload],
    extra: Mapping[str, Any],
    fault: BaseException | None,
) -> dict[str, Any] | None:
    """The fields ``cls`` has beyond InstancePayload's, from the legacy
    call's ``extra_usage_info`` and fault; None when ``extra`` lacks what
    Nova's payload cannot do without."""
    fields: dict[str, Any] = {}
    needed = events.REQUIRED_EXTRA.get(cls)
    if needed is not None:
        if not extra.get(needed):
            return None
        fields[needed] = extra[needed]
    if cls is objects.InstanceActionRescuePayload:
        fields["rescue_image_ref"] = extra.get("rescue_image_ref")
    elif cls is objects.InstanceActionResizePrepPayload:
        new = extra.get("new_flavor")
        fields["new_flavor"] = None if new is None else build.flavor_payload(new)
    if cls is objects.InstanceExistsPayload:
        fields["audit_period"] = _audit_period(extra)
    elif issubclass(cls, objects.InstanceActionPayload):
        fields["fault"] = _fault(fault)
    return fields


def beside_usage(
    context: Any,
    instance: Any,
    legacy_publisher: str,
    suffix: str,
    network_info: Iterable[Any] | None,
    system_metadata: Mapping[str, Any] | None,
    extra_usage_info: Mapping[str, Any] | None,
    fault: BaseException | None,
) -> None:
    """The versioned message Nova sends beside ``compute.instance.<suffix>``
    (none where Nova sends none, or lacks what the payload needs)."""
    found = events.for_legacy_suffix(suffix)
    if found is None:
        return
    with lifecycle.dropping(found.event_type):
        snap = lifecycle.settings("notify_about_instance_usage()")
        extra = extra_usage_info if isinstance(extra_usage_info, Mapping) else {}
        fields = _own_fields(found.payload_class, extra, fault)
        if fields is None:
            return  # Nova's payload needs data the legacy call lacks
        service, _, host = legacy_publisher.partition(".")
        body = build.instance_payload(
            found.payload_class,
            context,
            instance,
            network_info=network_info,
            system_metadata=system_metadata,
            bdms_in_notifications=snap.bdms_in_notifications,
            **fields,
        )
        emit(
            context,
            found.event_type,
            publisher(found.source or events.source_of(service), host or None),
            body,
            error=fault is not None or found.phase == "error",
        )


def _audit_period(extra: Mapping[str, Any]) -> Any:
    begin, end = extra.get("audit_period_beginning"), extra.get("audit_period_ending")
    if begin is None or end is None:
        begin, end = audit.audit_period_bounds(current_period=False)
    return build.audit_period(begin, end)


def beside_update(
    context: Any,
    instance: Any,
    service: str,
    host: str | None,
    states: Mapping[str, Any],
    audit_period: tuple[Any, Any],
    old_display_name: str | None,
) -> None:
    """``instance.update`` beside ``compute.instance.update``, from the same
    state decision (``states``) and audit period."""
    with lifecycle.dropping("instance.update"):
        state_update = objects.InstanceStateUpdatePayload(
            old_state=states.get("old_state"),
            state=states.get("state"),
            old_task_state=states.get("old_task_state"),
            new_task_state=states.get("new_task_state"),
        )
        body = build.instance_payload(
            objects.InstanceUpdatePayload,
            context,
            instance,
            state_update=state_update,
            audit_period=build.audit_period(*audit_period),
            old_display_name=old_display_name,
            bdms_in_notifications=lifecycle.settings(
                "send_update()"
            ).bdms_in_notifications,
        )
        emit(
            context, "instance.update", publisher(events.source_of(service), host), body
        )
