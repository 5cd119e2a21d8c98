"""The versioned messages match Nova 34's own samples, field for field.

For each sample of an event this library sends, the instance, context and
call are made from the sample's own data; the message that arrives on the
versioned topic must have the sample's event_type, priority, publisher_id
and payload: the same keys at every level, the same JSON types, the same
object names and versions, and the same values, except where a value is
the moment or the place of the call (the audit period, the traceback and
the module and function an exception was raised in), which are compared
by type only.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from oslo_context import context as oslo_context

import nova_notifier
from nova_notifier import lifecycle, schemas
from nova_notifier.versioned import events, objects
from nova_notifier.versioned.send import notify_about_instance_action
from tests import nova_samples
from tests.conftest import Collector, _start_listener, _stop_listener, make_conf

pytestmark = pytest.mark.skipif(
    not nova_samples.available(),
    reason="run tools/nova-samples.sh (tools/test.sh does) to fetch Nova's samples",
)

# Samples of payload classes this library does not send (no legacy
# counterpart, nor a helper): volume swap, share attach/detach, and the
# volume_attach start/error phases (Nova's legacy volume.attach has none).
NOT_SENT = {
    "instance-volume_swap-start.json",
    "instance-volume_swap-end.json",
    "instance-volume_swap-error.json",
    "instance-share_attach-start.json",
    "instance-share_attach-end.json",
    "instance-share_attach-error.json",
    "instance-share_detach-start.json",
    "instance-share_detach-end.json",
    "instance-share_detach-error.json",
    "instance-volume_attach-start.json",
    "instance-volume_attach-error.json",
    "instance-volume_detach-start.json",
}
# Values that are the moment or the place of the call: compared by type.
BY_TYPE = {"audit_period_beginning", "audit_period_ending", "traceback"}
FAULT_BY_TYPE = {"module_name", "function_name"}
# A stale field in Nova's power_on_share samples: SharePayload 1.0 leaves
# export_location out on purpose (it can hold credentials).
STALE = {"export_location"}


def _sample_names() -> list[str]:
    if not nova_samples.available():
        return ["(no samples)"]
    return [n for n in nova_samples.names() if n not in NOT_SENT]


def _legacy_suffixes() -> dict[str, str]:
    """versioned event type -> the legacy suffix Nova sends it beside."""
    found: dict[str, str] = {}
    for suffix in events.legacy_suffixes():
        versioned = events.for_legacy_suffix(suffix)
        assert versioned is not None
        assert versioned.event_type not in found, (suffix, found)
        found[versioned.event_type] = suffix
    return found


LEGACY = _legacy_suffixes()


@pytest.fixture(scope="module")
def env():
    topic = f"nn-samples-{uuid.uuid4().hex[:12]}"
    conf = make_conf(
        "fake://",
        topic,
        notifications__notification_format="both",
        notifications__versioned_notifications_topics=[f"{topic}-versioned"],
        notifications__notify_on_state_change="vm_and_task_state",
    )
    nova_notifier.init(conf)
    collector = Collector()
    listener = _start_listener(lifecycle.transport(), f"{topic}-versioned", collector)
    try:
        yield conf, collector
    finally:
        _stop_listener(listener, in_background=True)
        nova_notifier.cleanup()


def _flavor(data: dict[str, Any]) -> dict[str, Any]:
    return dict(data["nova_object.data"])


def instance_from(data: dict[str, Any]) -> dict[str, Any]:
    """An instance (as a service would hand it over) with the sample's data."""
    instance: dict[str, Any] = {
        attribute: data[field]
        for field, (_, attribute) in objects.InstancePayload.SCHEMA.items()
    }
    instance["auto_disk_config"] = data["auto_disk_config"] == "AUTO"
    instance["flavor"] = _flavor(data["flavor"])
    instance["info_cache"] = {
        "network_info": [
            {
                "id": ip["nova_object.data"]["port_uuid"],
                "address": ip["nova_object.data"]["mac"],
                "devname": ip["nova_object.data"]["device_name"],
                "meta": ip["nova_object.data"]["meta"],
                "network": {
                    "label": ip["nova_object.data"]["label"],
                    "subnets": [
                        {
                            "ips": [
                                {
                                    "type": "fixed",
                                    "address": ip["nova_object.data"]["address"],
                                    "version": ip["nova_object.data"]["version"],
                                }
                            ]
                        }
                    ],
                },
            }
            for ip in data["ip_addresses"]
        ]
    }
    if data["block_devices"] is not None:
        instance["block_device_mapping"] = [
            bdm["nova_object.data"] for bdm in data["block_devices"]
        ]
    if data["shares"] is not None:
        instance["shares"] = [
            {
                "uuid": share["nova_object.data"]["share_mapping_uuid"],
                "share_id": share["nova_object.data"]["share_id"],
                "status": share["nova_object.data"]["status"],
                "tag": share["nova_object.data"]["tag"],
                "export_location": "server:/export?password=secret",
            }
            for share in data["shares"]
        ]
    if data["locked_reason"] is not None:
        instance["system_metadata"] = {"locked_reason": data["locked_reason"]}
    instance["keypairs"] = [k["nova_object.data"] for k in data.get("keypairs", [])]
    instance["tags"] = list(data.get("tags", []))
    instance["trusted_certs"] = data.get("trusted_image_certificates")
    instance["name"] = data.get("instance_name")
    return instance


