"""Real-server load: chassis vs bare Flask-RESTful on the same hello endpoint under gunicorn.

Both apps run under gunicorn with the same settings (gthread, 2 workers x 8 threads, 127.0.0.1,
no access log); the load generator hits one, then the other, for several rounds, and the script
prints requests/s and p50/p99 latency (medians over the rounds) and the chassis/bare ratios.

Load generator: ``wrk`` when it is installed (``apt-get install -y wrk``), else a small Python
one (threads on keep-alive ``http.client`` connections; it needs more CPU than wrk, so on a small
machine its absolute figures are lower, the ratio is what to read). Run by hand, not in CI::

    .venv/bin/python bench/load.py                 # wrk if present, 3 rounds of 5 s
    .venv/bin/python bench/load.py --tool python --rounds 5 --duration 10

The apps live in this file too: gunicorn imports it as ``load:create_app('bare'|'chassis')``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import bench_json
from flask import Flask

HERE = Path(__file__).resolve().parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


def create_app(kind: str) -> Flask:
    """The hello app: ``bare`` (flask_restful.Api + Resource) or ``chassis`` (full chassis)."""
    import flask_restful

    app = Flask(f"bench-{kind}")
    if kind == "bare":

        class BareHello(flask_restful.Resource):
            def get(self) -> dict[str, str]:
                return {"hello": "world"}

        flask_restful.Api(app).add_resource(BareHello, "/hello")
        return app

    from cst_chassis import ChassisApi, CstMicroChassis
    from cst_chassis.resources import ApiResource

    class ChassisHello(ApiResource):
        def get(self) -> dict[str, str]:
            return {"hello": "world"}

    CstMicroChassis().init_app(app)
    ChassisApi(app).add_resource(ChassisHello, "/hello")
    return app


@dataclass
class Figures:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


@contextmanager
def serve(kind: str, workers: int, threads: int) -> Iterator[int]:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CST_")}
    command = [
        str(GUNICORN),
        "--worker-class=gthread",
        f"--workers={workers}",
        f"--threads={threads}",
        f"--bind=fd://{listener.fileno()}",
        f"--pythonpath={HERE}",
        "--log-level=warning",
        f"load:create_app({kind!r})",
    ]
    process = subprocess.Popen(
        command, env=env, pass_fds=(listener.fileno(),), stdout=subprocess.DEVNULL
    )
    listener.close()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/hello")
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)


_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    assert match is not None, text
    return float(match[1]) * _WRK_UNITS[match[2]]


def run_wrk(port: int, connections: int, duration: float) -> Figures:
    output = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            f"http://127.0.0.1:{port}/hello",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])  # type: ignore[index]  # wrk always prints it
    p50 = _wrk_ms(re.search(r"\s50%\s+(\S+)", output)[1])  # type: ignore[index]  # --latency prints it
    p99 = _wrk_ms(re.search(r"\s99%\s+(\S+)", output)[1])  # type: ignore[index]  # --latency prints it
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    count = int(errors[1]) if errors else 0
    if socket_errors:
        count += sum(int(n) for n in re.findall(r"\d+", socket_errors[1]))
    return Figures(rps, p50, p99, count)


def run_python(port: int, connections: int, duration: float) -> Figures:
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    stop_at = time.monotonic() + duration

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = latencies[index]
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                conn.request("GET", "/hello")
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors[index] += 1
            except OSError:
                errors[index] += 1
                conn.close()
                continue
            mine.append(time.perf_counter() - started)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    begun = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - begun
    merged = sorted(x for chunk in latencies for x in chunk)
    quantiles = statistics.quantiles(merged, n=100)
    return Figures(len(merged) / elapsed, quantiles[49] * 1000, quantiles[98] * 1000, sum(errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    tool = args.tool
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "python"
    run = run_wrk if tool == "wrk" else run_python
    duration = int(args.duration) if tool == "wrk" else args.duration

    print(
        f"gunicorn gthread {args.workers} workers x {args.threads} threads; load: {tool}, "
        f"{args.connections} connections, {args.rounds} rounds of {duration} s; "
        f"{os.cpu_count()} CPUs shared by server and load generator"
    )
    results: dict[str, list[Figures]] = {"bare": [], "chassis": []}
    with (
        serve("bare", args.workers, args.threads) as bare_port,
        serve("chassis", args.workers, args.threads) as chassis_port,
    ):
        ports = {"bare": bare_port, "chassis": chassis_port}
        for port in ports.values():  # warm-up
            run(port, args.connections, 1)
        for round_number in range(args.rounds):
            for kind, port in ports.items():
                figures = run(port, args.connections, duration)
                results[kind].append(figures)
                print(
                    f"  round {round_number + 1} {kind:8} {figures.requests_per_second:8.0f} req/s"
                    f"  p50 {figures.p50_ms:6.2f} ms  p99 {figures.p99_ms:6.2f} ms"
                    f"  errors {figures.errors}"
                )

    def med(kind: str, attribute: str) -> float:
        return float(statistics.median(getattr(f, attribute) for f in results[kind]))

    def best(kind: str, attribute: str) -> float:
        values = [getattr(f, attribute) for f in results[kind]]
        return float(max(values) if attribute == "requests_per_second" else min(values))

    # Median: the typical run. Best (highest req/s, lowest latencies): the run least disturbed
    # by whatever else the machine was doing, often the steadier ratio on a shared machine.
    for title, pick in (("median of rounds", med), ("best of rounds", best)):
        print(f"{title:22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
        for kind, label in (("bare", "bare Flask-RESTful"), ("chassis", "cst-chassis")):
            print(
                f"  {label:20}{pick(kind, 'requests_per_second'):10.0f}"
                f"{pick(kind, 'p50_ms'):10.2f}{pick(kind, 'p99_ms'):10.2f}"
            )
        print(
            f"  {'chassis / bare':20}"
            f"{pick('chassis', 'requests_per_second') / pick('bare', 'requests_per_second'):10.2f}"
            f"{pick('chassis', 'p50_ms') / pick('bare', 'p50_ms'):10.2f}"
            f"{pick('chassis', 'p99_ms') / pick('bare', 'p99_ms'):10.2f}"
        )
    total_errors = sum(f.errors for chunk in results.values() for f in chunk)
    print(f"errors (non-2xx or socket): {total_errors}")
    if args.json:
        summary = {
            title: {
                kind: {a: pick(kind, a) for a in ("requests_per_second", "p50_ms", "p99_ms")}
                for kind in ("bare", "chassis")
            }
            for title, pick in (("median", med), ("best", best))
        }
        bench_json.write(args.json, "load", {"tool": tool, **summary, "errors": total_errors})


if __name__ == "__main__":
    main()
