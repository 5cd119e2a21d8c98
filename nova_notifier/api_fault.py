"""``api.fault``: the notification an API sends when a request fails.

Owns ``[notifications] notify_on_api_faults``.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from oslo_config import cfg
from oslo_context import context as oslo_context

from nova_notifier import notifier, payload
from nova_notifier.serializer import WirePayload, to_wire

EVENT_TYPE = "api.fault"

OPTS = [
    cfg.BoolOpt(
        "notify_on_api_faults",
        default=False,
        deprecated_opts=[cfg.DeprecatedOpt("notify_api_faults", group="DEFAULT")],
        help="Send an api.fault notification (ERROR) for every request that "
        "fails with an exception or a 5xx response.",
    ),
]


class _AdminContext(oslo_context.RequestContext):
    """The admin context of a fault sent outside any request context.

    A plain ``RequestContext`` built while the thread has no current context
    makes itself the current one (even with ``overwrite=False``), so the
    next request served by this thread would find an admin context there.
    """

    def update_store(self) -> None:
        return None


def _request_id() -> str:
    """``req-<uuid4>`` as oslo.context makes one, from ``random`` rather
    than ``os.urandom``: urandom releases the GIL, and in background mode
    the sender thread then holds the request up until it lets go (a request
    id must be unique, not unguessable; ``random`` is reseeded at fork)."""
    return f"req-{uuid.UUID(int=random.getrandbits(128), version=4)}"


class _AdminFields:
    """What an admin ``RequestContext`` gives the wire (``to_dict()``), built
    from one taken at first use with a fresh ``request_id`` each time:
    building a ``RequestContext`` per fault costs more than the rest of
    the payload."""

    __slots__ = ("_values",)
    _template: dict[str, Any] | None = None

    def __init__(self) -> None:
        template = _AdminFields._template
        if template is None:
            template = _AdminContext(is_admin=True, overwrite=False).to_dict()
            _AdminFields._template = template
        self._values = {**template, "request_id": _request_id()}

    def to_dict(self) -> dict[str, Any]:
        return dict(self._values)


def current_context() -> Any:
    """The calling thread's oslo.context ``RequestContext``, else the fields
    of an admin one (a fresh ``request_id`` each call; never made current)."""
    ctxt = oslo_context.get_current()
    return _AdminFields() if ctxt is None else ctxt


def enabled() -> bool:
    """Whether ``api.fault`` notifications would be sent now."""
    return (
        notifier.settings("send_api_fault()").api_faults
        and not notifier.sending_disabled()
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
    except Exception as exc:  # what notifier.dropping() does, without its cost
        notifier.record_drop(EVENT_TYPE, notifier.describe(exc))


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
