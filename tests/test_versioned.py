"""notification_format: the legacy and the versioned message for each call.

Real oslo.messaging listeners on the versioned topic and the legacy one;
the broker tests run on the RabbitMQ at 127.0.0.1:5672.
"""

from __future__ import annotations

import logging
import uuid

import pytest
from oslo_context import context as oslo_context

import nova_notifier
from nova_notifier import lifecycle
from tests.conftest import (
    RABBIT_URL,
    Collector,
    _start_listener,
    _stop_listener,
    broker_available,
    make_conf,
)

INSTANCE_ID = "178b0921-8f85-4257-88b6-2e743b5a975c"
IMAGE_ID = "155d900f-4e14-4e4c-a73d-069cbf4541e6"
VOLUME_ID = "a07f71dc-8151-4e7d-a0cc-cd24a3f11113"


def instance(**changes):
    base = {
        "uuid": INSTANCE_ID,
        "user_id": "fake",
        "project_id": "proj",
        "display_name": "web-1",
        "hostname": "web-1",
        "host": "compute1",
        "node": "compute1",
        "vm_state": "active",
        "task_state": None,
        "power_state": 1,
        "image_ref": IMAGE_ID,
        "flavor": {"name": "m1.tiny", "flavorid": "1", "memory_mb": 512, "vcpus": 1},
        "metadata": {"role": "web"},
        "block_device_mapping": [
            {"volume_id": VOLUME_ID, "device_name": "/dev/vdb", "boot_index": None}
        ],
    }
    base.update(changes)
    return base


CONTEXT = oslo_context.RequestContext(
    user_id="fake", project_id="proj", request_id="req-1"
)


class Both:
    """The library set up with a listener on each of the two topics."""

    def __init__(self, url, **overrides):
        self.topic = f"nn-v-{uuid.uuid4().hex[:10]}"
        self.versioned_topic = f"{self.topic}-versioned"
        overrides.setdefault("notifications__notification_format", "both")
        overrides.setdefault(
            "notifications__versioned_notifications_topics", [self.versioned_topic]
        )
        overrides.setdefault(
            "notifications__notify_on_state_change", "vm_and_task_state"
        )
        self.conf = make_conf(url, self.topic, **overrides)
        nova_notifier.init(self.conf)
        self.legacy, self.versioned = Collector(), Collector()
        transport = lifecycle.transport()
        self._listeners = [
            _start_listener(transport, self.topic, self.legacy),
            _start_listener(transport, self.versioned_topic, self.versioned),
        ]
        self.background = url.startswith("fake")

    def settle(self):
        """Send a marker at INFO and ERROR on each topic (each priority is a
        queue of its own) and wait for them: everything sent before has
        arrived."""
        for topics, collector in (
            (None, self.legacy),
            ((self.versioned_topic,), self.versioned),
        ):
            before = len([i for i in collector.items if i.event_type == "nn.marker"])
            marker = nova_notifier.Notifier("test.marker", topics=topics)
            marker.info({}, "nn.marker", {})
            marker.error({}, "nn.marker", {})
            collector.wait_for(before + 2, event_type="nn.marker")
        return (
            [i for i in self.legacy.items if i.event_type != "nn.marker"],
            [i for i in self.versioned.items if i.event_type != "nn.marker"],
        )

    def close(self):
        for listener in self._listeners:
            _stop_listener(listener, in_background=self.background)
        nova_notifier.cleanup()


@pytest.fixture
def both():
    env = Both("fake://")
    yield env
    env.close()


def _types(items):
    return [(i.event_type, i.priority, i.publisher_id) for i in items]


