"""The demo service (examples/demo): migrations, seed, every endpoint, its runner and gunicorn.

In-process tests build the demo app on a SQLite file in ``tmp_path`` and migrate it with the real
``alembic upgrade head``; the outgoing call of ``/relay`` goes through a real threaded server.
Two tests start the demo as a user does: ``python -m examples.demo`` and gunicorn (2 workers,
2 threads), each on a free port and bounded in time.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from cst_chassis import get_state
from cst_chassis.async_bridge import run_coroutine
from examples.demo import migrate
from examples.demo.__main__ import prepare
from examples.demo.app import DEVELOPMENT_CURSOR_SECRET, create_app
from examples.demo.database import derive_urls, get_database
from examples.demo.models import Base, Product
from examples.demo.resources import UPSTREAM_CONFIG_KEY
from examples.demo.seed import SEED_COUNT
from tests import demo_support
from tests.conftest import POSTGRES_URL, SKIP_POSTGRES
from tests.demo_support import postgres_schema

REPO = Path(__file__).resolve().parent.parent
HEAD = "a7c4e2d19b58"
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[(?P<level>[A-Z]+)\]\[(?P<op>[^\]]+)\] "
    r"(?P<logger>[\w.]+): (?P<message>.*)$",
    re.M,
)

# Servers, subprocesses or brokers: left out of `make check` (the Makefile).
pytestmark = pytest.mark.slow
STARTUP_SECONDS = 60.0
REQUEST_SECONDS = 10.0


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _dispose(app: Flask) -> None:
    database = get_database(app)
    database.engine.dispose()
    # The async pool lives on the chassis loop; dispose it there, before the test ends.
    run_coroutine(database.async_engine.dispose)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Flask]:
    """The demo app on a fresh, migrated and seeded SQLite file."""
    app = create_app(_sqlite_url(tmp_path / "demo.db"))
    prepare(app)
    try:
        yield app
    finally:
        _dispose(app)


@pytest.fixture
def client(demo: Flask) -> FlaskClient:
    return demo.test_client()


@pytest.fixture
def served_demo(demo: Flask) -> Iterator[str]:
    """The demo app behind a real threaded server; yields its base URL."""
    server = make_server("127.0.0.1", 0, demo, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    # As `python -m examples.demo` does: /relay calls this server's own /status.
    demo.config[UPSTREAM_CONFIG_KEY] = f"{base}/status"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        thread.join(10)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
    call = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(call, timeout=REQUEST_SECONDS) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read()), dict(exc.headers)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- database URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "sync", "async_"),
    [
        ("sqlite:///demo.db", "sqlite:///demo.db", "sqlite+aiosqlite:///demo.db"),
        ("sqlite+pysqlite:////tmp/x.db", "sqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
        (
            "postgresql://u:p@db:5432/shop",
            "postgresql+psycopg://u:p@db:5432/shop",
            "postgresql+asyncpg://u:p@db:5432/shop",
        ),
        (
            "postgresql+psycopg://u@db/shop",
            "postgresql+psycopg://u@db/shop",
            "postgresql+asyncpg://u@db/shop",
        ),
        (
            "postgres://u@db/shop",
            "postgresql+psycopg://u@db/shop",
            "postgresql+asyncpg://u@db/shop",
        ),
    ],
)
def test_database_url_gives_a_sync_and_an_async_driver_url(
    url: str, sync: str, async_: str
) -> None:
    urls = derive_urls(url)
    assert urls.sync.render_as_string(hide_password=False) == sync
    assert urls.async_.render_as_string(hide_password=False) == async_
    assert urls.async_connect_args == {}


def test_database_url_of_another_database_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database 'mysql'"):
        derive_urls("mysql://u@db/shop")


# -- migrations and seed -------------------------------------------------------------------


def test_prepare_applies_every_migration_and_seeds_the_catalogue(demo: Flask) -> None:
    with get_database(demo).engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == HEAD
        assert conn.scalar(select(func.count()).select_from(Product)) == SEED_COUNT
    assert migrate.head_revision() == HEAD


def test_prepare_again_keeps_the_existing_products(demo: Flask) -> None:
    prepare(demo)
    with get_database(demo).engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Product)) == SEED_COUNT


def test_migrations_build_exactly_the_tables_the_models_declare(demo: Flask) -> None:
    with get_database(demo).engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []


# -- /status -------------------------------------------------------------------------------


def test_status_reports_the_last_migration_and_the_async_pool_check(client: FlaskClient) -> None:
    response = client.get("/status")
    assert response.status_code == 200
    assert response.get_json() == {
        "name": "Cst-Chassis-Demo",
        "version": "1.0.0",
        "database": "ok",
        "last_migration": HEAD,
        "head": HEAD,
        "migrations_pending": False,
        "checks": {"async_pool": "ok"},
    }


def test_status_reports_pending_migrations_when_the_database_is_behind(demo: Flask) -> None:
    with get_database(demo).engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '3f2a1c9b7d10'"))
    body = demo.test_client().get("/status").get_json()
    assert (body["last_migration"], body["head"]) == ("3f2a1c9b7d10", HEAD)
    assert body["migrations_pending"] is True


# -- /products (sync, paginated) -----------------------------------------------------------


def test_products_first_page_has_25_products_and_a_next_link(client: FlaskClient) -> None:
    body = client.get("/products").get_json()
    assert [p["id"] for p in body["data"]] == list(range(1, 26))
    assert body["meta"]["pagination"]["next"] == "http://localhost/products?offset=25&limit=25"
    assert body["meta"]["pagination"]["prev"] is None


def test_products_walk_returns_every_product_once_in_id_order(
    client: FlaskClient, demo: Flask
) -> None:
    seen: list[int] = []
    url: str | None = "/products?limit=30"
    while url is not None:
        body = client.get(url).get_json()
        seen.extend(p["id"] for p in body["data"])
        url = body["meta"]["pagination"]["next"]
    with get_database(demo).engine.connect() as conn:
        expected = list(conn.scalars(select(Product.id).order_by(Product.id)))
    assert seen == expected


def test_products_search_and_sort_are_kept_in_the_links(client: FlaskClient) -> None:
    body = client.get("/products?q=Product 0&sort=price&limit=5").get_json()
    prices = [p["price_cents"] for p in body["data"]]
    assert prices == sorted(prices)
    assert all(p["name"].startswith("Product 0") for p in body["data"])
    assert body["meta"]["pagination"]["next"] == (
        "http://localhost/products?q=Product+0&sort=price&offset=5&limit=5"
    )


def test_products_unknown_sort_is_a_400_naming_sort(client: FlaskClient) -> None:
    response = client.get("/products?sort=name")
    assert response.status_code == 400
    [error] = response.get_json()["errors"]
    assert error["path"] == "sort"
    assert error["message"] == "Input should be 'id' or 'price'"  # with_query's, pydantic's words


def test_products_limit_zero_is_a_400_naming_limit(client: FlaskClient) -> None:
    response = client.get("/products?limit=0")
    assert response.status_code == 400
    assert [e["path"] for e in response.get_json()["errors"]] == ["limit"]


# -- /products/by-price (keyset) ----------------------------------------------------------


def test_products_by_price_walk_follows_cursors_cheapest_first(client: FlaskClient) -> None:
    seen: list[tuple[int, int]] = []
    url: str | None = "/products/by-price?limit=40"
    while url is not None:
        body = client.get(url).get_json()
        seen.extend((p["price_cents"], p["id"]) for p in body["data"])
        url = body["meta"]["pagination"]["next"]
    assert len(seen) == SEED_COUNT
    assert seen == sorted(seen)


def test_products_by_price_tampered_cursor_is_a_400_naming_cursor(client: FlaskClient) -> None:
    next_url = client.get("/products/by-price?limit=5").get_json()["meta"]["pagination"]["next"]
    cursor = parse_qs(urlsplit(next_url).query)["cursor"][0]
    middle = len(cursor) // 2
    tampered = cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1 :]
    response = client.get("/products/by-price", query_string={"cursor": tampered, "limit": 5})
    assert response.status_code == 400
    assert [e["path"] for e in response.get_json()["errors"]] == ["cursor"]


# -- /products/<id> (async) ----------------------------------------------------------------


def test_product_is_read_through_the_async_engine(client: FlaskClient) -> None:
    response = client.get("/products/7")
    assert response.status_code == 200
    assert response.get_json()["data"] == {
        "id": 7,
        "name": "Product 007",
        "price_cents": 199 + (7 * 3779) % 9800,
        "created_at": "2025-01-01T07:00:00+00:00",
    }


def test_missing_product_is_a_404_envelope(client: FlaskClient) -> None:
    response = client.get("/products/999")
    assert response.status_code == 404
    body = response.get_json()
    assert body["errors"] == [{"message": "Product 999 does not exist"}]
    assert "data" not in body


# -- POST /products (async, add_error) -----------------------------------------------------


def test_created_product_is_201_and_readable(client: FlaskClient) -> None:
    # Stored as sent: the schema cannot describe stripping (whitespace differs between JSON
    # Schema's regexes and pydantic's), so the demo no longer strips names (issue 24).
    response = client.post("/products", json={"name": " Lamp ", "price_cents": 2500})
    assert response.status_code == 201
    created = response.get_json()["data"]
    assert (created["id"], created["name"], created["price_cents"]) == (
        SEED_COUNT + 1,
        " Lamp ",
        2500,
    )
    assert client.get(f"/products/{created['id']}").get_json()["data"] == created


def test_invalid_product_reports_each_field_with_its_path(client: FlaskClient) -> None:
    response = client.post("/products", json={"name": "", "price_cents": True})
    assert response.status_code == 400
    assert [e["path"] for e in response.get_json()["errors"]] == ["name", "price_cents"]


def test_product_body_that_is_not_an_object_is_a_400(client: FlaskClient) -> None:
    response = client.post("/products", json=[1, 2])
    assert response.status_code == 400
    assert response.get_json()["errors"] == [
        {"message": "Input should be an object", "path": "body"}
    ]


def test_unsupported_method_is_a_405_envelope(client: FlaskClient) -> None:
    response = client.delete("/products")
    assert response.status_code == 405
    assert set(response.get_json()) == {"meta", "errors"}


# -- /relay (outgoing_headers) -------------------------------------------------------------


def test_relay_forwards_the_operation_id_to_the_upstream_call(
    served_demo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    status, body, headers = _get(f"{served_demo}/relay", {"X-Operation-ID": "demo-op-1"})
    assert status == 200
    assert headers["X-Operation-ID"] == "demo-op-1"
    assert body["data"]["upstream"] == f"{served_demo}/status"
    assert body["data"]["upstream_operation_id"] == "demo-op-1"
    assert body["data"]["forwarded"] is True
    assert body["data"]["body"]["last_migration"] == HEAD
    access = [
        m["message"]
        for m in LOG_LINE.finditer(capsys.readouterr().out)
        if m["op"] == "demo-op-1" and m["logger"] == "examples.demo.access"
    ]
    assert access == ["GET /status -> 200", "GET /relay -> 200"]


def test_relay_to_an_unreachable_upstream_is_a_502_envelope(tmp_path: Path) -> None:
    app = create_app(
        _sqlite_url(tmp_path / "demo.db"),
        upstream_url=f"http://127.0.0.1:{_closed_port()}/status",
    )
    try:
        response = app.test_client().get("/relay")
        assert response.status_code == 502
        assert response.get_json()["errors"] == [{"message": "The upstream service did not answer"}]
    finally:
        _dispose(app)


# -- logs ----------------------------------------------------------------------------------


def test_request_logs_use_the_chassis_format_with_the_operation_id(
    client: FlaskClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    client.get("/products/3", headers={"X-Operation-ID": "demo-op-2"})
    lines = [
        (m["level"], m["logger"], m["message"])
        for m in LOG_LINE.finditer(capsys.readouterr().out)
        if m["op"] == "demo-op-2"
    ]
    assert lines == [
        ("INFO", "examples.demo.resources", "reading product 3"),
        ("INFO", "examples.demo.access", "GET /products/<int32:product_id> -> 200"),
    ]


# -- the demo as a user runs it ------------------------------------------------------------


class _Process:
    """A child process whose merged stdout/stderr is read line by line in a thread."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            args,
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = STARTUP_SECONDS) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            self.output.append(line)
            if match := regex.search(line):
                return match
        raise AssertionError(f"{pattern!r} never appeared; output:\n{''.join(self.output)}")

    def stop(self, sig: signal.Signals) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            returncode: int | None = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            returncode = None
            # _child_env sets PYTHONFAULTHANDLER: on SIGABRT the child prints every thread's
            # stack, so a failure says where it hung.
            self.process.send_signal(signal.SIGABRT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        while not self.lines.empty():
            self.output.append(self.lines.get_nowait())
        if returncode is None:
            raise AssertionError(
                f"{self.process.args!r} still ran 30 s after {sig.name}; its output (thread stacks "
                f"last):\n{''.join(self.output)}"
            )
        return returncode


def _child_env(database: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CST_")}
    env.update(
        DATABASE_URL=_sqlite_url(database),
        PYTHONUNBUFFERED="1",
        PYTHONFAULTHANDLER="1",
        # Under gunicorn the demo refuses to start without a secret of its own (issue 26).
        CST_CURSOR_SECRET="the-demo-tests-own-cursor-secret",
        **extra,
    )
    return env


@contextmanager
def _sigint_as_from_a_terminal() -> Iterator[None]:
    """Children started inside have SIGINT's default action, as when started from a terminal.

    A job a non-interactive shell starts in the background (a CI script's ``cmd &``) runs with
    SIGINT ignored, and a child inherits that through exec, while a handled signal is reset to
    its default: with the handler set here, Ctrl-C (SIGINT) stops the child as it would a
    user's, wherever pytest itself was started.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def test_python_m_examples_demo_migrates_seeds_and_serves(tmp_path: Path) -> None:
    with _sigint_as_from_a_terminal():
        demo = _Process(
            [sys.executable, "-m", "examples.demo"], _child_env(tmp_path / "demo.db", PORT="0")
        )
    try:
        port = demo.wait_for(r"Running on http://127\.0\.0\.1:(\d+)")[1]
        base = f"http://127.0.0.1:{port}"
        document_url = demo.wait_for(r"OpenAPI document: (\S+)")[1]
        docs_url = demo.wait_for(r"API docs \(Swagger UI\): (\S+)")[1]
        assert (document_url, docs_url) == (f"{base}/openapi.json", f"{base}/docs")
        status, body, _ = _get(f"{base}/status")
        assert (status, body["last_migration"]) == (200, HEAD)
        status, body, _ = _get(f"{base}/products?limit=100")
        assert (status, len(body["data"])) == (200, SEED_COUNT)
        status, document, _ = _get(document_url)
        assert (status, document["openapi"]) == (200, "3.1.0")
        with urllib.request.urlopen(docs_url, timeout=REQUEST_SECONDS) as page:
            assert b"swagger-ui-bundle.js" in page.read()
        # /relay calls this server's own /status, set once the port was bound.
        status, body, _ = _get(f"{base}/relay")
        assert (status, body["data"]["upstream"]) == (200, f"{base}/status")
    finally:
        assert demo.stop(signal.SIGINT) == 0
    output = "".join(demo.output)
    assert f"examples.demo: seeded {SEED_COUNT} products" in output
    assert LOG_LINE.search(output), output


def test_demo_serves_under_gunicorn_with_two_workers_and_two_threads(
    tmp_path: Path, served_demo: str
) -> None:
    # /relay calls the upstream named in DEMO_UPSTREAM_URL: here another demo, served in-process.
    env = _child_env(tmp_path / "demo.db", DEMO_UPSTREAM_URL=f"{served_demo}/status")
    _prepare(env)
    gunicorn = _Process(_gunicorn_args("--bind=127.0.0.1:0", "--workers=2"), env)
    try:
        port = gunicorn.wait_for(r"Listening at: http://127\.0\.0\.1:(\d+)")[1]
        for _ in range(2):
            gunicorn.wait_for(r"Booting worker with pid")
        base = f"http://127.0.0.1:{port}"
        status, body, _ = _get(f"{base}/status")
        assert (status, body["last_migration"]) == (200, HEAD)
        paths = [f"/products/{n}" if n % 2 else f"/products?offset={n}&limit=5" for n in range(40)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda path: _get(base + path), paths))
        assert [status for status, _, _ in answers] == [200] * len(paths)
        status, body, _ = _get(f"{base}/relay", {"X-Operation-ID": "gunicorn-op"})
        assert (status, body["data"]["upstream_operation_id"]) == (200, "gunicorn-op")
    finally:
        assert gunicorn.stop(signal.SIGTERM) == 0
    access = [
        m["message"]
        for m in LOG_LINE.finditer("".join(gunicorn.output))
        if m["op"] == "gunicorn-op" and m["logger"] == "examples.demo.access"
    ]
    assert access == ["GET /relay -> 200"]


def _prepare(env: dict[str, str]) -> None:
    prepared = subprocess.run(
        [sys.executable, "-m", "examples.demo", "prepare"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
    )
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr


def _gunicorn_args(*options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--threads=2",
        "--graceful-timeout=10",
        *options,
        "examples.demo.app:create_app()",
    ]


# -- hardening (issue 16): SSRF, hostile input, secrets, database URL options --------------


class _Trap:
    """A loopback HTTP server that records every request it gets (it should get none)."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        trap = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                trap.paths.append(self.path)
                body = b"internal secret"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def _unix_get(socket_path: str, raw_request: bytes) -> tuple[int, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(REQUEST_SECONDS)
        sock.connect(socket_path)
        sock.sendall(raw_request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def test_relay_ignores_a_hostile_host_header_under_gunicorn_on_a_unix_socket(
    tmp_path: Path, served_demo: str
) -> None:
    # Issue 16, item 2, as it was run: on a unix socket gunicorn fills SERVER_NAME/SERVER_PORT
    # from the client's Host header; the demo once built its upstream URL from them.
    env = _child_env(tmp_path / "demo.db", DEMO_UPSTREAM_URL=f"{served_demo}/status")
    _prepare(env)
    socket_dir = tempfile.mkdtemp(prefix="cst-", dir="/tmp")  # AF_UNIX paths are short
    socket_path = os.path.join(socket_dir, "demo.sock")
    gunicorn = _Process(_gunicorn_args(f"--bind=unix:{socket_path}", "--workers=1"), env)
    try:
        with _Trap() as trap:
            gunicorn.wait_for(r"Listening at: unix:")
            gunicorn.wait_for(r"Booting worker with pid")
            hostile = f"127.0.0.1:{trap.port}/any/path?x=#".encode()
            status, body = _unix_get(
                socket_path,
                b"GET /relay HTTP/1.1\r\nHost: " + hostile + b"\r\nConnection: close\r\n\r\n",
            )
        assert trap.paths == []
        assert status == 200
        assert body["data"]["upstream"] == f"{served_demo}/status"
        assert body["data"]["body"]["last_migration"] == HEAD
    finally:
        assert gunicorn.stop(signal.SIGTERM) == 0
        shutil.rmtree(socket_dir, ignore_errors=True)


def test_relay_without_a_configured_upstream_is_a_503_and_calls_nothing(
    client: FlaskClient,
) -> None:
    with _Trap() as trap:
        response = client.get(
            "/relay",
            environ_overrides={"SERVER_NAME": "127.0.0.1", "SERVER_PORT": str(trap.port)},
            headers={"Host": f"127.0.0.1:{trap.port}"},
        )
    assert trap.paths == []
    assert response.status_code == 503
    assert response.get_json()["errors"] == [
        {"message": "No upstream service is configured (DEMO_UPSTREAM_URL)"}
    ]


@pytest.mark.parametrize("value", ["file:///etc/passwd", "127.0.0.1:5699/status", "http://"])
def test_a_relay_target_that_is_not_an_http_url_is_refused_at_start_up(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(ValueError, match="DEMO_UPSTREAM_URL="):
        create_app(_sqlite_url(tmp_path / "demo.db"), upstream_url=value)


def test_cursor_secret_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CST_CURSOR_SECRET", "a-long-random-secret-from-the-environment")
    app = create_app(_sqlite_url(tmp_path / "demo.db"))
    try:
        assert get_state(app).config.cursor_secret == "a-long-random-secret-from-the-environment"
        assert "CST_CURSOR_SECRET is not set" not in caplog.text
    finally:
        _dispose(app)


@pytest.mark.parametrize(
    ("argv0", "server_software", "server"),
    [
        ("/srv/.venv/bin/gunicorn", None, "gunicorn"),
        ("/srv/.venv/lib/python3.11/site-packages/gunicorn/__main__.py", None, "gunicorn"),
        ("/srv/.venv/bin/granian", None, "granian"),
        ("/usr/bin/anything", "gunicorn/23.0.0", "gunicorn"),
    ],
)
def test_without_a_cursor_secret_the_demo_refuses_to_start_on_a_production_server(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv0: str,
    server_software: str | None,
    server: str,
) -> None:
    # Issue 26: started the `make demo-gunicorn` way, it signed with the secret published in
    # its source, and a cursor forged with it was accepted.
    monkeypatch.setattr(sys, "argv", [argv0, "examples.demo.app:create_app()"])
    if server_software is not None:
        monkeypatch.setenv("SERVER_SOFTWARE", server_software)
    with pytest.raises(RuntimeError, match=f"CST_CURSOR_SECRET is not set.*under {server}"):
        create_app(_sqlite_url(tmp_path / "demo.db"))


@pytest.mark.slow
def test_gunicorn_without_a_cursor_secret_does_not_serve(tmp_path: Path) -> None:
    env = _child_env(tmp_path / "demo.db")
    del env["CST_CURSOR_SECRET"]
    _prepare(env)
    finished = subprocess.run(
        [*_gunicorn_args("--bind=127.0.0.1:0", "--workers=1")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
    )
    assert finished.returncode != 0
    assert "CST_CURSOR_SECRET is not set" in finished.stdout + finished.stderr


def test_missing_cursor_secret_falls_back_to_a_development_value_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(_sqlite_url(tmp_path / "demo.db"))  # no CST_* variable is set in tests
    try:
        assert get_state(app).config.cursor_secret == DEVELOPMENT_CURSOR_SECRET
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("CST_CURSOR_SECRET is not set" in message for message in warnings)
    finally:
        _dispose(app)


def test_libpq_options_are_translated_for_asyncpg_and_kept_for_psycopg() -> None:
    urls = derive_urls(
        "postgres://u@db/shop?sslmode=require&application_name=shop-api&connect_timeout=7"
        "&options=-c%20statement_timeout%3D5000%20-c%20search_path%3Dshop"
        "&target_session_attrs=read-write"
    )
    assert dict(urls.sync.query) == {
        "sslmode": "require",
        "application_name": "shop-api",
        "connect_timeout": "7",
        "options": "-c statement_timeout=5000 -c search_path=shop",
        "target_session_attrs": "read-write",
    }
    assert dict(urls.async_.query) == {}
    assert urls.async_connect_args == {
        "ssl": "require",
        "timeout": 7,
        "target_session_attrs": "read-write",
        "server_settings": {
            "application_name": "shop-api",
            "statement_timeout": "5000",
            "search_path": "shop",
        },
    }


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("sslrootcert=/etc/ca.pem", "'sslrootcert' has no equivalent"),
        ("keepalives=1", "'keepalives' has no equivalent"),
        ("sslmod=require", "unknown option 'sslmod'"),
        ("sslmode=sometimes", "sslmode='sometimes'"),
        ("connect_timeout=soon", "connect_timeout='soon'"),
        ("options=--verbose", "only '-c name=value'"),
    ],
)
def test_a_database_url_option_without_an_async_equivalent_is_refused_at_start_up(
    query: str, named: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        create_app(f"postgresql://u@db/shop?{query}")


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_POSTGRES)
def test_database_url_with_libpq_options_serves_through_both_engines(
    tmp_path: Path,
) -> None:
    assert POSTGRES_URL is not None
    url = make_url(POSTGRES_URL).set(
        drivername="postgresql",
        query={"sslmode": "prefer", "application_name": "cst-demo-test", "connect_timeout": "5"},
    )
    with postgres_schema() as options:
        app = create_app(url.update_query_dict({"options": options}).render_as_string(False))
        try:
            prepare(app)
            client = app.test_client()
            assert client.get("/products/1").status_code == 200  # the async engine
            assert client.get("/products?limit=1").status_code == 200  # the sync engine
            assert client.get("/status").get_json()["database"] == "ok"
            database = get_database(app)
            with database.engine.connect() as conn:
                assert conn.scalar(text("SHOW application_name")) == "cst-demo-test"

            async def async_application_name() -> object:
                async with database.async_engine.connect() as conn:
                    return await conn.scalar(text("SHOW application_name"))

            assert run_coroutine(async_application_name) == "cst-demo-test"
        finally:
            _dispose(app)


# The fixture: the demo on SQLite and (when configured) PostgreSQL.
demo_on_each_database = demo_support.demo_on_each_database

HOSTILE_REQUESTS = [
    ("GET", "/products?q=%00", None, "q"),
    ("GET", "/products/3/quote?currency=%00", None, "currency"),
    ("GET", "/products?q=" + "x" * 101, None, "q"),
    ("POST", "/products", b'{"name": "Lamp", "price_cents": 2147483648}', "price_cents"),
    ("POST", "/products", b'{"name": "Lamp", "price_cents": ' + b"9" * 30 + b"}", "price_cents"),
    ("POST", "/products", b'{"name": "a\\u0000b", "price_cents": 1}', "name"),
    ("POST", "/products", b'{"name": "\\ud800", "price_cents": 1}', "body"),
    ("POST", "/products", b'{"name": "\xff\xfe", "price_cents": 1}', "body"),
    ("POST", "/products", b"[" * 1000 + b"]" * 1000, "body"),
    ("POST", "/products", b'{"name": ' + b"[" * 1000 + b"]" * 1000 + b"}", "body"),
]


@pytest.mark.parametrize(("method", "path", "body", "error_path"), HOSTILE_REQUESTS)
def test_hostile_input_is_a_400_naming_it_without_a_traceback(
    demo_on_each_database: Flask,
    capsys: pytest.CaptureFixture[str],
    method: str,
    path: str,
    body: bytes | None,
    error_path: str,
) -> None:
    capsys.readouterr()
    response = demo_on_each_database.test_client().open(
        path, method=method, data=body, content_type="application/json"
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert error_path in [e.get("path") for e in response.get_json()["errors"]]
    logged = capsys.readouterr()
    assert "Traceback" not in logged.out + logged.err


@pytest.mark.parametrize(
    "path",
    [
        "/products/2147483648",
        "/products/9223372036854775808",
        "/products/" + "9" * 40,
        "/products/2147483648/quote",
    ],
)
def test_an_id_beyond_the_integer_column_is_a_404_envelope_before_the_database(
    demo_on_each_database: Flask, capsys: pytest.CaptureFixture[str], path: str
) -> None:
    # The library's <int32:product_id> (the demo's own guard before issue 24 answered 400).
    response = demo_on_each_database.test_client().get(path)
    assert response.status_code == 404, response.get_data(as_text=True)
    assert set(response.get_json()) == {"meta", "errors"}
    logged = capsys.readouterr()
    assert "Traceback" not in logged.out + logged.err


def test_a_quote_has_a_uuid_decimal_amounts_a_currency_and_times(client: FlaskClient) -> None:
    response = client.get("/products/42/quote?quantity=3&currency=USD")
    assert response.status_code == 200, response.get_data(as_text=True)
    quote = response.get_json()["data"]
    assert uuid.UUID(quote["quote_id"]).version == 4
    assert (quote["product_id"], quote["quantity"], quote["currency"]) == (42, 3, "USD")
    # Product 042 costs 21.17 EUR; at the demo's fixed rate 1.0825 that is 22.92 USD.
    assert (quote["unit_price"], quote["total"]) == ("22.92", "68.76")
    created = datetime.fromisoformat(quote["product_created_at"])
    valid_until = datetime.fromisoformat(quote["valid_until"])
    assert created == datetime(2025, 1, 2, 18, tzinfo=UTC)
    assert valid_until.tzinfo is not None


def test_a_quote_query_reports_each_bad_parameter(client: FlaskClient) -> None:
    response = client.get("/products/42/quote?quantity=0&currency=XYZ")
    assert response.status_code == 400
    assert [e["path"] for e in response.get_json()["errors"]] == ["quantity", "currency"]


def test_a_whole_float_price_is_an_integer_price(client: FlaskClient) -> None:
    # JSON Schema calls 18680.0 an integer: what schemathesis found refused before issue 24.
    response = client.post("/products", json={"name": "Lamp", "price_cents": 18680.0})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["data"]["price_cents"] == 18680
    refused = client.post("/products", json={"name": "Lamp", "price_cents": 18680.5})
    assert [e["path"] for e in refused.get_json()["errors"]] == ["price_cents"]


# Text as hostile as JSON can carry: NUL, lone surrogates, control characters, huge code points.
_hostile_text = st.text(
    alphabet=st.characters(codec=None, categories=None), max_size=120
) | st.sampled_from(["\x00", "a\x00b", "\ud800", "\udfff", "x" * 101, " ", ""])
_hostile_int = st.integers(min_value=-(2**80), max_value=2**80) | st.sampled_from(
    [2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, -1]
)
_json_leaf = st.none() | st.booleans() | st.floats(allow_nan=False) | _hostile_int | _hostile_text
_json_value = st.recursive(
    _json_leaf,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_hostile_text, children, max_size=4)
    ),
    max_leaves=20,
)
_product_body = (
    st.fixed_dictionaries(
        {},
        optional={"name": _hostile_text | _json_value, "price_cents": _hostile_int | _json_value},
    )
    | _json_value
)
_nesting = st.integers(min_value=1, max_value=3000)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_product_body, depth=_nesting, product_id=_hostile_int, q=_hostile_text)
def test_fuzzed_bodies_and_path_parameters_never_give_a_500_nor_a_traceback(
    demo_on_each_database: Flask,
    capsys: pytest.CaptureFixture[str],
    body: object,
    depth: int,
    product_id: int,
    q: str,
) -> None:
    client = demo_on_each_database.test_client()
    # ensure_ascii: lone surrogates travel as \ud800 escapes, as a hostile client sends them.
    raw = json.dumps(body, ensure_ascii=True).encode()
    deep = b"[" * depth + raw + b"]" * depth
    # As bytes on the wire: a lone surrogate becomes the (invalid UTF-8) bytes that encode it.
    query = quote(q.encode("utf-8", "surrogatepass"))
    answers = [
        client.post("/products", data=raw, content_type="application/json"),
        client.post("/products", data=deep, content_type="application/json"),
        client.get(f"/products/{product_id}"),
        client.get(f"/products?q={query}"),
        client.get(f"/products/by-price?cursor={query}"),
    ]
    for response in answers:
        assert response.status_code < 500, (response.request.path, response.get_data())
        assert response.is_json
    logged = capsys.readouterr()
    assert "Traceback" not in logged.out + logged.err
    assert "[ERROR]" not in logged.out
