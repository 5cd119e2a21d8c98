"""One readable line per notification, for the command line tools."""

from __future__ import annotations

from typing import Any, cast

# payload key -> label, in the order they are shown
_FIELDS = (
    ("instance_id", "id"),
    ("display_name", "name"),
    ("old_state", "old"),
    ("state", "state"),
    ("new_task_state", "task"),
    ("instance_type", "flavor"),
    ("status", "status"),
    ("url", "url"),
    ("code", "code"),
    ("message", "message"),
    ("exception", "exception"),
)


_EMPTY: dict[str, Any] = {}


def _object_data(value: Any, objects: tuple[type, ...]) -> Any:
    if not isinstance(value, objects):
        return _EMPTY
    data = cast(Any, value).get("nova_object.data")
    return data if isinstance(data, objects) else _EMPTY


def versioned_fields(
    payload: Any, objects: tuple[type, ...] = (dict,)
) -> dict[str, Any] | None:
    """A versioned payload's ``nova_object.data`` under the legacy names
    (instance id, name, states, flavor, host, fault), None when it has no
    data. ``objects``: what a JSON object is (dict; a parser's view too)."""
    data = _object_data(payload, objects)
    if data is _EMPTY:
        return None
    states = _object_data(data.get("state_update"), objects)
    fault = _object_data(data.get("fault"), objects)
    fields = {
        "instance_id": data.get("uuid"),
        "display_name": data.get("display_name"),
        "old_state": states.get("old_state"),
        "state": states.get("state") or data.get("state"),
        "state_description": data.get("task_state"),
        "new_task_state": states.get("new_task_state"),
        "instance_type": _object_data(data.get("flavor"), objects).get("name"),
        "host": data.get("host"),
        "message": fault.get("exception_message"),
        "exception": fault.get("exception"),
    }
    if states is _EMPTY:
        del fields["old_state"]
    return fields


def summary(payload: Any) -> str:
    """``key=value`` pairs of the payload fields people look for first; a
    versioned payload's from its ``nova_object.data``, with its class and
    version."""
    if not isinstance(payload, dict):
        return repr(payload)[:120]
    if "nova_object.data" in payload:
        name = payload.get("nova_object.name")
        version = payload.get("nova_object.version")
        shown = summary(versioned_fields(payload) or {})
        return f"{shown} [{name} {version}]".strip()
    if "args" in payload and "kwarg" in payload:
        return f"args={payload['args']} kwarg={payload['kwarg']}"
    parts = []
    for key, label in _FIELDS:
        value = payload.get(key)
        if value in (None, ""):
            continue
        if key == "instance_id":
            value = str(value)[:8]  # enough to tell instances apart; --json has all
        elif key == "state" and "old_state" not in payload:
            task = payload.get("state_description")
            value = f"{value}/{task}" if task else value
        parts.append(f"{label}={value}")
    return " ".join(parts)


def line(
    metadata: dict[str, Any],
    priority: str,
    publisher_id: str,
    event_type: str,
    payload: Any,
) -> str:
    """``time priority publisher event_type fields`` for one notification."""
    stamp = str(metadata.get("timestamp", ""))[11:23]
    return (
        f"{stamp:<12} {priority:<5} {publisher_id:<22} {event_type:<31} "
        f"{summary(payload)}"
    )
