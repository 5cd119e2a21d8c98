"""Which versioned notification Nova 34 sends beside a legacy one.

:func:`for_legacy_suffix` maps ``compute.instance.<suffix>`` to the
versioned event (``instance.<action>[.<phase>]``) and its payload class,
or None where Nova sends no versioned counterpart (``force_delete.*``,
``create_ip.*``, ``delete_ip.*``, and any suffix Nova does not know).
"""

from __future__ import annotations

import dataclasses

from nova_notifier.versioned import objects

PHASES = ("start", "end", "error")

# legacy action (the suffix without its phase) -> versioned action
_RENAMED = {
    "resize.prep": "resize_prep",
    "finish_resize": "resize_finish",
    "resize.confirm": "resize_confirm",
    "resize.revert": "resize_revert",
    "live_migration.pre": "live_migration_pre",
    "live_migration._post": "live_migration_post",
    "live_migration.post.dest": "live_migration_post_dest",
    "live_migration._rollback": "live_migration_rollback",
    "live_migration.rollback.dest": "live_migration_rollback_dest",
    "live.migration.force.complete": "live_migration_force_complete",
    "live.migration.abort": "live_migration_abort",
}
# legacy suffixes that carry no phase, and the versioned phase Nova gives
_PHASELESS = {
    "volume.attach": ("volume_attach", "end"),
    "volume.detach": ("volume_detach", "end"),
    "rebuild.scheduled": ("rebuild_scheduled", None),
    "evacuate": ("evacuate", None),
    "exists": ("exists", None),
}
# versioned action -> payload class, where it is not InstanceActionPayload
_PAYLOADS: dict[
    str, type[objects.InstanceActionPayload] | type[objects.InstancePayload]
] = {
    "create": objects.InstanceCreatePayload,
    "rebuild": objects.InstanceActionRebuildPayload,
    "rebuild_scheduled": objects.InstanceActionRebuildPayload,
    "rescue": objects.InstanceActionRescuePayload,
    "snapshot": objects.InstanceActionSnapshotPayload,
    "resize_prep": objects.InstanceActionResizePrepPayload,
    "volume_attach": objects.InstanceActionVolumePayload,
    "volume_detach": objects.InstanceActionVolumePayload,
    "exists": objects.InstanceExistsPayload,
}
#: versioned actions Nova sends beside a legacy usage notification
ACTIONS = frozenset(
    (
        "create",
        "delete",
        "soft_delete",
        "shutdown",
        "power_off",
        "power_on",
        "reboot",
        "pause",
        "unpause",
        "suspend",
        "resume",
        "shelve",
        "shelve_offload",
        "unshelve",
        "restore",
        "trigger_crash_dump",
        "unrescue",
        "rebuild",
        "rebuild_scheduled",
        "rescue",
        "snapshot",
        "resize_prep",
        "resize",
        "resize_finish",
        "resize_confirm",
        "resize_revert",
        "volume_attach",
        "volume_detach",
        "live_migration_pre",
        "live_migration_post",
        "live_migration_post_dest",
        "live_migration_rollback",
        "live_migration_rollback_dest",
        "live_migration_force_complete",
        "live_migration_abort",
        "evacuate",
        "exists",
    )
)
#: versioned actions that carry no phase
PHASELESS = frozenset(("rebuild_scheduled", "evacuate", "exists"))
# publisher sources Nova uses whatever service sent the legacy message
_SOURCES = {
    "evacuate": "nova-api",
    "rebuild_scheduled": "nova-conductor",
    "exists": "nova-compute",
}
# the legacy names of the actions that carry a phase
_LEGACY_ACTIONS = (
    ACTIONS - set(_RENAMED.values()) - {a for a, _ in _PHASELESS.values()}
) | set(_RENAMED)
# data a payload needs that a legacy call carries only in extra_usage_info
REQUIRED_EXTRA: dict[type[objects.InstancePayload], str] = {
    objects.InstanceActionSnapshotPayload: "snapshot_image_id",
    objects.InstanceActionVolumePayload: "volume_id",
}


@dataclasses.dataclass(frozen=True)
class Versioned:
    """The versioned event beside a legacy one."""

    action: str
    phase: str | None
    payload_class: type[objects.InstancePayload]
    #: the publisher's source Nova uses (None: the legacy service's)
    source: str | None = None

    @property
    def event_type(self) -> str:
        """``instance.<action>`` or ``instance.<action>.<phase>``."""
        suffix = f".{self.phase}" if self.phase else ""
        return f"instance.{self.action}{suffix}"


def payload_class(action: str) -> type[objects.InstancePayload]:
    """The payload class of a versioned action (InstanceActionPayload unless
    Nova has a class of its own for it)."""
    return _PAYLOADS.get(action, objects.InstanceActionPayload)


def for_legacy_suffix(suffix: str) -> Versioned | None:
    """The versioned counterpart of ``compute.instance.<suffix>``, or None."""
    if suffix in _PHASELESS:
        action, phase = _PHASELESS[suffix]
    else:
        base, _, phase_text = suffix.rpartition(".")
        if not base or phase_text not in PHASES:
            return None
        action, phase = _RENAMED.get(base, base), phase_text
        if base not in _LEGACY_ACTIONS:
            return None
    return Versioned(
        action,
        phase,
        payload_class(action),
        _SOURCES.get(action),
    )


def legacy_suffixes() -> list[str]:
    """Every legacy suffix with a versioned counterpart, sorted."""
    phased = [f"{base}.{phase}" for base in _LEGACY_ACTIONS for phase in PHASES]
    return sorted(phased + list(_PHASELESS))


def source_of(service: str) -> str:
    """Nova's publisher source of a legacy service: ``compute`` ->
    ``nova-compute``; a name already starting ``nova-`` is kept."""
    return service if service.startswith("nova-") else f"nova-{service}"
