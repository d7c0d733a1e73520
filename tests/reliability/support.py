"""Helpers of the reliability suite: servers, load generator, log parsing, body checks, figures.

Everything here is real: gunicorn as a subprocess (stdout to a file), Werkzeug's threaded server in
a thread, ``http.client`` keep-alive connections, SQLite files and PostgreSQL schemas.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import logging
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from cst_chassis.logging import TEXT_FORMAT, OperationIdFilter
from tests.reliability.service import (
    EXPECTED_RECORDS,
    LEAK_MESSAGE,
    SECRET_MARKER,
    SETTINGS_ENV,
    ServiceSettings,
    seed,
)

REPO = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
GRANIAN = Path(sys.executable).with_name("granian")
UVICORN = Path(sys.executable).with_name("uvicorn")
ASGI_FACTORY = "tests.reliability.service:create_asgi_app_from_env"
POSTGRES_URL = os.environ.get("CST_TEST_POSTGRES_URL")
SKIP_POSTGRES = "CST_TEST_POSTGRES_URL is not set (CI sets it; PostgreSQL cases skipped)"
HEADER = "X-Operation-ID"
ROWS = 107
MAX_PAGE = 100


def _env_int(name: str, default: int) -> int:
    # Read at import: the suite's autouse fixture removes CST_* variables before each test.
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


LOAD_REQUESTS = _env_int("CST_LOAD_REQUESTS", 3000)
THREADED_REQUESTS = _env_int("CST_LOAD_THREADED_REQUESTS", 1500)
LOAD_CLIENTS = _env_int("CST_LOAD_CLIENTS", 16)


# --- figures printed at the end of the run (tests/reliability/conftest.py) ---------------------

SUMMARY: list[str] = []


def report(line: str) -> None:
    """Keep a line for the terminal summary."""
    SUMMARY.append(line)


# --- response body hygiene -------------------------------------------------------------------

_LEAKS = [
    re.compile(r"Traceback|File \""),
    re.compile(r"\b\w*(Error|Exception|Warning)\b"),  # an exception class name
    re.compile(r"\bSELECT\b.*\bFROM\b|\bINSERT\s+INTO\b", re.IGNORECASE),
    re.compile(r"(sqlite|postgresql|psycopg|asyncpg|aiosqlite)", re.IGNORECASE),
    re.compile(r"[a-z+]+://[^\s\"]*@|\.db\b"),  # a database URL or file
    re.compile(re.escape(SECRET_MARKER)),
]
ERROR_BODIES = Counter[str]()


def body_leak(body: bytes) -> str | None:
    """Return what an error body gives away (traceback, class, SQL, URL), or ``None``."""
    ERROR_BODIES["checked"] += 1
    text = body.decode("utf-8", "replace")
    for pattern in _LEAKS:
        found = pattern.search(text)
        if found is not None:
            ERROR_BODIES["leaking"] += 1
            return found.group(0)
    return None


def envelope_problem(body: bytes, status: int) -> str | None:
    """Check that an error body is a proper ``{"meta", "errors"}`` envelope that leaks nothing."""
    leak = body_leak(body)
    if leak is not None:
        return f"{status} body leaks {leak!r}: {body[:200]!r}"
    try:
        payload = json.loads(body)
    except ValueError:
        return f"{status} body is not JSON: {body[:200]!r}"
    if not isinstance(payload, dict) or set(payload) != {"meta", "errors"}:
        return f"{status} body is not an error envelope: {body[:200]!r}"
    errors = payload["errors"]
    if not (isinstance(errors, list) and errors and all("message" in e for e in errors)):
        return f"{status} envelope has no error messages: {body[:200]!r}"
    return None


# --- log parsing ------------------------------------------------------------------------------

_RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[(?P<level>[A-Z]+)\]\[(?P<op>[^\]\r\n]*)\] "
    r"(?P<logger>[^:\s]+): (?P<message>.*)$"
)
NO_ID = "No operation_id"


@dataclass
class Record:
    level: str
    operation_id: str
    logger: str
    message: str
    continuation: list[str] = field(default_factory=list)


@dataclass
class ParsedLog:
    records: list[Record]
    stray: list[str]  # lines that are neither a record nor a traceback under an ERROR record

    def by_operation_id(self) -> dict[str, list[Record]]:
        grouped: dict[str, list[Record]] = defaultdict(list)
        for record in self.records:
            grouped[record.operation_id].append(record)
        return grouped


def parse_log(text: str) -> ParsedLog:
    """Split chassis text-format output into records; tracebacks stay with their record."""
    records: list[Record] = []
    stray: list[str] = []
    for line in text.split("\n"):
        if not line:
            continue
        match = _RECORD.match(line)
        if match is not None:
            records.append(Record(match["level"], match["op"], match["logger"], match["message"]))
        elif (
            records
            and records[-1].level == "ERROR"
            and (records[-1].continuation or line == "Traceback (most recent call last):")
        ):
            records[-1].continuation.append(line)
        else:
            stray.append(line)
    return ParsedLog(records, stray)


def parse_json_log(text: str) -> ParsedLog:
    """Split ``CST_LOG_FORMAT=json`` output: every line must be one JSON object."""
    records: list[Record] = []
    stray: list[str] = []
    for line in text.split("\n"):
        if not line:
            continue
        try:
            payload = json.loads(line)
        except ValueError:
            stray.append(line)
            continue
        if not isinstance(payload, dict) or not {"level", "logger", "message"} <= set(payload):
            stray.append(line)
            continue
        exception = payload.get("exception")
        records.append(
            Record(
                payload["level"],
                payload.get("operation_id") or NO_ID,
                payload["logger"],
                payload["message"],
                exception.split("\n") if isinstance(exception, str) else [],
            )
        )
    return ParsedLog(records, stray)


class LogCapture:
    """The chassis's text format, written by an extra root handler into memory (in-process)."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self.handler = logging.StreamHandler(self._buffer)
        self.handler.setFormatter(logging.Formatter(TEXT_FORMAT))
        self.handler.addFilter(OperationIdFilter())

    def text(self) -> str:
        with self.handler.lock or contextlib.nullcontext():
            return self._buffer.getvalue()


