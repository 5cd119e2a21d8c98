"""The library from worker threads and under eventlet, in fresh processes.

oslo.messaging imports eventlet, and a thread that first imports eventlet can
never be joined (eventlet issue #230). Each test starts a new interpreter in
which only a non-daemon worker thread touches the library; the process must
deliver through the real broker and exit by itself within 5 s of its work.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid

import oslo_messaging
import pytest
from conftest import (
    PRIORITIES,
    RABBIT_URL,
    Collector,
    _start_listener,
    _stop_listener,
    broker_available,
    make_conf,
)

from nova_notifier.tools.amqp_queues import delete_queues

CHILD = os.path.join(os.path.dirname(__file__), "thread_child.py")

pytestmark = pytest.mark.broker


@pytest.fixture
def bus():
    if not broker_available():
        pytest.fail("RabbitMQ is not answering on 127.0.0.1:5672 (run .ci/run)")
    topic = f"nn-thread-{uuid.uuid4().hex[:12]}"
    transport = oslo_messaging.get_notification_transport(make_conf(RABBIT_URL, topic))
    collector = Collector()
    listener = _start_listener(transport, topic, collector)
    try:
        yield topic, collector
    finally:
        _stop_listener(listener)
        transport.cleanup()
        delete_queues(RABBIT_URL, [f"{topic}.{p}" for p in PRIORITIES])


def run_child(topic, mode, tmp_path, use_eventlet=False, cleanup=True):
    spool = str(tmp_path / "spool.db") if mode == "spool" else "-"
    args = [RABBIT_URL, topic, mode, spool, "1" if use_eventlet else "0"]
    args.append("1" if cleanup else "0")
    proc = subprocess.run(
        [sys.executable, CHILD, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    ended = time.time()
    done = re.search(r"worker done at ([0-9.]+)", proc.stdout)
    # How long the process lived on after the worker's last call returned.
    return proc, (ended - float(done.group(1))) if done else float("inf")


def policies(proc):
    """The child's pid, and its OS threads' scheduling policies (by thread
    id) while its sender ran."""
    found = re.search(r"^policies ([0-9]+) (.*)$", proc.stdout, re.MULTILINE)
    assert found, proc.stdout
    seen = {int(tid): policy for tid, policy in json.loads(found.group(2)).items()}
    return int(found.group(1)), seen


def check_delivered(collector, mode):
    (item,) = collector.wait_for(1, "compute.instance.create.end", timeout=20)
    assert (item.priority, item.publisher_id) == ("INFO", "compute.worker-host")
    assert item.payload["instance_id"] == "0c0ffee0-0000-4000-8000-00000000beef"
    assert item.payload["mode"] == mode


@pytest.mark.parametrize("mode", ["direct", "background", "spool"])
def test_a_worker_thread_can_init_emit_and_the_process_exits(bus, tmp_path, mode):
    topic, collector = bus
    proc, took = run_child(topic, mode, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "worker done" in proc.stdout, proc.stderr[-3000:]
    check_delivered(collector, mode)
    assert took < 5, f"the process exited {took:.1f}s after the worker's work"
    if hasattr(os, "SCHED_BATCH"):
        # the sender, a thread of its own, under SCHED_BATCH; the rest not
        pid, seen = policies(proc)
        assert seen[pid] == os.SCHED_OTHER
        batch = [tid for tid, policy in seen.items() if policy == os.SCHED_BATCH]
        assert len(batch) == (0 if mode == "direct" else 1), seen


def test_a_worker_that_never_calls_cleanup_still_lets_the_process_exit(bus, tmp_path):
    topic, collector = bus
    proc, took = run_child(topic, "direct", tmp_path, cleanup=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_delivered(collector, "direct")
    assert took < 5, f"the process exited {took:.1f}s after the worker's work"


@pytest.mark.parametrize("mode", ["direct", "background", "spool"])
def test_under_eventlet_monkey_patch_delivery_and_cleanup_work(bus, tmp_path, mode):
    topic, collector = bus
    proc, took = run_child(topic, mode, tmp_path, use_eventlet=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "worker done" in proc.stdout, proc.stderr[-3000:]
    assert "'dropped': 0" in proc.stdout, proc.stdout
    check_delivered(collector, mode)
    assert took < 5, f"the process exited {took:.1f}s after the worker's work"
    if hasattr(os, "SCHED_BATCH"):
        # a green sender shares the OS thread of every green thread: it
        # must not change that thread's policy
        assert os.SCHED_BATCH not in policies(proc)[1].values(), proc.stdout
