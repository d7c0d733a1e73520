"""Models, seeding and query capture shared by the pagination tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROWS = 107
# A filter value that needs encoding in a URL: '&', ' ', '/', and a non-ASCII letter.
ODD_CATEGORY = "a&b c/ä"


class Base(DeclarativeBase):
    pass


class Product(Base):
    """A typed model: what typed code (and mypy --strict) declares."""

    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str]
    category: Mapped[str]


# The seed README's style, for ``LegacyProduct.query``: its own metadata, the same table.
db = SQLAlchemy()


class LegacyProduct(db.Model):  # type: ignore[name-defined, misc]  # db.Model is made at run time
    __tablename__ = "products"
    id = db.Column(db.Integer, primary_key=True, autoincrement=False)
    name = db.Column(db.String)
    category = db.Column(db.String)


def seed(engine: sa.Engine, count: int = ROWS) -> list[int]:
    """Create the table and insert ``count`` products (even ids in ``ODD_CATEGORY``).

    Rows go in in reverse order, so only an ORDER BY gives them back sorted. Returns the ids in
    id order.
    """
    Base.metadata.create_all(engine)
    rows = [
        {
            "id": i,
            "name": f"product No.{i}",
            "category": ODD_CATEGORY if i % 2 == 0 else "plain",
        }
        for i in range(count, 0, -1)
    ]
    with engine.begin() as conn:
        if rows:
            conn.execute(sa.insert(Product), rows)
    return list(range(1, count + 1))


@contextlib.contextmanager
def captured_statements(engine: sa.Engine) -> Iterator[list[tuple[str, object]]]:
    """Collect ``(sql, parameters)`` of every statement ``engine`` sends while the block runs.

    For an ``AsyncEngine`` pass its ``sync_engine``.
    """
    statements: list[tuple[str, object]] = []

    def record(
        conn: object,
        cursor: object,
        statement: str,
        parameters: object,
        context: object,
        executemany: bool,
    ) -> None:
        statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
