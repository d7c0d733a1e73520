"""The request body at the app's edge: bounded in size, and a 400 when it cannot be parsed.

Flask enforces ``MAX_CONTENT_LENGTH`` when anything reads the body (``request.get_json()``,
reqparse, ``request.data``, forms): a declared ``Content-Length`` above it is refused with 413
before a byte is read. A chunked body (no ``Content-Length``; the server sets
``wsgi.input_terminated``) is read by Werkzeug up to the limit and silently cut there;
:class:`ChassisRequestMixin` then reads one more byte from the server's stream and answers 413
when there is one, instead of parsing a truncated body. ``init_app`` sets the limit to
``CST_MAX_CONTENT_LENGTH`` unless the app set its own.

The stdlib JSON parser raises ``RecursionError`` on deeply nested input (``[[[...]]]`` a thousand
levels down), which Flask does not catch: :class:`ChassisRequestMixin` turns it, like any JSON
that does not parse, into a 400 whose error item names ``path: "body"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from flask import Flask, current_app
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.wsgi import LimitedStream

if TYPE_CHECKING:
    from flask import Request

    from cst_chassis.config import ChassisConfig

__all__ = ["INVALID_JSON_MESSAGE", "ChassisRequestMixin", "install_body_checks"]

INVALID_JSON_MESSAGE = "The request body is not valid JSON"


class ChassisRequestMixin:
    """Mixed into the app's ``request_class`` by ``init_app``: a body over the limit is a 413
    however it is sent, and unparsable JSON a clean 400."""

    _cst_body_checked = False

    def get_data(
        self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False
    ) -> Any:
        data = super().get_data(cache, as_text, parse_form_data)  # type: ignore[misc]  # as below
        if not self._cst_body_checked:
            self._cst_body_checked = True
            _refuse_a_cut_body(cast("Request", self))
        return data

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


def _refuse_a_cut_body(request: Request) -> None:
    """Raise 413 when Werkzeug stopped reading a chunked body at the limit and more was sent."""
    stream = request.stream
    if (
        request.content_length is None
        and request.max_content_length is not None
        and isinstance(stream, LimitedStream)
        and stream.is_exhausted
        and request.environ["wsgi.input"].read(1)
    ):
        raise RequestEntityTooLarge()


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
