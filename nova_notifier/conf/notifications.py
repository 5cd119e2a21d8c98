"""``[notifications]`` options of the helpers (delivery tuning lives with
the sender, in ``nova_notifier.delivery``)."""

from __future__ import annotations

from oslo_config import cfg

VM_STATE = "vm_state"
VM_AND_TASK_STATE = "vm_and_task_state"
#: priorities notify_decorator may send at (``default_level``)
LEVELS = ("DEBUG", "INFO", "WARN", "ERROR", "CRITICAL")

STATE_CHANGE_OPTS = [
    cfg.StrOpt(
        "notify_on_state_change",
        choices=[
            ("", "unset: send no compute.instance.update"),
            (VM_STATE, "an update counts as a transition when vm_state changed"),
            (
                VM_AND_TASK_STATE,
                "an update counts as a transition when vm_state or task_state changed",
            ),
        ],
        deprecated_group="DEFAULT",
        help="Send compute.instance.update notifications, and which state "
        "changes count as transitions (payloads carrying old and new states).",
    ),
]

API_FAULT_OPTS = [
    cfg.BoolOpt(
        "notify_on_api_faults",
        default=False,
        deprecated_opts=[cfg.DeprecatedOpt("notify_api_faults", group="DEFAULT")],
        help="Send an api.fault notification (ERROR) for every request that "
        "fails with an exception or a 5xx response.",
    ),
]

DECORATOR_OPTS = [
    cfg.StrOpt(
        "default_level",
        default="INFO",
        choices=LEVELS,
        ignore_case=True,
        deprecated_opts=[
            cfg.DeprecatedOpt("default_notification_level", group="DEFAULT")
        ],
        help="Priority of the notifications sent by notify_decorator.",
    ),
    cfg.StrOpt(
        "default_publisher_id",
        deprecated_group="DEFAULT",
        help="publisher_id of the notifications sent by notify_decorator; "
        "[DEFAULT] host when unset.",
    ),
]

PAYLOAD_OPTS = [
    cfg.URIOpt(
        "image_endpoint",
        default="http://127.0.0.1:9292",
        schemes=["http", "https"],
        help="Base URL of the image service; image_ref_url in payloads is "
        "'<image_endpoint>/images/<image_ref>'.",
    ),
]

UNVERSIONED, VERSIONED, BOTH = "unversioned", "versioned", "both"

FORMAT_OPTS = [
    cfg.StrOpt(
        "notification_format",
        default=UNVERSIONED,
        choices=[
            (UNVERSIONED, "only the legacy notifications (compute.instance.*)"),
            (VERSIONED, "only Nova's versioned notifications (instance.*)"),
            (BOTH, "both, the legacy and the versioned message for each call"),
        ],
        deprecated_group="DEFAULT",
        help="Which notification formats the helpers send. The versioned "
        "messages go to versioned_notifications_topics, the legacy ones to "
        "[oslo_messaging_notifications] topics.",
    ),
    cfg.ListOpt(
        "versioned_notifications_topics",
        default=["versioned_notifications"],
        help="Topics the versioned notifications are sent to.",
    ),
    cfg.BoolOpt(
        "bdms_in_notifications",
        default=False,
        help="Read the instance's block device mappings into the versioned "
        "payloads' block_devices (null when off). Block device mappings "
        "given to a call explicitly are sent either way.",
    ),
]

OPTS = STATE_CHANGE_OPTS + API_FAULT_OPTS + DECORATOR_OPTS + PAYLOAD_OPTS + FORMAT_OPTS
