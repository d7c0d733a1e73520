"""Inputs bounded at the app's edge: integer path parameters and text a database cannot store.

A value the OpenAPI document allows must not reach the database and fail there as a 500. Two
holes are closed here for every route of the app, whoever registered it:

- **Integer path parameters** (``<int:id>``) are bounded to the 64-bit signed range unless the
  rule declares its own bounds: ``<int:id>`` accepts ``0..2**63-1``, ``<int(signed=True):n>``
  ``-2**63..2**63-1``. For a PostgreSQL ``integer`` (32-bit) column use ``<int32:id>`` (and
  ``<int32(signed=True):n>``), or Werkzeug's own ``<int(max=2147483647):id>``. A value out of
  range is a **404**, like ``/items/-1`` or ``/items/abc``: the path names no resource that can
  exist, and the rule simply does not match (another rule may). The document shows each bound
  (``minimum``/``maximum``).
- **NUL characters** (``\\u0000``), which PostgreSQL refuses in ``text`` and ``varchar``, are
  refused with a 400 whose error item names the parameter (``path``) in path parameters
  (``<name>``, ``<path:p>``), in the query string (``request.args``, hence reqparse and
  ``with_query``) and in JSON bodies (``request.get_json()``, reqparse, ``with_body``).
  ``CST_REFUSE_NUL=false`` turns that off for a service that stores binary-safe text.

``init_app`` calls :func:`install_input_bounds`; rules added before it are upgraded in place.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from werkzeug.exceptions import BadRequest
from werkzeug.routing import (
    IntegerConverter,
    Map,
    PathConverter,
    UnicodeConverter,
    ValidationError,
)
from werkzeug.utils import cached_property

if TYPE_CHECKING:
    from flask import Flask, Request
    from werkzeug.datastructures import MultiDict
    from werkzeug.routing import BaseConverter

    from cst_chassis.config import ChassisConfig

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "INT64_MAX",
    "INT64_MIN",
    "NUL_FREE_PATTERN",
    "NUL_MESSAGE",
    "BoundedIntegerConverter",
    "Int32Converter",
    "NulRefusingRequestMixin",
    "exclude_nul",
    "install_input_bounds",
    "nul_error",
    "nul_path",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
NUL_MESSAGE = "must not contain NUL characters (\\u0000)"
NUL_FREE_PATTERN = "^[^\\u0000]*$"
"""What the document says of every string the chassis refuses NUL in (``CST_REFUSE_NUL``)."""

# How JSON writes NUL: a raw control character is invalid JSON, so this escape is the only way
# (``\\u0000`` is a backslash followed by text, a false alarm settled by the walk below).
_NUL_ESCAPE = b"\\u0000"


class BoundedIntegerConverter(IntegerConverter):
    """``<int:...>`` bounded to the 64-bit signed range unless the rule declares a bound.

    Declared ``min``/``max`` win; an undeclared ``max`` is ``2**63 - 1``, an undeclared ``min``
    ``0`` (or ``-2**63`` with ``signed=True``). Out of range: the rule does not match (404).
    """

    default_min = INT64_MIN
    default_max = INT64_MAX

    def __init__(
        self,
        map: Map,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = None,
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits, min, max, signed)
        _bound(self, self.default_min, self.default_max)

    def to_python(self, value: str) -> Any:
        # Digits past the bounds' are out of range without converting them: int() of 5,000
        # digits raises ValueError, which Werkzeug 2.3 does not catch (a 500).
        if len(value.lstrip("-").lstrip("0")) > _digits(self):
            raise ValidationError()
        return super().to_python(value)


class Int32Converter(BoundedIntegerConverter):
    """``<int32:id>``: an id for a 32-bit ``integer`` column (``0..2**31-1``; signed: from
    ``-2**31``). Register nothing: ``init_app`` adds it to the app's converters."""

    default_min = INT32_MIN
    default_max = INT32_MAX


def _bound(converter: IntegerConverter, lowest: int, highest: int) -> None:
    if converter.max is None:
        converter.max = highest
    if converter.min is None:
        converter.min = lowest if converter.signed else 0


def _digits(converter: IntegerConverter) -> int:
    return max(
        len(str(abs(bound))) for bound in (converter.min, converter.max) if bound is not None
    )


class _NulRefusingMixin:
    """``to_python`` of a text converter that refuses NUL with a 400 naming the parameter."""

    map: Map

    def to_python(self, value: str) -> Any:
        if "\x00" in value:
            raise nul_error(_variable_name(self.map, self) or "path")
        return super().to_python(value)  # type: ignore[misc]  # mixed into a BaseConverter


class NulRefusingUnicodeConverter(_NulRefusingMixin, UnicodeConverter):
    """Werkzeug's ``default``/``string`` converter, refusing NUL (400 naming the parameter)."""


class NulRefusingPathConverter(_NulRefusingMixin, PathConverter):
    """Werkzeug's ``path`` converter, refusing NUL (400 naming the parameter)."""


def _variable_name(url_map: Map, converter: object) -> str | None:
    # Only on the error path: a converter is not told which argument it converts.
    for rule in url_map.iter_rules():
        converters: dict[str, BaseConverter] = getattr(rule, "_converters", {})
        for name, candidate in converters.items():
            if candidate is converter:
                return name
    return None


