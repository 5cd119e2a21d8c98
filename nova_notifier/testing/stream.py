"""Notification streams with known latencies, as ``listen --json`` writes them.

For tests of ``nova-notifier latency`` and its benchmark: :class:`Stream`
builds the envelopes of boots, deletes and rebuilds at the times you give
(payloads shaped like Nova's legacy instance payload, about 1 KB), and
:func:`busy_region` makes a large, realistic mix of them.
"""

from __future__ import annotations

import datetime
import heapq
import json
import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

_EPOCH = datetime.datetime(1970, 1, 1)


def stamp(when: float) -> str:
    """An envelope timestamp as oslo.messaging writes it (UTC, no zone)."""
    return str(_EPOCH + datetime.timedelta(seconds=when))


@dataclass
class BootSpec:
    """One boot: when the API accepted it and how long each phase took."""

    instance: str
    accepted: float
    waiting: float
    spawning: float
    host: str = "compute-1"
    api_host: str = "api-1"
    name: str = "vm"
    flavor: str = "m1.small"
    fault: str | None = None  # ends in create.error with this message
    skew: float = 0.0  # the compute host's clock runs this far behind

    @property
    def start(self) -> float:
        return self.accepted + self.waiting - self.skew

    @property
    def end(self) -> float:
        return self.start + self.spawning


class Stream:
    """Builds envelopes; ``records`` keeps them in the order they were made."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def notify(
        self,
        event_type: str,
        publisher_id: str,
        when: float,
        payload: Any,
        priority: str = "INFO",
    ) -> dict[str, Any]:
        record = {
            "message_id": str(uuid.uuid4()),
            "timestamp": stamp(when),
            "priority": priority,
            "publisher_id": publisher_id,
            "event_type": event_type,
            "payload": payload,
            "context": {"request_id": f"req-{uuid.uuid4()}", "user": "demo-user"},
        }
        self.records.append(record)
        return record

    @staticmethod
    def payload(
        spec: BootSpec, state: str, task: str | None, **extra: Any
    ) -> dict[str, Any]:
        """A legacy instance payload for this boot."""
        payload: dict[str, Any] = {
            "tenant_id": "8c0a5e3b7d2f4a6e9b1c3d5f7a9e0b2c",
            "user_id": "4b6f1b2a9c1e4d0f8a7b6c5d4e3f2a1b",
            "instance_id": spec.instance,
            "display_name": spec.name,
            "reservation_id": "r-3k9x7w2q",
            "hostname": spec.name,
            "host": spec.host,
            "node": f"{spec.host}.example.org",
            "availability_zone": "nova",
            "cell_name": "",
            "architecture": "x86_64",
            "os_type": "linux",
            "kernel_id": "",
            "ramdisk_id": "",
            "instance_type": spec.flavor,
            "instance_flavor_id": "2",
            "instance_type_id": 5,
            "memory_mb": 2048,
            "vcpus": 1,
            "root_gb": 20,
            "ephemeral_gb": 0,
            "disk_gb": 20,
            "created_at": stamp(spec.accepted).replace(" ", "T"),
            "launched_at": "",
            "terminated_at": "",
            "deleted_at": "",
            "image_ref_url": "http://glance:9292/images/0f3b5a8e-6c1d-4e2f-9a7b",
            "image_meta": {"min_disk": "20", "os_type": "linux", "disk_format": "raw"},
            "metadata": {"group": "frontend", "tier": "web"},
            "state": state,
            "state_description": task or "",
            "progress": "",
            "access_ip_v4": "",
            "access_ip_v6": "",
        }
        payload.update(extra)
        return payload

    def api_update(self, spec: BootSpec) -> dict[str, Any]:
        """The API's BUILDING update that accepts the boot."""
        return self.notify(
            "compute.instance.update",
            f"api.{spec.api_host}",
            spec.accepted,
            self.payload(
                spec,
                "building",
                "scheduling",
                old_state="building",
                old_task_state="scheduling",
                new_task_state="scheduling",
            ),
        )

    def boot(
        self, spec: BootSpec, accepted: bool = True, start: bool = True
    ) -> list[dict[str, Any]]:
        """The notifications of one boot; leave out the API's or the start."""
        made = len(self.records)
        compute = f"compute.{spec.host}"
        if accepted:
            self.api_update(spec)
        if start:
            self.notify(
                "compute.instance.create.start",
                compute,
                spec.start,
                self.payload(spec, "building", "spawning"),
            )
        for share, task in ((0.1, "networking"), (0.5, "spawning")):
            self.notify(
                "compute.instance.update",
                compute,
                spec.start + share * spec.spawning,
                self.payload(
                    spec,
                    "building",
                    task,
                    old_state="building",
                    old_task_state=None,
                    new_task_state=task,
                ),
            )
        if spec.fault is None:
            self.notify(
                "compute.instance.create.end",
                compute,
                spec.end,
                self.payload(spec, "active", None, message="Success"),
            )
        else:
            self.notify(
                "compute.instance.create.error",
                compute,
                spec.end,
                self.payload(spec, "error", None, message=spec.fault, code=500),
                priority="ERROR",
            )
        return self.records[made:]

    def delete(self, spec: BootSpec, at: float, duration: float) -> None:
        """delete.start at ``at``, delete.end ``duration`` later."""
        self._operation(spec, "delete", at, duration, ("active", "deleting"), "deleted")

    def rebuild(self, spec: BootSpec, at: float, duration: float) -> None:
        """rebuild.start at ``at``, rebuild.end ``duration`` later."""
        self._operation(
            spec, "rebuild", at, duration, ("active", "rebuilding"), "active"
        )

    def _operation(
        self,
        spec: BootSpec,
        name: str,
        at: float,
        duration: float,
        starting: tuple[str, str],
        ended: str,
    ) -> None:
        compute = f"compute.{spec.host}"
        self.notify(
            f"compute.instance.{name}.start", compute, at, self.payload(spec, *starting)
        )
        self.notify(
            f"compute.instance.{name}.end",
            compute,
            at + duration,
            self.payload(spec, ended, None),
        )

    def other(self, spec: BootSpec, when: float) -> None:
        """Notifications the latency report does not use."""
        self.notify(
            "compute.instance.exists",
            f"compute.{spec.host}",
            when,
            self.payload(spec, "active", None, audit_period_beginning="", bandwidth={}),
        )


def lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The records as ``listen --json`` lines (with their newline)."""
    for record in records:
        yield json.dumps(record) + "\n"


def busy_region(
    boots: int, hosts: int = 40, seed: int = 1, start: float = 1_795_000_000.0
) -> Iterator[dict[str, Any]]:
    """A busy region's notifications, in the order a listener gets them.

    Boots arrive at about 20 a second, spread over ``hosts`` compute hosts;
    waiting and spawning are log-normal (medians about 1.5 s and 25 s), 3%
    fail, a third are deleted minutes later, half get a
    ``compute.instance.exists`` within the hour and some an ``api.fault``.
    Each message arrives up to 50 ms after its timestamp, so neighbours often
    arrive swapped; 2% are held up to 30 s more, so an instance's later events
    overtake them; and 1% arrive a second time within 2 s. Deterministic for
    a given ``seed``.
    """
    rng = random.Random(seed)
    pending: list[tuple[float, int, dict[str, Any]]] = []
    order = 0
    when = start
    for index in range(boots):
        when += rng.expovariate(20.0)
        while pending and pending[0][0] < when:
            yield heapq.heappop(pending)[2]
        spec = BootSpec(
            instance=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            accepted=when,
            waiting=rng.lognormvariate(0.4, 0.6),
            spawning=rng.lognormvariate(3.2, 0.5),
            host=f"compute-{rng.randrange(hosts):03d}",
            api_host=f"api-{index % 3}",
            name=f"vm-{index}",
            fault="No valid host was found." if rng.random() < 0.03 else None,
        )
        stream = Stream()
        stream.boot(spec)
        if rng.random() < 0.33:
            stream.delete(spec, spec.end + rng.uniform(60, 600), rng.uniform(1, 8))
        if rng.random() < 0.5:
            stream.other(spec, spec.end + rng.uniform(0, 3600))
        if rng.random() < 0.05:
            stream.notify(
                "api.fault",
                f"api.{spec.api_host}",
                spec.accepted,
                {"url": "/v2.1/servers", "exception": "Forbidden", "status": 403},
                priority="ERROR",
            )
        for record in stream.records:
            arrival = _seconds(record["timestamp"]) + rng.uniform(0, 0.05)
            if rng.random() < 0.02:  # held up on its way: overtaken by later ones
                arrival += rng.uniform(0, 30)
            copies = 2 if rng.random() < 0.01 else 1
            for copy in range(copies):
                order += 1
                late = rng.uniform(0, 2) if copy else 0.0
                heapq.heappush(pending, (arrival + late, order, record))
    while pending:
        yield heapq.heappop(pending)[2]


def _seconds(text: str) -> float:
    return (datetime.datetime.fromisoformat(text) - _EPOCH).total_seconds()