@contextlib.contextmanager
def captured_log() -> Iterator[LogCapture]:
    capture = LogCapture()
    root = logging.getLogger()
    root.addHandler(capture.handler)
    try:
        yield capture
    finally:
        root.removeHandler(capture.handler)


# --- databases the service runs on --------------------------------------------------------------


@dataclass
class ServiceDatabase:
    """A seeded database for the service: a SQLite file or a private PostgreSQL schema."""

    kind: str
    url: str
    async_url: str
    connect_args: dict[str, Any] = field(default_factory=dict)
    async_connect_args: dict[str, Any] = field(default_factory=dict)
    sqlite_path: Path | None = None
    application_name: str | None = None

    def settings(self, *, port: int | None = None, **overrides: Any) -> ServiceSettings:
        """Settings for the service; ``port`` points it at a proxy instead of the server."""
        url, async_url = self.url, self.async_url
        if port is not None:
            url = make_url(url).set(port=port).render_as_string(hide_password=False)
            async_url = make_url(async_url).set(port=port).render_as_string(hide_password=False)
        return ServiceSettings(
            database_url=url,
            async_database_url=async_url,
            connect_args=dict(self.connect_args),
            async_connect_args=dict(self.async_connect_args),
            **overrides,
        )

    def address(self) -> tuple[str, int]:
        url = make_url(self.url)
        return url.host or "127.0.0.1", url.port or 5432


