"""The batch publisher over TLS, against a real TLS RabbitMQ.

A one-node broker (``tools/rabbit-cluster.sh``, prefix ``nntls``, AMQP on
5695, TLS on 5705) runs beside the default broker with a certificate signed
by a CA made here with the ``openssl`` CLI. The library and the
``nova_notifier.background`` driver must deliver through the batch publisher
over TLS when ``[oslo_messaging_rabbit] ssl_ca_file`` names that CA (``ssl``
coming from ``?ssl=1`` in the URL, as oslo.messaging reads it), and must not
connect when it names another CA. A separate oslo.messaging listener, over
TLS too, says what arrived.
"""

from __future__ import annotations

import dataclasses
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oslo_messaging
import pytest

import nova_notifier
from nova_notifier import _rabbit_batch, delivery, drivers, lifecycle
from nova_notifier.tools.amqp_queues import delete_queues
from tests.cluster_util import Cluster
from tests.conftest import (
    PRIORITIES,
    Collector,
    _start_listener,
    _stop_listener,
    make_conf,
    wait_until,
)

pytestmark = pytest.mark.cluster

AMQP_PORT = 5695
TLS_PORT = AMQP_PORT + 10  # the script's TLS listener of node 1
# ssl from the URL's query, the CA from [oslo_messaging_rabbit]
TLS_URL = f"rabbit://guest:guest@127.0.0.1:{TLS_PORT}/?ssl=1"
PLAIN_URL = f"rabbit://guest:guest@127.0.0.1:{AMQP_PORT}/"
CTXT = {"request_id": "req-tls-1", "user_id": "u-1", "project_id": "p-1"}


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60
    )


def _make_ca(name: str, cwd: Path) -> None:
    """``<name>.pem`` and ``<name>-key.pem``: a self-signed CA."""
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN=nova-notifier test {name}",
        "-keyout", f"{name}-key.pem", "-out", f"{name}.pem",
        "-config", "/dev/null",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
        cwd=cwd,
    )  # fmt: skip


def _make_certs(where: Path) -> None:
    """ca.pem, cert.pem and key.pem (localhost, 127.0.0.1), wrong-ca.pem."""
    where.mkdir()
    _make_ca("ca", where)
    _make_ca("wrong-ca", where)
    (where / "server.ext").write_text(
        "basicConstraints = CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "key.pem", "-out", "server.csr", "-config", "/dev/null",
        cwd=where,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
        "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "cert.pem",
        cwd=where,
    )  # fmt: skip
    # the broker runs as this user; openssl writes keys 0600 already
    (where / "key.pem").chmod(0o600)


@dataclasses.dataclass
class TlsBroker:
    cluster: Cluster
    certs: Path

    @property
    def ca(self) -> str:
        return str(self.certs / "ca.pem")

    @property
    def wrong_ca(self) -> str:
        return str(self.certs / "wrong-ca.pem")


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    """A 1-node TLS RabbitMQ (prefix nntls) with certificates made here."""
    base = tmp_path_factory.mktemp("tls")
    certs = base / "certs"
    _make_certs(certs)
    cluster = Cluster(
        env={
            "RABBIT_CLUSTER_NODES": "1",
            "RABBIT_CLUSTER_PREFIX": "nntls",
            "RABBIT_CLUSTER_PORT": str(AMQP_PORT),
            "RABBIT_CLUSTER_DIR": str(base / "node"),
            "RABBIT_CLUSTER_TLS_DIR": str(certs),
        }
    )
    try:
        cluster.up()
        yield TlsBroker(cluster, certs)
    finally:
        cluster.down(purge=True)


@dataclasses.dataclass
class Listening:
    topic: str
    collector: Collector


@pytest.fixture
def listening(tls_broker: TlsBroker) -> Iterator[Listening]:
    """An oslo.messaging listener on a topic of its own, over TLS with the
    right CA (the script's TLS URL names it in the query)."""
    topic = f"nn-tls-{uuid.uuid4().hex[:12]}"
    url = tls_broker.cluster.url(tls=True)
    assert url.startswith(f"rabbit://guest:guest@127.0.0.1:{TLS_PORT}/?ssl=1&")
    transport = oslo_messaging.get_notification_transport(make_conf(url, topic))
    collector = Collector()
    listener = _start_listener(transport, topic, collector)
    try:
        yield Listening(topic, collector)
    finally:
        _stop_listener(listener)
        transport.cleanup()
        delete_queues(PLAIN_URL, [f"{topic}.{p}" for p in PRIORITIES])


def _assert_tls_to_broker(batcher: _rabbit_batch.BatchPublisher) -> None:
    """The publisher's connection is a verified TLS one to the TLS port."""
    conn = batcher._conn
    assert conn is not None
    sock = conn.transport.sock
    assert isinstance(sock, ssl.SSLSocket)
    assert sock.getpeername()[1] == TLS_PORT
    assert sock.context.verify_mode == ssl.CERT_REQUIRED
    subject = dict(item[0] for item in sock.getpeercert()["subject"])
    assert subject["commonName"] == "localhost"


