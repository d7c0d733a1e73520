"""Side by side: one PostgreSQL lookup per request on each server, against FastAPI + uvicorn.

Services (``bench/serve_app.py``): bare Flask-RESTful, chassis sync (psycopg), chassis async
(asyncpg on the chassis loop), each on every WSGI server installed here (gunicorn gthread,
granian's WSGI interface, uWSGI, waitress), and FastAPI on uvicorn[standard] (httptools +
uvloop, asyncpg) as the baseline. Each run starts the server on a free loopback port, warms it up,
loads it with ``wrk`` (``apt-get install -y wrk``) and stops it; every round runs every pair in
turn (A B C …, A B C …), so a slow phase of a shared machine hits all of them. The script prints
each run, then the medians and the ratios against FastAPI from this one run, as a Markdown table.

    .venv/bin/pip install -e '.[bench]'
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/serve.py                       # 3 rounds x 5 s, everything
    .venv/bin/python bench/serve.py --servers granian,uvicorn --apps chassis-sync,fastapi
    .venv/bin/python bench/serve.py --json serve.json        # also the figures for bench/charts.py

``CST_TEST_POSTGRES_URL`` is used when ``BENCH_DATABASE_URL`` is not set. Settings (the same for
every server): ``--workers`` processes x ``--threads`` threads, a pool of ``--threads``
connections per process, ``wrk -t2 -c<connections>`` keep-alive connections. waitress has no
worker processes: it runs one process with ``workers x threads`` threads.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_json
import serve_app

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PATH = "/items/42"


@dataclass(frozen=True)
class Settings:
    workers: int
    threads: int


def gunicorn(port: int, s: Settings, asgi: bool) -> list[str]:
    return [
        str(BIN / "gunicorn"),
        "--worker-class=gthread",
        f"--workers={s.workers}",
        f"--threads={s.threads}",
        f"--bind=127.0.0.1:{port}",
        f"--chdir={HERE}",
        "--log-level=warning",
        "serve_app:app",
    ]


def granian(port: int, s: Settings, asgi: bool) -> list[str]:
    interface = ["--interface=asgi"] if asgi else ["--interface=wsgi", "--blocking-threads"]
    if not asgi:
        interface.append(str(s.threads))
    return [
        str(BIN / "granian"),
        *interface,
        f"--workers={s.workers}",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--working-dir={HERE}",
        "--no-access-log",
        "--log-level=warning",
        "serve_app:app",
    ]


def uwsgi(port: int, s: Settings, asgi: bool) -> list[str]:
    # The app is imported once in the master and the workers are forked from it (no lazy-apps):
    # the chassis bridge and the async engine's pool must cope with that.
    return [
        str(BIN / "uwsgi"),
        f"--http11-socket=127.0.0.1:{port}",
        "--master",
        f"--processes={s.workers}",
        f"--threads={s.threads}",
        f"--chdir={HERE}",
        "--module=serve_app:app",
        "--disable-logging",
        "--die-on-term",
        "--need-app",
    ]


def waitress(port: int, s: Settings, asgi: bool) -> list[str]:
    return [
        str(BIN / "waitress-serve"),
        f"--listen=127.0.0.1:{port}",
        f"--threads={s.workers * s.threads}",
        "serve_app:app",
    ]


def uvicorn(port: int, s: Settings, asgi: bool) -> list[str]:
    return [
        str(BIN / "uvicorn"),
        f"--workers={s.workers}",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--app-dir={HERE}",
        "--loop=uvloop",
        "--http=httptools",
        "--no-access-log",
        "--log-level=warning",
        "serve_app:app",
    ]


SERVERS: dict[str, Callable[[int, Settings, bool], list[str]]] = {
    "uvicorn": uvicorn,
    "granian": granian,
    "gunicorn": gunicorn,
    "uwsgi": uwsgi,
    "waitress": waitress,
}
WSGI_APPS = ["bare", "chassis-sync", "chassis-async", "chassis-async-asyncio"]
ASGI_APPS = ["fastapi"]
BASELINE = ("uvicorn", "fastapi")


def pairs(servers: list[str], apps: list[str]) -> list[tuple[str, str]]:
    """The (server, app) pairs to run: ASGI apps on uvicorn, WSGI apps on the others."""
    chosen = []
    for server in servers:
        for app in apps:
            if (server == "uvicorn") == (app in ASGI_APPS):
                chosen.append((server, app))
    return chosen


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


_TICK = os.sysconf("SC_CLK_TCK")
# Port -> session id of the server started on it (start_new_session: the session id is its pid).
_SESSIONS: dict[int, int] = {}


def session_of(port: int) -> int:
    return _SESSIONS[port]


def cpu_seconds(session: int) -> float:
    """CPU time (user + system) used so far by the live processes of the server's session."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # fields after "(comm)": state ppid pgrp session ...
            total += int(fields[11]) + int(fields[12])  # utime stime
    return total / _TICK


