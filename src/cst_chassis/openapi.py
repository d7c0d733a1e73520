"""OpenAPI 3.1 for a chassis app, derived from what its resources already declare.

Nothing is restated: operations come from the methods of every ``ApiResource`` on the app's URL
map, path parameters from the rule's converters (``<int:id>`` is an integer), the success body
from the method's return annotation wrapped in the envelope, request bodies and query parameters
from :func:`with_body` / :func:`with_args`, errors from the chassis's ``ErrorEnvelope``,
pagination from ``ApiPaginatedMixin`` and the limits in the config. The JSON Schemas are pydantic's
(``TypeAdapter.json_schemas``): TypedDicts, dataclasses, models, enums, ``datetime``,
``list[...]`` and ``X | None`` all work, and this module writes no schema of its own for a type.

Serving (``CST_OPENAPI_ENABLED``, off by default) adds the document at ``CST_OPENAPI_PATH`` and a
Swagger UI page at ``CST_OPENAPI_DOCS_PATH`` whose assets come from the ``flask-swagger-ui``
package (no CDN). ``python -m cst_chassis.openapi module:factory -o openapi.json`` exports the
same document at build time. Needs the ``openapi`` extra: ``pip install 'cst-chassis[openapi]'``.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.resources
import inspect
import json
import re
import sys
import threading
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Literal,
    ParamSpec,
    TypeAlias,
    TypeVar,
    get_args,
    get_origin,
    get_type_hints,
)

import typing_extensions
from flask import Flask, Response, current_app, request, send_from_directory
from flask_restful import inputs, reqparse
from pydantic import TypeAdapter, ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import (
    AnyConverter,
    BaseConverter,
    FloatConverter,
    IntegerConverter,
    PathConverter,
    Rule,
    UUIDConverter,
)
from werkzeug.wrappers import Response as ResponseBase

from cst_chassis.envelope import ErrorEnvelope, Meta
from cst_chassis.errors import ChassisError
from cst_chassis.health import HealthBody
from cst_chassis.pagination import MAX_OFFSET
from cst_chassis.resources import ApiPaginatedMixin, ApiResource
from cst_chassis.state import get_state

if TYPE_CHECKING:
    from pydantic.json_schema import JsonSchemaMode

    from cst_chassis.config import ChassisConfig

__all__ = [
    "Accepted",
    "Created",
    "OpenAPIError",
    "build_document",
    "error_statuses",
    "main",
    "register_openapi",
    "type_adapter",
    "with_args",
    "with_body",
]

T = TypeVar("T")
B = TypeVar("B")
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

OPENAPI_VERSION = "3.1.0"
_METHODS = ("get", "put", "post", "delete", "patch")
_SPEC_ATTRIBUTE = "__cst_openapi__"
_REF_TEMPLATE = "#/components/schemas/{model}"
# A client sending a thousand bad list items gets the first few reasons, not a megabyte of them.
_MAX_REPORTED_ERRORS = 20
_JSON = "application/json"
_RULE_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
# What flask-restful's reqparse reads from where (``Argument.location``).
_QUERY_LOCATIONS = frozenset({"args", "values"})
_BODY_LOCATIONS = frozenset({"json", "form"})
_SWAGGER_UI_PACKAGE = "flask_swagger_ui"


class OpenAPIError(ChassisError, TypeError):
    """A resource cannot be described (an annotation that does not resolve, for instance)."""


@dataclass(frozen=True, slots=True)
class _OperationSpec:
    """What the decorators add to a method; kept on the wrapper under ``__cst_openapi__``."""

    body: Any = None
    parser: reqparse.RequestParser | None = None
    error_statuses: frozenset[int] = frozenset()


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
        try:
            return True, adapter.validate_json(request.get_data(cache=True))
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            for error in errors[:_MAX_REPORTED_ERRORS]:
                path = ".".join(str(part) for part in error["loc"]) or "body"
                resource.add_error(error["msg"], path)
            return False, None

    def decorate(func: Callable[Concatenate[S, B, P], R]) -> Callable[Concatenate[S, P], R]:
        spec = replace(_spec_of(func), body=model)
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


# -- schemas -------------------------------------------------------------------------------


def type_adapter(annotation: type[T]) -> TypeAdapter[T]:
    """A pydantic ``TypeAdapter`` for ``annotation``, also for ``typing.TypedDict`` on 3.11.

    pydantic refuses ``typing.TypedDict`` before Python 3.12 (its ``NotRequired`` keys are not
    reliable there); the chassis's envelopes and most user code use it. Such classes, also when
    nested in lists, unions or other TypedDicts, are rebuilt as ``typing_extensions.TypedDict``
    with the same name, keys and docstring before pydantic sees them.
    """
    return TypeAdapter(_pydantic_compatible(annotation, {}))


def _is_typing_typeddict(annotation: object) -> bool:
    return (
        sys.version_info < (3, 12)
        and isinstance(annotation, type)
        and typing.is_typeddict(annotation)
        # typing_extensions.is_typeddict() says yes to both kinds; their metaclasses differ.
        and type(annotation).__module__ == "typing"
    )


def _pydantic_compatible(annotation: Any, memo: dict[int, Any]) -> Any:
    if _is_typing_typeddict(annotation):
        if id(annotation) in memo:  # a recursive TypedDict: left to pydantic as it is
            return memo[id(annotation)]
        memo[id(annotation)] = annotation
        # __required_keys__ is wrong on 3.11 for string annotations (``from __future__ import
        # annotations``): read Required/NotRequired from the resolved hints instead.
        hints = get_type_hints(annotation, include_extras=True)
        total: bool = annotation.__total__
        fields = {}
        for name, hint in hints.items():
            inner, marked = _strip_required(hint)
            required = total if marked is None else marked
            wrapper = typing_extensions.Required if required else typing_extensions.NotRequired
            fields[name] = wrapper[_pydantic_compatible(inner, memo)]
        # The functional form: the keys are only known at run time.
        make_typeddict: Any = typing_extensions.TypedDict
        rebuilt: Any = make_typeddict(annotation.__name__, fields)
        rebuilt.__module__ = annotation.__module__
        rebuilt.__qualname__ = annotation.__qualname__
        rebuilt.__doc__ = annotation.__doc__
        memo[id(annotation)] = rebuilt
        return rebuilt
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is None or not args:
        return annotation
    converted_args = tuple(_pydantic_compatible(arg, memo) for arg in args)
    if converted_args == args:
        return annotation
    if origin is typing.Annotated:
        return typing.Annotated[(converted_args[0], *annotation.__metadata__)]
    if origin is typing.Union or origin is types.UnionType:
        return typing.Union[converted_args]  # noqa: UP007  # built from a tuple at run time
    if isinstance(annotation, types.GenericAlias):
        return types.GenericAlias(origin, converted_args)
    return annotation.copy_with(converted_args)


def _strip_required(annotation: Any) -> tuple[Any, bool | None]:
    """The type inside ``Required[...]`` / ``NotRequired[...]``, and which (``None``: neither)."""
    origin = get_origin(annotation)
    if origin in (typing.NotRequired, typing_extensions.NotRequired):
        return get_args(annotation)[0], False
    if origin in (typing.Required, typing_extensions.Required):
        return get_args(annotation)[0], True
    return annotation, None


class _Schemas:
    """Collects the types the document needs, then has pydantic describe them all at once.

    One ``TypeAdapter.json_schemas`` call gives every referenced type one name in
    ``components/schemas`` (pydantic disambiguates two classes of the same name).
    """

    def __init__(self) -> None:
        self._slots: list[tuple[dict[str, Any], JsonSchemaMode, TypeAdapter[Any]]] = []
        self._adapters: dict[object, TypeAdapter[Any]] = {}

    def of(self, annotation: Any, mode: JsonSchemaMode = "serialization") -> dict[str, Any]:
        """A schema dict filled in by :meth:`resolve`."""
        key = annotation if _hashable(annotation) else id(annotation)
        adapter = self._adapters.get(key)
        if adapter is None:
            adapter = self._adapters[key] = type_adapter(annotation)
        slot: dict[str, Any] = {}
        self._slots.append((slot, mode, adapter))
        return slot

    def resolve(self) -> dict[str, Any]:
        inputs_ = [(index, mode, adapter) for index, (_, mode, adapter) in enumerate(self._slots)]
        schemas, definitions = TypeAdapter.json_schemas(inputs_, ref_template=_REF_TEMPLATE)
        for index, (slot, mode, _) in enumerate(self._slots):
            slot.update(schemas[index, mode])
        return dict(sorted(definitions.get("$defs", {}).items()))


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


# -- the document --------------------------------------------------------------------------


def build_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s resources and health endpoint, as a dict.

    Every rule whose view is an ``ApiResource`` is described, in path order, whatever ``Api``
    registered it; call it once the routes are added. Raises :class:`OpenAPIError` naming a
    method whose annotations do not resolve, and ``ChassisNotInitializedError`` when the app has
    no chassis.
    """
    config = get_state(app).config
    builder = _Builder(config)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        view_class = getattr(app.view_functions.get(rule.endpoint), "view_class", None)
        if isinstance(view_class, type) and issubclass(view_class, ApiResource):
            builder.add_resource(rule, view_class)
        elif rule.rule == config.health_check_endpoint:
            builder.add_health(rule)
    return builder.document()


