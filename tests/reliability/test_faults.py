"""Faults: the database goes away under load, views that fail, clients that hang up.

Database outages run the service under gunicorn and granian (2 workers x 8 threads each), and over
ASGI under uvicorn and granian's ASGI interface (2 workers, 8 pool threads each), with a
background load of sync, async and ``/status`` requests, cut the database, restore it, and check
every response: ``/status`` turns 503 within ``CST_HEALTH_CHECK_TIMEOUT``, resources answer an
error envelope within a bound, nothing hangs, the workers stay up, and everything answers 200
after recovery.
"""

from __future__ import annotations

import http.client
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability.proxy import TcpProxy
from tests.reliability.service import LEAK_MESSAGE
from tests.reliability.support import (
    NO_ID,
    POSTGRES_URL,
    SERVERS,
    SKIP_POSTGRES,
    BackgroundLoad,
    GunicornServer,
    Outcome,
    ServiceDatabase,
    body_leak,
    envelope_problem,
    gunicorn_server,
    parse_log,
    planned_request,
    report,
    send,
    service_database,
)

HEALTH_TIMEOUT = 1.0
ASYNC_TIMEOUT = 3.0
FAULT_CONFIG = {
    "CST_HEALTH_CHECK_TIMEOUT": HEALTH_TIMEOUT,
    "CST_ASYNC_TIMEOUT": ASYNC_TIMEOUT,
    # The ASGI servers' pool for sync views, as many threads as a WSGI worker has (WSGI ignores it).
    "CST_ASGI_THREADS": 8,
}
# A resource must answer within this while the database is away: the driver's own timeout
# (SQLite busy timeout, PostgreSQL connect/command timeout: 1-2 s) plus queueing under load.
RESOURCE_BOUND = 4.0
STATUS_BOUND = HEALTH_TIMEOUT + 1.0
RECOVERY_BOUND = 10.0
FAILURE_STATUSES = {500, 503, 504}
# Threads a worker may have: gthread's 8 request threads, or granian's 8 blocking threads plus its
# Rust runtime threads (which also show in /proc), and the chassis loop, the main thread and a
# few helpers (health probes). Calls stuck on the dead database must not add a thread each.
# On ASGI (uvicorn, granian's ASGI interface) the 8 threads are the chassis pool for sync views;
# async views add none at all.
MAX_WORKER_THREADS = {"gunicorn": 16, "granian": 20, "uvicorn": 16, "granian-asgi": 20}


@dataclass
class Outage:
    name: str
    cut_at: float
    restored_at: float
    outcomes: list[Outcome]

    def during(self) -> list[Outcome]:
        return [
            o for o in self.outcomes if o.finished > self.cut_at and o.started < self.restored_at
        ]

    def first_status_503(self) -> float | None:
        times = [
            o.finished
            for o in self.outcomes
            if o.planned.kind == "status" and o.status == 503 and o.finished > self.cut_at
        ]
        return min(times) - self.cut_at if times else None

    def recovered_after(self) -> float:
        """Seconds from the restore until every kind answered 200 and nothing failed any more."""
        after = [o for o in self.outcomes if o.finished > self.restored_at]
        last_failure = max((o.finished for o in after if o.status != 200), default=0.0)
        first_ok = [
            min(
                (o.finished for o in after if o.planned.kind == kind and o.status == 200),
                default=0.0,
            )
            for kind in {o.planned.kind for o in self.outcomes}
        ]
        return max(0.0, last_failure - self.restored_at, *(t - self.restored_at for t in first_ok))


def _all_failing(outcomes: list[Outcome], since: float, kinds: set[str]) -> bool:
    failing = {o.planned.kind for o in outcomes if o.started >= since and o.status != 200}
    return kinds <= failing


def _all_healthy(outcomes: list[Outcome], since: float, kinds: set[str], streak: int = 3) -> bool:
    for kind in kinds:
        tail = [o.status for o in outcomes if o.planned.kind == kind and o.started >= since]
        if len(tail) < streak or any(status != 200 for status in tail[-streak:]):
            return False
    return True


def drive_outage(
    name: str,
    server: GunicornServer,
    kinds: list[str],
    cut: Callable[[], object],
    restore: Callable[[], object],
) -> Outage:
    """Load the server, cut the database, wait for every kind to fail, restore, wait for 200s."""
    kind_set = set(kinds)
    with BackgroundLoad(server.port, kinds, clients=6) as load:
        time.sleep(0.7)
        cut_at = time.monotonic()
        cut()
        deadline = cut_at + 15
        while time.monotonic() < deadline and not _all_failing(load.snapshot(), cut_at, kind_set):
            time.sleep(0.05)
        time.sleep(0.5)
        restored_at = time.monotonic()
        restore()
        deadline = restored_at + RECOVERY_BOUND + 5
        while time.monotonic() < deadline and not _all_healthy(
            load.snapshot(), restored_at, kind_set
        ):
            time.sleep(0.05)
        time.sleep(0.5)
    return Outage(name, cut_at, restored_at, load.outcomes)


