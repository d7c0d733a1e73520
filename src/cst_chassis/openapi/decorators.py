"""Decorators declaring a method's inputs and statuses, and the ``Created``/``Accepted`` types.

Each decorator parses what it declares before the method runs, and leaves an ``_OperationSpec`` on
the wrapper (``__cst_openapi__``) that the document builder reads.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Concatenate, Literal, ParamSpec, TypeAlias, TypeVar

from flask import request
from flask_restful import reqparse
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from cst_chassis._inputs import NUL_MESSAGE, nul_path
from cst_chassis._typed_inputs import (
    ParameterLocation,
    model_parameters,
    parameters_input,
    validate_json_body,
)
from cst_chassis.openapi.schemas import type_adapter
from cst_chassis.resources import ApiResource
from cst_chassis.state import get_state

__all__ = [
    "Accepted",
    "Created",
    "error_statuses",
    "with_args",
    "with_body",
    "with_headers",
    "with_query",
]

T = TypeVar("T")
B = TypeVar("B")
Q = TypeVar("Q", bound=BaseModel)
S = TypeVar("S", bound=ApiResource)
P = ParamSpec("P")
R = TypeVar("R")

# ``def post(self) -> Created[ProductJson]`` then ``return product, 201``: the status is part of
# the return type, so mypy checks the body and the document shows a 201. Any
# ``tuple[Body, Literal[code]]`` (or ``tuple[Body, Literal[code], headers]``) works the same way.
Created: TypeAlias = tuple[T, Literal[201]]
"""Return type of a method answering 201 with a body: ``return body, 201``."""
Accepted: TypeAlias = tuple[T, Literal[202]]
"""Return type of a method answering 202 with a body: ``return body, 202``."""
_SPEC_ATTRIBUTE = "__cst_openapi__"
# A client sending a thousand bad list items gets the first few reasons, not a megabyte of them.
_MAX_REPORTED_ERRORS = 20


@dataclass(frozen=True, slots=True)
class _OperationSpec:
    """What the decorators add to a method; kept on the wrapper under ``__cst_openapi__``."""

    body: Any = None
    parser: reqparse.RequestParser | None = None
    error_statuses: frozenset[int] = frozenset()
    query: type[BaseModel] | None = None
    headers: type[BaseModel] | None = None


def _spec_of(func: Callable[..., Any]) -> _OperationSpec:
    spec = getattr(func, _SPEC_ATTRIBUTE, None)
    return spec if isinstance(spec, _OperationSpec) else _OperationSpec()


def _wrap_with_parsed_input(
    func: Callable[..., Any],
    parse: Callable[[ApiResource], tuple[bool, Any]],
    spec: _OperationSpec,
) -> Callable[..., Any]:
    # ApiResource runs ``async def`` methods on its event loop only if they still look like
    # coroutine functions after decoration, hence two wrappers.
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(self: ApiResource, *args: Any, **kwargs: Any) -> Any:
            ok, value = parse(self)
            if not ok:
                return None  # self.errors is set: the resource answers 400
            return await func(self, value, *args, **kwargs)

        wrapper: Callable[..., Any] = async_wrapper
    else:

        @functools.wraps(func)
        def sync_wrapper(self: ApiResource, *args: Any, **kwargs: Any) -> Any:
            ok, value = parse(self)
            if not ok:
                return None
            return func(self, value, *args, **kwargs)

        wrapper = sync_wrapper
    setattr(wrapper, _SPEC_ATTRIBUTE, spec)
    return wrapper


def with_body(
    model: type[B],
) -> Callable[[Callable[Concatenate[S, B, P], R]], Callable[Concatenate[S, P], R]]:
    """Validate the JSON body against ``model`` and pass it as the method's first argument.

    ``model`` is anything pydantic validates (a ``BaseModel``, a dataclass); it is also the
    document's request body. A body that is not JSON, or that fails validation, gives a 400
    envelope with one error per problem, ``path`` naming the field (``"body"`` for the whole);
    the method is not called. Values are never echoed back into the messages::

        @with_body(ProductIn)
        def post(self, product: ProductIn) -> Created[ProductJson]: ...
    """
    adapter = type_adapter(model)

    def parse(resource: ApiResource) -> tuple[bool, Any]:
        if not request.is_json:
            resource.add_error("The body must be JSON (Content-Type: application/json)", "body")
            return False, None
        raw = request.get_data(cache=True)
        # NUL (which PostgreSQL cannot store) is refused before validation: CST_REFUSE_NUL.
        nul_at = nul_path(raw)
        if nul_at is not None and get_state().config.refuse_nul:
            resource.add_error(f"{nul_at} {NUL_MESSAGE}", nul_at)
            return False, None
        try:
            # JSON Schema's integers: 18680.0 is accepted for an int field, 18680.5 is not.
            return True, validate_json_body(adapter, raw)
        except ValidationError as exc:
            _add_validation_errors(resource, exc, "body")
            return False, None

    def decorate(func: Callable[Concatenate[S, B, P], R]) -> Callable[Concatenate[S, P], R]:
        spec = replace(_spec_of(func), body=model)
        return _wrap_with_parsed_input(func, parse, spec)

    return decorate


def _add_validation_errors(
    resource: ApiResource, exc: ValidationError, whole: str, names: Mapping[str, str] | None = None
) -> None:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    for error in errors[:_MAX_REPORTED_ERRORS]:
        parts = [str(part) for part in error["loc"]]
        if parts and names:  # a header's name, not the model's key for it
            parts[0] = names.get(parts[0], parts[0])
        resource.add_error(error["msg"], ".".join(parts) or whole)


def _parameter_model_parser(
    model: type[BaseModel], location: ParameterLocation, decorator: str
) -> Callable[[ApiResource], tuple[bool, Any]]:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        # Each field must be a parameter: a model is what names them.
        raise TypeError(f"{decorator}({model!r}): expected a pydantic BaseModel subclass")
    adapter = type_adapter(model)
    parameters = model_parameters(model, location)
    names = {key: name for name, key, _ in parameters.values()}

    def parse(resource: ApiResource) -> tuple[bool, Any]:
        source = request.args if location == "query" else request.headers
        try:
            return True, parameters_input(adapter, parameters, source)
        except ValidationError as exc:
            _add_validation_errors(resource, exc, location, names)
            return False, None

    return parse


def with_query(
    model: type[Q],
) -> Callable[[Callable[Concatenate[S, Q, P], R]], Callable[Concatenate[S, P], R]]:
    """Validate the query string against the pydantic ``model``; pass it as the first argument.

    Each field is a query parameter (named by its alias when it has one) and is documented as
    one, with its type, constraints, default and ``description``; a ``list[...]`` field reads a
    repeated parameter (``?tag=a&tag=b``). Values are converted from text as pydantic's lax mode
    does (``"5"`` for an ``int``, ``"true"`` for a ``bool``), also for a strict model. A bad
    value gives a 400 envelope with one error per parameter, ``path`` naming it (the shape of
    :func:`with_body`'s errors); the method is not called. Parameters the model does not
    declare are left to others (pagination's ``offset``/``limit``, a ``with_args`` parser), so
    both decorators can stack on one method; the innermost decorator's value comes first::

        class ProductQuery(BaseModel):
            q: Annotated[str | None, Field(max_length=100)] = None
            sort: Literal["id", "price"] = "id"

        @with_query(ProductQuery)
        def get(self, query: ProductQuery) -> list[ProductJson]: ...

    Raises ``TypeError`` at once when ``model`` is not a ``BaseModel`` subclass.
    """
    parse = _parameter_model_parser(model, "query", "with_query")

    def decorate(func: Callable[Concatenate[S, Q, P], R]) -> Callable[Concatenate[S, P], R]:
        spec = replace(_spec_of(func), query=model)
        return _wrap_with_parsed_input(func, parse, spec)

    return decorate


def with_headers(
    model: type[Q],
) -> Callable[[Callable[Concatenate[S, Q, P], R]], Callable[Concatenate[S, P], R]]:
    """Validate request headers against the pydantic ``model``; pass it as the first argument.

    :func:`with_query` for headers: each field is a header parameter, named by its alias or by
    its name with ``_`` written ``-`` (``x_priority: int`` reads ``X-Priority``; header names
    are case-insensitive). A bad or missing required header gives a 400 whose error ``path`` is
    the header's name::

        class Tenant(BaseModel):
            x_tenant: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,40}$")]

        @with_headers(Tenant)
        def get(self, tenant: Tenant) -> Report: ...

    Raises ``TypeError`` at once when ``model`` is not a ``BaseModel`` subclass.
    """
    parse = _parameter_model_parser(model, "header", "with_headers")

    def decorate(func: Callable[Concatenate[S, Q, P], R]) -> Callable[Concatenate[S, P], R]:
        spec = replace(_spec_of(func), headers=model)
        return _wrap_with_parsed_input(func, parse, spec)

    return decorate


def with_args(
    parser: reqparse.RequestParser,
) -> Callable[[Callable[Concatenate[S, reqparse.Namespace, P], R]], Callable[Concatenate[S, P], R]]:
    """Run ``parser.parse_args()`` and pass its ``Namespace`` as the method's first argument.

    The parser is declared once: it parses the request and describes the query parameters
    (``location="args"``) or body fields (``location="json"``) in the document. reqparse works
    as users know it (types, ``choices``, ``required``, ``help``); its 400 becomes an envelope
    with one error per argument, ``path`` naming it.
    """

    def parse(resource: ApiResource) -> tuple[bool, Any]:
        try:
            return True, parser.parse_args()
        except HTTPException as exc:
            data = getattr(exc, "data", None)
            messages = data.get("message") if isinstance(data, dict) else None
            if exc.code != 400 or not isinstance(messages, Mapping):
                raise
            for name, message in messages.items():
                resource.add_error(str(message), str(name))
            return False, None

    def decorate(
        func: Callable[Concatenate[S, reqparse.Namespace, P], R],
    ) -> Callable[Concatenate[S, P], R]:
        spec = replace(_spec_of(func), parser=parser)
        return _wrap_with_parsed_input(func, parse, spec)

    return decorate


def error_statuses(*codes: int) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Document error statuses a method answers besides the chassis's own (e.g. 409, 502).

    Each is an ``ErrorEnvelope``; the method is left as it is.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        spec = _spec_of(func)
        setattr(func, _SPEC_ATTRIBUTE, replace(spec, error_statuses=spec.error_statuses | {*codes}))
        return func

    return decorate
