"""How fast ``nova-notifier latency`` reads a ``listen --json`` file, on one core.

Run from the repository root::

    .venv/bin/python bench/latency_read.py           # ~80,000 boots, 7 rounds
    .venv/bin/python bench/latency_read.py --quick   # ~10,000 boots, 3 rounds

The requirement: the latency command keeps up with a busy region, at least
100,000 notifications per second from a file on one core. The script writes
one stream file into a temporary directory with
``nova_notifier.testing.stream.busy_region`` (about 6.3 notifications a boot,
~1.3 KB each, with duplicates, reordering and ``exists``/``api.fault``
notifications the report ignores), pins itself to the first CPU it may run
on, reads the file once to have it in the page cache, then runs these
variants in interleaved rounds, every one reading the same file:

``read lines only``
    ``readlines()`` in the command's 1 MB batches, nothing else: the I/O
    floor.
``json.loads every line``
    The same batches, the standard library's ``json.loads`` on every line:
    what a hand-written reader would cost. The baseline of the ratios.
``simdjson parse every line``
    The same with ``simdjson.Parser().parse``, the parser the reader uses
    (it builds views; fields are decoded when asked for): the floor of
    any reader that parses every line.
``latency reader``
    What the command does with a file, in this process, with the shipped
    function of ``nova_notifier.tools.latency.command``, ``report_files``: a
    ``Tracker`` fed every line of the file in 1 MB batches (progress
    disabled), then ``report.analyse`` and ``report.build``, the cycle
    collector paused throughout. Each round
    checks that the report counts every boot generated.
``latency command``
    The whole command as a child process, ``python -m nova_notifier.tools.cli
    latency --from FILE --json --no-progress`` (standard output discarded),
    under ``taskset -c CPU`` when there is one. Wall time from start to exit,
    interpreter start-up and imports included. Its peak memory (RSS) comes
    from ``/usr/bin/time -f %M`` when there is one (else from ``os.wait4``,
    an upper bound: a child keeps its parent's RSS at fork as its peak).
``latency command, empty file``
    The same command on an empty file: start-up, imports and exit, and the
    peak memory of a command that read nothing. Not a rate; it turns the
    command's peak memory into memory per million lines, and shows what the
    command's rate would be without its start-up.

The figure of a variant is notifications (lines) per second, the median over
the rounds (see ``bench/_common.py``), with its ratio to ``json.loads every
line`` from the same run. The target is printed as MET or MISSED for the
reader and for the command, not asserted (the run still exits 0). Beware:
with ``--quick`` the file is small and the command's start-up weighs far
more in its rate than on a real day's file. ``bench/results/latency_read.json``
holds every round's figures and the machine they ran on.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as bench
import simdjson

from nova_notifier.testing.stream import busy_region, lines
from nova_notifier.tools.latency import command

NAME = "latency_read"
BOOTS, QUICK_BOOTS = 80_000, 10_000
TARGET_PER_S = 100_000
REPO = Path(__file__).resolve().parent.parent
TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
MEMORY_SOURCE = (
    "/usr/bin/time -f %M (the child's peak RSS)"
    if TIME is not None
    else "ru_maxrss from wait4 (an upper bound: includes this process's RSS)"
)

READ_ONLY = "read lines only"
BASELINE = "json.loads every line"
SIMDJSON = "simdjson parse every line"
READER = "latency reader"
COMMAND = "latency command"
EMPTY = "latency command, empty file"
TARGETED = (READER, COMMAND)


@dataclasses.dataclass(frozen=True)
class Stream:
    """The file every variant reads."""

    path: str
    empty: str
    boots: int
    lines: int
    bytes: int
    generate_s: float


@dataclasses.dataclass(frozen=True)
class Run:
    """One variant's run: how long, how many lines; phases and memory if known."""

    seconds: float
    lines: int
    maxrss_kb: int | None = None

    @property
    def per_s(self) -> float:
        return self.lines / self.seconds if self.lines else float("nan")


# -- the stream file, the CPU ------------------------------------------------


def write_stream(directory: str, boots: int) -> Stream:
    path = os.path.join(directory, "busy-region.jsonl")
    empty = os.path.join(directory, "empty.jsonl")
    Path(empty).touch()
    bench.progress(f"{NAME}: writing busy_region({boots:,}) to {path}")
    started = time.perf_counter()
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for line in lines(busy_region(boots)):
            out.write(line)
            count += 1
    generate_s = time.perf_counter() - started
    size = os.path.getsize(path)
    bench.progress(
        f"{NAME}: {size / 1e6:,.1f} MB, {count:,} lines "
        f"({size / count:,.0f} bytes a line), generated in {generate_s:.1f} s"
    )
    return Stream(path, empty, boots, count, size, generate_s)


def pin_one_cpu() -> int | None:
    """Pin this process (and so its children) to the first CPU it may use."""
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):  # not on Linux, or not allowed
        return None
    return cpu


# -- the variants -------------------------------------------------------------


