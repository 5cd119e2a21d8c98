"""A fresh process that uses the library only from a non-daemon worker thread.

Run by test_threads.py: ``python thread_child.py URL TOPIC MODE SPOOL EVENTLET
CLEANUP``. With EVENTLET=1 the process calls ``eventlet.monkey_patch()``
first, as eventlet services do. The worker imports the package, calls
``init()``, emits one ``compute.instance.create.end`` and (CLEANUP=1) calls
``cleanup()``; the main thread returns at once. The process must then exit by
itself: a worker that first imported eventlet could never be joined.

Nothing of oslo.messaging is imported here before the worker does it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time


def _policies() -> dict[str, int]:
    """The scheduling policy of each OS thread of this process, by id."""
    policies = {}
    for task in os.listdir("/proc/self/task"):
        try:
            policies[task] = os.sched_getscheduler(int(task))
        except OSError:  # ended since the listing
            continue
    return policies


def main() -> int:
    url, topic, mode, spool, use_eventlet, do_cleanup = sys.argv[1:7]
    if use_eventlet == "1":
        import eventlet

        eventlet.monkey_patch()

    def work() -> None:
        from oslo_config import cfg

        import nova_notifier

        conf = cfg.ConfigOpts()
        conf([], project="thread-child", default_config_files=[])
        nova_notifier.register_opts(conf)
        conf.set_override("transport_url", url)
        conf.set_override("driver", ["messagingv2"], "oslo_messaging_notifications")
        conf.set_override("topics", [topic], "oslo_messaging_notifications")
        conf.set_override("host", "worker-host")
        conf.set_override("delivery_mode", mode, "notifications")
        if spool != "-":
            conf.set_override("spool_path", spool, "notification_delivery")
        nova_notifier.init(conf)
        compute = nova_notifier.get_notifier("compute")
        instance = {
            "uuid": "0c0ffee0-0000-4000-8000-00000000beef",
            "vm_state": "active",
        }
        nova_notifier.notify_about_instance_usage(
            compute, {}, instance, "create.end", extra_usage_info={"mode": mode}
        )
        if mode != "direct":  # the sender has run once it delivered
            deadline = time.monotonic() + 20
            while nova_notifier.stats()["sent"] < 1 and time.monotonic() < deadline:
                time.sleep(0.01)  # waiting for the delivery, with a deadline
        print(f"policies {os.getpid()} {json.dumps(_policies())}", flush=True)
        if do_cleanup == "1":
            nova_notifier.cleanup()
        print(f"worker done at {time.time():.3f} {nova_notifier.stats()}", flush=True)

    worker = threading.Thread(target=work, name="app-worker")
    worker.start()
    if use_eventlet == "1":
        # A green thread runs only while the main one yields, as in any
        # eventlet service; joining it must return.
        worker.join(30)
        if worker.is_alive():
            print("worker did not finish", flush=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