@contextmanager
def serve(server: str, app: str, settings: Settings, database_url: str) -> Iterator[int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CST_")}
    env |= {
        "BENCH_APP": app,
        "BENCH_DATABASE_URL": database_url,
        "BENCH_POOL": str(settings.threads),
    }
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    command = SERVERS[server](port, settings, app in ASGI_APPS)
    process = subprocess.Popen(
        command,
        env=env,
        cwd=HERE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", PATH)
                response = conn.getresponse()
                body = response.read()
                conn.close()
                if response.status != 200 or b'"price_cents"' not in body:
                    raise RuntimeError(f"{server}/{app} answered {response.status}: {body[:300]!r}")
                break
            except OSError:
                if process.poll() is not None:
                    stderr = process.stderr.read() if process.stderr else b""
                    raise RuntimeError(f"{server}/{app} exited: {stderr[-2000:]!r}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        _SESSIONS[port] = process.pid
        yield port
    finally:
        _SESSIONS.pop(port, None)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass(frozen=True)
class Figures:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    cpu_us_per_request: float = 0.0  # the server's own CPU (all its processes), not PostgreSQL's


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    assert match is not None, text
    return float(match[1]) * _UNITS[match[2]]


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}{PATH}"


def run_wrk(port: int, connections: int, duration: int) -> Figures:
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", _url(port)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"\s50%\s+(\S+)", output)
    p99 = re.search(r"\s99%\s+(\S+)", output)
    requests = re.search(r"(\d+) requests in", output)
    assert rps and p50 and p99 and requests, output
    errors = 0
    if non_2xx := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors += int(non_2xx[1])
    if socket_errors := re.search(r"Socket errors: (.*)", output):
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors[1]))
    return Figures(float(rps[1]), _ms(p50[1]), _ms(p99[1]), errors, int(requests[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--apps", default=",".join(WSGI_APPS + ASGI_APPS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    database_url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("CST_TEST_POSTGRES_URL")
    if not database_url:
        sys.exit("set BENCH_DATABASE_URL (or CST_TEST_POSTGRES_URL) to a PostgreSQL database")
    servers = [s for s in args.servers.split(",") if s]
    available = [s for s in servers if (BIN / SERVERS[s](0, Settings(1, 1), False)[0]).exists()]
    chosen = pairs(available, [a for a in args.apps.split(",") if a])
    settings = Settings(args.workers, args.threads)
    os.environ["BENCH_DATABASE_URL"] = database_url
    serve_app.seed(serve_app.database_urls()[0])

    print(
        f"{settings.workers} workers x {settings.threads} threads (pool {settings.threads} per "
        f"process), wrk -t2 -c{args.connections}, {args.rounds} rounds x {args.duration} s, "
        f"interleaved; {os.cpu_count()} CPUs shared by servers, wrk and PostgreSQL; load "
        f"average at start {os.getloadavg()[0]:.1f}"
    )
    results: dict[tuple[str, str], list[Figures]] = {pair: [] for pair in chosen}
    for round_number in range(1, args.rounds + 1):
        for server, app in chosen:
            with serve(server, app, settings, database_url) as port:
                run_wrk(port, args.connections, 1)  # warm-up: pools filled, code paths hot
                session = session_of(port)
                cpu_before = cpu_seconds(session)
                figures = run_wrk(port, args.connections, args.duration)
                cpu = (cpu_seconds(session) - cpu_before) / max(figures.requests, 1) * 1e6
                figures = dataclasses.replace(figures, cpu_us_per_request=cpu)
            results[(server, app)].append(figures)
            print(
                f"  round {round_number} {server:9} {app:14} {figures.requests_per_second:8.0f}"
                f" req/s  p50 {figures.p50_ms:6.2f} ms  p99 {figures.p99_ms:6.2f} ms"
                f"  errors {figures.errors}  server CPU {figures.cpu_us_per_request:5.0f} µs/req",
                flush=True,
            )
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    summary = report(results)
    if args.json:
        bench_json.write(args.json, "serve", summary)


def report(results: dict[tuple[str, str], list[Figures]]) -> dict[str, Any]:
    """Print the medians and the per-round ratios; return them for ``--json``."""

    def median(pair: tuple[str, str], attribute: str) -> float:
        return float(statistics.median(getattr(f, attribute) for f in results[pair]))

    base = median(BASELINE, "requests_per_second") if BASELINE in results else None
    print()
    print("| server | app | req/s | p50 ms | p99 ms | errors | vs FastAPI | server CPU µs/req |")
    print("|---|---|---|---|---|---|---|---|")
    medians: list[dict[str, Any]] = []
    ratios: list[dict[str, Any]] = []
    for pair in sorted(results, key=lambda p: -median(p, "requests_per_second")):
        rps = median(pair, "requests_per_second")
        ratio = f"{rps / base:.2f}" if base else "-"
        errors = sum(f.errors for f in results[pair])
        medians.append(
            {
                "server": pair[0],
                "app": pair[1],
                "requests_per_second": rps,
                "p50_ms": median(pair, "p50_ms"),
                "p99_ms": median(pair, "p99_ms"),
                "errors": errors,
                "vs_fastapi": rps / base if base else None,
                "cpu_us_per_request": median(pair, "cpu_us_per_request"),
            }
        )
        print(
            f"| {pair[0]} | {pair[1]} | {rps:.0f} | {median(pair, 'p50_ms'):.2f} | "
            f"{median(pair, 'p99_ms'):.2f} | {errors} | {ratio} | "
            f"{median(pair, 'cpu_us_per_request'):.0f} |"
        )
    print()
    # Ratios per round, then their median: a slow phase of the machine hits both runs of a round.
    print("median of per-round ratios:")
    for server in dict.fromkeys(name for name, _ in results):
        for numerator, denominator in RATIOS:
            num, den = (
                (server, numerator),
                (BASELINE if denominator == "fastapi" else (server, denominator)),
            )
            if num not in results or den not in results:
                continue
            rounds = list(zip(results[num], results[den], strict=True))
            rps = statistics.median(
                a.requests_per_second / b.requests_per_second for a, b in rounds
            )
            p99 = statistics.median(a.p99_ms / b.p99_ms for a, b in rounds)
            print(
                f"  {server:9} {numerator:22} / {denominator:13} req/s {rps:5.2f}  p99 {p99:5.2f}"
            )
            ratios.append(
                {
                    "server": server,
                    "numerator": numerator,
                    "denominator": denominator,
                    "requests_per_second": rps,
                    "p99": p99,
                }
            )
    return {"medians": medians, "per_round_ratios": ratios}


# (numerator app, denominator app) on the same server; "fastapi" is FastAPI on uvicorn.
RATIOS = [
    ("chassis-sync", "fastapi"),
    ("chassis-async", "fastapi"),
    ("chassis-sync", "bare"),
    ("chassis-async", "chassis-sync"),
    ("chassis-async-asyncio", "chassis-sync"),
]


if __name__ == "__main__":
    main()
