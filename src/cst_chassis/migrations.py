"""Which Alembic revision a database is at, and which head the code's migrations folder has.

The health endpoint uses both: :func:`read_versions` / :func:`read_versions_async` read
``alembic_version`` with one read-only statement, and :func:`load_migration_script` (run once at
start-up, when ``CST_ALEMBIC_SCRIPT_LOCATION`` is set) gives the heads to compare them with.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from cst_chassis.errors import ChassisConfigError, ChassisError

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = [
    "VERSION_TABLE",
    "MigrationScript",
    "load_migration_script",
    "read_versions",
    "read_versions_async",
]

VERSION_TABLE = "alembic_version"
"""Alembic's version table, read for ``last_migration``."""
SCRIPT_LOCATION_KEY = "CST_ALEMBIC_SCRIPT_LOCATION"
_VERSION_QUERY = text(f"SELECT version_num FROM {VERSION_TABLE}")


def read_versions(engine: Engine) -> tuple[str, ...]:
    """Return the revisions stamped in ``alembic_version``, sorted; ``()`` if empty or missing.

    One statement on the happy path. A missing table is told apart from other errors only after
    the statement failed (SQLite raises the same exception class for "no such table" and
    "unable to open database file"). A pooled connection found dead (the server restarted since
    it was last used) is retried once on a new connection. Other errors propagate.
    """
    for attempt in (1, 2):
        with engine.connect() as conn:
            conn = _autocommit(conn)
            try:
                rows = conn.execute(_VERSION_QUERY).scalars().all()
            except DBAPIError as exc:
                if exc.connection_invalidated and attempt == 1:
                    continue
                if not exc.connection_invalidated and _version_table_missing(conn):
                    return ()
                raise
            return tuple(sorted(rows))
    raise AssertionError("unreachable")  # pragma: no cover


async def read_versions_async(engine: AsyncEngine) -> tuple[str, ...]:
    """:func:`read_versions` for an ``AsyncEngine`` (run it on the loop that owns the pool)."""
    for attempt in (1, 2):
        async with engine.connect() as conn:
            conn = await _autocommit_async(conn)
            try:
                rows = (await conn.execute(_VERSION_QUERY)).scalars().all()
            except DBAPIError as exc:
                if exc.connection_invalidated and attempt == 1:
                    continue
                if not exc.connection_invalidated and await conn.run_sync(_version_table_missing):
                    return ()
                raise
            return tuple(sorted(rows))
    raise AssertionError("unreachable")  # pragma: no cover


def _autocommit(conn: Connection) -> Connection:
    # No transaction for a single read: on PostgreSQL this saves the BEGIN and ROLLBACK round
    # trips. A dialect without AUTOCOMMIT keeps its default.
    try:
        return conn.execution_options(isolation_level="AUTOCOMMIT")
    except ArgumentError:
        return conn


async def _autocommit_async(conn: AsyncConnection) -> AsyncConnection:
    try:
        return await conn.execution_options(isolation_level="AUTOCOMMIT")
    except ArgumentError:
        return conn


def _version_table_missing(conn: Connection) -> bool:
    try:
        conn.rollback()
        return not inspect(conn).has_table(VERSION_TABLE)
    except SQLAlchemyError:
        return False  # the connection itself is broken: report the original error


@dataclass(frozen=True, slots=True)
class MigrationScript:
    """The revisions of a migrations folder: its heads and every revision id it knows."""

    heads: tuple[str, ...]
    revisions: frozenset[str]

    def pending(self, applied: Iterable[str]) -> bool | None:
        """Tell whether the database (stamped with ``applied``) lacks one of the heads.

        ``None`` when the database carries a revision this folder does not know (a database
        migrated by newer code, or another project's): whether it is behind cannot be told.
        """
        stamped = set(applied)
        if not stamped <= self.revisions:
            return None
        return not set(self.heads) <= stamped


def load_migration_script(location: str) -> MigrationScript:
    """Read the heads and revisions of the Alembic folder at ``location``.

    ``location`` is what ``script_location`` in ``alembic.ini`` accepts: a path (relative to the
    working directory) or ``package:folder``. Raises :class:`ChassisConfigError` (a
    ``ValueError``) when it is not a migrations folder, and :class:`ChassisError` when Alembic is
    not installed.
    """
    try:
        from alembic.config import Config
        from alembic.script import ScriptDirectory
        from alembic.util import CommandError
    except ImportError as exc:
        raise ChassisError(
            f"{SCRIPT_LOCATION_KEY} is set but alembic is not installed: "
            "pip install 'cst-chassis[alembic]', or unset the key"
        ) from exc
    config = Config()
    # Config values go through ConfigParser interpolation: a literal % must be doubled.
    config.set_main_option("script_location", location.replace("%", "%%"))
    expected = "an Alembic migrations folder (with a versions/ folder)"
    try:
        script = ScriptDirectory.from_config(config)
    except CommandError as exc:
        raise ChassisConfigError(SCRIPT_LOCATION_KEY, location, f"{expected}: {exc}") from exc
    # Without versions/ Alembic reads no revision at all: most likely the wrong folder.
    if not os.path.isdir(script.versions):
        raise ChassisConfigError(
            SCRIPT_LOCATION_KEY, location, f"{expected}: {script.versions} does not exist"
        )
    try:
        heads = tuple(sorted(script.get_heads()))
        revisions = frozenset(revision.revision for revision in script.walk_revisions())
    except Exception as exc:  # a broken revision graph (missing down_revision, cycle, ...)
        raise ChassisConfigError(
            SCRIPT_LOCATION_KEY,
            location,
            f"{expected} whose revisions load: {type(exc).__name__}: {exc}",
        ) from exc
    return MigrationScript(heads=heads, revisions=revisions)
