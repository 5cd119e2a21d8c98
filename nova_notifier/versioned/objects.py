"""The versioned payload classes: Nova 34's names, versions and fields.

One class per payload shape, built on oslo.versionedobjects as Nova's
``nova/notifications/objects`` are, so ``obj_to_primitive()`` gives Nova's
wire form (``nova_object.name``, ``.namespace`` = ``nova``, ``.version``,
``.data``; nested objects in the same form). Every field change needs a
version bump; ``tests/test_versioned_objects.py`` holds the fingerprints
(fields and ``SCHEMA``, hashed as Nova's own test hashes them, so they
equal Nova 34's) and fails when one changes without it.

The classes are not put in oslo.versionedobjects' process-wide registry
(where Nova's own classes of the same names would meet them); they are
listed in :data:`OBJECTS`. Filling them from an instance is
:mod:`nova_notifier.versioned.build`'s job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from oslo_versionedobjects import base as ovo_base

from nova_notifier.versioned import _fields as fields

#: class name -> class, every payload class of this module
OBJECTS: dict[str, type[NotificationObject]] = {}

_T = TypeVar("_T", bound="type[NotificationObject]")


def _payload(cls: _T) -> _T:
    """Set the class's fields up (inheriting its bases') and list it."""
    ovo_base.VersionedObjectRegistry.register_if(False)(cls)
    OBJECTS[cls.__name__] = cls
    return cls


class NotificationObject(ovo_base.VersionedObject):
    """A payload object: serialised under ``nova_object.*``, namespace
    ``nova``, without the changed-fields list."""

    OBJ_SERIAL_NAMESPACE = "nova_object"
    OBJ_PROJECT_NAMESPACE = "nova"
    #: payload field -> (source, attribute): where the builder reads it
    SCHEMA: dict[str, tuple[str, str]] = {}
    VERSION = "1.0"
    fields: dict[str, Any] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.obj_reset_changes(recursive=False)

    if TYPE_CHECKING:  # the fields are properties ovo makes at class set-up

        def __getattr__(self, name: str) -> Any: ...

        def __setattr__(self, name: str, value: Any) -> None: ...

    def to_primitive(self) -> dict[str, Any]:
        """The wire form (``nova_object.*`` keys), as ``obj_to_primitive()``
        gives it once the changes are reset (Nova sends no changes list),
        made in one walk without ovo's change tracking (a tenth of its
        cost); a ``ValueError`` when a field of it or of a nested object
        is unset (the message would not be Nova's shape)."""
        return _primitive(self, type(self).__name__)


ovo_base.VersionedObjectRegistry.register_if(False)(NotificationObject)


def _primitive(obj: NotificationObject, path: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, field in obj.fields.items():
        try:
            value = getattr(obj, _ATTR + name)
        except AttributeError:
            raise ValueError(f"{path}.{name} is not set") from None
        if value is None:
            data[name] = None
        elif isinstance(value, NotificationObject):
            data[name] = _primitive(value, f"{path}.{name}")
        elif (
            isinstance(value, list)
            and value
            and isinstance(value[0], NotificationObject)
        ):
            data[name] = [
                _primitive(item, f"{path}.{name}[{index}]")
                for index, item in enumerate(value)
            ]
        else:
            data[name] = field.to_primitive(obj, name, value)
    cls = type(obj)
    return {
        "nova_object.name": cls.__name__,
        "nova_object.namespace": cls.OBJ_PROJECT_NAMESPACE,
        "nova_object.version": cls.VERSION,
        "nova_object.data": data,
    }


# where ovo keeps a field's value on the object
_ATTR = "_obj_"


@_payload
class FlavorPayload(NotificationObject):
    # Version 1.4: Nova 34 (description added in 1.4)
    SCHEMA = {
        "flavorid": ("flavor", "flavorid"),
        "memory_mb": ("flavor", "memory_mb"),
        "vcpus": ("flavor", "vcpus"),
        "root_gb": ("flavor", "root_gb"),
        "ephemeral_gb": ("flavor", "ephemeral_gb"),
        "name": ("flavor", "name"),
        "swap": ("flavor", "swap"),
        "rxtx_factor": ("flavor", "rxtx_factor"),
        "vcpu_weight": ("flavor", "vcpu_weight"),
        "disabled": ("flavor", "disabled"),
        "is_public": ("flavor", "is_public"),
        "extra_specs": ("flavor", "extra_specs"),
        "projects": ("flavor", "projects"),
        "description": ("flavor", "description"),
    }
    VERSION = "1.4"
    fields = {
        "flavorid": fields.StringField(nullable=True),
        "memory_mb": fields.IntegerField(nullable=True),
        "vcpus": fields.IntegerField(nullable=True),
        "root_gb": fields.IntegerField(nullable=True),
        "ephemeral_gb": fields.IntegerField(nullable=True),
        "name": fields.StringField(),
        "swap": fields.IntegerField(),
        "rxtx_factor": fields.FloatField(nullable=True),
        "vcpu_weight": fields.IntegerField(nullable=True),
        "disabled": fields.BooleanField(),
        "is_public": fields.BooleanField(),
        "extra_specs": fields.DictOfStringsField(nullable=True),
        "projects": fields.ListOfStringsField(nullable=True),
        "description": fields.StringField(nullable=True),
    }


@_payload
class ExceptionPayload(NotificationObject):
    # Version 1.1: traceback added
    VERSION = "1.1"
    fields = {
        "module_name": fields.StringField(),
        "function_name": fields.StringField(),
        "exception": fields.StringField(),
        "exception_message": fields.StringField(),
        "traceback": fields.StringField(),
    }


@_payload
class KeypairPayload(NotificationObject):
    SCHEMA = {
        "user_id": ("keypair", "user_id"),
        "name": ("keypair", "name"),
        "public_key": ("keypair", "public_key"),
        "fingerprint": ("keypair", "fingerprint"),
        "type": ("keypair", "type"),
    }
    VERSION = "1.0"
    fields = {
        "user_id": fields.StringField(nullable=True),
        "name": fields.StringField(nullable=False),
        "fingerprint": fields.StringField(nullable=True),
        "public_key": fields.StringField(nullable=True),
        "type": fields.StringField(nullable=False),
    }


@_payload
class IpPayload(NotificationObject):
    VERSION = "1.0"
    fields = {
        "label": fields.StringField(),
        "mac": fields.MACAddressField(),
        "meta": fields.DictOfStringsField(),
        "port_uuid": fields.UUIDField(nullable=True),
        "version": fields.IntegerField(),
        "address": fields.IPV4AndV6AddressField(),
        "device_name": fields.StringField(nullable=True),
    }


@_payload
class AuditPeriodPayload(NotificationObject):
    VERSION = "1.0"
    fields = {
        "audit_period_beginning": fields.DateTimeField(),
        "audit_period_ending": fields.DateTimeField(),
    }


@_payload
class BlockDevicePayload(NotificationObject):
    SCHEMA = {
        "device_name": ("bdm", "device_name"),
        "boot_index": ("bdm", "boot_index"),
        "delete_on_termination": ("bdm", "delete_on_termination"),
        "volume_id": ("bdm", "volume_id"),
        "tag": ("bdm", "tag"),
    }
    VERSION = "1.0"
    fields = {
        "device_name": fields.StringField(nullable=True),
        "boot_index": fields.IntegerField(nullable=True),
        "delete_on_termination": fields.BooleanField(default=False),
        "volume_id": fields.UUIDField(),
        "tag": fields.StringField(nullable=True),
    }


@_payload
class SharePayload(NotificationObject):
    # export_location is left out on purpose: it can hold credentials.
    SCHEMA = {
        "share_mapping_uuid": ("share", "uuid"),
        "share_id": ("share", "share_id"),
        "status": ("share", "status"),
        "tag": ("share", "tag"),
    }
    VERSION = "1.0"
    fields = {
        "share_mapping_uuid": fields.UUIDField(),
        "share_id": fields.UUIDField(),
        "status": fields.StringField(nullable=False),
        "tag": fields.StringField(nullable=False),
    }


@_payload
class InstanceStateUpdatePayload(NotificationObject):
    VERSION = "1.0"
    fields = {
        "old_state": fields.StringField(nullable=True),
        "state": fields.StringField(nullable=True),
        "old_task_state": fields.StringField(nullable=True),
        "new_task_state": fields.StringField(nullable=True),
    }


@_payload
class InstancePayload(NotificationObject):
    # Version 1.9: shares added (Nova 34)
    SCHEMA = {
        "uuid": ("instance", "uuid"),
        "user_id": ("instance", "user_id"),
        "tenant_id": ("instance", "project_id"),
        "reservation_id": ("instance", "reservation_id"),
        "display_name": ("instance", "display_name"),
        "display_description": ("instance", "display_description"),
        "host_name": ("instance", "hostname"),
        "host": ("instance", "host"),
        "node": ("instance", "node"),
        "os_type": ("instance", "os_type"),
        "architecture": ("instance", "architecture"),
        "availability_zone": ("instance", "availability_zone"),
        "image_uuid": ("instance", "image_ref"),
        "key_name": ("instance", "key_name"),
        "kernel_id": ("instance", "kernel_id"),
        "ramdisk_id": ("instance", "ramdisk_id"),
        "created_at": ("instance", "created_at"),
        "launched_at": ("instance", "launched_at"),
        "terminated_at": ("instance", "terminated_at"),
        "deleted_at": ("instance", "deleted_at"),
        "updated_at": ("instance", "updated_at"),
        "state": ("instance", "vm_state"),
        "power_state": ("instance", "power_state"),
        "task_state": ("instance", "task_state"),
        "progress": ("instance", "progress"),
        "metadata": ("instance", "metadata"),
        "locked": ("instance", "locked"),
        "auto_disk_config": ("instance", "auto_disk_config"),
    }
    VERSION = "1.9"
    fields = {
        "uuid": fields.UUIDField(),
        "user_id": fields.StringField(nullable=True),
        "tenant_id": fields.StringField(nullable=True),
        "reservation_id": fields.StringField(nullable=True),
        "display_name": fields.StringField(nullable=True),
        "display_description": fields.StringField(nullable=True),
        "host_name": fields.StringField(nullable=True),
        "host": fields.StringField(nullable=True),
        "node": fields.StringField(nullable=True),
        "os_type": fields.StringField(nullable=True),
        "architecture": fields.StringField(nullable=True),
        "availability_zone": fields.StringField(nullable=True),
        "flavor": fields.ObjectField("FlavorPayload"),
        "image_uuid": fields.StringField(nullable=True),
        "key_name": fields.StringField(nullable=True),
        "kernel_id": fields.StringField(nullable=True),
        "ramdisk_id": fields.StringField(nullable=True),
        "created_at": fields.DateTimeField(nullable=True),
        "launched_at": fields.DateTimeField(nullable=True),
        "terminated_at": fields.DateTimeField(nullable=True),
        "deleted_at": fields.DateTimeField(nullable=True),
        "updated_at": fields.DateTimeField(nullable=True),
        "state": fields.InstanceStateField(nullable=True),
        "power_state": fields.InstancePowerStateField(nullable=True),
        "task_state": fields.InstanceTaskStateField(nullable=True),
        "progress": fields.IntegerField(nullable=True),
        "ip_addresses": fields.ListOfObjectsField("IpPayload"),
        "block_devices": fields.ListOfObjectsField("BlockDevicePayload", nullable=True),
        "metadata": fields.DictOfStringsField(),
        "locked": fields.BooleanField(),
        "auto_disk_config": fields.DiskConfigField(),
        "request_id": fields.StringField(nullable=True),
        "action_initiator_user": fields.StringField(nullable=True),
        "action_initiator_project": fields.StringField(nullable=True),
        "locked_reason": fields.StringField(nullable=True),
        "shares": fields.ListOfObjectsField("SharePayload", nullable=True),
    }


@_payload
class InstanceActionPayload(InstancePayload):
    # Version 1.9: shares added to InstancePayload (Nova 34)
    VERSION = "1.9"
    fields = {
        "fault": fields.ObjectField("ExceptionPayload", nullable=True),
        "request_id": fields.StringField(nullable=True),
    }


@_payload
class InstanceActionVolumePayload(InstanceActionPayload):
    VERSION = "1.7"
    fields = {"volume_id": fields.UUIDField()}


@_payload
class InstanceCreatePayload(InstanceActionPayload):
    VERSION = "1.13"
    fields = {
        "keypairs": fields.ListOfObjectsField("KeypairPayload"),
        "tags": fields.ListOfStringsField(),
        "trusted_image_certificates": fields.ListOfStringsField(nullable=True),
        "instance_name": fields.StringField(nullable=True),
    }


@_payload
class InstanceActionResizePrepPayload(InstanceActionPayload):
    VERSION = "1.4"
    fields = {"new_flavor": fields.ObjectField("FlavorPayload", nullable=True)}


@_payload
class InstanceUpdatePayload(InstancePayload):
    # Version 2.1: shares added to InstancePayload (2.0 removed bandwidth)
    VERSION = "2.1"
    fields = {
        "state_update": fields.ObjectField("InstanceStateUpdatePayload"),
        "audit_period": fields.ObjectField("AuditPeriodPayload"),
        "old_display_name": fields.StringField(nullable=True),
        "tags": fields.ListOfStringsField(),
    }


@_payload
class InstanceActionRescuePayload(InstanceActionPayload):
    VERSION = "1.4"
    fields = {"rescue_image_ref": fields.UUIDField(nullable=True)}


@_payload
class InstanceActionRebuildPayload(InstanceActionPayload):
    VERSION = "1.10"
    fields = {
        "trusted_image_certificates": fields.ListOfStringsField(nullable=True),
    }


@_payload
class InstanceActionSnapshotPayload(InstanceActionPayload):
    VERSION = "1.10"
    fields = {"snapshot_image_id": fields.UUIDField()}


@_payload
class InstanceExistsPayload(InstancePayload):
    # Version 2.1: shares added to InstancePayload (2.0 removed bandwidth)
    VERSION = "2.1"
    fields = {"audit_period": fields.ObjectField("AuditPeriodPayload")}
