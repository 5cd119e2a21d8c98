"""A service that emits through a plain oslo.messaging Notifier.

Run by the driver tests and benches:
``python driver_child.py URL TOPIC DRIVER SPOOL COUNT RATE [RABBIT_OPT=VALUE ...]``
emits COUNT numbered notifications at RATE a second (0: as fast as it
can) through ``oslo_messaging.Notifier(driver=DRIVER)``, timing every call,
prints ``started`` once the first call returned, then one JSON line with
the call times and the drivers' counters, flushes the drivers' senders and
prints their counters again. ``read_kb``: what the calling thread read
from storage over all its calls; ``max_own_ms``: the longest own time
(``own_ms``) of the calls over 2 ms. ``[oslo_messaging_rabbit]`` options may follow
as NAME=VALUE (``true``/``false`` and numbers are converted). Environment:
``NN_PAYLOAD_BYTES`` pads each payload to about that size, ``NN_RETRY`` sets
``[oslo_messaging_notifications] retry``. ``delivered_s`` is the time from
the first call until the senders were flushed (everything confirmed).
``slowest`` lists the ten slowest calls over 2 ms (when paced), each with
when it began (``at_s``, from the first call) and where its time went:
``cpu_ms`` run on a core by this thread, ``runq_ms`` spent runnable waiting
for a core (the kernel's schedstat), ``gc_ms`` inside the process's garbage
collections (``gc_thread``: whether the calling thread or another one,
holding the GIL, ran them), ``read_kb`` read from storage by this thread
(a write that had to read a block in first), the rest blocked (a lock, the
GIL, a disk or the network).
"""

from __future__ import annotations

import bisect
import gc
import json
import os
import sys
import threading
import time
from typing import Any


