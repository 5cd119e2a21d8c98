"""Write the versioned payloads' schemas from the payload classes.

The schema files under ``data/versioned/`` are generated, never edited:
``python -m nova_notifier.schemas._versioned`` (``tools/regen-docs.sh``
runs it) writes one file per payload class, each standing alone (nested
classes under ``$defs``), and the versioned entries of ``data/index.json``;
``tests/test_schemas_versioned.py`` fails when the files are not what the
classes give. Imported by that command and that test only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from oslo_versionedobjects import fields as ovo_fields

from nova_notifier.versioned import _fields, events, objects

DATA = Path(__file__).resolve().parent / "data"
ID_BASE = "https://nova-notifier.invalid/schemas/"  # as the legacy files
# ovo's isotime: whole seconds, "Z" for UTC (else the offset)
_DATETIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$"
_UUID = (
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)
_MAC = r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$"


def _type_schema(kind: Any, defs: dict[str, Any]) -> dict[str, Any]:
    if isinstance(kind, ovo_fields.Field):  # a list's or a dict's element
        return _field_schema(kind, defs)
    if isinstance(kind, ovo_fields.Object):
        _object_schema(objects.OBJECTS[kind._obj_name], defs)
        return {"$ref": f"#/$defs/{kind._obj_name}"}
    if isinstance(kind, ovo_fields.List):
        return {"type": "array", "items": _type_schema(kind._element_type, defs)}
    if isinstance(kind, ovo_fields.Dict):
        return {
            "type": "object",
            "additionalProperties": _type_schema(kind._element_type, defs),
        }
    if isinstance(kind, ovo_fields.Enum):
        return {"enum": list(dict.fromkeys(kind.valid_values))}
    if isinstance(kind, _fields.UUID):
        return {"type": "string", "pattern": _UUID}
    if isinstance(kind, ovo_fields.MACAddress):
        return {"type": "string", "pattern": _MAC}
    if isinstance(kind, ovo_fields.IPAddress):
        return {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
    if isinstance(kind, ovo_fields.DateTime):
        return {"type": "string", "pattern": _DATETIME}
    for ovo_type, json_type in (
        (ovo_fields.Boolean, "boolean"),
        (ovo_fields.Integer, "integer"),
        (ovo_fields.Float, "number"),
        (ovo_fields.String, "string"),
    ):
        if isinstance(kind, ovo_type):
            return {"type": json_type}
    raise TypeError(f"no JSON Schema for field type {type(kind).__name__}")


def _field_schema(field: Any, defs: dict[str, Any]) -> dict[str, Any]:
    schema = _type_schema(field._type, defs)
    if field.nullable:
        return {"anyOf": [schema, {"type": "null"}]}
    return schema


def _object_schema(cls: type[objects.NotificationObject], defs: dict[str, Any]) -> None:
    name = cls.__name__
    if name in defs:
        return
    defs[name] = {}  # taken: a class met again refers to it
    data = {
        field: _field_schema(cls.fields[field], defs) for field in sorted(cls.fields)
    }
    defs[name] = {
        "type": "object",
        "description": f"{name} {cls.VERSION} in Nova's object wire form.",
        "required": [
            "nova_object.name",
            "nova_object.namespace",
            "nova_object.version",
            "nova_object.data",
        ],
        "additionalProperties": False,
        "properties": {
            "nova_object.name": {"const": name},
            "nova_object.namespace": {"const": "nova"},
            "nova_object.version": {"const": cls.VERSION},
            "nova_object.data": {
                "type": "object",
                "required": sorted(cls.fields),
                "additionalProperties": False,
                "properties": data,
            },
        },
    }


def schema(cls: type[objects.NotificationObject]) -> dict[str, Any]:
    """The stand-alone JSON Schema (2020-12) of a payload class."""
    defs: dict[str, Any] = {}
    _object_schema(cls, defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{ID_BASE}versioned/{cls.__name__}.json",
        "title": f"{cls.__name__} {cls.VERSION}",
        "description": (
            f"Payload of Nova's versioned notifications that carry "
            f"{cls.__name__} {cls.VERSION}. Generated from "
            "nova_notifier.versioned.objects; do not edit."
        ),
        "$ref": f"#/$defs/{cls.__name__}",
        "$defs": dict(sorted(defs.items())),
    }


def event_types() -> dict[str, type[objects.InstancePayload]]:
    """Every versioned event type the helpers send, with its payload class."""
    found: dict[str, type[objects.InstancePayload]] = {
        "instance.update": objects.InstanceUpdatePayload,
    }
    for action in events.ACTIONS - events.PHASELESS:
        for phase in events.PHASES:
            found[f"instance.{action}.{phase}"] = events.payload_class(action)
    for suffix in events.legacy_suffixes():
        versioned = events.for_legacy_suffix(suffix)
        assert versioned is not None
        found[versioned.event_type] = versioned.payload_class
    return dict(sorted(found.items()))


def files() -> dict[str, str]:
    """Path under ``data/`` -> text, for every generated file (the index
    with its legacy entries as they are)."""
    out: dict[str, str] = {}
    payloads = {cls for cls in event_types().values()}
    for cls in sorted(payloads, key=lambda c: c.__name__):
        out[f"versioned/{cls.__name__}.json"] = _dump(schema(cls))
    index = json.loads((DATA / "index.json").read_text())
    index["event_types"] = {
        key: value
        for key, value in index["event_types"].items()
        if not value.startswith("versioned/")
    }
    for event_type, cls in event_types().items():
        index["event_types"][event_type] = f"versioned/{cls.__name__}.json"
    index["event_types"] = dict(sorted(index["event_types"].items()))
    # notify_about_instance_action() sends any action with this payload
    index["prefixes"]["instance."] = "versioned/InstanceActionPayload.json"
    index["prefixes"] = dict(sorted(index["prefixes"].items()))
    out["index.json"] = _dump(index)
    return out


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    for path, text in files().items():
        target = DATA / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    print(f"wrote {len(files())} files under {DATA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
