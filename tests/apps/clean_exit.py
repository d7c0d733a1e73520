"""Serve two async requests with a pooled aiosqlite engine, leave background tasks running (one
holding a pooled connection), and exit; the test checks that nothing reaches stderr.

Usage: ``python -m tests.apps.clean_exit SQLITE_FILE [register]`` (``register``: give the engine
to ``init_app(app, db=engine)`` so that it is disposed at exit).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.ext.asyncio import create_async_engine

from cst_chassis import CstMicroChassis
from cst_chassis.async_bridge import spawn_background


def main() -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{sys.argv[1]}", pool_size=5)
    app = Flask(__name__)
    CstMicroChassis().init_app(app, db=engine if "register" in sys.argv[2:] else None)

    async def hold_connection() -> None:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
            await asyncio.sleep(3600)

    @app.get("/query")
    async def query() -> dict[str, Any]:
        async def one() -> int:
            async with engine.connect() as conn:
                return int((await conn.execute(sa.text("SELECT 1"))).scalar_one())

        values = await asyncio.gather(*(one() for _ in range(5)))
        spawn_background(asyncio.sleep(3600))
        spawn_background(hold_connection())
        return {"values": values}

    client = app.test_client()
    for _ in range(2):
        print(client.get("/query").get_json())


if __name__ == "__main__":
    main()
