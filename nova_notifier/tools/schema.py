"""``nova-notifier schema EVENT_TYPE | --list``: the payload schemas.

Prints the JSON Schema (draft 2020-12) of an event type's payload, as
:func:`nova_notifier.schemas.schema_for` gives it (self-contained), or with
``--list`` the event types that have one. Needs no ``jsonschema``.
"""

from __future__ import annotations

import argparse
import json
import sys

from nova_notifier import schemas


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``schema`` subcommand's arguments."""
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "event_type",
        nargs="?",
        help="e.g. compute.instance.update (any compute.instance.<suffix> has one)",
    )
    what.add_argument(
        "--list", action="store_true", help="list the known event types, one a line"
    )


def run(args: argparse.Namespace) -> int:
    """Print the schema or the list; 0, or 2 for an event type without one."""
    if args.list:
        print("\n".join(schemas.event_types()))
        return 0
    try:
        schema = schemas.schema_for(args.event_type)
    except schemas.UnknownEventType as exc:
        print(f"nova-notifier schema: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(schema, indent=2))
    return 0
