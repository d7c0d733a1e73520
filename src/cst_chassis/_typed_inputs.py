"""Inputs read through their pydantic types: typed query strings, and JSON Schema's integers.

- :func:`parameters_input` / :func:`parameter_objects`: what ``@with_query(Model)`` and
  ``@with_headers(Model)`` parse from ``request.args`` / ``request.headers`` and what they
  document, one parameter per field of the model.
- :func:`validate_json_body`: ``with_body``'s validation with JSON Schema's number semantics.
  In JSON Schema ``18680.0`` *is* an integer (a number whose fraction is zero), so a body the
  document allows must be accepted; pydantic's strict mode refuses it (and its lax mode would
  also take ``"5"`` and ``true`` for an integer, which the document forbids). The body is
  validated as sent; only when that fails on a whole float given for an integer is it validated
  again with such floats written as integers. ``18680.5`` stays refused.

Needs pydantic (the ``openapi`` extra), like the decorators that use it.
"""

from __future__ import annotations

import collections.abc
import json
import types
import typing
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Literal,
    Protocol,
    TypeVar,
    Union,
    get_args,
    get_origin,
)

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticUndefined, to_jsonable_python

from cst_chassis._inputs import exclude_nul

if TYPE_CHECKING:
    from collections.abc import Callable

    from pydantic.fields import FieldInfo
    from pydantic.json_schema import JsonSchemaValue
    from pydantic_core import core_schema

__all__ = [
    "NulFreeStrings",
    "Parameter",
    "ParameterLocation",
    "model_parameters",
    "parameter_objects",
    "parameters_input",
    "validate_json_body",
]

T = TypeVar("T")

# Field types read from a repeated parameter (``?tag=a&tag=b``).
_SEQUENCES: frozenset[object] = frozenset(
    {list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Set}
)
# A whole float above this is left a float: its integer would be huge (1e400000 is "integral").
_INTEGRAL_DIGITS = 40
_INTEGER_ERRORS = frozenset({"int_type", "int_from_float"})


def validate_json_body(adapter: TypeAdapter[T], raw: bytes | str) -> T:
    """``adapter.validate_json(raw)``, accepting ``18680.0`` where an integer is expected.

    Raises the ``ValidationError`` of the body as sent when the retry does not help.
    """
    try:
        return adapter.validate_json(raw)
    except ValidationError as exc:
        if not _refused_a_whole_float(exc):
            raise
        try:
            rewritten = json.dumps(json.loads(raw, parse_float=_integral_as_int))
        except (ValueError, RecursionError):
            raise exc from None
        try:
            return adapter.validate_json(rewritten)
        except ValidationError:
            raise exc from None


def _refused_a_whole_float(exc: ValidationError) -> bool:
    for error in exc.errors(include_url=False, include_context=False):
        value = error.get("input")
        if error["type"] in _INTEGER_ERRORS and isinstance(value, float) and value.is_integer():
            return True
    return False


def _integral_as_int(text: str) -> int | float:
    try:
        number = Decimal(text)
    except InvalidOperation:  # pragma: no cover  # json only hands over valid number text
        return float(text)
    if number.is_finite() and number.adjusted() < _INTEGRAL_DIGITS and number % 1 == 0:
        return int(number)
    return float(text)


ParameterLocation = Literal["query", "header"]


class Parameter(typing.NamedTuple):
    """One field of a parameter model: its name in the request, its key in the model's input
    (the alias, else the field name), and whether it repeats (``?a=1&a=2``)."""

    name: str
    key: str
    repeated: bool


def model_parameters(model: type[BaseModel], location: ParameterLocation) -> dict[str, Parameter]:
    """The parameters of ``model``, by field name.

    A query parameter is named by the field's alias, else its name; a header by the alias, else
    the name with ``_`` written ``-`` (``x_priority`` reads ``X-Priority``; header names are
    case-insensitive).
    """
    parameters = {}
    for name, field in model.model_fields.items():
        key = field.alias if isinstance(field.alias, str) else name
        request_name = key
        if key == name and location == "header":
            request_name = "-".join(part.capitalize() for part in name.split("_"))
        parameters[name] = Parameter(request_name, key, _is_sequence(field.annotation))
    return parameters


