"""JSON Schemas (draft 2020-12) of the payloads this library sends.

The schema files are package data under ``nova_notifier/schemas/data/``:
``legacy/`` holds the legacy (unversioned) payloads, ``versioned/`` is where
the versioned ``instance.*`` ones go. ``data/index.json`` maps each known
event type to its file (``event_types``) and gives the files for event types
that are not listed but start with a known prefix (``prefixes``, the longest
wins: ``compute.instance.<any suffix>``). A file may ``$ref`` another by its
path relative to itself; :func:`schema_for` returns the schema with what it
refers to bundled in, so it stands alone.

Nothing here imports ``jsonschema`` except :func:`validate`, when called.
"""

from __future__ import annotations

import copy
import functools
import json
import posixpath
from collections.abc import Iterator
from importlib import resources
from typing import Any

__all__ = ["UnknownEventType", "event_types", "schema_for", "validate"]


class UnknownEventType(LookupError):
    """No schema describes this event type's payload."""


def _read(path: str) -> Any:
    """The parsed JSON of ``data/<path>`` (a ``/``-separated relative path)."""
    node = resources.files(__name__).joinpath("data", *path.split("/"))
    return json.loads(node.read_text(encoding="utf-8"))


@functools.cache
def _index() -> dict[str, Any]:
    return _read("index.json")


@functools.cache
def _file(path: str) -> dict[str, Any]:
    return _read(path)


def _path_for(event_type: str) -> str:
    """The data file describing ``event_type``; UnknownEventType if none."""
    index = _index()
    path = index["event_types"].get(event_type)
    if path is not None:
        return path
    prefixes = [p for p in index["prefixes"] if event_type.startswith(p)]
    # "compute.instance." alone names no event: a suffix must follow.
    prefixes = [p for p in prefixes if len(event_type) > len(p)]
    if prefixes:
        return index["prefixes"][max(prefixes, key=len)]
    known = ", ".join(f"{prefix}<suffix>" for prefix in sorted(index["prefixes"]))
    raise UnknownEventType(
        f"no schema for event type {event_type!r} (there is one for each of "
        f"{len(index['event_types'])} known event types and for {known})"
    )


def event_types() -> list[str]:
    """The event types that have a schema, sorted (each one exactly; any
    other ``compute.instance.<suffix>`` has one too, that of the usage
    events)."""
    return sorted(_index()["event_types"])


def _refs(node: Any) -> Iterator[str]:
    """Every ``$ref`` value in a schema, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _referred(path: str) -> list[str]:
    """The other data files that the file at ``path`` refers to, directly
    or through each other, in the order first met."""
    found: list[str] = []
    pending = [path]
    while pending:
        current = pending.pop(0)
        for ref in _refs(_file(current)):
            target = ref.partition("#")[0]
            if not target:
                continue
            other = posixpath.normpath(
                posixpath.join(posixpath.dirname(current), target)
            )
            if other != path and other not in found:
                found.append(other)
                pending.append(other)
    return found


@functools.cache
def _bundled(path: str) -> dict[str, Any]:
    schema = copy.deepcopy(_file(path))
    referred = _referred(path)
    if referred:
        # Embedded resources (each keeps its own $id), as 2020-12 bundles
        # them: "$ref": "_instance-base.json" resolves to the one in $defs.
        defs = schema.setdefault("$defs", {})
        for other in referred:
            defs[other] = copy.deepcopy(_file(other))
    return schema


def schema_for(event_type: str) -> dict[str, Any]:
    """The JSON Schema of ``event_type``'s payload, as a new dict the caller
    may change: the schema file's content, the files it refers to embedded
    under ``$defs`` (keyed by their path under ``data/``) so that it needs
    nothing else. Raises :class:`UnknownEventType` (a ``LookupError``) for
    an event type no schema describes."""
    return copy.deepcopy(_bundled(_path_for(event_type)))


@functools.cache
def _validator(path: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_bundled(path))


def validate(event_type: str, payload: Any) -> None:
    """Check ``payload`` against ``event_type``'s schema; returns None when
    it is valid.

    Raises ``jsonschema.ValidationError`` (the most relevant error) when it
    is not: its ``json_path`` (``$.fixed_ips[0].version``) and ``path`` say
    where, its ``message`` what. Raises :class:`UnknownEventType` for an
    event type no schema describes. Needs the ``jsonschema`` package
    (``pip install nova-notifier[test]``), imported only here.
    """
    path = _path_for(event_type)
    from jsonschema.exceptions import best_match

    error = best_match(_validator(path).iter_errors(payload))
    if error is not None:
        raise error
