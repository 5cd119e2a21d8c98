"""A TCP proxy that a test controls, to put broker outages on demand.

Sits between a client and a server on loopback (``FaultProxy(("127.0.0.1",
5672))``) and can refuse new connections, cut open ones, or black-hole
traffic (accept and never answer), then go back to forwarding. Used by the
outage tests and ``bench/outage.py`` so they never stop a shared broker.
"""

from __future__ import annotations

import logging
import socket
import threading

LOG = logging.getLogger(__name__)

FORWARD, REFUSE, BLACKHOLE = "forward", "refuse", "blackhole"


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to ``target`` until told otherwise."""

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5672)) -> None:
        self.target = target
        self.mode = FORWARD
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.accepted = 0
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, user: str = "guest", password: str = "guest") -> str:
        """An oslo.messaging ``rabbit://`` URL through the proxy."""
        return f"rabbit://{user}:{password}@127.0.0.1:{self.port}/"

    # -- faults --------------------------------------------------------------

    def refuse(self) -> None:
        """New connections are closed at once; open ones keep working."""
        self.mode = REFUSE

    def cut(self) -> None:
        """Close every open connection now, and refuse new ones."""
        with self._lock:
            self.mode = REFUSE
        self._close_all()

    def blackhole(self) -> None:
        """Accept connections and swallow all traffic, answering nothing."""
        self.mode = BLACKHOLE

    def restore(self) -> None:
        """Forward again; connections held by a black hole are closed."""
        if self.mode == BLACKHOLE:
            self._close_all()
        self.mode = FORWARD

    def close(self) -> None:
        self._closed = True
        self._server.close()
        self._close_all()

    # -- plumbing ------------------------------------------------------------

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self.accepted += 1
            if self.mode == REFUSE:
                client.close()
                continue
            if self.mode == BLACKHOLE:
                self._track(client)
                threading.Thread(
                    target=self._swallow, args=(client,), daemon=True
                ).start()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError as exc:
                LOG.debug("proxy: upstream unreachable: %s", exc)
                client.close()
                continue
            if not self._track(client, upstream, only_in=FORWARD):
                continue  # cut while we were connecting upstream
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(src, dst), daemon=True
                ).start()

    def _track(self, *sockets: socket.socket, only_in: str | None = None) -> bool:
        """Remember sockets for cut(); closes them instead if the mode changed."""
        with self._lock:
            if only_in is None or self.mode == only_in:
                self._sockets.update(sockets)
                return True
        for sock in sockets:
            sock.close()
        return False

    def _swallow(self, sock: socket.socket) -> None:
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.mode == BLACKHOLE:
                    continue  # swallowed: the peer never hears back
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
