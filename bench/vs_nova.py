"""The library against Nova's own legacy emit path, in one process (issue 11).

Run from the repository root::

    .venv/bin/python bench/vs_nova.py           # 15 rounds x 2000 calls a variant
    .venv/bin/python bench/vs_nova.py --quick   # 3 rounds x 1500 calls

Every variant below emits the same ``compute.instance.*`` notification about
the same Nova-like instance (``_common.make_instance`` with about 800 bytes of
user metadata: a payload of about 2 KB as JSON) and request context (with a
token), timed call by call. Direct variants go through a real
``oslo_messaging.Notifier`` with oslo.messaging's ``test`` driver, which
keeps each message in a list: the whole build and emit runs (with ``noop``
the library builds nothing), no transport or broker is involved. The run
counts the test driver's messages and fails its checks unless every call
produced exactly one.

Baselines (written for this bench from Nova's documented behaviour,
``/work/shared/reference/nova-legacy-notifications.md``, not Nova's code):

``raw Notifier.info``
    ``Notifier.info(ctxt, 'compute.instance.create.end', payload)`` of a
    prebuilt, already JSON-safe payload, no serializer: oslo.messaging's own
    cost (context redaction, message id, timestamp, driver dispatch).
``Nova-style create.end``
    What Nova's legacy ``notify_about_instance_usage`` did on every call:
    ``info_from_instance`` (flavor fields, ``disk_gb``, ``image_meta`` from
    the ``image_*`` system metadata, ``created_at`` with ``str()``, the other
    times with ``strftime('%Y-%m-%dT%H:%M:%S.%f')``, ``image_ref_url`` from
    three ``[glance]`` options read from oslo.config, the metadata dict,
    ``fixed_ips`` only with network_info) and ``notifier.info`` on a
    notifier prepared once with ``compute.<host>``, whose serializer does
    what Nova's did: ``to_primitive(payload, convert_instances=True)``
    (oslo.serialization; datetimes become ``'%Y-%m-%dT%H:%M:%S.%f'`` text)
    and ``context.to_dict()``. No masking: Nova's legacy notification path
    never called ``mask_password`` (its versioned ``ExceptionPayload`` still
    carries a TODO to add it), and these events carry no fault text anyway.
``Nova-style send_update``
    Nova's ``send_update`` of a task-state transition: ``notify_on_state_change``
    read from oslo.config (twice, as Nova did), ``info_from_instance``, the
    four states, the current audit period computed on every call
    (``instance_usage_audit_period`` read from oslo.config, ``utcnow()``),
    ``bandwidth`` ``{}`` (Nova read it from its database; left out), and
    ``get_notifier(service, host)`` (``Notifier.prepare``) then ``info``.
``Nova-style create.end, no to_primitive (reference)``
    Not a baseline of any target: the Nova-style ``create.end`` with a
    serializer that passes the payload through (only ``context.to_dict()``).
    It shows how much of the baseline is oslo.serialization's
    ``to_primitive``, i.e. how the verdicts would move against a baseline
    that skipped it.

The library, through its public API, ``delivery_mode = direct``,
``[oslo_messaging_notifications] driver = test``, one ``init()`` per round:

``library create.end``
    ``notify_about_instance_usage(compute, ctxt, instance, 'create.end')``.
``library send_update``
    ``send_update(ctxt, old, new)`` of the same task-state transition under
    ``notify_on_state_change = vm_and_task_state``.
``library send_update disabled``
    ``send_update`` with ``notify_on_state_change`` unset (nothing is built;
    api faults are off by default).
``library create.end background``
    ``create.end`` with ``delivery_mode = background`` (``messagingv2`` on
    ``fake://``, as background needs), the sender thread running: the
    caller's wall time and its own thread CPU time (``time.thread_time_ns``
    around each call). The sender shares the GIL with the caller, so it
    shows in the wall figure but not in the thread time.
``library create.end direct, thread time read``
    ``create.end`` direct, timed the same way (wall and thread time): what
    the caller's CPU time is without a sender thread beside it.

The targets of issue 11 this script covers are printed as figure, target,
ratio and MET/MISS. A ratio is the median over the interleaved rounds of
the library's p50 over the baseline's p50 in the same round
(``bench.paired_ratio``); the first table's ``x raw`` column is the ratio of
the medians. FaultWrapper's targets are measured by
``bench/faultwrap_overhead.py``, delivery to RabbitMQ by
``bench/throughput.py``. A payload check compares the keys of the
Nova-style payloads and the library's for the same instance.
``bench/results/vs_nova.json`` holds every round's figures and the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import _common as bench
import oslo_messaging
from oslo_config import cfg
from oslo_utils import timeutils

import nova_notifier

NAME = "vs_nova"
HOST = "compute-17"
USAGE_EVENT = "compute.instance.create.end"
UPDATE_EVENT = "compute.instance.update"
METADATA_BYTES = 800  # a create.end payload of about 2 KB
# Many short rounds: another process on the 2 shared cores slows everything
# by up to 1.6x for seconds at a time; short rounds make such a phase hit
# both sides of a pair (see bench.paired_ratio) more often.
ROUNDS = 15

CONTEXT = bench.make_context()
OLD = bench.make_instance(METADATA_BYTES, vm_state="active", task_state=None)
NEW = bench.make_instance(METADATA_BYTES, vm_state="active", task_state="powering-off")
INSTANCE = OLD

RAW = "raw Notifier.info (prebuilt payload)"
NOVA_USAGE = "Nova-style create.end"
NOVA_UPDATE = "Nova-style send_update transition"
NOVA_NO_PRIMITIVE = "Nova-style create.end, no to_primitive (reference)"
LIB_USAGE = "library create.end direct"
LIB_UPDATE = "library send_update transition direct"
LIB_DISABLED = "library send_update disabled"
LIB_BACKGROUND = "library create.end background"
LIB_DIRECT_TIMED = "library create.end direct, thread time read"
THREAD_TIMED = (LIB_BACKGROUND, LIB_DIRECT_TIMED)


# -- the Nova-style baseline ----------------------------------------------------

NOVA_OPTS = [
    cfg.StrOpt("host", default=HOST),
    cfg.StrOpt("notify_on_state_change", default="vm_and_task_state"),
    cfg.StrOpt("instance_usage_audit_period", default="month"),
]
GLANCE_OPTS = [
    cfg.StrOpt("protocol", default="http"),
    cfg.StrOpt("host", default="127.0.0.1"),
    cfg.IntOpt("port", default=9292),
]
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


def nova_conf() -> cfg.ConfigOpts:
    """The options Nova's legacy path read on every call."""
    conf = cfg.ConfigOpts()
    conf.register_opts(NOVA_OPTS)
    conf.register_opts(GLANCE_OPTS, group="glance")
    conf([], project="bench", default_config_files=[])
    return conf


