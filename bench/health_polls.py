"""PostgreSQL transactions caused by anonymous ``/status`` polls, with and without the health cache.

Creates a database of its own on the server of ``--url`` (so no other client's transactions are
counted), polls ``/status`` of a chassis app on it through the test client, and reads
``pg_stat_database.xact_commit`` before and after, for the default ``CST_HEALTH_CACHE_TTL`` and
for ``0`` (every poll runs the probe)::

    .venv/bin/python bench/health_polls.py --url postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/health_polls.py --url ... --polls 200 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import make_url

from cst_chassis import CstMicroChassis

VARIANTS: dict[str, dict[str, object]] = {"default": {}, "ttl_0": {"CST_HEALTH_CACHE_TTL": 0}}
# pg_stat_database is fed by each backend at most once a second.
_STATS_DELAY = 1.5


def _commits(admin: sa.Engine, name: str) -> int:
    with admin.connect() as conn:
        conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
        query = sa.text("SELECT xact_commit FROM pg_stat_database WHERE datname = :name")
        return int(conn.scalar(query, {"name": name}) or 0)


def measure(url: str, polls: int) -> dict[str, int]:
    """Transactions per variant for ``polls`` anonymous polls (the database is dropped after)."""
    name = f"cst_health_polls_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    results: dict[str, int] = {}
    try:
        for variant, config in VARIANTS.items():
            engine = sa.create_engine(make_url(url).set(database=name))
            try:
                app = Flask("health-polls")
                app.config.update(config)
                CstMicroChassis().init_app(app, engine)
                client = app.test_client()
                time.sleep(_STATS_DELAY)
                before = _commits(admin, name)
                for _ in range(polls):
                    client.get("/status")
            finally:
                engine.dispose()
            time.sleep(_STATS_DELAY)
            results[variant] = _commits(admin, name) - before
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
    return results


def main(argv: list[str] | None = None) -> int:
    """Print (and with ``--json`` write) the transactions each variant caused."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a PostgreSQL URL (its server is used)")
    parser.add_argument("--polls", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    results = measure(args.url, args.polls)
    for variant, transactions in results.items():
        print(f"{variant}: {args.polls} anonymous polls -> {transactions} PostgreSQL transactions")
    if args.json is not None:
        args.json.write_text(json.dumps({"polls": args.polls, "transactions": results}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
