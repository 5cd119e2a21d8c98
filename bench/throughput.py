"""Delivered throughput to the real RabbitMQ broker, side by side.

Each variant publishes N notifications (2 KB payload) to one topic; a
consumer in a separate process counts them off the queue, and the figure is
N divided by the time from the first publish to the last message received.
Variants run in interleaved rounds (noisy shared machine); the table shows
the median msg/s per variant and its ratio to oslo.messaging's synchronous
Notifier and to raw kombu without confirms, measured in the same run.

- raw kombu, no confirms: the ceiling (nothing is known to have arrived)
- raw kombu, confirm each: what a safe one-by-one publisher can do
- oslo Notifier: oslo.messaging's Notifier.info, messagingv2 driver
- library direct / background / spool: nova_notifier in each delivery mode
  (background and spool: every message confirmed by the broker, in batches)

After the variants, each round also times the emit calls of a spool-mode
service while its sender drains a backlog: BACKLOG notifications left in
the spool (as by an outage), then one emit call a millisecond (wall time of
each call) until the sender has delivered the backlog. Its p99 is the
"spool caller p99 during drain" figure; the p99 of the spool variant's own
calls (a tight loop racing the sender for the GIL) is printed beside it.

The targets of issue 11 are printed last as figure / target / MET or MISS;
a ratio is the median over the rounds of that round's ratio.

Usage: .venv/bin/python bench/throughput.py [--count N] [--rounds R] [--quick]
Results also go to bench/results/throughput.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any

warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")

import amqp  # noqa: E402
import kombu  # noqa: E402
import oslo_messaging  # noqa: E402
from oslo_config import cfg  # noqa: E402

import nova_notifier  # noqa: E402
from nova_notifier._rabbit_batch import BatchPublisher  # noqa: E402
from nova_notifier.delivery import _SpoolSource  # noqa: E402
from nova_notifier.testing.config import make_conf  # noqa: E402

URL = "rabbit://guest:guest@127.0.0.1:5672/"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
EXCHANGE = "openstack"
PAD = "x" * 2000
BACKLOG = 20000  # spool rows the drain phase starts from
TARGETS = (  # (label, variant, baseline or None for a latency, target)
    ("background vs oslo Notifier", "library background", "oslo Notifier", 2.5),
    (
        "background vs raw kombu, no confirms",
        "library background",
        "raw kombu, no confirms",
        0.8,
    ),
    ("spool vs oslo Notifier", "library spool", "oslo Notifier", 2.0),
)
DRAIN_P99_TARGET_MS = 1.0


def _consumer(queue_name: str, requests: Any, answers: Any) -> None:
    """Count messages on ``queue_name``; answer the time the Nth arrived."""
    conn = amqp.Connection(host="127.0.0.1:5672", userid="guest", password="guest")
    conn.connect()
    channel = conn.channel()
    state = {"count": 0}

    def on_message(message: Any) -> None:
        state["count"] += 1

    channel.basic_consume(queue_name, callback=on_message, no_ack=True)
    answers.put("ready")
    while True:
        expected = requests.get()
        if expected is None:
            break
        deadline = time.monotonic() + 300
        while state["count"] < expected and time.monotonic() < deadline:
            try:
                conn.drain_events(timeout=1)
            except TimeoutError:
                pass
        answers.put((state["count"], time.time()))
        state["count"] = 0
    conn.close()


def _conf(
    topic: str, mode: str, spool_dir: str, spool_path: str = ""
) -> cfg.ConfigOpts:
    return make_conf(
        URL,
        [topic],
        project="bench",
        delivery_mode=mode,
        queue_size=10**6,
        spool_path=spool_path
        or os.path.join(spool_dir or tempfile.gettempdir(), f"{uuid.uuid4().hex}.db"),
    )


def _raw_kombu(topic: str, confirm: bool) -> Callable[[int], None]:
    def run(count: int) -> None:
        options = {"confirm_publish": True} if confirm else {}
        with kombu.Connection(AMQP_URL, transport_options=options) as conn:
            producer = conn.Producer(
                exchange=kombu.Exchange(EXCHANGE, "topic", durable=False)
            )
            for seq in range(count):
                body = BatchPublisher.body(
                    {}, {"event_type": "bench", "payload": {"seq": seq, "pad": PAD}}
                )
                producer.publish(
                    body,
                    routing_key=f"{topic}.info",
                    content_type="application/json",
                    content_encoding="utf-8",
                )

    return run


def _oslo(topic: str) -> Callable[[int], None]:
    def run(count: int) -> None:
        conf = _conf(topic, "direct", "")
        transport = oslo_messaging.get_notification_transport(conf, url=URL)
        notifier = oslo_messaging.Notifier(
            transport, publisher_id="bench", driver="messagingv2", topics=[topic]
        )
        for seq in range(count):
            notifier.info({}, "bench", {"seq": seq, "pad": PAD})
        transport.cleanup()

    return run


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _library(
    topic: str, mode: str, spool_dir: str, calls: list[float] | None = None
) -> Callable[[int], None]:
    """Emit ``count`` in a tight loop; ``calls`` gets each call's p99 (s)."""

    def run(count: int) -> None:
        nova_notifier.init(_conf(topic, mode, spool_dir))
        notifier = nova_notifier.get_notifier("compute", "bench")
        clock = time.perf_counter
        took = []
        for seq in range(count):
            started = clock()
            notifier.info({}, "bench", {"seq": seq, "pad": PAD})
            took.append(clock() - started)
        if calls is not None:
            calls.append(_p99(took))
        # the consumer's clock stops at the last arrival; cleanup() just
        # closes the (by then drained) sender
        nova_notifier.cleanup()

    return run


