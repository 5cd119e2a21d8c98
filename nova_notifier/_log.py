"""The library's loggers: every line masked, repeated failures rate-limited.

Use :func:`get_logger` instead of ``logging.getLogger`` in every module of
the library. Its records pass a filter that formats the message, runs it
(and any traceback) through the masking rules of
:mod:`nova_notifier.serializer`, and hands the handlers plain, already
masked text: whatever formatter the application installs (oslo.log's
included) sees no secret, in the message, in its arguments or in the text
of an exception.

:class:`RateLimited` keeps a failure that repeats (not initialised, queue
full, broker down) to one line per interval, with the count of what was
not logged in between.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from typing import Any


def _mask(text: str) -> str:
    # Imported late: the serializer imports this module.
    from nova_notifier.masking import mask_text

    return mask_text(text)


class _MaskingFilter(logging.Filter):
    """Replaces a record's message, arguments and traceback with masked text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception as exc:  # a bad format string must not lose the line
            message = f"{record.msg!r} (unformattable arguments: {type(exc).__name__})"
        if record.exc_info and record.exc_info[0] is not None:
            tb = "".join(traceback.format_exception(*record.exc_info))
            message = f"{message}\n{tb.rstrip()}"
            record.exc_info = None
        record.exc_text = None
        if record.stack_info:
            record.stack_info = _mask(record.stack_info)
        record.msg = _mask(message)
        record.args = None
        return True


_FILTER = _MaskingFilter()


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with the library's masking filter attached."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


class RateLimited:
    """Logs one kind of repeated failure at most once per ``interval`` seconds.

    ``log(logger, level, fmt, *args)`` logs the first occurrence at once;
    later ones within the interval are only counted, and the next line that
    is logged says how many were suppressed. Thread-safe.
    """

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._last = float("-inf")
        self._suppressed = 0

    def log(self, logger: logging.Logger, level: int, fmt: str, *args: Any) -> bool:
        """Log now, or count; True when a line was written."""
        now = time.monotonic()
        with self._lock:
            if now - self._last < self.interval:
                self._suppressed += 1
                return False
            self._last = now
            suppressed, self._suppressed = self._suppressed, 0
        if suppressed:
            fmt += " (%d more like this in the last %.0f s)"
            args = (*args, suppressed, self.interval)
        logger.log(level, fmt, *args)
        return True


def describe(exc: BaseException) -> str:
    """``"<ClassName>: <text>"`` of an exception, even one whose ``str()`` raises."""
    try:
        text = str(exc)
    except Exception:
        text = "(its text could not be read)"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
