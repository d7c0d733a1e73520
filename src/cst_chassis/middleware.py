"""The WSGI wrapper that sets the operation id and trace context of each request.

A wrapper around ``app.wsgi_app`` instead of Flask request hooks: it is cheaper (Flask checks
every hook for ``async`` on each request), and it also covers error handlers, the health endpoint
and whatever a streamed response body logs while it is produced.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING

from cst_chassis.context import (
    IncomingIds,
    Propagation,
    incoming_ids_var,
    operation_id_of_trace,
    operation_id_var,
    propagation_var,
    valid_operation_id,
)
from cst_chassis.propagation import HostAllowList
from cst_chassis.tracing import TraceContext, continue_trace, parse_traceparent, trace_context_var

if TYPE_CHECKING:
    from types import ModuleType

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["OPERATION_ID_SPAN_ATTRIBUTE"]

# The attribute under which the operation id is recorded on OpenTelemetry's server span.
OPERATION_ID_SPAN_ATTRIBUTE = "cst.operation_id"
"""The attribute holding the operation id on OpenTelemetry's server span."""


class OperationIdMiddleware:
    """Wrap a WSGI app: pick the operation id and trace context, keep them in ContextVars.

    Operation id: the incoming header when it is a safe token (see
    :func:`~cst_chassis.context.valid_operation_id`); else, when a valid ``traceparent`` came in,
    its trace id in uuid form; else a fresh uuid4 whose 32 hex digits are also the new trace id.
    Trace context: the incoming ``traceparent`` continued, or a new trace. Rejected values go
    nowhere (not into logs, not into the response). ``on_first_request`` runs once, before the
    first request is handled.

    The edge policy: ``trust_operation_id=False`` (``CST_INCOMING_OPERATION_ID=restart``) ignores
    the incoming operation id header; ``trust_trace_context=False``
    (``CST_INCOMING_TRACE_CONTEXT=restart``) starts a new trace and removes ``traceparent``,
    ``tracestate`` and ``baggage`` from the environ, so OpenTelemetry's instrumentation (which
    reads them later, in the app) starts a new trace too and its sampler decides afresh. A
    restarted id that was valid stays in the request's log records
    (:class:`~cst_chassis.context.IncomingIds`). ``propagate_to`` is ``CST_PROPAGATE_TO``.
    """

    def __init__(
        self,
        wsgi_app: WSGIApplication,
        header_name: str,
        on_first_request: Callable[[], object] | None = None,
        *,
        trust_operation_id: bool = True,
        trust_trace_context: bool = True,
        propagate_to: HostAllowList | None = None,
    ) -> None:
        self.wsgi_app = wsgi_app
        self.header_name = header_name
        self._environ_key = "HTTP_" + header_name.upper().replace("-", "_")
        self._on_first_request = on_first_request
        self._trust_operation_id = trust_operation_id
        self._trust_trace_context = trust_trace_context
        self._restarts = not (trust_operation_id and trust_trace_context)
        self._propagation = Propagation(header_name, propagate_to or HostAllowList())

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self._on_first_request is not None:
            first, self._on_first_request = self._on_first_request, None
            first()
        incoming = environ.get(self._environ_key)
        traceparent = environ.get("HTTP_TRACEPARENT")
        restarted = None
        if self._restarts:
            restarted = self._restart(environ, incoming, traceparent)
            if not self._trust_operation_id:
                incoming = None
            if not self._trust_trace_context:
                traceparent = None
        continued = None
        if traceparent is not None:
            continued = continue_trace(traceparent, environ.get("HTTP_TRACESTATE"))
        trace: TraceContext | str
        if continued is None:
            # One random draw for both ids: a uuid4 (version and variant bits set) whose hex
            # digits are the trace id, and 8 bytes for the span id; kept as a string until
            # someone asks for the TraceContext (see trace_context_var).
            raw = bytearray(os.urandom(24))
            raw[6] = (raw[6] & 0x0F) | 0x40
            raw[8] = (raw[8] & 0x3F) | 0x80
            h = trace = raw.hex()
            if valid_operation_id(incoming):
                operation_id = incoming
            else:
                operation_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        else:
            trace = continued
            if valid_operation_id(incoming):
                operation_id = incoming
            else:
                operation_id = operation_id_of_trace(continued.trace_id)
        header = (self.header_name, operation_id)

        def start_with_id(
            status: str, headers: list[tuple[str, str]], exc_info: object = None
        ) -> object:
            headers.append(header)
            otel = sys.modules.get("opentelemetry.trace")
            if otel is not None:
                # The server span of opentelemetry-instrumentation-flask is still open here.
                _record_operation_id(otel, operation_id)
            return start_response(status, headers, exc_info)  # type: ignore[arg-type]  # exc_info is passed through untouched

        token = operation_id_var.set(operation_id)
        trace_token = trace_context_var.set(trace)
        propagation_token = propagation_var.set(self._propagation)
        incoming_token = None if restarted is None else incoming_ids_var.set(restarted)
        try:
            app_iter = self.wsgi_app(environ, start_with_id)  # type: ignore[arg-type]  # same protocol, narrower annotation
        finally:
            if incoming_token is not None:
                incoming_ids_var.reset(incoming_token)
            propagation_var.reset(propagation_token)
            trace_context_var.reset(trace_token)
            operation_id_var.reset(token)
        if type(app_iter) is environ.get("wsgi.file_wrapper"):
            return app_iter  # keep the server's sendfile fast path
        if restarted is not None:
            return _RestartedResponseBody(app_iter, operation_id, trace, restarted)
        return _ResponseBody(app_iter, operation_id, trace)

    def _restart(
        self, environ: WSGIEnvironment, incoming: object, traceparent: object
    ) -> IncomingIds | None:
        """Apply the edge policy; return the restarted ids worth logging (valid ones only)."""
        operation_id = None
        if not self._trust_operation_id and valid_operation_id(incoming):
            operation_id = incoming
        trace_id = None
        if not self._trust_trace_context:
            parsed = parse_traceparent(traceparent)
            trace_id = None if parsed is None else parsed[0]
            # Read again later by OpenTelemetry's instrumentation, inside the app.
            for key in ("HTTP_TRACEPARENT", "HTTP_TRACESTATE", "HTTP_BAGGAGE"):
                environ.pop(key, None)
        if operation_id is None and trace_id is None:
            return None
        return IncomingIds(operation_id, trace_id)


