"""The demo service (examples/demo): migrations, seed, every endpoint, its runner and gunicorn.

In-process tests build the demo app on a SQLite file in ``tmp_path`` and migrate it with the real
``alembic upgrade head``; the outgoing call of ``/relay`` goes through a real threaded server.
Two tests start the demo as a user does: ``python -m examples.demo`` and gunicorn (2 workers,
2 threads), each on a free port and bounded in time.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from werkzeug.serving import make_server

from cst_chassis.async_bridge import run_coroutine
from examples.demo import migrate
from examples.demo.__main__ import prepare
from examples.demo.app import create_app
from examples.demo.database import derive_urls, get_database
from examples.demo.models import Base, Product
from examples.demo.seed import SEED_COUNT

REPO = Path(__file__).resolve().parent.parent
HEAD = "a7c4e2d19b58"
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[(?P<level>[A-Z]+)\]\[(?P<op>[^\]]+)\] "
    r"(?P<logger>[\w.]+): (?P<message>.*)$",
    re.M,
)
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
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
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
    sync_url, async_url = derive_urls(url)
    assert sync_url.render_as_string(hide_password=False) == sync
    assert async_url.render_as_string(hide_password=False) == async_


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
    assert response.get_json()["errors"] == [
        {"message": "sort must be one of: id, price", "path": "sort"}
    ]


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
    response = client.post("/products", json={"name": " Lamp ", "price_cents": 2500})
    assert response.status_code == 201
    created = response.get_json()["data"]
    assert (created["id"], created["name"], created["price_cents"]) == (
        SEED_COUNT + 1,
        "Lamp",
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
    assert response.get_json()["errors"] == [{"message": "The body must be a JSON object"}]


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
        ("INFO", "examples.demo.access", "GET /products/<int:product_id> -> 200"),
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
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise
        finally:
            self._reader.join(10)
            assert self.process.stdout is not None
            self.process.stdout.close()
            while not self.lines.empty():
                self.output.append(self.lines.get_nowait())


def _child_env(database: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CST_")}
    env.update(DATABASE_URL=_sqlite_url(database), PYTHONUNBUFFERED="1", **extra)
    return env


def test_python_m_examples_demo_migrates_seeds_and_serves(tmp_path: Path) -> None:
    demo = _Process(
        [sys.executable, "-m", "examples.demo"], _child_env(tmp_path / "demo.db", PORT="0")
    )
    try:
        port = demo.wait_for(r"Running on http://127\.0\.0\.1:(\d+)")[1]
        status, body, _ = _get(f"http://127.0.0.1:{port}/status")
        assert (status, body["last_migration"]) == (200, HEAD)
        status, body, _ = _get(f"http://127.0.0.1:{port}/products?limit=100")
        assert (status, len(body["data"])) == (200, SEED_COUNT)
    finally:
        assert demo.stop(signal.SIGINT) == 0
    output = "".join(demo.output)
    assert f"examples.demo: seeded {SEED_COUNT} products" in output
    assert LOG_LINE.search(output), output


def test_demo_serves_under_gunicorn_with_two_workers_and_two_threads(tmp_path: Path) -> None:
    env = _child_env(tmp_path / "demo.db")
    prepared = subprocess.run(
        [sys.executable, "-m", "examples.demo", "prepare"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
    )
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    gunicorn = _Process(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers=2",
            "--threads=2",
            "--bind=127.0.0.1:0",
            "--graceful-timeout=10",
            "examples.demo.app:create_app()",
        ],
        env,
    )
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
    assert sorted(access) == ["GET /relay -> 200", "GET /status -> 200"]
