"""The demo's database: ``DATABASE_URL``, and pooled sync and async engines made once per app.

The engines are created once, in the app factory, and live as long as the app (the process, in
production): every request borrows a connection from their pools. The async engine's connections
stay usable across requests and server threads because the chassis runs every coroutine on one
event loop per process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "DEFAULT_DATABASE_URL",
    "Database",
    "database_url_from_env",
    "derive_urls",
    "get_database",
]

DEFAULT_DATABASE_URL = f"sqlite:///{Path(__file__).resolve().parent / 'demo.db'}"
EXTENSION_KEY = "cst_chassis_demo"


def database_url_from_env() -> str:
    """``DATABASE_URL`` from the environment, else a SQLite file next to this module."""
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def derive_urls(url: str | URL) -> tuple[URL, URL]:
    """Return the (sync, async) driver URLs for one database URL.

    ``sqlite:///x.db`` gives ``sqlite:///x.db`` and ``sqlite+aiosqlite:///x.db``;
    ``postgresql://`` (any driver, or Heroku's ``postgres://``) gives ``postgresql+psycopg://``
    and ``postgresql+asyncpg://``. Other databases raise ``ValueError``.
    """
    parsed = make_url(url)
    backend = parsed.drivername.partition("+")[0]
    if backend == "sqlite":
        return parsed.set(drivername="sqlite"), parsed.set(drivername="sqlite+aiosqlite")
    if backend in {"postgresql", "postgres"}:
        return (
            parsed.set(drivername="postgresql+psycopg"),
            parsed.set(drivername="postgresql+asyncpg"),
        )
    raise ValueError(
        f"DATABASE_URL: unsupported database {backend!r}; use sqlite:///path or postgresql://..."
    )


@dataclass(frozen=True, slots=True)
class Database:
    """The pooled engines of one app and the session factories bound to them."""

    engine: Engine
    async_engine: AsyncEngine
    sessions: sessionmaker[Session]
    async_sessions: async_sessionmaker[AsyncSession]

    @classmethod
    def connect(cls, url: str | URL) -> Database:
        """Create the engines (no connection is opened until the first query)."""
        sync_url, async_url = derive_urls(url)
        engine = create_engine(sync_url, pool_pre_ping=True)
        async_engine = create_async_engine(async_url, pool_pre_ping=True)
        return cls(
            engine=engine,
            async_engine=async_engine,
            sessions=sessionmaker(engine),
            # Objects stay readable after commit: an AsyncSession cannot lazy-load them again.
            async_sessions=async_sessionmaker(async_engine, expire_on_commit=False),
        )

    def safe_url(self) -> str:
        """The database URL for log lines, password hidden."""
        return self.engine.url.render_as_string(hide_password=True)


def get_database(app: Flask | None = None) -> Database:
    """The :class:`Database` of ``app`` (default: the current app)."""
    target = current_app if app is None else app
    database = target.extensions.get(EXTENSION_KEY)
    if not isinstance(database, Database):
        raise RuntimeError("this app was not built by examples.demo.app.create_app")
    return database
