"""How the cost of building and emitting a payload grows with size and threads.

Run from the repository root::

    .venv/bin/python bench/payload_cost.py           # 7 rounds
    .venv/bin/python bench/payload_cost.py --quick   # 3 rounds, fewer calls

Three tables, all on a Nova-like instance (flavor, user metadata, ``image_*``
system metadata, times) and a request context carrying a token:

``info_from_instance`` (us per call)
    Building the legacy instance payload, timed call by call, for the plain
    instance and with user metadata of about 1 KB, 10 KB and 100 KB. Baseline:
    the plain instance.
``emit`` (us per call)
    ``notify_about_instance_usage(..., 'create.end')`` with
    ``delivery_mode = background`` on the ``fake://`` transport, for the same
    metadata sizes: what the caller pays as the payload grows (building it,
    making it JSON-safe and masking secrets, queueing it; and its share of
    the GIL with the sender thread, which publishes and JSON-encodes it).
    Baseline: 1 KB. ``us/KB`` is p50 over the payload's JSON size.
``threads`` (calls/s, all threads together)
    1, 4 and 16 threads emitting the plain instance's usage notification as
    fast as they can for a fixed time (background, ``fake://``). Baseline: one
    thread. Python runs one thread at a time, so more threads cannot add CPU;
    the table shows whether they lose throughput to contention.

Figures are medians over interleaved rounds (see ``bench/_common.py``),
every library variant on a fresh ``init()`` with a queue that never fills and
a ``cleanup()`` that delivers the backlog; the run checks that nothing was
dropped. ``bench/results/payload_cost.json`` holds every round's figures and
the machine they ran on.
"""

from __future__ import annotations

import argparse
import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import _common as bench

import nova_notifier

NAME = "payload_cost"
SIZES = {"plain instance": 0, "metadata ~1 KB": 1_000}
SIZES.update({"metadata ~10 KB": 10_000, "metadata ~100 KB": 100_000})
EMIT_SIZES = ("metadata ~1 KB", "metadata ~10 KB", "metadata ~100 KB")
THREADS = (1, 4, 16)
CONTEXT = bench.make_context()


def instances() -> dict[str, dict[str, Any]]:
    return {name: bench.make_instance(nbytes) for name, nbytes in SIZES.items()}


def build_latency(instance: dict[str, Any], calls: int, warmup: int) -> bench.Latency:
    bench.init_library("background")
    try:
        samples = bench.time_calls(
            lambda: nova_notifier.info_from_instance(CONTEXT, instance, None, None),
            calls,
            warmup=warmup,
        )
    finally:
        bench.close_library()
    return bench.latency(samples)


