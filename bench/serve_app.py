"""The services `bench/serve.py` loads: one PostgreSQL primary-key lookup per request, enveloped.

The server imports this module (``serve_app:app``) with ``BENCH_APP`` naming the service and
``BENCH_DATABASE_URL`` the database (a ``postgresql+psycopg://`` URL; the async services use the
same database through asyncpg). ``BENCH_POOL`` sets each process's pool size (default 8, one
connection per server thread). Every service answers ``GET /items/<id>`` with
``{"meta": {"operation_id": ...}, "data": {"id", "name", "price_cents"}}`` and an
``X-Operation-ID`` header, or 404.

- ``bare``: a ``flask_restful.Resource`` on ``flask_restful.Api`` that builds the envelope itself
  (sync SQLAlchemy Core on psycopg).
- ``chassis-sync``: an ``ApiResource`` on ``ChassisApi`` with ``CstMicroChassis`` (psycopg).
- ``chassis-async``: the same with ``async def get`` on a pooled ``AsyncEngine`` (asyncpg) on the
  chassis event loop.
- ``chassis-async-asyncio``: the same on asyncio's own loop (``CST_ASYNC_LOOP=asyncio``).
- ``fastapi``: FastAPI with an ``async def`` endpoint on a pooled ``AsyncEngine`` (asyncpg): the
  ASGI baseline, served by uvicorn.

The engines are created at import (no connection is opened before the first request), so a
server that imports the app in its master and forks the workers (uWSGI) is covered too.
"""

from __future__ import annotations

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
KINDS = ("bare", "chassis-sync", "chassis-async", "chassis-async-asyncio", "fastapi")
LOOKUP = sa.select(ITEMS.c.id, ITEMS.c.name, ITEMS.c.price_cents).where(
    ITEMS.c.id == sa.bindparam("item_id")
)


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


def _pool() -> dict[str, int]:
    return {"pool_size": int(os.environ.get("BENCH_POOL", "8")), "max_overflow": 0}


def create_app(kind: str) -> Any:
    """The WSGI (or, for ``fastapi``, ASGI) app named ``kind``."""
    sync_url, async_url = database_urls()
    if kind == "fastapi":
        return _fastapi_app(async_url)
    if kind == "bare":
        return _bare_app(sync_url)
    if kind == "chassis-sync":
        return _chassis_sync_app(sync_url)
    if kind == "chassis-async":
        return _chassis_async_app(async_url)
    if kind == "chassis-async-asyncio":
        # The same service on asyncio's own loop instead of uvloop (read when the loop starts).
        os.environ["CST_ASYNC_LOOP"] = "asyncio"
        return _chassis_async_app(async_url)
    raise ValueError(f"BENCH_APP must be one of {', '.join(KINDS)}, not {kind!r}")


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


def _chassis_sync_app(sync_url: str) -> Any:
    from flask import Flask
    from flask_restful import abort

    from cst_chassis import ChassisApi, CstMicroChassis
    from cst_chassis.resources import ApiResource

    engine = sa.create_engine(sync_url, **_pool())

    class Item(ApiResource):
        def get(self, item_id: int) -> dict[str, Any]:
            with engine.connect() as conn:
                row = conn.execute(LOOKUP, {"item_id": item_id}).one_or_none()
            if row is None:
                abort(404, message=f"Item {item_id} does not exist")
            return dict(row._mapping)

    app = Flask("bench-chassis-sync")
    CstMicroChassis().init_app(app)
    ChassisApi(app).add_resource(Item, "/items/<int:item_id>")
    return app


def _chassis_async_app(async_url: str) -> Any:
    from flask import Flask
    from flask_restful import abort

    from cst_chassis import ChassisApi, CstMicroChassis
    from cst_chassis.resources import ApiResource

    engine = create_async_engine(async_url, **_pool())

    class Item(ApiResource):
        async def get(self, item_id: int) -> dict[str, Any]:
            async with engine.connect() as conn:
                row = (await conn.execute(LOOKUP, {"item_id": item_id})).one_or_none()
            if row is None:
                abort(404, message=f"Item {item_id} does not exist")
            return dict(row._mapping)

    app = Flask("bench-chassis-async")
    CstMicroChassis().init_app(app, db=engine)
    ChassisApi(app).add_resource(Item, "/items/<int:item_id>")
    return app


def _fastapi_app(async_url: str) -> Any:
    # The bench extra installs FastAPI; the test extra (CI's mypy) does not.
    from fastapi import FastAPI, HTTPException  # type: ignore[import-not-found, unused-ignore]
    from fastapi.responses import JSONResponse  # type: ignore[import-not-found, unused-ignore]

    engine = create_async_engine(async_url, **_pool())
    app = FastAPI()

    @app.get("/items/{item_id}")  # type: ignore[untyped-decorator, unused-ignore]  # no FastAPI
    async def get_item(item_id: int) -> JSONResponse:
        async with engine.connect() as conn:
            row = (await conn.execute(LOOKUP, {"item_id": item_id})).one_or_none()
        if row is None:
            raise HTTPException(404, f"Item {item_id} does not exist")
        operation_id = str(uuid.uuid4())
        return JSONResponse(
            {"meta": {"operation_id": operation_id}, "data": dict(row._mapping)},
            headers={"X-Operation-ID": operation_id},
        )

    return app


app = create_app(os.environ["BENCH_APP"]) if "BENCH_APP" in os.environ else None
