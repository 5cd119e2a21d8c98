"""compute.instance.update: the notify_on_state_change table, the two senders,
publisher ids; asserted on what the listener receives."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import pytest
from oslo_utils import timeutils

import nova_notifier
from nova_notifier import send_update, send_update_with_states, task_states, vm_states

UUID = "0b5d3c4e-8f1a-4d2b-9c3e-5f6a7b8c9d0e"
NOW = datetime.datetime(2012, 3, 5, 8, 12, 23, 456789)
UPDATE = "compute.instance.update"

ACTIVE, BUILDING, STOPPED = vm_states.ACTIVE, vm_states.BUILDING, vm_states.STOPPED
REBOOTING, REBOOT_STARTED = task_states.REBOOTING, task_states.REBOOT_STARTED
POWERING_OFF, SPAWNING = task_states.POWERING_OFF, task_states.SPAWNING
SCHEDULING = task_states.SCHEDULING


def instance(
    vm_state: str | None = ACTIVE,
    task_state: str | None = None,
    display_name: str = "web-1",
    **more: Any,
) -> dict[str, Any]:
    return {
        "uuid": UUID,
        "project_id": "tenant-1",
        "user_id": "user-1",
        "display_name": display_name,
        "hostname": "web-1",
        "host": "compute-7",
        "image_ref": "155d900f-4e14-4e4c-a73d-069cbf4541e6",
        "vm_state": vm_state,
        "task_state": task_state,
        "flavor": {"name": "m1.small", "id": 5, "root_gb": 20, "ephemeral_gb": 5},
        **more,
    }


def states(payload: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    return (
        payload["old_state"],
        payload["state"],
        payload["old_task_state"],
        payload["new_task_state"],
    )


def received(env, publisher_id: str = "compute.testhost") -> list[dict[str, Any]]:
    """Payloads of the updates that arrived (every one checked as INFO, on
    ``publisher_id``, JSON only); fails on any other notification."""
    got = env.settle()
    assert [(g.event_type, g.priority, g.publisher_id) for g in got] == [
        (UPDATE, "INFO", publisher_id)
    ] * len(got)
    for item in got:
        assert json.loads(json.dumps(item.payload)) == item.payload
    return [item.payload for item in got]


@pytest.fixture
def frozen_now() -> Iterator[datetime.datetime]:
    timeutils.set_time_override(NOW)
    yield NOW
    timeutils.clear_time_override()


def set_mode(env, mode: str | None) -> None:
    if mode is not None:
        env.override("notify_on_state_change", mode, group="notifications")


# (mode, (old vm, old task), (new vm, new task), kind of update sent)
DECISION_TABLE = [
    pytest.param(None, (ACTIVE, None), (STOPPED, None), None, id="unset-vm-changed"),
    pytest.param(
        None, (ACTIVE, None), (ACTIVE, REBOOTING), None, id="unset-task-changed"
    ),
    pytest.param(None, (ACTIVE, None), (ACTIVE, None), None, id="unset-unchanged"),
    pytest.param("", (ACTIVE, None), (STOPPED, None), None, id="empty-vm-changed"),
    pytest.param(
        "vm_state",
        (ACTIVE, POWERING_OFF),
        (STOPPED, None),
        "transition",
        id="vm_state-vm-changed",
    ),
    pytest.param(
        "vm_state",
        (BUILDING, SPAWNING),
        (ACTIVE, SPAWNING),
        "transition",
        id="vm_state-vm-changed-task-same",
    ),
    pytest.param(
        "vm_state",
        (ACTIVE, REBOOTING),
        (ACTIVE, REBOOT_STARTED),
        "plain",
        id="vm_state-task-changed",
    ),
    pytest.param(
        "vm_state", (ACTIVE, None), (ACTIVE, None), "plain", id="vm_state-unchanged"
    ),
    pytest.param(
        "vm_and_task_state",
        (BUILDING, SPAWNING),
        (ACTIVE, None),
        "transition",
        id="vm_and_task-vm-changed",
    ),
    pytest.param(
        "vm_and_task_state",
        (ACTIVE, REBOOTING),
        (ACTIVE, REBOOT_STARTED),
        "transition",
        id="vm_and_task-task-changed",
    ),
    pytest.param(
        "vm_and_task_state",
        (ACTIVE, REBOOTING),
        (ACTIVE, REBOOTING),
        "plain",
        id="vm_and_task-unchanged",
    ),
]


@pytest.mark.parametrize(("mode", "old", "new", "kind"), DECISION_TABLE)
def test_send_update_decision_table(fake_env, mode, old, new, kind):
    set_mode(fake_env, mode)

    send_update({}, instance(*old), instance(*new))

    payloads = received(fake_env)
    if kind is None:
        assert payloads == []
        return
    assert len(payloads) == 1
    if kind == "transition":
        assert states(payloads[0]) == (old[0], new[0], old[1], new[1])
    else:  # a plain update reports the new instance's states only
        assert states(payloads[0]) == (new[0], new[0], new[1], new[1])


@pytest.mark.parametrize(
    ("mode", "old", "new", "old_display_name"),
    [
        pytest.param("vm_state", (ACTIVE, None), (ACTIVE, None), "web-1", id="plain"),
        pytest.param(
            "vm_and_task_state",
            (ACTIVE, REBOOTING),
            (ACTIVE, REBOOTING),
            "web-1",
            id="plain-both",
        ),
        pytest.param(
            "vm_state", (ACTIVE, POWERING_OFF), (STOPPED, None), None, id="transition"
        ),
    ],
)
@pytest.mark.parametrize("renamed", [True, False], ids=["renamed", "same-name"])
def test_old_display_name_only_on_a_plain_update_that_renames(
    fake_env, mode, old, new, old_display_name, renamed
):
    set_mode(fake_env, mode)
    new_name = "web-1-renamed" if renamed else "web-1"

    send_update({}, instance(*old), instance(*new, display_name=new_name))

    [payload] = received(fake_env)
    assert payload["display_name"] == new_name
    if renamed and old_display_name:
        assert payload["old_display_name"] == old_display_name
    else:
        assert "old_display_name" not in payload


@pytest.mark.parametrize(
    ("audit_period", "beginning"),
    [
        ("month", "2012-03-01T00:00:00.000000"),
        ("day", "2012-03-05T00:00:00.000000"),
        ("hour@30", "2012-03-05T07:30:00.000000"),
    ],
)
def test_update_payload_is_the_legacy_payload_plus_state_and_audit_fields(
    fake_env, frozen_now, audit_period, beginning
):
    set_mode(fake_env, "vm_state")
    fake_env.override("instance_usage_audit_period", audit_period)
    new = instance(STOPPED, None, system_metadata={"image_os_distro": "ubuntu"})

    send_update({}, instance(ACTIVE, POWERING_OFF), new)

    [payload] = received(fake_env)
    legacy = nova_notifier.info_from_instance({}, new, None, None)
    assert payload == {
        **legacy,
        "old_state": ACTIVE,
        "state": STOPPED,
        "old_task_state": POWERING_OFF,
        "new_task_state": None,
        # the period under way: end of the last completed one, then now
        "audit_period_beginning": beginning,
        "audit_period_ending": "2012-03-05T08:12:23.456789",
        "bandwidth": {},
    }
    assert "fixed_ips" not in payload
    assert payload["image_meta"] == {"os_distro": "ubuntu"}


@pytest.mark.parametrize("mode", ["vm_state", "vm_and_task_state"])
def test_send_update_with_states_always_sends_when_a_mode_is_set(fake_env, mode):
    set_mode(fake_env, mode)
    given = (ACTIVE, ACTIVE, REBOOTING, REBOOTING)  # not a counted change

    send_update_with_states({}, instance(ACTIVE, REBOOTING), *given)

    assert [states(p) for p in received(fake_env)] == [given]


@pytest.mark.parametrize("verify_states", [False, True])
def test_send_update_with_states_sends_nothing_when_unset(fake_env, verify_states):
    send_update_with_states(
        {},
        instance(STOPPED),
        ACTIVE,
        STOPPED,
        POWERING_OFF,
        None,
        verify_states=verify_states,
    )
    assert received(fake_env) == []


@pytest.mark.parametrize(
    ("mode", "given", "sent"),
    [
        ("vm_state", (ACTIVE, STOPPED, POWERING_OFF, POWERING_OFF), True),
        ("vm_state", (ACTIVE, ACTIVE, REBOOTING, REBOOT_STARTED), False),
        ("vm_state", (ACTIVE, ACTIVE, REBOOTING, REBOOTING), False),
        ("vm_and_task_state", (ACTIVE, STOPPED, POWERING_OFF, POWERING_OFF), True),
        ("vm_and_task_state", (ACTIVE, ACTIVE, REBOOTING, REBOOT_STARTED), True),
        ("vm_and_task_state", (ACTIVE, ACTIVE, REBOOTING, REBOOTING), False),
    ],
)
def test_verify_states_sends_only_a_counted_change(fake_env, mode, given, sent):
    set_mode(fake_env, mode)

    send_update_with_states(
        {}, instance(given[1], given[3]), *given, verify_states=True
    )

    assert [states(p) for p in received(fake_env)] == ([given] if sent else [])


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            (None, STOPPED, POWERING_OFF, SPAWNING),
            (ACTIVE, STOPPED, POWERING_OFF, SPAWNING),
        ),
        (
            (STOPPED, None, POWERING_OFF, SPAWNING),
            (STOPPED, ACTIVE, POWERING_OFF, SPAWNING),
        ),
        (
            (STOPPED, BUILDING, None, SPAWNING),
            (STOPPED, BUILDING, REBOOTING, SPAWNING),
        ),
        (
            (STOPPED, BUILDING, POWERING_OFF, None),
            (STOPPED, BUILDING, POWERING_OFF, REBOOTING),
        ),
        ((None, None, None, None), (ACTIVE, ACTIVE, REBOOTING, REBOOTING)),
    ],
)
def test_none_states_are_the_instances_current_states(fake_env, given, expected):
    set_mode(fake_env, "vm_state")

    send_update_with_states({}, instance(ACTIVE, REBOOTING), *given)

    assert [states(p) for p in received(fake_env)] == [expected]


@pytest.mark.parametrize("mode", ["vm_state", "vm_and_task_state"])
def test_api_accepting_a_boot(fake_env, mode):
    set_mode(fake_env, mode)

    send_update_with_states(
        {}, instance(BUILDING, SCHEDULING), None, BUILDING, None, None, service="api"
    )

    [payload] = received(fake_env, publisher_id="api.testhost")
    assert states(payload) == (BUILDING, BUILDING, SCHEDULING, SCHEDULING)
    assert payload["instance_id"] == UUID


@pytest.mark.parametrize(
    ("service", "host", "publisher_id"),
    [
        ("compute", None, "compute.testhost"),
        ("compute", "node-9", "compute.node-9"),
        ("api", None, "api.testhost"),
    ],
)
@pytest.mark.parametrize("sender", ["send_update", "send_update_with_states"])
def test_update_publisher_id(fake_env, sender, service, host, publisher_id):
    set_mode(fake_env, "vm_state")
    where = {"service": service, "host": host}

    if sender == "send_update":
        send_update({}, instance(ACTIVE), instance(STOPPED), **where)
    else:
        send_update_with_states(
            {}, instance(STOPPED), ACTIVE, STOPPED, None, None, **where
        )

    assert len(received(fake_env, publisher_id=publisher_id)) == 1


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda: send_update({}, {"vm_state": ACTIVE}, {"vm_state": STOPPED}),
            id="send_update",
        ),
        pytest.param(
            lambda: send_update_with_states(
                {}, {"vm_state": STOPPED}, ACTIVE, STOPPED, None, None
            ),
            id="send_update_with_states",
        ),
        pytest.param(
            lambda: send_update_with_states({}, None, ACTIVE, STOPPED, None, None),
            id="no-instance",
        ),
    ],
)
def test_malformed_instance_is_swallowed_and_counted(fake_env, call):
    set_mode(fake_env, "vm_state")
    dropped = nova_notifier.stats()["dropped"]

    call()  # must not raise

    assert received(fake_env) == []
    assert nova_notifier.stats()["dropped"] == dropped + 1


@pytest.mark.parametrize(
    ("args", "publisher_id"),
    [
        ({"service": "compute"}, "compute.testhost"),
        ({"service": "compute", "host": "node-9"}, "compute.node-9"),
        ({"service": "api"}, "api.testhost"),
        (
            {"service": "compute", "host": "node-9", "publisher_id": "billing.x"},
            "billing.x",
        ),
    ],
)
@pytest.mark.payloads_unchecked
def test_get_notifier_publisher_id(fake_env, args, publisher_id):
    notifier = nova_notifier.get_notifier(**args)

    notifier.info({}, UPDATE, {"instance_id": UUID})

    assert received(fake_env, publisher_id=publisher_id) == [{"instance_id": UUID}]


def test_get_notifier_before_init_names_init():
    nova_notifier.cleanup()
    with pytest.raises(nova_notifier.NotInitializedError, match=r"init\(\)"):
        nova_notifier.get_notifier("compute")


@pytest.mark.broker
def test_api_boot_update_through_rabbitmq(broker_env, frozen_now):
    set_mode(broker_env, "vm_state")
    booting = instance(BUILDING, SCHEDULING, metadata={"admin_password": "hunter2"})

    send_update_with_states({}, booting, None, BUILDING, None, None, service="api")

    got = broker_env.settle()
    assert [(g.event_type, g.priority, g.publisher_id) for g in got] == [
        (UPDATE, "INFO", "api.testhost")
    ]
    assert got[0].payload == {
        "tenant_id": "tenant-1",
        "user_id": "user-1",
        "instance_id": UUID,
        "display_name": "web-1",
        "reservation_id": "",
        "hostname": "web-1",
        "host": "compute-7",
        "node": "",
        "availability_zone": "",
        "architecture": "",
        "os_type": "",
        "kernel_id": "",
        "ramdisk_id": "",
        "instance_type": "m1.small",
        "instance_flavor_id": "",
        "instance_type_id": 5,
        "memory_mb": 0,
        "vcpus": 0,
        "root_gb": 20,
        "ephemeral_gb": 5,
        "disk_gb": 25,
        "cell_name": "",
        "created_at": "",
        "launched_at": "",
        "terminated_at": "",
        "deleted_at": "",
        "image_ref_url": "http://127.0.0.1:9292/images/"
        "155d900f-4e14-4e4c-a73d-069cbf4541e6",
        "state": BUILDING,
        "state_description": SCHEDULING,
        "progress": "",
        "access_ip_v4": "",
        "access_ip_v6": "",
        "metadata": {"admin_password": "***"},
        "image_meta": {},
        "old_state": BUILDING,
        "old_task_state": SCHEDULING,
        "new_task_state": SCHEDULING,
        "audit_period_beginning": "2012-03-01T00:00:00.000000",
        "audit_period_ending": "2012-03-05T08:12:23.456789",
        "bandwidth": {},
    }


def test_a_task_starting_from_none_is_reported_as_such(fake_env):
    """(active, no task) -> (active, rebooting) under vm_and_task_state: the
    old task state goes out as null, not as the new task state (Nova's
    substitution hid the change)."""
    set_mode(fake_env, "vm_and_task_state")
    send_update({}, instance(ACTIVE, None), instance(ACTIVE, REBOOTING))
    [body] = received(fake_env)
    assert states(body) == (ACTIVE, ACTIVE, None, REBOOTING)
