from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypeAlias

__all__ = [
    "Arbitrary",
    "Boolean",
    "DateTime",
    "Fixed",
    "Float",
    "FormattedString",
    "Integer",
    "List",
    "Nested",
    "Price",
    "Raw",
    "String",
    "Url",
]

# A key or ``attribute``: a dotted path, a list index, or a function of the object.
_Key: TypeAlias = str | int | Callable[[Any], Any]
# A marshalling spec: field name -> field class, field instance or nested spec.
# (Nested specs must be real ``dict``s at runtime; ``Mapping`` keeps literals assignable.)
_Fields: TypeAlias = Mapping[str, type[Raw] | Raw | _Fields]

class MarshallingException(Exception):
    def __init__(self, underlying_exception: Exception | str) -> None: ...

def is_indexable_but_not_string(obj: object) -> bool: ...
def get_value(key: _Key, obj: Any, default: Any = None) -> Any: ...
def to_marshallable_type(obj: Any) -> Any: ...

class Raw:
    attribute: str | Callable[[Any], Any] | None
    default: Any
    # ``attribute`` is keyword-only here although ``Raw`` itself accepts it positionally: the
    # subclasses (``Integer``, ``DateTime``, ...) take it by keyword only, and a base constructor
    # that accepts more than theirs makes ``type[Integer]`` incompatible with ``type[Raw]``, so
    # the everyday ``{"id": fields.Integer, "name": fields.String}`` failed under --strict.
    def __init__(
        self, default: Any = None, *, attribute: str | Callable[[Any], Any] | None = None
    ) -> None: ...
    def format(self, value: Any) -> Any: ...
    # ``key`` is the field name, or the item index when used inside ``List``.
    def output(self, key: str | int, obj: Any) -> Any: ...

class Nested(Raw):
    nested: _Fields
    allow_null: bool
    def __init__(
        self,
        nested: _Fields,
        allow_null: bool = False,
        *,
        default: Any = None,
        attribute: str | Callable[[Any], Any] | None = None,
    ) -> None: ...

class List(Raw):
    container: Raw
    def __init__(
        self,
        cls_or_instance: Raw | type[Raw],
        *,
        default: Any = None,
        attribute: str | Callable[[Any], Any] | None = None,
    ) -> None: ...
    def format(self, value: Iterable[Any]) -> list[Any]: ...
    def output(self, key: str | int, data: Any) -> Any: ...

class String(Raw):
    def format(self, value: object) -> str: ...

class Integer(Raw):
    def __init__(
        self, default: int | None = 0, *, attribute: str | Callable[[Any], Any] | None = None
    ) -> None: ...
    def format(self, value: Any) -> int | None: ...

class Boolean(Raw):
    def format(self, value: object) -> bool: ...

class FormattedString(Raw):
    src_str: str
    def __init__(self, src_str: str) -> None: ...
    def output(self, key: str | int, obj: Any) -> str: ...

class Url(Raw):
    endpoint: str | None
    absolute: bool
    scheme: str | None
    def __init__(
        self,
        endpoint: str | None = None,
        absolute: bool = False,
        scheme: str | None = None,
        *,
        default: Any = None,
        attribute: str | Callable[[Any], Any] | None = None,
    ) -> None: ...
    def output(self, key: str | int, obj: Any) -> str: ...

class Float(Raw):
    def format(self, value: Any) -> float: ...

class Arbitrary(Raw):
    def format(self, value: Any) -> str: ...

class DateTime(Raw):
    dt_format: str
    def __init__(
        self,
        dt_format: Literal["rfc822", "iso8601"] = "rfc822",
        *,
        default: Any = None,
        attribute: str | Callable[[Any], Any] | None = None,
    ) -> None: ...
    def format(self, value: datetime) -> str: ...

ZERO: Decimal

class Fixed(Raw):
    precision: Decimal
    def __init__(
        self,
        decimals: int = 5,
        *,
        default: Any = None,
        attribute: str | Callable[[Any], Any] | None = None,
    ) -> None: ...
    def format(self, value: Any) -> str: ...

Price = Fixed
