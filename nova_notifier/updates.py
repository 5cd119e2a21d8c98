"""``compute.instance.update``: the state-change rule and the two senders.

Reads ``[notifications] notify_on_state_change`` (from the settings snapshot).
"""

from __future__ import annotations

from typing import Any

from nova_notifier import audit, lifecycle, notifier, payload
from nova_notifier._log import describe, get_logger
from nova_notifier.conf import notifications as options
from nova_notifier.exceptions import NotInitializedError
from nova_notifier.serializer import WirePayload, format_time, to_wire

LOG = get_logger(__name__)

EVENT_TYPE = "compute.instance.update"
VM_STATE, VM_AND_TASK_STATE = options.VM_STATE, options.VM_AND_TASK_STATE


def _mode() -> str | None:
    """The state-change mode; None (and a counted drop before ``init()``)
    when nothing is to be sent. Read before anything else is done, so the
    disabled path costs one snapshot check."""
    try:
        return lifecycle.settings("send_update()").state_change
    except NotInitializedError as exc:
        lifecycle.record_drop(EVENT_TYPE, str(exc))
        return None


def is_transition(
    mode: str | None,
    old_vm_state: Any,
    new_vm_state: Any,
    old_task_state: Any,
    new_task_state: Any,
) -> bool:
    """Whether a change counts as a state transition under ``mode``.

    ``vm_state``: the VM state changed. ``vm_and_task_state``: the VM state
    or the task state changed. Unset: never.
    """
    if not mode:
        return False
    if old_vm_state != new_vm_state:
        return True
    return mode == VM_AND_TASK_STATE and old_task_state != new_task_state


def send_update(
    context: Any,
    old_instance: Any,
    new_instance: Any,
    service: str = "compute",
    host: str | None = None,
) -> None:
    """Emit one ``compute.instance.update`` for a change from old to new.

    Nothing is sent while ``notify_on_state_change`` is unset. Otherwise
    exactly one update is sent: a transition (old and new states, as the two
    instances have them) when the change counts under the mode, else a plain
    update with the new instance's states and ``old_display_name`` when it
    was renamed. Never raises.
    """
    mode = _mode()
    if not mode:
        return
    try:
        if lifecycle.sending_disabled():
            return
        get = payload.get_field
        old_vm, new_vm = get(old_instance, "vm_state"), get(new_instance, "vm_state")
        old_task = get(old_instance, "task_state")
        new_task = get(new_instance, "task_state")
        if is_transition(mode, old_vm, new_vm, old_task, new_task):
            # Unlike Nova, an old task state of None stays None: replacing it
            # with the new one would hide the very change being reported.
            states = _states_payload(old_vm, new_vm, old_task, new_task)
            _send(context, new_instance, service, host, states)
            return
        old_name = get(old_instance, "display_name")
        renamed = old_name != get(new_instance, "display_name")
        states = _states_payload(new_vm, new_vm, new_task, new_task)
        _send(
            context,
            new_instance,
            service,
            host,
            states,
            old_display_name=old_name if renamed else None,
        )
    except Exception as exc:
        lifecycle.record_drop(EVENT_TYPE, describe(exc))


def send_update_with_states(
    context: Any,
    instance: Any,
    old_vm_state: Any,
    new_vm_state: Any,
    old_task_state: Any,
    new_task_state: Any,
    service: str = "compute",
    host: str | None = None,
    verify_states: bool = False,
) -> None:
    """Emit ``compute.instance.update`` carrying the given old and new states.

    Nothing is sent while ``notify_on_state_change`` is unset, nor, with
    ``verify_states=True``, when the change does not count as a transition
    under the mode. A ``None`` state is replaced by the instance's current
    one. Never raises.
    """
    mode = _mode()
    if not mode:
        return
    try:
        if lifecycle.sending_disabled():
            return
        if verify_states and not is_transition(
            mode, old_vm_state, new_vm_state, old_task_state, new_task_state
        ):
            return
        current_vm = payload.get_field(instance, "vm_state")
        current_task = payload.get_field(instance, "task_state")
        states = _states_payload(
            current_vm if old_vm_state is None else old_vm_state,
            current_vm if new_vm_state is None else new_vm_state,
            current_task if old_task_state is None else old_task_state,
            current_task if new_task_state is None else new_task_state,
        )
        _send(context, instance, service, host, states)
    except Exception as exc:
        lifecycle.record_drop(EVENT_TYPE, describe(exc))


def _states_payload(
    old_vm_state: Any, new_vm_state: Any, old_task_state: Any, new_task_state: Any
) -> dict[str, Any]:
    return {
        "old_state": old_vm_state,
        "state": new_vm_state,
        "old_task_state": old_task_state,
        "new_task_state": new_task_state,
    }


def update_payload(
    context: Any,
    instance: Any,
    states: dict[str, Any],
    old_display_name: str | None = None,
    bandwidth: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The payload of ``compute.instance.update`` (no ``fixed_ips``).

    ``states`` gives ``old_state``, ``state``, ``old_task_state`` and
    ``new_task_state``.
    """
    return dict(_update_payload(instance, states, old_display_name, bandwidth))


def _update_payload(
    instance: Any,
    states: dict[str, Any],
    old_display_name: str | None = None,
    bandwidth: dict[str, Any] | None = None,
    audit_period: tuple[Any, Any] | None = None,
) -> WirePayload:
    snap = lifecycle.settings("send_update()")
    info = payload.build_instance_info(instance, None, None, snap.image_base)
    begin, end = audit_period or audit.audit_period_bounds(current_period=True)
    for key, value in states.items():
        info[key] = (
            value
            if value is None or (type(value) is str and value.isascii())
            else to_wire(value)
        )
    info["audit_period_beginning"] = format_time(begin)
    info["audit_period_ending"] = format_time(end)
    info["bandwidth"] = to_wire(bandwidth, screen=True) if bandwidth else {}
    if old_display_name:
        info["old_display_name"] = to_wire(old_display_name)
    return info


def _send(
    context: Any,
    instance: Any,
    service: str,
    host: str | None,
    states: dict[str, Any],
    old_display_name: str | None = None,
) -> None:
    legacy, versioned = lifecycle.formats()
    # one audit period for both formats, as Nova builds the versioned
    # update from the legacy payload
    period = audit.audit_period_bounds(current_period=True)
    if legacy:
        body = _update_payload(instance, states, old_display_name, None, period)
        notifier.get_notifier(service, host).notify(context, EVENT_TYPE, body, "info")
    if versioned:
        # instance.update, from the same state decision; oslo.versionedobjects
        # is loaded on the first.
        from nova_notifier.versioned import send

        send.beside_update(
            context,
            instance,
            service,
            host,
            states,
            period,
            old_display_name,
        )
