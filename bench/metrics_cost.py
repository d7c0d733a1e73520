"""Cost of the metrics per request: a sync hello with metrics on vs off, in callgrind instructions.

Timings are noise on a shared machine; instruction counts are repeatable. Each variant runs in a
process of its own under ``valgrind --tool=callgrind`` twice, with ``--calls`` and with
``--calls + --extra`` requests; the difference divided by ``--extra`` is the cost of one request,
start-up and warm-up excluded. The app is the chassis's ``ApiResource`` hello on ``ChassisApi``,
called as a WSGI app (no server), metrics off (``CST_METRICS_ENDPOINT=off``) and on (default).

    .venv/bin/python bench/metrics_cost.py                 # 200 + 1000 calls per variant
    .venv/bin/python bench/metrics_cost.py --extra 2000

Target (issue 12): metrics on <= 1.05x metrics off.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.test import EnvironBuilder

from cst_chassis import ChassisApi, CstMicroChassis
from cst_chassis.resources import ApiResource

VARIANTS = {"off": {"CST_METRICS_ENDPOINT": "off"}, "on": {}}


class Hello(ApiResource):
    def get(self) -> dict[str, str]:
        return {"hello": "world"}


def build(variant: str) -> Flask:
    app = Flask(f"bench_metrics_{variant}")
    app.config.update(VARIANTS[variant])
    CstMicroChassis().init_app(app)
    ChassisApi(app).add_resource(Hello, "/hello")
    return app


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    return None


def serve(variant: str, calls: int) -> None:
    """Answer ``calls`` hello requests (the body consumed), after a warm-up of 50.

    The garbage collector is off during the measured calls: when a collection happens, and what
    it costs, depends on the heap of the whole process, not on the request (it made runs differ
    by several thousand instructions per request).
    """
    app: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]] = build(variant)
    environ = EnvironBuilder(path="/hello").get_environ()
    for _ in range(50):
        _call(app, environ)
    gc.collect()
    gc.freeze()
    gc.disable()
    for _ in range(calls):
        _call(app, environ)


def _call(
    app: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]], environ: dict[str, Any]
) -> None:
    body = app(dict(environ), _start_response)
    for _chunk in body:
        pass
    close = getattr(body, "close", None)
    if close is not None:
        close()


def instructions(variant: str, calls: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--serve",
                variant,
                "--calls",
                str(calls),
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0"},
        )
        summary = re.search(r"^summary: (\d+)", out.read_text(), re.M)
        assert summary is not None, "no summary line in the callgrind output"
        return int(summary[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="requests in the base run")
    parser.add_argument("--extra", type=int, default=1000, help="requests added in the 2nd run")
    parser.add_argument("--serve", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.calls)
        return
    per_request = {}
    for variant in VARIANTS:
        base = instructions(variant, args.calls)
        more = instructions(variant, args.calls + args.extra)
        per_request[variant] = (more - base) / args.extra
        print(f"metrics {variant:>3}: {per_request[variant] / 1000:8.1f}k instructions / request")
    print(f"ratio on/off: {per_request['on'] / per_request['off']:.3f}x (target <= 1.05x)")


if __name__ == "__main__":
    main()
