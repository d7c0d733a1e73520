"""Operation id: picked per request, echoed on every response, visible everywhere, never leaked."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask, Response, stream_with_context

from cst_chassis import get_operation_id, outgoing_headers
from cst_chassis.context import add_outgoing_headers, new_operation_id, valid_operation_id
from tests.conftest import AppFactory

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_outside_a_request_there_is_no_operation_id() -> None:
    assert get_operation_id() is None
    assert outgoing_headers() == {}


def test_new_operation_id_is_a_canonical_uuid4() -> None:
    ids = {new_operation_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(UUID4.fullmatch(i) for i in ids)


@pytest.mark.parametrize(
    "value", ["abc", "A-Z_0.9:x", "x" * 128, "79bfcecd-55ba-4f97-b175-b104962cafa2"]
)
def test_safe_incoming_ids_are_accepted(value: str) -> None:
    assert valid_operation_id(value)


@pytest.mark.parametrize(
    "value", ["", "x" * 129, "a b", "a\nb", "a\r\nX-Evil: 1", "é", "a/b", "<script>", None]
)
def test_unsafe_incoming_ids_are_rejected(value: str | None) -> None:
    assert not valid_operation_id(value)


def test_incoming_safe_header_is_reused_in_body_header_and_view(app: Flask) -> None:
    seen: list[str | None] = []

    @app.get("/probe")
    def probe() -> str:
        seen.append(get_operation_id())
        return "ok"

    response = app.test_client().get("/probe", headers={"X-Operation-ID": "client-id-1"})
    assert response.headers["X-Operation-ID"] == "client-id-1"
    assert seen == ["client-id-1"]


def test_hostile_header_is_replaced_and_never_echoed(app: Flask) -> None:
    hostile = "evil\r\nSet-Cookie: a=b"
    response = app.test_client().get("/status", environ_overrides={"HTTP_X_OPERATION_ID": hostile})
    assert UUID4.fullmatch(response.headers["X-Operation-ID"])
    assert response.headers.getlist("X-Operation-ID") == [response.headers["X-Operation-ID"]]
    assert "evil" not in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers


def test_every_request_gets_a_fresh_id(app: Flask) -> None:
    client = app.test_client()
    ids = {client.get("/status").headers["X-Operation-ID"] for _ in range(20)}
    assert len(ids) == 20


def test_header_is_on_404_and_500_responses_of_plain_flask_views(app: Flask) -> None:
    @app.get("/crash")
    def crash() -> str:
        raise RuntimeError("boom")

    client = app.test_client()
    not_found = client.get("/nowhere")
    crashed = client.get("/crash")
    assert not_found.status_code == 404
    assert crashed.status_code == 500
    assert UUID4.fullmatch(not_found.headers["X-Operation-ID"])
    assert UUID4.fullmatch(crashed.headers["X-Operation-ID"])


def test_error_handlers_see_the_operation_id(app: Flask) -> None:
    @app.errorhandler(404)
    def not_found(_: Exception) -> tuple[str, int]:
        return f"missing:{get_operation_id()}", 404

    response = app.test_client().get("/nowhere", headers={"X-Operation-ID": "op-404"})
    assert response.get_data(as_text=True) == "missing:op-404"


def test_header_name_is_configurable_and_used_by_outgoing_headers(make_app: AppFactory) -> None:
    app = make_app(CST_OPERATION_ID_HEADER="X-Request-ID")
    forwarded: list[dict[str, str]] = []

    @app.get("/forward")
    def forward() -> str:
        forwarded.append(outgoing_headers())
        return "ok"

    response = app.test_client().get("/forward", headers={"X-Request-ID": "req-7"})
    assert response.headers["X-Request-ID"] == "req-7"
    assert "X-Operation-ID" not in response.headers
    assert [{k: v for k, v in f.items() if k != "traceparent"} for f in forwarded] == [
        {"X-Request-ID": "req-7"}
    ]


def test_id_reaches_async_views_gather_children_and_threads(app: Flask) -> None:
    @app.get("/async")
    async def async_view() -> dict[str, object]:
        async def child() -> str | None:
            await asyncio.sleep(0)
            return get_operation_id()

        children = await asyncio.gather(child(), child())
        in_thread = await asyncio.to_thread(get_operation_id)
        return {"view": get_operation_id(), "children": children, "thread": in_thread}

    response = app.test_client().get("/async", headers={"X-Operation-ID": "op-async"})
    assert response.get_json() == {
        "view": "op-async",
        "children": ["op-async", "op-async"],
        "thread": "op-async",
    }


def test_id_is_set_while_a_streamed_body_is_sent(app: Flask) -> None:
    @app.get("/stream")
    def stream() -> Response:
        def body() -> Iterator[str]:
            yield "first:"
            yield str(get_operation_id())

        return Response(stream_with_context(body()))

    response = app.test_client().get("/stream", headers={"X-Operation-ID": "op-stream"})
    assert response.get_data(as_text=True) == "first:op-stream"
    assert get_operation_id() is None


@pytest.mark.parametrize(
    "raw", [bytes(16), bytes(range(16)), b"\xff" * 16], ids=["zeros", "0-15", "ones"]
)
def test_new_operation_id_is_the_uuid4_of_its_random_bytes(
    raw: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The standard library's uuid4 of the same bytes: version and variant bits set in the right
    # bytes, every other bit kept.
    monkeypatch.setattr(os, "urandom", lambda n: raw[:n])  # what new_operation_id reads
    assert new_operation_id() == str(uuid.UUID(bytes=raw, version=4))


def test_add_outgoing_headers_adds_the_missing_ones_and_keeps_those_set(app: Flask) -> None:
    @app.get("/hooked")
    def hooked() -> dict[str, str]:
        headers = {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
        add_outgoing_headers(headers)
        return headers

    headers = app.test_client().get("/hooked", headers={"X-Operation-ID": "op-7"}).json
    assert headers == {
        "X-Operation-ID": "op-7",
        "traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01",  # set by the caller: kept
    }
