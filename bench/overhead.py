"""Cost per request of the chassis, side by side with bare Flask / Flask-RESTful (run by hand).

Every variant is called in this one process as a WSGI app (``app(environ, start_response)``, body
consumed), with the environ built once by Werkzeug's ``EnvironBuilder``: no server, no sockets,
so what is left is the framework's own cost. Each round times every variant in turn (so slow
phases of a noisy machine hit all of them), and the script prints the median over the rounds.

    .venv/bin/python bench/overhead.py                  # 7 rounds x 2000 calls, pinned to CPU 0
    .venv/bin/python bench/overhead.py --rounds 9 --calls 3000 --cpu 1
    .venv/bin/python bench/overhead.py --no-pin         # let the loop thread use another core
    .venv/bin/python bench/overhead.py --callgrind      # instructions per request (valgrind)
    .venv/bin/python bench/overhead.py --json out.json  # also write the figures for bench/charts.py

Targets (issue 5): chassis sync <= 1.10x bare Flask-RESTful; chassis async <= 2.0x chassis sync.

Issue 15's target: ApiResource on a plain flask_restful.Api (the drop-in path) <= 1.00x bare
Flask-RESTful in callgrind instructions per request (``--callgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import bench_json
import callgrind
import flask_restful
from flask import Flask
from werkzeug.test import EnvironBuilder

from cst_chassis import ChassisApi, CstMicroChassis
from cst_chassis.resources import ApiResource

WSGIApp = callgrind.WSGIApp
HELLO = {"hello": "world"}


def plain_flask_sync() -> Flask:
    app = Flask("bench_plain_sync")

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return HELLO

    return app


def plain_flask_async_default_bridge() -> Flask:
    # No chassis: Flask's own async_to_sync (asgiref, a thread and an event loop per call).
    app = Flask("bench_plain_async")

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return HELLO

    return app


def bare_flask_restful() -> Flask:
    app = Flask("bench_bare_fr")

    class Hello(flask_restful.Resource):
        def get(self) -> dict[str, str]:
            return HELLO

    flask_restful.Api(app).add_resource(Hello, "/hello")
    return app


def _chassis_app(
    name: str, resource: type[ApiResource], api: type[flask_restful.Api] = ChassisApi
) -> Flask:
    app = Flask(name)
    CstMicroChassis().init_app(app)
    api(app).add_resource(resource, "/hello")
    return app


def chassis_sync() -> Flask:
    class Hello(ApiResource):
        def get(self) -> dict[str, str]:
            return HELLO

    return _chassis_app("bench_chassis_sync", Hello)


def chassis_sync_plain_api() -> Flask:
    # ApiResource on flask_restful.Api: what the chassis adds, with flask-restful's own content
    # negotiation kept (ChassisApi skips it for JSON clients).
    class Hello(ApiResource):
        def get(self) -> dict[str, str]:
            return HELLO

    return _chassis_app("bench_chassis_sync_fr_api", Hello, flask_restful.Api)


def chassis_async() -> Flask:
    class Hello(ApiResource):
        async def get(self) -> dict[str, str]:
            return HELLO

    return _chassis_app("bench_chassis_async", Hello)


def chassis_async_sleep0() -> Flask:
    class Hello(ApiResource):
        async def get(self) -> dict[str, str]:
            await asyncio.sleep(0)
            return HELLO

    return _chassis_app("bench_chassis_async_sleep0", Hello)


def chassis_plain_flask_async() -> Flask:
    # A plain Flask async view on a chassis app: the chassis bridge without flask-restful.
    app = Flask("bench_chassis_plain_async")
    CstMicroChassis().init_app(app)

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return HELLO

    return app


VARIANTS: dict[str, Callable[[], Flask]] = {
    "plain Flask sync view": plain_flask_sync,
    "bare Flask-RESTful sync": bare_flask_restful,
    "chassis sync ApiResource": chassis_sync,
    "chassis sync, flask_restful.Api": chassis_sync_plain_api,
    "chassis async ApiResource": chassis_async,
    "chassis async + sleep(0)": chassis_async_sleep0,
    "chassis bridge, plain async view": chassis_plain_flask_async,
    "Flask default bridge, async view": plain_flask_async_default_bridge,
}
# Flask's default bridge is ~10x slower: fewer calls keep a round short without changing µs/call.
SLOW = {"Flask default bridge, async view": 4}


def time_calls(app: WSGIApp, environ: dict[str, Any], calls: int) -> float:
    """Return µs per request over ``calls`` WSGI calls (a non-200 answer raises)."""
    started = time.perf_counter()
    callgrind.call(app, environ, calls)
    return (time.perf_counter() - started) / calls * 1e6


DROP_IN = ["bare Flask-RESTful sync", "chassis sync, flask_restful.Api", "chassis sync ApiResource"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin the process to")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    parser.add_argument(
        "--callgrind", action="store_true", help="count instructions per request instead"
    )
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one variant, run under valgrind
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    if args.callgrind:
        per_request = callgrind_report()
        if args.json:
            bench_json.write(
                args.json, "overhead-callgrind", {"instructions_per_request": per_request}
            )
        return
    if args.only:
        run_only(args.only, args.calls)
        return

    if not args.no_pin:
        os.sched_setaffinity(0, {args.cpu})
    # The chassis logs to stdout at INFO; nothing is logged per request, but keep it quiet.
    logging.disable(logging.WARNING)

    environ = EnvironBuilder(path="/hello", method="GET").get_environ()
    apps = {name: factory() for name, factory in VARIANTS.items()}
    for name, app in apps.items():  # warm-up (also starts the chassis loop thread)
        time_calls(app, environ, 200 // SLOW.get(name, 1))

    samples: dict[str, list[float]] = {name: [] for name in apps}
    gc.collect()
    for _ in range(args.rounds):
        for name, app in apps.items():
            calls = max(args.calls // SLOW.get(name, 1), 1)
            samples[name].append(time_calls(app, environ, calls))

    ratios = report(samples, args)
    if args.json:
        results = {
            "pinned": not args.no_pin,
            "median_us": {name: statistics.median(values) for name, values in samples.items()},
            "ratios": ratios,
        }
        bench_json.write(args.json, "overhead", results)


# (label, numerator, denominator, target): each ratio is the median of the per-round ratios,
# which cancels the slow phases of a shared machine better than a ratio of medians.
RATIOS: list[tuple[str, str, str, float | None]] = [
    ("bare Flask-RESTful / plain Flask", "bare Flask-RESTful sync", "plain Flask sync view", None),
    (
        "chassis sync / bare Flask-RESTful",
        "chassis sync ApiResource",
        "bare Flask-RESTful sync",
        1.10,
    ),
    (
        "chassis sync on flask_restful.Api / bare FR",
        "chassis sync, flask_restful.Api",
        "bare Flask-RESTful sync",
        None,
    ),
    ("chassis async / chassis sync", "chassis async ApiResource", "chassis sync ApiResource", 2.0),
    (
        "chassis async + sleep(0) / chassis sync",
        "chassis async + sleep(0)",
        "chassis sync ApiResource",
        2.0,
    ),
    (
        "chassis plain async / plain Flask sync",
        "chassis bridge, plain async view",
        "plain Flask sync view",
        None,
    ),
    (
        "Flask default async / chassis sync",
        "Flask default bridge, async view",
        "chassis sync ApiResource",
        None,
    ),
    (
        "Flask default async / chassis async",
        "Flask default bridge, async view",
        "chassis async ApiResource",
        None,
    ),
]


def report(samples: dict[str, list[float]], args: argparse.Namespace) -> dict[str, float]:
    pinned = "not pinned" if args.no_pin else f"pinned to CPU {args.cpu}"
    print(
        f"Python {sys.version.split()[0]}, Flask {version('flask')}, "
        f"Flask-RESTful {version('flask-restful')}; {args.rounds} rounds x {args.calls} calls, "
        f"{pinned}, load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'variant':36} {'median µs':>10} {'min µs':>8} {'max µs':>8}")
    for name, values in samples.items():
        print(f"{name:36} {statistics.median(values):10.1f} {min(values):8.1f} {max(values):8.1f}")
    print()
    ratios = {}
    for label, num, den, target in RATIOS:
        ratio = statistics.median(a / b for a, b in zip(samples[num], samples[den], strict=True))
        ratios[label] = ratio
        verdict = ""
        if target is not None:
            verdict = f"  (target <= {target:.2f}: {'ok' if ratio <= target else 'MISSED'})"
        print(f"{label:42} {ratio:6.2f}x{verdict}")
    return ratios


# --- instruction counts (valgrind's callgrind; bench/callgrind.py) ---------------------------
CALLGRIND_VARIANTS = [
    "bare Flask-RESTful sync",
    "chassis sync ApiResource",
    "chassis sync, flask_restful.Api",
    "chassis async ApiResource",
]
CALLGRIND_CALLS = (100, 600)


def run_only(name: str, calls: int) -> None:
    """The callgrind child: warm up (caches filled, the loop thread started), then ``calls``."""
    logging.disable(logging.WARNING)
    environ = EnvironBuilder(path="/hello", method="GET").get_environ()
    callgrind.serve(VARIANTS[name](), environ, calls)


def callgrind_report() -> dict[str, float]:
    callgrind.require_valgrind()
    low, high = CALLGRIND_CALLS
    print(
        f"Python {sys.version.split()[0]}, Flask {version('flask')}, Flask-RESTful "
        f"{version('flask-restful')}; callgrind, ({high} - {low} requests) per variant"
    )
    per_request = {}
    for name in CALLGRIND_VARIANTS:
        per_request[name] = callgrind.per_request([__file__, "--only", name], low, high)
        print(f"{name:36} {per_request[name] / 1000:8.0f}k instructions per request", flush=True)
    base = per_request["bare Flask-RESTful sync"]
    sync = per_request["chassis sync ApiResource"]
    print()
    for name, value in per_request.items():
        print(
            f"{name:36} {value / base:6.3f}x bare Flask-RESTful  {value / sync:6.3f}x chassis sync"
        )
    return per_request


if __name__ == "__main__":
    main()
