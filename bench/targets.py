"""Every issue 11 and 12 target in one table, from the latest results of the
scripts that measure them (``bench/results/vs_nova.json``,
``faultwrap_overhead.json``, ``throughput.json``, ``cluster.json``). Each
figure is a ratio (or a time, or a count) that its script
measured against a baseline run in the same process and the same rounds;
this only gathers them. ``bash bench/run_all.sh`` ends with it.

Usage: .venv/bin/python bench/targets.py
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
SCRIPTS = ("vs_nova", "faultwrap_overhead", "throughput", "cluster")


def _rows(name: str, data: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    targets = data.get("targets") or {}
    if isinstance(targets, list):  # vs_nova: figure, value, limit, unit, aim
        for t in targets:
            unit = t.get("unit", "")
            limit = f"{'<' if t.get('strict') else '<='} {t['limit']}{unit}"
            if t.get("aim") is not None:
                limit += f", aim {t['aim']}{unit}"
            value = f"{t['value']:.2f}{unit}"
            rows.append((name, t["figure"], value, limit, t["met"]))
    else:  # figure -> {figure | figure_ms, target | target_ms, met}
        for figure, t in targets.items():
            if "figure_ms" in t:
                value, limit = f"{t['figure_ms']:.2f} ms", f"< {t['target_ms']} ms"
            else:
                number, target = t["figure"], t["target"]
                if isinstance(target, str):  # a count: "0"
                    value = str(number)
                else:
                    value = f"{number:.0f} ns" if "ns" in figure else f"{number:.2f}x"
                limit = target if isinstance(target, str) else f">= {target}x"
            rows.append((name, figure, value, limit, t["met"]))
    quick = " (quick run)" if data.get("quick") else ""
    return [(*row[:4], ("MET" if row[4] else "MISS") + quick) for row in rows]


def main() -> None:
    rows: list[tuple[str, ...]] = [("script", "target", "figure", "limit", "")]
    missing = []
    for name in SCRIPTS:
        path = RESULTS / f"{name}.json"
        if not path.exists():
            missing.append(name)
            continue
        rows.extend(_rows(name, json.loads(path.read_text())))
    widths = [max(len(str(row[i])) for row in rows) for i in range(5)]
    for index, row in enumerate(rows):
        print("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)))
        if index == 0:
            print("  ".join("-" * w for w in widths))
    if missing:
        print("not run yet: " + ", ".join(f"bench/{m}.py" for m in missing))


if __name__ == "__main__":
    main()
