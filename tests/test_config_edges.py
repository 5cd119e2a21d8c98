"""Configuration edges: oslo.messaging's defaults, a failing init(), the
application's own [DEFAULT] host, option copies, the dependency list."""

from __future__ import annotations

import ast
import configparser
import importlib.metadata
import pathlib
import re
import sys
import uuid

import oslo_messaging
import pytest
from conftest import (
    PRIORITIES,
    RABBIT_URL,
    Collector,
    _start_listener,
    _stop_listener,
    broker_available,
    make_conf,
)
from oslo_config import cfg

import nova_notifier
from nova_notifier import opts
from nova_notifier.exceptions import ConfigError
from nova_notifier.tools.amqp_queues import delete_queues

ROOT = pathlib.Path(__file__).resolve().parent.parent
INSTANCE = {"uuid": "7e57ab1e-0000-4000-8000-000000000001", "vm_state": "active"}


def emit_create_end(host="h1"):
    compute = nova_notifier.get_notifier("compute", host)
    nova_notifier.notify_about_instance_usage(compute, {}, INSTANCE, "create.end")


@pytest.mark.broker
@pytest.mark.parametrize("mode", ["direct", "background", "spool"])
def test_default_transport_url_without_a_host_works_in_every_mode(tmp_path, mode):
    """``rabbit://`` (oslo.messaging's default) is guest@localhost:5672."""
    if not broker_available():
        pytest.fail("RabbitMQ is not answering on 127.0.0.1:5672 (run .ci/run)")
    topic = f"nn-default-url-{uuid.uuid4().hex[:10]}"
    listen_transport = oslo_messaging.get_notification_transport(
        make_conf(RABBIT_URL, topic)
    )
    collector = Collector()
    listener = _start_listener(listen_transport, topic, collector)
    conf = make_conf(RABBIT_URL, topic, notifications__delivery_mode=mode)
    conf.clear_override("transport_url")
    assert conf.transport_url == "rabbit://"
    if mode == "spool":
        conf.set_override("spool_path", str(tmp_path / "s.db"), "notification_delivery")
    try:
        nova_notifier.init(conf)
        emit_create_end()
        (item,) = collector.wait_for(1, "compute.instance.create.end", timeout=20)
        assert (item.priority, item.publisher_id) == ("INFO", "compute.h1")
        assert item.payload["instance_id"] == INSTANCE["uuid"]
        assert nova_notifier.stats()["dropped"] == 0
    finally:
        nova_notifier.cleanup()
        _stop_listener(listener)
        listen_transport.cleanup()
        delete_queues(RABBIT_URL, [f"{topic}.{p}" for p in PRIORITIES])


def _failing_transport(conf):
    conf.set_override("transport_url", "nosuch://")


def _failing_option(conf):
    conf.set_override("instance_usage_audit_period", "hour@99")


@pytest.mark.parametrize("breaks", [_failing_transport, _failing_option])
def test_a_failing_init_leaves_the_previous_set_up_working(fake_env, breaks):
    other = make_conf("fake://", "elsewhere")
    breaks(other)
    with pytest.raises((ConfigError, oslo_messaging.DriverLoadFailure)):
        nova_notifier.init(other)
    assert nova_notifier.is_initialized()
    emit_create_end()
    (item,) = fake_env.settle()
    assert (item.event_type, item.publisher_id) == (
        "compute.instance.create.end",
        "compute.h1",
    )
    assert nova_notifier.stats()["sent"] >= 1


def _app_host_opt():
    return cfg.StrOpt("host", default="app-default", help="The app's own host.")


def test_app_registers_host_after_init(fake_env):
    fake_env.conf.register_opt(_app_host_opt())  # must not raise
    fake_env.conf.clear_override("host")
    assert fake_env.conf.host == "app-default"
    nova_notifier.notify_about_instance_usage(
        nova_notifier.get_notifier("compute"), {}, INSTANCE, "create.end"
    )
    (item,) = fake_env.settle()
    assert item.publisher_id == "compute.app-default"


