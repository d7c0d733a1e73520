from collections.abc import Callable, Collection, MutableMapping, Sequence
from typing import Any, Generic, Literal, Self, TypeAlias, overload

from flask import Request
from typing_extensions import TypeVar

class Namespace(dict[str, Any]):
    def __getattr__(self, name: str) -> Any: ...
    def __setattr__(self, name: str, value: Any) -> None: ...

# ``Argument.convert`` tries ``type(value, name, op)``, then ``type(value, name)``, then
# ``type(value)``; ``value`` is whatever the request held (str, JSON value, FileStorage...).
_ArgumentType: TypeAlias = (
    Callable[[Any], Any] | Callable[[Any, str], Any] | Callable[[Any, str, str], Any]
)
_Action: TypeAlias = Literal["store", "append"]

def text_type(x: object) -> str: ...

class Argument:
    name: str
    default: Any
    dest: str | None
    required: bool
    ignore: bool
    location: str | Sequence[str]
    type: _ArgumentType
    choices: Collection[Any]
    action: _Action
    help: str | None
    case_sensitive: bool
    operators: Sequence[str]
    store_missing: bool
    trim: bool
    nullable: bool
    def __init__(
        self,
        name: str,
        default: Any = None,
        dest: str | None = None,
        required: bool = False,
        ignore: bool = False,
        type: _ArgumentType = ...,
        location: str | Sequence[str] = ("json", "values"),
        choices: Collection[Any] = (),
        action: _Action = "store",
        help: str | None = None,
        operators: Sequence[str] = ("=",),
        case_sensitive: bool = True,
        store_missing: bool = True,
        trim: bool = False,
        nullable: bool = True,
    ) -> None: ...
    # The attribute(s) of ``request`` named by ``location``: a MultiDict, the JSON body, ...
    def source(self, request: Request) -> Any: ...
    def convert(self, value: Any, op: str) -> Any: ...
    # Aborts with 400 unless errors are bundled.
    def handle_validation_error(
        self, error: Exception, bundle_errors: bool
    ) -> tuple[Exception, dict[str, str]]: ...
    def parse(
        self, request: Request, bundle_errors: bool = False
    ) -> tuple[Any, bool] | tuple[Exception, dict[str, str]]: ...

_NamespaceT = TypeVar("_NamespaceT", bound=MutableMapping[str, Any], default=Namespace)

class RequestParser(Generic[_NamespaceT]):
    args: list[Argument]
    argument_class: type[Argument]
    namespace_class: type[_NamespaceT]
    trim: bool
    bundle_errors: bool
    @overload
    def __init__(
        self: RequestParser[Namespace],
        argument_class: type[Argument] = ...,
        *,
        trim: bool = False,
        bundle_errors: bool = False,
    ) -> None: ...
    @overload
    def __init__(
        self,
        argument_class: type[Argument],
        namespace_class: type[_NamespaceT],
        trim: bool = False,
        bundle_errors: bool = False,
    ) -> None: ...
    @overload
    def __init__(
        self,
        argument_class: type[Argument] = ...,
        *,
        namespace_class: type[_NamespaceT],
        trim: bool = False,
        bundle_errors: bool = False,
    ) -> None: ...
    @overload
    def add_argument(self, argument: Argument, /) -> Self: ...
    @overload
    def add_argument(
        self,
        name: str,
        default: Any = None,
        dest: str | None = None,
        required: bool = False,
        ignore: bool = False,
        type: _ArgumentType = ...,
        location: str | Sequence[str] = ("json", "values"),
        choices: Collection[Any] = (),
        action: _Action = "store",
        help: str | None = None,
        operators: Sequence[str] = ("=",),
        case_sensitive: bool = True,
        store_missing: bool = True,
        trim: bool = False,
        nullable: bool = True,
    ) -> Self: ...
    def parse_args(
        self, req: Request | None = None, strict: bool = False, http_error_code: int = 400
    ) -> _NamespaceT: ...
    def copy(self) -> Self: ...
    def replace_argument(
        self,
        name: str,
        default: Any = None,
        dest: str | None = None,
        required: bool = False,
        ignore: bool = False,
        type: _ArgumentType = ...,
        location: str | Sequence[str] = ("json", "values"),
        choices: Collection[Any] = (),
        action: _Action = "store",
        help: str | None = None,
        operators: Sequence[str] = ("=",),
        case_sensitive: bool = True,
        store_missing: bool = True,
        trim: bool = False,
        nullable: bool = True,
    ) -> Self: ...
    def remove_argument(self, name: str) -> Self: ...
