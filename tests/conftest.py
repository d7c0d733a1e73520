"""Shared fixtures: a fresh app per test, an operation-id leak detector, and databases.

Database tests take the ``database`` fixture: it runs each test on a SQLite file and, when
``CST_TEST_POSTGRES_URL`` is set, on PostgreSQL too (in a schema of its own, dropped afterwards).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cst_chassis import CstMicroChassis, shutdown
from cst_chassis.context import operation_id_var

POSTGRES_URL = os.environ.get("CST_TEST_POSTGRES_URL")
SKIP_POSTGRES = "CST_TEST_POSTGRES_URL is not set (CI sets it; PostgreSQL cases skipped)"


@pytest.fixture(autouse=True)
def _clean_cst_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # CST_* variables of the shell running pytest must not change what the tests see.
    for key in list(os.environ):
        if key.startswith("CST_") and key != "CST_TEST_POSTGRES_URL":
            monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def _no_leaked_operation_id() -> Iterator[None]:
    assert operation_id_var.get() is None, "an operation id was left set before this test"
    yield
    assert operation_id_var.get() is None, "this test left an operation id set"


@pytest.fixture(autouse=True)
def _no_leaked_shutdown() -> Iterator[None]:
    # An in-process ASGI lifespan shutdown marks the process as shutting down (readiness 503),
    # as it should in a server; the next test starts a fresh "process".
    yield
    shutdown.end_shutdown()


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app() -> AppFactory:
    """Build a fresh Flask app with the chassis; keyword arguments become ``app.config``."""

    def factory(
        import_name: str = "test-cst-micro-chassis", db: Any = None, **config: Any
    ) -> Flask:
        app = Flask(import_name)
        app.config.update(config)
        CstMicroChassis().init_app(app, db)
        return app

    return factory


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


@dataclass
class Database:
    """One database a test runs on: SQLite file or a private PostgreSQL schema."""

    kind: str
    url: str
    async_url: str
    connect_args: dict[str, Any] = field(default_factory=dict)
    async_connect_args: dict[str, Any] = field(default_factory=dict)
    _engines: list[sa.Engine] = field(default_factory=list)

    def engine(self, **kwargs: Any) -> sa.Engine:
        """A sync engine (disposed after the test)."""
        engine = sa.create_engine(self.url, connect_args=self.connect_args, **kwargs)
        self._engines.append(engine)
        return engine

    def async_engine(self, **kwargs: Any) -> AsyncEngine:
        """An async engine; the test must ``await engine.dispose()`` (or dispose via the bridge)."""
        return create_async_engine(self.async_url, connect_args=self.async_connect_args, **kwargs)

    def dispose(self) -> None:
        for engine in self._engines:
            engine.dispose()


def _postgres_database() -> Iterator[Database]:
    assert POSTGRES_URL is not None
    schema = f"cst_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL)
    async_url = url.set(drivername="postgresql+asyncpg")
    database = Database(
        kind="postgresql",
        url=url.render_as_string(hide_password=False),
        async_url=async_url.render_as_string(hide_password=False),
        connect_args={"options": f"-csearch_path={schema}"},
        async_connect_args={"server_settings": {"search_path": schema}},
    )
    try:
        yield database
    finally:
        database.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _sqlite_database(tmp_path: Path) -> Iterator[Database]:
    path = tmp_path / "test.db"
    database = Database(
        kind="sqlite", url=f"sqlite:///{path}", async_url=f"sqlite+aiosqlite:///{path}"
    )
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql", marks=pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_POSTGRES)
        ),
    ]
)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The database under test: SQLite always, PostgreSQL when CST_TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        yield from _sqlite_database(tmp_path)
    else:
        yield from _postgres_database()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The reliability suite (real servers under load, faults, hostile input) is slow as a whole.
    reliability = Path(__file__).resolve().parent / "reliability"
    for item in items:
        if item.get_closest_marker("load") or reliability in item.path.parents:
            item.add_marker(pytest.mark.slow)
