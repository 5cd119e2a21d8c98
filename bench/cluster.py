"""Notifications on the 3-node quorum-queue cluster: node kills, restarts, throughput.

The cluster is ``tools/rabbit-cluster.sh`` (brought up if it is not running,
left as it was found). Every service is a child process with a plain
``oslo_messaging.Notifier`` on the three-host URL,
``rabbit_quorum_queue = true`` (``tests/failover.py`` runs it); the peers are
oslo.messaging's own ``messagingv2`` driver with the default retry and with
``retry = 0``, measured the same way in the same run.

* ``kill``: 3000 notifications at 200/s; 3 s in, the node the service
  publishes through is killed with -9 and started again 10 s later. Lost
  messages, the longest emit call (and how much of it the calling thread
  spent runnable, waiting for a core: on this 2-core machine, the time the
  nodes and the listener took it), the calls over 5 ms and over 2 ms (the
  tail's shape: calls over 5 ms are too rare to compare runs by), what
  the calling thread read from disk over all its calls (a spool write
  that had to read a block in first), and the failover (kill to the first
  arrival of a message emitted after it; the listener is on the other
  nodes). Duplicates: notifications that arrived more than once (a resend
  of what the broker stored before its confirm was lost; oslo's listener
  drops them by message id).
* ``restart``: 5000 at 200/s while each node in turn is killed and started.
* ``throughput``: 2000 notifications of 2 KB emitted as fast as the service
  can, until all are confirmed by the quorum queue: delivered per second,
  as a ratio to oslo's Notifier.

Usage: .venv/bin/python bench/cluster.py [--quick] [--rounds N]
(--rounds repeats the kill runs of this library's drivers; --quick: one each)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common  # noqa: E402

from tests import driver_child, failover  # noqa: E402
from tests.cluster_util import Cluster  # noqa: E402

OSLO, OSLO_NO_RETRY = "messagingv2", "messagingv2 retry=0"
OURS = ("nova_notifier.spool", "nova_notifier.background")


def _spool() -> str:
    return str(Path(tempfile.mkdtemp(prefix="nn-bench-cluster-")) / "spool.db")


def _kill(cluster: Cluster, name: str) -> dict[str, Any]:
    driver, retry = (OSLO, 0) if name == OSLO_NO_RETRY else (name, None)
    _common.progress(f"kill: {name}")
    outcome = failover.kill_publisher_node(cluster, driver, _spool(), retry=retry)
    return outcome.as_dict()


def _longest(run: dict[str, Any]) -> str:
    """The longest call, and the part of it spent waiting for a core."""
    slowest = run["child"].get("slowest") or []
    if not slowest:
        return f"{run['max_call_ms']:.1f}"
    return f"{run['max_call_ms']:.1f} ({slowest[0]['runq_ms']:.1f})"


def _read_kb(run: dict[str, Any]) -> str:
    """What the calling thread read from storage over all its calls (a
    write that had to read a block in first); "-" where not measured."""
    read = run["child"].get("read_kb")
    return "-" if read is None else str(read)


def main() -> None:
    args = _common.parse_args(__doc__, default_rounds=3)
    repeats = 1 if args.quick else args.rounds
    cluster = Cluster()
    ours_started = not cluster.running_nodes()
    cluster.up()
    try:
        kills: dict[str, list[dict[str, Any]]] = {}
        for name in (OSLO, OSLO_NO_RETRY):
            kills[name] = [_kill(cluster, name)]
        for name in OURS:
            kills[name] = [_kill(cluster, name) for _ in range(repeats)]
        restarts = {}
        for name in (*OURS, OSLO):
            _common.progress(f"restart every node: {name}")
            restarts[name] = failover.restart_every_node(
                cluster, name, _spool()
            ).as_dict()
        rates: dict[str, list[float]] = {name: [] for name in (OSLO, *OURS)}
        for _ in range(repeats):
            for name in rates:  # interleaved: drifts hit every driver alike
                _common.progress(f"throughput: {name}")
                rates[name].append(failover.throughput(cluster, name, _spool()))
    finally:
        if ours_started:
            cluster.down()

    head = (
        "driver",
        "lost",
        "longest call ms (waiting for a core)",
        "calls > 5 ms",
        "calls > 2 ms",
        "KB read from disk in calls",
        "failover s",
        "duplicates",
    )
    rows: list[tuple[str, ...]] = []
    for name, runs in kills.items():
        rows.append(
            (
                name,
                "/".join(str(r["lost"]) for r in runs),
                "/".join(_longest(r) for r in runs),
                "/".join(str(r["calls_over_5ms"]) for r in runs),
                "/".join(str(r["calls_over_2ms"]) for r in runs),
                "/".join(_read_kb(r) for r in runs),
                "/".join(
                    f"{r['failover_s'][0]:.2f}" if r["failover_s"] else "-"
                    for r in runs
                ),
                "/".join(str(r["duplicates"]) for r in runs),
            )
        )
    _common.print_table("kill -9 the publisher's node (3000 at 200/s)", head, rows)
    rows = []
    for name, run in restarts.items():
        rows.append(
            (
                name,
                str(run["lost"]),
                _longest(run),
                str(run["calls_over_5ms"]),
                str(run["calls_over_2ms"]),
                _read_kb(run),
                str(run["duplicates"]),
            )
        )
    _common.print_table(
        "restart every node in turn (5000 at 200/s)", (*head[:6], head[7]), rows
    )
    medians = {name: statistics.median(values) for name, values in rates.items()}
    rows = []
    for name, value in medians.items():
        rows.append(
            (name, f"{value:.0f}", f"{_common.ratio(value, medians[OSLO]):.2f}")
        )
    _common.print_table(
        "2000 x 2 KB to the quorum queue", ("driver", "msg/s", "x oslo"), rows
    )

    ours_kills = [r for name in OURS for r in kills[name]]
    own = [driver_child.own_ms(r["child"]) for r in ours_kills]
    targets = {
        "cluster kill: lost (ours)": {
            "figure": sum(r["lost"] for r in ours_kills),
            "target": "0",
            "met": all(r["lost"] == 0 for r in ours_kills),
        },
        "cluster kill: longest emit call (ours)": {
            "figure_ms": max(r["max_call_ms"] for r in ours_kills),
            "target_ms": 5,
            "met": all(r["max_call_ms"] < 5 for r in ours_kills),
        },
        "cluster kill: longest call less core and GC waits (ours)": {
            "figure_ms": round(max(own), 2),
            "target_ms": 5,
            "met": all(ms < 5 for ms in own),
        },
        "cluster kill: failover (ours, worst)": {
            "figure_ms": 1000 * max(max(r["failover_s"] or [99]) for r in ours_kills),
            "target_ms": 5000,
            "met": all(r["failover_s"] and r["failover_s"][0] < 5 for r in ours_kills),
        },
        "cluster restarts: lost (ours)": {
            "figure": sum(restarts[name]["lost"] for name in OURS),
            "target": "0",
            "met": all(restarts[name]["lost"] == 0 for name in OURS),
        },
        "cluster throughput: background vs oslo": {
            "figure": _common.ratio(medians["nova_notifier.background"], medians[OSLO]),
            "target": 2.5,
            "met": medians["nova_notifier.background"] >= 2.5 * medians[OSLO],
        },
        "cluster throughput: spool vs oslo": {
            "figure": _common.ratio(medians["nova_notifier.spool"], medians[OSLO]),
            "target": 2.5,
            "met": medians["nova_notifier.spool"] >= 2.5 * medians[OSLO],
        },
    }
    _common.write_results(
        "cluster",
        args,
        {
            "kill": kills,
            "restart": restarts,
            "throughput": {"rounds": rates, "median": medians},
            "targets": targets,
        },
    )


if __name__ == "__main__":
    main()
