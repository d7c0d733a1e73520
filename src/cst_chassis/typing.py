"""Type aliases shared by several modules (kept in one place, like Flask's ``typing.py``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_scoped_session
    from sqlalchemy.orm import Session, scoped_session

__all__ = ["AsyncSessionLike", "DatabaseLike", "HealthCheck", "SessionLike"]

# What init_app(app, db) accepts: Flask-SQLAlchemy is optional at run time, so its type is only
# named for the type checker.
DatabaseLike: TypeAlias = "SQLAlchemy | Engine | AsyncEngine"

# A custom health check: sync or async, no arguments; raising or returning False means "failing".
HealthCheck: TypeAlias = Callable[[], object] | Callable[[], Awaitable[object]]

# Where a page runs: a plain Session or Flask-SQLAlchemy's ``db.session`` (a scoped_session
# proxying one), and their async counterparts.
SessionLike: TypeAlias = "Session | scoped_session[Any]"
AsyncSessionLike: TypeAlias = "AsyncSession | async_scoped_session[Any]"
