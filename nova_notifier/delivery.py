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
import json
import os
import queue
import sqlite3
import threading
import time
import uuid
from typing import Any

from oslo_config import cfg
from oslo_utils import timeutils

from nova_notifier import rabbit_batch
from nova_notifier._log import get_logger
from nova_notifier._messaging import oslo_messaging
from nova_notifier.exceptions import ConfigError
from nova_notifier.rabbit_batch import BatchPublisher
from nova_notifier.serializer import sanitize

LOG = get_logger(__name__)

DIRECT, BACKGROUND, SPOOL = "direct", "background", "spool"
_MESSAGING_DRIVERS = {"messagingv2": 2.0, "messaging": 1.0}
_WIRE_PRIORITY = {"warning": "WARN"}

OPTS = [
    cfg.StrOpt(
        "delivery_mode",
        default=DIRECT,
        choices=[
            (DIRECT, "the emit call sends and waits, like Nova"),
            (BACKGROUND, "a bounded memory queue and a sender thread"),
            (SPOOL, "a durable SQLite spool and a sender thread"),
        ],
        help="How emitted notifications reach the broker. background and "
        "spool never make the emit call wait on the network; they need the "
        "messagingv2 (or messaging) driver.",
    ),
    cfg.IntOpt(
        "queue_size",
        default=10000,
        min=1,
        help="background mode: notifications held in memory before new ones "
        "are dropped.",
    ),
    cfg.StrOpt(
        "spool_path",
        help="spool mode: the SQLite file holding undelivered notifications.",
    ),
    cfg.StrOpt(
        "spool_sync",
        default="normal",
        choices=[
            ("normal", "survives a killed process; an OS crash may lose the last"),
            ("full", "survives an OS crash too; an fsync per emit call"),
        ],
        help="spool mode: SQLite synchronous setting.",
    ),
    cfg.FloatOpt(
        "retry_backoff_max",
        default=30.0,
        min=0.01,
        help="Longest wait, in seconds, between two delivery attempts of the "
        "background sender (the wait doubles from 0.1 s).",
    ),
    cfg.IntOpt(
        "sender_batch_size",
        default=200,
        min=1,
        help="background and spool modes on rabbit://: notifications the "
        "sender publishes before it waits, once, for the broker to confirm "
        "them all. 1 sends each through oslo.messaging and waits for its "
        "confirm.",
    ),
    cfg.FloatOpt(
        "send_timeout",
        default=10.0,
        min=0.1,
        help="background and spool modes on rabbit://: seconds the sender "
        "waits on a silent broker (connect, publish, confirms) before it "
        "drops the connection and retries.",
    ),
    cfg.FloatOpt(
        "flush_timeout",
        default=10.0,
        min=0,
        help="Seconds cleanup() waits for the background sender to deliver "
        "what is queued.",
    ),
]


def check(conf: cfg.ConfigOpts) -> None:
    """Reject a delivery configuration that cannot work (used by ``init()``)."""
    group = conf.notifications
    if group.delivery_mode == DIRECT:
        return
    drivers = set(conf.oslo_messaging_notifications.driver) - {"noop"}
    if drivers and not drivers <= set(_MESSAGING_DRIVERS):
        raise ConfigError(
            f"invalid value for option [notifications] delivery_mode: "
            f"{group.delivery_mode!r} needs the messagingv2 or messaging "
            f"driver, not {sorted(drivers)}"
        )
    if group.delivery_mode == SPOOL and not group.spool_path:
        raise ConfigError(
            "invalid value for option [notifications] spool_path: "
            "delivery_mode 'spool' needs a spool_path"
        )


class _MemorySource:
    """A bounded FIFO in memory."""

    def __init__(self, size: int) -> None:
        self._queue: queue.SimpleQueue[tuple[float, dict[str, Any]]] = (
            queue.SimpleQueue()
        )
        self._size = size

    def put(self, item: dict[str, Any]) -> bool:
        if self._queue.qsize() >= self._size:
            return False
        self._queue.put((time.time(), item))
        return True

    def take(self, timeout: float) -> tuple[Any, float, dict[str, Any]] | None:
        try:
            created, item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        return None, created, item

    def done(self, key: Any) -> None:
        """Nothing to do: a taken item left the queue already."""

    def rewind(self) -> None:
        """Nothing to do: a memory queue cannot give an item back."""

    def backlog(self) -> int:
        return self._queue.qsize()

    def oldest(self) -> float | None:
        return None

    def close(self) -> int:
        return self._queue.qsize()


