"""Audit periods: the billing windows that compute.instance.exists reports on."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
from oslo_config import cfg
from oslo_utils import timeutils

import nova_notifier
from nova_notifier import ConfigError, last_completed_audit_period

dt = datetime.datetime
timedelta = datetime.timedelta
BEFORE = dt(2012, 3, 5, 8, 12, 23)


@pytest.fixture
def frozen_now() -> Iterator[datetime.datetime]:
    timeutils.set_time_override(BEFORE)
    yield BEFORE
    timeutils.clear_time_override()


@pytest.mark.parametrize(
    ("unit", "begin", "end"),
    [
        ("hour", dt(2012, 3, 5, 7, 0), dt(2012, 3, 5, 8, 0)),
        ("hour@10", dt(2012, 3, 5, 7, 10), dt(2012, 3, 5, 8, 10)),
        ("hour@30", dt(2012, 3, 5, 6, 30), dt(2012, 3, 5, 7, 30)),
        ("day", dt(2012, 3, 4), dt(2012, 3, 5)),
        ("day@6", dt(2012, 3, 4, 6), dt(2012, 3, 5, 6)),
        ("day@10", dt(2012, 3, 3, 10), dt(2012, 3, 4, 10)),
        ("month", dt(2012, 2, 1), dt(2012, 3, 1)),
        ("month@2", dt(2012, 2, 2), dt(2012, 3, 2)),
        ("month@15", dt(2012, 1, 15), dt(2012, 2, 15)),
        ("year", dt(2011, 1, 1), dt(2012, 1, 1)),
        ("year@2", dt(2011, 2, 1), dt(2012, 2, 1)),
        ("year@6", dt(2010, 6, 1), dt(2011, 6, 1)),
    ],
)
def test_last_completed_period_for_each_unit_and_offset(unit, begin, end):
    assert last_completed_audit_period(unit, before=BEFORE) == (begin, end)


@pytest.mark.parametrize(
    ("unit", "before", "begin", "end"),
    [
        # January: the previous month, or its period start, is in last year
        ("month", dt(2012, 1, 10), dt(2011, 12, 1), dt(2012, 1, 1)),
        ("month@15", dt(2012, 1, 10), dt(2011, 11, 15), dt(2011, 12, 15)),
        ("month@15", dt(2012, 2, 10), dt(2011, 12, 15), dt(2012, 1, 15)),
        ("day", dt(2012, 1, 1, 3), dt(2011, 12, 31), dt(2012, 1, 1)),
        ("day@6", dt(2012, 1, 1, 3), dt(2011, 12, 30, 6), dt(2011, 12, 31, 6)),
        ("hour", dt(2012, 1, 1, 0, 30), dt(2011, 12, 31, 23), dt(2012, 1, 1)),
        # December: nothing of the running year has completed yet
        ("month", dt(2012, 12, 31, 23, 59), dt(2012, 11, 1), dt(2012, 12, 1)),
        ("year", dt(2012, 12, 31, 23, 59), dt(2011, 1, 1), dt(2012, 1, 1)),
        ("year@12", dt(2012, 12, 31), dt(2011, 12, 1), dt(2012, 12, 1)),
        ("year@12", dt(2012, 11, 30), dt(2010, 12, 1), dt(2011, 12, 1)),
    ],
)
def test_periods_wrap_around_the_year(unit, before, begin, end):
    assert last_completed_audit_period(unit, before=before) == (begin, end)


@pytest.mark.parametrize(
    ("unit", "before", "begin", "end"),
    [
        # a period that should start on day 31 starts on the month's last day
        ("month@31", dt(2012, 3, 5), dt(2012, 1, 31), dt(2012, 2, 29)),
        ("month@31", dt(2011, 3, 5), dt(2011, 1, 31), dt(2011, 2, 28)),
        ("month@31", dt(2012, 5, 5), dt(2012, 3, 31), dt(2012, 4, 30)),
        ("month@30", dt(2012, 3, 31), dt(2012, 2, 29), dt(2012, 3, 30)),
    ],
)
def test_month_offset_past_the_end_of_a_short_month(unit, before, begin, end):
    assert last_completed_audit_period(unit, before=before) == (begin, end)


@pytest.mark.parametrize(
    ("unit", "first", "last", "step"),
    [
        ("hour@59", dt(2011, 12, 31, 20), dt(2012, 1, 1, 4), timedelta(minutes=7)),
        ("day@23", dt(2012, 2, 20), dt(2012, 3, 10), timedelta(hours=5)),
        ("month@31", dt(2011, 11, 20), dt(2013, 3, 10), timedelta(hours=13)),
        ("month@29", dt(2011, 11, 20), dt(2013, 3, 10), timedelta(hours=13)),
        ("year@12", dt(2009, 6, 1), dt(2013, 6, 1), timedelta(days=5)),
    ],
)
def test_consecutive_periods_leave_no_gap_and_never_overlap(unit, first, last, step):
    """Billing relies on each period starting where the previous one ended."""
    periods: list[tuple[datetime.datetime, datetime.datetime]] = []
    now = first
    while now < last:
        begin, end = last_completed_audit_period(unit, before=now)
        assert begin < end < now
        if not periods or periods[-1] != (begin, end):
            periods.append((begin, end))
        now += step
    assert len(periods) > 3
    for previous, following in zip(periods, periods[1:], strict=False):
        assert following[0] == previous[1]


def test_aware_before_is_read_as_utc():
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    before = dt(2012, 3, 5, 10, 12, 23, tzinfo=plus_two)
    assert last_completed_audit_period("hour", before=before) == (
        dt(2012, 3, 5, 7),
        dt(2012, 3, 5, 8),
    )


@pytest.mark.parametrize(
    "unit",
    ["week", "hour@99", "day@24", "month@32", "year@13", "month@x", "", "Month"],
)
def test_bad_unit_is_a_config_error(unit):
    with pytest.raises(ConfigError, match="audit period"):
        last_completed_audit_period(unit, before=BEFORE)
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        (None, (dt(2012, 2, 1), dt(2012, 3, 1))),  # the default is month
        ("day@6", (dt(2012, 3, 4, 6), dt(2012, 3, 5, 6))),
        ("hour", (dt(2012, 3, 5, 7), dt(2012, 3, 5, 8))),
    ],
)
def test_unit_defaults_to_the_configured_period(fake_env, configured, expected):
    if configured is not None:
        fake_env.override("instance_usage_audit_period", configured)
    assert last_completed_audit_period(before=BEFORE) == expected


@pytest.mark.parametrize("value", ["hour@99", "fortnight", "month@"])
def test_bad_configured_period_is_rejected_at_init(tmp_path, value):
    config_file = tmp_path / "nova-notifier.conf"
    config_file.write_text(f"[DEFAULT]\ninstance_usage_audit_period = {value}\n")
    conf = cfg.ConfigOpts()
    conf([], project="nova-notifier-tests", default_config_files=[str(config_file)])
    try:
        with pytest.raises(ConfigError, match="instance_usage_audit_period"):
            nova_notifier.init(conf)
    finally:
        nova_notifier.cleanup()


@pytest.mark.parametrize(
    ("configured", "completed", "current"),
    [
        (
            "month",
            (dt(2012, 2, 1), dt(2012, 3, 1)),
            (dt(2012, 3, 1), BEFORE),
        ),
        (
            "hour@30",
            (dt(2012, 3, 5, 6, 30), dt(2012, 3, 5, 7, 30)),
            (dt(2012, 3, 5, 7, 30), BEFORE),
        ),
    ],
)
def test_audit_period_bounds(fake_env, frozen_now, configured, completed, current):
    fake_env.override("instance_usage_audit_period", configured)
    assert nova_notifier.audit_period_bounds() == completed
    assert nova_notifier.audit_period_bounds(current_period=False) == completed
    assert nova_notifier.audit_period_bounds(current_period=True) == current


@pytest.mark.parametrize(
    "unit",
    [
        "hour",
        "hour@30",
        "day",
        "day@6",
        "month",
        "month@15",
        "month@31",
        "year",
        "year@6",
    ],
)
def test_the_cached_period_is_the_computed_one_across_boundaries(fake_env, unit):
    """The period for now is cached until the next one ends: that moment is
    exactly the next boundary, and at every boundary (just before, at, just
    after) the cached answer equals the one computed afresh."""
    from nova_notifier import audit

    fake_env.conf.set_override("instance_usage_audit_period", unit)
    tick = datetime.timedelta(microseconds=1)
    now = datetime.datetime(2011, 12, 30, 23, 0, 0)
    _, end = last_completed_audit_period(unit, before=now)
    moments = []
    for _ in range(26):
        nxt = audit._next_end(unit, end)
        assert last_completed_audit_period(unit, before=nxt)[1] == end
        assert last_completed_audit_period(unit, before=nxt + tick)[1] == nxt
        moments += [nxt - tick, nxt, nxt + tick]
        end = nxt
    try:
        for moment in moments:
            timeutils.set_time_override(moment)
            assert last_completed_audit_period() == (
                last_completed_audit_period(unit, before=moment)
            ), (unit, moment)
    finally:
        timeutils.clear_time_override()
