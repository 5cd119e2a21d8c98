"""Options, init()/cleanup() and configuration files."""

from __future__ import annotations

import contextlib
import importlib.metadata
import textwrap
import uuid

import oslo_messaging
import pytest
from conftest import Collector, Env, make_conf
from oslo_config import cfg

import nova_notifier
from nova_notifier import lifecycle

LEVELS = ("debug", "info", "warn", "error", "critical")
INSTANCE = {"uuid": "u-cfg-1", "vm_state": "active", "task_state": None}


def _topic():
    return f"nn-test-{uuid.uuid4().hex[:12]}"


def _wire(conf, topic, host="testhost"):
    """Send through fake:// to ``topic`` (a config file cannot know the topic)."""
    nova_notifier.register_opts(conf)
    conf.set_override("transport_url", "fake://")
    conf.set_override("driver", ["messagingv2"], group="oslo_messaging_notifications")
    conf.set_override("topics", [topic], group="oslo_messaging_notifications")
    if host is not None:
        conf.set_override("host", host)
    return conf


@contextlib.contextmanager
def running(conf, topic):
    """init(conf) with a listener on the library's transport, then cleanup()."""
    nova_notifier.init(conf)
    collector = Collector()
    listener = oslo_messaging.get_notification_listener(
        lifecycle.transport(),
        [oslo_messaging.Target(topic=topic)],
        [collector],
        executor="threading",
    )
    listener.start()
    try:
        yield Env(conf, collector, topic)
    finally:
        listener.stop()
        listener.wait()
        nova_notifier.cleanup()


@pytest.fixture(params=["--config-file", "default_config_files"])
def load_file(request, tmp_path):
    """Build a ConfigOpts from a config file, passed either way oslo.config allows."""

    def load(text):
        path = tmp_path / "nova-notifier.conf"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        conf = cfg.ConfigOpts()
        if request.param == "--config-file":
            conf(
                ["--config-file", str(path)],
                project="nn-tests",
                default_config_files=[],
            )
        else:
            conf([], project="nn-tests", default_config_files=[str(path)])
        return conf

    return load


@pytest.fixture
def uninitialised():
    nova_notifier.cleanup()
    yield
    nova_notifier.cleanup()


def _names(opts):
    return [opt.name for opt in opts]


def test_list_opts_lists_every_option_under_its_group():
    groups = dict(nova_notifier.list_opts())

    assert set(groups) == {"DEFAULT", "notifications", "notification_delivery"}
    assert set(_names(groups["DEFAULT"])) == {
        "host",
        "instance_usage_audit_period",
        "monkey_patch",
        "monkey_patch_modules",
    }
    assert {
        "notify_on_state_change",
        "notify_on_api_faults",
        "default_level",
        "default_publisher_id",
        "delivery_mode",
    } <= set(_names(groups["notifications"]))
    delivery = {
        "queue_size",
        "spool_path",
        "spool_sync",
        "spool_max_bytes",
        "sender_batch_size",
        "send_timeout",
        "flush_timeout",
        "retry_backoff_max",
        "dead_letter_after",
    }
    assert set(_names(groups["notification_delivery"])) == delivery
    assert not delivery & set(_names(groups["notifications"]))


def test_options_default_to_nova_defaults():
    conf = make_conf("fake://", _topic())

    assert conf.notifications.notify_on_state_change is None
    assert conf.notifications.notify_on_api_faults is False
    assert conf.notifications.default_level == "INFO"
    assert conf.notifications.default_publisher_id is None
    assert conf.monkey_patch is False
    assert conf.monkey_patch_modules == []
    assert conf.instance_usage_audit_period == "month"


def test_list_opts_is_the_oslo_config_opts_entry_point():
    [entry] = [
        ep
        for ep in importlib.metadata.entry_points(group="oslo.config.opts")
        if ep.name == "nova_notifier"
    ]

    assert entry.load() is nova_notifier.list_opts


def test_register_opts_twice_is_harmless():
    conf = cfg.ConfigOpts()
    nova_notifier.register_opts(conf)
    nova_notifier.register_opts(conf)
    conf([], project="nn-tests", default_config_files=[])

    assert conf.notifications.default_level == "INFO"


@pytest.mark.parametrize(
    ("section", "line", "option"),
    [
        ("notifications", "notify_on_state_change = bogus", "notify_on_state_change"),
        ("DEFAULT", "notify_on_state_change = bogus", "notify_on_state_change"),
        ("notifications", "notify_on_api_faults = maybe", "notify_on_api_faults"),
        ("notifications", "default_level = LOUD", "default_level"),
        ("DEFAULT", "default_notification_level = LOUD", "default_level"),
        (
            "DEFAULT",
            "instance_usage_audit_period = week",
            "instance_usage_audit_period",
        ),
        (
            "DEFAULT",
            "instance_usage_audit_period = hour@99",
            "instance_usage_audit_period",
        ),
        ("DEFAULT", "monkey_patch_modules = nocolon", "monkey_patch_modules"),
        ("DEFAULT", "monkey_patch_modules = some.module:", "monkey_patch_modules"),
    ],
)
def test_init_rejects_an_invalid_value_naming_the_option(
    fake_env, load_file, section, line, option
):
    bad = _wire(load_file(f"[{section}]\n{line}\n"), _topic())

    with pytest.raises(nova_notifier.ConfigError) as excinfo:
        nova_notifier.init(bad)

    assert option in str(excinfo.value)
    # The configuration in use before the failed init() keeps working.
    fake_env.override("notify_on_api_faults", True, group="notifications")
    nova_notifier.send_api_fault("http://h/x", 500, ValueError())
    assert [g.event_type for g in fake_env.settle()] == ["api.fault"]


