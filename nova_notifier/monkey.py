"""``monkey_patch``: wrap whole modules with a decorator, from configuration.

Reads ``[DEFAULT] monkey_patch`` and ``monkey_patch_modules``.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from oslo_config import cfg

from nova_notifier import lifecycle
from nova_notifier._log import get_logger
from nova_notifier.conf.default import split_monkey_entry as _split
from nova_notifier.exceptions import MonkeyPatchError

LOG = get_logger(__name__)

_LOCK = threading.Lock()
# Hooks Python calls implicitly (as static or class methods, or on every
# attribute access); wrapping them would change how the class works.
_NEVER_WRAPPED = frozenset(
    ("__new__", "__init_subclass__", "__class_getitem__", "__getattribute__")
)

Decorator = Callable[[str, Callable[..., Any]], Callable[..., Any]]

# (module name, id of the decorator) -> the decorator (kept so the id stays
# its own): one decorator is applied once per module, whatever path names it.
_APPLIED: dict[tuple[str, int], Decorator] = {}
_PATCHES: list[tuple[Any, str, Any]] = []


def _resolve(entry: str) -> tuple[ModuleType, str, Decorator]:
    module_name, decorator_path = _split(entry)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MonkeyPatchError(
            f"monkey_patch_modules entry {entry!r}: cannot import module "
            f"{module_name!r}: {exc}"
        ) from exc
    owner_name, _, attr = decorator_path.rpartition(".")
    try:
        decorator = getattr(importlib.import_module(owner_name), attr)
    except (ImportError, AttributeError) as exc:
        raise MonkeyPatchError(
            f"monkey_patch_modules entry {entry!r}: cannot import decorator "
            f"{decorator_path!r}: {exc}"
        ) from exc
    if not callable(decorator):
        raise MonkeyPatchError(
            f"monkey_patch_modules entry {entry!r}: {decorator_path!r} is not callable"
        )
    return module, decorator_path, decorator


def _replace(owner: Any, attr: str, new: Any) -> None:
    _PATCHES.append((owner, attr, owner.__dict__[attr]))
    setattr(owner, attr, new)


def _wrap_member(raw: Any, name: str, decorator: Decorator) -> Any:
    """The wrapped form of a class attribute, or None when it is no method."""
    if isinstance(raw, staticmethod):
        return staticmethod(decorator(name, raw.__func__))
    if isinstance(raw, classmethod):
        return classmethod(decorator(name, raw.__func__))
    if inspect.isfunction(raw):
        return decorator(name, raw)
    return None


def _patch_module(module: ModuleType, decorator: Decorator) -> int:
    prefix = module.__name__
    count = 0
    seen_classes: set[int] = set()
    for attr, value in list(vars(module).items()):
        if getattr(value, "__module__", None) != prefix:
            continue  # imported from elsewhere
        if inspect.isfunction(value):
            _replace(module, attr, decorator(f"{prefix}.{attr}", value))
            count += 1
        elif inspect.isclass(value) and id(value) not in seen_classes:
            seen_classes.add(id(value))
            for member, raw in list(vars(value).items()):
                if member in _NEVER_WRAPPED:
                    continue
                wrapped = _wrap_member(
                    raw, f"{prefix}.{value.__name__}.{member}", decorator
                )
                if wrapped is not None:
                    _replace(value, member, wrapped)
                    count += 1
    return count


def monkey_patch(conf: cfg.ConfigOpts | None = None) -> int:
    """Apply ``monkey_patch_modules`` when ``[DEFAULT] monkey_patch`` is true.

    Every function and every method (plain, static or class) defined in each
    listed module, not imported into it, is replaced by
    ``decorator("<module>.<Class>.<method>", fn)``, dunder methods such as
    ``__init__`` included (not ``__new__``, ``__init_subclass__``,
    ``__class_getitem__`` or ``__getattribute__``); properties are left
    alone. An entry already applied is skipped, so a second call wraps
    nothing twice. Every entry is checked before anything is patched: a
    malformed or unimportable one raises ``MonkeyPatchError`` naming it.
    Returns how many functions and methods were wrapped by this call.
    """
    if conf is None:
        conf = lifecycle.get_conf() if lifecycle.is_initialized() else cfg.CONF
    lifecycle.register_opts(conf)
    if not conf.monkey_patch:
        return 0
    resolved = [_resolve(entry) for entry in conf.monkey_patch_modules]
    count = 0
    with _LOCK:
        for module, _decorator_path, decorator in resolved:
            key = (module.__name__, id(decorator))
            if key in _APPLIED:
                continue
            count += _patch_module(module, decorator)
            _APPLIED[key] = decorator
    LOG.info("nova_notifier: monkey-patched %d functions and methods", count)
    return count


def undo_monkey_patch() -> None:
    """Put back everything ``monkey_patch()`` replaced, newest first."""
    with _LOCK:
        while _PATCHES:
            owner, attr, original = _PATCHES.pop()
            setattr(owner, attr, original)
        _APPLIED.clear()
