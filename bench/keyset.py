"""Offset vs keyset pagination at depth: a 25-row page at 0, 1%, 10% and 90% of a big table.

Builds a table of ``--rows`` rows (default 1,000,000) with an index on the sort key
``(score, id)`` (``score`` has duplicates, so the primary key breaks ties), then times one page
at each depth with ``OFFSET`` and with :func:`cst_chassis.keyset.paginate_keyset` (median of
``--repeat`` calls, each in a fresh ``Session`` so the identity map never helps). SQLite runs in a
temporary file; PostgreSQL (``--postgres URL``) in a schema of its own, dropped afterwards.

    .venv/bin/python bench/keyset.py                       # SQLite, 1,000,000 rows
    .venv/bin/python bench/keyset.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/keyset.py --rows 100000 --repeat 9

Target (issue 8): keyset at the deepest depth <= 1.5x keyset at depth 0, on both databases.
Exit status 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from cst_chassis import keyset
from cst_chassis.cursor import CursorPayload, encode_cursor
from cst_chassis.keyset import paginate_keyset

SECRET = b"bench-secret"
PAGE = 25
TARGET = 1.5


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "cst_bench_keyset"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    score: Mapped[int]
    payload: Mapped[str]


STMT = sa.select(Row).order_by(Row.score)


def _fill(engine: sa.Engine, rows: int) -> None:
    # score = i * 7919 mod ~rows/2: about two rows per score, spread in no particular order.
    modulus = max(rows // 2, 1)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                sa.text(
                    "INSERT INTO cst_bench_keyset (id, score, payload) "
                    "SELECT i, (i::bigint * 7919) % :m, 'row ' || i FROM generate_series(1, :n) i"
                ),
                {"n": rows, "m": modulus},
            )
        else:
            conn.execute(
                sa.text(
                    "INSERT INTO cst_bench_keyset (id, score, payload) "
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n) "
                    "SELECT i, (i * 7919) % :m, 'row ' || i FROM n"
                ),
                {"n": rows, "m": modulus},
            )
        conn.execute(
            sa.text("CREATE INDEX ix_cst_bench_keyset_score ON cst_bench_keyset (score, id)")
        )
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))


def _median_ms(call: Callable[[], object], repeat: int) -> float:
    call()  # warm-up: statement cache, page cache
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _cursor_at(engine: sa.Engine, depth: int) -> str | None:
    """The cursor a client would hold after reading ``depth`` rows (built, not walked to)."""
    if depth == 0:
        return None
    with Session(engine) as session:
        boundary = session.execute(
            sa.select(Row.score, Row.id).order_by(Row.score, Row.id).offset(depth - 1).limit(1)
        ).one()
    fingerprint = keyset._ordering(STMT, engine.dialect.name).fingerprint
    return encode_cursor(CursorPayload(fingerprint, "after", tuple(boundary)), SECRET)


def measure(engine: sa.Engine, rows: int, repeat: int) -> list[tuple[int, float, float]]:
    depths = [0, rows // 100, rows // 10, rows * 9 // 10]
    results = []
    for depth in depths:
        cursor = _cursor_at(engine, depth)

        def offset_page(depth: int = depth) -> list[Row]:
            with Session(engine) as session:
                return list(session.scalars(STMT.order_by(Row.id).offset(depth).limit(PAGE + 1)))

        def keyset_page(cursor: str | None = cursor) -> Any:
            with Session(engine) as session:
                return paginate_keyset(session, STMT, cursor=cursor, limit=PAGE, secret=SECRET)

        # Same rows either way: the benchmark compares like with like.
        assert [r.id for r in offset_page()[:PAGE]] == [r.id for r in keyset_page()]
        results.append((depth, _median_ms(offset_page, repeat), _median_ms(keyset_page, repeat)))
    return results


def report(name: str, results: list[tuple[int, float, float]]) -> bool:
    print(f"\n{name}")
    print(f"{'depth':>9} {'offset ms':>10} {'keyset ms':>10}")
    for depth, offset_ms, keyset_ms in results:
        print(f"{depth:>9,} {offset_ms:>10.2f} {keyset_ms:>10.2f}")
    first, last = results[0], results[-1]
    ratio = last[2] / first[2]
    ok = ratio <= TARGET
    print(
        f"keyset@{last[0]:,} / keyset@0 = {ratio:.2f} (target <= {TARGET}: "
        f"{'met' if ok else 'MISSED'}); offset@{last[0]:,} / offset@0 = {last[1] / first[1]:.1f}"
    )
    return ok


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
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-sqlite", action="store_true", help="run on PostgreSQL only")
    args = parser.parse_args(argv)

    targets: list[tuple[str, Callable[[], Any]]] = []
    if not args.no_sqlite:
        targets.append((f"SQLite {sqlite3.sqlite_version}", sqlite_engine))
    if args.postgres:
        targets.append(("PostgreSQL", lambda: postgres_engine(args.postgres)))
    ok = True
    for name, make in targets:
        with make() as engine:
            Base.metadata.create_all(engine)
            start = time.perf_counter()
            _fill(engine, args.rows)
            print(f"{name}: {args.rows:,} rows built in {time.perf_counter() - start:.1f} s")
            ok = report(name, measure(engine, args.rows, args.repeat)) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
