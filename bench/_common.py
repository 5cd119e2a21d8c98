"""Shared helpers of the ``bench/`` scripts (not a benchmark itself).

This machine is shared and noisy, so no figure comes from one measurement:

* :func:`interleave` runs every *variant* of a comparison once per round,
  round-robin (the starting variant rotates from round to round), for several
  rounds (7 by default, 3 with ``--quick``). Slow drifts in machine load then
  hit all variants alike instead of whichever ran last.
* A script reports, per variant, the median over the rounds, and its ratio to
  a named baseline variant measured in the same run.
* :func:`time_calls` times individual calls with ``time.perf_counter_ns`` and
  :func:`latency` turns them into p50/p99 in microseconds. Nothing is
  subtracted: a figure includes the two clock reads around the call (the
  ``timer floor`` each script prints, a few tens of nanoseconds).
* :func:`print_table` prints an aligned table; :func:`write_results` writes
  ``bench/results/<name>.json`` with the per-round figures and the machine
  (platform, Python, CPU count, ``nproc``, load, date).

It also sets the library up the way every script needs it: :func:`init_library`
on the in-process ``fake://`` transport with the ``messagingv2`` driver, and
:func:`drain_fake` to empty the fake transport's in-memory queues, which keep
every message sent through them until a listener takes it.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import gc
import json
import logging
import math
import os
import platform
import statistics
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

# oslo.messaging imports eventlet, which warns on import that it is deprecated.
warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")

from oslo_config import cfg  # noqa: E402
from oslo_context import context as oslo_context  # noqa: E402

import nova_notifier  # noqa: E402
from nova_notifier.testing.config import make_conf as testing_make_conf  # noqa: E402

T = TypeVar("T")

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_ROUNDS = 7
QUICK_ROUNDS = 3
BIG_QUEUE = 10_000_000  # background queue_size: the queue never fills
PACKAGES = ("nova-notifier", "oslo.messaging", "oslo.config", "oslo.utils", "WebOb")


# -- command line, logging ----------------------------------------------------


def parse_args(
    doc: str | None, default_rounds: int = DEFAULT_ROUNDS
) -> argparse.Namespace:
    """``--quick`` (fewer rounds and calls) and ``--rounds N``; silences logs.

    ``default_rounds`` is the rounds of a full run (a script of short
    variants can afford more, shorter rounds)."""
    parser = argparse.ArgumentParser(
        description=(doc or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="a fast run (fewer rounds and calls)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help=f"interleaved rounds (default {default_rounds}, --quick {QUICK_ROUNDS})",
    )
    args = parser.parse_args()
    if args.rounds is None:
        args.rounds = QUICK_ROUNDS if args.quick else default_rounds
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    silence_logs()
    return args


def silence_logs() -> None:
    """No log output: the scripts check ``nova_notifier.stats()`` instead."""
    logging.disable(logging.CRITICAL)
    warnings.filterwarnings("ignore")


def progress(text: str) -> None:
    """A progress line on stderr (the tables go to stdout)."""
    print(text, file=sys.stderr, flush=True)


# -- the library on fake:// -----------------------------------------------------


def make_conf(
    mode: str = "background", driver: str = "messagingv2", **notifications: Any
) -> cfg.ConfigOpts:
    """A fresh ``ConfigOpts`` for the library on ``fake://``.

    ``mode`` is ``[notifications] delivery_mode``; other ``[notifications]``
    options come as keywords. Outside ``direct`` the queue is made big enough
    never to fill, and ``flush_timeout`` long enough for ``cleanup()`` to
    deliver everything (a bench round must not end with drops).
    """
    if mode != "direct":
        notifications.setdefault("queue_size", BIG_QUEUE)
        notifications.setdefault("flush_timeout", 120.0)
    return testing_make_conf(
        "fake://", driver=driver, project="bench", delivery_mode=mode, **notifications
    )


def init_library(
    mode: str = "background", driver: str = "messagingv2", **notifications: Any
) -> cfg.ConfigOpts:
    """``nova_notifier.init()`` with :func:`make_conf`; returns the conf."""
    conf = make_conf(mode, driver=driver, **notifications)
    nova_notifier.init(conf)
    return conf


def usage_call(
    context: Any, instance: Mapping[str, Any], host: str, suffix: str = "create.end"
) -> Callable[[], None]:
    """The library's ``compute.instance.<suffix>`` usage notification for
    ``instance``, as a call to time (after :func:`init_library`)."""
    compute = nova_notifier.get_notifier("compute", host)
    return functools.partial(
        nova_notifier.notify_about_instance_usage, compute, context, instance, suffix
    )


def close_library() -> dict[str, Any]:
    """``cleanup()`` (delivers what is queued), then :func:`drain_fake`.

    Returns ``stats()`` after the cleanup, with ``backlog_at_end`` (what was
    still queued when the measurement ended) and ``flush_s`` (how long the
    cleanup took to deliver it).
    """
    backlog = nova_notifier.stats()["backlog"]
    started = time.perf_counter()
    nova_notifier.cleanup()
    flush_s = time.perf_counter() - started
    drain_fake()
    result = nova_notifier.stats()
    result.update(backlog_at_end=backlog, flush_s=round(flush_s, 3))
    return result


def drain_fake() -> None:
    """Forget every message waiting in the ``fake://`` transport's queues.

    The fake driver keeps what is sent until a listener polls it; without a
    listener a long run would grow memory (and garbage-collection pauses)
    with every call. Clearing is safe at any time: the driver creates an
    exchange again at its next send.
    """
    from oslo_messaging._drivers import impl_fake

    impl_fake.FakeExchangeManager.cleanup()


def take_test_notifications() -> int:
    """How many notifications oslo.messaging's ``test`` driver recorded since
    the last call; forgets them (its list would otherwise grow with every call).
    """
    from oslo_messaging.notify import _impl_test

    count = len(_impl_test.NOTIFICATIONS)
    _impl_test.reset()
    return count


def test_notifications() -> list[tuple[Any, dict[str, Any], str, Any]]:
    """What the ``test`` driver recorded: ``(ctxt, message, priority, retry)``."""
    from oslo_messaging.notify import _impl_test

    return list(_impl_test.NOTIFICATIONS)


# -- realistic Nova objects -----------------------------------------------------


def make_context() -> oslo_context.RequestContext:
    """A request context as a Nova API or compute service has one (with a token)."""
    return oslo_context.RequestContext(
        user_id="4b6f1b2a9c1e4d0f8a7b6c5d4e3f2a1b",
        project_id="8c0a5e3b7d2f4a6e9b1c3d5f7a9e0b2c",
        domain_id="default",
        user_domain_id="default",
        project_domain_id="default",
        auth_token="gAAAAABmZ-bench-token-not-a-real-one-0123456789abcdef",
        request_id="req-" + str(uuid.uuid4()),
        roles=["member", "reader"],
        is_admin=False,
        overwrite=False,
    )


def filler_metadata(nbytes: int) -> dict[str, str]:
    """User metadata of about ``nbytes`` (keys plus values), 100 bytes an item."""
    count = max(1, round(nbytes / 100))
    value = "deployment-tier-frontend-cluster-eu-west-zone-b-rack-42-row-07-slot-3"
    return {f"tag_{index:05d}": f"{value}-{index:06d}" for index in range(count)}


def make_instance(metadata_bytes: int = 0, **changes: Any) -> dict[str, Any]:
    """A Nova-like instance as a mapping: flavor, metadata, image system_metadata.

    ``metadata_bytes`` adds user metadata of about that size (see
    :func:`filler_metadata`); keywords replace fields (``vm_state=...``).
    """
    created = datetime.datetime(2026, 5, 9, 7, 35, 25, 123456)
    launched = created + datetime.timedelta(seconds=41, microseconds=250000)
    image_ref = "0f3b5a8e-6c1d-4e2f-9a7b-3c5d7e9f1a2b"
    instance: dict[str, Any] = {
        "uuid": "78eb5ff7-e2f3-45b9-b16b-c3be05e0ffb9",
        "display_name": "web-1",
        "hostname": "web-1",
        "reservation_id": "r-3k9x7w2q",
        "project_id": "8c0a5e3b7d2f4a6e9b1c3d5f7a9e0b2c",
        "user_id": "4b6f1b2a9c1e4d0f8a7b6c5d4e3f2a1b",
        "host": "compute-17",
        "node": "compute-17.example.org",
        "launched_on": "compute-17",
        "availability_zone": "nova",
        "cell_name": "",
        "vm_state": "active",
        "task_state": None,
        "power_state": 1,
        "progress": 100,
        "architecture": "x86_64",
        "os_type": "linux",
        "kernel_id": "",
        "ramdisk_id": "",
        "image_ref": image_ref,
        "key_name": "ops-key",
        "access_ip_v4": "203.0.113.17",
        "access_ip_v6": "2001:db8::17",
        "locked": False,
        "created_at": created,
        "updated_at": launched,
        "launched_at": launched,
        "terminated_at": None,
        "deleted_at": None,
        "flavor": {
            "id": 5,
            "flavorid": "2",
            "name": "m1.small",
            "memory_mb": 2048,
            "vcpus": 1,
            "root_gb": 20,
            "ephemeral_gb": 0,
            "swap": 0,
            "extra_specs": {"hw:cpu_policy": "shared"},
        },
        "metadata": {"role": "web", "env": "production", "team": "storefront"},
        "system_metadata": {
            "image_base_image_ref": image_ref,
            "image_container_format": "bare",
            "image_disk_format": "qcow2",
            "image_min_disk": "20",
            "image_min_ram": "0",
            "image_hw_disk_bus": "virtio",
            "image_hw_vif_model": "virtio",
            "image_os_distro": "ubuntu",
            "image_os_version": "24.04",
            "owner_user_name": "demo",
            "owner_project_name": "storefront",
            "boot_roles": "member,reader",
        },
    }
    if metadata_bytes:
        instance["metadata"] = {
            **instance["metadata"],
            **filler_metadata(metadata_bytes),
        }
    instance.update(changes)
    return instance


def json_size(value: Any) -> int:
    """Bytes of ``value`` as JSON (``str()`` for what JSON cannot hold)."""
    return len(json.dumps(value, default=str).encode("utf-8"))


# -- measuring ------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    """Per-call latencies of one batch, in microseconds."""

    calls: int
    p50_us: float
    p99_us: float
    p999_us: float
    mean_us: float
    max_us: float


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (``fraction`` in 0..1)."""
    if not ordered:
        raise ValueError("no values")
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latency(samples_ns: Sequence[int]) -> Latency:
    """p50/p99/p99.9/mean/max of per-call times given in nanoseconds."""
    ordered = sorted(samples_ns)
    return Latency(
        calls=len(ordered),
        p50_us=percentile(ordered, 0.50) / 1000,
        p99_us=percentile(ordered, 0.99) / 1000,
        p999_us=percentile(ordered, 0.999) / 1000,
        mean_us=statistics.fmean(ordered) / 1000,
        max_us=ordered[-1] / 1000,
    )


