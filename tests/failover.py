"""A service emitting through a RabbitMQ cluster while nodes die.

One home for the failover scenarios that ``tests/test_cluster_failover.py``
asserts and ``bench/cluster.py`` reports: a child process (``driver_child.py``)
emits numbered notifications at a steady rate through a plain
``oslo_messaging.Notifier`` on the three-host URL with quorum queues; this
process kills nodes and consumes with a real oslo.messaging listener
connected to nodes that stay up, timing each arrival.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import oslo_messaging

from tests.cluster_util import Cluster
from tests.conftest import PRIORITIES, Collector, _start_listener, _stop_listener
from tests.conftest import make_conf as _make_conf

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
QUORUM = {"rabbit_quorum_queue": "true"}
# The listener stands for a consumer on another machine, like the nodes of
# tools/rabbit-cluster.sh: it runs at their niceness, so that on this 2-core
# box it does not take the CPU from the service whose calls are timed.
OTHER_MACHINE_NICE = int(os.environ.get("RABBIT_CLUSTER_NICE", "19"))
OTHER_MACHINE_SCHED = os.environ.get("RABBIT_CLUSTER_SCHED", "idle")


def _start_niced_listener(transport: Any, topic: str, collector: Collector) -> Any:
    """``_start_listener`` from a thread at ``OTHER_MACHINE_NICE`` (and, as
    the nodes, under SCHED_IDLE unless ``RABBIT_CLUSTER_SCHED=other``): Linux
    niceness and policy are per thread and inherited, so the listener's poll
    and worker threads run with them too, and this process's other threads
    do not."""
    started: list[Any] = []

    def start() -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), OTHER_MACHINE_NICE)
        if OTHER_MACHINE_SCHED == "idle":
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        started.append(_start_listener(transport, topic, collector))

    thread = threading.Thread(target=start, name="niced-listener-start")
    thread.start()
    thread.join()
    if not started:
        raise AssertionError("the listener did not start (see the thread's error)")
    return started[0]


# oslo's listener drops a message whose _unique_id it has seen (a resend of
# what the broker stored before the confirm was lost) and logs it with a
# traceback: at-least-once delivery at work, counted here instead.
_AMQP_LOG = logging.getLogger("oslo_messaging._drivers.amqpdriver")


class _DroppedDuplicates(logging.Filter):
    """Counts (and keeps out of the output) the duplicates oslo's listener
    drops before they reach the collector."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "ignoring duplicate message %s":
            self.count += 1
            return False
        return True