def test_every_helper_sends_both_messages_on_a_real_broker():
    if not broker_available():
        pytest.fail("RabbitMQ does not answer on 127.0.0.1:5672")
    env = Both(RABBIT_URL)
    try:
        notifier = nova_notifier.get_notifier("compute", "compute1")
        nova_notifier.send_update(
            CONTEXT,
            instance(task_state="spawning"),
            instance(task_state=None),
            host="compute1",
        )
        nova_notifier.send_update_with_states(
            CONTEXT, instance(), "building", "active", "spawning", None, host="compute1"
        )
        nova_notifier.notify_about_instance_usage(
            notifier, CONTEXT, instance(), "create.end"
        )
        try:
            raise NovaStyleError("no valid host")
        except NovaStyleError as exc:
            nova_notifier.notify_about_instance_usage(
                notifier, CONTEXT, instance(), "create.error", fault=exc
            )
        nova_notifier.notify_usage_exists(notifier, CONTEXT, instance())
        nova_notifier.notify_about_instance_action(
            CONTEXT, instance(), "compute1", "lock"
        )
        legacy, versioned = env.settle()
    finally:
        env.close()
    # INFO and ERROR come through queues of their own: put them in send order
    legacy.sort(key=lambda i: str(i.metadata["timestamp"]))
    versioned.sort(key=lambda i: str(i.metadata["timestamp"]))
    assert _types(legacy) == [
        ("compute.instance.update", "INFO", "compute.compute1"),
        ("compute.instance.update", "INFO", "compute.compute1"),
        ("compute.instance.create.end", "INFO", "compute.compute1"),
        ("compute.instance.create.error", "ERROR", "compute.compute1"),
        ("compute.instance.exists", "INFO", "compute.compute1"),
    ]
    assert _types(versioned) == [
        ("instance.update", "INFO", "nova-compute:compute1"),
        ("instance.update", "INFO", "nova-compute:compute1"),
        ("instance.create.end", "INFO", "nova-compute:compute1"),
        ("instance.create.error", "ERROR", "nova-compute:compute1"),
        ("instance.exists", "INFO", "nova-compute:compute1"),
        ("instance.lock", "INFO", "nova-compute:compute1"),
    ]
    names = [i.payload["nova_object.name"] for i in versioned]
    assert names == [
        "InstanceUpdatePayload",
        "InstanceUpdatePayload",
        "InstanceCreatePayload",
        "InstanceCreatePayload",
        "InstanceExistsPayload",
        "InstanceActionPayload",
    ]
    # The same state decision as the legacy update.
    for old, new in zip(legacy[:2], versioned[:2], strict=True):
        states = new.payload["nova_object.data"]["state_update"]["nova_object.data"]
        assert states == {
            key: old.payload[key]
            for key in ("old_state", "state", "old_task_state", "new_task_state")
        }
    fault = versioned[3].payload["nova_object.data"]["fault"]["nova_object.data"]
    assert fault["exception"] == "NovaStyleError"
    assert fault["exception_message"] == "no valid host"
    assert fault["module_name"].split(".")[-1] == "test_versioned"
    assert (
        fault["function_name"]
        == "test_every_helper_sends_both_messages_on_a_real_broker"
    )
    assert versioned[2].payload["nova_object.data"]["fault"] is None


def test_versioned_alone_sends_no_legacy_message(both):
    both.conf.set_override("notification_format", "versioned", group="notifications")
    notifier = nova_notifier.get_notifier("compute", "compute1")
    nova_notifier.notify_about_instance_usage(
        notifier, CONTEXT, instance(), "pause.start"
    )
    nova_notifier.send_update_with_states(
        CONTEXT, instance(), "active", "paused", None, None
    )
    legacy, versioned = both.settle()
    assert legacy == []
    assert [i.event_type for i in versioned] == [
        "instance.pause.start",
        "instance.update",
    ]


def test_unversioned_sends_no_versioned_message(both):
    both.conf.set_override("notification_format", "unversioned", group="notifications")
    notifier = nova_notifier.get_notifier("compute", "compute1")
    nova_notifier.notify_about_instance_usage(
        notifier, CONTEXT, instance(), "pause.start"
    )
    legacy, versioned = both.settle()
    assert [i.event_type for i in legacy] == ["compute.instance.pause.start"]
    assert versioned == []


def test_the_format_is_also_read_from_default():
    conf = make_conf("fake://", "nn-x")
    conf.set_override("notification_format", "both", group="notifications")
    assert conf.notifications.notification_format == "both"
    from oslo_config import cfg

    conf2 = cfg.ConfigOpts()
    nova_notifier.register_opts(conf2)
    conf2(
        ["--config-file", _write_conf("[DEFAULT]\nnotification_format = versioned\n")]
    )
    assert conf2.notifications.notification_format == "versioned"


def _write_conf(text):
    import tempfile

    handle = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
    handle.write(text)
    handle.close()
    return handle.name


