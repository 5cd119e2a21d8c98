"""``notify_decorator``: one notification per call of a wrapped function.

Reads ``[notifications] default_level`` and ``default_publisher_id`` (from
the settings snapshot).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from oslo_context import context as oslo_context

from nova_notifier import lifecycle, notifier
from nova_notifier.conf import notifications as options
from nova_notifier.serializer import MASK, WirePayload, is_secret_key, to_wire

F = TypeVar("F", bound=Callable[..., Any])

LEVELS = options.LEVELS

_SELF_NAMES = ("self", "cls")


def _positional_names(fn: Callable[..., Any]) -> tuple[list[str], bool]:
    """Names of ``fn``'s positional parameters and whether the first is self/cls."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return [], False
    names = [
        p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return names, bool(names) and names[0] in _SELF_NAMES


def call_payload(
    names: list[str], skip_first: bool, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """The request context found in a call, and ``{"args", "kwarg"}`` without it.

    ``self``/``cls`` and context objects are left out; a positional argument
    whose parameter name is secret-like (``password``, ``token``...) is
    masked, and so is a keyword argument with such a name; free text in the
    values is screened for assigned secrets.
    """
    ctxt = None
    out_args = []
    for index, value in enumerate(args):
        if index == 0 and skip_first:
            continue
        if isinstance(value, oslo_context.RequestContext):
            ctxt = ctxt or value
            continue
        name = names[index] if index < len(names) else ""
        out_args.append(MASK if name and is_secret_key(name) else value)
    out_kwargs = {}
    for key, value in kwargs.items():
        if isinstance(value, oslo_context.RequestContext):
            ctxt = ctxt or value
            continue
        out_kwargs[key] = value
    return ctxt, WirePayload(to_wire({"args": out_args, "kwarg": out_kwargs}, True))


def _emit(
    name: str, names: list[str], skip_first: bool, args: Any, kwargs: Any
) -> None:
    with lifecycle.dropping(name):
        # Before init() (or after cleanup()) this raises and the call is
        # counted as a drop, like every other helper's.
        snap = lifecycle.settings("notify_decorator")
        if lifecycle.sending_disabled():
            return
        ctxt, body = call_payload(names, skip_first, args, kwargs)
        level = snap.decorator_level
        publisher = snap.decorator_publisher or snap.host
        notifier.Notifier(publisher).notify(
            ctxt or oslo_context.get_current(), name, body, level
        )


def notify_decorator(name: str, fn: F) -> F:
    """Wrap ``fn`` so every call first emits ``name`` as its event_type.

    Payload ``{"args": [...], "kwarg": {...}}`` (JSON-safe, secrets masked,
    no ``self``/``cls`` or context), priority ``default_level``, publisher
    ``default_publisher_id`` or the host. Then ``fn`` runs and its result or
    exception comes back unchanged; a failure to emit never stops the call.
    """
    names, skip_first = _positional_names(fn)

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        _emit(name, names, skip_first, args, kwargs)
        return fn(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