def _value(text: str) -> object:
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _read_bytes() -> int:
    """Bytes this thread has had read from storage (not from the page
    cache): a write that needs a block read in shows here."""
    try:
        with open("/proc/thread-self/io") as stat:
            for line in stat:
                if line.startswith("read_bytes:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _runq_ns() -> int:
    """Nanoseconds this thread has spent runnable but waiting for a core."""
    try:
        with open("/proc/thread-self/schedstat") as stat:
            return int(stat.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


class _Collections:
    """The process's garbage collections longer than 0.5 ms, as
    (start, end, ran in the calling thread) in ``perf_counter`` time."""

    def __init__(self) -> None:
        self.caller = threading.get_ident()
        self.spans: list[tuple[float, float, bool]] = []
        self._began: dict[int, float] = {}
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        now, thread = time.perf_counter(), threading.get_ident()
        if phase == "start":
            self._began[thread] = now
        elif now - self._began.get(thread, now) > 0.0005:
            self.spans.append((self._began[thread], now, thread == self.caller))

    def within(self, begin: float, end: float) -> tuple[float, str]:
        """Milliseconds of collections between ``begin`` and ``end``, and
        which thread ran them."""
        total, where = 0.0, set()
        for start, stop, in_caller in self.spans:
            overlap = min(stop, end) - max(start, begin)
            if overlap > 0:
                total += overlap
                where.add("caller" if in_caller else "other")
        return total * 1000, "+".join(sorted(where))


def _breakdown(
    call: tuple[float, float, float, float, int],
    first: float,
    collections: _Collections,
) -> dict[str, object]:
    """One slow call as ``slowest`` reports it (``first``: when the first
    call began, in ``perf_counter`` time)."""
    ms, cpu, runq, begin, read = call
    gc_ms, gc_thread = collections.within(begin, begin + ms / 1000)
    return {
        "ms": round(ms, 2),
        "cpu_ms": round(cpu, 2),
        "runq_ms": round(runq, 2),
        "gc_ms": round(gc_ms, 2),
        "gc_thread": gc_thread,
        "read_kb": read // 1024,
        "at_s": round(begin - first, 2),
    }


SLOWEST = 10  # slow calls reported one by one


def _own(call: dict[str, Any]) -> float:
    # schedstat counts the waits just around the timed call too: never below 0
    return max(0.0, call["ms"] - call["runq_ms"] - call["gc_ms"])


def own_ms(calls: dict[str, Any]) -> float:
    """From the child's report of its calls: the longest time a call took
    of its own, less its waits for a core and for the interpreter's
    garbage collections (what neither the driver nor oslo's Notifier can
    help on a shared machine), over every call that took over 2 ms
    (``max_own_ms``); the longest call where its calls were not paced
    (nothing was broken down)."""
    if calls.get("slowest"):
        return float(calls["max_own_ms"])
    return float(calls["max_ms"])


def main() -> int:
    url, topic, driver, spool = sys.argv[1:5]
    count, rate = int(sys.argv[5]), float(sys.argv[6])
    rabbit = dict(arg.split("=", 1) for arg in sys.argv[7:])

    import oslo_messaging

    from nova_notifier import drivers
    from nova_notifier.testing.config import make_conf

    conf = make_conf(
        url,
        [topic],
        driver=driver,
        rabbit={name: _value(value) for name, value in rabbit.items()},
        spool_path=spool,
        retry_backoff_max=0.5,
        send_timeout=4.0,
        queue_size=10**6,
        flush_timeout=120.0,
    )
    if os.environ.get("NN_RETRY"):
        conf.set_override(
            "retry", int(os.environ["NN_RETRY"]), group="oslo_messaging_notifications"
        )
    padding = "x" * int(os.environ.get("NN_PAYLOAD_BYTES") or 0)
    transport = oslo_messaging.get_notification_transport(conf)
    notifier = oslo_messaging.Notifier(
        transport, "compute.driver-child", driver=driver, topics=[topic]
    )
    durations = []
    slowest: list[tuple[float, float, float, float, int]] = []
    collections = _Collections()
    started, started_at = time.monotonic(), time.time()
    first = time.perf_counter()
    runq, cpu, read = 0, 0.0, 0
    read_before = _read_bytes()
    for seq in range(count):
        if rate:
            wait = started + seq / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            # the wait for a core read last, nearest the call
            read, cpu, runq = _read_bytes(), time.thread_time(), _runq_ns()
        begin = time.perf_counter()
        payload = {"seq": seq, "emitted": time.time()}
        if padding:
            payload["padding"] = padding
        notifier.info({}, "test.driver", payload)
        took = time.perf_counter() - begin
        durations.append(took)
        if rate and took > 0.002:
            runq_ms = (_runq_ns() - runq) / 1e6  # first, nearest the call
            cpu_ms = (time.thread_time() - cpu) * 1000
            slowest.append((took * 1000, cpu_ms, runq_ms, begin, _read_bytes() - read))
        if seq == 0:
            print("started", flush=True)
    elapsed = time.monotonic() - started
    read_kb = (_read_bytes() - read_before) // 1024
    slow = [_breakdown(call, first, collections) for call in sorted(slowest)[::-1]]
    durations.sort()
    print(
        json.dumps(
            {
                "calls": len(durations),
                "max_ms": durations[-1] * 1000 if durations else 0.0,
                "p99_ms": durations[int(len(durations) * 0.99)] * 1000
                if durations
                else 0.0,
                "over_5ms": len(durations) - bisect.bisect_right(durations, 0.005),
                "over_2ms": len(durations) - bisect.bisect_right(durations, 0.002),
                "emit_s": elapsed,
                "read_kb": read_kb,
                "started_at": started_at,
                "slowest": slow[:SLOWEST],
                "max_own_ms": round(max(map(_own, slow), default=0.0), 3),
                "stats": drivers.driver_stats(),
            }
        ),
        flush=True,
    )
    drivers.flush_drivers()
    delivered = time.monotonic() - started
    print(
        json.dumps({"flushed": drivers.driver_stats(), "delivered_s": delivered}),
        flush=True,
    )
    transport.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