@pytest.mark.parametrize(
    ("suffix", "event_type", "payload"),
    [
        (
            "resize.confirm.start",
            "instance.resize_confirm.start",
            "InstanceActionPayload",
        ),
        ("finish_resize.end", "instance.resize_finish.end", "InstanceActionPayload"),
        (
            "resize.prep.start",
            "instance.resize_prep.start",
            "InstanceActionResizePrepPayload",
        ),
        (
            "rebuild.scheduled",
            "instance.rebuild_scheduled",
            "InstanceActionRebuildPayload",
        ),
        ("rescue.end", "instance.rescue.end", "InstanceActionRescuePayload"),
        (
            "live_migration._post.start",
            "instance.live_migration_post.start",
            "InstanceActionPayload",
        ),
        (
            "live.migration.abort.end",
            "instance.live_migration_abort.end",
            "InstanceActionPayload",
        ),
        ("shelve_offload.end", "instance.shelve_offload.end", "InstanceActionPayload"),
    ],
)
def test_legacy_suffixes_map_to_novas_versioned_events(
    both, suffix, event_type, payload
):
    notifier = nova_notifier.get_notifier("compute", "compute1")
    nova_notifier.notify_about_instance_usage(notifier, CONTEXT, instance(), suffix)
    legacy, versioned = both.settle()
    assert [i.event_type for i in legacy] == [f"compute.instance.{suffix}"]
    assert [(i.event_type, i.payload["nova_object.name"]) for i in versioned] == [
        (event_type, payload)
    ]


@pytest.mark.parametrize(
    "suffix",
    [
        "force_delete.start",
        "create_ip.end",
        "delete_ip.start",
        "my_own.thing.end",
        "resize_prep.start",
    ],
)
def test_a_legacy_event_nova_pairs_with_nothing_sends_no_versioned_one(both, suffix):
    notifier = nova_notifier.get_notifier("compute", "compute1")
    nova_notifier.notify_about_instance_usage(notifier, CONTEXT, instance(), suffix)
    legacy, versioned = both.settle()
    assert [i.event_type for i in legacy] == [f"compute.instance.{suffix}"]
    assert versioned == []
    assert nova_notifier.stats()["dropped"] == 0


@pytest.mark.parametrize(
    ("suffix", "extra", "field", "event_type"),
    [
        ("snapshot.end", "snapshot_image_id", IMAGE_ID, "instance.snapshot.end"),
        ("volume.attach", "volume_id", VOLUME_ID, "instance.volume_attach.end"),
        ("volume.detach", "volume_id", VOLUME_ID, "instance.volume_detach.end"),
    ],
)
def test_payloads_needing_data_are_sent_only_with_it(
    both, suffix, extra, field, event_type
):
    notifier = nova_notifier.get_notifier("compute", "compute1")
    nova_notifier.notify_about_instance_usage(notifier, CONTEXT, instance(), suffix)
    nova_notifier.notify_about_instance_usage(
        notifier, CONTEXT, instance(), suffix, extra_usage_info={extra: field}
    )
    legacy, versioned = both.settle()
    assert len(legacy) == 2
    assert [i.event_type for i in versioned] == [event_type]
    assert versioned[0].payload["nova_object.data"][extra] == field


def test_a_value_novas_types_refuse_drops_the_versioned_message_only(both, caplog):
    notifier = nova_notifier.get_notifier("compute", "compute1")
    with caplog.at_level(logging.WARNING):
        nova_notifier.notify_about_instance_usage(
            notifier, CONTEXT, instance(vm_state="sleeping"), "pause.start"
        )
        nova_notifier.notify_about_instance_usage(
            notifier, CONTEXT, instance(uuid="not-a-uuid"), "pause.start"
        )
    legacy, versioned = both.settle()
    assert [i.payload["state"] for i in legacy] == ["sleeping", "active"]
    assert versioned == []
    assert nova_notifier.stats()["dropped"] == 2
    assert "instance.pause.start" in caplog.text


class NovaStyleError(Exception):
    """Formats its own message, as Nova's exceptions do."""

    def format_message(self):
        return str(self)


def _secret_in_a_frame(secret):
    raise ValueError(f"login failed for admin with {secret} at db")


