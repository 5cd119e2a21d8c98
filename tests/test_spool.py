"""Shutdown, fork and the spool file: exit flush, 0600, destinations, size cap.

A process that never calls ``cleanup()`` still delivers (or keeps) what it
accepted when the interpreter exits; ``cleanup()`` leaves the spool and
the transport to a sender that does not stop; a fork while another thread
writes the spool leaves the child working; the spool's files are private;
each row is sent where it was meant, also from a spool written before rows
had destinations; ``spool_max_bytes`` caps the spool with counted drops.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import oslo_messaging
import pytest

import nova_notifier
from nova_notifier import _spool_db, delivery, lifecycle
from nova_notifier._rabbit_batch import PublishResult
from nova_notifier.tools.amqp_queues import delete_queues
from tests.conftest import (
    PRIORITIES,
    RABBIT_URL,
    Collector,
    _stop_listener,
    broker_available,
    make_conf,
    wait_until,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNREACHABLE = "rabbit://guest:guest@127.0.0.1:1/"  # nothing listens on port 1


def _wait(condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout}s for {what}")
        time.sleep(0.02)


def _rows(spool: str, table: str = "spool") -> int:
    db = sqlite3.connect(spool)
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        db.close()


class Bus:
    """A listener on the real broker for one or more unique topics."""

    def __init__(self, count: int = 1) -> None:
        self.topics = [f"nn-spool-{uuid.uuid4().hex[:12]}" for _ in range(count)]
        self.collector = Collector()
        self.transport = oslo_messaging.get_notification_transport(
            make_conf(RABBIT_URL, self.topics[0])
        )
        self.listener = oslo_messaging.get_notification_listener(
            self.transport,
            [oslo_messaging.Target(topic=topic) for topic in self.topics],
            [self.collector],
            executor="threading",
        )
        self.listener.start()

    def close(self) -> None:
        nova_notifier.cleanup()
        _stop_listener(self.listener)
        self.transport.cleanup()
        delete_queues(RABBIT_URL, [f"{t}.{p}" for t in self.topics for p in PRIORITIES])


@pytest.fixture
def bus():
    if not broker_available():
        pytest.fail("RabbitMQ is not answering on 127.0.0.1:5672")
    made: list[Bus] = []

    def make(count: int = 1) -> Bus:
        made.append(Bus(count))
        return made[-1]

    try:
        yield make
    finally:
        for one in made:
            one.close()


# -- exit without cleanup() ----------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import logging, sys
    import nova_notifier
    from nova_notifier.testing.config import make_conf

    url, topic, mode, spool, count = sys.argv[1:6]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    conf = make_conf(url, [topic], delivery_mode=mode, flush_timeout=3,
                     retry_backoff_max=0.2)
    if mode == "spool":
        conf.set_override("spool_path", spool, group="notification_delivery")
    nova_notifier.init(conf)
    notifier = nova_notifier.get_notifier("compute", "exiting")
    for seq in range(int(count)):
        notifier.info({}, "test.exit", {"seq": seq})
    print("accepted", nova_notifier.stats()["queued"], flush=True)
    # no cleanup(): a WSGI worker that just ends
    """
)


def _run_child(url: str, topic: str, mode: str, spool: str, count: int):
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, url, topic, mode, spool, str(count)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    return done, time.monotonic() - started


@pytest.mark.broker
@pytest.mark.parametrize("mode", ["background", "spool"])
def test_exit_without_cleanup_delivers_what_was_accepted(bus, tmp_path, mode):
    env = bus()
    spool = str(tmp_path / "spool.db")
    done, elapsed = _run_child(RABBIT_URL, env.topics[0], mode, spool, 2000)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["accepted", "2000"]
    got = env.collector.wait_for(2000, event_type="test.exit", timeout=60)
    assert sorted(g.payload["seq"] for g in got) == list(range(2000))
    assert {(g.priority, g.publisher_id) for g in got} == {("INFO", "compute.exiting")}
    if mode == "spool":
        assert _rows(spool) == 0
    print(f"{mode}: 2000 emitted, process gone after {elapsed:.1f} s")


