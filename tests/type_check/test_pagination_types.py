"""Checked by mypy --strict on SQLAlchemy 2.0 and 2.1: pages carry the model type end to end.

``select(User)`` is ``Select[tuple[User]]`` on 2.0 and ``Select[User]`` on 2.1; every call below
must come out as ``Page[User]`` on both. ``select(User.id, User.name)`` is
``Select[tuple[int, str]]`` on 2.0 and the variadic ``Select[int, str]`` on 2.1: both must come
out as ``Page[tuple[int, str]]``. The functions also run under pytest (in-memory SQLite), so the
file cannot rot into something that only type-checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, assert_type

from flask import Flask
from sqlalchemy import create_engine, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, scoped_session
from sqlalchemy.orm import sessionmaker as make_sessionmaker

from cst_chassis import ChassisApi, CstMicroChassis
from cst_chassis.pagination import Page, paginate, paginate_async, paginate_query
from cst_chassis.resources import ApiPaginatedMixin, ApiResource


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


def _session() -> Session:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    session = Session(engine)
    session.add_all([User(id=i, name=f"u{i}") for i in range(1, 4)])
    session.commit()
    return session


def test_paginate_infers_the_model_type() -> None:
    with _session() as session:
        page = assert_type(paginate(session, select(User).order_by(User.id), limit=2), Page[User])
        for user in page:
            assert_type(user, User)
        assert_type(page[0], User)
        assert_type(page.items, Sequence[User])
        assert_type(page.total, int | None)
        assert_type(paginate(session, select(User.name), limit=1), Page[str])
        assert [u.id for u in page] == [1, 2]


def test_a_multi_column_select_pages_typed_tuples() -> None:
    with _session() as session:
        stmt = select(User.id, User.name).order_by(User.id)
        page = assert_type(paginate(session, stmt, limit=2), Page[tuple[int, str]])
        assert list(page) == [(1, "u1"), (2, "u2")]
        for user_id, name in page:
            assert_type(user_id, int)
            assert_type(name, str)
        three = select(User.id, User.name, User.id)
        assert_type(paginate(session, three), Page[tuple[int, str, int]])


def test_paginate_on_a_scoped_session_infers_the_model_type() -> None:
    with _session() as plain:
        factory = make_sessionmaker(plain.get_bind())
        scoped = scoped_session(factory)
        try:
            page = assert_type(paginate(scoped, select(User), with_total=True), Page[User])
            assert page.total == 3
        finally:
            scoped.remove()


def test_paginate_query_infers_the_model_type() -> None:
    with _session() as session:
        page = assert_type(paginate_query(session.query(User), limit=1), Page[User])
        assert page.has_next


def test_paginate_async_infers_the_model_type() -> None:
    async def run() -> list[str]:
        engine = create_async_engine("sqlite+aiosqlite://")
        try:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
            async with AsyncSession(engine) as session:
                session.add(User(id=1, name="a"))
                await session.commit()
                page = assert_type(await paginate_async(session, select(User)), Page[User])
                pairs = await paginate_async(session, select(User.id, User.name))
                assert_type(pairs, Page[tuple[int, str]])
                assert list(pairs) == [(1, "a")]
                return [assert_type(u.name, str) for u in page]
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == ["a"]


class Users(ApiPaginatedMixin, ApiResource):
    """A typed paginated resource: the mixin's methods infer the model type too."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def get(self) -> list[str]:
        from_select = self.get_paginated_query_result(select(User).order_by(User.id), self.session)
        assert_type(from_select, Page[User])
        from_query = self.get_paginated_query_result(self.session.query(User))
        assert_type(from_query, Page[User])
        return [u.name for u in from_select]

    async def page_async(self, session: AsyncSession) -> Page[User]:
        return assert_type(
            await self.get_paginated_query_result_async(select(User), session), Page[User]
        )

    def pairs(self) -> Page[tuple[int, str]]:
        stmt = select(User.id, User.name).order_by(User.id)
        return assert_type(
            self.get_paginated_query_result(stmt, self.session), Page[tuple[int, str]]
        )

    async def pairs_async(self, session: AsyncSession) -> Page[tuple[int, str]]:
        stmt = select(User.id, User.name)
        return assert_type(
            await self.get_paginated_query_result_async(stmt, session), Page[tuple[int, str]]
        )


def test_a_typed_paginated_resource_serves_pages() -> None:
    with _session() as session:
        app = Flask("typed-pagination")
        CstMicroChassis().init_app(app)
        ChassisApi(app).add_resource(Users, "/users", resource_class_kwargs={"session": session})
        body: dict[str, Any] = app.test_client().get("/users?limit=2").get_json()
    assert body["data"] == ["u1", "u2"]
    assert body["meta"]["pagination"]["next"] == "http://localhost/users?offset=2&limit=2"