def emit_latency(
    instance: dict[str, Any],
    calls: int,
    warmup: int,
    label: str,
    problems: list[str],
) -> bench.Latency:
    bench.init_library("background")
    compute = nova_notifier.get_notifier("compute", "compute-17")
    try:
        samples = bench.time_calls(
            lambda: nova_notifier.notify_about_instance_usage(
                compute, CONTEXT, instance, "create.end"
            ),
            calls,
            warmup=warmup,
            chunk=min(1000, max(50, calls // 5)),
        )
    finally:
        stats = bench.close_library()
    check(label, stats, calls + warmup, problems)
    return bench.latency(samples)


def check(
    label: str, stats: dict[str, Any], expected: int, problems: list[str]
) -> None:
    if stats["dropped"] or stats["queued"] != expected or stats["sent"] != expected:
        problems.append(
            f"{label}: expected {expected} queued and sent, 0 dropped; "
            f"stats() said {stats}"
        )


def threaded_rate(
    threads: int,
    seconds: float,
    instance: dict[str, Any],
    problems: list[str],
    details: list[dict[str, Any]],
) -> float:
    """Calls per second of ``threads`` threads emitting for ``seconds``."""
    bench.init_library("background")
    compute = nova_notifier.get_notifier("compute", "compute-17")

    def emit() -> None:
        nova_notifier.notify_about_instance_usage(
            compute, CONTEXT, instance, "create.end"
        )

    warmup = 100
    for _ in range(warmup):
        emit()
    counts = [0] * threads
    start = threading.Barrier(threads + 1)
    deadline = 0.0

    def worker(index: int) -> None:
        start.wait()
        clock = time.perf_counter
        done = 0
        while clock() < deadline:
            emit()
            done += 1
        counts[index] = done

    workers = [
        threading.Thread(target=worker, args=(index,), name=f"emitter-{index}")
        for index in range(threads)
    ]
    for thread in workers:
        thread.start()
    deadline = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - began
    stats = bench.close_library()
    total = sum(counts)
    check(f"{threads} threads", stats, total + warmup, problems)
    details.append(
        {
            "threads": threads,
            "calls": total,
            "per_thread": counts,
            "elapsed_s": round(elapsed, 3),
            "backlog_at_end": stats["backlog_at_end"],
            "flush_s": stats["flush_s"],
        }
    )
    return total / elapsed


def main() -> None:
    args = bench.parse_args(__doc__)
    build_calls, warmup = (800, 100) if args.quick else (4000, 300)
    emit_calls = (
        {"metadata ~1 KB": 600, "metadata ~10 KB": 150, "metadata ~100 KB": 30}
        if args.quick
        else {"metadata ~1 KB": 3000, "metadata ~10 KB": 600, "metadata ~100 KB": 150}
    )
    seconds = 0.3 if args.quick else 1.0
    objects = instances()
    sizes = payload_sizes(objects)
    problems: list[str] = []

    bench.progress(f"{NAME}: info_from_instance, {len(objects)} sizes")
    builds = bench.interleave(
        {
            name: functools.partial(build_latency, instance, build_calls, warmup)
            for name, instance in objects.items()
        },
        args.rounds,
        "build",
    )
    bench.progress(f"{NAME}: emit, {len(EMIT_SIZES)} sizes")
    emits = bench.interleave(
        {
            name: functools.partial(
                emit_latency,
                objects[name],
                emit_calls[name],
                min(warmup, emit_calls[name]),
                f"emit {name}",
                problems,
            )
            for name in EMIT_SIZES
        },
        args.rounds,
        "emit",
    )
    bench.progress(f"{NAME}: threads {THREADS}, {seconds} s each")
    details: list[dict[str, Any]] = []
    thread_variants: dict[str, Callable[[], float]] = {
        f"{count} thread{'s' if count > 1 else ''}": functools.partial(
            threaded_rate, count, seconds, objects["plain instance"], problems, details
        )
        for count in THREADS
    }
    rates = bench.interleave(thread_variants, args.rounds, "threads")
    report(args, sizes, builds, emits, rates, details, problems)


def payload_sizes(objects: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """JSON bytes of each instance's metadata and of its usage payload."""
    bench.init_library("background")
    try:
        return {
            name: {
                "metadata_bytes": bench.json_size(instance["metadata"]),
                "payload_bytes": bench.json_size(
                    nova_notifier.info_from_instance(CONTEXT, instance, None, None)
                ),
            }
            for name, instance in objects.items()
        }
    finally:
        bench.close_library()


def report(
    args: argparse.Namespace,
    sizes: dict[str, dict[str, int]],
    builds: dict[str, list[bench.Latency]],
    emits: dict[str, list[bench.Latency]],
    rates: dict[str, list[float]],
    details: list[dict[str, Any]],
    problems: list[str],
) -> None:
    rounds_note = f"median of {args.rounds} interleaved rounds"
    build_summary = latency_table(
        "info_from_instance per call (us)",
        builds,
        "plain instance",
        sizes,
        f"{rounds_note}, {builds['plain instance'][0].calls} timed calls each",
    )
    emit_summary = latency_table(
        "Emit per call: notify_about_instance_usage, background, fake:// (us)",
        emits,
        "metadata ~1 KB",
        sizes,
        f"{rounds_note}; timed calls per round: "
        + ", ".join(f"{name} {values[0].calls}" for name, values in emits.items()),
    )

    rate_summary = {
        name: bench.summarize_rate(values) for name, values in rates.items()
    }
    one = rate_summary["1 thread"]["per_s"]
    rows = []
    for (name, figures), count in zip(rate_summary.items(), THREADS, strict=True):
        figures["x_1_thread"] = figures["per_s"] / one
        rows.append(
            [
                name,
                bench.fmt(figures["per_s"], 0),
                bench.fmt(figures["per_s"] / count, 0),
                bench.fmt(figures["x_1_thread"], 2),
                bench.fmt(1e6 / figures["per_s"], 1),
            ]
        )
    bench.print_table(
        "Emit throughput by emitting threads (background, fake://, plain instance)",
        ["threads", "calls/s total", "per thread", "x 1 thread", "us per call"],
        rows,
        [f"{rounds_note}; the sender thread runs beside the emitters"],
        problems,
    )
    bench.write_results(
        NAME,
        args,
        {
            "sizes": sizes,
            "info_from_instance": {"baseline": "plain instance", **build_summary},
            "emit": {"baseline": "metadata ~1 KB", **emit_summary},
            "threads": {
                "baseline": "1 thread",
                "variants": rate_summary,
                "rounds": details,
            },
            "problems": problems,
        },
    )


def latency_table(
    title: str,
    results: dict[str, list[bench.Latency]],
    baseline: str,
    sizes: dict[str, dict[str, int]],
    note: str,
) -> dict[str, Any]:
    summary = {
        name: bench.summarize_latency(values) for name, values in results.items()
    }
    base = summary[baseline]["p50_us"]
    rows = []
    for name, figures in summary.items():
        payload = sizes[name]["payload_bytes"]
        figures.update(sizes[name])
        figures["us_per_kb"] = figures["p50_us"] / (payload / 1024)
        rows.append(
            [
                name,
                bench.fmt(payload, 0),
                bench.fmt(figures["p50_us"]),
                bench.fmt(figures["p99_us"]),
                bench.fmt(bench.ratio(figures["p50_us"], base), 2),
                bench.fmt(figures["us_per_kb"]),
            ]
        )
    bench.print_table(
        title,
        ["variant", "payload B", "p50 us", "p99 us", "x base p50", "us/KB"],
        rows,
        [note],
    )
    return {"variants": summary}


if __name__ == "__main__":
    main()
