"""Responses written from the method's return annotation, by pydantic-core (the ``openapi`` extra).

``ApiResource`` builds one :class:`ResponseSerializer` per method when its class is registered
(``serializers_for``), for each method whose body annotation is not plain JSON (see
:mod:`cst_chassis.openapi._returns`): a model, a dataclass, a ``TypedDict``, ``datetime``,
``UUID``, ``Decimal``, an ``Enum``, ``Page[T]``, and anything nesting them. Per request, the
returned value is validated against the annotation (``from_attributes``: an ORM object fits a
model that allows it), then the whole envelope is written to bytes by pydantic-core in one call.
Only the annotated fields are written: a subclass carrying a ``password_hash`` where its base is
annotated sends the base's fields.

A value that does not fit raises :class:`ResponseTypeError`, which the resource answers as any
unhandled exception (500, logged with the route and the traceback); its message names the field
paths and pydantic's error types, never the value.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from pydantic import PydanticUserError, TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError
from typing_extensions import TypedDict

from cst_chassis.errors import ChassisError
from cst_chassis.openapi._returns import (
    NO_BODY,
    is_plain,
    marshal_of,
    return_annotation,
    success_bodies,
)
from cst_chassis.openapi.schemas import OpenAPIError, _pydantic_compatible
from cst_chassis.pagination.page import Page

__all__ = ["ResponseSerializer", "ResponseTypeError", "serializers_for"]

logger: logging.Logger = logging.getLogger("cst_chassis")

# At most this many problems are named in the log line of a value that does not fit.
_MAX_REPORTED = 10
# pydantic's serializer warnings name the field and the expected type, then the value: keep the
# first two only.
_EXPECTED = re.compile(r"Expected `([^`]*)`")
_FIELD = re.compile(r"field_name='([^']*)'")


class ResponseTypeError(ChassisError, TypeError):
    """A method returned a value that does not fit its return annotation (answered as a 500)."""


class ResponseSerializer:
    """Validates and writes one method's success body; built once, when the class is registered."""

    __slots__ = ("_data", "_envelope", "where")

    def __init__(self, body: Any, where: str) -> None:
        self.where = where
        compatible = _pydantic_compatible(body, {})
        self._data: TypeAdapter[Any] = TypeAdapter(compatible)
        # The functional form: the data key's type is only known at run time.
        make_typeddict: Any = TypedDict
        envelope = make_typeddict("SuccessEnvelope", {"meta": Any, "data": compatible})
        self._envelope: TypeAdapter[Any] = TypeAdapter(envelope)

    def validate(self, value: Any) -> Any:
        """``value`` as the annotated type, or :class:`ResponseTypeError` naming what is wrong."""
        if isinstance(value, Page):
            value = value.items
        try:
            return self._data.validate_python(value, from_attributes=True)
        except ValidationError as exc:
            problems = exc.errors(include_url=False, include_context=False, include_input=False)
            described = "; ".join(
                f"{'.'.join(str(part) for part in problem['loc']) or '(the value)'}: "
                f"{problem['type']}"
                for problem in problems[:_MAX_REPORTED]
            )
            extra = len(problems) - _MAX_REPORTED
            more = f" (and {extra} more)" if extra > 0 else ""
            raise ResponseTypeError(
                f"{self.where} returned a value that does not fit its return annotation: "
                f"{described}{more}"
            ) from None

    def envelope_json(self, envelope: Any, indent: int | None) -> bytes:
        """The envelope (``meta`` and the validated ``data``) as JSON bytes, newline-terminated."""
        try:
            return self._envelope.dump_json(envelope, indent=indent, warnings="error") + b"\n"
        except PydanticSerializationError as exc:
            raise self._unserializable(exc) from None

    def jsonable(self, data: Any) -> Any:
        """The validated ``data`` as JSON-ready Python values (for a non-JSON representation)."""
        try:
            return self._data.dump_python(data, mode="json", warnings="error")
        except PydanticSerializationError as exc:
            raise self._unserializable(exc) from None

    def _unserializable(self, exc: PydanticSerializationError) -> ResponseTypeError:
        # A value validation let through (model_construct, a mutated instance): name the field
        # and the type pydantic expected; its message also holds the value, which is dropped.
        text = str(exc)
        fields = _FIELD.findall(text)
        expected = _EXPECTED.findall(text)
        where = f" at field {', '.join(fields)}" if fields else ""
        what = f": expected {', '.join(expected)}" if expected else ""
        return ResponseTypeError(
            f"{self.where} returned a value that does not serialize as its return annotation"
            f"{where}{what}"
        )


def serializers_for(view_class: type, methods: Iterable[str]) -> dict[str, ResponseSerializer]:
    """One serializer per method of ``methods`` on ``view_class`` whose annotation is not plain.

    Skipped: methods without an annotation or with a plain one, a ``Response``, methods under
    ``marshal_with`` (their ``fields`` shape the output), and annotations that do not resolve
    at registration (a name imported only under ``TYPE_CHECKING``): those are written as
    flask-restful writes them, the last with a warning. Raises :class:`OpenAPIError` naming the
    method when pydantic cannot handle its annotation (a plain class, say).
    """
    serializers: dict[str, ResponseSerializer] = {}
    for method in methods:
        func = getattr(view_class, method, None)
        if func is None or marshal_of(view_class, method, func) is not None:
            continue
        where = f"{view_class.__qualname__}.{method}"
        try:
            annotation = return_annotation(func)
        except Exception as exc:  # NameError, TypeError: anything that stops it resolving
            logger.warning(
                "%s: its return annotation does not resolve (%s: %s); its responses are "
                "written as plain JSON, unchecked",
                where,
                type(exc).__name__,
                exc,
            )
            continue
        # Every status of an annotation has the same body (``tuple[Body, Literal[200, 201]]``).
        body = next(iter(success_bodies(annotation).values()))
        if body is NO_BODY or is_plain(body):
            continue
        try:
            serializers[method] = ResponseSerializer(body, where)
        except (PydanticUserError, TypeError) as exc:  # a type pydantic has no schema for
            raise OpenAPIError(
                f"{where}: pydantic cannot serialize its return annotation {body!r} "
                f"({type(exc).__name__}); annotate a model, dataclass or TypedDict, or shape "
                "the output with flask_restful.marshal_with(fields)"
            ) from exc
    return serializers