def read_only(path: str) -> Run:
    started = time.perf_counter()
    count = 0
    with open(path, "rb") as raw:
        while batch := raw.readlines(command._BATCH_BYTES):
            count += len(batch)
    return Run(time.perf_counter() - started, count)


def parse_every_line(path: str, loads: Callable[[bytes], Any]) -> Run:
    started = time.perf_counter()
    count = 0
    with open(path, "rb") as raw:
        while batch := raw.readlines(command._BATCH_BYTES):
            for line in batch:
                loads(line)
            count += len(batch)
    return Run(time.perf_counter() - started, count)


def read_report(path: str) -> tuple[Run, dict[str, Any]]:
    """What ``command.run`` does with ``--from path``, timed by phase."""
    started = time.perf_counter()
    _, report = command.report_files([path], command._Progress(False))
    run = Run(time.perf_counter() - started, report["input"]["lines"])
    return run, report


def reader(stream: Stream, problems: list[str]) -> Run:
    run, report = read_report(stream.path)
    check_report("latency reader", report, stream, problems)
    return run


def check_report(
    label: str, report: dict[str, Any], stream: Stream, problems: list[str]
) -> None:
    boots = report["boots"]["count"]
    read = report["input"]["lines"]
    if boots != stream.boots or read != stream.lines:
        problems.append(
            f"{label}: the report counts {boots:,} boots in {read:,} lines; "
            f"{stream.boots:,} boots in {stream.lines:,} lines were generated"
        )


def command_line(path: str, cpu: int | None) -> list[str]:
    argv = [sys.executable, "-m", "nova_notifier.tools.cli", "latency", "--from", path]
    argv += ["--json", "--no-progress"]
    taskset = shutil.which("taskset")
    if cpu is not None and taskset:
        argv = [taskset, "-c", str(cpu), *argv]
    return argv


def run_command(
    path: str, count: int, cpu: int | None, label: str, problems: list[str]
) -> Run:
    """The command as a child process: wall time and its own peak memory.

    The peak comes from ``/usr/bin/time -f %M``: the ``ru_maxrss`` this
    process gets from ``wait4`` would be at least this process's own RSS,
    which a child inherits at fork and keeps through exec.
    """
    argv = command_line(path, cpu)
    with tempfile.TemporaryDirectory(prefix="nn-bench-rss-") as scratch:
        rss_file = os.path.join(scratch, "maxrss")
        if TIME is not None:
            argv = [TIME, "-f", "%M", "-o", rss_file, *argv]
        with tempfile.TemporaryFile() as errors:
            started = time.perf_counter()
            child = subprocess.Popen(
                argv,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
            _, status, usage = os.wait4(child.pid, 0)
            seconds = time.perf_counter() - started
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode != 0:
                errors.seek(0)
                tail = errors.read().decode("utf-8", "replace").strip()[-500:]
                problems.append(f"{label}: exit status {child.returncode}: {tail}")
        maxrss_kb = usage.ru_maxrss
        if TIME is not None:
            with open(rss_file, encoding="utf-8") as written:
                maxrss_kb = int(written.read().split()[-1])
    return Run(seconds, count, maxrss_kb=maxrss_kb)


def check_command_output(
    stream: Stream, cpu: int | None, expected: dict[str, Any], problems: list[str]
) -> None:
    """Once, untimed: the command prints the report the reader builds."""
    done = subprocess.run(
        command_line(stream.path, cpu), cwd=REPO, capture_output=True, check=False
    )
    if done.returncode != 0:
        problems.append(
            f"latency command: exit status {done.returncode}: "
            + done.stderr.decode("utf-8", "replace").strip()[-500:]
        )
        return
    printed = json.loads(done.stdout)
    check_report("latency command", printed, stream, problems)
    if printed != json.loads(json.dumps(expected)):
        problems.append("latency command: its report differs from the reader's")


# -- main -----------------------------------------------------------------------


def main() -> None:
    args = bench.parse_args(__doc__)
    boots = QUICK_BOOTS if args.quick else BOOTS
    cpu = pin_one_cpu()
    pinned = (
        f"pinned to CPU {cpu} (os.sched_setaffinity)"
        if cpu is not None
        else "NOT pinned (no sched_setaffinity)"
    )
    taskset = shutil.which("taskset") is not None and cpu is not None
    bench.progress(f"{NAME}: this process is {pinned}")
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="nn-bench-latency-") as directory:
        stream = write_stream(directory, boots)
        bench.progress(f"{NAME}: warming up (page cache, one reader run, command)")
        read_only(stream.path)
        _, report = read_report(stream.path)
        check_report("latency reader", report, stream, problems)
        check_command_output(stream, cpu, report, problems)
        del report
        variants: dict[str, Callable[[], Run]] = {
            READ_ONLY: functools.partial(read_only, stream.path),
            BASELINE: functools.partial(parse_every_line, stream.path, json.loads),
            SIMDJSON: functools.partial(
                parse_every_line, stream.path, simdjson.Parser().parse
            ),
            READER: functools.partial(reader, stream, problems),
            COMMAND: functools.partial(
                run_command, stream.path, stream.lines, cpu, COMMAND, problems
            ),
            EMPTY: functools.partial(
                run_command, stream.empty, 0, cpu, EMPTY, problems
            ),
        }
        bench.progress(
            f"{NAME}: {len(variants)} variants x {args.rounds} rounds "
            f"x {stream.lines:,} lines"
        )
        rounds = bench.interleave(variants, args.rounds, NAME)
    report_results(args, stream, cpu, pinned, taskset, rounds, problems)


