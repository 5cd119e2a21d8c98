"""nova-notifier listen: a real listener process on the broker, and its filters."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from typing import Any

import pytest
from oslo_context import context as oslo_context

import nova_notifier
from nova_notifier.tools.amqp_queues import delete_queues, one_off_pool
from nova_notifier.tools.listen import Tail
from tests.conftest import RABBIT_URL, queue_state, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INSTANCE = {"uuid": "9a1b2c3d-0000-4d2b-9c3e-5f6a7b8c9d0e", "vm_state": "active"}


def _listen(transport_url: str, *extra: str) -> subprocess.Popen:
    """``nova-notifier listen`` in its own process."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nova_notifier.tools.cli",
            "listen",
            "--transport-url",
            transport_url,
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_until_listening(proc: subprocess.Popen) -> str:
    """Read its standard error until it says its queue exists; that line."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("listening on"):
            return line
    raise AssertionError(f"listener exited: {proc.wait()}")


def _one_off_queue(line: str) -> str:
    """The queue name in ``listening on T (one-off queue NAME, ...)``."""
    match = re.search(r"\(one-off queue (\S+), deleted when this exits\)", line)
    assert match, line
    return match.group(1)


def test_filters_and_json_envelope_without_secrets():
    out = io.StringIO()
    tail = Tail(out, True, ["compute.instance.*"], "compute.*", count=2)
    meta = {"message_id": "m-1", "timestamp": "2026-11-22 01:02:03.456789"}
    ctxt = {"request_id": "req-1", "auth_token": "tok-secret"}
    tail.info(ctxt, "compute.h1", "compute.instance.create.end", {"x": 1}, meta)
    tail.info(ctxt, "compute.h1", "image.upload", {"x": 2}, meta)  # wrong type
    tail.error(ctxt, "api.h1", "compute.instance.update", {"x": 3}, meta)  # publisher
    tail.error(ctxt, "compute.h2", "compute.instance.create.error", {"x": 4}, meta)
    tail.info(ctxt, "compute.h2", "compute.instance.delete.end", {"x": 5}, meta)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["priority"], r["event_type"], r["payload"]) for r in records] == [
        ("INFO", "compute.instance.create.end", {"x": 1}),
        ("ERROR", "compute.instance.create.error", {"x": 4}),
    ]
    assert records[0]["message_id"] == "m-1"
    assert records[0]["context"] == {"request_id": "req-1"}
    assert tail.done.is_set()


@pytest.mark.broker
def test_listen_process_prints_what_the_library_sent(broker_env):
    pool = f"nn-listen-{uuid.uuid4().hex[:10]}"
    proc = _listen(
        RABBIT_URL,
        "--topic",
        broker_env.topic,
        "--pool",
        pool,
        "--json",
        "--count",
        "2",
        "--event-type",
        "compute.instance.*",
        "--timeout",
        "60",
    )
    try:
        assert proc.stderr is not None
        _wait_until_listening(proc)
        ctxt = oslo_context.RequestContext(
            request_id="req-listen", auth_token="tok-secret", overwrite=False
        )
        broker_env.override("notify_on_state_change", "vm_state", group="notifications")
        compute = nova_notifier.get_notifier("compute", "c9")
        compute.info(ctxt, "image.upload", {"filtered": True})
        nova_notifier.send_update_with_states(ctxt, INSTANCE, None, None, None, None)
        nova_notifier.notify_about_instance_usage(
            compute, ctxt, INSTANCE, "create.error", fault=ValueError("x")
        )
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
        delete_queues(RABBIT_URL, [pool])
    assert proc.returncode == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert sorted(
        (r["event_type"], r["priority"], r["publisher_id"]) for r in records
    ) == [
        ("compute.instance.create.error", "ERROR", "compute.c9"),
        ("compute.instance.update", "INFO", "compute.testhost"),
    ]
    for record in records:
        assert record["payload"]["instance_id"] == INSTANCE["uuid"]
        assert record["context"]["request_id"] == "req-listen"
        assert record["message_id"] and record["timestamp"]
    assert "tok-secret" not in out


def _listen_fake(*extra: str) -> subprocess.Popen:
    return _listen("fake://", *extra)


def test_timeout_ends_a_quiet_listener_cleanly():
    proc = _listen_fake("--timeout", "1")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert err.strip().endswith("0 notifications")


def test_sigterm_ends_the_listener_cleanly():
    proc = _listen_fake()
    _wait_until_listening(proc)
    proc.terminate()
    proc.wait(timeout=30)
    assert proc.returncode == 0


def _send_updates(count: int) -> None:
    ctxt = oslo_context.RequestContext(request_id="req-one-off", overwrite=False)
    for n in range(count):
        nova_notifier.send_update_with_states(
            ctxt, {**INSTANCE, "display_name": f"vm-{n}"}, None, None, None, None
        )


@pytest.mark.broker
def test_listen_without_a_pool_takes_nothing_from_the_shared_queue(broker_env):
    """broker_env's listener reads ``<topic>.info`` as Ceilometer reads
    ``notifications.info``: with listen running beside it without --pool,
    both get every message, and listen's own queue goes when it exits."""
    broker_env.override("notify_on_state_change", "vm_state", group="notifications")
    sent = 20
    proc = _listen(
        RABBIT_URL,
        "--topic",
        broker_env.topic,
        "--json",
        "--count",
        str(sent),
        "--timeout",
        "60",
    )
    try:
        queue = _one_off_queue(_wait_until_listening(proc))
        assert queue.startswith("nova-notifier-listen-")
        assert f"-{proc.pid}-" in queue
        wait_until(lambda: queue_state(queue) == (0, 1), "its queue had a consumer")
        _send_updates(sent)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    names = [json.loads(line)["payload"]["display_name"] for line in out.splitlines()]
    assert names == [f"vm-{n}" for n in range(sent)]
    shared = broker_env.collector.wait_for(sent, event_type="compute.instance.update")
    assert sorted(r.payload["display_name"] for r in shared) == sorted(names)
    wait_until(lambda: queue_state(queue) is None, "its queue was deleted")
    assert queue_state(f"{broker_env.topic}.info") is not None  # the shared one stays


