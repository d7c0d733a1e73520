"""granian's WSGI interface as the Deployment page runs it: SIGTERM, and a start-up error.

Readiness answers 503 on SIGTERM while requests finish.
granian has no worker hook; the chassis wraps the SIGTERM handler granian installs in each worker
(:mod:`cst_chassis._server_signals`). The held requests ask readiness (in-process) once the
signal has arrived. granian 2.8 closes its listener at once on SIGTERM: a probe made during the
drain is refused (the kubelet counts that as a failure too), or, should a release keep the
listener open, it must be answered 503.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.metrics_service import MetricsServiceSettings
from tests.metrics_support import get, metrics_granian, wait_until
from tests.reliability.support import GRANIAN, REPO, _free_port, service_database

pytestmark = pytest.mark.slow


def test_sigterm_turns_readiness_503_on_granian_while_requests_in_flight_finish(
    tmp_path: Path,
) -> None:
    names = ["sync-a", "sync-b"]
    with service_database("sqlite", tmp_path) as database:
        settings = MetricsServiceSettings(
            database_url=database.url,
            async_database_url=database.async_url,
            release_dir=str(tmp_path),
        )
        with metrics_granian(settings, tmp_path, workers=1, threads=4) as service:
            assert get(service.port, "/readyz")[0] == 200
            for name in names:
                (tmp_path / f"{name}.await-shutdown").touch()
            with ThreadPoolExecutor(len(names)) as pool:
                answers = {name: pool.submit(get, service.port, f"/hold/{name}") for name in names}
                wait_until(lambda: all((tmp_path / f"{n}.started").exists() for n in names))
                service.process.send_signal(signal.SIGTERM)
                time.sleep(0.5)  # the signal reaches the worker (no event to wait on from here)
                try:
                    during: object = get(service.port, "/readyz", timeout=10)[0]
                except ConnectionRefusedError:
                    during = "refused"
                for name in names:
                    (tmp_path / name).touch()
                results = {name: answer.result() for name, answer in answers.items()}
            service.process.wait(timeout=30)
            assert service.process.returncode == 0, service.log_text()[-2000:]
    for name, (status, body) in results.items():
        assert status == 200, (name, body)
        assert body["data"]["readiness"] == 503, "readiness still 200 after SIGTERM"
    assert during in ("refused", 503), during


NO_SECRET_APP = """
from flask import Flask
from cst_chassis import ChassisApi, CstMicroChassis
from cst_chassis.resources import ApiPaginatedMixin, ApiResource


class Listing(ApiPaginatedMixin, ApiResource):
    pagination_mode = "keyset"

    def get(self) -> object:
        return []


def create_app() -> Flask:
    app = Flask("no-secret")
    CstMicroChassis().init_app(app)
    ChassisApi(app).add_resource(Listing, "/items")
    return app
"""


def test_a_missing_cursor_secret_stops_granian_once_with_the_message(tmp_path: Path) -> None:
    # Issue 25, item 3: granian restarted its workers in a loop. The Kubernetes example runs
    # granian without --respawn-failed-workers (restarts are the kubelet's, with its back-off):
    # then a worker that fails to build the app stops granian at once, exit 1, the message in
    # the output. (With --respawn-failed-workers granian's own crash-loop detection depends on
    # timing: measured 4 worker starts on a quiet machine, 6 and more on a loaded one.)
    (tmp_path / "no_secret_app.py").write_text(NO_SECRET_APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CST_")}
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{REPO}"
    command = [
        str(GRANIAN), "--interface", "wsgi", "--factory", "no_secret_app:create_app",
        "--host", "127.0.0.1", "--port", str(_free_port()), "--workers", "2",
        "--blocking-threads", "8", "--workers-kill-timeout", "30", "--no-access-log",
        "--log-level", "info",
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "CursorSecretError: keyset pagination signs its cursors: set CST_CURSOR_SECRET" in output
    assert output.count("Spawning worker-") == 2, output  # the first two, never respawned
    assert "Respawning" not in output, output
