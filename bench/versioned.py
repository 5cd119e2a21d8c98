"""What a versioned notification costs the caller, beside the legacy one.

Run from the repository root::

    .venv/bin/python bench/versioned.py           # 7 rounds
    .venv/bin/python bench/versioned.py --quick   # 3 rounds, fewer calls

``create.end`` of a Nova-like instance, oslo.messaging's ``test`` driver
(which builds nothing), direct delivery, timed call by call, interleaved
rounds in one process:

``raw Notifier.info``
    oslo.messaging's ``Notifier.info`` of an already built legacy payload.
``legacy``
    ``notify_about_instance_usage`` with ``notification_format =
    unversioned``.
``ovo serialisation``
    The same versioned payload object the library builds, sent the way
    Nova's ``NotificationBase.emit`` does: ``obj_reset_changes(recursive=
    True)``, ``obj_to_primitive()``, ``Notifier.info``. Building the object
    is included (through the library's builder: Nova's builder reads Nova
    objects, which this machine has not).
``versioned`` / ``both``
    ``notify_about_instance_usage`` with ``notification_format`` versioned,
    both (the legacy and the versioned message).

Ratios are paired by round.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import _common as bench
import oslo_messaging

import nova_notifier
from nova_notifier import lifecycle
from nova_notifier.versioned import build, objects

NAME = "versioned"
CONTEXT = bench.make_context()
INSTANCE = bench.make_instance()
HOST = "compute-bench"


def _library(fmt: str, calls: int) -> bench.Latency:
    bench.init_library("direct", driver="test", notification_format=fmt)
    call = bench.usage_call(CONTEXT, INSTANCE, HOST)
    try:
        return bench.latency(
            bench.time_calls(call, calls, between=bench.take_test_notifications)
        )
    finally:
        stats = bench.close_library()
        if stats["dropped"]:
            raise SystemExit(f"{fmt}: dropped {stats}")


def _oslo(calls: int, versioned: bool) -> bench.Latency:
    conf = bench.make_conf("direct", driver="test")
    nova_notifier.init(conf)
    try:
        notifier = oslo_messaging.Notifier(
            lifecycle.transport(), f"nova-compute:{HOST}", driver="test"
        )
        legacy = nova_notifier.info_from_instance(CONTEXT, INSTANCE, None, None)

        def nova_style() -> None:
            payload = build.instance_payload(
                objects.InstanceCreatePayload, CONTEXT, INSTANCE, fault=None
            )
            payload.obj_reset_changes(recursive=True)
            notifier.info(CONTEXT, "instance.create.end", payload.obj_to_primitive())

        def raw() -> None:
            notifier.info(CONTEXT, "compute.instance.create.end", legacy)

        call: Callable[[], None] = nova_style if versioned else raw
        return bench.latency(
            bench.time_calls(call, calls, between=bench.take_test_notifications)
        )
    finally:
        nova_notifier.cleanup()


def main() -> None:
    args = bench.parse_args(__doc__)
    calls = 500 if args.quick else 2000
    variants: dict[str, Callable[[], Any]] = {
        "raw Notifier.info": functools.partial(_oslo, calls, False),
        "legacy": functools.partial(_library, "unversioned", calls),
        "ovo serialisation": functools.partial(_oslo, calls, True),
        "versioned": functools.partial(_library, "versioned", calls),
        "both": functools.partial(_library, "both", calls),
    }
    rounds = bench.interleave(variants, args.rounds, NAME)
    base = rounds["ovo serialisation"]
    rows = [
        [
            name,
            bench.fmt(bench.median([r.p50_us for r in results])),
            bench.fmt(bench.median([r.p99_us for r in results])),
            f"{bench.paired_ratio(results, base):.2f}x",
        ]
        for name, results in rounds.items()
    ]
    bench.print_table(
        "create.end, us per call (test driver, direct)",
        ["variant", "p50", "p99", "p50 vs ovo serialisation"],
        rows,
    )
    bench.write_results(
        NAME,
        args,
        {
            "variants": {n: bench.summarize_latency(r) for n, r in rounds.items()},
            "versioned_vs_ovo": bench.paired_ratio(rounds["versioned"], base),
            "both_vs_legacy": bench.paired_ratio(rounds["both"], rounds["legacy"]),
        },
    )


if __name__ == "__main__":
    main()
