"""The payload builder: Nova's legacy instance payload and fault details.

One place turns an instance (a mapping, or an object with attributes such as a
Nova ``Instance``) into payload fields. Reads ``[notifications]
image_endpoint`` (the base of ``image_ref_url``) from the settings snapshot.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from nova_notifier import lifecycle
from nova_notifier.exceptions import InvalidInstanceError, NotInitializedError
from nova_notifier.serializer import (
    WirePayload,
    clean_text,
    format_time,
    mask_text,
    placeholder,
    screened,
    screened_image_meta,
    to_wire,
)

MAX_FAULT_MESSAGE = 255

# payload field -> (flavor attribute, system_metadata key)
_FLAVOR_FIELDS = {
    "instance_type": ("name", "instance_type_name"),
    "instance_flavor_id": ("flavorid", "instance_type_flavorid"),
    "instance_type_id": ("id", "instance_type_id"),
    "memory_mb": ("memory_mb", "instance_type_memory_mb"),
    "vcpus": ("vcpus", "instance_type_vcpus"),
    "root_gb": ("root_gb", "instance_type_root_gb"),
    "ephemeral_gb": ("ephemeral_gb", "instance_type_ephemeral_gb"),
}
_TEXT_FLAVOR_FIELDS = ("instance_type", "instance_flavor_id")

_AS_IS_FIELDS = (
    "display_name",
    "reservation_id",
    "hostname",
    "host",
    "node",
    "availability_zone",
    "architecture",
    "os_type",
    "kernel_id",
    "ramdisk_id",
)


def get_field(obj: Any, name: str, default: Any = None) -> Any:
    """``obj[name]`` or ``obj.name``; ``default`` when absent or unloadable."""
    if obj is None:
        return default
    try:
        if type(obj) is dict or isinstance(obj, Mapping):  # dict first: ABCs are slow
            value = obj.get(name, default)
        else:
            value = getattr(obj, name, default)
    except Exception:  # lazy-loading objects raise their own errors
        value = default
    return default if value is None else value


def _text(value: Any) -> str:
    """A field the payload carries as text: its faithful text, '' when unset."""
    if type(value) is str:
        return value if value.isascii() else clean_text(value)
    if value is None:
        return ""
    wire = to_wire(value)
    if isinstance(wire, str):
        return wire
    if isinstance(wire, (int, float)):
        return str(wire)
    return placeholder(value)


def _time(value: Any) -> str:
    if value is None or (type(value) is str and value == ""):
        return ""
    if isinstance(value, datetime.datetime):
        return format_time(value)
    return _text(value)


def _number(value: Any) -> int:
    if value is None or (type(value) is str and value == ""):
        return 0
    try:
        return int(value)
    except Exception:  # text, NaN, infinity, an object that refuses
        return 0


def system_metadata_dict(instance: Any, system_metadata: Any = None) -> dict[str, Any]:
    """The instance's system metadata as a dict.

    ``system_metadata`` wins when given; rows of ``{"key": k, "value": v}``
    (Nova's database form) are accepted as well as a mapping.
    """
    source = (
        get_field(instance, "system_metadata", None)
        if system_metadata is None
        else system_metadata
    )
    return _key_value_dict(source)


def _key_value_dict(source: Any) -> dict[str, Any]:
    """A mapping, or rows of ``{"key": k, "value": v}``, as a dict ({} when
    it is neither or cannot be read)."""
    try:
        if not source:
            return {}
        if isinstance(source, Mapping):
            return dict(source)
        if isinstance(source, (str, bytes)):
            return {}
        return {get_field(row, "key"): get_field(row, "value") for row in source}
    except Exception:
        return {}


def image_meta(system_metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """System metadata keys that start with ``image_``, with the prefix removed."""
    if not system_metadata:
        return {}
    return {
        key[6:]: value
        for key, value in system_metadata.items()
        if isinstance(key, str) and key.startswith("image_")
    }


def image_ref_url(image_ref: Any) -> str:
    """``<image_endpoint>/images/<image_ref>`` ('' when there is no image)."""
    if not image_ref:
        return ""
    base = lifecycle.settings("info_from_instance()").image_base
    return f"{base}/images/{_text(image_ref)}"


def _flavor_values(instance: Any, sysmeta: Mapping[str, Any]) -> dict[str, Any]:
    flavor = get_field(instance, "flavor", None)
    values: dict[str, Any] = {}
    for field, (attr, sys_key) in _FLAVOR_FIELDS.items():
        value = get_field(flavor, attr, None)
        if value is None:
            value = sysmeta.get(sys_key)
        if value is None and field != "instance_type":
            value = get_field(instance, field, None)
        if field in _TEXT_FLAVOR_FIELDS:
            values[field] = _text(value)
        elif field == "instance_type_id":
            values[field] = _flavor_db_id(value)
        else:
            values[field] = _number(value)
    return values


def _flavor_db_id(value: Any) -> Any:
    """The flavor's database id: an integer, also when it comes from system
    metadata (where Nova stores it as text); '' when unknown."""
    if value is None or (type(value) is str and value == ""):
        return ""
    try:
        return int(value)
    except Exception:  # text, NaN, infinity, an object that refuses
        return _text(value)


def _fixed_ips(network_info: Iterable[Any]) -> list[dict[str, Any]]:
    fixed_ips = []
    for vif in network_info:
        network = get_field(vif, "network", None) or {}
        label = get_field(network, "label", "")
        mac = get_field(vif, "address", "")
        for subnet in get_field(network, "subnets", None) or []:
            for ip in get_field(subnet, "ips", None) or []:
                if get_field(ip, "type", "fixed") != "fixed":
                    continue
                entry = {
                    "address": get_field(ip, "address", ""),
                    "type": get_field(ip, "type", "fixed"),
                    "version": get_field(ip, "version", None),
                    "meta": dict(get_field(ip, "meta", None) or {}),
                    "floating_ips": [
                        dict(fip) if isinstance(fip, Mapping) else {"address": str(fip)}
                        for fip in get_field(ip, "floating_ips", None) or []
                    ],
                    "label": label,
                    "vif_mac": mac,
                }
                fixed_ips.append(entry)
    return fixed_ips


def _getter(obj: Any) -> Any:
    """``get(name)``: ``obj[name]`` or ``obj.name``, None when absent or
    unloadable (a dict's own ``get`` when ``obj`` is a dict)."""
    if type(obj) is dict:
        return obj.get
    if obj is None:
        return _nothing
    if isinstance(obj, Mapping):

        def get(name: str) -> Any:
            try:
                return obj.get(name)
            except Exception:  # a mapping that refuses
                return None

    else:

        def get(name: str) -> Any:
            try:
                return getattr(obj, name, None)
            except Exception:  # lazy-loading objects raise their own errors
                return None

    return get


def _nothing(name: str) -> None:
    return None


def _as_dict(source: Any) -> Any:
    """A dict to read (not to keep): ``source`` itself when it is one."""
    return source if type(source) is dict else _key_value_dict(source)


def build_instance_info(
    instance: Any,
    network_info: Iterable[Any] | None,
    system_metadata: Mapping[str, Any] | None,
    image_base: str | None,
) -> WirePayload:
    """The legacy instance payload, built in one pass over ``instance``.

    A pure function of its arguments (``image_base`` is the
    ``image_endpoint`` setting without its trailing ``/``, None before
    ``init()``: then an instance with an image raises
    ``NotInitializedError``); what
    :func:`info_from_instance` returns, as the :class:`WirePayload` the
    library's helpers send.
    """
    get = _getter(instance)
    uuid = get("uuid")
    if not uuid:
        raise InvalidInstanceError(
            "instance has no uuid, cannot build a notification payload "
            f"({type(instance).__name__})"
        )
    sysmeta = _as_dict(
        get("system_metadata") if system_metadata is None else system_metadata
    )
    info = WirePayload(
        tenant_id=_text(get("project_id")),
        user_id=_text(get("user_id")),
        instance_id=_text(uuid),
    )
    for field in _AS_IS_FIELDS:
        value = get(field)
        info[field] = (
            value
            if type(value) is str and value.isascii()
            else ("" if value is None else to_wire(value))
        )
    flavor_get = _getter(get("flavor"))
    sys_get = sysmeta.get
    for field, (attr, sys_key) in _FLAVOR_FIELDS.items():
        value = flavor_get(attr)
        if value is None:
            value = sys_get(sys_key)
            if value is None and field != "instance_type":
                value = get(field)
        if field in _TEXT_FLAVOR_FIELDS:
            info[field] = _text(value)
        elif field == "instance_type_id":
            info[field] = value if type(value) is int else _flavor_db_id(value)
        else:
            info[field] = value if type(value) is int else _number(value)
    info["disk_gb"] = info["root_gb"] + info["ephemeral_gb"]
    image_ref = get("image_ref")
    vm_state = get("vm_state")
    task_state = get("task_state")
    progress = get("progress")
    info["cell_name"] = _text(get("cell_name"))
    info["created_at"] = _time(get("created_at"))
    info["launched_at"] = _time(get("launched_at"))
    info["terminated_at"] = _time(get("terminated_at"))
    info["deleted_at"] = _time(get("deleted_at"))
    if image_ref:
        if image_base is None:
            raise NotInitializedError("info_from_instance() with an image_ref")
        info["image_ref_url"] = f"{image_base}/images/{_text(image_ref)}"
    else:
        info["image_ref_url"] = ""
    info["state"] = (
        vm_state
        if type(vm_state) is str and vm_state.isascii()
        else ("" if vm_state is None else to_wire(vm_state))
    )
    info["state_description"] = _text(task_state)
    info["progress"] = (progress if type(progress) is int else _number(progress)) or ""
    info["access_ip_v4"] = _text(get("access_ip_v4"))
    info["access_ip_v6"] = _text(get("access_ip_v6"))
    metadata = get("metadata")
    info["metadata"] = screened(_as_dict(metadata))
    info["image_meta"] = screened_image_meta(sysmeta)
    if network_info is not None:
        info["fixed_ips"] = to_wire(_fixed_ips(network_info))
    return info


def image_base() -> str | None:
    """The ``image_endpoint`` setting (no trailing ``/``); None before
    ``init()``, when only an instance with an image needs it."""
    try:
        return lifecycle.settings("info_from_instance()").image_base
    except NotInitializedError:
        return None


def info_from_instance(
    context: Any,
    instance: Any,
    network_info: Iterable[Any] | None,
    system_metadata: Mapping[str, Any] | None,
    **kw: Any,
) -> dict[str, Any]:
    """Nova's legacy instance payload as a dict of JSON-safe fields.

    ``instance`` is a mapping or an object with attributes (``uuid``,
    ``project_id``, ``vm_state``, ``flavor``...). A missing optional field
    gives an empty value ('' for text, 0 for sizes); a missing ``uuid``
    raises :class:`~nova_notifier.exceptions.InvalidInstanceError`.
    ``fixed_ips`` is present only when ``network_info`` is given (a list of
    VIFs shaped like Nova's network model). ``kw`` is applied last.

    Fields are carried as given (value types as their text, times in UTC);
    only the free-form ones, ``metadata``, ``image_meta`` and ``kw``, are
    screened for secrets (:mod:`nova_notifier.masking`), and names such as
    ``display_name`` or ``hostname`` are never altered.
    """
    info = dict(
        build_instance_info(instance, network_info, system_metadata, image_base())
    )
    if kw:
        info.update(to_wire(kw, screen=True))
    return info


def formatted_message(fault: BaseException) -> str | None:
    """The exception's own user-facing message, when it defines one."""
    formatter = getattr(fault, "format_message", None)
    if not callable(formatter):
        return None
    try:
        message = formatter()
        text = message if type(message) is str else str(message)
    except Exception:
        return None
    return clean_text(mask_text(text)) if text else None


def fault_code(fault: BaseException, default: int = 500) -> int:
    """The HTTP-style status an exception carries (``code``), else ``default``."""
    try:
        code = getattr(fault, "code", None)
        if code is None:
            kwargs = getattr(fault, "kwargs", None)
            if isinstance(kwargs, Mapping):
                code = kwargs.get("code")
        return int(code) if code is not None else default
    except Exception:  # a property that raises, "abc", NaN, infinity
        return default


def exception_text(fault: BaseException) -> str:
    """JSON-safe, secret-free text naming an exception.

    ``"<ClassName>: <formatted message>"`` when the exception formats its own
    message (``format_message()``), else just the class name: a raw ``str()``
    of an arbitrary exception can carry credentials.
    """
    name = type(fault).__name__
    message = formatted_message(fault)
    return f"{name}: {message}" if message else name


def exception_to_dict(fault: BaseException) -> dict[str, Any]:
    """``{"exception", "message", "code"}`` describing ``fault`` for a payload.

    ``message`` is the exception's formatted message (else its class name),
    at most 255 characters; ``code`` its ``code`` or 500; ``exception`` the
    text of :func:`exception_text`.
    """
    message = formatted_message(fault) or type(fault).__name__
    return {
        "exception": exception_text(fault),
        "message": message[:MAX_FAULT_MESSAGE],
        "code": fault_code(fault),
    }
