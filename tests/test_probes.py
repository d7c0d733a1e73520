"""Liveness and readiness: what each answers, what each touches, and their config keys.

SIGTERM under gunicorn (readiness 503 while requests finish) is in ``test_metrics_gunicorn.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask

from cst_chassis import ChassisConfigError, CstMicroChassis, async_bridge
from tests.health_support import TcpProxy, closed_port

TIMEOUT = 1.0


def probes_app() -> Flask:
    # These tests read what the probes report: details shown, every poll runs the checks
    # (the defaults hide details and cache runs: test_management.py).
    app = Flask("probes")
    app.config.update({"CST_HEALTH_DETAILS": "always", "CST_HEALTH_CACHE_TTL": 0})
    return app


@pytest.fixture
def silent_proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy(mode="hang")
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.mark.slow
def test_liveness_never_touches_the_database(silent_proxy: TcpProxy) -> None:
    engine = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{silent_proxy.port}/x")
    app = probes_app()
    app.config["CST_HEALTH_CHECK_TIMEOUT"] = TIMEOUT
    CstMicroChassis().init_app(app, engine)
    client = app.test_client()
    try:
        live = client.get("/livez")
        assert live.status_code == 200
        assert live.get_json() == {
            "name": "Probes",
            "version": "N/A",
            "checks": {"event_loop": "ok"},
        }
        assert silent_proxy.open_connections() == 0
        ready = client.get("/readyz")  # readiness has /status's checks: the database is silent
        assert ready.status_code == 503
        assert ready.get_json()["database"] == "unavailable"
    finally:
        engine.dispose()


def test_readiness_answers_what_status_answers() -> None:
    chassis = CstMicroChassis()
    chassis.health_check("queue")(lambda: True)
    app = probes_app()
    chassis.init_app(app, sa.create_engine("sqlite://"))
    client = app.test_client()
    status, ready = client.get("/status"), client.get("/readyz")
    assert (ready.status_code, ready.get_json()) == (status.status_code, status.get_json())
    assert ready.headers["Cache-Control"] == "no-store"


def test_a_blocked_event_loop_fails_liveness_and_overdue_polls_answer_at_once() -> None:
    app = probes_app()
    app.config["CST_HEALTH_CHECK_TIMEOUT"] = TIMEOUT
    CstMicroChassis().init_app(app)
    client = app.test_client()
    assert client.get("/livez").status_code == 200
    blocking, release = threading.Event(), threading.Event()

    async def block_the_loop() -> None:
        blocking.set()
        release.wait(30)  # a sync call inside a coroutine: the whole loop stops

    runner = threading.Thread(target=async_bridge.run_coroutine, args=(block_the_loop,))
    runner.start()
    try:
        assert blocking.wait(10)
        first = client.get("/livez")
        assert (first.status_code, first.get_json()["checks"]) == (503, {"event_loop": "failing"})
        started = time.monotonic()
        assert client.get("/livez").status_code == 503  # the ping is overdue: no new wait
        assert time.monotonic() - started < TIMEOUT
    finally:
        release.set()
        runner.join(10)
    deadline = time.monotonic() + 10
    while client.get("/livez").status_code != 200:
        assert time.monotonic() < deadline, "liveness did not recover"
        time.sleep(0.05)


def test_liveness_without_the_event_loop_only_says_the_process_answers() -> None:
    app = probes_app()
    app.config["CST_ASYNC_BRIDGE"] = False
    CstMicroChassis().init_app(app)
    response = app.test_client().get("/livez")
    assert (response.status_code, response.get_json()) == (
        200,
        {"name": "Probes", "version": "N/A"},
    )


def test_probe_paths_are_configurable_and_can_be_turned_off() -> None:
    app = probes_app()
    app.config.update(CST_LIVENESS_ENDPOINT="health/live", CST_READINESS_ENDPOINT="off")
    CstMicroChassis().init_app(app)
    client = app.test_client()
    assert client.get("/health/live").status_code == 200
    assert client.get("/livez").status_code == 404
    assert client.get("/readyz").status_code == 404


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CST_HEALTH_CACHE_TTL", "-1"),
        ("CST_HEALTH_CACHE_TTL", "soon"),
        ("CST_LIVENESS_ENDPOINT", "/has space"),
        ("CST_READINESS_ENDPOINT", "//"),
        ("CST_METRICS_ENDPOINT", "/a?b"),
    ],
)
def test_bad_probe_settings_fail_at_init(key: str, value: str) -> None:
    app = probes_app()
    app.config[key] = value
    with pytest.raises(ChassisConfigError, match=key):
        CstMicroChassis().init_app(app)


def test_async_engine_liveness_pings_the_loop_even_with_the_bridge_off() -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/x")
    app = probes_app()
    app.config["CST_ASYNC_BRIDGE"] = False
    CstMicroChassis().init_app(app, engine)
    try:
        response = app.test_client().get("/livez")
        assert response.get_json()["checks"] == {"event_loop": "ok"}
    finally:
        async_bridge.run_coroutine(engine.dispose)
