"""The latency report: figures from the timelines, and their text form.

:func:`build` gives a JSON-ready dict (what ``latency --json`` prints and
the HTML page draws); :func:`render_text` lays the same dict out as tables.
"""

from __future__ import annotations

import datetime
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from nova_notifier.tools.latency.boots import Boot, Delete, reordered, segment
from nova_notifier.tools.latency.events import Tracker
from nova_notifier.tools.latency.stats import QUANTILES, summarize

CREATE_PHASES = ("waiting", "spawning", "total")
REBUILD_PHASES = ("spawning", "total")


_EPOCH = datetime.datetime(1970, 1, 1)


def utc(when: float) -> datetime.datetime:
    """An epoch time as a naive UTC datetime, held within years 1 to 9999
    (the last microsecond of 9999 is, as a float, the first of 10000)."""
    try:
        return _EPOCH + datetime.timedelta(seconds=when)
    except OverflowError:
        return datetime.datetime.max if when > 0 else datetime.datetime.min


def iso(when: float | None) -> str | None:
    """An epoch time as ISO 8601 UTC text."""
    if when is None:
        return None
    return utc(when).isoformat(timespec="microseconds") + "Z"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _phases(boots: list[Boot], names: Iterable[str]) -> dict[str, Any]:
    return {name: summarize(getattr(boot, name) for boot in boots) for name in names}


def _counts(boots: list[Boot]) -> dict[str, int]:
    outcomes = Counter(boot.outcome for boot in boots)
    return {
        "count": len(boots),
        "succeeded": outcomes["succeeded"],
        "failed": outcomes["failed"],
        "building": outcomes["building"],
        "deleted_while_building": outcomes["deleted"],
        "rescheduled": sum(1 for boot in boots if len(boot.attempts) > 1),
        "without_api_acceptance": sum(1 for boot in boots if boot.accepted is None),
        "start_not_seen": sum(
            1 for boot in boots if any(a.start is None for a in boot.attempts)
        ),
        "skewed": sum(1 for boot in boots if boot.skew is not None),
    }


def boot_row(boot: Boot, names: dict[str, tuple[str, str]]) -> dict[str, Any]:
    name, flavor = names.get(boot.instance, ("", ""))
    last = boot.attempts[-1] if boot.attempts else None
    return {
        "instance": boot.instance,
        "name": name,
        "flavor": flavor,
        "host": boot.host,
        "outcome": boot.outcome,
        "accepted": iso(boot.origin),
        "attempts": len(boot.attempts),
        "waiting": _rounded(boot.waiting),
        "spawning": _rounded(boot.spawning),
        "total": _rounded(boot.total),
        "failed_after": _rounded(boot.failed_after),
        "fault": last.fault if last is not None and last.failed else None,
    }


def _skew(boots: list[Boot]) -> list[dict[str, Any]]:
    pairs: dict[tuple[str, str], list[float]] = defaultdict(list)
    for boot in boots:
        skew = boot.skew
        if skew is not None:
            pairs[(boot.api_host, boot.attempts[0].host)].append(skew)
    return [
        {
            "api_host": api_host,
            "compute_host": compute_host,
            "boots": len(skews),
            "behind_at_least": round(max(skews), 6),
        }
        for (api_host, compute_host), skews in sorted(pairs.items())
    ]


def _longest(
    boots: list[Boot], key: Callable[[Boot], float | None], limit: int
) -> list[Boot]:
    measured = [boot for boot in boots if key(boot) is not None]
    measured.sort(key=lambda boot: key(boot) or 0.0, reverse=True)
    return measured[:limit]


@dataclass
class Analysis:
    """Every instance's timeline cut into boots, rebuilds and deletes."""

    creates: list[Boot] = field(default_factory=list)
    rebuilds: list[Boot] = field(default_factory=list)
    deletes: list[Delete] = field(default_factory=list)
    reordered: int = 0
    first: float | None = None  # the earliest event kept
    last: float | None = None  # the latest: where "still building" is measured


def analyse(tracker: Tracker) -> Analysis:
    """Cut what the tracker collected into boots, rebuilds and deletes."""
    result = Analysis()
    first = last = None
    for instance, timeline in tracker.timelines.items():
        ordered = sorted(timeline)
        if ordered != timeline:  # the common case, in order, costs one compare
            result.reordered += reordered(timeline)
        if first is None or ordered[0][0] < first:
            first = ordered[0][0]
        if last is None or ordered[-1][0] > last:
            last = ordered[-1][0]
        boots, removed = segment(instance, ordered)
        for boot in boots:
            if boot.operation == "create":
                result.creates.append(boot)
            else:
                result.rebuilds.append(boot)
        result.deletes.extend(removed)
    result.creates.sort(key=lambda boot: boot.origin or 0.0)
    result.first, result.last = first, last
    return result


