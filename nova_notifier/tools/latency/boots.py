"""One instance's events, in time order, cut into boots, rebuilds and deletes.

A boot is what one acceptance by the API leads to: one or more attempts on
compute hosts (a create.error followed by another create.start is a
reschedule of the same boot), ending in create.end, a final create.error, a
delete, or nothing yet. Several boots of one instance (a rebuild, or the
same uuid booted again) each get their own record.

Times come from different hosts' clocks. The API's acceptance is compared
with a compute host's create.start only to report clock skew: an
acceptance stamped after the create.start it led to still belongs to that
boot, and the boot is marked skewed instead of getting a negative wait.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from nova_notifier.tools.latency import events as ev


@dataclass(slots=True)
class Attempt:
    """One try on one compute host: start and end as that host stamped them."""

    host: str
    start: float | None = None
    end: float | None = None
    failed: bool = False
    fault: str = ""


@dataclass(slots=True)
class Boot:
    """A create (or rebuild) of one instance, from acceptance to its outcome.

    The figures (``outcome`` to ``failed_after``) are set by :meth:`settle`,
    which :func:`segment` calls before it returns the boot. Durations are
    seconds, ``None`` when they cannot be measured.
    """

    instance: str
    operation: str  # "create" or "rebuild"
    accepted: float | None = None  # the API's BUILDING update
    api_host: str = ""
    first_seen: float | None = None  # earliest event of this boot of any kind
    attempts: list[Attempt] = field(default_factory=list)
    finished: bool = False  # ended by create.end/rebuild.end or a delete
    deleted: bool = False
    #: ``succeeded``, ``failed``, ``deleted`` (while building) or ``building``
    outcome: str = "building"
    #: acceptance by the API, else the first event seen of this boot
    origin: float | None = None
    #: the first attempt's create.start
    start: float | None = None
    #: how much earlier create.start is stamped than its acceptance (> 0)
    skew: float | None = None
    #: acceptance (or an earlier event) to the first create.start
    waiting: float | None = None
    #: create.start to create.end of the attempt that succeeded
    spawning: float | None = None
    #: acceptance to create.end, for a boot that succeeded
    total: float | None = None
    #: acceptance to the final create.error, for a boot that failed
    failed_after: float | None = None

    @property
    def host(self) -> str:
        """The compute host of the last attempt ('' before any)."""
        return self.attempts[-1].host if self.attempts else ""

    def _seen(self, when: float) -> None:
        if self.first_seen is None or when < self.first_seen:
            self.first_seen = when

    def settle(self) -> None:
        """Work out the figures from the events collected."""
        last = self.attempts[-1] if self.attempts else None
        if last is not None and last.failed:
            self.outcome = "failed"
        elif last is not None and last.end is not None:
            self.outcome = "succeeded"
        else:
            self.outcome = "deleted" if self.deleted else "building"
        accepted = self.accepted
        origin = self.origin = accepted if accepted is not None else self.first_seen
        start = self.start = self.attempts[0].start if self.attempts else None
        if last is not None and not last.failed and last.start is not None:
            if last.end is not None:  # one host's clock: skew does not matter
                self.spawning = last.end - last.start
        if accepted is not None and start is not None and start < accepted:
            self.skew = accepted - start
            return  # waiting and total would carry the hosts' clock offset
        if origin is None:
            return
        if start is not None and (accepted is not None or origin < start):
            self.waiting = start - origin
        end = last.end if last is not None else None
        if end is not None and (accepted is not None or origin < end):
            if self.outcome == "succeeded":
                self.total = end - origin
            elif self.outcome == "failed":
                self.failed_after = end - origin


@dataclass(slots=True)
class Delete:
    """delete.start to delete.end of one instance."""

    instance: str
    host: str
    start: float | None = None
    end: float | None = None

    @property
    def duration(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return self.end - self.start


_STARTS = {ev.CREATE_START: "create", ev.REBUILD_START: "rebuild"}
_ENDS = {
    ev.CREATE_END: ("create", False),
    ev.CREATE_ERROR: ("create", True),
    ev.REBUILD_END: ("rebuild", False),
    ev.REBUILD_ERROR: ("rebuild", True),
}


def reordered(events: Iterable[ev.Event]) -> int:
    """How many events arrived after one stamped later than them."""
    latest = float("-inf")
    late = 0
    for event in events:
        if event[0] < latest:
            late += 1
        else:
            latest = event[0]
    return late


def segment(instance: str, events: list[ev.Event]) -> tuple[list[Boot], list[Delete]]:
    """The boots and deletes of one instance's events, given in time order.

    ``sorted(events)`` is time order: ties keep the order of the kinds.
    """
    boots: list[Boot] = []
    deletes: list[Delete] = []
    cur: Boot | None = None

    def new(operation: str) -> Boot:
        boot = Boot(instance, operation)
        boots.append(boot)
        return boot

    for when, kind, host, detail in events:
        if kind == ev.ACCEPTED:
            if (
                cur is not None
                and cur.operation == "create"
                and cur.accepted is None
                and not cur.deleted
            ):
                pass  # its compute events are stamped earlier: clock skew
            else:
                cur = new("create")
            cur.accepted = when
            cur.api_host = host
            cur._seen(when)
        elif kind == ev.BUILDING or kind == ev.REBUILDING:
            operation = "create" if kind == ev.BUILDING else "rebuild"
            if cur is None or cur.finished or cur.operation != operation:
                cur = new(operation)
            cur._seen(when)
        elif kind in _STARTS:
            operation = _STARTS[kind]
            if cur is None or cur.finished or cur.operation != operation:
                cur = new(operation)
            last = cur.attempts[-1] if cur.attempts else None
            if last is not None and last.end is None and last.host == host:
                last.start = when if last.start is None else min(last.start, when)
            else:  # the first attempt, or a reschedule after an error
                cur.attempts.append(Attempt(host, start=when))
            cur._seen(when)
        elif kind in _ENDS:
            operation, failed = _ENDS[kind]
            if cur is None or cur.finished or cur.operation != operation:
                cur = new(operation)
            last = cur.attempts[-1] if cur.attempts else None
            if last is None or last.end is not None:
                last = Attempt(host)  # its start was never seen
                cur.attempts.append(last)
            last.end = when
            last.failed = failed
            last.fault = detail
            cur.finished = not failed  # an error may still be rescheduled
            cur._seen(when)
        elif kind == ev.DELETE_START:
            deletes.append(Delete(instance, host, start=when))
            if cur is not None and not cur.finished:
                cur.finished = True
                cur.deleted = True
        elif kind == ev.DELETE_END:
            if deletes and deletes[-1].end is None:
                deletes[-1].end = when
            else:
                deletes.append(Delete(instance, host, end=when))
            if cur is not None and not cur.finished:
                cur.finished = True
                cur.deleted = True
    for boot in boots:
        boot.settle()
    return boots, deletes
