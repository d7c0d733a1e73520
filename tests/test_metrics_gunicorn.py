"""Metrics, probes and shutdown on a real gunicorn (gthread, 2 workers x threads).

The documented set-up (``-c python:cst_chassis.gunicorn_hooks``, ``PROMETHEUS_MULTIPROC_DIR``):
a scrape of any worker reports the exact totals of the service; pool gauges follow connections
held in both workers; SIGTERM turns readiness 503 while requests in flight finish; a silent
database does not stall the service however many clients poll ``/status``.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.metrics_service import MetricsServiceSettings
from tests.metrics_support import get, metrics_gunicorn, wait_until
from tests.reliability.proxy import TcpProxy
from tests.reliability.support import (
    POSTGRES_URL,
    SKIP_POSTGRES,
    ServiceDatabase,
    service_database,
)

# Servers, subprocesses or brokers: left out of `make check` (the Makefile).
pytestmark = pytest.mark.slow

KINDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_POSTGRES)),
]
REQUEST_COUNT = "cst_http_request_duration_seconds_count"
# Routes a test's own plumbing hits (start-up polls, scrapes): left out of "what was sent".
PLUMBING = {"/status", "/metrics", "/readyz", "/livez"}

# path sent -> (route template, status) it must be counted under
MIX: dict[str, tuple[str, str]] = {
    "/sync": ("/sync", "200"),
    "/async": ("/async", "200"),
    "/items?limit=5": ("/items", "200"),
    "/items?limit=abc": ("/items", "400"),
    "/items/7": ("/items/<int:item_id>", "200"),
    "/items/4242": ("/items/<int:item_id>", "404"),
    "/invalid": ("/invalid", "400"),
    "/boom": ("/boom", "500"),
    "/no/such/path": ("<unmatched>", "404"),
    "/another-unknown": ("<unmatched>", "404"),
}


def settings(database: ServiceDatabase, release_dir: Path, **config: Any) -> MetricsServiceSettings:
    return MetricsServiceSettings(
        database_url=database.url,
        async_database_url=database.async_url,
        release_dir=str(release_dir),
        connect_args=database.connect_args,
        async_connect_args=database.async_connect_args,
        config=config,
    )


@pytest.fixture(params=KINDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceDatabase]:
    with service_database(str(request.param), tmp_path) as database:
        yield database


def _send_mix(port: int, rounds: int) -> tuple[Counter[tuple[str, str]], set[int]]:
    """Send ``rounds`` times every request of MIX, 8 at a time; return what was sent, and pids."""
    plan = [path for path in MIX for _ in range(rounds)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda path: (path, *get(port, path)), plan))
    sent: Counter[tuple[str, str]] = Counter()
    pids: set[int] = set()
    for path, status, body in answers:
        route, expected = MIX[path]
        assert str(status) == expected, (path, status, body)
        sent[(route, expected)] += 1
        if isinstance(body, dict) and isinstance(body.get("data"), dict):
            pids.add(body["data"].get("pid", 0))
    return sent, pids - {0}


def test_scrape_reports_exact_counts_of_every_worker(
    database: ServiceDatabase, tmp_path: Path
) -> None:
    with metrics_gunicorn(settings(database, tmp_path), tmp_path, threads=4) as service:
        sent: Counter[tuple[str, str]] = Counter()
        pids: set[int] = set()
        # Until both workers have answered some of it (the kernel picks who accepts).
        for _ in range(20):
            more, seen = _send_mix(service.port, rounds=3)
            sent += more
            pids |= seen
            if len(pids) >= 2:
                break
        assert len(pids) >= 2, "one worker answered everything: no cross-worker proof"
        total = sum(sent.values())

        for _ in range(4):  # whichever worker answers the scrape, the totals are the same
            samples = service.scrape()
            counted = {
                (labels["route"], labels["status"]): value
                for (name, label_set), value in samples.items()
                if name == REQUEST_COUNT and (labels := dict(label_set))["route"] not in PLUMBING
            }
            assert counted == {key: float(n) for key, n in sent.items()}
            assert (
                samples.total(REQUEST_COUNT, lambda labels: labels["route"] not in PLUMBING)
                == total
            )
            # the histogram's +Inf bucket is its count
            assert (
                samples.total(
                    "cst_http_request_duration_seconds_bucket",
                    lambda labels: labels["le"] == "+Inf" and labels["route"] not in PLUMBING,
                )
                == total
            )
            boom = sent[("/boom", "500")]
            assert (
                samples.value(
                    "cst_http_exceptions_total",
                    method="GET",
                    route="/boom",
                    exception="builtins.RuntimeError",
                )
                == boom
            )
            assert (
                samples.value(
                    "cst_pagination_rejections_total", parameter="limit", reason="invalid"
                )
                == sent[("/items", "400")]
            )
            assert samples.value("cst_build_info", name="Cst-Metrics-Service", version="9.9.9") == 1
            assert samples.value("cst_async_coroutines_in_flight") == 0
            # the scrape itself is the one request in flight
            assert samples.value("cst_http_requests_in_flight") == 1


def test_pool_gauges_rise_while_connections_are_held(
    database: ServiceDatabase, tmp_path: Path
) -> None:
    with metrics_gunicorn(settings(database, tmp_path), tmp_path, threads=8) as service:
        # A worker's pid exists before it has loaded the app (and watched its pool): wait for
        # both instead of reading the first scrape.
        wait_until(
            lambda: service.scrape().value("cst_db_pool_size", database="default") == 2 * 5
        )  # workers x size
        before = service.scrape()
        assert before.value("cst_db_pool_checked_out", database="default") == 0
        names = [f"hold{i}" for i in range(6)]  # fewer than one worker's threads: scrapes go on
        with ThreadPoolExecutor(len(names)) as pool:
            answers = [pool.submit(get, service.port, f"/hold/{name}") for name in names]
            wait_until(lambda: all((tmp_path / f"{n}.started").exists() for n in names))
            held = service.scrape()
            assert held.value("cst_db_pool_checked_out", database="default") == len(names)
            for name in names:
                (tmp_path / name).touch()
            assert [answer.result()[0] for answer in answers] == [200] * len(names)
        wait_until(
            lambda: service.scrape().value("cst_db_pool_checked_out", database="default") == 0
        )


@pytest.mark.parametrize("kind", ["counter", "histogram", "gauge_livesum", "gauge_livemax"])
def test_a_worker_file_not_sized_yet_does_not_fail_the_scrape(kind: str, tmp_path: Path) -> None:
    # A booting worker creates its values file empty, then sizes it: a scrape in between met a
    # file with no header, and prometheus_client's reader failed the whole scrape (a 500, seen
    # in test_pool_gauges_rise_while_connections_are_held while the workers booted).
    with (
        service_database("sqlite", tmp_path) as database,
        metrics_gunicorn(settings(database, tmp_path), tmp_path, workers=1) as service,
    ):
        assert get(service.port, "/items/1")[0] == 200
        (tmp_path / "prom" / f"{kind}_999999.db").touch()  # a pid no worker has
        samples = service.scrape()
        route = "/items/<int:item_id>"
        assert samples.value(REQUEST_COUNT, method="GET", route=route, status="200") == 1


def test_sigterm_turns_readiness_503_while_requests_in_flight_finish(
    database: ServiceDatabase, tmp_path: Path
) -> None:
    names = ["sync-a", "sync-b", "async-a", "async-b"]
    with metrics_gunicorn(settings(database, tmp_path), tmp_path, threads=4) as service:
        assert get(service.port, "/readyz")[0] == 200
        for name in names:
            (tmp_path / f"{name}.await-shutdown").touch()
        with ThreadPoolExecutor(len(names)) as pool:
            answers = {
                name: pool.submit(
                    get, service.port, f"/hold{'-async' if 'async' in name else ''}/{name}"
                )
                for name in names
            }
            wait_until(lambda: all((tmp_path / f"{n}.started").exists() for n in names))
            service.process.send_signal(signal.SIGTERM)
            for name in names:
                (tmp_path / name).touch()
            results = {name: answer.result() for name, answer in answers.items()}
        for name, (status, body) in results.items():
            assert status == 200, (name, body)
            assert body["data"]["held"] == name
            assert body["data"]["readiness"] == 503, "readiness still 200 after SIGTERM"
        service.process.wait(timeout=30)
        assert service.process.returncode == 0, service.log_text()[-2000:]


@pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_POSTGRES)
def test_status_polls_do_not_stall_the_service_while_the_database_is_silent(
    tmp_path: Path,
) -> None:
    """Issue 16, item 1: 2 workers x 2 threads, 24 clients polling /status, database silent."""
    timeout, margin = 1.0, 1.5  # margin: scheduling on 2 shared cores
    with (
        service_database("postgresql", tmp_path) as database,
        TcpProxy(database.address()) as proxy,
    ):
        through = database.settings(port=proxy.port)
        # No health cache: every poll meets the silent database (the default would answer the
        # 200 of the poll before the cut for 5 s).
        config = {"CST_HEALTH_CHECK_TIMEOUT": timeout, "CST_HEALTH_CACHE_TTL": 0}
        service_settings = MetricsServiceSettings(
            database_url=through.database_url,
            async_database_url=through.async_database_url,
            release_dir=str(tmp_path),
            connect_args=through.connect_args,
            async_connect_args=through.async_connect_args,
            config=config,
        )
        with metrics_gunicorn(service_settings, tmp_path, threads=2) as service:
            assert get(service.port, "/status")[0] == 200
            proxy.cut("silent")
            stop = threading.Event()
            status_times: list[tuple[int, float]] = []
            other_times: list[tuple[int, float]] = []

            def poll(path: str, into: list[tuple[int, float]]) -> None:
                while not stop.is_set():
                    started = time.monotonic()
                    status, _ = get(service.port, path, timeout=30)
                    into.append((status, time.monotonic() - started))

            threads = [
                threading.Thread(target=poll, args=("/status", status_times)) for _ in range(24)
            ]
            threads.append(threading.Thread(target=poll, args=("/items/3", other_times)))
            for thread in threads:
                thread.start()
            time.sleep(6)  # the outage: several runs of the stuck probe
            stop.set()
            for thread in threads:
                thread.join(60)
        assert len(status_times) > 24 and len(other_times) > 3
        assert {status for status, _ in status_times} == {503}
        assert {status for status, _ in other_times} == {200}
        worst_status = max(elapsed for _, elapsed in status_times)
        worst_other = max(elapsed for _, elapsed in other_times)
        print(  # the figures, shown with pytest -rP
            f"silent database, 24 pollers on 2x2 threads: {len(status_times)} /status answers, "
            f"slowest {worst_status:.2f} s; {len(other_times)} /items/3, "
            f"slowest {worst_other:.2f} s"
        )
        assert worst_status < timeout + margin, f"/status took {worst_status:.2f} s"
        assert worst_other < timeout + margin, f"/items/3 took {worst_other:.2f} s"


# --- a real Prometheus server -------------------------------------------------------------------

PROMETHEUS = shutil.which("prometheus")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _query(port: int, promql: str) -> list[dict[str, Any]]:
    from urllib.parse import urlencode

    status, body = get(port, "/api/v1/query?" + urlencode({"query": promql}))
    assert status == 200 and body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_prometheus_server_scrapes_the_exact_request_count(tmp_path: Path) -> None:
    if PROMETHEUS is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed; .ci/run installs Debian's package")
        pytest.skip("prometheus is not installed (apt-get install prometheus; CI installs it)")
    with (
        service_database("sqlite", tmp_path) as database,
        metrics_gunicorn(settings(database, tmp_path), tmp_path) as service,
    ):
        sent = 37
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda _: get(service.port, "/sync")[0], range(sent)))
        assert statuses == [200] * sent
        port = _free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: cst-service\n"
            "    metrics_path: /metrics\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{service.port}']\n"
        )
        log = (tmp_path / "prometheus.log").open("wb")
        prometheus = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=log,
        )
        try:
            promql = 'sum(cst_http_request_duration_seconds_count{job="cst-service",route="/sync"})'

            def scraped() -> bool:
                try:
                    result = _query(port, promql)
                except (OSError, http.client.HTTPException, AssertionError):
                    return False
                return bool(result) and float(result[0]["value"][1]) == sent

            wait_until(scraped, seconds=60)
            up = _query(port, 'up{job="cst-service"}')
            assert [float(sample["value"][1]) for sample in up] == [1.0]
        finally:
            prometheus.terminate()
            prometheus.wait(timeout=30)
            log.close()
