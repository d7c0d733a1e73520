from collections import OrderedDict as OrderedDict
from typing import Any, TypeVar, overload

_D = TypeVar("_D")
_C = TypeVar("_C")
_H = TypeVar("_H")

PY3: bool

def http_status_message(code: int) -> str: ...

# ``(data, code, headers)`` from a view's return value; missing parts are ``200`` and ``{}``.
# The ignores: a 2- or 3-tuple statically typed as a plain ``_D`` (e.g. ``object``) would get
# the last overload's shape; mypy cannot express "not a tuple" to rule that out.
@overload
def unpack(value: tuple[_D, _C, _H]) -> tuple[_D, _C, _H]: ...  # type: ignore[overload-overlap]
@overload
def unpack(value: tuple[_D, _C]) -> tuple[_D, _C, dict[str, str]]: ...  # type: ignore[overload-overlap]
@overload
def unpack(value: tuple[Any, ...]) -> tuple[Any, Any, Any]: ...
@overload
def unpack(value: _D) -> tuple[_D, int, dict[str, str]]: ...
