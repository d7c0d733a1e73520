"""``ChassisApi``: a ``flask_restful.Api`` whose own error responses are enveloped too.

``ApiResource`` envelopes what happens inside a resource method. Some errors never reach the
method: flask-restful answers 405 (method not allowed), 406 (not acceptable) and, with
``catch_all_404s``, 404 through ``Api.handle_error``, and a result that cannot be serialised fails
after the method returned. ``ChassisApi`` gives those the same ``{"meta", "errors"}`` shape.
"""

from __future__ import annotations

import flask_restful
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as ResponseBase

from cst_chassis.envelope import http_error_parts, internal_error_parts

__all__ = ["ChassisApi"]


class ChassisApi(flask_restful.Api):
    """Use instead of ``flask_restful.Api`` to envelope flask-restful's own errors."""

    def handle_error(self, e: Exception) -> ResponseBase:
        if isinstance(e, HTTPException):
            if e.response is not None:
                return e.get_response()
            body, code, headers = http_error_parts(e)
        else:
            body, code, headers = internal_error_parts(e)
        # JSON whatever the client asked for: the error must be readable even on a 406.
        return self.make_response(body, code, headers, fallback_mediatype="application/json")