def test_secrets_are_masked_and_harmless_values_arrive_unchanged(both):
    notifier = nova_notifier.get_notifier("compute", "compute1")
    meta = {"admin_pass": "s3cr3t", "password_hint": "ask-ops", "role": "token-server"}
    try:
        raise NovaStyleError("connect failed: password=s3cr3t host=db-token-1")
    except NovaStyleError as exc:
        nova_notifier.notify_about_instance_usage(
            notifier,
            CONTEXT,
            instance(metadata=meta, display_name="my-token-server"),
            "reboot.error",
            fault=exc,
        )
    try:
        _secret_in_a_frame("SEKRET8")  # no pattern can tell this is a secret
    except ValueError as exc:
        nova_notifier.notify_about_instance_usage(
            notifier, CONTEXT, instance(), "reboot.error", fault=exc
        )
    legacy, versioned = both.settle()
    data = versioned[0].payload["nova_object.data"]
    assert "s3cr3t" not in str(versioned[0].payload)
    assert data["metadata"]["role"] == "token-server"
    assert data["display_name"] == "my-token-server"
    assert data["metadata"]["admin_pass"] == "***"
    fault = data["fault"]["nova_object.data"]
    assert fault["exception_message"] == "connect failed: password=*** host=db-token-1"
    assert versioned[0].priority == "ERROR"
    # An exception without format_message(): its class name, as the legacy
    # payload sends; the traceback keeps its frames, not its source lines.
    plain = versioned[1].payload["nova_object.data"]["fault"]["nova_object.data"]
    assert "SEKRET8" not in str(versioned[1].payload)
    assert "SEKRET8" not in str(legacy[1].payload)
    assert plain["exception_message"] == "ValueError"
    assert "in _secret_in_a_frame" in plain["traceback"]
    assert plain["function_name"] == "_secret_in_a_frame"


def test_aware_datetimes_go_out_in_utc(both):
    import datetime

    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    nova_notifier.notify_about_instance_action(
        CONTEXT,
        instance(
            created_at=datetime.datetime(2012, 10, 29, 13, 42, 11, tzinfo=plus_two),
            launched_at=datetime.datetime(2012, 10, 29, 13, 42, 11),
            deleted_at="2012-10-29 13:42:11",
        ),
        "c",
        "pause",
        "start",
    )
    _, versioned = both.settle()
    data = versioned[0].payload["nova_object.data"]
    assert data["created_at"] == "2012-10-29T11:42:11Z"
    assert data["launched_at"] == "2012-10-29T13:42:11Z"
    assert data["deleted_at"] == "2012-10-29T13:42:11Z"


def test_an_incomplete_nested_object_drops_the_versioned_message(both):
    notifier = nova_notifier.get_notifier("compute", "compute1")
    nova_notifier.notify_about_instance_usage(
        notifier,
        CONTEXT,
        instance(keypairs=[{"public_key": "ssh-rsa A"}]),
        "create.end",
    )
    nova_notifier.notify_about_instance_usage(
        notifier,
        CONTEXT,
        instance(keypairs=[{"name": "k", "public_key": "ssh-rsa A"}]),
        "create.end",
    )
    legacy, versioned = both.settle()
    assert len(legacy) == 2
    assert len(versioned) == 1
    keypair = versioned[0].payload["nova_object.data"]["keypairs"][0]
    assert keypair["nova_object.data"]["name"] == "k"
    assert nova_notifier.stats()["dropped"] == 1


def test_rebuild_scheduled_and_exists_take_novas_source(both):
    conductor = nova_notifier.get_notifier("compute", "cond1")
    nova_notifier.notify_about_instance_usage(
        conductor, CONTEXT, instance(), "rebuild.scheduled"
    )
    nova_notifier.notify_usage_exists(
        nova_notifier.get_notifier("nova-audit", "h1"), CONTEXT, instance()
    )
    _, versioned = both.settle()
    assert [i.publisher_id for i in versioned] == [
        "nova-conductor:cond1",
        "nova-compute:h1",
    ]


def test_a_fork_leaves_the_child_a_free_lock():
    nova_notifier.cleanup()
    lifecycle._STATE.other_lock.acquire()  # held by a thread at fork time
    lifecycle._after_fork_in_child()
    assert not lifecycle._STATE.other_lock.locked()
    assert lifecycle._STATE.other_direct == {}


def test_block_devices_follow_bdms_in_notifications(both):
    nova_notifier.notify_about_instance_action(
        CONTEXT, instance(), "compute1", "pause", "start"
    )
    both.conf.set_override("bdms_in_notifications", True, group="notifications")
    nova_notifier.notify_about_instance_action(
        CONTEXT, instance(), "compute1", "pause", "end"
    )
    nova_notifier.notify_about_instance_action(
        CONTEXT, instance(block_device_mapping=[]), "compute1", "pause", "end"
    )
    both.conf.set_override("bdms_in_notifications", False, group="notifications")
    given = [
        {
            "volume_id": VOLUME_ID,
            "device_name": "/dev/vdc",
            "delete_on_termination": True,
        }
    ]
    nova_notifier.notify_about_instance_action(
        CONTEXT, instance(), "compute1", "unpause", "start", bdms=given
    )
    _, versioned = both.settle()
    devices = [i.payload["nova_object.data"]["block_devices"] for i in versioned]
    assert devices[0] is None
    assert [d["nova_object.data"]["device_name"] for d in devices[1]] == ["/dev/vdb"]
    assert devices[2] == []
    assert devices[3][0]["nova_object.data"] == {
        "volume_id": VOLUME_ID,
        "device_name": "/dev/vdc",
        "delete_on_termination": True,
        "boot_index": None,
        "tag": None,
    }


