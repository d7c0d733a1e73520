"""The health endpoint: shape, database kinds, down cases in bounded time, custom checks, drift.

Real parts only: SQLite files, PostgreSQL (``database`` fixture), a TCP proxy that can stop
answering, closed ports, Alembic folders written to tmp_path.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import pytest
import sqlalchemy as sa
from flask import Flask, current_app
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from cst_chassis import ChassisConfigError, ChassisError, CstMicroChassis, async_bridge
from cst_chassis._health_runner import CheckSlot, Starter, Ticket
from tests.conftest import POSTGRES_URL, SKIP_POSTGRES, Database, _postgres_database
from tests.health_support import TcpProxy, closed_port, write_migrations

Kind = Literal["engine", "flask_sqlalchemy", "async_engine"]
KINDS: list[Kind] = ["engine", "flask_sqlalchemy", "async_engine"]
NAME = "test-cst-micro-chassis"
# Timeouts for the down cases, and how late an answer may be: bounded time is the feature, so
# the margin is wide enough for 2 shared cores under other suites' load (a wrong implementation
# waits for the silent server forever, or for the driver's own timeout).
TIMEOUT = 0.5
MARGIN = 4.5
BuildApp = Callable[..., Flask]


def health_threads() -> int:
    return sum(t.name.startswith("cst-chassis-health") for t in threading.enumerate())


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def create_version_table(database: Database, *revisions: str) -> None:
    engine = database.engine()
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        for revision in revisions:
            conn.execute(sa.text("INSERT INTO alembic_version VALUES (:v)"), {"v": revision})


def sqlite_at(path: Path) -> Database:
    return Database(kind="sqlite", url=f"sqlite:///{path}", async_url=f"sqlite+aiosqlite:///{path}")


def postgres_at(port: int, password: str | None = None) -> Database:
    url = make_url(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test").set(password=password)
    return Database(
        kind="postgresql",
        url=url.render_as_string(hide_password=False),
        async_url=url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False),
    )


@pytest.fixture
def build() -> Iterator[BuildApp]:
    """Build an app whose db is ``kind`` on ``target``; engines are disposed after the test."""
    cleanups: list[Callable[[], None]] = []

    def factory(
        kind: Kind | None = None,
        target: Database | None = None,
        *,
        chassis: CstMicroChassis | None = None,
        **config: Any,
    ) -> Flask:
        app = Flask(NAME)
        # These tests are about what the checks report: every poll runs them, and the body
        # shows them (the defaults hide details and cache runs: see test_management.py).
        app.config.update({"CST_HEALTH_DETAILS": "always", "CST_HEALTH_CACHE_TTL": 0})
        app.config.update(config)
        chassis = chassis or CstMicroChassis()
        db: Any = None
        if kind == "engine":
            assert target is not None
            db = sa.create_engine(target.url, connect_args=target.connect_args)
            cleanups.append(db.dispose)
        elif kind == "async_engine":
            assert target is not None
            async_engine = create_async_engine(
                target.async_url, connect_args=target.async_connect_args
            )
            # The health probe uses it on the chassis loop: dispose it there.
            cleanups.append(lambda: async_bridge.run_coroutine(async_engine.dispose))
            db = async_engine
        elif kind == "flask_sqlalchemy":
            assert target is not None
            app.config["SQLALCHEMY_DATABASE_URI"] = target.url
            app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": target.connect_args}
            db = SQLAlchemy()
        chassis.init_app(app, db)
        if kind == "flask_sqlalchemy":
            db.init_app(app)

            def dispose() -> None:
                with app.app_context():
                    db.engine.dispose()

            cleanups.append(dispose)
        return app

    try:
        yield factory
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


def timed_get(client: FlaskClient, path: str = "/status") -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    response = client.get(path)
    elapsed = time.monotonic() - started
    body = response.get_json()
    assert isinstance(body, dict)
    return response.status_code, body, elapsed


# --- shape, route, config -------------------------------------------------------------------


def test_default_route_returns_seed_name_and_version(build: BuildApp) -> None:
    response = build().test_client().get("/status")
    assert response.status_code == 200
    assert response.get_json() == {"name": "Test-Cst-Micro-Chassis", "version": "N/A"}


def test_response_is_json_with_operation_id_and_not_cacheable(build: BuildApp) -> None:
    response = build().test_client().get("/status", headers={"X-Operation-ID": "op-42"})
    assert response.mimetype == "application/json"
    assert response.headers["X-Operation-ID"] == "op-42"
    assert response.headers["Cache-Control"] == "no-store"


def test_name_and_version_come_from_environment(
    build: BuildApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CST_PROJECT_NAME", "orders")
    monkeypatch.setenv("CST_PROJECT_VERSION", "1.4.2")
    body = build().test_client().get("/status").get_json()
    assert body == {"name": "orders", "version": "1.4.2"}


def test_endpoint_from_environment_without_leading_slash(
    build: BuildApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CST_HEALTH_CHECK_ENDPOINT", "internal/health")
    client = build().test_client()
    assert client.get("/internal/health").status_code == 200
    assert client.get("/status").status_code == 404


def test_endpoint_from_config_with_leading_slash(build: BuildApp) -> None:
    client = build(CST_HEALTH_CHECK_ENDPOINT="/healthz").test_client()
    assert client.get("/healthz").get_json() == {"name": "Test-Cst-Micro-Chassis", "version": "N/A"}
    assert client.get("/status").status_code == 404


# --- each kind of db, table present / empty / missing ------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_last_migration_is_the_stamped_revision(
    build: BuildApp, database: Database, kind: Kind
) -> None:
    create_version_table(database, "ef123ae24f13")
    client = build(kind, database).test_client()
    # Several polls: a pooled async engine must keep working across requests.
    for _ in range(3):
        response = client.get("/status")
        assert response.status_code == 200
        assert response.get_json() == {
            "name": "Test-Cst-Micro-Chassis",
            "version": "N/A",
            "database": "ok",
            "last_migration": "ef123ae24f13",
        }


@pytest.mark.parametrize("kind", KINDS)
def test_last_migration_is_null_when_table_is_empty(
    build: BuildApp, database: Database, kind: Kind
) -> None:
    create_version_table(database)
    response = build(kind, database).test_client().get("/status")
    assert response.status_code == 200
    assert response.get_json()["last_migration"] is None


@pytest.mark.parametrize("kind", KINDS)
def test_last_migration_is_null_when_table_is_missing(
    build: BuildApp, database: Database, kind: Kind
) -> None:
    client = build(kind, database).test_client()
    for _ in range(2):
        response = client.get("/status")
        assert response.status_code == 200
        assert response.get_json()["last_migration"] is None
        assert response.get_json()["database"] == "ok"


def test_several_stamped_revisions_are_listed_sorted(build: BuildApp, database: Database) -> None:
    create_version_table(database, "b2", "a1")
    body = build("engine", database).test_client().get("/status").get_json()
    assert body["last_migration"] == ["a1", "b2"]


def test_probe_is_one_read_only_statement(build: BuildApp, database: Database) -> None:
    create_version_table(database, "abc")
    app = build("engine", database)
    engine = app.extensions["cst_chassis"].db
    statements: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def record(*args: Any) -> None:
        statements.append(args[2])

    client = app.test_client()
    client.get("/status")
    statements.clear()
    assert client.get("/status").status_code == 200
    assert statements == ["SELECT version_num FROM alembic_version"]


def test_async_engine_is_probed_with_the_bridge_disabled(
    build: BuildApp, database: Database
) -> None:
    create_version_table(database, "abc")
    client = build("async_engine", database, CST_ASYNC_BRIDGE="false").test_client()
    for _ in range(3):
        assert client.get("/status").get_json()["last_migration"] == "abc"


def test_flask_sqlalchemy_not_set_up_on_the_app_is_503() -> None:
    app = Flask(NAME)
    app.config["CST_HEALTH_DETAILS"] = "always"
    CstMicroChassis().init_app(app, SQLAlchemy())
    response = app.test_client().get("/status")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unavailable"


# --- database down: 503 in bounded time, no pile-up, recovery ---------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_sqlite_in_missing_folder_is_503_with_short_body(
    build: BuildApp, tmp_path: Path, kind: Kind
) -> None:
    client = build(kind, sqlite_at(tmp_path / "missing" / "app.db")).test_client()
    status, body, _ = timed_get(client)
    assert status == 503
    assert body == {"name": "Test-Cst-Micro-Chassis", "version": "N/A", "database": "unavailable"}


@pytest.mark.parametrize("kind", KINDS)
def test_recovers_when_sqlite_folder_is_created(
    build: BuildApp, tmp_path: Path, kind: Kind
) -> None:
    folder = tmp_path / "later"
    client = build(kind, sqlite_at(folder / "app.db")).test_client()
    assert client.get("/status").status_code == 503
    folder.mkdir()
    response = client.get("/status")
    assert response.status_code == 200
    assert response.get_json()["last_migration"] is None


@pytest.mark.parametrize("kind", KINDS)
def test_closed_postgres_port_is_503_within_timeout(build: BuildApp, kind: Kind) -> None:
    client = build(kind, postgres_at(closed_port()), CST_HEALTH_CHECK_TIMEOUT=TIMEOUT).test_client()
    status, body, elapsed = timed_get(client)
    assert status == 503
    assert body["database"] == "unavailable"
    assert elapsed < TIMEOUT + MARGIN


@pytest.fixture
def silent_server() -> Iterator[TcpProxy]:
    proxy = TcpProxy(mode="hang")
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["engine", "async_engine"])
def test_silent_server_is_503_within_timeout(
    build: BuildApp, silent_server: TcpProxy, kind: Kind
) -> None:
    target = postgres_at(silent_server.port)
    client = build(kind, target, CST_HEALTH_CHECK_TIMEOUT=TIMEOUT).test_client()
    for _ in range(3):
        status, body, elapsed = timed_get(client)
        assert (status, body["database"]) == (503, "unavailable")
        assert elapsed < TIMEOUT + MARGIN


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["engine", "async_engine"])
def test_silent_server_does_not_pile_up_threads_or_connections(
    build: BuildApp, silent_server: TcpProxy, kind: Kind
) -> None:
    before = health_threads()
    target = postgres_at(silent_server.port)
    client = build(kind, target, CST_HEALTH_CHECK_TIMEOUT=TIMEOUT).test_client()
    for _ in range(4):
        client.get("/status")
    # A stuck sync call keeps its one thread and connection; a cancelled async one closes it.
    assert health_threads() - before <= 1
    assert silent_server.open_connections() <= 1


@pytest.fixture
def postgres() -> Iterator[Database]:
    """A private PostgreSQL schema (the ``database`` fixture's PostgreSQL case only)."""
    if not POSTGRES_URL:
        pytest.skip(SKIP_POSTGRES)
    yield from _postgres_database()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["engine", "async_engine"])
