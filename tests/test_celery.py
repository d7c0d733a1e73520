"""Celery: tasks sent during a request run in a real worker process with the request's operation
id and trace, on the real RabbitMQ and Redis brokers of this machine."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from celery import Celery
from flask import Flask
from kombu import Queue

from cst_chassis import get_operation_id
from cst_chassis.tracing import get_trace_context
from tests.apps.celery_worker import make_celery
from tests.conftest import AppFactory
from tests.tracing_support import serve

# Servers, subprocesses or brokers: left out of `make check` (the Makefile).
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
BROKERS = {
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672//", 5672),
    "redis": ("redis://127.0.0.1:6379/0", 6379),
}
WAIT_SECONDS = 120


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


@dataclass
class Worker:
    celery: Celery
    log_path: Path

    def lines(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                found.append(json.loads(line))
        return found

    def wait_for(self, count: int, prefix: str) -> list[dict[str, Any]]:
        """The worker's log lines whose message starts with ``prefix``, once ``count`` exist."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            matching = [line for line in self.lines() if line["message"].startswith(prefix)]
            if len(matching) >= count or time.monotonic() > deadline:
                return matching
            time.sleep(0.2)


@pytest.fixture(params=sorted(BROKERS))
def worker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Worker]:
    broker, port = BROKERS[request.param]
    if not _answers(port):
        pytest.skip(f"no {request.param} broker answers on 127.0.0.1:{port}")
    queue = f"cst-test-{uuid.uuid4().hex[:12]}"
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "CST_TEST_CELERY_BROKER": broker,
        "CST_TEST_CELERY_QUEUE": queue,
        "CST_LOG_FORMAT": "json",
        "PYTHONPATH": str(REPO),
    }
    command = [
        sys.executable, "-m", "celery", "-A", "tests.apps.celery_worker", "worker",
        "--pool", "threads", "--concurrency", "4", "-Q", queue, "-n", f"{queue}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
    ]  # fmt: skip
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    celery = make_celery(broker, queue)
    try:
        yield Worker(celery, log_path)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        with celery.connection_for_write() as connection:
            Queue(queue).bind(connection.default_channel).delete()
        celery.close()


@pytest.fixture
def web(make_app: AppFactory, worker: Worker) -> Iterator[str]:
    app: Flask = make_app("shop")

    @app.get("/enqueue/<int:n>")
    def enqueue(n: int) -> dict[str, Any]:
        worker.celery.send_task("cst_test.record", args=[n])
        trace = get_trace_context()
        assert trace is not None
        return {"operation_id": get_operation_id(), "trace_id": trace.trace_id}

    @app.get("/relay/<int:n>")
    def relay(n: int) -> dict[str, Any]:
        worker.celery.send_task("cst_test.relay", args=[n])
        return {"operation_id": get_operation_id()}

    with serve(app) as url:
        yield url


def test_the_worker_logs_the_requests_operation_id_and_trace(web: str, worker: Worker) -> None:
    body = requests.get(
        f"{web}/enqueue/1", headers={"X-Operation-ID": "order-1"}, timeout=10
    ).json()
    [line] = worker.wait_for(1, "task 1 ran")
    assert line["operation_id"] == "order-1"
    assert line["trace_id"] == body["trace_id"]
    assert line["logger"] == "tasks"


def test_200_tasks_from_concurrent_requests_keep_their_ids(web: str, worker: Worker) -> None:
    def call(n: int) -> dict[str, Any]:
        response = requests.get(
            f"{web}/enqueue/{n}", headers={"X-Operation-ID": f"op-{n}"}, timeout=30
        )
        result: dict[str, Any] = response.json()
        return result

    with ThreadPoolExecutor(max_workers=8) as pool:
        bodies = list(pool.map(call, range(200)))
    lines = worker.wait_for(200, "task ")
    assert len(lines) == 200
    mixed = []
    for line in lines:
        n = int(line["message"].split()[1])
        if (line["operation_id"], line["trace_id"]) != (f"op-{n}", bodies[n]["trace_id"]):
            mixed.append(line)
    assert mixed == []


def test_tasks_sent_by_a_task_pass_the_ids_on(web: str, worker: Worker) -> None:
    requests.get(f"{web}/relay/7", headers={"X-Operation-ID": "relay-7"}, timeout=10)
    [relay] = worker.wait_for(1, "relay 7 ran")
    [record] = worker.wait_for(1, "task 7 ran")
    assert relay["operation_id"] == record["operation_id"] == "relay-7"
    assert relay["trace_id"] == record["trace_id"]
    assert relay["span_id"] != record["span_id"]


def test_a_task_sent_outside_a_request_gets_a_fresh_id(worker: Worker) -> None:
    assert get_operation_id() is None
    worker.celery.send_task("cst_test.record", args=[-1])
    worker.celery.send_task("cst_test.record", args=[-2])
    [first] = worker.wait_for(1, "task -1 ran")
    [second] = worker.wait_for(1, "task -2 ran")
    assert first["operation_id"] is not None
    assert second["operation_id"] is not None
    assert first["operation_id"] != second["operation_id"]
    assert first["operation_id"].replace("-", "") == first["trace_id"]


def test_a_task_run_eagerly_in_a_request_keeps_the_requests_ids(make_app: AppFactory) -> None:
    celery = make_celery("memory://", "eager")
    celery.conf.task_always_eager = True
    seen: list[str | None] = []

    @celery.task(name="cst_test.eager")
    def eager() -> None:
        seen.append(get_operation_id())

    app = make_app()

    @app.get("/eager")
    def run() -> str:
        eager.delay()
        assert get_operation_id() == "eager-1"
        return "ok"

    response = app.test_client().get("/eager", headers={"X-Operation-ID": "eager-1"})
    assert response.status_code == 200
    assert seen == ["eager-1"]
