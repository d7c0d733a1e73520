"""Keyset page queries are index ranges: read from the planner, on SQLite and PostgreSQL.

For each ordering shape the seek supports (one direction or mixed, NOT NULL or nullable, the
dialect's NULL placement or an explicit one, with or without an ``IS NOT NULL`` filter), a page
deep in the table and one inside the NULLs are fetched with :func:`paginate_keyset`, and every
statement it sends is run again under ``EXPLAIN``: each must reach the table through the index
matching the ORDER BY with a condition on the leading sort key (SQLite: ``SEARCH ... USING INDEX
... (score>?)``; PostgreSQL: an ``Index Cond`` on it), never a scan plus a filter, and never a
sort of its own. Plans, not clocks: the cost of a seek is what the planner says it does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from cst_chassis.pagination import paginate_keyset
from cst_chassis.pagination.cursor import CursorPayload, encode_cursor
from cst_chassis.pagination.keyset import _order_by, _ordering
from tests.conftest import Database
from tests.pagination_support import captured_statements

SECRET = b"plan-test-secret-of-16+ bytes"
ROWS = 20_000
PAGE = 25


class Base(DeclarativeBase):
    pass


class Ranked(Base):
    """``rank`` NOT NULL with two rows a value; ``score`` the same but NULL on every 10th row."""

    __tablename__ = "plan_ranked"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    rank: Mapped[int]
    score: Mapped[int | None]

    __table_args__ = (
        sa.Index("ix_plan_rank_id", "rank", "id"),
        sa.Index("ix_plan_rank_desc_id", sa.desc("rank"), "id"),
        sa.Index("ix_plan_score_id", "score", "id"),
    )


# Typed Any: select(Ranked) is Select[tuple[Ranked]] on SQLAlchemy 2.0, Select[Ranked] on 2.1.
Shape = Callable[[], sa.Select[Any]]
SHAPES: dict[str, Shape] = {
    "rank, id": lambda: sa.select(Ranked).order_by(Ranked.rank, Ranked.id),
    "rank desc, id desc": lambda: sa.select(Ranked).order_by(Ranked.rank.desc()),
    "rank desc, id (mixed)": lambda: sa.select(Ranked).order_by(Ranked.rank.desc(), Ranked.id),
    "score, id (nullable)": lambda: sa.select(Ranked).order_by(Ranked.score, Ranked.id),
    "score desc, id desc (nullable)": lambda: sa.select(Ranked).order_by(Ranked.score.desc()),
    "score nulls first": lambda: sa.select(Ranked).order_by(Ranked.score.nulls_first()),
    "score nulls last": lambda: sa.select(Ranked).order_by(Ranked.score.nulls_last()),
    "score, id where score is not null": lambda: (
        sa.select(Ranked).where(Ranked.score.is_not(None)).order_by(Ranked.score, Ranked.id)
    ),
}
NULLABLE = [name for name in SHAPES if name.startswith("score")]


def _fill(engine: sa.Engine) -> None:
    Base.metadata.create_all(engine)
    series = (
        "SELECT i FROM generate_series(1, :n) AS i"
        if engine.dialect.name == "postgresql"
        else "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n) "
        "SELECT i FROM s"
    )
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO plan_ranked (id, rank, score) SELECT i, i / 2, "
                f"CASE WHEN i % 10 = 0 THEN NULL ELSE i / 2 END FROM ({series}) AS numbers"
            ),
            {"n": ROWS},
        )
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))


@pytest.fixture
def engine(database: Database) -> Iterator[sa.Engine]:
    engine = database.engine()
    _fill(engine)
    yield engine


def _cursor_at(session: Session, stmt: sa.Select[Any], depth: int, direction: Any) -> str:
    """A correctly signed cursor at the ``depth``-th row of ``stmt``'s ordering."""
    ordering = _ordering(stmt, session.get_bind().dialect.name)
    keys = [k.expr for k in ordering.keys]
    clauses = [_order_by(k, reverse=False, nullness_fixed=False) for k in ordering.keys]
    boundary = session.execute(
        stmt.with_only_columns(*keys).order_by(None).order_by(*clauses).offset(depth).limit(1)
    ).one()
    payload = CursorPayload(ordering.fingerprint, direction, tuple(boundary))
    return encode_cursor(payload, SECRET)


