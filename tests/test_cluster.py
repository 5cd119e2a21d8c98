"""Smoke tests of the RabbitMQ cluster that tools/rabbit-cluster.sh runs.

They check what later failover tests stand on: the nodes form one cluster,
oslo.messaging publishes through the three-host URL to a quorum queue that a
real notification listener consumes, and a node killed with -9 comes back
into the cluster.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid

import oslo_messaging
import pytest
from oslo_context import context as oslo_context

from nova_notifier.tools.amqp_queues import delete_queues
from tests import cluster_util
from tests.cluster_util import Cluster, connected_ports
from tests.conftest import (
    PRIORITIES,
    Collector,
    _start_listener,
    _stop_listener,
    make_conf,
)

pytestmark = pytest.mark.cluster


def _names(cluster: Cluster) -> list[str]:
    return sorted(cluster.node_name(n) for n in range(1, cluster.nodes + 1))


def test_every_node_sees_all_members_running(rabbit_cluster):
    for node in range(1, rabbit_cluster.nodes + 1):
        assert rabbit_cluster.members(node) == _names(rabbit_cluster)
        assert rabbit_cluster.members(node, running=False) == _names(rabbit_cluster)
    assert rabbit_cluster.running_nodes() == list(range(1, rabbit_cluster.nodes + 1))


def test_url_names_every_node_and_ports_map_back_to_nodes(rabbit_cluster):
    hosts = ",".join(f"guest:guest@127.0.0.1:{p}" for p in rabbit_cluster.ports)
    assert rabbit_cluster.url() == f"rabbit://{hosts}/"
    for node, port in enumerate(rabbit_cluster.ports, start=1):
        assert rabbit_cluster.node_for_port(port) == node
    with pytest.raises(ValueError):
        rabbit_cluster.node_for_port(5672)


def test_connected_ports_sees_this_process_s_own_connections():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        try:
            assert connected_ports([port, port + 1]) == {port}
        finally:
            client.close()
            accepted.close()
        assert connected_ports([port]) == set()


@pytest.mark.parametrize("through", ["descriptors", "tcp table"])
def test_connected_ports_sees_another_process_s_connections_only(through, monkeypatch):
    if through == "tcp table":  # where pidfd_getfd is refused

        def refused(pid, fds):
            raise cluster_util._NoPidfd("refused")

        monkeypatch.setattr(cluster_util, "_ports_from_descriptors", refused)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import socket, sys; s = socket.create_connection(('127.0.0.1', "
                f"{port})); print('up', flush=True); sys.stdin.read()",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None and child.stdout.readline() == "up\n"
            accepted, _ = server.accept()
            with accepted:
                assert connected_ports([port], child.pid) == {port}
                # this process holds the listening socket and the accepted
                # end (whose peer is the child's own port): neither counts
                assert connected_ports([port]) == set()
        finally:
            child.communicate("")
        assert child.returncode == 0


def test_a_notification_through_the_cluster_url_lands_in_a_quorum_queue(
    rabbit_cluster,
):
    topic = f"nn-cluster-{uuid.uuid4().hex[:12]}"
    url = rabbit_cluster.url()
    quorum = {"oslo_messaging_rabbit__rabbit_quorum_queue": True}
    listen_transport = oslo_messaging.get_notification_transport(
        make_conf(url, topic, **quorum)
    )
    send_transport = oslo_messaging.get_notification_transport(
        make_conf(url, topic, **quorum)
    )
    collector = Collector()
    listener = _start_listener(listen_transport, topic, collector)
    try:
        notifier = oslo_messaging.Notifier(
            send_transport,
            publisher_id="cluster-smoke.testhost",
            driver="messagingv2",
            topics=[topic],
        )
        payload = {"instance_id": "i-1", "nested": {"n": 3, "s": "é"}}
        ctxt = oslo_context.RequestContext(request_id="req-cluster", overwrite=False)
        notifier.info(ctxt, "cluster.smoke", payload)

        (got,) = collector.wait_for(1, event_type="cluster.smoke", timeout=30)
        assert got.priority == "INFO"
        assert got.publisher_id == "cluster-smoke.testhost"
        assert got.payload == payload
        assert got.ctxt.get("request_id") == "req-cluster", got.ctxt

        assert rabbit_cluster.queue_types()[f"{topic}.info"] == "quorum"
        # publisher and listener hold connections to cluster nodes only
        connected = rabbit_cluster.connected_nodes()
        assert connected and connected <= set(range(1, rabbit_cluster.nodes + 1))
        assert not connected_ports([5672])
    finally:
        _stop_listener(listener)
        listen_transport.cleanup()
        send_transport.cleanup()
        delete_queues(rabbit_cluster.node_url(1), [f"{topic}.{p}" for p in PRIORITIES])
    assert f"{topic}.info" not in rabbit_cluster.queue_types()


def test_a_killed_node_comes_back_into_the_cluster(rabbit_cluster):
    everyone = _names(rabbit_cluster)
    before = rabbit_cluster.pid(1)
    try:
        rabbit_cluster.kill(1)
        assert 1 not in rabbit_cluster.running_nodes()
        for port in (rabbit_cluster.ports[0], rabbit_cluster.dist_ports[0]):
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
        assert rabbit_cluster.members(2) == [n for n in everyone if n != everyone[0]]
        assert rabbit_cluster.members(2, running=False) == everyone

        rabbit_cluster.start(1)
        assert rabbit_cluster.pid(1) != before
        assert rabbit_cluster.members(1) == everyone
        assert rabbit_cluster.members(2) == everyone
    finally:
        if 1 not in rabbit_cluster.running_nodes():
            rabbit_cluster.start(1)


def _autogroup_nice(pid: int) -> int | None:
    """The nice value of ``pid``'s scheduler autogroup (None: no autogroups)."""
    try:
        with open(f"/proc/{pid}/autogroup") as f:
            return int(f.read().split()[-1])
    except (FileNotFoundError, PermissionError):
        return None


