"""``nova-notifier demo``: a whole instance lifecycle, as a listener sees it."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import threading
import time
from typing import Any

import oslo_messaging
import webob
from oslo_config import cfg
from paste.deploy import loadapp

import nova_notifier
from nova_notifier.tools import display
from nova_notifier.tools.amqp_queues import one_off_pool
from nova_notifier.tools.demo.api import DEFAULT_IMAGE
from nova_notifier.tools.listen import ENDPOINT_PRIORITIES, envelope

DEMO_PATCH = "nova_notifier.tools.demo.hypervisor:nova_notifier.notify_decorator"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--transport-url",
        default="fake://",
        help="oslo.messaging transport, e.g. rabbit://guest:guest@127.0.0.1:5672/ "
        "(default: the in-process fake:// transport, no broker needed)",
    )
    parser.add_argument("--topic", default="notifications", help="notification topic")
    parser.add_argument(
        "--format",
        choices=("unversioned", "versioned", "both"),
        default="unversioned",
        help="notification_format: the legacy messages, Nova's versioned "
        "ones (on --versioned-topic), or both",
    )
    parser.add_argument(
        "--versioned-topic",
        default="versioned_notifications",
        help="topic of the versioned notifications",
    )
    parser.add_argument(
        "--paste-config",
        help="api-paste.ini to load (default: ./etc/api-paste.ini, else the "
        "installed copy)",
    )
    parser.add_argument(
        "--config-file", action="append", default=[], help="oslo.config file"
    )
    parser.add_argument(
        "--json", action="store_true", help="print notifications as JSON lines"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for every sent notification to come back",
    )


def find_paste_config(explicit: str | None) -> str:
    """The api-paste.ini to load: the given one, ./etc, or the installed copy."""
    candidates = (
        [explicit]
        if explicit
        else [
            os.path.join("etc", "api-paste.ini"),
            os.path.join(sys.prefix, "etc", "nova-notifier", "api-paste.ini"),
        ]
    )
    for path in candidates:
        if path and os.path.isfile(path):
            return os.path.abspath(path)
    raise SystemExit(f"nova-notifier demo: no api-paste.ini found at {candidates}")


class _Printer:
    """Notification endpoint that prints each message and counts it."""

    def __init__(self, as_json: bool, not_before: datetime.datetime) -> None:
        self.as_json = as_json
        self.not_before = not_before
        self.received = 0
        self.stale = 0
        self.pending: list[tuple[str, str]] = []
        self.lock = threading.Condition()
        for priority in ENDPOINT_PRIORITIES:
            setattr(self, priority, self._printer(priority.upper()))

    def _printer(self, priority: str) -> Any:
        def show(ctxt, publisher_id, event_type, payload, metadata):
            stamp = str(metadata.get("timestamp", ""))
            with self.lock:
                if stamp and stamp < str(self.not_before):
                    self.stale += 1  # left on the queue by an earlier run
                    return
                self.received += 1
                if self.as_json:
                    # the format of ``listen --json``, so ``latency`` reads both
                    text = json.dumps(
                        envelope(
                            ctxt, priority, publisher_id, event_type, payload, metadata
                        )
                    )
                else:
                    text = "  <- " + display.line(
                        metadata, priority, publisher_id, event_type, payload
                    )
                self.pending.append((stamp, text))
                self.lock.notify_all()

        return show

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` arrived, then print them in timestamp order."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.received < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.lock.wait(left)
            pending, self.pending = sorted(self.pending), []
            for _, text in pending:
                print(text, flush=True)
            return self.received >= count


def _configure(args: argparse.Namespace) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    cli = [item for path in args.config_file for item in ("--config-file", path)]
    conf(cli, project="nova-notifier", default_config_files=[])
    nova_notifier.register_opts(conf)
    conf.set_override("transport_url", args.transport_url)
    conf.set_override("driver", ["messagingv2"], group="oslo_messaging_notifications")
    conf.set_override("topics", [args.topic], group="oslo_messaging_notifications")
    conf.set_override(
        "notify_on_state_change", "vm_and_task_state", group="notifications"
    )
    conf.set_override("notify_on_api_faults", True, group="notifications")
    conf.set_override("notification_format", args.format, group="notifications")
    conf.set_override(
        "versioned_notifications_topics",
        [args.versioned_topic],
        group="notifications",
    )
    conf.set_override("monkey_patch", True)
    conf.set_override("monkey_patch_modules", [DEMO_PATCH])
    return conf


class _Driver:
    """Sends the scenario's requests, each followed by what it notified."""

    def __init__(self, app: Any, printer: _Printer, timeout: float) -> None:
        self.app = app
        self.printer = printer
        self.timeout = timeout
        self.first = nova_notifier.stats()
        self.complete = True
        # with --json, stdout carries only JSON lines
        self.out = sys.stderr if printer.as_json else sys.stdout

    def request(self, method: str, path: str, body: Any = None) -> Any:
        req = webob.Request.blank(path, method=method)
        if body is not None:
            req.json_body = body
        resp = req.get_response(self.app)
        print(f"\n{method} {path} -> {resp.status}", file=self.out, flush=True)
        sent = nova_notifier.stats()["queued"] - self.first["queued"]
        self.complete &= self.printer.wait_for(sent, self.timeout)
        return resp

    def run(self) -> None:
        """Two boots, a failed boot, a missing server, a delete, a crash."""
        servers = []
        # flavorRef as a Nova client may send it: an id, a name, a URL
        for name, flavor, fail in (
            ("web-1", "2", False),
            ("web-2", "m1.tiny", False),
            ("db-1", "http://127.0.0.1:8774/v2.1/flavors/3", True),
        ):
            body = {
                "server": {
                    "name": name,
                    "flavorRef": flavor,
                    "imageRef": f"http://127.0.0.1:9292/images/{DEFAULT_IMAGE}",
                    "fail": fail,
                }
            }
            resp = self.request("POST", "/servers", body)
            servers.append(resp.json_body["server"]["id"])
        self.request("GET", "/servers/no-such-server")
        self.request("DELETE", f"/servers/{servers[1]}")
        self.request("GET", "/crash")


