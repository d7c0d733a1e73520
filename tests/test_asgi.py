"""The ASGI entry point in-process (issue 23): where views run, contexts, bodies, disconnects.

Each test drives ``asgi_app(app)`` as a server would, on one asyncio loop (tests/asgi_support.py);
the server-level tests (uvicorn, granian) are in test_asgi_server.py and tests/reliability/.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, g, request, stream_with_context
from flask.views import MethodView
from flask_restful import Resource

from cst_chassis import ChassisApi, async_bridge, get_operation_id, run_coroutine, spawn_background
from cst_chassis.asgi import asgi_app
from cst_chassis.resources import ApiResource
from tests.asgi_support import lifespan
from tests.asgi_support import request as asgi_request
from tests.conftest import AppFactory, Database
from tests.reliability.support import captured_log, parse_log

log = logging.getLogger("asgi.test")


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(main())


def where() -> dict[str, Any]:
    return {
        "thread": threading.current_thread().name,
        "on_loop": threading.get_ident() == LOOP_THREAD[0],
        "op": get_operation_id(),
    }


# The thread the test's loop runs on (set by each test's main coroutine).
LOOP_THREAD = [0]


class SyncThing(ApiResource):
    def get(self) -> object:
        return where()


class AsyncThing(ApiResource):
    async def get(self) -> object:
        await asyncio.sleep(0)
        return where()

    def post(self) -> object:
        return {"length": len(request.get_data()), **where()}

    async def put(self) -> object:
        return {"length": len(request.get_data()), **where()}


class PlainResource(Resource):
    def get(self) -> object:
        return where()


class AsyncMethodView(MethodView):
    async def get(self) -> object:
        await asyncio.sleep(0)
        return where()

    def post(self) -> object:
        return where()


def build(make_app: AppFactory, **config: Any) -> Flask:
    app = make_app(**config)
    api = ChassisApi(app)
    api.add_resource(SyncThing, "/sync")
    api.add_resource(AsyncThing, "/async")
    api.add_resource(PlainResource, "/plain")
    app.add_url_rule("/method-view", view_func=AsyncMethodView.as_view("method_view"))

    @app.get("/async-function")
    async def async_function() -> dict[str, Any]:
        await asyncio.sleep(0)
        return where()

    @app.get("/sync-function")
    def sync_function() -> dict[str, Any]:
        return where()

    return app


def test_async_views_run_on_the_servers_loop_and_sync_views_in_the_pool(
    make_app: AppFactory,
) -> None:
    app = build(make_app)
    server = asgi_app(app, threads=3)
    expected = {
        ("GET", "/async"): True,
        ("PUT", "/async"): True,
        ("POST", "/async"): False,  # the verb's method decides, not the class
        ("GET", "/async-function"): True,
        ("GET", "/method-view"): True,
        ("POST", "/method-view"): False,
        ("HEAD", "/async"): True,
        ("GET", "/sync"): False,
        ("GET", "/sync-function"): False,
        ("GET", "/plain"): False,
    }

    async def main() -> None:
        LOOP_THREAD[0] = threading.get_ident()
        async with lifespan(server):
            for (method, path), on_loop in expected.items():
                response = await asgi_request(server, method, path)
                assert response.status == 200, (method, path, response.body)
                if method == "HEAD":
                    assert response.body == b""
                    continue
                body = response.json()
                data = body.get("data", body)
                assert data["on_loop"] is on_loop, (method, path, data)
                if not on_loop:
                    assert data["thread"].startswith("cst-asgi"), data

    run(main)


def test_the_envelope_and_operation_id_are_the_same_as_on_wsgi(make_app: AppFactory) -> None:
    app = build(make_app)
    server = asgi_app(app)
    client = app.test_client()

    async def main() -> None:
        LOOP_THREAD[0] = threading.get_ident()
        async with lifespan(server):
            for path in ["/sync", "/async"]:
                response = await asgi_request(
                    server, "GET", path, headers=[("X-Operation-ID", "op-1")]
                )
                assert response.status == 200
                assert response.header("x-operation-id") == ["op-1"]
                assert response.json()["meta"] == {"operation_id": "op-1"}
                assert response.json()["data"]["op"] == "op-1"
            missing = await asgi_request(
                server, "GET", "/no/such", headers=[("X-Operation-ID", "op-2")]
            )
            wsgi_missing = client.get("/no/such", headers={"X-Operation-ID": "op-2"})
            assert missing.status == wsgi_missing.status_code == 404
            assert missing.json() == wsgi_missing.get_json()
            # A rejected id is replaced, never echoed.
            bad = await asgi_request(
                server, "GET", "/async", headers=[("X-Operation-ID", "a b\tc")]
            )
            assert bad.header("x-operation-id") != ["a b\tc"]
            assert bad.json()["data"]["op"] == bad.header("x-operation-id")[0]

    run(main)


def test_concurrent_async_requests_share_one_loop_and_keep_their_own_ids(
    make_app: AppFactory,
) -> None:
    count = 64  # far more than the pool's 2 threads: a thread per request could not start them
    started = 0
    all_started = asyncio.Event()
    release = asyncio.Event()
    app = make_app()

    @app.get("/wait/<token>")
    async def wait(token: str) -> dict[str, Any]:
        nonlocal started
        log.info("start %s", token)
        seen_before = (get_operation_id(), request.path, g.setdefault("token", token))
        started += 1
        if started == count:
            all_started.set()
        await release.wait()
        log.info("end %s", token)
        return {
            "token": token,
            "before": list(seen_before),
            "after": [get_operation_id(), request.path, g.token],
            **where(),
        }

    server = asgi_app(app, threads=2)

    async def main() -> None:
        LOOP_THREAD[0] = threading.get_ident()
        async with lifespan(server):
            calls = [
                asyncio.ensure_future(
                    asgi_request(
                        server, "GET", f"/wait/t{n}", headers=[("X-Operation-ID", f"op-{n}")]
                    )
                )
                for n in range(count)
            ]
            await asyncio.wait_for(all_started.wait(), 30)
            release.set()
            responses = await asyncio.gather(*calls)
        for n, response in enumerate(responses):
            data = response.json()
            assert response.header("x-operation-id") == [f"op-{n}"]
            assert data["before"] == data["after"] == [f"op-{n}", f"/wait/t{n}", f"t{n}"]
            assert data["on_loop"] is True

    with captured_log() as capture:
        run(main)
    by_id = parse_log(capture.text()).by_operation_id()
    for n in range(count):
        messages = [r.message for r in by_id[f"op-{n}"] if r.logger == "asgi.test"]
        assert messages == [f"start t{n}", f"end t{n}"]


def test_a_body_over_the_limit_is_the_same_413_envelope_declared_or_chunked(
    make_app: AppFactory,
) -> None:
    app = build(make_app, CST_MAX_CONTENT_LENGTH=1000)
    server = asgi_app(app)
    wsgi = app.test_client().post("/async", data=b"x" * 1001)
    assert wsgi.status_code == 413

    async def main() -> None:
        LOOP_THREAD[0] = threading.get_ident()
        async with lifespan(server):
            for method in ["POST", "PUT"]:  # in the pool, and on the loop
                fits = await asgi_request(
                    server,
                    method,
                    "/async",
                    body=[b"x" * 600, b"y" * 400],
                )
                assert fits.status == 200, fits.body
                assert fits.json()["data"]["length"] == 1000
                declared = await asgi_request(
                    server,
                    method,
                    "/async",
                    headers=[("Content-Length", "1001")],
                    body=[b"x" * 1001],
                )
                chunked = await asgi_request(
                    server,
                    method,
                    "/async",
                    body=[b"x" * 700] * 5,  # no Content-Length
                )
                for response in (declared, chunked):
                    assert response.status == 413
                    assert response.json()["errors"] == wsgi.get_json()["errors"]
                    assert (
                        response.json()["meta"]["operation_id"]
                        == response.header("x-operation-id")[0]
                    )

    run(main)


def test_a_client_disconnect_cancels_the_async_view_and_teardown_still_runs(
    make_app: AppFactory,
) -> None:
    app = make_app()
    entered = asyncio.Event()
    seen: list[str] = []

    @app.get("/forever")
    async def forever() -> dict[str, Any]:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append(f"cancelled {get_operation_id()}")
            raise
        return {"never": True}

    @app.teardown_request
    def teardown(error: BaseException | None) -> None:
        if request.path == "/forever":
            seen.append(f"teardown {type(error).__name__} {get_operation_id()}")

    server = asgi_app(app)

    async def main() -> None:
        async with lifespan(server):
            gone = asyncio.Event()
            call = asyncio.ensure_future(
                asgi_request(
                    server,
                    "GET",
                    "/forever",
                    headers=[("X-Operation-ID", "op-gone")],
                    disconnect=gone,
                )
            )
            await entered.wait()
            gone.set()
            response = await call
            assert response.messages == []  # nothing sent to a client that left
            after = await asgi_request(server, "GET", "/livez")
            assert after.status == 200

    with captured_log() as capture:
        run(main)
    assert seen == ["cancelled op-gone", "teardown CancelledError op-gone"]
    errors = [r for r in parse_log(capture.text()).records if r.level in {"ERROR", "CRITICAL"}]
    assert errors == []


def test_a_streamed_response_goes_out_chunk_by_chunk_and_is_closed(make_app: AppFactory) -> None:
    app = make_app()
    closed: list[str] = []

    def produce() -> Iterator[bytes]:
        try:
            for n in range(3):
                yield f"chunk-{n}-{get_operation_id()};".encode()
        finally:
            closed.append("closed")

    @app.get("/stream-sync")
    def stream_sync() -> Response:
        return Response(stream_with_context(produce()), mimetype="text/plain")

    @app.get("/stream-async")
    async def stream_async() -> Response:
        await asyncio.sleep(0)
        return Response(stream_with_context(produce()), mimetype="text/plain")

    server = asgi_app(app)

    async def main() -> None:
        async with lifespan(server):
            for path in ["/stream-sync", "/stream-async"]:
                response = await asgi_request(
                    server, "GET", path, headers=[("X-Operation-ID", "op-s")]
                )
                assert response.status == 200
                assert response.chunks == [
                    b"chunk-0-op-s;",
                    b"chunk-1-op-s;",
                    b"chunk-2-op-s;",
                    b"",
                ]
                assert response.more_body == [True, True, True, False]

    run(main)
    assert closed == ["closed", "closed"]


def test_async_timeout_cancels_the_view_on_asgi(make_app: AppFactory) -> None:
    app = make_app(CST_ASYNC_TIMEOUT=0.05)
    api = ChassisApi(app)
    cancelled: list[bool] = []

    class Stuck(ApiResource):
        async def get(self) -> object:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(True)
                raise
            return None

    api.add_resource(Stuck, "/stuck")
    server = asgi_app(app)

    async def main() -> None:
        async with lifespan(server):
            response = await asgi_request(server, "GET", "/stuck")
            assert response.status == 504  # as on WSGI: the bridge's timeout is a 504 envelope
            assert response.json()["errors"] == [{"message": "The request took too long"}]

    with captured_log() as capture:
        run(main)
    assert cancelled == [True]
    assert "Timed out on GET /stuck" in capture.text()


def test_the_chassis_loop_is_the_servers_loop_under_asgi(make_app: AppFactory) -> None:
    app = make_app()
    ran: list[object] = []

    async def background() -> None:
        ran.append(("background", asyncio.get_running_loop(), get_operation_id()))

    async def helper() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    @app.before_request
    def before() -> None:
        # Sync code of an async request runs in the greenlet: run_coroutine awaits in place.
        if request.path == "/loops":
            g.helper_loop = run_coroutine(helper)

    @app.get("/loops")
    async def loops() -> dict[str, Any]:
        task = spawn_background(background())
        await task
        return {
            "same": asyncio.get_running_loop() is async_bridge.get_loop(),
            "run_coroutine": g.helper_loop is asyncio.get_running_loop(),
        }

    @app.get("/from-thread")
    def from_thread() -> dict[str, Any]:
        return {"same": run_coroutine(helper) is async_bridge.get_loop()}

    server = asgi_app(app)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with lifespan(server):
            assert async_bridge.get_loop() is loop
            response = await asgi_request(
                server, "GET", "/loops", headers=[("X-Operation-ID", "op-bg")]
            )
            assert response.json() == {"same": True, "run_coroutine": True}
            response = await asgi_request(server, "GET", "/from-thread")
            assert response.json() == {"same": True}
            assert ran == [("background", loop, "op-bg")]
            livez = await asgi_request(server, "GET", "/livez")
            assert livez.status == 200
            assert livez.json()["checks"] == {"event_loop": "ok"}
        # After the lifespan shutdown the chassis no longer points at the server's loop.
        assert async_bridge._current is None

    run(main)
    # And the WSGI path starts its own loop thread again.
    assert app.test_client().get("/loops").get_json() == {"same": True, "run_coroutine": True}
    assert async_bridge._current is not None and async_bridge._current.owned


def test_an_async_engine_pool_serves_requests_on_the_servers_loop(
    make_app: AppFactory, database: Database
) -> None:
    import sqlalchemy as sa

    engine = database.async_engine(pool_size=2)
    app = make_app(db=engine)

    @app.get("/value/<int:n>")
    async def value(n: int) -> dict[str, Any]:
        async with engine.connect() as conn:
            got = (await conn.execute(sa.select(sa.literal(n)))).scalar_one()
        return {"value": got}

    server = asgi_app(app)

    async def main() -> None:
        async with lifespan(server):
            responses = await asyncio.gather(
                *(asgi_request(server, "GET", f"/value/{n}") for n in range(20))
            )
            assert [r.json()["value"] for r in responses] == list(range(20))
            status = await asgi_request(server, "GET", "/status")
            assert status.json()["database"] == "ok"

    async def start_up() -> int:
        async with engine.connect() as conn:
            return int((await conn.execute(sa.select(sa.literal(7)))).scalar_one())

    # Start-up work on the chassis loop thread leaves a pooled connection bound to that loop:
    # the server's loop must not get it (asyncpg would fail "attached to a different loop").
    assert run_coroutine(start_up) == 7
    for _ in range(2):  # a second server in the same process gets a fresh pool too
        run(main)
    # And the WSGI path, on a loop thread of its own again.
    assert app.test_client().get("/value/3").get_json() == {"value": 3}
    run_coroutine(engine.dispose)


def test_hooks_and_teardown_run_in_the_same_order_as_on_wsgi(make_app: AppFactory) -> None:
    app = make_app()
    order: list[str] = []

    @app.before_request
    def before() -> None:
        order.append("before")

    @app.get("/ordered")
    async def ordered() -> dict[str, Any]:
        order.append("view")
        return {"ok": True}

    @app.after_request
    def after(response: Response) -> Response:
        order.append("after")
        return response

    @app.teardown_request
    def teardown_request(error: BaseException | None) -> None:
        order.append("teardown_request")

    @app.teardown_appcontext
    def teardown_app(error: BaseException | None) -> None:
        order.append("teardown_appcontext")

    app.test_client().get("/ordered")
    on_wsgi = list(order)
    order.clear()
    server = asgi_app(app)

    async def main() -> None:
        async with lifespan(server):
            await asgi_request(server, "GET", "/ordered")

    run(main)
    assert (
        order == on_wsgi == ["before", "view", "after", "teardown_request", "teardown_appcontext"]
    )


def test_with_the_bridge_off_async_views_run_in_the_pool(make_app: AppFactory) -> None:
    app = build(make_app, CST_ASYNC_BRIDGE=False)
    server = asgi_app(app)

    async def main() -> None:
        LOOP_THREAD[0] = threading.get_ident()
        async with lifespan(server):
            response = await asgi_request(server, "GET", "/async")
            assert response.status == 200
            assert response.json()["data"]["on_loop"] is False

    run(main)


def test_the_flask_test_client_keeps_working_on_an_app_served_over_asgi(
    make_app: AppFactory,
) -> None:
    app = build(make_app)
    asgi_app(app)
    client = app.test_client()
    assert (
        client.get("/async", headers={"X-Operation-ID": "op-t"}).get_json()["data"]["op"] == "op-t"
    )
    assert client.get("/sync").status_code == 200


def test_root_path_query_string_and_headers_reach_the_app(make_app: AppFactory) -> None:
    app = make_app()

    @app.get("/echo/<path:rest>")
    def echo(rest: str) -> dict[str, Any]:
        return {
            "rest": rest,
            "script_root": request.script_root,
            "args": request.args.to_dict(flat=False),
            "cookie": request.cookies.get("b"),
            "multi": request.headers.get("X-Multi"),
            "spoof": request.headers.get("X-Spoof"),
            "remote": request.remote_addr,
            "url": request.url,
        }

    server = asgi_app(app)

    async def main() -> None:
        async with lifespan(server):
            response = await asgi_request(
                server,
                "GET",
                "/echo/caf%C3%A9/x",
                root_path="/api",
                query=b"a=1&a=2&b=%C3%A9",
                headers=[
                    ("Cookie", "a=1"),
                    ("Cookie", "b=2"),
                    ("X-Multi", "1"),
                    ("X-Multi", "2"),
                    ("X_Spoof", "evil"),
                ],
            )
            assert response.status == 200, response.body
            assert response.json() == {
                "rest": "café/x",
                "script_root": "/api",
                "args": {"a": ["1", "2"], "b": ["é"]},
                "cookie": "2",
                "multi": "1,2",
                "spoof": None,
                "remote": "127.0.0.1",
                "url": "http://127.0.0.1:8000/api/echo/café/x?a=1&a=2&b=é",
            }

    run(main)


def test_asgi_app_refuses_a_bad_thread_count_and_an_app_without_the_chassis(
    make_app: AppFactory,
) -> None:
    from cst_chassis.errors import ChassisNotInitializedError

    with pytest.raises(ValueError, match="threads"):
        asgi_app(make_app(), threads=0)
    with pytest.raises(ChassisNotInitializedError):
        asgi_app(Flask("bare"))


def test_cst_asgi_threads_bounds_the_pool(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CST_ASGI_THREADS", "1")
    app = make_app()
    threads: set[str] = set()
    both_in = threading.Barrier(2, timeout=0.5)

    @app.get("/pair")
    def pair() -> dict[str, Any]:
        threads.add(threading.current_thread().name)
        try:
            both_in.wait()  # two requests in the pool at once: impossible with one thread
        except threading.BrokenBarrierError:
            return {"alone": True}
        return {"alone": False}

    server = asgi_app(app)

    async def main() -> None:
        async with lifespan(server):
            responses = await asyncio.gather(
                *(asgi_request(server, "GET", "/pair") for _ in range(2))
            )
            assert [r.json()["alone"] for r in responses] == [True, True]

    run(main)
    assert len(threads) == 1


def test_metrics_tracing_and_openapi_work_over_asgi(make_app: AppFactory) -> None:
    from cst_chassis import outgoing_headers
    from tests.metrics_support import parse

    app = build(make_app, CST_OPENAPI_ENABLED=True)

    @app.get("/outgoing")
    async def outgoing() -> dict[str, Any]:
        await asyncio.sleep(0)
        return dict(outgoing_headers())

    server = asgi_app(app)
    trace = "0af7651916cd43dd8448eb211c80319c"

    async def main() -> None:
        async with lifespan(server):
            for path in ["/sync", "/async", "/async", "/no/such"]:
                await asgi_request(server, "GET", path)
            traced = await asgi_request(
                server,
                "GET",
                "/outgoing",
                headers=[("traceparent", f"00-{trace}-b7ad6b7169203331-01")],
            )
            # The trace continues into what the async view sends on, with the id the trace gives.
            assert traced.json()["traceparent"].split("-")[1] == trace
            assert traced.header("x-operation-id") == ["0af76519-16cd-43dd-8448-eb211c80319c"]
            document = await asgi_request(server, "GET", "/openapi.json")
            assert document.status == 200 and "/async" in document.json()["paths"]
            scrape = await asgi_request(server, "GET", "/metrics")
            samples = parse(scrape.body.decode())
            count = "cst_http_request_duration_seconds_count"
            assert samples.value(count, method="GET", route="/sync", status="200") == 1
            assert samples.value(count, method="GET", route="/async", status="200") == 2
            assert samples.value(count, method="GET", route="<unmatched>", status="404") == 1

    run(main)


def test_the_demo_factory_make_demo_asgi_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from examples.demo.__main__ import prepare
    from examples.demo.asgi import create_asgi_app
    from examples.demo.database import get_database

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    server = create_asgi_app()
    app: Flask = server.app  # type: ignore[attr-defined]  # the Flask app asgi_app wraps
    prepare(app)

    async def main() -> None:
        async with lifespan(server):
            status = await asgi_request(server, "GET", "/status")
            assert status.status == 200, status.body
            assert status.json()["checks"] == {"async_pool": "ok"}
            products = await asgi_request(server, "GET", "/products", query=b"limit=2")
            assert [p["id"] for p in products.json()["data"]] == [1, 2]

    run(main)
    get_database(app).engine.dispose()


def test_a_task_sent_from_an_async_view_over_asgi_carries_the_requests_ids(
    make_app: AppFactory,
) -> None:
    from celery.signals import before_task_publish

    from cst_chassis.celery import OPERATION_ID_HEADER, TRACEPARENT_HEADER
    from tests.apps.celery_worker import make_celery

    celery = make_celery("memory://", "asgi-test")
    sent: list[dict[str, Any]] = []

    def record(headers: dict[str, Any] | None = None, **_kwargs: Any) -> None:
        sent.append(dict(headers or {}))

    # Connected after init_celery's hook: it sees the headers the chassis added.
    before_task_publish.connect(record, weak=False, dispatch_uid="test_asgi.record")

    @celery.task(name="cst_test.asgi_noop")
    def noop() -> None:
        return None

    app = make_app()

    @app.get("/send")
    async def send_task() -> dict[str, Any]:
        await asyncio.sleep(0)
        noop.apply_async()
        return {}

    server = asgi_app(app)

    async def main() -> None:
        async with lifespan(server):
            await asyncio.gather(
                *(
                    asgi_request(server, "GET", "/send", headers=[("X-Operation-ID", f"task-{n}")])
                    for n in range(5)
                )
            )

    try:
        run(main)
    finally:
        before_task_publish.disconnect(dispatch_uid="test_asgi.record")
    assert sorted(h[OPERATION_ID_HEADER] for h in sent) == [f"task-{n}" for n in range(5)]
    assert all(h[TRACEPARENT_HEADER].startswith("00-") for h in sent)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_endless_stream_stops_and_is_closed_when_the_client_leaves(
    make_app: AppFactory, kind: str
) -> None:
    app = make_app()
    produced: list[int] = []
    closed = threading.Event()
    state: dict[str, Any] = {}

    def endless() -> Iterator[bytes]:
        try:
            n = 0
            while True:
                n += 1
                produced.append(n)
                if n == 3:  # the client leaves after the third chunk
                    state["loop"].call_soon_threadsafe(state["gone"].set)
                yield b"event\n"
        finally:
            closed.set()

    @app.get("/events-sync")
    def events_sync() -> Response:
        return Response(endless(), mimetype="text/event-stream")

    @app.get("/events-async")
    async def events_async() -> Response:
        await asyncio.sleep(0)
        return Response(endless(), mimetype="text/event-stream")

    server = asgi_app(app)

    async def main() -> None:
        state["loop"] = asyncio.get_running_loop()
        state["gone"] = gone = asyncio.Event()
        async with lifespan(server):
            await asyncio.wait_for(
                asgi_request(server, "GET", f"/events-{kind}", disconnect=gone), 30
            )

    run(main)
    assert closed.is_set()
    assert len(produced) < 1000  # stopped, not produced forever
