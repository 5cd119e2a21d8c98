"""info_from_instance: Nova's legacy instance payload, field by field."""

from __future__ import annotations

import datetime
import ipaddress
import json
import types
from typing import Any

import pytest

import nova_notifier
from nova_notifier import InvalidInstanceError, info_from_instance

UUID = "f3b3c1d2-7a41-4c55-9f0e-2c1d5e6f7a80"
IMAGE = "155d900f-4e14-4e4c-a73d-069cbf4541e6"
ENDPOINT = "https://glance.example.org:9292"


def instance_fields(**changes: Any) -> dict[str, Any]:
    """A booted instance, shaped like Nova's Instance object."""
    fields: dict[str, Any] = {
        "uuid": UUID,
        "project_id": "tenant-1",
        "user_id": "user-1",
        "display_name": "web-1",
        "reservation_id": "r-3fhpjulh",
        "hostname": "web-1",
        "host": "compute-7",
        "node": "node-7.example.org",
        "availability_zone": "az-east",
        "architecture": "x86_64",
        "os_type": "linux",
        "kernel_id": "aki-1",
        "ramdisk_id": "ari-1",
        "cell_name": None,
        "created_at": datetime.datetime(2012, 10, 29, 13, 42, 11, 123),
        "launched_at": datetime.datetime(2012, 10, 29, 13, 43, 2),
        "terminated_at": None,
        "deleted_at": None,
        "image_ref": IMAGE,
        "vm_state": "active",
        "task_state": None,
        "progress": 0,
        "access_ip_v4": ipaddress.ip_address("192.0.2.10"),
        "access_ip_v6": ipaddress.ip_address("2001:db8::10"),
        "metadata": {"role": "web"},
        "flavor": {
            "name": "m1.small",
            "flavorid": 2,
            "id": 5,
            "memory_mb": 2048,
            "vcpus": 1,
            "root_gb": 20,
            "ephemeral_gb": 5,
        },
        "system_metadata": {
            "image_min_disk": "20",
            "image_os_distro": "ubuntu",
            "owner_user_name": "alice",
        },
    }
    fields.update(changes)
    return fields


def as_object(fields: dict[str, Any]) -> types.SimpleNamespace:
    """The same instance as an object with attributes (flavor included)."""
    values = dict(fields)
    if isinstance(values.get("flavor"), dict):
        values["flavor"] = types.SimpleNamespace(**values["flavor"])
    return types.SimpleNamespace(**values)


SHAPES = [pytest.param(dict, id="mapping"), pytest.param(as_object, id="object")]

EXPECTED = {
    "tenant_id": "tenant-1",
    "user_id": "user-1",
    "instance_id": UUID,
    "display_name": "web-1",
    "reservation_id": "r-3fhpjulh",
    "hostname": "web-1",
    "host": "compute-7",
    "node": "node-7.example.org",
    "availability_zone": "az-east",
    "architecture": "x86_64",
    "os_type": "linux",
    "kernel_id": "aki-1",
    "ramdisk_id": "ari-1",
    "instance_type": "m1.small",
    "instance_flavor_id": "2",
    "instance_type_id": 5,
    "memory_mb": 2048,
    "vcpus": 1,
    "root_gb": 20,
    "ephemeral_gb": 5,
    "disk_gb": 25,
    "cell_name": "",
    "created_at": "2012-10-29T13:42:11.000123",
    "launched_at": "2012-10-29T13:43:02.000000",
    "terminated_at": "",
    "deleted_at": "",
    "image_ref_url": f"{ENDPOINT}/images/{IMAGE}",
    "state": "active",
    "state_description": "",
    "progress": "",
    "access_ip_v4": "192.0.2.10",
    "access_ip_v6": "2001:db8::10",
    "metadata": {"role": "web"},
    "image_meta": {"min_disk": "20", "os_distro": "ubuntu"},
}

EMPTY = {
    "tenant_id": "",
    "user_id": "",
    "instance_id": UUID,
    "display_name": "",
    "reservation_id": "",
    "hostname": "",
    "host": "",
    "node": "",
    "availability_zone": "",
    "architecture": "",
    "os_type": "",
    "kernel_id": "",
    "ramdisk_id": "",
    "instance_type": "",
    "instance_flavor_id": "",
    "instance_type_id": "",
    "memory_mb": 0,
    "vcpus": 0,
    "root_gb": 0,
    "ephemeral_gb": 0,
    "disk_gb": 0,
    "cell_name": "",
    "created_at": "",
    "launched_at": "",
    "terminated_at": "",
    "deleted_at": "",
    "image_ref_url": "",
    "state": "",
    "state_description": "",
    "progress": "",
    "access_ip_v4": "",
    "access_ip_v6": "",
    "metadata": {},
    "image_meta": {},
}

