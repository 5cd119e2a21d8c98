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
no overhead). Targets of issue 5 for FaultWrapper: under 2 us added, within
1.1x of the bare app, and faster than the wsgify design.

Faulting requests (second table), per-call latency in microseconds: the app
raises a 404-coded exception (``ServerNotFound``, ``safe = True``) and
``FaultWrapper`` turns it into a JSON fault, with ``notify_on_api_faults``
off and on (``fake://`` transport, background delivery, so "on" includes
building and queueing the ``api.fault`` message). The baseline is a
successful request through ``FaultWrapper``, timed the same way. Logging is
disabled, so the INFO line FaultWrapper writes for a 4xx is not counted.

``bench/results/faultwrap_overhead.json`` holds every round's figures and
the machine they ran on.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import io
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import _common as bench
import webob
import webob.dec
import webob.exc
from oslo_config import cfg
from oslo_messaging.notify.middleware import RequestNotifier

import nova_notifier

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

    def format_message(self) -> str:
        return f"Instance {SERVER_ID} could not be found."


def not_found_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    raise ServerNotFound()


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


class NovaStyleFaultWrapper:
    """Nova's FaultWrapper design: ``webob.dec.wsgify`` around ``get_response``."""

    def __init__(self, application: WSGIApp) -> None:
        self.application = application

    def _error(self, inner: Exception, req: webob.Request) -> webob.Response:
        return webob.exc.HTTPInternalServerError()

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


@dataclasses.dataclass(frozen=True)
class FaultCase:
    """A request through ``FaultWrapper(app)`` with api.fault on or off."""

    label: str
    app: WSGIApp
    api_faults: bool  # [notifications] notify_on_api_faults
    faulting: bool  # the app raises


FAULT_CASES = (
    FaultCase(FAULT_BASELINE, bare_app, api_faults=False, faulting=False),
    FaultCase("FaultWrapper, 404, api faults off", not_found_app, False, True),
    FaultCase("FaultWrapper, 404, api faults on", not_found_app, True, True),
)


def fault_latency(
    case: FaultCase, calls: int, warmup: int, problems: list[str]
) -> bench.Latency:
    bench.init_library("background", notify_on_api_faults=case.api_faults)
    app = nova_notifier.FaultWrapper(case.app)
    environs: Iterator[Environ] = iter(fresh_environs(calls + warmup))
    try:
        samples = bench.time_calls(
            lambda: serve(app, next(environs)), calls, warmup=warmup
        )
    finally:
        stats = bench.close_library()
    expected = calls + warmup if case.api_faults and case.faulting else 0
    if stats["dropped"] or stats["queued"] != expected or stats["sent"] != expected:
        problems.append(
            f"{case.label}: expected {expected} api.fault queued and sent, "
            f"0 dropped; stats() said {stats}"
        )
    return bench.latency(samples)


def check_responses() -> None:
    """Every design answers the same request the same way (and faults as 404)."""
    for name, app in happy_apps().items():
        response = webob.Request(dict(BASE_ENVIRON)).get_response(app)
        if response.status_int != 200 or response.body != BODY:
            raise RuntimeError(f"{name}: unexpected {response.status} response")
    bench.init_library("background")
    try:
        faulted = webob.Request(dict(BASE_ENVIRON)).get_response(
            nova_notifier.FaultWrapper(not_found_app)
        )
    finally:
        bench.close_library()
    if faulted.status_int != 404 or b"itemNotFound" not in faulted.body:
        raise RuntimeError(f"FaultWrapper fault: unexpected {faulted.status}")


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
    targets = {
        "added_under_2us": ours["ns_added"] < 2000,
        "within_1.1x_bare": ours["x_bare"] <= 1.1,
        "faster_than_wsgify": ours["per_s"] > wsgify["per_s"],
    }
    verdict = ", ".join(
        f"{name} {'yes' if met else 'NO'}" for name, met in targets.items()
    )
    bench.print_table(
        "Successful requests through each middleware (in-process WSGI)",
        ["variant", "calls/s", "ns/req", "ns added", "x bare"],
        rows,
        [
            f"median of {args.rounds} interleaved rounds; "
            f"FaultWrapper vs wsgify: {wsgify['x_bare'] / ours['x_bare']:.1f}x faster",
            f"targets (FaultWrapper: < 2 us added, <= 1.1x bare, faster than "
            f"wsgify): {verdict}",
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
        ]
        for name, figures in fault_summary.items()
    ]
    bench.print_table(
        "Faulting requests through FaultWrapper (us per request)",
        ["variant", "p50 us", "p99 us", "calls/s (1/mean)", "x success p50"],
        fault_rows,
        [
            f"median of {args.rounds} interleaved rounds, "
            f"{base['calls_per_round']} timed calls per variant and round; "
            "api faults on = background delivery on fake://; logging disabled"
        ],
        problems,
    )
    bench.write_results(
        NAME,
        args,
        {
            "success": {"baseline": BASELINE, "variants": summary, "targets": targets},
            "faults": {"baseline": FAULT_BASELINE, "variants": fault_summary},
            "problems": problems,
            "settings": settings,
        },
    )


if __name__ == "__main__":
    main()