def check_outage(outage: Outage, server: GunicornServer, pids_before: set[int]) -> None:
    outcomes = outage.outcomes
    by_id = parse_log(server.log_text()).by_operation_id()
    problems: list[str] = []
    for o in outcomes:
        label = f"{o.planned.path} at {o.started - outage.cut_at:+.2f} s"
        if o.error is not None or o.status is None:
            problems.append(f"{label}: connection error {o.error}")
            continue
        if o.finished < outage.cut_at and o.status != 200:
            problems.append(f"{label}: {o.status} before the cut")
        if o.status != 200 and o.status not in FAILURE_STATUSES:
            problems.append(f"{label}: unexpected status {o.status}")
        bound = STATUS_BOUND if o.planned.kind == "status" else RESOURCE_BOUND
        if o.latency > bound:
            problems.append(f"{label}: answered in {o.latency:.2f} s > {bound} s")
        if o.status == 200:
            continue
        leak = (
            body_leak(o.body) if o.planned.kind == "status" else envelope_problem(o.body, o.status)
        )
        if leak is not None:
            problems.append(f"{label}: {leak}")
        if o.planned.kind == "status" and (o.status != 503 or b'"name"' not in o.body):
            problems.append(f"{label}: health answered {o.status} {o.body[:200]!r}")
        (op,) = o.header_ids
        failures = [r for r in by_id.get(op, []) if r.level in {"WARNING", "ERROR"}]
        if not failures:
            problems.append(f"{label}: {o.status} with no warning/error log line for id {op}")
    for line in parse_log(server.log_text()).records:
        if line.message.startswith(LEAK_MESSAGE):
            problems.append(line.message)
    during = outage.during()
    for kind in {o.planned.kind for o in outcomes}:
        if not any(o.planned.kind == kind and o.status != 200 for o in during):
            problems.append(f"{kind} never failed while the database was away")
        after = [o for o in outcomes if o.planned.kind == kind and o.started > outage.restored_at]
        if not after or after[-1].status != 200:
            problems.append(f"{kind} did not answer 200 again after the restore")
    detected = outage.first_status_503()
    recovery = outage.recovered_after()
    if recovery > RECOVERY_BOUND:
        problems.append(f"recovery took {recovery:.2f} s > {RECOVERY_BOUND} s")
    if not server.alive():
        problems.append(f"the {server.name} master exited")
    if server.worker_pids() != pids_before:
        problems.append(f"workers changed: {pids_before} -> {server.worker_pids()}")
    threads = server.worker_threads()
    bound = MAX_WORKER_THREADS[server.name]
    if any(count > bound for count in threads.values()):
        problems.append(f"worker thread counts {threads} > {bound}")
    failing = [o for o in during if o.status != 200]
    worst = max((o.latency for o in failing if o.planned.kind != "status"), default=0.0)
    worst_status = max((o.latency for o in during if o.planned.kind == "status"), default=0.0)
    report(
        f"fault {outage.name} on {server.name}: /status 503 {_seconds(detected)} after the cut "
        f"(timeout {HEALTH_TIMEOUT} s, slowest /status {worst_status:.2f} s); resources failed "
        f"within {worst:.2f} s; all 200 again {recovery:.2f} s after the restore; "
        f"{len(outcomes)} requests, {len(failing)} failed cleanly, "
        f"{sum(o.error is not None for o in outcomes)} connection errors"
    )
    assert problems == []


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


@pytest.fixture(params=list(SERVERS))
def sqlite_service(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[ServiceDatabase, GunicornServer]]:
    serve = SERVERS[request.param]
    with (
        service_database("sqlite", tmp_path) as database,
        serve(database.settings(config=FAULT_CONFIG), tmp_path) as server,
    ):
        yield database, server


def test_sqlite_locked_under_load_fails_cleanly_and_recovers(
    sqlite_service: tuple[ServiceDatabase, GunicornServer],
) -> None:
    database, server = sqlite_service
    assert database.sqlite_path is not None
    locker = sqlite3.connect(database.sqlite_path, timeout=10, isolation_level=None)
    pids = server.worker_pids()
    try:
        outage = drive_outage(
            "SQLite locked (BEGIN EXCLUSIVE from another connection)",
            server,
            ["sync", "async", "status"],
            cut=lambda: locker.execute("BEGIN EXCLUSIVE"),
            restore=lambda: locker.execute("ROLLBACK"),
        )
    finally:
        locker.close()
    check_outage(outage, server, pids)


