"""A service on the 3-node quorum-queue cluster while its node dies.

A plain oslo.messaging Notifier with ``driver = nova_notifier.spool`` (and
``.background``) emits 200 notifications a second through the three-host
URL; the node it publishes through is killed with -9 and started again 10 s
later, or every node is restarted in turn. Nothing may be lost, no emit call
may take long, and the sender must be delivering through another node within
5 s of the kill (a lost connection moves to the next host at once). The
5 ms aim is reported by ``bench/cluster.py``; the tests hold
``CLUSTER_CALL_MS`` (see conftest), well above the 1-7 ms measured and far
below oslo's one-second block, and every call to ``OWN_CALL_MS`` (5 ms) of
its own time: less its waits for a core and for garbage collections.
Throughput on the cluster is measured by ``bench/cluster.py``, not here.
"""

from __future__ import annotations

import pytest

from tests import driver_child, failover
from tests.conftest import CLUSTER_CALL_MS, OWN_CALL_MS

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("driver", ["nova_notifier.spool", "nova_notifier.background"])
def test_killing_the_publishers_node_loses_nothing_and_blocks_no_call(
    rabbit_cluster, tmp_path, driver
):
    outcome = failover.kill_publisher_node(
        rabbit_cluster, driver, str(tmp_path / "spool.db")
    )
    print(outcome.as_dict())
    assert outcome.lost == 0
    assert outcome.child["flushed"]["dropped"] == 0
    assert outcome.child["flushed"]["dead_lettered"] == 0
    assert outcome.child["flushed"]["retried"] > 0  # the kill was felt
    # Only what the broker had not confirmed is sent again: at most the
    # batch in flight (sender_batch_size, 200), never the spool's backlog.
    assert outcome.duplicates <= 200, outcome
    assert outcome.max_call_ms < CLUSTER_CALL_MS, outcome
    assert driver_child.own_ms(outcome.child) < OWN_CALL_MS, outcome
    [failover_s] = outcome.failover_s
    assert failover_s < 5.0, outcome


def test_restarting_every_node_in_turn_loses_nothing(rabbit_cluster, tmp_path):
    outcome = failover.restart_every_node(
        rabbit_cluster, "nova_notifier.spool", str(tmp_path / "spool.db")
    )
    print(outcome.as_dict())
    assert outcome.lost == 0
    assert outcome.killed == [1, 2, 3]
    assert outcome.child["flushed"]["dropped"] == 0
    assert outcome.max_call_ms < CLUSTER_CALL_MS, outcome
    assert driver_child.own_ms(outcome.child) < OWN_CALL_MS, outcome