def _plan_problems(engine: sa.Engine, statement: str, parameters: Any, key: str) -> list[str]:
    """What keeps ``statement`` from being an index range on ``key`` (empty when it is one)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            details = [str(row[3]) for row in rows]
            good = [
                d for d in details if d.startswith("SEARCH plan_ranked USING") and f"({key}" in d
            ]
            bad = [d for d in details if d not in good]
            return bad if bad or not good else []
        raw = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).scalar_one()
    plan = raw if isinstance(raw, list) else json.loads(raw)
    problems: list[str] = []

    def visit(node: dict[str, Any]) -> None:
        kind = node["Node Type"]
        if "Sort" in kind or kind == "Seq Scan":
            problems.append(kind)
        if node.get("Relation Name") == "plan_ranked":
            cond = node.get("Index Cond", "")
            if kind not in ("Index Scan", "Index Only Scan") or key not in cond:
                problems.append(f"{kind}: Index Cond {cond!r}, Filter {node.get('Filter')!r}")
        for child in node.get("Plans", []):
            visit(child)

    visit(plan[0]["Plan"])
    return problems


def _page_statements(
    engine: sa.Engine, stmt: sa.Select[Any], cursor: str | None
) -> list[tuple[str, Any]]:
    with Session(engine) as session, captured_statements(engine) as statements:
        page = paginate_keyset(session, stmt, cursor=cursor, limit=PAGE, secret=SECRET)
    assert len(page) == PAGE
    return statements


@pytest.mark.parametrize("direction", ["after", "before"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_deep_page_is_an_index_range_on_the_leading_key(
    engine: sa.Engine, shape: str, direction: str
) -> None:
    stmt = SHAPES[shape]()
    with Session(engine) as session:
        total = session.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar()
        assert total is not None
        cursor = _cursor_at(session, stmt, total * 85 // 100, direction)
    statements = _page_statements(engine, stmt, cursor)
    key = shape.split(",")[0].split()[0]
    assert statements
    for statement, parameters in statements:
        assert _plan_problems(engine, statement, parameters, key) == [], statement


@pytest.mark.parametrize("direction", ["after", "before"])
@pytest.mark.parametrize("shape", [s for s in NULLABLE if "not null" not in s])
def test_a_page_among_the_nulls_is_an_index_range(
    engine: sa.Engine, shape: str, direction: str
) -> None:
    stmt = SHAPES[shape]()
    with Session(engine) as session:
        # The middle of the NULL rows, wherever the ordering puts them.
        ids = session.scalars(stmt.with_only_columns(Ranked.id).where(Ranked.score.is_(None)))
        null_ids = set(ids)
        ordered = list(session.scalars(stmt.with_only_columns(Ranked.id)))
        positions = [i for i, row_id in enumerate(ordered) if row_id in null_ids]
        cursor = _cursor_at(session, stmt, positions[len(positions) // 2], direction)
    for statement, parameters in _page_statements(engine, stmt, cursor):
        assert _plan_problems(engine, statement, parameters, "score") == [], statement


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_first_page_reads_the_index_in_order_without_a_sort(
    engine: sa.Engine, shape: str
) -> None:
    stmt = SHAPES[shape]()
    for statement, parameters in _page_statements(engine, stmt, None):
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
                details = " | ".join(str(row[3]) for row in rows)
                assert "TEMP B-TREE" not in details, details
                assert "USING INDEX" in details or "USING COVERING INDEX" in details, details
            else:
                raw = conn.exec_driver_sql(
                    f"EXPLAIN (FORMAT JSON) {statement}", parameters
                ).scalar_one()
                text = json.dumps(raw)
                assert '"Sort' not in text and "Seq Scan" not in text, text