@pytest.mark.parametrize("mode", ["background", "spool"])
def test_exit_with_the_broker_down_is_prompt_and_says_what_it_left(tmp_path, mode):
    spool = str(tmp_path / "spool.db")
    done, elapsed = _run_child(UNREACHABLE, "nn-exit-down", mode, spool, 300)
    assert done.returncode == 0, done.stderr
    # flush_timeout (3 s) plus the interpreter's own start and exit
    assert elapsed < 3 + 10, f"exit took {elapsed:.1f} s"
    if mode == "spool":
        assert _rows(spool) == 300
        assert f"300 notifications left in the spool {spool}" in done.stderr
    else:
        assert "300 queued notifications not delivered before shutdown" in (done.stderr)
    assert "Traceback" not in done.stderr
    print(f"{mode}: broker down, 300 emitted, process gone after {elapsed:.1f} s")


# -- cleanup() with a sender that does not stop -------------------------------


def test_cleanup_leaves_the_spool_and_transport_to_a_stuck_sender(
    fake_env, tmp_path, monkeypatch, caplog
):
    entered, release = threading.Event(), threading.Event()
    original = delivery.Delivery._send

    def stuck(self, units):
        entered.set()
        release.wait(30)  # a call that ignores the abort
        return original(self, units)

    monkeypatch.setattr(delivery.Delivery, "_send", stuck)
    monkeypatch.setattr(delivery.Delivery, "_ABORT_JOIN", 0.2)
    fake_env.override("delivery_mode", "spool", group="notifications")
    fake_env.override(
        "spool_path", str(tmp_path / "s.db"), group="notification_delivery"
    )
    fake_env.override("flush_timeout", 0.2, group="notification_delivery")
    nova_notifier.init(fake_env.conf)
    sender = lifecycle._STATE.delivery
    transport = lifecycle.transport()
    closed = []
    monkeypatch.setattr(transport, "cleanup", lambda: closed.append(True))
    caplog.set_level(logging.WARNING, logger="nova_notifier")
    nova_notifier.get_notifier("compute").info({}, "test.stuck", {"n": 1})
    assert entered.wait(10)
    started = time.monotonic()
    nova_notifier.cleanup()
    assert time.monotonic() - started < 3
    assert closed == []  # the sender may still use it
    assert sender is not None and sender._thread.is_alive()
    source = sender._source
    assert source._db.execute("SELECT COUNT(*) FROM spool").fetchone() == (1,)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "the sender did not stop" in messages
    assert "transport left open" in messages
    release.set()  # the sender returns, and closes what it was left
    _wait(lambda: not sender._thread.is_alive(), what="the sender to end")
    with pytest.raises(sqlite3.ProgrammingError):
        source._db.execute("SELECT 1")


# -- fork ---------------------------------------------------------------------


@pytest.mark.broker
def test_forks_during_spool_writes_leave_every_child_working(bus, tmp_path):
    env = bus()
    conf = make_conf(
        RABBIT_URL,
        env.topics[0],
        notifications__delivery_mode="spool",
        notification_delivery__spool_path=str(tmp_path / "spool.db"),
        notification_delivery__flush_timeout=1,
    )
    nova_notifier.init(conf)
    writer = nova_notifier.get_notifier("compute", "writer")
    stop = threading.Event()
    written = [0]

    def write() -> None:
        while not stop.is_set():
            writer.info({}, "test.writer", {"n": written[0]})
            written[0] += 1

    thread = threading.Thread(target=write)
    thread.start()
    children = []
    try:
        for child in range(8):
            target = 50 * (child + 1)
            _wait(lambda: written[0] > target, what="writes")  # noqa: B023
            pid = os.fork()
            if pid == 0:  # the child: emit, flush, leave without pytest's code
                code = 1
                try:
                    nova_notifier.get_notifier("compute", "child").info(
                        {}, "test.child", {"child": child}
                    )
                    stats = nova_notifier.stats()
                    nova_notifier.cleanup()
                    code = 0 if (stats["queued"], stats["dropped"]) == (1, 0) else 3
                finally:
                    os._exit(code)
            children.append(pid)
    finally:
        stop.set()
        thread.join()
    deadline = time.monotonic() + 30
    codes = {}
    while len(codes) < len(children):
        assert time.monotonic() < deadline, (
            f"children hung: {set(children) - set(codes)}"
        )
        for pid in set(children) - set(codes):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                codes[pid] = os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    assert set(codes.values()) == {0}
    got = env.collector.wait_for(8, event_type="test.child", timeout=60)
    assert sorted(g.payload["child"] for g in got) == list(range(8))
    env.collector.wait_for(written[0], event_type="test.writer", timeout=120)
    assert nova_notifier.stats()["dropped"] == 0