@pytest.fixture(params=list(SERVERS))
def postgres_service(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[TcpProxy, GunicornServer]]:
    serve = SERVERS[request.param]
    with (
        service_database("postgresql", tmp_path) as database,
        TcpProxy(database.address()) as proxy,
        serve(
            database.settings(port=proxy.port, pool_size=3, max_overflow=3, config=FAULT_CONFIG),
            tmp_path,
        ) as server,
    ):
        yield proxy, server


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_POSTGRES)
def test_postgres_connection_reset_under_load_fails_cleanly_and_recovers(
    postgres_service: tuple[TcpProxy, GunicornServer],
) -> None:
    proxy, server = postgres_service
    pids = server.worker_pids()
    outage = drive_outage(
        "PostgreSQL reset (proxy closes every connection)",
        server,
        ["sync", "async", "status"],
        cut=lambda: proxy.cut("reset"),
        restore=proxy.restore,
    )
    check_outage(outage, server, pids)


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_POSTGRES)
def test_postgres_silent_under_load_answers_within_the_timeouts_and_recovers(
    postgres_service: tuple[TcpProxy, GunicornServer],
) -> None:
    # A server that stops answering: only the chassis's own bounds (health timeout, async
    # bridge timeout) and the driver's (asyncpg command_timeout) apply. A sync psycopg query on
    # an open connection has no client-side bound at all, so sync resources are left out here.
    proxy, server = postgres_service
    pids = server.worker_pids()
    outage = drive_outage(
        "PostgreSQL silent (proxy stops forwarding)",
        server,
        ["async", "status"],
        cut=lambda: proxy.cut("silent"),
        restore=proxy.restore,
    )
    check_outage(outage, server, pids)


# --- failing views and clients that hang up (gunicorn, 1 worker x 1 thread) --------------------


@pytest.fixture(scope="module")
def single_thread_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    # One thread: the request after a failure is served by the very thread that failed.
    directory = tmp_path_factory.mktemp("single")
    with (
        service_database("sqlite", directory) as database,
        gunicorn_server(database.settings(), directory, workers=1, threads=1) as server,
    ):
        yield server


def _get(port: int, path: str) -> Outcome:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        return send(conn, planned_request(path.split("?")[0].strip("/"), uuid.uuid4().hex, None))
    finally:
        conn.close()


def _sync_request(port: int) -> tuple[str, dict[str, object]]:
    token = f"next-{uuid.uuid4().hex[:8]}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        outcome = send(conn, planned_request("sync", token, None))
    finally:
        conn.close()
    assert outcome.status == 200
    (op,) = outcome.header_ids
    data = outcome.json()["data"]
    assert isinstance(data, dict)
    return op, data


def _records_for(server: GunicornServer, op: str) -> list[str]:
    return [
        f"{r.level} {r.logger}: {r.message}"
        for r in parse_log(server.log_text()).records
        if r.operation_id == op
    ]


@pytest.mark.parametrize("kind", ["boom", "unserialisable"])
def test_failing_view_answers_a_clean_500_envelope_logged_with_its_id(
    single_thread_server: GunicornServer, kind: str
) -> None:
    outcome = _get(single_thread_server.port, f"/{kind}")

    assert outcome.status == 500
    assert envelope_problem(outcome.body, 500) is None
    (op,) = outcome.header_ids
    assert outcome.json()["meta"]["operation_id"] == op
    records = _records_for(single_thread_server, op)
    assert any(
        r.startswith(f"ERROR cst_chassis: Unhandled exception on GET /{kind}") for r in records
    )


@pytest.mark.parametrize("kind", ["boom", "unserialisable"])
def test_request_after_a_failing_view_on_the_same_thread_gets_a_fresh_id(
    single_thread_server: GunicornServer, kind: str
) -> None:
    failed = _get(single_thread_server.port, f"/{kind}")
    op, data = _sync_request(single_thread_server.port)

    assert op != failed.header_ids[0]
    assert data["seen_operation_id"] == op
    assert not any(
        LEAK_MESSAGE in r for r in _records_for(single_thread_server, failed.header_ids[0])
    )


def _raw(port: int, payload: bytes, *, read: bool) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        if not read:
            return b""
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_client_sending_half_a_request_then_leaving_leaves_the_server_serving(
    single_thread_server: GunicornServer,
) -> None:
    token = f"half-{uuid.uuid4().hex[:8]}"
    _raw(
        single_thread_server.port,
        f"GET /sync?token={token} HTTP/1.1\r\nHost: x".encode(),
        read=False,
    )

    op, data = _sync_request(single_thread_server.port)

    assert data["seen_operation_id"] == op
    assert token not in single_thread_server.log_text()  # never dispatched, nothing logged


def test_client_leaving_before_the_response_is_logged_with_its_id_and_leaks_nothing(
    single_thread_server: GunicornServer,
) -> None:
    token = f"gone-{uuid.uuid4().hex[:8]}"
    request = f"GET /slow?ms=300&token={token} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    _raw(single_thread_server.port, request, read=False)

    op, data = _sync_request(single_thread_server.port)  # queued behind /slow on the one thread

    served = [r for r in parse_log(single_thread_server.log_text()).records if token in r.message]
    assert len(served) == 1
    assert served[0].operation_id not in {NO_ID, op}
    assert data["seen_operation_id"] == op
    assert not any(
        LEAK_MESSAGE in r.message for r in parse_log(single_thread_server.log_text()).records
    )