@dataclass
class _Builder:
    config: ChassisConfig
    schemas: _Schemas = field(default_factory=_Schemas)
    paths: dict[str, dict[str, Any]] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        error = self.schemas.of(ErrorEnvelope)
        responses = {
            str(code): {
                "description": description,
                "headers": self._operation_id_header(),
                "content": {_JSON: {"schema": error}},
            }
            for code, description in _ERROR_DESCRIPTIONS.items()
        }
        components: dict[str, Any] = {"responses": responses}
        components["schemas"] = self.schemas.resolve()
        return {
            "openapi": OPENAPI_VERSION,
            "info": {"title": self.config.project_name, "version": self.config.project_version},
            "paths": self.paths,
            "components": components,
        }

    def add_health(self, rule: Rule) -> None:
        health = self.schemas.of(HealthBody)
        content = {_JSON: {"schema": health}}
        headers = self._operation_id_header()
        self.paths.setdefault(_openapi_path(rule), {})["get"] = {
            "operationId": "health",
            "summary": "Health of the service: database, migrations and custom checks.",
            "tags": ["health"],
            "parameters": [self._operation_id_parameter()],
            "responses": {
                "200": {"description": "Healthy", "headers": headers, "content": content},
                "503": {"description": "Unhealthy", "headers": headers, "content": content},
            },
        }

    def add_resource(self, rule: Rule, view_class: type[ApiResource]) -> None:
        path_item = self.paths.setdefault(_openapi_path(rule), {})
        path_parameters = list(_path_parameters(rule))
        methods = {m.lower() for m in rule.methods or ()}
        for method in _METHODS:
            func = getattr(view_class, method, None)
            if func is None or method not in methods:
                continue
            path_item[method] = self._operation(rule, view_class, method, func, path_parameters)

    def _operation(
        self,
        rule: Rule,
        view_class: type[ApiResource],
        method: str,
        func: Callable[..., Any],
        path_parameters: list[dict[str, Any]],
    ) -> dict[str, Any]:
        spec = _spec_of(func)
        operation: dict[str, Any] = {
            "operationId": f"{method}_{rule.endpoint}",
            "tags": [view_class.__name__],
        }
        operation.update(_summary(func, view_class))
        paginated = method == "get" and issubclass(view_class, ApiPaginatedMixin)
        parameters = [*path_parameters, self._operation_id_parameter()]
        if paginated:
            parameters.extend(self._pagination_parameters(view_class))
        body_properties: dict[str, Any] = {}
        body_required: list[str] = []
        if spec.parser is not None:
            for argument in spec.parser.args:
                self._add_argument(argument, method, parameters, body_properties, body_required)
        operation["parameters"] = parameters
        if spec.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {_JSON: {"schema": self.schemas.of(spec.body, "validation")}},
            }
        elif body_properties:
            schema: dict[str, Any] = {"type": "object", "properties": body_properties}
            if body_required:
                schema["required"] = body_required
            operation["requestBody"] = {"required": True, "content": {_JSON: {"schema": schema}}}

        responses: dict[str, Any] = {}
        for status, body in _success_statuses(func, view_class, method).items():
            responses[str(status)] = self._success_response(body, paginated)
        errors = {405, 500} | spec.error_statuses
        if len(parameters) > 1 or "requestBody" in operation:
            errors.add(400)
        if path_parameters:
            errors.add(404)
        if body_properties:
            errors.add(415)  # reqparse's json location answers 415 to a body that is not JSON
        if inspect.iscoroutinefunction(func):  # the decorators here keep async methods async
            errors.add(504)
        for status in sorted(errors):
            key = str(status)
            responses[key] = (
                {"$ref": f"#/components/responses/{key}"}
                if status in _ERROR_DESCRIPTIONS
                else {
                    "description": f"Error {status}",
                    "headers": self._operation_id_header(),
                    "content": {_JSON: {"schema": self.schemas.of(ErrorEnvelope)}},
                }
            )
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _success_response(self, body: Any, paginated: bool) -> dict[str, Any]:
        headers = self._operation_id_header()
        if body is _NO_SCHEMA:  # a Response object: the chassis does not envelope it
            return {"description": "Success", "headers": headers}
        meta = self.schemas.of(Meta)
        if paginated:
            meta = {"allOf": [meta], "required": ["operation_id", "pagination"]}
            headers["Link"] = {
                "description": 'RFC 8288 links to the neighbouring pages (rel="next", "prev").',
                "schema": {"type": "string"},
            }
        envelope = {
            "type": "object",
            "properties": {"meta": meta, "data": self.schemas.of(body)},
            "required": ["meta", "data"],
        }
        return {
            "description": "Success",
            "headers": headers,
            "content": {_JSON: {"schema": envelope}},
        }

    def _operation_id_parameter(self) -> dict[str, Any]:
        return {
            "name": self.config.operation_id_header,
            "in": "header",
            "required": False,
            "description": "Reused as the operation id when it is a safe token; else a new one.",
            "schema": {"type": "string"},
        }

    def _operation_id_header(self) -> dict[str, Any]:
        return {
            self.config.operation_id_header: {
                "description": "The operation id of this request (also in meta.operation_id).",
                "required": True,
                "schema": {"type": "string"},
            }
        }

    def _pagination_parameters(self, view_class: type[ApiResource]) -> list[dict[str, Any]]:
        limit = {
            "name": "limit",
            "in": "query",
            "description": "Page size.",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": self.config.max_page_size,
                "default": self.config.default_page_size,
            },
        }
        if getattr(view_class, "pagination_mode", "offset") == "keyset":
            cursor = {
                "name": "cursor",
                "in": "query",
                "description": "Opaque cursor from meta.pagination.next or prev.",
                "schema": {"type": "string", "minLength": 1},
            }
            return [cursor, limit]
        offset = {
            "name": "offset",
            "in": "query",
            "description": "Items to skip.",
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
        }
        return [offset, limit]

    def _add_argument(
        self,
        argument: reqparse.Argument,
        method: str,
        parameters: list[dict[str, Any]],
        body_properties: dict[str, Any],
        body_required: list[str],
    ) -> None:
        locations = (
            {argument.location} if isinstance(argument.location, str) else set(argument.location)
        )
        schema = _argument_schema(argument)
        if argument.help:
            schema["description"] = argument.help
        if locations & _QUERY_LOCATIONS and (method == "get" or not locations & _BODY_LOCATIONS):
            parameter: dict[str, Any] = {"name": argument.name, "in": "query", "schema": schema}
            if argument.required:
                parameter["required"] = True
            if argument.action == "append":
                parameter.update(style="form", explode=True)
            parameters.append(parameter)
        elif "headers" in locations:
            parameters.append(
                {
                    "name": argument.name,
                    "in": "header",
                    "required": argument.required,
                    "schema": schema,
                }
            )
        elif locations & _BODY_LOCATIONS:
            body_properties[argument.name] = schema
            if argument.required:
                body_required.append(argument.name)


_ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid input: each error's `path` names the parameter or body field.",
    404: "Not found.",
    405: "Method not allowed.",
    415: "The body is not JSON (Content-Type: application/json).",
    500: "Internal error (details are in the service's log, never in the body).",
    504: "The request ran longer than CST_ASYNC_TIMEOUT.",
}

_NO_SCHEMA = object()


def _summary(func: Callable[..., Any], view_class: type) -> dict[str, str]:
    doc = inspect.getdoc(func) or inspect.getdoc(view_class) or ""
    summary, _, description = doc.partition("\n")
    result = {"summary": summary.strip()} if summary.strip() else {}
    if description.strip():
        result["description"] = description.strip()
    return result


def _success_statuses(func: Callable[..., Any], view_class: type, method: str) -> dict[int, Any]:
    try:
        hints = get_type_hints(func, include_extras=True)
    except Exception as exc:  # NameError, TypeError: anything that stops the annotation resolving
        raise OpenAPIError(
            f"{view_class.__qualname__}.{method}: its annotations do not resolve ({exc}); "
            "import the types it names at module level"
        ) from exc
    annotation = hints.get("return", Any)
    if isinstance(annotation, type) and issubclass(annotation, ResponseBase):
        return {200: _NO_SCHEMA}
    if get_origin(annotation) is tuple:
        args = get_args(annotation)
        if len(args) in (2, 3) and get_origin(args[1]) is Literal:
            return {int(code): args[0] for code in get_args(args[1])}
        if len(args) in (2, 3) and args[1] is int:
            return {200: args[0]}
    return {200: annotation}