class NovaStyleSerializer(oslo_messaging.JsonPayloadSerializer):
    """What Nova's ``RequestContextSerializer(JsonPayloadSerializer())`` did:
    payloads through ``to_primitive(..., convert_instances=True)``, contexts
    as ``to_dict()``."""

    def serialize_context(self, ctxt: Any) -> Any:
        to_dict = getattr(ctxt, "to_dict", None)
        return to_dict() if callable(to_dict) else ctxt


class ContextOnlySerializer(NovaStyleSerializer):
    """The reference row: Nova's serializer without ``to_primitive``."""

    def serialize_entity(self, ctxt: Any, entity: Any) -> Any:
        return entity


def _null_safe_text(value: Any) -> str:
    return "" if value is None else str(value)


def _null_safe_time(value: Any) -> str:
    return value.strftime(TIME_FORMAT) if value else ""


def nova_info_from_instance(
    conf: cfg.ConfigOpts,
    instance: Mapping[str, Any],
    network_info: Iterable[Mapping[str, Any]] | None = None,
    system_metadata: Mapping[str, Any] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """Nova's legacy instance payload, by the reference's rules."""
    flavor = instance["flavor"]
    if system_metadata is None:
        system_metadata = instance["system_metadata"]
    glance = conf.glance
    image_ref_url = (
        f"{glance.protocol}://{glance.host}:{glance.port}/images/"
        f"{instance['image_ref']}"
    )
    progress = instance.get("progress")
    access_v4, access_v6 = instance.get("access_ip_v4"), instance.get("access_ip_v6")
    info = {
        "tenant_id": instance["project_id"],
        "user_id": instance["user_id"],
        "instance_id": instance["uuid"],
        "display_name": instance["display_name"],
        "reservation_id": instance["reservation_id"],
        "hostname": instance["hostname"],
        "instance_type": flavor.get("name", ""),
        "instance_type_id": flavor["id"],
        "instance_flavor_id": flavor.get("flavorid", ""),
        "architecture": instance["architecture"],
        "memory_mb": flavor["memory_mb"],
        "disk_gb": flavor["root_gb"] + flavor["ephemeral_gb"],
        "vcpus": flavor["vcpus"],
        "root_gb": flavor["root_gb"],
        "ephemeral_gb": flavor["ephemeral_gb"],
        "host": instance["host"],
        "node": instance["node"],
        "availability_zone": instance["availability_zone"],
        "cell_name": _null_safe_text(instance.get("cell_name")),
        "created_at": str(instance["created_at"]),
        "terminated_at": _null_safe_time(instance.get("terminated_at")),
        "deleted_at": _null_safe_time(instance.get("deleted_at")),
        "launched_at": _null_safe_time(instance.get("launched_at")),
        "image_ref_url": image_ref_url,
        "os_type": instance["os_type"],
        "kernel_id": instance["kernel_id"],
        "ramdisk_id": instance["ramdisk_id"],
        "state": instance["vm_state"],
        "state_description": _null_safe_text(instance.get("task_state")),
        "progress": int(progress) if progress else "",
        "access_ip_v4": None if access_v4 is None else str(access_v4),
        "access_ip_v6": None if access_v6 is None else str(access_v6),
    }
    if network_info is not None:
        info["fixed_ips"] = [
            {**ip, "label": vif["network"]["label"], "vif_mac": vif["address"]}
            for vif in network_info
            for subnet in vif["network"]["subnets"]
            for ip in subnet["ips"]
        ]
    info["image_meta"] = {
        key[6:]: value
        for key, value in system_metadata.items()
        if key.startswith("image_")
    }
    info["metadata"] = instance["metadata"]
    info.update(kw)
    return info


def _months_before(moment: datetime.datetime, months: int) -> datetime.datetime:
    index = moment.year * 12 + moment.month - 1 - months
    return moment.replace(year=index // 12, month=index % 12 + 1)


def nova_last_completed_audit_period(
    conf: cfg.ConfigOpts,
) -> tuple[datetime.datetime, datetime.datetime]:
    """The reference's audit period rule, recomputed from the option each call."""
    unit, _, offset_text = conf.instance_usage_audit_period.partition("@")
    offset = int(offset_text or 0)
    now = timeutils.utcnow()
    if unit == "hour":
        end = now.replace(minute=offset, second=0, microsecond=0)
        step = datetime.timedelta(hours=1)
    elif unit == "day":
        end = now.replace(hour=offset, minute=0, second=0, microsecond=0)
        step = datetime.timedelta(days=1)
    elif unit == "month":
        end = now.replace(day=offset or 1, hour=0, minute=0, second=0, microsecond=0)
        if end > now:
            end = _months_before(end, 1)
        return _months_before(end, 1), end
    else:  # year
        end = datetime.datetime(now.year, offset or 1, 1)
        if end > now:
            end = end.replace(year=end.year - 1)
        return end.replace(year=end.year - 1), end
    if end > now:
        end -= step
    return end - step, end


class NovaStyle:
    """Nova's legacy emit path on one oslo.messaging ``Notifier`` (test driver)."""

    def __init__(self, serializer: oslo_messaging.Serializer | None = None) -> None:
        self.conf = nova_conf()
        self.transport = oslo_messaging.get_notification_transport(
            bench.make_conf("direct", driver="test")
        )
        self.base = oslo_messaging.Notifier(
            self.transport,
            driver="test",
            topics=["notifications"],
            serializer=NovaStyleSerializer() if serializer is None else serializer,
        )
        # Nova's compute manager prepared its notifier once.
        self.compute = self.base.prepare(publisher_id=f"compute.{self.conf.host}")

    def close(self) -> None:
        self.transport.cleanup()

    def notify_about_instance_usage(
        self, context: Any, instance: Mapping[str, Any], event_suffix: str
    ) -> None:
        payload = nova_info_from_instance(self.conf, instance)
        method = (
            self.compute.error if event_suffix.endswith("error") else self.compute.info
        )
        method(context, "compute.instance." + event_suffix, payload)

    def send_update(
        self,
        context: Any,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        service: str = "compute",
        host: str | None = None,
    ) -> None:
        if not self.conf.notify_on_state_change:
            return
        old_vm, new_vm = old["vm_state"], new["vm_state"]
        old_task, new_task = old["task_state"], new["task_state"]
        transition = old_vm != new_vm or (
            self.conf.notify_on_state_change.lower() == "vm_and_task_state"
            and old_task != new_task
        )
        if not transition:
            raise NotImplementedError("the bench only measures transitions")
        payload = self.update_payload(context, new, old_vm, new_vm, old_task, new_task)
        notifier = self.base.prepare(publisher_id=f"{service}.{host or self.conf.host}")
        notifier.info(context, UPDATE_EVENT, payload)

    def update_payload(
        self,
        context: Any,
        instance: Mapping[str, Any],
        old_vm: Any,
        new_vm: Any,
        old_task: Any,
        new_task: Any,
    ) -> dict[str, Any]:
        payload = nova_info_from_instance(self.conf, instance)
        # As Nova did, a state that is None becomes the instance's current
        # one (so a task starting from none shows the new task as the old).
        payload.update(
            old_state=old_vm or instance["vm_state"],
            state=new_vm or instance["vm_state"],
            old_task_state=old_task or instance["task_state"],
            new_task_state=new_task or instance["task_state"],
        )
        _, period_end = nova_last_completed_audit_period(self.conf)
        payload["audit_period_beginning"] = period_end
        payload["audit_period_ending"] = timeutils.utcnow()
        payload["bandwidth"] = {}
        return payload


# -- the variants -----------------------------------------------------------------


@dataclasses.dataclass
class Checks:
    """Notifications counted per round, and anything that looked wrong."""

    counts: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    problems: list[str] = dataclasses.field(default_factory=list)

    def expect(self, name: str, produced: int, expected: int) -> None:
        self.counts.setdefault(name, []).append(produced)
        if produced != expected:
            self.problems.append(
                f"{name}: {produced} notifications for {expected} expected"
            )


@dataclasses.dataclass(frozen=True)
class Sizes:
    calls: int
    warmup: int


class Counter:
    """``between`` for :func:`bench.time_calls`: counts and forgets the test
    driver's messages."""

    def __init__(self) -> None:
        bench.take_test_notifications()
        self.count = 0

    def __call__(self) -> None:
        self.count += bench.take_test_notifications()


def timed_test_driver(
    name: str, call: Callable[[], None], sizes: Sizes, checks: Checks, sends: bool
) -> bench.Latency:
    counter = Counter()
    samples = bench.time_calls(call, sizes.calls, warmup=sizes.warmup, between=counter)
    counter()
    checks.expect(name, counter.count, sizes.calls + sizes.warmup if sends else 0)
    return bench.latency(samples)


def run_raw(payload: dict[str, Any], sizes: Sizes, checks: Checks) -> bench.Latency:
    transport = oslo_messaging.get_notification_transport(
        bench.make_conf("direct", driver="test")
    )
    raw = oslo_messaging.Notifier(
        transport,
        publisher_id=f"compute.{HOST}",
        driver="test",
        topics=["notifications"],
    )
    try:
        return timed_test_driver(
            RAW,
            lambda: raw.info(CONTEXT, USAGE_EVENT, payload),
            sizes,
            checks,
            True,
        )
    finally:
        transport.cleanup()


def run_nova(name: str, sizes: Sizes, checks: Checks) -> bench.Latency:
    nova = NovaStyle(ContextOnlySerializer() if name == NOVA_NO_PRIMITIVE else None)
    call: Callable[[], None]
    if name != NOVA_UPDATE:
        call = functools.partial(
            nova.notify_about_instance_usage, CONTEXT, INSTANCE, "create.end"
        )
    else:
        call = functools.partial(nova.send_update, CONTEXT, OLD, NEW)
    try:
        return timed_test_driver(name, call, sizes, checks, True)
    finally:
        nova.close()


def run_library(name: str, sizes: Sizes, checks: Checks) -> bench.Latency:
    state_change = "" if name == LIB_DISABLED else "vm_and_task_state"
    bench.init_library("direct", driver="test", notify_on_state_change=state_change)
    call: Callable[[], None]
    if name == LIB_USAGE:
        call = bench.usage_call(CONTEXT, INSTANCE, HOST)
    else:
        call = functools.partial(nova_notifier.send_update, CONTEXT, OLD, NEW)
    try:
        return timed_test_driver(name, call, sizes, checks, name != LIB_DISABLED)
    finally:
        stats = bench.close_library()
        if stats["dropped"]:
            checks.problems.append(f"{name}: stats() said {stats}")


@dataclasses.dataclass(frozen=True)
class WallAndThread:
    wall: bench.Latency
    thread: bench.Latency


def run_thread_timed(name: str, sizes: Sizes, checks: Checks) -> WallAndThread:
    """``create.end`` timed with the caller's thread CPU time as well: in
    background mode (the target), or direct (to compare the caller's CPU
    time without the sender beside it)."""
    background = name == LIB_BACKGROUND
    if background:
        bench.init_library("background")
    else:
        bench.init_library("direct", driver="test")
    counter = Counter()
    thread_ns: list[int] = []
    try:
        wall = bench.time_calls(
            bench.usage_call(CONTEXT, INSTANCE, HOST),
            sizes.calls,
            warmup=sizes.warmup,
            between=bench.drain_fake if background else counter,
            thread_times=thread_ns,
        )
    finally:
        stats = bench.close_library()
    counter()
    expected = sizes.calls + sizes.warmup
    checks.expect(name, stats["sent"] if background else counter.count, expected)
    if stats["dropped"] or stats["queued"] != expected:
        checks.problems.append(f"{name}: stats() said {stats}")
    return WallAndThread(bench.latency(wall), bench.latency(thread_ns))


# -- the payload check --------------------------------------------------------------


def library_payloads() -> dict[str, dict[str, Any]]:
    """The payloads the library sends for the bench's two events."""
    bench.init_library(
        "direct", driver="test", notify_on_state_change="vm_and_task_state"
    )
    try:
        bench.take_test_notifications()
        compute = nova_notifier.get_notifier("compute", HOST)
        nova_notifier.notify_about_instance_usage(
            compute, CONTEXT, INSTANCE, "create.end"
        )
        nova_notifier.send_update(CONTEXT, OLD, NEW)
        return {msg["event_type"]: msg["payload"] for _, msg, _, _ in sent()}
    finally:
        bench.close_library()


def nova_payloads() -> dict[str, dict[str, Any]]:
    """The payloads the Nova-style baseline sends for the same two events."""
    nova = NovaStyle()
    try:
        bench.take_test_notifications()
        nova.notify_about_instance_usage(CONTEXT, INSTANCE, "create.end")
        nova.send_update(CONTEXT, OLD, NEW)
        return {msg["event_type"]: msg["payload"] for _, msg, _, _ in sent()}
    finally:
        nova.close()


def sent() -> list[tuple[Any, dict[str, Any], str, Any]]:
    messages = bench.test_notifications()
    bench.take_test_notifications()
    return messages


def compare_payloads(
    nova: dict[str, dict[str, Any]], library: dict[str, dict[str, Any]]
) -> list[str]:
    """One line per event: same keys, or which keys only one side has."""
    lines = []
    for event in (USAGE_EVENT, UPDATE_EVENT):
        ours, theirs = set(library.get(event, {})), set(nova.get(event, {}))
        if not ours or not theirs:
            lines.append(
                f"{event}: missing (library {bool(ours)}, Nova {bool(theirs)})"
            )
        elif ours == theirs:
            lines.append(f"{event}: same {len(ours)} keys")
        else:
            lines.append(
                f"{event}: only in the library {sorted(ours - theirs)}, "
                f"only in Nova-style {sorted(theirs - ours)}"
            )
    return lines


# -- main and the report ----------------------------------------------------------


def main() -> None:
    args = bench.parse_args(__doc__, default_rounds=ROUNDS)
    sizes = Sizes(1500, 200) if args.quick else Sizes(2000, 300)
    nova = nova_payloads()
    library = library_payloads()
    payload_lines = compare_payloads(nova, library)
    raw_payload = nova[USAGE_EVENT]
    checks = Checks()
    variants: dict[str, Callable[[], Any]] = {
        RAW: functools.partial(run_raw, raw_payload, sizes, checks),
        NOVA_USAGE: functools.partial(run_nova, NOVA_USAGE, sizes, checks),
        NOVA_UPDATE: functools.partial(run_nova, NOVA_UPDATE, sizes, checks),
        NOVA_NO_PRIMITIVE: functools.partial(
            run_nova, NOVA_NO_PRIMITIVE, sizes, checks
        ),
        LIB_USAGE: functools.partial(run_library, LIB_USAGE, sizes, checks),
        LIB_UPDATE: functools.partial(run_library, LIB_UPDATE, sizes, checks),
        LIB_DISABLED: functools.partial(run_library, LIB_DISABLED, sizes, checks),
        **{
            name: functools.partial(run_thread_timed, name, sizes, checks)
            for name in THREAD_TIMED
        },
    }
    bench.progress(
        f"{NAME}: {len(variants)} variants x {args.rounds} rounds x {sizes.calls} calls"
    )
    floor = bench.timer_floor()
    floor_thread: list[int] = []
    floor_both = bench.timer_floor(thread_times=floor_thread)
    rounds = bench.interleave(variants, args.rounds, NAME)
    report(
        args,
        rounds,
        floor,
        floor_both,
        bench.latency(floor_thread),
        checks,
        payload_lines,
        {"create.end": bench.json_size(library[USAGE_EVENT])},
    )


@dataclasses.dataclass(frozen=True)
class Target:
    """One target of issue 11: a figure, its limit, and what to aim at."""

    figure: str
    value: float
    limit: float
    unit: str  # "x" (a ratio) or "us"
    strict: bool = False  # "< limit" rather than "<= limit"
    aim: float | None = None

    @property
    def met(self) -> bool:
        return self.value < self.limit if self.strict else self.value <= self.limit

    def row(self) -> list[str]:
        sign = "<" if self.strict else "<="
        target = f"{sign} {self.limit:g}{self.unit}"
        if self.aim is not None:
            target += f", aim {self.aim:g}{self.unit}"
        digits = 2 if self.unit == "x" else 1
        return [
            self.figure,
            f"{self.value:.{digits}f}{self.unit}",
            target,
            "MET" if self.met else "MISS",
        ]


def report(
    args: argparse.Namespace,
    rounds: dict[str, list[Any]],
    floor: bench.Latency,
    floor_both: bench.Latency,
    floor_thread: bench.Latency,
    checks: Checks,
    payload_lines: list[str],
    payload_bytes: dict[str, int],
) -> None:
    timed = {name: rounds.pop(name) for name in THREAD_TIMED}
    summary = {name: bench.summarize_latency(values) for name, values in rounds.items()}
    for name, values in timed.items():
        summary[name] = bench.summarize_latency([r.wall for r in values])
        summary[name + " (thread time)"] = bench.summarize_latency(
            [r.thread for r in values]
        )
    p50 = {name: figures["p50_us"] for name, figures in summary.items()}
    base_rows = []
    for name, figures in summary.items():
        base_rows.append(
            [
                name,
                bench.fmt(figures["p50_us"]),
                bench.fmt(figures["p99_us"]),
                bench.fmt(min(r["p50_us"] for r in figures["rounds"])),
                bench.fmt(bench.ratio(figures["p50_us"], p50[RAW]), 2),
            ]
        )
    bench.print_table(
        "Build + emit per call, oslo.messaging test driver (us)",
        ["variant", "p50 us", "p99 us", "best round p50", "x raw p50"],
        base_rows,
        [
            f"median of {args.rounds} interleaved rounds, "
            f"{summary[RAW]['calls_per_round']} timed calls per variant and round; "
            f"create.end payload {payload_bytes['create.end']} bytes as JSON; "
            "best round p50: the lowest round (the machine when not slowed by "
            "other work on its shared cores)",
            f"timer floor (an empty call, nothing subtracted): p50 "
            f"{floor.p50_us:.3f} us; rows with thread time read: "
            f"{floor_both.p50_us:.3f} us wall, {floor_thread.p50_us:.3f} us thread",
        ],
        checks.problems,
    )
    bg_thread = summary[LIB_BACKGROUND + " (thread time)"]

    def versus(figure: str, ours: str, base: str, limit: float) -> Target:
        aim = 0.7 if base != RAW else None
        value = bench.paired_ratio(rounds[ours], rounds[base])
        return Target(figure, value, limit, "x", aim=aim)

    targets = [
        versus("create.end vs Nova-style", LIB_USAGE, NOVA_USAGE, 1.0),
        versus("create.end vs raw Notifier.info", LIB_USAGE, RAW, 2.0),
        versus("send_update transition vs Nova-style", LIB_UPDATE, NOVA_UPDATE, 1.0),
        Target("disabled path p50", p50[LIB_DISABLED], 0.5, " us", strict=True),
        Target(
            "background create.end caller p99 wall",
            summary[LIB_BACKGROUND]["p99_us"],
            50,
            " us",
            strict=True,
        ),
        Target(
            "background create.end caller p99 thread time",
            bg_thread["p99_us"],
            50,
            " us",
            strict=True,
        ),
    ]
    bench.print_table(
        "Issue 11 targets covered here",
        ["figure", "measured", "target", "met"],
        [target.row() for target in targets],
        [
            "ratios: median over rounds of the library's p50 over the baseline's "
            "p50 in the same round",
            "reference, no target: create.end vs Nova-style without to_primitive "
            f"{bench.paired_ratio(rounds[LIB_USAGE], rounds[NOVA_NO_PRIMITIVE]):.2f}x",
            "not here: FaultWrapper (bench/faultwrap_overhead.py), delivery to "
            "RabbitMQ (bench/throughput.py)",
            "payload keys, Nova-style vs library:",
            *(f"  {line}" for line in payload_lines),
        ],
    )
    bench.write_results(
        NAME,
        args,
        {
            "baseline": RAW,
            "payload_bytes": payload_bytes,
            "timer_floor": dataclasses.asdict(floor),
            "timer_floor_with_thread_time": dataclasses.asdict(floor_both),
            "timer_floor_thread_time": dataclasses.asdict(floor_thread),
            "variants": summary,
            "targets": [
                {**dataclasses.asdict(target), "met": target.met} for target in targets
            ],
            "payload_keys": payload_lines,
            "notifications_counted": checks.counts,
            "problems": checks.problems,
        },
    )


if __name__ == "__main__":
    main()
