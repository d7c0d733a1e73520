"""The deployment sweep: servers x worker processes x threads on this machine, short rounds.

Chooses the command line the Deployment page recommends for each of two workloads, with the
services and harness of ``bench/serve.py``:

- ``sync`` (mostly sync resources): the chassis's sync PostgreSQL lookup (``chassis-sync``,
  psycopg) at 64 connections, on granian's WSGI interface, gunicorn gthread, and the ASGI path
  (``cst_chassis.asgi.asgi_app``: sync views in its thread pool) on uvicorn and granian;
- ``async`` (async resources calling slow upstreams): the chassis's fan-out (``chassis-async``,
  three concurrent aiohttp calls to an upstream answering after 200 ms) at 128 and 512
  connections, on the ASGI path on uvicorn and granian, and through the WSGI bridge on gunicorn
  with many threads (the way before the ASGI path).

Every configuration is started, warmed up for a second, loaded with wrk for ``--duration``
seconds per connection count and stopped; ``--rounds`` repeats the whole list (interleaved).
The choice per workload is the configuration with the most requests per second (median of the
rounds, at its largest connection count) among those without errors whose p99 is within 1.25x
of the lowest p99 measured for that workload; the script prints the ranking and the choice.

    .venv/bin/python bench/sweep.py --json bench/results/serve-sweep.json
    .venv/bin/python bench/sweep.py --workloads async --duration 2      # a quick look
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Any

import bench_json
import serve
import serve_app


@dataclass(frozen=True)
class Config:
    """One point of the sweep: a server serving an app with so many processes and threads."""

    server: str
    app: str
    workers: int
    threads: int

    @property
    def name(self) -> str:
        """``server WORKERSxTHREADS``, or ``server WORKERSw`` where threads play no part."""
        if self.server in serve.ASGI_SERVERS and self.app == "chassis-async":
            return f"{self.server} {self.workers}w"
        return f"{self.server} {self.workers}x{self.threads}"


WORKLOADS: dict[str, tuple[str, list[int], list[Config]]] = {
    "sync": (
        "lookup",
        [64],
        [
            *(Config("granian-wsgi", "chassis-sync", w, t) for w in (2, 3, 4) for t in (4, 8, 16)),
            *(Config("gunicorn", "chassis-sync", w, t) for w in (2, 4) for t in (4, 8)),
            *(Config("uvicorn", "chassis-sync", w, t) for w, t in ((2, 8), (2, 16), (4, 8))),
            *(Config("granian-asgi", "chassis-sync", w, t) for w, t in ((2, 8), (4, 8))),
        ],
    ),
    "async": (
        "fanout",
        [128, 512],
        [
            *(Config("uvicorn", "chassis-async", w, 8) for w in (1, 2, 3, 4)),
            *(Config("granian-asgi", "chassis-async", w, 8) for w in (1, 2, 3, 4)),
            *(Config("gunicorn", "chassis-async", 2, t) for t in (64, 256)),
        ],
    ),
}
P99_SLACK = 1.25


def command_line(config: Config) -> str:
    """The shell command that serves ``myservice`` the way ``config`` did.

    ``myservice.app:create_app`` is the Flask app factory; ``myservice.asgi:create_asgi_app``
    returns ``cst_chassis.asgi.asgi_app(create_app())`` (the Deployment page's "ASGI" section).
    """
    threads = f"CST_ASGI_THREADS={config.threads} " if config.app == "chassis-sync" else ""
    if config.server == "uvicorn":
        return (
            f"{threads}uvicorn --factory myservice.asgi:create_asgi_app --host 0.0.0.0 --port 8000"
            f" --workers {config.workers} --loop uvloop --http httptools --no-access-log"
            " --timeout-graceful-shutdown 30"
        )
    if config.server == "granian-asgi":
        return (
            f"{threads}granian --interface asgi --factory myservice.asgi:create_asgi_app"
            f" --host 0.0.0.0 --port 8000 --workers {config.workers} --loop uvloop"
            " --workers-kill-timeout 30 --no-access-log"
        )
    if config.server == "granian-wsgi":
        return (
            "granian --interface wsgi --factory myservice.app:create_app --host 0.0.0.0"
            f" --port 8000 --workers {config.workers} --blocking-threads {config.threads}"
            " --workers-kill-timeout 30 --no-access-log"
        )
    return (
        "gunicorn -c python:cst_chassis.gunicorn_hooks"
        f" --workers {config.workers} --threads {config.threads} --graceful-timeout 25"
        " --bind 0.0.0.0:8000 'myservice.app:create_app()'"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workloads", default="sync,async")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--duration", type=float, default=3, help="seconds per measured run")
    parser.add_argument("--connections", type=int, help="one count for all (a smoke run)")
    parser.add_argument("--only", default="", help="configurations whose name contains this")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    workloads = [w for w in args.workloads.split(",") if w]
    load_before = [round(x, 2) for x in os.getloadavg()]
    print(f"{os.cpu_count()} CPUs; load average before the run {' '.join(map(str, load_before))}")
    extra: dict[str, str] = {}
    if "sync" in workloads:
        url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("CST_TEST_POSTGRES_URL")
        if not url:
            sys.exit("set BENCH_DATABASE_URL (or CST_TEST_POSTGRES_URL) to a PostgreSQL database")
        extra["BENCH_DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"] = url
        serve_app.seed(serve_app.database_urls()[0])

    runs: dict[tuple[str, Config, int], list[serve.Figures]] = {}
    with ExitStack() as stack:
        if "async" in workloads:
            extra["BENCH_UPSTREAM"] = stack.enter_context(serve.upstream(1))
        for round_number in range(1, args.rounds + 1):
            for workload in workloads:
                kind, connections, configs = WORKLOADS[workload]
                if args.connections:
                    connections = [args.connections]
                for config in configs:
                    if args.only not in config.name:
                        continue
                    settings = serve.Settings(config.workers, config.threads)
                    with serve.serve(config.server, config.app, kind, settings, extra) as handle:
                        for count in connections:
                            figures = serve.measure(handle, count, args.duration)
                            runs.setdefault((workload, config, count), []).append(figures)
                            print(
                                f"  round {round_number} {workload:5} {config.name:20} "
                                f"c{count:<4} {figures.requests_per_second:7.0f} req/s  p50 "
                                f"{figures.p50_ms:7.2f} ms  p99 {figures.p99_ms:7.2f} ms  "
                                f"errors {figures.errors}  CPU "
                                f"{figures.cpu_us_per_request:5.0f} µs/req  peak RSS "
                                f"{figures.peak_rss_mb:5.1f} MB/worker",
                                flush=True,
                            )
    results: dict[str, Any] = {
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "rounds": args.rounds,
        "duration_s": args.duration,
        "p99_slack": P99_SLACK,
    }
    for workload in workloads:
        results[workload] = choose(workload, runs)
    if args.json:
        bench_json.write(args.json, "sweep", results)


def choose(
    workload: str, runs: dict[tuple[str, Config, int], list[serve.Figures]]
) -> dict[str, Any]:
    """Rank the workload's configurations at its largest connection count; print and return."""
    kind = WORKLOADS[workload][0]
    rows = []
    for (name, config, count), figures in runs.items():
        if name == workload:
            rows.append(
                {
                    **asdict(config),
                    "name": config.name,
                    "connections": count,
                    "requests_per_second": statistics.median(
                        f.requests_per_second for f in figures
                    ),
                    "p50_ms": statistics.median(f.p50_ms for f in figures),
                    "p99_ms": statistics.median(f.p99_ms for f in figures),
                    "errors": sum(f.errors for f in figures),
                    "cpu_us_per_request": statistics.median(f.cpu_us_per_request for f in figures),
                    "peak_rss_mb": max(f.peak_rss_mb for f in figures),
                }
            )
    connections = sorted({r["connections"] for r in rows})
    top = max(connections)
    at_top = [r for r in rows if r["connections"] == top]
    best_p99 = min(r["p99_ms"] for r in at_top)
    eligible = [r for r in at_top if not r["errors"] and r["p99_ms"] <= P99_SLACK * best_p99]
    chosen = max(eligible or at_top, key=lambda r: r["requests_per_second"])
    config = Config(chosen["server"], chosen["app"], chosen["workers"], chosen["threads"])
    print(f"\n{workload} ({kind}), ranked at {top} connections:")
    for row in sorted(at_top, key=lambda r: -r["requests_per_second"]):
        mark = "  <- chosen" if row is chosen else ""
        print(
            f"  {row['name']:20} {row['requests_per_second']:7.0f} req/s  p99 "
            f"{row['p99_ms']:8.2f} ms  errors {row['errors']}  CPU "
            f"{row['cpu_us_per_request']:5.0f} µs/req  RSS {row['peak_rss_mb']:5.1f} MB{mark}"
        )
    print(f"  command line: {command_line(config)}")
    return {
        "workload": kind,
        "connections": connections,
        "runs": rows,
        "chosen": chosen["name"],
        "command_line": command_line(config),
    }


if __name__ == "__main__":
    main()
