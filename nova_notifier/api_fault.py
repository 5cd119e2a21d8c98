"""``api.fault``: the notification an API sends when a request fails.

Reads ``[notifications] notify_on_api_faults`` (from the settings snapshot).
"""

from __future__ import annotations

from typing import Any

from oslo_context import context as oslo_context

from nova_notifier import lifecycle, notifier, payload
from nova_notifier.serializer import WirePayload, to_wire

EVENT_TYPE = "api.fault"


class _AdminContext(oslo_context.RequestContext):
    """The admin context of a fault sent outside any request context.

    A plain ``RequestContext`` built while the thread has no current context
    makes itself the current one (even with ``overwrite=False``), so the
    next request served by this thread would find an admin context there.
    """

    def update_store(self) -> None:
        return None


def current_context() -> Any:
    """The calling thread's oslo.context ``RequestContext``, else an admin one."""
    ctxt = oslo_context.get_current()
    if ctxt is None:
        ctxt = _AdminContext(is_admin=True, overwrite=False)
    return ctxt


def enabled() -> bool:
    """Whether ``api.fault`` notifications would be sent now."""
    return (
        lifecycle.settings("send_api_fault()").api_faults
        and not lifecycle.sending_disabled()
    )


def send_api_fault(url: str, status: int, exception: BaseException | str) -> None:
    """Emit one ``api.fault`` (ERROR, publisher ``api.<host>``) when enabled.

    Payload ``{"url", "status", "exception"}``, the exception as secret-free
    text. The context is the thread's current ``RequestContext`` or an admin
    one. Never raises.
    """
    with lifecycle.dropping(EVENT_TYPE):
        if not enabled():
            return
        text = (
            to_wire(exception, screen=True)
            if isinstance(exception, str)
            else payload.exception_text(exception)
        )
        body = WirePayload(
            url=to_wire(url, screen=True),
            status=_status(status),
            exception=text,
        )
        notifier.get_notifier("api").error(current_context(), EVENT_TYPE, body)


def _status(status: Any) -> int:
    try:
        return int(status)
    except Exception:  # not a number: the fault itself is what matters
        return 500