def _openapi_path(rule: Rule) -> str:
    return _RULE_ARGUMENT.sub(r"{\1}", rule.rule)


def _path_parameters(rule: Rule) -> Iterator[dict[str, Any]]:
    # Werkzeug keeps the converter instances of a rule here (2.3 and 3.x alike).
    converters: Mapping[str, BaseConverter] = getattr(rule, "_converters", {})
    for name in _RULE_ARGUMENT.findall(rule.rule):
        converter = converters.get(name)
        yield {"name": name, "in": "path", "required": True, "schema": _converter_schema(converter)}


def _converter_schema(converter: BaseConverter | None) -> dict[str, Any]:
    if isinstance(converter, IntegerConverter | FloatConverter):
        schema: dict[str, Any] = {
            "type": "integer" if isinstance(converter, IntegerConverter) else "number"
        }
        minimum = converter.min
        if minimum is None and not converter.signed:
            minimum = 0
        if minimum is not None:
            schema["minimum"] = minimum
        if converter.max is not None:
            schema["maximum"] = converter.max
        return schema
    if isinstance(converter, UUIDConverter):
        return {"type": "string", "format": "uuid"}
    if isinstance(converter, AnyConverter):
        items = getattr(converter, "items", None)
        if isinstance(items, Sequence) and items:
            return {"type": "string", "enum": list(items)}
    if isinstance(converter, PathConverter):
        return {"type": "string", "minLength": 1}
    # The default converter: one path segment.
    return {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}


