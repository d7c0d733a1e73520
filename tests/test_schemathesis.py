"""schemathesis (from the registry, written by no one here) against the demo on a real server.

The demo is served by gunicorn on loopback, on SQLite and on PostgreSQL; schemathesis reads the
document the demo serves and runs every phase (examples, coverage, fuzzing, stateful) with
every check (``-c all``): server errors, status codes, content types, response schemas and
headers, negative data refused, **schema-valid data accepted**, the ``Allow`` header of a 405...
Any failure is a bug in the document or in the service, with one exception that no schema can
prevent: a generated keyset cursor is refused (see tests/schemathesis_hooks.py, which replaces
``positive_data_acceptance`` by the same check minus exactly that refusal).

``CST_SCHEMATHESIS_MAX_EXAMPLES`` (default 25 per operation) bounds the run to a couple of
minutes; ``CST_SCHEMATHESIS_SEED`` replays one run (its seed is printed in the output).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from examples.demo.__main__ import prepare
from examples.demo.app import create_app
from tests import demo_support
from tests.conftest import POSTGRES_URL, SKIP_POSTGRES

REPO = Path(__file__).resolve().parent.parent
HOOKS = Path(__file__).resolve().parent / "schemathesis_hooks.py"

# Servers, subprocesses or brokers: left out of `make check` (the Makefile).
pytestmark = pytest.mark.slow
MAX_EXAMPLES = os.environ.get("CST_SCHEMATHESIS_MAX_EXAMPLES", "25")
RUN_SECONDS = 600
START_SECONDS = 60
# Every operation of the document: /products (GET, POST), /products/by-price,
# /products/{product_id}, /products/{product_id}/quote, /relay, /status.
OPERATIONS = 7


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_POSTGRES),
            ],
        ),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, seeded demo database: a SQLite file, or a private PostgreSQL schema."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'demo.db'}"
        else:
            assert POSTGRES_URL is not None
            options = stack.enter_context(demo_support.postgres_schema())
            url = (
                make_url(POSTGRES_URL)
                .update_query_dict({"options": options})
                .render_as_string(hide_password=False)
            )
        app = create_app(url)
        try:
            prepare(app)
        finally:
            demo_support.dispose_demo(app)
        yield url


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/livez", timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def served_demo(database_url: str, tmp_path: Path) -> Iterator[str]:
    """The demo under gunicorn (2 threads) on a loopback socket this test bound (free port)."""
    listener = socket.create_server(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CST_")}
    env.update(
        DATABASE_URL=database_url,
        CST_CURSOR_SECRET=secrets.token_urlsafe(32),
        # /relay calls this very server's /status.
        DEMO_UPSTREAM_URL=f"{base}/status",
        PYTHONUNBUFFERED="1",
    )
    log = tmp_path / "gunicorn.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                f"--bind=fd://{listener.fileno()}",
                "--workers=1",
                "--threads=4",
                "--graceful-timeout=10",
                # No request-line limit: schemathesis generates query strings of several KB, and
                # gunicorn's default 4094-byte limit answers 414 from the server, before the app
                # (a status no app's document lists; seen once in a CI rehearsal, stateful phase).
                "--limit-request-line=0",
                "examples.demo.app:create_app()",
            ],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            pass_fds=[listener.fileno()],
        )
    listener.close()  # gunicorn holds its own copy
    try:
        for _ in range(START_SECONDS * 10):
            if _ready(base) or server.poll() is not None:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(0.1)
        assert _ready(base), log.read_text()
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
    server_log = log.read_text()
    assert "Traceback" not in server_log, server_log
    assert "[ERROR]" not in server_log, server_log


def test_schemathesis_with_every_check_finds_no_failure_in_the_served_demo(
    served_demo: str, tmp_path: Path
) -> None:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{served_demo}/openapi.json",
        "--checks=all",
        # Replaced by the hooks' positive_data_acceptance_but_opaque_cursors.
        "--exclude-checks=positive_data_acceptance",
        f"--max-examples={MAX_EXAMPLES}",
        "--workers=1",
        "--request-timeout=10",
        "--no-color",
        "--generation-database=none",
    ]
    if seed := os.environ.get("CST_SCHEMATHESIS_SEED"):
        command.append(f"--seed={seed}")
    hook_log = tmp_path / "hook.log"
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(HOOKS),
        "CST_SCHEMATHESIS_HOOK_LOG": str(hook_log),
    }
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_SECONDS
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "No issues found" in output, output
    assert f"Tested: {OPERATIONS}" in output, output
    # The replacement check ran; the refusals it let through were signed cursors only.
    events = hook_log.read_text().splitlines()
    assert "checked" in events, output
    assert set(events) <= {"checked", "cursor refused"}
