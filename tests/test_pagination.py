"""paginate / paginate_async / paginate_query and Page, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from cst_chassis.errors import InvalidPaginationError
from cst_chassis.pagination import (
    MAX_OFFSET,
    Page,
    paginate,
    paginate_async,
    paginate_query,
)
from tests.conftest import Database
from tests.pagination_support import ROWS, Product, captured_statements, seed

BY_ID = sa.select(Product).order_by(Product.id)


def _values(parameters: object) -> list[object]:
    if isinstance(parameters, Mapping):
        return list(parameters.values())
    assert isinstance(parameters, Sequence)
    return list(parameters)


def _walk(session: Session, stmt: sa.Select[Any], limit: int) -> list[int]:
    ids: list[int] = []
    offset: int | None = 0
    while offset is not None:
        page = paginate(session, stmt, offset=offset, limit=limit)
        assert len(page) <= limit
        ids.extend(p.id for p in page)
        offset = page.next_offset
    return ids


def test_walking_every_page_of_a_select_gives_the_full_ordered_result(
    database: Database,
) -> None:
    engine = database.engine()
    expected = seed(engine)
    with Session(engine) as session:
        assert _walk(session, BY_ID, 25) == expected
        assert _walk(session, sa.select(Product).order_by(Product.id.desc()), 10) == expected[::-1]


def test_a_page_is_one_query_fetching_limit_plus_one_rows(database: Database) -> None:
    engine = database.engine()
    seed(engine)
    with Session(engine) as session, captured_statements(engine) as statements:
        page = paginate(session, BY_ID, offset=50, limit=25)
    assert [p.id for p in page] == list(range(51, 76))
    assert (page.has_next, page.has_prev, page.total) == (True, True, None)
    assert len(statements) == 1
    sql, parameters = statements[0]
    assert "LIMIT" in sql.upper()
    assert 26 in _values(parameters)


def test_with_total_adds_one_count_query_without_order_by(database: Database) -> None:
    engine = database.engine()
    seed(engine)
    with Session(engine) as session, captured_statements(engine) as statements:
        page = paginate(session, BY_ID, offset=25, limit=25, with_total=True)
    assert page.total == ROWS
    assert len(statements) == 2
    count_sql = statements[1][0].upper()
    assert "COUNT(" in count_sql
    assert "ORDER BY" not in count_sql


def test_with_total_counts_only_the_filtered_rows(database: Database) -> None:
    engine = database.engine()
    seed(engine)
    stmt = BY_ID.where(Product.category == "plain")
    with Session(engine) as session:
        page = paginate(session, stmt, limit=10, with_total=True)
    assert page.total == (ROWS + 1) // 2


def test_with_total_on_the_last_page_needs_no_count_query(database: Database) -> None:
    engine = database.engine()
    seed(engine)
    with Session(engine) as session, captured_statements(engine) as statements:
        page = paginate(session, BY_ID, offset=100, limit=25, with_total=True)
    assert (len(page), page.total, page.has_next) == (7, ROWS, False)
    assert len(statements) == 1


def test_with_total_past_the_end_still_counts(database: Database) -> None:
    engine = database.engine()
    seed(engine)
    with Session(engine) as session:
        page = paginate(session, BY_ID, offset=500, limit=25, with_total=True)
    assert (list(page), page.total) == ([], ROWS)


def test_an_exact_multiple_of_the_page_size_has_no_phantom_next_page(
    database: Database,
) -> None:
    engine = database.engine()
    seed(engine, 100)
    with Session(engine) as session:
        last = paginate(session, BY_ID, offset=75, limit=25)
    assert (len(last), last.has_next, last.next_offset) == (25, False, None)


def test_an_empty_table_gives_an_empty_first_page(database: Database) -> None:
    engine = database.engine()
    seed(engine, 0)
    with Session(engine) as session:
        page = paginate(session, BY_ID, with_total=True)
    assert (list(page), page.has_next, page.has_prev, page.total) == ([], False, False, 0)


def test_an_offset_past_the_end_is_empty_with_prev_one_page_back(database: Database) -> None:
    engine = database.engine()
    seed(engine)
    with Session(engine) as session:
        page = paginate(session, BY_ID, offset=500, limit=25)
    assert (list(page), page.has_next, page.prev_offset) == ([], False, 475)


def test_the_largest_offset_reaches_the_database_without_overflow(database: Database) -> None:
    engine = database.engine()
    seed(engine)
    with Session(engine) as session:
        page = paginate(session, BY_ID, offset=MAX_OFFSET, limit=100)
    assert (list(page), page.prev_offset) == ([], MAX_OFFSET - 100)


def test_flask_sqlalchemy_style_scoped_session_is_accepted(database: Database) -> None:
    engine = database.engine()
    expected = seed(engine)
    session = scoped_session(sessionmaker(engine))
    try:
        page = paginate(session, BY_ID, limit=30)
    finally:
        session.remove()
    assert [p.id for p in page] == expected[:30]


def test_a_select_of_several_columns_gives_tuples(database: Database) -> None:
    engine = database.engine()
    seed(engine)
    # Several columns are typed only on SQLAlchemy 2.0 (Select[tuple[int, str]]); 2.1's
    # Select[int, str] matches no overload, hence the Any.
    stmt: sa.Select[Any] = sa.select(Product.id, Product.name).order_by(Product.id)  # type: ignore[assignment, unused-ignore]  # see above
    with Session(engine) as session:
        page = paginate(session, stmt, limit=2)
    assert list(page) == [(1, "product No.1"), (2, "product No.2")]
    assert all(type(item) is tuple for item in page)


def test_a_select_of_one_column_gives_the_values(database: Database) -> None:
    engine = database.engine()
    seed(engine)
    with Session(engine) as session:
        page = paginate(session, sa.select(Product.id).order_by(Product.id), offset=3, limit=3)
    assert list(page) == [4, 5, 6]


@pytest.mark.parametrize(
    ("offset", "limit", "path"),
    [
        (-1, 25, "offset"),
        (MAX_OFFSET + 1, 25, "offset"),
        (True, 25, "offset"),
        (0, 0, "limit"),
        (0, -3, "limit"),
    ],
)
def test_out_of_range_arguments_raise_before_any_query(
    database: Database, offset: int, limit: int, path: str
) -> None:
    engine = database.engine()
    seed(engine)
    with (
        Session(engine) as session,
        captured_statements(engine) as statements,
        pytest.raises(InvalidPaginationError) as caught,
    ):
        paginate(session, BY_ID, offset=offset, limit=limit)
    assert caught.value.path == path
    assert statements == []


def test_walking_a_legacy_query_gives_the_full_ordered_result(database: Database) -> None:
    engine = database.engine()
    expected = seed(engine)
    ids: list[int] = []
    with Session(engine) as session:
        query = session.query(Product).order_by(Product.id)
        offset: int | None = 0
        while offset is not None:
            page = paginate_query(query, offset=offset, limit=25)
            ids.extend(p.id for p in page)
            offset = page.next_offset
    assert ids == expected


def test_a_legacy_query_total_is_counted_without_order_by(database: Database) -> None:
    engine = database.engine()
    seed(engine)
    with Session(engine) as session, captured_statements(engine) as statements:
        query = session.query(Product).order_by(Product.id)
        page = paginate_query(query, offset=0, limit=25, with_total=True)
    assert (len(page), page.total) == (25, ROWS)
    assert len(statements) == 2
    assert "ORDER BY" not in statements[1][0].upper()


@pytest.mark.asyncio
async def test_walking_every_page_on_an_async_session_gives_the_full_ordered_result(
    database: Database,
) -> None:
    expected = seed(database.engine())
    engine = database.async_engine()
    try:
        ids: list[int] = []
        async with AsyncSession(engine) as session:
            offset: int | None = 0
            while offset is not None:
                page = await paginate_async(session, BY_ID, offset=offset, limit=25)
                ids.extend(p.id for p in page)
                offset = page.next_offset
        assert ids == expected
    finally:
        await engine.dispose()


@pytest.mark.asyncio
async def test_async_with_total_adds_one_count_query(database: Database) -> None:
    seed(database.engine())
    engine = database.async_engine()
    try:
        with captured_statements(engine.sync_engine) as statements:
            async with AsyncSession(engine) as session:
                page = await paginate_async(session, BY_ID, offset=0, limit=25, with_total=True)
        assert (len(page), page.has_next, page.total) == (25, True, ROWS)
        assert len(statements) == 2
        assert "ORDER BY" not in statements[1][0].upper()
    finally:
        await engine.dispose()


def test_a_page_is_an_immutable_sequence() -> None:
    page = Page(items=["a", "b", "c"], offset=0, limit=3, has_next=True, has_prev=False)
    assert (len(page), page[1], list(page), page[1:]) == (3, "b", ["a", "b", "c"], ["b", "c"])
    assert "c" in page
    with pytest.raises(dataclasses.FrozenInstanceError):
        page.offset = 3  # type: ignore[misc]  # the point: assigning must fail


def test_page_neighbour_offsets_follow_the_seed() -> None:
    first = Page(items=[1], offset=0, limit=25, has_next=True, has_prev=False)
    middle = Page(items=[1], offset=10, limit=25, has_next=False, has_prev=True)
    assert (first.next_offset, first.prev_offset) == (25, None)
    assert (middle.next_offset, middle.prev_offset) == (None, 0)


# ---- the same contract through paginate, paginate_async and paginate_query -----------------

APIS = ["select", "async", "query"]


def _page_via(
    api: str, database: Database, engine: sa.Engine, **kwargs: Any
) -> tuple[Page[Any], list[tuple[str, object]]]:
    """One page of the products by id through ``api``, and the statements it sent."""
    if api == "select":
        with Session(engine) as session, captured_statements(engine) as statements:
            return paginate(session, BY_ID, **kwargs), statements
    if api == "query":
        with Session(engine) as session, captured_statements(engine) as statements:
            query = session.query(Product).order_by(Product.id)
            return paginate_query(query, **kwargs), statements

    async def run() -> tuple[Page[Any], list[tuple[str, object]]]:
        async_engine = database.async_engine()
        try:
            with captured_statements(async_engine.sync_engine) as statements:
                async with AsyncSession(async_engine) as session:
                    return await paginate_async(session, BY_ID, **kwargs), statements
        finally:
            await async_engine.dispose()

    return asyncio.run(run())


def _ids_of(page: Page[Any]) -> list[int]:
    return [product.id for product in page]


@pytest.mark.parametrize("api", APIS)
def test_defaults_are_the_first_25_rows_without_a_total(database: Database, api: str) -> None:
    engine = database.engine()
    seed(engine)
    page, statements = _page_via(api, database, engine)
    assert _ids_of(page) == list(range(1, 26))
    assert (page.offset, page.limit, page.has_prev, page.has_next, page.total) == (
        0,
        25,
        False,
        True,
        None,
    )
    assert len(statements) == 1


@pytest.mark.parametrize("api", APIS)
def test_each_api_fetches_limit_plus_one_rows_in_one_query(database: Database, api: str) -> None:
    engine = database.engine()
    seed(engine)
    page, statements = _page_via(api, database, engine, offset=50, limit=10)
    assert _ids_of(page) == list(range(51, 61))
    assert (page.offset, page.limit, page.has_prev, page.has_next) == (50, 10, True, True)
    assert len(statements) == 1
    assert 11 in _values(statements[0][1])


@pytest.mark.parametrize("api", APIS)
def test_a_page_of_exactly_the_remaining_rows_has_no_next(database: Database, api: str) -> None:
    engine = database.engine()
    seed(engine)
    page, _ = _page_via(api, database, engine, offset=ROWS - 7, limit=7)
    assert (len(page), page.has_next, page.has_prev) == (7, False, True)
    short, _ = _page_via(api, database, engine, offset=ROWS - 8, limit=7)
    assert (len(short), short.has_next) == (7, True)


@pytest.mark.parametrize("api", APIS)
def test_offset_one_has_a_previous_page(database: Database, api: str) -> None:
    engine = database.engine()
    seed(engine)
    page, _ = _page_via(api, database, engine, offset=1, limit=5)
    assert _ids_of(page) == [2, 3, 4, 5, 6]
    assert (page.has_prev, page.prev_offset) == (True, 0)


# (offset, limit, rows in the table, expected total, queries): a COUNT only where the page
# cannot tell the total itself.
TOTAL_CASES = [
    pytest.param(25, 25, ROWS, ROWS, 2, id="middle-page-counts"),
    pytest.param(100, 25, ROWS, ROWS, 1, id="last-page-needs-no-count"),
    pytest.param(0, 200, ROWS, ROWS, 1, id="single-page-needs-no-count"),
    pytest.param(500, 25, ROWS, ROWS, 2, id="past-the-end-counts"),
    pytest.param(1, 25, 0, 0, 2, id="offset-one-of-an-empty-table-counts"),
    pytest.param(0, 25, 0, 0, 1, id="empty-table-needs-no-count"),
]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(("offset", "limit", "rows", "total", "queries"), TOTAL_CASES)
def test_with_total_counts_only_when_the_page_cannot_tell(
    database: Database, api: str, offset: int, limit: int, rows: int, total: int, queries: int
) -> None:
    engine = database.engine()
    seed(engine, rows)
    page, statements = _page_via(api, database, engine, offset=offset, limit=limit, with_total=True)
    assert page.total == total
    assert len(statements) == queries
    assert (page.offset, page.limit) == (offset, limit)
    assert _ids_of(page) == list(range(offset + 1, min(offset + limit, rows) + 1))
    if queries == 2:
        assert "COUNT(" in statements[1][0].upper()
        assert "ORDER BY" not in statements[1][0].upper()


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    ("offset", "limit", "path", "message"),
    [
        (-1, 25, "offset", f"offset must be an integer from 0 to {MAX_OFFSET}"),
        (MAX_OFFSET + 1, 25, "offset", f"offset must be an integer from 0 to {MAX_OFFSET}"),
        (True, 25, "offset", f"offset must be an integer from 0 to {MAX_OFFSET}"),
        (1.5, 25, "offset", f"offset must be an integer from 0 to {MAX_OFFSET}"),
        ("5", 25, "offset", f"offset must be an integer from 0 to {MAX_OFFSET}"),
        (0, 0, "limit", "limit must be a positive integer"),
        (0, True, "limit", "limit must be a positive integer"),
        (0, 2.5, "limit", "limit must be a positive integer"),
        (0, "5", "limit", "limit must be a positive integer"),
    ],
)
def test_each_api_refuses_bad_bounds_naming_them_before_any_query(
    database: Database, api: str, offset: Any, limit: Any, path: str, message: str
) -> None:
    engine = database.engine()
    seed(engine)
    with pytest.raises(InvalidPaginationError) as caught:
        _page_via(api, database, engine, offset=offset, limit=limit)
    assert (caught.value.path, caught.value.message, str(caught.value)) == (path, message, message)


@pytest.mark.parametrize("api", APIS)
def test_a_limit_of_one_and_the_largest_offset_are_accepted(database: Database, api: str) -> None:
    engine = database.engine()
    seed(engine)
    page, _ = _page_via(api, database, engine, offset=0, limit=1)
    assert (_ids_of(page), page.has_next) == ([1], True)
    far, _ = _page_via(api, database, engine, offset=MAX_OFFSET, limit=1)
    assert (list(far), far.has_next, far.has_prev) == ([], False, True)


@pytest.mark.parametrize("api", ["select", "async"])
def test_several_columns_give_tuples_and_one_column_the_values(
    database: Database, api: str
) -> None:
    engine = database.engine()
    seed(engine)
    pair: sa.Select[Any] = sa.select(Product.id, Product.name).order_by(Product.id)  # type: ignore[assignment, unused-ignore]  # see test_a_select_of_several_columns_gives_tuples

    async def run_async(stmt: sa.Select[Any]) -> Page[Any]:
        async_engine = database.async_engine()
        try:
            async with AsyncSession(async_engine) as session:
                page: Page[Any] = await paginate_async(session, stmt, limit=2)
                return page
        finally:
            await async_engine.dispose()

    def run(stmt: sa.Select[Any]) -> Page[Any]:
        if api == "async":
            return asyncio.run(run_async(stmt))
        with Session(engine) as session:
            return paginate(session, stmt, limit=2)

    assert list(run(pair)) == [(1, "product No.1"), (2, "product No.2")]
    assert list(run(sa.select(Product.name).order_by(Product.id))) == [
        "product No.1",
        "product No.2",
    ]