def test_recovers_when_silent_postgres_answers_again(
    build: BuildApp, postgres: Database, kind: Kind
) -> None:
    database = postgres
    real = make_url(database.url)
    proxy = TcpProxy((real.host or "127.0.0.1", real.port or 5432), mode="forward")
    try:
        create_version_table(database, "abc")
        through = make_url(database.url).set(host="127.0.0.1", port=proxy.port)
        target = Database(
            kind="postgresql",
            url=through.render_as_string(hide_password=False),
            async_url=through.set(drivername="postgresql+asyncpg").render_as_string(
                hide_password=False
            ),
            connect_args=database.connect_args,
            async_connect_args=database.async_connect_args,
        )
        client = build(kind, target, CST_HEALTH_CHECK_TIMEOUT=1.0).test_client()
        assert client.get("/status").status_code == 200
        proxy.set_mode("hang")  # drops the pooled connections, then answers nothing
        assert client.get("/status").status_code == 503
        proxy.set_mode("forward")  # a restart: the stuck connection is closed
        # Polls answer 503 at once while the stuck run is overdue; it ends with the connection.
        wait_until(lambda: client.get("/status").status_code == 200, seconds=5)
        status, body, _ = timed_get(client)
        assert (status, body["last_migration"]) == (200, "abc")
    finally:
        proxy.close()


