"""A demonstration compute API, served by ``etc/api-paste.ini``.

It keeps servers in memory and emits what a Nova-like service emits:

- ``POST /servers`` boots, from a body as a Nova client sends it:
  ``{"server": {"name": ..., "flavorRef": ..., "imageRef": ...}}``, the
  flavor by id (``"1"``), name (``"m1.tiny"``) or URL
  (``http://.../flavors/1``), the image by id or URL
  (``http://.../images/<uuid>``). It emits the API's BUILDING
  ``compute.instance.update`` (publisher ``api.<host>``), then from the
  compute host ``create.start``, task-state updates and ``create.end`` (or,
  with ``"fail": true``, an ERROR update and ``create.error`` with the
  fault). Answers 202; an unknown flavor or a malformed body a 400 fault.
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
from urllib.parse import urlsplit

import webob
import webob.dec
from oslo_context import context as oslo_context
from oslo_utils import timeutils

import nova_notifier
from nova_notifier import task_states, vm_states
from nova_notifier.tools.demo import hypervisor

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


_BY_FLAVOR_ID = {flavor["flavorid"]: flavor for flavor in FLAVORS.values()}
#: the image a boot request without ``imageRef`` gets (cirros, in the demo)
DEFAULT_IMAGE = "5f7b7e1c-8a3d-4c2e-9b6f-0c1d2e3f4a5b"


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


class BadRequest(DemoError):
    code = 400
    safe = True
    msg_fmt = "%(reason)s"


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
                return self._boot(context, _server_of(req))
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
        flavor = find_flavor(body.get("flavorRef", "m1.tiny"))
        image = image_id(body.get("imageRef", DEFAULT_IMAGE))
        name = body.get("name")
        index = len(self.servers) + 1
        instance: dict[str, Any] = {
            "uuid": str(uuid.uuid4()),
            "project_id": context.project_id,
            "user_id": context.user_id,
            "display_name": name if isinstance(name, str) else f"server-{index}",
            "hostname": name if isinstance(name, str) else f"server-{index}",
            "reservation_id": f"r-{uuid.uuid4().hex[:8]}",
            "flavor": flavor,
            "image_ref": image,
            "vm_state": vm_states.BUILDING,
            "task_state": task_states.SCHEDULING,
            "availability_zone": "nova",
            "created_at": timeutils.utcnow(),
            "metadata": body.get("metadata") or {},
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


def _server_of(req: webob.Request) -> dict[str, Any]:
    """The ``server`` object of a boot request; a 400 fault if there is none."""
    try:
        body = json.loads(req.body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep
        raise BadRequest(reason="Malformed request body") from None
    server = body.get("server") if isinstance(body, dict) else None
    if not isinstance(server, dict):
        raise BadRequest(reason="Malformed request body: no 'server' object")
    return server


def _last_segment(ref: str) -> str:
    """``ref`` itself, or the last path segment of a URL (``.../flavors/1``),
    as Nova's ``get_id_from_href`` reads it (``.../flavors/`` names none)."""
    if "/" not in ref:
        return ref
    try:
        path = urlsplit(ref).path
    except ValueError:  # "http://[::1/flavors/1": not a URL, no id in it
        return ""
    return path.rpartition("/")[2]


def find_flavor(ref: Any) -> dict[str, Any]:
    """The flavor a ``flavorRef`` names: its flavor id (``"1"``, or ``1``), its
    name (``"m1.tiny"``), or a URL ending in either; FlavorNotFound (a 400
    fault) for anything else."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        ref = str(ref)
    key = _last_segment(ref) if isinstance(ref, str) else None
    flavor = _BY_FLAVOR_ID.get(key) or FLAVORS.get(key) if key else None
    if flavor is None:
        raise FlavorNotFound(flavor=ref if isinstance(ref, str) else repr(ref))
    return flavor


def image_id(ref: Any) -> str:
    """The image id an ``imageRef`` gives: the id, or the last segment of an
    image URL (``http://glance/images/<uuid>``); a 400 fault if there is none."""
    key = _last_segment(ref) if isinstance(ref, str) else ""
    if not key:
        raise BadRequest(reason="Invalid imageRef provided.")
    return key


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
