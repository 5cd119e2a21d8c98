"""The spool's WAL read-ahead: the sender has the kernel read in the part
of the WAL that the emitters' inserts write next.

SQLite's WAL frames (a 24-byte header and a page) never line up with the
file's blocks, so a frame written over an old part of the WAL whose page
the kernel has dropped from its cache waits, inside the emit call, for
that block to be read in. These tests check where the next frame goes (the
wal-index header in ``-shm``), that the read-ahead really brings those
pages (and only those) into the page cache, and that the sender asks for
it as it reads the spool, at most every ``_READ_AHEAD_EVERY`` seconds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import sqlite3
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


def test_the_wal_index_follows_the_wal_its_checkpoints_and_restart(tmp_path):
    path = str(tmp_path / "spool.db")
    db = _spool(path, 20)
    try:
        grown = os.path.getsize(path + "-wal")
        # While the WAL only grows, the next frame goes at its end.
        assert _spool_db.wal_write_offset(path) == grown
        page, frames, copied = _spool_db.wal_index(path) or (0, 0, -1)
        assert (page, copied) == (4096, 0) and frames > 20
        [(_, log, done)] = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        assert _spool_db.wal_index(path) == (4096, frames, frames) == (4096, log, done)
        db.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        db.execute("INSERT INTO spool (created, record) VALUES (?, ?)", _record(99))
        # Started over: the next frame goes after that one commit's frames,
        # over the old ones, and the file keeps its length.
        at = _spool_db.wal_write_offset(path)
        assert at is not None and 32 < at < grown // 4
        assert (at - 32) % (4096 + 24) == 0
        assert os.path.getsize(path + "-wal") == grown
    finally:
        db.close()


def test_no_offset_without_a_readable_consistent_wal_index(tmp_path):
    path = str(tmp_path / "spool.db")
    assert _spool_db.wal_write_offset(path) is None  # no -shm at all
    db = _spool(path, 3)
    try:
        with open(path + "-shm", "rb") as shm:
            header = shm.read(100)
        live = _spool_db.wal_write_offset(path)
    finally:
        db.close()
    other = str(tmp_path / "copy.db")
    torn = bytearray(header)
    torn[16] ^= 0xFF  # the first copy's mxFrame changed, the second not yet
    for content in (bytes(torn), header[:60], bytes(96)):
        with open(other + "-shm", "wb") as shm:
            shm.write(content)
        assert _spool_db.wal_write_offset(other) is None, content[:20]
    with open(other + "-shm", "wb") as shm:
        shm.write(header)  # an intact copy is read as it is
    assert live is not None and _spool_db.wal_write_offset(other) == live


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="mincore and fadvise as on Linux"
)
def test_the_read_ahead_brings_in_what_the_next_writes_cover_and_no_more(
    tmp_path,
):
    path = str(tmp_path / "spool.db")
    db = _spool(path, 200)  # about 800 KB of WAL
    try:
        db.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        for n in range(30):  # the WAL starts over: the next frame is mid-file
            db.execute("INSERT INTO spool (created, record) VALUES (?, ?)", _record(n))
        wal = path + "-wal"
        at = _spool_db.wal_write_offset(path)
        size = os.path.getsize(wal)
        span = 64 * 1024
        assert at is not None and 2 * span < at < size - 4 * span
        _drop_from_cache(wal)
        if any(_resident(wal)):
            pytest.skip("the kernel kept the WAL's pages cached after DONTNEED")

        assert _spool_db.read_ahead_wal(path, span) == 2 * span

        def pages(start: int, end: int) -> list[bool]:
            return _resident(wal)[start // PAGE : (end + PAGE - 1) // PAGE]

        wait_until(
            lambda: all(pages(at, at + span)) and all(pages(0, span)),
            "the read-ahead pages were cached",
            timeout=10,
        )
        # Between the two spans and after the second, nothing was read.
        assert not any(pages(span + PAGE, at - PAGE))
        assert not any(pages(at + span + PAGE, size))
    finally:
        db.close()


def test_read_ahead_asks_for_nothing_it_cannot_and_never_raises(tmp_path, monkeypatch):
    path = str(tmp_path / "spool.db")
    assert _spool_db.read_ahead_wal(path, 65536) == 0  # no spool yet
    db = _spool(path, 20)
    try:
        # The WAL only grew: its head is asked for, the end is where the
        # next frames are appended (nothing to read there).
        assert _spool_db.read_ahead_wal(path, 8192) == 8192

        def refused(*args):
            raise OSError(38, "Function not implemented")

        monkeypatch.setattr(os, "posix_fadvise", refused)
        assert _spool_db.read_ahead_wal(path, 8192) == 0
    finally:
        db.close()


def test_the_sender_reads_ahead_as_it_reads_the_spool_at_most_so_often(
    tmp_path, monkeypatch
):
    asked: list[tuple[str, int]] = []
    monkeypatch.setattr(
        _spool_db,
        "read_ahead_wal",
        lambda path, length: asked.append((path, length)) or length,
    )
    path = str(tmp_path / "spool.db")
    spool = delivery._SpoolSource(path, "normal", ["notifications"], 2.0)
    try:
        for n in range(3):
            spool.put(_spool_item(n))
        assert spool.take(0) is not None  # reads the rows: asks
        assert asked == [(path, spool._READ_AHEAD_BYTES)]
        spool.rewind()
        assert spool.take(0) is not None  # reads again at once: does not ask
        assert len(asked) == 1
        spool.rewind()
        spool._next_read_ahead = time.monotonic() - 1  # the interval passed
        assert spool.take(0) is not None
        assert len(asked) == 2
    finally:
        spool.close()
