"""``nova-notifier spool list|requeue``: the dead letters of a spool.

A message the broker refused ``dead_letter_after`` times waits in the
spool's ``dead_letter`` table. ``list`` prints them (id, when it failed,
attempts, destination, event type, message_id and the broker's reason);
``requeue`` moves them (all, or ``--id`` ones) back to the end of the spool,
where the service's sender sends them again with their original
message_id and timestamp. Both go through the library's
:func:`nova_notifier.dead_letters` and
:func:`nova_notifier.requeue_dead_letters`, which import nothing of
oslo.messaging.
"""

from __future__ import annotations

import argparse
import datetime
import json

import nova_notifier


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``spool`` subcommand's arguments."""
    parser.add_argument("action", choices=["list", "requeue"])
    parser.add_argument(
        "--spool-path", required=True, help="the [notifications] spool_path file"
    )
    parser.add_argument(
        "--id",
        type=int,
        action="append",
        dest="ids",
        help="requeue: only this dead letter (repeatable); default all",
    )
    parser.add_argument("--json", action="store_true", help="list: one JSON a line")


def _when(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def run(args: argparse.Namespace) -> int:
    """List or requeue; 0 on success, 2 when the spool file does not exist."""
    try:
        if args.action == "requeue":
            moved = nova_notifier.requeue_dead_letters(args.spool_path, args.ids)
            print(f"requeued {moved} dead letters")
            return 0
        letters = nova_notifier.dead_letters(args.spool_path)
    except FileNotFoundError:
        print(f"no spool at {args.spool_path}")
        return 2
    for letter in letters:
        message = letter["record"]["message"]
        if args.json:
            print(json.dumps(letter, sort_keys=True))
            continue
        print(
            f"{letter['id']}\t{_when(letter['failed'])}\t"
            f"{letter['attempts']} attempts\t{','.join(letter['topics'])}\t"
            f"{message.get('event_type')}\t{message.get('message_id')}\t"
            f"{letter['reason']}"
        )
    if not args.json:
        print(f"{len(letters)} dead letters")
    return 0
