"""Fill the versioned payload classes from what the helpers are given.

The instance is the same mapping or attribute object the legacy payload
builder reads (:mod:`nova_notifier.payload`): each class's ``SCHEMA`` names
the attribute a field comes from, as in Nova. Values are checked by the
fields' types (a vm_state Nova does not know, a uuid that is not one...):
the builder raises ``ValueError`` and the caller counts a drop. Free-form
values (metadata, flavor extra specs, exception text) are screened for
secrets as in the legacy payloads.
"""

from __future__ import annotations

import datetime
import inspect
import traceback as tb
from collections.abc import Iterable, Mapping
from typing import Any

from nova_notifier import payload as legacy
from nova_notifier.serializer import clean_text, screened, to_wire
from nova_notifier.versioned import objects

_FLAVOR_DEFAULTS = {
    "swap": 0,
    "rxtx_factor": 1.0,
    "vcpu_weight": 0,
    "disabled": False,
    "is_public": True,
}
# FlavorPayload field -> system_metadata key: where a legacy instance
# without a flavor object keeps its flavor.
_FLAVOR_SYSMETA = {
    "name": "instance_type_name",
    "flavorid": "instance_type_flavorid",
    "memory_mb": "instance_type_memory_mb",
    "vcpus": "instance_type_vcpus",
    "root_gb": "instance_type_root_gb",
    "ephemeral_gb": "instance_type_ephemeral_gb",
}
_EMPTY_IS_NONE = frozenset(
    (
        "created_at",
        "launched_at",
        "terminated_at",
        "deleted_at",
        "updated_at",
        "state",
        "task_state",
        "power_state",
        "progress",
    )
)


def _get(obj: Any, name: str) -> Any:
    return legacy.get_field(obj, name, None)


def _text_dict(value: Any) -> dict[str, str]:
    """A mapping as text keys and text values, secrets masked."""
    wire = screened(legacy._as_dict(value))
    return {
        str(key): item if type(item) is str else str(to_wire(item))
        for key, item in wire.items()
    }


# instance fields the builder sets itself, after _populate
_SET_BY_BUILDER = frozenset(("metadata", "locked", "auto_disk_config"))


def _populate(obj: objects.NotificationObject, sources: Mapping[str, Any]) -> None:
    for field, (source, attribute) in obj.SCHEMA.items():
        if field in _SET_BY_BUILDER and source == "instance":
            continue
        value = _get(sources[source], attribute)
        if field in _EMPTY_IS_NONE and type(value) is str and value == "":
            value = None
        elif isinstance(value, datetime.datetime):
            value = _utc(value)
        if value is None and not obj.fields[field].nullable:
            continue  # left unset: the caller fills it in
        setattr(obj, field, value)


def _value(obj: objects.NotificationObject, field: str) -> Any:
    """The field's value, None while unset."""
    return getattr(obj, field) if obj.obj_attr_is_set(field) else None


def flavor_payload(
    flavor: Any, system_metadata: Mapping[str, Any] | None = None
) -> Any:
    """A ``FlavorPayload`` of a flavor (mapping or object); fields it lacks
    come from the legacy ``instance_type_*`` system metadata, then Nova's
    flavor defaults. ``projects`` is null unless the flavor carries it."""
    result = objects.FlavorPayload()
    _populate(result, {"flavor": flavor})
    sysmeta = system_metadata or {}
    for field, key in _FLAVOR_SYSMETA.items():
        if _value(result, field) is None and sysmeta.get(key) not in (None, ""):
            setattr(result, field, sysmeta[key])
    for field, value in _FLAVOR_DEFAULTS.items():
        if _value(result, field) is None:
            setattr(result, field, value)
    if _value(result, "name") is None:
        result.name = ""
    if _value(result, "extra_specs") is not None:
        result.extra_specs = _text_dict(result.extra_specs)
    return result


def exception_payload(fault: BaseException) -> Any:
    """An ``ExceptionPayload``: class, message, module and function where it
    was raised, traceback; message and traceback with secrets masked."""
    trace = fault.__traceback__
    module_name, function_name = "unknown", "unknown"
    if trace is not None:
        while trace.tb_next is not None:
            trace = trace.tb_next
        module = inspect.getmodule(trace.tb_frame)
        module_name = module.__name__ if module else "unknown"
        function_name = trace.tb_frame.f_code.co_name
    message = _message(fault)
    return objects.ExceptionPayload(
        module_name=module_name,
        function_name=function_name,
        exception=type(fault).__name__,
        exception_message=message,
        traceback=_traceback(fault, message),
    )


def _message(fault: BaseException) -> str:
    """The exception's message by the legacy payloads' rule: its own
    ``format_message()`` (secrets masked) when it has one, else its class
    name. Nova sends ``str(fault)``, which can carry credentials that no
    pattern recognises."""
    return legacy.formatted_message(fault) or type(fault).__name__


def _traceback(fault: BaseException, message: str) -> str:
    """Nova's traceback text (its lines joined with ``,``), with the frames'
    places only: no source lines (they can hold literals) and the message
    :func:`_message` gives instead of ``str()``."""
    frames = [
        f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n'
        for frame in tb.extract_tb(fault.__traceback__)
    ]
    head = ["Traceback (most recent call last):\n"] if frames else []
    last = f"{type(fault).__name__}: {message}\n"
    return clean_text(",".join([*head, *frames, last]))


