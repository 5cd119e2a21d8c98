"""compute.instance.<suffix> usage notifications, faults and compute.instance.exists."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import pytest
from oslo_utils import timeutils

import nova_notifier
from nova_notifier import (
    exception_to_dict,
    info_from_instance,
    notify_about_instance_usage,
    notify_usage_exists,
)

UUID = "6a1f0c52-3b7e-4d8a-a9c1-2e4f5a6b7c8d"
NOW = datetime.datetime(2012, 3, 5, 8, 12, 23)
NETWORK_INFO = [
    {
        "address": "fa:16:3e:11:22:33",
        "network": {
            "label": "private",
            "subnets": [
                {
                    "ips": [
                        {
                            "address": "10.0.0.5",
                            "type": "fixed",
                            "version": 4,
                            "meta": {},
                            "floating_ips": [],
                        }
                    ]
                }
            ],
        },
    }
]


def instance(**more: Any) -> dict[str, Any]:
    return {
        "uuid": UUID,
        "project_id": "tenant-1",
        "user_id": "user-1",
        "display_name": "db-1",
        "host": "compute-2",
        "vm_state": "active",
        "launched_at": datetime.datetime(2012, 2, 20, 9, 30),
        "flavor": {"name": "m1.large", "id": 4, "memory_mb": 8192, "root_gb": 80},
        "system_metadata": {"image_os_distro": "fedora", "image_min_ram": "512"},
        **more,
    }


def legacy(**kw: Any) -> dict[str, Any]:
    """The legacy payload of ``instance()`` (info_from_instance is tested on its
    own in test_payload.py)."""
    return info_from_instance({}, instance(), None, None, **kw)


def received(env) -> list[Any]:
    """What arrived, markers left out, each payload checked to be plain JSON."""
    got = env.settle()
    for item in got:
        assert json.loads(json.dumps(item.payload)) == item.payload
    return got


def wire_facts(got: list[Any]) -> list[tuple[str, str, str]]:
    return [(g.event_type, g.priority, g.publisher_id) for g in got]


@pytest.fixture
def compute(fake_env):
    return nova_notifier.get_notifier("compute")


@pytest.fixture
def frozen_now() -> Iterator[datetime.datetime]:
    timeutils.set_time_override(NOW)
    yield NOW
    timeutils.clear_time_override()


class ComputeError(Exception):
    """Shaped like Nova's NovaException: a formatted message and kwargs."""

    msg_fmt = "Instance %(name)s could not be built: %(reason)s"

    def __init__(self, code: int | None = None, **kwargs: Any) -> None:
        self.kwargs = {"code": code, **kwargs} if code else kwargs
        super().__init__(self.msg_fmt % kwargs)

    def format_message(self) -> str:
        return self.args[0]


class Conflict(Exception):
    code = 409

    def format_message(self) -> str:
        return "Instance is locked"


class BrokenFormat(Exception):
    def format_message(self) -> str:
        raise KeyError("reason")


class EmptyFormat(Exception):
    def format_message(self) -> str:
        return ""


class OddCode(Exception):
    code = "EACCES"


SUFFIXES = [
    "create.start",
    "create.end",
    "create.error",
    "delete.start",
    "delete.end",
    # notify_usage_exists adds the audit period that exists' schema requires.
    pytest.param("exists", marks=pytest.mark.payloads_unchecked),
    "create_ip.end",
    "finish_resize.start",
    "live_migration.pre.start",
    "live_migration._post.end",
    "live_migration.rollback.dest.end",
    "power_off.start",
    "reboot.error",
    "rebuild.end",
    "rescue.start",
    "resize.prep.start",
    "resize.confirm.end",
    "resize.revert.start",
    "resize.error",
    "shelve_offload.end",
    "unshelve.start",
    "shutdown.end",
    "snapshot.start",
    "soft_delete.end",
    "volume.attach",
    "volume.detach",
]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_event_type_and_priority_for_every_suffix(fake_env, compute, suffix):
    notify_about_instance_usage(compute, {}, instance(), suffix)

    got = received(fake_env)
    priority = "ERROR" if suffix.endswith("error") else "INFO"
    assert wire_facts(got) == [
        (f"compute.instance.{suffix}", priority, "compute.testhost")
    ]
    assert got[0].payload == legacy()


