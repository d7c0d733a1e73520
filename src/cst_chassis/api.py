"""``ChassisApi``: a ``flask_restful.Api`` whose own error responses are enveloped too.

``ApiResource`` envelopes what happens inside a resource method. Some errors never reach the
method: flask-restful answers 405 (method not allowed), 406 (not acceptable) and, with
``catch_all_404s``, 404 through ``Api.handle_error``, and a plain ``Resource``'s exceptions go
there too. ``ChassisApi`` gives those the same ``{"meta", "errors"}`` shape and keeps everything
else ``flask_restful.Api.handle_error`` does: the ``got_request_exception`` signal for every
error, ``PROPAGATE_EXCEPTIONS`` (``TESTING``/``DEBUG``) re-raising non-HTTP exceptions, the
``errors=`` mapping, the ``WWW-Authenticate`` challenge on 401 (``serve_challenge_on_401``), and
content negotiation through the API's representations, never failing when there is no JSON one.

It also takes a shortcut for the common case: a client that accepts JSON (no ``Accept`` header,
``*/*`` or ``application/json``) from an API whose JSON representation is flask-restful's own
gets the same bytes without content negotiation, which is a visible share of a small request.
``ApiResource`` takes the same shortcut on a plain ``flask_restful.Api``.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import flask_restful
from flask import current_app, request
from flask.signals import got_request_exception
from flask_restful.representations.json import output_json
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as ResponseBase

try:  # pydantic is optional (the openapi extra); without it json.dumps fails as it always did
    from pydantic_core import to_jsonable_python
except ImportError:  # pragma: no cover - the test extra installs pydantic
    to_jsonable_python = None  # type: ignore[assignment]  # the fallback is off

from cst_chassis._error_handling import error_parts, report_exception
from cst_chassis.envelope import ErrorEnvelope, error_envelope
from cst_chassis.pagination.page import Page

__all__ = ["ChassisApi"]

logger: logging.Logger = logging.getLogger("cst_chassis")

_JSON = "application/json"
# Accept values for which flask-restful's negotiation picks the default JSON representation.
_ACCEPTS_JSON = frozenset({None, "*/*", _JSON})


class ChassisApi(flask_restful.Api):
    """Use instead of ``flask_restful.Api`` to envelope flask-restful's own errors.

    Everything else is ``flask_restful.Api``'s behaviour (see the module docstring).
    """

    def make_response(self, data: Any, *args: Any, **kwargs: Any) -> ResponseBase:
        if kwargs.keys() <= {"headers"} and takes_json_shortcut(self):
            return json_response(data, *args, **kwargs)
        return super().make_response(data, *args, **kwargs)

    def handle_error(self, e: Exception) -> ResponseBase:
        app = current_app._get_current_object()  # type: ignore[attr-defined]  # LocalProxy API
        got_request_exception.send(app, exception=e)
        if not isinstance(e, HTTPException) and _propagates(app.config, app.testing, app.debug):
            # flask-restful's rule: flask-restful's error_router then hands the exception to
            # Flask, which re-raises it (the test client and the debugger see it).
            if sys.exc_info()[1] is e:
                raise
            raise e
        return error_response(self, e, signal=False)


def _propagates(config: Any, testing: bool, debug: bool) -> bool:
    propagate = config.get("PROPAGATE_EXCEPTIONS", False)
    return bool(testing or debug) if propagate is None else bool(propagate)


def takes_json_shortcut(api: flask_restful.Api) -> bool:
    """Whether this request would get flask-restful's default JSON representation from ``api``."""
    representations = api.representations
    return (
        request.environ.get("HTTP_ACCEPT") in _ACCEPTS_JSON
        and api.default_mediatype == _JSON
        and representations.get(_JSON) is output_json
        and next(iter(representations)) == _JSON
    )


def error_response(
    api: flask_restful.Api | None, exc: BaseException, *, signal: bool = True
) -> ResponseBase:
    """The error response for ``exc`` raised under ``api`` (``None``: no flask-restful API).

    Reports the exception (:func:`~cst_chassis._error_handling.report_exception`), builds the
    body with :func:`~cst_chassis._error_handling.error_parts` (applying ``api.errors``), renders
    it like ``api`` would and adds the 401 challenge. Never raises.
    """
    if isinstance(exc, HTTPException) and exc.response is not None:
        # HTTPException(response=...) carries its own answer: flask-restful keeps it too.
        response = exc.get_response()
        assert isinstance(response, ResponseBase)  # Werkzeug 2.3 annotates the sans-IO base
        return response
    report_exception(exc, signal=signal)
    custom = api.errors.get(type(exc).__name__) if api is not None and api.errors else None
    body, code, headers = error_parts(exc, custom)
    response = _render_error(api, body, code, headers)
    if code == 401 and api is not None:
        response = api.unauthorized(response)
    return response


