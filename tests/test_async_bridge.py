"""The async bridge: one event loop per process for every coroutine of the app.

Real parts only: pooled async engines on SQLite (aiosqlite) and PostgreSQL (asyncpg), Werkzeug's
threaded server, gunicorn with forked workers, subprocesses that fork and exit.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, g, request
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from cst_chassis import (
    AsyncBridgeError,
    AsyncBridgeTimeout,
    ChassisApi,
    CstMicroChassis,
    async_bridge,
    get_operation_id,
)
from cst_chassis.async_bridge import async_to_sync, get_loop, run_coroutine, spawn_background
from cst_chassis.resources import ApiResource
from tests.async_support import Item, create_items, get, item_name, serve
from tests.conftest import AppFactory, Database

ROOT = Path(__file__).resolve().parent.parent
CLIENT_THREADS = 8
REQUESTS_PER_THREAD = 50
ITEMS = 40
POOL_SIZE = 5

seen_in_after_request: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "seen_in_after_request", default=None
)


class Boom(Exception):
    """A custom exception raised by async views."""


async def _loop_thread_ident() -> int:
    return threading.get_ident()


def _subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CST_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


# --- a pooled engine under a real threaded server ---------------------------------------------


def _item_app(make_app: AppFactory, engine: AsyncEngine) -> Flask:
    app = make_app()
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    class ItemResource(ApiResource):
        async def get(self, item_id: int) -> dict[str, Any]:
            async with sessions() as session:
                item = await session.get(Item, item_id)
            assert item is not None
            return {"id": item.id, "name": item.name, "operation_id": get_operation_id()}

    ChassisApi(app).add_resource(ItemResource, "/items/<int:item_id>")

    @app.get("/plain/items/<int:item_id>")
    async def plain_item(item_id: int) -> dict[str, Any]:
        async with engine.connect() as conn:
            result = await conn.execute(select(Item.name).where(Item.id == item_id))
        return {"id": item_id, "name": result.scalar_one(), "operation_id": get_operation_id()}

    return app


def _client(port: int, worker: int, errors: list[str], start: threading.Barrier) -> None:
    start.wait()
    for n in range(REQUESTS_PER_THREAD):
        item_id = (worker * REQUESTS_PER_THREAD + n) % ITEMS + 1
        operation_id = f"load-{worker}-{n}"
        plain = n % 2 == 1
        path = f"/plain/items/{item_id}" if plain else f"/items/{item_id}"
        expected = {"id": item_id, "name": item_name(item_id), "operation_id": operation_id}
        try:
            reply = get("127.0.0.1", port, path, {"X-Operation-ID": operation_id})
            data = reply.body if plain else reply.body.get("data")
            if reply.status != 200 or data != expected:
                errors.append(f"{path}: {reply.status} {reply.body}")
            elif reply.headers.get("X-Operation-ID") != operation_id:
                errors.append(f"{path}: header {reply.headers.get('X-Operation-ID')}")
        except Exception as exc:
            errors.append(f"{path}: {exc!r}")


@pytest.mark.slow
def test_pooled_async_engine_serves_many_threads_on_one_loop(
    make_app: AppFactory, database: Database
) -> None:
    engine = database.async_engine(pool_size=POOL_SIZE, max_overflow=0)
    connections: list[object] = []
    event.listen(engine.sync_engine, "connect", lambda *_: connections.append(1))
    try:
        run_coroutine(create_items, engine, ITEMS)
        app = _item_app(make_app, engine)
        errors: list[str] = []
        start = threading.Barrier(CLIENT_THREADS)
        with serve(app) as server:
            clients = [
                threading.Thread(target=_client, args=(server.port, i, errors, start))
                for i in range(CLIENT_THREADS)
            ]
            for client in clients:
                client.start()
            for client in clients:
                client.join(timeout=120)
        assert not any(client.is_alive() for client in clients)
        assert errors == []
        # One pool served all 400 requests from all server threads.
        assert 1 <= len(connections) <= POOL_SIZE
    finally:
        run_coroutine(engine.dispose)


def test_init_app_registers_its_async_engine_once_for_exit_and_fork() -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine("sqlite+aiosqlite://")
    callbacks = len(async_bridge._shutdown_callbacks)
    try:
        chassis = CstMicroChassis()
        chassis.init_app(Flask("engine-a"), db=engine)
        chassis.init_app(Flask("engine-b"), db=engine)  # one engine shared by two apps
        async_bridge.register_engine(engine)
        assert [e for e in async_bridge._engines if e is engine] == [engine]
        assert async_bridge._shutdown_callbacks[callbacks:] == [engine.dispose]
    finally:
        async_bridge._engines.remove(engine)
        del async_bridge._shutdown_callbacks[callbacks:]


# --- context ----------------------------------------------------------------------------------


def test_coroutine_sees_operation_id_request_and_g(make_app: AppFactory) -> None:
    app = make_app()

    @app.before_request
    def set_user() -> None:
        g.user = "alice"

    @app.get("/context")
    async def context_view() -> dict[str, Any]:
        await asyncio.sleep(0)
        return {
            "operation_id": get_operation_id(),
            "path": request.path,
            "q": request.args["q"],
            "user": g.user,
            "thread": threading.get_ident(),
        }

    body = app.test_client().get("/context?q=7", headers={"X-Operation-ID": "op-in"}).get_json()
    assert body == {
        "operation_id": "op-in",
        "path": "/context",
        "q": "7",
        "user": "alice",
        "thread": run_coroutine(_loop_thread_ident),
    }


def test_context_variable_set_in_coroutine_is_seen_by_after_request(make_app: AppFactory) -> None:
    app = make_app()

    @app.get("/set")
    async def set_var() -> dict[str, Any]:
        seen_in_after_request.set("set by the coroutine")
        return {}

    @app.after_request
    def report(response: Response) -> Response:
        response.headers["X-Seen"] = seen_in_after_request.get() or "unset"
        return response

    # In a copy, as a server thread would be: the variable must not outlive this test.
    response = contextvars.copy_context().run(app.test_client().get, "/set")
    assert response.headers["X-Seen"] == "set by the coroutine"


def test_gather_children_and_to_thread_see_operation_id(make_app: AppFactory) -> None:
    app = make_app()

    @app.get("/fan-out")
    async def fan_out() -> dict[str, Any]:
        async def child() -> str | None:
            await asyncio.sleep(0)
            return get_operation_id()

        children = await asyncio.gather(child(), child(), child())
        in_thread = await asyncio.to_thread(get_operation_id)
        return {"children": children, "thread": in_thread}

    body = app.test_client().get("/fan-out", headers={"X-Operation-ID": "op-fan"}).get_json()
    assert body == {"children": ["op-fan"] * 3, "thread": "op-fan"}


def test_requests_on_the_loop_do_not_see_each_others_operation_id(make_app: AppFactory) -> None:
    app = make_app()
    both_inside = threading.Barrier(2)

    @app.get("/slow-id")
    async def slow_id() -> dict[str, Any]:
        before = get_operation_id()
        await asyncio.to_thread(both_inside.wait, 10)  # both coroutines are on the loop now
        return {"before": before, "after": get_operation_id()}

    replies: dict[str, Any] = {}

    def call(operation_id: str) -> None:
        client = app.test_client()
        replies[operation_id] = client.get("/slow-id", headers={"X-Operation-ID": operation_id})

    threads = [threading.Thread(target=call, args=(f"op-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert {k: v.get_json() for k, v in replies.items()} == {
        "op-0": {"before": "op-0", "after": "op-0"},
        "op-1": {"before": "op-1", "after": "op-1"},
    }


# --- exceptions -------------------------------------------------------------------------------


def test_exception_from_async_view_reaches_errorhandler_with_its_type(
    make_app: AppFactory,
) -> None:
    app = make_app()

    @app.get("/boom")
    async def boom_view() -> dict[str, Any]:
        await asyncio.sleep(0)
        raise Boom("from the coroutine")

    @app.errorhandler(Boom)
    def on_boom(exc: Boom) -> tuple[dict[str, Any], int]:
        frames = [frame.name for frame in traceback.extract_tb(exc.__traceback__)]
        return {"type": type(exc).__name__, "message": str(exc), "frames": frames}, 418

    response = app.test_client().get("/boom")
    body = response.get_json()
    assert response.status_code == 418
    assert (body["type"], body["message"]) == ("Boom", "from the coroutine")
    assert "boom_view" in body["frames"]


def test_run_coroutine_raises_the_same_exception_object() -> None:
    error = Boom("same object")

    async def fail() -> None:
        await asyncio.sleep(0)
        raise error

    with pytest.raises(Boom) as caught:
        run_coroutine(fail)
    assert caught.value is error
    assert "fail" in [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]


def test_calling_the_bridge_from_the_loop_thread_raises() -> None:
    async def nested() -> None:
        run_coroutine(asyncio.sleep, 0)

    with pytest.raises(AsyncBridgeError, match="await the coroutine directly"):
        run_coroutine(nested)


# --- leftover and background tasks ------------------------------------------------------------


def test_tasks_left_running_are_cancelled_when_the_view_returns(make_app: AppFactory) -> None:
    app = make_app()
    cancelled = threading.Event()
    tasks: list[asyncio.Task[None]] = []

    @app.get("/leftover")
    async def leftover() -> dict[str, Any]:
        async def forever() -> None:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        tasks.append(asyncio.create_task(forever()))
        await asyncio.sleep(0)
        return {}

    assert app.test_client().get("/leftover").status_code == 200
    # Cancelled and awaited before the response was returned.
    assert cancelled.is_set()
    assert tasks[0].cancelled()


def test_spawn_background_task_outlives_the_request(make_app: AppFactory) -> None:
    app = make_app()
    release, finished = threading.Event(), threading.Event()
    seen: dict[str, str | None] = {}

    @app.get("/background")
    async def background() -> dict[str, Any]:
        async def later() -> None:
            await asyncio.to_thread(release.wait, 10)
            seen["operation_id"] = get_operation_id()
            finished.set()

        spawn_background(later())
        return {}

    response = app.test_client().get("/background", headers={"X-Operation-ID": "op-bg"})
    assert response.status_code == 200
    release.set()  # only now can the task finish: the request is over
    assert finished.wait(10)
    assert seen == {"operation_id": "op-bg"}


def test_spawn_background_outside_the_loop_raises() -> None:
    async def never() -> None:
        pass

    with pytest.raises(AsyncBridgeError, match="chassis event loop"):
        spawn_background(never())


# --- timeouts ---------------------------------------------------------------------------------


def test_coroutine_past_the_timeout_answers_504_and_is_cancelled(make_app: AppFactory) -> None:
    app = make_app(CST_ASYNC_TIMEOUT=0.2)
    cancelled = threading.Event()

    class Slow(ApiResource):
        async def get(self) -> dict[str, Any]:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return {}

    ChassisApi(app).add_resource(Slow, "/slow")
    response = app.test_client().get("/slow", headers={"X-Operation-ID": "op-slow"})
    assert response.status_code == 504
    assert response.get_json() == {
        "meta": {"operation_id": "op-slow"},
        "errors": [{"message": "The request took too long"}],
    }
    assert cancelled.wait(5)


def test_view_blocking_the_loop_delays_others_only_up_to_the_timeout(
    make_app: AppFactory,
) -> None:
    app = make_app(CST_ASYNC_TIMEOUT=0.3)
    blocking = threading.Event()
    release = threading.Event()

    class Blocking(ApiResource):
        async def get(self) -> dict[str, Any]:
            blocking.set()
            release.wait(30)  # the mistake under test: a blocking call on the loop
            return {}

    class Quick(ApiResource):
        async def get(self) -> dict[str, Any]:
            return {"quick": True}

    api = ChassisApi(app)
    api.add_resource(Blocking, "/blocking")
    api.add_resource(Quick, "/quick")
    statuses: list[int] = []
    blocker = threading.Thread(
        target=lambda: statuses.append(app.test_client().get("/blocking").status_code)
    )
    blocker.start()
    try:
        assert blocking.wait(5)
        # The loop stays blocked until the quick request has its answer: it got it from the
        # timeout, not from the end of the block.
        quick = app.test_client().get("/quick")
        assert not release.is_set()
    finally:
        release.set()
        blocker.join(timeout=10)
    assert quick.status_code == 504
    assert statuses == [504]
    run_coroutine(asyncio.sleep, 0)  # the loop is free again
    assert app.test_client().get("/quick").status_code == 200


def test_async_to_sync_without_timeout_waits_for_the_coroutine() -> None:
    async def slow_double(value: int) -> int:
        await asyncio.sleep(0.05)
        return value * 2

    assert async_to_sync(slow_double)(21) == 42


def test_timeout_in_a_plain_async_view_reaches_flask_error_handling(make_app: AppFactory) -> None:
    app = make_app(CST_ASYNC_TIMEOUT=0.1)

    @app.get("/slow")
    async def slow() -> dict[str, Any]:
        await asyncio.sleep(30)
        return {}

    @app.errorhandler(AsyncBridgeTimeout)
    def on_timeout(exc: AsyncBridgeTimeout) -> tuple[dict[str, Any], int]:
        return {"error": type(exc).__name__}, 504

    response = app.test_client().get("/slow")
    assert (response.status_code, response.get_json()) == (504, {"error": "AsyncBridgeTimeout"})


def test_async_hooks_and_error_handlers_run_on_the_chassis_loop(make_app: AppFactory) -> None:
    app = make_app()
    threads: dict[str, int] = {}

    @app.before_request
    async def before() -> None:
        threads["before_request"] = threading.get_ident()

    @app.get("/fails")
    def fails() -> str:
        raise Boom("sync view, async handler")

    @app.errorhandler(Boom)  # type: ignore[type-var,unused-ignore]  # Flask 2.3 types handlers as sync only
    async def on_boom(exc: Boom) -> tuple[str, int]:
        threads["errorhandler"] = threading.get_ident()
        return "handled", 418

    assert app.test_client().get("/fails").status_code == 418
    loop_thread = run_coroutine(_loop_thread_ident)
    assert threads == {"before_request": loop_thread, "errorhandler": loop_thread}


# --- opt-out ----------------------------------------------------------------------------------


def _where_app(app: Flask) -> Flask:
    @app.get("/where")
    async def where() -> dict[str, Any]:
        return {"thread": threading.get_ident(), "name": threading.current_thread().name}

    return app


def test_async_views_run_on_the_chassis_loop_thread(make_app: AppFactory) -> None:
    client = _where_app(make_app()).test_client()
    threads = {client.get("/where").get_json()["thread"] for _ in range(3)}
    assert threads == {run_coroutine(_loop_thread_ident)}


def test_opt_out_leaves_flasks_own_bridge(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CST_ASYNC_BRIDGE", "false")
    app = _where_app(make_app())
    replies = [app.test_client().get("/where").get_json() for _ in range(2)]
    chassis_thread = run_coroutine(_loop_thread_ident)
    assert all(reply["thread"] not in {chassis_thread, threading.get_ident()} for reply in replies)
    assert app.async_to_sync.__func__ is Flask.async_to_sync  # type: ignore[attr-defined]  # a bound method here


# --- processes: exit, fork, gunicorn ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
@pytest.mark.parametrize("flags", [[], ["-W", "default"]], ids=["default", "warnings-shown"])
def test_process_using_a_pooled_engine_exits_silently(
    tmp_path: Path, flags: list[str], loop: str
) -> None:
    result = subprocess.run(
        [sys.executable, *flags, "-m", "tests.apps.clean_exit", str(tmp_path / "db"), "register"],
        cwd=ROOT,
        env=_subprocess_env(CST_ASYNC_LOOP=loop),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stdout.count("'values': [1, 1, 1, 1, 1]") == 2
    assert result.stderr == ""


@pytest.mark.slow
def test_process_with_an_unregistered_engine_exits_silently(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.apps.clean_exit", str(tmp_path / "db")],
        cwd=ROOT,
        env=_subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("choice", "loop_class"),
    [
        ("", "uvloop.Loop"),
        ("auto", "uvloop.Loop"),
        ("uvloop", "uvloop.Loop"),
        ("asyncio", "asyncio.unix_events._UnixSelectorEventLoop"),
    ],
)
@pytest.mark.slow
def test_cst_async_loop_picks_the_loop_uvloop_by_default(choice: str, loop_class: str) -> None:
    script = (
        "from cst_chassis.async_bridge import get_loop; "
        "loop = get_loop(); print(f'{type(loop).__module__}.{type(loop).__qualname__}')"
    )
    env = _subprocess_env(CST_ASYNC_LOOP=choice) if choice else _subprocess_env()
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.strip() == loop_class


@pytest.mark.slow
def test_cst_async_loop_with_a_bad_value_fails_naming_it() -> None:
    script = (
        "import asyncio; from cst_chassis.async_bridge import run_coroutine; "
        "run_coroutine(asyncio.sleep, 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=_subprocess_env(CST_ASYNC_LOOP="trio"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "AsyncBridgeError: CST_ASYNC_LOOP must be one of auto, asyncio, uvloop, not 'trio'" in (
        result.stderr
    )


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_forked_child_gets_its_own_loop_and_pool(database: Database, loop: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.apps.fork_child",
            database.async_url,
            json.dumps(database.async_connect_args),
        ],
        cwd=ROOT,
        env=_subprocess_env(CST_ASYNC_LOOP=loop),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    child, parent = lines
    assert (child["role"], child["status"], child["value"]) == ("child", 200, 42)
    assert parent["child_exit_code"] == 0
    assert parent["before"]["value"] == parent["after"]["value"] == 42
    assert child["pid"] != parent["before"]["pid"]
    assert child["loop_thread"] != parent["before"]["loop_thread"]
    assert parent["after"]["loop_thread"] == parent["before"]["loop_thread"]


class _Gunicorn:
    """gunicorn on 127.0.0.1, port chosen by the OS (read back from its log)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:0", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self.stdout: list[str] = []
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr, True)),
            threading.Thread(target=self._read, args=(self.process.stdout, self.stdout, False)),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, into: list[str], forward: bool) -> None:
        for line in stream:
            into.append(line)
            if forward:
                self.lines.put(line)

    def wait_ready(self, workers: int, timeout: float) -> int:
        """Wait until ``workers`` workers have booted; return the port."""
        deadline = time.monotonic() + timeout
        port, booted = 0, 0
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            if "Listening at: http://127.0.0.1:" in line:
                port = int(line.split("127.0.0.1:")[1].split()[0])
            booted += "Booting worker with pid" in line
            if port and booted == workers:
                return port
        raise AssertionError("gunicorn did not start:\n" + "".join(self.stderr))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=10)
        for reader in self._readers:
            reader.join(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return code


@pytest.fixture
def gunicorn_app(database: Database) -> Iterator[_Gunicorn]:
    env = _subprocess_env(
        ASYNC_APP_DB_URL=database.async_url,
        ASYNC_APP_CONNECT_ARGS=json.dumps(database.async_connect_args),
    )
    server = _Gunicorn(
        [
            "--preload",
            "--workers=2",
            "--worker-class=gthread",
            "--threads=4",
            "--graceful-timeout=5",
            "tests.apps.async_app:app",
        ],
        env,
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_gunicorn_preloaded_workers_each_serve_from_their_own_loop(
    gunicorn_app: _Gunicorn,
) -> None:
    port = gunicorn_app.wait_ready(workers=2, timeout=60)
    answers: list[dict[str, Any]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(worker: int) -> None:
        for n in range(REQUESTS_PER_THREAD):
            with lock:
                pids = {answer["data"]["pid"] for answer in answers if answer["status"] == 200}
                if len(pids) >= 2 and len(answers) >= 40:
                    return
            try:
                reply = get("127.0.0.1", port, "/whoami", {"X-Operation-ID": f"gu-{worker}-{n}"})
            except Exception as exc:
                errors.append(repr(exc))
                continue
            with lock:
                answers.append({"status": reply.status, "op": f"gu-{worker}-{n}", **reply.body})

    clients = [threading.Thread(target=client, args=(i,)) for i in range(CLIENT_THREADS)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(timeout=120)

    assert errors == []
    assert all(a["status"] == 200 and a["meta"]["operation_id"] == a["op"] for a in answers)
    data = [answer["data"] for answer in answers]
    assert all(d["names"] == [item_name(i) for i in (1, 2, 3)] for d in data)
    loop_of = {d["pid"]: {e["loop_thread"] for e in data if e["pid"] == d["pid"]} for d in data}
    assert len(loop_of) == 2  # both workers answered
    master = data[0]["preload_pid"]
    master_loop = data[0]["preload_loop_thread"]
    assert master not in loop_of
    # One loop thread per worker, neither of them the master's (which ran at import time).
    assert all(len(threads) == 1 for threads in loop_of.values())
    worker_loops = {next(iter(threads)) for threads in loop_of.values()}
    assert len(worker_loops) == 2 and master_loop not in worker_loops

    assert gunicorn_app.stop() == 0
    logs = "".join(gunicorn_app.stderr + gunicorn_app.stdout)
    for noise in ("Traceback", "Event loop is closed", "[ERROR]", "Exception ignored"):
        assert noise not in logs


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


BIN = Path(sys.executable).parent
# How each server starts its workers: gunicorn --preload and uWSGI (without lazy-apps) import the
# app in the master, which already ran coroutines on its loop, then fork; granian's master
# imports nothing and forks workers that import the app themselves.
FORKING_SERVERS: dict[str, tuple[bool, list[str]]] = {
    "granian": (
        False,
        [
            str(BIN / "granian"),
            "--interface=wsgi",
            "--workers=2",
            "--blocking-threads=4",
            "--host=127.0.0.1",
            "--port={port}",
            "--workers-kill-timeout=5",
            "--log-level=error",
            "tests.apps.async_app:app",
        ],
    ),
    "uwsgi": (
        True,
        [
            str(BIN / "uwsgi"),
            "--http11-socket=127.0.0.1:{port}",
            "--master",
            "--processes=2",
            "--threads=4",
            "--module=tests.apps.async_app:app",
            "--die-on-term",
            "--need-app",
            "--disable-logging",
        ],
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("server", "loop"), [("granian", "uvloop"), ("uwsgi", "uvloop"), ("uwsgi", "asyncio")]
)
def test_server_workers_each_serve_from_their_own_loop_and_exit_cleanly(
    server: str, loop: str, database: Database
) -> None:
    preloaded, template = FORKING_SERVERS[server]
    env = _subprocess_env(
        CST_ASYNC_LOOP=loop,
        ASYNC_APP_DB_URL=database.async_url,
        ASYNC_APP_CONNECT_ARGS=json.dumps(database.async_connect_args),
    )
    if not preloaded:  # every worker imports the app: seed once, here
        seeded = subprocess.run(
            [sys.executable, "-c", "import tests.apps.async_app"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (seeded.returncode, seeded.stderr) == (0, "")
        env["ASYNC_APP_SEED"] = "0"
    port = _free_port()
    process = subprocess.Popen(
        [part.format(port=port) for part in template],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        answers = _whoami_until_both_workers_answer(port, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate(timeout=10)

    assert all(a["status"] == 200 and a["meta"]["operation_id"] == a["op"] for a in answers)
    data = [answer["data"] for answer in answers]
    assert all(d["names"] == [item_name(i) for i in (1, 2, 3)] for d in data)
    loop_of = {d["pid"]: {e["loop_thread"] for e in data if e["pid"] == d["pid"]} for d in data}
    assert len(loop_of) == 2  # both workers answered
    assert all(len(threads) == 1 for threads in loop_of.values())  # one loop per worker
    worker_loops = {next(iter(threads)) for threads in loop_of.values()}
    assert len(worker_loops) == 2
    if preloaded:  # the master's loop (which ran at import time) serves no worker
        assert data[0]["preload_pid"] not in loop_of
        assert data[0]["preload_loop_thread"] not in worker_loops
    assert process.returncode == 0, output
    for noise in ("Traceback", "Event loop is closed", "[ERROR]", "Exception ignored"):
        assert noise not in output


def _whoami_until_both_workers_answer(
    port: int, process: subprocess.Popen[str]
) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    n = 0
    while len({a["data"]["pid"] for a in answers}) < 2 or len(answers) < 40:
        assert time.monotonic() < deadline, "both workers did not answer within 60 s"
        assert process.poll() is None, "the server exited"
        n += 1
        try:
            reply = get("127.0.0.1", port, "/whoami", {"X-Operation-ID": f"srv-{n}"})
        except OSError:  # not listening yet
            time.sleep(0.1)
            continue
        assert reply.status == 200, reply.body
        answers.append({"status": reply.status, "op": f"srv-{n}", **reply.body})
    return answers


def test_get_loop_returns_the_loop_the_bridge_runs_on() -> None:
    async def running_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    assert run_coroutine(running_loop) is get_loop()
