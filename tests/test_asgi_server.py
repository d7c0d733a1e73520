"""The ASGI entry point on real servers (issue 23): uvicorn[standard] and granian's ASGI interface.

Both with 2 worker processes, serving the reliability service (tests/reliability/service.py) over
``cst_chassis.asgi.asgi_app``: envelope, operation id in and out and in every log line, 413s,
pagination, probes, one async engine pool per worker (SQLite, and PostgreSQL with asyncpg when
configured), and a graceful shutdown where readiness turns 503 at SIGTERM while a request in
flight still completes. The load and fault runs are in tests/reliability/.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.support import (
    NO_ID,
    POSTGRES_URL,
    ROWS,
    SKIP_POSTGRES,
    ServerProcess,
    granian_asgi_server,
    parse_log,
    service_database,
    uvicorn_server,
)

# Servers, subprocesses or brokers: left out of `make check` (the Makefile).
pytestmark = pytest.mark.slow

ASGI_SERVERS: dict[str, Callable[..., AbstractContextManager[ServerProcess]]] = {
    "uvicorn": uvicorn_server,
    "granian": granian_asgi_server,
}
KINDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_POSTGRES)),
]


def call(
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    chunked: bool = False,
) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        if chunked and body is not None:
            conn.putrequest(method, path)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            step = 64 * 1024
            try:
                for start in range(0, len(body), step):
                    piece = body[start : start + step]
                    conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                conn.send(b"0\r\n\r\n")
            except OSError:
                pass  # the server may answer 413 and close before the whole body is sent
        else:
            conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        raw = response.read()
        payload = json.loads(raw) if raw else None
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
    finally:
        conn.close()


@pytest.fixture(params=list(ASGI_SERVERS))
def server_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("kind", KINDS)
def test_every_chassis_promise_holds_over_asgi(server_name: str, kind: str, tmp_path: Path) -> None:
    serve = ASGI_SERVERS[server_name]
    config = {"CST_MAX_CONTENT_LENGTH": 100_000}
    with (
        service_database(kind, tmp_path) as database,
        serve(database.settings(config=config), tmp_path) as server,
    ):
        port = server.port
        ids: dict[str, str] = {}
        pids: dict[str, set[int]] = {"sync": set(), "async": set()}
        for n in range(12):
            for view in ["sync", "async"]:
                op = f"asgi-{view}-{n}-{uuid.uuid4().hex[:6]}"
                status, headers, body = call(
                    port, "GET", f"/{view}?token=t{view}{n}", headers={"X-Operation-ID": op}
                )
                assert status == 200, body
                assert headers["x-operation-id"] == op
                assert body["meta"]["operation_id"] == op
                assert body["data"]["seen_operation_id"] == op
                assert body["data"]["count"] == ROWS  # the async one through the pooled engine
                ids[f"served {view} token=t{view}{n}"] = op
                pids[view].add(body["data"]["pid"])
        # Generated ids come back too, and are uuids.
        status, headers, body = call(port, "GET", "/async?token=gen")
        assert status == 200 and body["meta"]["operation_id"] == headers["x-operation-id"]
        assert len(uuid.UUID(headers["x-operation-id"]).hex) == 32

        # Pagination, validation and error envelopes.
        status, _, body = call(port, "GET", "/items?offset=100&limit=5&token=p")
        assert status == 200
        assert [item["id"] for item in body["data"]] == [101, 102, 103, 104, 105]
        assert body["meta"]["pagination"]["next"] is not None
        status, _, body = call(port, "GET", "/items?limit=0&token=p")
        assert status == 400 and body["errors"][0]["path"] == "limit"
        status, _, body = call(port, "GET", "/boom?token=b")
        assert status == 500 and body["errors"] == [{"message": "Internal server error"}]
        status, _, body = call(port, "GET", "/no/such/path")
        assert status == 404 and set(body) == {"meta", "errors"}

        # Bodies: read in the pool (POST) and on the loop (PUT); over the limit, a 413 envelope.
        for method in ["POST", "PUT"]:
            status, _, body = call(port, method, "/echo", body=b"x" * 50_000)
            assert (status, body["data"]["length"]) == (200, 50_000)
            status, _, body = call(port, method, "/echo", body=b"x" * 100_001)
            assert status == 413 and body["errors"][0]["message"].startswith("The data value")
            status, _, body = call(port, method, "/echo", body=b"x" * 300_000, chunked=True)
            assert status == 413 and set(body) == {"meta", "errors"}

        # Probes.
        status, _, body = call(port, "GET", "/livez")
        assert status == 200 and body["checks"] == {"event_loop": "ok"}
        status, _, body = call(port, "GET", "/readyz")
        assert status == 200
        status, _, body = call(port, "GET", "/status")
        assert status == 200 and body["database"] == "ok"

        log = parse_log(server.log_text())
        workers = server.worker_pids()
    # Every line the service wrote is a chassis record, and each request's line has its id.
    assert log.stray == []
    served = {r.message: r.operation_id for r in log.records if r.message.startswith("served")}
    for message, op in ids.items():
        assert served[message] == op
    assert all(r.operation_id != NO_ID for r in log.records if r.logger == "reliability.service")
    # Worker processes answered (each with its own loop, thread pool and engine pools), not the
    # server's main process.
    assert pids["sync"] | pids["async"] <= workers


def test_sigterm_turns_readiness_503_while_a_request_in_flight_completes(
    server_name: str, tmp_path: Path
) -> None:
    serve = ASGI_SERVERS[server_name]
    with (
        service_database("sqlite", tmp_path) as database,
        serve(database.settings(), tmp_path) as server,
    ):
        status, _, _ = call(server.port, "GET", "/readyz")
        assert status == 200
        result: dict[str, Any] = {}

        def hold() -> None:
            result["answer"] = call(server.port, "GET", f"/hold/held?release={tmp_path}")

        thread = threading.Thread(target=hold)
        thread.start()
        started = tmp_path / "held.started"
        _wait(started.exists)
        server.process.send_signal(signal.SIGTERM)
        (tmp_path / "held").touch()
        thread.join(timeout=60)
        status, _, body = result["answer"]
        assert status == 200, body
        assert body["data"]["held"] == "held"
        assert body["data"]["readiness"] == 503, "readiness still 200 after SIGTERM"
        server.process.wait(timeout=30)
        errors = server.stderr_path.read_text()
        # uvicorn re-raises the signal it stopped on once it is done: -SIGTERM is a clean exit.
        assert server.process.returncode in {0, -signal.SIGTERM}, errors[-2000:]
        assert "Traceback" not in errors


def _wait(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.01)


def test_a_client_leaving_cancels_its_async_view_with_nothing_logged_as_an_error(
    server_name: str, tmp_path: Path
) -> None:
    serve = ASGI_SERVERS[server_name]
    with (
        service_database("sqlite", tmp_path) as database,
        serve(database.settings(), tmp_path) as server,
    ):
        op = f"gone-{uuid.uuid4().hex[:8]}"
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        try:
            sock.sendall(
                f"GET /hold/gone?release={tmp_path} HTTP/1.1\r\nHost: x\r\n"
                f"X-Operation-ID: {op}\r\n\r\n".encode()
            )
            _wait((tmp_path / "gone.started").exists)
        finally:
            sock.close()
        _wait((tmp_path / "gone.cancelled").exists)
        status, _, body = call(server.port, "GET", "/async?token=after")
        assert status == 200 and body["data"]["count"] == ROWS
        log = parse_log(server.log_text())
    mine = [r.message for r in log.records if r.operation_id == op]
    assert mine == ["hold gone started", "hold gone cancelled"]
    assert [r for r in log.records if r.level in {"ERROR", "CRITICAL"}] == []
    assert "Traceback" not in server.stderr_path.read_text()
