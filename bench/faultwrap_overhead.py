"""What ``FaultWrapper`` adds to a WSGI request, against other middleware designs.

Run from the repository root::

    .venv/bin/python bench/faultwrap_overhead.py           # 7 rounds
    .venv/bin/python bench/faultwrap_overhead.py --quick   # 3 rounds, shorter

Requests are served in process: the WSGI callable is called directly with a
fresh environ (a copy of a prebuilt ``GET /v2.1/servers/<uuid>`` environ, as
a server would build it, made before the clock starts) and a trivial
``start_response``; the returned iterable is consumed and closed.

Successful requests (first table), in calls per second:

``bare app``
    The baseline: a trivial WSGI app returning a small JSON body.
``pass-through (reference)``
    Not a design under test: a middleware whose ``__call__`` only calls the
    app inside ``try``. No Python middleware can cost less, so it shows what
    the "1.1x bare" target allows.
``FaultWrapper``
    ``nova_notifier.FaultWrapper(app)``.
``nova-style wsgify``
    A wrapper built the way Nova's ``FaultWrapper`` is: ``__call__``
    decorated with ``webob.dec.wsgify``, doing ``try: return
    req.get_response(self.application) except Exception: ...``.
``oslo RequestNotifier (noop)``
    oslo.messaging's ``RequestNotifier`` middleware with the ``noop`` driver
    (it still builds both notifications, then drops them).

``calls/s`` is the median over interleaved rounds (each round serves
requests for a fixed time); ``ns added`` is the time per request minus the
bare app's; ``x bare`` is the time per request over the bare app's (1.00 =
no overhead).

Faulting requests (second table), per-call latency in microseconds: the app
raises a 404-coded exception (``ServerNotFound``, ``safe = True``, as Nova's
``NotFound`` exceptions are) or an unexpected one (``DatabaseGone``, no
``code``: a 500). Each request is for another server id, so its URL and
404 message are new text (as in a real API, where no cache can spare
screening them). Each is served by

``FaultWrapper``
    with ``notify_on_api_faults`` off, and on: in ``direct`` mode with
    oslo.messaging's ``test`` driver (the request itself builds the whole
    ``api.fault`` message and hands it to the driver) and in ``background``
    mode on ``fake://`` (the request builds the message and queues it; the
    sender thread serialises and sends it, on the same 2 cores).
``nova-style, no api.fault``
    :class:`NovaStyleFaultWrapper`, written for this bench from what Nova's
    ``nova/api/openstack/__init__.py`` ``FaultWrapper`` does: ``wsgify``,
    ``req.get_response(app)`` in ``try``; ``_error()`` logs
    ``LOG.exception("Caught error: %s")`` for an unexpected error and
    ``LOG.info("%(url)s returned with HTTP %(status)d")``, reads ``safe``,
    ``headers`` and ``code``, maps the status to a ``webob.exc`` class
    (``status_to_type``) and returns ``wsgi.Fault(outer)``, which renders
    ``{"itemNotFound": {"code": 404, "message": ...}}`` as
    ``application/json``. It sends no notification. Left out, so the
    baseline is if anything cheaper than Nova: the translation of the
    message (``best_match_language``), the microversion headers, oslo.log's
    context adapter, and Nova's ``LOG.exception`` for a safe 4xx (Nova logs
    every error but a ``QuotaError`` with its traceback).

Logging is on for every faulting variant, as it is in a service: the root
logger has one ``StreamHandler`` at INFO with an oslo.log-like format,
writing to an in-memory ``io.StringIO`` (emptied between batches), so each
record is really formatted (a 500's traceback included) and written, at
no I/O cost. The baseline is a successful request through ``FaultWrapper``,
timed the same way. ``caller CPU p50 us`` is the request thread's own CPU
time (``time.thread_time``): in background mode, wall time beyond it is
time spent waiting for the GIL while the sender thread works.

Targets (issue 11), printed last as figure / target / MET or MISS:
FaultWrapper's happy path under 1,000 ns added to the bare app; a faulting
404 through ``FaultWrapper`` with ``api.fault`` on no slower than the
nova-style faulting 404 without it (p50 ratio paired by round, <= 1.0x),
in direct and in background mode; the same for a 500.

``bench/results/faultwrap_overhead.json`` holds every round's figures and
the machine they ran on.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import io
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import _common as bench
import webob
import webob.dec
import webob.exc
from oslo_config import cfg
from oslo_messaging.notify.middleware import RequestNotifier

import nova_notifier
from nova_notifier.faultwrap import FAULT_NAMES

NAME = "faultwrap_overhead"
BASELINE = "bare app"
FAULT_BASELINE = "FaultWrapper, success"
PASS_THROUGH = "pass-through (reference)"
SERVER_ID = "78eb5ff7-e2f3-45b9-b16b-c3be05e0ffb9"
BODY = b'{"server": {"id": "' + SERVER_ID.encode() + b'", "status": "ACTIVE"}}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]
POOL = 2000  # environs prepared (untimed) per timed batch

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

BASE_ENVIRON: Environ = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "PATH_INFO": f"/v2.1/servers/{SERVER_ID}",
    "QUERY_STRING": "",
    "CONTENT_TYPE": "",
    "CONTENT_LENGTH": "",
    "SERVER_NAME": "localhost",
    "SERVER_PORT": "8774",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "HTTP_HOST": "localhost:8774",
    "HTTP_ACCEPT": "application/json",
    "HTTP_USER_AGENT": "python-novaclient",
    "HTTP_X_AUTH_TOKEN": "gAAAAABmZ-bench-token-not-a-real-one",
    "HTTP_X_OPENSTACK_NOVA_API_VERSION": "2.1",
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.input": io.BytesIO(b""),
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": True,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}


def bare_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", list(HEADERS))
    return [BODY]


class ServerNotFound(Exception):
    """A Nova-style 404 exception, safe to show to the user."""

    code = 404
    safe = True

    def __init__(self, server_id: str = SERVER_ID) -> None:
        super().__init__(server_id)
        self.server_id = server_id

    def format_message(self) -> str:
        return f"Instance {self.server_id} could not be found."


def not_found_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    raise ServerNotFound(environ["PATH_INFO"].rpartition("/")[2])


class DatabaseGone(Exception):
    """An unexpected error: no ``code``, not safe (a 500 whose text stays in)."""


def failing_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    raise DatabaseGone("lost connection to the database during query")


class PassThrough:
    """Reference: the least a Python middleware can do (one call, a try block)."""

    def __init__(self, application: WSGIApp) -> None:
        self.application = application

    def __call__(
        self, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        try:
            return self.application(environ, start_response)
        except Exception:
            raise


NOVA_LOG = logging.getLogger("bench.nova_style")  # Nova's LOG, less oslo.log
# Nova's wsgi.Fault names the same faults as FaultWrapper does.
NOVA_FAULT_NAMES = FAULT_NAMES


def _walk_classes(cls: type) -> Iterator[type]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _walk_classes(sub)


class NovaStyleFault(webob.exc.HTTPException):
    """Nova's ``wsgi.Fault``: a webob exception rendered as a JSON fault body."""

    def __init__(self, exception: webob.exc.HTTPException) -> None:
        self.wrapped_exc = exception
        for key, value in list(exception.headers.items()):
            exception.headers[key] = str(value)
        self.status_int = exception.status_int

    @webob.dec.wsgify(RequestClass=webob.Request)
    def __call__(self, req: webob.Request) -> webob.Response:
        code = self.wrapped_exc.status_int
        name = NOVA_FAULT_NAMES.get(code, "computeFault")
        explanation = self.wrapped_exc.explanation
        NOVA_LOG.debug(
            "Returning %(code)s to user: %(explanation)s",
            {"code": code, "explanation": explanation},
        )
        fault: dict[str, Any] = {"code": code, "message": explanation}
        if code in (413, 429):
            retry = self.wrapped_exc.headers.get("Retry-After", None)
            if retry:
                fault["retryAfter"] = retry
        self.wrapped_exc.content_type = "application/json"
        self.wrapped_exc.charset = "UTF-8"
        self.wrapped_exc.text = json.dumps({name: fault})
        return self.wrapped_exc