def build(
    tracker: Tracker, analysis: Analysis | None = None, limit: int = 10
) -> dict[str, Any]:
    """Everything the report shows, as plain JSON-ready values (seconds)."""
    if analysis is None:
        analysis = analyse(tracker)
    creates, rebuilds, deletes = (
        analysis.creates,
        analysis.rebuilds,
        analysis.deletes,
    )
    late = analysis.reordered
    by_host: dict[str, list[Boot]] = defaultdict(list)
    for boot in creates:
        if boot.attempts:
            by_host[boot.host].append(boot)
    failed = [boot for boot in creates if boot.outcome == "failed"]
    failed.sort(key=lambda boot: boot.attempts[-1].end or 0.0)
    building = [boot for boot in creates if boot.outcome == "building"]
    building.sort(key=lambda boot: boot.origin or 0.0)
    end = analysis.last
    names = tracker.names
    return {
        "input": {
            "lines": tracker.lines,
            "notifications": tracker.notifications,
            "duplicates": tracker.duplicates,
            "other_format": tracker.other_format,
            "reordered": late,
            "unreadable": tracker.unreadable,
            "unreadable_lines": list(tracker.unreadable_lines),
            "not_notifications": tracker.not_notification,
            "without_payload": tracker.without_payload,
            "without_instance": tracker.without_instance,
            "bad_timestamp": tracker.bad_timestamp,
            "ignored_event_types": dict(tracker.ignored.most_common()),
            "updates_not_used": tracker.updates_not_used,
            "first": iso(analysis.first),
            "last": iso(end),
        },
        "boots": {
            **_counts(creates),
            "phases": _phases(creates, CREATE_PHASES),
            "by_host": {
                host: {**_counts(group), "phases": _phases(group, CREATE_PHASES)}
                for host, group in sorted(by_host.items())
            },
            "slowest": [
                boot_row(boot, names)
                for boot in _longest(creates, lambda b: b.total, limit)
            ],
            "faults": dict(
                Counter(boot.attempts[-1].fault for boot in failed).most_common()
            ),
            "failures": [boot_row(boot, names) for boot in failed[:limit]],
            "still_building": [
                {
                    **boot_row(boot, names),
                    "age_at_end": _rounded(
                        None
                        if end is None or boot.origin is None
                        else end - boot.origin
                    ),
                }
                for boot in building[:limit]
            ],
            "clock_skew": _skew(creates),
        },
        "rebuilds": {
            **_counts(rebuilds),
            "phases": _phases(rebuilds, REBUILD_PHASES),
        },
        "deletes": {
            "count": len(deletes),
            "unfinished": sum(1 for d in deletes if d.end is None),
            "start_not_seen": sum(1 for d in deletes if d.start is None),
            "phases": {"delete": summarize(d.duration for d in deletes)},
        },
    }


def duration(seconds: float | None) -> str:
    """A duration people read at a glance: ``850 us``, ``12.3 ms``, ``4.21 s``."""
    if seconds is None:
        return "-"
    size = abs(seconds)
    if size < 0.001:
        return f"{seconds * 1e6:.0f} us"
    if size < 1:
        return f"{seconds * 1e3:.1f} ms"
    if size < 120:
        return f"{seconds:.2f} s"
    return f"{int(seconds // 60)}m{seconds % 60:04.1f}s"


_STAT_NAMES = ("count",) + tuple(name for name, _ in QUANTILES) + ("max",)


def _phase_rows(phases: dict[str, Any], indent: str = "") -> list[str]:
    rows = []
    for name, stats in phases.items():
        cells = [f"{stats['count']:>7}"] + [
            f"{duration(stats.get(key)):>10}" for key in _STAT_NAMES[1:]
        ]
        rows.append(f"{indent}{name:<10}" + "".join(cells))
    return rows


def _phase_header(indent: str = "") -> str:
    return f"{indent}{'phase':<10}{'count':>7}" + "".join(
        f"{key:>10}" for key in _STAT_NAMES[1:]
    )


def boots_text(count: int) -> str:
    """``1 boot``, ``2 boots``."""
    return f"{count} boot" if count == 1 else f"{count} boots"


def _boots_line(title: str, counts: dict[str, Any], api: bool = True) -> str:
    parts = [f"{counts['succeeded']} succeeded", f"{counts['failed']} failed"]
    if counts["building"]:
        parts.append(f"{counts['building']} still building at the end")
    if counts["deleted_while_building"]:
        parts.append(f"{counts['deleted_while_building']} deleted while building")
    notes = []
    if counts["rescheduled"]:
        notes.append(f"{counts['rescheduled']} rescheduled")
    if api and counts["without_api_acceptance"]:
        notes.append(
            f"{counts['without_api_acceptance']} without the API's acceptance "
            "(timed from the first event seen)"
        )
    if counts["start_not_seen"]:
        notes.append(f"{counts['start_not_seen']} whose start was never seen")
    line = f"{title}: {counts['count']} ({', '.join(parts)})"
    return line + (f"; {', '.join(notes)}" if notes else "")