def time_calls(
    fn: Callable[[], object],
    calls: int,
    *,
    warmup: int = 200,
    chunk: int = 1000,
    between: Callable[[], object] | None = drain_fake,
    thread_times: list[int] | None = None,
) -> list[int]:
    """Call ``fn()`` ``calls`` times, timing each call alone (nanoseconds).

    ``warmup`` untimed calls come first. Every ``chunk`` calls ``between()``
    runs untimed (by default :func:`drain_fake`, so memory stays flat).
    With ``thread_times`` (an empty list) the calling thread's own CPU time
    of each call (``time.thread_time_ns``, read inside the wall clock's
    reads) is appended to it as well.
    """
    for _ in range(warmup):
        fn()
    clock = time.perf_counter_ns
    cpu = time.thread_time_ns
    samples = [0] * calls
    cpu_samples = [0] * calls
    done = 0
    while done < calls:
        if between is not None:
            between()
        stop = min(calls, done + chunk)
        if thread_times is None:
            for index in range(done, stop):
                started = clock()
                fn()
                samples[index] = clock() - started
        else:
            for index in range(done, stop):
                started = clock()
                cpu_started = cpu()
                fn()
                cpu_samples[index] = cpu() - cpu_started
                samples[index] = clock() - started
        done = stop
    if thread_times is not None:
        thread_times.extend(cpu_samples)
    if between is not None:
        between()
    return samples


