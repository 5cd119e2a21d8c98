"""How an emitted notification reaches the transport.

Owns ``[notifications] delivery_mode`` and the options of the background
sender and the spool. Three modes:

``direct``
    The emit call sends through oslo.messaging's ``Notifier`` and waits for
    it, as Nova does: during a broker outage the call blocks or the message
    is lost, depending on ``[oslo_messaging_notifications] retry``.
``background``
    The emit call builds the message and puts it on a bounded memory queue; a
    sender thread delivers it. Never waits on the network. A full queue drops
    (counted, logged); messages still queued when the process dies are lost.
``spool``
    As ``background``, but the message is written to a SQLite spool (WAL)
    before the emit call returns and removed only after the broker confirmed
    it. A new process on the same spool replays what is left: at-least-once
    delivery, with the original message_id and timestamp kept so consumers
    can drop duplicates.
"""

from __future__ import annotations

import collections
import fcntl
import hashlib
import json
import logging
import os
import queue
import re
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from oslo_config import cfg
from oslo_serialization import jsonutils

from nova_notifier import _log, _rabbit_batch, _spool_db
from nova_notifier._direct import (
    WIRE_PRIORITY,
    faked_timestamp,
    message_id,
    timestamp,
    unique_hex,
)
from nova_notifier._log import get_logger
from nova_notifier._messaging import oslo_messaging
from nova_notifier._rabbit_batch import BatchPublisher, PublishResult
from nova_notifier.exceptions import ConfigError
from nova_notifier.serializer import sanitize

LOG = get_logger(__name__)

DIRECT, BACKGROUND, SPOOL = "direct", "background", "spool"
_MESSAGING_DRIVERS = {"messagingv2": 2.0, "messaging": 1.0}

GROUP = "notification_delivery"
# The drivers' names, as [oslo_messaging_notifications] driver gives them.
DRIVER_NAMES = {BACKGROUND: "nova_notifier.background", SPOOL: "nova_notifier.spool"}

# [notifications] delivery_mode: the library's own helpers' way of choosing
# a sender (the one code path the drivers use too).
MODE_OPTS = [
    cfg.StrOpt(
        "delivery_mode",
        default=DIRECT,
        choices=[
            (DIRECT, "the emit call sends and waits, like Nova"),
            (BACKGROUND, "a bounded memory queue and a sender thread"),
            (SPOOL, "a durable SQLite spool and a sender thread"),
        ],
        help="How the library's own helpers' notifications reach the broker. "
        "background and spool are the nova_notifier.background and "
        "nova_notifier.spool drivers standing in for messagingv2 (or "
        "messaging): the emit call never waits on the network. Other "
        "oslo.messaging Notifiers of the process choose those drivers in "
        "[oslo_messaging_notifications] driver.",
    ),
]


def _opt(kind: Any, name: str, **kwargs: Any) -> Any:
    """A [notification_delivery] option, also read under its old
    [notifications] name (deprecated)."""
    return kind(name, deprecated_group="notifications", **kwargs)


# [notification_delivery]: the senders' tuning, shared by delivery_mode and
# the nova_notifier.background / nova_notifier.spool oslo.messaging drivers.
OPTS = [
    _opt(
        cfg.IntOpt,
        "queue_size",
        default=10000,
        min=1,
        help="background: notifications held in memory before new ones "
        "are dropped (counted, logged).",
    ),
    _opt(
        cfg.StrOpt,
        "spool_path",
        sample_default="$XDG_STATE_HOME/nova-notifier/spool-<hash>.db",
        help="spool: the SQLite file holding undelivered notifications. "
        "Unset: a file per transport URL in the user's state directory "
        "($XDG_STATE_HOME, else ~/.local/state, under nova-notifier/), "
        "logged at start-up. Several processes may share one spool.",
    ),
    _opt(
        cfg.StrOpt,
        "spool_sync",
        default="normal",
        choices=[
            ("normal", "survives a killed process; an OS crash may lose the last"),
            ("full", "survives an OS crash too; an fsync per emit call"),
        ],
        help="spool: SQLite synchronous setting.",
    ),
    _opt(
        cfg.FloatOpt,
        "retry_backoff_max",
        default=30.0,
        min=0.01,
        help="Longest wait, in seconds, between two delivery attempts of the "
        "sender once every host of the transport URL failed (the wait "
        "doubles from 0.1 s).",
    ),
    _opt(
        cfg.IntOpt,
        "sender_batch_size",
        default=200,
        min=1,
        help="On rabbit://: notifications the sender publishes before it "
        "waits, once, for the broker to confirm them all. 1 sends each "
        "through oslo.messaging and waits for its confirm.",
    ),
    _opt(
        cfg.FloatOpt,
        "send_timeout",
        default=10.0,
        min=0.1,
        help="On rabbit://: seconds the sender waits on a silent broker "
        "(connect, publish, confirms) before it drops the connection and "
        "tries the next host.",
    ),
    _opt(
        cfg.FloatOpt,
        "flush_timeout",
        default=10.0,
        min=0,
        help="Seconds cleanup(), or the interpreter's exit, waits for a "
        "sender to deliver what it holds (a spool keeps the rest for the "
        "next start; a memory queue loses it, counted).",
    ),
    _opt(
        cfg.IntOpt,
        "dead_letter_after",
        default=5,
        min=1,
        help="Attempts before a message the broker refuses for good "
        "(basic.nack, ACCESS_REFUSED, PRECONDITION_FAILED, NOT_FOUND, a "
        "message over max_message_size) is set aside: into the spool's "
        "dead_letter table with spool, dropped (counted) with background. "
        "A nack counts at most once every 2 s (a quorum queue nacks while "
        "it elects a new leader). Connection losses and timeouts are "
        "retried for ever.",
    ),
    _opt(
        cfg.IntOpt,
        "spool_max_bytes",
        default=0,
        min=0,
        help="spool: bytes of data the spool may hold (SQLite pages in "
        "use, dead letters included); when full, new notifications are "
        "dropped (counted, logged at a bounded rate). 0: no limit.",
    ),
]


