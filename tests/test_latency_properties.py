"""Property tests: the latency reader on hostile input never raises, and
every line it is given is accounted for.

Hypothesis builds streams of lines (JSON records with missing, None,
wrong-typed, huge, deeply nested, unicode and surrogate values, odd
timestamps and random event types, plus lines that are not JSON at all)
and streams of received notifications (the live path, where values are
Python objects and lone surrogates can reach the reader). For each stream
the reader, the report, its text and HTML renderings and its JSON must
come out, and the counts must add up:

    lines = blank + unreadable + not notifications + notifications
    notifications = duplicates + without payload + without instance
                    + bad timestamp + event types not used
                    + updates not used + phase events kept

``EXAMPLES`` counts the examples run; the last test prints it (``-s``).
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nova_notifier.tools.latency import Tracker, analyse, build, render_text
from nova_notifier.tools.latency.command import _writable
from nova_notifier.tools.latency.page import render_html

EXAMPLES = {"lines": 0, "received": 0}
# NN_PROPERTY_EXAMPLES=5000 for a longer hunt; the default keeps it ~10 s
SETTINGS = settings(
    max_examples=int(os.environ.get("NN_PROPERTY_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# every code point, lone surrogates included
ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
ANY_TEXT = st.text(ANY_CHAR, max_size=12)
LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    ANY_TEXT,
)
VALUE = st.recursive(
    LEAF,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3)
    ),
    max_leaves=12,
)
EVENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "compute.instance.update",
            "compute.instance.create.start",
            "compute.instance.create.end",
            "compute.instance.create.error",
            "compute.instance.rebuild.start",
            "compute.instance.rebuild.end",
            "compute.instance.rebuild.error",
            "compute.instance.delete.start",
            "compute.instance.delete.end",
            "compute.instance.exists",
            "api.fault",
        ]
    ),
    ANY_TEXT,
)
TIMESTAMPS = st.one_of(
    st.datetimes().map(str),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59.999999-14:00",
            "0001-01-01 00:00:00",
            "9999-12-31 23:59:59.999999",
            "2026-13-45 25:61:61",
            "",
            "now",
        ]
    ),
    VALUE,
)
INSTANCES = st.one_of(
    st.sampled_from(
        [f"00000000-0000-4000-8000-{n:012d}" for n in range(3)] + ["", "x" * 1000]
    ),
    VALUE,
)
PAYLOADS = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "instance_id": INSTANCES,
            "state": st.sampled_from(["building", "active", "error"]) | VALUE,
            "new_task_state": st.sampled_from(["rebuilding", "spawning"]) | VALUE,
            "display_name": VALUE,
            "instance_type": VALUE,
            "host": VALUE,
            "message": VALUE,
            "exception": VALUE,
            "fault": VALUE,
        },
    ),
    VALUE,
)
RECORDS = st.fixed_dictionaries(
    {},
    optional={
        "event_type": EVENT_TYPES | VALUE,
        "publisher_id": st.sampled_from(["api.a", "compute.c1", "compute.", "x"])
        | VALUE,
        "message_id": st.sampled_from(["m-1", "m-2", "m-3"]) | VALUE,
        "timestamp": TIMESTAMPS,
        "payload": PAYLOADS,
        "priority": VALUE,
    },
)


def _encoded(record: dict[str, Any], how: str) -> bytes:
    if how == "ascii":  # lone surrogates escaped, NaN written as NaN
        return json.dumps(record).encode() + b"\n"
    # lone surrogates written as the bytes they would be: not UTF-8
    text = json.dumps(record, ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass") + b"\n"


LINES = st.one_of(
    st.builds(_encoded, RECORDS, st.sampled_from(["ascii", "raw"])),
    st.binary(max_size=64).map(lambda b: b.replace(b"\n", b"") + b"\n"),
    st.integers(1, 20_000).map(lambda n: b"[" * n + b"\n"),
    st.integers(1, 5_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n + b"\n"),
    st.integers(1, 300_000).map(lambda n: b'{"event_type": "' + b"e" * n + b'"}\n'),
    st.sampled_from([b"\n", b"  \n", b"\x00\n", b"NaN\n", b"[Infinity]\n", b""]),
)


def _kept(tracker: Tracker) -> int:
    return sum(len(timeline) for timeline in tracker.timelines.values())


def _check(tracker: Tracker, given: int, blank: int = 0) -> None:
    """The report comes out in every form and the counts add up; ``given``
    lines (``blank`` of them blank) or, live, ``given`` notifications."""
    analysis = analyse(tracker)
    report = build(tracker, analysis, limit=5)
    json.dumps(report, allow_nan=False)  # strict JSON: what --json prints
    text = render_text(report)
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    out.write(_writable(text, out))  # what the command writes to stdout
    out.flush()
    page = render_html(report, analysis)
    page.encode("utf-8", "backslashreplace")
    src = report["input"]
    if tracker.lines or given == 0:  # lines from a file
        assert src["lines"] == given
        assert given == (
            blank + src["unreadable"] + src["not_notifications"] + src["notifications"]
        )
    else:  # notifications received: no lines
        assert src["notifications"] == given
    assert src["notifications"] == (
        src["duplicates"]
        + src["without_payload"]
        + src["without_instance"]
        + src["bad_timestamp"]
        + sum(src["ignored_event_types"].values())
        + src["updates_not_used"]
        + _kept(tracker)
    )
    boots = report["boots"]
    assert boots["count"] == (
        boots["succeeded"]
        + boots["failed"]
        + boots["building"]
        + boots["deleted_while_building"]
    )


@SETTINGS
@given(st.lists(LINES, max_size=40))
def test_lines_from_a_file_never_raise_and_all_are_counted(lines):
    EXAMPLES["lines"] += 1
    tracker = Tracker()
    lines = [line for line in lines if line]  # readlines never gives b""
    for line in lines:
        tracker.add_line(line)
    _check(tracker, len(lines), blank=sum(not line.strip() for line in lines))


@SETTINGS
@given(st.lists(RECORDS, max_size=40), st.floats(0.001, 1e6))
def test_received_notifications_never_raise_and_all_are_counted(records, window):
    """The live path: what oslo.messaging hands the endpoint, as Python
    values (event types are always text there)."""
    EXAMPLES["received"] += 1
    now = [0.0]
    tracker = Tracker(dedup_window=window, clock=lambda: now[0])
    for record in records:
        now[0] += 1.0
        event_type = record.get("event_type")
        tracker.add(
            event_type if isinstance(event_type, str) else "x",
            record.get("publisher_id"),
            record.get("payload"),
            record.get("message_id"),
            record.get("timestamp"),
        )
    _check(tracker, len(records))


def test_zz_examples_tried():
    """Runs last in this file: how many examples the properties tried."""
    print(f"\nlatency reader property examples: {EXAMPLES}")
    assert EXAMPLES["lines"] > 0 and EXAMPLES["received"] > 0
