"""The requests adapter and httpx hooks: two real services on loopback share one operation and
one trace."""

from __future__ import annotations

import http.server
import logging
import threading
from collections.abc import Iterator
from typing import Any

import flask
import httpx
import pytest
import requests
from flask import Flask

from cst_chassis import get_operation_id, outgoing_headers
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


# -- propagation only to configured hosts (issue 26, item 2) ------------------------------------

THIRD_PARTY = "http://api.payments.example/charge"
HOSTILE_TRACESTATE = "evil@vendor=session_token_here"
ID_HEADERS = ("x-operation-id", "traceparent", "tracestate")


class _Recorder:
    """A loopback HTTP server, also used as the forward proxy, that records each request.

    Used as the proxy, it receives calls to any host name (no DNS needed) as a real upstream
    would: the chassis's hooks see the URL the app asked for. ``/redirect`` answers a 302 to
    :data:`THIRD_PARTY`.
    """

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                if self.path.endswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", THIRD_PARTY)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def headers_sent_to(self, host: str) -> list[dict[str, str]]:
        return [headers for _, headers in self.seen if headers.get("host") == host]


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    recorder = _Recorder()
    recorder.thread.start()
    try:
        yield recorder
    finally:
        recorder.server.shutdown()
        recorder.server.server_close()
        recorder.thread.join(10)


def _caller(make_app: AppFactory, proxy: str, **config: Any) -> Any:
    """An app whose ``/call?url=...&client=...`` calls ``url`` through ``proxy``."""
    app = make_app("caller", **config)
    session = chassis_session()
    session.proxies = {"http": proxy}
    sync_client = httpx.Client(event_hooks=httpx_event_hooks(), proxy=proxy)

    @app.get("/call")
    def call() -> dict[str, Any]:
        url = flask.request.args["url"]
        if flask.request.args["client"] == "requests":
            session.get(url, timeout=10)
        else:
            sync_client.get(url, follow_redirects=True)
        return {}

    @app.get("/call-async")
    async def call_async() -> dict[str, Any]:
        url = flask.request.args["url"]
        async with httpx.AsyncClient(event_hooks=httpx_async_event_hooks(), proxy=proxy) as c:
            await c.get(url, follow_redirects=True)
        return {}

    return app, session, sync_client


def _call(app: Any, client: str, url: str) -> None:
    path = "/call-async" if client == "httpx-async" else "/call"
    response = app.test_client().get(
        path,
        query_string={"url": url, "client": client},
        headers={
            "X-Operation-ID": "client-op",
            "traceparent": TRACEPARENT,
            "tracestate": HOSTILE_TRACESTATE,
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)


CLIENTS = ["requests", "httpx", "httpx-async"]


@pytest.mark.slow
@pytest.mark.parametrize("client", CLIENTS)
def test_by_default_a_third_party_gets_none_of_the_ids_nor_the_tracestate(
    make_app: AppFactory, recorder: _Recorder, client: str
) -> None:
    app, session, sync_client = _caller(make_app, recorder.url)
    try:
        _call(app, client, THIRD_PARTY)
    finally:
        session.close()
        sync_client.close()
    [sent] = recorder.headers_sent_to("api.payments.example")
    assert [name for name in ID_HEADERS if name in sent] == []


@pytest.mark.slow
@pytest.mark.parametrize("client", CLIENTS)
def test_by_default_a_cluster_local_service_gets_the_ids(
    make_app: AppFactory, recorder: _Recorder, client: str
) -> None:
    app, session, sync_client = _caller(make_app, recorder.url)
    try:
        _call(app, client, "http://inventory.shop.svc.cluster.local/reserve")
    finally:
        session.close()
        sync_client.close()
    [sent] = recorder.headers_sent_to("inventory.shop.svc.cluster.local")
    assert sent["x-operation-id"] == "client-op"
    assert sent["traceparent"].startswith(f"00-{TRACE}-")
    assert sent["tracestate"] == HOSTILE_TRACESTATE


@pytest.mark.slow
@pytest.mark.parametrize("client", CLIENTS)
def test_a_redirect_from_an_internal_host_to_a_third_party_drops_the_ids(
    make_app: AppFactory, recorder: _Recorder, client: str
) -> None:
    app, session, sync_client = _caller(make_app, recorder.url)
    try:
        _call(app, client, "http://inventory/redirect")
    finally:
        session.close()
        sync_client.close()
    [first] = recorder.headers_sent_to("inventory")
    [second] = recorder.headers_sent_to("api.payments.example")
    assert first["x-operation-id"] == "client-op"
    assert [name for name in ID_HEADERS if name in second] == []


@pytest.mark.slow
def test_hosts_listed_in_cst_propagate_to_get_the_ids(
    make_app: AppFactory, recorder: _Recorder
) -> None:
    app, session, sync_client = _caller(
        make_app, recorder.url, CST_PROPAGATE_TO="internal, .payments.example"
    )
    try:
        _call(app, "requests", THIRD_PARTY)
        _call(app, "requests", "http://api.stripe.example/v1")
    finally:
        session.close()
        sync_client.close()
    assert recorder.headers_sent_to("api.payments.example")[0]["x-operation-id"] == "client-op"
    assert "x-operation-id" not in recorder.headers_sent_to("api.stripe.example")[0]


def test_outgoing_headers_with_a_url_is_empty_for_a_host_not_on_the_list(app: Flask) -> None:
    seen: dict[str, dict[str, str]] = {}

    @app.get("/probe")
    def probe() -> dict[str, Any]:
        seen["third"] = outgoing_headers("https://api.stripe.com/v1/charges")
        seen["internal"] = outgoing_headers("http://payments:8000/charge")
        seen["vouched"] = outgoing_headers()
        return {}

    app.test_client().get("/probe", headers={"X-Operation-ID": "op-1"})
    assert seen["third"] == {}
    assert seen["internal"]["X-Operation-ID"] == seen["vouched"]["X-Operation-ID"] == "op-1"
