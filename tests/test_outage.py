"""Broker outages through a fault-injection proxy: nothing lost, nothing blocked.

The library talks to RabbitMQ through ``FaultProxy``; the test's listener
connects to the broker directly, so it keeps consuming while the library's
path is cut, refused or black-holed. The shared broker is never stopped.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
import uuid

import oslo_messaging
import pytest
import webob
from paste.deploy import loadapp

import nova_notifier
from nova_notifier.testing.tcpproxy import FaultProxy
from nova_notifier.tools.amqp_queues import delete_queues
from tests.conftest import (
    PRIORITIES,
    RABBIT_URL,
    Collector,
    _start_listener,
    _stop_listener,
    make_conf,
)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

pytestmark = pytest.mark.broker


class Outage:
    """The library behind a proxy, a listener straight on the broker."""

    def __init__(self, tmp_path) -> None:
        self.topic = f"nn-outage-{uuid.uuid4().hex[:12]}"
        self.proxy = FaultProxy()
        self.collector = Collector()
        self.tmp_path = tmp_path
        listen_conf = make_conf(RABBIT_URL, self.topic)
        self.listen_transport = oslo_messaging.get_notification_transport(listen_conf)
        self.listener = _start_listener(
            self.listen_transport, self.topic, self.collector
        )

    def init(self, mode: str, **overrides) -> None:
        conf = make_conf(
            self.proxy.url(),
            self.topic,
            notifications__delivery_mode=mode,
            notification_delivery__retry_backoff_max=0.5,
            notification_delivery__queue_size=50000,
            **overrides,
        )
        if mode == "spool":
            conf.set_override(
                "spool_path",
                str(self.tmp_path / "spool.db"),
                group="notification_delivery",
            )
        # A black-holed connection times out after this many seconds.
        conf.set_override(
            "heartbeat_timeout_threshold", 4, group="oslo_messaging_rabbit"
        )
        conf.set_override("send_timeout", 4, group="notification_delivery")
        nova_notifier.init(conf)

    def seqs(self) -> collections.Counter:
        return collections.Counter(
            i.payload["seq"] for i in self.collector.items if "seq" in i.payload
        )

    def wait_all(self, expected: set[int], timeout: float = 120) -> collections.Counter:
        """Wait until every expected seq arrived; return how often each did."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.seqs()
            missing = expected - set(seen)
            if not missing:
                return seen
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(missing)} of {len(expected)} never arrived, e.g. "
                    f"{sorted(missing)[:10]}; stats {nova_notifier.stats()}"
                )
            with self.collector._cond:  # woken by each arrival
                self.collector._cond.wait(0.5)

    def close(self) -> None:
        nova_notifier.cleanup()
        self.proxy.close()
        _stop_listener(self.listener)
        self.listen_transport.cleanup()
        delete_queues(RABBIT_URL, [f"{self.topic}.{p}" for p in PRIORITIES])


def _emit(first: int, last: int) -> None:
    notifier = nova_notifier.get_notifier("compute", "outage")
    for seq in range(first, last):
        notifier.info({}, "test.outage", {"seq": seq})


@pytest.mark.parametrize("mode", ["background", "spool"])
def test_ten_thousand_across_a_ten_second_cut_lose_nothing(outage, mode):
    outage.init(mode)
    _emit(0, 5000)
    outage.proxy.cut()
    cut_at = time.monotonic()
    _emit(5000, 10000)
    time.sleep(max(0.0, 10 - (time.monotonic() - cut_at)))  # the outage itself
    stalled = nova_notifier.stats()
    outage.proxy.restore()
    seen = outage.wait_all(set(range(10000)))
    stats = nova_notifier.stats()
    duplicates = sum(n - 1 for n in seen.values())
    print(f"{mode}: 0 lost, {duplicates} duplicates, stats {stats}")
    assert stalled["backlog"] > 0 and stalled["retried"] > 0
    assert stats["dropped"] == 0
    assert stats["dead_lettered"] == 0  # an outage is never a poison message
    assert stats["queued"] == 10000
    # duplicates carry the same message_id, so a consumer can drop them
    ids = collections.Counter(i.metadata["message_id"] for i in outage.collector.items)
    assert len(ids) == 10000


