"""Turning payloads into what goes over the wire: JSON-safe, secrets masked.

Every payload the library emits passes through :func:`sanitize`, whichever
helper built it, so a password or token in instance metadata, a decorated
call's arguments or an exception text never leaves the process.
"""

from __future__ import annotations

import datetime
import functools
import re
import uuid
from collections.abc import Mapping
from typing import Any

import oslo_messaging
from oslo_utils import strutils

MASK = "***"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
_MAX_DEPTH = 16
_PRIMITIVES = (int, float, bool, type(None))
_PRIMITIVE_TYPES = frozenset(_PRIMITIVES)


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """True when a mapping key names a secret (password, token, key, ...).

    Uses oslo.utils' own list of sensitive names, so the library masks exactly
    what the rest of OpenStack masks in its logs.
    """
    return strutils.mask_dict_password({key: "x"}, secret=MASK)[key] == MASK


# oslo.utils' own list of secret names. mask_password() lowercases the text
# once per name before it looks; one search of the lowercased text for any
# name first lets the common case (no secret-like word at all) skip it.
_SECRET_NAMES = tuple(getattr(strutils, "_SANITIZE_KEYS", ()))
_ANY_SECRET_NAME = (
    re.compile("|".join(re.escape(name.lower()) for name in _SECRET_NAMES))
    if _SECRET_NAMES
    else None
)


def mask_text(text: str) -> str:
    """``text`` with ``password=...``-style secrets replaced by ``***``."""
    if len(text) <= _CACHED_TEXT_LENGTH:
        return _mask_short_text(text)
    return _mask_text(text)


def _mask_text(text: str) -> str:
    if _ANY_SECRET_NAME is not None and not _ANY_SECRET_NAME.search(text.lower()):
        return text
    return strutils.mask_password(text, secret=MASK)


# Payload strings repeat (states, hosts, flavor and image names, uuids of
# instances still alive): remember the answer for short ones.
_CACHED_TEXT_LENGTH = 256
_mask_short_text = functools.lru_cache(maxsize=16384)(_mask_text)


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
    kind = type(value)
    if kind is str:
        return mask_text(value)
    if kind in _PRIMITIVE_TYPES:
        return value
    if _depth >= _MAX_DEPTH:
        return placeholder(value)
    if kind is dict or isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                key = str(key)
            out[key] = MASK if is_secret_key(key) else sanitize(item, _depth + 1)
        return out
    if kind is list:
        return [sanitize(item, _depth + 1) for item in value]
    if isinstance(value, str):  # a str subclass
        return mask_text(str(value))
    if isinstance(value, _PRIMITIVES):
        return value
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
