"""Every option of the library, for ``register_opts`` and oslo-config-generator."""

from __future__ import annotations

from typing import Any


def list_opts() -> list[tuple[str, list[Any]]]:
    """``[(group, [opts])]`` as the ``oslo.config.opts`` entry point expects."""
    from nova_notifier import (
        api_fault,
        audit,
        decorator,
        monkey,
        notifier,
        payload,
        updates,
    )

    return [
        ("DEFAULT", notifier.OPTS + audit.OPTS + monkey.OPTS),
        (
            "notifications",
            updates.OPTS + api_fault.OPTS + decorator.OPTS + payload.OPTS,
        ),
    ]
