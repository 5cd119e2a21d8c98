"""The settings snapshot: every option the emit path reads, read once.

Reading an oslo.config option costs a few microseconds; an emit reads
several. ``init()`` takes a :class:`Settings` snapshot instead, and the
helpers read its attributes. The snapshot follows the configuration: any
change made through oslo.config (``set_override``, ``clear_override``,
``reload_config_files``, ``mutate_config_files``) empties oslo.config's
value cache, and the next emit sees that and takes a new snapshot;
``nova_notifier.refresh()`` takes one at once.
"""

from __future__ import annotations

import dataclasses
import socket
from typing import Any

from oslo_config import cfg

# A key oslo.config's value cache never holds: planted there after each
# snapshot, gone as soon as oslo.config empties its cache on a change.
TOKEN = ("nova_notifier", "<settings snapshot>")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the emit path reads, as it was configured at the last snapshot."""

    host: str
    state_change: str | None
    api_faults: bool
    decorator_level: str
    decorator_publisher: str | None
    image_base: str
    audit_unit: str
    #: send the legacy messages / the versioned ones (``notification_format``)
    legacy: bool = True
    versioned: bool = False
    versioned_topics: tuple[str, ...] = ("versioned_notifications",)
    bdms_in_notifications: bool = False


#: the priorities a notification may have (oslo.messaging's Notifier methods)
PRIORITIES = (
    "audit",
    "debug",
    "info",
    "warn",
    "warning",
    "error",
    "critical",
    "sample",
)


def take(conf: cfg.ConfigOpts) -> Settings:
    """A snapshot of ``conf`` (raises what oslo.config raises on a bad value)."""
    group = conf.notifications
    level = (group.default_level or "INFO").lower()
    return Settings(
        host=conf.host or socket.gethostname(),
        state_change=group.notify_on_state_change or None,
        api_faults=bool(group.notify_on_api_faults),
        decorator_level=level if level in PRIORITIES else "info",
        decorator_publisher=group.default_publisher_id or None,
        image_base=group.image_endpoint.rstrip("/"),
        audit_unit=conf.instance_usage_audit_period,
        legacy=group.notification_format != "versioned",
        versioned=group.notification_format != "unversioned",
        versioned_topics=tuple(group.versioned_notifications_topics),
        bdms_in_notifications=bool(group.bdms_in_notifications),
    )


def value_cache(conf: cfg.ConfigOpts) -> dict[Any, Any] | None:
    """oslo.config's value cache of ``conf``, where a snapshot leaves its
    token; None when this oslo.config keeps none (then every emit checks)."""
    cache = getattr(conf, "_ConfigOpts__cache", None)
    return cache if isinstance(cache, dict) else None