@pytest.mark.parametrize(
    "suffix", ["instance.create.error", "compute.instance.create.error"]
)
def test_prefixed_suffix_is_not_prefixed_twice(fake_env, compute, suffix):
    notify_about_instance_usage(compute, {}, instance(), suffix)

    assert wire_facts(received(fake_env)) == [
        ("compute.instance.create.error", "ERROR", "compute.testhost")
    ]


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"image_name": "fedora-36"}, id="added"),
        pytest.param({"state": "resized", "instance_type": "m1.xl"}, id="override"),
        pytest.param({"instance": "i-1", "context": "c"}, id="argument-names"),
    ],
)
def test_extra_usage_info_is_merged(fake_env, compute, extra):
    notify_about_instance_usage(
        compute,
        {},
        instance(),
        "resize.end",
        network_info=NETWORK_INFO,
        extra_usage_info=extra,
    )

    [got] = received(fake_env)
    expected = info_from_instance({}, instance(), NETWORK_INFO, None)
    assert got.payload == {**expected, **extra}
    assert got.payload["fixed_ips"][0]["label"] == "private"


def test_system_metadata_argument_feeds_image_meta(fake_env, compute):
    rows = [{"key": "image_os_distro", "value": "debian"}]
    notify_about_instance_usage(
        compute, {}, instance(), "rebuild.end", system_metadata=rows
    )

    [got] = received(fake_env)
    assert got.payload["image_meta"] == {"os_distro": "debian"}


FAULTS = [
    pytest.param(
        ComputeError(code=409, name="db-1", reason="no valid host"),
        {
            "message": "Instance db-1 could not be built: no valid host",
            "code": 409,
            "exception": "ComputeError: Instance db-1 could not be built: "
            "no valid host",
        },
        id="formatted-kwargs-code",
    ),
    pytest.param(
        Conflict(),
        {
            "message": "Instance is locked",
            "code": 409,
            "exception": "Conflict: Instance is locked",
        },
        id="code-attribute",
    ),
    pytest.param(
        RuntimeError("cannot reach db password=hunter2"),
        {"message": "RuntimeError", "code": 500, "exception": "RuntimeError"},
        id="plain-exception-with-secret",
    ),
    pytest.param(
        ComputeError(name="db-1", reason="login with password=hunter2 refused"),
        {
            "message": "Instance db-1 could not be built: login with password=*** "
            "refused",
            "code": 500,
            "exception": "ComputeError: Instance db-1 could not be built: login "
            "with password=*** refused",
        },
        id="formatted-with-secret",
    ),
]


@pytest.mark.parametrize(("fault", "fields"), FAULTS)
@pytest.mark.parametrize(
    ("suffix", "priority"), [("create.error", "ERROR"), ("create.end", "INFO")]
)
def test_fault_fields(fake_env, compute, fault, fields, suffix, priority):
    notify_about_instance_usage(compute, {}, instance(), suffix, fault=fault)

    got = received(fake_env)
    assert wire_facts(got) == [
        (f"compute.instance.{suffix}", priority, "compute.testhost")
    ]
    assert got[0].payload == {**legacy(), **fields}
    assert "hunter2" not in json.dumps(got[0].payload)


def test_fault_message_is_cut_to_255_characters(fake_env, compute):
    fault = ComputeError(name="é" * 300, reason="x")

    notify_about_instance_usage(compute, {}, instance(), "create.error", fault=fault)

    [got] = received(fake_env)
    assert got.payload["message"] == "Instance " + "é" * 246
    assert len(got.payload["message"]) == 255
    assert got.payload["exception"] == "ComputeError: " + fault.format_message()


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        pytest.param(
            ComputeError(code=404, name="a", reason="b"),
            {
                "exception": "ComputeError: Instance a could not be built: b",
                "message": "Instance a could not be built: b",
                "code": 404,
            },
            id="format_message",
        ),
        pytest.param(
            ValueError("token=abc123 rejected"),
            {"exception": "ValueError", "message": "ValueError", "code": 500},
            id="no-format_message",
        ),
        pytest.param(
            BrokenFormat("secret"),
            {"exception": "BrokenFormat", "message": "BrokenFormat", "code": 500},
            id="format_message-raises",
        ),
        pytest.param(
            EmptyFormat(),
            {"exception": "EmptyFormat", "message": "EmptyFormat", "code": 500},
            id="format_message-empty",
        ),
        pytest.param(
            OddCode(),
            {"exception": "OddCode", "message": "OddCode", "code": 500},
            id="non-numeric-code",
        ),
    ],
)
def test_exception_to_dict(fault, expected):
    assert exception_to_dict(fault) == expected


def test_malformed_instance_is_swallowed_and_counted(fake_env, compute):
    dropped = nova_notifier.stats()["dropped"]

    notify_about_instance_usage(compute, {}, {"display_name": "no uuid"}, "create.end")
    notify_usage_exists(compute, {}, {"display_name": "no uuid"})

    assert received(fake_env) == []
    assert nova_notifier.stats()["dropped"] == dropped + 2