def test_killed_process_loses_nothing_it_accepted(outage, tmp_path):
    spool = str(tmp_path / "spool.db")
    outage.proxy.cut()  # nothing can leave: everything accepted is on disk
    child = subprocess.Popen(
        [
            sys.executable,
            os.path.join(HERE, "outage_child.py"),
            outage.proxy.url(),
            outage.topic,
            spool,
            "100000",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    accepted = -1
    assert child.stdout is not None
    for line in child.stdout:
        accepted = int(line.split()[1])
        if accepted >= 3000:
            break
    child.kill()  # SIGKILL: no cleanup, no flush
    child.wait(timeout=30)
    assert accepted >= 3000
    outage.proxy.restore()
    replay = subprocess.run(
        [
            sys.executable,
            os.path.join(HERE, "outage_child.py"),
            outage.proxy.url(),
            outage.topic,
            spool,
            "0",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=180,
    )
    assert replay.returncode == 0, replay.stderr
    seen = outage.wait_all(set(range(accepted + 1)))
    print(
        f"killed after {accepted + 1} accepted; {replay.stdout.strip()}; "
        f"{sum(n - 1 for n in seen.values())} duplicates"
    )


def test_requests_keep_answering_while_the_broker_is_cut(outage):
    outage.init(
        "background",
        notifications__notify_on_state_change="vm_and_task_state",
        notifications__notify_on_api_faults=True,
    )
    app = loadapp(f"config:{os.path.join(ROOT, 'etc', 'api-paste.ini')}")
    outage.proxy.cut()
    statuses: list[int] = []

    def serve() -> None:
        for i in range(20):
            req = webob.Request.blank("/servers", method="POST")
            req.json_body = {"server": {"name": f"vm-{i}", "flavorRef": "m1.tiny"}}
            statuses.append(req.get_response(app).status_int)
        statuses.append(webob.Request.blank("/crash").get_response(app).status_int)

    worker = threading.Thread(target=serve)
    worker.start()
    worker.join(timeout=10)  # blocking on the broker would take minutes
    assert not worker.is_alive(), "requests blocked on the broker outage"
    assert statuses == [202] * 20 + [500]
    queued = nova_notifier.stats()["queued"]
    outage.proxy.restore()
    outage.collector.wait_for(queued, timeout=60)
    faults = [i for i in outage.collector.items if i.event_type == "api.fault"]
    assert [f.payload["status"] for f in faults] == [500]


def test_black_holed_broker_never_blocks_the_caller(outage):
    outage.init("background")
    _emit(0, 10)
    outage.collector.wait_for(10, timeout=30)  # the connection is up
    outage.proxy.blackhole()
    started = time.monotonic()
    _emit(10, 1010)
    emit_time = time.monotonic() - started
    assert emit_time < 2, f"1000 emit calls took {emit_time:.1f}s"
    deadline = time.monotonic() + 60
    while nova_notifier.stats()["retried"] == 0:
        assert time.monotonic() < deadline, "the sender never timed out"
        with outage.collector._cond:
            outage.collector._cond.wait(0.5)
    outage.proxy.restore()
    outage.wait_all(set(range(1010)))
    assert nova_notifier.stats()["dropped"] == 0
    assert nova_notifier.stats()["dead_lettered"] == 0


@pytest.mark.parametrize("mode", ["background", "spool"])
def test_a_cut_on_the_oslo_path_is_retried_never_set_aside(outage, mode):
    """sender_batch_size = 1 sends through oslo.messaging's transport: a cut
    connection must come back (oslo's pool would keep the dead one) and
    nothing may be taken for a poison message."""
    outage.init(mode, notification_delivery__sender_batch_size=1)
    _emit(0, 200)
    outage.wait_all(set(range(200)), timeout=60)
    outage.proxy.cut()
    _emit(200, 400)
    deadline = time.monotonic() + 30
    while nova_notifier.stats()["retried"] < 3:
        assert time.monotonic() < deadline, "the sender never saw the cut"
        with outage.collector._cond:
            outage.collector._cond.wait(0.2)
    outage.proxy.restore()
    outage.wait_all(set(range(400)), timeout=90)
    stats = nova_notifier.stats()
    assert stats["dead_lettered"] == 0 and stats["dropped"] == 0
