"""The operation id of the current request, kept in a ``ContextVar``.

A ``ContextVar`` (not ``flask.g``) so that the id reaches everything that runs on behalf of the
request: sync views, ``async def`` views on the chassis event loop, ``asyncio`` tasks they spawn
and ``asyncio.to_thread`` workers. Outside a request it is ``None``.
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import TypeGuard

from cst_chassis.tracing import current_trace

__all__ = ["DEFAULT_HEADER", "get_operation_id", "outgoing_headers"]

DEFAULT_HEADER = "X-Operation-ID"
"""The operation id header read and written when ``CST_OPERATION_ID_HEADER`` is not set."""

operation_id_var: ContextVar[str | None] = ContextVar("cst_chassis_operation_id", default=None)
# The header name of the app serving the current request, so outgoing_headers() forwards the id
# under the name the service was configured with.
header_name_var: ContextVar[str] = ContextVar("cst_chassis_header_name", default=DEFAULT_HEADER)

# What an incoming id may look like: short, printable, and harmless in a log line or a header.
_SAFE_ID = re.compile(r"[A-Za-z0-9\-_.:]{1,128}")


def get_operation_id() -> str | None:
    """Return the operation id of the current request, or ``None`` outside a request."""
    return operation_id_var.get()


def valid_operation_id(value: object) -> TypeGuard[str]:
    """Tell whether an incoming header value may be reused as the operation id.

    Accepted: 1-128 characters among letters, digits, ``-``, ``_``, ``.``, ``:``.
    """
    return isinstance(value, str) and _SAFE_ID.fullmatch(value) is not None


def new_operation_id() -> str:
    """Return a fresh random uuid4 in its canonical text form.

    Built from ``os.urandom`` directly: the same value as ``str(uuid.uuid4())`` at a quarter of
    the cost, which matters on a per-request path.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def operation_id_of_trace(trace_id: str) -> str:
    """Write a 32-hex trace id as an operation id in the 8-4-4-4-12 form of a uuid.

    Used when a request brings a ``traceparent`` but no operation id: one value then finds the
    request in logs and in the tracing backend (``operation_id.replace("-", "") == trace_id``).
    """
    h = trace_id
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def outgoing_headers() -> dict[str, str]:
    """Return the headers that carry the current operation and trace on to another service.

    ``requests.get(url, headers=outgoing_headers())`` lets the next service log the same
    operation id and continue the trace: the operation id header, a ``traceparent`` naming a
    child span of this request (same trace id; with OpenTelemetry, the active span is the
    parent) and the ``tracestate`` when there is one. Outside a request the dict is empty.
    """
    operation_id = operation_id_var.get()
    headers = {} if operation_id is None else {header_name_var.get(): operation_id}
    trace, from_otel = current_trace()
    if trace is not None:
        # The chassis's own span is recorded nowhere, so the callee's parent is a fresh child
        # span id; an OpenTelemetry span is exported, so it is the parent itself.
        outgoing = trace if from_otel else trace.child()
        headers["traceparent"] = outgoing.traceparent
        if outgoing.tracestate is not None:
            headers["tracestate"] = outgoing.tracestate
    return headers


def add_outgoing_headers(headers: MutableMapping[str, str]) -> None:
    """Add :func:`outgoing_headers` to ``headers``, keeping any that are already set.

    What the ``requests`` and ``httpx`` hooks call on every request. A header the caller set (or
    an OpenTelemetry client instrumentation injected) wins, so the chassis never fights it.
    """
    for name, value in outgoing_headers().items():
        if name not in headers:
            headers[name] = value
