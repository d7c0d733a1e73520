"""Cost of the metrics per request: a sync hello with metrics on vs off, in callgrind instructions.

Timings are noise on a shared machine; instruction counts are repeatable. Each variant runs in a
process of its own under ``valgrind --tool=callgrind`` twice, with ``--calls`` and with
``--calls + --extra`` requests; the difference divided by ``--extra`` is the cost of one request,
start-up and warm-up excluded. The app is the chassis's ``ApiResource`` hello on ``ChassisApi``,
called as a WSGI app (no server), metrics off (``CST_METRICS_ENDPOINT=off``, the default) and
on (``CST_METRICS_ENDPOINT=/metrics``).

    .venv/bin/python bench/metrics_cost.py                 # 200 + 1000 calls per variant
    .venv/bin/python bench/metrics_cost.py --extra 2000
    .venv/bin/python bench/metrics_cost.py --json out.json   # also write the figures as JSON

Target (issue 12): metrics on <= 1.05x metrics off.
"""

from __future__ import annotations

import argparse

import bench_json
import callgrind
from flask import Flask
from werkzeug.test import EnvironBuilder

from cst_chassis import ChassisApi, CstMicroChassis
from cst_chassis.resources import ApiResource

VARIANTS = {"off": {"CST_METRICS_ENDPOINT": "off"}, "on": {"CST_METRICS_ENDPOINT": "/metrics"}}


class Hello(ApiResource):
    def get(self) -> dict[str, str]:
        return {"hello": "world"}


def build(variant: str) -> Flask:
    app = Flask(f"bench_metrics_{variant}")
    app.config.update(VARIANTS[variant])
    CstMicroChassis().init_app(app)
    ChassisApi(app).add_resource(Hello, "/hello")
    return app


def serve(variant: str, calls: int) -> None:
    """The callgrind child: ``calls`` hello requests after a warm-up of 50, the collector quiet."""
    environ = EnvironBuilder(path="/hello").get_environ()
    callgrind.serve(build(variant), environ, calls, quiet_gc=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="requests in the base run")
    parser.add_argument("--extra", type=int, default=1000, help="requests added in the 2nd run")
    parser.add_argument("--serve", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.calls)
        return
    callgrind.require_valgrind()
    per_request = {}
    for variant in VARIANTS:
        per_request[variant] = callgrind.per_request(
            [__file__, "--serve", variant],
            args.calls,
            args.calls + args.extra,
            env={"PYTHONMALLOC": "malloc"},
        )
        print(f"metrics {variant:>3}: {per_request[variant] / 1000:8.1f}k instructions / request")
    ratio = per_request["on"] / per_request["off"]
    print(f"ratio on/off: {ratio:.3f}x (target <= 1.05x)")
    if args.json:
        results = {"instructions_per_request": per_request, "on / off": ratio}
        bench_json.write(args.json, "metrics-cost", results)


if __name__ == "__main__":
    main()