def _topics(notification_format: str, topic: str, versioned_topic: str) -> list[str]:
    """The topics the demo's listener hears, as the format sends to them
    (api.fault and notify_decorator's have no versioned form: always the
    legacy topic)."""
    topics = [topic]
    if notification_format != "unversioned":
        topics.append(versioned_topic)
    return topics


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when every notification sent came back."""
    conf = _configure(args)
    paste_config = find_paste_config(args.paste_config)
    nova_notifier.init(conf)
    nova_notifier.monkey_patch(conf)
    start = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    printer = _Printer(args.json, start - datetime.timedelta(seconds=1))
    in_process = args.transport_url.startswith("fake:")
    # On a broker, listen through a queue of our own (a one-off pool, which
    # the broker deletes when we go) so other consumers of the topic neither
    # miss nor steal messages.
    pool = None if in_process else one_off_pool("demo")
    transport = (
        nova_notifier.transport()
        if in_process
        else oslo_messaging.get_notification_transport(conf)
    )
    listener = oslo_messaging.get_notification_listener(
        transport,
        [
            oslo_messaging.Target(topic=topic)
            for topic in _topics(args.format, args.topic, args.versioned_topic)
        ],
        [printer],
        executor="threading",
        pool=pool,
    )
    listener.start()
    try:
        out = sys.stderr if args.json else sys.stdout
        print(
            f"nova-notifier demo on {args.transport_url} (topics "
            f"{', '.join(_topics(args.format, args.topic, args.versioned_topic))})",
            file=out,
        )
        print(f"loading {paste_config}", file=out, flush=True)
        app = loadapp(f"config:{paste_config}")
        driver = _Driver(app, printer, args.timeout)
        before = driver.first
        driver.run()
        stats = nova_notifier.stats()
        sent = stats["queued"] - before["queued"]
        complete = driver.complete
        print(
            f"\nsent {sent}, received {printer.received}, "
            f"dropped {stats['dropped'] - before['dropped']}"
            + (
                f", ignored {printer.stale} left over from earlier runs"
                if printer.stale
                else ""
            ),
            file=out,
            flush=True,
        )
        return 0 if complete and stats["dropped"] == before["dropped"] else 1
    finally:
        listener.stop()
        listener.wait()
        nova_notifier.undo_monkey_patch()
        nova_notifier.cleanup()
        if pool is not None:
            transport.cleanup()
