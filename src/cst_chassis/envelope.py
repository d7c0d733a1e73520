"""The response envelope: ``{"meta": {...}, "data": ...}`` or ``{"meta": {...}, "errors": [...]}``.

The shapes are ``TypedDict``s so typed clients and tests can name them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from flask import current_app, has_app_context, request
from flask.signals import got_request_exception

from cst_chassis.context import new_operation_id, operation_id_var

if TYPE_CHECKING:
    from werkzeug.exceptions import HTTPException

__all__ = [
    "ErrorEnvelope",
    "ErrorItem",
    "Meta",
    "PaginationMeta",
    "SuccessEnvelope",
    "error_envelope",
    "http_error_parts",
    "internal_error_parts",
    "success_envelope",
]

logger = logging.getLogger("cst_chassis")

INTERNAL_ERROR_MESSAGE = "Internal server error"


class PaginationMeta(TypedDict):
    """``meta.pagination``: links to the neighbouring pages (``None`` at either end)."""

    next: str | None
    prev: str | None
    total: NotRequired[int]


class Meta(TypedDict):
    """``meta``: the request's operation id, plus pagination on paginated resources."""

    operation_id: str
    pagination: NotRequired[PaginationMeta]


class ErrorItem(TypedDict):
    """One entry of ``errors``; ``path`` names the offending input when there is one."""

    message: str
    path: NotRequired[str]


class SuccessEnvelope(TypedDict):
    """The body of a successful response."""

    meta: Meta
    data: Any


class ErrorEnvelope(TypedDict):
    """The body of an error response (never carries ``data``)."""

    meta: Meta
    errors: list[ErrorItem]


def _meta() -> Meta:
    # Outside a chassis-wrapped app there is no id in context; still give the client one.
    return {"operation_id": operation_id_var.get() or new_operation_id()}


def success_envelope(data: Any) -> SuccessEnvelope:
    """Wrap a resource's result."""
    return {"meta": _meta(), "data": data}


def error_envelope(errors: list[ErrorItem]) -> ErrorEnvelope:
    """Wrap a list of errors."""
    return {"meta": _meta(), "errors": errors}


def http_error_parts(exc: HTTPException) -> tuple[ErrorEnvelope, int, list[tuple[str, str]]]:
    """Body, status and headers for an ``HTTPException`` (``abort(404)``, 405, ...).

    The message is flask-restful's ``abort(code, message=...)`` text when given, else the
    exception's description. Headers such as ``Allow`` or ``WWW-Authenticate`` are kept.
    """
    code = exc.code or 500
    data = getattr(exc, "data", None)
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, str):
        message = exc.description or exc.name
    headers = [
        (k, v) for k, v in exc.get_headers() if k.lower() not in {"content-type", "content-length"}
    ]
    return error_envelope([{"message": message}]), code, headers


def internal_error_parts(exc: BaseException) -> tuple[ErrorEnvelope, int, list[tuple[str, str]]]:
    """Log an unexpected exception with its traceback; return a generic 500 body.

    The body never carries the exception's class, message or traceback. Error-reporting tools
    hooked on Flask's ``got_request_exception`` signal (Sentry and the like) still see it.
    """
    if has_app_context():
        app = current_app._get_current_object()  # type: ignore[attr-defined]  # LocalProxy API
        got_request_exception.send(app, exception=exc)
        # The route's rule, not the raw path: a client-chosen path could forge log lines.
        rule = request.url_rule.rule if request.url_rule is not None else "(no route)"
        logger.error("Unhandled exception on %s %s", request.method, rule, exc_info=exc)
    else:
        logger.error("Unhandled exception", exc_info=exc)
    return error_envelope([{"message": INTERNAL_ERROR_MESSAGE}]), 500, []
