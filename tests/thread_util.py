"""Run test code in a thread of its own.

oslo.context keeps the *current* ``RequestContext`` per thread, and building
a ``RequestContext`` makes it current. Tests that build one, or that need a
thread with no current context, do it in a fresh thread so no test sees
another's context.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def run_in_thread(fn: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Call ``fn()`` in a new thread; return its result or raise its exception."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = fn()
        except BaseException as exc:  # handed back to the calling thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"{fn!r} did not finish within {timeout}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