def _argument_schema(argument: reqparse.Argument) -> dict[str, Any]:
    kind = argument.type
    schema: dict[str, Any]
    declared = getattr(kind, "json_schema", None)
    if isinstance(declared, Mapping):
        schema = dict(declared)
    elif kind is int:
        schema = {"type": "integer"}
    elif kind is float:
        schema = {"type": "number"}
    elif kind is bool or kind is inputs.boolean:
        schema = {"type": "boolean"}
    elif isinstance(kind, inputs.int_range):
        schema = {"type": "integer", "minimum": kind.low, "maximum": kind.high}
    elif kind is inputs.natural:
        schema = {"type": "integer", "minimum": 0}
    elif kind is inputs.positive:
        schema = {"type": "integer", "minimum": 1}
    elif isinstance(kind, inputs.regex):
        schema = {"type": "string", "pattern": kind.pattern}
    else:
        schema = {"type": "string"}
    if argument.choices:
        schema["enum"] = list(argument.choices)
    if argument.default is not None and not callable(argument.default):
        schema["default"] = argument.default
    if argument.action == "append":
        schema = {"type": "array", "items": schema}
    return schema


# -- serving -------------------------------------------------------------------------------


class _DocumentView:
    """Builds the document at its first request (every resource is added by then), once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._body: bytes | None = None

    def __call__(self) -> Response:
        if self._body is None:
            with self._lock:
                if self._body is None:
                    app = current_app._get_current_object()  # type: ignore[attr-defined]  # LocalProxy API
                    document = build_document(app)
                    self._body = json.dumps(document, indent=2).encode() + b"\n"
        return Response(self._body, mimetype=_JSON)


_DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-ui-init.js"></script>
</body>
</html>
"""

