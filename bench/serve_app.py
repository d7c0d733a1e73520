"""The services `bench/serve.py` loads: a PostgreSQL lookup, or a fan-out to a slow upstream.

The server imports this module (``serve_app:app``) with ``BENCH_APP`` naming the service,
``BENCH_WORKLOAD`` the work (``lookup``, the default, or ``fanout``) and ``BENCH_ASGI=1`` when it
speaks ASGI: a chassis service is then wrapped with ``cst_chassis.asgi.asgi_app`` (async views on
the server's event loop, sync views in its thread pool). ``BENCH_THREADS`` sets each process's
pool size for sync work (database connections, HTTP connections; default 8, one per server
thread) and ``BENCH_POOL`` the async database pool (default ``BENCH_THREADS``).

**lookup**: ``GET /items/<id>``, one primary-key lookup in ``BENCH_DATABASE_URL`` (a
``postgresql+psycopg://`` URL; the async services use the same database through asyncpg),
answered ``{"meta": {"operation_id": ...}, "data": {"id", "name", "price_cents"}}`` with an
``X-Operation-ID`` header, or 404.

**fanout**: ``GET /fanout`` calls ``BENCH_UPSTREAM`` (``bench/upstream_app.py``, which answers
after 200 ms) three times and answers ``{"meta": ..., "data": {"upstream": [1, 1, 1]}}``. The
async services await the three calls concurrently with aiohttp (one ``ClientSession`` per
process, no connection limit), FastAPI and the chassis alike; the sync service makes them in
turn with urllib3 (aiohttp has no blocking API), one pooled connection per server thread.

- ``bare``: a ``flask_restful.Resource`` on ``flask_restful.Api`` that builds the envelope itself
  (sync SQLAlchemy Core on psycopg; lookup only).
- ``chassis-sync``: an ``ApiResource`` on ``ChassisApi`` with ``CstMicroChassis``.
- ``chassis-async``: the same with ``async def get``: on a WSGI server it runs on the chassis
  event loop (the WSGI bridge), on an ASGI server on the server's own loop.
- ``fastapi``: FastAPI with an ``async def`` endpoint: the ASGI baseline.

The engines are created at import (no connection is opened before the first request), so a
server that imports the app in its master and forks the workers (uWSGI) is covered too; the
aiohttp session is created on the loop of the first request.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

ITEMS = sa.Table(
    "bench_items",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("price_cents", sa.Integer, nullable=False),
)
ROWS = 1000
KINDS = ("bare", "chassis-sync", "chassis-async", "fastapi")
WORKLOADS = ("lookup", "fanout")
LOOKUP = sa.select(ITEMS.c.id, ITEMS.c.name, ITEMS.c.price_cents).where(
    ITEMS.c.id == sa.bindparam("item_id")
)
FANOUT_CALLS = 3


def database_urls() -> tuple[str, str]:
    """The sync (psycopg) and async (asyncpg) URLs of ``BENCH_DATABASE_URL``."""
    url = sa.make_url(os.environ["BENCH_DATABASE_URL"])
    return (
        url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False),
        url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False),
    )


def seed(sync_url: str) -> None:
    """Create and fill ``bench_items`` (idempotent)."""
    engine = sa.create_engine(sync_url)
    try:
        with engine.begin() as conn:
            ITEMS.metadata.create_all(conn)
            if conn.scalar(sa.select(sa.func.count()).select_from(ITEMS)) != ROWS:
                conn.execute(ITEMS.delete())
                conn.execute(
                    ITEMS.insert(),
                    [
                        {"id": i, "name": f"Item {i:04}", "price_cents": i * 7 % 10000}
                        for i in range(1, ROWS + 1)
                    ],
                )
    finally:
        engine.dispose()


def _threads() -> int:
    return int(os.environ.get("BENCH_THREADS", os.environ.get("BENCH_POOL", "8")))


def _pool(async_pool: bool = False) -> dict[str, int]:
    size = int(os.environ.get("BENCH_POOL", _threads())) if async_pool else _threads()
    return {"pool_size": size, "max_overflow": 0}


# --- the fan-out's HTTP clients ------------------------------------------------------------------

_sessions: dict[int, Any] = {}


async def _session() -> Any:
    """This process's aiohttp session, created on the running loop at the first call."""
    import aiohttp  # type: ignore[import-not-found, unused-ignore]  # the bench extra

    loop = asyncio.get_running_loop()
    session = _sessions.get(id(loop))
    if session is None:
        # No connection limit (aiohttp's default is 100 per session): FastAPI and the chassis
        # both get as many upstream connections as they have calls in flight.
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
        session = _sessions[id(loop)] = aiohttp.ClientSession(connector=connector)
    return session


async def fan_out(upstream: str) -> list[int]:
    """Three concurrent calls to the upstream, awaited together: their ``value`` fields."""
    session = await _session()

    async def call() -> int:
        async with session.get(upstream) as response:
            response.raise_for_status()
            value: int = (await response.json())["value"]
            return value

    return list(await asyncio.gather(*(call() for _ in range(FANOUT_CALLS))))


def _sync_fan_out(upstream: str) -> Any:
    """The three calls in turn on a pooled urllib3 connection (a sync view blocks its thread)."""
    import json

    import urllib3

    pool = urllib3.PoolManager(maxsize=_threads(), retries=False)

    def call() -> list[int]:
        values = []
        for _ in range(FANOUT_CALLS):
            response = pool.request("GET", upstream)
            if response.status != 200:
                raise RuntimeError(f"upstream answered {response.status}")
            values.append(json.loads(response.data)["value"])
        return values

    return call


# --- the services --------------------------------------------------------------------------------


