"""Audit periods: the billing windows ``compute.instance.exists`` reports on.

Reads ``[DEFAULT] instance_usage_audit_period`` (``hour|day|month|year`` with an
optional ``@offset``: minute of the hour, hour of the day, day of the month or
month of the year at which a period starts).
"""

from __future__ import annotations

import calendar
import datetime

from oslo_utils import timeutils

from nova_notifier import lifecycle
from nova_notifier.conf.default import parse_audit_period as _parse


def _month_day(year: int, month: int, day: int) -> datetime.datetime:
    """Midnight of ``day`` in that month, clamped to the month's last day."""
    last = calendar.monthrange(year, month)[1]
    return datetime.datetime(year, month, min(day, last))


def _previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def last_completed_audit_period(
    unit: str | None = None, before: datetime.datetime | None = None
) -> tuple[datetime.datetime, datetime.datetime]:
    """``(begin, end)`` of the most recently completed audit period, naive UTC.

    ``unit`` defaults to ``[DEFAULT] instance_usage_audit_period`` and
    ``before`` to now. A month offset past a month's end (``month@31``) starts
    that month's period on its last day. A bad unit raises ``ConfigError``.
    """
    if unit is None:
        unit = lifecycle.settings("last_completed_audit_period()").audit_unit
    if before is not None:
        return _completed(unit, before)
    # The answer only changes when a period ends: keep it until then.
    global _LAST
    now = timeutils.utcnow()
    cached = _LAST
    if cached is not None and cached[0] == unit and cached[2] < now <= cached[3]:
        return cached[1], cached[2]
    begin, end = _completed(unit, now)
    _LAST = (unit, begin, end, _next_end(unit, end))
    return begin, end


# (unit, begin, end, when the next period ends) of the last answer for now
_LAST: tuple[str, datetime.datetime, datetime.datetime, datetime.datetime] | None = None


def _next_end(unit: str, end: datetime.datetime) -> datetime.datetime:
    """When the period that follows the one ending at ``end`` ends."""
    name, offset = _parse(unit)
    if name == "hour":
        return end + datetime.timedelta(hours=1)
    if name == "day":
        return end + datetime.timedelta(days=1)
    if name == "month":
        year, month = (
            (end.year + 1, 1) if end.month == 12 else (end.year, end.month + 1)
        )
        return _month_day(year, month, offset or 1)
    return datetime.datetime(end.year + 1, offset or 1, 1)


def _completed(
    unit: str, now: datetime.datetime
) -> tuple[datetime.datetime, datetime.datetime]:
    name, offset = _parse(unit)
    if now.tzinfo is not None:
        now = now.astimezone(datetime.timezone.utc).replace(tzinfo=None)

    if name == "hour":
        end = now.replace(minute=offset, second=0, microsecond=0)
        if end >= now:
            end -= datetime.timedelta(hours=1)
        return end - datetime.timedelta(hours=1), end
    if name == "day":
        end = datetime.datetime(now.year, now.month, now.day, offset)
        if end >= now:
            end -= datetime.timedelta(days=1)
        return end - datetime.timedelta(days=1), end
    if name == "month":
        day = offset or 1
        end = _month_day(now.year, now.month, day)
        if end >= now:
            end = _month_day(*_previous_month(now.year, now.month), day)
        return _month_day(*_previous_month(end.year, end.month), day), end
    month = offset or 1
    end = datetime.datetime(now.year, month, 1)
    if end >= now:
        end = datetime.datetime(now.year - 1, month, 1)
    return datetime.datetime(end.year - 1, month, 1), end


def audit_period_bounds(
    current_period: bool = False,
) -> tuple[datetime.datetime, datetime.datetime]:
    """``(beginning, ending)`` for a notification's audit period fields.

    The last completed period; with ``current_period=True`` the period under
    way instead, from the end of the last completed one to now.
    """
    begin, end = last_completed_audit_period()
    if current_period:
        return end, timeutils.utcnow()
    return begin, end
