"""Nova 34's notification samples, as test vectors (never package data).

``bash tools/nova-samples.sh`` fetches them from Nova's sdist on PyPI into
``.cache/`` (``tools/test.sh`` runs it). A sample's ``$ref`` pulls in a file
of ``common_payloads/``; the sample's own keys are merged over it, dicts
merged, anything else replaced, as Nova's ``nova/tests/json_ref.py`` does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(
    os.environ.get("NOVA_SAMPLES_DIR")
    or ROOT / ".cache" / "nova-34.0.0" / "notification_samples"
)


def available() -> bool:
    return (SAMPLES / "instance-create-end.json").is_file()


def names(prefix: str = "instance-") -> list[str]:
    """The sample files whose name starts with ``prefix``."""
    return sorted(p.name for p in SAMPLES.glob(f"{prefix}*.json"))


def load(name: str) -> dict[str, Any]:
    """The sample, every ``$ref`` resolved."""
    path = SAMPLES / name
    return _resolve(json.loads(path.read_text()), path.parent)


def _resolve(value: Any, base: Path) -> Any:
    if isinstance(value, list):
        return [_resolve(item, base) for item in value]
    if not isinstance(value, dict):
        return value
    own = {k: _resolve(v, base) for k, v in value.items() if k != "$ref"}
    if "$ref" not in value:
        return own
    path = base / value["$ref"].split("#")[0]
    referred = _resolve(json.loads(path.read_text()), path.parent)
    return _merge(referred, own)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def json_type(value: Any) -> str:
    """The JSON type of a decoded value (integers apart from other numbers)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
