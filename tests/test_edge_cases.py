"""Edge cases a real deployment hits: odd exception headers, odd instance
values, no driver configured, a thread without a request context."""

from __future__ import annotations

import threading
from wsgiref.validate import validator

import webob
from oslo_context import context as oslo_context

import nova_notifier


class _HeaderedError(Exception):
    code = 503

    def __init__(self, headers):
        super().__init__("unavailable")
        self.headers = headers


def _raising(exc):
    def app(environ, start_response):
        raise exc

    return app


def test_hop_by_hop_and_unreadable_exception_headers_still_give_a_json_fault(
    fake_env,
):
    for headers in (
        {"Connection": "close", "Transfer-Encoding": "chunked", "X-Kept": "1"},
        "not-a-header-mapping",
    ):
        # wsgiref's validator rejects hop-by-hop headers from an app, as
        # real servers do
        app = validator(nova_notifier.FaultWrapper(_raising(_HeaderedError(headers))))
        resp = webob.Request.blank("/x").get_response(app)
        assert resp.status_int == 503
        assert list(resp.json_body) == ["serviceUnavailable"]
        assert "Connection" not in resp.headers
        assert "Transfer-Encoding" not in resp.headers
        if isinstance(headers, dict):
            assert resp.headers["X-Kept"] == "1"


def test_non_numeric_progress_does_not_lose_the_update(fake_env):
    fake_env.override("notify_on_state_change", "vm_state", group="notifications")
    instance = {"uuid": "u-1", "vm_state": "active", "progress": "almost"}
    nova_notifier.send_update_with_states({}, instance, None, None, None, None)
    [got] = fake_env.settle()
    assert got.payload["progress"] == ""
    assert nova_notifier.stats()["dropped"] == 0


def test_no_driver_configured_sends_and_counts_nothing(fake_env):
    fake_env.override("notify_on_state_change", "vm_state", group="notifications")
    fake_env.override("driver", [], group="oslo_messaging_notifications")
    nova_notifier.init(fake_env.conf)
    instance = {"uuid": "u-1", "vm_state": "active"}
    nova_notifier.send_update({}, instance, instance)
    nova_notifier.notify_about_instance_usage(
        nova_notifier.get_notifier("compute"), {}, instance, "create.end"
    )
    stats = nova_notifier.stats()
    assert (stats["queued"], stats["sent"], stats["dropped"]) == (0, 0, 0)


def test_sending_from_a_thread_without_a_context_leaves_it_without_one(fake_env):
    fake_env.override("notify_on_state_change", "vm_state", group="notifications")
    ctxt = oslo_context.RequestContext(
        auth_token="tok-123", request_id="req-abc", overwrite=False
    )
    seen = {}

    def worker():
        nova_notifier.send_update_with_states(
            ctxt, {"uuid": "u-1", "vm_state": "active"}, None, None, None, None
        )
        seen["current"] = oslo_context.get_current()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["current"] is None
    assert ctxt.auth_token == "tok-123"
    [got] = fake_env.settle()
    assert got.ctxt["request_id"] == "req-abc"
    assert "tok-123" not in str(got.ctxt)
