"""Caller-side cost of one emit call: p50/p99 latency in microseconds.

Run from the repository root::

    .venv/bin/python bench/caller_cost.py           # 7 rounds x 5000 calls a variant
    .venv/bin/python bench/caller_cost.py --quick   # 3 rounds x 1500 calls

What the time an API or compute thread spends inside one call of the library
is, measured call by call (``time.perf_counter_ns`` around each call) on a
realistic Nova-like instance (flavor, user metadata, ``image_*`` system
metadata, times) and a request context carrying a token:

``oslo noop Notifier.info``
    The baseline: ``oslo_messaging.Notifier(driver='noop').info()`` with the
    same context and a prebuilt payload of the same instance. This is
    oslo.messaging's own cost of an emit call that sends nothing (context
    redaction, message id, timestamp, driver dispatch).
``send_update direct``
    ``send_update`` of a vm_state transition, ``delivery_mode = direct``,
    ``messagingv2`` driver on the in-process ``fake://`` transport. This is
    the synchronous in-process cost (payload, serializer, oslo.messaging, the
    fake driver's JSON check), *not* a broker round trip: on RabbitMQ add the
    publish and its confirm (hundreds of microseconds).
``send_update background``
    The same call with ``delivery_mode = background``: the caller builds the
    message and queues it; the library's sender thread publishes it. That
    thread shares the GIL with the caller, so its work shows up in the
    caller's figures too (as it would in a service).
``send_update disabled``
    ``send_update`` with ``notify_on_state_change`` unset: the call returns
    without building anything.
``usage background``
    ``notify_about_instance_usage(..., 'create.end')``, background.
``notify_decorator background``
    A trivial function (``reboot_instance(context, uuid, reboot_type)``)
    wrapped by ``notify_decorator``, background.

Each library variant runs on its own ``init()`` per round, with a background
queue large enough never to fill, and a ``cleanup()`` (which delivers the
backlog) after it; the run checks that nothing was dropped and that every
call was queued or sent.

Reading the table: ``p50``/``p99`` are medians over the interleaved rounds of
each round's percentile; ``x base`` is the ratio to the oslo noop baseline of
the same run. The targets of issue 5 (background emit p99 < 50 us; disabled
path < 1 us, judged on p50, its typical cost) are printed beside the figures,
not asserted; ``timer floor`` is what an empty call measures (nothing is
subtracted). ``bench/results/caller_cost.json``
holds every round's figures and the machine they ran on.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import _common as bench
import oslo_messaging

import nova_notifier
from nova_notifier import updates

NAME = "caller_cost"
BASELINE = "oslo noop Notifier.info"
EVENT_TYPE = updates.EVENT_TYPE

CONTEXT = bench.make_context()
OLD = bench.make_instance(vm_state="building", task_state="spawning")
NEW = bench.make_instance(vm_state="active", task_state=None)


def reboot_instance(
    context: Any, instance_uuid: str, reboot_type: str = "SOFT"
) -> None:
    """The trivial function under ``notify_decorator``."""
    return None


DECORATED = nova_notifier.notify_decorator(
    "compute.api.reboot_instance", reboot_instance
)


@dataclasses.dataclass(frozen=True)
class Target:
    """A goal of issue 5: ``field`` (``p50_us`` or ``p99_us``) below ``limit_us``."""

    text: str
    field: str
    limit_us: float

    def met(self, figures: dict[str, Any]) -> bool:
        return bool(figures[self.field] < self.limit_us)


@dataclasses.dataclass(frozen=True)
class Case:
    """One library variant: how to set the library up and what one call is."""

    name: str
    mode: str
    options: dict[str, Any]
    call: Callable[[], Callable[[], None]]  # built after init()
    sends: bool  # every call should queue (or send) one notification
    target: Target | None = None


def _send_update() -> Callable[[], None]:
    return lambda: nova_notifier.send_update(CONTEXT, OLD, NEW)


def _usage() -> Callable[[], None]:
    compute = nova_notifier.get_notifier("compute", "compute-17")
    return lambda: nova_notifier.notify_about_instance_usage(
        compute, CONTEXT, NEW, "create.end"
    )


def _decorated() -> Callable[[], None]:
    return lambda: DECORATED(CONTEXT, NEW["uuid"], reboot_type="HARD")


STATE_CHANGE = {"notify_on_state_change": updates.VM_STATE}
BACKGROUND = Target("p99 < 50", "p99_us", 50)
DISABLED = Target("p50 < 1", "p50_us", 1)

CASES = (
    Case("send_update direct", "direct", STATE_CHANGE, _send_update, True),
    Case(
        "send_update background",
        "background",
        STATE_CHANGE,
        _send_update,
        True,
        BACKGROUND,
    ),
    Case("send_update disabled", "background", {}, _send_update, False, DISABLED),
    Case("usage background", "background", {}, _usage, True, BACKGROUND),
    Case("notify_decorator background", "background", {}, _decorated, True, BACKGROUND),
)


@dataclasses.dataclass
class Checks:
    """What each round's ``stats()`` said, and anything that looked wrong."""

    stats: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    problems: list[str] = dataclasses.field(default_factory=list)