def test_bad_value_before_any_init_leaves_library_uninitialised(
    uninitialised, load_file
):
    bad = _wire(load_file("[notifications]\ndefault_level = LOUD\n"), _topic())

    with pytest.raises(nova_notifier.ConfigError, match="default_level"):
        nova_notifier.init(bad)

    assert not nova_notifier.is_initialized()


def test_deprecated_default_names_still_work(load_file):
    topic = _topic()
    conf = _wire(
        load_file(
            """
            [DEFAULT]
            notify_on_state_change = vm_and_task_state
            notify_api_faults = true
            default_notification_level = ERROR
            default_publisher_id = legacy.publisher
            """
        ),
        topic,
    )

    with running(conf, topic) as env:
        assert conf.notifications.notify_on_state_change == "vm_and_task_state"
        assert conf.notifications.notify_on_api_faults is True
        assert conf.notifications.default_level == "ERROR"
        assert conf.notifications.default_publisher_id == "legacy.publisher"

        nova_notifier.notify_decorator("legacy.call", lambda: None)()
        nova_notifier.send_api_fault("http://h/servers", 503, RuntimeError())
        old = dict(INSTANCE, task_state="spawning")
        nova_notifier.send_update({}, old, INSTANCE)

        got = env.settle(priorities=LEVELS)
        assert sorted((g.event_type, g.priority, g.publisher_id) for g in got) == [
            ("api.fault", "ERROR", "api.testhost"),
            ("compute.instance.update", "INFO", "compute.testhost"),
            ("legacy.call", "ERROR", "legacy.publisher"),
        ]
        [update] = [g for g in got if g.event_type == "compute.instance.update"]
        # vm_and_task_state: a task_state change alone is a transition.
        assert (update.payload["old_task_state"], update.payload["new_task_state"]) == (
            "spawning",
            None,
        )


def test_new_names_win_over_deprecated_ones(load_file):
    conf = load_file(
        """
        [DEFAULT]
        default_notification_level = ERROR
        [notifications]
        default_level = DEBUG
        """
    )
    nova_notifier.register_opts(conf)

    assert conf.notifications.default_level == "DEBUG"


@pytest.mark.parametrize(
    "app_opt",
    [
        cfg.StrOpt("host", default="app-host", help="The application's own host."),
        cfg.HostAddressOpt("host", default="app-host", help="Another kind of host."),
    ],
    ids=["StrOpt", "HostAddressOpt"],
)
def test_applications_own_host_option_is_kept(app_opt):
    topic = _topic()
    conf = cfg.ConfigOpts()
    conf.register_opt(app_opt)
    conf([], project="nn-tests", default_config_files=[])
    conf = _wire(conf, topic, host=None)

    with running(conf, topic) as env:
        env.override("notify_on_api_faults", True, group="notifications")
        nova_notifier.send_api_fault("http://h/x", 500, ValueError())

        [got] = env.settle()
        assert (got.event_type, got.publisher_id) == ("api.fault", "api.app-host")


def test_init_twice_reinitialises_on_the_new_configuration(fake_env):
    first_transport = lifecycle.transport()
    topic = _topic()
    conf = make_conf("fake://", topic, host="second-host")

    with running(conf, topic) as env:
        assert lifecycle.transport() is not first_transport
        nova_notifier.notify_decorator("again.event", lambda: None)()

        assert [(g.event_type, g.publisher_id) for g in env.settle()] == [
            ("again.event", "second-host")
        ]


def test_cleanup_without_init_is_safe(uninitialised):
    nova_notifier.cleanup()
    nova_notifier.cleanup()

    assert not nova_notifier.is_initialized()


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda: nova_notifier.send_api_fault("http://h/", 500, ValueError()),
            id="send_api_fault",
        ),
        pytest.param(
            lambda: nova_notifier.notify_decorator("e", lambda: None)(),
            id="decorated-call",
        ),
        pytest.param(
            lambda: nova_notifier.send_update({}, INSTANCE, INSTANCE), id="send_update"
        ),
        pytest.param(
            lambda: nova_notifier.send_update_with_states(
                {}, INSTANCE, None, "building", None, None
            ),
            id="send_update_with_states",
        ),
        pytest.param(
            lambda: nova_notifier.notify_about_instance_usage(
                nova_notifier.Notifier("compute.h"), {}, INSTANCE, "create.end"
            ),
            id="notify_about_instance_usage",
        ),
        pytest.param(
            lambda: nova_notifier.notify_usage_exists(
                nova_notifier.Notifier("compute.h"), {}, INSTANCE
            ),
            id="notify_usage_exists",
        ),
        pytest.param(
            lambda: nova_notifier.Notifier("compute.h").info({}, "e", {}),
            id="Notifier.info",
        ),
    ],
)
@pytest.mark.parametrize("state", ["never-initialised", "after-cleanup"])
def test_calls_before_init_are_dropped_and_counted(state, call):
    nova_notifier.cleanup()
    if state == "after-cleanup":
        nova_notifier.init(make_conf("fake://", _topic()))
        nova_notifier.cleanup()
    dropped = nova_notifier.stats()["dropped"]

    assert call() is None

    assert nova_notifier.stats()["dropped"] == dropped + 1


def test_get_notifier_before_init_raises_naming_init(uninitialised):
    with pytest.raises(nova_notifier.NotInitializedError, match=r"init\(\)"):
        nova_notifier.get_notifier("compute")
