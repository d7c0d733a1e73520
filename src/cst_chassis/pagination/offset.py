"""Offset/limit pagination over SQLAlchemy 2.0 ``select()`` (and legacy ``Query``), sync and async.

One page costs one query: ``LIMIT limit + 1`` fetches a row more than the page shows, and that
extra row is what tells ``has_next``. A total, when asked for, is one ``COUNT(*)`` over the
statement with its ``ORDER BY`` dropped, and is skipped when the page itself shows the total (a
non-empty last page, or a first page without a next one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple, overload

from sqlalchemy import func, select

from cst_chassis.errors import InvalidPaginationError
from cst_chassis.pagination.page import Page

if TYPE_CHECKING:
    from sqlalchemy import Result, Select
    from sqlalchemy.orm import Query

    from cst_chassis.typing import AsyncSessionLike, SessionLike

__all__ = ["MAX_OFFSET", "paginate", "paginate_async", "paginate_query"]

T = TypeVar("T")
T2 = TypeVar("T2")
Ts = TypeVarTuple("Ts")

# Offsets above this overflow in some drivers and JSON clients (2**53 is the last integer a
# JavaScript number holds exactly); PostgreSQL and SQLite both take it.
MAX_OFFSET = 2**53
"""Largest offset accepted (2**53, the last integer a JSON number holds exactly)."""


def _check_bounds(offset: int, limit: int) -> None:
    # Programming errors from Python callers; the resource mixin validates client input itself.
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidPaginationError("offset", f"offset must be an integer from 0 to {MAX_OFFSET}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidPaginationError("limit", "limit must be a positive integer")


def _page_from_rows(rows: Sequence[T], offset: int, limit: int) -> Page[T]:
    return Page(
        items=tuple(rows[:limit]),
        offset=offset,
        limit=limit,
        has_next=len(rows) > limit,
        has_prev=offset > 0,
    )


def _total_from_page(page: Page[Any]) -> int | None:
    # The page alone gives the total on a non-empty last page and on a first page with no
    # next one (an empty table included); only other pages need a COUNT.
    if page.has_next or (not page.items and page.offset > 0):
        return None
    return page.offset + len(page.items)


def _rows(result: Result[Any]) -> Sequence[Any]:
    # One entity or column: the objects themselves. Several: plain tuples, which is what the
    # ``Select[tuple[...]]`` type of SQLAlchemy 2.0 promises.
    if len(result.keys()) == 1:
        return result.scalars().all()
    return [tuple(row) for row in result]


def _count_statement(stmt: Select[Any]) -> Select[Any]:
    # Typed Any: the count's row type is spelled differently on SQLAlchemy 2.0 and 2.1.
    # ORDER BY changes nothing in a count and can cost a sort; the subquery keeps DISTINCT,
    # GROUP BY and joins exact.
    return select(func.count()).select_from(stmt.order_by(None).subquery())


@overload
def paginate(
    session: SessionLike,
    stmt: Select[tuple[T]],
    *,
    offset: int = 0,
    limit: int = 25,
    with_total: bool = False,
) -> Page[T]: ...
@overload
def paginate(
    session: SessionLike,
    stmt: Select[T],  # type: ignore[type-var, unused-ignore]  # SQLAlchemy 2.1's form; 2.0 bounds Select's parameter to tuples
    *,
    offset: int = 0,
    limit: int = 25,
    with_total: bool = False,
) -> Page[T]: ...
@overload
def paginate(
    session: SessionLike,
    stmt: Select[T, T2, *Ts],  # type: ignore[misc, type-arg, valid-type, unused-ignore]  # SQLAlchemy 2.1's variadic Select; 2.0 has one parameter
    *,
    offset: int = 0,
    limit: int = 25,
    with_total: bool = False,
) -> Page[tuple[T, T2, *Ts]]: ...
def paginate(  # type: ignore[misc, unused-ignore]  # on SQLAlchemy 2.1 Select[Any] is one column; the overloads are the API
    session: SessionLike,
    stmt: Select[Any],
    *,
    offset: int = 0,
    limit: int = 25,
    with_total: bool = False,
) -> Page[Any]:
    """Run one page of ``stmt`` on ``session`` and return it as a :class:`Page`.

    ``stmt`` is a ``select(Model)...`` (give it an ``ORDER BY`` on a unique key, or pages may
    overlap) without its own ``LIMIT``/``OFFSET``; ``session`` is a ``Session`` or
    Flask-SQLAlchemy's ``db.session``. One query with ``LIMIT limit + 1`` decides ``has_next``;
    ``with_total=True`` adds ``total`` (a ``COUNT(*)`` without ``ORDER BY``, run only when the
    page does not show it). A ``select()`` of several columns gives tuples.

    Raises :class:`~cst_chassis.errors.InvalidPaginationError` (a ``ValueError``) when
    ``offset`` is not in ``0..MAX_OFFSET`` or ``limit`` is below 1.
    """
    _check_bounds(offset, limit)
    rows = _rows(session.execute(stmt.offset(offset).limit(limit + 1)))
    page = _page_from_rows(rows, offset, limit)
    if not with_total:
        return page
    total = _total_from_page(page)
    if total is None:
        total = int(session.execute(_count_statement(stmt)).scalar_one())
    return replace(page, total=total)


@overload
async def paginate_async(
    session: AsyncSessionLike,
    stmt: Select[tuple[T]],
    *,
    offset: int = 0,
    limit: int = 25,
    with_total: bool = False,
) -> Page[T]: ...
@overload
async def paginate_async(
    session: AsyncSessionLike,
    stmt: Select[T],  # type: ignore[type-var, unused-ignore]  # SQLAlchemy 2.1's form; 2.0 bounds Select's parameter to tuples
    *,
    offset: int = 0,
    limit: int = 25,
    with_total: bool = False,
) -> Page[T]: ...
@overload
async def paginate_async(
    session: AsyncSessionLike,
    stmt: Select[T, T2, *Ts],  # type: ignore[misc, type-arg, valid-type, unused-ignore]  # SQLAlchemy 2.1's variadic Select; 2.0 has one parameter
    *,
    offset: int = 0,
    limit: int = 25,
    with_total: bool = False,
) -> Page[tuple[T, T2, *Ts]]: ...
async def paginate_async(  # type: ignore[misc, unused-ignore]  # on SQLAlchemy 2.1 Select[Any] is one column; the overloads are the API
    session: AsyncSessionLike,
    stmt: Select[Any],
    *,
    offset: int = 0,
    limit: int = 25,
    with_total: bool = False,
) -> Page[Any]:
    """:func:`paginate` for an ``AsyncSession`` (aiosqlite, asyncpg, ...): same rules, awaited."""
    _check_bounds(offset, limit)
    result = await session.execute(stmt.offset(offset).limit(limit + 1))
    rows = _rows(result)
    page = _page_from_rows(rows, offset, limit)
    if not with_total:
        return page
    total = _total_from_page(page)
    if total is None:
        total = int((await session.execute(_count_statement(stmt))).scalar_one())
    return replace(page, total=total)


def paginate_query(
    query: Query[T],
    *,
    offset: int = 0,
    limit: int = 25,
    with_total: bool = False,
) -> Page[T]:
    """:func:`paginate` for a legacy ``Query`` (e.g. Flask-SQLAlchemy's ``Model.query...``).

    The query runs on its own session; the total is ``query.order_by(None).count()``.
    """
    _check_bounds(offset, limit)
    rows = query.offset(offset).limit(limit + 1).all()
    page = _page_from_rows(rows, offset, limit)
    if not with_total:
        return page
    total = _total_from_page(page)
    if total is None:
        total = query.order_by(None).count()
    return replace(page, total=total)
