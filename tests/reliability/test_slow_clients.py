"""Slow clients against the documented set-up: granian (2 workers x 2 threads), issue 25 item 6.

50 connections trickle a request's header bytes (slowloris); ``/livez``, on connections of its
own, keeps answering within 2 s the whole time. On granian the headers are read by its Rust
runtime, not by the Python threads; a thread-per-request server (gunicorn's gthread worker) reads
them in a Python thread, so 4 such connections hold every thread of a 2x2 service (measured:
``/livez`` timed out): there a buffering proxy must stand in front (the Deployment page).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.support import granian_server, report, service_database

pytestmark = pytest.mark.slow

TRICKLERS = 50
DURATION = 6.0  # seconds of trickling while /livez is polled
BOUND = 2.0  # the longest /livez may take (timing is the feature here)


@contextlib.contextmanager
def _tricklers(port: int, count: int, stop: threading.Event) -> Iterator[list[str]]:
    """``count`` connections that send one header byte every 0.2 s until ``stop``."""
    endings: list[str] = []

    def trickle() -> None:
        request = b"GET /livez HTTP/1.1\r\nHost: slow\r\n" + b"X-Padding: " + b"a" * 10_000
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                for byte in request:
                    if stop.is_set():
                        endings.append("stopped")
                        return
                    sock.sendall(bytes([byte]))
                    time.sleep(0.2)
        except OSError:  # the server closed it: what a header read timeout does
            endings.append("closed by server")
            return
        endings.append("sent everything")

    threads = [threading.Thread(target=trickle) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield endings
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


def test_trickling_clients_do_not_starve_livez_on_granian(tmp_path: Path) -> None:
    with (
        service_database("sqlite", tmp_path) as database,
        granian_server(database.settings(), tmp_path, workers=2, threads=2) as server,
    ):
        stop = threading.Event()
        times: list[float] = []
        statuses: list[int] = []
        with _tricklers(server.port, TRICKLERS, stop) as endings:
            time.sleep(0.5)  # every trickler connected and sending
            deadline = time.monotonic() + DURATION
            while time.monotonic() < deadline:
                started = time.monotonic()
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                try:
                    conn.request("GET", "/livez")
                    statuses.append(conn.getresponse().status)
                finally:
                    conn.close()
                times.append(time.monotonic() - started)
                time.sleep(0.1)
        assert server.alive()
    summary = (
        f"slow clients, granian 2x2, {TRICKLERS} connections trickling headers: "
        f"{len(times)} /livez, slowest {max(times):.3f} s; tricklers: "
        f"{ {e: endings.count(e) for e in set(endings)} }"
    )
    report(summary)
    print(summary)
    assert set(statuses) == {200}, summary
    assert max(times) < BOUND, summary
