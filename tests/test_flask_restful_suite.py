"""flask-restful 0.3.10's own tests, downloaded from the registry, with and without ChassisApi.

``plain`` runs them as flask-restful ships them (proves which failures are flask-restful's own
on this Python/Flask/Werkzeug); ``chassis`` swaps ``flask_restful.Api`` for ``ChassisApi``. Each
expected failure is a strict xfail with its reason (tests/flask_restful_suite/), so a new
failure and an unexpected pass both fail here.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.third_party import ROOT, fetch_sdist

# Servers, subprocesses or brokers: left out of `make check` (the Makefile).
pytestmark = pytest.mark.slow

SUITE = ["test_api.py", "test_api_with_blueprint.py", "test_accept.py", "test_cors.py"]


@pytest.mark.parametrize("mode", ["plain", "chassis"])
def test_flask_restful_suite_passes_but_for_listed_failures(mode: str) -> None:
    source = fetch_sdist("flask-restful==0.3.10", "Flask-RESTful-0.3.10")
    env = {
        **os.environ,
        "CST_FR_SUITE_API": mode,
        "PYTHONPATH": str(ROOT / "tests" / "flask_restful_suite"),
    }
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "cst_fr_suite_plugin"),
            *("-p", "no:cacheprovider", "-p", "no:logging", "-o", "addopts=", "--tb=short"),
            *(f"tests/{name}" for name in SUITE),
        ],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "xfailed" in result.stdout
