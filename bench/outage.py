"""Broker outage bench: what an emitter loses, waits and gets back.

Run from the repository root with RabbitMQ on 127.0.0.1:5672 (guest/guest)::

    .venv/bin/python bench/outage.py            # 3000 notifications, 5 s outage
    .venv/bin/python bench/outage.py --quick    # 600 notifications, 3 s outage

Four scenarios run one after the other, each on a topic of its own:

``oslo retry=None``
    A plain ``oslo_messaging.Notifier`` with the default retry (retry forever).
``oslo retry=0``
    A plain ``oslo_messaging.Notifier`` with ``retry=0``.
``library background``
    ``nova_notifier`` with ``[notifications] delivery_mode = background``.
``library spool``
    ``nova_notifier`` with ``[notifications] delivery_mode = spool``.

In each, one thread emits ``--count`` INFO notifications (a ~1 KB payload
carrying a ``seq`` number) on a fixed schedule spread over three times the
outage, through a ``FaultProxy`` in front of the broker. A third of the way
in the proxy is cut (open connections closed, new ones refused) for
``--outage`` seconds, then restored. An oslo.messaging notification listener
connected straight to the broker, not through the proxy, counts what
arrives. Every emit call is timed with ``time.perf_counter``. An emitter
that falls behind (a call that blocked) catches up as fast as it can. The
senders use ``[oslo_messaging_rabbit] heartbeat_timeout_threshold = 4`` and
the library ``retry_backoff_max = 0.5``.

The wait after the restore is bounded (``--wait``, 60 s): an emitter still
stuck in an emit call by then is reported as blocked, left behind (a daemon
thread) and the scenario is scored on what had arrived.

Reading the table:

``sent``
    Emit calls made (an emit call still blocked at the end counts).
``received``
    Distinct ``seq`` numbers the listener got.
``lost``
    ``sent - received``: emit calls that returned (or blocked) and whose
    notification never arrived.
``dup``
    Extra copies received (at-least-once redelivery); a consumer drops them
    by ``message_id``.
``emit p50 us``, ``emit p99 us``, ``emit max ms``
    Latency of the emit calls in progress at any time while the proxy was
    cut (so a call that started just before the cut and blocked counts).
    This is the time an API request would spend in the notifier during an
    outage. A ``>=`` max is a call still blocked at the end (a lower bound);
    ``-`` means no call ran during the outage.
``drain s``
    From the restore to the arrival of the last notification scheduled
    before the restore (the ones the outage held back), counting the time a
    blocked emitter needs to catch up; ``0`` when nothing was held back.
``rate msg/s``
    Notifications scheduled before the restore that arrived after it,
    divided by ``drain s``: how fast the backlog went out once the broker
    was back (``-`` when fewer than 10 were held back, e.g. lost instead).

``bench/results/outage.json`` holds the same rows with more detail: the
emit p50 before the outage, calls over 1 ms, time to the first arrival
after the restore (``reconnect_s``) and to the last one (``complete_s``),
and the library's ``stats()`` at the restore and at the end.

The proxy (Python threads) and the listener run in this process, so they
share the GIL with the emitter: the microsecond figures are an upper bound
of what the notifier costs on its own.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from importlib import metadata
from typing import Any, Protocol

import oslo_messaging
from oslo_config import cfg

import nova_notifier
from nova_notifier.testing.config import make_conf  # noqa: E402
from nova_notifier.testing.tcpproxy import FaultProxy
from nova_notifier.tools.amqp_queues import delete_queues

BROKER_URL = "rabbit://guest:guest@127.0.0.1:5672/"
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
PRIORITIES = ("audit", "debug", "info", "warn", "error", "critical", "sample")
EVENT_TYPE = "bench.outage"
FILLER = "x" * 1000  # with the seq: a ~1 KB payload
QUIET = 2.0  # s without a new arrival, once nothing is pending, ends a wait
CLOSE_TIMEOUT = 15.0  # s allowed to close a sender that may be stuck
RATE_MIN = 10  # fewer held-back notifications than this give no rate


@dataclasses.dataclass(frozen=True)
class Scenario:
    key: str
    name: str
    retry: int | None = None  # plain oslo.messaging
    mode: str | None = None  # the library's delivery_mode


SCENARIOS = (
    Scenario("oslo-default", "oslo retry=None", retry=None),
    Scenario("oslo-retry0", "oslo retry=0", retry=0),
    Scenario("background", "library background", mode="background"),
    Scenario("spool", "library spool", mode="spool"),
)


class Sender(Protocol):
    def emit(self, payload: dict[str, Any]) -> None: ...

    def backlog(self) -> int: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class PlainSender:
    """oslo.messaging's own ``Notifier``, the way a service uses it."""

    def __init__(self, conf: cfg.ConfigOpts, topic: str, retry: int | None) -> None:
        self.transport = oslo_messaging.get_notification_transport(conf)
        self.notifier = oslo_messaging.Notifier(
            self.transport,
            publisher_id="compute.bench",
            driver="messagingv2",
            topics=[topic],
            retry=retry,
        )

    def emit(self, payload: dict[str, Any]) -> None:
        self.notifier.info({}, EVENT_TYPE, payload)

    def backlog(self) -> int:
        return 0  # a returned call has published or given up

    def stats(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        self.transport.cleanup()


class LibrarySender:
    """``nova_notifier`` in a background delivery mode."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        nova_notifier.init(conf)
        self.notifier = nova_notifier.get_notifier("compute", "bench")

    def emit(self, payload: dict[str, Any]) -> None:
        self.notifier.info({}, EVENT_TYPE, payload)

    def backlog(self) -> int:
        return int(nova_notifier.stats()["backlog"])

    def stats(self) -> dict[str, Any]:
        return nova_notifier.stats()

    def close(self) -> None:
        nova_notifier.cleanup()


class Arrivals:
    """Listener endpoint: when each seq first arrived and how many copies did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.first: dict[int, float] = {}
        self.copies: collections.Counter[int] = collections.Counter()
        self.last_new = time.perf_counter()

    def info(
        self,
        ctxt: dict[str, Any],
        publisher_id: str,
        event_type: str,
        payload: Any,
        metadata: dict[str, Any],
    ) -> None:
        if event_type != EVENT_TYPE or not isinstance(payload, dict):
            return
        seq = payload.get("seq")
        if not isinstance(seq, int):
            return
        now = time.perf_counter()
        with self._lock:
            self.copies[seq] += 1
            if seq not in self.first:
                self.first[seq] = now
                self.last_new = now

    def snapshot(self) -> tuple[dict[int, float], collections.Counter[int]]:
        with self._lock:
            return dict(self.first), collections.Counter(self.copies)

    def distinct(self) -> int:
        with self._lock:
            return len(self.first)


class Emitter(threading.Thread):
    """Emits ``count`` notifications, seq ``i`` due at ``start + i * interval``."""

    def __init__(
        self, emit: Callable[[dict[str, Any]], None], count: int, interval: float
    ) -> None:
        super().__init__(name="bench-emitter", daemon=True)
        self._emit = emit
        self.count = count
        self.interval = interval
        self.start_at = 0.0
        self.calls: list[tuple[float, float]] = []  # (started, seconds)
        self.in_flight: float | None = None  # start of a call not returned yet
        self.errors = 0
        self.halt = threading.Event()

    def due(self, seq: int) -> float:
        return self.start_at + seq * self.interval

    def begin(self, start_at: float) -> None:
        self.start_at = start_at
        self.start()

    def run(self) -> None:
        for seq in range(self.count):
            if self.halt.is_set():
                return
            delay = self.due(seq) - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            payload = {"seq": seq, "data": FILLER}
            started = time.perf_counter()
            self.in_flight = started
            try:
                self._emit(payload)
            except Exception:  # neither notifier should raise; count it if one does
                self.errors += 1
            self.calls.append((started, time.perf_counter() - started))
            self.in_flight = None

    @property
    def sent(self) -> int:
        return len(self.calls) + (1 if self.in_flight is not None else 0)


def sender_conf(scenario: Scenario, url: str, topic: str, workdir: str) -> Any:
    # A dead connection is noticed after this many seconds.
    conf = make_conf(
        url,
        [topic],
        host="bench",
        project="nova-notifier-bench",
        rabbit={"heartbeat_timeout_threshold": 4},
    )
    if scenario.mode is not None:
        conf.set_override("delivery_mode", scenario.mode, group="notifications")
        conf.set_override("retry_backoff_max", 0.5, group="notification_delivery")
        conf.set_override("flush_timeout", 5.0, group="notification_delivery")
        if scenario.mode == "spool":
            path = os.path.join(workdir, f"{scenario.key}.db")
            conf.set_override("spool_path", path, group="notification_delivery")
    return conf


def open_sender(scenario: Scenario, url: str, topic: str, workdir: str) -> Sender:
    conf = sender_conf(scenario, url, topic, workdir)
    if scenario.mode is None:
        return PlainSender(conf, topic, scenario.retry)
    return LibrarySender(conf)


def bounded(fn: Callable[[], None], timeout: float) -> bool:
    """Run ``fn`` in a daemon thread; False if it was still running at ``timeout``."""
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive()


def sleep_until(moment: float) -> None:
    delay = moment - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def overlaps(started: float, secs: float, begin: float, end: float) -> bool:
    return started < end and started + secs >= begin


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def run_scenario(
    scenario: Scenario, count: int, outage: float, wait: float, workdir: str
) -> dict[str, Any]:
    """Emit through a proxy cut for ``outage`` s; count what the listener got."""
    topic = f"nn-bench-{scenario.key}-{uuid.uuid4().hex[:8]}"
    window = 3 * outage
    arrivals = Arrivals()
    proxy = FaultProxy()
    listen_transport = oslo_messaging.get_notification_transport(
        make_conf(BROKER_URL, topic)
    )
    listener: Any = None
    sender: Sender | None = None
    emitter: Emitter | None = None
    try:
        listener = oslo_messaging.get_notification_listener(
            listen_transport,
            [oslo_messaging.Target(topic=topic)],
            [arrivals],
            executor="threading",
        )
        listener.start()
        sender = open_sender(scenario, proxy.url(), topic, workdir)
        emitter = Emitter(sender.emit, count, window / count)
        start = time.perf_counter() + 0.1
        emitter.begin(start)

        # Half an interval off the schedule: the cut falls between two calls.
        sleep_until(start + outage + emitter.interval / 2)
        proxy.cut()
        cut_at = time.perf_counter()
        sleep_until(cut_at + outage)
        at_restore = sender.stats()
        proxy.restore()
        restore_at = time.perf_counter()

        deadline = restore_at + wait
        while time.perf_counter() < deadline:
            if not emitter.is_alive():
                if arrivals.distinct() >= emitter.sent:
                    break
                quiet = time.perf_counter() - arrivals.last_new
                if sender.backlog() == 0 and quiet >= QUIET:
                    break
            time.sleep(0.05)
        ended = time.perf_counter()
        blocked_for = None
        in_flight = emitter.in_flight
        if emitter.is_alive() and in_flight is not None:
            blocked_for = ended - in_flight
        at_end = sender.stats()
        return score(
            scenario,
            count,
            emitter,
            arrivals,
            cut_at,
            restore_at,
            blocked_for,
            at_restore,
            at_end,
        )
    finally:
        if emitter is not None:
            emitter.halt.set()
            emitter.join(1.0)  # returns within one interval unless blocked
        if sender is not None and not bounded(sender.close, CLOSE_TIMEOUT):
            print(f"  {scenario.name}: closing the sender hung; left behind")
        proxy.close()
        if listener is not None:
            listener.stop()
            listener.wait()
        listen_transport.cleanup()
        delete_queues(BROKER_URL, [f"{topic}.{p}" for p in PRIORITIES])


def score(
    scenario: Scenario,
    count: int,
    emitter: Emitter,
    arrivals: Arrivals,
    cut_at: float,
    restore_at: float,
    blocked_for: float | None,
    at_restore: dict[str, Any],
    at_end: dict[str, Any],
) -> dict[str, Any]:
    first, copies = arrivals.snapshot()
    sent = emitter.sent
    received = len(first)
    calls = list(emitter.calls)
    if blocked_for is not None and emitter.in_flight is not None:
        calls.append((emitter.in_flight, blocked_for))
    # Calls in progress at some point of the outage.
    during_calls = [
        (started, secs)
        for started, secs in calls
        if overlaps(started, secs, cut_at, restore_at)
    ]
    during = [secs for _, secs in during_calls]
    slowest = max(during_calls, key=lambda call: call[1], default=None)
    before = [secs for started, secs in calls if started + secs < cut_at]
    held_back = [seq for seq in range(count) if emitter.due(seq) < restore_at]
    late = [first[seq] for seq in held_back if first.get(seq, 0.0) > restore_at]
    drain = max(late) - restore_at if late else 0.0
    after_restore = [t for t in first.values() if t > restore_at]
    p50, p99 = percentile(during, 50), percentile(during, 99)
    before_p50 = percentile(before, 50)
    return {
        "scenario": scenario.name,
        "key": scenario.key,
        "sent": sent,
        "received": received,
        "lost": sent - received,
        "dup": sum(copies.values()) - received,
        "not_emitted": count - sent,
        "emit_errors": emitter.errors,
        "blocked": blocked_for is not None,
        "blocked_for_s": None if blocked_for is None else round(blocked_for, 3),
        "outage_calls": len(during),
        "emit_p50_us": None if p50 is None else round(p50 * 1e6, 1),
        "emit_p99_us": None if p99 is None else round(p99 * 1e6, 1),
        "emit_max_ms": round(max(during) * 1e3, 3) if during else None,
        "emit_over_1ms": sum(1 for secs in during if secs > 1e-3),
        "emit_p50_before_us": None
        if before_p50 is None
        else round(before_p50 * 1e6, 1),
        "emit_slowest_started_s": (
            None if slowest is None else round(slowest[0] - cut_at, 3)
        ),
        "emit_max_all_ms": round(max(secs for _, secs in calls) * 1e3, 3),
        "outage_s": round(restore_at - cut_at, 3),
        "drain_s": round(drain, 3),
        "held_back_delivered": len(late),
        "rate_msg_s": (
            round(len(late) / drain, 1) if len(late) >= RATE_MIN and drain > 0 else None
        ),
        "reconnect_s": (
            round(min(after_restore) - restore_at, 3) if after_restore else None
        ),
        "complete_s": (
            round(max(after_restore) - restore_at, 3) if after_restore else None
        ),
        "stats_at_restore": at_restore,
        "stats_at_end": at_end,
    }


COLUMNS = (
    ("scenario", "scenario", 20),
    ("sent", "sent", 6),
    ("received", "received", 8),
    ("lost", "lost", 6),
    ("dup", "dup", 5),
    ("emit_p50_us", "emit p50 us", 11),
    ("emit_p99_us", "emit p99 us", 11),
    ("emit_max_ms", "emit max ms", 11),
    ("drain_s", "drain s", 8),
    ("rate_msg_s", "rate msg/s", 10),
)


def cell(row: dict[str, Any], key: str) -> str:
    value = row[key]
    if value is None:
        return "-"
    if key == "emit_max_ms" and row["blocked"]:
        return f">={value:.0f}"
    if isinstance(value, float):
        return (
            f"{value:.0f}" if key.startswith("rate") or value >= 1000 else f"{value:g}"
        )
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "  ".join(
            title.ljust(width) if i == 0 else title.rjust(width)
            for i, (_, title, width) in enumerate(COLUMNS)
        )
    ]
    for row in rows:
        lines.append(
            "  ".join(
                cell(row, key).ljust(width) if i == 0 else cell(row, key).rjust(width)
                for i, (key, _, width) in enumerate(COLUMNS)
            )
        )
    return "\n".join(lines)


