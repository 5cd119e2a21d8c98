"""The latency report as one self-contained HTML page (inline SVG, no script).

Histograms of each boot phase with their p50/p90/p99 marked, a timeline of
the boots (waiting, spawning, failed, still building), and the report's
tables. Everything it shows is escaped: instance names are user data.
"""

from __future__ import annotations

import html
from typing import Any

from nova_notifier.tools.latency.boots import Boot
from nova_notifier.tools.latency.report import (
    CREATE_PHASES,
    Analysis,
    boots_text,
    duration,
    utc,
)
from nova_notifier.tools.latency.stats import QUANTILES

_MAX_ROWS = 400
_GANTT_ROWS = 100
_MAX_POINTS = 5000
_BINS = 40
_COLOURS = {
    "waiting": "#8fa8c8",
    "succeeded": "#3a9a5b",
    "failed": "#c8423b",
    "building": "#e3a72f",
    "deleted": "#999999",
}
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}
td,th{padding:2px 10px;text-align:right;border-bottom:1px solid #eee}
td:first-child,th:first-child{text-align:left}
.note{color:#666}.legend span{display:inline-block;width:12px;height:12px;
margin:0 4px 0 12px;vertical-align:middle}
svg text{font:11px system-ui,sans-serif;fill:#444}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _phase_table(phases: dict[str, Any]) -> str:
    keys = ["count"] + [name for name, _ in QUANTILES] + ["max"]
    head = "".join(f"<th>{k}</th>" for k in ["phase"] + keys)
    rows = []
    for name, stats in phases.items():
        cells = [str(stats["count"])] + [duration(stats.get(k)) for k in keys[1:]]
        rows.append(
            f"<tr><td>{_e(name)}</td>"
            + "".join(f"<td>{_e(c)}</td>" for c in cells)
            + "</tr>"
        )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _histogram(
    name: str, values: list[float], stats: dict[str, Any], colour: str
) -> str:
    if not values:
        return f"<p class=note>{_e(name)}: nothing measured</p>"
    width, height, left, bottom = 640, 150, 40, 20
    top = max(values)
    p99 = float(stats.get("p99", top))
    upper = top if top <= 3 * p99 or p99 <= 0 else p99 * 1.5
    upper = upper or 1e-6
    counts = [0] * _BINS
    for value in values:
        counts[min(_BINS - 1, max(0, int(value / upper * _BINS)))] += 1
    peak = max(counts)
    bar = (width - left) / _BINS
    parts = [
        f'<svg width="{width}" height="{height + bottom}" role="img" '
        f'aria-label="{_e(name)} histogram">'
    ]
    for i, count in enumerate(counts):
        h = count / peak * (height - 14)
        lo, hi = i * upper / _BINS, (i + 1) * upper / _BINS
        label = f"{duration(lo)} to {duration(hi)}: {count}"
        if i == _BINS - 1 and top > upper:
            label = f"{duration(lo)} and over: {count}"
        parts.append(
            f'<rect x="{left + i * bar:.1f}" y="{height - h:.1f}" '
            f'width="{bar - 1:.1f}" height="{h:.1f}" fill="{colour}">'
            f"<title>{_e(label)}</title></rect>"
        )
    for row, (key, _) in enumerate(QUANTILES):
        mark = stats.get(key)
        if mark is None or mark > upper:
            continue
        x = left + mark / upper * (width - left)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="10" y2="{height}" '
            'stroke="#333" stroke-dasharray="3,3"/>'
            f'<text x="{x + 3:.1f}" y="{12 + 12 * row}">{key} '
            f"{_e(duration(mark))}</text>"
        )
    parts.append(
        f'<text x="{left}" y="{height + 14}">0</text>'
        f'<text x="{width - 60}" y="{height + 14}">{_e(duration(upper))}</text>'
        f'<text x="0" y="{height / 2:.0f}">{peak}</text></svg>'
    )
    return f"<h3>{_e(name)}</h3>" + "".join(parts)


def _over_time(boots: list[Boot]) -> str:
    """Total (or time to failure) of each boot against when it was accepted."""
    points = [
        (boot.origin, value, boot)
        for boot in boots
        for value in (boot.total if boot.total is not None else boot.failed_after,)
        if boot.origin is not None and value is not None
    ]
    if not points:
        return "<p class=note>no boot was measured from start to end</p>"
    step = max(1, -(-len(points) // _MAX_POINTS))
    if step > 1:  # a sample, plus every outlier: the slowest 1% always show
        cut = sorted(p[1] for p in points)[int(len(points) * 0.99)]
        points = [p for i, p in enumerate(points) if i % step == 0 or p[1] >= cut]
    width, height, left, bottom = 900, 220, 50, 20
    first = min(p[0] for p in points)
    span = max(max(p[0] for p in points) - first, 1e-6)
    top = max(p[1] for p in points) or 1e-6
    parts = [f'<svg width="{width}" height="{height + bottom}">']
    for when, value, boot in points:
        x = left + (when - first) / span * (width - left - 10)
        y = height - value / top * (height - 10)
        colour = _COLOURS["failed" if boot.outcome == "failed" else "succeeded"]
        tip = f"{boot.instance} on {boot.host}: {boot.outcome} after {duration(value)}"
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{colour}" '
            f'fill-opacity="0.6"><title>{_e(tip)}</title></circle>'
        )
    parts.append(
        f'<text x="0" y="14">{_e(duration(top))}</text>'
        f'<text x="0" y="{height}">0</text>'
        f'<text x="{left}" y="{height + 14}">{_e(_clock(first))}</text>'
        f'<text x="{width - 150}" y="{height + 14}">{_e(_clock(first + span))}'
        "</text></svg>"
    )
    note = (
        f"<p class=note>every {step}th boot shown, and the slowest 1%</p>"
        if step > 1
        else ""
    )
    return (
        "<p class=note>each dot a boot: acceptance time across, total (green) "
        "or time to failure (red) up</p>" + note + "".join(parts)
    )


def _clock(when: float) -> str:
    return utc(when).isoformat(" ", "seconds") + " UTC"


def _timeline(boots: list[Boot], end: float | None) -> str:
    shown = [b for b in boots if b.origin is not None]
    if not shown:
        return "<p class=note>no boots to draw</p>"
    step = max(1, -(-len(shown) // _MAX_ROWS))
    sample = shown[::step]
    start = min(b.origin or 0.0 for b in sample)

    def finish(boot: Boot) -> float:
        last = boot.attempts[-1] if boot.attempts else None
        if last is not None and last.end is not None:
            return last.end
        return end if end is not None else (boot.origin or start)

    stop = max(finish(b) for b in sample)
    if not stop - start > 0:  # start + 1e-6 is start itself at large epochs
        stop = start + max(1.0, abs(start) * 1e-9)
    row = 10 if len(sample) <= 60 else 4
    width, left = 1000, 4
    scale = (width - 2 * left) / (stop - start)
    parts = [f'<svg width="{width}" height="{row * len(sample) + 20}">']
    for i, boot in enumerate(sample):
        y = i * row
        origin = boot.origin or start
        first = boot.start if boot.start is not None else origin
        outcome = boot.outcome
        tip = (
            f"{boot.instance} on {boot.host or 'no host'}: {outcome}; "
            f"waiting {duration(boot.waiting)}, spawning {duration(boot.spawning)}, "
            f"total {duration(boot.total or boot.failed_after)}"
        )
        segments = [(origin, max(first, origin), _COLOURS["waiting"])]
        segments.append((max(first, origin), finish(boot), _COLOURS[outcome]))
        for a, b, colour in segments:
            if b <= a:
                continue
            x = left + (a - start) * scale
            w = max(1.0, (b - a) * scale)
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 1}" '
                f'fill="{colour}"><title>{_e(tip)}</title></rect>'
            )
    parts.append(
        f'<text x="{left}" y="{row * len(sample) + 14}">0</text>'
        f'<text x="{width - 80}" y="{row * len(sample) + 14}">'
        f"{_e(duration(stop - start))}</text></svg>"
    )
    note = (
        f"<p class=note>every {step}th of {len(shown)} boots shown</p>"
        if step > 1
        else ""
    )
    legend = "".join(
        f'<span style="background:{colour}"></span>{_e(name)}'
        for name, colour in _COLOURS.items()
    )
    return f"<p class=legend>{legend}</p>{note}" + "".join(parts)


def render_html(report: dict[str, Any], analysis: Analysis) -> str:
    """A page people can open in a browser, with no file beside it."""
    boots, src = report["boots"], report["input"]
    out = [
        "<!doctype html><html><head><meta charset=utf-8>",
        "<title>nova-notifier latency</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>VM provisioning latency</h1>",
        f"<p>{_e(src['notifications'])} notifications, {_e(src['first'])} to "
        f"{_e(src['last'])}. Boots: {boots['count']} ({boots['succeeded']} "
        f"succeeded, {boots['failed']} failed, {boots['building']} still "
        f"building). Duplicates ignored: {src['duplicates']}; unreadable lines: "
        f"{src['unreadable']}.</p>",
        "<h2>Phases</h2>",
        "<p class=note>waiting: API acceptance to create.start; spawning: "
        "create.start to create.end; total: acceptance to create.end. "
        "Percentiles are nearest-rank.</p>",
        _phase_table(boots["phases"]),
    ]
    for skew in boots["clock_skew"]:
        out.append(
            f"<p><b>Clock skew</b>: {_e(skew['compute_host'])} runs at least "
            f"{_e(duration(skew['behind_at_least']))} behind "
            f"{_e(skew['api_host'])} ({boots_text(skew['boots'])} left out of "
            "waiting and total).</p>"
        )
    for name in CREATE_PHASES:
        measured = (getattr(boot, name) for boot in analysis.creates)
        values = [value for value in measured if value is not None]
        colour = _COLOURS["waiting" if name == "waiting" else "succeeded"]
        out.append(_histogram(name, values, boots["phases"][name], colour))
    out += ["<h2>Over time</h2>", _over_time(analysis.creates)]
    if len(analysis.creates) <= _GANTT_ROWS:
        out += ["<h2>Each boot</h2>", _timeline(analysis.creates, analysis.last)]
    if boots["by_host"]:
        out.append("<h2>By compute host</h2>")
        for host, group in boots["by_host"].items():
            out.append(
                f"<h3>{_e(host)}: {group['count']} boots, {group['failed']} "
                f"failed</h3>{_phase_table(group['phases'])}"
            )
    if boots["slowest"]:
        out.append(
            "<h2>Slowest boots</h2><table><tr><th>instance</th><th>name</th>"
            "<th>host</th><th>waiting</th><th>spawning</th><th>total</th></tr>"
        )
        for r in boots["slowest"]:
            out.append(
                f"<tr><td>{_e(r['instance'])}</td><td>{_e(r['name'])}</td>"
                f"<td>{_e(r['host'])}</td><td>{_e(duration(r['waiting']))}</td>"
                f"<td>{_e(duration(r['spawning']))}</td>"
                f"<td>{_e(duration(r['total']))}</td></tr>"
            )
        out.append("</table>")
    if boots["faults"]:
        out.append("<h2>Failed boots</h2><table><tr><th>fault</th><th>boots</th></tr>")
        for fault, count in boots["faults"].items():
            out.append(f"<tr><td>{_e(fault)}</td><td>{count}</td></tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)