def test_locked_sqlite_is_503_within_timeout_then_recovers(build: BuildApp, tmp_path: Path) -> None:
    target = sqlite_at(tmp_path / "app.db")
    create_version_table(target, "abc")
    before = health_threads()
    client = build("engine", target, CST_HEALTH_CHECK_TIMEOUT=TIMEOUT).test_client()
    locker = sqlite3.connect(tmp_path / "app.db", isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")  # readers now wait (sqlite3's busy timeout: 5 s)
        for _ in range(3):
            status, _body, elapsed = timed_get(client)
            assert status == 503
            assert elapsed < TIMEOUT + MARGIN
        assert health_threads() - before <= 1
        locker.execute("ROLLBACK")
        wait_until(lambda: health_threads() == before)  # sqlite3's busy wait notices the unlock
        status, body, _ = timed_get(client)
        assert (status, body["last_migration"]) == (200, "abc")
    finally:
        locker.close()


def test_failure_is_logged_with_operation_id_without_password(
    build: BuildApp, capsys: pytest.CaptureFixture[str]
) -> None:
    target = postgres_at(closed_port(), password="s3cr3t-pw")
    client = build("engine", target).test_client()
    response = client.get("/status", headers={"X-Operation-ID": "op-down-1"})
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "unavailable" in line)
    assert "[WARNING][op-down-1] cst_chassis.health: database postgresql+psycopg://" in line
    assert "s3cr3t-pw" not in out
    assert "s3cr3t-pw" not in response.get_data(as_text=True)


