from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn, ParamSpec, Protocol, TypeAlias, TypeVar, overload

from flask import Blueprint, Flask
from flask.blueprints import BlueprintSetupState
from flask.views import MethodView
from flask_restful.fields import Raw, _Fields
from werkzeug.wrappers import Response as ResponseBase

__all__ = ("Api", "Resource", "abort", "marshal", "marshal_with", "marshal_with_field")

_T = TypeVar("_T")
_P = ParamSpec("_P")
_ResourceT = TypeVar("_ResourceT", bound=type[Resource])
_ResponseT = TypeVar("_ResponseT", bound=ResponseBase)
_MappingT = TypeVar("_MappingT", bound=Mapping[Any, Any])
_ListOrTupleT = TypeVar("_ListOrTupleT", bound=list[Any] | tuple[Any, ...])
_DataT = TypeVar("_DataT")

class _Representation(Protocol):
    # ``Api.make_response`` calls a transformer as ``f(data, code, headers)`` or
    # ``f(data, code, headers=headers)``; ``headers`` is whatever a resource returned.
    def __call__(self, data: Any, code: int, /, headers: Any) -> ResponseBase: ...

_RepresentationT = TypeVar("_RepresentationT", bound=_Representation)

_Marshalled: TypeAlias = OrderedDict[str, Any] | list[OrderedDict[str, Any]]

DEFAULT_REPRESENTATIONS: list[tuple[str, _Representation]]

def abort(http_status_code: int, **kwargs: Any) -> NoReturn: ...

class Api:
    representations: OrderedDict[str, _Representation]
    urls: dict[str, Any]
    prefix: str
    default_mediatype: str | None
    decorators: list[Callable[..., Any]]
    catch_all_404s: bool
    serve_challenge_on_401: bool
    url_part_order: str
    errors: Mapping[str, Mapping[str, Any]]
    blueprint_setup: BlueprintSetupState | None
    endpoints: set[str]
    resources: list[tuple[type[Resource], tuple[str, ...], dict[str, Any]]]
    app: Flask | Blueprint | None
    blueprint: Blueprint | None
    def __init__(
        self,
        app: Flask | Blueprint | None = None,
        prefix: str = "",
        default_mediatype: str | None = "application/json",
        decorators: list[Callable[..., Any]] | None = None,
        catch_all_404s: bool = False,
        serve_challenge_on_401: bool = False,
        url_part_order: str = "bae",
        errors: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None: ...
    def init_app(self, app: Flask | Blueprint) -> None: ...
    def owns_endpoint(self, endpoint: str) -> bool: ...
    def error_router(
        self, original_handler: Callable[[Exception], _T], e: Exception
    ) -> ResponseBase | _T: ...
    def handle_error(self, e: Exception) -> ResponseBase: ...
    def mediatypes_method(self) -> Callable[[Any], list[str | None]]: ...
    def add_resource(
        self,
        resource: type[Resource],
        *urls: str,
        endpoint: str | None = None,
        resource_class_args: Sequence[Any] = (),
        resource_class_kwargs: Mapping[str, Any] = ...,
        **kwargs: Any,
    ) -> None: ...
    def resource(
        self,
        *urls: str,
        endpoint: str | None = None,
        resource_class_args: Sequence[Any] = (),
        resource_class_kwargs: Mapping[str, Any] = ...,
        **kwargs: Any,
    ) -> Callable[[_ResourceT], _ResourceT]: ...
    def output(self, resource: Callable[_P, Any]) -> Callable[_P, ResponseBase]: ...
    def url_for(self, resource: type[Resource] | Resource, **values: Any) -> str: ...
    def make_response(
        self, data: Any, *args: Any, fallback_mediatype: str | None = None, **kwargs: Any
    ) -> ResponseBase: ...
    def mediatypes(self) -> list[str]: ...
    def representation(self, mediatype: str) -> Callable[[_RepresentationT], _RepresentationT]: ...
    def unauthorized(self, response: _ResponseT) -> _ResponseT: ...

class Resource(MethodView):
    representations: Mapping[str, Callable[[Any, int, Any], ResponseBase]] | None
    method_decorators: list[Callable[..., Any]] | Mapping[str, list[Callable[..., Any]]]
    # ``endpoint`` and ``mediatypes`` are set on the class by ``Api.add_resource``.
    endpoint: str
    def mediatypes(self) -> list[str | None]: ...
    def dispatch_request(self, *args: Any, **kwargs: Any) -> Any: ...

# ``data`` is typed with TypeVars, not plain types: with plain types, an argument such as
# ``dict[str, Any]`` matches two overloads through different formals, which mypy treats as an
# ambiguity caused by ``Any`` and answers with ``Any``. Plain ``Any`` data gets the first overload.
@overload
def marshal(data: _MappingT, fields: _Fields, envelope: None = None) -> OrderedDict[str, Any]: ...
@overload
def marshal(
    data: _ListOrTupleT, fields: _Fields, envelope: None = None
) -> list[OrderedDict[str, Any]]: ...
@overload
def marshal(data: _DataT, fields: _Fields, envelope: str) -> OrderedDict[str, Any]: ...
@overload
def marshal(data: _DataT, fields: _Fields, envelope: str | None = None) -> _Marshalled: ...

class marshal_with:
    fields: _Fields
    envelope: str | None
    def __init__(self, fields: _Fields, envelope: str | None = None) -> None: ...
    # A tuple result is unpacked as ``(data, code, headers)`` and only ``data`` is marshalled.
    def __call__(
        self, f: Callable[_P, object]
    ) -> Callable[_P, _Marshalled | tuple[_Marshalled, Any, Any]]: ...

class marshal_with_field:
    field: Raw
    def __init__(self, field: Raw | type[Raw]) -> None: ...
    # ``Raw.format`` returns ``Any``: so does the wrapped function.
    def __call__(self, f: Callable[_P, object]) -> Callable[_P, Any]: ...
