"""The ``nova-notifier`` command line.

``nova-notifier demo`` drives the demonstration compute API of
``etc/api-paste.ini`` through a whole instance lifecycle and prints every
notification a listener on the same transport received; ``listen`` tails
the bus; ``latency`` reports how long boots take, from the bus or a file.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from nova_notifier import demo_run, listen
from nova_notifier.latency import command as latency


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nova-notifier",
        description="Nova-style notifications over oslo.messaging.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="log the library's own messages"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="run an instance lifecycle through etc/api-paste.ini and print "
        "the notifications it sends",
    )
    demo_run.add_arguments(demo)
    demo.set_defaults(func=demo_run.run)
    tail = commands.add_parser(
        "listen",
        help="print the notifications on the bus as they arrive",
    )
    listen.add_arguments(tail)
    tail.set_defaults(func=listen.run)
    report = commands.add_parser(
        "latency",
        help="report VM provisioning latency from the bus or a 'listen --json' file",
    )
    latency.add_arguments(report)
    report.set_defaults(func=latency.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nova-notifier`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.debug:
        # faultwrap logs the traceback of every 5xx it produces; the demo
        # provokes one on purpose, so keep the demo's output readable.
        logging.getLogger("nova_notifier.faultwrap").setLevel(logging.CRITICAL)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
