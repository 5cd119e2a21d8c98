"""A demonstration compute API, served by ``etc/api-paste.ini``.

It keeps servers in memory and emits what a Nova-like service emits:

- ``POST /servers`` boots: the API's BUILDING ``compute.instance.update``
  (publisher ``api.<host>``), then from the compute host ``create.start``,
  task-state updates and ``create.end`` (or, with ``"fail": true``, an ERROR
  update and ``create.error`` with the fault). Answers 202.
- ``DELETE /servers/<id>``: ``delete.start``, ``shutdown.start/end``,
  ``delete.end``. Answers 204.
- ``GET /servers`` and ``GET /servers/<id>`` (an unknown id raises a 404
  ``safe`` exception, turned into a fault by ``faultwrap``).
- ``GET /crash`` raises an unexpected error: ``faultwrap`` answers 500 and
  sends ``api.fault``.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from typing import Any

import webob
import webob.dec
from oslo_context import context as oslo_context
from oslo_utils import timeutils

import nova_notifier
from nova_notifier import task_states, vm_states
from nova_notifier.demo import hypervisor

FLAVORS = {
    "m1.tiny": {
        "id": 1,
        "flavorid": "1",
        "name": "m1.tiny",
        "memory_mb": 512,
        "vcpus": 1,
        "root_gb": 1,
        "ephemeral_gb": 0,
    },
    "m1.small": {
        "id": 2,
        "flavorid": "2",
        "name": "m1.small",
        "memory_mb": 2048,
        "vcpus": 1,
        "root_gb": 20,
        "ephemeral_gb": 0,
    },
    "m1.medium": {
        "id": 3,
        "flavorid": "3",
        "name": "m1.medium",
        "memory_mb": 4096,
        "vcpus": 2,
        "root_gb": 40,
        "ephemeral_gb": 10,
    },
}


class DemoError(Exception):
    """Base of the demo API's own errors; ``safe`` ones show their message."""

    code = 500
    safe = False
    msg_fmt = "An unknown error occurred."

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        super().__init__(self.msg_fmt % kwargs)

    def format_message(self) -> str:
        return self.args[0]


class ServerNotFound(DemoError):
    code = 404
    safe = True
    msg_fmt = "Server %(server_id)s could not be found."


class FlavorNotFound(DemoError):
    code = 400
    safe = True
    msg_fmt = "Flavor %(flavor)s could not be found."


class BuildAbortedError(DemoError):
    msg_fmt = "Build of instance %(instance_uuid)s aborted: %(reason)s"