@contextlib.contextmanager
def service_database(kind: str, directory: Path) -> Iterator[ServiceDatabase]:
    """Create and seed the service's database; PostgreSQL needs ``CST_TEST_POSTGRES_URL``."""
    if kind == "sqlite":
        path = directory / f"service-{uuid.uuid4().hex[:8]}.db"
        engine = sa.create_engine(f"sqlite:///{path}")
        seed(engine, ROWS)
        engine.dispose()
        yield ServiceDatabase(
            kind="sqlite",
            url=f"sqlite:///{path}",
            async_url=f"sqlite+aiosqlite:///{path}",
            # A locked database fails a request within a second instead of five.
            connect_args={"timeout": 1.0},
            async_connect_args={"timeout": 1.0},
            sqlite_path=path,
        )
        return
    assert POSTGRES_URL is not None, SKIP_POSTGRES
    tag = uuid.uuid4().hex[:12]
    schema, application_name = f"cst_rel_{tag}", f"cst-reliability-{tag}"
    admin = sa.create_engine(POSTGRES_URL, connect_args={"application_name": application_name})
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    database = ServiceDatabase(
        kind="postgresql",
        url=url.render_as_string(hide_password=False),
        async_url=url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False),
        connect_args={
            "options": f"-csearch_path={schema}",
            "application_name": application_name,
            "connect_timeout": 2,
        },
        async_connect_args={
            "server_settings": {"search_path": schema, "application_name": application_name},
            "timeout": 2,
            "command_timeout": 2,
        },
        application_name=application_name,
    )
    try:
        engine = sa.create_engine(database.url, connect_args=database.connect_args)
        seed(engine, ROWS)
        engine.dispose()
        yield database
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# --- servers ------------------------------------------------------------------------------------


