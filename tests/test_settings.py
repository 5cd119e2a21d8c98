"""The settings snapshot: the emit path reads no option, yet follows every
change made through oslo.config."""

from __future__ import annotations

import pytest
from oslo_config import cfg

import nova_notifier

UUID = "5e77195e-0000-4000-8000-000000000001"
OLD = {"uuid": UUID, "vm_state": "building", "task_state": None, "image_ref": "img-1"}
NEW = {**OLD, "task_state": "spawning"}


def updates(env):
    return [g for g in env.settle() if g.event_type == "compute.instance.update"]


def test_a_change_after_init_is_picked_up_at_the_next_call(fake_env):
    conf = fake_env.conf
    conf.set_override("notify_on_state_change", "vm_and_task_state", "notifications")
    nova_notifier.send_update({}, OLD, NEW)
    (first,) = updates(fake_env)
    assert (first.payload["old_task_state"], first.payload["new_task_state"]) == (
        None,
        "spawning",
    )
    conf.clear_override("notify_on_state_change", "notifications")
    nova_notifier.send_update({}, OLD, NEW)
    assert updates(fake_env) == [first]  # off again: nothing new
    conf.set_override("notify_on_state_change", "vm_state", "notifications")
    conf.set_override("image_endpoint", "https://glance.example:9292/", "notifications")
    nova_notifier.send_update({}, OLD, NEW)
    second = updates(fake_env)[-1]
    assert second is not first
    assert second.payload["image_ref_url"] == "https://glance.example:9292/images/img-1"


def test_the_emit_path_reads_no_option_when_nothing_changed(fake_env, monkeypatch):
    conf = fake_env.conf
    conf.set_override("notify_on_state_change", "vm_and_task_state", "notifications")
    conf.set_override("notify_on_api_faults", True, "notifications")
    nova_notifier.send_update({}, OLD, NEW)  # takes the new snapshot
    reads = []
    original = cfg.ConfigOpts._get

    def counting(self, name, *args, **kwargs):
        reads.append(name)
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(cfg.ConfigOpts, "_get", counting)
    compute = nova_notifier.get_notifier("compute", "h1")
    for _ in range(20):
        nova_notifier.send_update({}, OLD, NEW)
        nova_notifier.notify_about_instance_usage(compute, {}, NEW, "create.end")
        nova_notifier.send_api_fault("http://api/x", 500, "HTTP 500")
    monkeypatch.undo()
    assert reads == []
    assert len(fake_env.settle()) == 61


def test_refresh_reads_the_configuration_now(fake_env):
    fake_env.conf.set_override("host", "renamed-host")
    assert nova_notifier.refresh().host == "renamed-host"
    assert nova_notifier.get_notifier("compute").publisher_id == "compute.renamed-host"


def test_refresh_before_init_is_an_error():
    nova_notifier.cleanup()
    with pytest.raises(nova_notifier.NotInitializedError):
        nova_notifier.refresh()


def test_notifiers_are_cached_per_service_and_host(fake_env):
    first = nova_notifier.get_notifier("compute", "h1")
    assert nova_notifier.get_notifier("compute", "h1") is first
    assert nova_notifier.get_notifier("compute", "h2") is not first
    assert nova_notifier.get_notifier("compute").publisher_id == "compute.testhost"
