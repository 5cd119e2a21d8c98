"""One readable line per notification, for the command line tools."""

from __future__ import annotations

from typing import Any

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


def summary(payload: Any) -> str:
    """``key=value`` pairs of the payload fields people look for first."""
    if not isinstance(payload, dict):
        return repr(payload)[:120]
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
