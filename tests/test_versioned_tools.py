"""The tools read Nova's versioned notifications: listen prints them,
latency counts a boot sent in both formats once, the demo takes --format."""

from __future__ import annotations

import json

import pytest

import nova_notifier
from nova_notifier.tools import cli
from nova_notifier.tools.display import summary
from nova_notifier.tools.latency.events import Tracker
from nova_notifier.tools.latency.report import build
from tests.test_versioned import CONTEXT, Both, NovaStyleError, instance


@pytest.fixture
def both():
    env = Both("fake://")
    yield env
    env.close()


def _boot(fail: bool = False) -> None:
    """What Nova sends for one boot: the API's update, then the compute's."""
    vm = instance(vm_state="building", task_state="scheduling", launched_at=None)
    nova_notifier.send_update_with_states(
        CONTEXT, vm, None, "building", None, "scheduling", service="api", host="api1"
    )
    compute = nova_notifier.get_notifier("compute", "compute1")
    nova_notifier.notify_about_instance_usage(compute, CONTEXT, vm, "create.start")
    nova_notifier.send_update_with_states(
        CONTEXT, vm, "building", "building", "scheduling", "spawning", host="compute1"
    )
    if fail:
        try:
            raise NovaStyleError("no space left")
        except NovaStyleError as exc:
            nova_notifier.notify_about_instance_usage(
                compute, CONTEXT, vm, "create.error", fault=exc
            )
        return
    nova_notifier.notify_about_instance_usage(
        compute, CONTEXT, instance(), "create.end"
    )


def _tracker(items) -> Tracker:
    tracker = Tracker()
    for item in items:
        tracker.add(
            item.event_type,
            item.publisher_id,
            json.loads(json.dumps(item.payload)),  # as a bus reader gets it
            item.metadata["message_id"],
            str(item.metadata["timestamp"]),
        )
    return tracker


def test_listen_shows_a_versioned_payloads_instance_and_state(both):
    _boot(fail=True)
    _, versioned = both.settle()
    lines = {i.event_type: summary(i.payload) for i in versioned}
    assert lines["instance.update"].startswith("id=178b0921 name=web-1 old=")
    assert "[InstanceUpdatePayload 2.1]" in lines["instance.update"]
    assert "state=building" in lines["instance.create.start"]
    assert "flavor=m1.tiny" in lines["instance.create.start"]
    assert "exception=NovaStyleError" in lines["instance.create.error"]
    assert "message=no space left" in lines["instance.create.error"]
    # a legacy payload is shown as before
    assert summary({"instance_id": "abc", "state": "active"}) == "id=abc state=active"


@pytest.mark.parametrize("fail", [False, True])
def test_latency_reads_each_format_and_counts_a_boot_sent_in_both_once(both, fail):
    _boot(fail)
    legacy, versioned = both.settle()
    reports = {
        "legacy": build(_tracker(legacy)),
        "versioned": build(_tracker(versioned)),
        "both": build(_tracker(sorted(legacy + versioned, key=_stamp))),
    }
    outcome = "failed" if fail else "succeeded"
    for name, report in reports.items():
        boots = report["boots"]
        assert (boots["count"], boots[outcome]) == (1, 1), name
        assert boots["without_api_acceptance"] == 0, name
    assert reports["both"]["input"]["other_format"] == len(legacy)
    assert reports["legacy"]["input"]["other_format"] == 0
    assert reports["versioned"]["input"]["other_format"] == 0
    assert reports["both"]["boots"]["phases"] == reports["legacy"]["boots"]["phases"]


def _stamp(item):
    return str(item.metadata["timestamp"])


def test_the_same_kind_far_apart_in_time_is_not_taken_for_a_copy():
    tracker = Tracker()
    payload = {
        "nova_object.name": "InstanceCreatePayload",
        "nova_object.data": {"uuid": "u-1", "state": "building"},
    }
    tracker.add(
        "instance.create.start", "nova-compute:c1", payload, "m1", "2026-01-01 00:00:00"
    )
    tracker.add(
        "compute.instance.create.start",
        "compute.c1",
        {"instance_id": "u-1", "state": "building"},
        "m2",
        "2026-01-01 00:10:00",
    )
    assert tracker.other_format == 0
    assert len(tracker.timelines["u-1"]) == 2


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("unversioned", "compute.instance.create.end"),
        ("versioned", "instance.create.end"),
    ],
)
def test_the_demo_takes_format(capsys, fmt, expected):
    assert cli.main(["demo", "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert expected in out
    other = (
        "instance.create.end" if fmt == "unversioned" else "compute.instance.create.end"
    )
    assert f" {other} " not in out
    assert "dropped 0" in out