def test_app_registers_host_after_monkey_patch():
    conf = cfg.ConfigOpts()
    conf([], default_config_files=[])
    assert nova_notifier.monkey_patch(conf) == 0  # registers the options
    conf.register_opt(_app_host_opt())
    assert conf.host == "app-default"


def test_an_app_host_registered_first_is_the_one_read():
    conf = cfg.ConfigOpts()
    conf([], default_config_files=[])
    conf.register_opt(_app_host_opt())
    nova_notifier.register_opts(conf)
    assert conf.host == "app-default"


def test_a_different_option_still_clashes():
    """Only [DEFAULT] host is adopted; other duplicates are still errors."""
    conf = cfg.ConfigOpts()
    conf([], default_config_files=[])
    nova_notifier.register_opts(conf)
    with pytest.raises(cfg.DuplicateOptError):
        conf.register_opt(
            cfg.StrOpt("notify_on_state_change", help="not ours"),
            group="notifications",
        )


def test_list_opts_returns_copies():
    first = opts.list_opts()
    for _, group_opts in first:
        for opt in group_opts:
            opt.default = "changed"
            opt.help = "changed"
    again = dict(opts.list_opts())
    assert all(opt.default != "changed" for opt in again["notifications"])
    conf = cfg.ConfigOpts()
    conf([], default_config_files=[])
    nova_notifier.register_opts(conf)
    assert conf.notifications.delivery_mode == "direct"


def _imported_top_levels(in_functions: bool = False) -> set[str]:
    """What the package imports at module level (or, with
    ``in_functions``, only inside a function: imported when it runs)."""
    names: set[str] = set()
    for path in (ROOT / "nova_notifier").rglob("*.py"):
        tree = ast.parse(path.read_text())
        lazy = {
            id(node)
            for func in ast.walk(tree)
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef))
            for node in ast.walk(func)
        }
        for node in ast.walk(tree):
            if (id(node) in lazy) != in_functions:
                continue
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"nova_notifier", "__future__"}


def _requirements(extras: bool = False) -> set[str]:
    """install_requires (with ``extras``, the extras' requirements too)."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    lines = parser["options"]["install_requires"].split("\n")
    if extras:
        for extra in parser["options.extras_require"].values():
            lines += extra.split("\n")
    return {
        re.split(r"[<>=!~ ;\[]", line.strip())[0].lower()
        for line in lines
        if line.strip()
    }


def test_requirements_are_exactly_what_the_package_uses():
    distributions = importlib.metadata.packages_distributions()
    required = _requirements()
    provided_by = {
        module: {dist.lower() for dist in distributions.get(module, [module])}
        for module in _imported_top_levels()
    }
    unlisted = {m for m, dists in provided_by.items() if not dists & required}
    assert not unlisted, f"imported but not in install_requires: {unlisted}"
    # Imported inside a function only, so an extra may provide it
    # (jsonschema, for nova_notifier.schemas.validate(), in [test]).
    optional = _requirements(extras=True)
    lazily = {
        module: {dist.lower() for dist in distributions.get(module, [module])}
        for module in _imported_top_levels(in_functions=True) - set(provided_by)
    }
    unlisted = {m for m, dists in lazily.items() if not dists & optional}
    assert not unlisted, f"imported but in no requirement or extra: {unlisted}"
    used = set().union(*provided_by.values(), *lazily.values())
    # Loaded by name from etc/api-paste.ini, not imported.
    used.add("oslo.middleware")
    assert required <= used, f"required but never used: {required - used}"


def test_the_library_options_stay_hashable_for_oslo_fixtures():
    from oslo_config import fixture

    conf = cfg.ConfigOpts()
    conf([], default_config_files=[])
    fix = fixture.Config(conf)
    fix.setUp()
    try:
        for group, group_opts in opts.list_opts():
            fix.register_opts(group_opts, group=None if group == "DEFAULT" else group)
        assert len({opt for _, group_opts in opts.list_opts() for opt in group_opts})
        fix.config(host="fixture-host")
        assert conf.host == "fixture-host"
    finally:
        fix.cleanUp()
