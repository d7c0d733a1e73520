"""Checked by mypy --strict: keyset pagination carries the model type through.

On SQLAlchemy 2.0 ``select(User)`` is ``Select[tuple[User]]``, on 2.1 ``Select[User]``; both must
give ``Page[User]``; ``select(User.id, User.name)`` must give ``Page[tuple[int, str]]`` on both
(2.1's variadic ``Select[int, str]`` included). The functions also run under pytest, so the
file cannot rot.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import assert_type

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    scoped_session,
    sessionmaker,
)

from cst_chassis.pagination import Page, paginate_keyset, paginate_keyset_async

SECRET = b"typed-keyset-secret-16"


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "typed_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


def test_sync_keyset_page_is_typed(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'typed.db'}")
    Base.metadata.create_all(engine)
    try:
        with Session(engine) as session:
            session.add_all([User(name="b"), User(name="a")])
            session.flush()
            page = paginate_keyset(session, sa.select(User).order_by(User.name), secret=SECRET)
            assert_type(page, Page[User])
            for user in page:
                assert_type(user, User)
            assert_type(page.next_cursor, str | None)
            assert [u.name for u in page] == ["a", "b"]
            names = paginate_keyset(
                session, sa.select(User.name).order_by(User.name), secret=SECRET
            )
            assert_type(names, Page[str])
            pairs = paginate_keyset(
                session, sa.select(User.id, User.name).order_by(User.name), secret=SECRET
            )
            assert_type(pairs, Page[tuple[int, str]])
            assert [name for _, name in pairs] == ["a", "b"]
        scoped = scoped_session(sessionmaker(engine))
        assert_type(paginate_keyset(scoped, sa.select(User), secret=SECRET), Page[User])
        scoped.remove()
    finally:
        engine.dispose()


def test_async_keyset_page_is_typed(tmp_path: Path) -> None:
    async def run() -> None:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'typed.db'}")
        try:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
            async with AsyncSession(engine) as session:
                page = await paginate_keyset_async(session, sa.select(User), limit=5, secret=SECRET)
                assert_type(page, Page[User])
                assert list(page) == []
                pairs = await paginate_keyset_async(
                    session, sa.select(User.id, User.name), secret=SECRET
                )
                assert_type(pairs, Page[tuple[int, str]])
        finally:
            await engine.dispose()

    asyncio.run(run())