def _spool_drain(topic: str, spool_dir: str) -> tuple[float, int]:
    """The p99 (s) of paced emit calls while the sender drains BACKLOG rows
    a previous run left in the spool (as after an outage or a restart),
    and how many calls it timed. They go to a queue of their own (deleted
    after), so the counting consumer does not see them."""
    path = os.path.join(spool_dir, f"{uuid.uuid4().hex}.db")
    left = _SpoolSource(path, "normal", [topic], 2.0)
    for seq in range(BACKLOG):
        message = {
            "message_id": str(uuid.uuid4()),
            "publisher_id": "compute.bench",
            "event_type": "bench",
            "priority": "INFO",
            "payload": {"seq": seq, "pad": PAD},
            "timestamp": "2026-01-01 00:00:00.000000",
        }
        item = {"ctxt": {}, "message": message, "topics": [topic], "version": 2.0}
        left.put(item)
    left.close()
    nova_notifier.init(_conf(topic, "spool", spool_dir, path))
    notifier = nova_notifier.get_notifier("compute", "bench")
    took: list[float] = []
    clock = time.perf_counter
    deadline = time.monotonic() + 120
    while nova_notifier.stats()["sent"] < BACKLOG and time.monotonic() < deadline:
        time.sleep(0.001)
        started = clock()
        notifier.info({}, "bench", {"seq": -1, "pad": PAD})
        took.append(clock() - started)
    nova_notifier.cleanup()
    with kombu.Connection(AMQP_URL) as conn:
        conn.channel().queue_delete(f"{topic}.info")
    return (_p99(took) if took else float("nan")), len(took)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="--count 1000 --rounds 3")
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.rounds = 1000, 3
    logging.basicConfig(level=logging.CRITICAL)

    topic = f"nn-bench-{uuid.uuid4().hex[:10]}"
    queue_name = f"{topic}.info"
    with kombu.Connection(AMQP_URL) as conn:
        channel = conn.channel()
        channel.exchange_declare(EXCHANGE, "topic", durable=False, auto_delete=False)
        channel.queue_declare(queue_name, durable=False, auto_delete=False)
        channel.queue_bind(queue_name, EXCHANGE, queue_name)

    spool_dir = tempfile.mkdtemp(prefix="nn-bench-spool-")
    spool_calls: list[float] = []
    drains: list[tuple[float, int]] = []
    variants: dict[str, Callable[[int], None]] = {
        "raw kombu, no confirms": _raw_kombu(topic, confirm=False),
        "raw kombu, confirm each": _raw_kombu(topic, confirm=True),
        "oslo Notifier": _oslo(topic),
        "library direct": _library(topic, "direct", spool_dir),
        "library background": _library(topic, "background", spool_dir),
        "library spool": _library(topic, "spool", spool_dir, spool_calls),
    }
    ctx = multiprocessing.get_context("spawn")
    requests, answers = ctx.Queue(), ctx.Queue()
    consumer = ctx.Process(target=_consumer, args=(queue_name, requests, answers))
    consumer.start()
    answers.get(timeout=60)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    ratios: dict[str, list[float]] = {label: [] for label, _, _, _ in TARGETS}
    try:
        for round_no in range(args.rounds):
            names = list(variants)
            names = names[round_no % len(names) :] + names[: round_no % len(names)]
            this_round: dict[str, float] = {}
            for name in names:
                requests.put(args.count)
                started = time.time()
                variants[name](args.count)
                got, last = answers.get(timeout=360)
                if got < args.count:
                    print(f"  {name}: only {got}/{args.count} arrived", flush=True)
                    continue
                this_round[name] = args.count / (last - started)
                rates[name].append(this_round[name])
            for label, variant, base, _ in TARGETS:
                if variant in this_round and base in this_round:
                    ratios[label].append(this_round[variant] / this_round[base])
            drains.append(_spool_drain(f"{topic}-drain", spool_dir))
            print(f"round {round_no + 1}/{args.rounds} done", flush=True)
    finally:
        requests.put(None)
        consumer.join(30)
        with kombu.Connection(AMQP_URL) as conn:
            conn.channel().queue_delete(queue_name)

    medians = {n: statistics.median(r) if r else 0.0 for n, r in rates.items()}
    oslo, ceiling = medians["oslo Notifier"], medians["raw kombu, no confirms"]
    print(
        f"\ndelivered throughput, {args.count} x 2 KB notifications, median of "
        f"{args.rounds} interleaved rounds ({platform.node()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()})"
    )
    print(f"{'variant':<26}{'msg/s':>10}{'x oslo':>9}{'x raw no-confirm':>18}")
    rows = []
    for name, value in medians.items():
        print(
            f"{name:<26}{value:>10.0f}{value / oslo if oslo else 0:>9.2f}"
            f"{value / ceiling if ceiling else 0:>18.2f}"
        )
        rows.append(
            {
                "variant": name,
                "msg_per_s": round(value, 1),
                "ratio_to_oslo": round(value / oslo, 3) if oslo else None,
                "ratio_to_raw_no_confirms": round(value / ceiling, 3)
                if ceiling
                else None,
                "rounds": [round(r, 1) for r in rates[name]],
            }
        )
    drain_p99 = statistics.median(p for p, _ in drains) * 1e3
    tight_p99 = statistics.median(spool_calls) * 1e3 if spool_calls else 0.0
    print(
        f"\nspool emit call p99 while the sender drains {BACKLOG} rows "
        f"(one call a ms, {statistics.median(n for _, n in drains):.0f} calls a "
        f"round): {drain_p99:.3f} ms; in the spool variant's tight loop: "
        f"{tight_p99:.3f} ms"
    )
    print(f"\n{'target':<40}{'figure':>9}{'target':>10}  result")
    met: dict[str, Any] = {}
    for label, _, _, target in TARGETS:
        figure = statistics.median(ratios[label]) if ratios[label] else 0.0
        ok = figure >= target
        met[label] = {"figure": round(figure, 3), "target": target, "met": ok}
        print(
            f"{label:<40}{figure:>8.2f}x{'>= ' + str(target) + 'x':>10}  "
            f"{'MET' if ok else 'MISS'}"
        )
    label = "spool caller p99 during drain"
    ok = drain_p99 < DRAIN_P99_TARGET_MS
    met[label] = {"figure_ms": round(drain_p99, 3), "target_ms": 1.0, "met": ok}
    print(f"{label:<40}{drain_p99:>6.3f} ms{'< 1 ms':>10}  {'MET' if ok else 'MISS'}")
    os.makedirs("bench/results", exist_ok=True)
    with open("bench/results/throughput.json", "w", encoding="utf-8") as f:
        json.dump(
            {
                "benchmark": "throughput",
                "count": args.count,
                "rounds": args.rounds,
                "machine": {
                    "node": platform.node(),
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "results": rows,
                "targets": met,
                "spool_drain_rounds": [
                    {"p99_ms": round(p * 1e3, 3), "calls": n} for p, n in drains
                ],
                "spool_tight_loop_p99_ms": [round(p * 1e3, 3) for p in spool_calls],
            },
            f,
            indent=2,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
