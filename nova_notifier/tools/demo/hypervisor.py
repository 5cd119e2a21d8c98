"""A pretend hypervisor driver: the module the demo monkey-patches.

With ``monkey_patch_modules = nova_notifier.tools.demo.hypervisor:
nova_notifier.notify_decorator`` every call below emits a notification named
after it, e.g. ``nova_notifier.tools.demo.hypervisor.FakeDriver.spawn``.
"""

from __future__ import annotations


class FakeDriver:
    """Spawns and destroys nothing, instantly."""

    def spawn(self, instance_uuid: str, image_ref: str, admin_password: str) -> str:
        """Pretend to boot; returns the power state."""
        return "running"

    def destroy(self, instance_uuid: str) -> None:
        """Pretend to remove the guest."""

    @staticmethod
    def get_available_nodes() -> list[str]:
        return ["demo-node-1"]
