"""The ``nova-notifier`` command line.

``nova-notifier demo`` drives the demonstration compute API of
``etc/api-paste.ini`` through a whole instance lifecycle and prints every
notification a listener on the same transport received; ``listen`` tails
the bus; ``latency`` reports how long boots take, from the bus or a file;
``spool`` lists and re-queues the messages the broker refused; ``schema``
prints the JSON Schema of an event type's payload.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# name -> (module with add_arguments() and run(), one-line help). A command's
# module is imported only when that command runs: ``latency --from FILE``
# needs none of oslo.messaging, which takes most of a second to import.
_COMMANDS = {
    "demo": (
        "nova_notifier.tools.demo.run",
        "run an instance lifecycle through etc/api-paste.ini and print "
        "the notifications it sends",
    ),
    "listen": (
        "nova_notifier.tools.listen",
        "print the notifications on the bus as they arrive",
    ),
    "latency": (
        "nova_notifier.tools.latency.command",
        "report VM provisioning latency from the bus or a 'listen --json' file",
    ),
    "spool": (
        "nova_notifier.tools.spool",
        "list the dead letters of a spool, or queue them again",
    ),
    "schema": (
        "nova_notifier.tools.schema",
        "print the JSON Schema of an event type's payload, or list them",
    ),
}


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nova-notifier",
        description="Nova-style notifications over oslo.messaging.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="log the library's own messages"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    chosen = next((arg for arg in argv if arg in _COMMANDS), None)
    for name, (module_name, help_text) in _COMMANDS.items():
        sub = commands.add_parser(name, help=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(func=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nova-notifier`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser(argv).parse_args(argv)
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