def summary(row: dict[str, Any]) -> str:
    text = (
        f"{row['scenario']}: sent {row['sent']}, received {row['received']}, "
        f"lost {row['lost']}, dup {row['dup']}; {row['outage_calls']} emit calls "
        f"during the outage, p99 {cell(row, 'emit_p99_us')} us, "
        f"max {cell(row, 'emit_max_ms')} ms; drain {row['drain_s']} s"
    )
    if row["rate_msg_s"] is not None:
        text += f" ({row['held_back_delivered']} at {row['rate_msg_s']:.0f} msg/s)"
    if row["blocked"]:
        text += f"; emitter BLOCKED for {row['blocked_for_s']} s, abandoned"
    if row["not_emitted"]:
        text += f"; {row['not_emitted']} never emitted"
    if row["stats_at_end"]:
        text += f"; stats {row['stats_at_end']}"
    return text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, help="notifications per scenario")
    parser.add_argument("--outage", type=float, help="seconds the proxy stays cut")
    parser.add_argument(
        "--wait",
        type=float,
        default=60.0,
        help="seconds to wait for delivery after the restore (default 60)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="600 notifications, a 3 s outage"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[s.key for s in SCENARIOS],
        help="run only this scenario (repeatable)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show oslo.messaging/kombu logs"
    )
    args = parser.parse_args(argv)
    if args.count is None:
        args.count = 600 if args.quick else 3000
    if args.outage is None:
        args.outage = 3.0 if args.quick else 5.0
    if args.count < 1 or args.outage <= 0 or args.wait <= 0:
        parser.error("--count, --outage and --wait must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        for name in ("oslo_messaging", "oslo.messaging", "kombu", "amqp"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    scenarios = [s for s in SCENARIOS if not args.scenario or s.key in args.scenario]
    window = 3 * args.outage
    print(
        f"outage bench: {args.count} notifications per scenario at "
        f"{args.count / window:.0f}/s over {window:g} s through a proxy cut for "
        f"{args.outage:g} s from t={args.outage:g} s; listener straight on the "
        f"broker; oslo.messaging {metadata.version('oslo.messaging')}",
        flush=True,
    )
    workdir = tempfile.mkdtemp(prefix="nn-bench-outage-")
    rows: list[dict[str, Any]] = []
    try:
        for scenario in scenarios:
            row = run_scenario(scenario, args.count, args.outage, args.wait, workdir)
            rows.append(row)
            print(summary(row), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(table(rows))
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, "outage.json")
    with open(path, "w") as out:
        json.dump(
            {
                "count": args.count,
                "outage_s": args.outage,
                "window_s": window,
                "oslo_messaging": metadata.version("oslo.messaging"),
                "scenarios": rows,
            },
            out,
            indent=2,
        )
        out.write("\n")
    print(f"\nwrote {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
