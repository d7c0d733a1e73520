"""JSON Schemas for the document: pydantic's, and the few the chassis writes (converters, reqparse).

:func:`type_adapter` makes any annotation pydantic-ready (``typing.TypedDict`` on Python 3.11
included); ``_Schemas`` collects the types one document needs and has pydantic describe them in one
call; ``_converter_schema`` and ``_argument_schema`` describe a rule's converters and a reqparse
argument, which pydantic knows nothing of.
"""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, get_args, get_origin, get_type_hints

import typing_extensions
from flask_restful import inputs, reqparse
from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema
from werkzeug.routing import (
    AnyConverter,
    BaseConverter,
    FloatConverter,
    IntegerConverter,
    PathConverter,
    UUIDConverter,
)

from cst_chassis.errors import ChassisError

if TYPE_CHECKING:
    from pydantic.json_schema import JsonSchemaMode

__all__ = ["OpenAPIError", "type_adapter"]

T = TypeVar("T")

_REF_TEMPLATE = "#/components/schemas/{model}"


class OpenAPIError(ChassisError, TypeError):
    """A resource cannot be described (an annotation that does not resolve, for instance)."""


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

    def __init__(self, schema_generator: type[GenerateJsonSchema] = GenerateJsonSchema) -> None:
        self._slots: list[tuple[dict[str, Any], JsonSchemaMode, TypeAdapter[Any]]] = []
        self._adapters: dict[object, TypeAdapter[Any]] = {}
        # NulFreeStrings when CST_REFUSE_NUL is on (cst_chassis._typed_inputs).
        self._schema_generator = schema_generator

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
        schemas, definitions = TypeAdapter.json_schemas(
            inputs_, ref_template=_REF_TEMPLATE, schema_generator=self._schema_generator
        )
        for index, (slot, mode, _) in enumerate(self._slots):
            slot.update(schemas[index, mode])
        return dict(sorted(definitions.get("$defs", {}).items()))


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


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
