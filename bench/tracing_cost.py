"""Per-request CPU cost of the tracing work, in callgrind instructions, against a baseline commit.

Issue 13's target: with no ``traceparent`` and no OpenTelemetry, a request costs <= 1.03x what it
cost before tracing existed. Instruction counts (valgrind's callgrind) are repeatable on a shared
machine where timings are not. For each source tree (this checkout's ``src`` and ``src`` of the
baseline commit, extracted with ``git archive``) and each scenario, a child process serves N and
then 2N WSGI requests under callgrind; ``(I(2N) - I(N)) / N`` is the cost of one request, start-up
cancelled out.

    .venv/bin/python bench/tracing_cost.py                      # baseline bffa0b0, N = 300
    .venv/bin/python bench/tracing_cost.py --baseline main --calls 500
    .venv/bin/python bench/tracing_cost.py --scenario "chassis sync ApiResource"

Scenarios: the chassis sync ``ApiResource`` hello (no trace headers: the target), the same with
an incoming ``traceparent`` + ``tracestate``, and a plain Flask view on a chassis app.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = ["chassis sync ApiResource", "same + traceparent", "plain Flask view on chassis"]
TRACE_HEADERS = {
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "tracestate": "rojo=00f067aa0ba902b7",
}


def child(scenario: str, calls: int) -> None:
    """Serve ``calls`` requests of ``scenario`` (run under callgrind by the parent)."""
    import logging

    from flask import Flask
    from werkzeug.test import EnvironBuilder

    from cst_chassis import ChassisApi, CstMicroChassis
    from cst_chassis.resources import ApiResource

    logging.disable(logging.WARNING)
    app = Flask("bench_tracing")
    CstMicroChassis().init_app(app)

    class Hello(ApiResource):
        def get(self) -> dict[str, str]:
            return {"hello": "world"}

    ChassisApi(app).add_resource(Hello, "/hello")

    @app.get("/plain")
    def plain() -> dict[str, str]:
        return {"hello": "world"}

    path = "/plain" if scenario == "plain Flask view on chassis" else "/hello"
    headers = TRACE_HEADERS if scenario == "same + traceparent" else {}
    environ = EnvironBuilder(path=path, headers=list(headers.items())).get_environ()
    wsgi: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]] = app.wsgi_app
    for _ in range(50):  # warm-up: first-request work and lazy imports happen in both runs
        _call(wsgi, environ)
    for _ in range(calls):
        _call(wsgi, environ)


def _call(wsgi: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> None:
    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        if not status.startswith("200"):
            raise RuntimeError(f"bench request failed: {status}")

    body = wsgi(environ.copy(), start_response)
    for _chunk in body:
        pass
    close = getattr(body, "close", None)
    if close is not None:
        close()


def instructions(src: Path, scenario: str, calls: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/out",
                sys.executable,
                __file__,
                "--child",
                scenario,
                "--calls",
                str(calls),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    match = re.search(r"Collected : (\d+)", result.stderr)
    if match is None:
        raise RuntimeError(result.stderr[-2000:])
    return int(match.group(1))


def per_request(src: Path, scenario: str, calls: int) -> float:
    return (instructions(src, scenario, 2 * calls) - instructions(src, scenario, calls)) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="bffa0b0", help="git ref of the baseline")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="default: all")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.calls)
        return
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", args.baseline, "src"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        trees = {"baseline": Path(tmp) / "src", "current": REPO / "src"}
        print(f"instructions per request (callgrind), N = {args.calls}, baseline {args.baseline}")
        print(f"{'scenario':32} {'baseline':>10} {'current':>10} {'ratio':>7}")
        for scenario in args.scenario or SCENARIOS:
            base = per_request(trees["baseline"], scenario, args.calls)
            current = per_request(trees["current"], scenario, args.calls)
            print(f"{scenario:32} {base:10.0f} {current:10.0f} {current / base:6.3f}x")


if __name__ == "__main__":
    main()
