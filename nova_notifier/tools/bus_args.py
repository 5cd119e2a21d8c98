"""Where to listen: the command-line options ``listen`` and ``latency`` share.

Kept apart from ``listen`` so that building a command line imports nothing
of oslo.messaging.
"""

from __future__ import annotations

import argparse


def add_bus_arguments(parser: argparse.ArgumentParser) -> None:
    """Where to listen: the options ``listen`` and ``latency`` share."""
    parser.add_argument(
        "--transport-url",
        help="oslo.messaging transport URL (default: the configured one)",
    )
    parser.add_argument(
        "--topic",
        action="append",
        help="topic to listen on (repeatable; default: notifications)",
    )
    parser.add_argument(
        "--pool",
        help="listener pool: listeners sharing a pool share the messages, and "
        "its queue stays on the broker after they exit; without one, a one-off "
        "queue of this process's own, deleted when it exits (never another "
        "consumer's queue)",
    )
    parser.add_argument(
        "--count", type=int, help="exit after this many (matching) notifications"
    )
    parser.add_argument("--timeout", type=float, help="exit after this many seconds")
    parser.add_argument(
        "--config-file", action="append", default=[], help="oslo.config file"
    )
