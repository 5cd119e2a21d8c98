"""The spool's WAL read-ahead: the sender has the kernel read in the part
of the WAL that the emitters' inserts write next.

SQLite's WAL frames (a 24-byte header and a page) never line up with the
file's blocks, so a frame written over an old part of the WAL whose page
the kernel has dropped from its cache waits, inside the emit call, for
that block to be read in. These tests check where the sender expects the
next frame (from its checkpoints: at the start once the WAL is all copied,
else after its last frame), that the read-ahead really brings those pages
(and only those) into the page cache, that the sender asks again at most
every ``_READ_AHEAD_EVERY`` seconds, and that none of it touches SQLite's
locks (another process still finds the spool locked while an emitter
writes).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from nova_notifier import _spool_db, delivery
from tests.conftest import wait_until
from tests.test_spool import _spool_item

PAGE = mmap.PAGESIZE


def _record(n: int) -> tuple[float, str]:
    return (float(n), "x" * 3000)


def _spool(path: str, rows: int) -> sqlite3.Connection:
    db = _spool_db.connect(path)
    db.executemany(
        "INSERT INTO spool (created, record) VALUES (?, ?)",
        [_record(n) for n in range(rows)],
    )
    return db


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _resident(path: str) -> list[bool]:
    """For each page of ``path``, whether it is in the page cache (mincore)."""
    size = os.path.getsize(path)
    pages = (size + PAGE - 1) // PAGE
    libc = _libc()
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap")
        try:
            vec = ctypes.create_string_buffer(pages)
            if libc.mincore(ctypes.c_void_p(addr), size, vec) != 0:
                raise OSError(ctypes.get_errno(), "mincore")
            return [bool(byte & 1) for byte in vec.raw]
        finally:
            libc.munmap(ctypes.c_void_p(addr), size)
    finally:
        os.close(fd)


def _drop_from_cache(path: str) -> None:
    """Write back and drop ``path``'s pages, as the kernel does to cold ones."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _checkpointed_frames(db: sqlite3.Connection) -> int:
    [(_, frames, copied)] = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    assert frames == copied
    return int(frames)


