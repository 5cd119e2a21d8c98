"""``[DEFAULT]`` options: host, the audit period, monkey patching.

With the checks of their values that need more than oslo.config's types (an
audit period offset out of range, a malformed ``monkey_patch_modules``
entry), so that ``init()`` can refuse a bad value at start-up.
"""

from __future__ import annotations

import re
import socket

from oslo_config import cfg, types

from nova_notifier.exceptions import ConfigError, MonkeyPatchError


class _HostOpt(cfg.StrOpt):
    """``[DEFAULT] host`` as the library registers it when the application
    has not (yet) registered its own.

    oslo.config refuses a second, different option of the same name. When
    the application registers its ``host`` after the library did (after
    ``init()`` or ``monkey_patch()``), this option takes on the
    application's definition instead of refusing it, so the application's
    registration works and both read the same value.
    """

    def __ne__(self, other: object) -> bool:
        if (
            isinstance(other, cfg.Opt)
            and not isinstance(other, _HostOpt)
            and other.dest == self.dest
        ):
            vars(self).update(vars(other))
            return False
        return bool(super().__ne__(other))

    __hash__ = cfg.Opt.__hash__


AUDIT_PERIOD = re.compile(r"^(hour|day|month|year)(?:@(\d+))?$")
_OFFSET_RANGE = {"hour": (0, 59), "day": (0, 23), "month": (0, 31), "year": (0, 12)}

HOST_OPTS = [
    _HostOpt(
        "host",
        default=socket.gethostname(),
        sample_default="<hostname>",
        help="Name of this host; the second half of the default publisher_id "
        "('<service>.<host>'). Registered only when the application has "
        "not registered its own [DEFAULT] host.",
    ),
]

AUDIT_OPTS = [
    cfg.Opt(
        "instance_usage_audit_period",
        type=types.String(regex=AUDIT_PERIOD.pattern),
        default="month",
        help="Length of an audit period: hour, day, month or year, optionally "
        "with @offset (minute, hour, day of month or month) at which each "
        "period starts, e.g. 'month@15' or 'day@6'.",
    ),
]

MONKEY_OPTS = [
    cfg.BoolOpt(
        "monkey_patch",
        default=False,
        help="Wrap the functions and methods of monkey_patch_modules with "
        "their decorators when the service calls monkey_patch().",
    ),
    cfg.ListOpt(
        "monkey_patch_modules",
        default=[],
        help="Entries 'module:decorator', e.g. "
        "'myservice.compute.api:nova_notifier.notify_decorator'.",
    ),
]

OPTS = HOST_OPTS + AUDIT_OPTS + MONKEY_OPTS


def parse_audit_period(unit: str) -> tuple[str, int]:
    """``("month", 15)`` from ``"month@15"``; ``ConfigError`` on a bad value."""
    match = AUDIT_PERIOD.match(unit.strip())
    if not match:
        raise ConfigError(
            f"invalid audit period {unit!r} (instance_usage_audit_period): "
            "expected hour, day, month or year, optionally with @offset"
        )
    name, offset_text = match.group(1), match.group(2)
    offset = int(offset_text) if offset_text else 0
    low, high = _OFFSET_RANGE[name]
    if not low <= offset <= high:
        raise ConfigError(
            f"invalid audit period {unit!r} (instance_usage_audit_period): "
            f"the offset of a {name} period must be {low}..{high}"
        )
    return name, offset


def split_monkey_entry(entry: str) -> tuple[str, str]:
    """``(module, decorator path)`` of a ``monkey_patch_modules`` entry;
    ``MonkeyPatchError`` when it is not ``module:package.decorator``."""
    module_name, sep, decorator_path = entry.strip().partition(":")
    if (
        not sep
        or not module_name
        or not decorator_path
        or ":" in decorator_path
        or "." not in decorator_path
    ):
        raise MonkeyPatchError(
            f"monkey_patch_modules entry {entry!r} is not "
            "'package.module:package.module.decorator'"
        )
    return module_name, decorator_path


def check(conf: cfg.ConfigOpts) -> None:
    """Refuse what oslo.config's types let through: an audit period's offset
    out of range (``hour@99``), a malformed ``monkey_patch_modules`` entry."""
    try:
        parse_audit_period(conf.instance_usage_audit_period)
    except ConfigError as exc:
        raise ConfigError(
            f"invalid value for option [DEFAULT] instance_usage_audit_period: {exc}"
        ) from exc
    for entry in conf.monkey_patch_modules:
        try:
            split_monkey_entry(entry)
        except MonkeyPatchError as exc:
            raise ConfigError(f"invalid value for option [DEFAULT] {exc}") from exc
