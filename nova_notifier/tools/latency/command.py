"""``nova-notifier latency``: VM provisioning latency from the bus or a file."""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, TextIO

from nova_notifier.tools.bus_args import add_bus_arguments
from nova_notifier.tools.latency.events import Tracker
from nova_notifier.tools.latency.page import render_html
from nova_notifier.tools.latency.report import Analysis, analyse, build, render_text

_BATCH_BYTES = 1 << 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="sources",
        action="append",
        metavar="FILE",
        help="read JSON lines written by 'listen --json' (repeatable; '-' is "
        "standard input, *.gz is read compressed) instead of the bus",
    )
    add_bus_arguments(parser)
    parser.add_argument(
        "--dedup-window",
        type=_seconds,
        default=3600.0,
        metavar="SECONDS",
        help="live: a message_id seen again within this many seconds is a "
        "duplicate; older ones are forgotten, so memory stays flat "
        "(default: 3600; files are deduplicated whole)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the report as one JSON object"
    )
    parser.add_argument(
        "--html", metavar="FILE", help="also write the report as an HTML page"
    )
    parser.add_argument(
        "--limit",
        type=_count,
        default=10,
        help="how many slowest, failed and still-building boots to list",
    )
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="show progress on standard error (default: when it is a terminal)",
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false")


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


class _Progress:
    """A one-line status on standard error, redrawn at most 5 times a second."""

    def __init__(self, enabled: bool, out: TextIO = sys.stderr) -> None:
        self.enabled = enabled
        self.out = out
        self.started = time.monotonic()
        self._drawn = 0.0
        self._width = 0

    def show(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._drawn < 0.2):
            return
        self._drawn = now
        self.out.write("\r" + text.ljust(self._width))
        self._width = len(text)
        self.out.flush()

    def done(self, text: str) -> None:
        if self.enabled:
            self.show(text, force=True)
            self.out.write("\n")
            self.out.flush()


