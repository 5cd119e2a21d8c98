"""A service that emits through a plain oslo.messaging Notifier.

Run by the driver tests and benches:
``python driver_child.py URL TOPIC DRIVER SPOOL COUNT RATE [RABBIT_OPT=VALUE ...]``
emits COUNT numbered notifications at RATE a second (0: as fast as it
can) through ``oslo_messaging.Notifier(driver=DRIVER)``, timing every call,
prints ``started`` once the first call returned, then one JSON line with
the call times and the drivers' counters, flushes the drivers' senders and
prints their counters again. ``[oslo_messaging_rabbit]`` options may follow
as NAME=VALUE (``true``/``false`` and numbers are converted). Environment:
``NN_PAYLOAD_BYTES`` pads each payload to about that size, ``NN_RETRY`` sets
``[oslo_messaging_notifications] retry``. ``delivered_s`` is the time from
the first call until the senders were flushed (everything confirmed).
"""

from __future__ import annotations

import json
import os
import sys
import time


def _value(text: str) -> object:
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def main() -> int:
    url, topic, driver, spool = sys.argv[1:5]
    count, rate = int(sys.argv[5]), float(sys.argv[6])
    rabbit = dict(arg.split("=", 1) for arg in sys.argv[7:])

    import oslo_messaging

    from nova_notifier import drivers
    from nova_notifier.testing.config import make_conf

    conf = make_conf(
        url,
        [topic],
        driver=driver,
        rabbit={name: _value(value) for name, value in rabbit.items()},
        spool_path=spool,
        retry_backoff_max=0.5,
        send_timeout=4.0,
        queue_size=10**6,
        flush_timeout=120.0,
    )
    if os.environ.get("NN_RETRY"):
        conf.set_override(
            "retry", int(os.environ["NN_RETRY"]), group="oslo_messaging_notifications"
        )
    padding = "x" * int(os.environ.get("NN_PAYLOAD_BYTES") or 0)
    transport = oslo_messaging.get_notification_transport(conf)
    notifier = oslo_messaging.Notifier(
        transport, "compute.driver-child", driver=driver, topics=[topic]
    )
    durations = []
    started = time.monotonic()
    for seq in range(count):
        if rate:
            wait = started + seq / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        begin = time.perf_counter()
        payload = {"seq": seq, "emitted": time.time()}
        if padding:
            payload["padding"] = padding
        notifier.info({}, "test.driver", payload)
        durations.append(time.perf_counter() - begin)
        if seq == 0:
            print("started", flush=True)
    elapsed = time.monotonic() - started
    durations.sort()
    print(
        json.dumps(
            {
                "calls": len(durations),
                "max_ms": durations[-1] * 1000 if durations else 0.0,
                "p99_ms": durations[int(len(durations) * 0.99)] * 1000
                if durations
                else 0.0,
                "over_5ms": sum(1 for d in durations if d > 0.005),
                "emit_s": elapsed,
                "stats": drivers.driver_stats(),
            }
        ),
        flush=True,
    )
    drivers.flush_drivers()
    delivered = time.monotonic() - started
    print(
        json.dumps({"flushed": drivers.driver_stats(), "delivered_s": delivered}),
        flush=True,
    )
    transport.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
