"""The demo on each test database, shared by tests/test_demo.py and tests/test_schemathesis.py."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cst_chassis.async_bridge import run_coroutine
from examples.demo.__main__ import prepare
from examples.demo.app import create_app
from examples.demo.database import get_database
from tests.conftest import POSTGRES_URL, SKIP_POSTGRES

__all__ = ["demo_on_each_database", "dispose_demo", "postgres_schema"]


def dispose_demo(app: Flask) -> None:
    """Close the demo's pools (the async one on the chassis loop, before the test ends)."""
    database = get_database(app)
    database.engine.dispose()
    run_coroutine(database.async_engine.dispose)


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A private PostgreSQL schema; yields the libpq ``options`` that select it."""
    assert POSTGRES_URL is not None
    schema = f"cst_demo_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield f"-c search_path={schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_POSTGRES),
            ],
        ),
    ]
)
def demo_on_each_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The demo, migrated and seeded, on SQLite and (when configured) PostgreSQL."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'demo.db'}"
        else:
            assert POSTGRES_URL is not None
            options = stack.enter_context(postgres_schema())
            url = (
                make_url(POSTGRES_URL)
                .update_query_dict({"options": options})
                .render_as_string(hide_password=False)
            )
        app = create_app(url)
        try:
            prepare(app)
            yield app
        finally:
            dispose_demo(app)
