"""``ChassisApi``: a ``flask_restful.Api`` whose own error responses are enveloped too.

``ApiResource`` envelopes what happens inside a resource method. Some errors never reach the
method: flask-restful answers 405 (method not allowed), 406 (not acceptable) and, with
``catch_all_404s``, 404 through ``Api.handle_error``, and a result that cannot be serialised fails
after the method returned. ``ChassisApi`` gives those the same ``{"meta", "errors"}`` shape.

It also takes a shortcut for the common case: a client that accepts JSON (no ``Accept`` header,
``*/*`` or ``application/json``) from an API whose JSON representation is flask-restful's own
gets the same bytes without content negotiation, which is a visible share of a small request.
"""

from __future__ import annotations

import json
from typing import Any

import flask_restful
from flask import current_app, request
from flask_restful.representations.json import output_json
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as ResponseBase

from cst_chassis.envelope import http_error_parts, internal_error_parts

__all__ = ["ChassisApi"]

_JSON = "application/json"
_ACCEPTS_JSON = frozenset({None, "*/*", _JSON})


class ChassisApi(flask_restful.Api):
    """Use instead of ``flask_restful.Api`` to envelope flask-restful's own errors."""

    def make_response(self, data: Any, *args: Any, **kwargs: Any) -> ResponseBase:
        if (
            request.environ.get("HTTP_ACCEPT") in _ACCEPTS_JSON
            and self.default_mediatype == _JSON
            and self.representations.get(_JSON) is output_json
            and kwargs.keys() <= {"headers"}
        ):
            return _json_response(data, *args, **kwargs)
        return super().make_response(data, *args, **kwargs)

    def handle_error(self, e: Exception) -> ResponseBase:
        if isinstance(e, HTTPException):
            if e.response is not None:
                response = e.get_response()
                # Werkzeug 2.3 annotates it as the sans-IO base class.
                assert isinstance(response, ResponseBase)
                return response
            body, code, headers = http_error_parts(e)
        else:
            body, code, headers = internal_error_parts(e)
        # JSON whatever the client asked for: the error must be readable even on a 406.
        return super().make_response(body, code, headers, fallback_mediatype=_JSON)


def _json_response(data: Any, code: int | None = None, headers: Any = None) -> ResponseBase:
    # Same output as flask-restful's output_json (RESTFUL_JSON settings, indent in debug,
    # trailing newline), without the detour through flask.make_response.
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # LocalProxy API
    settings: dict[str, Any] = app.config.get("RESTFUL_JSON", {})
    if app.debug:
        settings.setdefault("indent", 4)
        settings.setdefault("sort_keys", False)
    body = json.dumps(data, **settings) + "\n"
    response: ResponseBase = app.response_class(body, status=code or 200, mimetype=_JSON)
    if headers:
        response.headers.extend(headers)
    return response
