"""schemathesis (from the registry, written by no one here) against the demo on a real server.

The demo is served by Werkzeug's threaded server on loopback, on SQLite and on PostgreSQL;
schemathesis reads the document the demo serves and runs every phase (examples, coverage,
fuzzing, stateful) with its checks for server errors, status codes, content types, response
schemas and response headers. Any failure is a bug in the document or in the service.

``CST_SCHEMATHESIS_MAX_EXAMPLES`` (default 25 per operation) bounds the run to a couple of
minutes; ``CST_SCHEMATHESIS_SEED`` replays one run (its seed is printed in the output).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from examples.demo.resources import UPSTREAM_CONFIG_KEY
from tests import demo_support

demo_on_each_database = demo_support.demo_on_each_database

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)

# Servers, subprocesses or brokers: left out of `make check` (the Makefile).
pytestmark = pytest.mark.slow
MAX_EXAMPLES = os.environ.get("CST_SCHEMATHESIS_MAX_EXAMPLES", "25")
RUN_SECONDS = 480


@pytest.fixture
def served_demo(demo_on_each_database: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, demo_on_each_database, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    demo_on_each_database.config[UPSTREAM_CONFIG_KEY] = f"{base}/status"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_schemathesis_finds_no_failure_in_the_served_demo(
    served_demo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{served_demo}/openapi.json",
        f"--checks={','.join(CHECKS)}",
        f"--max-examples={MAX_EXAMPLES}",
        "--workers=1",
        "--request-timeout=10",
        "--no-color",
        "--generation-database=none",
    ]
    if seed := os.environ.get("CST_SCHEMATHESIS_SEED"):
        command.append(f"--seed={seed}")
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_SECONDS
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "No issues found" in output, output
    # Every operation was exercised: the document lists six.
    assert "Tested: 6" in output, output
    server_log = capsys.readouterr()
    assert "Traceback" not in server_log.out + server_log.err
