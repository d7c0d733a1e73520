"""``ApiResource``: a ``flask_restful.Resource`` whose responses are always enveloped.

Success: ``{"meta": {"operation_id"}, "data"}``; errors: ``{"meta", "errors": [...]}``. Sync and
``async def`` methods both work (async ones run on the chassis event loop).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from flask import current_app, request
from flask_restful import Resource
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.wrappers import Response as ResponseBase

from cst_chassis.api import ChassisApi
from cst_chassis.envelope import (
    ErrorItem,
    Meta,
    error_envelope,
    http_error_parts,
    internal_error_parts,
    success_envelope,
)
from cst_chassis.errors import AsyncBridgeTimeout, InvalidPaginationError
from cst_chassis.pagination_mixin import ApiPaginatedMixin

__all__ = ["ApiPaginatedMixin", "ApiResource", "ChassisApi", "ResponseHeaders"]

_HTTP_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")

logger = logging.getLogger("cst_chassis")

# What a resource may return as headers: flask-restful passes them on to ``make_response``.
ResponseHeaders = Mapping[str, str] | list[tuple[str, str]]


class ApiResource(Resource):
    """A drop-in ``flask_restful.Resource`` that envelopes every response.

    - ``return x``, ``return x, status`` and ``return x, status, headers`` become
      ``{"meta": {"operation_id": ...}, "data": x}`` with that status and those headers.
      A ``Response`` object is passed through untouched.
    - :meth:`add_error` collects errors; the response then has ``"errors"`` and no ``"data"``,
      and a success status (or none) becomes 400.
    - ``abort(...)`` / any ``HTTPException``: that status, ``{"meta", "errors": [{"message"}]}``.
    - Any other exception: 500 with a generic message; the traceback goes to the log (with the
      operation id), never to the client.
    - ``async def`` methods are awaited on the chassis event loop, also under
      ``method_decorators``.
    """

    # Names of the HTTP methods this class implements as coroutine functions, computed once per
    # class so the per-request path does no introspection.
    _async_methods: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._async_methods = frozenset(
            name for name in _HTTP_METHODS if inspect.iscoroutinefunction(getattr(cls, name, None))
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.errors: list[ErrorItem] = []

    def add_error(self, message: str, path: str | None = None) -> None:
        """Record an error; the response becomes an error envelope (400 unless set higher)."""
        error: ErrorItem = {"message": message}
        if path is not None:
            error["path"] = path
        self.errors.append(error)

    def dispatch_request(self, *args: Any, **kwargs: Any) -> Any:
        self.errors = []
        method = request.method.lower()
        meth: Callable[..., Any] | None = getattr(self, method, None)
        if meth is None and method == "head":
            method = "get"
            meth = getattr(self, "get", None)
        try:
            if meth is None:
                raise MethodNotAllowed()
            self._before_method()
            if self.errors:
                return error_envelope(self.errors), 400
            if method in self._async_methods:
                # Before the decorators: a sync wrapper would hide the coroutine function.
                meth = current_app.ensure_sync(meth)
            decorators = self.method_decorators
            if isinstance(decorators, Mapping):
                decorators = decorators.get(method, [])
            for decorator in decorators:
                meth = decorator(meth)
            rv = meth(*args, **kwargs)
        except HTTPException as exc:
            if exc.response is not None:
                return exc.get_response()
            return http_error_parts(exc)
        except InvalidPaginationError as exc:
            # Bad pagination input (query string or cursor), from the hook or the method.
            return error_envelope([{"message": exc.message, "path": exc.path}]), 400
        except AsyncBridgeTimeout as exc:
            # Logged, or the 504 leaves no line with its operation id in the service's log.
            rule = request.url_rule.rule if request.url_rule is not None else "(no route)"
            logger.warning("Timed out on %s %s: %s", request.method, rule, exc)
            return error_envelope([{"message": "The request took too long"}]), 504
        except Exception as exc:  # the envelope's promise: no traceback reaches the client
            return internal_error_parts(exc)

        if isinstance(rv, ResponseBase):
            return rv
        data, code, headers = _unpack(rv)
        if self.errors:
            if code < 400:
                code = 400
            return error_envelope(self.errors), code, headers
        body = success_envelope(data)
        extra_headers = self._extend_meta(body["meta"])
        if extra_headers:
            headers = Headers(headers)
            headers.extend(extra_headers)
        return body, code, headers

    def _before_method(self) -> None:
        """Hook run before the method (the pagination mixin parses its parameters here)."""

    def _extend_meta(self, meta: Meta) -> list[tuple[str, str]] | None:
        """Hook to add to a success envelope's ``meta`` after the method ran.

        Returns extra response headers (the pagination mixin's ``Link``), or ``None``.
        """
        return None


def _unpack(rv: Any) -> tuple[Any, int, Any]:
    # flask-restful's unpack, except that a missing status is 200 rather than None.
    if isinstance(rv, tuple):
        if len(rv) == 3:
            return rv[0], rv[1] or 200, rv[2]
        if len(rv) == 2:
            return rv[0], rv[1] or 200, {}
    return rv, 200, {}
