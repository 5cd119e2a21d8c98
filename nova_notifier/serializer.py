"""Turning payloads into what goes over the wire: strict JSON, secrets masked.

:func:`to_wire` makes any value JSON-safe without changing what it says:
value types reach the wire as their text (an IP address as ``"10.0.0.1"``, a
UUID, a Decimal as ``"1.10"``), time-zone-aware datetimes in UTC, strings
with no lone surrogates, floats NaN and infinity as text; only objects that
have no faithful text become ``<TypeName>`` placeholders (never their
``str()``, which can carry credentials). The values of secret-named keys are
always masked; with ``screen=True`` free text is also screened for
assigned secrets (:mod:`nova_notifier.masking`).

The library's helpers screen only the free-form fields of what they build
(metadata, extra_usage_info, fault text, decorator arguments, URLs) and
hand the result over as a :class:`WirePayload`, which is sent as it is. A
payload given straight to a ``Notifier`` by its caller is free-form through
and through: :func:`sanitize` screens all of it.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import fractions
import ipaddress
import math
import pathlib
import re
import uuid
from collections.abc import Mapping
from typing import Any

from nova_notifier.masking import (
    MASK,
    NORMAL,
    SECRET,
    is_secret_key,
    key_kind,
    mask_text,
    squashed,
)

__all__ = [
    "MASK",
    "TIME_FORMAT",
    "PayloadSerializer",
    "WirePayload",
    "format_time",
    "is_secret_key",
    "mask_text",
    "placeholder",
    "sanitize",
    "to_wire",
]

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
_MAX_DEPTH = 16
_AS_TEXT = (
    uuid.UUID,
    decimal.Decimal,
    fractions.Fraction,
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
    ipaddress.IPv4Interface,
    ipaddress.IPv6Interface,
    pathlib.PurePath,
)
# Types from libraries not imported here whose str() is their value.
_AS_TEXT_MODULES = ("netaddr",)
_SURROGATE = re.compile("[\ud800-\udfff]")


class WirePayload(dict[str, Any]):
    """A payload the library built itself: already JSON-safe and screened.

    :func:`sanitize` passes it through untouched, so nothing is screened
    twice and the fields the library builds (ids, names, states, times) are
    never altered.
    """

    __slots__ = ()


def placeholder(value: object) -> str:
    """What an object with no faithful text becomes: ``<TypeName>``."""
    try:
        return f"<{type(value).__name__}>"
    except Exception:  # a metaclass with a broken __name__
        return "<object>"


def format_time(value: datetime.datetime) -> str:
    """``'%Y-%m-%dT%H:%M:%S.%f'`` text of ``value``, converted to UTC first
    when it carries a time zone (naive values are taken as UTC)."""
    if value.tzinfo is not None:
        offset = value.utcoffset()
        try:
            value = value - offset if offset else value
        except OverflowError:  # 0001-01-01 00:30+02:00 has no UTC time
            pass
        value = value.replace(tzinfo=None)
    return datetime.datetime.isoformat(value, "T", "microseconds")


def clean_text(text: str) -> str:
    """``text`` as strict JSON can carry it: lone surrogates become U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def _text(value: str, screen: bool) -> str:
    if screen:
        value = mask_text(value)
    return value if value.isascii() else clean_text(value)


def _float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


def _key(key: Any) -> str:
    if type(key) is str:
        return clean_text(key)
    if isinstance(key, (bool, int, float)) or key is None:
        return str(to_wire(key))
    wire = to_wire(key)
    return wire if isinstance(wire, str) else placeholder(key)


def _file_list(value: Any, screen: bool, depth: int, path: set[int]) -> Any:
    """Injected files: each file's path kept, its contents masked."""
    if not isinstance(value, (list, tuple)):
        return MASK
    out: list[Any] = []
    for item in value:
        if isinstance(item, Mapping):
            out.append(
                {
                    _key(k): (
                        MASK
                        if squashed(_key(k)) == "contents"
                        else _convert(v, screen, depth + 2, path)
                    )
                    for k, v in item.items()
                }
            )
        elif isinstance(item, (list, tuple)) and item:
            out.append([_convert(item[0], screen, depth + 1, path)] + [MASK])
        else:
            out.append(MASK)
    return out