def timer_floor(calls: int = 20_000, thread_times: list[int] | None = None) -> Latency:
    """What :func:`time_calls` reports for a call that does nothing (with
    ``thread_times``, as :func:`time_calls` fills it)."""

    def nothing() -> None:
        return None

    return latency(time_calls(nothing, calls, between=None, thread_times=thread_times))


def rate(run: Callable[[], int]) -> float:
    """Operations per second of ``run()``, which returns how many it did."""
    started = time.perf_counter()
    done = run()
    return done / (time.perf_counter() - started)


def interleave(
    variants: Mapping[str, Callable[[], T]], rounds: int, label: str = ""
) -> dict[str, list[T]]:
    """Run every variant once per round, round-robin, for ``rounds`` rounds.

    The variant that starts a round rotates, so none always runs first (right
    after the garbage collection done before each run). Returns each
    variant's results in round order.
    """
    names = list(variants)
    results: dict[str, list[T]] = {name: [] for name in names}
    for round_no in range(rounds):
        started = time.perf_counter()
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            results[name].append(variants[name]())
        progress(
            f"  {label + ': ' if label else ''}round {round_no + 1}/{rounds} "
            f"({time.perf_counter() - started:.1f} s)"
        )
    return results


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def summarize_latency(rounds: Sequence[Latency]) -> dict[str, Any]:
    """Median over rounds of each latency figure, plus the per-round figures."""
    return {
        "p50_us": median([r.p50_us for r in rounds]),
        "p99_us": median([r.p99_us for r in rounds]),
        "p999_us": median([r.p999_us for r in rounds]),
        "mean_us": median([r.mean_us for r in rounds]),
        "max_us": max(r.max_us for r in rounds),
        "calls_per_round": rounds[0].calls,
        "rounds": [asdict(r) for r in rounds],
    }