# --- custom checks ------------------------------------------------------------------------------


def test_passing_sync_check_is_reported_ok(build: BuildApp) -> None:
    chassis = CstMicroChassis()

    @chassis.health_check("cache")
    def cache() -> bool:
        return True

    response = build(chassis=chassis).test_client().get("/status")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"cache": "ok"}


def test_passing_async_check_is_reported_ok(build: BuildApp) -> None:
    chassis = CstMicroChassis()

    @chassis.health_check("queue")
    async def queue() -> None:
        await asyncio.sleep(0)

    response = build(chassis=chassis).test_client().get("/status")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"queue": "ok"}


def _false() -> bool:
    return False


async def _async_false() -> bool:
    return False


def _raise() -> None:
    raise ConnectionError("redis://:hunter2@cache:6379 refused")


async def _async_raise() -> None:
    await asyncio.sleep(0)
    raise ConnectionError("redis://:hunter2@cache:6379 refused")


@pytest.mark.parametrize("check", [_false, _async_false], ids=["sync", "async"])
def test_check_returning_false_makes_503(build: BuildApp, check: Callable[[], object]) -> None:
    chassis = CstMicroChassis()
    chassis.health_check("cache")(check)
    chassis.health_check("other")(lambda: True)
    response = build(chassis=chassis).test_client().get("/status")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"cache": "failing", "other": "ok"}


@pytest.mark.parametrize("check", [_raise, _async_raise], ids=["sync", "async"])
def test_raising_check_makes_503_and_is_logged_not_shown(
    build: BuildApp, check: Callable[[], object], capsys: pytest.CaptureFixture[str]
) -> None:
    chassis = CstMicroChassis()
    chassis.health_check("cache")(check)
    response = (
        build(chassis=chassis).test_client().get("/status", headers={"X-Operation-ID": "op-7"})
    )
    assert response.status_code == 503
    assert "hunter2" not in response.get_data(as_text=True)
    assert "[op-7] cst_chassis.health: check 'cache' failing: builtins.ConnectionError" in (
        capsys.readouterr().out
    )


def test_failing_check_with_healthy_database_keeps_database_fields(
    build: BuildApp, database: Database
) -> None:
    create_version_table(database, "abc")
    chassis = CstMicroChassis()
    chassis.health_check("cache")(_false)
    response = build("engine", database, chassis=chassis).test_client().get("/status")
    assert response.status_code == 503
    assert response.get_json() == {
        "name": "Test-Cst-Micro-Chassis",
        "version": "N/A",
        "database": "ok",
        "last_migration": "abc",
        "checks": {"cache": "failing"},
    }


def test_database_down_reports_checks_too(build: BuildApp, tmp_path: Path) -> None:
    chassis = CstMicroChassis()
    chassis.health_check("cache")(lambda: True)
    target = sqlite_at(tmp_path / "missing" / "app.db")
    body = build("engine", target, chassis=chassis).test_client().get("/status").get_json()
    assert body["database"] == "unavailable"
    assert body["checks"] == {"cache": "ok"}


def test_slow_sync_check_is_503_within_timeout(build: BuildApp) -> None:
    release = threading.Event()
    chassis = CstMicroChassis()
    chassis.health_check("slow")(lambda: release.wait(30))
    client = build(chassis=chassis, CST_HEALTH_CHECK_TIMEOUT=TIMEOUT).test_client()
    try:
        status, body, elapsed = timed_get(client)
        assert (status, body["checks"]) == (503, {"slow": "failing"})
        assert elapsed < TIMEOUT + MARGIN
    finally:
        release.set()


