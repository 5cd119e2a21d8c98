"""nova-notifier listen: a real listener process on the broker, and its filters."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid

import pytest
from oslo_context import context as oslo_context

import nova_notifier
from nova_notifier.amqp_queues import delete_queues
from nova_notifier.listen import Tail
from tests.conftest import RABBIT_URL

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INSTANCE = {"uuid": "9a1b2c3d-0000-4d2b-9c3e-5f6a7b8c9d0e", "vm_state": "active"}


def _listen(transport_url: str, *extra: str) -> subprocess.Popen:
    """``nova-notifier listen`` in its own process."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nova_notifier.cli",
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


def _wait_until_listening(proc: subprocess.Popen) -> None:
    """Read its standard error until it says its queue exists."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("listening on"):
            return


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