def report_results(
    args: argparse.Namespace,
    stream: Stream,
    cpu: int | None,
    pinned: str,
    taskset: bool,
    rounds: dict[str, list[Run]],
    problems: list[str],
) -> None:
    summary: dict[str, dict[str, Any]] = {}
    for name, runs in rounds.items():
        figures: dict[str, Any] = (
            bench.summarize_rate([run.per_s for run in runs]) if name != EMPTY else {}
        )
        figures["seconds"] = bench.median([run.seconds for run in runs])
        figures["round_seconds"] = [run.seconds for run in runs]
        if runs[0].maxrss_kb is not None:
            figures["maxrss_mb"] = max(run.maxrss_kb or 0 for run in runs) / 1024
        summary[name] = figures
    base = summary[BASELINE]["per_s"]
    targets = {name: bool(summary[name]["per_s"] >= TARGET_PER_S) for name in TARGETED}
    rows = []
    for name, figures in summary.items():
        if name == EMPTY:
            continue
        figures["x_baseline"] = bench.ratio(figures["per_s"], base)
        met = ""
        if name in targets:
            figures["target_met"] = targets[name]
            met = "yes" if targets[name] else "NO"
        rows.append(
            [
                name,
                bench.fmt(figures["per_s"], 0),
                bench.fmt(figures["x_baseline"], 2),
                bench.fmt(1e6 / figures["per_s"], 2),
                bench.fmt(figures["seconds"], 2),
                f">= {TARGET_PER_S:,}" if name in targets else "",
                met,
            ]
        )

    command_figures = summary[COMMAND]
    startup_s = summary[EMPTY]["seconds"]
    command_peak = command_figures["maxrss_mb"]
    empty_peak = summary[EMPTY]["maxrss_mb"]
    per_million = (command_peak - empty_peak) / stream.lines * 1e6
    without_startup = stream.lines / max(command_figures["seconds"] - startup_s, 1e-9)
    memory = {
        "command_peak_mb": command_peak,
        "empty_file_peak_mb": empty_peak,
        "mb_per_million_lines": per_million,
    }

    def verdict(name: str) -> str:
        met = "MET" if targets[name] else "MISSED"
        return f"{name} {met} ({bench.fmt(summary[name]['per_s'], 0)}/s)"

    child = f"under taskset -c {cpu}" if taskset else "inheriting the affinity"
    notes = [
        f"median of {args.rounds} interleaved rounds; file: {stream.boots:,} boots, "
        f"{stream.lines:,} lines, {stream.bytes / 1e6:,.1f} MB "
        f"({stream.bytes / stream.lines:,.0f} B a line), from the page cache; "
        f"generated in {stream.generate_s:.1f} s",
        f"one core: this process {pinned}; the command ran {child}",
        f"latency command: includes start-up; on an empty file it takes "
        f"{startup_s:.2f} s, so without it "
        f"{bench.fmt(without_startup, 0)} lines/s",
        f"latency command peak RSS {command_peak:,.1f} MB "
        f"(empty file {empty_peak:,.1f} MB): "
        f"{per_million:,.1f} MB per million lines, by {MEMORY_SOURCE}",
        f"TARGET >= {TARGET_PER_S:,} notifications/s on one core: "
        + ", ".join(verdict(name) for name in TARGETED),
    ]
    bench.print_table(
        "nova-notifier latency reading a listen --json file, one core "
        "(notifications/s)",
        ["variant", "lines/s", "x json.loads", "us/line", "s/run", "target", "met"],
        rows,
        notes,
        problems,
    )
    bench.write_results(
        NAME,
        args,
        {
            "baseline": BASELINE,
            "stream": {
                "boots": stream.boots,
                "lines": stream.lines,
                "bytes": stream.bytes,
                "generate_s": round(stream.generate_s, 3),
                "generator": "nova_notifier.testing.stream.busy_region(boots)",
            },
            "cpu": cpu,
            "pinned": pinned,
            "command": command_line("FILE", cpu),
            "command_taskset": taskset,
            "target_per_s": TARGET_PER_S,
            "targets_met": targets,
            "variants": summary,
            "command_startup_s": startup_s,
            "command_per_s_without_startup": without_startup,
            "memory": {**memory, "source": MEMORY_SOURCE},
            "problems": problems,
        },
    )


if __name__ == "__main__":
    main()
