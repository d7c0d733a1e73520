"""Keyset pagination on SQLite and PostgreSQL: walks, NULLs, concurrent changes, bad cursors."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import decimal
import enum
import functools
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, request
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from cst_chassis import (
    ChassisApi,
    ChassisConfigError,
    CstMicroChassis,
    CursorSecretError,
    async_bridge,
)
from cst_chassis.cursor import CursorPayload, Direction, decode_cursor, encode_cursor
from cst_chassis.errors import ChassisError, InvalidCursorError, InvalidPaginationError
from cst_chassis.keyset import paginate_keyset, paginate_keyset_async
from cst_chassis.pagination import Page, keyset
from cst_chassis.pagination.cursor import scoped_secret
from cst_chassis.pagination.secret import cursor_secret
from cst_chassis.resources import ApiPaginatedMixin, ApiResource
from tests.conftest import AppFactory, Database
from tests.pagination_support import captured_statements

SECRET = b"keyset-test-secret"
APP_SECRET = "app-secret-of-the-keyset-tests"


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "keyset_item"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    a: Mapped[int | None]
    b: Mapped[str | None] = mapped_column(sa.String(20))
    c: Mapped[dt.datetime | None]
    flag: Mapped[bool | None]


class Typed(Base):
    """One column per supported sort-value type."""

    __tablename__ = "keyset_typed"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    i: Mapped[int]
    s: Mapped[str] = mapped_column(sa.String(20))
    f: Mapped[float]
    d: Mapped[decimal.Decimal] = mapped_column(sa.Numeric(12, 4))
    u: Mapped[uuid.UUID]
    day: Mapped[dt.date]
    ts: Mapped[dt.datetime]
    tsz: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    flag: Mapped[bool]


class Color(enum.Enum):
    RED = "r"
    GREEN = "g"
    BLUE = "b"


class Painted(Base):
    __tablename__ = "keyset_painted"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    color: Mapped[Color]


class Label(sa.types.UserDefinedType[str]):
    """A user-defined column type whose Python type is unknown, as some third-party types."""

    cache_ok = True

    @property
    def python_type(self) -> type[Any]:
        raise NotImplementedError

    def get_col_spec(self, **kw: Any) -> str:
        return "VARCHAR(20)"


Ordering = list[Any]  # ORM attributes and ordered clauses, as order_by() takes them
ORDERINGS: dict[str, Callable[[], Ordering]] = {
    "a-asc": lambda: [Item.a],
    "a-desc": lambda: [Item.a.desc()],
    "a-asc-b-desc": lambda: [Item.a.asc(), Item.b.desc()],
    "b-desc-a-asc-c-desc": lambda: [Item.b.desc(), Item.a, Item.c.desc()],
    "a-nulls-first-b-nulls-last": lambda: [Item.a.nulls_first(), Item.b.desc().nulls_last()],
    # Explicit NULL placements against SQLite's default, then against PostgreSQL's.
    "a-nulls-last-b-nulls-last": lambda: [Item.a.nulls_last(), Item.b.nulls_last()],
    "a-nulls-first-b-nulls-first": lambda: [Item.a.nulls_first(), Item.b.nulls_first()],
    "a-b-nulls-last": lambda: [Item.a, Item.b.nulls_last()],
    "a-desc-nulls-first-flag": lambda: [Item.a.desc().nulls_first(), Item.flag.asc()],
    "c-desc-nulls-last-id-asc": lambda: [Item.c.desc().nulls_last(), Item.id.asc()],
    "id-desc": lambda: [Item.id.desc()],
    "a-b": lambda: [Item.a, Item.b],
    "labelled": lambda: [Item.a.label("a_label").desc(), Item.b],
    "expression": lambda: [sa.func.coalesce(Item.a, 2).desc(), Item.b],
    # A function SQLAlchemy knows no type for, and a type with no Python type: their cursor
    # values cannot be type-checked, and still page.
    "untyped-function": lambda: [sa.func.abs(Item.a).desc()],
    "user-defined-type": lambda: [sa.type_coerce(Item.b, Label()), Item.a],
    "none": lambda: [],
}


def _rows(count: int) -> list[dict[str, Any]]:
    # Few distinct values, many duplicates and NULLs in every sort column.
    base = dt.datetime(2024, 1, 1)
    return [
        {
            "id": n,
            "a": None if n % 5 == 0 else n % 4,
            "b": None if n % 7 == 3 else "xyz"[n % 3],
            "c": None if n % 6 == 1 else base + dt.timedelta(days=n % 3),
            "flag": None if n % 9 == 2 else n % 2 == 0,
        }
        for n in range(1, count + 1)
    ]


@pytest.fixture(autouse=True)
def _fresh_seek_conditions() -> None:
    # Seek conditions are cached per ordering, and the mapped attributes behind an ordering are
    # the same objects in every test: without this, a test would check the conditions an
    # earlier test built (in mutation testing, by other code) instead of building its own.
    keyset._seek_segments.cache_clear()


@pytest.fixture
def sessions(database: Database) -> Iterator[sessionmaker[Session]]:
    engine = database.engine()
    Base.metadata.create_all(engine)
    yield sessionmaker(engine, expire_on_commit=False)


def _fill(factory: sessionmaker[Session], rows: Sequence[dict[str, Any]]) -> None:
    with factory.begin() as session:
        session.execute(sa.delete(Item))
        if rows:
            session.execute(sa.insert(Item), list(rows))


def _reference(session: Session, ordering: Ordering) -> list[int]:
    """The plain ordered query, with the primary key appended the way keyset pagination does."""
    keys = list(ordering)
    stmt = sa.select(Item.id).order_by(*keys)
    last_desc = bool(keys) and _is_desc(keys[-1])
    if not any(_is_id(k) for k in keys):
        stmt = stmt.order_by(Item.id.desc() if last_desc else Item.id.asc())
    return list(session.scalars(stmt))


def _is_desc(clause: Any) -> bool:
    while isinstance(clause, sa.UnaryExpression):
        if clause.modifier is sa.sql.operators.desc_op:
            return True
        clause = clause.element
    return False


def _is_id(clause: Any) -> bool:
    while isinstance(clause, sa.UnaryExpression):
        clause = clause.element
    return bool(isinstance(clause, sa.ColumnElement) and clause.compare(Item.__table__.c.id))


def _walk(
    session: Session, stmt: sa.Select[Any], limit: int
) -> tuple[list[Page[Any]], list[Page[Any]]]:
    """All pages forward from the first, then all pages backward from the last."""
    forward = [paginate_keyset(session, stmt, limit=limit, secret=SECRET)]
    while forward[-1].next_cursor is not None:
        assert forward[-1].has_next
        forward.append(
            paginate_keyset(
                session, stmt, cursor=forward[-1].next_cursor, limit=limit, secret=SECRET
            )
        )
        assert len(forward) <= 100, "the walk does not end"
    backward = [forward[-1]]
    while backward[-1].prev_cursor is not None:
        assert backward[-1].has_prev
        backward.append(
            paginate_keyset(
                session, stmt, cursor=backward[-1].prev_cursor, limit=limit, secret=SECRET
            )
        )
        assert len(backward) <= 100, "the walk does not end"
    return forward, backward


def _ids(pages: Sequence[Page[Any]]) -> list[int]:
    return [item.id for page in pages for item in page]


@pytest.mark.parametrize("name", sorted(ORDERINGS))
def test_forward_walk_returns_the_full_ordered_result(
    sessions: sessionmaker[Session], name: str
) -> None:
    _fill(sessions, _rows(47))
    ordering = ORDERINGS[name]()
    with sessions() as session:
        forward, _ = _walk(session, sa.select(Item).order_by(*ordering), limit=5)
        assert _ids(forward) == _reference(session, ordering)


@pytest.mark.parametrize("name", sorted(ORDERINGS))
def test_backward_walk_from_the_last_page_returns_the_full_ordered_result(
    sessions: sessionmaker[Session], name: str
) -> None:
    _fill(sessions, _rows(47))
    ordering = ORDERINGS[name]()
    with sessions() as session:
        _, backward = _walk(session, sa.select(Item).order_by(*ordering), limit=5)
        assert _ids(list(reversed(backward))) == _reference(session, ordering)


def test_pages_have_the_requested_size_except_the_last(sessions: sessionmaker[Session]) -> None:
    _fill(sessions, _rows(23))
    with sessions() as session:
        forward, _ = _walk(session, sa.select(Item).order_by(Item.a), limit=5)
    assert [len(p) for p in forward] == [5, 5, 5, 5, 3]


def test_first_page_has_no_prev_and_last_page_has_no_next(sessions: sessionmaker[Session]) -> None:
    _fill(sessions, _rows(12))
    with sessions() as session:
        forward, _ = _walk(session, sa.select(Item).order_by(Item.b), limit=5)
    assert (forward[0].has_prev, forward[0].prev_cursor) == (False, None)
    assert (forward[-1].has_next, forward[-1].next_cursor) == (False, None)
    assert all(p.offset == 0 and p.limit == 5 and p.total is None for p in forward)


def test_exact_multiple_of_the_page_size_has_no_phantom_next_page(
    sessions: sessionmaker[Session],
) -> None:
    _fill(sessions, _rows(15))
    with sessions() as session:
        forward, _ = _walk(session, sa.select(Item).order_by(Item.a), limit=5)
    assert [len(p) for p in forward] == [5, 5, 5]


def test_empty_table_gives_one_empty_page_without_cursors(sessions: sessionmaker[Session]) -> None:
    _fill(sessions, [])
    with sessions() as session:
        page = paginate_keyset(session, sa.select(Item).order_by(Item.a), secret=SECRET)
    assert (list(page), page.has_next, page.has_prev) == ([], False, False)
    assert (page.next_cursor, page.prev_cursor) == (None, None)


def test_filters_are_kept(sessions: sessionmaker[Session]) -> None:
    _fill(sessions, _rows(40))
    with sessions() as session:
        stmt = sa.select(Item).where(Item.flag.is_(True)).order_by(Item.c.desc())
        forward, _ = _walk(session, stmt, limit=3)
        expected = list(
            session.scalars(
                sa.select(Item.id)
                .where(Item.flag.is_(True))
                .order_by(Item.c.desc(), Item.id.desc())
            )
        )
    assert _ids(forward) == expected


def test_rows_inserted_or_deleted_between_pages_neither_skip_nor_repeat_survivors(
    sessions: sessionmaker[Session],
) -> None:
    _fill(sessions, _rows(30))
    ordering: Ordering = [Item.a.desc(), Item.b]
    stmt = sa.select(Item).order_by(*ordering)
    seen: list[int] = []
    inserted = 1000
    with sessions() as session:
        page = paginate_keyset(session, stmt, limit=4, secret=SECRET)
        seen += [item.id for item in page]
        while page.next_cursor is not None:
            with sessions.begin() as writer:
                # Remove one row already seen, one not yet seen, and the boundary row itself;
                # add rows on both sides of the boundary (with NULLs and duplicate keys).
                unseen = writer.scalars(
                    sa.select(Item.id).where(Item.id.not_in(seen)).order_by(Item.id)
                ).first()
                doomed = {seen[0], seen[-1], unseen or -1}
                writer.execute(sa.delete(Item).where(Item.id.in_(doomed)))
                for value in (None, 0, 3):
                    inserted += 1
                    writer.add(Item(id=inserted, a=value, b="y"))
            session.expire_all()
            page = paginate_keyset(session, stmt, cursor=page.next_cursor, limit=4, secret=SECRET)
            seen += [item.id for item in page]
        assert len(seen) == len(set(seen)), "a row was repeated"
        survivors = [i for i in _reference(session, ordering) if i <= 30]
    assert [i for i in seen if i in survivors] == survivors, "a surviving row was skipped"


def test_deleting_every_row_after_the_boundary_gives_an_empty_page_that_can_go_back(
    sessions: sessionmaker[Session],
) -> None:
    _fill(sessions, _rows(10))
    stmt = sa.select(Item).order_by(Item.id)
    with sessions() as session:
        first = paginate_keyset(session, stmt, limit=5, secret=SECRET)
        with sessions.begin() as writer:
            writer.execute(sa.delete(Item).where(Item.id >= 5))
        empty = paginate_keyset(session, stmt, cursor=first.next_cursor, limit=5, secret=SECRET)
        assert (list(empty), empty.has_next, empty.next_cursor) == ([], False, None)
        back = paginate_keyset(session, stmt, cursor=empty.prev_cursor, limit=5, secret=SECRET)
    assert [item.id for item in back] == [1, 2, 3, 4]


def test_limit_below_one_is_an_invalid_pagination_error_on_limit(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session, pytest.raises(InvalidPaginationError) as info:
        paginate_keyset(session, sa.select(Item), limit=0, secret=SECRET)
    assert info.value.path == "limit"


def test_statement_with_offset_is_refused(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, pytest.raises(ChassisError, match="OFFSET"):
        paginate_keyset(session, sa.select(Item).order_by(Item.a).offset(3), secret=SECRET)


def test_text_order_by_is_refused_with_a_clear_error(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, pytest.raises(ChassisError, match="column expressions"):
        paginate_keyset(session, sa.select(Item).order_by(sa.text("a")), secret=SECRET)


def test_non_total_ordering_without_primary_key_is_refused(
    sessions: sessionmaker[Session],
) -> None:
    lowered = sa.func.lower(Item.__table__.c.b)
    stmt = sa.select(lowered).order_by(lowered)
    with sessions() as session, pytest.raises(ChassisError, match="total ordering"):
        paginate_keyset(session, stmt, secret=SECRET)


def test_core_table_statement_yields_rows_as_tuples(sessions: sessionmaker[Session]) -> None:
    _fill(sessions, _rows(7))
    table = Item.__table__
    stmt: sa.Select[Any] = (
        sa.select(table.c.id, table.c.a).where(table.c.a.is_not(None)).order_by(table.c.a.desc())
    )
    with sessions() as session:
        page = paginate_keyset(session, stmt, limit=3, secret=SECRET)
        second = paginate_keyset(session, stmt, cursor=page.next_cursor, limit=3, secret=SECRET)
    # The primary key is appended in the last key's direction: ties on a go by id descending.
    assert [row for row in page] == [(7, 3), (3, 3), (6, 2)]
    assert [row[0] for row in second] == [2, 1, 4]


# ---- bad cursors -------------------------------------------------------------------------


def _bad_cursor(kind: str, session: Session) -> str:
    stmt = sa.select(Item).order_by(Item.a, Item.b)
    good = paginate_keyset(session, stmt, limit=2, secret=SECRET).next_cursor
    assert good is not None
    fingerprint = _fingerprint(session, stmt)
    cases = {
        "malformed": "%%%not-base64%%%",
        # Cut at a 4-character boundary: still canonical base64, but no longer what was signed.
        "truncated": good[: len(good) // 4 * 4 - 4],
        "tampered": good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1],
        "other-secret": paginate_keyset(session, stmt, limit=2, secret=b"other").next_cursor,
        "foreign-ordering": paginate_keyset(
            session, sa.select(Item).order_by(Item.b, Item.a), limit=2, secret=SECRET
        ).next_cursor,
        "same-columns-other-direction": paginate_keyset(
            session, sa.select(Item).order_by(Item.a.desc(), Item.b), limit=2, secret=SECRET
        ).next_cursor,
        "huge": good * 200,
        "wrong-type": encode_cursor(CursorPayload(fingerprint, "after", ("1", "x", 1)), SECRET),
        "wrong-type-int-for-str": encode_cursor(
            CursorPayload(fingerprint, "after", (1, 2, 1)), SECRET
        ),
        "null-primary-key": encode_cursor(
            CursorPayload(fingerprint, "after", (1, "x", None)), SECRET
        ),
        "too-few-values": encode_cursor(CursorPayload(fingerprint, "after", (1, "x")), SECRET),
        "too-many-values": encode_cursor(
            CursorPayload(fingerprint, "after", (1, "x", 1, 1)), SECRET
        ),
    }
    cursor = cases[kind]
    assert cursor is not None
    return cursor


def _fingerprint(session: Session, stmt: sa.Select[Any]) -> str:
    # Crafting a correctly signed cursor with wrong content needs the ordering's fingerprint.
    return keyset._ordering(stmt, session.get_bind().dialect.name).fingerprint


NOT_ISSUED = "The cursor is not one this service issued"
OTHER_ORDERING = "The cursor belongs to another ordering"
WRONG_TYPE = "The cursor holds a value of the wrong type"
NOT_THIS_ORDERING = "The cursor does not match this ordering"
# Each bad cursor and the message its 400 carries.
BAD_CURSORS = {
    "malformed": "The cursor is not valid url-safe base64",
    "truncated": NOT_ISSUED,
    "tampered": NOT_ISSUED,
    "other-secret": NOT_ISSUED,
    "foreign-ordering": OTHER_ORDERING,
    "same-columns-other-direction": OTHER_ORDERING,
    "huge": "The cursor is too long",
    "wrong-type": WRONG_TYPE,
    "wrong-type-int-for-str": WRONG_TYPE,
    "null-primary-key": WRONG_TYPE,
    "too-few-values": NOT_THIS_ORDERING,
    "too-many-values": NOT_THIS_ORDERING,
}
BAD_CURSOR_KINDS = list(BAD_CURSORS)


@pytest.mark.parametrize("kind", BAD_CURSOR_KINDS)
def test_bad_cursor_raises_invalid_cursor_error_and_runs_no_query(
    sessions: sessionmaker[Session], kind: str
) -> None:
    _fill(sessions, _rows(6))
    with sessions() as session:
        cursor = _bad_cursor(kind, session)
        statements: list[str] = []
        engine = session.get_bind()
        sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        with pytest.raises(InvalidCursorError) as info:
            paginate_keyset(
                session, sa.select(Item).order_by(Item.a, Item.b), cursor=cursor, secret=SECRET
            )
    assert info.value.path == "cursor"
    assert info.value.message == BAD_CURSORS[kind]
    assert statements == []


# ---- value types ---------------------------------------------------------------------------

TYPED_COLUMNS = ["i", "s", "f", "d", "u", "day", "ts", "tsz", "flag"]


def _typed_rows() -> list[Typed]:
    base = dt.datetime(2023, 12, 31, 23, 59, 59, 999998)
    zone = dt.timezone(dt.timedelta(hours=2))
    return [
        Typed(
            id=n,
            i=n % 3 - 1,
            s=["b", "a", "c"][n % 3],
            f=[0.1, -2.5, 1e-9][n % 3],
            d=decimal.Decimal(["1.0001", "-3.5", "0"][n % 3]),
            u=uuid.UUID(int=(n % 3) * 2**100),
            day=dt.date(2024, 2, 28) + dt.timedelta(days=n % 3),
            ts=base + dt.timedelta(microseconds=n % 3),
            tsz=dt.datetime(2024, 1, 1, 12, n % 3, tzinfo=zone),
            flag=n % 3 == 0,
        )
        for n in range(1, 11)
    ]


@pytest.mark.parametrize("column", TYPED_COLUMNS)
def test_each_value_type_round_trips_through_the_cursor(database: Database, column: str) -> None:
    engine = database.engine()
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(_typed_rows())
        session.commit()
        key = getattr(Typed, column)
        stmt = sa.select(Typed).order_by(key.desc())
        seen: list[int] = []
        page = paginate_keyset(session, stmt, limit=2, secret=SECRET)
        seen += [t.id for t in page]
        while page.next_cursor:
            page = paginate_keyset(session, stmt, cursor=page.next_cursor, limit=2, secret=SECRET)
            seen += [t.id for t in page]
        expected = list(session.scalars(sa.select(Typed.id).order_by(key.desc(), Typed.id.desc())))
    assert seen == expected


def test_enum_sort_column_round_trips_by_member_name(database: Database) -> None:
    engine = database.engine()
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(Painted(id=n, color=list(Color)[n % 3]) for n in range(1, 10))
        session.commit()
        stmt = sa.select(Painted).order_by(Painted.color.desc())
        seen: list[int] = []
        page = paginate_keyset(session, stmt, limit=2, secret=SECRET)
        seen += [p.id for p in page]
        while page.next_cursor:
            page = paginate_keyset(session, stmt, cursor=page.next_cursor, limit=2, secret=SECRET)
            seen += [p.id for p in page]
        reference = sa.select(Painted.id).order_by(Painted.color.desc(), Painted.id.desc())
        assert seen == list(session.scalars(reference))


# ---- async -------------------------------------------------------------------------------


def test_async_session_walks_forward_and_backward(
    sessions: sessionmaker[Session], database: Database
) -> None:

    _fill(sessions, _rows(17))
    ordering: Ordering = [Item.b.desc(), Item.a.nulls_first()]
    with sessions() as session:
        expected = _reference(session, ordering)
    stmt = sa.select(Item).order_by(*ordering)

    async def walk() -> tuple[list[int], list[int]]:
        engine = database.async_engine()
        try:
            async with AsyncSession(engine) as session:
                page = await paginate_keyset_async(session, stmt, limit=4, secret=SECRET)
                forward = [item.id for item in page]
                while page.next_cursor:
                    page = await paginate_keyset_async(
                        session, stmt, cursor=page.next_cursor, limit=4, secret=SECRET
                    )
                    forward += [item.id for item in page]
                    assert len(forward) <= 17, "the walk does not end"
                backward = [item.id for item in reversed(page)]
                while page.prev_cursor:
                    page = await paginate_keyset_async(
                        session, stmt, cursor=page.prev_cursor, limit=4, secret=SECRET
                    )
                    backward += [item.id for item in reversed(page)]
                    assert len(backward) <= 17, "the walk does not end"
                return forward, backward[::-1]
        finally:
            await engine.dispose()

    forward, backward = asyncio.run(walk())
    assert forward == expected
    assert backward == expected


def test_async_bad_cursor_raises_invalid_cursor_error(database: Database) -> None:

    async def run() -> None:
        engine = database.async_engine()
        try:
            async with AsyncSession(engine) as session:
                await paginate_keyset_async(
                    session, sa.select(Item).order_by(Item.a), cursor="garbage!", secret=SECRET
                )
        finally:
            await engine.dispose()

    with pytest.raises(InvalidCursorError):
        asyncio.run(run())


# ---- property-based ------------------------------------------------------------------------

_COLUMNS = ["a", "b", "c", "flag"]
_row_strategy = st.fixed_dictionaries(
    {
        "a": st.none() | st.integers(-2, 2),
        "b": st.none() | st.sampled_from(["", "a", "B", "b", "a b"]),
        "c": st.none() | st.sampled_from([dt.datetime(2024, 1, d) for d in (1, 2, 3)]),
        "flag": st.none() | st.booleans(),
    }
)
_key_strategy = st.tuples(
    st.sampled_from(_COLUMNS), st.booleans(), st.sampled_from([None, "first", "last"])
)


def _clause(column: str, descending: bool, nulls: str | None) -> Any:
    clause = getattr(Item, column)
    clause = clause.desc() if descending else clause.asc()
    if nulls == "first":
        clause = clause.nulls_first()
    elif nulls == "last":
        clause = clause.nulls_last()
    return clause


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(_row_strategy, max_size=25),
    keys=st.lists(_key_strategy, max_size=3, unique_by=lambda k: k[0]),
    limit=st.integers(1, 6),
)
def test_random_tables_and_orderings_walk_like_the_plain_ordered_query(
    sessions: sessionmaker[Session],
    rows: list[dict[str, Any]],
    keys: list[tuple[str, bool, str | None]],
    limit: int,
) -> None:
    _fill(sessions, [{"id": n, **row} for n, row in enumerate(rows, 1)])
    ordering: Ordering = [_clause(*key) for key in keys]
    with sessions() as session:
        forward, backward = _walk(session, sa.select(Item).order_by(*ordering), limit=limit)
        expected = _reference(session, ordering)
    assert _ids(forward) == expected
    assert _ids(list(reversed(backward))) == expected


# ---- ApiPaginatedMixin in keyset mode ------------------------------------------------------

EVENTS = "http://localhost/items"
# What the resource at /items (endpoint "items") signs its cursors with.
ITEMS_SECRET = scoped_secret(APP_SECRET.encode(), "items")


@pytest.fixture
def keyset_client(
    make_app: AppFactory, sessions: sessionmaker[Session], database: Database
) -> Iterator[tuple[FlaskClient, Callable[..., Flask]]]:
    """A client of ``/items`` (sync) and ``/async-items`` (AsyncSession), keyset mode."""
    _fill(sessions, _rows(23))
    async_engine = database.async_engine()
    make_async = async_sessionmaker(async_engine)

    def _stmt() -> sa.Select[Any]:
        stmt = sa.select(Item).order_by(Item.a.desc(), Item.b)
        flags = request.args.getlist("flag")
        return stmt.where(Item.flag.is_(flags[0] == "1")) if flags else stmt

    class Items(ApiPaginatedMixin, ApiResource):
        pagination_mode = "keyset"

        def get(self) -> Any:
            with sessions() as session:
                return [item.id for item in self.get_paginated_query_result(_stmt(), session)]

    class AsyncItems(ApiPaginatedMixin, ApiResource):
        pagination_mode = "keyset"

        async def get(self) -> Any:
            async with make_async() as session:
                page = await self.get_paginated_query_result_async(_stmt(), session)
                return [item.id for item in page]

    apps: list[Flask] = []

    def build(**config: Any) -> Flask:
        config.setdefault("SECRET_KEY", APP_SECRET)
        app = make_app(**config)
        api = ChassisApi(app)
        api.add_resource(Items, "/items")
        api.add_resource(AsyncItems, "/async-items")
        apps.append(app)
        return app

    try:
        yield build().test_client(), build
    finally:
        async_bridge.run_coroutine(async_engine.dispose)


def _reference_ids(sessions: sessionmaker[Session], flag: bool | None = None) -> list[int]:
    with sessions() as session:
        stmt = sa.select(Item.id).order_by(Item.a.desc(), Item.b, Item.id)
        if flag is not None:
            stmt = stmt.where(Item.flag.is_(flag))
        return list(session.scalars(stmt))


def _follow(client: FlaskClient, url: str, rel: str) -> tuple[list[int], list[str]]:
    ids: list[int] = []
    urls: list[str] = []
    next_url: str | None = url
    while next_url is not None:
        response = client.get(next_url)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        ids += body["data"] if rel == "next" else body["data"][::-1]
        urls.append(next_url)
        next_url = body["meta"]["pagination"][rel]
        assert len(urls) < 100
    return ids, urls


@pytest.mark.parametrize("path", ["/items", "/async-items"])
def test_resource_next_links_walk_the_full_ordered_result(
    keyset_client: tuple[FlaskClient, Any], sessions: sessionmaker[Session], path: str
) -> None:
    client, _ = keyset_client
    ids, urls = _follow(client, f"{path}?limit=5", "next")
    assert ids == _reference_ids(sessions)
    assert len(urls) == 5
    assert all(re.fullmatch(rf"http://localhost{path}\?cursor=[\w-]+&limit=5", u) for u in urls[1:])


@pytest.mark.parametrize("path", ["/items", "/async-items"])
def test_resource_prev_links_walk_back_to_the_first_page(
    keyset_client: tuple[FlaskClient, Any], sessions: sessionmaker[Session], path: str
) -> None:
    client, _ = keyset_client
    _, urls = _follow(client, f"{path}?limit=5", "next")
    ids, _ = _follow(client, urls[-1], "prev")
    assert ids[::-1] == _reference_ids(sessions)


def test_resource_first_page_has_no_prev_and_last_page_has_no_next(
    keyset_client: tuple[FlaskClient, Any],
) -> None:
    client, _ = keyset_client
    first = client.get("/items?limit=20").get_json()["meta"]["pagination"]
    last = client.get(first["next"]).get_json()["meta"]["pagination"]
    assert first["prev"] is None and first["next"] is not None
    assert last["next"] is None and last["prev"] is not None


def test_resource_default_limit_comes_from_the_config(
    keyset_client: tuple[FlaskClient, Any],
) -> None:
    _, build = keyset_client
    client = build(CST_API_DEFAULT_PAGE_SIZE=7).test_client()
    body = client.get("/items").get_json()
    assert len(body["data"]) == 7
    assert body["meta"]["pagination"]["next"].endswith("&limit=7")


def test_resource_links_keep_other_arguments_and_filtering(
    keyset_client: tuple[FlaskClient, Any], sessions: sessionmaker[Session]
) -> None:
    client, _ = keyset_client
    ids, urls = _follow(client, "/items?flag=1&x=a%26b&limit=3", "next")
    assert ids == _reference_ids(sessions, flag=True)
    assert urls[1].startswith(f"{EVENTS}?flag=1&x=a%26b&cursor=")


def test_resource_link_header_mirrors_the_body_links(
    keyset_client: tuple[FlaskClient, Any],
) -> None:
    client, _ = keyset_client
    first = client.get("/items?limit=5")
    second = client.get(first.get_json()["meta"]["pagination"]["next"])
    links = second.get_json()["meta"]["pagination"]
    assert second.headers["Link"] == f'<{links["next"]}>; rel="next", <{links["prev"]}>; rel="prev"'


def _cursor_cases(client: FlaskClient, build: Callable[..., Flask]) -> dict[str, str]:
    good = client.get("/items?limit=2").get_json()["meta"]["pagination"]["next"]
    cursor = good.split("cursor=")[1].split("&")[0]
    other = build(SECRET_KEY="another-secret-of-16-bytes").test_client()
    foreign = other.get("/items?limit=2").get_json()["meta"]["pagination"]["next"]
    return {
        "malformed": "%25%25%25",
        "tampered": cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1],
        "truncated": cursor[:12],
        "other-secret": foreign.split("cursor=")[1].split("&")[0],
        "huge": "A" * 5000,
        "empty": "",
        "repeated": f"{cursor}&cursor={cursor}",
        "nul": "%00",
    }


CURSOR_CASES = [
    "malformed",
    "tampered",
    "truncated",
    "other-secret",
    "huge",
    "empty",
    "repeated",
    "nul",
]


@pytest.mark.parametrize("path", ["/items", "/async-items"])
@pytest.mark.parametrize("case", CURSOR_CASES)
def test_resource_bad_cursor_is_a_400_envelope_with_path_cursor(
    keyset_client: tuple[FlaskClient, Callable[..., Flask]], case: str, path: str
) -> None:
    client, build = keyset_client
    response = client.get(f"{path}?cursor={_cursor_cases(client, build)[case]}")
    assert response.status_code == 400
    body = response.get_json()
    assert [e["path"] for e in body["errors"]] == ["cursor"]
    assert "data" not in body


def test_resource_cursor_of_another_ordering_is_a_400_with_path_cursor(
    keyset_client: tuple[FlaskClient, Any],
) -> None:
    client, _ = keyset_client
    # Correctly signed with the app's secret, but made for another ordering.
    foreign = encode_cursor(CursorPayload("another-ordering", "after", (1,)), ITEMS_SECRET)
    response = client.get(f"/items?cursor={foreign}")
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["path"] == "cursor"


def test_resource_refuses_offset_in_keyset_mode(keyset_client: tuple[FlaskClient, Any]) -> None:
    client, _ = keyset_client
    response = client.get("/items?offset=10")
    assert response.status_code == 400
    assert [e["path"] for e in response.get_json()["errors"]] == ["offset"]


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "101", "1.5"])
def test_resource_bad_limit_is_a_400_with_path_limit(
    keyset_client: tuple[FlaskClient, Any], limit: str
) -> None:
    client, _ = keyset_client
    response = client.get(f"/items?limit={limit}")
    assert response.status_code == 400
    assert [e["path"] for e in response.get_json()["errors"]] == ["limit"]


def test_resource_signs_with_cst_cursor_secret_before_secret_key(
    keyset_client: tuple[FlaskClient, Callable[..., Flask]],
) -> None:
    _, build = keyset_client
    a = build(
        CST_CURSOR_SECRET="cursor-secret-16-bytes", SECRET_KEY="one-app-secret-16-bytes"
    ).test_client()
    b = build(
        CST_CURSOR_SECRET="cursor-secret-16-bytes", SECRET_KEY="two-app-secret-16-bytes"
    ).test_client()
    c = build(SECRET_KEY="one-app-secret-16-bytes").test_client()
    next_url = a.get("/items?limit=3").get_json()["meta"]["pagination"]["next"]
    assert b.get(next_url).status_code == 200
    assert c.get(next_url).status_code == 400


class _KeysetItems(ApiPaginatedMixin, ApiResource):
    pagination_mode = "keyset"

    def get(self) -> Any:
        return []


@pytest.mark.parametrize("resource_first", [False, True], ids=["at-registration", "at-init-app"])
@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({}, "CST_CURSOR_SECRET"),
        ({"SECRET_KEY": "zq"}, "SECRET_KEY"),
        (
            {"SECRET_KEY": "a-long-enough-app-secret", "CST_CURSOR_SECRET": "q9x"},
            "CST_CURSOR_SECRET",
        ),
    ],
)
def test_a_missing_or_short_cursor_secret_fails_whichever_comes_first(
    config: dict[str, str], key: str, resource_first: bool
) -> None:
    # Registered after init_app, the resource is refused as it is added; registered before,
    # init_app refuses the app.
    app = Flask("no-secret")
    app.config.update(config)
    refused: Callable[[], object]
    if resource_first:
        ChassisApi(app).add_resource(_KeysetItems, "/items")
        refused = functools.partial(CstMicroChassis().init_app, app)
    else:
        CstMicroChassis().init_app(app)
        refused = functools.partial(ChassisApi(app).add_resource, _KeysetItems, "/items")
    with pytest.raises(ChassisConfigError, match=key) as info:
        refused()
    for value in config.values():
        assert value not in str(info.value)  # a secret, even a bad one, is never echoed


# Either key alone, long enough, is all a keyset resource needs; a short SECRET_KEY does not
# matter when CST_CURSOR_SECRET is set.
GOOD_SECRET_CONFIGS = [
    {"SECRET_KEY": "a-long-enough-app-secret"},
    {"CST_CURSOR_SECRET": "a-long-enough-cursor-secret"},
    {"CST_CURSOR_SECRET": "a-long-enough-cursor-secret", "SECRET_KEY": "zq"},
]


@pytest.mark.parametrize("resource_first", [True, False])
@pytest.mark.parametrize("config", GOOD_SECRET_CONFIGS)
def test_a_long_enough_cursor_secret_from_either_key_serves_keyset_pages(
    config: dict[str, str], resource_first: bool
) -> None:
    app = Flask("with-secret")
    app.config.update(config)
    api = ChassisApi(app)
    if resource_first:
        api.add_resource(_KeysetItems, "/items")
        CstMicroChassis().init_app(app)
    else:
        CstMicroChassis().init_app(app)
        api.add_resource(_KeysetItems, "/items")
    response = app.test_client().get("/items")
    assert response.status_code == 200
    assert response.get_json()["data"] == []


@pytest.mark.parametrize(
    ("configured", "secret_key", "expected"),
    [
        ("c" * 16, "k" * 16, b"c" * 16),
        ("c" * 16, None, b"c" * 16),
        (None, "k" * 16, b"k" * 16),
        ("", b"k" * 16, b"k" * 16),
        (None, "é" * 8, "é".encode() * 8),  # 8 characters, 16 bytes: the length is in bytes
    ],
)
def test_cursor_secret_is_cst_cursor_secret_else_secret_key_as_bytes(
    configured: str | None, secret_key: str | bytes | None, expected: bytes
) -> None:
    assert cursor_secret(configured, secret_key) == expected


MISSING_SECRET = (
    "keyset pagination signs its cursors: set CST_CURSOR_SECRET (environment or app.config) or "
    "the app's SECRET_KEY, e.g. to secrets.token_urlsafe(32)"
)


@pytest.mark.parametrize(
    ("configured", "secret_key", "key", "message"),
    [
        (None, None, "SECRET_KEY", MISSING_SECRET),
        ("", "", "SECRET_KEY", MISSING_SECRET),
        (None, "k" * 15, "SECRET_KEY", "SECRET_KEY is 15 bytes"),
        (None, b"k" * 15, "SECRET_KEY", "SECRET_KEY is 15 bytes"),
        (None, "é" * 7 + "k", "SECRET_KEY", "SECRET_KEY is 15 bytes"),
        ("c" * 15, "k" * 32, "CST_CURSOR_SECRET", "CST_CURSOR_SECRET is 15 bytes"),
    ],
)
def test_a_missing_or_short_cursor_secret_is_a_cursor_secret_error_naming_the_key(
    configured: str | None, secret_key: str | bytes | None, key: str, message: str
) -> None:
    with pytest.raises(CursorSecretError) as info:
        cursor_secret(configured, secret_key)
    error = info.value
    assert isinstance(error, ChassisConfigError)
    assert (error.key, error.value) == (key, None)
    if message == MISSING_SECRET:
        assert str(error) == MISSING_SECRET
    else:
        assert str(error) == (
            f"{message}, too short to sign keyset cursors (one cursor is enough to guess it "
            "offline): use at least 16 random bytes, e.g. secrets.token_urlsafe(32)"
        )


def test_an_offset_resource_needs_no_cursor_secret() -> None:
    app = Flask("no-secret")
    CstMicroChassis().init_app(app)

    class Offset(ApiPaginatedMixin, ApiResource):
        def get(self) -> Any:
            return []

    ChassisApi(app).add_resource(Offset, "/items")
    assert app.test_client().get("/items").status_code == 200


def test_resource_pages_a_legacy_query_by_keyset(
    make_app: AppFactory, sessions: sessionmaker[Session]
) -> None:
    _fill(sessions, _rows(9))

    class LegacyItems(ApiPaginatedMixin, ApiResource):
        pagination_mode = "keyset"

        def get(self) -> Any:
            with sessions() as session:
                query = session.query(Item).order_by(Item.a.desc(), Item.b)
                return [item.id for item in self.get_paginated_query_result(query)]

    app = make_app(SECRET_KEY=APP_SECRET)
    ChassisApi(app).add_resource(LegacyItems, "/items")
    ids, _ = _follow(app.test_client(), "/items?limit=4", "next")
    assert ids == _reference_ids(sessions)


def test_keyset_mode_with_total_is_refused_at_class_definition() -> None:
    with pytest.raises(TypeError, match="total"):

        class Counted(ApiPaginatedMixin, ApiResource):
            pagination_mode = "keyset"
            pagination_with_total = True


# ---- forged but signed cursors -----------------------------------------------------------

# (value for the Integer column ``a``, refused on SQLite, refused on PostgreSQL)
FORGED_INTS: list[tuple[str, Any, bool, bool]] = [
    ("nan", float("nan"), True, True),
    ("inf", float("inf"), True, True),
    ("-inf", float("-inf"), True, True),
    ("fraction", 1.5, True, True),
    ("decimal-nan", decimal.Decimal("NaN"), True, True),
    ("huge-decimal", decimal.Decimal("1E+999999"), True, True),
    ("2**31", 2**31, False, True),
    ("-2**31-1", -(2**31) - 1, False, True),
    ("2**63", 2**63, True, True),
    ("10**30", 10**30, True, True),
]
# (value for the String column ``b``, refused on SQLite, refused on PostgreSQL)
FORGED_STRINGS: list[tuple[str, str, bool, bool]] = [
    ("nul", "a\x00b", False, True),
    ("lone-surrogate", "\ud800", True, True),
]


def _forged(session: Session, a: Any, b: Any) -> str:
    stmt = sa.select(Item).order_by(Item.a, Item.b)
    fingerprint = _fingerprint(session, stmt)
    if isinstance(b, str) and any("\ud800" <= ch <= "\udfff" for ch in b):
        # encode_cursor cannot carry a lone surrogate; a forger writes the JSON escape by hand
        # and signs it, as only a holder of the secret could.
        body = json.dumps({"o": fingerprint, "d": "a", "k": [["i", str(a)], ["s", b], ["i", "1"]]})
        key = hmac.new(SECRET, b"cst-chassis keyset cursor v1", hashlib.sha256).digest()
        message = b"\x01" + body.encode("ascii")
        mac = hmac.new(key, message, hashlib.sha256).digest()[:16]
        raw = b"\x01" + mac + body.encode("ascii")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    return encode_cursor(CursorPayload(fingerprint, "after", (a, b, 1)), SECRET)


@pytest.mark.parametrize(
    ("a", "b", "on_sqlite", "on_postgresql"),
    [pytest.param(v, "x", s, p, id=name) for name, v, s, p in FORGED_INTS]
    + [pytest.param(1, v, s, p, id=name) for name, v, s, p in FORGED_STRINGS],
)
def test_a_signed_cursor_whose_values_the_columns_cannot_hold_is_refused_without_a_query(
    sessions: sessionmaker[Session],
    database: Database,
    a: Any,
    b: Any,
    on_sqlite: bool,
    on_postgresql: bool,
) -> None:
    _fill(sessions, _rows(6))
    refused = on_postgresql if database.kind == "postgresql" else on_sqlite
    stmt = sa.select(Item).order_by(Item.a, Item.b)
    with sessions() as session:
        cursor = _forged(session, a, b)
        statements: list[str] = []
        engine = session.get_bind()
        sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        if not refused:  # in range for this database: an ordinary (maybe empty) page
            paginate_keyset(session, stmt, cursor=cursor, secret=SECRET)
            assert len(statements) >= 1
            return
        with pytest.raises(InvalidCursorError) as info:
            paginate_keyset(session, stmt, cursor=cursor, secret=SECRET)
    assert info.value.path == "cursor"
    assert statements == []


def test_resource_forged_cursor_value_is_a_400_with_path_cursor(
    keyset_client: tuple[FlaskClient, Any], sessions: sessionmaker[Session]
) -> None:
    client, _ = keyset_client
    with sessions() as session:
        stmt = sa.select(Item).order_by(Item.a.desc(), Item.b)
        fingerprint = _fingerprint(session, stmt)
    forged = encode_cursor(CursorPayload(fingerprint, "after", (2**63, "x", 1)), ITEMS_SECRET)
    response = client.get(f"/items?cursor={forged}")
    assert response.status_code == 400
    assert response.get_json()["errors"] == [
        {"message": "The cursor holds a value out of range for its column", "path": "cursor"}
    ]


def test_resource_verifies_the_cursor_signature_once_per_request(
    keyset_client: tuple[FlaskClient, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = keyset_client
    next_url = client.get("/items?limit=3").get_json()["meta"]["pagination"]["next"]
    checks: list[bytes] = []
    compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        checks.append(a)
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    assert client.get(next_url).status_code == 200
    assert len(checks) == 1


# ---- ordering: unique keys, fingerprints, refused statements ------------------------------


class Coded(Base):
    """Unique keys of every kind: NOT NULL and nullable columns, a pair, a unique index."""

    __tablename__ = "keyset_coded"
    __table_args__ = (
        sa.UniqueConstraint("pa", "pb"),
        sa.Index("ix_keyset_coded_serial", "serial", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    code: Mapped[str] = mapped_column(sa.String(20), unique=True)
    label: Mapped[str | None] = mapped_column(sa.String(20), unique=True)
    pa: Mapped[int]
    pb: Mapped[int]
    serial: Mapped[int]


def _fill_coded(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        session.execute(sa.delete(Coded))
        session.add_all(
            Coded(
                id=n,
                code=f"c{n * 7 % 10}",
                label=None if n % 3 == 0 else f"l{n}",
                pa=n % 3,
                pb=n // 3,
                serial=n * 3 % 10,
            )
            for n in range(10)
        )


def _order_by_of_last_query(statements: list[tuple[str, object]]) -> str:
    sql = " ".join(statements[-1][0].split())
    return sql.split(" ORDER BY ")[1].split(" LIMIT ")[0]


@pytest.mark.parametrize(
    ("name", "appended"),
    [
        ("code", False),
        ("serial-desc", False),
        ("pair", False),
        ("pair-reversed", False),
        ("nullable-unique-label", True),  # NULLs may repeat: not a total order
        ("half-a-pair", True),
        ("pair-around-a-key-running-the-other-way", False),
    ],
)
def test_an_ordering_already_total_by_a_unique_key_gets_no_primary_key_appended(
    sessions: sessionmaker[Session], name: str, appended: bool
) -> None:
    orderings: dict[str, Ordering] = {
        "code": [Coded.code],
        "serial-desc": [Coded.serial.desc()],
        "pair": [Coded.pa, Coded.pb],
        "pair-reversed": [Coded.pb.desc(), Coded.pa],
        "nullable-unique-label": [Coded.label],
        "half-a-pair": [Coded.pa],
        "pair-around-a-key-running-the-other-way": [
            Coded.pa.desc(),
            Coded.serial.nulls_last(),
            Coded.pb.desc(),
        ],
    }
    keys = orderings[name]
    _fill_coded(sessions)
    stmt = sa.select(Coded).order_by(*keys)
    with sessions() as session:
        first = paginate_keyset(session, stmt, limit=4, secret=SECRET)
        assert first.next_cursor is not None
        with captured_statements(session.get_bind()) as statements:  # type: ignore[arg-type]  # an Engine here
            paginate_keyset(session, stmt, cursor=first.next_cursor, limit=4, secret=SECRET)
        forward, backward = _walk(session, stmt, limit=3)
        last_desc = _is_desc(keys[-1])
        reference = list(
            session.scalars(
                sa.select(Coded.id).order_by(*keys, Coded.id.desc() if last_desc else Coded.id)
            )
        )
    assert ("keyset_coded.id" in _order_by_of_last_query(statements)) is appended
    values = decode_cursor(first.next_cursor, SECRET, ordering=None).values
    assert len(values) == len(keys) + appended
    assert _ids(forward) == reference
    assert _ids(list(reversed(backward))) == reference


def _expected_fingerprint(*lines: str) -> str:
    digest = hashlib.sha256("\n".join(lines).encode("utf-8")).digest()[:12]
    return base64.urlsafe_b64encode(digest).decode("ascii")


def test_the_ordering_fingerprint_is_made_of_names_and_directions_only(
    sessions: sessionmaker[Session], database: Database
) -> None:
    # Cursors outlive processes and deploys, so what identifies their ordering is spelled from
    # names, directions and NULL placement (one line per key, "<desc><nulls high><name>"),
    # never from object ids; written out here by hand.
    _fill(sessions, _rows(10))
    high = int(database.kind == "postgresql")  # NULLs sort high there unless told otherwise
    cases: list[tuple[Ordering, list[str]]] = [
        (
            [Item.a.desc(), Item.b],
            [f"1{high}keyset_item.a", f"0{high}keyset_item.b", f"0{high}keyset_item.id"],
        ),
        (
            [Item.a.nulls_last(), Item.b.desc().nulls_last()],
            ["01keyset_item.a", "10keyset_item.b", f"1{high}keyset_item.id"],
        ),
        (
            [sa.func.coalesce(Item.a, 2).desc()],
            [f"1{high}coalesce(keyset_item.a, 2)", f"1{high}keyset_item.id"],
        ),
    ]
    with sessions() as session:
        for ordering, lines in cases:
            page = paginate_keyset(
                session, sa.select(Item).order_by(*ordering), limit=2, secret=SECRET
            )
            assert page.next_cursor is not None
            payload = decode_cursor(page.next_cursor, SECRET, ordering=None)
            assert payload.ordering == _expected_fingerprint(*lines)


def test_a_cursor_of_the_same_keys_with_other_null_placement_is_refused(
    sessions: sessionmaker[Session],
) -> None:
    _fill(sessions, _rows(10))
    with sessions() as session:
        first = paginate_keyset(
            session, sa.select(Item).order_by(Item.a.nulls_last()), limit=2, secret=SECRET
        )
        for other in (Item.a.nulls_first(), Item.a.desc().nulls_last()):
            with pytest.raises(InvalidCursorError, match=f"^{OTHER_ORDERING}$"):
                paginate_keyset(
                    session,
                    sa.select(Item).order_by(other),
                    cursor=first.next_cursor,
                    secret=SECRET,
                )


LIMIT_OR_OFFSET = (
    "paginate_keyset sets LIMIT itself and cannot honour OFFSET: remove .limit()/.offset() from "
    "the statement"
)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("limit", LIMIT_OR_OFFSET),
        ("offset", LIMIT_OR_OFFSET),
        ("limit-and-offset", LIMIT_OR_OFFSET),
        (
            "text",
            "keyset pagination needs column expressions in ORDER BY (order_by(User.name)), not "
            "text or label names",
        ),
        (
            "no-total-order",
            "keyset pagination needs a total ordering: order by a unique column last, or select "
            "a mapped entity (or table) with a primary key so it can be appended",
        ),
    ],
)
def test_a_statement_keyset_cannot_page_is_refused_with_a_message_saying_why(
    sessions: sessionmaker[Session], name: str, message: str
) -> None:
    lowered = sa.func.lower(Item.__table__.c.b)
    stmt: sa.Select[Any] = {
        "limit": sa.select(Item).order_by(Item.a).limit(5),
        "offset": sa.select(Item).order_by(Item.a).offset(5),
        "limit-and-offset": sa.select(Item).order_by(Item.a).limit(5).offset(5),
        "text": sa.select(Item).order_by(sa.text("a")),
        "no-total-order": sa.select(lowered).order_by(lowered),
    }[name]
    with sessions() as session, pytest.raises(ChassisError) as info:
        paginate_keyset(session, stmt, secret=SECRET)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("limit", "secret", "error", "message"),
    [
        (0, SECRET, InvalidPaginationError, "limit must be a positive integer"),
        (True, SECRET, InvalidPaginationError, "limit must be a positive integer"),
        (2.5, SECRET, InvalidPaginationError, "limit must be a positive integer"),
        ("5", SECRET, InvalidPaginationError, "limit must be a positive integer"),
        (5, "text-secret", TypeError, "paginate_keyset(secret=...) must be bytes"),
        (5, b"", ValueError, "paginate_keyset(secret=...) must not be empty"),
    ],
)
def test_bad_arguments_are_refused_with_a_message_naming_them(
    sessions: sessionmaker[Session], limit: Any, secret: Any, error: type[Exception], message: str
) -> None:
    stmt = sa.select(Item).order_by(Item.a)
    with sessions() as session, pytest.raises(error) as info:
        paginate_keyset(session, stmt, limit=limit, secret=secret)
    assert str(info.value) == message
    if isinstance(info.value, InvalidPaginationError):
        assert info.value.path == "limit"


def test_a_limit_of_one_pages_one_row_at_a_time(sessions: sessionmaker[Session]) -> None:
    _fill(sessions, _rows(4))
    with sessions() as session:
        forward, _ = _walk(session, sa.select(Item).order_by(Item.id), limit=1)
    assert [_ids([page]) for page in forward] == [[1], [2], [3], [4]]


def test_the_default_page_size_is_25(sessions: sessionmaker[Session]) -> None:
    _fill(sessions, _rows(30))
    with sessions() as session:
        page = paginate_keyset(session, sa.select(Item).order_by(Item.id), secret=SECRET)
    assert (len(page), page.limit, page.has_next) == (25, 25, True)


# ---- what the page queries look like ------------------------------------------------------


def _sql(statements: list[tuple[str, object]]) -> list[str]:
    # One line each, with every dialect's placeholder spelled "?".
    return [
        re.sub(r"(%\(\w+\)s|\$\d+)(::\w+)?", "?", " ".join(sql.split())) for sql, _ in statements
    ]


def _typed_session(database: Database) -> Session:
    engine = database.engine()
    Base.metadata.create_all(engine)
    session = Session(engine)
    session.add_all(_typed_rows())
    session.commit()
    return session


@pytest.mark.parametrize(
    ("name", "where"),
    [
        # NOT NULL keys running one way: one row-value range (an index on them serves it).
        ("i-s", "WHERE (keyset_typed.i, keyset_typed.s, keyset_typed.id) > (?, ?, ?)"),
        ("i-s-desc", "WHERE (keyset_typed.i, keyset_typed.s, keyset_typed.id) < (?, ?, ?)"),
        ("id", "WHERE keyset_typed.id > ?"),
        # Mixed directions: the OR form, under a bound on the leading key.
        (
            "i-s-mixed",
            "WHERE keyset_typed.i >= ? AND (keyset_typed.i > ? OR keyset_typed.i = ? AND "
            "(keyset_typed.s < ? OR keyset_typed.s = ? AND keyset_typed.id < ?))",
        ),
        (
            "i-s-mixed-nulls-first",
            "WHERE keyset_typed.i >= ? AND (keyset_typed.i > ? OR keyset_typed.i = ? AND "
            "(keyset_typed.s < ? OR keyset_typed.s = ? AND keyset_typed.id < ?))",
        ),
    ],
)
def test_the_seek_is_one_index_range_on_the_leading_key(
    database: Database, name: str, where: str
) -> None:
    orderings: dict[str, Ordering] = {
        "i-s": [Typed.i, Typed.s],
        "i-s-desc": [Typed.i.desc(), Typed.s.desc()],
        "id": [Typed.id],
        "i-s-mixed": [Typed.i, Typed.s.desc()],
        "i-s-mixed-nulls-first": [Typed.i, Typed.s.desc().nulls_first()],
    }
    keys = orderings[name]
    stmt = sa.select(Typed).order_by(*keys)
    with _typed_session(database) as session:
        first = paginate_keyset(session, stmt, limit=3, secret=SECRET)
        with captured_statements(session.get_bind()) as statements:  # type: ignore[arg-type]  # an Engine here
            paginate_keyset(session, stmt, cursor=first.next_cursor, limit=3, secret=SECRET)
    (sql,) = _sql(statements)
    assert f" {where} ORDER BY " in sql
    if "nulls" not in name:
        assert "NULLS" not in sql  # no NULL placement was asked for, so none is added


def test_a_nullable_later_key_is_sought_under_a_bound_on_the_leading_key(
    sessions: sessionmaker[Session],
) -> None:
    _fill(sessions, _rows(20))
    stmt = sa.select(Item).where(Item.a.is_not(None)).order_by(Item.a, Item.b)
    with sessions() as session:
        first = paginate_keyset(session, stmt, limit=3, secret=SECRET)
        with captured_statements(session.get_bind()) as statements:  # type: ignore[arg-type]  # an Engine here
            paginate_keyset(session, stmt, cursor=first.next_cursor, limit=3, secret=SECRET)
    sql = _sql(statements)[0]
    assert "keyset_item.a >= ? AND (keyset_item.a > ? OR keyset_item.a = ? AND " in sql
    assert "(keyset_item.a, " not in sql


def test_a_page_that_reaches_the_nulls_asks_the_second_query_only_for_what_it_lacks(
    sessions: sessionmaker[Session],
) -> None:
    # a = 6..1 then NULL: a page of 4 after a=4 takes a=3, 2, 1 from the values, then asks the
    # NULLs for 2 rows (1 for the page, 1 to know there is more).
    _fill(
        sessions,
        [
            {"id": n, "a": n if n <= 6 else None, "b": "x", "c": None, "flag": None}
            for n in range(1, 11)
        ],
    )
    stmt = sa.select(Item).order_by(Item.a.desc().nulls_last())
    with sessions() as session:
        first = paginate_keyset(session, stmt, limit=3, secret=SECRET)
        assert _ids([first]) == [6, 5, 4]
        with captured_statements(session.get_bind()) as statements:  # type: ignore[arg-type]  # an Engine here
            page = paginate_keyset(session, stmt, cursor=first.next_cursor, limit=4, secret=SECRET)
    assert _ids([page]) == [3, 2, 1, 10]
    assert page.has_next
    assert [_limit_of(sql, parameters) for sql, parameters in statements] == [5, 2]
    # Within each range the NULL placement is moot: an index in the dialect's order serves it.
    assert all("NULLS" not in sql for sql in _sql(statements))


def test_a_page_filled_exactly_by_the_values_still_looks_into_the_nulls_for_a_next_page(
    sessions: sessionmaker[Session],
) -> None:
    _fill(
        sessions,
        [
            {"id": n, "a": n if n <= 6 else None, "b": "x", "c": None, "flag": None}
            for n in range(1, 11)
        ],
    )
    stmt = sa.select(Item).order_by(Item.a.desc().nulls_last())
    with sessions() as session:
        first = paginate_keyset(session, stmt, limit=2, secret=SECRET)
        second = paginate_keyset(session, stmt, cursor=first.next_cursor, limit=4, secret=SECRET)
    assert _ids([second]) == [4, 3, 2, 1]
    assert second.has_next and second.next_cursor is not None


def _limit_of(sql: str, parameters: object) -> Any:
    """The LIMIT a statement was sent with: a named (psycopg) or positional (sqlite3) parameter."""
    if isinstance(parameters, dict):
        match = re.search(r"LIMIT %\((\w+)\)s", sql)
        assert match is not None
        return parameters[match.group(1)]
    assert isinstance(parameters, tuple | list)
    return parameters[sql[: sql.index(" LIMIT ")].count("?")]


def test_an_aggregate_ordering_is_sought_in_having(sessions: sessionmaker[Session]) -> None:
    # Items by how many items share their a: the seek on count() must go into HAVING.
    _fill(sessions, _rows(20))
    other = sa.orm.aliased(Item)
    count = sa.func.count(other.id)
    stmt = (
        sa.select(Item).outerjoin(other, other.a == Item.a).group_by(Item.id).order_by(count.desc())
    )
    with sessions() as session:
        first = paginate_keyset(session, stmt, limit=3, secret=SECRET)
        with captured_statements(session.get_bind()) as statements:  # type: ignore[arg-type]  # an Engine here
            paginate_keyset(session, stmt, cursor=first.next_cursor, limit=3, secret=SECRET)
        forward, backward = _walk(session, stmt, limit=3)
        reference = list(
            session.scalars(
                sa.select(Item.id)
                .outerjoin(other, other.a == Item.a)
                .group_by(Item.id)
                .order_by(count.desc(), Item.id.desc())
            )
        )
    assert " HAVING " in _sql(statements)[0]
    assert _ids(forward) == reference
    assert _ids(list(reversed(backward))) == reference


def test_a_not_null_column_of_an_outer_joined_table_is_treated_as_nullable(
    sessions: sessionmaker[Session],
) -> None:
    _fill(sessions, _rows(12))
    with sessions.begin() as session:
        session.execute(sa.delete(Painted))
        session.add_all(Painted(id=n, color=list(Color)[n % 3]) for n in range(1, 7))
    ordering: Ordering = [Painted.color.desc()]
    stmt = sa.select(Item).outerjoin(Painted, Painted.id == Item.id).order_by(*ordering)
    with sessions() as session:
        forward, backward = _walk(session, stmt, limit=3)
        reference = list(
            session.scalars(
                sa.select(Item.id)
                .outerjoin(Painted, Painted.id == Item.id)
                .order_by(Painted.color.desc(), Item.id.desc())
            )
        )
    assert _ids(forward) == reference
    assert _ids(list(reversed(backward))) == reference


def test_a_select_of_one_column_pages_its_values(sessions: sessionmaker[Session]) -> None:
    _fill(sessions, _rows(7))
    table = Item.__table__
    for stmt in (
        sa.select(Item.id).order_by(Item.a.desc()),
        sa.select(table.c.id).order_by(table.c.a.desc()),
    ):
        with sessions() as session:
            first = paginate_keyset(session, stmt, limit=4, secret=SECRET)
            second = paginate_keyset(
                session, stmt, cursor=first.next_cursor, limit=4, secret=SECRET
            )
            reference = _reference(session, [Item.a.desc()])
        assert list(first) + list(second) == reference
        assert all(type(value) is int for value in first)


# ---- empty pages (rows deleted between requests) ------------------------------------------


def test_empty_pages_point_back_across_their_boundary(sessions: sessionmaker[Session]) -> None:
    stmt = sa.select(Item).order_by(Item.id)

    def keep(ids: Sequence[int]) -> None:
        _fill(sessions, [row for row in _rows(10) if row["id"] in ids])

    with sessions() as session:

        def page(cursor: str | None) -> Page[Any]:
            session.expire_all()
            return paginate_keyset(session, stmt, cursor=cursor, limit=5, secret=SECRET)

        keep(range(1, 11))
        first = page(None)  # 1..5, next: after 5
        keep(range(1, 6))  # everything after the boundary row goes; the row itself stays
        after = page(first.next_cursor)
        assert (list(after), after.has_next, after.next_cursor, after.has_prev) == (
            [],
            False,
            None,
            True,
        )
        assert _ids([page(after.prev_cursor)]) == [1, 2, 3, 4, 5]  # back includes the boundary row

        keep([])  # now the boundary row is gone too: the page that included it is empty as well
        back = page(after.prev_cursor)
        assert (list(back), back.has_prev, back.prev_cursor) == ([], False, None)
        keep([5, 6, 7])
        assert _ids([page(back.next_cursor)]) == [6, 7]  # forward again excludes the boundary

        keep(range(1, 11))
        second = page(first.next_cursor)  # 6..10, prev: before 6
        keep(range(6, 11))  # everything before the boundary row goes; the row itself stays
        before = page(second.prev_cursor)
        assert (list(before), before.has_prev, before.prev_cursor) == ([], False, None)
        assert before.has_next
        assert _ids([page(before.next_cursor)]) == [6, 7, 8, 9, 10]  # includes the boundary

        keep([])  # the boundary row goes too: the page that included it is empty as well
        at_or_after = page(before.next_cursor)
        assert (list(at_or_after), at_or_after.has_next, at_or_after.next_cursor) == (
            [],
            False,
            None,
        )
        keep([4, 5, 6])
        assert _ids([page(at_or_after.prev_cursor)]) == [4, 5]  # back again excludes it


# ---- forged cursors against every kind of column --------------------------------------------


class Cents(sa.TypeDecorator[int]):
    """An Integer column under a TypeDecorator."""

    impl = sa.Integer
    cache_ok = True


class Ranged(Base):
    __tablename__ = "keyset_ranged"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    small: Mapped[int] = mapped_column(sa.SmallInteger)
    big: Mapped[int] = mapped_column(sa.BigInteger)
    cents: Mapped[int] = mapped_column(Cents)
    f: Mapped[float]
    n: Mapped[decimal.Decimal] = mapped_column(sa.Numeric(12, 4))


D = decimal.Decimal
# (column, value, refused on SQLite, refused on PostgreSQL): SQLite integers are 64-bit and it
# has no infinities or NaN; on PostgreSQL SMALLINT is 16-bit, INTEGER 32-bit, and NUMERIC
# holds up to 131072 digits before the point and 16383 after, NaN and infinities too.
RANGES: list[tuple[str, Any, bool, bool]] = [
    ("small", 2**15 - 1, False, False),
    ("small", 2**15, False, True),
    ("small", -(2**15), False, False),
    ("small", -(2**15) - 1, False, True),
    ("big", 2**63 - 1, False, False),
    ("big", 2**63, True, True),
    ("big", -(2**63), False, False),
    ("big", -(2**63) - 1, True, True),
    ("cents", 2**31 - 1, False, False),
    ("cents", 2**31, False, True),
    ("cents", -(2**31), False, False),
    ("cents", 1.5, True, True),
    ("cents", D("2"), True, True),
    ("f", 2**62, False, False),
    ("f", -(2**63), False, False),
    ("f", -(2**63) - 1, True, False),
    ("f", 2**63, True, False),
    ("f", 2**1023 - 1, True, False),
    ("f", 2**1023, True, True),
    ("f", float("inf"), True, False),
    ("f", float("-inf"), True, False),
    ("f", float("nan"), True, False),
    ("f", D("1.5"), False, False),
    ("f", D("1E+307"), False, False),
    ("f", D("-1E+307"), False, False),
    ("f", D("1E+308"), True, True),
    ("f", D("1E-308"), False, False),
    ("f", D("1E-309"), True, True),
    ("f", D("0E-500"), False, False),
    ("f", D("NaN"), True, False),
    ("n", 1.5, False, False),
    ("n", 2**62, False, False),
    ("n", 2**70, True, False),
    ("n", D("1E+307"), False, False),
    ("n", D("1E+308"), True, False),
    ("n", D("1E-308"), False, False),
    ("n", D("1E-309"), True, False),
    ("n", D("0E-500"), False, False),
    ("n", D("1E+131071"), True, False),
    ("n", D("1E+131072"), True, True),
    ("n", D("1E-16383"), True, False),
    ("n", D("1E-16384"), True, True),
    ("n", D("NaN"), True, False),
    ("n", D("-Infinity"), True, False),
    ("n", float("inf"), True, False),
]


@pytest.mark.parametrize(
    ("column", "value", "on_sqlite", "on_postgresql"),
    [pytest.param(*case, id=f"{case[0]}={case[1]!r}") for case in RANGES],
)
def test_a_signed_cursor_value_is_refused_exactly_when_the_column_cannot_compare_with_it(
    database: Database, column: str, value: Any, on_sqlite: bool, on_postgresql: bool
) -> None:
    engine = database.engine()
    Base.metadata.create_all(engine)
    refused = on_postgresql if database.kind == "postgresql" else on_sqlite
    with Session(engine) as session:
        session.add_all(
            Ranged(id=n, small=n, big=n, cents=n, f=n / 2, n=D(n) / 3) for n in range(1, 6)
        )
        session.commit()
        stmt = sa.select(Ranged).order_by(getattr(Ranged, column))
        cursor = encode_cursor(
            CursorPayload(_fingerprint(session, stmt), "after", (value, 1)), SECRET
        )
        with captured_statements(engine) as statements:
            if not refused:  # the database compares it: an ordinary page, never an error
                page = paginate_keyset(session, stmt, cursor=cursor, secret=SECRET)
                assert len(statements) >= 1
                assert all(isinstance(row, Ranged) for row in page)
                return
            with pytest.raises(InvalidCursorError) as info:
                paginate_keyset(session, stmt, cursor=cursor, secret=SECRET)
    assert info.value.message == "The cursor holds a value out of range for its column"
    assert statements == []


def test_a_first_page_reads_values_and_nulls_as_two_ranges_only_against_the_dialect_order(
    sessions: sessionmaker[Session], database: Database
) -> None:
    # 4 values and 4 NULLs of a: a first page of 10 needs both. Where the statement puts NULLs
    # where the dialect's index has them, that is one query; against it, one per range, and
    # within a range the NULL placement of a is moot, so the ORDER BY leaves it to the index
    # (that of b still counts).
    _fill(
        sessions,
        [
            {"id": n, "a": n if n <= 4 else None, "b": "xy"[n % 2] if n % 3 else None}
            | {"c": None, "flag": None}
            for n in range(1, 9)
        ],
    )
    if database.kind == "postgresql":
        against: Ordering = [Item.a.nulls_first(), Item.b.nulls_first()]
    else:
        against = [Item.a.nulls_last(), Item.b.nulls_last()]
    with sessions() as session:
        engine = session.get_bind()
        with captured_statements(engine) as along:  # type: ignore[arg-type]  # an Engine here
            plain = paginate_keyset(
                session, sa.select(Item).order_by(Item.a), limit=10, secret=SECRET
            )
        with captured_statements(engine) as split:  # type: ignore[arg-type]  # an Engine here
            page = paginate_keyset(
                session, sa.select(Item).order_by(*against), limit=10, secret=SECRET
            )
        assert _ids([plain]) == _reference(session, [Item.a])
        assert _ids([page]) == _reference(session, against)
    assert len(along) == 1
    assert " IS NULL" not in _sql(along)[0] and " IS NOT NULL" not in _sql(along)[0]
    wheres = [sql.split(" WHERE ")[1].split(" ORDER BY ")[0] for sql in _sql(split)]
    if database.kind == "postgresql":  # NULLs first, then the values
        assert wheres == ["keyset_item.a IS NULL", "keyset_item.a IS NOT NULL"]
        b_order = "keyset_item.b ASC NULLS FIRST"
    else:
        assert wheres == ["keyset_item.a IS NOT NULL", "keyset_item.a IS NULL"]
        b_order = "keyset_item.b ASC NULLS LAST"
    for sql in _sql(split):
        order_by = sql.split(" ORDER BY ")[1].split(" LIMIT ")[0]
        assert order_by == f"keyset_item.a ASC, {b_order}, keyset_item.id ASC"


def test_a_cursor_including_its_boundary_row_pages_from_that_row(
    sessions: sessionmaker[Session],
) -> None:
    # at_or_after / at_or_before cursors (an empty page hands them out, pointing back across a
    # boundary that may be gone): the page starts, or ends, at the boundary row itself.
    _fill(sessions, _rows(30))
    for name in sorted(ORDERINGS):
        ordering = ORDERINGS[name]()
        stmt = sa.select(Item).order_by(*ordering)
        with sessions() as session:
            expected = _reference(session, ordering)
            forward, _ = _walk(session, stmt, limit=4)
            for index, page in enumerate(forward[:-1]):
                assert page.next_cursor is not None
                payload = decode_cursor(page.next_cursor, SECRET, ordering=None)
                boundary = 4 * index + 3  # the last row of this page
                inclusive: list[tuple[Direction, list[int]]] = [
                    ("at_or_after", expected[boundary : boundary + 4]),
                    ("at_or_before", expected[max(boundary - 3, 0) : boundary + 1]),
                ]
                for direction, rows in inclusive:
                    cursor = encode_cursor(
                        CursorPayload(payload.ordering, direction, payload.values), SECRET
                    )
                    got = paginate_keyset(session, stmt, cursor=cursor, limit=4, secret=SECRET)
                    assert _ids([got]) == rows, (name, index, direction)


def test_a_session_that_binds_per_mapper_is_asked_for_the_statement_s_bind(
    database: Database,
) -> None:
    # A session with several databases (binds per mapper) has no single bind: the statement
    # itself says which engine, and so which dialect, pages it.
    engine = database.engine()
    Base.metadata.create_all(engine)
    with Session(engine) as writer:
        writer.execute(sa.insert(Item), _rows(9))
        writer.commit()
    stmt = sa.select(Item).order_by(Item.a.desc())
    with Session(binds={Item: engine}) as session:
        forward, _ = _walk(session, stmt, limit=4)
        expected = _reference(session, [Item.a.desc()])
    assert _ids(forward) == expected

    async def walk_async() -> tuple[list[int], list[str]]:
        async_engine = database.async_engine()
        try:
            with captured_statements(async_engine.sync_engine) as statements:
                async with AsyncSession(binds={Item: async_engine}) as session:
                    page = await paginate_keyset_async(session, stmt, limit=4, secret=SECRET)
                    ids = [item.id for item in page]
                    while page.next_cursor is not None:
                        page = await paginate_keyset_async(
                            session, stmt, cursor=page.next_cursor, limit=4, secret=SECRET
                        )
                        ids += [item.id for item in page]
                        assert len(ids) <= 9, "the walk does not end"
            return ids, _sql(statements)
        finally:
            await async_engine.dispose()

    ids, sql = asyncio.run(walk_async())
    assert ids == expected
    # The dialect is known: a later page seeks with a row-value range (a, id) < (...).
    assert any("(keyset_item.a, keyset_item.id) < (?, ?)" in s for s in sql)


def test_async_a_page_filled_exactly_by_the_values_still_looks_into_the_nulls(
    sessions: sessionmaker[Session], database: Database
) -> None:
    _fill(
        sessions,
        [
            {"id": n, "a": n if n <= 6 else None, "b": "x", "c": None, "flag": None}
            for n in range(1, 11)
        ],
    )
    stmt = sa.select(Item).order_by(Item.a.desc().nulls_last())

    async def run() -> Page[Any]:
        async_engine = database.async_engine()
        try:
            async with AsyncSession(async_engine) as session:
                first = await paginate_keyset_async(session, stmt, limit=2, secret=SECRET)
                return await paginate_keyset_async(
                    session, stmt, cursor=first.next_cursor, limit=4, secret=SECRET
                )
        finally:
            await async_engine.dispose()

    second = asyncio.run(run())
    assert _ids([second]) == [4, 3, 2, 1]
    assert second.has_next and second.next_cursor is not None


@pytest.mark.parametrize(
    "name",
    [
        "i-desc-s-nulls-last-f-desc",  # a middle key against the others' direction
        "s-nulls-first-i-desc",
        "day-desc-ts-u",
    ],
)
def test_orderings_of_not_null_columns_walk_like_the_plain_ordered_query(
    database: Database, name: str
) -> None:
    orderings: dict[str, Ordering] = {
        "i-desc-s-nulls-last-f-desc": [Typed.i.desc(), Typed.s.nulls_last(), Typed.f.desc()],
        "s-nulls-first-i-desc": [Typed.s.nulls_first(), Typed.i.desc()],
        "day-desc-ts-u": [Typed.day.desc(), Typed.ts, Typed.u],
    }
    keys = orderings[name]
    stmt = sa.select(Typed).order_by(*keys)
    last = Typed.id.desc() if _is_desc(keys[-1]) else Typed.id
    with _typed_session(database) as session:
        forward, backward = _walk(session, stmt, limit=3)
        reference = list(session.scalars(sa.select(Typed.id).order_by(*keys, last)))
    assert _ids(forward) == reference
    assert _ids(list(reversed(backward))) == reference


@pytest.mark.parametrize("name", ["a-nulls-first", "a-desc-nulls-last", "a-nulls-last"])
def test_a_seek_from_a_null_boundary_leaves_the_null_placement_to_the_index(
    sessions: sessionmaker[Session], name: str
) -> None:
    # Every range a seek reads fixes whether a is NULL, so its explicit NULLS FIRST/LAST is
    # moot there and left out: an index in the dialect's own NULL order serves each query.
    ordering: Ordering = {
        "a-nulls-first": [Item.a.nulls_first()],
        "a-desc-nulls-last": [Item.a.desc().nulls_last()],
        "a-nulls-last": [Item.a.nulls_last()],
    }[name]
    _fill(sessions, _rows(20))
    stmt = sa.select(Item).order_by(*ordering)
    with sessions() as session:
        first = paginate_keyset(session, stmt, limit=2, secret=SECRET)
        with captured_statements(session.get_bind()) as statements:  # type: ignore[arg-type]  # an Engine here
            forward, backward = _walk(session, stmt, limit=2)
        reference = _reference(session, ordering)
    assert _ids(forward) == reference
    assert _ids(list(reversed(backward))) == reference
    assert first.next_cursor is not None
    seeks = [sql for sql in _sql(statements) if " WHERE " in sql]
    assert any("keyset_item.a IS NULL AND " in sql for sql in seeks)  # from a NULL boundary
    assert all("NULLS" not in sql for sql in seeks)


# ---- rotation, expiry and endpoint binding through the resource (issue 26, item 3) -----------

OLD_SECRET = "the-cursor-secret-of-last-month"
NEW_SECRET = "the-cursor-secret-of-this-month"


def _next(client: FlaskClient, path: str = "/items") -> str:
    response = client.get(f"{path}?limit=3")
    assert response.status_code == 200, response.get_json()
    url: str = response.get_json()["meta"]["pagination"]["next"]
    return url


def test_resource_accepts_cursors_of_a_fallback_secret_while_the_new_one_signs(
    keyset_client: tuple[FlaskClient, Any],
) -> None:
    _, build = keyset_client
    before = build(CST_CURSOR_SECRET=OLD_SECRET).test_client()
    rotating = build(
        CST_CURSOR_SECRET=NEW_SECRET, CST_CURSOR_SECRET_FALLBACKS=[OLD_SECRET]
    ).test_client()
    after = build(CST_CURSOR_SECRET=NEW_SECRET).test_client()
    old_link = _next(before)
    assert rotating.get(old_link).status_code == 200
    # New cursors are signed with the new secret: the rotation can finish.
    new_link = _next(rotating)
    assert after.get(new_link).status_code == 200
    response = after.get(old_link)
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["path"] == "cursor"


def test_resource_uses_flasks_secret_key_fallbacks_with_secret_key(
    keyset_client: tuple[FlaskClient, Any],
) -> None:
    _, build = keyset_client
    old_link = _next(build(SECRET_KEY=OLD_SECRET).test_client())
    rotating = build(SECRET_KEY=NEW_SECRET, SECRET_KEY_FALLBACKS=[OLD_SECRET]).test_client()
    assert rotating.get(old_link).status_code == 200


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"CST_CURSOR_SECRET": NEW_SECRET, "CST_CURSOR_SECRET_FALLBACKS": "short"}, "CST_"),
        ({"SECRET_KEY": NEW_SECRET, "SECRET_KEY_FALLBACKS": ["short"]}, "SECRET_KEY_FALLBACKS"),
    ],
)
def test_a_short_fallback_secret_is_refused_at_start_up_without_echoing_it(
    config: dict[str, Any], key: str
) -> None:
    app = Flask("short-fallback")
    app.config.update(config)
    ChassisApi(app).add_resource(_KeysetItems, "/items")
    with pytest.raises(CursorSecretError, match=re.escape(key)) as info:
        CstMicroChassis().init_app(app)
    assert "short" not in str(info.value).replace("too short", "")


def test_resource_refuses_a_cursor_older_than_cst_cursor_max_age(
    keyset_client: tuple[FlaskClient, Any], sessions: sessionmaker[Session]
) -> None:
    _, build = keyset_client
    client = build(CST_CURSOR_MAX_AGE="60").test_client()
    with sessions() as session:
        fingerprint = _fingerprint(session, sa.select(Item).order_by(Item.a.desc(), Item.b))
    now = int(time.time())

    def cursor(issued_at: int) -> str:
        payload = CursorPayload(fingerprint, "after", (5, "x", 1), issued_at=issued_at)
        return encode_cursor(payload, ITEMS_SECRET)

    assert client.get(f"/items?cursor={cursor(now - 30)}").status_code == 200
    response = client.get(f"/items?cursor={cursor(now - 3600)}")
    assert response.status_code == 400
    assert response.get_json()["errors"] == [
        {
            "message": "The cursor has expired: start again from the first page (no cursor)",
            "path": "cursor",
        }
    ]


def test_resource_refuses_a_cursor_issued_by_another_endpoint_with_the_same_ordering(
    keyset_client: tuple[FlaskClient, Any],
) -> None:
    # /items and /async-items sort the same rows the same way: before, a cursor of one was
    # accepted by the other.
    client, _ = keyset_client
    items_link = _next(client)
    cursor = items_link.split("cursor=")[1].split("&")[0]
    response = client.get(f"/async-items?cursor={cursor}")
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["path"] == "cursor"
    assert client.get(items_link).status_code == 200


def test_resource_binds_a_cursor_to_the_url_arguments_of_its_endpoint(
    make_app: AppFactory, sessions: sessionmaker[Session]
) -> None:
    _fill(sessions, _rows(23))
    app = make_app(SECRET_KEY=APP_SECRET)

    class ShopItems(ApiPaginatedMixin, ApiResource):
        pagination_mode = "keyset"

        def get(self, shop: int) -> Any:
            with sessions() as session:
                stmt = sa.select(Item).order_by(Item.a.desc(), Item.b)
                return [item.id for item in self.get_paginated_query_result(stmt, session)]

    ChassisApi(app).add_resource(ShopItems, "/shops/<int:shop>/items")
    client = app.test_client()
    link = _next(client, "/shops/1/items")
    cursor = link.split("cursor=")[1].split("&")[0]
    assert client.get(f"/shops/1/items?cursor={cursor}").status_code == 200
    assert client.get(f"/shops/2/items?cursor={cursor}").status_code == 400
