"""Summarise py-spy raw profiles (``py-spy record --format raw --gil``) by package.

    py-spy record --pid WORKER --gil --format raw --duration 5 --output prof.txt
    .venv/bin/python bench/profile_summary.py prof-worker1.txt prof-worker2.txt

Each sample is charged to the innermost frame that belongs to a package worth naming (the
chassis, Flask, SQLAlchemy, asyncpg, psycopg, the event loop, ...): with ``--gil`` the samples
are where the GIL was held, so the shares say where the CPU time of the Python threads went.
"""

from __future__ import annotations

import sys
from collections import Counter

# (marker in a frame's file, label), most specific first.
PACKAGES = [
    ("cst_chassis/async_bridge", "chassis async bridge"),
    ("cst_chassis", "chassis (other)"),
    ("sqlalchemy/dialects/postgresql/asyncpg", "SQLAlchemy asyncpg adapter"),
    ("sqlalchemy/util/_concurrency", "SQLAlchemy greenlet glue"),
    ("sqlalchemy/ext/asyncio", "SQLAlchemy asyncio layer"),
    ("sqlalchemy", "SQLAlchemy core"),
    ("asyncpg", "asyncpg"),
    ("psycopg", "psycopg"),
    ("uvloop", "event loop (uvloop)"),
    ("asyncio", "event loop (asyncio)"),
    ("flask_restful", "Flask-RESTful"),
    ("flask", "Flask"),
    ("werkzeug", "Werkzeug"),
    ("threading", "threading (waits/locks)"),
    ("json", "json"),
]


def label(stack: str) -> str:
    for frame in reversed(stack.split(";")):
        for marker, name in PACKAGES:
            if marker in frame:
                return name
    return "other"


def main() -> None:
    counts: Counter[str] = Counter()
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as profile:
            for line in profile:
                stack, _, n = line.rstrip("\n").rpartition(" ")
                if stack and n.isdigit():
                    counts[label(stack)] += int(n)
    total = sum(counts.values()) or 1
    for name, samples in counts.most_common():
        print(f"{name:30} {100 * samples / total:5.1f} %")
    print(f"{'samples (GIL held)':30} {total}")


if __name__ == "__main__":
    main()
