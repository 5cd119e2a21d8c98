"""The nova_notifier.background and nova_notifier.spool oslo.messaging drivers.

A plain ``oslo_messaging.Notifier`` whose ``driver`` names one of them must
put on the wire what messagingv2 puts there, return without waiting on the
broker, and keep what the caller gave unchanged.
"""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
import stat
import textwrap
import uuid
from collections.abc import Iterator

import oslo_messaging
import pytest
from oslo_serialization import jsonutils

import nova_notifier
from nova_notifier import delivery, drivers
from nova_notifier.exceptions import ConfigError
from tests.conftest import Collector, _start_listener, _stop_listener, make_conf

PUBLISHER = "compute.host-1"
CTXT = {"request_id": "req-1", "user_id": "u-1", "project_id": "p-1"}


class _Pair:
    """oslo Notifiers on one fake:// transport, and a listener on it."""

    def __init__(self, **overrides) -> None:
        self.topic = f"nn-drv-{uuid.uuid4().hex[:10]}"
        self.conf = make_conf("fake://", self.topic, **overrides)
        self.transport = oslo_messaging.get_notification_transport(self.conf)
        self.collector = Collector()
        self.listener = _start_listener(self.transport, self.topic, self.collector)

    def notifier(self, driver: str) -> oslo_messaging.Notifier:
        return oslo_messaging.Notifier(
            self.transport, PUBLISHER, driver=driver, topics=[self.topic]
        )

    def close(self) -> None:
        drivers.flush_drivers(timeout=10)
        _stop_listener(self.listener)
        self.transport.cleanup()


@pytest.fixture
def pair(tmp_path) -> Iterator[_Pair]:
    env = _Pair(notification_delivery__spool_path=str(tmp_path / "spool.db"))
    try:
        yield env
    finally:
        env.close()


def test_the_drivers_are_oslo_messaging_entry_points():
    import importlib.metadata

    found = {
        ep.name: ep.load()
        for ep in importlib.metadata.entry_points(group="oslo.messaging.notify.drivers")
        if ep.name.startswith("nova_notifier.")
    }
    assert found == {
        "nova_notifier.background": drivers.BackgroundDriver,
        "nova_notifier.spool": drivers.SpoolDriver,
    }


@pytest.mark.parametrize("driver", ["nova_notifier.background", "nova_notifier.spool"])
def test_a_plain_oslo_notifier_sends_what_messagingv2_sends(pair, driver):
    payload = {"instance_id": "i-1", "state": "active", "memory_mb": 512}
    pair.notifier("messagingv2").info(CTXT, "compute.instance.create.end", payload)
    ours = pair.notifier(driver)
    ours.info(CTXT, "compute.instance.create.end", payload)
    ours.warn(CTXT, "compute.instance.exists", payload)

    got = pair.collector.wait_for(3)
    # one queue per priority: order only holds within each
    reference, info = [g for g in got if g.priority == "INFO"]
    [warn] = [g for g in got if g.priority != "INFO"]
    for got in (info, warn):
        assert got.publisher_id == PUBLISHER
        assert got.payload == reference.payload == payload
        assert got.ctxt == reference.ctxt
        assert set(got.metadata) == set(reference.metadata)
    assert (info.priority, info.event_type) == ("INFO", "compute.instance.create.end")
    assert (warn.priority, warn.event_type) == ("WARN", "compute.instance.exists")
    assert info.metadata["message_id"] != reference.metadata["message_id"]
    assert drivers.driver_stats()["sent"] >= 2


def test_the_message_is_copied_when_notify_returns(pair):
    payload = {"tags": ["billing"], "nested": {"vcpus": 2}}
    notifier = pair.notifier("nova_notifier.background")
    notifier.info(CTXT, "compute.instance.update", payload)
    payload["tags"].append("changed later")
    payload["nested"]["vcpus"] = 64

    [got] = pair.collector.wait_for(1)
    assert got.payload == {"tags": ["billing"], "nested": {"vcpus": 2}}
    # and the caller's own objects are left as the caller made them
    assert payload == {"tags": ["billing", "changed later"], "nested": {"vcpus": 64}}


def test_datetimes_arrive_as_messagingv2_writes_them(pair):
    when = datetime.datetime(2026, 12, 2, 7, 21, 26, 123456)
    pair.notifier("messagingv2").info(CTXT, "x.ref", {"at": when})
    pair.notifier("nova_notifier.background").info(CTXT, "x.ours", {"at": when})

    reference, ours = pair.collector.wait_for(2)
    # fake:// hands the listener messagingv2's objects; the wire has its JSON
    assert ours.payload == json.loads(jsonutils.dumps(reference.payload))
    assert ours.payload == {"at": "2026-12-02T07:21:26.123456"}


def test_a_payload_that_cannot_be_json_is_dropped_and_counted(pair):
    before = drivers.driver_stats()["dropped"]
    notifier = pair.notifier("nova_notifier.background")
    notifier.info(CTXT, "x.bad", {"bad": object()})  # returns, no raise
    notifier.info(CTXT, "x.good", {"good": "<object>"})  # looks alike, is text

    [got] = pair.collector.wait_for(1)
    assert (got.event_type, got.payload) == ("x.good", {"good": "<object>"})
    assert drivers.driver_stats()["dropped"] == before + 1