def _render_error(
    api: flask_restful.Api | None, body: ErrorEnvelope, code: int, headers: list[tuple[str, str]]
) -> ResponseBase:
    # flask-restful's negotiation (the client's pick among the API's representations, else the
    # default mediatype; on a 406 without default, the first representation, else text/plain),
    # except that it never fails: where flask-restful would raise (no representation for the
    # chosen type) or a representation cannot render the body, the envelope goes out as JSON.
    if api is None or takes_json_shortcut(api):
        return _json_error(body, code, headers)
    representations = api.representations
    mediatype = request.accept_mimetypes.best_match(representations)
    if mediatype is None:
        if code == 406 and api.default_mediatype is None:
            mediatype = next(iter(representations), "text/plain")
        else:
            mediatype = api.default_mediatype
    render = representations.get(mediatype) if mediatype is not None else None
    if mediatype is not None and render is not None and render is not output_json:
        try:
            response = render(body, code, headers)
        except Exception:  # a representation that cannot render an error body
            logger.warning("The %s representation failed on an error body", mediatype)
        else:
            response.headers["Content-Type"] = mediatype
            return response
    response = _json_error(body, code, headers)
    if mediatype == "text/plain" and render is None:
        # flask-restful's own fallback type when the API has no representation at all.
        response.headers["Content-Type"] = "text/plain"
    return response


def _json_error(body: ErrorEnvelope, code: int, headers: list[tuple[str, str]]) -> ResponseBase:
    try:
        return json_response(body, code, headers)
    except (TypeError, ValueError):
        # abort(..., **extra) with a value JSON cannot hold: keep the messages, drop the extras.
        items = [
            {"message": item["message"], **({"path": item["path"]} if "path" in item else {})}
            for item in body["errors"]
        ]
        return json_response(error_envelope(items), code, headers)  # type: ignore[arg-type]  # items have ErrorItem's keys


def json_response(data: Any, code: int | None = None, headers: Any = None) -> ResponseBase:
    """flask-restful's ``output_json`` output, without the detour through content negotiation.

    Same bytes: ``RESTFUL_JSON`` settings, indent in debug, trailing newline. A value ``json``
    cannot write (a ``datetime``, ``UUID``, ``Decimal``, ``Enum``, model or dataclass under an
    ``Any``) is written as pydantic would (:func:`_json_default`) instead of failing, unless
    ``RESTFUL_JSON`` sets its own ``default`` or encoder ``cls``.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # LocalProxy API
    settings: dict[str, Any] = app.config.get("RESTFUL_JSON", {})
    if app.debug:
        settings.setdefault("indent", 4)
        settings.setdefault("sort_keys", False)
    if settings:
        if "default" not in settings and "cls" not in settings:  # a user's encoder decides
            settings = {**settings, "default": _json_default}
        body = json.dumps(data, **settings) + "\n"
    else:
        # json.dumps without arguments, plus the fallback: one encoder built once.
        body = _ENCODER.encode(data) + "\n"
    response: ResponseBase = app.response_class(body, status=code or 200, mimetype=_JSON)
    if headers:
        response.headers.extend(headers)
    return response


def bytes_response(body: bytes, code: int, headers: Any) -> ResponseBase:
    """A JSON response of ready-made bytes (a typed body written by pydantic-core)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # LocalProxy API
    response: ResponseBase = app.response_class(body, status=code, mimetype=_JSON)
    if headers:
        response.headers.extend(headers)
    return response


def json_indent() -> int | None:
    """The indent ``json_response`` would use: ``RESTFUL_JSON["indent"]``, else 4 in debug."""
    settings = current_app.config.get("RESTFUL_JSON") or {}
    indent = settings.get("indent", 4 if current_app.debug else None)
    return indent if isinstance(indent, int) else None


def _json_default(value: Any) -> Any:
    # json.dumps calls this only for what it cannot write itself, so plain bodies keep their
    # bytes. A Page goes out as its items, the rest as pydantic's JSON mode would write it.
    if isinstance(value, Page):
        return list(value.items)
    if to_jsonable_python is None:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    return to_jsonable_python(value)


_ENCODER = json.JSONEncoder(default=_json_default)