class _SpoolSource:
    """A FIFO in a SQLite file (WAL): written by emitters, read by one sender.

    One connection serves both sides under one lock, so the process never
    waits on SQLite's own busy handler. Delivered rows are deleted in small
    batches (a crash in between only means a duplicate on replay). Several
    processes may write one spool; an ``flock`` on ``<spool_path>.lock``
    lets one sender at a time read it, so no message is sent by two.
    """

    _DELETE_BATCH = 64

    def __init__(self, path: str, sync: str) -> None:
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=1.0
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY "
            "AUTOINCREMENT, created REAL NOT NULL, record TEXT NOT NULL)"
        )
        self._lock_fd: int | None = None
        self._cursor = 0
        self._batch: collections.deque[tuple[int, float, str]] = collections.deque()
        self._delivered: list[tuple[int]] = []
        self._wake = threading.Event()

    def put(self, item: dict[str, Any]) -> bool:
        record = json.dumps(item)
        with self._lock:
            self._db.execute(
                "INSERT INTO spool (created, record) VALUES (?, ?)",
                (time.time(), record),
            )
        self._wake.set()
        return True

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
        self._lock_fd = fd
        return True

    def take(self, timeout: float) -> tuple[Any, float, dict[str, Any]] | None:
        if not self._batch:
            if not self._claim(timeout):
                return None
            self._flush_deletes()
            with self._lock:
                rows = self._db.execute(
                    "SELECT seq, created, record FROM spool WHERE seq > ? "
                    "ORDER BY seq LIMIT 256",
                    (self._cursor,),
                ).fetchall()
            if not rows:
                # Other processes write without waking us: poll this often.
                self._wake.wait(timeout)
                self._wake.clear()
                return None
            self._batch.extend(rows)
            self._cursor = rows[-1][0]
        seq, created, record = self._batch.popleft()
        return seq, created, json.loads(record)

    def rewind(self) -> None:
        """Read again from the oldest row still in the spool (after an error)."""
        self._batch.clear()
        self._cursor = 0

    def forget_after_fork(self) -> None:
        """Close the inherited lock file descriptor without unlocking it."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def done(self, key: Any) -> None:
        self._delivered.append((key,))
        if len(self._delivered) >= self._DELETE_BATCH:
            self._flush_deletes()

    def _flush_deletes(self) -> None:
        if self._delivered:
            with self._lock:
                self._db.executemany("DELETE FROM spool WHERE seq = ?", self._delivered)
            self._delivered = []

    def backlog(self) -> int:
        # Rows leave in order, so the live ones are (nearly) one seq range:
        # two index lookups instead of a scan under the emitters' lock.
        with self._lock:
            low, high = self._db.execute(
                "SELECT MIN(seq), MAX(seq) FROM spool"
            ).fetchone()
        if low is None:
            return 0
        return max(0, int(high) - int(low) + 1 - len(self._delivered))

    def oldest(self) -> float | None:
        with self._lock:
            row = self._db.execute(
                "SELECT created FROM spool ORDER BY seq LIMIT 1"
            ).fetchone()
        return None if row is None else float(row[0])

    def close(self) -> int:
        self._flush_deletes()
        left = self.backlog()
        self._db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        return left


class Delivery:
    """Hands notifications to the transport; the caller never waits on it.

    ``submit`` builds the wire message (message_id, timestamp, sanitised
    payload) in the calling thread and queues it; a sender thread publishes
    it with the transport, retrying with backoff until the broker accepts it.
    """

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        transport: Any,
        stats: collections.Counter[str],
    ) -> None:
        group = conf.notifications
        self.mode = group.delivery_mode
        self._transport = transport
        self._stats = stats
        notify_conf = conf.oslo_messaging_notifications
        self._topics = list(notify_conf.topics)
        drivers = [d for d in notify_conf.driver if d in _MESSAGING_DRIVERS]
        self._version = _MESSAGING_DRIVERS[drivers[0]] if drivers else 2.0
        self.enabled = bool(drivers)
        retry = notify_conf.retry
        # A finite retry per attempt, so a failure comes back to the sender
        # (which retries on its own terms) instead of blocking it for ever.
        self._retry = 0 if retry is None or retry < 0 else retry
        self._backoff_max = group.retry_backoff_max
        self._flush_timeout = group.flush_timeout
        url = notify_conf.transport_url or conf.transport_url or ""
        self._batch_size = group.sender_batch_size
        self._batcher = (
            BatchPublisher(conf, url, group.send_timeout)
            if self._batch_size > 1 and rabbit_batch.supports(conf, url, self._version)
            else None
        )
        self._source: _MemorySource | _SpoolSource = (
            _SpoolSource(group.spool_path, group.spool_sync)
            if self.mode == SPOOL
            else _MemorySource(group.queue_size)
        )
        self._in_flight_since: float | None = None
        self._aborted_in_flight = 0
        self._in_flight_count = 0
        self._stop = threading.Event()  # drain what is queued, then stop
        self._abort = threading.Event()  # stop now
        self._last_drop_log = 0.0
        self._thread = threading.Thread(
            target=self._run, name="nova-notifier-sender", daemon=True
        )
        self._thread.start()

    # -- the caller's side -------------------------------------------------

    def submit(
        self,
        publisher_id: str,
        ctxt: dict[str, Any],
        event_type: str,
        payload: Any,
        priority: str,
    ) -> None:
        """Queue one notification; raises only on a payload that cannot be built."""
        priority = priority.lower()
        message = {
            "message_id": str(uuid.uuid4()),
            "publisher_id": publisher_id,
            "event_type": event_type,
            "priority": _WIRE_PRIORITY.get(priority, priority.upper()),
            "payload": sanitize(payload),
            "timestamp": str(timeutils.utcnow()),
        }
        if self._source.put({"ctxt": ctxt, "message": message}):
            self._stats["queued"] += 1
        else:
            self._dropped(event_type, "the delivery queue is full")

    def _dropped(self, event_type: str, reason: str) -> None:
        self._stats["dropped"] += 1
        now = time.monotonic()
        if now - self._last_drop_log >= 10:  # at most one line every 10 s
            self._last_drop_log = now
            LOG.warning(
                "nova_notifier: dropped %s notification: %s (%d dropped so far)",
                event_type,
                reason,
                self._stats["dropped"],
            )

    # -- the sender's side -------------------------------------------------

    def _publish_batch(self, items: list[dict[str, Any]]) -> None:
        if self._batcher is not None:
            self._batcher.publish(
                [
                    (
                        f"{topic}.{item['message']['priority'].lower()}",
                        item["ctxt"],
                        item["message"],
                    )
                    for item in items
                    for topic in self._topics
                ]
            )
            return
        for item in items:
            self._publish(item)

    def _publish(self, item: dict[str, Any]) -> None:
        message = item["message"]
        priority = message["priority"].lower()
        for topic in self._topics:
            self._transport._send_notification(
                oslo_messaging.Target(topic=f"{topic}.{priority}"),
                item["ctxt"],
                message,
                version=self._version,
                retry=self._retry,
            )

    def _take_batch(self) -> list[tuple[Any, float, dict[str, Any]]]:
        first = self._source.take(timeout=0.2)
        if first is None:
            return []
        batch = [first]
        while len(batch) < self._batch_size:
            more = self._source.take(timeout=0)
            if more is None:
                break
            batch.append(more)
        return batch

    def _run(self) -> None:
        """The sender thread: deliver, and survive anything unexpected."""
        while not self._abort.is_set():
            try:
                self._deliver()
                return
            except Exception:
                LOG.exception("nova_notifier: sender error; restarting in 1 s")
                self._stats["retried"] += 1
                self._source.rewind()
                if self._abort.wait(1.0):
                    return

    def _deliver(self) -> None:
        backoff = 0.1
        stalled_at: float | None = None
        while not self._abort.is_set():
            batch = self._take_batch()
            if not batch:
                if self._stop.is_set() and self._source.backlog() == 0:
                    break
                continue
            self._in_flight_since = batch[0][1]
            self._in_flight_count = len(batch)
            while True:
                try:
                    if self.enabled:
                        self._publish_batch([item for _, _, item in batch])
                    break
                except Exception as exc:
                    self._stats["retried"] += 1
                    if stalled_at is None:
                        stalled_at = time.monotonic()
                        LOG.warning(
                            "nova_notifier: delivery stalled, retrying: %s", exc
                        )
                    if self._abort.wait(backoff):
                        self._aborted_in_flight = len(batch)
                        return
                    backoff = min(backoff * 2, self._backoff_max)
            for key, _, _ in batch:
                self._source.done(key)
            self._in_flight_since = None
            self._in_flight_count = 0
            self._stats["sent"] += len(batch)
            if stalled_at is not None:
                LOG.warning(
                    "nova_notifier: delivery resumed after %.1f s",
                    time.monotonic() - stalled_at,
                )
                stalled_at = None
                backoff = 0.1
        if self._batcher is not None:
            self._batcher.close()

    def forget_after_fork(self) -> None:
        """In a forked child: let go of the parent's spool lock, touch nothing else."""
        if isinstance(self._source, _SpoolSource):
            self._source.forget_after_fork()

    # -- status and shutdown -----------------------------------------------

    def status(self) -> dict[str, Any]:
        """``backlog`` (not yet delivered) and ``oldest_undelivered_age`` (s)."""
        in_flight = self._in_flight_since
        backlog = self._source.backlog()
        if self.mode != SPOOL:  # spool rows stay counted until delivered
            backlog += self._in_flight_count
        oldest = in_flight if in_flight is not None else self._source.oldest()
        age = 0.0 if oldest is None else max(0.0, time.time() - oldest)
        return {"backlog": backlog, "oldest_undelivered_age": round(age, 3)}

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued (at most ``timeout`` s), then stop the sender."""
        self._stop.set()
        self._thread.join(self._flush_timeout if timeout is None else timeout)
        self._abort.set()
        self._thread.join(5)
        left = self._source.close()
        if self.mode != SPOOL:
            left += self._aborted_in_flight  # the batch still being retried
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
