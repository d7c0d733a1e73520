"""The OpenAPI 3.1 document of an app: :func:`build_document` and the builder behind it.

Operations come from the methods of every ``ApiResource`` on the app's URL map, path parameters
from the rule's converters, the success body from the method's return annotation wrapped in the
envelope, request bodies and query parameters from the decorators' ``_OperationSpec``, errors from
the chassis's ``ErrorEnvelope``, pagination from ``ApiPaginatedMixin`` and the limits in the config.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_origin

from flask import Flask
from flask_restful import reqparse
from pydantic import BaseModel, PydanticUserError
from pydantic.json_schema import GenerateJsonSchema
from werkzeug.routing import BaseConverter, Rule

from cst_chassis._inputs import exclude_nul
from cst_chassis._typed_inputs import NulFreeStrings, ParameterLocation, parameter_objects
from cst_chassis.envelope import ErrorEnvelope, Meta
from cst_chassis.health import HealthBody
from cst_chassis.openapi._returns import (
    NO_BODY,
    fields_schema,
    marshal_of,
    return_annotation,
    success_bodies,
)
from cst_chassis.openapi.decorators import _spec_of
from cst_chassis.openapi.schemas import (
    OpenAPIError,
    _argument_schema,
    _converter_schema,
    _Schemas,
    type_adapter,
)
from cst_chassis.pagination import MAX_OFFSET
from cst_chassis.resources import ApiPaginatedMixin, ApiResource
from cst_chassis.state import get_state

if TYPE_CHECKING:
    from cst_chassis.config import ChassisConfig

__all__ = ["build_document"]

logger: logging.Logger = logging.getLogger("cst_chassis")

OPENAPI_VERSION = "3.1.0"
_METHODS = ("get", "put", "post", "delete", "patch")
_JSON = "application/json"
_RULE_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
# What flask-restful's reqparse reads from where (``Argument.location``).
_QUERY_LOCATIONS = frozenset({"args", "values"})
_BODY_LOCATIONS = frozenset({"json", "form"})


def build_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s resources and health endpoint, as a dict.

    Every rule whose view is an ``ApiResource`` is described, in path order, whatever ``Api``
    registered it; call it once the routes are added. Raises :class:`OpenAPIError` naming a
    method whose annotations do not resolve, and ``ChassisNotInitializedError`` when the app has
    no chassis.
    """
    config = get_state(app).config
    # With CST_REFUSE_NUL the document says which strings refuse NUL, so that every request it
    # allows is accepted.
    builder = _Builder(
        config, _Schemas(NulFreeStrings if config.refuse_nul else GenerateJsonSchema)
    )
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
        if self.config.refuse_nul:  # schemas written here; pydantic's get NulFreeStrings
            for parameter in parameters:
                if parameter["in"] in ("path", "query"):
                    exclude_nul(parameter["schema"])
            for property_schema in body_properties.values():
                exclude_nul(property_schema)
        models: list[tuple[ParameterLocation, type[BaseModel] | None]] = [
            ("query", spec.query),
            ("header", spec.headers),
        ]
        for location, model in models:
            if model is not None:
                parameters.extend(
                    parameter_objects(model, location, lambda t: self.schemas.of(t, "validation"))
                )
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
        where = f"{view_class.__qualname__}.{method}"
        for status, body in _success_statuses(func, view_class, method).items():
            responses[str(status)] = self._success_response(body, paginated, where)
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

    def _success_response(self, body: Any, paginated: bool, where: str) -> dict[str, Any]:
        headers = self._operation_id_header()
        if body is NO_BODY:  # a Response object: the chassis does not envelope it
            return {"description": "Success", "headers": headers}
        data: dict[str, Any]
        if isinstance(body, _Inline):
            data = body.schema
        elif _describable(body, where):
            data = self.schemas.of(body)
        else:
            data = {"description": "Not described (see the service's log)."}
        meta = self.schemas.of(Meta)
        if paginated:
            meta = {"allOf": [meta], "required": ["operation_id", "pagination"]}
            headers["Link"] = {
                "description": 'RFC 8288 links to the neighbouring pages (rel="next", "prev").',
                "schema": {"type": "string"},
            }
        envelope = {
            "type": "object",
            "properties": {"meta": meta, "data": data},
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


def _summary(func: Callable[..., Any], view_class: type) -> dict[str, str]:
    doc = inspect.getdoc(func) or inspect.getdoc(view_class) or ""
    summary, _, description = doc.partition("\n")
    result = {"summary": summary.strip()} if summary.strip() else {}
    if description.strip():
        result["description"] = description.strip()
    return result


def _success_statuses(func: Callable[..., Any], view_class: type, method: str) -> dict[int, Any]:
    marshal = marshal_of(view_class, method, func)
    try:
        annotation = return_annotation(func)
    except Exception as exc:  # NameError, TypeError: anything that stops the annotation resolving
        if marshal is not None:  # the fields say what is sent; the annotation only the status
            return {200: _fields_body(marshal, many=False)}
        raise OpenAPIError(
            f"{view_class.__qualname__}.{method}: its annotations do not resolve ({exc}); "
            "import the types it names at module level"
        ) from exc
    bodies = success_bodies(annotation)
    if marshal is None:
        return bodies
    # marshal_with shapes the output whatever the annotation names (often the plain class the
    # method returns, which pydantic cannot describe); the annotation still gives the statuses
    # and whether a list is returned.
    return {
        status: _fields_body(marshal, many=get_origin(body) in (list, Sequence))
        for status, body in bodies.items()
    }


@dataclass(frozen=True)
class _Inline:
    """A body whose JSON Schema is written here, not by pydantic (``marshal_with`` fields)."""

    schema: dict[str, Any]


def _fields_body(marshal: Any, many: bool) -> _Inline:
    return _Inline(fields_schema(marshal.fields, marshal.envelope, many))


def _describable(body: Any, where: str) -> bool:
    # A type pydantic cannot describe (a plain class) leaves its body undescribed, with a
    # warning, rather than failing the whole document.
    try:
        type_adapter(body).json_schema(mode="serialization")
    except PydanticUserError as exc:
        logger.warning(
            "%s: its success body is left undescribed in the OpenAPI document: pydantic "
            "cannot describe %r (%s)",
            where,
            body,
            type(exc).__name__,
        )
        return False
    return True


def _openapi_path(rule: Rule) -> str:
    return _RULE_ARGUMENT.sub(r"{\1}", rule.rule)


def _path_parameters(rule: Rule) -> Iterator[dict[str, Any]]:
    # Werkzeug keeps the converter instances of a rule here (2.3 and 3.x alike).
    converters: Mapping[str, BaseConverter] = getattr(rule, "_converters", {})
    for name in _RULE_ARGUMENT.findall(rule.rule):
        converter = converters.get(name)
        yield {"name": name, "in": "path", "required": True, "schema": _converter_schema(converter)}