def _message(topic: str, event_type: str, n: int) -> tuple[str, dict, dict]:
    return (
        f"{topic}.info",
        dict(CTXT),
        {
            "message_id": str(uuid.uuid4()),
            "publisher_id": "compute.tls",
            "event_type": event_type,
            "priority": "INFO",
            "payload": {"n": n},
            "timestamp": "2026-01-01 00:00:00.000000",
        },
    )


def _publisher(topic: str, ca_file: str) -> _rabbit_batch.BatchPublisher:
    conf = make_conf(TLS_URL, topic, oslo_messaging_rabbit__ssl_ca_file=ca_file)
    assert _rabbit_batch.supports(conf, TLS_URL, 2.0)
    return _rabbit_batch.BatchPublisher(conf, TLS_URL, timeout=5)


def test_library_in_background_mode_delivers_over_tls(tls_broker, listening):
    conf = make_conf(
        TLS_URL,
        listening.topic,
        notifications__delivery_mode="background",
        oslo_messaging_rabbit__ssl_ca_file=tls_broker.ca,
    )
    nova_notifier.init(conf)
    try:
        sender = lifecycle._STATE.delivery
        assert sender is not None
        batcher = sender._batcher
        assert batcher is not None  # the batch publisher, not oslo's driver
        assert batcher._settings.ssl == {
            "ca_certs": tls_broker.ca,
            "cert_reqs": ssl.CERT_REQUIRED,
            "server_hostname": "127.0.0.1",
        }
        payload = {"instance_id": "i-tls", "state": "active", "memory_mb": 512}
        notifier = nova_notifier.get_notifier("compute", "tls-host")
        notifier.notify(CTXT, "compute.instance.create.end", payload, "info")

        [got] = listening.collector.wait_for(1, timeout=15)
        assert got.event_type == "compute.instance.create.end"
        assert got.priority == "INFO"
        assert got.publisher_id == "compute.tls-host"
        assert got.payload == payload
        wait_until(lambda: nova_notifier.stats()["sent"] == 1, "stats count it sent")
        assert nova_notifier.stats()["retried"] == 0
        _assert_tls_to_broker(batcher)
    finally:
        nova_notifier.cleanup()


def test_a_wrong_ca_fails_verification_and_sends_nothing(tls_broker, listening):
    topic = listening.topic
    wrong = _publisher(topic, tls_broker.wrong_ca)
    try:
        result = wrong.publish([_message(topic, "tls.wrong", 1)])
    finally:
        wrong.close()
    assert result.acked == set()
    assert result.refused == {}
    assert result.error is not None
    cause: Any = result.error
    while cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
        cause = cause.__cause__ or cause.__context__
    assert isinstance(cause, ssl.SSLCertVerificationError), repr(result.error)
    # the broker sends its CA along: 19 self-signed certificate in chain;
    # 20 unable to get local issuer certificate without it
    assert cause.verify_code in (19, 20), cause.verify_message
    assert "CERTIFICATE_VERIFY_FAILED" in str(result.error)
    # not a refusal of the message: the sender will try again later
    assert _rabbit_batch.permanent_reason(result.error) is None

    # The right CA gets through to the same queue; once its message is
    # there, anything the wrong one had sent would be there before it.
    right = _publisher(topic, tls_broker.ca)
    try:
        result = right.publish([_message(topic, "tls.right", 2)])
        assert (result.acked, result.error) == ({0}, None)
        _assert_tls_to_broker(right)
    finally:
        right.close()
    listening.collector.wait_for(1, event_type="tls.right")
    assert [(i.event_type, i.payload) for i in listening.collector.events()] == [
        ("tls.right", {"n": 2})
    ]


def test_the_background_driver_delivers_over_tls(tls_broker, listening):
    conf = make_conf(
        TLS_URL, listening.topic, oslo_messaging_rabbit__ssl_ca_file=tls_broker.ca
    )
    transport = oslo_messaging.get_notification_transport(conf)
    try:
        notifier = oslo_messaging.Notifier(
            transport,
            "compute.h",
            driver="nova_notifier.background",
            topics=[listening.topic],
        )
        sender = drivers._SENDERS[(delivery.BACKGROUND, id(transport))][1]
        batcher = sender._batcher
        assert batcher is not None
        sent_before = drivers.driver_stats()["sent"]
        payload = {"instance_id": "i-drv", "vcpus": 2}
        notifier.warn(CTXT, "compute.instance.exists", payload)

        [got] = listening.collector.wait_for(1, timeout=15)
        assert (got.priority, got.event_type) == ("WARN", "compute.instance.exists")
        assert got.publisher_id == "compute.h"
        assert got.payload == payload
        wait_until(
            lambda: drivers.driver_stats()["sent"] == sent_before + 1,
            "the driver counts it sent",
        )
        _assert_tls_to_broker(batcher)
    finally:
        assert drivers.flush_drivers(timeout=10, transport=transport)
        transport.cleanup()