def render_text(report: dict[str, Any]) -> str:
    """The report as the terminal shows it."""
    src, boots = report["input"], report["boots"]
    out = [
        f"{src['notifications']} notifications"
        + (f" from {src['lines']} lines" if src["lines"] else "")
        + (f", {src['first']} to {src['last']}" if src["first"] else ""),
    ]
    out.append(
        f"  duplicates ignored: {src['duplicates']}; the same event in the other "
        f"format: {src['other_format']}; arrived out of order: {src['reordered']}"
    )
    problems = [
        (src["unreadable"], "unreadable lines"),
        (src["not_notifications"], "lines that are not notifications"),
        (src["without_payload"], "without a payload"),
        (src["without_instance"], "without an instance_id"),
        (src["bad_timestamp"], "without a readable timestamp"),
    ]
    for count, what in problems:
        if count:
            extra = (
                f" (first at lines {', '.join(map(str, src['unreadable_lines']))})"
                if what == "unreadable lines"
                else ""
            )
            out.append(f"  {what}: {count}{extra}")
    ignored = src["ignored_event_types"]
    if ignored:
        shown = ", ".join(f"{name} {n}" for name, n in list(ignored.items())[:5])
        more = f" and {len(ignored) - 5} more types" if len(ignored) > 5 else ""
        out.append(f"  not used: {sum(ignored.values())} ({shown}{more})")
    out += ["", _boots_line("Boots", boots)]
    if boots["count"]:
        out += [_phase_header("  ")] + _phase_rows(boots["phases"], "  ")
    if boots["skewed"]:
        out.append(
            f"  {boots_text(boots['skewed'])} left out of waiting and total: "
            "their create.start is stamped before the API accepted them"
        )
    for skew in boots["clock_skew"]:
        out.append(
            f"  clock skew: {skew['compute_host']} runs at least "
            f"{duration(skew['behind_at_least'])} behind {skew['api_host']} "
            f"({boots_text(skew['boots'])})"
        )
    if boots["by_host"]:
        out += ["", "By compute host, slowest total p99 first"]
        out.append(f"  {'host':<20}{'boots':>6}{'failed':>7}  " + _phase_header())
        hosts = sorted(
            boots["by_host"].items(),
            key=lambda item: -item[1]["phases"]["total"].get("p99", -1.0),
        )
        for host, group in hosts:
            first = f"  {host[:20]:<20}{group['count']:>6}{group['failed']:>7}  "
            for index, row in enumerate(_phase_rows(group["phases"])):
                out.append((first if index == 0 else " " * len(first)) + row)
    if boots["slowest"]:
        out += ["", "Slowest boots"]
        out.append(
            f"  {'instance':<36}  {'name':<14} {'host':<18}"
            f"{'waiting':>10}{'spawning':>10}{'total':>10}"
        )
        for row in boots["slowest"]:
            out.append(
                f"  {row['instance']:<36}  {row['name'][:14]:<14} "
                f"{row['host'][:18]:<18}{duration(row['waiting']):>10}"
                f"{duration(row['spawning']):>10}{duration(row['total']):>10}"
            )
    if boots["faults"]:
        out += ["", f"Failed boots: {boots['failed']}"]
        for fault, count in boots["faults"].items():
            out.append(f"  {count:>5}  {fault[:100]}")
        for row in boots["failures"]:
            out.append(
                f"  {row['instance']}  {row['name'][:14]:<14} {row['host'][:18]:<18}"
                f" failed after {duration(row['failed_after'])}"
            )
    if boots["still_building"]:
        out += ["", f"Still building at the end: {boots['building']}"]
        for row in boots["still_building"]:
            out.append(
                f"  {row['instance']}  {row['name'][:14]:<14} "
                f"{row['host'][:18] or '(no host yet)':<18}"
                f" for {duration(row['age_at_end'])}"
            )
    rebuilds = report["rebuilds"]
    if rebuilds["count"]:
        out += ["", _boots_line("Rebuilds", rebuilds, api=False), _phase_header("  ")]
        out += _phase_rows(rebuilds["phases"], "  ")
    deletes = report["deletes"]
    if deletes["count"]:
        line = f"Deletes: {deletes['count']}"
        if deletes["unfinished"]:
            line += f" ({deletes['unfinished']} not finished)"
        out += ["", line, _phase_header("  ")]
        out += _phase_rows(deletes["phases"], "  ")
    return "\n".join(out) + "\n"
