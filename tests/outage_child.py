"""A process that emits numbered notifications through the spool.

Run by test_outage.py: ``python outage_child.py URL TOPIC SPOOL COUNT``
prints ``accepted N`` after each emit call returned (so N is on disk), and
with COUNT 0 just starts, replays the spool and exits once it is empty.
"""

from __future__ import annotations

import sys
import time

import nova_notifier
from nova_notifier.testing.config import make_conf


def main() -> int:
    url, topic, spool, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    conf = make_conf(
        url,
        [topic],
        delivery_mode="spool",
        spool_path=spool,
        retry_backoff_max=0.5,
    )
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
