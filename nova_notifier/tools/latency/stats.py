"""Percentiles of phase durations."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values: a value that was measured.

    The smallest value with at least ``q`` of the values at or below it.
    """
    if not ordered:
        raise ValueError("percentile of no values")
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def summarize(values: Iterable[float | None]) -> dict[str, Any]:
    """``count``, ``p50``, ``p90``, ``p99`` and ``max`` of the values given.

    ``None`` values (a phase that could not be measured) are left out; with
    nothing left, only ``count: 0`` is returned.
    """
    ordered = sorted(value for value in values if value is not None)
    result: dict[str, Any] = {"count": len(ordered)}
    if ordered:
        for name, q in QUANTILES:
            result[name] = round(percentile(ordered, q), 6)
        result["max"] = round(ordered[-1], 6)
    return result
