"""Keyset pagination at depth: first page vs a page 900,000 rows deep, three ordering shapes.

Builds a table of ``--rows`` rows (default 1,000,000; ``generate_series`` on PostgreSQL, a
recursive CTE on SQLite, so building takes seconds) with one index per ordering, then times a
25-row page with :func:`cst_chassis.pagination.paginate_keyset` at depth 0 and at ``--depth``
(default 90% of the rows), and :func:`cst_chassis.pagination.paginate` (``OFFSET``) at the same
depth, for each shape:

- ``rank, id``: NOT NULL, one direction (index ``(rank, id)``);
- ``rank DESC, id``: NOT NULL, mixed directions (index ``(rank DESC, id)``);
- ``score, id WHERE score IS NOT NULL``: a nullable column (index ``(score, id)``).

``rank`` and ``score`` hold about two rows per value in no particular order; ``score`` is NULL on
every 100th row. Each time is the median of ``--repeat`` calls, each in a fresh ``Session`` (the
identity map never helps), the first and the deep page taking turns (offset: 5 calls).
SQLite runs in a temporary file; PostgreSQL (``--postgres URL``) in a schema of its own, dropped
afterwards. Pin to one CPU for steadier ratios::

    taskset -c 0 .venv/bin/python bench/keyset.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/keyset.py --rows 100000 --repeat 9     # quicker, SQLite only

Besides the medians (wall clock, which load from other processes skews), each page's statements
are replayed to count the database's work, which load cannot skew: SQLite's virtual-machine
instructions, PostgreSQL's buffers touched. Work is compared between the deep page and the second
page (both seek with the same WHERE clause; the first page has none to evaluate).

Target (issue 11): deep / first <= 1.3 in time, and deep / second <= 1.3 in work, for every shape
on both databases.
Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_json
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from cst_chassis.pagination import paginate, paginate_keyset
from cst_chassis.pagination.cursor import CursorPayload, encode_cursor
from cst_chassis.pagination.keyset import _order_by, _ordering

SECRET = b"bench-secret-of-at-least-16-bytes"
PAGE = 25
TARGET = 1.3


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "cst_bench_keyset"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    rank: Mapped[int]
    score: Mapped[int | None]
    payload: Mapped[str]


# Typed Any: select(Row) is Select[tuple[Row]] on SQLAlchemy 2.0 and Select[Row] on 2.1.
SHAPES: dict[str, sa.Select[Any]] = {
    "rank, id": sa.select(Row).order_by(Row.rank, Row.id),
    "rank DESC, id": sa.select(Row).order_by(Row.rank.desc(), Row.id),
    "score, id (nullable)": (
        sa.select(Row).where(Row.score.is_not(None)).order_by(Row.score, Row.id)
    ),
}
INDEXES = (
    "CREATE INDEX ix_cst_bench_rank ON cst_bench_keyset (rank, id)",
    "CREATE INDEX ix_cst_bench_rank_desc ON cst_bench_keyset (rank DESC, id)",
    "CREATE INDEX ix_cst_bench_score ON cst_bench_keyset (score, id)",
)


def _fill(engine: sa.Engine, rows: int) -> None:
    # rank = i * 7919 mod ~rows/2: about two rows per value, spread in no particular order.
    series = (
        "SELECT i FROM generate_series(1, :n) AS i"
        if engine.dialect.name == "postgresql"
        else "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n) "
        "SELECT i FROM s"
    )
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO cst_bench_keyset (id, rank, score, payload) "
                "SELECT i, (CAST(i AS BIGINT) * 7919) % :m, "
                "CASE WHEN i % 100 = 0 THEN NULL ELSE (CAST(i AS BIGINT) * 7919) % :m END, "
                f"'row ' || i FROM ({series}) AS numbers"
            ),
            {"n": rows, "m": max(rows // 2, 1)},
        )
        for index in INDEXES:
            conn.execute(sa.text(index))
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))


def _medians_ms(calls: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median time of each call, the calls interleaved so that load from other processes on a
    shared machine falls on all of them alike rather than on whichever ran during a burst."""
    for call in calls:
        call()  # warm-up: statement cache, page cache
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(repeat):
        for call, samples in zip(calls, times, strict=True):
            start = time.perf_counter()
            call()
            samples.append(time.perf_counter() - start)
    return [statistics.median(samples) * 1000 for samples in times]


def _cursor_at(engine: sa.Engine, stmt: sa.Select[Any], depth: int) -> str:
    """The cursor a client would hold after reading ``depth`` rows (built, not walked to)."""
    ordering = _ordering(stmt, engine.dialect.name)
    keys = [key.expr for key in ordering.keys]
    clauses = [_order_by(key, reverse=False, nullness_fixed=False) for key in ordering.keys]
    with Session(engine) as session:
        boundary = session.execute(
            stmt.with_only_columns(*keys).order_by(None).order_by(*clauses).offset(depth - 1)
        ).first()
    assert boundary is not None, "the table is smaller than the depth"
    return encode_cursor(CursorPayload(ordering.fingerprint, "after", tuple(boundary)), SECRET)


@dataclass(frozen=True)
class Result:
    """One shape on one database: wall-clock medians and database work, per page."""

    first_ms: float
    deep_ms: float
    offset_ms: float
    second_work: int
    deep_work: int
    offset_work: int


def _statements(engine: sa.Engine, call: Callable[[], object]) -> list[tuple[str, Any]]:
    statements: list[tuple[str, Any]] = []

    def record(*args: Any) -> None:
        statements.append((args[2], args[3]))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return statements


