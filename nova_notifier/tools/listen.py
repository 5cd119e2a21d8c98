"""``nova-notifier listen``: a live tail of the notification bus."""

from __future__ import annotations

import argparse
import fnmatch
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import oslo_messaging
from oslo_config import cfg

from nova_notifier import PRIORITIES, is_secret_key, register_opts
from nova_notifier.tools import display
from nova_notifier.tools.amqp_queues import one_off_pool
from nova_notifier.tools.bus_args import add_bus_arguments

#: the priorities a listener endpoint answers, as methods of that name:
#: oslo.messaging hands a notification sent with ``warning`` to ``warn``
ENDPOINT_PRIORITIES = tuple(p for p in PRIORITIES if p != "warning")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_bus_arguments(parser)
    parser.add_argument(
        "--event-type",
        action="append",
        default=[],
        help="only event types matching this glob (repeatable), e.g. "
        "'compute.instance.*'",
    )
    parser.add_argument("--publisher", help="only publisher_ids matching this glob")
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per notification"
    )
    parser.add_argument("--output", help="append to this file instead of stdout")


def envelope(
    ctxt: dict[str, Any],
    priority: str,
    publisher_id: str,
    event_type: str,
    payload: Any,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """A received notification as one JSON-ready record, context secrets removed."""
    return {
        "message_id": metadata.get("message_id"),
        "timestamp": metadata.get("timestamp"),
        "priority": priority,
        "publisher_id": publisher_id,
        "event_type": event_type,
        "payload": payload,
        "context": {
            key: value
            for key, value in (ctxt or {}).items()
            if not is_secret_key(str(key))
        },
    }


class Tail:
    """Notification endpoint: filters, writes one line each, counts."""

    def __init__(
        self,
        out: TextIO,
        as_json: bool,
        event_types: Sequence[str],
        publisher: str | None,
        count: int | None,
    ) -> None:
        self.out = out
        self.as_json = as_json
        self.event_types = list(event_types)
        self.publisher = publisher
        self.count = count
        self.seen = 0
        self.done = threading.Event()
        self._lock = threading.Lock()
        for priority in ENDPOINT_PRIORITIES:
            setattr(self, priority, self._handler(priority.upper()))

    def wanted(self, publisher_id: str, event_type: str) -> bool:
        if self.event_types and not any(
            fnmatch.fnmatchcase(event_type, pattern) for pattern in self.event_types
        ):
            return False
        return self.publisher is None or fnmatch.fnmatchcase(
            publisher_id or "", self.publisher
        )

    def _handler(self, priority: str) -> Any:
        def handle(ctxt, publisher_id, event_type, payload, metadata):
            if self.done.is_set() or not self.wanted(publisher_id, event_type):
                return
            if self.as_json:
                text = json.dumps(
                    envelope(
                        ctxt, priority, publisher_id, event_type, payload, metadata
                    )
                )
            else:
                text = display.line(
                    metadata, priority, publisher_id, event_type, payload
                )
            with self._lock:
                if self.done.is_set():
                    return
                self.out.write(text + "\n")
                self.out.flush()
                self.seen += 1
                if self.count is not None and self.seen >= self.count:
                    self.done.set()

        return handle


def serve(
    args: argparse.Namespace,
    endpoint: Any,
    done: threading.Event,
    tick: Callable[[], None] | None = None,
    tool: str = "listen",
) -> None:
    """Feed ``endpoint`` from the bus until ``done``, --timeout or a signal.

    Ctrl-C and SIGTERM set ``done``; ``tick`` is called about twice a second
    while listening. Without ``--pool`` it listens on a one-off queue of its
    own (:func:`~nova_notifier.tools.amqp_queues.one_off_pool`, named after
    ``tool``) that the broker deletes when the listener goes, so it takes
    nothing from other consumers of the topic; a named pool's queue
    outlives the call. A pool named like the shared queue (``<topic>.info``)
    is refused: SystemExit(2).
    """
    topics = args.topic or ["notifications"]
    shared = {f"{topic}.{priority}" for topic in topics for priority in PRIORITIES}
    if args.pool in shared:
        print(
            f"nova-notifier {tool}: --pool {args.pool} is the queue every "
            "pool-less consumer of the topic reads (Ceilometer reads "
            "notifications.info): listening on it would take their messages; "
            "name a pool of your own, or leave --pool out",
            file=sys.stderr,
        )
        raise SystemExit(2)
    conf = cfg.ConfigOpts()
    cli = [item for path in args.config_file for item in ("--config-file", path)]
    conf(cli, project="nova-notifier", default_config_files=[])
    register_opts(conf)
    transport = oslo_messaging.get_notification_transport(conf, url=args.transport_url)
    pool = args.pool or one_off_pool(tool)
    listener = oslo_messaging.get_notification_listener(
        transport,
        [oslo_messaging.Target(topic=topic) for topic in topics],
        [endpoint],
        executor="threading",
        pool=pool,
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    listener.start()
    print(
        f"listening on {', '.join(topics)} "
        + (
            f"(pool {pool})"
            if args.pool
            else f"(one-off queue {pool}, deleted when this exits)"
        ),
        file=sys.stderr,
        flush=True,
    )
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    try:
        while not done.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            done.wait(0.5 if left is None else min(left, 0.5))
            if tick is not None:
                tick()
    finally:
        done.set()
        listener.stop()
        listener.wait()
        transport.cleanup()


def run(args: argparse.Namespace) -> int:
    """Listen until --count, --timeout, Ctrl-C or SIGTERM; 0 on a clean exit."""
    out: TextIO = (
        open(args.output, "a", encoding="utf-8") if args.output else sys.stdout
    )
    tail = Tail(out, args.json, args.event_type, args.publisher, args.count)
    try:
        serve(args, tail, tail.done)
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"{tail.seen} notifications", file=sys.stderr)
    return 0
