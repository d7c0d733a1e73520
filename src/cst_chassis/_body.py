"""The request body at the app's edge: bounded in size, and a 400 when it cannot be parsed.

Flask enforces ``MAX_CONTENT_LENGTH`` when anything reads the body (``request.get_json()``,
reqparse, ``request.data``, forms): a declared ``Content-Length`` above it is refused with 413
before a byte is read, and a chunked body is cut off at the limit. ``init_app`` sets it to
``CST_MAX_CONTENT_LENGTH`` unless the app set its own.

The stdlib JSON parser raises ``RecursionError`` on deeply nested input (``[[[...]]]`` a thousand
levels down), which Flask does not catch: :class:`ChassisRequestMixin` turns it, like any JSON
that does not parse, into a 400 whose error item names ``path: "body"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from flask import Flask, current_app
from werkzeug.exceptions import BadRequest

if TYPE_CHECKING:
    from flask import Request

    from cst_chassis.config import ChassisConfig

__all__ = ["INVALID_JSON_MESSAGE", "ChassisRequestMixin", "install_body_checks"]

INVALID_JSON_MESSAGE = "The request body is not valid JSON"


class ChassisRequestMixin:
    """Mixed into the app's ``request_class`` by ``init_app``: unparsable JSON is a clean 400."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        try:
            return super().get_json(force=force, silent=silent, cache=cache)  # type: ignore[misc]  # the mixin precedes a flask.Request
        except RecursionError:
            if silent:
                return None
            raise _invalid_json() from None

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if e is None or current_app.debug:
            # No JSON content type (415), or debug mode's detailed message: Flask's own answer.
            return super().on_json_loading_failed(e)  # type: ignore[misc]  # as above
        raise _invalid_json() from e


def _invalid_json() -> BadRequest:
    error = BadRequest(INVALID_JSON_MESSAGE)
    # flask-restful's convention for error details, read by cst_chassis._error_handling.
    error.data = {"message": INVALID_JSON_MESSAGE, "path": "body"}  # type: ignore[attr-defined]  # flask-restful's attribute
    return error


def install_body_checks(app: Flask, config: ChassisConfig) -> None:
    """Apply the body limit and the JSON checks to ``app`` (called by ``init_app``)."""
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = config.max_content_length
    if not issubclass(app.request_class, ChassisRequestMixin):
        # Keeps whatever request class the app already uses.
        request_class = type("ChassisRequest", (ChassisRequestMixin, app.request_class), {})
        app.request_class = cast("type[Request]", request_class)