def test_the_spool_driver_keeps_the_message_until_it_is_sent(pair, tmp_path):
    notifier = pair.notifier("nova_notifier.spool")
    notifier.audit(CTXT, "compute.instance.delete.end", {"instance_id": "i-9"})

    [got] = pair.collector.wait_for(1)
    assert (got.priority, got.event_type) == ("AUDIT", "compute.instance.delete.end")
    assert got.payload == {"instance_id": "i-9"}
    spool = tmp_path / "spool.db"
    assert stat.S_IMODE(os.stat(spool).st_mode) == 0o600
    drivers.flush_drivers(timeout=10)
    with sqlite3.connect(spool) as db:
        assert db.execute("SELECT COUNT(*) FROM spool").fetchone() == (0,)


def test_notifiers_on_one_transport_share_one_sender(pair):
    first = pair.notifier("nova_notifier.background")
    second = pair.notifier("nova_notifier.background").prepare(publisher_id="api.h")
    first.info(CTXT, "x.one", {"n": 1})
    second.info(CTXT, "x.two", {"n": 2})

    got = pair.collector.wait_for(2)
    assert sorted((g.event_type, g.publisher_id) for g in got) == [
        ("x.one", PUBLISHER),
        ("x.two", "api.h"),
    ]
    with drivers._LOCK:
        mine = [k for k in drivers._SENDERS if k[1] == id(pair.transport)]
    assert mine == [("background", id(pair.transport))]


def test_without_spool_path_the_spool_is_in_the_users_state_dir(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    env = _Pair()
    try:
        with caplog.at_level("INFO", logger="nova_notifier"):
            env.notifier("nova_notifier.spool").info(CTXT, "x.y", {"a": 1})
        env.collector.wait_for(1)
        [spool] = (tmp_path / "state" / "nova-notifier").glob("spool-*.db")
        assert stat.S_IMODE(os.stat(spool.parent).st_mode) == 0o700
        assert str(spool) in caplog.text
    finally:
        env.close()
    # the same broker, another process of this user: the same spool
    assert delivery.default_spool_path("fake:///") == str(spool)
    assert delivery.default_spool_path("rabbit://a:b@h:1/") == (
        delivery.default_spool_path("rabbit://a:other@h:1/")
    )
    assert delivery.default_spool_path("rabbit://a:b@h:1/") != (
        delivery.default_spool_path("rabbit://a:b@h:2/")
    )


def _conf_file(tmp_path, text: str):
    path = tmp_path / "nova.conf"
    path.write_text(textwrap.dedent(text))
    from oslo_config import cfg

    from nova_notifier.lifecycle import register_opts

    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf([], project="nova", default_config_files=[str(path)])
    return conf


def test_tuning_options_are_read_under_their_old_names(tmp_path):
    conf = _conf_file(
        tmp_path,
        """
        [notifications]
        queue_size = 7
        spool_path = /old/spool.db
        """,
    )
    assert conf.notification_delivery.queue_size == 7
    assert conf.notification_delivery.spool_path == "/old/spool.db"


def test_the_new_group_is_read_and_wins_over_the_old_name(tmp_path):
    conf = _conf_file(
        tmp_path,
        """
        [notifications]
        queue_size = 7
        [notification_delivery]
        queue_size = 9
        send_timeout = 2.5
        """,
    )
    assert conf.notification_delivery.queue_size == 9
    assert conf.notification_delivery.send_timeout == 2.5


def test_a_delivery_mode_contradicting_the_driver_is_refused():
    conf = make_conf(
        "fake://",
        "t",
        notifications__delivery_mode="background",
        oslo_messaging_notifications__driver=["nova_notifier.spool"],
    )
    with pytest.raises(ConfigError, match="contradicts"):
        nova_notifier.init(conf)


@pytest.mark.parametrize(
    ("mode", "driver"),
    [("direct", "nova_notifier.spool"), ("spool", "nova_notifier.spool")],
)
def test_the_librarys_helpers_deliver_through_the_configured_driver(
    tmp_path, mode, driver
):
    topic = f"nn-drv-{uuid.uuid4().hex[:10]}"
    conf = make_conf(
        "fake://",
        topic,
        notifications__delivery_mode=mode,
        oslo_messaging_notifications__driver=[driver],
        notification_delivery__spool_path=str(tmp_path / "s.db"),
    )
    nova_notifier.init(conf)
    collector = Collector()
    listener = _start_listener(nova_notifier.transport(), topic, collector)
    try:
        nova_notifier.get_notifier("compute", "h1").info(
            {}, "compute.instance.create.end", {"instance_id": "i-1"}
        )
        [got] = collector.wait_for(1)
        assert (got.publisher_id, got.event_type, got.priority) == (
            "compute.h1",
            "compute.instance.create.end",
            "INFO",
        )
        assert got.payload == {"instance_id": "i-1"}
        assert drivers.driver_stats()["sent"] >= 1
        assert (tmp_path / "s.db").exists()
    finally:
        _stop_listener(listener)
        nova_notifier.cleanup()  # stops the driver's sender on this transport
    with drivers._LOCK:
        assert not drivers._SENDERS