def summarize_rate(rounds: Sequence[float]) -> dict[str, Any]:
    """Median calls per second over rounds, the spread, and the per-round rates."""
    return {
        "per_s": median(rounds),
        "min_per_s": min(rounds),
        "max_per_s": max(rounds),
        "rounds": list(rounds),
    }


def ratio(value: float, base: float) -> float:
    return value / base if base else float("nan")


def paired_ratio(
    ours: Sequence[Latency], base: Sequence[Latency], field: str = "p50_us"
) -> float:
    """Median over rounds of ``ours / base`` in the same round.

    Pairing by round cancels a slow phase of the machine (another process
    on the shared cores) that hits both variants of a round.
    """
    return median(
        [
            ratio(getattr(one, field), getattr(other, field))
            for one, other in zip(ours, base, strict=True)
        ]
    )


# -- output ---------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    """A number with thousands separators and ``digits`` decimals ('-' for None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def print_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    notes: Sequence[str] = (),
    problems: Sequence[str] = (),
) -> None:
    """An aligned table: first column left, the others right-aligned.

    ``notes`` are printed under it, then each of ``problems`` (checks of the
    run itself that failed) as a ``CHECK FAILED`` line.
    """
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [
        max(len(str(header)), *(len(row[col]) for row in cells))
        for col, header in enumerate(headers)
    ]

    def line(row: Sequence[str]) -> str:
        parts = [
            cell.ljust(widths[col]) if col == 0 else cell.rjust(widths[col])
            for col, cell in enumerate(row)
        ]
        return "  ".join(parts).rstrip()

    print()
    print(title)
    print(line([str(h) for h in headers]))
    print("  ".join("-" * width for width in widths))
    for row in cells:
        print(line(row))
    for note in notes:
        print(note)
    for problem in problems:
        print(f"CHECK FAILED: {problem}")
    sys.stdout.flush()


def machine_info() -> dict[str, Any]:
    """Where and when the figures were taken."""
    nproc: int | None
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        nproc = os.cpu_count()
    cpu_model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for text in cpuinfo:
                if text.startswith("model name"):
                    cpu_model = text.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    try:
        load = [round(value, 2) for value in os.getloadavg()]
    except OSError:
        load = []
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "nproc": nproc,
        "loadavg": load,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "packages": versions,
    }


def machine_line(info: Mapping[str, Any] | None = None) -> str:
    """One line naming the machine and its load, to print under the tables."""
    info = machine_info() if info is None else info
    load = "/".join(str(value) for value in info["loadavg"]) or "?"
    return (
        f"machine: {info['cpu_model'] or info['machine']}, nproc {info['nproc']} "
        f"(cpu_count {info['cpu_count']}), Python {info['python']}, "
        f"load {load} (1/5/15 min), {info['date']}"
    )


def write_results(
    name: str, args: argparse.Namespace, results: Mapping[str, Any]
) -> Path:
    """Write ``bench/results/<name>.json`` (the results, the run's settings, the
    machine), print where and on which machine. Returns the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    document = {
        "bench": name,
        "quick": bool(args.quick),
        "rounds": args.rounds,
        "machine": machine_info(),
        **results,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(machine_line(document["machine"]))
    print(f"results: {path}")
    return path
