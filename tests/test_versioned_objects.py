"""The versioned payload classes keep Nova 34's fingerprints.

A fingerprint hashes a class's fields (type, default, nullable, enum
values) and its ``SCHEMA``, the way Nova's own object test hashes them
(``nova/tests/unit/notifications/objects/test_notification.py``). The
values below are Nova 34.0.0's: a field changed here without a version
bump (or a version bumped without Nova) fails this test.
"""

from __future__ import annotations

import pytest
from oslo_versionedobjects import fixture

from nova_notifier.versioned import _fields as fields
from nova_notifier.versioned import objects

# Nova 34.0.0's fingerprints of the same classes.
NOVA_34 = {
    "AuditPeriodPayload": "1.0-b79111d626d565760b48338ec46c3d1b",
    "BlockDevicePayload": "1.0-771249c2e54ccd127c90cf3071af6b1e",
    "ExceptionPayload": "1.1-34f006107693b8c9eaf4b104157d21b4",
    "FlavorPayload": "1.4-029909d2dab5c08b5b854f2d42fe1abe",
    "InstanceActionPayload": "1.9-525dcf81b6e4592d935712a2675309dc",
    "InstanceActionRebuildPayload": "1.10-b741a7add29a8c1f584fd5d5b3362372",
    "InstanceActionRescuePayload": "1.4-29e0327c2ad6953d367db68d9aceef20",
    "InstanceActionResizePrepPayload": "1.4-214cb6123beb0ffe5eb1e08ce424086b",
    "InstanceActionSnapshotPayload": "1.10-7a4878ef67da0939ee069bb78eab07ae",
    "InstanceActionVolumePayload": "1.7-542d9e1485c6b925958df9912dc744ec",
    "InstanceCreatePayload": "1.13-95a394da335944f074ac1bf58696ad87",
    "InstanceExistsPayload": "2.1-264c20f9c5d76320c9129865b9bc6f8f",
    "InstancePayload": "1.9-164048a4d38ed9a4b2f9c3927f1c9038",
    "InstanceStateUpdatePayload": "1.0-9d136730749479042d47f2a08c2c2e69",
    "InstanceUpdatePayload": "2.1-25c1e9c521bd350c20cbda94b7cc7dc0",
    "IpPayload": "1.0-a9f0b3f1ef17ab12378096816faa4e55",
    "KeypairPayload": "1.0-84f5e6da739af31ea10b89858c67b512",
    "SharePayload": "1.0-80797287e01668692ee9beb70f269821",
}


def _schema(cls):
    return (sorted(cls.SCHEMA.items()),)


def _hashes(classes):
    checker = fixture.ObjectVersionChecker({n: [c] for n, c in classes.items()})
    return checker.get_hashes(extra_data_func=_schema)


def test_every_payload_class_has_nova_34s_fingerprint():
    assert _hashes(objects.OBJECTS) == NOVA_34


def test_a_field_change_without_a_bump_changes_the_fingerprint():
    class InstanceStateUpdatePayload(objects.NotificationObject):
        VERSION = "1.0"
        fields = dict(
            objects.InstanceStateUpdatePayload.fields,
            new_state=fields.StringField(nullable=True),
        )

    objects.ovo_base.VersionedObjectRegistry.register_if(False)(
        InstanceStateUpdatePayload
    )
    changed = _hashes({"InstanceStateUpdatePayload": InstanceStateUpdatePayload})
    assert changed["InstanceStateUpdatePayload"].startswith("1.0-")
    assert (
        changed["InstanceStateUpdatePayload"] != NOVA_34["InstanceStateUpdatePayload"]
    )


def test_a_nullable_flip_changes_the_fingerprint():
    class KeypairPayload(objects.NotificationObject):
        VERSION = "1.0"
        SCHEMA = objects.KeypairPayload.SCHEMA
        fields = dict(
            objects.KeypairPayload.fields, name=fields.StringField(nullable=True)
        )

    objects.ovo_base.VersionedObjectRegistry.register_if(False)(KeypairPayload)
    assert (
        _hashes({"KeypairPayload": KeypairPayload})["KeypairPayload"]
        != (NOVA_34["KeypairPayload"])
    )


