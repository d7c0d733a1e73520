"""Summarise py-spy raw profiles (``py-spy record --format raw --gil``) by package and function.

    py-spy record --pid WORKER --gil --format raw --duration 5 --output prof.txt
    .venv/bin/python bench/profile_summary.py prof-worker1.txt prof-worker2.txt
    .venv/bin/python bench/profile_summary.py --top 20 prof-worker1.txt     # and the top functions

Each sample is charged to the innermost frame that belongs to a package worth naming (the
chassis, Flask, SQLAlchemy, asyncpg, psycopg, the event loop, ...): with ``--gil`` the samples
are where the GIL was held, so the shares say where the CPU time of the Python threads went.
``--top N`` also lists the N innermost frames (functions) that held it most. ``bench/serve.py
--profile DIR`` runs py-spy on every worker during a run and writes this summary into ``DIR``.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

# (marker in a frame's file, label), most specific first.
PACKAGES = [
    ("cst_chassis/async_bridge", "chassis async bridge"),
    ("cst_chassis/asgi", "chassis ASGI adapter"),
    ("cst_chassis", "chassis (other)"),
    ("sqlalchemy/dialects/postgresql/asyncpg", "SQLAlchemy asyncpg adapter"),
    ("sqlalchemy/util/_concurrency", "SQLAlchemy greenlet glue"),  # 2.0
    ("sqlalchemy/util/concurrency", "SQLAlchemy greenlet glue"),  # 2.1
    ("sqlalchemy/ext/asyncio", "SQLAlchemy asyncio layer"),
    ("sqlalchemy", "SQLAlchemy core"),
    ("asyncpg", "asyncpg"),
    ("psycopg", "psycopg"),
    ("aiohttp", "aiohttp"),
    ("urllib3", "urllib3"),
    ("greenlet", "greenlet"),
    ("fastapi", "FastAPI"),
    ("starlette", "Starlette"),
    ("pydantic", "pydantic"),
    ("uvicorn", "uvicorn"),
    ("granian", "granian (Python side)"),
    ("gunicorn", "gunicorn"),
    ("uvloop", "event loop (uvloop)"),
    ("asyncio", "event loop (asyncio)"),
    ("concurrent/futures", "thread pool"),
    ("flask_restful", "Flask-RESTful"),
    ("flask", "Flask"),
    ("werkzeug", "Werkzeug"),
    ("threading", "threading (waits/locks)"),
    ("json", "json"),
]
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def label(stack: str) -> str:
    """The package of the innermost frame of ``stack`` worth naming, or ``other``."""
    for frame in reversed(stack.split(";")):
        for marker, name in PACKAGES:
            if marker in frame:
                return name
    return "other"


def leaf(stack: str) -> str:
    """The innermost frame of ``stack`` as ``function (file)``, the file shortened."""
    frame = stack.split(";")[-1]
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for root in ("site-packages/", "lib/python3", "/src/"):
        if root in path:
            path = path.split(root, 1)[1]
    return f"{match['function']} ({path})"


def summarise(paths: list[str], top: int = 0) -> str:
    """The shares per package (and the ``top`` innermost functions) of the profiles ``paths``."""
    counts: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for path in paths:
        with open(path, encoding="utf-8") as profile:
            for line in profile:
                stack, _, n = line.rstrip("\n").rpartition(" ")
                if stack and n.isdigit():
                    counts[label(stack)] += int(n)
                    leaves[leaf(stack)] += int(n)
    total = sum(counts.values()) or 1
    lines = [f"{name:30} {100 * samples / total:5.1f} %" for name, samples in counts.most_common()]
    lines.append(f"{'samples (GIL held)':30} {sum(counts.values())}")
    if top:
        lines += ["", f"top {top} innermost frames:"]
        lines += [f"{100 * n / total:5.1f} %  {name}" for name, n in leaves.most_common(top)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--top", type=int, default=0, help="also list the N hottest functions")
    parser.add_argument("profiles", nargs="+")
    args = parser.parse_args()
    print(summarise(args.profiles, args.top), end="")


if __name__ == "__main__":
    main()
