"""OperationIdMiddleware around a plain WSGI app: what a server sees of it, call by call."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from cst_chassis.context import IncomingIds, get_operation_id, incoming_ids_var
from cst_chassis.middleware import OperationIdMiddleware
from cst_chassis.tracing import get_trace_context

Environ = dict[str, Any]


class Recorder:
    """A server's start_response: keeps each call's arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[str, str]], object]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: object = None) -> Any:
        self.calls.append((status, headers, exc_info))
        return lambda _data: None


class Body:
    """A response iterable with a close(), as WSGI apps return; records what it saw."""

    def __init__(self) -> None:
        self.closed = 0
        self.seen: list[tuple[str | None, str | None]] = []

    def __iter__(self) -> Iterator[bytes]:
        for chunk in (b"a", b"b"):
            trace = get_trace_context()
            self.seen.append((get_operation_id(), None if trace is None else trace.trace_id))
            yield chunk

    def close(self) -> None:
        self.closed += 1


def _middleware(body: Iterable[bytes], **kwargs: Any) -> OperationIdMiddleware:
    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    return OperationIdMiddleware(app, "X-Operation-ID", **kwargs)


def test_a_fresh_id_is_the_uuid4_of_the_random_bytes_and_its_hex_the_trace_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = bytes(range(24))
    monkeypatch.setattr(os, "urandom", lambda n: raw[:n])  # what the middleware draws from
    body = Body()
    result = _middleware(body)({}, Recorder())
    list(result)
    expected = str(uuid.UUID(bytes=raw[:16], version=4))
    assert body.seen == [(expected, expected.replace("-", ""))] * 2


def test_the_id_and_trace_are_set_while_each_chunk_is_produced_and_reset_after() -> None:
    body = Body()
    recorder = Recorder()
    environ = {"HTTP_X_OPERATION_ID": "op-1", "HTTP_TRACEPARENT": f"00-{'a' * 32}-{'b' * 16}-01"}
    result = _middleware(body)(environ, recorder)
    assert list(result) == [b"a", b"b"]
    assert body.seen == [("op-1", "a" * 32)] * 2
    assert get_operation_id() is None and get_trace_context() is None
    assert recorder.calls == [
        ("200 OK", [("Content-Type", "text/plain"), ("X-Operation-ID", "op-1")], None)
    ]


def test_close_closes_the_apps_iterable_even_before_iterating() -> None:
    body = Body()
    result = _middleware(body)({}, Recorder())
    result.close()  # type: ignore[attr-defined]  # WSGI: the server calls close() when present
    assert body.closed == 1


def test_close_after_a_partial_read_closes_the_apps_iterable() -> None:
    body = Body()
    result = _middleware(body)({}, Recorder())
    iterator = iter(result)
    assert next(iterator) == b"a"
    result.close()  # type: ignore[attr-defined]  # WSGI: the server calls close() when present
    assert body.closed == 1


def test_a_file_wrapper_is_handed_back_untouched_for_sendfile() -> None:
    class FileWrapper(Body):
        pass

    body = FileWrapper()
    result = _middleware(body)({"wsgi.file_wrapper": FileWrapper}, Recorder())
    assert result is body


def test_exc_info_reaches_the_servers_start_response() -> None:
    error = (ValueError, ValueError("late"), None)

    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        start_response("500 Internal Server Error", [], error)
        return [b""]

    recorder = Recorder()
    OperationIdMiddleware(app, "X-Operation-ID")({}, recorder)
    assert recorder.calls[0][2] is error


def test_on_first_request_runs_once_before_the_first_request() -> None:
    runs: list[str | None] = []
    middleware = _middleware(Body(), on_first_request=lambda: runs.append(get_operation_id()))
    for _ in range(3):
        list(middleware({}, Recorder()))
    assert runs == [None]


def test_close_of_an_iterable_without_close_is_a_no_op() -> None:
    result = _middleware([b"plain", b"list"])({}, Recorder())
    assert list(result) == [b"plain", b"list"]
    result.close()  # type: ignore[attr-defined]  # WSGI: the server calls close() when present


# -- the edge policy (issue 26, item 2) ----------------------------------------------------------

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = {
    "HTTP_X_OPERATION_ID": "client-chosen-id",
    "HTTP_TRACEPARENT": f"00-{TRACE}-00f067aa0ba902b7-01",
    "HTTP_TRACESTATE": "evil@vendor=session_token_here",
    "HTTP_BAGGAGE": "user=alice",
}


def _seeing_app(
    seen: list[dict[str, Any]],
) -> Any:
    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        trace = get_trace_context()
        assert trace is not None
        seen.append(
            {
                "operation_id": get_operation_id(),
                "trace": trace,
                "incoming": incoming_ids_var.get(),
                "environ": {k for k in environ if k.startswith("HTTP_")},
            }
        )
        start_response("200 OK", [])
        return [b"ok"]

    return app


def test_restarting_the_operation_id_ignores_the_incoming_one_but_keeps_it_for_the_logs() -> None:
    seen: list[dict[str, Any]] = []
    middleware = OperationIdMiddleware(
        _seeing_app(seen), "X-Operation-ID", trust_operation_id=False
    )
    start = Recorder()
    body = middleware(dict(INCOMING), start)
    assert b"".join(body) == b"ok"
    [request] = seen
    assert request["operation_id"] != "client-chosen-id"
    assert uuid.UUID(request["operation_id"]).version == 4
    assert dict(start.calls[0][1])["X-Operation-ID"] == request["operation_id"]
    assert request["incoming"] == IncomingIds("client-chosen-id", None)
    # The trace context is still trusted: it continues the caller's trace.
    assert request["trace"].trace_id == TRACE
    assert incoming_ids_var.get() is None


def test_restarting_the_trace_context_starts_an_unsampled_trace_and_hides_the_headers() -> None:
    seen: list[dict[str, Any]] = []
    middleware = OperationIdMiddleware(
        _seeing_app(seen), "X-Operation-ID", trust_trace_context=False
    )
    environ = dict(INCOMING)
    b"".join(middleware(environ, Recorder()))
    [request] = seen
    assert request["trace"].trace_id != TRACE
    assert request["trace"].parent_id is None
    assert request["trace"].sampled is False  # the client's "-01" is not obeyed
    assert request["trace"].tracestate is None
    # OpenTelemetry's instrumentation reads these from the environ later: they are gone.
    assert request["environ"] == {"HTTP_X_OPERATION_ID"}
    assert request["operation_id"] == "client-chosen-id"
    assert request["incoming"] == IncomingIds(None, TRACE)


def test_restarted_ids_are_set_while_the_body_is_produced_and_reset_after() -> None:
    seen: list[IncomingIds | None] = []

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        for chunk in (b"a", b"b"):
            seen.append(incoming_ids_var.get())
            yield chunk

    middleware = OperationIdMiddleware(
        app, "X-Operation-ID", trust_operation_id=False, trust_trace_context=False
    )
    for _ in middleware(dict(INCOMING), Recorder()):
        assert incoming_ids_var.get() is None
    assert seen == [IncomingIds("client-chosen-id", TRACE)] * 2


@pytest.mark.parametrize("value", ["\x1b[31mred", "a" * 129, "a b", "x\r\nSet-Cookie: a=b"])
def test_a_restarted_invalid_id_is_not_kept_anywhere(value: str) -> None:
    seen: list[dict[str, Any]] = []
    middleware = OperationIdMiddleware(
        _seeing_app(seen), "X-Operation-ID", trust_operation_id=False
    )
    b"".join(middleware({"HTTP_X_OPERATION_ID": value}, Recorder()))
    assert seen[0]["incoming"] is None
