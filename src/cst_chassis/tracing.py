"""W3C Trace Context (``traceparent`` / ``tracestate``) for every request, with no dependency.

Each request gets a :class:`TraceContext`: the incoming ``traceparent`` continued (same trace id,
a new span id for this service's work, the caller's span as parent), or a new trace. It lives in
a ``ContextVar`` next to the operation id, so it reaches async views, ``asyncio`` tasks and
``to_thread`` workers the same way.

When the app uses OpenTelemetry (``opentelemetry.trace`` imported by the app and a span active),
:func:`get_trace_context` returns the active span's ids instead, so log lines and outgoing headers
agree with the spans the SDK exports. The chassis never imports OpenTelemetry itself: it looks the
module up in ``sys.modules``, so an app without it pays one dictionary lookup.

Parsing is strict (https://www.w3.org/TR/trace-context/): an invalid ``traceparent`` is ignored
(a new trace starts), and the ``tracestate`` that came with it is dropped; neither is ever echoed
or logged.
"""

from __future__ import annotations

import os
import re
import sys
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["MAX_TRACESTATE_LENGTH", "TraceContext", "get_trace_context"]

# The W3C spec asks vendors to propagate at least 512 characters and at most 32 list members;
# anything longer is dropped whole (truncating could cut a member in half).
MAX_TRACESTATE_LENGTH = 512
"""Longest ``tracestate`` kept, in characters; a longer one is dropped whole."""
_MAX_TRACESTATE_MEMBERS = 32

# version "-" trace-id "-" parent-id "-" flags, lowercase hex only. Version ff is invalid; a
# higher version than 00 may append fields after a "-" (forward compatibility, spec section 3.3).
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
# tracestate list member: key "=" value (spec section 3.3.1), members separated by "," with
# optional spaces/tabs. Empty members are allowed and skipped.
_TRACESTATE_MEMBER = re.compile(
    r"(?:[a-z0-9][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})"
    r"=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
)


class TraceContext(NamedTuple):
    """The trace this request belongs to, and the span that stands for this service's work.

    ``trace_id`` (32 lowercase hex) and ``span_id`` (16 lowercase hex) are what log lines carry;
    ``parent_id`` is the caller's span (``None`` for a new trace); ``sampled`` is the W3C sampled
    flag to pass on: the caller's for a continued trace, ``False`` for a new one (the chassis
    records nothing, so it never asks the next service to record); ``tracestate`` is the vendor
    list received (validated, at most :data:`MAX_TRACESTATE_LENGTH` characters) or ``None``.
    A ``NamedTuple`` (immutable, typed) because one is built for every request and a tuple is
    the cheapest object to build.
    """

    trace_id: str
    span_id: str
    parent_id: str | None = None
    sampled: bool = False
    tracestate: str | None = None

    @property
    def traceparent(self) -> str:
        """The ``traceparent`` value naming this context's span (version 00)."""
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    def child(self) -> TraceContext:
        """A new span of the same trace whose parent is this one (for an outgoing call)."""
        return TraceContext(
            self.trace_id, os.urandom(8).hex(), self.span_id, self.sampled, self.tracestate
        )


# A new trace is stored as its 48 hex digits (trace id, then span id) and turned into a
# TraceContext only when asked for: building the tuple for every request, logged or not, was
# most of the per-request cost of tracing.
trace_context_var: ContextVar[TraceContext | str | None] = ContextVar(
    "cst_chassis_trace_context", default=None
)


def parse_traceparent(value: object) -> tuple[str, str, bool] | None:
    """Return ``(trace_id, parent_id, sampled)`` from a ``traceparent`` value, or ``None``.

    ``None`` for anything the spec says to ignore: not a string, wrong length or separators,
    uppercase or non-hex characters, version ``ff``, a version-00 value with trailing data, an
    all-zero trace id or parent id.
    """
    if not isinstance(value, str) or len(value) < 55:
        return None
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    version, trace_id, parent_id, flags = match.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    if len(value) != 55 and (version == "00" or value[55] != "-"):
        return None
    return trace_id, parent_id, bool(int(flags, 16) & 0x01)


def parse_tracestate(value: object) -> str | None:
    """Return a valid ``tracestate`` value unchanged (spaces around members trimmed), or ``None``.

    ``None`` when it is empty, longer than :data:`MAX_TRACESTATE_LENGTH`, has more than 32
    members, a malformed member or a duplicate key: the spec says to drop such a list whole.
    """
    if not isinstance(value, str) or not value or len(value) > MAX_TRACESTATE_LENGTH:
        return None
    members = [member.strip(" \t") for member in value.split(",")]
    members = [member for member in members if member]
    if not members or len(members) > _MAX_TRACESTATE_MEMBERS:
        return None
    keys = set()
    for member in members:
        if _TRACESTATE_MEMBER.fullmatch(member) is None:
            return None
        keys.add(member.partition("=")[0])
    if len(keys) != len(members):
        return None
    return ",".join(members)


def new_trace_context(trace_id: str) -> TraceContext:
    """A new trace with the given trace id and a fresh span id."""
    return TraceContext(trace_id, os.urandom(8).hex())


def continue_trace(traceparent: str, tracestate: str | None) -> TraceContext | None:
    """The context for a request that sent ``traceparent`` (``None`` if it is invalid)."""
    parsed = parse_traceparent(traceparent)
    if parsed is None:
        return None
    trace_id, parent_id, sampled = parsed
    return TraceContext(
        trace_id, os.urandom(8).hex(), parent_id, sampled, parse_tracestate(tracestate)
    )


def own_trace_context() -> TraceContext | None:
    """The chassis's own trace context of the current request or task (OpenTelemetry ignored)."""
    value = trace_context_var.get()
    if isinstance(value, str):
        return TraceContext(value[:32], value[32:])
    return value


def current_trace() -> tuple[TraceContext | None, bool]:
    """The current trace context, and whether it is OpenTelemetry's active span."""
    own = own_trace_context()
    # Only when the app imported it: the chassis itself never imports OpenTelemetry.
    otel: ModuleType | None = sys.modules.get("opentelemetry.trace")
    if otel is not None:
        span_context = otel.get_current_span().get_span_context()
        if span_context.is_valid:
            return _from_span(span_context, own), True
    return own, False


def _from_span(span_context: Any, own: TraceContext | None) -> TraceContext:
    trace_id = format(span_context.trace_id, "032x")
    return TraceContext(
        trace_id,
        format(span_context.span_id, "016x"),
        own.parent_id if own is not None and own.trace_id == trace_id else None,
        bool(span_context.trace_flags & 0x01),
        span_context.trace_state.to_header() or None,
    )


def get_trace_context() -> TraceContext | None:
    """Return the trace context of the current request (or task), or ``None`` outside one.

    With OpenTelemetry in use and a valid span active, the ids are that span's; otherwise they are
    the chassis's own (the incoming ``traceparent`` continued, or a new trace).
    """
    return current_trace()[0]