class NovaStyleFaultWrapper:
    """Nova's FaultWrapper design: ``webob.dec.wsgify`` around ``get_response``,
    ``_error()`` logging and mapping the exception to a ``NovaStyleFault``."""

    _status_to_type: dict[int, type] = {}

    def __init__(self, application: WSGIApp) -> None:
        self.application = application

    @staticmethod
    def status_to_type(status: int) -> webob.exc.HTTPException:
        types = NovaStyleFaultWrapper._status_to_type
        if not types:
            for cls in _walk_classes(webob.exc.HTTPError):
                types[cls.code] = cls
        return types.get(status, webob.exc.HTTPInternalServerError)()

    def _error(self, inner: Exception, req: webob.Request) -> webob.Response:
        safe = getattr(inner, "safe", False)
        headers = getattr(inner, "headers", None)
        status = getattr(inner, "code", 500)
        if status is None:
            status = 500
        if status >= 500 or not safe:  # unexpected: with its traceback
            NOVA_LOG.exception("Caught error: %s", inner)
        NOVA_LOG.info(
            "%(url)s returned with HTTP %(status)d", {"url": req.url, "status": status}
        )
        outer = self.status_to_type(status)
        if headers:
            outer.headers = headers
        if safe:
            outer.explanation = f"{type(inner).__name__}: {inner.format_message()}"  # type: ignore[attr-defined]
        return NovaStyleFault(outer)

    @webob.dec.wsgify(RequestClass=webob.Request)
    def __call__(self, req: webob.Request) -> webob.Response:
        try:
            return req.get_response(self.application)
        except Exception as ex:
            return self._error(ex, req)