def run_case(case: Case, calls: int, warmup: int, checks: Checks) -> bench.Latency:
    bench.init_library(case.mode, **case.options)
    try:
        samples = bench.time_calls(case.call(), calls, warmup=warmup)
    finally:
        stats = bench.close_library()
    checks.stats.setdefault(case.name, []).append(stats)
    expected = calls + warmup if case.sends else 0
    if stats["dropped"] or stats["queued"] != expected or stats["sent"] != expected:
        checks.problems.append(
            f"{case.name}: expected {expected} queued and sent, 0 dropped; "
            f"stats() said {stats}"
        )
    return bench.latency(samples)


def sample_payload() -> dict[str, Any]:
    """The ``compute.instance.update`` payload of NEW, for the baseline."""
    bench.init_library("direct")
    try:
        states = {"old_state": "building", "state": "active"}
        return updates.update_payload(CONTEXT, NEW, states)
    finally:
        bench.close_library()


def run_baseline(payload: dict[str, Any], calls: int, warmup: int) -> bench.Latency:
    conf = bench.make_conf("direct", driver="noop")
    transport = oslo_messaging.get_notification_transport(conf)
    notifier = oslo_messaging.Notifier(
        transport,
        publisher_id="compute.compute-17",
        driver="noop",
        topics=["notifications"],
    )
    try:
        samples = bench.time_calls(
            lambda: notifier.info(CONTEXT, EVENT_TYPE, payload), calls, warmup=warmup
        )
    finally:
        transport.cleanup()
    return bench.latency(samples)


def main() -> None:
    args = bench.parse_args(__doc__)
    calls, warmup = (1500, 200) if args.quick else (5000, 500)
    payload = sample_payload()
    checks = Checks()
    variants: dict[str, Callable[[], bench.Latency]] = {
        BASELINE: lambda: run_baseline(payload, calls, warmup)
    }
    for case in CASES:
        variants[case.name] = functools.partial(run_case, case, calls, warmup, checks)
    bench.progress(
        f"{NAME}: {len(variants)} variants x {args.rounds} rounds x {calls} calls"
    )
    floor = bench.timer_floor()
    rounds = bench.interleave(variants, args.rounds, NAME)
    report(args, rounds, floor, checks, bench.json_size(payload))


def report(
    args: argparse.Namespace,
    rounds: dict[str, list[bench.Latency]],
    floor: bench.Latency,
    checks: Checks,
    payload_bytes: int,
) -> None:
    summary = {name: bench.summarize_latency(values) for name, values in rounds.items()}
    base = summary[BASELINE]
    targets = {case.name: case for case in CASES}
    rows = []
    for name, figures in summary.items():
        case = targets.get(name)
        target = case.target if case is not None else None
        met = ""
        if target is not None:
            met = "yes" if target.met(figures) else "no"
            figures["target"] = {"text": target.text + " us", "met": met == "yes"}
        rows.append(
            [
                name,
                bench.fmt(figures["p50_us"]),
                bench.fmt(figures["p99_us"]),
                bench.fmt(bench.ratio(figures["p50_us"], base["p50_us"]), 2),
                bench.fmt(bench.ratio(figures["p99_us"], base["p99_us"]), 2),
                target.text if target is not None else "",
                met,
            ]
        )
    notes = [
        f"median of {args.rounds} interleaved rounds, "
        f"{base['calls_per_round']} timed calls per variant and round; "
        f"payload {payload_bytes} bytes as JSON",
        f"timer floor (an empty call, nothing subtracted): "
        f"p50 {floor.p50_us:.3f} us, p99 {floor.p99_us:.3f} us",
        "direct = synchronous in-process cost on fake://, not a broker round trip",
    ]
    bench.print_table(
        "Caller-side cost of one emit (us per call)",
        ["variant", "p50 us", "p99 us", "x base p50", "x base p99", "target", "met"],
        rows,
        notes,
        checks.problems,
    )
    bench.write_results(
        NAME,
        args,
        {
            "baseline": BASELINE,
            "payload_bytes": payload_bytes,
            "timer_floor": dataclasses.asdict(floor),
            "variants": summary,
            "library_stats": checks.stats,
            "problems": checks.problems,
        },
    )


if __name__ == "__main__":
    main()