class _Arrivals(Collector):
    """A collector that also notes when each notification arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[int, float] = {}
        self.emitted: dict[int, float] = {}
        self.copies: collections.Counter[int] = collections.Counter()
        for priority in PRIORITIES:
            setattr(self, priority, self._timed(getattr(self, priority)))

    def _timed(self, record: Any) -> Any:
        def timed(ctxt, publisher_id, event_type, payload, metadata):
            now = time.time()
            seq = payload.get("seq") if isinstance(payload, dict) else None
            if seq is not None:
                with self._cond:
                    self.arrived.setdefault(seq, now)
                    self.emitted.setdefault(seq, payload["emitted"])
                    self.copies[seq] += 1
            record(ctxt, publisher_id, event_type, payload, metadata)

        return timed

    def count(self) -> int:
        with self._cond:
            return len(self.arrived)

    def wait_count(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.arrived) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
        return True


@dataclasses.dataclass
class Outcome:
    """What one run measured."""

    driver: str
    count: int
    lost: int
    duplicates: int  # arrived more than once (oslo's listener drops them)
    max_call_ms: float
    p99_call_ms: float
    calls_over_5ms: int
    calls_over_2ms: int  # the tail's shape: 5 ms ones are too rare to compare
    failover_s: list[float]  # per kill: kill to first arrival emitted after it
    killed: list[int]
    child: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Service:
    """``driver_child.py`` on the cluster, and a listener on chosen nodes."""

    def __init__(
        self,
        cluster: Cluster,
        driver: str,
        count: int,
        rate: float,
        spool: str,
        rabbit: dict[str, str] | None = None,
        payload_bytes: int = 0,
        retry: int | None = None,
    ) -> None:
        self.cluster = cluster
        self.driver = driver
        self.count = count
        self.topic = f"nn-failover-{uuid.uuid4().hex[:10]}"
        self.rabbit = {**QUORUM, **(rabbit or {})}
        env = {**os.environ, "NN_PAYLOAD_BYTES": str(payload_bytes)}
        if retry is not None:
            env["NN_RETRY"] = str(retry)
        self.child = subprocess.Popen(
            [
                sys.executable,
                os.path.join(HERE, "driver_child.py"),
                cluster.url(),
                self.topic,
                driver,
                spool,
                str(count),
                str(rate),
                *(f"{k}={v}" for k, v in self.rabbit.items()),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._stderr: list[str] = []
        self._err_thread = threading.Thread(
            target=lambda: self._stderr.extend(self.child.stderr), daemon=True
        )
        self._err_thread.start()
        self.arrivals = _Arrivals()
        self._dropped = _DroppedDuplicates()
        self._listener: Any = None
        self._listen_transport: Any = None

    def publisher_node(self, timeout: float = 30) -> int:
        """The node the child's sender is connected to (oslo shuffles hosts)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.child.poll() is None, "".join(self._stderr)
            nodes = self.cluster.connected_nodes(self.child.pid)
            if len(nodes) == 1:
                return nodes.pop()
            time.sleep(0.05)  # polling the socket table for the connection
        raise AssertionError(f"the child never connected: {''.join(self._stderr)}")

    def listen(self, nodes: list[int]) -> None:
        """Consume from ``nodes`` only (never from a node about to die)."""
        hosts = ",".join(
            f"guest:guest@127.0.0.1:{self.cluster.ports[n - 1]}" for n in nodes
        )
        rabbit = {
            f"oslo_messaging_rabbit__{k}": _typed(v) for k, v in self.rabbit.items()
        }
        conf = _make_conf(f"rabbit://{hosts}/", self.topic, **rabbit)
        self._listen_transport = oslo_messaging.get_notification_transport(conf)
        _AMQP_LOG.addFilter(self._dropped)
        self._listener = _start_niced_listener(
            self._listen_transport, self.topic, self.arrivals
        )

    def finish(self, timeout: float = 180) -> Outcome:
        """Wait for the child and for every notification; what was measured."""
        out, _ = self.child.communicate(timeout=timeout)
        self._err_thread.join(5)
        assert self.child.returncode == 0, "".join(self._stderr)
        lines = [json.loads(line) for line in out.splitlines()[1:3]]
        calls, flushed = lines[0], lines[1]["flushed"]
        if self._listener is not None:
            self.arrivals.wait_count(self.count, timeout=120)
        with self.arrivals._cond:
            seen = set(self.arrivals.arrived)
            duplicates = sum(n - 1 for n in self.arrivals.copies.values())
        duplicates += self._dropped.count
        return Outcome(
            driver=self.driver,
            count=self.count,
            lost=len(set(range(self.count)) - seen) if self._listener else -1,
            duplicates=duplicates,
            max_call_ms=round(calls["max_ms"], 3),
            p99_call_ms=round(calls["p99_ms"], 3),
            calls_over_5ms=calls["over_5ms"],
            calls_over_2ms=calls["over_2ms"],
            failover_s=[],
            killed=[],
            child={**calls, "flushed": flushed, "delivered_s": lines[1]["delivered_s"]},
        )

    def failover_after(self, killed_at: float) -> float | None:
        """Seconds from ``killed_at`` to the first arrival of a notification
        emitted after it."""
        with self.arrivals._cond:
            later = [
                self.arrivals.arrived[s]
                for s, emitted in self.arrivals.emitted.items()
                if emitted > killed_at
            ]
        return round(min(later) - killed_at, 3) if later else None

    def close(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
            self.child.wait()
        if self._listener is not None:
            _stop_listener(self._listener)
        _AMQP_LOG.removeFilter(self._dropped)
        if self._listen_transport is not None:
            self._listen_transport.cleanup()
        self.cluster.delete_queues(f"{self.topic}.{p}" for p in PRIORITIES)


def _typed(value: str) -> Any:
    return {"true": True, "false": False}.get(value, value)


def kill_publisher_node(
    cluster: Cluster,
    driver: str,
    spool: str,
    count: int = 3000,
    rate: float = 200.0,
    down_for: float = 10.0,
    rabbit: dict[str, str] | None = None,
    retry: int | None = None,
) -> Outcome:
    """Kill -9 the node the service publishes through, 3 s into a steady
    stream, and start it again ``down_for`` seconds later."""
    service = Service(cluster, driver, count, rate, spool, rabbit, retry=retry)
    try:
        node = service.publisher_node()
        service.listen([n for n in range(1, cluster.nodes + 1) if n != node])
        assert service.arrivals.wait_count(int(rate * 2), timeout=60), "no delivery"
        killed_at = time.time()
        cluster.kill(node)
        time.sleep(max(0.0, killed_at + down_for - time.time()))  # the node is down
        cluster.start(node)
        outcome = service.finish()
        failover = service.failover_after(killed_at)
        outcome.failover_s = [] if failover is None else [failover]
        outcome.killed = [node]
        outcome.child["killed_at_s"] = round(killed_at - outcome.child["started_at"], 2)
        return outcome
    finally:
        service.close()


def restart_every_node(
    cluster: Cluster,
    driver: str,
    spool: str,
    count: int = 5000,
    rate: float = 200.0,
    rabbit: dict[str, str] | None = None,
) -> Outcome:
    """Kill -9 and start each node in turn while the service emits; the
    listener follows the cluster through every host."""
    service = Service(cluster, driver, count, rate, spool, rabbit)
    try:
        service.publisher_node()
        service.listen(list(range(1, cluster.nodes + 1)))
        assert service.arrivals.wait_count(int(rate), timeout=60), "no delivery"
        failovers = []
        for node in range(1, cluster.nodes + 1):
            killed_at = time.time()
            cluster.kill(node)
            cluster.start(node)
            failovers.append(service.failover_after(killed_at))
        outcome = service.finish()
        outcome.killed = list(range(1, cluster.nodes + 1))
        outcome.failover_s = [f for f in failovers if f is not None]
        return outcome
    finally:
        service.close()


def throughput(
    cluster: Cluster, driver: str, spool: str, count: int = 2000, size: int = 2048
) -> float:
    """Notifications a second delivered (confirmed by the quorum queue) by a
    service emitting ``count`` of ``size`` bytes as fast as it can."""
    service = Service(cluster, driver, count, 0.0, spool, payload_bytes=size)
    try:
        outcome = service.finish()
        assert outcome.child["flushed"]["dropped"] == 0
        return round(count / outcome.child["delivered_s"], 1)
    finally:
        service.close()
