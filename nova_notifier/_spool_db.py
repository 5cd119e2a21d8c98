"""The spool file's schema, shared by the sender and ``nova-notifier spool``.

Imports nothing of oslo: the command that lists and re-queues dead letters
starts fast and works on a spool whose service is stopped.

Two tables. ``spool`` holds what is waiting for the broker, in ``seq``
order, each row with its destination (``topics``, a JSON list, and
``version``, the envelope of the driver that accepted it; NULL in rows
written before these columns existed, meaning the reading process's own
configuration). ``dead_letter`` holds what the broker refused for good:
the record, the one topic it was refused on, how many attempts were made,
when, and the broker's reason.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from typing import Any

_SPOOL_TABLE = (
    "CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "created REAL NOT NULL, record TEXT NOT NULL, topics TEXT, version REAL)"
)
_DEAD_LETTER_TABLE = (
    "CREATE TABLE IF NOT EXISTS dead_letter (id INTEGER PRIMARY KEY "
    "AUTOINCREMENT, created REAL NOT NULL, failed REAL NOT NULL, "
    "record TEXT NOT NULL, topics TEXT NOT NULL, version REAL NOT NULL, "
    "attempts INTEGER NOT NULL, reason TEXT NOT NULL)"
)
# Columns added to ``spool`` after its first release: (name, SQL type).
_ADDED_COLUMNS = (("topics", "TEXT"), ("version", "REAL"))


def _create_private(path: str) -> None:
    """Create ``path`` (and SQLite's -wal and -shm next to it) mode 0600.

    SQLite gives the -wal and -shm files the mode of the database file, so
    creating that one 0600 before SQLite opens it covers all three; an
    existing file keeps the mode its owner gave it.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
    finally:
        os.close(fd)


def connect(
    path: str, sync: str = "normal", autocheckpoint: int | None = None
) -> sqlite3.Connection:
    """Open (creating, 0600, or migrating) the spool at ``path``.

    Returns an autocommit connection usable from any thread (the caller
    serialises access), in WAL mode, with both tables present.
    ``autocheckpoint``: WAL pages at which a commit on this connection
    checkpoints the WAL itself (SQLite's default, 1000, when None).
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _create_private(path)
    db = sqlite3.connect(
        path, check_same_thread=False, isolation_level=None, timeout=1.0
    )
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
    if autocheckpoint is not None:
        db.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
    db.execute(_SPOOL_TABLE)
    db.execute(_DEAD_LETTER_TABLE)
    have = {row[1] for row in db.execute("PRAGMA table_info(spool)")}
    for name, sql_type in _ADDED_COLUMNS:
        if name not in have:  # a spool written by an older release
            db.execute(f"ALTER TABLE spool ADD COLUMN {name} {sql_type}")
    return db


def page_size(db: sqlite3.Connection) -> int:
    """The spool's page size in bytes."""
    return int(db.execute("PRAGMA page_size").fetchone()[0])


def used_bytes(db: sqlite3.Connection, size: int | None = None) -> int:
    """Bytes of the spool's pages that hold data (free pages left out)."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    free = db.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * (page_size(db) if size is None else size))


_WAL_HEADER = 32  # the WAL file's own header, before its first frame
_FRAME_HEADER = 24  # before each page in the WAL


def wal_offset(frames: int, page_size: int) -> int:
    """Where in the WAL file the frame after the first ``frames`` goes."""
    return _WAL_HEADER + frames * (_FRAME_HEADER + page_size)


def read_ahead_wal(path: str, start: int, length: int) -> int:
    """Ask the kernel to read into the page cache ``length`` bytes of
    ``path``'s WAL from ``start`` (where the next frames will be written
    over old ones). Returns how many bytes were asked for.

    Frames are never aligned with the file's blocks, so a frame written
    over an old part of the WAL whose page the kernel has dropped waits
    for that block to be read in first, inside the write. A readahead
    (``POSIX_FADV_WILLNEED``) starts those reads without waiting for them.
    Only the WAL file is opened: SQLite holds no lock on it (its locks are
    on the database and the ``-shm`` file, and a process closing any
    descriptor of a file drops every lock it holds on that file). Never
    raises: a missing WAL, or an unsupported call, asks for nothing.
    """
    if not hasattr(os, "posix_fadvise"):
        return 0
    try:
        fd = os.open(path + "-wal", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return 0
    try:
        span = min(length, os.fstat(fd).st_size - start)
        if span <= 0:
            return 0  # appended past the end: nothing to read
        os.posix_fadvise(fd, start, span, os.POSIX_FADV_WILLNEED)
        return span
    except OSError:
        return 0
    finally:
        os.close(fd)


def add_dead_letter(
    db: sqlite3.Connection,
    created: float,
    record: dict[str, Any],
    topic: str,
    version: float,
    attempts: int,
    reason: str,
) -> None:
    """Set one refused message aside (``record`` is ``{"ctxt", "message"}``)."""
    db.execute(
        "INSERT INTO dead_letter (created, failed, record, topics, version, "
        "attempts, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            created,
            time.time(),
            json.dumps(record),
            json.dumps([topic]),
            version,
            attempts,
            reason,
        ),
    )


def dead_letters(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every dead letter, oldest first, as dicts (``record`` decoded)."""
    rows = db.execute(
        "SELECT id, created, failed, record, topics, version, attempts, reason "
        "FROM dead_letter ORDER BY id"
    ).fetchall()
    return [
        {
            "id": row[0],
            "created": row[1],
            "failed": row[2],
            "record": json.loads(row[3]),
            "topics": json.loads(row[4]),
            "version": row[5],
            "attempts": row[6],
            "reason": row[7],
        }
        for row in rows
    ]


def requeue(db: sqlite3.Connection, ids: Iterable[int] | None = None) -> int:
    """Move dead letters (all, or those ``ids``) back to the end of the spool.

    One transaction: a letter is either still dead or queued again, never
    both. Returns how many moved; a running sender picks them up within its
    poll interval, with their original message_id and timestamp.
    """
    where = ""
    args: tuple[int, ...] = ()
    if ids is not None:
        wanted = tuple(int(i) for i in ids)
        if not wanted:
            return 0
        where = f" WHERE id IN ({', '.join('?' * len(wanted))})"
        args = wanted
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "INSERT INTO spool (created, record, topics, version) "
            f"SELECT created, record, topics, version FROM dead_letter{where} "
            "ORDER BY id",
            args,
        )
        moved = db.execute(f"DELETE FROM dead_letter{where}", args).rowcount
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return int(moved)
