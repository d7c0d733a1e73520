"""OpenTelemetry: with the SDK and Flask instrumentation, one request through two real services is
one connected trace, and every log line of both carries its ids."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
from flask import Flask
from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from cst_chassis import get_operation_id, outgoing_headers
from cst_chassis.http_httpx import httpx_async_event_hooks
from cst_chassis.http_requests import chassis_session
from cst_chassis.middleware import OPERATION_ID_SPAN_ATTRIBUTE
from cst_chassis.tracing import get_trace_context
from tests.conftest import AppFactory
from tests.tracing_support import json_lines, serve


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def exporter() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _instrumented(app: Flask, provider: TracerProvider) -> Flask:
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider)  # type: ignore[no-untyped-call]  # the instrumentation ships without annotations here
    return app


def _ids() -> dict[str, Any]:
    ctx = get_trace_context()
    assert ctx is not None
    return {"operation_id": get_operation_id(), "trace_id": ctx.trace_id, "span_id": ctx.span_id}


@pytest.fixture
def services(
    make_app: AppFactory, exporter: tuple[TracerProvider, InMemorySpanExporter]
) -> Iterator[str]:
    provider, _ = exporter
    inventory = _instrumented(make_app("inventory", CST_LOG_FORMAT="json"), provider)
    session = chassis_session()

    @inventory.get("/reserve")
    def reserve() -> dict[str, Any]:
        logging.getLogger("inventory").info("reserving")
        return _ids()

    with serve(inventory) as inventory_url:
        shop = _instrumented(make_app("shop", CST_LOG_FORMAT="json"), provider)

        @shop.get("/buy")
        def buy() -> dict[str, Any]:
            logging.getLogger("shop").info("buying")
            callee = session.get(f"{inventory_url}/reserve", timeout=10).json()
            logging.getLogger("shop").info("bought")
            return {"self": _ids(), "callee": callee}

        @shop.get("/buy-async")
        async def buy_async() -> dict[str, Any]:
            logging.getLogger("shop").info("buying")
            async with httpx.AsyncClient(event_hooks=httpx_async_event_hooks()) as client:
                callee = (await client.get(f"{inventory_url}/reserve")).json()
            logging.getLogger("shop").info("bought")
            return {"self": _ids(), "callee": callee}

        try:
            with serve(shop) as shop_url:
                yield shop_url
        finally:
            session.close()


def _server_spans(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    spans = exporter.get_finished_spans()
    return {span.name: span for span in spans if span.kind == trace.SpanKind.SERVER}


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/buy", "/buy-async"])
def test_one_request_through_two_services_is_one_connected_trace(
    services: str,
    exporter: tuple[TracerProvider, InMemorySpanExporter],
    capsys: pytest.CaptureFixture[str],
    path: str,
) -> None:
    capsys.readouterr()
    response = requests.get(f"{services}{path}", headers={"X-Operation-ID": "buy-1"}, timeout=10)
    assert response.status_code == 200
    body = response.json()
    spans = _server_spans(exporter[1])
    shop, inventory = spans[f"GET {path}"], spans["GET /reserve"]
    assert shop.context is not None and inventory.context is not None
    assert shop.parent is None
    assert inventory.parent is not None
    assert inventory.parent.span_id == shop.context.span_id
    assert inventory.context.trace_id == shop.context.trace_id
    trace_id = format(shop.context.trace_id, "032x")

    # What the chassis exposes is the active span's context.
    assert body["self"] == {
        "operation_id": "buy-1",
        "trace_id": trace_id,
        "span_id": format(shop.context.span_id, "016x"),
    }
    assert body["callee"]["span_id"] == format(inventory.context.span_id, "016x")
    # The operation id is recorded on both server spans.
    assert shop.attributes is not None and inventory.attributes is not None
    assert shop.attributes[OPERATION_ID_SPAN_ATTRIBUTE] == "buy-1"
    assert inventory.attributes[OPERATION_ID_SPAN_ATTRIBUTE] == "buy-1"

    lines = [line for line in json_lines(capsys) if line["logger"] in ("shop", "inventory")]
    assert [line["message"] for line in lines] == ["buying", "reserving", "bought"]
    assert {line["trace_id"] for line in lines} == {trace_id}
    assert {line["operation_id"] for line in lines} == {"buy-1"}
    by_logger = {line["logger"]: line["span_id"] for line in lines}
    assert by_logger == {
        "shop": format(shop.context.span_id, "016x"),
        "inventory": format(inventory.context.span_id, "016x"),
    }


def test_without_an_active_span_the_chassis_context_is_used(make_app: AppFactory) -> None:
    # opentelemetry is imported (this module) but the app is not instrumented: no valid span.
    app = make_app()

    @app.get("/ids")
    def ids() -> dict[str, Any]:
        return _ids()

    body = app.test_client().get("/ids").json
    assert body is not None
    assert body["operation_id"].replace("-", "") == body["trace_id"]


def test_with_an_active_span_outgoing_headers_name_that_span_as_parent(
    make_app: AppFactory, exporter: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    # The OTel span is exported, so the callee's parent is the span itself, not a child of it
    # that no backend would ever see.
    provider, spans = exporter
    app = _instrumented(make_app(), provider)

    @app.get("/out")
    def out() -> dict[str, str]:
        span = trace.get_current_span().get_span_context()
        own = f"00-{span.trace_id:032x}-{span.span_id:016x}"
        return {"own": own, "sent": outgoing_headers()["traceparent"]}

    body = app.test_client().get("/out", headers={"X-Operation-ID": "op-otel"}).json
    assert body is not None
    assert body["sent"].rsplit("-", 1)[0] == body["own"]
    # ... and the server span carries the operation id, to find the request from its logs.
    (server,) = _server_spans(spans).values()
    assert (server.attributes or {}).get(OPERATION_ID_SPAN_ATTRIBUTE) == "op-otel"


# -- the edge policy and the sampler (issue 26, item 2) ------------------------------------------


@pytest.mark.parametrize(("policy", "recorded"), [("restart", range(0, 20)), ("trust", [200])])
def test_a_restarted_trace_context_leaves_sampling_to_the_sdks_sampler(
    make_app: AppFactory, policy: str, recorded: Any
) -> None:
    # 1% sampling for new traces; a client flagging each request "-01" decides nothing when the
    # edge restarts the trace context (trusted, the parent's flag wins: every request recorded).
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.01)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        app = _instrumented(make_app(CST_INCOMING_TRACE_CONTEXT=policy), provider)
        sent: list[str] = []

        @app.get("/ping")
        def ping() -> dict[str, Any]:
            sent.append(outgoing_headers()["traceparent"])
            return {}

        client = app.test_client()
        for _ in range(200):
            traceparent = f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"
            assert client.get("/ping", headers={"traceparent": traceparent}).status_code == 200
        spans = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
        assert len(spans) in recorded
        # The flag sent on is the sampler's decision, request by request.
        assert sum(t.endswith("-01") for t in sent) == len(spans)
    finally:
        provider.shutdown()
