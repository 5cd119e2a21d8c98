"""A ready configuration for tests, benchmarks and tools."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from oslo_config import cfg
from oslo_messaging import opts as messaging_opts

from nova_notifier import delivery
from nova_notifier.lifecycle import register_opts


def make_conf(
    transport_url: str = "fake://",
    topics: Iterable[str] = ("notifications",),
    driver: str = "messagingv2",
    host: str | None = None,
    rabbit: Mapping[str, Any] | None = None,
    project: str = "nova-notifier",
    **options: Any,
) -> cfg.ConfigOpts:
    """A fresh ``ConfigOpts`` with no config files, ready for ``init()``.

    The library's options and oslo.messaging's (``[oslo_messaging_rabbit]``
    included) are registered; the transport, driver and topics are set, as
    are ``[DEFAULT] host`` when given, ``[oslo_messaging_rabbit]`` options
    from ``rabbit``, and ``[notifications]`` or ``[notification_delivery]``
    options (each in its own group) from keywords.
    """
    conf = cfg.ConfigOpts()
    conf([], project=project, default_config_files=[])
    register_opts(conf)
    for group, group_opts in messaging_opts.list_opts():
        if group == "oslo_messaging_rabbit":
            conf.register_opts(group_opts, group=group)
    conf.set_override("transport_url", transport_url)
    conf.set_override("driver", [driver], group="oslo_messaging_notifications")
    conf.set_override("topics", list(topics), group="oslo_messaging_notifications")
    if host is not None:
        conf.set_override("host", host)
    for name, value in (rabbit or {}).items():
        conf.set_override(name, value, group="oslo_messaging_rabbit")
    moved = {opt.name for opt in delivery.OPTS}
    for name, value in options.items():
        group = delivery.GROUP if name in moved else "notifications"
        conf.set_override(name, value, group=group)
    return conf
