"""A ``/status`` poll storm while PostgreSQL is silent, on gunicorn, granian (2 workers x 2) and
uvicorn over ASGI (2 workers, 2 threads for sync views).

Issue 25, item 1: PostgreSQL behind a proxy that accepts connections and never answers,
``CST_HEALTH_CHECK_TIMEOUT=1``, 30 and 100 clients polling ``/status`` on keep-alive connections.
Every ``/status`` answers 503 within the timeout plus 2 s, and a request that needs no database
(``/livez``) answers within 2 s, all through the outage. Wall-clock bounds are the feature here.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.reliability.proxy import TcpProxy
from tests.reliability.service import ServiceSettings
from tests.reliability.support import (
    POSTGRES_URL,
    SKIP_POSTGRES,
    ServerProcess,
    granian_server,
    gunicorn_server,
    report,
    service_database,
    uvicorn_server,
)

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_POSTGRES)]

TIMEOUT = 1.0  # CST_HEALTH_CHECK_TIMEOUT
OUTAGE = 6.0  # seconds of storm (several runs of the stuck probe)
# The bounds: /status within the timeout + 2 s, a request without database within 2 s.
STATUS_BOUND = TIMEOUT + 2.0
OTHER_BOUND = 2.0
_APP = "tests.reliability.storm_service"


@dataclass
class Timings:
    statuses: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int, elapsed: float) -> None:
        with self.lock:
            self.statuses.append(status)
            self.times.append(elapsed)

    def worst(self) -> float:
        return max(self.times, default=0.0)


def _keep_alive_poller(port: int, path: str, stop: threading.Event, into: Timings) -> None:
    """GET ``path`` in a loop on one keep-alive connection (a new one only if it drops)."""
    conn: http.client.HTTPConnection | None = None
    while not stop.is_set():
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        started = time.monotonic()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            into.errors.append(f"{path}: {type(exc).__name__}: {exc}")
            conn.close()
            conn = None
            continue
        into.add(response.status, time.monotonic() - started)
        if response.will_close:
            conn.close()
            conn = None
    if conn is not None:
        conn.close()


@contextlib.contextmanager
def _storm(port: int, pollers: int) -> Iterator[tuple[Timings, Timings]]:
    stop = threading.Event()
    status, other = Timings(), Timings()
    threads = [
        threading.Thread(target=_keep_alive_poller, args=(port, "/status", stop, status))
        for _ in range(pollers)
    ]
    threads.append(threading.Thread(target=_keep_alive_poller, args=(port, "/livez", stop, other)))
    for thread in threads:
        thread.start()
    try:
        yield status, other
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)


def _server(
    name: str, settings: ServiceSettings, directory: Path
) -> contextlib.AbstractContextManager[ServerProcess]:
    # 2 workers x 2 threads, as the issue measured; the demo-like app (an async check too).
    if name == "gunicorn":
        return gunicorn_server(
            settings, directory, workers=2, threads=2, app=f"{_APP}:create_app_from_env()"
        )
    if name == "uvicorn":
        return uvicorn_server(
            settings, directory, workers=2, factory=f"{_APP}:create_asgi_app_from_env"
        )
    return granian_server(
        settings, directory, workers=2, threads=2, factory=f"{_APP}:create_app_from_env"
    )


@pytest.mark.parametrize("pollers", [30, 100])
@pytest.mark.parametrize("server_name", ["gunicorn", "granian", "uvicorn"])
def test_status_poll_storm_on_a_silent_database_answers_in_bounded_time(
    server_name: str, pollers: int, tmp_path: Path
) -> None:
    with (
        service_database("postgresql", tmp_path) as database,
        TcpProxy(database.address()) as proxy,
    ):
        settings = database.settings(
            port=proxy.port,
            pool_size=2,
            config={"CST_HEALTH_CHECK_TIMEOUT": TIMEOUT, "CST_HEALTH_CACHE_TTL": 0},
        )
        with _server(server_name, settings, tmp_path) as server:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            conn.request("GET", "/status")
            assert conn.getresponse().status == 200
            conn.close()
            proxy.cut("silent")
            with _storm(server.port, pollers) as (status, other):
                time.sleep(OUTAGE)
            assert server.alive()
    summary = (
        f"poll storm, {server_name} 2x2, {pollers} keep-alive pollers, silent PostgreSQL, "
        f"timeout {TIMEOUT:g} s: {len(status.times)} /status (slowest {status.worst():.2f} s), "
        f"{len(other.times)} /livez (slowest {other.worst():.2f} s)"
    )
    report(summary)
    print(summary)
    assert status.errors == [] and other.errors == []
    assert len(status.times) >= pollers and len(other.times) >= 2, summary
    assert set(status.statuses) == {503}, summary
    assert set(other.statuses) == {200}, summary
    assert status.worst() < STATUS_BOUND, summary
    assert other.worst() < OTHER_BOUND, summary