def _is_sequence(annotation: object) -> bool:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _is_sequence(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return any(_is_sequence(arg) for arg in get_args(annotation) if arg is not type(None))
    return (origin or annotation) in _SEQUENCES


class _ParameterSource(Protocol):
    def get(self, key: str) -> str | None: ...
    def getlist(self, key: str) -> list[str]: ...


def parameters_input(
    adapter: TypeAdapter[T], parameters: Mapping[str, Parameter], source: _ParameterSource
) -> T:
    """Validate the parameters found in ``source`` (``request.args`` or ``request.headers``).

    Only the model's parameters are read (pagination's ``offset``/``limit``, reqparse's own
    arguments and unknown ones are left alone); a repeated field takes every value, another one
    the first. Values are text, so they are converted as pydantic's lax mode converts text
    (``"5"`` for an ``int``, ``"true"`` for a ``bool``), also for a strict model. Raises
    ``ValidationError`` with one error per bad parameter, ``loc`` starting with its key.
    """
    values: dict[str, Any] = {}
    for name, key, repeated in parameters.values():
        if repeated:
            found = source.getlist(name)
            if found:
                values[key] = found
        elif (value := source.get(name)) is not None:
            values[key] = value
    return adapter.validate_python(values, strict=False)


def parameter_objects(
    model: type[BaseModel],
    location: ParameterLocation,
    schema_of: Callable[[Any], dict[str, Any]],
) -> list[dict[str, Any]]:
    """OpenAPI parameter objects (``in: query`` or ``header``) for ``model``'s fields.

    ``schema_of(annotation)`` returns the (validation) schema slot the document fills in.
    """
    parameters: list[dict[str, Any]] = []
    fields = model_parameters(model, location)
    for name, info in model.model_fields.items():
        parameter_name, _, repeated = fields[name]
        schema = _field_schema(info, schema_of)
        parameter: dict[str, Any] = {"name": parameter_name, "in": location, "schema": schema}
        if info.is_required():
            parameter["required"] = True
        if info.description:
            parameter["description"] = info.description
        if repeated and location == "query":
            parameter.update(style="form", explode=True)
        parameters.append(parameter)
    return parameters


def _field_schema(info: FieldInfo, schema_of: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    # The field's type with its constraints (ge, max_length, pattern...); not the FieldInfo
    # itself, whose alias pydantic only honours on a model field.
    # An absent parameter is the None of ``X | None``: a query string cannot spell null, so the
    # document shows X alone (else a client could be told that ``?colour=`` means None).
    annotation: Any = _without_none(info.annotation)
    if info.metadata:
        annotation = Annotated[(annotation, *info.metadata)]
    schema = schema_of(annotation)
    # Filled in later by the document builder; these keys are kept (update() adds to them).
    if info.default not in (PydanticUndefined, None) and info.default_factory is None:
        schema["default"] = to_jsonable_python(info.default)
    return schema


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) is Union or get_origin(annotation) is types.UnionType:
        kept = tuple(arg for arg in get_args(annotation) if arg is not type(None))
        if len(kept) == 1:
            return kept[0]
        return Union[kept]  # noqa: UP007  # built from a tuple at run time
    return annotation


class NulFreeStrings(GenerateJsonSchema):
    """pydantic's schema generator, saying of input strings that they hold no NUL.

    Used for the document when ``CST_REFUSE_NUL`` is on: request bodies and typed query
    parameters (validation mode) then show :data:`~cst_chassis._inputs.NUL_FREE_PATTERN`;
    responses (serialization mode) are described as before.
    """

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        json_schema = super().str_schema(schema)
        if self.mode == "validation":
            exclude_nul(json_schema)
        return json_schema