class DemoComputeAPI:
    """WSGI app: an in-memory compute API that notifies like Nova's."""

    def __init__(
        self, compute_host: str = "demo-compute-1", node: str = "demo-node-1"
    ) -> None:
        self.compute_host = compute_host
        self.node = node
        self.driver = hypervisor.FakeDriver()
        self.servers: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @classmethod
    def factory(cls, global_conf: dict[str, Any], **local_conf: Any) -> DemoComputeAPI:
        """paste.deploy app factory; ``compute_host`` and ``node`` may be set."""
        return cls(**local_conf)

    @webob.dec.wsgify
    def __call__(self, req: webob.Request) -> webob.Response:
        context = oslo_context.RequestContext(
            user_id=req.headers.get("X-User-Id", "demo-user"),
            project_id=req.headers.get("X-Project-Id", "demo-project"),
            request_id=req.environ.get("openstack.request_id"),
        )
        parts = [p for p in req.path_info.split("/") if p]
        if parts == ["crash"]:
            raise RuntimeError("database connection failed: password=s3cr3t")
        if not parts or parts[0] != "servers" or len(parts) > 2:
            raise webob.exc.HTTPNotFound()
        if len(parts) == 1:
            if req.method == "POST":
                return self._boot(context, req.json_body.get("server", {}))
            if req.method == "GET":
                return _json({"servers": [_view(s) for s in self.servers.values()]})
            raise webob.exc.HTTPMethodNotAllowed()
        server_id = parts[1]
        if req.method == "GET":
            return _json({"server": _view(self._get(server_id))})
        if req.method == "DELETE":
            self._delete(context, self._get(server_id))
            return webob.Response(status=204)
        raise webob.exc.HTTPMethodNotAllowed()

    def _get(self, server_id: str) -> dict[str, Any]:
        try:
            return self.servers[server_id]
        except KeyError:
            raise ServerNotFound(server_id=server_id) from None

    def _update(self, context: Any, instance: dict[str, Any], **changes: Any) -> None:
        old = copy.copy(instance)
        instance.update(changes)
        nova_notifier.send_update(context, old, instance, host=self.compute_host)

    def _boot(self, context: Any, body: dict[str, Any]) -> webob.Response:
        flavor_name = body.get("flavorRef", "m1.tiny")
        if flavor_name not in FLAVORS:
            raise FlavorNotFound(flavor=flavor_name)
        index = len(self.servers) + 1
        instance: dict[str, Any] = {
            "uuid": str(uuid.uuid4()),
            "project_id": context.project_id,
            "user_id": context.user_id,
            "display_name": body.get("name", f"server-{index}"),
            "hostname": body.get("name", f"server-{index}"),
            "reservation_id": f"r-{uuid.uuid4().hex[:8]}",
            "flavor": FLAVORS[flavor_name],
            "image_ref": body.get("imageRef", "cirros-0.6.2"),
            "vm_state": vm_states.BUILDING,
            "task_state": task_states.SCHEDULING,
            "availability_zone": "nova",
            "created_at": timeutils.utcnow(),
            "metadata": body.get("metadata", {}),
            "system_metadata": {"image_os_type": "linux", "image_min_disk": "1"},
        }
        with self._lock:
            self.servers[instance["uuid"]] = instance
        # The API accepts the boot ...
        nova_notifier.send_update_with_states(
            context, instance, None, vm_states.BUILDING, None, None, service="api"
        )
        # ... and the compute host builds it.
        self._build(context, instance, index, fail=bool(body.get("fail")))
        return _json({"server": _view(instance)}, status=202)

    def _build(
        self, context: Any, instance: dict[str, Any], index: int, fail: bool
    ) -> None:
        compute = nova_notifier.get_notifier("compute", self.compute_host)
        instance.update(host=self.compute_host, node=self.node)
        nova_notifier.notify_about_instance_usage(
            compute, context, instance, "create.start"
        )
        self._update(context, instance, task_state=task_states.NETWORKING)
        self._update(context, instance, task_state=task_states.SPAWNING)
        try:
            if fail:
                raise BuildAbortedError(
                    instance_uuid=instance["uuid"], reason="no valid host found"
                )
            self.driver.spawn(instance["uuid"], instance["image_ref"], "demo-admin-pw")
        except DemoError as exc:
            self._update(context, instance, vm_state=vm_states.ERROR, task_state=None)
            nova_notifier.notify_about_instance_usage(
                compute, context, instance, "create.error", fault=exc
            )
            return
        instance["launched_at"] = timeutils.utcnow()
        self._update(
            context, instance, vm_state=vm_states.ACTIVE, task_state=None, progress=100
        )
        nova_notifier.notify_about_instance_usage(
            compute,
            context,
            instance,
            "create.end",
            network_info=network_info_for(instance["uuid"], index),
            extra_usage_info={"message": "Success"},
        )

    def _delete(self, context: Any, instance: dict[str, Any]) -> None:
        compute = nova_notifier.get_notifier("compute", self.compute_host)
        self._update(context, instance, task_state=task_states.DELETING)
        nova_notifier.notify_about_instance_usage(
            compute, context, instance, "delete.start"
        )
        nova_notifier.notify_about_instance_usage(
            compute, context, instance, "shutdown.start"
        )
        self.driver.destroy(instance["uuid"])
        nova_notifier.notify_about_instance_usage(
            compute, context, instance, "shutdown.end"
        )
        now = timeutils.utcnow()
        old = copy.copy(instance)
        instance.update(
            vm_state=vm_states.DELETED,
            task_state=None,
            terminated_at=now,
            deleted_at=now,
        )
        nova_notifier.send_update(context, old, instance, host=self.compute_host)
        nova_notifier.notify_about_instance_usage(
            compute, context, instance, "delete.end"
        )
        with self._lock:
            self.servers.pop(instance["uuid"], None)


def _view(instance: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": instance["uuid"],
        "name": instance["display_name"],
        "status": instance["vm_state"],
        "task_state": instance["task_state"],
        "flavor": instance["flavor"]["name"],
        "host": instance.get("host"),
    }


def _json(body: dict[str, Any], status: int = 200) -> webob.Response:
    return webob.Response(
        body=json.dumps(body).encode(), status=status, content_type="application/json"
    )


def network_info_for(instance_uuid: str, index: int) -> list[dict[str, Any]]:
    """A one-NIC network model, shaped like Nova's, for ``fixed_ips``."""
    return [
        {
            "address": f"fa:16:3e:00:00:{index:02x}",
            "network": {
                "label": "private",
                "subnets": [
                    {
                        "ips": [
                            {
                                "address": f"10.0.0.{10 + index}",
                                "type": "fixed",
                                "version": 4,
                                "meta": {},
                                "floating_ips": [],
                            }
                        ]
                    }
                ],
            },
        }
    ]
