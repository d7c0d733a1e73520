"""``ApiResource``: a ``flask_restful.Resource`` whose responses are always enveloped.

Success: ``{"meta": {"operation_id"}, "data"}``; errors: ``{"meta", "errors": [...]}``. Sync and
``async def`` methods both work (async ones run on the chassis event loop).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import flask_restful
from flask import current_app, request
from flask_restful import Resource
from werkzeug.datastructures import Headers
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.wrappers import Response as ResponseBase

from cst_chassis.api import (
    ChassisApi,
    bytes_response,
    error_response,
    json_indent,
    json_response,
    takes_json_shortcut,
)
from cst_chassis.envelope import ErrorItem, Meta, error_envelope, success_envelope
from cst_chassis.pagination_mixin import ApiPaginatedMixin

if TYPE_CHECKING:
    from cst_chassis._serialize import ResponseSerializer

__all__ = ["ApiPaginatedMixin", "ApiResource"]

_HTTP_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
# What typed responses need beyond the core dependencies (the openapi extra).
_OPTIONAL_MODULES = frozenset({"pydantic", "pydantic_core", "typing_extensions"})


class ApiResource(Resource):
    """A drop-in ``flask_restful.Resource`` that envelopes every response.

    - ``return x``, ``return x, status`` and ``return x, status, headers`` become
      ``{"meta": {"operation_id": ...}, "data": x}`` with that status and those headers.
      A ``Response`` object is passed through untouched.
    - :meth:`add_error` collects errors; the response then has ``"errors"`` and no ``"data"``,
      and a success status (or none) becomes 400.
    - Any exception becomes ``{"meta", "errors": [...]}`` (see
      :mod:`cst_chassis._error_handling` for the items): ``abort(...)``, reqparse and any
      ``HTTPException`` keep their status, headers and details; any other exception is a 500
      with a generic message, its traceback logged with the operation id, never sent. This
      holds on any ``Api`` and whatever ``PROPAGATE_EXCEPTIONS`` says; the API's ``errors=``
      mapping, 401 challenge and ``got_request_exception`` signal apply as in flask-restful.
    - ``async def`` methods are awaited on the chassis event loop, also under
      ``method_decorators``.
    - ``_before_method`` (the pagination mixin's parameter checks) runs inside
      ``method_decorators``, just before the method: an auth decorator answers first.
    - A method whose return annotation is not plain JSON (a pydantic model, a dataclass, a
      ``TypedDict``, ``datetime``, ``UUID``, ``Decimal``, an ``Enum``, ``Page[T]``...) has its
      success body validated against it and written by pydantic-core, only the annotated
      fields; a value that does not fit is a 500 (needs pydantic: the ``openapi`` extra). Built
      once when the class is registered; see :mod:`cst_chassis._serialize`.
    """

    # Names of the HTTP methods this class implements as coroutine functions, computed once per
    # class so the per-request path does no introspection.
    _async_methods: ClassVar[frozenset[str]] = frozenset()
    # Whether a subclass (the pagination mixin) overrides the _before_method hook.
    _has_before_hook: ClassVar[bool] = False
    # The Api this class was last added to (flask-restful keeps per-class state the same way:
    # ``mediatypes``, ``endpoint``); None when it was registered without flask-restful.
    _api: ClassVar[flask_restful.Api | None] = None
    # Whether that Api renders through flask-restful's own make_response (a subclass that
    # overrides it must see every response, so the JSON shortcut is off).
    _stock_make_response: ClassVar[bool] = False
    # Per HTTP method, the serializer of its annotated body (empty: every body is plain JSON,
    # written as flask-restful writes it). Built when the class is registered.
    _serializers: ClassVar[dict[str, ResponseSerializer]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._async_methods = frozenset(
            name for name in _HTTP_METHODS if inspect.iscoroutinefunction(getattr(cls, name, None))
        )
        cls._has_before_hook = cls._before_method is not ApiResource._before_method

    @classmethod
    def as_view(cls, name: str, *class_args: Any, **class_kwargs: Any) -> Any:
        # Api.add_resource sets cls.mediatypes to a closure over the Api just before this call:
        # the one place the Api is reachable from the resource.
        cls._api = api = _api_of(cls)
        cls._stock_make_response = api is not None and type(api).make_response in {
            flask_restful.Api.make_response,
            ChassisApi.make_response,
        }
        if "_serializers" not in cls.__dict__:
            cls._serializers = _response_serializers(cls)
        return super().as_view(name, *class_args, **class_kwargs)

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
            if method in self._async_methods:
                # Before the decorators: a sync wrapper would hide the coroutine function.
                meth = current_app.ensure_sync(meth)
            if self._has_before_hook:
                meth = self._with_before_hook(meth)
            decorators = self.method_decorators
            if isinstance(decorators, Mapping):
                decorators = decorators.get(method, [])
            for decorator in decorators:
                meth = decorator(meth)
            rv = meth(*args, **kwargs)
            if isinstance(rv, ResponseBase):
                return rv
            data, code, headers = _unpack(rv)
            if self.errors:
                body: Any = error_envelope(self.errors)
                code = max(code, 400)
            else:
                serializers = self._serializers
                serializer = serializers.get(method) if serializers and code < 400 else None
                if serializer is not None:
                    data = serializer.validate(data)
                body = success_envelope(data)
                extra_headers = self._extend_meta(body["meta"])
                if extra_headers:
                    headers = Headers(headers)
                    headers.extend(extra_headers)
                if serializer is not None:
                    return self._typed_response(serializer, body, code, headers)
            api = self._api
            if self._stock_make_response and api is not None and takes_json_shortcut(api):
                # The bytes flask-restful's output_json would send, without its negotiation.
                return json_response(body, code, headers)
            return body, code, headers
        except Exception as exc:  # the envelope's promise: one shape, no traceback to the client
            return error_response(self._api, exc)

    def _typed_response(
        self, serializer: ResponseSerializer, body: Any, code: int, headers: Any
    ) -> Any:
        api = self._api
        if api is None or (self._stock_make_response and takes_json_shortcut(api)):
            return bytes_response(serializer.envelope_json(body, json_indent()), code, headers)
        # Another representation (or an Api that renders itself): JSON-ready values for it.
        body["data"] = serializer.jsonable(body["data"])
        return body, code, headers

    def _with_before_hook(self, meth: Callable[..., Any]) -> Callable[..., Any]:
        # Inside the decorators, so an auth decorator's 401 wins over a pagination 400.
        def checked(*args: Any, **kwargs: Any) -> Any:
            self._before_method()
            if self.errors:
                return None, 400
            return meth(*args, **kwargs)

        return checked

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


def _response_serializers(cls: type[ApiResource]) -> dict[str, ResponseSerializer]:
    try:
        # Imported at registration, not at import: pydantic is optional (the openapi extra).
        from cst_chassis._serialize import serializers_for
    except ModuleNotFoundError as exc:
        if exc.name not in _OPTIONAL_MODULES:
            raise
        return {}  # no pydantic: every body is written as flask-restful writes it
    return serializers_for(cls, _HTTP_METHODS)


def _api_of(cls: type[Resource]) -> flask_restful.Api | None:
    mediatypes = cls.__dict__.get("mediatypes")
    for cell in getattr(mediatypes, "__closure__", None) or ():
        api = cell.cell_contents
        if isinstance(api, flask_restful.Api):
            return api
    return None
