"""The management surface: which chassis endpoint answers, on which listener, showing what to whom.

Defaults: health details hidden from anonymous requests, health runs cached for 5 s, metrics and
the OpenAPI pages off until configured. Opt-ins: a management port (the endpoints answer only
there), a bearer token, an authorisation hook, ``CST_HEALTH_DETAILS``.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.serving import BaseWSGIServer, make_server

from cst_chassis import ChassisConfigError, ChassisError, CstMicroChassis
from cst_chassis import metrics as metrics_module
from tests.conftest import POSTGRES_URL, Database
from tests.script_support import load_script

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "0123456789abcdef0123456789abcdef"
MANAGEMENT_PORT = 9100
SUMMARY_KEYS = {"name", "version"}


def build(db: object = None, chassis: CstMicroChassis | None = None, **config: object) -> Flask:
    app = Flask("management")
    app.config.update(config)

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    (chassis or CstMicroChassis()).init_app(app, db)  # type: ignore[arg-type]  # any DatabaseLike
    return app


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        yield engine
    finally:
        engine.dispose()


# --- details: hidden from anonymous requests by default ---------------------------------------


@pytest.mark.parametrize("path", ["/status", "/readyz", "/livez"])
def test_anonymous_requests_see_only_name_and_version_by_default(
    engine: sa.Engine, path: str
) -> None:
    app = build(engine, CST_PROJECT_VERSION="1.2.3")
    response = app.test_client().get(path)
    assert response.status_code == 200
    assert response.get_json() == {"name": "Management", "version": "1.2.3"}


def test_hidden_details_keep_the_status_code(tmp_path: Path) -> None:
    # A database that cannot open: 503 whether or not the body says why.
    broken = sa.create_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    try:
        response = build(broken).test_client().get("/status")
        assert (response.status_code, set(response.get_json())) == (503, SUMMARY_KEYS)
    finally:
        broken.dispose()


def test_details_always_shows_them_to_anyone(engine: sa.Engine) -> None:
    body = build(engine, CST_HEALTH_DETAILS="always").test_client().get("/status").get_json()
    assert body["database"] == "ok"
    assert "last_migration" in body


def test_details_never_hides_them_even_from_an_authorised_request(engine: sa.Engine) -> None:
    app = build(engine, CST_HEALTH_DETAILS="never", CST_MANAGEMENT_TOKEN=TOKEN)
    response = app.test_client().get("/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert set(response.get_json()) == SUMMARY_KEYS


# --- who is authorised: token, hook, management port ------------------------------------------


def test_the_bearer_token_authorises_details_and_the_metrics(engine: sa.Engine) -> None:
    app = build(engine, CST_MANAGEMENT_TOKEN=TOKEN, CST_METRICS_ENDPOINT="/metrics")
    client = app.test_client()
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/status", headers=good).get_json()["database"] == "ok"
    assert client.get("/metrics", headers=good).status_code == 200
    for headers in ({}, {"Authorization": f"Bearer {TOKEN[:-1]}x"}, {"Authorization": TOKEN}):
        assert set(client.get("/status", headers=headers).get_json()) == SUMMARY_KEYS
        assert client.get("/metrics", headers=headers).status_code == 401


def test_the_management_auth_hook_authorises_even_when_registered_after_init_app(
    engine: sa.Engine,
) -> None:
    chassis = CstMicroChassis()
    app = build(engine, chassis, CST_METRICS_ENDPOINT="/metrics")
    client = app.test_client()
    assert client.get("/metrics").status_code == 200  # no hook, no token: served as configured

    @chassis.management_auth
    def operator() -> bool:
        return request.headers.get("X-Operator") == "yes"

    assert client.get("/status", headers={"X-Operator": "yes"}).get_json()["database"] == "ok"
    assert set(client.get("/status").get_json()) == SUMMARY_KEYS
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"X-Operator": "yes"}).status_code == 200


def test_a_hook_that_raises_hides_the_details_and_is_logged(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    chassis = CstMicroChassis()

    @chassis.management_auth
    def broken() -> bool:
        raise RuntimeError("auth service down")

    response = build(engine, chassis).test_client().get("/status")
    assert (response.status_code, set(response.get_json())) == (200, SUMMARY_KEYS)
    [record] = [r for r in caplog.records if r.name == "cst_chassis.management"]
    assert record.levelno == logging.ERROR


def test_management_endpoints_answer_only_on_the_management_port(engine: sa.Engine) -> None:
    app = build(engine, CST_MANAGEMENT_PORT=MANAGEMENT_PORT, CST_METRICS_ENDPOINT="/metrics")
    client = app.test_client()
    management = f"http://localhost:{MANAGEMENT_PORT}"
    for path in ("/status", "/livez", "/readyz", "/metrics"):
        assert client.get(path).status_code == 404, path
        assert client.get(path, base_url=management).status_code == 200, path
    # On its own port a request is authorised: details shown.
    assert client.get("/status", base_url=management).get_json()["database"] == "ok"
    assert client.get("/hello").get_json() == {"hello": "world"}  # the app: on any port


def test_a_forwarded_port_does_not_open_the_management_endpoints(engine: sa.Engine) -> None:
    app = build(engine, CST_MANAGEMENT_PORT=MANAGEMENT_PORT)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)  # type: ignore[method-assign]  # Flask documents wrapping wsgi_app
    client = app.test_client()
    forged = {"X-Forwarded-Port": str(MANAGEMENT_PORT), "X-Forwarded-Host": "x:9100"}
    assert client.get("/status", headers=forged).status_code == 404
    assert client.get("/status", base_url=f"http://localhost:{MANAGEMENT_PORT}").status_code == 200


# --- start-up errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CST_MANAGEMENT_PORT", "0"),
        ("CST_MANAGEMENT_PORT", "65536"),
        ("CST_MANAGEMENT_PORT", "metrics"),
        ("CST_HEALTH_DETAILS", "sometimes"),
        ("CST_HEALTH_CACHE_TTL", "-1"),
    ],
)
def test_bad_management_settings_fail_at_start_up(key: str, value: str) -> None:
    config: dict[str, object] = {key: value}
    with pytest.raises(ChassisConfigError, match=f"{key}={value!r}"):
        build(None, None, **config)


def test_a_short_token_fails_at_start_up_without_echoing_it() -> None:
    with pytest.raises(ChassisConfigError, match="CST_MANAGEMENT_TOKEN") as caught:
        build(CST_MANAGEMENT_TOKEN="hunter2")
    assert "hunter2" not in str(caught.value)


# --- nothing on by accident ---------------------------------------------------------------------


def test_metrics_stay_off_by_default_though_prometheus_client_is_importable() -> None:
    assert metrics_module.metrics_available()
    app = build()
    assert app.test_client().get("/metrics").status_code == 404
    assert not isinstance(app.wsgi_app, metrics_module.MetricsMiddleware)


def test_metrics_configured_without_prometheus_client_is_a_start_up_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics_module, "prometheus_client", None)
    with pytest.raises(ChassisError) as caught:
        build(CST_METRICS_ENDPOINT="/metrics")
    assert "CST_METRICS_ENDPOINT='/metrics'" in str(caught.value)
    assert "pip install 'cst-chassis[metrics]'" in str(caught.value)


def test_openapi_pages_stay_off_by_default_though_pydantic_is_importable() -> None:
    client = build().test_client()
    assert (client.get("/openapi.json").status_code, client.get("/docs").status_code) == (404, 404)


# --- database load: anonymous polls cannot drive it ---------------------------------------------


def test_anonymous_polls_cost_a_bounded_number_of_database_statements(database: Database) -> None:
    engine = database.engine()
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    sa.event.listen(engine, "before_cursor_execute", count)
    client = build(engine).test_client()
    started = time.monotonic()
    assert client.get("/status").status_code == 200
    per_run = statements
    assert per_run >= 1
    for _ in range(199):
        assert client.get("/status").status_code == 200
    elapsed = time.monotonic() - started
    # One run per CST_HEALTH_CACHE_TTL (5 s) at most, however many polls: the bound follows
    # the clock, not the 200 polls (without the cache: 200 runs).
    assert statements <= per_run * (1 + int(elapsed / 5.0) + 1)


@pytest.mark.slow
@pytest.mark.skipif(POSTGRES_URL is None, reason="needs CST_TEST_POSTGRES_URL")
def test_the_health_polls_bench_counts_fewer_transactions_with_the_default_cache() -> None:
    assert POSTGRES_URL is not None
    bench = load_script(ROOT / "bench" / "health_polls.py", "_bench")
    results = bench.measure(POSTGRES_URL, polls=20)
    assert results["ttl_0"] >= 20 > results["default"]


# --- real servers: a second listener ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(port: int, path: str, host: str | None = None) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return int(received.split(b" ", 2)[1])


def _check_listeners(api: int, management: int) -> None:
    assert _get(api, "/hello") == 200
    for path in ("/status", "/livez", "/readyz", "/metrics"):
        assert _get(management, path) == 200, path
        assert _get(api, path) == 404, path
        # A Host header naming the management port does not move the request there.
        assert _get(api, path, host=f"127.0.0.1:{management}") == 404, path


def test_werkzeug_server_with_a_second_listener(engine: sa.Engine) -> None:
    holder: list[Callable[..., Any]] = []
    servers: list[BaseWSGIServer] = [
        make_server("127.0.0.1", 0, lambda environ, start: holder[0](environ, start), threaded=True)
        for _ in range(2)
    ]
    api, management = (server.server_port for server in servers)
    holder.append(
        build(engine, CST_MANAGEMENT_PORT=management, CST_METRICS_ENDPOINT="/metrics").wsgi_app
    )
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    try:
        _check_listeners(api, management)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def _serve(command: list[str], env: dict[str, str], ports: list[int]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    for port in ports:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise AssertionError(f"{command} did not start") from None
                time.sleep(0.1)
    return process


def _server_env(management: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CST_")}
    env["CST_MANAGEMENT_PORT"] = str(management)
    return env


@pytest.mark.slow
def test_gunicorn_binding_twice_serves_management_only_on_its_port() -> None:
    api, management = _free_port(), _free_port()
    command = [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{api}",
        "--bind", f"127.0.0.1:{management}", "--workers=1", "--worker-class=gthread",
        "--threads=2", "tests.apps.management_app:create_app()",
    ]  # fmt: skip
    process = _serve(command, _server_env(management), [api, management])
    try:
        _check_listeners(api, management)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_granian_takes_the_port_from_its_socket_not_the_host_header() -> None:
    # granian binds one address per process (no second listener): what matters is that a
    # Host header naming the management port does not pass for it.
    api, management = _free_port(), _free_port()
    command = [
        str(Path(sys.executable).parent / "granian"), "--interface", "wsgi",
        "--host", "127.0.0.1", "--port", str(api), "--workers", "1", "--log-level", "error",
        "--factory", "tests.apps.management_app:create_app",
    ]  # fmt: skip
    process = _serve(command, _server_env(management), [api])
    try:
        assert _get(api, "/hello") == 200
        assert _get(api, "/status") == 404
        assert _get(api, "/status", host=f"127.0.0.1:{management}") == 404
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_uvicorn_serving_two_sockets_serves_management_only_on_its_port() -> None:
    api, management = _free_port(), _free_port()
    command = [sys.executable, "-m", "tests.apps.uvicorn_two_listeners", str(api), str(management)]
    process = _serve(command, _server_env(management), [api, management])
    try:
        _check_listeners(api, management)
    finally:
        process.terminate()
        process.wait(timeout=30)