def check(conf: cfg.ConfigOpts) -> None:
    """Reject a delivery configuration that cannot work (used by ``init()``).

    ``delivery_mode`` background or spool stands in for the messagingv2 (or
    messaging) driver; with this library's own driver configured instead,
    the mode must be direct or the same as the driver's.
    """
    mode = conf.notifications.delivery_mode
    if mode == DIRECT:
        return
    drivers = set(conf.oslo_messaging_notifications.driver) - {"noop"}
    ours = drivers & set(DRIVER_NAMES.values())
    if ours and ours != {DRIVER_NAMES[mode]}:
        raise ConfigError(
            f"invalid value for option [notifications] delivery_mode: "
            f"{mode!r} contradicts [oslo_messaging_notifications] driver "
            f"{sorted(ours)}; set delivery_mode = direct (the driver then "
            f"chooses) or drop one"
        )
    others = drivers - set(DRIVER_NAMES.values())
    if others and not others <= set(_MESSAGING_DRIVERS):
        raise ConfigError(
            f"invalid value for option [notifications] delivery_mode: "
            f"{mode!r} needs the messagingv2 or messaging driver, not "
            f"{sorted(others)}"
        )


def drivers_configured(conf: cfg.ConfigOpts) -> bool:
    """Whether ``[oslo_messaging_notifications] driver`` names one of this
    library's drivers (which then deliver for the library's helpers too)."""
    return bool(
        set(conf.oslo_messaging_notifications.driver) & set(DRIVER_NAMES.values())
    )


def _state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "nova-notifier")


def default_spool_path(transport_url: str) -> str:
    """The spool file used when ``spool_path`` is unset: one per broker.

    ``<state dir>/nova-notifier/spool-<hash>.db``, the hash taken over the
    URL without its passwords (so processes of one user sending to the same
    broker share a spool, and no secret shapes a file name). The directory
    is created mode 0700.
    """
    masked = re.sub(r"([/,][^:/,@]*):[^@,/]*@", r"\1@", transport_url)
    digest = hashlib.sha256(masked.encode("utf-8")).hexdigest()[:12]
    directory = _state_dir()
    os.makedirs(directory, mode=0o700, exist_ok=True)
    return os.path.join(directory, f"spool-{digest}.db")


def _timestamp(created: float) -> str:
    """The timestamp text of the moment ``time.time()`` said ``created``."""
    return timestamp(round(created * 1_000_000) * 1000)


def _message(
    message_id: str,
    publisher_id: str,
    event_type: str,
    payload: Any,
    priority: str,
    timestamp: str,
) -> dict[str, Any]:
    """The wire message, its keys in the order oslo.messaging sends them."""
    priority = priority.lower()
    return {
        "message_id": message_id,
        "publisher_id": publisher_id,
        "event_type": event_type,
        "priority": WIRE_PRIORITY.get(priority) or priority.upper(),
        "payload": payload,
        "timestamp": timestamp,
    }


# The sender's loops over a batch (taking, building, encoding, framing:
# some 10-20 us a message, all holding the GIL) stop after each message for
# an emitter inside a spool insert (which let go of the GIL and wants it
# back), and every _SLEEP_EVERY messages sleep(0) for any other thread:
# without it a thread that wants the GIL waits for the interpreter's
# switch interval (5 ms) whenever the sender is busy. (sleep(0) costs
# some 80 us on a VM, hence not after every message.)
_SLEEP_EVERY = 16


def _yield_to_callers(creator: int) -> bool:
    """Put the calling thread (a sender) under SCHED_BATCH; True if it did.

    Linux lets a thread that wakes up take the core from the one running
    there: the sender, woken by an emit call that queued something, would
    often preempt that very call, which then waits in the run queue while
    the sender runs (measured on a 2-core VM: 1-2 ms, with the other core
    idle). A SCHED_BATCH thread keeps its full share of the CPU but does not
    preempt at wakeup (only at the scheduler's tick), so an emit call that
    wakes it keeps its core. Threads the sender starts inherit the policy
    (oslo.messaging's heartbeat thread, when the sender connects through
    it). Left alone: a thread not under the normal policy (the service
    chose one), a system without the call or that refuses it, and a sender
    that shares its OS thread with ``creator`` (eventlet's green threads:
    the policy would apply to them all). Never raises.
    """
    batch = getattr(os, "SCHED_BATCH", None)
    if (
        batch is None
        or not hasattr(os, "sched_setscheduler")
        or threading.get_native_id() == creator
    ):
        return False
    try:
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            return False
        os.sched_setscheduler(0, batch, os.sched_param(0))
    except Exception as exc:  # a sandbox that forbids it: keep the default
        LOG.debug("nova_notifier: sender stays under SCHED_OTHER: %s", exc)
        return False
    return True


class _Unit:
    """One message to one topic: what the broker confirms or refuses."""

    __slots__ = ("attempts", "counted", "created", "index", "item", "key", "topic")

    def __init__(
        self, key: Any, created: float, item: dict[str, Any], index: int
    ) -> None:
        self.key = key
        self.created = created
        self.item = item
        self.index = index  # in item["topics"]
        self.topic = item["topics"][index]
        self.attempts = 0
        self.counted: float | None = None  # when a refusal last counted

    @property
    def routing_key(self) -> str:
        return f"{self.topic}.{self.item['message']['priority'].lower()}"


# What an emit call queues in background mode: (time.time(), its
# timestamp text when oslo.utils fakes the time, publisher_id, ctxt,
# event_type, payload, priority); the sender makes the wire message of it.
# Or, from a driver, (time.time(), item): the message oslo.messaging built.
_Entry = tuple[Any, ...]


class _MemorySource:
    """A bounded FIFO in memory of what the emit calls handed over as they
    got it; the sender adds the message_id and the timestamp text."""

    def __init__(self, size: int, topics: list[str], version: float) -> None:
        self._queue: queue.SimpleQueue[_Entry] = queue.SimpleQueue()
        self.qsize = self._queue.qsize
        self.append = self._queue.put
        self.size = size
        self._topics = topics
        self._version = version

    @staticmethod
    def wait_for_emitters() -> bool:
        """An emitter never waits inside ``append``: nothing to wait for."""
        return False

    def take(self, timeout: float) -> tuple[Any, float, dict[str, Any]] | None:
        try:
            entry = (
                self._queue.get(timeout=timeout)
                if timeout
                else self._queue.get_nowait()
            )
        except queue.Empty:
            return None
        if len(entry) == 2:  # (time, item): a message a driver was given
            return None, entry[0], entry[1]
        created, stamp, publisher_id, ctxt, event_type, payload, priority = entry
        message = _message(
            message_id(),
            publisher_id,
            event_type,
            payload,
            priority,
            _timestamp(created) if stamp is None else stamp,
        )
        item = {
            "ctxt": ctxt,
            "message": message,
            "topics": self._topics,
            "version": self._version,
        }
        return None, created, item

    def done(self, key: Any) -> None:
        """Nothing to do: a taken item left the queue already."""

    def dead_letter(self, unit: _Unit, reason: str) -> bool:
        """Nothing can keep it: False (the caller counts a drop)."""
        return False

    def rewind(self) -> None:
        """Nothing to do: a memory queue cannot give an item back."""

    def tend(self) -> None:
        """Nothing to keep in shape while the broker is away."""

    def backlog(self) -> int:
        return self._queue.qsize()

    def oldest(self) -> float | None:
        return None

    def forget_after_fork(self) -> None:
        """Nothing to let go of."""

    def close(self) -> int:
        return self._queue.qsize()