def _ip_addresses(network_info: Iterable[Any] | None) -> list[Any]:
    found = []
    for vif in network_info or ():
        network = _get(vif, "network") or {}
        for subnet in _get(network, "subnets") or ():
            for ip in _get(subnet, "ips") or ():
                if (_get(ip, "type") or "fixed") != "fixed":
                    continue
                found.append(
                    objects.IpPayload(
                        label=_get(network, "label") or "",
                        mac=_get(vif, "address"),
                        meta=_text_dict(_get(vif, "meta")),
                        port_uuid=_get(vif, "id"),
                        version=_get(ip, "version"),
                        address=_get(ip, "address"),
                        device_name=_get(vif, "devname"),
                    )
                )
    return found


def _network_info(instance: Any) -> Any:
    cache = _get(instance, "info_cache")
    return _get(cache, "network_info") if cache is not None else None


def _block_devices(bdms: Iterable[Any]) -> list[Any]:
    devices = []
    for bdm in bdms:
        if _get(bdm, "volume_id") is None:
            continue
        device = objects.BlockDevicePayload()
        _populate(device, {"bdm": bdm})
        if _value(device, "delete_on_termination") is None:
            device.delete_on_termination = False
        devices.append(device)
    return devices


def _shares(shares: Iterable[Any]) -> list[Any]:
    """SharePayloads of the instance's share mappings (never their
    export_location, which can hold credentials)."""
    found = []
    for share in _get(shares, "objects") or shares:
        item = objects.SharePayload()
        _populate(item, {"share": share})
        found.append(item)
    return found


def _keypairs(instance: Any) -> list[Any]:
    keypairs = _get(instance, "keypairs") or ()
    keypairs = _get(keypairs, "objects") or keypairs
    found = []
    for keypair in keypairs:
        item = objects.KeypairPayload()
        _populate(item, {"keypair": keypair})
        if _value(item, "type") is None:
            item.type = "ssh"
        found.append(item)
    return found


def _tags(instance: Any) -> list[str]:
    tags = _get(instance, "tags") or ()
    tags = _get(tags, "objects") or tags
    return [
        tag if isinstance(tag, str) else str(_get(tag, "tag") or tag) for tag in tags
    ]


def _trusted_certs(instance: Any) -> list[str] | None:
    certs = _get(instance, "trusted_certs")
    if not certs:
        return None
    ids = _get(certs, "ids") if not isinstance(certs, (list, tuple)) else certs
    return [str(item) for item in ids] if ids else None


def _context_value(context: Any, *names: str) -> Any:
    for name in names:
        value = _get(context, name)
        if value is not None:
            return value
    return None


def instance_payload(
    cls: type[objects.InstancePayload],
    context: Any,
    instance: Any,
    *,
    network_info: Iterable[Any] | None = None,
    system_metadata: Mapping[str, Any] | None = None,
    bdms: Iterable[Any] | None = None,
    bdms_in_notifications: bool = False,
    **fields: Any,
) -> Any:
    """``cls`` (InstancePayload or a subclass) about ``instance``.

    ``network_info`` defaults to the instance's ``info_cache``;
    ``block_devices`` are ``bdms`` when given, else (with
    ``bdms_in_notifications``) the instance's ``block_device_mapping``,
    else null; ``shares`` the instance's ``shares`` (share mappings), null
    when it has none. ``fields`` sets the subclass's own fields.
    """
    sysmeta = legacy.system_metadata_dict(instance, system_metadata)
    result = cls()
    _populate(result, {"instance": instance})
    if not _get(instance, "uuid"):
        raise ValueError("instance has no uuid")
    result.metadata = _text_dict(_get(instance, "metadata"))
    result.locked = bool(_get(instance, "locked"))
    result.auto_disk_config = bool(_get(instance, "auto_disk_config"))
    result.flavor = flavor_payload(_get(instance, "flavor"), sysmeta)
    result.ip_addresses = _ip_addresses(
        _network_info(instance) if network_info is None else network_info
    )
    if bdms is not None:
        result.block_devices = _block_devices(bdms)
    elif bdms_in_notifications:
        result.block_devices = _block_devices(
            _get(instance, "block_device_mapping") or ()
        )
    else:
        result.block_devices = None
    shares = _get(instance, "shares")
    result.shares = None if shares is None else _shares(shares)
    user = _context_value(context, "user_id", "user")
    project = _context_value(context, "project_id", "tenant")
    request_id = _get(context, "request_id")
    result.request_id = request_id if user and project else None
    result.action_initiator_user = user
    result.action_initiator_project = project
    reason = sysmeta.get("locked_reason")
    result.locked_reason = None if reason is None else str(reason)
    if issubclass(cls, objects.InstanceActionPayload) and "fault" not in fields:
        result.fault = None
    if issubclass(cls, objects.InstanceCreatePayload):
        result.keypairs = _keypairs(instance)
        result.tags = _tags(instance)
        result.trusted_image_certificates = _trusted_certs(instance)
        result.instance_name = _get(instance, "name")
    elif issubclass(cls, objects.InstanceUpdatePayload):
        result.tags = _tags(instance)
    elif issubclass(cls, objects.InstanceActionRebuildPayload):
        result.trusted_image_certificates = _trusted_certs(instance)
    for name, value in fields.items():
        setattr(result, name, value)
    return result


def audit_period(beginning: Any, ending: Any) -> Any:
    """An ``AuditPeriodPayload`` (datetimes, or text such as the legacy
    payloads carry)."""
    return objects.AuditPeriodPayload(
        audit_period_beginning=_utc(beginning), audit_period_ending=_utc(ending)
    )


def _utc(value: Any) -> Any:
    """A datetime in UTC (naive ones are taken as UTC), so it goes out as
    ``...Z``; anything else as it is."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=datetime.timezone.utc)
        return value.astimezone(datetime.timezone.utc)
    return value