# -- the spool file -------------------------------------------------------------


def test_the_spool_files_are_private(fake_env, tmp_path):
    spool = tmp_path / "spool.db"
    old = os.umask(0o022)
    try:
        fake_env.override("delivery_mode", "spool", group="notifications")
        fake_env.override("spool_path", str(spool), group="notification_delivery")
        nova_notifier.init(fake_env.conf)
        nova_notifier.get_notifier("compute").info({}, "test.private", {})
        fake_env.collector.wait_for(1, event_type="test.private")
    finally:
        os.umask(old)
    files = [
        spool,
        *(spool.with_name(spool.name + s) for s in ("-wal", "-shm", ".lock")),
    ]
    modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
    assert modes == dict.fromkeys(modes, 0o600), modes
    assert len(modes) == 4


def _old_spool(path: str, message: dict) -> None:
    """A spool as the release before destinations wrote it."""
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "created REAL NOT NULL, record TEXT NOT NULL)"
    )
    db.execute(
        "INSERT INTO spool (created, record) VALUES (?, ?)",
        (time.time(), json.dumps({"ctxt": {}, "message": message})),
    )
    db.commit()
    db.close()


def test_an_old_spool_is_migrated_and_replayed_to_the_current_topics(
    fake_env, tmp_path
):
    spool = str(tmp_path / "old.db")
    message = {
        "message_id": str(uuid.uuid4()),
        "publisher_id": "compute.old",
        "event_type": "test.old",
        "priority": "INFO",
        "payload": {"kept": True},
        "timestamp": "2026-01-01 00:00:00.000000",
    }
    _old_spool(spool, message)
    fake_env.override("delivery_mode", "spool", group="notifications")
    fake_env.override("spool_path", spool, group="notification_delivery")
    nova_notifier.init(fake_env.conf)
    [got] = fake_env.collector.wait_for(1, event_type="test.old")
    assert (got.priority, got.publisher_id, got.payload) == (
        "INFO",
        "compute.old",
        {"kept": True},
    )
    assert got.metadata["message_id"] == message["message_id"]
    db = sqlite3.connect(spool)
    columns = {row[1] for row in db.execute("PRAGMA table_info(spool)")}
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert {"topics", "version"} <= columns and "dead_letter" in tables


@pytest.mark.broker
def test_each_row_is_sent_where_the_process_that_wrote_it_meant(bus, tmp_path):
    """A row keeps the topics and envelope of the process that accepted it:
    a later process with another configuration replays it there."""
    one, two = bus(), bus()
    spool = str(tmp_path / "spool.db")
    # a process on the 1.0 driver and topic one, its broker unreachable
    nova_notifier.init(
        make_conf(
            UNREACHABLE,
            one.topics[0],
            oslo_messaging_notifications__driver=["messaging"],
            notifications__delivery_mode="spool",
            notification_delivery__spool_path=spool,
            notification_delivery__flush_timeout=0.2,
        )
    )
    nova_notifier.get_notifier("compute", "one").info({}, "test.where", {"by": 1})
    nova_notifier.cleanup()
    db = sqlite3.connect(spool)
    assert db.execute("SELECT topics, version FROM spool").fetchall() == [
        (json.dumps(one.topics), 1.0)
    ]
    db.close()
    # the next process sends to topic two with the 2.0 driver
    nova_notifier.init(
        make_conf(
            RABBIT_URL,
            two.topics[0],
            notifications__delivery_mode="spool",
            notification_delivery__spool_path=spool,
        )
    )
    nova_notifier.get_notifier("compute", "two").info({}, "test.where", {"by": 2})
    [first] = one.collector.wait_for(1, event_type="test.where", timeout=30)
    [second] = two.collector.wait_for(1, event_type="test.where", timeout=30)
    assert (first.priority, first.publisher_id, first.payload) == (
        "INFO",
        "compute.one",
        {"by": 1},
    )
    assert (second.priority, second.publisher_id, second.payload) == (
        "INFO",
        "compute.two",
        {"by": 2},
    )
    _wait(lambda: _rows(spool) == 0, what="the spool to empty")
    assert [i.event_type for i in one.collector.items] == ["test.where"]
    assert [i.event_type for i in two.collector.items] == ["test.where"]