def create_app(kind: str, workload: str = "lookup", asgi: bool = False) -> Any:
    """The WSGI app named ``kind`` (an ASGI app for ``fastapi``, or when ``asgi`` is true)."""
    if workload not in WORKLOADS:
        raise ValueError(f"BENCH_WORKLOAD must be one of {', '.join(WORKLOADS)}, not {workload!r}")
    if kind not in KINDS or (kind == "bare" and workload == "fanout"):
        raise ValueError(f"BENCH_APP must be one of {', '.join(KINDS)}, not {kind!r}")
    if workload == "fanout":
        # Imported with the app, not by the first request a worker serves (which wrk times).
        import aiohttp  # type: ignore[import-not-found, unused-ignore]  # noqa: F401

    if kind == "fastapi":
        return _fastapi_app(workload)
    if kind == "bare":
        return _bare_app(database_urls()[0])
    app = _chassis_app(kind == "chassis-async", workload)
    if asgi:
        from cst_chassis.asgi import asgi_app

        return asgi_app(app)
    return app


def _bare_app(sync_url: str) -> Any:
    import flask_restful
    from flask import Flask

    engine = sa.create_engine(sync_url, **_pool())

    class Item(flask_restful.Resource):
        def get(self, item_id: int) -> Any:
            with engine.connect() as conn:
                row = conn.execute(LOOKUP, {"item_id": item_id}).one_or_none()
            operation_id = str(uuid.uuid4())
            if row is None:
                flask_restful.abort(404, message=f"Item {item_id} does not exist")
            body = {"meta": {"operation_id": operation_id}, "data": dict(row._mapping)}
            return body, 200, {"X-Operation-ID": operation_id}

    app = Flask("bench-bare")
    flask_restful.Api(app).add_resource(Item, "/items/<int:item_id>")
    return app


def _chassis_app(is_async: bool, workload: str) -> Any:
    from flask import Flask
    from flask_restful import abort

    from cst_chassis import ChassisApi, CstMicroChassis
    from cst_chassis.resources import ApiResource

    app = Flask(f"bench-chassis-{'async' if is_async else 'sync'}-{workload}")
    api_resource: Any = ApiResource  # a base class mypy sees through the stubs
    if workload == "fanout":
        upstream = os.environ["BENCH_UPSTREAM"]
        if is_async:

            class Fanout(api_resource):  # type: ignore[misc]  # Any base
                async def get(self) -> dict[str, Any]:
                    return {"upstream": await fan_out(upstream)}

        else:
            calls = _sync_fan_out(upstream)

            class Fanout(api_resource):  # type: ignore[misc, no-redef]  # Any base
                def get(self) -> dict[str, Any]:
                    return {"upstream": calls()}

        CstMicroChassis().init_app(app)
        ChassisApi(app).add_resource(Fanout, "/fanout")
        return app

    sync_url, async_url = database_urls()
    if is_async:
        engine = create_async_engine(async_url, **_pool(async_pool=True))

        class Item(api_resource):  # type: ignore[misc]  # Any base
            async def get(self, item_id: int) -> dict[str, Any]:
                async with engine.connect() as conn:
                    row = (await conn.execute(LOOKUP, {"item_id": item_id})).one_or_none()
                if row is None:
                    abort(404, message=f"Item {item_id} does not exist")
                return dict(row._mapping)

        CstMicroChassis().init_app(app, db=engine)
    else:
        sync_engine = sa.create_engine(sync_url, **_pool())

        class Item(api_resource):  # type: ignore[misc, no-redef]  # Any base
            def get(self, item_id: int) -> dict[str, Any]:
                with sync_engine.connect() as conn:
                    row = conn.execute(LOOKUP, {"item_id": item_id}).one_or_none()
                if row is None:
                    abort(404, message=f"Item {item_id} does not exist")
                return dict(row._mapping)

        CstMicroChassis().init_app(app)
    ChassisApi(app).add_resource(Item, "/items/<int:item_id>")
    return app


def _fastapi_app(workload: str) -> Any:
    # The bench extra installs FastAPI; the test extra (CI's mypy) does not.
    from fastapi import FastAPI, HTTPException  # type: ignore[import-not-found, unused-ignore]
    from fastapi.responses import JSONResponse  # type: ignore[import-not-found, unused-ignore]

    app = FastAPI()

    def enveloped(data: dict[str, Any]) -> JSONResponse:
        operation_id = str(uuid.uuid4())
        return JSONResponse(
            {"meta": {"operation_id": operation_id}, "data": data},
            headers={"X-Operation-ID": operation_id},
        )

    if workload == "fanout":
        upstream = os.environ["BENCH_UPSTREAM"]

        @app.get("/fanout")  # type: ignore[untyped-decorator, unused-ignore]  # no FastAPI
        async def get_fanout() -> JSONResponse:
            return enveloped({"upstream": await fan_out(upstream)})

        return app

    engine = create_async_engine(database_urls()[1], **_pool(async_pool=True))

    @app.get("/items/{item_id}")  # type: ignore[untyped-decorator, unused-ignore]  # no FastAPI
    async def get_item(item_id: int) -> JSONResponse:
        async with engine.connect() as conn:
            row = (await conn.execute(LOOKUP, {"item_id": item_id})).one_or_none()
        if row is None:
            raise HTTPException(404, f"Item {item_id} does not exist")
        return enveloped(dict(row._mapping))

    return app


app = (
    create_app(
        os.environ["BENCH_APP"],
        os.environ.get("BENCH_WORKLOAD", "lookup"),
        asgi=os.environ.get("BENCH_ASGI") == "1",
    )
    if "BENCH_APP" in os.environ
    else None
)
