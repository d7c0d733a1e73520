"""Metrics in one process: labels, exceptions, in flight, async bridge, pools, health, pagination.

Real parts: apps served through Flask's test client or Werkzeug's threaded server, SQLite files,
closed ports. The multi-worker totals are in ``test_metrics_gunicorn.py``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask import abort as flask_abort
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from cst_chassis import ChassisApi, ChassisConfigError, CstMicroChassis
from cst_chassis.metrics import METRIC_NAMES, UNMATCHED, MetricsMiddleware
from cst_chassis.resources import ApiResource
from tests.health_support import closed_port
from tests.metrics_support import Samples, get, parse, wait_until
from tests.reliability.support import werkzeug_server

COUNT = "cst_http_request_duration_seconds_count"


def scrape(client: FlaskClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    return parse(response.get_data(as_text=True))


def make_app(**config: object) -> Flask:
    app = Flask("metrics-app")
    # Metrics are off unless CST_METRICS_ENDPOINT is set (test_management.py checks that).
    app.config.update({"CST_METRICS_ENDPOINT": "/metrics", **config})
    return app


def test_route_label_is_the_template_and_unmatched_paths_share_one_label() -> None:
    app = make_app()
    CstMicroChassis().init_app(app)
    app.add_url_rule("/items/<int:item_id>", "item", lambda item_id: {"id": item_id})
    client = app.test_client()
    for path in ["/items/1", "/items/2", "/items/3", "/nope", "/x/../../etc", "/wp-admin.php"]:
        client.get(path)
    samples = scrape(client)
    assert samples.value(COUNT, method="GET", route="/items/<int:item_id>", status="200") == 3
    assert samples.value(COUNT, method="GET", route=UNMATCHED, status="404") == 3
    routes = {dict(labels)["route"] for name, labels in samples if name == COUNT}
    assert routes == {"/items/<int:item_id>", UNMATCHED}  # the scrape is counted once it ends


def test_unknown_methods_collapse_to_other() -> None:
    app = make_app()
    CstMicroChassis().init_app(app)
    client = app.test_client()
    client.open("/status", method="BREW")
    client.open("/status", method="PROPFIND")
    # A 405 is a routing error: no rule matched, so the route is the unmatched label too.
    assert scrape(client).value(COUNT, method="other", route=UNMATCHED, status="405") == 2


def test_metrics_endpoint_is_prometheus_text_and_not_cached() -> None:
    app = make_app()
    CstMicroChassis().init_app(app)
    response = app.test_client().get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert response.headers["Cache-Control"] == "no-store"


def test_every_exported_metric_is_declared_once() -> None:
    app = make_app()
    CstMicroChassis().init_app(app, sa.create_engine("sqlite://"))
    app.test_client().get("/status")
    text = app.test_client().get("/metrics").get_data(as_text=True)
    families = {
        family.name: family.type
        for family in text_string_to_metric_families(text)
        if not family.name.endswith("_created")  # prometheus_client's creation timestamps
    }
    declared = {name.removesuffix("_total"): kind for name, (kind, _) in METRIC_NAMES.items()}
    assert families == declared


def test_unhandled_exceptions_are_counted_by_route_and_type() -> None:
    app = make_app()
    CstMicroChassis().init_app(app)

    @app.get("/plain")
    def plain() -> str:
        raise KeyError("x")

    class Broken(ApiResource):
        def get(self) -> object:
            raise ValueError("y")

    ChassisApi(app).add_resource(Broken, "/resource")
    client = app.test_client()
    assert client.get("/plain").status_code == 500
    assert client.get("/resource").status_code == 500
    assert client.get("/resource").status_code == 500
    samples = scrape(client)
    name = "cst_http_exceptions_total"
    assert samples.value(name, method="GET", route="/plain", exception="builtins.KeyError") == 1
    assert (
        samples.value(name, method="GET", route="/resource", exception="builtins.ValueError") == 2
    )
    assert samples.value(COUNT, method="GET", route="/resource", status="500") == 2


def test_exceptions_answered_4xx_or_handled_are_not_counted() -> None:
    # Issue 25, item 4: NotFound, InvalidPaginationError and InvalidCursorError were counted as
    # "unhandled exceptions (answered 500)": an alert on the counter fired on client errors.
    from flask_restful import abort

    from cst_chassis.errors import InvalidCursorError
    from cst_chassis.resources import ApiPaginatedMixin

    engine = sa.create_engine("sqlite://")

    class Listing(ApiPaginatedMixin, ApiResource):
        def get(self) -> object:
            with Session(engine) as session:
                page = self.get_paginated_query_result(sa.select(sa.literal(1)), session)
            return list(page)

    class Cursor(ApiResource):
        def get(self) -> object:
            raise InvalidCursorError("The cursor is not one this service issued")

    class Missing(ApiResource):
        def get(self) -> object:
            abort(404, message="no such thing")

    class Invalid(ApiResource):
        def get(self) -> object:
            self.add_error("name is required", path="name")
            return None

    class Broken(ApiResource):
        def get(self) -> object:
            raise KeyError("z")

    class Teapot(Exception):
        pass

    app = make_app()
    CstMicroChassis().init_app(app)

    @app.get("/plain-404")
    def plain_404() -> str:
        flask_abort(404)

    @app.get("/handled")
    def handled() -> str:
        raise Teapot

    app.register_error_handler(Teapot, lambda _: ("short and stout", 418))
    api = ChassisApi(app)
    for resource, path in [
        (Listing, "/list"),
        (Cursor, "/cursor"),
        (Missing, "/missing"),
        (Invalid, "/invalid"),
        (Broken, "/broken"),
    ]:
        api.add_resource(resource, path)
    client = app.test_client()
    answers = {
        path: client.get(path).status_code
        for path in [
            "/list?limit=abc",
            "/cursor",
            "/missing",
            "/invalid",
            "/plain-404",
            "/no/such/route",
            "/handled",
            "/broken",
        ]
    }
    assert answers == {
        "/list?limit=abc": 400,
        "/cursor": 400,
        "/missing": 404,
        "/invalid": 400,
        "/plain-404": 404,
        "/no/such/route": 404,
        "/handled": 418,
        "/broken": 500,
    }
    samples = scrape(client)
    name = "cst_http_exceptions_total"
    assert samples.total(name) == 1
    assert samples.value(name, method="GET", route="/broken", exception="builtins.KeyError") == 1


def test_requests_in_flight_are_counted_while_they_run() -> None:
    entered, release = threading.Event(), threading.Event()
    app = make_app()
    CstMicroChassis().init_app(app)

    @app.get("/wait")
    def wait() -> str:
        entered.set()
        release.wait(30)
        return "done"

    with werkzeug_server(app) as port:
        worker = threading.Thread(target=get, args=(port, "/wait"))
        worker.start()
        try:
            assert entered.wait(10)
            _, text = get(port, "/metrics")
            assert parse(text).value("cst_http_requests_in_flight") == 2  # /wait and the scrape
        finally:
            release.set()
            worker.join(10)
        _, text = get(port, "/metrics")
        assert parse(text).value("cst_http_requests_in_flight") == 1


def test_async_timeouts_and_coroutines_in_flight_are_counted() -> None:
    app = make_app(CST_ASYNC_TIMEOUT=0.2)
    CstMicroChassis().init_app(app)
    seen: list[float] = []

    class Slow(ApiResource):
        async def get(self) -> str:
            await asyncio.sleep(10)
            return "late"

    class Fast(ApiResource):
        async def get(self) -> str:
            return "ok"

    api = ChassisApi(app)
    api.add_resource(Slow, "/slow")
    api.add_resource(Fast, "/fast")
    client = app.test_client()
    assert client.get("/slow").status_code == 504
    assert client.get("/fast").status_code == 200
    samples = scrape(client)
    seen.append(samples.value("cst_async_timeouts_total"))
    assert seen == [1]
    assert samples.value("cst_async_coroutines_in_flight") == 0


def test_a_blocked_event_loop_shows_as_loop_lag() -> None:
    app = make_app()
    CstMicroChassis().init_app(app)

    @app.get("/block")
    async def block() -> str:
        time.sleep(0.8)  # the mistake the metric exists for: a blocking call on the loop
        return "blocked"

    client = app.test_client()
    assert client.get("/block").status_code == 200  # starts the lag task, then blocks the loop
    assert client.get("/block").status_code == 200
    wait_until(lambda: scrape(client).value("cst_async_loop_lag_seconds") >= 0.3, seconds=10)


def test_pool_gauges_follow_checked_out_connections(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'pool.db'}", pool_size=3, max_overflow=2)
    app = make_app()
    CstMicroChassis().init_app(app, engine)
    client = app.test_client()
    try:
        held = [engine.connect() for _ in range(4)]
        samples = scrape(client)
        assert samples.value("cst_db_pool_size", database="default") == 3
        assert samples.value("cst_db_pool_checked_out", database="default") == 4
        assert samples.value("cst_db_pool_overflow", database="default") == 1
        for conn in held:
            conn.close()
        assert scrape(client).value("cst_db_pool_checked_out", database="default") == 0
    finally:
        engine.dispose()


def test_the_async_engine_given_to_register_engine_has_pool_gauges(tmp_path: Path) -> None:
    # Issue 25, item 4: the engine async views use (the demo's set-up: a sync db for init_app,
    # the AsyncEngine registered beside it) had no pool metrics.
    from sqlalchemy.ext.asyncio import create_async_engine

    from cst_chassis.async_bridge import register_engine, run_coroutine

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'sync.db'}")
    async_engine = create_async_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'async.db'}", pool_size=3, max_overflow=2
    )
    app = make_app()
    CstMicroChassis().init_app(app, engine)
    register_engine(async_engine)
    client = app.test_client()

    async def hold(count: int) -> None:
        held = [await async_engine.connect() for _ in range(count)]
        samples = scrape(client)
        for conn in held:
            await conn.close()
        assert samples.value("cst_db_pool_size", database="async") == 3
        assert samples.value("cst_db_pool_checked_out", database="async") == count
        assert samples.value("cst_db_pool_overflow", database="async") == 1

    try:
        assert client.get("/livez").status_code == 200  # the first request finds the engines
        run_coroutine(lambda: hold(4))
        assert scrape(client).value("cst_db_pool_checked_out", database="async") == 0
        assert scrape(client).value("cst_db_pool_size", database="default") == 5
    finally:
        run_coroutine(async_engine.dispose)
        engine.dispose()


def test_failed_connects_are_counted() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/none"
    engine = sa.create_engine(url)
    app = make_app(CST_HEALTH_CHECK_TIMEOUT=5)
    CstMicroChassis().init_app(app, engine)
    client = app.test_client()
    try:
        assert client.get("/status").status_code == 503
        samples = scrape(client)
        assert samples.value("cst_db_connect_failures_total", database="default") >= 1
        assert samples.value("cst_health_check_up", check="database") == 0
    finally:
        engine.dispose()


def test_pool_checkout_timeouts_are_counted_as_exceptions(tmp_path: Path) -> None:
    # QueuePool raises sqlalchemy.exc.TimeoutError when no connection frees up within
    # pool_timeout; SQLAlchemy has no pool event for it, so it shows as the request's exception.
    engine = sa.create_engine(
        f"sqlite:///{tmp_path / 'pool.db'}", pool_size=1, max_overflow=0, pool_timeout=0.05
    )

    class Lookup(ApiResource):
        def get(self) -> int:
            with engine.connect() as conn:
                return int(conn.scalar(sa.text("SELECT 1")) or 0)

    app = make_app()
    CstMicroChassis().init_app(app, engine)
    ChassisApi(app).add_resource(Lookup, "/lookup")
    client = app.test_client()
    try:
        assert client.get("/lookup").get_json()["data"] == 1
        with engine.connect():  # the pool's only connection, held
            response = client.get("/lookup")
            assert scrape(client).value("cst_db_pool_checked_out", database="default") == 1
        assert response.status_code == 500
        assert "QueuePool" not in response.get_data(as_text=True)
        samples = scrape(client)
        assert (
            samples.value(
                "cst_http_exceptions_total",
                method="GET",
                route="/lookup",
                exception="sqlalchemy.exc.TimeoutError",
            )
            == 1
        )
        assert client.get("/lookup").status_code == 200  # released: the next one gets it
    finally:
        engine.dispose()


def test_flask_sqlalchemy_engines_are_found_after_its_init_app(tmp_path: Path) -> None:
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'fsa.db'}")
    db = SQLAlchemy()
    CstMicroChassis().init_app(app, db)
    db.init_app(app)  # after the chassis: the engines exist only now
    client = app.test_client()
    try:
        client.get("/status")
        with app.app_context():
            conn = db.engine.connect()
        try:
            assert scrape(client).value("cst_db_pool_checked_out", database="default") == 1
        finally:
            conn.close()
    finally:
        with app.app_context():
            db.engine.dispose()


def test_health_results_and_durations_are_exported() -> None:
    chassis = CstMicroChassis()
    healthy = {"value": True}
    chassis.health_check("flag")(lambda: healthy["value"])
    app = make_app(CST_HEALTH_CACHE_TTL=0)  # each poll runs the check
    chassis.init_app(app)
    client = app.test_client()
    client.get("/status")
    samples = scrape(client)
    assert samples.value("cst_health_check_up", check="flag") == 1
    assert samples.value("cst_health_check_duration_seconds", check="flag") >= 0
    healthy["value"] = False
    client.get("/status")
    assert scrape(client).value("cst_health_check_up", check="flag") == 0


def test_build_info_carries_name_and_version() -> None:
    app = make_app(CST_PROJECT_NAME="orders", CST_PROJECT_VERSION="2.1.0")
    CstMicroChassis().init_app(app)
    assert scrape(app.test_client()).value("cst_build_info", name="orders", version="2.1.0") == 1


@pytest.mark.parametrize(
    ("path", "message", "reason"),
    [
        ("limit", "limit must be an integer from 1 to 100", "invalid"),
        ("offset", "offset must be given at most once", "repeated"),
        ("cursor", "The cursor is not one this service issued", "signature"),
        ("cursor", "The cursor belongs to another ordering", "ordering"),
        ("cursor", "The cursor is not valid url-safe base64", "malformed"),
    ],
)
def test_pagination_rejections_are_counted_by_parameter_and_reason(
    path: str, message: str, reason: str
) -> None:
    class Rejecting(ApiResource):
        def get(self) -> object:
            self.add_error(message, path=path)
            self.add_error("name is required", path="name")  # not pagination: not counted
            return None

    app = make_app()
    CstMicroChassis().init_app(app)
    ChassisApi(app).add_resource(Rejecting, "/things")
    client = app.test_client()
    response = client.get("/things")
    assert response.status_code == 400
    assert response.get_json()["errors"][0] == {"message": message, "path": path}  # body intact
    samples = scrape(client)
    name = "cst_pagination_rejections_total"
    assert samples.value(name, parameter=path, reason=reason) == 1
    assert samples.total(name) == 1


def test_real_pagination_errors_are_counted() -> None:
    from cst_chassis.resources import ApiPaginatedMixin

    engine = sa.create_engine("sqlite://")

    class Listing(ApiPaginatedMixin, ApiResource):
        def get(self) -> object:
            with Session(engine) as session:
                page = self.get_paginated_query_result(sa.select(sa.literal(1)), session)
            return list(page)

    app = make_app()
    CstMicroChassis().init_app(app)
    ChassisApi(app).add_resource(Listing, "/list")
    client = app.test_client()
    assert client.get("/list?limit=abc").status_code == 400
    assert client.get("/list?offset=1&offset=2").status_code == 400
    samples = scrape(client)
    name = "cst_pagination_rejections_total"
    assert samples.value(name, parameter="limit", reason="invalid") == 1
    assert samples.value(name, parameter="offset", reason="repeated") == 1


@pytest.mark.parametrize("value", ["off", "none", "false", ""])
def test_metrics_can_be_turned_off(value: str) -> None:
    app = make_app(CST_METRICS_ENDPOINT=value)
    CstMicroChassis().init_app(app)
    assert app.test_client().get("/metrics").status_code == 404
    assert not isinstance(app.wsgi_app, MetricsMiddleware)


def test_metrics_endpoint_path_is_configurable() -> None:
    app = make_app(CST_METRICS_ENDPOINT="internal/metrics")
    CstMicroChassis().init_app(app)
    client = app.test_client()
    assert client.get("/internal/metrics").status_code == 200
    assert client.get("/metrics").status_code == 404


def test_multiprocess_directory_that_does_not_exist_fails_at_init(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    with pytest.raises(ChassisConfigError, match="PROMETHEUS_MULTIPROC_DIR"):
        CstMicroChassis().init_app(make_app())


def test_readme_lists_every_metric() -> None:
    readme = (Path(__file__).resolve().parents[1] / "docs/guides/metrics-and-probes.md").read_text()
    for name, (kind, labels) in METRIC_NAMES.items():
        row = f"| `{name}` | {kind} | " + ", ".join(f"`{label}`" for label in labels)
        assert row in readme, f"README's metrics table lacks {name}"


@pytest.mark.slow
def test_gunicorn_on_starting_removes_only_metrics_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from cst_chassis.gunicorn_hooks import on_starting

    directory = tmp_path / "prom"
    directory.mkdir()
    for name in ["counter_12.db", "histogram_12.db", "gauge_livesum_12.db", "notes.txt"]:
        (directory / name).write_text("x")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    on_starting(None)
    assert [entry.name for entry in directory.iterdir()] == ["notes.txt"]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "new"))
    on_starting(None)
    assert (tmp_path / "new").is_dir()