def test_slow_async_check_is_503_within_timeout_and_cancelled(build: BuildApp) -> None:
    cancelled = threading.Event()
    chassis = CstMicroChassis()

    @chassis.health_check("slow")
    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    client = build(chassis=chassis, CST_HEALTH_CHECK_TIMEOUT=TIMEOUT).test_client()
    status, body, elapsed = timed_get(client)
    assert (status, body["checks"]) == (503, {"slow": "failing"})
    assert elapsed < TIMEOUT + MARGIN
    assert cancelled.wait(MARGIN)


def test_stuck_sync_check_keeps_one_thread_and_recovers(build: BuildApp) -> None:
    release = threading.Event()
    calls = 0
    chassis = CstMicroChassis()

    @chassis.health_check("stuck")
    def stuck() -> bool:
        nonlocal calls
        calls += 1
        return release.wait(30)

    before = health_threads()
    client = build(chassis=chassis, CST_HEALTH_CHECK_TIMEOUT=TIMEOUT).test_client()
    try:
        for _ in range(4):
            assert client.get("/status").status_code == 503
        assert (calls, health_threads() - before) == (1, 1)
    finally:
        release.set()
    wait_until(lambda: health_threads() == before)  # the stuck run ended: the next poll runs
    assert client.get("/status").status_code == 200
    assert calls == 2


def test_polls_of_an_overdue_check_answer_at_once(build: BuildApp) -> None:
    release = threading.Event()
    calls = 0
    chassis = CstMicroChassis()

    @chassis.health_check("stuck")
    def stuck() -> bool:
        nonlocal calls
        calls += 1
        return release.wait(30)

    timeout = 2.0
    app = build(chassis=chassis, CST_HEALTH_CHECK_TIMEOUT=timeout)
    try:
        status, _, first = timed_get(app.test_client())
        assert status == 503 and first >= timeout  # the poll that found it idle waited for it
        # Now the run is overdue: polls answer from that state instead of holding a thread.
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: timed_get(app.test_client()), range(16)))
        assert [status for status, _, _ in answers] == [503] * 16
        assert all(body["checks"] == {"stuck": "failing"} for _, body, _ in answers)
        assert max(elapsed for _, _, elapsed in answers) < timeout
        assert calls == 1
    finally:
        release.set()


def test_results_are_cached_for_the_configured_time(build: BuildApp) -> None:
    calls = 0
    chassis = CstMicroChassis()

    @chassis.health_check("counted")
    def counted() -> None:
        nonlocal calls
        calls += 1

    cached = build(chassis=chassis, CST_HEALTH_CACHE_TTL=60).test_client()
    for _ in range(5):
        assert cached.get("/status").status_code == 200
    assert calls == 1
    uncached = build(chassis=chassis).test_client()  # default: 0, every poll runs the check
    for _ in range(3):
        assert uncached.get("/status").status_code == 200
    assert calls == 4


def test_cached_failure_is_served_until_it_expires(build: BuildApp) -> None:
    healthy = False
    chassis = CstMicroChassis()
    chassis.health_check("flag")(lambda: healthy)
    client = build(chassis=chassis, CST_HEALTH_CACHE_TTL=0.3).test_client()
    assert client.get("/status").status_code == 503
    healthy = True
    assert client.get("/status").status_code == 503  # still the cached result
    wait_until(lambda: client.get("/status").status_code == 200, seconds=5)


def test_checks_run_concurrently(build: BuildApp) -> None:
    # Each check waits for the other two: one after the other, the barrier would break (after
    # 15 s) and the checks would fail.
    barrier = threading.Barrier(3, timeout=15)
    chassis = CstMicroChassis()
    chassis.health_check("a")(barrier.wait)

    @chassis.health_check("b")
    async def b() -> None:
        await asyncio.to_thread(barrier.wait)

    chassis.health_check("c")(barrier.wait)
    client = build(chassis=chassis, CST_HEALTH_CHECK_TIMEOUT=30).test_client()
    status, body, _ = timed_get(client)
    assert (status, body["checks"]) == (200, {"a": "ok", "b": "ok", "c": "ok"})