def exclude_nul(schema: dict[str, Any]) -> None:
    """Add :data:`NUL_FREE_PATTERN` to a JSON Schema for text (in place), or to its items.

    A schema-valid request must be accepted: where NUL is refused, the document says so (a
    client, or schemathesis, then never takes ``"a\\u0000b"`` for valid). A string with a
    ``pattern`` of its own gets the second one under ``allOf``; ``format``/``enum`` strings and
    other types are left alone (a UUID or a choice cannot hold NUL anyway).
    """
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        exclude_nul(schema["items"])
    if schema.get("type") != "string" or "enum" in schema or "format" in schema:
        return
    if "pattern" not in schema:
        schema["pattern"] = NUL_FREE_PATTERN
    elif schema["pattern"] != NUL_FREE_PATTERN:
        schema.setdefault("allOf", []).append({"pattern": NUL_FREE_PATTERN})


def nul_error(path: str) -> BadRequest:
    """The 400 for NUL in ``path`` (a parameter name, or a dotted body location)."""
    error = BadRequest(f"{path} {NUL_MESSAGE}")
    # flask-restful's convention for error details, read by cst_chassis._error_handling.
    error.data = {"message": f"{path} {NUL_MESSAGE}", "path": path}  # type: ignore[attr-defined]  # flask-restful's attribute
    return error


def nul_path(raw: bytes) -> str | None:
    """Where the JSON text ``raw`` holds a string (value or key) with NUL, else ``None``.

    The location is dotted like the body errors of ``with_body`` (``items.0.name``; ``body``
    for the document itself). Costs a byte search unless ``raw`` contains ``\\u0000``; JSON that
    does not parse is left to the parser that will report it (``None``).
    """
    if _NUL_ESCAPE not in raw:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return _find_nul(value, ())


def _find_nul(value: object, location: tuple[str, ...]) -> str | None:
    if isinstance(value, str):
        return (".".join(location) or "body") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return ".".join(location) or "body"
            found = _find_nul(item, (*location, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_nul(item, (*location, str(index)))
            if found is not None:
                return found
    return None


class NulRefusingRequestMixin:
    """Mixed into the app's request class when ``CST_REFUSE_NUL`` is on (the default).

    ``request.args`` and ``request.get_json()`` raise a 400 naming the parameter or body field
    that holds NUL; resources answer it as an envelope.
    """

    @cached_property
    def args(self) -> MultiDict[str, str]:
        args: MultiDict[str, str] = super().args  # type: ignore[misc]  # mixed into a flask.Request
        query: bytes = self.query_string  # type: ignore[attr-defined]  # as above
        if b"%00" in query or b"\x00" in query:
            for name, value in args.items(multi=True):
                if "\x00" in name or "\x00" in value:
                    # Werkzeug cached the parsed args under the same name: a second read must
                    # refuse too.
                    self.__dict__.pop("args", None)
                    raise nul_error(name if "\x00" not in name else "query")
        return args

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        value = super().get_json(force=force, silent=silent, cache=cache)  # type: ignore[misc]  # as above
        if value is not None:
            request: Request = self  # type: ignore[assignment]  # as above
            raw = request.get_data(cache=True)
            location = nul_path(raw) if raw else _find_nul(value, ())
            if location is not None:
                if silent:
                    return None
                raise nul_error(location)
        return value


def install_input_bounds(app: Flask, config: ChassisConfig) -> None:
    """Bound integer path parameters and (``CST_REFUSE_NUL``) refuse NUL on ``app``.

    Called by ``init_app``. Registers ``int`` (bounded) and ``int32`` converters, and with
    ``CST_REFUSE_NUL`` on the NUL-refusing ``default``/``string``/``path`` converters and
    request class. Rules already on the app are upgraded in place.
    """
    converters = app.url_map.converters
    converters["int"] = BoundedIntegerConverter
    converters["int32"] = Int32Converter
    if config.refuse_nul:
        converters["default"] = converters["string"] = NulRefusingUnicodeConverter
        converters["path"] = NulRefusingPathConverter
        if not issubclass(app.request_class, NulRefusingRequestMixin):
            request_class = type("ChassisRequest", (NulRefusingRequestMixin, app.request_class), {})
            app.request_class = cast("type[Request]", request_class)
    for rule in app.url_map.iter_rules():
        _upgrade_rule_converters(getattr(rule, "_converters", {}), config.refuse_nul)


def _upgrade_rule_converters(converters: dict[str, BaseConverter], refuse_nul: bool) -> None:
    # A rule compiled before init_app holds Werkzeug's converter objects; the matcher reads them
    # from this dict at each match, so swapping or re-bounding them here is enough (the regex,
    # compiled into the matcher, is the same for each replacement).
    for name, converter in converters.items():
        kind = type(converter)
        if kind is IntegerConverter:
            assert isinstance(converter, IntegerConverter)
            _bound(converter, INT64_MIN, INT64_MAX)
            bounded = object.__new__(BoundedIntegerConverter)
            bounded.__dict__.update(converter.__dict__)
            converters[name] = bounded
        elif refuse_nul and kind in (UnicodeConverter, PathConverter):
            refusing: type[BaseConverter] = (
                NulRefusingUnicodeConverter
                if kind is UnicodeConverter
                else NulRefusingPathConverter
            )
            upgraded = object.__new__(refusing)
            upgraded.__dict__.update(converter.__dict__)
            converters[name] = upgraded