def _mapping(value: Any, screen: bool, depth: int, path: set[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = key if type(key) is str and key.isascii() else _key(key)
        kind = key_kind(name)
        if kind == NORMAL:
            if type(item) is str:  # most values: spare the dispatch
                out[name] = _text(item, screen)
            else:
                out[name] = _convert(item, screen, depth + 1, path)
        elif kind == SECRET:
            out[name] = MASK
        else:
            out[name] = _file_list(item, screen, depth, path)
    return out


def _item(item: Any, screen: bool, depth: int, path: set[int]) -> Any:
    """A sequence's item; a ``(name, value)`` pair whose name is a secret's
    (headers as a list of pairs) keeps the name and loses the value."""
    if (
        type(item) in (tuple, list)
        and len(item) == 2
        and type(item[0]) is str
        and is_secret_key(item[0])
    ):
        return [clean_text(item[0]), MASK]
    return _convert(item, screen, depth, path)


def _convert(value: Any, screen: bool, depth: int, path: set[int]) -> Any:
    kind = type(value)
    if kind is str:
        return _text(value, screen)
    if kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return _float(value)
    try:
        if depth >= _MAX_DEPTH or id(value) in path:
            return placeholder(value)
        if kind is dict or isinstance(value, Mapping):
            path.add(id(value))
            try:
                return _mapping(value, screen, depth, path)
            finally:
                path.discard(id(value))
        if kind is list or isinstance(value, (list, tuple, set, frozenset)):
            path.add(id(value))
            try:
                return [_item(item, screen, depth + 1, path) for item in value]
            finally:
                path.discard(id(value))
        if isinstance(value, enum.Enum):
            return _convert(value.value, screen, depth + 1, path)
        if isinstance(value, str):  # a str subclass: its own text, not __str__
            return _text(str.__str__(value), screen)
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return int.__index__(value)
        if isinstance(value, float):
            return _float(float.__float__(value))
        if isinstance(value, datetime.datetime):
            return format_time(value)
        if isinstance(value, (datetime.date, datetime.time)):
            return value.isoformat()
        if isinstance(value, _AS_TEXT):
            return clean_text(str(value))
        if isinstance(value, (bytes, bytearray, memoryview)):
            return _text(bytes(value).decode("utf-8", "replace"), screen)
        if (type(value).__module__ or "").partition(".")[0] in _AS_TEXT_MODULES:
            return clean_text(str(value))
    except Exception:  # an object whose iteration, items() or str() raises
        pass
    return placeholder(value)


def to_wire(value: Any, screen: bool = False) -> Any:
    """A strict-JSON copy of ``value`` that says what ``value`` says.

    Mappings keep their keys (as text) and mask the values of secret-named
    keys (injected files keep their paths, lose their contents); sequences
    and sets become lists; datetimes become ``'%Y-%m-%dT%H:%M:%S.%f'`` text
    in UTC; dates and times ISO text; UUIDs, IP addresses and networks,
    Decimals, Fractions and paths their text; enums their value; bytes
    UTF-8 text; non-finite floats ``"NaN"``/``"Infinity"``/``"-Infinity"``.
    Cycles and nesting past 16 levels, and any other object, become a
    ``<TypeName>`` placeholder. With ``screen=True`` every string is also
    screened for assigned secrets (:func:`~nova_notifier.masking.mask_text`).
    Never raises; never changes ``value``.
    """
    return _convert(value, screen, 0, set())


# Screened text mappings by content. The same metadata and image properties
# go out again and again (create.start, the updates, create.end...); a hit
# costs a tuple of the items and one lookup instead of screening each value.
# Only mappings of exact str keys and values are hashed and kept (checked
# first: hashing a caller's object may raise, or recurse without limit in a
# deeply nested tuple), so an equal tuple holds the same text.
_SCREENED: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
_IMAGE_META: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
_MEMO_SIZE = 1024


def _all_text(value: dict[Any, Any]) -> bool:
    """Whether every key and value of ``value`` is an exact ``str``."""
    for key, item in value.items():
        if type(item) is not str or type(key) is not str:
            return False
    return True


def _screened_text_map(value: dict[Any, Any]) -> dict[str, str] | None:
    """``value`` screened when all its keys and values are plain text, else None."""
    out: dict[str, str] = {}
    for key, item in value.items():
        if type(item) is not str or type(key) is not str or not key.isascii():
            return None
        if key_kind(key) != NORMAL:
            return None
        item = mask_text(item)
        out[key] = item if item.isascii() else clean_text(item)
    return out


def screened(value: dict[Any, Any]) -> dict[str, Any]:
    """``to_wire(value, screen=True)`` of a dict, quicker for the usual one
    (text keys and values: user metadata, image properties)."""
    if not value:
        return {}
    if not _all_text(value):
        return _convert(value, True, 0, set())
    items = tuple(value.items())
    hit = _SCREENED.get(items)
    if hit is not None:
        return dict(hit)
    out = _screened_text_map(value)
    if out is None:
        return _convert(value, True, 0, set())
    if len(_SCREENED) >= _MEMO_SIZE:
        _SCREENED.clear()
    _SCREENED[items] = dict(out)
    return out


def screened_image_meta(system_metadata: dict[Any, Any]) -> dict[str, Any]:
    """The ``image_*`` keys of ``system_metadata`` without that prefix,
    screened (``to_wire(..., screen=True)``)."""
    if not system_metadata:
        return {}
    items = tuple(system_metadata.items()) if _all_text(system_metadata) else None
    hit = None if items is None else _IMAGE_META.get(items)
    if hit is not None:
        return dict(hit)
    meta = {
        key[6:]: item
        for key, item in system_metadata.items()
        if isinstance(key, str) and key.startswith("image_")
    }
    out = _screened_text_map(meta)
    if out is None:
        return _convert(meta, True, 0, set())
    if items is not None:
        if len(_IMAGE_META) >= _MEMO_SIZE:
            _IMAGE_META.clear()
        _IMAGE_META[items] = dict(out)
    return out


def sanitize(value: Any) -> Any:
    """What goes on the wire for a payload a caller handed to a ``Notifier``.

    A :class:`WirePayload` built by the library is returned as it is;
    anything else is free-form and is screened throughout
    (``to_wire(value, screen=True)``).
    """
    if type(value) is WirePayload:
        return value
    return _convert(value, True, 0, set())


class PayloadSerializer:
    """oslo.messaging serializer that runs every payload through :func:`sanitize`.

    Contexts arrive already redacted (see ``notifier.wire_context``) and are
    sent as a dict of their fields.
    """

    def serialize_entity(self, ctxt: Any, entity: Any) -> Any:
        return sanitize(entity)

    def deserialize_entity(self, ctxt: Any, entity: Any) -> Any:
        return entity

    def serialize_context(self, ctxt: Any) -> Any:
        # A dict, as every real driver sends it; fake:// would otherwise hand
        # the listener the context object itself.
        to_dict = getattr(ctxt, "to_dict", None)
        return to_dict() if callable(to_dict) else ctxt

    def deserialize_context(self, ctxt: Any) -> Any:
        return ctxt