def request_notifier(app: WSGIApp) -> RequestNotifier:
    """oslo.messaging's RequestNotifier, which reads the global ``cfg.CONF``."""
    nova_notifier.register_opts(cfg.CONF)  # oslo.messaging's options among them
    cfg.CONF([], project="bench", default_config_files=[])
    cfg.CONF.set_override("driver", ["noop"], group="oslo_messaging_notifications")
    middleware = RequestNotifier(
        app, url="fake://", publisher_id="api.bench", service_name="compute"
    )
    names = middleware.notifier._driver_mgr.names()
    if names != ["noop"]:
        raise RuntimeError(f"RequestNotifier loaded drivers {names}, not noop")
    return middleware


def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
    return _write


def _write(data: bytes) -> None:
    return None


def serve(app: WSGIApp, environ: Environ) -> None:
    """One request, as a server does it: call, consume the body, close."""
    result = app(environ, start_response)
    for _chunk in result:
        pass
    close = getattr(result, "close", None)
    if close is not None:
        close()


def fresh_environs(count: int) -> list[Environ]:
    return [dict(BASE_ENVIRON) for _ in range(count)]


def varied_environs(count: int) -> list[Environ]:
    """Fresh environs, each for another server: a URL and a fault message
    seen once, as in a real API (no cache hides what screening them costs)."""
    return [
        {**BASE_ENVIRON, "PATH_INFO": f"/v2.1/servers/{uuid.uuid4()}"}
        for _ in range(count)
    ]


def requests_per_second(app: WSGIApp, seconds: float) -> float:
    """Serve batches of fresh environs until ``seconds`` of serving time."""
    served = 0
    elapsed = 0.0
    while elapsed < seconds:
        environs = fresh_environs(POOL)  # untimed
        started = time.perf_counter()
        for environ in environs:
            serve(app, environ)
        elapsed += time.perf_counter() - started
        served += len(environs)
    return served / elapsed


# Logging as a service has it: formatted and written, to memory.
LOG_SINK = io.StringIO()
LOG_FORMAT = (
    "%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [-] %(message)s"
)


def enable_logging() -> None:
    """Root logger at INFO, one handler writing formatted records to LOG_SINK."""
    logging.disable(logging.NOTSET)  # parse_args() silenced everything
    handler = logging.StreamHandler(LOG_SINK)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def logged_chars() -> int:
    """What was logged since the last call; empties the sink."""
    written = LOG_SINK.tell()
    LOG_SINK.seek(0)
    LOG_SINK.truncate()
    return written


NOVA = "nova-style"
OURS = "FaultWrapper"


@dataclasses.dataclass(frozen=True)
class FaultCase:
    """A request through one design, with api.fault on or off."""

    label: str
    app: WSGIApp
    api_faults: bool  # [notifications] notify_on_api_faults
    faulting: bool  # the app raises
    design: str = OURS
    mode: str = "background"  # delivery_mode (direct: oslo's test driver)


FAULT_CASES = (
    FaultCase(FAULT_BASELINE, bare_app, api_faults=False, faulting=False),
    FaultCase("nova-style, 404, no api.fault", not_found_app, False, True, NOVA),
    FaultCase("FaultWrapper, 404, api faults off", not_found_app, False, True),
    FaultCase(
        "FaultWrapper, 404, on (direct, test)", not_found_app, True, True, mode="direct"
    ),
    FaultCase("FaultWrapper, 404, on (background)", not_found_app, True, True),
    FaultCase("nova-style, 500, no api.fault", failing_app, False, True, NOVA),
    FaultCase("FaultWrapper, 500, api faults off", failing_app, False, True),
    FaultCase(
        "FaultWrapper, 500, on (direct, test)", failing_app, True, True, mode="direct"
    ),
    FaultCase("FaultWrapper, 500, on (background)", failing_app, True, True),
)
# (target label, ours, the nova-style baseline)
FAULT_TARGETS = (
    (
        "404, api.fault on (direct) vs nova-style 404",
        "FaultWrapper, 404, on (direct, test)",
        "nova-style, 404, no api.fault",
    ),
    (
        "404, api.fault on (background) vs nova-style 404",
        "FaultWrapper, 404, on (background)",
        "nova-style, 404, no api.fault",
    ),
    (
        "500, api.fault on (direct) vs nova-style 500",
        "FaultWrapper, 500, on (direct, test)",
        "nova-style, 500, no api.fault",
    ),
    (
        "500, api.fault on (background) vs nova-style 500",
        "FaultWrapper, 500, on (background)",
        "nova-style, 500, no api.fault",
    ),
)


