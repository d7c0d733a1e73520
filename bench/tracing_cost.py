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
    .venv/bin/python bench/tracing_cost.py --json out.json   # also write the figures as JSON

Scenarios: the chassis sync ``ApiResource`` hello (no trace headers: the target), the same with
an incoming ``traceparent`` + ``tracestate``, and a plain Flask view on a chassis app.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import bench_json
import callgrind

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
    # warm-up: first-request work and lazy imports happen in both runs
    callgrind.serve(app.wsgi_app, environ, calls)


def per_request(src: Path, scenario: str, calls: int) -> float:
    return callgrind.per_request(
        [__file__, "--child", scenario],
        calls,
        2 * calls,
        env={"PYTHONPATH": str(src)},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="bffa0b0", help="git ref of the baseline")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="default: all")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.calls)
        return
    callgrind.require_valgrind()
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
        results: dict[str, dict[str, float]] = {}
        for scenario in args.scenario or SCENARIOS:
            base = per_request(trees["baseline"], scenario, args.calls)
            current = per_request(trees["current"], scenario, args.calls)
            print(f"{scenario:32} {base:10.0f} {current:10.0f} {current / base:6.3f}x")
            results[scenario] = {"baseline": base, "current": current, "ratio": current / base}
    if args.json:
        bench_json.write(args.json, "tracing-cost", {"baseline": args.baseline, **results})


if __name__ == "__main__":
    main()