@pytest.mark.parametrize(
    ("audit_period", "beginning", "ending"),
    [
        (None, "2012-02-01 00:00:00", "2012-03-01 00:00:00"),  # default: month
        ("day", "2012-03-04 00:00:00", "2012-03-05 00:00:00"),
        ("hour@30", "2012-03-05 06:30:00", "2012-03-05 07:30:00"),
        ("year@6", "2010-06-01 00:00:00", "2011-06-01 00:00:00"),
    ],
)
def test_exists_reports_the_last_completed_period(
    fake_env, compute, frozen_now, audit_period, beginning, ending
):
    if audit_period:
        fake_env.override("instance_usage_audit_period", audit_period)

    notify_usage_exists(compute, {}, instance())

    got = received(fake_env)
    assert wire_facts(got) == [("compute.instance.exists", "INFO", "compute.testhost")]
    assert got[0].payload == {
        **legacy(),
        "audit_period_beginning": beginning,
        "audit_period_ending": ending,
        "bandwidth": {},
        "image_meta": {"os_distro": "fedora", "min_ram": "512"},
    }


def test_exists_for_the_current_period(fake_env, compute, frozen_now):
    notify_usage_exists(compute, {}, instance(), current_period=True)

    [got] = received(fake_env)
    assert got.payload["audit_period_beginning"] == "2012-03-01 00:00:00"
    assert got.payload["audit_period_ending"] == "2012-03-05 08:12:23"


def test_exists_with_system_metadata_and_extra_usage_info(fake_env, compute):
    bandwidth = {"private": {"bw_in": 1024, "bw_out": 2048}}

    notify_usage_exists(
        compute,
        {},
        instance(),
        system_metadata=[{"key": "image_os_distro", "value": "debian"}],
        extra_usage_info={"bandwidth": bandwidth, "image_name": "debian-12"},
    )

    [got] = received(fake_env)
    assert got.event_type == "compute.instance.exists"
    assert got.payload["image_meta"] == {"os_distro": "debian"}
    assert got.payload["bandwidth"] == bandwidth
    assert got.payload["image_name"] == "debian-12"


@pytest.mark.broker
def test_create_error_with_fault_through_rabbitmq(broker_env):
    compute = nova_notifier.get_notifier("compute", host="compute-2")
    fault = ComputeError(code=409, name="db-1", reason="password=hunter2 refused")

    notify_about_instance_usage(
        compute, {}, instance(), "create.error", NETWORK_INFO, fault=fault
    )

    got = broker_env.settle()
    assert wire_facts(got) == [
        ("compute.instance.create.error", "ERROR", "compute.compute-2")
    ]
    message = "Instance db-1 could not be built: password=*** refused"
    assert got[0].payload == {
        **info_from_instance({}, instance(), NETWORK_INFO, None),
        "message": message,
        "code": 409,
        "exception": f"ComputeError: {message}",
    }
    assert got[0].payload["fixed_ips"] == [
        {
            "address": "10.0.0.5",
            "type": "fixed",
            "version": 4,
            "meta": {},
            "floating_ips": [],
            "label": "private",
            "vif_mac": "fa:16:3e:11:22:33",
        }
    ]


@pytest.mark.broker
def test_exists_through_rabbitmq(broker_env, frozen_now):
    broker_env.override("instance_usage_audit_period", "day@6")
    compute = nova_notifier.get_notifier("compute")

    notify_usage_exists(compute, {}, instance())

    got = broker_env.settle()
    assert wire_facts(got) == [("compute.instance.exists", "INFO", "compute.testhost")]
    assert got[0].payload == {
        "tenant_id": "tenant-1",
        "user_id": "user-1",
        "instance_id": UUID,
        "display_name": "db-1",
        "reservation_id": "",
        "hostname": "",
        "host": "compute-2",
        "node": "",
        "availability_zone": "",
        "architecture": "",
        "os_type": "",
        "kernel_id": "",
        "ramdisk_id": "",
        "instance_type": "m1.large",
        "instance_flavor_id": "",
        "instance_type_id": 4,
        "memory_mb": 8192,
        "vcpus": 0,
        "root_gb": 80,
        "ephemeral_gb": 0,
        "disk_gb": 80,
        "cell_name": "",
        "created_at": "",
        "launched_at": "2012-02-20T09:30:00.000000",
        "terminated_at": "",
        "deleted_at": "",
        "image_ref_url": "",
        "state": "active",
        "state_description": "",
        "progress": "",
        "access_ip_v4": "",
        "access_ip_v6": "",
        "metadata": {},
        "image_meta": {"os_distro": "fedora", "min_ram": "512"},
        "audit_period_beginning": "2012-03-04 06:00:00",
        "audit_period_ending": "2012-03-05 06:00:00",
        "bandwidth": {},
    }
