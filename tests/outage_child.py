"""A process that emits numbered notifications through the spool.

Run by test_outage.py: ``python outage_child.py URL TOPIC SPOOL COUNT``
prints ``accepted N`` after each emit call returned (so N is on disk), and
with COUNT 0 just starts, replays the spool and exits once it is empty.
"""

from __future__ import annotations

import sys
import time

from oslo_config import cfg

import nova_notifier


def main() -> int:
    url, topic, spool, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    conf = cfg.ConfigOpts()
    conf([], project="outage-child", default_config_files=[])
    nova_notifier.register_opts(conf)
    conf.set_override("transport_url", url)
    conf.set_override("driver", ["messagingv2"], group="oslo_messaging_notifications")
    conf.set_override("topics", [topic], group="oslo_messaging_notifications")
    conf.set_override("delivery_mode", "spool", group="notifications")
    conf.set_override("spool_path", spool, group="notifications")
    conf.set_override("retry_backoff_max", 0.5, group="notifications")
    nova_notifier.init(conf)
    notifier = nova_notifier.get_notifier("compute", "child")
    for seq in range(count):
        notifier.info({}, "test.outage", {"seq": seq})
        print(f"accepted {seq}", flush=True)
    if count == 0:
        deadline = time.monotonic() + 120
        while nova_notifier.stats()["backlog"] and time.monotonic() < deadline:
            time.sleep(0.05)  # a replaying process waiting for its own work
        print(f"replayed {nova_notifier.stats()['sent']}", flush=True)
    nova_notifier.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
