"""Every option of the library, for ``register_opts`` and oslo-config-generator.

The options live in leaf modules (:mod:`nova_notifier.conf`, and the
delivery tuning options with the sender); this module only lists them.
"""

from __future__ import annotations

import copy
from typing import Any

from nova_notifier import delivery
from nova_notifier.conf import default, notifications


def list_opts() -> list[tuple[str, list[Any]]]:
    """``[(group, [opts])]`` as the ``oslo.config.opts`` entry point expects.

    The options are copies: changing one changes nothing in the library.
    """
    groups: list[tuple[str, list[Any]]] = [
        ("DEFAULT", default.OPTS),
        ("notifications", notifications.OPTS + delivery.MODE_OPTS),
        (delivery.GROUP, delivery.OPTS),
    ]
    return copy.deepcopy(groups)


def _default_text(opt: Any) -> str:
    default = opt.sample_default if opt.sample_default is not None else opt.default
    if default is None:
        return "(unset)"
    if isinstance(default, list):
        return ", ".join(str(item) for item in default) or "(empty)"
    return str(default)


def _deprecated_text(opt: Any) -> str:
    return ", ".join(
        f"[{dep.group or 'DEFAULT'}] {dep.name or opt.name}"
        for dep in opt.deprecated_opts
    )


def options_markdown() -> str:
    """The README's options table, generated from :func:`list_opts`."""
    rows = [
        "| section | option | type | default | also read as | what it does |",
        "|---|---|---|---|---|---|",
    ]
    for group, group_opts in list_opts():
        for opt in group_opts:
            help_text = " ".join(opt.help.split()).replace("|", "\\|")
            choices = getattr(opt.type, "choices", None)
            if choices:
                listed = ", ".join(f"`{c}`" if c else "(unset)" for c in choices)
                help_text += f" Choices: {listed}."
            rows.append(
                f"| [{group}] | `{opt.name}` | {opt.type.type_name} | "
                f"`{_default_text(opt)}` | {_deprecated_text(opt)} | {help_text} |"
            )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(options_markdown(), end="")
