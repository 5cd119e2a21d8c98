"""Errors the library raises at start-up or on a direct call.

Emitting helpers never raise these into a caller's request path; they log and
count a drop instead. These are for mistakes a developer or operator should see
at once: a library used before ``init()``, a bad option, a malformed instance.
"""


class NovaNotifierError(Exception):
    """Base class of every error raised by nova_notifier."""


class NotInitializedError(NovaNotifierError, RuntimeError):
    """The library was used before ``nova_notifier.init()`` was called."""

    def __init__(self, what: str = "this call") -> None:
        super().__init__(
            f"nova_notifier is not initialised: call nova_notifier.init() before {what}"
        )


class ConfigError(NovaNotifierError, ValueError):
    """An option has a value the library cannot use; the message names it."""


class InvalidInstanceError(NovaNotifierError, ValueError):
    """An instance is missing a field every notification needs (its uuid)."""


class MonkeyPatchError(NovaNotifierError, ValueError):
    """A ``monkey_patch_modules`` entry is malformed or cannot be imported."""
