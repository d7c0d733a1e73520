"""Run zou 1.0.52's own test suite with and without the cst-chassis swap; print what differs.

zou (Kitsu's production-tracking API) is a large real Flask-RESTful application: 18 blueprints,
each through its own ``flask_restful.Api``. This script is the outside check of issue 27: the swap
the migration guide describes (``ChassisApi`` for ``Api``, ``CstMicroChassis().init_app(app)``
right after ``Flask(__name__)``) must change only documented behaviour.

Not part of pytest's run (the file is not named ``test_*``; CI cannot fetch zou's tree). Needs:

- zou's tests from the ``v1.0.52`` tag of https://github.com/cgwire/zou (the sdist on PyPI ships
  none), e.g. ``git archive v1.0.52 | tar -x -C /work/zou-1.0.52``;
- a virtualenv with zou's dependencies (``pip install 'zou[test]==1.0.52'``) and this repository
  installed in it (``pip install --no-deps -e .``; the script does that when it is missing);
- PostgreSQL (``ZOU_PG_*``, default ``postgres@127.0.0.1:5432`` without a password) and Redis on
  localhost.

Usage::

    python tests/outside/zou_suite.py --tree /work/zou-1.0.52 --python /work/zou-venv/bin/python
    python tests/outside/zou_suite.py ... --only swap      # one side (its XML is kept for later)
    python tests/outside/zou_suite.py ... -- tests/shots   # a subset (pytest arguments)
    python tests/outside/zou_suite.py --report             # compare the logs of the last runs

``ZOU_KV_PORT_SWAP=6390`` gives the swapped side a Redis of its own, so both sides can run at
once. On CPython 3.11.7, pytest's assertion rewriting of ``tests/services`` and later folders
stops the run with ``SystemError: AST constructor recursion depth mismatch`` (on both sides):
pass ``--assert=plain`` for those folders. ``tests/search`` needs a Meilisearch server; without
one its tests leave transactions open, which the lock timeouts set here turn into failures.

The swapped copy sets ``CST_HEALTH_CHECK_ENDPOINT=/chassis/status``: zou has a ``/status`` of its
own, and without the move the swap stops at import with a ``RouteCollisionError`` that says so
(the script shows that error first). It exits 0 when the tree is absent, after saying so.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_TREE = Path(os.environ.get("ZOU_TREE", "/work/zou-1.0.52"))
DEFAULT_PYTHON = Path(os.environ.get("ZOU_PYTHON", "/work/zou-venv/bin/python"))
# Where each side's results are kept (pytest -v log, junit XML), so one side can be re-run alone.
RESULTS = Path(os.environ.get("ZOU_RESULTS", tempfile.gettempdir())) / "zou-outside"

# The swap, as the migration guide tells a Flask-RESTful app to do it: (file, old, new).
SWAP = (
    (
        "zou/app/utils/api.py",
        "from flask_restful import Api\n",
        "from cst_chassis import ChassisApi as Api\n",
    ),
    (
        "zou/app/__init__.py",
        "app = Flask(__name__)\n",
        "app = Flask(__name__)\n"
        "from cst_chassis import CstMicroChassis  # noqa: E402\n"
        "CstMicroChassis().init_app(app)\n",
    ),
)
# zou serves its own /status: the chassis's health endpoint moves (the guide's step).
SWAP_ENV = {"CST_HEALTH_CHECK_ENDPOINT": "/chassis/status"}

Outcome = str  # "passed", "failed", "error", "skipped"


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the two sides, print the tests whose outcome differs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=DEFAULT_TREE)
    parser.add_argument("--python", type=Path, default=DEFAULT_PYTHON)
    parser.add_argument("--only", choices=("plain", "swap"), help="run one side only")
    parser.add_argument("--report", action="store_true", help="run nothing: compare the logs")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)

    tree: Path = args.tree
    if not (tree / "zou" / "app" / "__init__.py").is_file() or not (tree / "tests").is_dir():
        print(f"skipped: zou 1.0.52's tree (with tests/) is not at {tree}: see this script's help")
        return 0
    python: Path = args.python
    if not python.is_file():
        print(f"skipped: no Python with zou's dependencies at {python} (--python)")
        return 0
    _ensure_chassis(python)
    RESULTS.mkdir(parents=True, exist_ok=True)

    sides: tuple[str, ...] = ("plain", "swap") if args.only is None else (args.only,)
    if args.report:
        sides = ()
    for side in sides:
        if side == "plain":
            _run(python, tree, "plain", {}, args.pytest_args)
        else:
            with tempfile.TemporaryDirectory(prefix="zou-swap-") as copy:
                swapped = _swapped_copy(tree, Path(copy) / "zou")
                _show_collision(python, swapped)
                _run(python, swapped, "swap", SWAP_ENV, args.pytest_args)

    plain, swap = _read("plain"), _read("swap")
    if not plain or not swap:
        print("one side has no results yet: run it (--only plain / --only swap)")
        return 0
    _report(plain, swap)
    return 0


def _ensure_chassis(python: Path) -> None:
    found = subprocess.run(
        [str(python), "-c", "import cst_chassis, sys; print(cst_chassis.__file__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--no-deps", "-e", str(REPOSITORY)],
            check=True,
        )
    else:
        print(f"cst_chassis in the zou venv: {found.stdout.strip()}")


def _swapped_copy(tree: Path, target: Path) -> Path:
    shutil.copytree(tree, target, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    for relative, old, new in SWAP:
        path = target / relative
        text = path.read_text(encoding="utf-8")
        if text.count(old) != 1:
            raise SystemExit(f"the swap does not apply to {relative}: {old!r} not found once")
        path.write_text(text.replace(old, new), encoding="utf-8")
    return target


def _show_collision(python: Path, swapped: Path) -> None:
    # The swap without the guide's CST_HEALTH_CHECK_ENDPOINT step: zou's own /status collides.
    env = _environment("swap-import") | {"CST_HEALTH_CHECK_ENDPOINT": "/status"}
    probe = subprocess.run(
        [str(python), "-c", "import zou.app.api"],
        cwd=swapped,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    last = (probe.stderr.strip().splitlines() or ["(no error)"])[-1]
    print(f"swap without moving the chassis's /status: exit {probe.returncode}: {last}")


def _environment(side: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CST_")}
    env.update(
        {
            # zou's CI settings (.github/workflows/ci.yml).
            "DEBUG": "1",
            "MAIL_DEBUG_BODY": "1",
            "MAIL_ENABLED": "False",
            "DB_HOST": os.environ.get("ZOU_PG_HOST", "127.0.0.1"),
            "DB_PORT": os.environ.get("ZOU_PG_PORT", "5432"),
            "DB_USERNAME": os.environ.get("ZOU_PG_USER", "postgres"),
            "DB_PASSWORD": os.environ.get("ZOU_PG_PASSWORD", ""),
            "DB_DATABASE": f"zou_outside_{side.replace('-', '_')}",
            # ZOU_KV_PORT_PLAIN / ZOU_KV_PORT_SWAP: a Redis of its own per side, so that the
            # two sides can run at the same time without sharing state.
            "KV_PORT": os.environ.get(f"ZOU_KV_PORT_{side.upper()}", "6379"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def _run(
    python: Path, tree: Path, side: str, extra: dict[str, str], pytest_args: list[str]
) -> None:
    env = _environment(side) | extra
    _recreate_database(python, env)
    xml = RESULTS / f"{side}.xml"
    command = [
        str(python), "-m", "pytest", "-v", "-p", "no:cacheprovider", "-p", "no:randomly",
        f"--junitxml={xml}", "-o", "junit_family=xunit1", *(pytest_args or ["tests"]),
    ]  # fmt: skip
    log = RESULTS / f"{side}.log"
    xml.unlink(missing_ok=True)
    print(f"[{side}] {' '.join(command[1:])} (in {tree}; output in {log})", flush=True)
    with log.open("w", encoding="utf-8") as output:
        done = subprocess.run(
            command, cwd=tree, env=env, stdout=output, stderr=subprocess.STDOUT, check=False
        )
    lines = log.read_text(encoding="utf-8").strip().splitlines()
    print(f"[{side}] exit {done.returncode}: {(lines or ['(no output)'])[-1]}", flush=True)


def _recreate_database(python: Path, env: dict[str, str]) -> None:
    script = (
        "import os, psycopg\n"
        "with psycopg.connect(host=os.environ['DB_HOST'], port=os.environ['DB_PORT'],"
        " user=os.environ['DB_USERNAME'], password=os.environ['DB_PASSWORD'] or None,"
        " dbname='postgres', autocommit=True) as c:\n"
        "    name = os.environ['DB_DATABASE']\n"
        "    c.execute(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)')\n"
        "    c.execute(f'CREATE DATABASE {name}')\n"
        # A test that fails midway (no Meilisearch here) can leave its transaction open, and
        # the next test's setUp then waits on its locks forever: bound both, on both sides.
        "    for setting in ('lock_timeout', 'idle_in_transaction_session_timeout'):\n"
        "        c.execute(f\"ALTER DATABASE {name} SET {setting} = '15s'\")\n"
        # Each test drops and creates zou's tables: no fsync wait per commit (same results).
        "    c.execute(f'ALTER DATABASE {name} SET synchronous_commit = off')\n"
    )
    subprocess.run([str(python), "-c", script], env=env, check=True)


_VERBOSE = re.compile(r"^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", re.M)


def _read(side: str) -> dict[str, Outcome]:
    # From the -v lines (a run stopped before its end still says what ran so far).
    log = RESULTS / f"{side}.log"
    if not log.is_file():
        return {}
    text = log.read_text(encoding="utf-8", errors="replace")
    return {name: word.lower() for name, word in _VERBOSE.findall(text)}


def _counts(outcomes: dict[str, Outcome]) -> str:
    tally: dict[str, int] = {}
    for outcome in outcomes.values():
        tally[outcome] = tally.get(outcome, 0) + 1
    return ", ".join(f"{count} {outcome}" for outcome, count in sorted(tally.items()))


def _report(plain: dict[str, Outcome], swap: dict[str, Outcome]) -> None:
    print(f"without the swap: {len(plain)} tests: {_counts(plain)}")
    print(f"with the swap:    {len(swap)} tests: {_counts(swap)}")
    both = plain.keys() & swap.keys()
    one_side = len(plain.keys() ^ swap.keys())
    if one_side:
        print(f"{one_side} tests ran on one side only (a side stopped early?): not compared")
    differing = sorted(name for name in both if plain[name] != swap[name])
    print(f"{len(differing)} of the {len(both)} tests run on both sides differ:")
    for name in differing:
        print(f"  {name}: {plain[name]} -> {swap[name]}")
    if differing:
        print(f"(pytest output of each side: {RESULTS}/plain.log, {RESULTS}/swap.log)")


if __name__ == "__main__":
    sys.exit(main())