def _broker_down(monkeypatch) -> threading.Event:
    """Every send fails as if the broker refused the connection, until the
    returned event is cleared."""
    down = threading.Event()
    down.set()
    original = delivery.Delivery._send

    def send(self, units):
        if down.is_set():
            return PublishResult(set(), {}, ConnectionRefusedError("broker down"))
        return original(self, units)

    monkeypatch.setattr(delivery.Delivery, "_send", send)
    return down


def test_spool_max_bytes_caps_the_spool_with_counted_drops(
    fake_env, tmp_path, monkeypatch, caplog
):
    down = _broker_down(monkeypatch)
    spool = str(tmp_path / "capped.db")
    cap = 256 * 1024
    fake_env.override("delivery_mode", "spool", group="notifications")
    fake_env.override("spool_path", spool, group="notification_delivery")
    fake_env.override("spool_max_bytes", cap, group="notification_delivery")
    fake_env.override("retry_backoff_max", 0.05, group="notification_delivery")
    caplog.set_level(logging.WARNING, logger="nova_notifier")
    nova_notifier.init(fake_env.conf)
    notifier = nova_notifier.get_notifier("compute", "capped")
    for seq in range(1000):
        notifier.info({}, "test.capped", {"seq": seq, "pad": "x" * 1000})
    stats = nova_notifier.stats()
    assert stats["queued"] + stats["dropped"] == 1000
    assert 100 < stats["queued"] < 300 and stats["dropped"] > 700, stats
    db = _spool_db.connect(spool)
    used = _spool_db.used_bytes(db)
    db.close()
    assert cap <= used <= cap + 8192, used
    full = [r.getMessage() for r in caplog.records if "the spool is full" in r.msg]
    assert len(full) == 1  # one line per 10 s, with the count so far
    assert "spool_max_bytes = 262144" in full[0] and "dropped so far" in full[0]
    down.clear()  # the broker is back: everything accepted arrives
    got = fake_env.collector.wait_for(stats["queued"], event_type="test.capped")
    assert sorted(g.payload["seq"] for g in got) == list(range(stats["queued"]))


