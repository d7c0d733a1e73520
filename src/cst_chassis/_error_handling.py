"""The one place where an exception becomes an error response's body, status and headers.

``ApiResource`` (on any ``Api``), ``ChassisApi.handle_error`` (flask-restful's own errors and
plain ``Resource``\\ s) and the app-wide HTTP error handler all call :func:`error_parts`; they
differ only in what flask-restful or Flask does around it (signals, propagation, content
negotiation), which stays with each caller.

Item shape: ``{"message": str, "path"?: str, **extra}``. ``abort(code, message=..., **extra)``
keeps ``extra`` in the item (``abort(409, message="taken", code="X1")`` gives
``{"message": "taken", "code": "X1"}``); a ``message`` that is a dict (``reqparse``'s
``{argument: text}``) gives one item per key with ``path`` = the key; a list gives one item per
element.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

from flask import current_app, has_request_context, request
from flask.signals import got_request_exception
from werkzeug.exceptions import HTTPException

from cst_chassis.envelope import ErrorEnvelope, ErrorItem, error_envelope
from cst_chassis.errors import AsyncBridgeTimeout, InvalidPaginationError
from cst_chassis.logging import loggable

__all__ = [
    "INTERNAL_ERROR_MESSAGE",
    "ErrorParts",
    "error_items",
    "error_parts",
    "report_exception",
]

logger: logging.Logger = logging.getLogger("cst_chassis")

INTERNAL_ERROR_MESSAGE = "Internal server error"
TIMEOUT_MESSAGE = "The request took too long"

# Body, status and headers, in the order flask-restful's make_response takes them.
ErrorParts = tuple[ErrorEnvelope, int, list[tuple[str, str]]]

# Werkzeug's own headers of an HTTPException describe its HTML page, not our body.
_BODY_HEADERS = frozenset({"content-type", "content-length"})


def error_parts(exc: BaseException, custom: Mapping[str, Any] | None = None) -> ErrorParts:
    """Body, status and headers for ``exc``; pure (no logging, no signals).

    - ``HTTPException`` (``abort(...)``, reqparse, 404/405/406/413...): its status and headers
      (``Allow``, ``WWW-Authenticate``...); items from flask-restful's ``exc.data`` when set,
      else ``{"message": exc.description}``.
    - :class:`~cst_chassis.errors.InvalidPaginationError`: 400, ``{"message", "path"}``.
    - :class:`~cst_chassis.errors.AsyncBridgeTimeout`: 504.
    - anything else: 500 with a generic message; the exception's text never reaches the client.

    ``custom`` is a ``flask_restful.Api(errors=...)`` entry for the exception's class: its
    ``status`` replaces the status (500 when missing, as flask-restful does) and its other keys
    are merged into the data the items are made from.
    """
    headers: list[tuple[str, str]] = []
    data: Mapping[str, Any] | None
    if isinstance(exc, HTTPException):
        code = exc.code or 500
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() not in _BODY_HEADERS]
        raw = getattr(exc, "data", None)
        data = raw if isinstance(raw, Mapping) else None
        default = exc.description or exc.name
        if code >= 500 and getattr(exc, "original_exception", None) is not None:
            default = INTERNAL_ERROR_MESSAGE  # Flask's wrapper of an unhandled exception
    elif isinstance(exc, InvalidPaginationError):
        code, data, default = 400, {"message": exc.message, "path": exc.path}, exc.message
    elif isinstance(exc, AsyncBridgeTimeout):
        code, data, default = 504, None, TIMEOUT_MESSAGE
    else:
        code, data, default = 500, None, INTERNAL_ERROR_MESSAGE
    if custom is not None:
        code = int(custom.get("status", 500))
        data = {**(data or {}), **{k: v for k, v in custom.items() if k != "status"}}
    return error_envelope(error_items(data, default)), code, headers


def error_items(data: Mapping[str, Any] | None, default: str) -> list[ErrorItem]:
    """Turn flask-restful's error data (``{"message": ..., **extra}``) into envelope items."""
    if data is None:
        return [{"message": default}]
    message = data.get("message")
    extra = {str(k): v for k, v in data.items() if k != "message"}
    if isinstance(message, Mapping):
        # reqparse: {argument name: its message}, one key or (bundle_errors) several.
        return [_item({**extra, "path": str(k)}, v, default) for k, v in message.items()] or [
            _item(extra, None, default)
        ]
    if isinstance(message, list | tuple):
        items = [
            _item({**extra, **{str(k): v for k, v in m.items()}}, m.get("message"), default)
            if isinstance(m, Mapping)
            else _item(extra, m, default)
            for m in message
        ]
        return items or [_item(extra, None, default)]
    return [_item(extra, message, default)]


def _item(fields: Mapping[str, Any], message: object, default: str) -> ErrorItem:
    if message is None:
        text = default
    elif isinstance(message, str):
        text = message
    else:
        text = str(message)
    item = {"message": text, **{k: v for k, v in fields.items() if k != "message"}}
    # An item may carry abort()'s extra keys: ErrorItem names only the two always meant.
    return cast(ErrorItem, item)


def report_exception(exc: BaseException, *, signal: bool = True) -> None:
    """Send ``got_request_exception`` (as flask-restful does) and log what the service must see.

    A 500 is logged with its traceback and the route's rule (never the raw path: a client-chosen
    path could forge log lines); a timeout with one warning line. Client errors are not logged.
    """
    if not has_request_context():
        logger.error("Unhandled exception", exc_info=exc)
        return
    if signal:
        app = current_app._get_current_object()  # type: ignore[attr-defined]  # LocalProxy API
        got_request_exception.send(app, exception=exc)
    if isinstance(exc, HTTPException | InvalidPaginationError):
        return
    rule = request.url_rule.rule if request.url_rule is not None else "(no route)"
    if isinstance(exc, AsyncBridgeTimeout):
        # Logged, or the 504 leaves no line with its operation id in the service's log.
        logger.warning("Timed out on %s %s: %s", loggable(request.method, 16), rule, exc)
    else:
        method = loggable(request.method, 16)
        logger.error("Unhandled exception on %s %s", method, rule, exc_info=exc)
