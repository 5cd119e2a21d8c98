"""Nova's VM states: the ``state`` / ``old_state`` values of instance payloads."""

ACTIVE = "active"
BUILDING = "building"
PAUSED = "paused"
SUSPENDED = "suspended"
STOPPED = "stopped"
RESCUED = "rescued"
RESIZED = "resized"
SOFT_DELETED = "soft-delete"
DELETED = "deleted"
ERROR = "error"
SHELVED = "shelved"
SHELVED_OFFLOADED = "shelved_offloaded"

ALL = (
    ACTIVE,
    BUILDING,
    PAUSED,
    SUSPENDED,
    STOPPED,
    RESCUED,
    RESIZED,
    SOFT_DELETED,
    DELETED,
    ERROR,
    SHELVED,
    SHELVED_OFFLOADED,
)
