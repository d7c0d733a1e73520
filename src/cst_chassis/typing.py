"""Type aliases shared by several modules (kept in one place, like Flask's ``typing.py``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_scoped_session
    from sqlalchemy.orm import Session, scoped_session

__all__ = ["AsyncSessionLike", "DatabaseLike", "FlaskSQLAlchemyLike", "HealthCheck", "SessionLike"]


class FlaskSQLAlchemyLike(Protocol):
    """What the chassis uses of a Flask-SQLAlchemy ``SQLAlchemy`` instance.

    A protocol rather than ``flask_sqlalchemy.SQLAlchemy`` itself: Flask-SQLAlchemy is optional,
    and a type checker that cannot find it (pyright, in a service without it) would otherwise
    see ``init_app``'s ``db`` as unknown. ``init_app`` still checks at run time that ``db`` is a
    real ``SQLAlchemy`` instance.
    """

    @property
    def engine(self) -> Engine:
        """The default bind's engine (needs an app context)."""
        ...

    @property
    def engines(self) -> Mapping[str | None, Engine]:
        """Every bind's engine, ``None`` for the default one (needs an app context)."""
        ...

    @property
    def session(self) -> scoped_session[Any]:
        """The scoped session paginated resources fall back to."""
        ...


# What init_app(app, db) accepts.
DatabaseLike: TypeAlias = "FlaskSQLAlchemyLike | Engine | AsyncEngine"
"""What ``init_app(app, db)`` accepts."""

# A custom health check: sync or async, no arguments; raising or returning False means "failing".
HealthCheck: TypeAlias = Callable[[], object] | Callable[[], Awaitable[object]]
"""A custom health check: sync or async, no arguments; raising or returning False means failing."""

# Where a page runs: a plain Session or Flask-SQLAlchemy's ``db.session`` (a scoped_session
# proxying one), and their async counterparts.
SessionLike: TypeAlias = "Session | scoped_session[Any]"
"""Where a page runs: a ``Session`` or Flask-SQLAlchemy's ``db.session``."""
AsyncSessionLike: TypeAlias = "AsyncSession | async_scoped_session[Any]"
"""Where an async page runs: an ``AsyncSession`` or an ``async_scoped_session``."""