def _fault(data: dict[str, Any]) -> BaseException | None:
    fault = data.get("fault")
    if fault is None:
        return None
    # a NovaException-like class: its own format_message() is what is sent
    kind = type(
        fault["nova_object.data"]["exception"],
        (Exception,),
        {"format_message": lambda self: str(self)},
    )
    try:
        raise kind(fault["nova_object.data"]["exception_message"])
    except Exception as exc:
        return exc


def emit(conf, sample: dict[str, Any]) -> None:
    """Make the call that sends the sample's event, from its data."""
    data = sample["payload"]["nova_object.data"]
    source, _, host = sample["publisher_id"].partition(":")
    service = source[len("nova-") :]
    conf.set_override(
        "bdms_in_notifications",
        data["block_devices"] is not None,
        group="notifications",
    )
    context = oslo_context.RequestContext(
        user_id=data["action_initiator_user"],
        project_id=data["action_initiator_project"],
        request_id=data["request_id"],
    )
    instance = instance_from(data)
    event_type = sample["event_type"]
    if event_type == "instance.update":
        states = data["state_update"]["nova_object.data"]
        nova_notifier.send_update_with_states(
            context,
            instance,
            states["old_state"],
            states["state"],
            states["old_task_state"],
            states["new_task_state"],
            service=service,
            host=host,
        )
        return
    notifier = nova_notifier.get_notifier(service, host)
    if event_type == "instance.exists":
        nova_notifier.notify_usage_exists(notifier, context, instance)
        return
    suffix = LEGACY.get(event_type)
    if suffix is None:
        action, _, phase = event_type[len("instance.") :].partition(".")
        notify_about_instance_action(
            context,
            instance,
            host,
            action,
            phase or None,
            source=source,
            exception=_fault(data),
        )
        return
    extra = {
        key: data[key]
        for key in ("snapshot_image_id", "volume_id", "rescue_image_ref")
        if key in data
    }
    if data.get("new_flavor") is not None:
        extra["new_flavor"] = _flavor(data["new_flavor"])
    nova_notifier.notify_about_instance_usage(
        notifier, context, instance, suffix, extra_usage_info=extra, fault=_fault(data)
    )


def compare(ours: Any, nova: Any, path: str, problems: list[str]) -> None:
    """Append to ``problems`` where ``ours`` differs from Nova's sample."""
    key = path.rsplit(".", 1)[-1]
    if nova_samples.json_type(ours) != nova_samples.json_type(nova):
        problems.append(
            f"{path}: {nova_samples.json_type(ours)} {ours!r}, "
            f"Nova {nova_samples.json_type(nova)} {nova!r}"
        )
    elif isinstance(nova, dict):
        nova = {k: v for k, v in nova.items() if k not in STALE}
        if set(ours) != set(nova):
            problems.append(
                f"{path}: extra keys {sorted(set(ours) - set(nova))}, "
                f"missing {sorted(set(nova) - set(ours))}"
            )
        for name in set(ours) & set(nova):
            compare(ours[name], nova[name], f"{path}.{name}", problems)
    elif isinstance(nova, list):
        if len(ours) != len(nova):
            problems.append(f"{path}: {len(ours)} items, Nova {len(nova)}")
        for index, (a, b) in enumerate(zip(ours, nova, strict=False)):
            compare(a, b, f"{path}[{index}]", problems)
    elif key in BY_TYPE or (".fault." in path and key in FAULT_BY_TYPE):
        pass
    elif ours != nova:
        problems.append(f"{path}: {ours!r}, Nova {nova!r}")


@pytest.mark.parametrize("name", _sample_names())
def test_the_versioned_message_matches_novas_sample(env, name):
    conf, collector = env
    sample = nova_samples.load(name)
    before = len(collector.items)
    emit(conf, sample)
    received = collector.wait_for(before + 1)[before:]
    assert len(received) == 1, [r.event_type for r in received]
    message = received[0]
    problems: list[str] = []
    assert message.event_type == sample["event_type"]
    assert message.priority == sample["priority"]
    assert message.publisher_id == sample["publisher_id"]
    expected = sample["payload"]
    if name == "instance-update.json":
        # Nova's sample disagrees with Nova's own rule here: a state not
        # given is the instance's (task_state "scheduling"), not null.
        states = expected["nova_object.data"]["state_update"]["nova_object.data"]
        task_state = expected["nova_object.data"]["task_state"]
        states["old_task_state"] = states["new_task_state"] = task_state
    compare(message.payload, expected, "payload", problems)
    assert not problems, "\n".join(problems)
    schemas.validate(message.event_type, message.payload)
    if "shares" in str(sample):
        assert "export_location" not in str(message.payload)