def test_the_classes_stay_out_of_ovos_process_wide_registry():
    # Nova's classes of the same names may live in the same process.
    registered = objects.ovo_base.VersionedObjectRegistry.obj_classes()
    for name, cls in objects.OBJECTS.items():
        assert cls not in registered.get(name, [])


def test_primitive_is_novas_wire_form():
    update = objects.InstanceStateUpdatePayload(
        old_state="building", state="active", old_task_state=None, new_task_state=None
    )
    assert update.to_primitive() == {
        "nova_object.name": "InstanceStateUpdatePayload",
        "nova_object.namespace": "nova",
        "nova_object.version": "1.0",
        "nova_object.data": {
            "old_state": "building",
            "state": "active",
            "old_task_state": None,
            "new_task_state": None,
        },
    }


@pytest.mark.parametrize(
    ("value", "wire"),
    [(1, "running"), ("1", "running"), (4, "shutdown"), ("paused", "paused")],
)
def test_power_state_integers_read_as_their_names(value, wire):
    assert fields.InstancePowerState().coerce(None, "power_state", value) == wire


@pytest.mark.parametrize("value", [9, -1, "on", True])
def test_power_state_refuses_what_nova_refuses(value):
    with pytest.raises(ValueError):
        fields.InstancePowerState().coerce(None, "power_state", value)


@pytest.mark.parametrize(
    ("flag", "wire"), [(True, "AUTO"), (False, "MANUAL"), (None, "MANUAL")]
)
def test_auto_disk_config_is_auto_or_manual(flag, wire):
    assert fields.DiskConfig().coerce(None, "auto_disk_config", flag) == wire


def test_uuid_fields_refuse_what_is_not_a_uuid():
    good = "178b0921-8f85-4257-88b6-2e743b5a975c"
    assert fields.UUID().coerce(None, "uuid", good) == good
    with pytest.raises(ValueError):
        fields.UUID().coerce(None, "uuid", "my-instance")


def _built(cls):
    import datetime

    from nova_notifier.versioned import build

    instance = {
        "uuid": "178b0921-8f85-4257-88b6-2e743b5a975c",
        "vm_state": "active",
        "power_state": 1,
        "created_at": datetime.datetime(2012, 10, 29, 13, 42, 11),
        "flavor": {"name": "m1.tiny", "memory_mb": 512, "extra_specs": {"a": "b"}},
        "keypairs": [{"name": "k", "type": "ssh", "public_key": "ssh-rsa A"}],
        "tags": ["t"],
        "block_device_mapping": [{"volume_id": "a07f71dc-8151-4e7d-a0cc-cd24a3f11113"}],
        "info_cache": {
            "network_info": [
                {
                    "id": "ce531f90-199f-48c0-816c-13e38010b442",
                    "address": "fa:16:3e:4c:2c:30",
                    "network": {
                        "label": "private",
                        "subnets": [{"ips": [{"address": "10.0.0.3", "version": 4}]}],
                    },
                }
            ]
        },
    }
    return build.instance_payload(
        cls, {"user_id": "u", "project_id": "p"}, instance, bdms_in_notifications=True
    )


@pytest.mark.parametrize(
    "cls", [objects.InstanceCreatePayload, objects.InstanceActionPayload]
)
def test_to_primitive_is_ovos_primitive_without_changes(cls):
    payload = _built(cls)
    ours = payload.to_primitive()
    payload.obj_reset_changes(recursive=True)
    assert ours == payload.obj_to_primitive()
    assert (
        ours["nova_object.data"]["ip_addresses"][0]["nova_object.data"]["address"]
        == "10.0.0.3"
    )


def test_an_unset_field_is_refused_with_its_path():
    payload = _built(objects.InstanceCreatePayload)
    del payload.keypairs[0]._obj_name  # what ovo sets for the field
    with pytest.raises(ValueError, match=r"InstanceCreatePayload.keypairs\[0\].name"):
        payload.to_primitive()