# Spools of this process, so a fork can be made safe for each of them.
_SPOOLS: weakref.WeakSet[_SpoolSource] = weakref.WeakSet()
# The spools whose locks _before_fork took, released after the fork.
_HELD: list[_SpoolSource] = []


def _before_fork() -> None:
    # No spool write may be half done in the child: hold every spool's lock
    # across the fork (a write takes microseconds). And no SQLite connection
    # may live on both sides of a fork: SQLite keeps one record of a file's
    # locks per process, a child inherits it, and whichever side closes
    # last then believes it is alone, checkpoints and deletes the WAL the
    # other side is still writing (rows accepted there would be lost). So
    # the parent closes its connections now and reopens them after.
    for spool in list(_SPOOLS):
        spool._lock.acquire()
        spool._read_lock.acquire()
        _HELD.append(spool)
        spool._close_for_fork()


def _after_fork_in_parent() -> None:
    held = list(_HELD)
    _HELD.clear()
    for spool in held:
        try:
            spool._reopen_after_fork()
        finally:
            spool._read_lock.release()
            spool._lock.release()


def _after_fork_in_child() -> None:
    _HELD.clear()
    for spool in list(_SPOOLS):
        spool._lock = threading.Lock()
        spool._read_lock = threading.Lock()
        spool.forget_after_fork()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)


