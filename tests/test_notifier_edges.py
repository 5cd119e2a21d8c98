"""Edges of the emit path: odd event types and publishers, odd field values,
and the rate limiter that keeps repeated failures to one line."""

from __future__ import annotations

import datetime
import enum
import logging

import pytest

import nova_notifier
from nova_notifier import _log

UUID = "5a5a5a5a-0000-4000-8000-000000000005"


class Event(str, enum.Enum):
    CREATE_END = "compute.instance.create.end"


@pytest.mark.payloads_unchecked
def test_a_str_subclass_event_type_is_sent_as_its_text(fake_env):
    nova_notifier.get_notifier("svc", "h1").info({}, Event.CREATE_END, {"k": 1})
    (item,) = fake_env.settle()
    assert (item.event_type, item.publisher_id, item.payload) == (
        "compute.instance.create.end",
        "svc.h1",
        {"k": 1},
    )


def test_a_non_text_event_type_is_a_counted_drop(fake_env):
    nova_notifier.get_notifier("svc", "h1").info({}, 42, {"k": 1})
    assert fake_env.settle() == []
    assert nova_notifier.stats()["dropped"] == 1


def test_a_notifier_built_from_none_still_sends(fake_env):
    nova_notifier.Notifier(None).info({}, "svc.x", {"k": 1})  # type: ignore[arg-type]
    (item,) = fake_env.settle()
    assert item.publisher_id == "None"


@pytest.mark.parametrize(
    "flavor_id,expected",
    [("\ud800", "\ufffd"), (float("inf"), "Infinity"), ("7", 7), (3, 3)],
)
def test_odd_flavor_ids_still_send_strict_json(fake_env, flavor_id, expected):
    compute = nova_notifier.get_notifier("compute", "h1")
    instance = {"uuid": UUID, "flavor": {"id": flavor_id}}
    nova_notifier.notify_about_instance_usage(compute, {}, instance, "create.end")
    (item,) = fake_env.settle()
    assert item.payload["instance_type_id"] == expected


def test_an_aware_time_with_no_utc_value_is_kept(fake_env):
    tz = datetime.timezone(datetime.timedelta(hours=2))
    launched = datetime.datetime(1, 1, 1, 0, 30, tzinfo=tz)
    compute = nova_notifier.get_notifier("compute", "h1")
    instance = {"uuid": UUID, "launched_at": launched}
    nova_notifier.notify_about_instance_usage(compute, {}, instance, "create.end")
    (item,) = fake_env.settle()
    assert item.payload["launched_at"] == "0001-01-01T00:30:00.000000"


def test_exists_with_an_extra_that_is_no_mapping_is_still_sent(fake_env):
    compute = nova_notifier.get_notifier("compute", "h1")
    nova_notifier.notify_usage_exists(
        compute, {}, {"uuid": UUID}, extra_usage_info=["not", "a", "mapping"]
    )
    (item,) = fake_env.settle()
    assert (item.event_type, item.payload["instance_id"]) == (
        "compute.instance.exists",
        UUID,
    )
    assert nova_notifier.stats()["dropped"] == 0


def test_the_rate_limiter_counts_what_it_held_back(monkeypatch, caplog):
    now = [1000.0]
    monkeypatch.setattr(_log.time, "monotonic", lambda: now[0])
    limiter = _log.RateLimited(interval=10)
    logger = _log.get_logger("nova_notifier.test_rate")
    caplog.set_level(logging.WARNING, logger="nova_notifier.test_rate")
    assert limiter.log(logger, logging.WARNING, "broker down: %s", "first")
    for _ in range(7):
        now[0] += 1
        assert not limiter.log(logger, logging.WARNING, "broker down: %s", "again")
    now[0] += 10
    assert limiter.log(logger, logging.WARNING, "broker down: %s", "later")
    assert [r.getMessage() for r in caplog.records] == [
        "broker down: first",
        "broker down: later (7 more like this in the last 10 s)",
    ]


def test_drops_with_varying_text_share_one_limiter(fake_env, caplog):
    caplog.set_level(logging.WARNING, logger="nova_notifier")
    notifier = nova_notifier.get_notifier("svc", "h1")
    for n in range(20):
        notifier.notify({}, "svc.x", {}, f"no-such-priority-{n}")
    assert nova_notifier.stats()["dropped"] == 20
    lines = [r for r in caplog.records if "dropped svc.x" in r.getMessage()]
    assert len(lines) == 1
