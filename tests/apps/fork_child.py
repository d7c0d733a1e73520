"""Use the bridge and a pooled async engine, ``os.fork()``, use both in the child, then again in
the parent; print one JSON line per process (run by test_async_bridge).

Usage: ``python -m tests.apps.fork_child ASYNC_DB_URL CONNECT_ARGS_JSON``
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.ext.asyncio import create_async_engine

from cst_chassis import CstMicroChassis


def main() -> None:
    engine = create_async_engine(sys.argv[1], pool_size=2, connect_args=json.loads(sys.argv[2]))
    app = Flask(__name__)
    # Short: a child that reused the parent's connection would hang, not fail.
    app.config["CST_ASYNC_TIMEOUT"] = 5
    CstMicroChassis().init_app(app, db=engine)

    @app.get("/probe")
    async def probe() -> dict[str, Any]:
        async with engine.connect() as conn:
            value = (await conn.execute(sa.text("SELECT 40 + 2"))).scalar_one()
        return {"pid": os.getpid(), "loop_thread": threading.get_native_id(), "value": value}

    client = app.test_client()
    # The parent's loop is running and its pool holds a connection made on that loop.
    before = client.get("/probe").get_json()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        response = client.get("/probe")
        print(json.dumps({"role": "child", "status": response.status_code, **response.get_json()}))
        sys.exit(0)  # a normal exit: the child's own exit hook closes its pool
    _, wait_status = os.waitpid(pid, 0)
    after = client.get("/probe").get_json()  # the parent's pooled connection still works
    print(
        json.dumps(
            {
                "role": "parent",
                "before": before,
                "after": after,
                "child_exit_code": os.waitstatus_to_exitcode(wait_status),
            }
        )
    )


if __name__ == "__main__":
    main()
