"""nova_notifier: Nova's notification contract, without Nova.

Call :func:`init` once with your ``oslo_config`` configuration, then emit with
the helpers below. Helpers that emit never raise into the caller: failures are
logged and counted (see :func:`stats`).

The names below are loaded on first use, so a tool that needs none of them
(``nova-notifier latency --from FILE``) starts without importing
oslo.messaging. The ``nova-notifier`` command lives in
:mod:`nova_notifier.tools`, which the library never imports; the tools use
only the names below.
"""

import importlib
import warnings
from typing import TYPE_CHECKING, Any

# oslo.messaging imports eventlet, whose import warns that eventlet is
# deprecated. This library never uses eventlet; silence just that message.
warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")

if TYPE_CHECKING:
    from nova_notifier import schemas, task_states, vm_states
    from nova_notifier._settings import PRIORITIES
    from nova_notifier.api_fault import send_api_fault
    from nova_notifier.audit import audit_period_bounds, last_completed_audit_period
    from nova_notifier.dead_letter import dead_letters, requeue_dead_letters
    from nova_notifier.decorator import notify_decorator
    from nova_notifier.drivers import driver_stats, flush_drivers
    from nova_notifier.exceptions import (
        ConfigError,
        InvalidInstanceError,
        MonkeyPatchError,
        NotInitializedError,
        NovaNotifierError,
    )
    from nova_notifier.faultwrap import FaultWrapper
    from nova_notifier.lifecycle import (
        cleanup,
        init,
        is_initialized,
        refresh,
        register_opts,
        stats,
        transport,
    )
    from nova_notifier.masking import is_secret_key
    from nova_notifier.monkey import monkey_patch, undo_monkey_patch
    from nova_notifier.notifier import Notifier, get_notifier
    from nova_notifier.opts import list_opts
    from nova_notifier.payload import exception_to_dict, image_meta, info_from_instance
    from nova_notifier.updates import send_update, send_update_with_states
    from nova_notifier.usage import notify_about_instance_usage, notify_usage_exists
    from nova_notifier.versioned.send import notify_about_instance_action

# Where each public name lives: name -> module of this package.
_HOMES = {
    "schemas": "schemas",
    "task_states": "task_states",
    "vm_states": "vm_states",
    "send_api_fault": "api_fault",
    "PRIORITIES": "_settings",
    "audit_period_bounds": "audit",
    "last_completed_audit_period": "audit",
    "dead_letters": "dead_letter",
    "requeue_dead_letters": "dead_letter",
    "notify_decorator": "decorator",
    "driver_stats": "drivers",
    "flush_drivers": "drivers",
    "ConfigError": "exceptions",
    "InvalidInstanceError": "exceptions",
    "MonkeyPatchError": "exceptions",
    "NotInitializedError": "exceptions",
    "NovaNotifierError": "exceptions",
    "FaultWrapper": "faultwrap",
    "is_secret_key": "masking",
    "monkey_patch": "monkey",
    "undo_monkey_patch": "monkey",
    "Notifier": "notifier",
    "cleanup": "lifecycle",
    "get_notifier": "notifier",
    "init": "lifecycle",
    "is_initialized": "lifecycle",
    "register_opts": "lifecycle",
    "stats": "lifecycle",
    "refresh": "lifecycle",
    "transport": "lifecycle",
    "list_opts": "opts",
    "exception_to_dict": "payload",
    "image_meta": "payload",
    "info_from_instance": "payload",
    "send_update": "updates",
    "send_update_with_states": "updates",
    "notify_about_instance_usage": "usage",
    "notify_about_instance_action": "versioned.send",
    "notify_usage_exists": "usage",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name, name)
    try:
        module = importlib.import_module(f"{__name__}.{home}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{home}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = module if home == name else getattr(module, name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))


__all__ = [
    "ConfigError",
    "FaultWrapper",
    "InvalidInstanceError",
    "MonkeyPatchError",
    "NotInitializedError",
    "Notifier",
    "NovaNotifierError",
    "PRIORITIES",
    "audit_period_bounds",
    "cleanup",
    "dead_letters",
    "driver_stats",
    "exception_to_dict",
    "flush_drivers",
    "get_notifier",
    "image_meta",
    "info_from_instance",
    "init",
    "is_initialized",
    "is_secret_key",
    "last_completed_audit_period",
    "list_opts",
    "monkey_patch",
    "notify_about_instance_action",
    "notify_about_instance_usage",
    "notify_decorator",
    "notify_usage_exists",
    "refresh",
    "register_opts",
    "requeue_dead_letters",
    "schemas",
    "send_api_fault",
    "send_update",
    "send_update_with_states",
    "stats",
    "task_states",
    "transport",
    "undo_monkey_patch",
    "vm_states",
]
