"""The demo's database: ``DATABASE_URL``, and pooled sync and async engines made once per app.

The engines are created once, in the app factory, and live as long as the app (the process, in
production): every request borrows a connection from their pools. The async engine's connections
stay usable across requests and server threads because the chassis runs every coroutine on one
event loop per process.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

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
    "DriverUrls",
    "database_url_from_env",
    "derive_urls",
    "get_database",
]

DEFAULT_DATABASE_URL = f"sqlite:///{Path(__file__).resolve().parent / 'demo.db'}"
EXTENSION_KEY = "cst_chassis_demo"


def database_url_from_env() -> str:
    """``DATABASE_URL`` from the environment, else a SQLite file next to this module."""
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


# libpq's connection options (PostgreSQL 15, "Parameter Key Words") that asyncpg spells another
# way, and how: psycopg reads them from the URL as they are.
_ASYNCPG_SSLMODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
_TRANSLATED_OPTIONS = frozenset(
    {"sslmode", "application_name", "connect_timeout", "options", "target_session_attrs"}
)
# The other libpq options: valid for psycopg, but this demo has no asyncpg equivalent for them.
_UNTRANSLATED_LIBPQ_OPTIONS = frozenset(
    {
        "hostaddr", "passfile", "channel_binding", "fallback_application_name", "keepalives",
        "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
        "replication", "gssencmode", "sslcompression", "sslcert", "sslkey", "sslpassword",
        "sslcertmode", "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer",
        "ssl_min_protocol_version", "ssl_max_protocol_version", "krbsrvname", "gsslib",
        "gssdelegation", "service", "load_balance_hosts", "require_auth", "client_encoding",
    }
)  # fmt: skip


class DriverUrls(NamedTuple):
    """The two engines' URLs for one ``DATABASE_URL``, and what asyncpg needs besides."""

    sync: URL
    async_: URL
    async_connect_args: dict[str, Any]


def derive_urls(url: str | URL) -> DriverUrls:
    """Return the sync and async driver URLs (and asyncpg's connect arguments) for one URL.

    ``sqlite:///x.db`` gives ``sqlite:///x.db`` and ``sqlite+aiosqlite:///x.db``;
    ``postgresql://`` (any driver, or Heroku's ``postgres://``) gives ``postgresql+psycopg://``
    and ``postgresql+asyncpg://``. libpq options in the query string (``sslmode``,
    ``application_name``, ``connect_timeout``, ``options=-c name=value``,
    ``target_session_attrs``) stay in the psycopg URL and are translated for asyncpg. Raises
    ``ValueError`` naming the option for one asyncpg has no equivalent of here, for an unknown
    option or value, and for another database.
    """
    parsed = make_url(url)
    backend = parsed.drivername.partition("+")[0]
    if backend == "sqlite":
        return DriverUrls(
            parsed.set(drivername="sqlite"), parsed.set(drivername="sqlite+aiosqlite"), {}
        )
    if backend in {"postgresql", "postgres"}:
        return DriverUrls(
            parsed.set(drivername="postgresql+psycopg"),
            parsed.set(drivername="postgresql+asyncpg", query={}),
            _asyncpg_connect_args(parsed.query),
        )
    raise ValueError(
        f"DATABASE_URL: unsupported database {backend!r}; use sqlite:///path or postgresql://..."
    )


def _asyncpg_connect_args(query: Mapping[str, str | tuple[str, ...]]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    server_settings: dict[str, str] = {}
    for name, raw in query.items():
        if not isinstance(raw, str):
            raise ValueError(f"DATABASE_URL: option {name!r} is given more than once")
        if name in _UNTRANSLATED_LIBPQ_OPTIONS:
            raise ValueError(
                f"DATABASE_URL: option {name!r} has no equivalent for the async driver (asyncpg)"
                f"; supported options: {', '.join(sorted(_TRANSLATED_OPTIONS))}"
            )
        if name not in _TRANSLATED_OPTIONS:
            raise ValueError(f"DATABASE_URL: unknown option {name!r}")
        if name == "sslmode":
            if raw not in _ASYNCPG_SSLMODES:
                raise ValueError(f"DATABASE_URL: sslmode={raw!r} is not a libpq sslmode")
            args["ssl"] = raw
        elif name == "connect_timeout":
            if not raw.isascii() or not raw.isdigit():
                raise ValueError(f"DATABASE_URL: connect_timeout={raw!r} is not whole seconds")
            # libpq: 0 means wait forever; asyncpg has no "forever", so keep its default.
            if int(raw) > 0:
                args["timeout"] = max(int(raw), 2)  # libpq treats 1 as 2
        elif name == "application_name":
            server_settings["application_name"] = raw
        elif name == "target_session_attrs":
            args["target_session_attrs"] = raw
        else:
            server_settings.update(_server_options(raw))
    if server_settings:
        args["server_settings"] = server_settings
    return args


def _server_options(raw: str) -> dict[str, str]:
    # libpq's ``options``: command-line switches for the server; asyncpg takes the settings the
    # ``-c name=value`` / ``--name=value`` switches set as ``server_settings``.
    settings: dict[str, str] = {}
    words = iter(shlex.split(raw))
    for word in words:
        if word == "-c":
            word = "--" + next(words, "")
        elif word.startswith("-c"):
            word = "--" + word[2:]
        name, equals, value = word.removeprefix("--").partition("=")
        if not word.startswith("--") or not equals or not name:
            raise ValueError(
                f"DATABASE_URL: options={raw!r}: only '-c name=value' settings have an asyncpg "
                "equivalent"
            )
        settings[name.replace("-", "_")] = value
    return settings


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
        urls = derive_urls(url)
        engine = create_engine(urls.sync, pool_pre_ping=True)
        async_engine = create_async_engine(
            urls.async_, pool_pre_ping=True, connect_args=urls.async_connect_args
        )
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