NETWORK_INFO = [
    {
        "address": "fa:16:3e:00:00:01",
        "network": {
            "label": "private",
            "subnets": [
                {
                    "cidr": "10.0.0.0/24",
                    "ips": [
                        {
                            "address": "10.0.0.5",
                            "type": "fixed",
                            "version": 4,
                            "meta": {},
                            "floating_ips": [
                                {
                                    "address": "203.0.113.7",
                                    "type": "floating",
                                    "version": 4,
                                    "meta": {},
                                }
                            ],
                        }
                    ],
                },
                {
                    "cidr": "fd00::/64",
                    "ips": [
                        {
                            "address": "fd00::5",
                            "type": "fixed",
                            "version": 6,
                            "meta": {},
                            "floating_ips": [],
                        }
                    ],
                },
            ],
        },
    },
    {
        "address": "fa:16:3e:00:00:02",
        "network": {
            "label": "storage",
            "subnets": [
                {
                    "cidr": "192.168.9.0/24",
                    "ips": [
                        {
                            "address": "192.168.9.9",
                            "type": "fixed",
                            "version": 4,
                            "meta": {"dhcp_server": "192.168.9.1"},
                            "floating_ips": [],
                        }
                    ],
                }
            ],
        },
    },
]

EXPECTED_FIXED_IPS = [
    {
        "address": "10.0.0.5",
        "type": "fixed",
        "version": 4,
        "meta": {},
        "floating_ips": [
            {"address": "203.0.113.7", "type": "floating", "version": 4, "meta": {}}
        ],
        "label": "private",
        "vif_mac": "fa:16:3e:00:00:01",
    },
    {
        "address": "fd00::5",
        "type": "fixed",
        "version": 6,
        "meta": {},
        "floating_ips": [],
        "label": "private",
        "vif_mac": "fa:16:3e:00:00:01",
    },
    {
        "address": "192.168.9.9",
        "type": "fixed",
        "version": 4,
        "meta": {"dhcp_server": "192.168.9.1"},
        "floating_ips": [],
        "label": "storage",
        "vif_mac": "fa:16:3e:00:00:02",
    },
]


def over_the_wire(env, body: dict[str, Any]) -> dict[str, Any]:
    """Emit ``body`` as a compute service would and return what arrived.

    Sent as a ``create.end``: an instance payload as it is, which that
    event's schema describes (``exists`` adds the audit period)."""
    nova_notifier.get_notifier("compute").info({}, "compute.instance.create.end", body)
    got = env.settle()
    assert [(g.event_type, g.priority, g.publisher_id) for g in got] == [
        ("compute.instance.create.end", "INFO", "compute.testhost")
    ]
    payload = got[0].payload
    assert json.loads(json.dumps(payload)) == payload  # plain JSON types only
    return payload


@pytest.fixture
def env(fake_env):
    fake_env.override("image_endpoint", ENDPOINT, group="notifications")
    return fake_env


@pytest.mark.parametrize("shape", SHAPES)
def test_every_field_from_a_full_instance(env, shape):
    body = info_from_instance({}, shape(instance_fields()), None, None)
    assert body == EXPECTED

    assert over_the_wire(env, body) == EXPECTED


@pytest.mark.parametrize("shape", SHAPES)
def test_missing_optional_fields_give_empty_values(shape):
    assert info_from_instance({}, shape({"uuid": UUID}), None, None) == EMPTY


@pytest.mark.parametrize(
    "instance",
    [
        pytest.param({}, id="no-uuid"),
        pytest.param({"uuid": None, "display_name": "web-1"}, id="uuid-none"),
        pytest.param({"uuid": ""}, id="uuid-empty"),
        pytest.param(types.SimpleNamespace(display_name="web-1"), id="object"),
    ],
)
def test_missing_uuid_is_a_value_error(instance):
    with pytest.raises(InvalidInstanceError, match="uuid"):
        info_from_instance({}, instance, None, None)
    assert issubclass(InvalidInstanceError, ValueError)


@pytest.mark.parametrize(
    ("network_info", "fixed_ips"),
    [
        pytest.param(NETWORK_INFO, EXPECTED_FIXED_IPS, id="two-vifs"),
        pytest.param([], [], id="no-vifs"),
    ],
)
def test_fixed_ips_with_label_and_vif_mac(env, network_info, fixed_ips):
    body = info_from_instance({}, instance_fields(), network_info, None)
    assert body["fixed_ips"] == fixed_ips
    assert over_the_wire(env, body)["fixed_ips"] == fixed_ips


def test_no_fixed_ips_key_without_network_info():
    assert "fixed_ips" not in info_from_instance({}, {"uuid": UUID}, None, None)


@pytest.mark.parametrize(
    "field", ["created_at", "launched_at", "terminated_at", "deleted_at"]
)
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime.datetime(2012, 10, 29, 13, 42, 11, 5), "2012-10-29T13:42:11.000005"),
        (datetime.datetime(2012, 10, 29, 13, 42, 11), "2012-10-29T13:42:11.000000"),
        (
            datetime.datetime(
                2012,
                10,
                29,
                15,
                42,
                11,
                tzinfo=datetime.timezone(datetime.timedelta(hours=2)),
            ),
            "2012-10-29T13:42:11.000000",
        ),
        (None, ""),
    ],
)
def test_times_are_formatted_or_empty(field, value, text):
    body = info_from_instance({}, {"uuid": UUID, field: value}, None, None)
    assert body[field] == text