@contextmanager
def _without_gc() -> Iterator[None]:
    """Pause the cycle collector: reading makes millions of objects and no
    cycles, and the collector's passes over them cost a third of the time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def _open(path: str) -> Iterator[tuple[IO[bytes], IO[bytes], int | None]]:
    """(lines to read, raw file for the position, size in bytes if known)."""
    if path == "-":
        yield sys.stdin.buffer, sys.stdin.buffer, None
        return
    with open(path, "rb") as raw:
        size = os.fstat(raw.fileno()).st_size or None
        if path.endswith(".gz"):
            with gzip.GzipFile(fileobj=raw) as unzipped:
                yield unzipped, raw, size  # type: ignore[misc]
        else:
            yield raw, raw, size


def read_files(paths: list[str], tracker: Tracker, progress: _Progress) -> None:
    """Feed every line of the files to the tracker, showing progress.

    A compressed file cut short (or corrupt part way) counts its last line
    as unreadable and says so on standard error; what came before it is
    read. A file that cannot be opened or is not gzip at all raises OSError.
    """
    add = tracker.add_line
    for path in paths:
        name = "stdin" if path == "-" else os.path.basename(path)
        with _open(path) as (lines, raw, size):
            before = tracker.lines
            read = lines.readlines if lines is raw else _lines_until_cut(lines)
            while True:
                try:
                    batch = read(_BATCH_BYTES)
                except _CutShort as cut:
                    for line in cut.batch:
                        add(line)
                    tracker.lines += 1
                    tracker._unreadable()
                    progress.done(_status(name, tracker, progress, raw, size, True))
                    print(
                        f"nova-notifier latency: {name}: cut short after "
                        f"{tracker.lines - 1 - before:,} lines ({cut.reason}); "
                        "reporting what came before",
                        file=sys.stderr,
                    )
                    break
                if not batch:
                    break
                for line in batch:
                    add(line)
                if progress.enabled:
                    progress.show(_status(name, tracker, progress, raw, size))
        progress.done(_status(name, tracker, progress, raw, size, final=True))


class _CutShort(Exception):
    """A compressed file ended early; ``batch`` holds the lines read before."""

    def __init__(self, reason: str, batch: list[bytes]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.batch = batch


def _lines_until_cut(lines: IO[bytes]) -> Callable[[int], list[bytes]]:
    """``readlines(hint)`` for a gzip file that keeps what it read when the
    file turns out truncated or corrupt (raising :class:`_CutShort`)."""

    def read(hint: int) -> list[bytes]:
        batch: list[bytes] = []
        size = 0
        try:
            while size < hint:
                line = lines.readline()
                if not line:
                    break
                batch.append(line)
                size += len(line)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            if not batch and lines.tell() == 0:
                raise OSError(str(exc)) from exc  # nothing readable at all
            raise _CutShort(str(exc), batch) from exc
        return batch

    return read


def _status(
    name: str,
    tracker: Tracker,
    progress: _Progress,
    raw: IO[bytes],
    size: int | None,
    final: bool = False,
) -> str:
    elapsed = max(time.monotonic() - progress.started, 1e-9)
    share = ""
    if size and not final:
        try:
            share = f" {min(100.0, raw.tell() * 100 / size):5.1f}%"
        except (OSError, ValueError):
            share = ""
    return (
        f"{name}:{share} {tracker.lines:,} lines, {len(tracker.timelines):,} "
        f"instances, {tracker.lines / elapsed:,.0f} lines/s"
    )


def report_files(
    paths: list[str], progress: _Progress, limit: int = 10
) -> tuple[Analysis, dict[str, Any]]:
    """Read the files and build their report, the cycle collector paused."""
    tracker = Tracker()
    with _without_gc():
        read_files(paths, tracker, progress)
        analysis = analyse(tracker)
        return analysis, build(tracker, analysis, limit=limit)


class _Feed:
    """Notification endpoint that hands every notification to a tracker."""

    def __init__(self, tracker: Tracker, count: int | None) -> None:
        self.tracker = tracker
        self.count = count
        self.lock = threading.Lock()
        self.done = threading.Event()
        from nova_notifier.tools import listen  # oslo.messaging: bus only

        for priority in listen.ENDPOINT_PRIORITIES:
            setattr(self, priority, self._handle)

    def _handle(
        self,
        ctxt: Any,
        publisher_id: str,
        event_type: str,
        payload: Any,
        metadata: dict[str, Any],
    ) -> None:
        with self.lock:
            if self.done.is_set():
                return
            self.tracker.add(
                event_type,
                publisher_id,
                payload,
                metadata.get("message_id"),
                metadata.get("timestamp"),
            )
            if self.count is not None and self.tracker.notifications >= self.count:
                self.done.set()


def read_bus(args: argparse.Namespace, tracker: Tracker, progress: _Progress) -> None:
    """Feed the tracker from the bus until --count, --timeout or a signal."""
    feed = _Feed(tracker, args.count)

    def tick() -> None:
        with feed.lock:
            text = (
                f"{tracker.notifications:,} notifications, "
                f"{len(tracker.timelines):,} instances"
            )
        progress.show(text)

    from nova_notifier.tools import listen  # oslo.messaging: reading files needs none

    listen.serve(
        args, feed, feed.done, tick if progress.enabled else None, tool="latency"
    )
    progress.done(f"{tracker.notifications:,} notifications received")


def run(args: argparse.Namespace) -> int:
    """Read, then print the report; 0 unless an input file cannot be read."""
    progress = _Progress(
        sys.stderr.isatty() if args.progress is None else bool(args.progress)
    )
    try:
        if args.sources:
            analysis, report = report_files(args.sources, progress, args.limit)
        else:
            tracker = Tracker(dedup_window=args.dedup_window)
            read_bus(args, tracker, progress)
            with _without_gc():
                analysis = analyse(tracker)
                report = build(tracker, analysis, limit=args.limit)
    except (OSError, EOFError) as exc:  # EOFError: a .gz file cut short
        print(f"nova-notifier latency: {exc}", file=sys.stderr)
        return 2
    if args.html:
        with open(args.html, "w", encoding="utf-8", errors="backslashreplace") as page:
            page.write(render_html(report, analysis))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        sys.stdout.write(_writable(render_text(report), sys.stdout))
    return 0


def _writable(text: str, out: TextIO) -> str:
    """``text`` with what ``out`` cannot encode (a lone surrogate received
    in a name, a character outside its charset) written as escapes."""
    encoding = getattr(out, "encoding", None) or "utf-8"
    return text.encode(encoding, "backslashreplace").decode(encoding)
