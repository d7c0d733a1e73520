"""``PROMETHEUS_MULTIPROC_DIR`` under worker recycling, on gunicorn and granian (WSGI and ASGI;
issue 25, 2-3).

gunicorn ``--max-requests 50`` and 2,000 requests (some 40 worker boots), granian workers
respawned by ``SIGHUP`` (what ``--workers-lifetime`` does, minutes apart): the directory stays
bounded by the live workers plus the archive, and a scrape still reports exactly the requests
sent.
"""

from __future__ import annotations

import re
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cst_chassis._multiprocess import ARCHIVE
from tests.metrics_service import MetricsServiceSettings
from tests.metrics_support import ServiceProcess, get, metrics_granian, metrics_gunicorn, wait_until
from tests.reliability.support import service_database

pytestmark = pytest.mark.slow

ROUTE = "/items/<int:item_id>"
COUNT = "cst_http_request_duration_seconds_count"
# prometheus_client's files per process: counter, histogram, and the chassis's three gauge modes.
FILES_PER_PROCESS = 5
ARCHIVE_FILES = 2  # counter_archive.db and histogram_archive.db (live gauges are dropped)
_PID_FILE = re.compile(r"[a-z_]+_([0-9]+)\.db")


def _settings(url: str, tmp_path: Path) -> MetricsServiceSettings:
    return MetricsServiceSettings(
        database_url=url, async_database_url=url.replace("sqlite", "sqlite+aiosqlite"),
        release_dir=str(tmp_path),
    )  # fmt: skip


def _send(port: int, count: int) -> None:
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda i: get(port, f"/items/{i % 100}")[0], range(count)))
    assert statuses == [200] * count


def _directory_state(service: ServiceProcess, prom: Path) -> tuple[int, int, set[int]]:
    files = [path for path in prom.iterdir() if path.suffix == ".db"]
    pids = {int(match[1]) for path in files if (match := _PID_FILE.fullmatch(path.name))}
    return len(files), sum(path.stat().st_size for path in files), pids


def _check_bounded(service: ServiceProcess, prom: Path, label: str) -> None:
    samples = service.scrape()  # a scrape folds what the workers that exited left
    files, size, pids = _directory_state(service, prom)
    live = service.worker_pids() | {service.process.pid}
    print(f"{label}: {files} files / {size / 1e6:.2f} MB in PROMETHEUS_MULTIPROC_DIR")
    assert pids <= live, f"files of dead workers left: {sorted(pids - live)}"
    assert files <= FILES_PER_PROCESS * len(live) + ARCHIVE_FILES + 5, sorted(prom.iterdir())
    assert (prom / f"counter_{ARCHIVE}.db").exists()
    del samples


def test_gunicorn_max_requests_keeps_the_directory_bounded_and_the_totals_exact(
    tmp_path: Path,
) -> None:
    sent = 2000
    with (
        service_database("sqlite", tmp_path) as database,
        metrics_gunicorn(
            _settings(database.url, tmp_path),
            tmp_path,
            threads=2,
            extra_args=("--max-requests=50", "--max-requests-jitter=0"),
        ) as service,
    ):
        _send(service.port, sent)
        prom = tmp_path / "prom"
        _check_bounded(service, prom, f"gunicorn 2x2 --max-requests 50, {sent} requests")
        wait_until(lambda: service.scrape().total(COUNT, lambda x: x["route"] == ROUTE) == sent)
        assert service.scrape().total(COUNT, lambda x: x["route"] == ROUTE) == sent


@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
def test_granian_respawned_workers_keep_the_directory_bounded_and_the_totals_exact(
    interface: str, tmp_path: Path
) -> None:
    sent = 0
    with (
        service_database("sqlite", tmp_path) as database,
        metrics_granian(
            _settings(database.url, tmp_path),
            tmp_path,
            extra_args=("--respawn-interval=0.2",),
            interface=interface,
        ) as service,
    ):
        for respawn in range(1, 4):
            _send(service.port, 200)
            sent += 200
            service.process.send_signal(signal.SIGHUP)  # granian respawns every worker
            # Until both new workers serve (granian refuses connections in between).
            started = 2 + 2 * respawn
            wait_until(lambda n=started: service.log_text().count("Started worker-") >= n, 60)  # type: ignore[misc]  # a default binds the loop value
            wait_until(lambda n=respawn: service.log_text().count("Stopped old worker-") >= 2 * n)  # type: ignore[misc]  # a default binds the loop value
        _send(service.port, 100)
        sent += 100
        _check_bounded(
            service, tmp_path / "prom", f"granian {interface.upper()} 2 workers, 3 respawns"
        )
        assert service.scrape().total(COUNT, lambda x: x["route"] == ROUTE) == sent