# A separate script rather than inline JavaScript, so a strict Content-Security-Policy can stay.
_DOCS_INIT = """window.ui = SwaggerUIBundle({{url: {url}, dom_id: "#swagger-ui"}});
"""


def swagger_ui_assets() -> Path:
    """The folder of Swagger UI's files inside the ``flask-swagger-ui`` package."""
    folder = Path(str(importlib.resources.files(_SWAGGER_UI_PACKAGE) / "dist"))
    if not (folder / "swagger-ui-bundle.js").is_file():
        raise ChassisError(f"Swagger UI assets not found in {folder}; reinstall flask-swagger-ui")
    return folder


def register_openapi(app: Flask, config: ChassisConfig) -> None:
    """Serve the document at ``CST_OPENAPI_PATH`` and Swagger UI at ``CST_OPENAPI_DOCS_PATH``.

    Called by ``init_app`` when ``CST_OPENAPI_ENABLED`` is true. The page's assets are served
    from ``<docs path>/assets/`` out of the installed ``flask-swagger-ui`` package.
    """
    app.add_url_rule(config.openapi_path, "cst_openapi_document", _DocumentView())
    docs_path = config.openapi_docs_path
    if docs_path is None:
        return
    assets_folder = swagger_ui_assets()
    assets_url = docs_path.rstrip("/") + "/assets"
    page = _DOCS_PAGE.format(title=_html_escape(config.project_name), assets=assets_url)
    init_script = _DOCS_INIT.format(url=json.dumps(config.openapi_path))

    def docs_page() -> Response:
        return Response(page, mimetype="text/html")

    def docs_asset(filename: str) -> ResponseBase:
        if filename == "swagger-ui-init.js":
            return Response(init_script, mimetype="text/javascript")
        return send_from_directory(assets_folder, filename, max_age=3600)

    app.add_url_rule(docs_path, "cst_openapi_docs", docs_page)
    app.add_url_rule(f"{assets_url}/<path:filename>", "cst_openapi_docs_asset", docs_asset)


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- build-time export ---------------------------------------------------------------------


def load_app(target: str) -> Flask:
    """``module:name``: ``name`` is a Flask app, or a factory called without arguments."""
    module_name, _, attribute = target.partition(":")
    attribute = attribute.removesuffix("()") or "app"
    found = getattr(importlib.import_module(module_name), attribute)
    app = found if isinstance(found, Flask) else found()
    if not isinstance(app, Flask):
        raise TypeError(f"{target} is neither a Flask app nor a factory returning one")
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cst_chassis.openapi module:factory [-o FILE]``: write the document."""
    parser = argparse.ArgumentParser(
        prog="python -m cst_chassis.openapi",
        description="Write the OpenAPI document of a cst-chassis app (for CI to diff).",
    )
    parser.add_argument(
        "app", help="module:app or module:factory, e.g. examples.demo.app:create_app"
    )
    parser.add_argument("-o", "--output", help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    text = json.dumps(build_document(load_app(args.app)), indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    # Through the imported module, not this __main__ copy: the decorators of the app's resources
    # marked their methods with that module's classes.
    from cst_chassis.openapi import main as _main

    sys.exit(_main())
