"""Memory of a long live ``nova-notifier latency`` run, with and without a
bounded duplicate window.

Run from the repository root::

    .venv/bin/python bench/latency_live_memory.py            # 2 million
    .venv/bin/python bench/latency_live_memory.py --quick    # 300,000, 600 s

Each variant runs in a child process of its own (so RSS figures do not mix)
and feeds synthetic notifications straight into the live reader's endpoint
(``nova_notifier.tools.latency.command._Feed``, what the bus listener calls), with
no broker: boots of distinct instances, 5 phase events each (the API's
BUILDING update, create.start, two task-state updates, create.end), and one
notification in 100 delivered twice (a redelivery, same message_id, right
after the first). The tracker's clock is simulated: ``--rate`` notifications
per second (100 by default, so 2 million notifications are about 5.5 hours
of a busy region), which is what the duplicate window counts in.

Variants:

``window``
    ``Tracker(dedup_window=WINDOW)`` as the live command makes it
    (``--dedup-window``, default 3600 s).
``unbounded``
    ``Tracker()``: every message_id kept, as before the window (and as a
    file is still read).

At ten checkpoints it prints the process's RSS, how many message ids the
duplicate structure holds, its size in MB (the container plus its keys and
times, ``sys.getsizeof``), and the number of instances kept. At the end it
checks that the duplicates counted equal the redeliveries sent and that
every boot is in the report. Results go to
``bench/results/latency_live_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latency_live_memory.json"
PER_BOOT = 5


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def _ids_mb(tracker: Any) -> tuple[int, float]:
    """(ids held, MB) of the tracker's duplicate structure."""
    recent = tracker.recent_ids
    sets = [tracker._seen_ids] if recent is None else [s for _, s in recent._slices]
    size = sum(sys.getsizeof(s) + sum(sys.getsizeof(k) for k in s) for s in sets)
    return sum(len(s) for s in sets), size / 1e6


def _template() -> list[tuple[str, str, dict[str, Any]]]:
    from nova_notifier.testing.stream import BootSpec, Stream

    s = Stream()
    s.boot(BootSpec("x", 0.0, 1.0, 10.0))
    return [(r["event_type"], r["publisher_id"], r["payload"]) for r in s.records]


def child(variant: str, total: int, rate: float, window: float) -> dict[str, Any]:
    """Feed ``total`` notifications; figures at ten checkpoints."""
    from nova_notifier.testing.stream import stamp
    from nova_notifier.tools.latency import analyse, build
    from nova_notifier.tools.latency.command import _Feed
    from nova_notifier.tools.latency.events import Tracker

    sent = [0]

    def clock() -> float:
        return sent[0] / rate

    tracker = (
        Tracker(dedup_window=window, clock=clock)
        if variant == "window"
        else Tracker(clock=clock)
    )
    feed = _Feed(tracker, None)
    template = _template()
    checkpoints = []
    step = total // 10
    boots = redelivered = 0
    started = time.monotonic()
    while sent[0] < total:
        instance = f"00000000-0000-4000-8000-{boots:012d}"
        t0 = 1_800_000_000.0 + sent[0] / rate
        for n, (event_type, publisher, payload) in enumerate(template):
            meta = {
                "message_id": f"{boots:08x}-{n:04x}-4000-8000-000000000000",
                "timestamp": stamp(t0 + n),
            }
            body = {**payload, "instance_id": instance}
            copies = 2 if sent[0] % 100 == 99 else 1
            redelivered += copies - 1
            for _ in range(copies):
                feed._handle({}, publisher, event_type, body, meta)
                sent[0] += 1
                if sent[0] % step == 0:
                    held, mb = _ids_mb(tracker)
                    checkpoints.append(
                        {
                            "notifications": sent[0],
                            "rss_mb": round(_rss_mb(), 1),
                            "ids_held": held,
                            "ids_mb": round(mb, 1),
                            "instances": len(tracker.timelines),
                        }
                    )
        boots += 1
    elapsed = time.monotonic() - started
    report = build(tracker, analyse(tracker))
    return {
        "variant": variant,
        "checkpoints": checkpoints,
        "duplicates": tracker.duplicates,
        "redelivered": redelivered,
        "boots": boots,
        "boots_in_report": report["boots"]["count"],
        "seconds": round(elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=2_000_000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--window", type=float, default=3600.0)
    parser.add_argument("--quick", action="store_true", help="300,000 notifications")
    parser.add_argument("--child", choices=("window", "unbounded"))
    args = parser.parse_args()
    total = 300_000 if args.quick else args.notifications
    if args.quick:  # 50 minutes at 100/s: a window short enough to turn over
        args.window = 600.0
    if args.child:
        print(json.dumps(child(args.child, total, args.rate, args.window)))
        return
    results = []
    for variant in ("window", "unbounded"):
        done = subprocess.run(
            [sys.executable, __file__, "--child", variant]
            + ["--notifications", str(total), "--rate", str(args.rate)]
            + ["--window", str(args.window)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(done.stdout.splitlines()[-1]))
    print(
        f"{total:,} notifications at {args.rate:g}/s simulated "
        f"({total / args.rate / 3600:.1f} h), window {args.window:g} s\n"
    )
    print(
        f"{'notifications':>14}"
        + "".join(
            f"  {r['variant'] + ': RSS MB':>18}{'ids':>10}{'ids MB':>8}"
            for r in results
        )
        + f"{'instances':>11}"
    )
    for rows in zip(*(r["checkpoints"] for r in results), strict=True):
        line = f"{rows[0]['notifications']:>14,}"
        for row in rows:
            line += f"  {row['rss_mb']:>18.1f}{row['ids_held']:>10,}"
            line += f"{row['ids_mb']:>8.1f}"
        print(line + f"{rows[0]['instances']:>11,}")
    for r in results:
        assert r["duplicates"] == r["redelivered"], r
        assert r["boots_in_report"] == r["boots"], r
        print(
            f"{r['variant']}: {r['duplicates']:,} duplicates counted of "
            f"{r['redelivered']:,} redelivered, {r['boots_in_report']:,} boots "
            f"reported, {r['seconds']} s"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
