"""etc/api-paste.ini loaded with paste.deploy, requests sent through it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import webob
from paste.deploy import loadapp

import nova_notifier
from nova_notifier.tools import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASTE_INI = os.path.join(ROOT, "etc", "api-paste.ini")


def _app():
    return loadapp(f"config:{PASTE_INI}")


def _call(app, method, path, body=None):
    req = webob.Request.blank(path, method=method)
    if body is not None:
        req.json_body = body
    return req.get_response(app)


def _boot(app, name, fail=False, flavor="m1.small"):
    resp = _call(
        app,
        "POST",
        "/servers",
        {"server": {"name": name, "flavorRef": flavor, "fail": fail}},
    )
    assert resp.status_int == 202
    return resp.json_body["server"]["id"]


@pytest.fixture
def api(fake_env):
    fake_env.override(
        "notify_on_state_change", "vm_and_task_state", group="notifications"
    )
    fake_env.override("notify_on_api_faults", True, group="notifications")
    return _app(), fake_env


def test_boot_sends_the_nova_sequence(api):
    app, env = api
    server_id = _boot(app, "web-1")
    got = [(g.priority, g.publisher_id, g.event_type) for g in env.settle()]
    assert got == [
        ("INFO", "api.testhost", "compute.instance.update"),
        ("INFO", "compute.demo-compute-1", "compute.instance.create.start"),
        ("INFO", "compute.demo-compute-1", "compute.instance.update"),
        ("INFO", "compute.demo-compute-1", "compute.instance.update"),
        ("INFO", "compute.demo-compute-1", "compute.instance.update"),
        ("INFO", "compute.demo-compute-1", "compute.instance.create.end"),
    ]
    first, *_, end = env.collector.events()
    assert (first.payload["old_state"], first.payload["state"]) == (
        "building",
        "building",
    )
    assert first.payload["new_task_state"] == "scheduling"
    assert end.payload["instance_id"] == server_id
    assert end.payload["state"] == "active"
    assert end.payload["instance_type"] == "m1.small"
    assert end.payload["memory_mb"] == 2048
    assert end.payload["fixed_ips"][0]["label"] == "private"
    assert end.payload["launched_at"]


def test_failed_boot_sends_create_error_with_fault(api):
    app, env = api
    server_id = _boot(app, "db-1", fail=True)
    events = env.settle()
    errors = [g for g in events if g.event_type == "compute.instance.create.error"]
    assert len(errors) == 1
    assert errors[0].priority == "ERROR"
    assert errors[0].payload["instance_id"] == server_id
    assert errors[0].payload["code"] == 500
    assert "no valid host" in errors[0].payload["message"]
    assert not [g for g in events if g.event_type == "compute.instance.create.end"]


def test_delete_sends_delete_and_shutdown_events(api):
    app, env = api
    server_id = _boot(app, "web-2")
    before = len(env.settle())
    resp = _call(app, "DELETE", f"/servers/{server_id}")
    assert resp.status_int == 204
    events = [g.event_type for g in env.settle()[before:]]
    assert [e for e in events if e != "compute.instance.update"] == [
        "compute.instance.delete.start",
        "compute.instance.shutdown.start",
        "compute.instance.shutdown.end",
        "compute.instance.delete.end",
    ]


def test_faults_through_the_pipeline(api):
    app, env = api
    missing = _call(app, "GET", "/servers/nope")
    assert missing.status_int == 404
    assert missing.json_body == {
        "itemNotFound": {
            "code": 404,
            "message": "ServerNotFound: Server nope could not be found.",
        }
    }
    assert missing.headers["x-openstack-request-id"].startswith("req-")
    crash = _call(app, "GET", "/crash")
    assert crash.status_int == 500
    assert list(crash.json_body) == ["computeFault"]
    assert "s3cr3t" not in crash.text
    faults = [g for g in env.settle() if g.event_type == "api.fault"]
    assert [(f.priority, f.publisher_id, f.payload["status"]) for f in faults] == [
        ("ERROR", "api.testhost", 404),
        ("ERROR", "api.testhost", 500),
    ]
    assert faults[0].payload["url"] == "http://localhost/servers/nope"
    assert faults[1].payload["exception"] == "RuntimeError"
    assert "s3cr3t" not in str(faults[1].payload)
    # the request context of the failing request travels with the fault
    assert faults[0].ctxt["request_id"] == missing.headers["x-openstack-request-id"]


@pytest.mark.broker
def test_pipeline_through_rabbitmq(broker_env):
    broker_env.override("notify_on_state_change", "vm_state", group="notifications")
    broker_env.override("notify_on_api_faults", True, group="notifications")
    app = _app()
    server_id = _boot(app, "web-3")
    _call(app, "GET", "/crash")
    events = broker_env.settle()
    summary = [(g.priority, g.publisher_id, g.event_type) for g in events]
    assert ("INFO", "api.testhost", "compute.instance.update") == summary[0]
    assert ("INFO", "compute.demo-compute-1", "compute.instance.create.end") in summary
    assert ("ERROR", "api.testhost", "api.fault") in summary
    end = next(g for g in events if g.event_type == "compute.instance.create.end")
    assert end.payload["instance_id"] == server_id
    assert end.metadata["message_id"] and end.metadata["timestamp"]


def test_demo_command_on_the_embedded_transport(capsys):
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    for expected in (
        "compute.instance.create.end",
        "compute.instance.create.error",
        "compute.instance.delete.end",
        "api.fault",
        "nova_notifier.tools.demo.hypervisor.FakeDriver.spawn",
    ):
        assert expected in out
    assert "s3cr3t" not in out and "demo-admin-pw" not in out
    assert not nova_notifier.is_initialized()
    last = out.strip().splitlines()[-1]
    sent, received = (int(p.split()[-1]) for p in last.split(",")[:2])
    assert sent == received > 20


@pytest.mark.broker
def test_demo_command_through_rabbitmq(broker_env):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nova_notifier.tools.cli",
            "demo",
            "--transport-url",
            "rabbit://guest:guest@127.0.0.1:5672/",
            "--topic",
            broker_env.topic,
            "--timeout",
            "20",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "compute.instance.create.end" in proc.stdout
    # the test's own listener on the same topic saw the demo's notifications too
    seen = broker_env.collector.wait_for(1, event_type="compute.instance.create.end")
    assert seen[0].publisher_id == "compute.demo-compute-1"


def test_demo_json_output_is_json_lines_only(capsys):
    assert cli.main(["demo", "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) > 20
    assert {"message_id", "timestamp", "priority", "publisher_id", "event_type"} <= set(
        records[0]
    )
    assert "compute.instance.create.end" in {r["event_type"] for r in records}


IMAGE = "0f3b5a8e-6c1d-4e2f-9a7b-1c2d3e4f5a6b"
GLANCE = "http://glance.example:9292"


@pytest.mark.parametrize(
    "flavor_ref",
    [
        "1",
        1,
        "m1.tiny",
        "http://nova.example:8774/v2.1/flavors/1",
        "http://nova.example:8774/v2.1/6f70656e/flavors/1",
        "http://nova.example:8774/v2.1/flavors/m1.tiny?x=y",
    ],
)
@pytest.mark.parametrize(
    "image_ref", [IMAGE, f"http://glance.example:9292/v2/images/{IMAGE}"]
)
def test_a_boot_body_as_a_nova_client_sends_it(api, flavor_ref, image_ref):
    app, env = api
    env.override("image_endpoint", GLANCE, group="notifications")
    body = {"server": {"name": "web-7", "flavorRef": flavor_ref, "imageRef": image_ref}}
    resp = _call(app, "POST", "/servers", body)
    assert resp.status_int == 202, resp.text
    assert resp.json_body["server"]["flavor"] == "m1.tiny"
    [end] = [g for g in env.settle() if g.event_type == "compute.instance.create.end"]
    assert end.payload["instance_type"] == "m1.tiny"
    assert end.payload["instance_flavor_id"] == "1"
    assert end.payload["memory_mb"] == 512
    assert end.payload["image_ref_url"] == f"{GLANCE}/images/{IMAGE}"
    assert end.payload["display_name"] == "web-7"


@pytest.mark.parametrize(
    "flavor_ref, shown",
    [
        ("99", "99"),
        ("m1.huge", "m1.huge"),
        (
            "http://nova.example:8774/v2.1/flavors/99",
            "http://nova.example:8774/v2.1/flavors/99",
        ),
        ("", ""),
        ("http://nova.example/flavors/1/", "http://nova.example/flavors/1/"),
        ("http://[::1/flavors/1", "http://[::1/flavors/1"),
        (None, "None"),
        ({"id": "1"}, "{'id': '1'}"),
        (True, "True"),
    ],
)
def test_an_unknown_flavor_is_a_400_fault_and_nothing_boots(api, flavor_ref, shown):
    app, env = api
    body = {"server": {"name": "web-8", "flavorRef": flavor_ref, "imageRef": IMAGE}}
    resp = _call(app, "POST", "/servers", body)
    assert resp.status_int == 400
    assert resp.json_body == {
        "badRequest": {
            "code": 400,
            "message": f"FlavorNotFound: Flavor {shown} could not be found.",
        }
    }
    sent = env.settle()
    assert [(g.event_type, g.payload["status"]) for g in sent] == [("api.fault", 400)]


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"{not json", "Malformed request body"),
        (b"\xff\xfe", "Malformed request body"),
        (b"[]", "Malformed request body: no 'server' object"),
        (b"[" * 100_000 + b"]" * 100_000, "Malformed request body"),
        (b'{"server": "web"}', "Malformed request body: no 'server' object"),
        (
            b'{"server": {"flavorRef": "1", "imageRef": ""}}',
            "Invalid imageRef provided.",
        ),
        (
            b'{"server": {"flavorRef": "1", "imageRef": "http://g/images/"}}',
            "Invalid imageRef provided.",
        ),
    ],
)
def test_a_malformed_boot_body_is_a_400_fault(api, raw, message):
    app, env = api
    req = webob.Request.blank("/servers", method="POST", body=raw)
    req.content_type = "application/json"
    resp = req.get_response(app)
    assert resp.status_int == 400
    assert resp.json_body == {
        "badRequest": {"code": 400, "message": f"BadRequest: {message}"}
    }
    assert [g.event_type for g in env.settle()] == ["api.fault"]
