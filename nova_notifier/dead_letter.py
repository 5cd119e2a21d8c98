"""The spool's dead letters: list them, or queue them again.

With ``[notifications] delivery_mode = spool``, a message the broker refused
``dead_letter_after`` times leaves the spool for its ``dead_letter`` table.
These two functions read and requeue them from any process, whether the
service is running or not. They import nothing of oslo.messaging, so
``nova-notifier spool`` works where the service's oslo.messaging does not.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

from nova_notifier import _spool_db


@contextlib.contextmanager
def _opened(path: str) -> Iterator[sqlite3.Connection]:
    if not os.path.exists(path):  # connect() would make an empty spool
        raise FileNotFoundError(f"no spool at {path}")
    db = _spool_db.connect(path)
    try:
        yield db
    finally:
        db.close()


def dead_letters(path: str) -> list[dict[str, Any]]:
    """Every dead letter of the spool file ``path``, oldest first.

    Each is a dict: ``id``, ``created`` and ``failed`` (epoch seconds: when
    the message was emitted, when it was given up), ``record`` (the queued
    message, ``{"ctxt": ..., "message": ...}``), ``topics``, ``version``,
    ``attempts`` and the broker's ``reason``. Raises ``FileNotFoundError``
    when there is no spool at ``path`` (it does not make one).
    """
    with _opened(path) as db:
        return _spool_db.dead_letters(db)


def requeue_dead_letters(path: str, ids: Iterable[int] | None = None) -> int:
    """Move dead letters (all, or those ``ids``) back to the end of the spool.

    Returns how many moved. One transaction: a letter is either still dead
    or queued again, never both; a running sender sends them within its poll
    interval, with their original message_id and timestamp. Raises
    ``FileNotFoundError`` when there is no spool at ``path``.
    """
    with _opened(path) as db:
        return _spool_db.requeue(db, ids)