# Each fault variant's per-round latency in the caller's own CPU time
# (time.thread_time): wall time minus waiting, e.g. for the sender thread.
CALLER_CPU: dict[str, list[bench.Latency]] = {}


def fault_latency(
    case: FaultCase, calls: int, warmup: int, problems: list[str]
) -> bench.Latency:
    """Per-call latency of ``case``; checks what was sent and logged."""
    if case.design == NOVA:
        app: WSGIApp = NovaStyleFaultWrapper(case.app)
    else:
        driver = "test" if case.mode == "direct" else "messagingv2"
        bench.init_library(
            case.mode, driver=driver, notify_on_api_faults=case.api_faults
        )
        app = nova_notifier.FaultWrapper(case.app)
    environs: Iterator[Environ] = iter(varied_environs(calls + warmup))
    built = 0
    logged = 0

    def between() -> None:
        nonlocal built, logged
        bench.drain_fake()
        built += bench.take_test_notifications()
        logged += logged_chars()

    logged_chars()
    try:
        cpu: list[int] = []
        samples = bench.time_calls(
            lambda: serve(app, next(environs)),
            calls,
            warmup=warmup,
            between=between,
            thread_times=cpu,
        )
        CALLER_CPU.setdefault(case.label, []).append(bench.latency(cpu))
    finally:
        stats = bench.close_library() if case.design == OURS else None
        between()
    if case.faulting and not logged:
        problems.append(f"{case.label}: nothing was logged")
    if stats is None:
        return bench.latency(samples)
    expected = calls + warmup if case.api_faults and case.faulting else 0
    if stats["dropped"] or stats["queued"] != expected or stats["sent"] != expected:
        problems.append(
            f"{case.label}: expected {expected} api.fault queued and sent, "
            f"0 dropped; stats() said {stats}"
        )
    if case.mode == "direct" and built != expected:
        problems.append(
            f"{case.label}: the test driver got {built} notifications, not {expected}"
        )
    return bench.latency(samples)


def check_responses() -> None:
    """Every design answers the same request the same way; both fault designs
    give the same status, body and content type for a 404 and a 500."""
    for name, app in happy_apps().items():
        response = webob.Request(dict(BASE_ENVIRON)).get_response(app)
        if response.status_int != 200 or response.body != BODY:
            raise RuntimeError(f"{name}: unexpected {response.status} response")
    bench.init_library("background")
    try:
        for inner, status, name in (
            (not_found_app, 404, "itemNotFound"),
            (failing_app, 500, "computeFault"),
        ):
            ours = webob.Request(dict(BASE_ENVIRON)).get_response(
                nova_notifier.FaultWrapper(inner)
            )
            nova = webob.Request(dict(BASE_ENVIRON)).get_response(
                NovaStyleFaultWrapper(inner)
            )
            for design, got in (("FaultWrapper", ours), ("nova-style", nova)):
                if (
                    got.status_int != status
                    or name not in got.json_body
                    or got.content_type != "application/json"
                ):
                    raise RuntimeError(f"{design} fault: unexpected {got.status}")
            if ours.json_body != nova.json_body:
                raise RuntimeError(
                    f"fault bodies differ: {ours.json_body} vs {nova.json_body}"
                )
    finally:
        bench.close_library()


@functools.cache
def happy_apps() -> dict[str, WSGIApp]:
    return {
        BASELINE: bare_app,
        PASS_THROUGH: PassThrough(bare_app),
        "FaultWrapper": nova_notifier.FaultWrapper(bare_app),
        "nova-style wsgify": NovaStyleFaultWrapper(bare_app),
        "oslo RequestNotifier (noop)": request_notifier(bare_app),
    }


