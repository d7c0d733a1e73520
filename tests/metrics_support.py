"""Helpers of the metrics tests: read an exposition, run the metrics service under gunicorn.

gunicorn runs with ``-c python:cst_chassis.gunicorn_hooks`` and ``PROMETHEUS_MULTIPROC_DIR`` set,
the documented multi-worker set-up.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.metrics_service import SETTINGS_ENV, MetricsServiceSettings
from tests.reliability.support import (
    GRANIAN,
    GUNICORN,
    REPO,
    _free_listening_socket,
    _free_port,
    child_pids,
    wait_until_serving,
)

__all__ = [
    "Samples",
    "ServiceProcess",
    "get",
    "metrics_granian",
    "metrics_gunicorn",
    "parse",
    "wait_until",
]

Labels = frozenset[tuple[str, str]]


class Samples(dict[tuple[str, Labels], float]):
    """One scrape: ``(sample name, labels) -> value``."""

    def value(self, metric: str, /, **labels: str) -> float:
        """The sample with exactly these labels (0 when absent)."""
        return self.get((metric, frozenset(labels.items())), 0.0)

    def total(self, name: str, where: Callable[[dict[str, str]], bool] = lambda _: True) -> float:
        """The sum of every sample named ``name`` whose labels pass ``where``."""
        return sum(
            value
            for (sample, labels), value in self.items()
            if sample == name and where(dict(labels))
        )


def parse(text: str) -> Samples:
    samples = Samples()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def wait_until(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def get(port: int, path: str, timeout: float = 30.0) -> tuple[int, Any]:
    """One GET on a new connection: status and the parsed JSON body (or the text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        raw = response.read().decode()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw
    finally:
        conn.close()


@dataclass
class ServiceProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def scrape(self) -> Samples:
        status, text = get(self.port, "/metrics")
        assert status == 200, text
        return parse(text)

    def worker_pids(self) -> set[int]:
        return child_pids(self.process.pid)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def metrics_gunicorn(
    settings: MetricsServiceSettings,
    directory: Path,
    *,
    workers: int = 2,
    threads: int = 4,
    env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
) -> Iterator[ServiceProcess]:
    """Serve the metrics service under gunicorn, multiprocess metrics in ``directory/prom``."""
    listener = _free_listening_socket()
    port = listener.getsockname()[1]
    prom = directory / "prom"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CST_")}
    environ.update(
        {
            SETTINGS_ENV: settings.to_json(),
            "PYTHONPATH": str(REPO),
            "PROMETHEUS_MULTIPROC_DIR": str(prom),
        }
    )
    environ.update(env or {})
    log_path = directory / f"gunicorn-{port}.log"
    command = [
        str(GUNICORN),
        "-c",
        "python:cst_chassis.gunicorn_hooks",
        "--worker-class=gthread",
        f"--workers={workers}",
        f"--threads={threads}",
        f"--bind=fd://{listener.fileno()}",
        "--graceful-timeout=20",
        "--timeout=60",
        *extra_args,
        "tests.metrics_service:create_app_from_env()",
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=REPO, env=environ, stdout=log, stderr=log, pass_fds=(listener.fileno(),)
        )
    listener.close()
    service = ServiceProcess(process, port, log_path)
    try:
        wait_until_serving(port, lambda: process.poll() is None)
        wait_until(lambda: len(service.worker_pids()) >= workers, 30)
        yield service
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@contextlib.contextmanager
def metrics_granian(
    settings: MetricsServiceSettings,
    directory: Path,
    *,
    workers: int = 2,
    threads: int = 2,
    extra_args: tuple[str, ...] = (),
    interface: str = "wsgi",
) -> Iterator[ServiceProcess]:
    """Serve the metrics service on granian (``interface``: ``wsgi``, or ``asgi`` through
    ``cst_chassis.asgi``), multiprocess metrics as above.

    No server hook: the chassis keeps the directory (created here, as a volume would be).
    """
    prom = directory / "prom"
    prom.mkdir(exist_ok=True)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CST_")}
    environ.update(
        {
            SETTINGS_ENV: settings.to_json(),
            "PYTHONPATH": str(REPO),
            "PROMETHEUS_MULTIPROC_DIR": str(prom),
        }
    )
    port = _free_port()
    log_path = directory / f"granian-{port}.log"
    command = [
        str(GRANIAN),
        f"--interface={interface}",
        f"--workers={workers}",
        *([f"--blocking-threads={threads}"] if interface == "wsgi" else []),
        "--host=127.0.0.1",
        f"--port={port}",
        "--workers-kill-timeout=20",
        *extra_args,
        "--factory",
        "tests.metrics_service:create_app_from_env"
        if interface == "wsgi"
        else "tests.metrics_service:create_asgi_app_from_env",
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, cwd=REPO, env=environ, stdout=log, stderr=log)
    service = ServiceProcess(process, port, log_path)
    try:
        wait_until_serving(port, lambda: process.poll() is None)
        wait_until(lambda: len(service.worker_pids()) >= workers, 30)
        yield service
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