def _work(engine: sa.Engine, call: Callable[[], object]) -> int:
    """The database work of ``call``'s statements, replayed: a count that load cannot skew.

    SQLite: virtual-machine instructions (its progress handler, called on every one);
    PostgreSQL: buffers touched (``EXPLAIN (ANALYZE, BUFFERS)``, shared hits plus reads).
    """
    total = 0
    with engine.connect() as conn:
        for statement, parameters in _statements(engine, call):
            if engine.dialect.name == "sqlite":
                raw: Any = conn.connection.dbapi_connection
                steps = [0]

                def count(steps: list[int] = steps) -> int:
                    steps[0] += 1
                    return 0

                raw.set_progress_handler(count, 1)
                try:
                    raw.execute(statement, parameters).fetchall()
                finally:
                    raw.set_progress_handler(None, 1)
                total += steps[0]
            else:
                explain = f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}"
                plan = conn.exec_driver_sql(explain, parameters).scalar_one()[0]["Plan"]
                total += plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
    return total


def measure(engine: sa.Engine, depth: int, repeat: int) -> dict[str, Result]:
    """Per shape: keyset first page, keyset page at ``depth``, offset page at ``depth``."""
    results = {}
    for name, stmt in SHAPES.items():
        cursor = _cursor_at(engine, stmt, depth)

        def keyset(cursor: str | None, stmt: sa.Select[Any] = stmt) -> list[Row]:
            with Session(engine) as session:
                return list(
                    paginate_keyset(session, stmt, cursor=cursor, limit=PAGE, secret=SECRET)
                )

        def offset(stmt: sa.Select[Any] = stmt) -> list[Row]:
            with Session(engine) as session:  # every shape orders by id last: a total order
                return list(paginate(session, stmt, offset=depth, limit=PAGE))

        # Same rows either way: the benchmark compares like with like.
        assert [r.id for r in keyset(cursor)] == [r.id for r in offset()], name
        calls: list[Callable[[], object]] = [
            functools.partial(keyset, None),
            functools.partial(keyset, cursor),
            offset,
        ]
        first_ms, deep_ms = _medians_ms(calls[:2], repeat)
        # Offset at depth is the slow baseline (hundreds of ms): a few calls give its size.
        (offset_ms,) = _medians_ms(calls[2:], min(repeat, 5))
        # Work is compared with the second page, whose query has the same WHERE clause to
        # evaluate on each row as the deep one: what differs is only the depth.
        second: Callable[[], object] = functools.partial(keyset, _cursor_at(engine, stmt, PAGE))
        second_work, deep_work, offset_work = (_work(engine, c) for c in [second, *calls[1:]])
        results[name] = Result(first_ms, deep_ms, offset_ms, second_work, deep_work, offset_work)
    return results


def report(name: str, depth: int, results: dict[str, Result]) -> bool:
    unit = "VM instructions" if name.startswith("SQLite") else "buffers"
    print(f"\n{name}: keyset first page, keyset page at depth {depth:,}, offset at that depth")
    print(
        f"| ordering | first ms | deep ms | deep/first | offset deep ms | {unit}: 2nd page "
        f"| deep | deep/2nd | offset deep |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    ok = True
    for shape, r in results.items():
        ratio, work_ratio = r.deep_ms / r.first_ms, r.deep_work / r.second_work
        ok = ok and ratio <= TARGET and work_ratio <= TARGET
        print(
            f"| `{shape}` | {r.first_ms:.2f} | {r.deep_ms:.2f} | {_mark(ratio)} | "
            f"{r.offset_ms:.1f} | {r.second_work:,} | {r.deep_work:,} | {_mark(work_ratio)} | "
            f"{r.offset_work:,} |"
        )
    return ok


def _mark(ratio: float) -> str:
    return f"{ratio:.2f}" if ratio <= TARGET else f"**{ratio:.2f}** (missed)"


@contextmanager
def sqlite_engine() -> Iterator[sa.Engine]:
    with tempfile.TemporaryDirectory(prefix="cst-bench-keyset-") as tmp:
        engine = sa.create_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def postgres_engine(url: str) -> Iterator[sa.Engine]:
    schema = f"cst_bench_keyset_{os.getpid()}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL database")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--depth", type=int, help="rows before the deep page (default: 90%%)")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--no-sqlite", action="store_true", help="run on PostgreSQL only")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args(argv)
    depth = args.depth or args.rows * 9 // 10

    targets: list[tuple[str, Callable[[], AbstractContextManager[sa.Engine]]]] = []
    if not args.no_sqlite:
        targets.append((f"SQLite {sqlite3.sqlite_version}", sqlite_engine))
    if args.postgres:
        targets.append(("PostgreSQL", lambda: postgres_engine(args.postgres)))
    ok = True
    measured: dict[str, dict[str, dict[str, float]]] = {}
    for name, make in targets:
        with make() as engine:
            Base.metadata.create_all(engine)
            start = time.perf_counter()
            _fill(engine, args.rows)
            built = time.perf_counter() - start
            print(f"{name}: {args.rows:,} rows and 3 indexes built in {built:.1f} s")
            results = measure(engine, depth, args.repeat)
            measured[name] = {shape: dataclasses.asdict(r) for shape, r in results.items()}
            ok = report(name, depth, results) and ok
    if args.json:
        bench_json.write(args.json, "keyset", {"rows": args.rows, "depth": depth, **measured})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
