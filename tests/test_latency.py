"""nova-notifier latency: exact figures from a stream whose latencies are known.

The stream below is built with :mod:`nova_notifier.testing.stream`; every
expected figure is worked out by hand in the comments (percentiles are
nearest-rank: the k-th smallest of n values, k = ceil(q * n)).
"""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest

from nova_notifier.notifier import PRIORITIES
from nova_notifier.testing.stream import BootSpec, Stream, lines
from nova_notifier.tools.amqp_queues import delete_queues
from nova_notifier.tools.latency import Tracker, build, render_text
from nova_notifier.tools.latency.stats import percentile
from tests.conftest import RABBIT_URL, broker_available

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T0 = 1_800_000_000.0
FAULT = "No valid host was found. There are not enough hosts available."


def _uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def known_stream() -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The records of every case, in the order they happened; names -> uuids."""
    s = Stream()
    ids: dict[str, str] = {}

    def spec(name: str, n: int, **kw: Any) -> BootSpec:
        ids[name] = _uuid(n)
        return BootSpec(instance=ids[name], name=name, **kw)

    # B1..B10: waiting i s, spawning 10i s, total 11i s; odd on compute-1.
    for i in range(1, 11):
        host = "compute-1" if i % 2 else "compute-2"
        s.boot(
            spec(
                f"b{i}", i, accepted=T0 + 100 * i, waiting=i, spawning=10 * i, host=host
            )
        )
    # S1: compute-3's clock runs 3 s behind: its create.start is stamped 2 s
    # before the API accepted the boot. Spawning (one host) still counts.
    s.boot(
        spec(
            "s1",
            11,
            accepted=T0 + 2000,
            waiting=1,
            spawning=30,
            host="compute-3",
            skew=3,
        )
    )
    # M1: create.start never seen; total 50 s from the API's acceptance.
    s.boot(
        spec("m1", 12, accepted=T0 + 3000, waiting=10, spawning=40, host="compute-2"),
        start=False,
    )
    # F1: fails after 2 s waiting and 5 s on compute-1.
    s.boot(
        spec(
            "f1",
            13,
            accepted=T0 + 4000,
            waiting=2,
            spawning=5,
            fault=FAULT,
            host="compute-1",
        )
    )
    # R1: fails on compute-1 (start +1, error +4), rescheduled to compute-2
    # (start +6, end +26): waiting 1, spawning 20 (the attempt that worked),
    # total 26.
    r1 = spec("r1", 14, accepted=T0 + 5000, waiting=1, spawning=3, host="compute-1")
    s.api_update(r1)
    s.notify(
        "compute.instance.create.start",
        "compute.compute-1",
        T0 + 5001,
        s.payload(r1, "building", "spawning"),
    )
    s.notify(
        "compute.instance.create.error",
        "compute.compute-1",
        T0 + 5004,
        s.payload(r1, "error", None, message="Build aborted: rescheduling"),
        priority="ERROR",
    )
    s.notify(
        "compute.instance.create.start",
        "compute.compute-2",
        T0 + 5006,
        s.payload(r1, "building", "spawning"),
    )
    s.notify(
        "compute.instance.create.end",
        "compute.compute-2",
        T0 + 5026,
        s.payload(r1, "active", None),
    )
    # N1: no API update and nothing before create.start: waiting unknown,
    # total from the first event seen (the start) = spawning = 40.
    s.boot(
        spec("n1", 15, accepted=T0 + 6000, waiting=4, spawning=40, host="compute-1"),
        accepted=False,
    )
    # N2: no API update, but a building update 2 s before create.start:
    # waiting 2, spawning 30, total 32.
    n2 = spec("n2", 16, accepted=T0 + 7000, waiting=2, spawning=30, host="compute-2")
    s.notify(
        "compute.instance.update",
        "compute.conductor-1",
        T0 + 7000,
        s.payload(n2, "building", "scheduling"),
    )
    s.boot(n2, accepted=False)
    # SB1: accepted and started (waiting 1), never ends: still building.
    sb1 = spec("sb1", 17, accepted=T0 + 8000, waiting=1, spawning=99, host="compute-1")
    s.api_update(sb1)
    s.notify(
        "compute.instance.create.start",
        "compute.compute-1",
        T0 + 8001,
        s.payload(sb1, "building", "spawning"),
    )
    # D1: one uuid booted (3 + 33 = 36), deleted (5 s), booted again
    # (6 + 66 = 72).
    d1a = spec("d1", 18, accepted=T0 + 9000, waiting=3, spawning=33, host="compute-1")
    s.boot(d1a)
    s.delete(d1a, T0 + 9100, 5)
    s.boot(spec("d1", 18, accepted=T0 + 9200, waiting=6, spawning=66, host="compute-1"))
    # B1 rebuilt in 45 s; B2 deleted in 7 s; B3's delete never ends.
    b1 = BootSpec(ids["b1"], T0 + 100, 1, 10, host="compute-1", name="b1")
    s.rebuild(b1, T0 + 9500, 45)
    b2 = BootSpec(ids["b2"], T0 + 200, 2, 20, host="compute-2", name="b2")
    s.delete(b2, T0 + 9600, 7)
    b3 = BootSpec(ids["b3"], T0 + 300, 3, 30, host="compute-1", name="b3")
    s.notify(
        "compute.instance.delete.start",
        "compute.compute-1",
        T0 + 9700,
        s.payload(b3, "active", "deleting"),
    )
    # Traffic the report does not use.
    for i in (4, 5):
        s.other(BootSpec(ids[f"b{i}"], T0, 0, 0), T0 + 9650)
    return s.records, ids


def messy_lines(seed: int = 7) -> list[str]:
    """The known stream as a listener might have written it: shuffled, with
    duplicates and broken lines."""
    records, _ = known_stream()
    rng = random.Random(seed)
    text = list(lines(records))
    text += [text[i] for i in rng.sample(range(len(text)), 5)]  # 5 duplicates
    rng.shuffle(text)
    bad_payload = json.loads(text[0])
    bad_payload.update(event_type="compute.instance.create.end", message_id="nopay")
    del bad_payload["payload"]
    bad_stamp = json.loads(text[1])
    bad_stamp.update(event_type="compute.instance.delete.end", message_id="nostamp")
    bad_stamp["timestamp"] = "yesterday"
    unknown = json.loads(text[2])
    unknown.update(event_type="compute.instance.frobnicate.start", message_id="unk")
    broken = [
        text[3][: len(text[3]) // 2] + "\n",  # a line cut short
        json.dumps(bad_payload) + "\n",
        json.dumps(bad_stamp) + "\n",
        json.dumps(unknown) + "\n",
        "[1, 2]\n",  # JSON, not a notification
        "\n",
    ]
    for offset, line in enumerate(broken):
        text.insert(10 + 10 * offset, line)  # line numbers 11, 21, 31...
    return text


def report_of(text: list[str]) -> dict[str, Any]:
    tracker = Tracker()
    for line in text:
        tracker.add_line(line.encode())
    return build(tracker)


def test_nearest_rank_percentiles():
    values = [float(v) for v in range(1, 11)]
    assert [percentile(values, q) for q in (0.5, 0.9, 0.99, 1.0)] == [5, 9, 10, 10]
    assert percentile([3.0], 0.99) == 3.0
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_exact_figures_from_a_messy_stream():
    report = report_of(messy_lines())
    boots = report["boots"]
    # 10 B + S1 + M1 + F1 + R1 + N1 + N2 + SB1 + two boots of D1
    assert {
        k: boots[k]
        for k in (
            "count",
            "succeeded",
            "failed",
            "building",
            "deleted_while_building",
            "rescheduled",
            "without_api_acceptance",
            "start_not_seen",
            "skewed",
        )
    } == {
        "count": 19,
        "succeeded": 17,
        "failed": 1,
        "building": 1,
        "deleted_while_building": 0,
        "rescheduled": 1,
        "without_api_acceptance": 2,
        "start_not_seen": 1,
        "skewed": 1,
    }
    # waiting: 1..10 (B), 2 (F1), 1 (R1), 2 (N2), 1 (SB1), 3 and 6 (D1);
    # sorted 1 1 1 2 2 2 3 3 4 5 6 6 7 8 9 10 -> 8th, 15th, 16th.
    assert boots["phases"]["waiting"] == {
        "count": 16,
        "p50": 3.0,
        "p90": 9.0,
        "p99": 10.0,
        "max": 10.0,
    }
    # spawning: 10..100 (B), 30 (S1), 20 (R1), 40 (N1), 30 (N2), 33, 66 (D1)
    assert boots["phases"]["spawning"] == {
        "count": 16,
        "p50": 40.0,
        "p90": 90.0,
        "p99": 100.0,
        "max": 100.0,
    }
    # total: 11..110 (B), 50 (M1), 26 (R1), 40 (N1), 32 (N2), 36, 72 (D1)
    assert boots["phases"]["total"] == {
        "count": 16,
        "p50": 44.0,
        "p90": 99.0,
        "p99": 110.0,
        "max": 110.0,
    }
    hosts = boots["by_host"]
    assert sorted(hosts) == ["compute-1", "compute-2", "compute-3"]
    assert (hosts["compute-1"]["count"], hosts["compute-1"]["failed"]) == (10, 1)
    assert hosts["compute-1"]["building"] == 1
    # compute-1 totals: 11 33 55 77 99 (B), 40 (N1), 36 72 (D1)
    assert hosts["compute-1"]["phases"]["total"] == {
        "count": 8,
        "p50": 40.0,
        "p90": 99.0,
        "p99": 99.0,
        "max": 99.0,
    }
    # compute-2 totals: 22 44 66 88 110 (B), 50 (M1), 26 (R1), 32 (N2)
    assert hosts["compute-2"]["phases"]["total"] == {
        "count": 8,
        "p50": 44.0,
        "p90": 110.0,
        "p99": 110.0,
        "max": 110.0,
    }
    assert hosts["compute-3"]["phases"]["spawning"]["max"] == 30.0
    assert hosts["compute-3"]["phases"]["waiting"] == {"count": 0}
    assert boots["clock_skew"] == [
        {
            "api_host": "api-1",
            "compute_host": "compute-3",
            "boots": 1,
            "behind_at_least": 2.0,
        }
    ]
    assert [row["name"] for row in boots["slowest"][:3]] == ["b10", "b9", "b8"]
    assert boots["slowest"][0]["total"] == 110.0
    assert boots["faults"] == {FAULT: 1}
    [failure] = boots["failures"]
    assert (failure["name"], failure["host"], failure["failed_after"]) == (
        "f1",
        "compute-1",
        7.0,
    )
    [building] = boots["still_building"]
    # the last phase event is B3's delete.start at T0 + 9700
    assert (building["name"], building["age_at_end"]) == ("sb1", 1700.0)
    rebuilds = report["rebuilds"]
    assert (rebuilds["count"], rebuilds["succeeded"]) == (1, 1)
    assert rebuilds["phases"]["spawning"]["max"] == 45.0
    deletes = report["deletes"]
    assert (deletes["count"], deletes["unfinished"]) == (3, 1)
    assert deletes["phases"]["delete"] == {
        "count": 2,
        "p50": 5.0,
        "p90": 7.0,
        "p99": 7.0,
        "max": 7.0,
    }


def test_bad_input_is_counted_and_reported():
    text = messy_lines()
    report = report_of(text)
    src = report["input"]
    assert src["lines"] == len(text)
    assert src["duplicates"] == 5
    assert (src["unreadable"], src["unreadable_lines"]) == (1, [11])
    assert src["without_payload"] == 1
    assert src["bad_timestamp"] == 1
    assert src["not_notifications"] == 1
    assert src["ignored_event_types"] == {
        "compute.instance.exists": 2,
        "compute.instance.frobnicate.start": 1,
    }
    assert src["reordered"] > 0
    # T0 is 2027-01-15T08:00:00Z; B1's acceptance (T0 + 100) comes first and
    # B3's delete.start (T0 + 9700) last
    assert (src["first"], src["last"]) == (
        "2027-01-15T08:01:40.000000Z",
        "2027-01-15T10:41:40.000000Z",
    )
    text_report = render_text(report)
    for phrase in (
        "unreadable lines: 1 (first at lines 11)",
        "without a payload: 1",
        "compute.instance.frobnicate.start 1",
        "compute-3 runs at least 2.00 s behind api-1 (1 boot)",
        "Still building at the end: 1",
        FAULT,
    ):
        assert phrase in text_report


def test_order_and_duplicates_do_not_change_the_figures():
    records, _ = known_stream()
    in_order = report_of(list(lines(records)))
    messy = report_of(messy_lines(seed=99))
    # in the order things happened, only S1's skewed create.start (stamped
    # before its acceptance) arrives after a later-stamped event
    assert in_order["input"]["reordered"] == 1
    assert in_order["boots"] == messy["boots"]
    assert in_order["rebuilds"] == messy["rebuilds"]
    assert in_order["deletes"] == messy["deletes"]


def test_a_boot_deleted_while_building():
    s = Stream()
    spec = BootSpec(_uuid(1), T0, 1, 50, host="compute-9")
    s.api_update(spec)
    s.notify(
        "compute.instance.create.start",
        "compute.compute-9",
        T0 + 1,
        s.payload(spec, "building", "spawning"),
    )
    s.delete(spec, T0 + 10, 2)
    report = report_of(list(lines(s.records)))
    assert report["boots"]["deleted_while_building"] == 1
    assert report["boots"]["building"] == 0
    assert report["boots"]["phases"]["total"] == {"count": 0}


def _latency(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nova_notifier.tools.cli", "latency", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )


def test_command_reads_files_and_gz_and_stdin(tmp_path):
    text = messy_lines()
    plain = tmp_path / "stream.jsonl"
    plain.write_text("".join(text))
    packed = tmp_path / "stream.jsonl.gz"
    with gzip.open(packed, "wt") as out:
        out.write("".join(text))
    expected = report_of(text)
    for args, stdin in (
        (["--from", str(plain)], None),
        (["--from", str(packed)], None),
        (["--from", "-"], "".join(text)),
    ):
        done = _latency(*args, "--json", stdin=stdin)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == expected


def test_command_progress_table_and_html(tmp_path):
    records, ids = known_stream()
    for record in records:  # b10 is the slowest boot: the page lists it
        if record["payload"]["instance_id"] == ids["b10"]:
            record["payload"]["display_name"] = "<script>alert(1)</script>"
    stream = tmp_path / "stream.jsonl"
    stream.write_text("".join(lines(records)))
    page = tmp_path / "report.html"
    done = _latency("--from", str(stream), "--html", str(page), "--progress")
    assert done.returncode == 0, done.stderr
    assert "stream.jsonl:" in done.stderr and f"{len(records)} lines" in done.stderr
    assert "Boots: 19 (17 succeeded, 1 failed, 1 still building at the end)" in (
        done.stdout
    )
    html = page.read_text()
    assert html.startswith("<!doctype html>") and "<svg" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html
    assert "src=" not in html and "href=" not in html  # nothing fetched


def test_command_says_what_is_wrong_with_a_missing_file(tmp_path):
    done = _latency("--from", str(tmp_path / "nope.jsonl"))
    assert done.returncode == 2
    assert "nope.jsonl" in done.stderr
    assert "Traceback" not in done.stderr


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "nova_notifier.tools.cli", *args]


def _wait_until_listening(proc: subprocess.Popen, deadline: float) -> None:
    """Read a listener's standard error until it says its queue exists."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("listening on"):
            return
        assert time.monotonic() < deadline, "listener did not start"
    raise AssertionError(f"listener exited: {proc.wait()}")