def _free_listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def wait_until_serving(port: int, alive: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``/status`` until the server answers at all (200 or 503)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the server exited during start-up")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request("GET", "/status")
                conn.getresponse().read()
                return
            finally:
                conn.close()
        time.sleep(0.05)
    raise TimeoutError(f"nothing answered on port {port} within {timeout} s")


@dataclass
class ServerProcess:
    """A running server master (gunicorn, granian); its workers' stdout goes to ``stdout_path``."""

    process: subprocess.Popen[bytes]
    port: int
    stdout_path: Path
    stderr_path: Path
    name: str = "gunicorn"

    def log_text(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def worker_pids(self) -> set[int]:
        return child_pids(self.process.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def worker_threads(self) -> dict[int, int]:
        """Thread count of each worker (from /proc): stuck calls must not pile up threads."""
        counts = {}
        for pid in self.worker_pids():
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{pid}/status").read_text()
                counts[pid] = int(re.search(r"^Threads:\s+(\d+)", status, re.M)[1])  # type: ignore[index]  # Linux always has the line
        return counts


@contextlib.contextmanager
def gunicorn_server(
    settings: ServiceSettings,
    directory: Path,
    *,
    workers: int = 2,
    threads: int = 8,
    app: str = "tests.reliability.service:create_app_from_env()",
) -> Iterator[GunicornServer]:
    """Run the service under gunicorn (gthread) on a socket this process bound on 127.0.0.1."""
    listener = _free_listening_socket()
    port = listener.getsockname()[1]
    tag = uuid.uuid4().hex[:8]
    stdout_path = directory / f"gunicorn-{tag}.out"
    stderr_path = directory / f"gunicorn-{tag}.err"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CST_")}
    env[SETTINGS_ENV] = settings.to_json()
    env["PYTHONPATH"] = str(REPO)
    command = [
        str(GUNICORN),
        "--worker-class=gthread",
        f"--workers={workers}",
        f"--threads={threads}",
        f"--bind=fd://{listener.fileno()}",
        "--graceful-timeout=5",
        "--timeout=60",
        app,
    ]
    with stdout_path.open("ab") as stdout, stderr_path.open("ab") as stderr:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=stdout,
            stderr=stderr,
            pass_fds=(listener.fileno(),),
        )
    listener.close()
    server = ServerProcess(process, port, stdout_path, stderr_path)
    try:
        wait_until_serving(port, server.alive)
        deadline = time.monotonic() + 30
        while len(server.worker_pids()) < workers and time.monotonic() < deadline:
            time.sleep(0.05)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


# The load and fault tests were written for gunicorn first; granian's master looks the same to them.
GunicornServer = ServerProcess


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def granian_server(
    settings: ServiceSettings,
    directory: Path,
    *,
    workers: int = 2,
    threads: int = 8,
    factory: str = "tests.reliability.service:create_app_from_env",
) -> Iterator[ServerProcess]:
    """Run the service on granian's WSGI interface, as the README's "Deployment" says.

    granian binds its socket itself (no fd:// as with gunicorn): the port is one the OS just
    handed out, retried if another process takes it first.
    """
    tag = uuid.uuid4().hex[:8]
    stdout_path = directory / f"granian-{tag}.out"
    stderr_path = directory / f"granian-{tag}.err"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CST_")}
    env[SETTINGS_ENV] = settings.to_json()
    env["PYTHONPATH"] = str(REPO)
    for attempt in range(3):
        port = _free_port()
        command = [
            str(GRANIAN),
            "--interface=wsgi",
            f"--workers={workers}",
            f"--blocking-threads={threads}",
            "--host=127.0.0.1",
            f"--port={port}",
            "--workers-kill-timeout=5",
            # granian logs to stdout, where the checks want only the service's own lines; at
            # warning level it notes that 8 threads is "quite high" for one interpreter.
            "--log-level=error",
            "--factory",
            factory,
        ]
        with stdout_path.open("ab") as stdout, stderr_path.open("ab") as stderr:
            process = subprocess.Popen(command, cwd=REPO, env=env, stdout=stdout, stderr=stderr)
        server = ServerProcess(process, port, stdout_path, stderr_path, "granian")
        try:
            wait_until_serving(port, server.alive)
        except (RuntimeError, TimeoutError):
            _stop(process)
            if attempt == 2:
                raise
            continue
        break
    try:
        deadline = time.monotonic() + 30
        while len(server.worker_pids()) < workers and time.monotonic() < deadline:
            time.sleep(0.05)
        yield server
    finally:
        _stop(process)


@contextlib.contextmanager
def _port_retrying_server(
    name: str,
    command_for: Callable[[int], list[str]],
    settings: ServiceSettings,
    directory: Path,
    workers: int,
) -> Iterator[ServerProcess]:
    # Servers that bind their socket themselves: the port is one the OS just handed out,
    # retried if another process takes it first.
    tag = uuid.uuid4().hex[:8]
    stdout_path = directory / f"{name}-{tag}.out"
    stderr_path = directory / f"{name}-{tag}.err"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CST_")}
    env[SETTINGS_ENV] = settings.to_json()
    env["PYTHONPATH"] = str(REPO)
    for attempt in range(3):
        port = _free_port()
        with stdout_path.open("ab") as stdout, stderr_path.open("ab") as stderr:
            process = subprocess.Popen(
                command_for(port), cwd=REPO, env=env, stdout=stdout, stderr=stderr
            )
        server = ServerProcess(process, port, stdout_path, stderr_path, name)
        try:
            wait_until_serving(port, server.alive)
        except (RuntimeError, TimeoutError):
            _stop(process)
            if attempt == 2:
                raise
            continue
        break
    try:
        deadline = time.monotonic() + 30
        while len(server.worker_pids()) < workers and time.monotonic() < deadline:
            time.sleep(0.05)
        yield server
    finally:
        _stop(process)


@contextlib.contextmanager
def uvicorn_server(
    settings: ServiceSettings,
    directory: Path,
    *,
    workers: int = 2,
    factory: str = ASGI_FACTORY,
) -> Iterator[ServerProcess]:
    """Run the service over ASGI on uvicorn[standard] (``cst_chassis.asgi``; "Deployment").

    No access log (the chassis logs each request itself, with its id); uvicorn's own lines go to
    stderr at warning level, so stdout holds only the service's records.
    """

    def command(port: int) -> list[str]:
        return [
            str(UVICORN),
            "--factory",
            f"--workers={workers}",
            "--host=127.0.0.1",
            f"--port={port}",
            "--no-access-log",
            "--log-level=warning",
            "--timeout-graceful-shutdown=10",
            factory,
        ]

    with _port_retrying_server("uvicorn", command, settings, directory, workers) as server:
        yield server


@contextlib.contextmanager
def granian_asgi_server(
    settings: ServiceSettings,
    directory: Path,
    *,
    workers: int = 2,
    factory: str = ASGI_FACTORY,
) -> Iterator[ServerProcess]:
    """Run the service on granian's ASGI interface (``cst_chassis.asgi``; "Deployment")."""

    def command(port: int) -> list[str]:
        return [
            str(GRANIAN),
            "--interface=asgi",
            f"--workers={workers}",
            "--host=127.0.0.1",
            f"--port={port}",
            "--workers-kill-timeout=10",
            "--log-level=error",
            "--factory",
            factory,
        ]

    with _port_retrying_server("granian-asgi", command, settings, directory, workers) as server:
        yield server


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# The multi-process servers the fault tests run on, by name (2 workers x 8 threads each on WSGI).
SERVERS: dict[
    str, Callable[[ServiceSettings, Path], contextlib.AbstractContextManager[ServerProcess]]
] = {
    "gunicorn": gunicorn_server,
    "granian": granian_server,
    # The ASGI entry point (cst_chassis.asgi), 2 workers each.
    "uvicorn": uvicorn_server,
    "granian-asgi": granian_asgi_server,
}


def child_pids(parent: int) -> set[int]:
    """Pids of the live child processes of ``parent`` (gunicorn's workers)."""
    children: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # "pid (comm) state ppid ...": comm may contain spaces, so split after the ")".
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == parent and fields[0] != "Z":
                children.add(int(entry.name))
    return children


@contextlib.contextmanager
def werkzeug_server(app: Flask, *, threaded: bool = True) -> Iterator[int]:
    """Serve ``app`` with Werkzeug's server in a thread of this process; yields the port."""
    server = make_server("127.0.0.1", 0, app, threaded=threaded)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server.port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --- the load generator ---------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One request to send: its kind, path, token, the id it sends (if any), allowed statuses."""

    kind: str
    path: str
    token: str | None
    sent_id: str | None
    expected: frozenset[int]
    offset: int = 0
    limit: int = 0


@dataclass
class Outcome:
    planned: Planned
    status: int | None
    header_ids: list[str]
    body: bytes
    started: float
    finished: float
    error: str | None = None

    @property
    def latency(self) -> float:
        return self.finished - self.started

    def json(self) -> Any:
        return json.loads(self.body)


# kind -> weight in the default mix
MIX: dict[str, int] = {
    "sync": 22,
    "async": 22,
    "items": 18,
    "items-bad": 5,
    "invalid": 6,
    "missing": 6,
    "boom": 5,
    "unserialisable": 4,
    "status": 12,
}


def planned_request(
    kind: str, token: str, sent_id: str | None, rng: random.Random | None = None
) -> Planned:
    """Build the request of one ``kind`` (see :data:`MIX`)."""
    rng = rng or random.Random(token)
    if kind == "status":
        # The query string only names the request in access logs; /status ignores it.
        return Planned(kind, f"/status?probe={token}", None, sent_id, frozenset({200}))
    if kind == "items":
        offset, limit = rng.randint(0, ROWS + 10), rng.randint(1, MAX_PAGE)
        path = f"/items?offset={offset}&limit={limit}&token={token}"
        return Planned(kind, path, token, sent_id, frozenset({200}), offset, limit)
    if kind == "items-bad":
        bad = rng.choice(["limit=0", "offset=-1", "limit=101", "offset=1.5", "limit=0x10"])
        return Planned(kind, f"/items?{bad}&token={token}", token, sent_id, frozenset({400}))
    status = {"invalid": 400, "missing": 404, "boom": 500, "unserialisable": 500}.get(kind, 200)
    return Planned(kind, f"/{kind}?token={token}", token, sent_id, frozenset({status}))


def plan_mix(count: int, tag: str, seed_value: int = 7) -> list[Planned]:
    """``count`` requests of the mixed load; half send their own unique ``X-Operation-ID``."""
    rng = random.Random(seed_value)
    kinds, weights = list(MIX), list(MIX.values())
    plan = []
    for n in range(count):
        kind = rng.choices(kinds, weights)[0]
        sent_id = f"{tag}-op-{n}" if rng.random() < 0.5 else None
        plan.append(planned_request(kind, f"{tag}-{n}", sent_id, rng))
    return plan


def send(conn: http.client.HTTPConnection, planned: Planned) -> Outcome:
    """Send one request on a keep-alive connection and read the whole response."""
    headers = {HEADER: planned.sent_id} if planned.sent_id is not None else {}
    started = time.monotonic()
    conn.request("GET", planned.path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    ids = response.headers.get_all(HEADER) or []
    if response.will_close:
        conn.close()
    return Outcome(planned, response.status, ids, body, started, time.monotonic())


def _client_loop(
    port: int,
    take: Callable[[], Planned | None],
    outcomes: list[Outcome],
    timeout: float,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        while (planned := take()) is not None:
            started = time.monotonic()
            try:
                outcomes.append(send(conn, planned))
            except (OSError, http.client.HTTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
                outcomes.append(Outcome(planned, None, [], b"", started, time.monotonic(), error))
                conn.close()
    finally:
        conn.close()


@dataclass
class LoadResult:
    outcomes: list[Outcome]
    elapsed: float
    clients: int

    @property
    def requests_per_second(self) -> float:
        return len(self.outcomes) / self.elapsed

    def latency_ms(self, quantile: float) -> float:
        latencies = sorted(o.latency for o in self.outcomes)
        if not latencies:
            return 0.0
        index = min(len(latencies) - 1, round(quantile * (len(latencies) - 1)))
        return latencies[index] * 1000


def run_load(port: int, plan: Sequence[Planned], clients: int, timeout: float = 30.0) -> LoadResult:
    """Send ``plan`` from ``clients`` threads, each on its own keep-alive connection."""
    pending = iter(plan)
    lock = threading.Lock()

    def take() -> Planned | None:
        with lock:
            return next(pending, None)

    per_client: list[list[Outcome]] = [[] for _ in range(clients)]
    threads = [
        threading.Thread(target=_client_loop, args=(port, take, per_client[i], timeout))
        for i in range(clients)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return LoadResult([o for chunk in per_client for o in chunk], elapsed, clients)


class BackgroundLoad:
    """Keep ``clients`` threads sending requests of ``kinds`` in turn until :meth:`stop`."""

    def __init__(self, port: int, kinds: Sequence[str], clients: int = 6, timeout: float = 30.0):
        self.port = port
        self.kinds = list(kinds)
        self.timeout = timeout
        self._stopping = threading.Event()
        self._counter = 0
        self._lock = threading.Lock()
        self._tag = uuid.uuid4().hex[:8]
        self.outcomes: list[Outcome] = []
        self._threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join()

    def _take(self) -> Planned | None:
        if self._stopping.is_set():
            return None
        with self._lock:
            n = self._counter
            self._counter += 1
        return planned_request(self.kinds[n % len(self.kinds)], f"{self._tag}-{n}", None)

    def _run(self) -> None:
        # list.append is atomic: the clients share one list that snapshot() copies.
        _client_loop(self.port, self._take, self.outcomes, self.timeout)

    def snapshot(self) -> list[Outcome]:
        return list(self.outcomes)


# --- checking a load against the log --------------------------------------------------------


def expected_messages(planned: Planned) -> list[str]:
    """Log messages (exact, or a prefix for error records) the request must have written."""
    if planned.kind == "status" or planned.kind == "items-bad":
        return []
    return [f"served {planned.kind} token={planned.token}", *EXPECTED_RECORDS[planned.kind]]


@dataclass
class LoadCheck:
    problems: list[str] = field(default_factory=list)
    unexpected_statuses: int = 0
    connection_errors: int = 0
    mixups: int = 0

    def problem(self, kind: str, text: str) -> None:
        if len(self.problems) < 30:
            self.problems.append(text)
        if kind == "status":
            self.unexpected_statuses += 1
        elif kind == "connection":
            self.connection_errors += 1
        else:
            self.mixups += 1


def check_load(
    outcomes: Sequence[Outcome], log: ParsedLog, *, access_log: bool = False
) -> LoadCheck:
    """Every response: expected status, one id header = body id = sent id, and its exact log.

    ``access_log``: each request also wrote one access line (Werkzeug's server).
    """
    check = LoadCheck()
    by_id = log.by_operation_id()
    access_lines: dict[str, list[Record]] = defaultdict(list)
    for record in log.records:
        if record.logger == "werkzeug":
            request_line = _ANSI.sub("", record.message).split("] ", 1)[-1]
            access_lines[request_line.removesuffix(" -")].append(record)
    owners: dict[str, str] = {}
    seen_ids: Counter[str] = Counter()
    for outcome in outcomes:
        planned = outcome.planned
        label = f"{planned.path} ({planned.sent_id or 'no id sent'})"
        if outcome.error is not None or outcome.status is None:
            check.problem("connection", f"{label}: {outcome.error}")
            continue
        if outcome.status not in planned.expected:
            check.problem("status", f"{label}: status {outcome.status}: {outcome.body[:200]!r}")
            continue
        if len(outcome.header_ids) != 1:
            check.problem("mixup", f"{label}: {len(outcome.header_ids)} id headers")
            continue
        op = outcome.header_ids[0]
        seen_ids[op] += 1
        if planned.token is not None:
            owners[planned.token] = op
        if planned.sent_id is not None and op != planned.sent_id:
            check.problem("mixup", f"{label}: answered with id {op}")
        body = outcome.json()
        if planned.kind != "status":
            if body["meta"]["operation_id"] != op:
                check.problem("mixup", f"{label}: body id {body['meta']['operation_id']} != {op}")
            if outcome.status >= 400:
                problem = envelope_problem(outcome.body, outcome.status)
                if problem is not None:
                    check.problem("mixup", f"{label}: {problem}")
            else:
                problem = _data_problem(planned, body, op)
                if problem is not None:
                    check.problem("mixup", f"{label}: {problem}")
        expected = expected_messages(planned)
        messages = [r.message for r in by_id.get(op, []) if r.logger != "werkzeug"]
        if not _messages_match(messages, expected):
            check.problem("mixup", f"{label}: id {op} logged {messages}, expected {expected}")
        if access_log:
            # Werkzeug writes its access line after the app produced the body: the chassis has
            # reset the id by then, so the line is found by its path (which holds the token).
            access = access_lines.get(f'"GET {planned.path} HTTP/1.1" {outcome.status}', [])
            if len(access) != 1 or access[0].operation_id not in {op, NO_ID}:
                check.problem("mixup", f"{label}: access lines {[vars(r) for r in access]}")
    for op, count in seen_ids.items():
        if count > 1:
            check.problem("mixup", f"id {op} answered {count} requests")
    for record in log.records:
        if record.message.startswith(LEAK_MESSAGE):
            check.problem("mixup", f"leak probe: {record.message}")
        served = _SERVED.fullmatch(record.message)
        token = served["token"] if served is not None else None
        if token in owners and owners[token] != record.operation_id:
            check.problem("mixup", f"{record.message!r} logged under {record.operation_id}")
    for line in log.stray[:5]:
        check.problem("mixup", f"stray log line {line!r}")
    return check


_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Werkzeug colours error lines
_SERVED = re.compile(r"served (?P<kind>\S+) token=(?P<token>\S+)")


def _messages_match(messages: list[str], expected: list[str]) -> bool:
    if len(messages) != len(expected):
        return False
    remaining = list(messages)
    for want in expected:
        match = next((m for m in remaining if m == want or m.startswith(want)), None)
        if match is None:
            return False
        remaining.remove(match)
    return True


def _data_problem(planned: Planned, body: Any, op: str) -> str | None:
    data = body["data"]
    if planned.kind in {"sync", "async"}:
        if data.get("token") != planned.token or data.get("seen_operation_id") != op:
            return f"data {data} does not belong to this request"
        if data.get("count") != ROWS:
            return f"count {data.get('count')} != {ROWS}"
    if planned.kind == "items":
        ids = [item["id"] for item in data]
        want = list(range(planned.offset + 1, min(planned.offset + planned.limit, ROWS) + 1))
        if ids != want:
            return f"page ids {ids[:5]}... != {want[:5]}..."
        next_link = body["meta"]["pagination"]["next"]
        if (next_link is not None) != (planned.offset + planned.limit < ROWS):
            return f"next link {next_link} for offset {planned.offset} limit {planned.limit}"
    return None


def summarise(name: str, result: LoadResult, check: LoadCheck) -> str:
    """One line of figures for the terminal summary."""
    statuses = Counter(o.status for o in result.outcomes)
    line = (
        f"{name}: {len(result.outcomes)} requests from {result.clients} clients in "
        f"{result.elapsed:.1f} s = {result.requests_per_second:.0f} req/s "
        f"(p50 {result.latency_ms(0.5):.1f} ms, p99 {result.latency_ms(0.99):.1f} ms); "
        f"connection errors {check.connection_errors}, unexpected statuses "
        f"{check.unexpected_statuses}, id mix-ups {check.mixups}; statuses "
        + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0])))
    )
    report(line)
    return line


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0
