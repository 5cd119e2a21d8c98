"""``api.fault``: the notification an API sends when a request fails.

Reads ``[notifications] notify_on_api_faults`` (from the settings snapshot).
"""

from __future__ import annotations

from typing import Any

from oslo_context import context as oslo_context

from nova_notifier import lifecycle, notifier, payload
from nova_notifier._direct import message_id
from nova_notifier._log import describe
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


def _request_id() -> str:
    """``req-<uuid4>`` as oslo.context makes one, from the library's own
    id generator rather than ``os.urandom``: urandom releases the GIL, and
    in background mode the sender thread then holds the request up (the
    id must be unique, not unguessable)."""
    return f"req-{message_id()}"


_ADMIN: dict[str, Any] = {}


def _admin_fields() -> notifier.WireContext:
    """What an admin ``RequestContext`` gives the wire, with a fresh
    ``request_id``: built from one taken at first use, as building a
    ``RequestContext`` per fault costs more than the rest of the payload."""
    if not _ADMIN:
        _ADMIN.update(
            notifier.wire_context(_AdminContext(is_admin=True, overwrite=False))
        )
    return notifier.WireContext(_ADMIN, request_id=_request_id())


def current_context() -> Any:
    """The calling thread's oslo.context ``RequestContext``, else the fields
    of an admin one (a fresh ``request_id`` each call; never made current)."""
    ctxt = oslo_context.get_current()
    return _admin_fields() if ctxt is None else ctxt


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
    try:
        if enabled():
            _emit(url, status, exception)
    except Exception as exc:  # what lifecycle.dropping() does, without its cost
        lifecycle.record_drop(EVENT_TYPE, describe(exc))


def _emit(url: str, status: int, exception: BaseException | str) -> None:
    """``send_api_fault`` once it is known to be enabled (may raise)."""
    text = (
        to_wire(exception, screen=True)
        if isinstance(exception, str)
        else payload.exception_text(exception)
    )
    body = WirePayload(
        url=to_wire(url, screen=True), status=_status(status), exception=text
    )
    notifier.get_notifier("api").error(current_context(), EVENT_TYPE, body)


def _status(status: Any) -> int:
    try:
        return int(status)
    except Exception:  # not a number: the fault itself is what matters
        return 500