def test_rabbit_cluster_cpus_confines_a_node_and_only_when_set(rabbit_cluster):
    cpu = max(os.sched_getaffinity(0))
    node = rabbit_cluster.nodes
    pinned = Cluster({**rabbit_cluster.env, "RABBIT_CLUSTER_CPUS": str(cpu)})
    pinned.kill(node)
    pinned.start(node)
    try:
        assert os.sched_getaffinity(pinned.pid(node)) == {cpu}
    finally:  # started again as the session's settings have it
        rabbit_cluster.kill(node)
        rabbit_cluster.start(node)
    if not rabbit_cluster.env.get("RABBIT_CLUSTER_CPUS"):
        assert os.sched_getaffinity(rabbit_cluster.pid(node)) == os.sched_getaffinity(0)


def test_a_rabbit_cluster_cpus_taskset_refuses_is_a_clear_error():
    done = subprocess.run(
        ["bash", str(cluster_util.SCRIPT), "status"],
        env={**os.environ, "RABBIT_CLUSTER_CPUS": "not-a-cpu"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "RABBIT_CLUSTER_CPUS=not-a-cpu is not a CPU list" in done.stderr


def test_the_nodes_yield_the_cpu_to_the_service(rabbit_cluster):
    # Each node runs in a session of its own, so in a scheduler group of its
    # own: only the group's nice keeps it from taking as much CPU as the whole
    # service under test (its threads' niceness counts only within the group).
    nice = int(rabbit_cluster.env.get("RABBIT_CLUSTER_NICE", "19"))
    for node in range(1, rabbit_cluster.nodes + 1):
        pid = rabbit_cluster.pid(node)
        assert os.getpriority(os.PRIO_PROCESS, pid) == nice
        group = _autogroup_nice(pid)
        if group is not None:
            assert group == nice, f"node {node}: autogroup nice {group}"
        # And under SCHED_IDLE: a node's thread waking up never preempts the
        # service's; only the scheduler tick gives it a core the service uses.
        idle = rabbit_cluster.env.get("RABBIT_CLUSTER_SCHED", "idle") == "idle"
        policy = os.sched_getscheduler(pid)
        assert policy == (os.SCHED_IDLE if idle else os.SCHED_OTHER), (node, policy)