def main() -> None:
    args = bench.parse_args(__doc__)
    seconds = 0.3 if args.quick else 1.0
    calls, warmup = (2000, 200) if args.quick else (6000, 500)
    check_responses()
    apps = happy_apps()

    bench.progress(f"{NAME}: successful requests, {len(apps)} variants")
    rates = bench.interleave(
        {
            name: functools.partial(requests_per_second, app, seconds)
            for name, app in apps.items()
        },
        args.rounds,
        "success",
    )

    bench.progress(f"{NAME}: faulting requests, {len(FAULT_CASES)} variants")
    enable_logging()
    problems: list[str] = []
    fault_variants = {
        case.label: functools.partial(fault_latency, case, calls, warmup, problems)
        for case in FAULT_CASES
    }
    faults = bench.interleave(fault_variants, args.rounds, "faults")
    settings = {
        "success_seconds_per_round": seconds,
        "environs_per_batch": POOL,
        "fault_calls_per_round": calls,
        "fault_warmup_calls": warmup,
    }
    report(args, rates, faults, problems, settings)


def report(
    args: argparse.Namespace,
    rates: dict[str, list[float]],
    faults: dict[str, list[bench.Latency]],
    problems: list[str],
    settings: dict[str, Any],
) -> None:
    summary = {name: bench.summarize_rate(values) for name, values in rates.items()}
    bare = summary[BASELINE]["per_s"]
    rows = []
    for name, figures in summary.items():
        per_s = figures["per_s"]
        figures["ns_added"] = (1 / per_s - 1 / bare) * 1e9
        figures["x_bare"] = bare / per_s
        rows.append(
            [
                name,
                bench.fmt(per_s, 0),
                bench.fmt(1e9 / per_s, 0),
                bench.fmt(figures["ns_added"], 0),
                bench.fmt(figures["x_bare"], 2),
            ]
        )
    ours = summary["FaultWrapper"]
    wsgify = summary["nova-style wsgify"]
    bench.print_table(
        "Successful requests through each middleware (in-process WSGI)",
        ["variant", "calls/s", "ns/req", "ns added", "x bare"],
        rows,
        [
            f"median of {args.rounds} interleaved rounds; "
            f"FaultWrapper vs wsgify: {wsgify['x_bare'] / ours['x_bare']:.1f}x faster",
        ],
    )

    fault_summary = {
        name: bench.summarize_latency(values) for name, values in faults.items()
    }
    base = fault_summary[FAULT_BASELINE]
    fault_rows = [
        [
            name,
            bench.fmt(figures["p50_us"]),
            bench.fmt(figures["p99_us"]),
            bench.fmt(1e6 / figures["mean_us"], 0),
            bench.fmt(bench.ratio(figures["p50_us"], base["p50_us"]), 1),
            bench.fmt(bench.median([r.p50_us for r in CALLER_CPU[name]])),
        ]
        for name, figures in fault_summary.items()
    ]
    bench.print_table(
        "Faulting requests (us per request)",
        [
            "variant",
            "p50 us",
            "p99 us",
            "calls/s (1/mean)",
            "x success p50",
            "caller CPU p50 us",
        ],
        fault_rows,
        [
            f"median of {args.rounds} interleaved rounds, "
            f"{base['calls_per_round']} timed calls per variant and round; "
            "direct = oslo's test driver, background = fake://; "
            "logging on (INFO, formatted, to memory); caller CPU = the "
            "request thread's own CPU time (wall time less waiting for the GIL)"
        ],
        problems,
    )

    # Issue 11's targets, each from this run.
    targets: dict[str, dict[str, Any]] = {
        "happy path, ns added": {
            "figure": ours["ns_added"],
            "target": "< 1000 ns",
            "met": ours["ns_added"] < 1000,
        }
    }
    for label, mine, theirs in FAULT_TARGETS:
        figure = bench.paired_ratio(faults[mine], faults[theirs])
        targets[label] = {
            "figure": figure,
            "target": "<= 1.00x (p50, paired by round)",
            "met": figure <= 1.0,
        }
    bench.print_table(
        "Targets (issue 11)",
        ["target", "figure", "target", "verdict"],
        [
            [
                label,
                bench.fmt(t["figure"], 0)
                if label.startswith("happy")
                else f"{t['figure']:.2f}x",
                t["target"],
                "MET" if t["met"] else "MISS",
            ]
            for label, t in targets.items()
        ],
    )
    bench.write_results(
        NAME,
        args,
        {
            "success": {"baseline": BASELINE, "variants": summary},
            "faults": {
                "baseline": FAULT_BASELINE,
                "variants": fault_summary,
                "caller_cpu": {
                    name: bench.summarize_latency(values)
                    for name, values in CALLER_CPU.items()
                },
            },
            "targets": targets,
            "problems": problems,
            "settings": settings,
        },
    )


if __name__ == "__main__":
    main()
