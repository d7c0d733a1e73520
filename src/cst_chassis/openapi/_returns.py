"""What a resource method answers, read from its return annotation or its ``marshal_with``.

Shared by the document builder (the 2xx schemas) and the response serializer
(:mod:`cst_chassis._serialize`), so that what is documented and what is sent are one reading:

- ``tuple[Body, Literal[201]]`` (``Created[Body]``), ``tuple[Body, int]`` and the 3-tuple forms
  answer ``Body``; ``Page[T]`` answers a JSON array of ``T``; a ``Response`` is sent untouched.
- A method under flask-restful's ``marshal_with(fields)`` (as a decorator or in
  ``method_decorators``) answers what its ``fields`` say, whatever its annotation.
- A body annotation made only of JSON's own types (``str``, ``int``, ``float``, ``bool``,
  ``None``, ``dict[str, ...]``, ``list[...]``, ``Any``, literals and unions of them) is "plain":
  ``json.dumps`` writes it as flask-restful always did.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping, MutableSequence, Sequence
from typing import Any, Literal, get_args, get_origin, get_type_hints

import flask_restful
from flask_restful import fields as fr_fields
from werkzeug.wrappers import Response as ResponseBase

from cst_chassis.pagination.page import Page

__all__: list[str] = []

#: The body of a method whose ``Response`` goes out untouched: nothing to describe or serialize.
NO_BODY = object()

_PLAIN_LEAVES: tuple[object, ...] = (
    Any,
    object,
    str,
    int,
    float,
    bool,
    None,
    type(None),
    dict,
    list,
)
_SEQUENCES = (list, Sequence, MutableSequence)
_MAPPINGS = (dict, Mapping)


def return_annotation(func: Callable[..., Any]) -> Any:
    """The resolved return annotation of ``func`` (``Any`` when it has none).

    Raises what ``typing.get_type_hints`` raises when a name does not resolve.
    """
    return get_type_hints(func, include_extras=True).get("return", Any)


def success_bodies(annotation: Any) -> dict[int, Any]:
    """Status -> body annotation for a method's return annotation (``NO_BODY``: a Response)."""
    if isinstance(annotation, type) and issubclass(annotation, ResponseBase):
        return {200: NO_BODY}
    if get_origin(annotation) is tuple:
        args = get_args(annotation)
        if len(args) in (2, 3) and get_origin(args[1]) is Literal:
            return {int(code): page_as_list(args[0]) for code in get_args(args[1])}
        if len(args) in (2, 3) and args[1] is int:
            return {200: page_as_list(args[0])}
    return {200: page_as_list(annotation)}


def page_as_list(annotation: Any) -> Any:
    """``Page[T]`` is sent as its items, a ``list[T]``; anything else is left as it is."""
    if annotation is Page:
        return list[Any]
    if get_origin(annotation) is Page:
        return list[get_args(annotation)[0]]  # type: ignore[misc]  # built at run time
    return annotation


def is_plain(annotation: Any) -> bool:
    """Whether ``json.dumps`` writes values of ``annotation`` as the document says (see above)."""
    if any(annotation is leaf for leaf in _PLAIN_LEAVES):
        return True
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Literal:
        return all(arg is None or type(arg) in (str, int, bool) for arg in args)
    if origin is typing.Union or origin is types.UnionType:
        return all(is_plain(arg) for arg in args)
    if origin in _SEQUENCES:
        return all(is_plain(arg) for arg in args)
    if origin in _MAPPINGS:
        return len(args) == 2 and args[0] is str and is_plain(args[1])
    return False


def marshal_of(
    view_class: type, method: str, func: Callable[..., Any]
) -> flask_restful.marshal_with | None:
    """The ``marshal_with`` that shapes ``method``'s output, if any.

    Found on the method (the decorator's wrapper keeps it in its closure; ``functools.wraps``
    chains are followed) or in the class's ``method_decorators`` (a list, or a dict by method).
    """
    decorators = getattr(view_class, "method_decorators", None) or ()
    if isinstance(decorators, Mapping):
        decorators = decorators.get(method, ())
    for decorator in decorators:
        if isinstance(decorator, flask_restful.marshal_with):
            return decorator
    seen: set[int] = set()
    current: Any = func
    while callable(current) and id(current) not in seen:
        seen.add(id(current))
        for cell in getattr(current, "__closure__", None) or ():
            try:
                contents = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if isinstance(contents, flask_restful.marshal_with):
                return contents
        current = getattr(current, "__wrapped__", None)
    return None


def fields_schema(fields: Mapping[str, Any], envelope: str | None, many: bool) -> dict[str, Any]:
    """The JSON Schema of what ``marshal(data, fields, envelope)`` returns.

    ``many``: the method returns a list (its annotation says ``list[...]``), which ``marshal``
    turns into a list of objects.
    """
    schema = _object_schema(fields)
    if many:
        schema = {"type": "array", "items": schema}
    if envelope:
        schema = {"type": "object", "properties": {envelope: schema}, "required": [envelope]}
    return schema


def _object_schema(fields: Mapping[str, Any]) -> dict[str, Any]:
    properties = {str(name): _field_schema(field) for name, field in fields.items()}
    # marshal writes every key, a missing attribute as the field's default.
    return {"type": "object", "properties": properties, "required": list(properties)}


def _field_schema(field: Any) -> dict[str, Any]:
    if isinstance(field, Mapping):  # a nested dict of fields: marshal recurses into it
        return _object_schema(field)
    if isinstance(field, type):
        field = field()  # flask-restful accepts a field class and instantiates it
    schema: dict[str, Any]
    if isinstance(field, fr_fields.Nested):
        schema = _object_schema(field.nested)
        return _nullable(schema) if field.allow_null else schema
    if isinstance(field, fr_fields.List):
        schema = {"type": "array", "items": _field_schema(field.container)}
    elif isinstance(field, fr_fields.Integer):
        schema = {"type": "integer"}
    elif isinstance(field, fr_fields.Boolean):
        schema = {"type": "boolean"}
    elif isinstance(field, fr_fields.Float):
        schema = {"type": "number"}
    elif isinstance(field, fr_fields.Arbitrary | fr_fields.Fixed):
        schema = {"type": "string"}  # a decimal number written as text
    elif isinstance(field, fr_fields.DateTime):
        schema = {"type": "string"}
        if field.dt_format == "iso8601":
            schema["format"] = "date-time"
    elif isinstance(field, fr_fields.Url):
        return {"type": "string", "format": "uri-reference"}  # always built, never null
    elif isinstance(field, fr_fields.FormattedString):
        return {"type": "string"}
    elif isinstance(field, fr_fields.String):
        schema = {"type": "string"}
    else:  # Raw or a custom field: any JSON value
        return {}
    # A field whose attribute is missing or None writes its default, None unless given.
    return _nullable(schema) if field.default is None else schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}