def test_the_spool_command_works_without_oslo(tmp_path):
    """``nova-notifier spool`` starts fast and works where the service's
    oslo.messaging is not importable: it loads none of oslo."""
    spool = str(tmp_path / "spool.db")
    db = _spool_db.connect(spool)
    _spool_db.add_dead_letter(
        db, time.time(), {"ctxt": {}, "message": {"event_type": "e"}}, "t", 2.0, 5, "r"
    )
    db.close()
    code = (
        "import sys\n"
        "from nova_notifier.tools import cli\n"
        f"assert cli.main(['spool', 'requeue', '--spool-path', {spool!r}]) == 0\n"
        "print(sorted(m for m in sys.modules if m.startswith(('oslo', 'amqp'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.splitlines() == ["requeued 1 dead letters", "[]"]
    assert (_rows(spool), _rows(spool, "dead_letter")) == (1, 0)


_FORK_THEN_PARENT_CLOSES = r"""
import os, sqlite3, sys, time
from nova_notifier.delivery import _SpoolSource
path = sys.argv[1]
def item(i):
    return {"ctxt": {}, "message": {"i": i, "priority": "INFO"},
            "topics": ["notifications"], "version": 2.0}
parent = _SpoolSource(path, "normal", ["notifications"], 2.0)
parent.put(item(0))
if sys.argv[2] == "reader-open":
    assert parent.backlog() == 1  # the sender's own connection is open too
r, w = os.pipe()
pid = os.fork()
if pid == 0:  # a child that goes on writing the same spool
    child = _SpoolSource(path, "normal", ["notifications"], 2.0)
    for i in range(1, 6):
        child.put(item(i))
    os.write(w, b"x")
    deadline = time.monotonic() + 10
    while os.path.exists(path + ".parent-open") and time.monotonic() < deadline:
        time.sleep(0.01)  # the parent closes its spool meanwhile
    for i in range(6, 11):
        child.put(item(i))
    child.close()
    os._exit(0)
open(path + ".parent-open", "w").close()
os.read(r, 1)
parent.close()  # cleanup() or atexit in the parent while the child writes
os.unlink(path + ".parent-open")
os.waitpid(pid, 0)
print(sqlite3.connect(path).execute("SELECT COUNT(*) FROM spool").fetchone()[0])
"""


@pytest.mark.parametrize("reader", ["reader-closed", "reader-open"])
def test_a_parent_closing_its_spool_after_a_fork_loses_no_child_row(tmp_path, reader):
    """SQLite keeps one record of a file's locks per process; a connection
    open across a fork let the side that closed last delete the WAL the
    other was still writing. Every row the child accepted must remain,
    whether or not the parent's reading connection was open too."""
    path = str(tmp_path / "spool.db")
    done = subprocess.run(
        [sys.executable, "-c", _FORK_THEN_PARENT_CLOSES, path, reader],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "11"


def _spool_item(n: int) -> dict:
    return {
        "ctxt": {},
        "message": {"n": n, "priority": "INFO"},
        "topics": ["notifications"],
        "version": 2.0,
    }


def test_delivered_rows_are_deleted_as_ranges_and_only_those(tmp_path):
    """Deletes go by ranges of consecutive seq: a row not delivered in
    between (refused, still in flight) must stay."""
    path = str(tmp_path / "spool.db")
    spool = delivery._SpoolSource(path, "normal", ["notifications"], 2.0)
    try:
        for n in range(10):
            assert spool.put(_spool_item(n)) is None
        taken = [spool.take(0) for _ in range(10)]
        keys = [key for key, _, _ in taken]
        for index in (0, 1, 2, 4, 5, 8):
            spool.done(keys[index])
        spool._flush_deletes()
        rows = [r[0] for r in sqlite3.connect(path).execute("SELECT seq FROM spool")]
        assert rows == [keys[i] for i in (3, 6, 7, 9)]
    finally:
        spool.close()


def test_an_emit_never_waits_behind_the_senders_reading_connection(tmp_path):
    """The sender reads (and checkpoints) on its own connection outside the
    emitters' lock: an insert goes through while that connection is busy,
    and while another connection holds a read transaction open."""
    path = str(tmp_path / "spool.db")
    spool = delivery._SpoolSource(path, "normal", ["notifications"], 2.0)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        spool.put(_spool_item(0))
        assert spool.take(0) is not None  # opens the reading connection
        other.execute("BEGIN")
        other.execute("SELECT COUNT(*) FROM spool").fetchone()
        done = threading.Event()
        with spool._read_lock:  # the sender in the middle of a read
            worker = threading.Thread(
                target=lambda: (spool.put(_spool_item(1)), done.set())
            )
            worker.start()
            assert done.wait(10), "the insert waited for the reading side"
        worker.join(10)
        other.execute("COMMIT")
        assert spool.backlog() == 2
    finally:
        other.close()
        spool.close()


def test_the_sender_checkpoints_the_wal_so_emitters_do_not(tmp_path, monkeypatch):
    """After _CHECKPOINT_ROWS deletes the sender copies the WAL back into
    the database from its own connection: the WAL starts over instead of
    growing to the length at which an emitter's commit would checkpoint."""
    monkeypatch.setattr(delivery._SpoolSource, "_CHECKPOINT_ROWS", 64)
    path = str(tmp_path / "spool.db")
    spool = delivery._SpoolSource(path, "normal", ["notifications"], 2.0)
    try:
        checkpoints = []
        original = spool._checkpoint
        monkeypatch.setattr(
            spool, "_checkpoint", lambda: (checkpoints.append(1), original())
        )
        for n in range(200):
            spool.put(_spool_item(n))
        for _ in range(200):
            key, _, _ = spool.take(0)
            spool.done(key)
        spool._flush_deletes()
        assert len(checkpoints) == 3
        busy, frames, copied = (
            spool._read().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        )
        assert busy == 0 and copied == frames
    finally:
        spool.close()


def test_after_the_senders_checkpoint_the_wal_starts_over(tmp_path):
    """The sender's checkpoint, with status() having read on its connection,
    leaves no read open: the next commit starts the WAL over instead of
    making it longer (until an emitter's commit checkpoints it)."""
    path = str(tmp_path / "spool.db")
    spool = delivery._SpoolSource(path, "normal", ["notifications"], 2.0)
    try:
        for n in range(50):
            spool.put(_spool_item(n))
        assert spool.backlog() == 50 and spool.oldest() is not None
        spool._checkpoint()  # everything copied into the database
        spool.put(_spool_item(50))  # the WAL starts over: only this commit
        [(busy, frames, _)] = spool._query("PRAGMA wal_checkpoint(PASSIVE)")
        assert busy == 0 and frames <= 4
    finally:
        spool.close()


def test_a_wal_an_emitter_kept_from_starting_over_is_restarted(tmp_path, monkeypatch):
    """The WAL starts over only at a write that finds it all copied; a read
    or an insert during the sender's checkpoint spoils that, and under a
    steady stream it would only grow. Past _RESTART_FRAMES the sender
    restarts it (under the emitters' lock)."""
    path = str(tmp_path / "spool.db")
    spool = delivery._SpoolSource(path, "normal", ["notifications"], 2.0)
    other = sqlite3.connect(path, isolation_level=None)
    original = spool._query

    def spoiled_checkpoint():
        other.execute("BEGIN")  # a reader's snapshot older than what follows
        other.execute("SELECT COUNT(*) FROM spool").fetchone()
        for n in range(50):
            spool.put(_spool_item(n))

        def query(sql):
            rows = original(sql)  # cannot copy past the reader's snapshot
            if "PASSIVE" in sql and other.in_transaction:
                other.execute("COMMIT")
                spool.put(_spool_item(-1))  # finds the WAL not all copied
            return rows

        monkeypatch.setattr(spool, "_query", query)
        spool._checkpoint()
        monkeypatch.setattr(spool, "_query", original)
        spool.put(_spool_item(-2))
        [(busy, frames, _)] = original("PRAGMA wal_checkpoint(PASSIVE)")
        assert busy == 0
        return frames

    try:
        monkeypatch.setattr(spool, "_RESTART_FRAMES", 10**9)
        assert spoiled_checkpoint() > 20  # not started over
        monkeypatch.setattr(spool, "_RESTART_FRAMES", 10)
        assert spoiled_checkpoint() <= 4  # restarted: only the last commit
    finally:
        other.close()
        spool.close()


def test_a_reader_elsewhere_never_holds_an_emit_call_behind_the_restart(tmp_path):
    """A RESTART checkpoint waits for every reader of the WAL, and the
    sender runs it with the emitters' lock held: with a read transaction
    left open in another connection (an operator's sqlite3 shell), it must
    give up at once rather than wait out the busy timeout (here 60 s), or
    every emit call would wait with it. Once the reader is gone, the next
    checkpoint does start the WAL over."""
    path = str(tmp_path / "spool.db")
    spool = delivery._SpoolSource(path, "normal", ["notifications"], 2.0)
    spool._db.execute("PRAGMA busy_timeout = 60000")
    other = sqlite3.connect(path, isolation_level=None)
    try:
        for n in range(20):
            spool.put(_spool_item(n))
        other.execute("BEGIN")
        other.execute("SELECT COUNT(*) FROM spool").fetchone()
        for n in range(20, 40):
            spool.put(_spool_item(n))
        spool._RESTART_FRAMES = 1
        checkpoint = threading.Thread(target=spool._checkpoint, daemon=True)
        checkpoint.start()
        checkpoint.join(10)
        assert not checkpoint.is_alive(), "the restart waited for the reader"
        put = threading.Thread(target=spool.put, args=(_spool_item(40),), daemon=True)
        put.start()
        put.join(10)
        assert not put.is_alive(), "an emit call waited behind the checkpoint"
        assert spool._db.execute("PRAGMA busy_timeout").fetchone()[0] == 60000
        [(_, grown, _)] = spool._query("PRAGMA wal_checkpoint(PASSIVE)")
        assert grown > 20  # the reader kept it from starting over
        other.execute("COMMIT")
        spool._checkpoint()
        spool.put(_spool_item(41))
        [(busy, frames, _)] = spool._query("PRAGMA wal_checkpoint(PASSIVE)")
        assert busy == 0 and frames <= 4  # started over: only the last commit
    finally:
        other.close()
        spool.close()


def test_the_sender_checkpoints_the_wal_while_the_broker_is_away(
    fake_env, tmp_path, monkeypatch
):
    """Nothing is delivered, so nothing deleted: the sender, waiting to
    retry, still copies the WAL into the database every _TEND_WRITES
    inserts. Otherwise it grows to the emitters' auto-checkpoint, and an
    emit call copies 40 MB (measured: 35 to 62 ms every 12 s of an outage
    at 200/s). When the broker is back, everything arrives."""
    down = _broker_down(monkeypatch)
    monkeypatch.setattr(delivery._SpoolSource, "_TEND_WRITES", 40)
    spool = str(tmp_path / "outage.db")
    fake_env.override("delivery_mode", "spool", group="notifications")
    fake_env.override("spool_path", spool, group="notification_delivery")
    fake_env.override("retry_backoff_max", 30.0, group="notification_delivery")
    nova_notifier.init(fake_env.conf)
    notifier = nova_notifier.get_notifier("compute", "outage")
    for seq in range(5):
        notifier.info({}, "test.outage", {"seq": seq, "pad": "x" * 1000})
    # Inserts go to the WAL; only a checkpoint copies them into the file.
    empty = os.path.getsize(spool)
    wait_until(lambda: nova_notifier.stats()["retried"] >= 3, "three failed attempts")
    assert os.path.getsize(spool) == empty  # under _TEND_WRITES: left alone
    for seq in range(5, 200):
        notifier.info({}, "test.outage", {"seq": seq, "pad": "x" * 1000})
    # The backoff is long (30 s) and no row was deleted: only the sender's
    # tending during its wait copies the WAL.
    wait_until(
        lambda: os.path.getsize(spool) > empty + 100 * 1024,
        "the sender to checkpoint the WAL during the outage",
        timeout=10,
    )
    assert _rows(spool) == 200
    down.clear()
    got = fake_env.collector.wait_for(200, event_type="test.outage", timeout=60)
    assert sorted(g.payload["seq"] for g in got) == list(range(200))


def test_a_long_wal_starts_over_by_itself_or_after_tries_under_the_lock(
    tmp_path, monkeypatch
):
    """Past _RESTART_FRAMES the sender checkpoints again, outside the
    emitters' lock, until a pass finds the WAL all copied with no write of
    this process during it: the next write then starts the WAL over by
    itself, and no emit call waited. Only a WAL spoiled by a write at
    every one of _RESTART_TRIES passes is restarted under the lock."""
    path = str(tmp_path / "spool.db")
    spool = delivery._SpoolSource(path, "normal", ["notifications"], 2.0)
    monkeypatch.setattr(spool, "_RESTART_FRAMES", 10)
    restarts: list[bool] = []
    original_restart = spool._restart
    original_query = spool._query
    late = iter(range(1000, 1003))

    def restart():
        restarts.append(spool._lock.locked())
        original_restart()

    def query(sql):
        rows = original_query(sql)
        n = next(late, None)  # an emit call as each of the first passes ends
        if n is not None and "PASSIVE" in sql:
            spool.put(_spool_item(n))
        return rows

    def frames_after_one_more_write() -> int:
        spool.put(_spool_item(99))
        [(_, frames, _)] = original_query("PRAGMA wal_checkpoint(PASSIVE)")
        return int(frames)

    monkeypatch.setattr(spool, "_restart", restart)
    monkeypatch.setattr(spool, "_query", query)
    try:
        for n in range(30):
            spool.put(_spool_item(n))
        spool._checkpoint()
        assert restarts == []  # the fourth pass was clean
        assert frames_after_one_more_write() <= 4  # started over by itself

        late = iter(range(2000, 2000 + 3 * spool._RESTART_TRIES))
        for n in range(30):
            spool.put(_spool_item(n))
        spool._checkpoint()
        assert restarts == [True]  # every pass spoiled: once, lock held
        assert frames_after_one_more_write() <= 4
    finally:
        spool.close()