@pytest.mark.parametrize(("progress", "expected"), [(0, ""), (None, ""), (55, 55)])
def test_progress_is_empty_when_unset_or_zero(progress, expected):
    body = info_from_instance({}, {"uuid": UUID, "progress": progress}, None, None)
    assert body["progress"] == expected


@pytest.mark.parametrize(
    ("task_state", "description"), [("rebooting", "rebooting"), (None, "")]
)
def test_state_and_state_description(task_state, description):
    instance = {"uuid": UUID, "vm_state": "active", "task_state": task_state}
    body = info_from_instance({}, instance, None, None)
    assert (body["state"], body["state_description"]) == ("active", description)


FLAVOR_SYSMETA = {
    "instance_type_name": "m1.tiny",
    "instance_type_flavorid": "1",
    "instance_type_id": "6",
    "instance_type_memory_mb": "512",
    "instance_type_vcpus": "1",
    "instance_type_root_gb": "1",
    "instance_type_ephemeral_gb": "0",
    "image_min_ram": "64",
}
TINY = {
    "instance_type": "m1.tiny",
    "instance_flavor_id": "1",
    "instance_type_id": 6,
    "memory_mb": 512,
    "vcpus": 1,
    "root_gb": 1,
    "ephemeral_gb": 0,
    "disk_gb": 1,
}


def rows(mapping: dict[str, Any]) -> list[dict[str, Any]]:
    """Nova's database form of (system) metadata."""
    return [{"key": key, "value": value} for key, value in mapping.items()]


@pytest.mark.parametrize(
    ("on_instance", "argument"),
    [
        pytest.param(FLAVOR_SYSMETA, None, id="instance-mapping"),
        pytest.param(rows(FLAVOR_SYSMETA), None, id="instance-rows"),
        pytest.param(None, FLAVOR_SYSMETA, id="argument-mapping"),
        pytest.param(None, rows(FLAVOR_SYSMETA), id="argument-rows"),
        pytest.param({"instance_type_name": "stale"}, FLAVOR_SYSMETA, id="arg-wins"),
    ],
)
def test_flavor_falls_back_to_system_metadata(on_instance, argument):
    instance = {"uuid": UUID, "system_metadata": on_instance}
    body = info_from_instance({}, instance, None, argument)
    assert {key: body[key] for key in TINY} == TINY
    assert body["image_meta"] == {"min_ram": "64"}


def test_flavor_wins_over_system_metadata(env):
    instance = instance_fields(system_metadata=FLAVOR_SYSMETA)
    body = info_from_instance({}, instance, None, None)
    assert body["instance_type"] == "m1.small"
    assert (body["instance_type_id"], body["disk_gb"]) == (5, 25)


def test_metadata_given_as_rows():
    instance = {"uuid": UUID, "metadata": rows({"role": "web", "tier": "front"})}
    body = info_from_instance({}, instance, None, None)
    assert body["metadata"] == {"role": "web", "tier": "front"}


@pytest.mark.parametrize(
    ("endpoint", "image_ref", "url"),
    [
        ("http://127.0.0.1:9292", IMAGE, f"http://127.0.0.1:9292/images/{IMAGE}"),
        (
            "https://img.example.org/v2/",
            IMAGE,
            f"https://img.example.org/v2/images/{IMAGE}",
        ),
        (ENDPOINT, None, ""),
    ],
)
def test_image_ref_url_uses_the_configured_endpoint(fake_env, endpoint, image_ref, url):
    fake_env.override("image_endpoint", endpoint, group="notifications")
    body = info_from_instance({}, {"uuid": UUID, "image_ref": image_ref}, None, None)
    assert body["image_ref_url"] == url


def test_keyword_arguments_are_applied_last(env):
    body = info_from_instance(
        {}, instance_fields(), None, None, state="shelved", image_name="cirros"
    )
    assert body == {**EXPECTED, "state": "shelved", "image_name": "cirros"}


@pytest.mark.parametrize(
    ("metadata", "on_the_wire"),
    [
        (
            {"admin_password": "hunter2", "role": "db"},
            {"admin_password": "***", "role": "db"},
        ),
        ({"auth_token": "gAAAAAB"}, {"auth_token": "***"}),
        ({"note": "password=hunter2"}, {"note": "password=***"}),
    ],
)
def test_secrets_in_metadata_are_masked_on_the_wire(env, metadata, on_the_wire):
    body = info_from_instance({}, instance_fields(metadata=metadata), None, None)
    wire = over_the_wire(env, body)
    assert wire["metadata"] == on_the_wire
    assert "hunter2" not in json.dumps(wire)
