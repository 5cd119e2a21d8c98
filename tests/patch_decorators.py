"""Decorators for monkey_patch tests (a module of their own, so not patched)."""

from __future__ import annotations

from typing import Any

WRAPPED: list[str] = []


def record(name: str, fn: Any) -> Any:
    """Note which names monkey_patch wraps; return ``fn`` itself."""
    WRAPPED.append(name)
    return fn


not_callable = "a decorator path naming a string"
