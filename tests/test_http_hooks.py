"""The requests adapter and httpx hooks: two real services on loopback share one operation and
one trace."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests

from cst_chassis import get_operation_id
from cst_chassis.http_httpx import httpx_async_event_hooks, httpx_event_hooks
from cst_chassis.http_requests import chassis_session
from cst_chassis.tracing import get_trace_context
from tests.conftest import AppFactory
from tests.tracing_support import json_lines, serve

TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE}-b7ad6b7169203331-01"


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _ids() -> dict[str, Any]:
    trace = get_trace_context()
    assert trace is not None
    return {"operation_id": get_operation_id(), **trace._asdict()}


@pytest.fixture
def downstream(make_app: AppFactory) -> Iterator[str]:
    app = make_app("payments", CST_LOG_FORMAT="json")

    @app.get("/charge")
    def charge() -> dict[str, Any]:
        logging.getLogger("payments").info("charging")
        return _ids()

    with serve(app) as url:
        yield url


@pytest.fixture
def upstream(make_app: AppFactory, downstream: str) -> Iterator[str]:
    app = make_app("orders", CST_LOG_FORMAT="json")
    session = chassis_session()
    sync_client = httpx.Client(event_hooks=httpx_event_hooks())

    @app.get("/via/requests")
    def via_requests() -> dict[str, Any]:
        logging.getLogger("orders").info("calling payments")
        return {"self": _ids(), "callee": session.get(f"{downstream}/charge", timeout=10).json()}

    @app.get("/via/httpx")
    def via_httpx() -> dict[str, Any]:
        logging.getLogger("orders").info("calling payments")
        return {"self": _ids(), "callee": sync_client.get(f"{downstream}/charge").json()}

    @app.get("/via/httpx-async")
    async def via_httpx_async() -> dict[str, Any]:
        logging.getLogger("orders").info("calling payments")
        async with httpx.AsyncClient(event_hooks=httpx_async_event_hooks()) as client:
            response = await client.get(f"{downstream}/charge")
        return {"self": _ids(), "callee": response.json()}

    try:
        with serve(app) as url:
            yield url
    finally:
        session.close()
        sync_client.close()


@pytest.mark.slow
@pytest.mark.parametrize("client", ["requests", "httpx", "httpx-async"])
def test_the_callee_logs_the_same_operation_and_continues_the_trace(
    upstream: str, client: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    response = requests.get(
        f"{upstream}/via/{client}",
        headers={"X-Operation-ID": f"order-{client}", "traceparent": TRACEPARENT},
        timeout=10,
    )
    assert response.status_code == 200
    body = response.json()
    caller, callee = body["self"], body["callee"]
    assert callee["operation_id"] == caller["operation_id"] == f"order-{client}"
    assert callee["trace_id"] == caller["trace_id"] == TRACE
    # The callee's parent is the child span the caller named in its traceparent.
    assert callee["parent_id"] not in (None, caller["span_id"], caller["parent_id"])
    assert callee["span_id"] != caller["span_id"]
    lines = json_lines(capsys)
    mine = [line for line in lines if line["logger"] in ("orders", "payments")]
    assert [line["logger"] for line in mine] == ["orders", "payments"]
    assert {line["trace_id"] for line in mine} == {TRACE}
    assert {line["operation_id"] for line in mine} == {f"order-{client}"}


@pytest.mark.slow
def test_without_incoming_headers_both_services_share_the_new_ids(
    upstream: str, capsys: pytest.CaptureFixture[str]
) -> None:
    body = requests.get(f"{upstream}/via/requests", timeout=10).json()
    caller, callee = body["self"], body["callee"]
    assert callee["operation_id"] == caller["operation_id"]
    assert caller["operation_id"].replace("-", "") == caller["trace_id"] == callee["trace_id"]


@pytest.mark.slow
def test_headers_set_by_the_caller_are_kept(downstream: str, make_app: AppFactory) -> None:
    app = make_app("caller")
    session = chassis_session()

    @app.get("/call")
    def call() -> dict[str, Any]:
        response = session.get(
            f"{downstream}/charge", headers={"X-Operation-ID": "explicit"}, timeout=10
        )
        body: dict[str, Any] = response.json()
        return body

    try:
        body = app.test_client().get("/call", headers={"X-Operation-ID": "from-request"}).json
    finally:
        session.close()
    assert body is not None
    assert body["operation_id"] == "explicit"


@pytest.mark.slow
def test_outside_a_request_the_hooks_add_nothing(downstream: str) -> None:
    with chassis_session() as session:
        body = session.get(f"{downstream}/charge", timeout=10).json()
    # The callee started a trace of its own.
    assert body["parent_id"] is None