def _record_operation_id(otel: ModuleType, operation_id: str) -> None:
    span = otel.get_current_span()
    if span.is_recording():
        span.set_attribute(OPERATION_ID_SPAN_ATTRIBUTE, operation_id)


class _ResponseBody:
    """The response iterable, with the ids set again while the body is produced."""

    __slots__ = ("_app_iter", "_operation_id", "_running", "_trace")

    def __init__(
        self, app_iter: Iterable[bytes], operation_id: str, trace: TraceContext | str
    ) -> None:
        self._app_iter = app_iter
        self._operation_id = operation_id
        self._trace = trace
        self._running: Generator[bytes, None, None] | None = None

    def __iter__(self) -> Iterator[bytes]:
        self._running = self._send()
        return self._running

    def _send(self) -> Generator[bytes, None, None]:
        # The ids are set while the app produces each chunk (a streamed body's log lines carry
        # them) and reset before the chunk is handed over: a server or test client that stops
        # iterating midway must not be left with this request's ids.
        iterator = iter(self._app_iter)
        while True:
            token = operation_id_var.set(self._operation_id)
            trace_token = trace_context_var.set(self._trace)
            try:
                chunk = next(iterator)
            except StopIteration:
                return
            finally:
                trace_context_var.reset(trace_token)
                operation_id_var.reset(token)
            yield chunk

    def close(self) -> None:
        if self._running is not None:
            self._running.close()
        close = getattr(self._app_iter, "close", None)
        if close is not None:
            close()


class _RestartedResponseBody(_ResponseBody):
    """The response iterable of a request whose incoming ids were restarted: keeps them too."""

    __slots__ = ("_incoming",)

    def __init__(
        self,
        app_iter: Iterable[bytes],
        operation_id: str,
        trace: TraceContext | str,
        incoming: IncomingIds,
    ) -> None:
        super().__init__(app_iter, operation_id, trace)
        self._incoming = incoming

    def _send(self) -> Generator[bytes, None, None]:
        chunks = super()._send()
        while True:
            token = incoming_ids_var.set(self._incoming)
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            finally:
                incoming_ids_var.reset(token)
            yield chunk
