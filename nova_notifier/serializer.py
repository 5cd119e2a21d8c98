"""Turning payloads into what goes over the wire: JSON-safe, secrets masked.

Every payload the library emits passes through :func:`sanitize`, whichever
helper built it, so a password or token in instance metadata, a decorated
call's arguments or an exception text never leaves the process.
"""

from __future__ import annotations

import datetime
import functools
import uuid
from collections.abc import Mapping
from typing import Any

import oslo_messaging
from oslo_utils import strutils

MASK = "***"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
_MAX_DEPTH = 16
_PRIMITIVES = (int, float, bool, type(None))


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """True when a mapping key names a secret (password, token, key, ...).

    Uses oslo.utils' own list of sensitive names, so the library masks exactly
    what the rest of OpenStack masks in its logs.
    """
    return strutils.mask_dict_password({key: "x"}, secret=MASK)[key] == MASK


def mask_text(text: str) -> str:
    """``text`` with ``password=...``-style secrets replaced by ``***``."""
    return strutils.mask_password(text, secret=MASK)


def placeholder(value: object) -> str:
    """What an object with no JSON form becomes: its type, never its ``str()``."""
    return f"<{type(value).__name__}>"


def sanitize(value: Any, _depth: int = 0) -> Any:
    """Return a JSON-safe copy of ``value`` with secrets masked.

    Mappings keep their keys (as text) and mask the values of secret-named
    keys; sequences and sets become lists; datetimes become
    ``'%Y-%m-%dT%H:%M:%S.%f'`` text; UUIDs and bytes become text; any other
    object becomes a ``<TypeName>`` placeholder rather than its ``str()``.
    """
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, _PRIMITIVES):
        return value
    if _depth >= _MAX_DEPTH:
        return placeholder(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            key = key if isinstance(key, str) else str(key)
            if is_secret_key(key):
                out[key] = MASK
            else:
                out[key] = sanitize(item, _depth + 1)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [sanitize(item, _depth + 1) for item in value]
    if isinstance(value, datetime.datetime):
        return value.strftime(TIME_FORMAT)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return mask_text(value.decode("utf-8", "replace"))
    return placeholder(value)


class PayloadSerializer(oslo_messaging.NoOpSerializer):
    """oslo.messaging serializer that runs every payload through :func:`sanitize`.

    Contexts arrive already redacted (see ``notifier.wire_context``) and are
    sent as a dict of their fields.
    """

    def serialize_entity(self, ctxt: Any, entity: Any) -> Any:
        return sanitize(entity)

    def serialize_context(self, ctxt: Any) -> Any:
        # A dict, as every real driver sends it; fake:// would otherwise hand
        # the listener the context object itself.
        to_dict = getattr(ctxt, "to_dict", None)
        return to_dict() if callable(to_dict) else ctxt