def test_the_next_frame_goes_after_the_last_until_the_wal_starts_over(tmp_path):
    path = str(tmp_path / "spool.db")
    db = _spool(path, 20)
    try:
        frames = _checkpointed_frames(db)
        grown = os.path.getsize(path + "-wal")
        assert frames > 20 and _spool_db.wal_offset(frames, 4096) == grown
        # All copied: the next commit starts the WAL over, at the start,
        # over the old frames, and the file keeps its length.
        db.execute("INSERT INTO spool (created, record) VALUES (?, ?)", _record(99))
        [(_, after, _)] = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        assert 0 < after < 5 and os.path.getsize(path + "-wal") == grown
    finally:
        db.close()


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="mincore and fadvise as on Linux"
)
def test_the_read_ahead_brings_in_what_the_next_writes_cover_and_no_more(
    tmp_path,
):
    path = str(tmp_path / "spool.db")
    db = _spool(path, 200)  # about 800 KB of WAL
    try:
        wal = path + "-wal"
        size = os.path.getsize(wal)
        span = 64 * 1024
        at = _spool_db.wal_offset(100, 4096)  # mid-file, on no page boundary
        assert at % PAGE and 2 * span < at < size - 4 * span
        _drop_from_cache(wal)
        if any(_resident(wal)):
            pytest.skip("the kernel kept the WAL's pages cached after DONTNEED")

        assert _spool_db.read_ahead_wal(path, at, span) == span

        def pages(start: int, end: int) -> list[bool]:
            return _resident(wal)[start // PAGE : (end + PAGE - 1) // PAGE]

        wait_until(
            lambda: all(pages(at, at + span)), "the read-ahead pages were cached", 10
        )
        # Before the span and after it, nothing was read.
        assert not any(pages(0, at - PAGE))
        assert not any(pages(at + span + PAGE, size))
    finally:
        db.close()


def test_read_ahead_asks_for_nothing_it_cannot_and_never_raises(tmp_path, monkeypatch):
    path = str(tmp_path / "spool.db")
    assert _spool_db.read_ahead_wal(path, 0, 65536) == 0  # no spool yet
    db = _spool(path, 20)
    try:
        size = os.path.getsize(path + "-wal")
        assert _spool_db.read_ahead_wal(path, 0, 8192) == 8192
        assert _spool_db.read_ahead_wal(path, size - 100, 8192) == 100  # to the end
        assert _spool_db.read_ahead_wal(path, size, 8192) == 0  # appending

        def refused(*args):
            raise OSError(38, "Function not implemented")

        monkeypatch.setattr(os, "posix_fadvise", refused)
        assert _spool_db.read_ahead_wal(path, 0, 8192) == 0
    finally:
        db.close()


def test_the_sender_plans_the_read_ahead_at_each_checkpoint_and_repeats_it(
    tmp_path, monkeypatch
):
    asked: list[tuple[int, int]] = []
    monkeypatch.setattr(
        _spool_db,
        "read_ahead_wal",
        lambda path, start, length: asked.append((start, length)) or length,
    )
    path = str(tmp_path / "spool.db")
    spool = delivery._SpoolSource(path, "normal", ["notifications"], 2.0)
    spool._READ_AHEAD_EVERY = 3600.0  # asked again only when told below
    try:
        for n in range(30):
            spool.put(_spool_item(n))
        # A write during the checkpoint: the next frames follow the last.
        original = spool._query

        def query(sql):
            rows = original(sql)
            if "PASSIVE" in sql:
                spool.put(_spool_item(-1))
            return rows

        monkeypatch.setattr(spool, "_query", query)
        spool._checkpoint()
        monkeypatch.setattr(spool, "_query", original)
        [(start, length)] = asked
        assert length == spool._READ_AHEAD_BYTES
        assert start > 30 * 4096 and (start - 32) % (4096 + 24) == 0
        # Asked again only once _READ_AHEAD_EVERY has passed.
        assert spool.take(0) is not None
        assert len(asked) == 1
        spool.rewind()
        spool._next_read_ahead = time.monotonic() - 1
        assert spool.take(0) is not None
        assert asked[1] == (start, length)
        # All copied and nothing written meanwhile: from the start.
        spool._checkpoint()
        assert asked[-1] == (0, length)
    finally:
        spool.close()


_TRY_TO_WRITE = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
try:
    db.execute("BEGIN IMMEDIATE")
except sqlite3.OperationalError as exc:
    print(exc)
else:
    print("got the write lock")
"""


def test_the_read_ahead_and_checkpoints_leave_sqlites_locks_alone(tmp_path):
    """A process drops every POSIX lock it holds on a file when it closes
    any descriptor of that file: reading SQLite's -shm file, for one,
    would let another process write while an emitter is writing, and lose
    rows. With the sender's read-ahead and checkpoints run meanwhile,
    another process still finds the spool locked."""
    path = str(tmp_path / "spool.db")
    spool = delivery._SpoolSource(path, "normal", ["notifications"], 2.0)
    try:
        for n in range(30):
            spool.put(_spool_item(n))
        assert spool.take(0) is not None
        spool._checkpoint()

        def other_process() -> str:
            return subprocess.run(
                [sys.executable, "-c", _TRY_TO_WRITE, path],
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout.strip()

        with spool._lock:
            spool._db.execute("BEGIN IMMEDIATE")  # an emitter in its insert
            try:
                spool._next_read_ahead = 0.0
                spool._read_ahead()
                spool._checkpointed_at = 0.0  # due: tend() checkpoints
                spool.tend()
                spool._checkpoint()
                assert other_process() == "database is locked"
            finally:
                spool._db.execute("ROLLBACK")
        assert other_process() == "got the write lock"  # the probe can tell
    finally:
        spool.close()


def test_a_pass_is_clean_only_with_all_copied_and_no_write_under_way(
    tmp_path, monkeypatch
):
    """The next write starts the WAL over only after a checkpoint that
    copied every frame with no write in between; a write still under way
    (its frames not committed, so not counted as frames yet) is not."""
    path = str(tmp_path / "spool.db")
    spool = delivery._SpoolSource(path, "normal", ["notifications"], 2.0)
    try:
        for n in range(5):
            spool.put(_spool_item(n))
        assert spool._writes % 2 == 0
        assert spool._passive()[1] is True
        spool._writes += 1  # an emitter between its count and its commit
        assert spool._passive()[1] is False
        spool._writes += 1
        assert spool._passive()[1] is True
        monkeypatch.setattr(spool, "_query", lambda sql: [(1, -1, -1)])
        assert spool._passive() == (0, False)  # another checkpoint running
        monkeypatch.undo()
    finally:
        spool.close()
