"""Field types of the versioned payloads, as Nova 34 defines them.

Each enum carries Nova's class name and values: an object's fingerprint
(oslo.versionedobjects' ``ObjectVersionChecker``) is made of its fields'
type names and values, so these keep the payload classes' fingerprints
equal to Nova's own. ``UUID`` refuses what is not a UUID (oslo's only
warns), as Nova's tests do.
"""

from __future__ import annotations

import uuid
from typing import Any

from oslo_versionedobjects import fields

BooleanField = fields.BooleanField
DateTimeField = fields.DateTimeField
DictOfStringsField = fields.DictOfStringsField
FloatField = fields.FloatField
IntegerField = fields.IntegerField
IPV4AndV6AddressField = fields.IPV4AndV6AddressField
ListOfObjectsField = fields.ListOfObjectsField
ListOfStringsField = fields.ListOfStringsField
MACAddressField = fields.MACAddressField
ObjectField = fields.ObjectField
StringField = fields.StringField


class UUID(fields.UUID):
    """A UUID as text; anything else is a ``ValueError``."""

    def coerce(self, obj: Any, attr: str, value: Any) -> str:
        uuid.UUID(str(value))
        return str(value)


class UUIDField(fields.AutoTypedField):
    AUTO_TYPE = UUID()


class _Enum(fields.Enum):
    ALL: tuple[str, ...] = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(valid_values=type(self).ALL, **kwargs)


class InstanceState(_Enum):
    """``vm_state`` values (``nova_notifier.vm_states``)."""

    ALL = (
        "active",
        "building",
        "paused",
        "suspended",
        "stopped",
        "rescued",
        "resized",
        "soft-delete",
        "deleted",
        "error",
        "shelved",
        "shelved_offloaded",
    )


class InstanceTaskState(_Enum):
    """``task_state`` values (``nova_notifier.task_states``)."""

    ALL = (
        "scheduling",
        "block_device_mapping",
        "networking",
        "spawning",
        "image_snapshot",
        "image_snapshot_pending",
        "image_pending_upload",
        "image_uploading",
        "image_backup",
        "updating_password",
        "resize_prep",
        "resize_migrating",
        "resize_migrated",
        "resize_finish",
        "resize_reverting",
        "resize_confirming",
        "rebooting",
        "reboot_pending",
        "reboot_started",
        "rebooting_hard",
        "reboot_pending_hard",
        "reboot_started_hard",
        "pausing",
        "unpausing",
        "suspending",
        "resuming",
        "powering-off",
        "powering-on",
        "rescuing",
        "unrescuing",
        "rebuilding",
        "rebuild_block_device_mapping",
        "rebuild_spawning",
        "migrating",
        "deleting",
        "soft-deleting",
        "restoring",
        "shelving",
        "shelving_image_pending_upload",
        "shelving_image_uploading",
        "shelving_offloading",
        "unshelving",
    )


class InstancePowerState(fields.Enum):
    """Power state names; Nova's integer power states (0-7) are read as
    their names."""

    ALL = (
        "pending",
        "running",
        "_unused",
        "paused",
        "shutdown",
        "_unused",
        "crashed",
        "suspended",
    )

    def __init__(self) -> None:
        super().__init__(valid_values=InstancePowerState.ALL)

    def coerce(self, obj: Any, attr: str, value: Any) -> str:
        if type(value) is not bool:
            try:
                value = self.ALL[int(value)] if int(value) >= 0 else value
            except (ValueError, TypeError, IndexError):
                pass
        return str(super().coerce(obj, attr, value))


class DiskConfig(_Enum):
    """``auto_disk_config``: ``AUTO`` when the instance's flag is true."""

    ALL = ("MANUAL", "AUTO")

    def coerce(self, obj: Any, attr: str, value: Any) -> str:
        return str(super().coerce(obj, attr, "AUTO" if value else "MANUAL"))


class InstanceStateField(fields.BaseEnumField):
    AUTO_TYPE = InstanceState()


class InstanceTaskStateField(fields.BaseEnumField):
    AUTO_TYPE = InstanceTaskState()


class InstancePowerStateField(fields.BaseEnumField):
    AUTO_TYPE = InstancePowerState()


class DiskConfigField(fields.BaseEnumField):
    AUTO_TYPE = DiskConfig()
