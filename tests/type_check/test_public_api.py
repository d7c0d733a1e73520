"""Checked by mypy --strict: the public API as a typed service uses it.

The functions also run under pytest, so the file cannot rot into something that only
type-checks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, assert_type

from flask import Flask
from flask_restful import Api

from cst_chassis import (
    ChassisApi,
    ChassisConfig,
    CstMicroChassis,
    ErrorEnvelope,
    SuccessEnvelope,
    TraceContext,
    get_operation_id,
    get_state,
    get_trace_context,
    outgoing_headers,
)
from cst_chassis.envelope import error_envelope, success_envelope
from cst_chassis.resources import ApiResource
from cst_chassis.utils import retry


class Hello(ApiResource):
    def get(self, name: str) -> tuple[str, int]:
        return f"hello {name}", 200


class AsyncHello(ApiResource):
    async def get(self) -> dict[str, str | None]:
        return {"op": get_operation_id()}


@retry(tries=2, delay=0)
def fetch(url: str, *, timeout: float = 1.0) -> bytes:
    return url.encode()


@retry(tries=2, delay=0)
async def fetch_async(url: str) -> int:
    return len(url)


def test_public_api_types() -> None:
    app = Flask("typed-service")
    chassis = CstMicroChassis()
    chassis.init_app(app)
    api: Api = ChassisApi(app)
    api.add_resource(Hello, "/hello/<string:name>")
    api.add_resource(AsyncHello, "/async")

    assert_type(get_operation_id(), str | None)
    assert_type(outgoing_headers(), dict[str, str])
    assert_type(get_trace_context(), TraceContext | None)
    assert_type(get_state(app).config, ChassisConfig)
    assert_type(get_state(app).config.default_page_size, int)
    assert_type(fetch("x", timeout=2.0), bytes)
    pending = assert_type(fetch_async("abc"), Coroutine[Any, Any, int])
    assert asyncio.run(pending) == 3

    @chassis.health_check("cache")
    def cache() -> bool:
        return True

    assert_type(cache(), bool)
    with app.test_request_context():
        ok: SuccessEnvelope = success_envelope([1, 2])
        bad: ErrorEnvelope = error_envelope([{"message": "m", "path": "p"}])
    assert ok["data"] == [1, 2]
    assert bad["errors"][0]["message"] == "m"
    assert app.test_client().get("/hello/x").get_json()["data"] == "hello x"
    logging.getLogger(__name__).debug("typed")
