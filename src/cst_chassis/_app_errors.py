"""The app's own HTTP errors as envelopes: unknown paths, converter mismatches, 405, 413, 500.

Flask answers those with Werkzeug's HTML pages; a JSON service should answer JSON everywhere.
With ``CST_ENVELOPE_HTTP_ERRORS`` on (the default) ``init_app`` registers one handler for every
``HTTPException`` that reaches Flask (errors inside flask-restful resources never do: the
resource or the ``Api`` answers them), built by the same code as every other error response.
An unhandled exception in a plain view reaches it as Flask's 500 wrapper, after Flask logged it
and sent ``got_request_exception``; the client gets the generic 500 envelope.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as ResponseBase

from cst_chassis.api import error_response

__all__ = ["envelope_http_error", "install_http_error_envelope"]


def envelope_http_error(exc: HTTPException) -> ResponseBase:
    """Flask error handler: ``exc`` as an error envelope with its status and headers."""
    return error_response(None, exc, signal=False)


def install_http_error_envelope(app: Flask) -> None:
    """Register :func:`envelope_http_error` for every ``HTTPException`` of ``app``."""
    app.register_error_handler(HTTPException, envelope_http_error)
