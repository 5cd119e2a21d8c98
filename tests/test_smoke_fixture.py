import nova_notifier


def _inst():
    return {"uuid": "u-1", "vm_state": "building", "task_state": "scheduling"}


def test_fake(fake_env):
    fake_env.override("notify_on_state_change", "vm_state", group="notifications")
    nova_notifier.send_update_with_states(
        {}, _inst(), None, "building", None, None, service="api"
    )
    got = fake_env.settle()
    assert [(g.publisher_id, g.event_type, g.priority) for g in got] == [
        ("api.testhost", "compute.instance.update", "INFO")
    ]


def test_broker(broker_env):
    broker_env.override("notify_on_state_change", "vm_state", group="notifications")
    nova_notifier.send_update_with_states(
        {}, _inst(), None, "building", None, None, service="api"
    )
    got = broker_env.settle()
    assert [(g.publisher_id, g.event_type, g.priority) for g in got] == [
        ("api.testhost", "compute.instance.update", "INFO")
    ]
