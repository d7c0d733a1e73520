"""The app the server tests serve: gunicorn ``--preload``, uWSGI (no lazy-apps), granian.

A module-level pooled ``AsyncEngine`` that the master already uses at import time (it creates
and fills a table on its own event loop), then every worker uses: each worker must get its own
loop and a fresh pool. ``/whoami`` tells which process and loop thread answered.

Environment: ``ASYNC_APP_DB_URL`` (an async SQLAlchemy URL), ``ASYNC_APP_CONNECT_ARGS`` (JSON),
``ASYNC_APP_SEED=0`` to skip the seeding (run ``python -m tests.apps.async_app`` first).
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from flask import Flask
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from cst_chassis import ChassisApi, CstMicroChassis, get_operation_id
from cst_chassis.async_bridge import run_coroutine
from cst_chassis.resources import ApiResource
from tests.async_support import Base, Item, item_name

ITEMS = 3

engine = create_async_engine(
    os.environ["ASYNC_APP_DB_URL"],
    pool_size=3,
    connect_args=json.loads(os.environ.get("ASYNC_APP_CONNECT_ARGS", "{}")),
)
sessions = async_sessionmaker(engine, expire_on_commit=False)

app = Flask(__name__)
app.config["CST_ASYNC_TIMEOUT"] = 10
CstMicroChassis().init_app(app, db=engine)


async def _seed() -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        await conn.execute(delete(Item))
        await conn.execute(
            insert(Item), [{"id": i, "name": item_name(i)} for i in range(1, ITEMS + 1)]
        )


async def _loop_thread() -> int:
    return threading.get_native_id()


# A server whose workers each import this module (granian) seeds once beforehand instead.
if os.environ.get("ASYNC_APP_SEED", "1") == "1":
    run_coroutine(_seed)
PRELOAD_PID = os.getpid()
PRELOAD_LOOP_THREAD = run_coroutine(_loop_thread)


class Whoami(ApiResource):
    async def get(self) -> dict[str, Any]:
        async with sessions() as session:
            names = list(await session.scalars(select(Item.name).order_by(Item.id)))
        return {
            "pid": os.getpid(),
            "loop_thread": threading.get_native_id(),
            "preload_pid": PRELOAD_PID,
            "preload_loop_thread": PRELOAD_LOOP_THREAD,
            "names": names,
            "operation_id": get_operation_id(),
        }


ChassisApi(app).add_resource(Whoami, "/whoami")
