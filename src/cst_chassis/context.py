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
from types import EllipsisType
from typing import NamedTuple, TypeGuard
from urllib.parse import urlsplit

from cst_chassis.propagation import HostAllowList
from cst_chassis.tracing import current_trace

__all__ = ["DEFAULT_HEADER", "get_operation_id", "outgoing_headers"]

DEFAULT_HEADER = "X-Operation-ID"
"""The operation id header read and written when ``CST_OPERATION_ID_HEADER`` is not set."""

operation_id_var: ContextVar[str | None] = ContextVar("cst_chassis_operation_id", default=None)


class Propagation(NamedTuple):
    """How the app serving the current request passes its ids on to other services.

    ``header_name`` is the operation id header (``CST_OPERATION_ID_HEADER``), so the id goes out
    under the name the service was configured with; ``hosts`` is ``CST_PROPAGATE_TO``.
    """

    header_name: str = DEFAULT_HEADER
    hosts: HostAllowList = HostAllowList()


class IncomingIds(NamedTuple):
    """The ids a request brought and the edge policy restarted (kept for its log lines only).

    ``operation_id`` is the incoming operation id header when it was a valid id, ``trace_id`` the
    trace id of a valid incoming ``traceparent``; either is ``None`` when nothing valid came.
    """

    operation_id: str | None
    trace_id: str | None


# One object per app, set per request by the middleware (a single ContextVar set).
propagation_var: ContextVar[Propagation] = ContextVar(
    "cst_chassis_propagation",
    default=Propagation(),  # noqa: B039  # an immutable NamedTuple of immutable fields
)
# Set only while a request whose ids were restarted is handled (CST_INCOMING_*=restart).
incoming_ids_var: ContextVar[IncomingIds | None] = ContextVar(
    "cst_chassis_incoming_ids", default=None
)

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


def outgoing_headers(url: str | None = None) -> dict[str, str]:
    """Return the headers that carry the current operation and trace on to another service.

    ``requests.get(url, headers=outgoing_headers(url))`` lets the next service log the same
    operation id and continue the trace: the operation id header, a ``traceparent`` naming a
    child span of this request (same trace id; with OpenTelemetry, the active span is the
    parent) and the ``tracestate`` when there is one. Outside a request the dict is empty.

    With ``url``, the dict is empty unless the URL's host is on ``CST_PROPAGATE_TO`` (by
    default loopback and cluster-local names only): pass it, so a third party never gets the
    ids. Without ``url`` the caller vouches for the destination and gets the headers.
    """
    if url is not None and not propagation_var.get().hosts.allows(_host_of(url)):
        return {}
    return _outgoing()


def _host_of(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:  # e.g. an invalid IPv6 literal
        return None


def _outgoing() -> dict[str, str]:
    operation_id = operation_id_var.get()
    headers = {} if operation_id is None else {propagation_var.get().header_name: operation_id}
    trace, from_otel = current_trace()
    if trace is not None:
        # The chassis's own span is recorded nowhere, so the callee's parent is a fresh child
        # span id; an OpenTelemetry span is exported, so it is the parent itself.
        outgoing = trace if from_otel else trace.child()
        headers["traceparent"] = outgoing.traceparent
        if outgoing.tracestate is not None:
            headers["tracestate"] = outgoing.tracestate
    return headers


def add_outgoing_headers(
    headers: MutableMapping[str, str], host: str | EllipsisType | None = ...
) -> None:
    """Add :func:`outgoing_headers` to ``headers`` for a call to ``host``; keep those set.

    What the ``requests`` and ``httpx`` hooks call on every request. A header the caller set (or
    an OpenTelemetry client instrumentation injected) wins, so the chassis never fights it.
    When ``host`` is not on ``CST_PROPAGATE_TO``, nothing is added, and the headers that carry
    *this* request's ids are removed: a redirect from an allowed host to another one copies the
    first request's headers, and must not take the ids along. ``host`` omitted: the caller
    vouches for the destination (``None``: the URL had no host, nothing is added).
    """
    if host is ... or propagation_var.get().hosts.allows(host):
        for name, value in _outgoing().items():
            if name not in headers:
                headers[name] = value
    else:
        _remove_own(headers)


def _remove_own(headers: MutableMapping[str, str]) -> None:
    operation_id = operation_id_var.get()
    name = propagation_var.get().header_name
    if operation_id is not None and headers.get(name) == operation_id:
        del headers[name]
    trace, _ = current_trace()
    if trace is None:
        return
    traceparent = headers.get("traceparent")
    if traceparent is not None and traceparent[3:35] == trace.trace_id:
        del headers["traceparent"]
        if "tracestate" in headers:
            del headers["tracestate"]