def test_simultaneous_polls_share_runs(build: BuildApp, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    release = threading.Event()
    chassis = CstMicroChassis()

    @chassis.health_check("shared")
    def shared() -> None:
        nonlocal calls
        calls += 1
        assert release.wait(30)

    # Count the polls that hold a ticket (the real CheckSlot.poll, observed): once all six do,
    # the run they report on is fixed, whatever the scheduling.
    tickets = 0
    lock = threading.Lock()
    real_poll = CheckSlot.poll

    def counted(slot: CheckSlot, timeout: float, cache_ttl: float, start: Starter) -> Ticket:
        nonlocal tickets
        ticket = real_poll(slot, timeout, cache_ttl, start)
        with lock:
            tickets += 1
        return ticket

    monkeypatch.setattr(CheckSlot, "poll", counted)
    app = build(chassis=chassis, CST_HEALTH_CHECK_TIMEOUT=30)
    with ThreadPoolExecutor(6) as pool:
        polls = [
            pool.submit(lambda: app.test_client().get("/status").status_code) for _ in range(6)
        ]
        try:
            wait_until(lambda: tickets == 6)
        finally:
            release.set()
        statuses = [poll.result(timeout=30) for poll in polls]
    assert statuses == [200] * 6
    assert calls == 1


def test_check_registered_after_init_app_is_run(build: BuildApp) -> None:
    chassis = CstMicroChassis()
    client = build(chassis=chassis).test_client()
    chassis.health_check("late")(lambda: True)
    assert client.get("/status").get_json()["checks"] == {"late": "ok"}


def test_checks_run_in_an_app_context(build: BuildApp) -> None:
    seen: list[str] = []
    chassis = CstMicroChassis()
    chassis.health_check("sync")(lambda: seen.append(current_app.name))

    @chassis.health_check("async")
    async def in_context() -> None:
        seen.append(current_app.name)

    assert build(chassis=chassis).test_client().get("/status").status_code == 200
    assert seen == [NAME, NAME]


def test_sync_callable_returning_a_coroutine_is_awaited(build: BuildApp) -> None:
    chassis = CstMicroChassis()
    chassis.health_check("wrapped")(lambda: _async_false())
    response = build(chassis=chassis).test_client().get("/status")
    assert response.get_json()["checks"] == {"wrapped": "failing"}


# --- Alembic drift -------------------------------------------------------------------------------


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    return write_migrations(tmp_path / "migrations", {"a1": None, "b2": "a1"})


def test_drift_reports_head_and_up_to_date(
    build: BuildApp, database: Database, migrations: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CST_ALEMBIC_SCRIPT_LOCATION", str(migrations))
    create_version_table(database, "b2")
    body = build("engine", database).test_client().get("/status").get_json()
    assert (body["head"], body["last_migration"], body["migrations_pending"]) == ("b2", "b2", False)


@pytest.mark.parametrize("kind", ["engine", "async_engine"])
def test_drift_reports_pending_when_database_is_behind(
    build: BuildApp, database: Database, migrations: Path, kind: Kind
) -> None:
    create_version_table(database, "a1")
    app = build(kind, database, CST_ALEMBIC_SCRIPT_LOCATION=str(migrations))
    response = app.test_client().get("/status")
    assert response.status_code == 200  # behind is reported, not an outage
    assert response.get_json()["migrations_pending"] is True


def test_drift_reports_pending_when_nothing_is_applied(
    build: BuildApp, database: Database, migrations: Path
) -> None:
    body = (
        build("engine", database, CST_ALEMBIC_SCRIPT_LOCATION=str(migrations))
        .test_client()
        .get("/status")
        .get_json()
    )
    assert (body["last_migration"], body["migrations_pending"]) == (None, True)


def test_drift_with_two_heads_lists_both(
    build: BuildApp, database: Database, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path / "branched", {"a1": None, "x1": "a1", "y1": "a1"})
    create_version_table(database, "x1")
    client = build("engine", database, CST_ALEMBIC_SCRIPT_LOCATION=str(folder)).test_client()
    body = client.get("/status").get_json()
    assert (body["head"], body["migrations_pending"]) == (["x1", "y1"], True)
    with database.engine().begin() as conn:
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('y1')"))
    assert client.get("/status").get_json()["migrations_pending"] is False


def test_drift_is_unknown_for_a_revision_not_in_the_folder(
    build: BuildApp, database: Database, migrations: Path
) -> None:
    create_version_table(database, "c3-from-newer-code")
    app = build("engine", database, CST_ALEMBIC_SCRIPT_LOCATION=str(migrations))
    assert app.test_client().get("/status").get_json()["migrations_pending"] is None


def test_head_is_reported_when_database_is_down(
    build: BuildApp, tmp_path: Path, migrations: Path
) -> None:
    target = sqlite_at(tmp_path / "missing" / "app.db")
    app = build("engine", target, CST_ALEMBIC_SCRIPT_LOCATION=str(migrations))
    response = app.test_client().get("/status")
    assert response.status_code == 503
    assert response.get_json() == {
        "name": "Test-Cst-Micro-Chassis",
        "version": "N/A",
        "database": "unavailable",
        "head": "b2",
    }


def test_head_without_database_is_reported(build: BuildApp, migrations: Path) -> None:
    body = build(CST_ALEMBIC_SCRIPT_LOCATION=str(migrations)).test_client().get("/status")
    assert body.get_json() == {"name": "Test-Cst-Micro-Chassis", "version": "N/A", "head": "b2"}


def test_missing_migrations_folder_fails_at_init(build: BuildApp, tmp_path: Path) -> None:
    with pytest.raises(ChassisConfigError, match=r"CST_ALEMBIC_SCRIPT_LOCATION=.*nowhere"):
        build(CST_ALEMBIC_SCRIPT_LOCATION=str(tmp_path / "nowhere"))


def test_folder_without_versions_fails_at_init(build: BuildApp, tmp_path: Path) -> None:
    with pytest.raises(ChassisConfigError, match="versions/ folder"):
        build(CST_ALEMBIC_SCRIPT_LOCATION=str(tmp_path))


def test_alembic_location_without_alembic_installed_fails_at_init(
    build: BuildApp, migrations: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in [name for name in sys.modules if name.split(".")[0] == "alembic"]:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, "alembic", None)
    with pytest.raises(ChassisError, match=r"alembic is not installed: pip install"):
        build(CST_ALEMBIC_SCRIPT_LOCATION=str(migrations))


# --- logging: once per change of state --------------------------------------------------------


@pytest.mark.parametrize("cache_ttl", [0, 0.2], ids=["cache-off", "cache-on"])
def test_a_failing_check_is_logged_once_when_it_fails_and_once_when_it_passes_again(
    build: BuildApp, capsys: pytest.CaptureFixture[str], cache_ttl: float
) -> None:
    # Issue 25, item 5: 100 polls during an outage wrote 100 WARNING lines.
    healthy = True
    chassis = CstMicroChassis()
    chassis.health_check("flag")(lambda: healthy)
    client = build(chassis=chassis, CST_HEALTH_CACHE_TTL=cache_ttl).test_client()
    for state in (True, False, True, False):
        healthy = state
        expected = 200 if state else 503
        wait_until(lambda e=expected: client.get("/status").status_code == e, seconds=5)  # type: ignore[misc]  # a default binds the loop value
        for _ in range(50):
            assert client.get("/status").status_code == expected
    lines = [line for line in capsys.readouterr().out.splitlines() if "'flag'" in line]
    assert [line.split("cst_chassis.health: ")[1] for line in lines] == [
        "check 'flag' failing: it returned False",
        "check 'flag' passing again",
        "check 'flag' failing: it returned False",
    ]
    assert all("[WARNING]" in line for line in lines[::2]) and "[INFO]" in lines[1]


def test_a_database_outage_is_logged_once_and_its_end_once(
    build: BuildApp, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "later"
    client = build("engine", sqlite_at(folder / "app.db")).test_client()
    for _ in range(100):
        assert client.get("/status").status_code == 503
    folder.mkdir()
    for _ in range(10):
        assert client.get("/status").status_code == 200
    lines = [line for line in capsys.readouterr().out.splitlines() if "cst_chassis.health" in line]
    assert len(lines) == 2, lines
    assert "[WARNING]" in lines[0] and "unavailable: sqlite3.OperationalError" in lines[0]
    assert "[INFO]" in lines[1] and lines[1].endswith("/later/app.db available again")
