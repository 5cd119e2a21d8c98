"""nova-notifier latency on hostile input and over a long live run.

Every hostile file is read by the real command in a subprocess: it must
print its report, count each bad line and exit 0 (2 only for a file it
cannot read at all), never a traceback. The live reader's duplicate window
is checked in both directions with a simulated clock.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nova_notifier.testing.stream import BootSpec, Stream, lines
from nova_notifier.tools.latency import Tracker, build
from nova_notifier.tools.latency.events import RecentIds
from tests.conftest import RABBIT_URL, queue_state, wait_until

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_800_000_000.0


def _good_lines() -> list[str]:
    """Two boots that succeed: 10 notifications, all of them usable."""
    s = Stream()
    for n in (1, 2):
        spec = BootSpec(f"00000000-0000-4000-8000-{n:012d}", T0 + 100 * n, 2, 10)
        s.boot(spec)
    return list(lines(s.records))


def _latency(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nova_notifier.tools.cli", "latency", *args],
        cwd=ROOT,
        capture_output=True,
        timeout=300,
    )


def _report(path: Path) -> tuple[dict, str]:
    """The JSON report of ``path`` and the text report, both by the CLI."""
    as_json = _latency("--from", str(path), "--json")
    as_text = _latency("--from", str(path))
    for done in (as_json, as_text):
        stderr = done.stderr.decode("utf-8", "replace")
        assert done.returncode == 0, stderr
        assert "Traceback" not in stderr
    return json.loads(as_json.stdout), as_text.stdout.decode()


def _hostile(kind: str) -> list[bytes]:
    good = _good_lines()
    base = json.loads(good[-1])
    if kind == "nested-arrays":
        bad = [b"[" * 100_000 + b"\n"]
    elif kind == "nested-objects":
        bad = [b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"\n"]
    elif kind == "huge-line":  # 50 MB, one line, valid JSON
        bad = [b'{"event_type": "x.y", "payload": "' + b"a" * 50_000_000 + b'"}\n']
    elif kind == "huge-garbage":
        bad = [b"x" * 50_000_000 + b"\n"]
    elif kind == "nan":
        text = json.dumps({**base, "payload": {**base["payload"], "x": 1}})
        bad = [
            text.replace('"x": 1', f'"x": {literal}').encode() + b"\n"
            for literal in ("NaN", "Infinity", "-Infinity", "1e999999")
        ]
    elif kind == "not-utf8":
        bad = [b'{"event_type": "\xff\xfe"}\n', b"\xc3\x28\n", b"\x80" * 100 + b"\n"]
    elif kind == "nul":
        bad = [b'{"event_type": "a\x00b"}\n', b"\x00\n", b'{"a": 1}\x00\n']
    elif kind == "surrogates":
        bad = [b'{"event_type": "\\ud800", "payload": {"instance_id": "\\udc00"}}\n']
    else:
        raise AssertionError(kind)
    return bad + [line.encode() for line in good]


@pytest.mark.parametrize(
    "kind",
    [
        "nested-arrays",
        "nested-objects",
        "huge-line",
        "huge-garbage",
        "nan",
        "not-utf8",
        "nul",
        "surrogates",
    ],
)
def test_a_hostile_file_is_counted_and_reported(tmp_path, kind):
    content = _hostile(kind)
    bad = len(content) - len(_good_lines())
    path = tmp_path / f"{kind}.jsonl"
    path.write_bytes(b"".join(content))
    report, text = _report(path)
    src = report["input"]
    assert src["lines"] == len(content)
    if kind == "huge-line":  # valid JSON: read, and its event type not used
        assert src["ignored_event_types"] == {"x.y": 1}
    else:
        assert src["unreadable"] == bad
        assert src["unreadable_lines"] == list(range(1, bad + 1))[:5]
        assert f"unreadable lines: {bad}" in text
    # the good boots behind the bad lines are all there
    assert (report["boots"]["count"], report["boots"]["succeeded"]) == (2, 2)
    assert "Boots: 2 (2 succeeded, 0 failed)" in text


def test_integers_past_64_bits_are_read_not_refused(tmp_path):
    good = _good_lines()
    record = json.loads(good[0])
    record["payload"]["big"] = 2**70
    record["payload"]["display_name"] = "big-\\ud800"  # escaped, not a surrogate
    path = tmp_path / "bigint.jsonl"
    path.write_text(json.dumps(record) + "\n" + "".join(good[1:]))
    report, _ = _report(path)
    assert report["input"]["unreadable"] == 0
    assert report["boots"]["count"] == 2
    assert report["boots"]["without_api_acceptance"] == 0  # line 1 was used


def test_a_lone_surrogate_in_a_name_is_printed_escaped(tmp_path):
    """A line simdjson refuses (a 70-bit integer) is read by the standard
    library, which lets a lone surrogate through: the text report escapes it
    instead of failing to write it."""
    good = _good_lines()
    records = []
    for line in good:  # the integer first: simdjson stops at what comes first
        record = {"big": 2**70, **json.loads(line)}
        record["payload"]["display_name"] = "odd\ud800name"
        records.append(record)
    path = tmp_path / "surrogate-name.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    report, text = _report(path)
    assert report["boots"]["slowest"][0]["name"] == "odd\ud800name"
    assert "odd\\ud800name" in text


def test_a_truncated_gzip_reports_what_came_before(tmp_path):
    first = tmp_path / "first.jsonl"  # a whole file before the cut one
    first.write_text("".join(_good_lines()))
    good = "".join(_good_lines() * 400).encode()
    packed = gzip.compress(good)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(packed[: len(packed) // 2])
    done = _latency("--from", str(first), "--from", str(path), "--json")
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    assert "Traceback" not in stderr
    src = json.loads(done.stdout)["input"]
    read = src["lines"] - 10 - 1  # the cut file's whole lines
    assert 0 < read < 400 * 10
    assert f"cut.jsonl.gz: cut short after {read:,} lines (" in stderr
    assert src["notifications"] == 10 + read
    assert src["unreadable"] == 1  # the line it was reading when the file ended
    assert src["unreadable_lines"] == [src["lines"]]


def test_a_file_that_is_not_gzip_at_all_is_unreadable(tmp_path):
    path = tmp_path / "plain.jsonl.gz"
    path.write_text("".join(_good_lines()))
    done = _latency("--from", str(path))
    assert done.returncode == 2
    assert b"Not a gzipped file" in done.stderr
    assert b"Traceback" not in done.stderr


def test_the_dedup_window_forgets_only_what_is_older_than_it():
    now = [0.0]
    recent = RecentIds(100.0, clock=lambda: now[0], slices=4)
    assert not recent.seen("a")
    now[0] = 99.0
    assert recent.seen("a")  # within the window: a duplicate
    now[0] = 130.0  # past the window and its last slice: forgotten
    assert not recent.seen("a")
    assert len(recent) == 1
    for n in range(30_000):  # 100 ids a second for 300 seconds
        now[0] = 200.0 + n / 100
        recent.seen(f"id-{n}")
    # at most one window plus one slice (25 s) of ids is held
    assert len(recent) <= 125 * 100
    assert recent.seen("id-29999") and not recent.seen("id-0")


def test_a_live_tracker_counts_redeliveries_within_its_window():
    s = Stream()
    spec = BootSpec("00000000-0000-4000-8000-000000000001", T0, 2, 10)
    s.boot(spec)
    now = [0.0]
    tracker = Tracker(dedup_window=60.0, clock=lambda: now[0])

    def receive(record: dict) -> None:
        fields = ("event_type", "publisher_id", "payload", "message_id", "timestamp")
        tracker.add(*(record[name] for name in fields))

    for record in s.records + s.records[:2]:  # two redelivered right away
        receive(record)
    assert tracker.duplicates == 2
    now[0] = 3600.0  # an hour later the same ids are news again
    receive(s.records[0])
    assert tracker.duplicates == 2
    assert build(tracker)["boots"]["succeeded"] == 1


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "soon"])
def test_the_dedup_window_must_be_a_positive_number_of_seconds(value):
    done = _latency("--dedup-window", value, "--timeout", "0")
    assert done.returncode == 2
    assert b"--dedup-window" in done.stderr


@pytest.mark.broker
def test_live_latency_without_a_pool_leaves_no_queue():
    proc = subprocess.Popen(
        [sys.executable, "-m", "nova_notifier.tools.cli", "latency"]
        + ["--transport-url", RABBIT_URL, "--topic", "nn-latency-one-off"]
        + ["--timeout", "60", "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        for line in proc.stderr:
            if line.startswith("listening on"):
                break
            assert time.monotonic() < deadline
        queue = line.split("one-off queue ")[1].split(",")[0]
        assert queue.startswith("nova-notifier-latency-")
        wait_until(lambda: queue_state(queue) == (0, 1), "its queue had a consumer")
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert json.loads(out)["input"]["notifications"] == 0
    wait_until(lambda: queue_state(queue) is None, "its queue was deleted")


def test_a_line_read_again_after_a_stale_view_is_counted_as_what_it_is():
    """simdjson refuses to parse while a view of the last document lives;
    the reader then reads the line again, and a JSON ``null`` is a line that
    is not a notification, not an unreadable one."""
    tracker = Tracker()
    view = tracker._parser.parse(b'{"b": [1]}')["b"]  # keeps the parser busy
    tracker.add_line(b"null\n")
    assert (tracker.lines, tracker.not_notification, tracker.unreadable) == (1, 1, 0)
    tracker.add_line(_good_lines()[0].encode())
    assert tracker.notifications == 1
    del view