def test_publisher_source_follows_novas_rule(both):
    for service in ("compute", "nova-conductor"):
        nova_notifier.notify_about_instance_usage(
            nova_notifier.get_notifier(service, "host.example.org"),
            CONTEXT,
            instance(),
            "delete.start",
        )
    nova_notifier.notify_about_instance_usage(
        nova_notifier.get_notifier("compute", "host2"), CONTEXT, instance(), "evacuate"
    )
    nova_notifier.notify_about_instance_action(
        CONTEXT, instance(), None, "unlock", source="nova-api"
    )
    _, versioned = both.settle()
    assert [i.publisher_id for i in versioned] == [
        "nova-compute:host.example.org",
        "nova-conductor:host.example.org",
        "nova-api:host2",
        "nova-api:testhost",
    ]


def test_request_id_only_with_a_user_and_a_project(both):
    periodic = oslo_context.RequestContext(request_id="req-periodic")
    nova_notifier.notify_about_instance_action(
        CONTEXT, instance(), "c", "pause", "start"
    )
    nova_notifier.notify_about_instance_action(
        periodic, instance(), "c", "pause", "end"
    )
    _, versioned = both.settle()
    ids = [i.payload["nova_object.data"]["request_id"] for i in versioned]
    assert ids == ["req-1", None]


def test_action_without_the_data_its_payload_needs_is_a_counted_drop(both):
    nova_notifier.notify_about_instance_action(
        CONTEXT, instance(), "c", "volume_attach", "start"
    )
    nova_notifier.notify_about_instance_action(
        CONTEXT, instance(), "c", "create", "start"
    )
    _, versioned = both.settle()
    assert [i.payload["nova_object.name"] for i in versioned] == [
        "InstanceCreatePayload"
    ]
    assert nova_notifier.stats()["dropped"] == 1


def test_the_versioned_topics_option_is_followed(both):
    other = f"{both.topic}-other"
    collector = Collector()
    listener = _start_listener(lifecycle.transport(), other, collector)
    try:
        both.conf.set_override(
            "versioned_notifications_topics",
            [both.versioned_topic, other],
            group="notifications",
        )
        nova_notifier.notify_about_instance_action(
            CONTEXT, instance(), "c", "pause", "start"
        )
        both.settle()
        assert [i.event_type for i in collector.wait_for(1)] == ["instance.pause.start"]
        events = [i.event_type for i in both.versioned.items]
        assert [e for e in events if e != "nn.marker"] == ["instance.pause.start"]
    finally:
        _stop_listener(listener, in_background=True)


def test_a_legacy_only_service_never_loads_versionedobjects():
    import subprocess
    import sys

    code = (
        "import sys, nova_notifier\n"
        "from nova_notifier.testing.config import make_conf\n"
        "nova_notifier.init(make_conf('fake://', notify_on_state_change='vm_state'))\n"
        "n = nova_notifier.get_notifier('compute', 'h')\n"
        "i = {'uuid': 'u', 'vm_state': 'active'}\n"
        "nova_notifier.notify_about_instance_usage(n, {}, i, 'create.end')\n"
        "nova_notifier.send_update_with_states({}, i, 'a', 'b', None, None)\n"
        "print('oslo_versionedobjects' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("driver", ["nova_notifier.background", "nova_notifier.spool"])
def test_versioned_messages_go_through_the_librarys_drivers(tmp_path, driver):
    env = Both(
        "fake://",
        oslo_messaging_notifications__driver=[driver],
        notification_delivery__spool_path=str(tmp_path / "spool.db"),
    )
    try:
        queued = nova_notifier.driver_stats()["queued"]
        notifier = nova_notifier.get_notifier("compute", "compute1")
        nova_notifier.notify_about_instance_usage(
            notifier, CONTEXT, instance(), "pause.start"
        )
        legacy, versioned = env.settle()
        # both messages (and the four markers) went through the driver
        assert nova_notifier.driver_stats()["queued"] - queued == 6
    finally:
        env.close()
    assert [i.event_type for i in legacy] == ["compute.instance.pause.start"]
    assert [(i.event_type, i.publisher_id) for i in versioned] == [
        ("instance.pause.start", "nova-compute:compute1")
    ]