class _SpoolSource:
    """A FIFO in a SQLite file (WAL): written by emitters, read by one sender.

    Every write of the process (the emitters' inserts, the sender's
    deletes) goes through one connection under one lock, so the process
    never waits on SQLite's own busy handler (which sleeps a millisecond
    and more); the sender reads, and checkpoints the WAL, on a connection
    of its own outside that lock, so an emitter waits at most for one
    short delete. Delivered rows are deleted in small batches, as ranges
    of seq (a crash in between only means a duplicate on replay). Several
    processes may write one spool; an ``flock`` on ``<spool_path>.lock``
    lets one sender at a time read it, so no message is sent by two. The
    files are created mode 0600. Each row keeps the topics and envelope
    version it was accepted for; rows written before those columns existed
    go to ``topics``/``version``, the reading process's own.
    """

    _DELETE_BATCH = 64
    # Rows deleted between two checkpoints by the sender: each row's insert
    # and delete write a few KB to the WAL, 1000 pages hold about 4 MB.
    _CHECKPOINT_ROWS = 384
    _RESTART_FRAMES = 8000  # 32 MB of WAL with 4 KB pages

    def __init__(
        self,
        path: str,
        sync: str,
        topics: list[str],
        version: float,
        max_bytes: int = 0,
    ) -> None:
        self.path = path
        self._sync = sync
        self._lock = threading.Lock()
        self._db: Any = self._connect_writer()
        # The sender's reads and checkpoints (and status()), opened on use.
        self._read_lock = threading.Lock()
        self._reader: Any = None
        self._closed_for_fork = False
        self._topics = topics
        self._topics_json = json.dumps(topics)
        self._in_put: list[None] = []  # one entry an emit call under way
        self._put_done = threading.Event()
        self._version = version
        self._max_bytes = max_bytes
        self._page_size: int | None = None
        self._budget = 0  # bytes that may be added before asking SQLite again
        self._lock_fd: int | None = None
        self._cursor = 0
        self._batch: collections.deque[tuple[int, float, str, str | None, Any]] = (
            collections.deque()
        )
        self._delivered: list[int] = []
        self._deleted = 0  # rows deleted since the last checkpoint
        self._next_read_ahead = 0.0
        self._next_frame_at = 0  # in the WAL file, as the last checkpoint saw it
        # Writes to the spool by this process (under _lock), and their count
        # at the last checkpoint: which of them came while one ran.
        self._writes = 0
        self._writes_checkpointed = 0
        self._checkpointed_at = time.monotonic()
        self._checkpoint_log = _log.RateLimited(60.0)
        self._wake = threading.Event()
        _SPOOLS.add(self)

    def put(self, item: dict[str, Any]) -> str | None:
        """Write ``item`` to the spool; None, or why it was not written.

        ``item["record"]``, when there, is the JSON text of its context and
        message already (else they are encoded here).
        """
        record = item.get("record") or json.dumps(
            {"ctxt": item["ctxt"], "message": item["message"]}
        )
        topics = item["topics"]
        with self._lock:
            if self._max_bytes and self._full(len(record)):
                return f"the spool is full (spool_max_bytes = {self._max_bytes})"
            self._writes += 1  # odd: a write under way (see _checkpoint)
            try:
                self._db.execute(
                    "INSERT INTO spool (created, record, topics, version) "
                    "VALUES (?, ?, ?, ?)",
                    (
                        time.time(),
                        record,
                        self._topics_json
                        if topics is self._topics
                        else json.dumps(topics),
                        item["version"],
                    ),
                )
            finally:
                self._writes += 1
        self._wake.set()
        return None

    def entering(self) -> None:
        """An emit call begins (the sender lets go of the GIL meanwhile)."""
        self._in_put.append(None)

    def leaving(self) -> None:
        """The emit call ends."""
        self._in_put.pop()
        self._put_done.set()

    def wait_for_emitters(self) -> bool:
        """Called by the sender between messages: when an emit call is
        under way (its insert lets go of the GIL, and it wants it back),
        wait for it to finish (True), so it does not wait for the sender."""
        if self._in_put:
            self._put_done.clear()
            if self._in_put:
                self._put_done.wait(0.002)
                return True
        return False

    def _full(self, size: int) -> bool:
        """Whether a record of ``size`` bytes would go over ``spool_max_bytes``.

        Asks SQLite only once half of the room it last reported may be used
        (counting each record at its length plus a row's overhead), so far
        from the cap an insert costs no extra query, and near it every
        insert checks.
        """
        cost = size + 64
        if cost <= self._budget:
            self._budget -= cost
            return False
        if self._page_size is None:
            self._page_size = _spool_db.page_size(self._db)
        room = self._max_bytes - _spool_db.used_bytes(self._db, self._page_size)
        if room <= 0:
            self._budget = 0
            return True
        self._budget = max(0, room // 2 - cost)
        return False

    def _claim(self, timeout: float) -> bool:
        """Become the spool's one reader; False while another process is."""
        if self._lock_fd is not None:
            return True
        fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            time.sleep(timeout)  # another process sends from this spool
            return False
        try:
            os.fchmod(fd, 0o600)  # one an older release left readable
        except OSError as exc:  # not ours to change: use it as it is
            LOG.debug("nova_notifier: chmod %s.lock: %s", self.path, exc)
        self._lock_fd = fd
        return True

    def take(self, timeout: float) -> tuple[Any, float, dict[str, Any]] | None:
        if not self._batch:
            if not self._claim(timeout):
                return None
            self._flush_deletes()
            self._read_ahead()
            with self._read_lock:
                rows = (
                    self._read()
                    .execute(
                        "SELECT seq, created, record, topics, version FROM spool "
                        "WHERE seq > ? ORDER BY seq LIMIT 256",
                        (self._cursor,),
                    )
                    .fetchall()
                )
            if not rows:
                # Other processes write without waking us: poll this often.
                self._wake.wait(timeout)
                self._wake.clear()
                return None
            self._batch.extend(rows)
            self._cursor = rows[-1][0]
        seq, created, record, topics, version = self._batch.popleft()
        item = json.loads(record)
        item["topics"] = (
            self._topics
            if topics is None or topics == self._topics_json
            else json.loads(topics)
        )
        item["version"] = self._version if version is None else float(version)
        return seq, created, item

    # How much of the WAL to have read in from where the next frames go:
    # more than one checkpoint's worth of writes (a few MB), and how often
    # to ask again meanwhile (pages the kernel dropped since are read in).
    _READ_AHEAD_BYTES = 8 << 20
    _READ_AHEAD_EVERY = 0.5  # seconds

    def _read_ahead(self) -> None:
        """Have the part of the WAL the next inserts write over read in
        ahead of them (``_spool_db.read_ahead_wal``), from where the last
        checkpoint left the next frame; again at most every
        ``_READ_AHEAD_EVERY`` seconds."""
        now = time.monotonic()
        if now >= self._next_read_ahead:
            self._next_read_ahead = now + self._READ_AHEAD_EVERY
            _spool_db.read_ahead_wal(
                self.path, self._next_frame_at, self._READ_AHEAD_BYTES
            )

    # WAL pages at which an emitter's commit checkpoints the WAL itself
    # (SQLite's default is 1000): the sender checkpoints long before, from
    # its own connection; this only bounds the WAL while nothing is being
    # delivered (a broker outage), at a pause of some milliseconds per
    # 40 MB written.
    _EMITTER_AUTOCHECKPOINT = 10000

    def _connect_writer(self) -> Any:
        return _spool_db.connect(self.path, self._sync, self._EMITTER_AUTOCHECKPOINT)

    def _read(self) -> Any:
        """The reading connection (``_read_lock`` held), opened on first use."""
        if self._reader is None:
            self._reader = _spool_db.connect(self.path, self._sync)
        return self._reader

    def rewind(self) -> None:
        """Read again from the oldest row still in the spool (after an error)."""
        self._batch.clear()
        self._cursor = 0

    def _close_for_fork(self) -> None:
        """Before a fork (locks held): close the SQLite connections."""
        reader, self._reader = self._reader, None
        for db in (reader, self._db):
            if db is None:
                continue
            try:
                db.close()
            except Exception as exc:  # still fork; the parent reopens below
                LOG.warning("nova_notifier: closing the spool before a fork: %s", exc)
        if self._db is not None:
            self._db = None
            self._closed_for_fork = True

    def _reopen_after_fork(self) -> None:
        """In the parent after a fork (lock held): open the connection again."""
        if self._closed_for_fork:
            self._closed_for_fork = False
            self._db = self._connect_writer()

    def forget_after_fork(self) -> None:
        """In a forked child: let go of the parent's spool lock file.

        The SQLite connection was closed before the fork; the lock file's
        descriptor is closed without unlocking it (the lock is the parent's).
        A child that sends opens the spool again.
        """
        self._db = None
        self._reader = None
        self._closed_for_fork = False
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def done(self, key: Any) -> None:
        self._delivered.append(key)
        if len(self._delivered) >= self._DELETE_BATCH:
            self._flush_deletes()

    def dead_letter(self, unit: _Unit, reason: str) -> bool:
        """Keep a refused message in the ``dead_letter`` table: True."""
        record = {"ctxt": unit.item["ctxt"], "message": unit.item["message"]}
        with self._lock:
            self._writes += 1
            try:
                _spool_db.add_dead_letter(
                    self._db,
                    unit.created,
                    record,
                    unit.topic,
                    unit.item["version"],
                    unit.attempts,
                    reason,
                )
            finally:
                self._writes += 1
        return True

    def _flush_deletes(self) -> None:
        if not self._delivered:
            return
        # Runs of consecutive seq, each delivered: one range each.
        ranges: list[list[int]] = []
        for seq in sorted(self._delivered):
            if ranges and seq == ranges[-1][1] + 1:
                ranges[-1][1] = seq
            else:
                ranges.append([seq, seq])
        with self._lock:
            # One transaction for the batch: one commit (and, with
            # spool_sync = full, one fsync) instead of one per row,
            # under the lock the emitters wait on.
            self._writes += 1
            try:
                self._db.execute("BEGIN")
                try:
                    self._db.executemany(
                        "DELETE FROM spool WHERE seq BETWEEN ? AND ?", ranges
                    )
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            finally:
                self._writes += 1
        self._deleted += len(self._delivered)
        self._delivered = []
        if self._deleted >= self._CHECKPOINT_ROWS:
            self._checkpoint_or_log()

    def _checkpoint(self) -> None:
        """Copy the WAL into the database, outside the emitters' lock.

        Often enough that an emitter's commit never finds the WAL at its
        auto-checkpoint length and checkpoints it itself: milliseconds of
        I/O and fsync inside an emit call.

        The WAL starts over by itself at the first write that finds it all
        copied; a write during the checkpoint (the emitters do not wait
        for it) spoils that, so under a steady stream the WAL would only
        grow. Once it is _RESTART_FRAMES long, the sender checkpoints again
        (outside the lock) until one pass finds it all copied with no
        write of this process during the pass, which leaves the next write
        to start it over: no lock, nothing to sync. After _RESTART_TRIES
        spoiled passes it makes the WAL start over itself (``_restart``,
        under the lock, copying the frames of the last moment and syncing:
        measured here, up to 9 ms for the emit calls held meanwhile), so
        the WAL stays bounded. Then it plans the read-ahead of the WAL from
        where the next frame goes.
        """
        self._deleted = 0
        self._checkpointed_at = time.monotonic()
        frames, clean = self._passive()
        if frames >= self._RESTART_FRAMES and not clean:
            for _ in range(self._RESTART_TRIES):
                frames, clean = self._passive()
                if clean:
                    break
            else:
                with self._lock:
                    self._restart()
                frames, clean = 0, False
        if clean:
            self._next_frame_at = 0  # the next write starts the WAL over
        else:
            if self._page_size is None:
                with self._read_lock:
                    self._page_size = _spool_db.page_size(self._read())
            self._next_frame_at = _spool_db.wal_offset(frames, self._page_size)
        self._next_read_ahead = 0.0  # a new plan: ask at once
        self._read_ahead()

    def _passive(self) -> tuple[int, bool]:
        """One PASSIVE checkpoint: the WAL's length in frames, and whether
        the pass was clean: it copied every frame, no other checkpoint was
        running, and no write of this process was under way or came
        meanwhile (``_writes`` is odd during a write and moves with each),
        so the next write starts the WAL over."""
        writes = self._writes
        [(busy, frames, copied)] = self._query("PRAGMA wal_checkpoint(PASSIVE)")
        self._writes_checkpointed = writes
        clean = (
            not busy and frames == copied and writes % 2 == 0 and self._writes == writes
        )
        return max(0, int(frames)), clean

    def _checkpoint_or_log(self) -> None:
        """``_checkpoint``, its failure logged (a warning at most once a
        minute) instead of raised: the sender goes on, and a failed
        checkpoint only leaves the WAL longer."""
        try:
            self._checkpoint()
        except Exception as exc:
            self._checkpoint_log.log(
                LOG,
                logging.WARNING,
                "nova_notifier: checkpointing the spool %s: %s",
                self.path,
                _log.describe(exc),
            )

    _RESTART_TRIES = 10

    def _restart(self) -> None:
        """A RESTART checkpoint on the emitters' connection (their lock
        held) that waits for nothing: a RESTART waits (in SQLite's busy
        handler, up to the connection's timeout) for every reader of the
        WAL to finish, and a read transaction held open elsewhere (an
        operator's ``sqlite3`` shell, a script, another process) would hold
        every emit call on the lock meanwhile. Busy, it gives up at once
        and a later checkpoint tries again."""
        [(patience,)] = self._db.execute("PRAGMA busy_timeout").fetchall()
        self._db.execute("PRAGMA busy_timeout = 0")
        try:
            self._db.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {int(patience)}")

    # Writes (inserts) of this process since the last checkpoint at which
    # the sender, while nothing is delivered, checkpoints the WAL: about
    # 900 pages of WAL with 2 KB notifications (three pages an insert),
    # under SQLite's own auto-checkpoint default of 1000.
    _TEND_WRITES = 300
    _TEND_EVERY = 1.0  # seconds

    def tend(self) -> None:
        """While the broker is away (nothing delivered, so no deletes to
        count): keep reading the WAL in ahead of the inserts (as ``take``
        does) and checkpoint it as deliveries would, every _TEND_WRITES
        inserts. Otherwise the WAL grows to _EMITTER_AUTOCHECKPOINT and an
        emit call's commit copies it all (measured: 35 to 62 ms every 12 s
        of an outage at 200/s). Also every _TEND_EVERY seconds, for the
        writes of other processes on the spool, which this one does not
        count (cheap when there is nothing to copy). Never raises: a
        failure is logged, and the sender goes on retrying."""
        due = (
            self._writes - self._writes_checkpointed >= 2 * self._TEND_WRITES
            or time.monotonic() >= self._checkpointed_at + self._TEND_EVERY
        )
        if due:
            self._checkpoint_or_log()
        else:
            self._read_ahead()  # never raises

    def _query(self, sql: str) -> list[Any]:
        """Every row of a query on the reading connection. Always every row:
        a statement with rows left unread keeps its read transaction open,
        and while it is open the WAL cannot start over (it grows, and the
        emitters' commits end up checkpointing it)."""
        with self._read_lock:
            return list(self._read().execute(sql).fetchall())

    def backlog(self) -> int:
        # Rows leave in order, so the live ones are (nearly) one seq range:
        # two index lookups instead of a scan.
        [(low, high)] = self._query("SELECT MIN(seq), MAX(seq) FROM spool")
        if low is None:
            return 0
        return max(0, int(high) - int(low) + 1 - len(self._delivered))

    def oldest(self) -> float | None:
        rows = self._query("SELECT created FROM spool ORDER BY seq LIMIT 1")
        return float(rows[0][0]) if rows else None

    def close(self) -> int:
        self._flush_deletes()
        left = self.backlog()
        with self._lock, self._read_lock:
            _SPOOLS.discard(self)
            self._db.close()
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        return left


def transport_url_of(transport: Any, conf: cfg.ConfigOpts) -> str:
    """The URL ``transport`` was built from (its driver's), else the one
    ``conf`` names for notifications."""
    url = getattr(getattr(transport, "_driver", None), "_url", None)
    if url is not None:
        return str(url)
    notify_conf = conf.oslo_messaging_notifications
    return notify_conf.transport_url or conf.transport_url or ""


class Delivery:
    """Hands notifications to the transport; the caller never waits on it.

    ``submit`` builds the wire message (message_id, timestamp, sanitised
    payload) in the calling thread and queues it with its destination; a
    sender thread publishes it with the transport, retrying transient
    failures with backoff until the broker accepts it, and setting aside a
    message the broker refused ``dead_letter_after`` times.
    """

    # Seconds close() waits for a sender told to stop now (tests lower it).
    _ABORT_JOIN = 5.0

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        transport: Any,
        stats: collections.Counter[str],
        start: bool = True,
        mode: str | None = None,
        topics: list[str] | None = None,
    ) -> None:
        """A sender for ``mode`` (default ``[notifications] delivery_mode``)
        to ``topics`` (default ``[oslo_messaging_notifications] topics``)
        over ``transport``, counting into ``stats``. Given a ``mode`` (a
        driver's sender), it sends the 2.0 envelope, as messagingv2 does."""
        group = conf[GROUP]
        self.mode = mode or conf.notifications.delivery_mode
        self._transport = transport
        self._stats = stats
        notify_conf = conf.oslo_messaging_notifications
        self._topics = list(notify_conf.topics if topics is None else topics)
        if mode is None:
            drivers = [d for d in notify_conf.driver if d in _MESSAGING_DRIVERS]
            self._version = _MESSAGING_DRIVERS[drivers[0]] if drivers else 2.0
            self.enabled = bool(drivers)
        else:
            self._version, self.enabled = 2.0, True
        retry = notify_conf.retry
        # A finite retry per attempt, so a failure comes back to the sender
        # (which retries on its own terms) instead of blocking it for ever.
        self._retry = 0 if retry is None or retry < 0 else retry
        self._backoff_max = group.retry_backoff_max
        self._flush_timeout = group.flush_timeout
        self._dead_letter_after = group.dead_letter_after
        url = transport_url_of(transport, conf)
        self._batch_size = group.sender_batch_size
        self._batcher = (
            BatchPublisher(conf, url, group.send_timeout)
            if self._batch_size > 1 and _rabbit_batch.supports(conf, url, 2.0)
            else None
        )
        self._source: _MemorySource | _SpoolSource
        if self.mode == SPOOL:
            path = group.spool_path
            if not path:
                path = default_spool_path(url)
                LOG.info(
                    "nova_notifier: spooling undelivered notifications in %s "
                    "([%s] spool_path is unset)",
                    path,
                    GROUP,
                )
            self._source = _SpoolSource(
                path,
                group.spool_sync,
                self._topics,
                self._version,
                group.spool_max_bytes,
            )
        else:
            self._source = _MemorySource(group.queue_size, self._topics, self._version)
        self._memory = self._source if isinstance(self._source, _MemorySource) else None
        self._breaths = 0
        # Taken and encoded while the broker confirmed the batch before.
        self._prefetched: list[tuple[Any, float, dict[str, Any]]] = []
        self._in_flight_since: float | None = None
        self._aborted_in_flight = 0
        self._in_flight_count = 0
        self._stop = threading.Event()  # drain what is queued, then stop
        self._abort = threading.Event()  # stop now
        # Who closes the spool: close(), or a sender it gave up waiting for.
        self._handover = threading.Lock()
        self._orphaned = False
        self._finished = False
        self._drop_log = _log.RateLimited(10.0)
        self._dead_log = _log.RateLimited(10.0)
        self._stall_log = _log.RateLimited(60.0)
        self._creator = threading.get_native_id()
        self._thread = threading.Thread(
            target=self._run, name="nova-notifier-sender", daemon=True
        )
        if start:
            self._thread.start()

    def start(self) -> None:
        """Start the sender (once), for a ``Delivery`` built with ``start=False``."""
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()

    # -- the caller's side -------------------------------------------------

    def submit(
        self,
        publisher_id: str,
        ctxt: dict[str, Any],
        event_type: str,
        payload: Any,
        priority: str,
        topics: list[str] | None = None,
    ) -> None:
        """Queue one notification; raises only on a payload that cannot be built.

        Background mode: the payload is copied (``sanitize``; the caller may
        change its own afterwards) and queued with the time; the sender
        makes the wire message (message_id, timestamp text, JSON). With
        ``topics`` (the versioned notifications' topics) the message goes
        there instead of to the sender's own topics.
        """
        memory = self._memory
        if topics is not None and topics != self._topics:
            self._put_item(
                event_type,
                self._item(publisher_id, ctxt, event_type, payload, priority, topics),
            )
            return
        if memory is not None:
            if memory.qsize() >= memory.size:
                self._dropped(event_type, "the delivery queue is full")
                return
            memory.append(
                (
                    time.time(),
                    faked_timestamp(),
                    publisher_id,
                    ctxt,
                    event_type,
                    sanitize(payload),
                    priority,
                )
            )
            self._stats["queued"] += 1
            return
        self._spool(
            event_type,
            lambda: self._item(
                publisher_id, ctxt, event_type, payload, priority, self._topics
            ),
        )

    def _item(
        self,
        publisher_id: str,
        ctxt: dict[str, Any],
        event_type: str,
        payload: Any,
        priority: str,
        topics: list[str],
    ) -> dict[str, Any]:
        """The whole item, its wire message made now (payload copied)."""
        return {
            "ctxt": ctxt,
            "message": _message(
                message_id(),
                publisher_id,
                event_type,
                sanitize(payload),
                priority,
                faked_timestamp() or _timestamp(time.time()),
            ),
            "topics": topics,
            "version": self._version,
        }

    def submit_message(
        self, ctxt: dict[str, Any], message: dict[str, Any], topics: list[str]
    ) -> None:
        """Queue a message oslo.messaging's ``Notifier`` built (a driver's
        ``notify``) for ``topics``; never raises.

        The context and message are copied as messagingv2 would send them
        (``jsonutils``' JSON, so the caller may change its own afterwards);
        one that cannot be made JSON is dropped, counted and logged.
        """
        event_type = str(message.get("event_type"))
        memory = self._memory
        try:
            # The spool stores the text; the memory queue holds a copy.
            text = jsonutils.dumps({"ctxt": ctxt, "message": message})
            item = (
                {"record": text, "topics": topics, "version": 2.0}
                if memory is None
                else {**json.loads(text), "topics": topics, "version": 2.0}
            )
        except Exception as exc:
            self._dropped(event_type, f"cannot be sent as JSON: {_log.describe(exc)}")
            return
        self._put_item(event_type, item)

    def _put_item(self, event_type: str, item: dict[str, Any]) -> None:
        """Queue (or spool) a whole item: ctxt, message, topics, version."""
        memory = self._memory
        if memory is None:
            self._spool(event_type, lambda: item)
        elif memory.qsize() >= memory.size:
            self._dropped(event_type, "the delivery queue is full")
        else:
            memory.append((time.time(), item))
            self._stats["queued"] += 1

    def _spool(self, event_type: str, build: Callable[[], dict[str, Any]]) -> None:
        """Write the item ``build()`` gives to the spool (the sender knows an
        emitter is inside, and waits for it between messages)."""
        spool = self._source
        assert isinstance(spool, _SpoolSource)
        spool.entering()
        try:
            refused = spool.put(build())
        finally:
            spool.leaving()
        if refused is None:
            self._stats["queued"] += 1
        else:
            self._dropped(event_type, refused)

    def _dropped(self, event_type: str, reason: str, count: int = 1) -> None:
        self._stats["dropped"] += count
        self._drop_log.log(
            LOG,
            logging.WARNING,
            "nova_notifier: dropped %s notification: %s (%d dropped so far)",
            event_type,
            reason,
            self._stats["dropped"],
        )

    # -- the sender's side -------------------------------------------------

    def _send(self, units: list[_Unit]) -> PublishResult:
        """One attempt at every unit: through the batcher when it can carry
        the unit's envelope, else one by one through oslo.messaging."""
        result = PublishResult(set(), {})
        batcher = self._batcher
        rabbit = [
            index
            for index, unit in enumerate(units)
            if batcher is not None and unit.item["version"] == 2.0
        ]
        if batcher is not None and rabbit:
            chosen = [units[index] for index in rabbit]
            outcome = batcher.publish(
                [
                    (unit.routing_key, unit.item["ctxt"], unit.item["message"])
                    for unit in chosen
                ],
                self._encode(chosen),
                idle=self._prefetch,
                pause=self._let_callers_run,
            )
            result.acked |= {rabbit[i] for i in outcome.acked}
            result.refused.update({rabbit[i]: r for i, r in outcome.refused.items()})
            result.error = outcome.error
            if outcome.error is not None:
                return result
        for index, unit in enumerate(units):
            if index in result.acked or index in result.refused:
                continue
            try:
                self._transport._send_notification(
                    oslo_messaging.Target(topic=unit.routing_key),
                    unit.item["ctxt"],
                    unit.item["message"],
                    version=unit.item["version"],
                    retry=self._retry,
                )
            except Exception as exc:
                self._drop_oslo_connections()
                reason = _rabbit_batch.permanent_reason(exc)
                if reason is None:
                    result.error = exc
                    return result
                result.refused[index] = reason
            else:
                result.acked.add(index)
        return result

    def _drop_oslo_connections(self) -> None:
        """After a failed send, close oslo.messaging's idle pooled connections.

        With the finite retry the sender uses, oslo.messaging's rabbit
        driver puts a connection whose channel the broker closed back in
        its pool and never revives it: every later send would fail with
        "connection already closed". Emptying the pool makes the next
        attempt connect afresh.
        """
        pool = getattr(
            getattr(self._transport, "_driver", None), "_connection_pool", None
        )
        empty = getattr(pool, "empty", None)
        if callable(empty):
            try:
                empty()
            except Exception as exc:  # closing a dead connection may fail too
                LOG.debug("nova_notifier: emptying the connection pool: %s", exc)

    def _encode(self, units: list[_Unit]) -> list[bytes]:
        """The AMQP body of each unit, encoded once an item (a resend sends
        the same bytes, ``_unique_id`` included) and kept in the item."""
        bodies = []
        for unit in units:
            item = unit.item
            encoded: list[bytes] | None = item.get("_bodies")
            if encoded is None:
                ctxt, message = item["ctxt"], item["message"]
                encoded = item["_bodies"] = [
                    _rabbit_batch.encode(ctxt, message, unique_hex())
                    for _ in item["topics"]
                ]
                self._let_callers_run()
            bodies.append(encoded[unit.index])
        return bodies

    def _fill(
        self, batch: list[tuple[Any, float, dict[str, Any]]]
    ) -> list[tuple[Any, float, dict[str, Any]]]:
        """Add to ``batch`` what the source has at once, up to a batch."""
        while len(batch) < self._batch_size:
            more = self._source.take(timeout=0)
            if more is None:
                break
            batch.append(more)
            self._let_callers_run()
        return batch

    def _take_batch(self) -> list[tuple[Any, float, dict[str, Any]]]:
        batch, self._prefetched = self._prefetched, []
        if not batch:
            first = self._source.take(timeout=0.2)
            if first is None:
                return []
            batch = [first]
        return self._fill(batch)

    def _let_callers_run(self) -> None:
        """Between two messages: let other threads run."""
        self._breaths += 1
        if not self._source.wait_for_emitters() and self._breaths % _SLEEP_EVERY == 0:
            time.sleep(0)  # lets go of the GIL for a moment

    def _prefetch(self) -> None:
        """While the broker confirms a batch: take the next one and encode
        it, so it goes out as soon as this one is settled."""
        if self._prefetched or self._abort.is_set():
            return
        batch = self._prefetched = self._fill([])
        self._encode(
            [
                _Unit(key, created, item, 0)
                for key, created, item in batch
                if item["version"] == 2.0 and item["topics"]
            ]
        )

    def _run(self) -> None:
        """The sender thread: deliver, and survive anything unexpected."""
        try:
            _yield_to_callers(self._creator)
            while not self._abort.is_set():
                try:
                    self._deliver()
                    return
                except Exception:
                    LOG.exception("nova_notifier: sender error; restarting in 1 s")
                    self._stats["retried"] += 1
                    if self.mode == SPOOL:
                        self._prefetched = []  # read again after the rewind
                    self._source.rewind()
                    if self._abort.wait(1.0):
                        return
        finally:
            if self._batcher is not None:
                self._batcher.close()
            with self._handover:
                self._finished = True
                orphaned = self._orphaned
            if orphaned:  # close() left the spool to us
                self._close_source()

    def _deliver(self) -> None:
        while not self._abort.is_set():
            if self._batcher is not None:
                self._batcher.tick()  # heartbeats between batches and idle
            batch = self._take_batch()
            if not batch:
                if self._stop.is_set() and self._source.backlog() == 0:
                    break
                continue
            self._in_flight_since = batch[0][1]
            self._in_flight_count = len(batch)
            if self.enabled and not self._deliver_batch(batch):
                self._aborted_in_flight = self._in_flight_count
                return
            for key, _, _ in batch:
                self._source.done(key)
            self._in_flight_since = None
            self._in_flight_count = 0

    def _deliver_batch(self, batch: list[tuple[Any, float, dict[str, Any]]]) -> bool:
        """Deliver or set aside every message of ``batch``; False if aborted.

        Each attempt resends only what the broker has not confirmed. A
        permanent refusal counts against the message it concerns; one that
        cannot be pinned on a message (the broker closed the channel while
        several were unconfirmed) makes the rest go one at a time, so the
        next refusal can.
        """
        units = [
            _Unit(key, created, item, index)
            for key, created, item in batch
            for index in range(len(item["topics"]))
        ]
        refused_items: set[int] = set()
        backoff = 0.1
        stalled_at: float | None = None
        one_by_one = False
        while units:
            chunk = units[:1] if one_by_one else units
            result = self._send(chunk)
            reason = (
                None
                if result.error is None
                else _rabbit_batch.permanent_reason(result.error)
            )
            unsettled = [
                i
                for i in range(len(chunk))
                if i not in result.acked | set(result.refused)
            ]
            if reason is not None and len(unsettled) == 1:
                result.refused[unsettled[0]] = reason  # pinned on the one left
            elif reason is not None:
                one_by_one = True
            keep = []
            for index, unit in enumerate(chunk):
                if index in result.acked:
                    continue
                if index in result.refused and self._counts(
                    unit, result.refused[index]
                ):
                    if unit.attempts >= self._dead_letter_after:
                        self._set_aside(unit, result.refused[index])
                        refused_items.add(id(unit.item))
                        continue
                keep.append(unit)
            units = keep + units[len(chunk) :]
            # what status() and a shutdown count as not delivered yet
            self._in_flight_count = len({id(unit.item) for unit in units})
            if not keep:
                backoff = 0.1  # all of it settled: go on at once
                continue
            self._stats["retried"] += 1
            if result.error is not None and reason is None:
                # One limiter for the first line and the reminders: a
                # flapping broker costs a line a minute, with the count.
                if stalled_at is None:
                    stalled_at = time.monotonic()
                    self._stall_log.log(
                        LOG,
                        logging.WARNING,
                        "nova_notifier: delivery stalled, retrying: %s",
                        result.error,
                    )
                else:
                    self._stall_log.log(
                        LOG,
                        logging.WARNING,
                        "nova_notifier: delivery still stalled after %.0f s "
                        "(%d to send): %s",
                        time.monotonic() - stalled_at,
                        self._source.backlog() + len(units),
                        result.error,
                    )
            if self._wait_to_retry(backoff):
                return False
            backoff = min(backoff * 2, self._backoff_max)
        self._stats["sent"] += len({id(i) for _, _, i in batch} - refused_items)
        if stalled_at is not None:
            LOG.warning(
                "nova_notifier: delivery resumed after %.1f s",
                time.monotonic() - stalled_at,
            )
        return True

    _TEND_STEP = 0.1  # seconds, while waiting to retry

    def _wait_to_retry(self, seconds: float) -> bool:
        """Wait ``seconds`` before the next attempt; True if aborted
        meanwhile. Every _TEND_STEP seconds meanwhile the source is kept
        in shape (``tend``: the spool's WAL checkpointed), as deliveries
        would keep it."""
        deadline = time.monotonic() + seconds
        while True:
            self._source.tend()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._abort.wait(min(left, self._TEND_STEP)):
                return True

    # A nack counts at most once in this many seconds: a quorum queue whose
    # leader's node died nacks everything until a new leader is elected
    # (seconds), which is no reason to set a message aside.
    _NACK_SPACING = 2.0

    def _counts(self, unit: _Unit, reason: str) -> bool:
        """Count a refusal against ``unit`` (True), unless it is a nack
        that came too soon after the last one counted."""
        now = time.monotonic()
        if (
            reason == _rabbit_batch.NACK_REASON
            and unit.counted is not None
            and now - unit.counted < self._NACK_SPACING
        ):
            return False
        unit.counted = now
        unit.attempts += 1
        return True

    def _set_aside(self, unit: _Unit, reason: str) -> None:
        """The broker refused ``unit`` for good: keep it aside, log it once."""
        message = unit.item["message"]
        kept = self._source.dead_letter(unit, reason)
        self._stats["dead_lettered"] += 1
        if not kept:
            self._stats["dropped"] += 1
        self._dead_log.log(
            LOG,
            logging.ERROR,
            "nova_notifier: the broker refused %s notification %s to %s %d "
            "times; %s: %s (%d set aside so far)",
            message["event_type"],
            message["message_id"],
            unit.routing_key,
            unit.attempts,
            "kept in the spool's dead_letter table"
            if kept
            else "dropped (background mode)",
            reason,
            self._stats["dead_lettered"],
        )

    def forget_after_fork(self) -> None:
        """In a forked child: let go of the parent's spool, touch nothing else."""
        self._source.forget_after_fork()

    # -- status and shutdown -----------------------------------------------

    def status(self) -> dict[str, Any]:
        """``backlog`` (not yet delivered) and ``oldest_undelivered_age`` (s)."""
        in_flight = self._in_flight_since
        backlog = self._source.backlog()
        if self.mode != SPOOL:  # spool rows stay counted until delivered
            backlog += self._in_flight_count + len(self._prefetched)
        oldest = in_flight if in_flight is not None else self._source.oldest()
        age = 0.0 if oldest is None else max(0.0, time.time() - oldest)
        return {"backlog": backlog, "oldest_undelivered_age": round(age, 3)}

    def close(self, timeout: float | None = None) -> bool:
        """Deliver what is queued (at most ``timeout`` s), then stop the sender.

        Returns False when the sender did not stop (stuck in a call that
        does not return): its spool and connection are then left open for
        it, and it closes them itself if it ever returns.
        """
        self._stop.set()
        self._thread.join(self._flush_timeout if timeout is None else timeout)
        self._abort.set()
        self._thread.join(self._ABORT_JOIN)
        with self._handover:
            self._orphaned = not self._finished
        if self._orphaned:
            LOG.warning(
                "nova_notifier: the sender did not stop within %.1f s; its "
                "spool and connection are left open for it",
                (self._flush_timeout if timeout is None else timeout)
                + self._ABORT_JOIN,
            )
            return False
        self._close_source()
        return True

    def _close_source(self) -> None:
        left = self._source.close()
        if self.mode != SPOOL:
            # the batch still being retried, and the next one taken already
            left += self._aborted_in_flight + len(self._prefetched)
        if left:
            if self.mode == SPOOL:
                LOG.warning(
                    "nova_notifier: %d notifications left in the spool %s for "
                    "the next start",
                    left,
                    self._source.path if isinstance(self._source, _SpoolSource) else "",
                )
            else:
                self._stats["dropped"] += left
                LOG.warning(
                    "nova_notifier: %d queued notifications not delivered before "
                    "shutdown",
                    left,
                )