@pytest.mark.broker
def test_a_listener_killed_with_sigkill_leaves_no_queue(broker_env):
    proc = _listen(RABBIT_URL, "--topic", broker_env.topic, "--timeout", "60")
    try:
        queue = _one_off_queue(_wait_until_listening(proc))
        wait_until(lambda: queue_state(queue) == (0, 1), "its queue had a consumer")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    wait_until(lambda: queue_state(queue) is None, "the broker deleted its queue")


@pytest.mark.broker
def test_a_named_pool_outlives_the_listener_and_keeps_what_comes_after(broker_env):
    broker_env.override("notify_on_state_change", "vm_state", group="notifications")
    pool = f"nn-listen-{uuid.uuid4().hex[:10]}"
    args = ("--topic", broker_env.topic, "--pool", pool, "--timeout", "60")
    proc = _listen(RABBIT_URL, *args, "--count", "1")
    try:
        line = _wait_until_listening(proc)
        assert f"(pool {pool})" in line
        _send_updates(1)
        proc.communicate(timeout=60)
        assert proc.returncode == 0
        # gone is the listener, not its queue: what is sent now waits in it
        _send_updates(2)
        wait_until(lambda: queue_state(pool) == (2, 0), "2 messages waited")
    finally:
        if proc.poll() is None:
            proc.kill()
        delete_queues(RABBIT_URL, [pool])


@pytest.mark.parametrize("tool", ["listen", "latency"])
def test_a_pool_named_like_the_shared_queue_is_refused(tool):
    proc = subprocess.run(
        [sys.executable, "-m", "nova_notifier.tools.cli", tool]
        + ["--transport-url", "fake://", "--topic", "nn-shared"]
        + ["--pool", "nn-shared.info", "--timeout", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--pool nn-shared.info is the queue every pool-less consumer" in (
        proc.stderr
    )
    assert not any(line.startswith("listening on") for line in proc.stderr.splitlines())
    assert "Traceback" not in proc.stderr


def test_a_pool_of_its_own_name_is_taken():
    proc = _listen_fake("--topic", "nn-shared", "--pool", "nn-shared-info")
    line = _wait_until_listening(proc)
    proc.terminate()
    proc.wait(timeout=30)
    assert line.strip() == "listening on nn-shared (pool nn-shared-info)"
    assert proc.returncode == 0


def _consumer(queue_name: str) -> Any:
    """The rabbit driver's consumer for a pool queue, quorum queues configured."""
    from oslo_messaging._drivers import impl_rabbit

    return impl_rabbit.Consumer(
        exchange_name="openstack",
        queue_name=queue_name,
        routing_key="notifications.info",
        type="topic",
        durable=True,
        exchange_auto_delete=False,
        queue_auto_delete=False,
        callback=None,
        rabbit_quorum_queue=True,
        rabbit_quorum_queue_config=impl_rabbit.QuorumMemConfig(3, 0, 0),
    )


def test_only_a_one_off_pool_queue_is_made_auto_delete():
    one_off = one_off_pool("test")
    assert one_off.startswith("nova-notifier-test-") and f"-{os.getpid()}-" in one_off
    assert one_off_pool("test") != one_off  # a fresh name each time
    mine = _consumer(one_off)
    assert (mine.queue_auto_delete, mine.durable) == (True, False)
    # a transient classic queue: quorum queues cannot be auto-delete
    assert mine.queue_arguments == {"x-expires": 60_000}
    assert mine.exchange.auto_delete is False  # the exchange is left as it was
    named = _consumer("my-pool")  # a named pool, or any other queue: untouched
    assert (named.queue_auto_delete, named.durable) == (False, True)
    assert named.queue_arguments == {"x-queue-type": "quorum", "x-delivery-limit": 3}
