"""A RabbitMQ cluster for tests, run by ``tools/rabbit-cluster.sh``.

The cluster runs beside the machine's default broker (127.0.0.1:5672), which
it never touches. :class:`Cluster` wraps the script; its settings are the
script's ``RABBIT_CLUSTER_*`` environment variables (defaults: three nodes
``nn-1@localhost``.. on AMQP ports 5681..5683).

oslo.messaging shuffles the hosts of a transport URL, so which node a
publisher is connected to is found from its sockets: :func:`connected_ports`
asks each socket of a process for its peer.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import socket
import subprocess
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "rabbit-cluster.sh"


class ClusterError(RuntimeError):
    """The script failed; the message carries its stderr."""


class Cluster:
    """The nodes ``tools/rabbit-cluster.sh`` runs, numbered from 1."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = {**os.environ, **(env or {})}
        self.nodes = int(self.env.get("RABBIT_CLUSTER_NODES", "3"))
        self.prefix = self.env.get("RABBIT_CLUSTER_PREFIX", "nn")
        self.base_port = int(self.env.get("RABBIT_CLUSTER_PORT", "5681"))
        tmp = self.env.get("TMPDIR") or "/tmp"
        default_dir = os.path.join(tmp, f"nova-notifier-cluster-{os.getuid()}")
        self.dir = self.env.get("RABBIT_CLUSTER_DIR") or default_dir

    def run(self, *args: str, check: bool = True, timeout: float = 300) -> str:
        """Run the script with ``args``; its stdout."""
        done = subprocess.run(
            ["bash", str(SCRIPT), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise ClusterError(
                f"rabbit-cluster.sh {' '.join(args)} exited {done.returncode}:\n"
                f"{done.stderr}"
            )
        return done.stdout

    # --- the script's commands ---------------------------------------------

    def up(self) -> str:
        """Start what is not running, cluster it; the transport URL."""
        return self.run("up").strip().splitlines()[-1]

    def down(self, purge: bool = False) -> None:
        self.run("down", *(["--purge"] if purge else []))

    def kill(self, node: int) -> None:
        """``kill -9`` the node; returns once its ports are closed."""
        self.run("kill", str(node))

    def start(self, node: int) -> None:
        """Start the node again; returns once it is back in the cluster."""
        self.run("start", str(node))

    def url(self, tls: bool = False) -> str:
        return self.run("url", *(["--tls"] if tls else [])).strip()

    def pid(self, node: int) -> int:
        return int(self.run("pid", str(node)))

    def ctl(self, *args: str, node: int = 1) -> str:
        """``rabbitmqctl`` against one node of this cluster; its stdout."""
        return self.run("ctl", "-N", str(node), *args, timeout=120)

    def running_nodes(self) -> list[int]:
        """The nodes whose beam runs and listens (from ``status``)."""
        out = self.run("status", check=False)
        return [
            number
            for number, line in enumerate(out.splitlines(), start=1)
            if line.endswith(" running")
        ]

    # --- what the cluster looks like ---------------------------------------

    def node_name(self, node: int) -> str:
        return f"{self.prefix}-{node}@localhost"

    @property
    def ports(self) -> list[int]:
        """AMQP ports, node 1 first."""
        return [self.base_port + i for i in range(self.nodes)]

    @property
    def dist_ports(self) -> list[int]:
        """Erlang distribution ports, node 1 first."""
        return [port + 20000 for port in self.ports]

    def node_url(self, node: int) -> str:
        """A transport URL of one node alone (for kombu, which takes one host)."""
        return f"rabbit://guest:guest@127.0.0.1:{self.ports[node - 1]}/"

    def node_for_port(self, port: int) -> int:
        """The number of the node that listens on AMQP ``port``."""
        if port not in self.ports:
            raise ValueError(f"port {port} is not a node of this cluster")
        return port - self.base_port + 1

    def members(self, node: int = 1, running: bool = True) -> list[str]:
        """Cluster members as ``node`` sees them (running ones, or all)."""
        which = "running" if running else "all"
        out = self.ctl("eval", f"rabbit_mnesia:cluster_nodes({which}).", node=node)
        return sorted(re.findall(r"'([^']+)'", out))

    def queue_types(self, node: int = 1) -> dict[str, str]:
        """Queue name -> type (``quorum``, ``classic``...) on the cluster."""
        out = self.ctl("list_queues", "--no-table-headers", "name", "type", node=node)
        types = {}
        for line in out.splitlines():
            name, _, kind = line.rpartition("\t")
            if name:
                types[name] = kind.strip()
        return types

    def delete_queues(self, names: Iterable[str]) -> None:
        """Delete the named queues that exist (tests delete what they made)."""
        existing = self.queue_types()
        for name in names:
            if name in existing:
                self.ctl("delete_queue", name)

    def connected_nodes(self, pid: int | None = None) -> set[int]:
        """Nodes that process ``pid`` (this one by default) is connected to."""
        return {self.node_for_port(p) for p in connected_ports(self.ports, pid)}


_PIDFD_GETFD = 438  # x86-64, arm64 and every other user of the generic table
_TCP_ESTABLISHED = 1  # the first byte of struct tcp_info
_ESTABLISHED_HEX = "01"  # the same state in /proc/net/tcp


class _NoPidfd(Exception):
    """pidfd_getfd is not available here (old kernel, seccomp, Yama)."""


def _socket_fds(pid: int) -> dict[int, str]:
    """The descriptors of process ``pid`` that are sockets, with their inodes."""
    fds = {}
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed since the listing
            continue
        if target.startswith("socket:["):
            fds[int(fd.name)] = target[len("socket:[") : -1]
    return fds


def _peer_port(sock: socket.socket) -> int | None:
    """The remote port of an ESTABLISHED TCP socket, else None."""
    if sock.type != socket.SOCK_STREAM or sock.family not in (
        socket.AF_INET,
        socket.AF_INET6,
    ):
        return None
    try:
        state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
        if state != _TCP_ESTABLISHED:
            return None
        return int(sock.getpeername()[1])
    except OSError:
        return None


def _peer_of_copy(copy: int) -> int | None:
    """The peer port of a duplicated descriptor, which it closes."""
    try:
        sock = socket.socket(fileno=copy)
    except OSError:  # the number now names something else than a socket
        os.close(copy)
        return None
    with sock:
        return _peer_port(sock)


def _ports_from_descriptors(pid: int, fds: Iterable[int]) -> set[int]:
    """The peer ports of ``pid``'s ESTABLISHED TCP sockets among ``fds``."""
    if pid == os.getpid():
        return _peer_ports(fds, _dup_if_open)
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:  # gone: no connections
        return set()
    except OSError as exc:
        raise _NoPidfd from exc

    def take(fd: int) -> int | None:
        copy = int(libc.syscall(_PIDFD_GETFD, pidfd, fd, 0))
        if copy >= 0:
            return copy
        error = ctypes.get_errno()
        if error == errno.EBADF:  # closed since the listing
            return None
        if error == errno.ESRCH:
            raise ProcessLookupError(error, os.strerror(error))
        raise _NoPidfd(os.strerror(error))

    try:
        return _peer_ports(fds, take)
    except ProcessLookupError:  # gone since: no connections
        return set()
    finally:
        os.close(pidfd)


def _dup_if_open(fd: int) -> int | None:
    """A copy of this process's descriptor ``fd``; None if it was closed."""
    try:
        return os.dup(fd)
    except OSError:
        return None


def _peer_ports(fds: Iterable[int], take: Callable[[int], int | None]) -> set[int]:
    """The peer ports of the sockets among ``fds``, each read through the
    copy ``take`` makes of it (None: closed since the listing)."""
    found = set()
    for fd in fds:
        copy = take(fd)
        if copy is None:
            continue
        port = _peer_of_copy(copy)
        if port is not None:
            found.add(port)
    return found


def _ports_from_tcp_table(inodes: set[str]) -> set[int]:
    """The remote ports of the ESTABLISHED connections whose socket inode is
    in ``inodes``, from ``/proc/net/tcp`` and ``tcp6``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows)  # the header
                for row in rows:
                    fields = row.split()
                    if fields[3] == _ESTABLISHED_HEX and fields[9] in inodes:
                        found.add(int(fields[2].rsplit(":", 1)[1], 16))
        except FileNotFoundError:  # no IPv6
            continue
    return found


def connected_ports(ports: Iterable[int], pid: int | None = None) -> set[int]:
    """Which of ``ports`` process ``pid`` holds ESTABLISHED TCP connections to.

    Asks each of the process's sockets for its peer, through a duplicate of
    the descriptor (``pidfd_getfd``, Linux 5.6, for another process):
    reading ``/proc/net/tcp`` instead walks every bucket of the kernel's
    connection table, some 4 ms of CPU a read on this machine, which the
    kernel (preemption model "none") does not interrupt for the service
    under test. That table is still the fallback where the call is refused
    (a container's seccomp profile, Yama) or missing, and while a default
    socket timeout is set (a socket object made on a duplicate would make
    the process's own socket non-blocking). ``pid`` defaults to this
    process; a process that is gone has no connections.
    """
    wanted = set(ports)
    pid = os.getpid() if pid is None else pid
    try:
        fds = _socket_fds(pid)
    except FileNotFoundError:  # gone
        return set()
    try:
        if socket.getdefaulttimeout() is not None:
            raise _NoPidfd("a default socket timeout is set")
        found = _ports_from_descriptors(pid, fds)
    except _NoPidfd:
        found = _ports_from_tcp_table(set(fds.values()))
    return found & wanted
