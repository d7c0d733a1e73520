"""Side by side on real servers: the chassis against FastAPI, a PostgreSQL lookup or a fan-out.

Two workloads (``bench/serve_app.py``), each served by every service in turn:

- ``--workload lookup`` (the default): ``GET /items/42``, one PostgreSQL primary-key lookup per
  request, ``wrk -c16``.
- ``--workload fanout``: ``GET /fanout`` awaits three concurrent calls to a slow upstream
  (``bench/upstream_app.py`` on uvicorn[standard], a process of its own, answering after 200 ms),
  with aiohttp as the client in FastAPI and in the chassis alike, at 128 and 512 connections.

Services are ``server:app`` pairs. Servers: ``uvicorn`` (uvicorn[standard]: httptools + uvloop)
and ``granian-asgi`` (granian's ASGI interface, uvloop) serve FastAPI and the chassis wrapped by
``cst_chassis.asgi.asgi_app`` (async views on the server's loop, sync views in its thread pool);
``granian-wsgi``, ``gunicorn`` (gthread), ``uwsgi`` and ``waitress`` serve the chassis as a WSGI
app (async views through the chassis's WSGI bridge). Apps: ``fastapi``, ``chassis-async``,
``chassis-sync`` and (lookup, WSGI servers) ``bare`` Flask-RESTful. Every service runs
``--workers`` processes; ``--threads`` is the WSGI servers' threads per process and the size of
each process's pools (database connections; the ASGI path's thread pool for sync views).

Each round starts every service in turn on a free loopback port, warms it up for a second at
each connection count, loads it with ``wrk`` (``apt-get install -y wrk``; ``--timeout 10s``, so
a slow answer is a latency, not an error) and stops it (A B C …, A B C …): a slow phase of a
shared machine hits all of them. Printed, and written with ``--json``: req/s, p50 and p99,
errors, the server's CPU time per request (user + system of all its processes, from ``/proc``:
not PostgreSQL's, wrk's or the upstream's) and its peak RSS per worker process, the medians
over the rounds and the ratios against FastAPI on uvicorn from the same run, and the load
average before the run.

    .venv/bin/pip install -e '.[bench]'
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/serve.py --json bench/results/serve.json
    .venv/bin/python bench/serve.py --workload fanout --json bench/results/serve-fanout.json
    .venv/bin/python bench/serve.py --pairs uvicorn:fastapi,uvicorn:chassis-async --rounds 5
    .venv/bin/python bench/serve.py --workload fanout --pairs uvicorn:chassis-async \\
        --rounds 1 --profile bench/results      # py-spy on each worker during the run

``CST_TEST_POSTGRES_URL`` is used when ``BENCH_DATABASE_URL`` is not set (the fan-out needs no
database). waitress has no worker processes: it runs one process with ``workers x threads``
threads.
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
PATHS = {"lookup": "/items/42", "fanout": "/fanout"}
# What a correct answer contains, checked once before each service is loaded.
EXPECTED = {"lookup": b'"price_cents"', "fanout": b'"upstream"'}
DEFAULT_CONNECTIONS = {"lookup": "16", "fanout": "128,512"}
UPSTREAM_DELAY = 0.2


@dataclass(frozen=True)
class Settings:
    """What every service of one run gets: processes, and threads (pool size) per process."""

    workers: int
    threads: int


def gunicorn(port: int, s: Settings) -> list[str]:
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


def _granian(port: int, s: Settings, interface: list[str]) -> list[str]:
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


def granian_wsgi(port: int, s: Settings) -> list[str]:
    return _granian(port, s, ["--interface=wsgi", f"--blocking-threads={s.threads}"])


def granian_asgi(port: int, s: Settings) -> list[str]:
    return _granian(port, s, ["--interface=asgi", "--loop=uvloop"])


def uwsgi(port: int, s: Settings) -> list[str]:
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


def waitress(port: int, s: Settings) -> list[str]:
    return [
        str(BIN / "waitress-serve"),
        f"--listen=127.0.0.1:{port}",
        f"--threads={s.workers * s.threads}",
        "serve_app:app",
    ]


def uvicorn(port: int, s: Settings, app: str = "serve_app:app") -> list[str]:
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
        app,
    ]


SERVERS: dict[str, Callable[[int, Settings], list[str]]] = {
    "uvicorn": uvicorn,
    "granian-asgi": granian_asgi,
    "granian-wsgi": granian_wsgi,
    "gunicorn": gunicorn,
    "uwsgi": uwsgi,
    "waitress": waitress,
}
ASGI_SERVERS = {"uvicorn", "granian-asgi"}
APPS = ("fastapi", "chassis-async", "chassis-sync", "bare")
BASELINE = ("uvicorn", "fastapi")
# The pairs a run loads unless --pairs says otherwise: FastAPI on both ASGI servers, the chassis
# on every server the project recommends or documents first.
DEFAULT_PAIRS = {
    "lookup": [
        "uvicorn:fastapi",
        "granian-asgi:fastapi",
        "uvicorn:chassis-async",
        "granian-asgi:chassis-async",
        "uvicorn:chassis-sync",
        "granian-asgi:chassis-sync",
        "granian-wsgi:chassis-sync",
        "gunicorn:chassis-sync",
        "granian-wsgi:chassis-async",
        "granian-wsgi:bare",
    ],
    "fanout": [
        "uvicorn:fastapi",
        "granian-asgi:fastapi",
        "uvicorn:chassis-async",
        "granian-asgi:chassis-async",
        "gunicorn:chassis-async",
        "uvicorn:chassis-sync",
        "granian-wsgi:chassis-sync",
    ],
}


def supported(server: str, app: str, workload: str) -> bool:
    """Whether ``server`` can serve ``app``: FastAPI only on ASGI, bare Flask-RESTful on WSGI."""
    if app == "fastapi":
        return server in ASGI_SERVERS
    if app == "bare":
        return server not in ASGI_SERVERS and workload == "lookup"
    return True


def parse_pairs(text: str, workload: str) -> list[tuple[str, str]]:
    """``server:app,...`` as pairs; a server or app that does not exist is a usage error."""
    chosen = []
    for item in filter(None, text.split(",")):
        server, _, app = item.partition(":")
        if server not in SERVERS or app not in APPS:
            raise SystemExit(f"unknown pair {item!r}: servers {list(SERVERS)}, apps {list(APPS)}")
        if not supported(server, app, workload):
            raise SystemExit(f"{server} does not serve {app} ({workload})")
        chosen.append((server, app))
    return chosen


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


_TICK = os.sysconf("SC_CLK_TCK")


def session_processes(session: int) -> list[int]:
    """The live processes of a session (start_new_session: the session id is the leader's pid)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # fields after "(comm)": state ppid pgrp session ...
            found.append(int(entry.name))
    return found


def cpu_seconds(session: int) -> float:
    """CPU time (user + system) used so far by the live processes of the server's session."""
    total = 0
    for pid in session_processes(session):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime stime
    return total / _TICK


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def workers_of(session: int) -> list[int]:
    """The worker processes: the session's processes but its leader, or the leader if alone.

    Helper processes that never loaded the app (a multiprocessing resource tracker) are left
    out by size: a worker holds the app, tens of MB.
    """
    others = [p for p in session_processes(session) if p != session]
    loaded = [p for p in others if _status_kb(p, "VmRSS") > 20_000]
    return loaded or others or [session]


def peak_rss_mb(session: int) -> float:
    """The largest peak resident set (VmHWM) of the server's worker processes, in MB."""
    return max((_status_kb(p, "VmHWM") for p in workers_of(session)), default=0) / 1024


@dataclass
class Handle:
    """A running service: where it listens and its process session."""

    server: str
    app: str
    port: int
    session: int
    path: str


def _environment(app: str, server: str, workload: str, s: Settings, extra: dict[str, str]) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CST_", "BENCH_"))}
    env |= {
        "BENCH_APP": app,
        "BENCH_WORKLOAD": workload,
        "BENCH_THREADS": str(s.threads),
        "BENCH_ASGI": "1" if server in ASGI_SERVERS else "0",
        # The ASGI path's thread pool for sync views: as many threads as a WSGI server's.
        "CST_ASGI_THREADS": str(s.threads),
        **extra,
    }
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    return env


def _wait_until_answering(
    process: subprocess.Popen[bytes], port: int, path: str, expected: bytes, what: str
) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            conn.close()
            if response.status != 200 or expected not in body:
                raise RuntimeError(f"{what} answered {response.status}: {body[:300]!r}")
            return
        except OSError:
            if process.poll() is not None:
                stderr = process.stderr.read() if process.stderr else b""
                raise RuntimeError(f"{what} exited: {stderr[-3000:]!r}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextmanager
def _process(command: list[str], env: Any) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        command,
        env=env,
        cwd=HERE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def serve(
    server: str, app: str, workload: str, settings: Settings, extra_env: dict[str, str]
) -> Iterator[Handle]:
    """Start ``app`` on ``server``, wait until it answers correctly, stop it afterwards."""
    port = free_port()
    env = _environment(app, server, workload, settings, extra_env)
    with _process(SERVERS[server](port, settings), env) as process:
        _wait_until_answering(process, port, PATHS[workload], EXPECTED[workload], f"{server}:{app}")
        yield Handle(server, app, port, process.pid, PATHS[workload])


@contextmanager
def upstream(workers: int) -> Iterator[str]:
    """The fan-out's slow upstream on uvicorn[standard]: its URL while it runs."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env["BENCH_UPSTREAM_DELAY"] = str(UPSTREAM_DELAY)
    command = uvicorn(port, Settings(workers, 1), app="upstream_app:app")
    with _process(command, env) as process:
        _wait_until_answering(process, port, "/", b'"value"', "upstream")
        yield f"http://127.0.0.1:{port}/"


@dataclass(frozen=True)
class Figures:
    """One wrk run against one service."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    cpu_us_per_request: float = 0.0  # the server's own CPU (all its processes)
    peak_rss_mb: float = 0.0  # the largest worker's peak resident set so far


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    assert match is not None, text
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(output: str) -> Figures:
    """req/s, p50, p99, errors (non-2xx answers and socket errors) and requests of wrk's output."""
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


def run_wrk(handle: Handle, connections: int, duration: float) -> Figures:
    threads = min(2, connections)
    output = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout=10s",
            "--latency",
            f"http://127.0.0.1:{handle.port}{handle.path}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return parse_wrk(output)


def measure(handle: Handle, connections: int, duration: float, warm_up: float = 1.0) -> Figures:
    """Warm up, then one measured wrk run with the server's CPU time and peak RSS."""
    if warm_up:
        run_wrk(handle, connections, warm_up)  # pools filled, code paths hot
    before = cpu_seconds(handle.session)
    figures = run_wrk(handle, connections, duration)
    cpu = (cpu_seconds(handle.session) - before) / max(figures.requests, 1) * 1e6
    return dataclasses.replace(
        figures, cpu_us_per_request=cpu, peak_rss_mb=peak_rss_mb(handle.session)
    )


@contextmanager
def profiling(handle: Handle, out: Path | None, label: str, seconds: float) -> Iterator[None]:
    """py-spy on every worker of ``handle`` for ``seconds`` while the body runs (``out``: where
    the summary goes; nothing happens when it is None)."""
    if out is None:
        yield
        return
    spy = shutil.which("py-spy") or str(BIN / "py-spy")
    raw = Path("/tmp") / "cst-bench-profiles"
    raw.mkdir(exist_ok=True)
    spies = []
    files = []
    for index, pid in enumerate(workers_of(handle.session)):
        path = raw / f"{label}-w{index}.txt"
        files.append(path)
        spies.append(
            subprocess.Popen(
                [spy, "record", "--pid", str(pid), "--gil", "--format", "raw", "--rate", "200",
                 "--duration", str(max(1, int(seconds))), "--nonblocking", "--output", str(path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    try:
        yield
    finally:
        for spy_process in spies:
            spy_process.wait(timeout=60)
        import profile_summary

        summary = profile_summary.summarise([str(f) for f in files if f.exists()], top=25)
        header = (
            f"py-spy record --gil --format raw --rate 200 --duration {int(seconds)} on each of "
            f"{len(files)} workers of {handle.server}:{handle.app} ({label}), summarised by "
            f"bench/profile_summary.py\n\n"
        )
        target = out / f"profile-{label}.txt"
        target.write_text(header + summary, encoding="utf-8")
        print(f"wrote {target}")


Key = tuple[str, str, int]  # server, app, connections


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workload", choices=serve_app.WORKLOADS, default="lookup")
    parser.add_argument("--pairs", help="server:app,... (default: the workload's usual set)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5, help="seconds per measured run")
    parser.add_argument("--warm-up", type=float, default=1, help="seconds before each run")
    parser.add_argument("--connections", help="comma-separated (lookup 16; fanout 128,512)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--upstream-workers", type=int, default=1)
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy each run into DIR")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    workload: str = args.workload
    chosen = parse_pairs(args.pairs or ",".join(DEFAULT_PAIRS[workload]), workload)
    missing = {s for s, _ in chosen if not Path(SERVERS[s](0, Settings(1, 1))[0]).exists()}
    if missing:
        print(f"not installed, left out: {', '.join(sorted(missing))}")
        chosen = [(s, a) for s, a in chosen if s not in missing]
    connections = [int(c) for c in (args.connections or DEFAULT_CONNECTIONS[workload]).split(",")]
    settings = Settings(args.workers, args.threads)
    load_before = [round(x, 2) for x in os.getloadavg()]
    extra: dict[str, str] = {}
    if workload == "lookup":
        url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("CST_TEST_POSTGRES_URL")
        if not url:
            sys.exit("set BENCH_DATABASE_URL (or CST_TEST_POSTGRES_URL) to a PostgreSQL database")
        extra["BENCH_DATABASE_URL"] = url
        os.environ["BENCH_DATABASE_URL"] = url
        serve_app.seed(serve_app.database_urls()[0])

    print(
        f"{workload}: {settings.workers} workers x {settings.threads} threads (pools of "
        f"{settings.threads} per process), wrk -t2 -c{','.join(map(str, connections))}, "
        f"{args.rounds} rounds x {args.duration:g} s, interleaved; {os.cpu_count()} CPUs shared "
        f"by servers, wrk and {'the upstream' if workload == 'fanout' else 'PostgreSQL'}; load "
        f"average before the run {' '.join(map(str, load_before))}",
        flush=True,
    )
    results: dict[Key, list[Figures]] = {
        (s, a, c): [] for s, a in chosen for c in connections
    }  # fmt: skip
    with upstream(args.upstream_workers) if workload == "fanout" else _nothing() as upstream_url:
        if upstream_url:
            extra["BENCH_UPSTREAM"] = upstream_url
        for round_number in range(1, args.rounds + 1):
            for server, app in chosen:
                with serve(server, app, workload, settings, extra) as handle:
                    for count in connections:
                        label = f"{workload}-{server}-{app}-c{count}"
                        with profiling(handle, args.profile, label, args.duration):
                            figures = measure(handle, count, args.duration, args.warm_up)
                        results[(server, app, count)].append(figures)
                        print(
                            f"  round {round_number} {server:12} {app:13} c{count:<4}"
                            f" {figures.requests_per_second:8.0f} req/s"
                            f"  p50 {figures.p50_ms:7.2f} ms  p99 {figures.p99_ms:7.2f} ms"
                            f"  errors {figures.errors}"
                            f"  CPU {figures.cpu_us_per_request:5.0f} µs/req"
                            f"  peak RSS {figures.peak_rss_mb:5.1f} MB/worker",
                            flush=True,
                        )
    load_after = [round(x, 2) for x in os.getloadavg()]
    print(f"load average at the end {' '.join(map(str, load_after))}")
    summary = report(results)
    summary |= {
        "workload": workload,
        "path": PATHS[workload],
        "connections": connections,
        "workers": settings.workers,
        "threads": settings.threads,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "load_average_before": load_before,
        "load_average_after": load_after,
    }
    if workload == "fanout":
        summary |= {
            "upstream_delay_s": UPSTREAM_DELAY,
            "upstream_workers": args.upstream_workers,
            "calls_per_request": serve_app.FANOUT_CALLS,
        }
    if args.json:
        bench_json.write(args.json, "serve", summary)


@contextmanager
def _nothing() -> Iterator[str]:
    yield ""


def _median(figures: list[Figures], attribute: str) -> float:
    return float(statistics.median(getattr(f, attribute) for f in figures))


def report(results: dict[Key, list[Figures]]) -> dict[str, Any]:
    """Print the medians and the per-round ratios against FastAPI; return them for ``--json``."""
    medians: list[dict[str, Any]] = []
    ratios: list[dict[str, Any]] = []
    for count in dict.fromkeys(c for _, _, c in results):
        keys = [k for k in results if k[2] == count and results[k]]
        base_key = (*BASELINE, count)
        base = results.get(base_key) or []
        base_rps = _median(base, "requests_per_second") if base else None
        base_p99 = _median(base, "p99_ms") if base else None
        print(f"\n{count} connections")
        print(
            "| server | app | req/s | p50 ms | p99 ms | errors | req/s vs FastAPI | "
            "p99 vs FastAPI | server CPU µs/req | peak RSS MB/worker |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for key in sorted(keys, key=lambda k: -_median(results[k], "requests_per_second")):
            runs = results[key]
            rps, p99 = _median(runs, "requests_per_second"), _median(runs, "p99_ms")
            row: dict[str, Any] = {
                "server": key[0],
                "app": key[1],
                "connections": count,
                "requests_per_second": rps,
                "p50_ms": _median(runs, "p50_ms"),
                "p99_ms": p99,
                "errors": sum(f.errors for f in runs),
                "vs_fastapi": rps / base_rps if base_rps else None,
                "p99_vs_fastapi": p99 / base_p99 if base_p99 else None,
                "cpu_us_per_request": _median(runs, "cpu_us_per_request"),
                "peak_rss_mb": max(f.peak_rss_mb for f in runs),
                "rounds": [dataclasses.asdict(f) for f in runs],
            }
            medians.append(row)
            print(
                f"| {key[0]} | {key[1]} | {rps:.0f} | {row['p50_ms']:.2f} | {p99:.2f} | "
                f"{row['errors']} | {_ratio(row['vs_fastapi'])} | "
                f"{_ratio(row['p99_vs_fastapi'])} | {row['cpu_us_per_request']:.0f} | "
                f"{row['peak_rss_mb']:.1f} |"
            )
        if not base:
            continue
        # Ratios per round, then their median: a slow phase of the machine hits a whole round.
        print("median of per-round ratios against FastAPI on uvicorn (req/s, p99):")
        for key in keys:
            if key == base_key:
                continue
            rounds = list(zip(results[key], base, strict=True))
            rps_ratio = statistics.median(
                a.requests_per_second / b.requests_per_second for a, b in rounds
            )
            p99_ratio = statistics.median(a.p99_ms / b.p99_ms for a, b in rounds)
            print(f"  {key[0]:12} {key[1]:13} {rps_ratio:5.2f}  {p99_ratio:5.2f}")
            ratios.append(
                {
                    "server": key[0],
                    "app": key[1],
                    "connections": count,
                    "requests_per_second": rps_ratio,
                    "p99": p99_ratio,
                }
            )
    return {"baseline": "fastapi on uvicorn", "medians": medians, "per_round_ratios": ratios}


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