@pytest.mark.broker
def test_demo_on_rabbit_reported_live_and_from_a_listen_file(tmp_path):
    """The demo through RabbitMQ while listen --json and latency run as
    processes of their own, each on its own pool: both see the demo's boots."""
    if not broker_available():
        pytest.fail("RabbitMQ is not answering on 127.0.0.1:5672 (run .ci/run)")
    # how many notifications the demo sends: the same scenario on fake://
    dry = subprocess.run(
        _cli("demo", "--json"), cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert dry.returncode == 0, dry.stderr
    expected = len(dry.stdout.splitlines())
    topic = f"nn-latency-{uuid.uuid4().hex[:10]}"
    pools = [f"{topic}-listen", f"{topic}-latency"]
    saved = tmp_path / "bus.jsonl"
    bus = ["--transport-url", RABBIT_URL, "--topic", topic]
    until = ["--count", str(expected), "--timeout", "120"]
    procs = [
        subprocess.Popen(
            _cli("listen", *bus, "--pool", pools[0], "--json", "--output", str(saved))
            + until,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
        subprocess.Popen(
            _cli("latency", *bus, "--pool", pools[1], "--json", *until),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
    ]
    try:
        deadline = time.monotonic() + 60
        for proc in procs:
            _wait_until_listening(proc, deadline)
        demo = subprocess.run(
            _cli("demo", *bus), cwd=ROOT, capture_output=True, text=True, timeout=180
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert f"sent {expected}, received {expected}" in demo.stdout
        live_out, live_err = procs[1].communicate(timeout=120)
        procs[0].communicate(timeout=120)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        delete_queues(RABBIT_URL, pools + [f"{topic}.{p}" for p in PRIORITIES])
    assert [proc.returncode for proc in procs] == [0, 0], live_err
    live = json.loads(live_out)
    assert live["input"]["notifications"] == expected
    assert len(saved.read_text().splitlines()) == expected
    done = _latency("--from", str(saved), "--json")
    assert done.returncode == 0, done.stderr
    from_file = json.loads(done.stdout)
    for section in ("boots", "rebuilds", "deletes"):
        assert live[section] == from_file[section]
    boots = live["boots"]
    # two boots succeed, one fails on purpose, one server is deleted
    assert (boots["count"], boots["succeeded"], boots["failed"]) == (3, 2, 1)
    assert boots["without_api_acceptance"] == 0
    assert list(boots["by_host"]) == ["demo-compute-1"]
    assert {row["name"] for row in boots["slowest"]} == {"web-1", "web-2"}
    assert [row["name"] for row in boots["failures"]] == ["db-1"]
    assert "no valid host" in boots["failures"][0]["fault"]
    for phase in ("waiting", "spawning", "total"):
        assert boots["phases"][phase]["count"] == (3 if phase == "waiting" else 2)
        assert boots["phases"][phase]["max"] >= 0
    assert live["deletes"]["count"] == 1
    assert live["deletes"]["phases"]["delete"]["count"] == 1


def test_odd_values_are_read_or_counted_never_raised():
    s = Stream()
    spec = BootSpec(_uuid(1), T0, 1, 5, host="compute-9")
    s.boot(spec)
    s.records[-1]["payload"]["message"] = None
    s.records[-1]["payload"]["display_name"] = {"nested": ["name"]}
    s.records[0]["publisher_id"] = 42  # not text
    error = BootSpec(_uuid(2), T0, 1, 5, host="compute-9", fault="x")
    s.boot(error)
    s.records[-1]["payload"]["message"] = {"code": 500, "details": "disk full"}
    text = list(lines(s.records)) + [
        '"just a string"\n',
        "null\n",
        '{"event_type": 7}\n',
        '{"event_type": "compute.instance.create.end", "payload": "text"}\n',
        '{"event_type": "compute.instance.create.end", "payload": {}}\n',
    ]
    tracker = Tracker()
    for line in text:
        tracker.add_line(line.encode())
    tracker.add_line(b"\xff\xfe{}\n")  # not UTF-8
    report = build(tracker)
    src = report["input"]
    assert (src["not_notifications"], src["without_payload"]) == (3, 1)
    assert (src["without_instance"], src["unreadable"]) == (1, 1)
    boots = report["boots"]
    assert (boots["succeeded"], boots["failed"]) == (1, 1)
    # the first boot's acceptance came from a publisher that is not "api.*"
    assert boots["without_api_acceptance"] == 1
    assert boots["slowest"][0]["name"] == '{"nested":["name"]}'
    assert boots["faults"] == {'{"code":500,"details":"disk full"}': 1}
