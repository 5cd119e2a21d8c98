"""oslo.messaging, imported so that it can never hang the caller's process.

``import oslo_messaging`` imports eventlet (through oslo.service and
futurist, whatever backend is configured), and a thread that first imports
eventlet can never be joined (eventlet issue #230): a non-daemon worker
thread that did it keeps its process alive for ever. Every module of the
library takes oslo.messaging from here. When eventlet is not imported yet
and the caller is not the main thread, the import runs in a short-lived
daemon thread of the library's own, which the caller waits for on an
event (a daemon thread is never joined), so the caller's thread stays
joinable.
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType
from typing import Any

_NAME = "oslo_messaging"


def _import_elsewhere() -> ModuleType:
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["module"] = importlib.import_module(_NAME)
        except BaseException as exc:  # handed back to the caller below
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="nova-notifier-import", daemon=True).start()
    done.wait()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["module"]


def load() -> ModuleType:
    """The ``oslo_messaging`` module, imported without making the calling
    thread the one that first imported eventlet."""
    module = sys.modules.get(_NAME)
    if module is not None:
        return module
    if (
        "eventlet" in sys.modules
        or threading.current_thread() is threading.main_thread()
    ):
        return importlib.import_module(_NAME)
    return _import_elsewhere()


oslo_messaging: Any = load()
