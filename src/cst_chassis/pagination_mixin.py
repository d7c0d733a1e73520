"""``ApiPaginatedMixin``: offset/limit or keyset pagination for ``ApiResource``, with links.

The mixin works through ``ApiResource``'s two hooks: ``_before_method`` reads the pagination
parameters from the query string (a bad value raises
:class:`~cst_chassis.errors.InvalidPaginationError`, which ``ApiResource`` turns into a 400
envelope before the method runs), and ``_extend_meta`` turns the page the method fetched into
``meta.pagination`` and a ``Link`` header. Everything it keeps per request lives on the
resource instance, which flask-restful creates per request.

Each way of paging is a *mode* object (``_OffsetMode``, ``_KeysetMode``) that owns its
parameter parsing, its fetching and its links; a class picks its mode once, when it is
defined, from ``pagination_mode``. The paging itself is :mod:`cst_chassis.pagination`
(Flask-free); this module is the HTTP side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, overload
from urllib.parse import quote, urlencode

from flask import current_app, request
from sqlalchemy.orm import Query, Session, scoped_session
from werkzeug.urls import iri_to_uri

from cst_chassis.errors import ChassisError, InvalidPaginationError, MissingSessionError
from cst_chassis.pagination.cursor import CursorPayload, decode_cursor, scoped_secret
from cst_chassis.pagination.keyset import fetch_keyset, fetch_keyset_async
from cst_chassis.pagination.offset import MAX_OFFSET, paginate, paginate_async, paginate_query
from cst_chassis.pagination.page import Page
from cst_chassis.pagination.secret import cursor_secrets
from cst_chassis.state import get_state

if TYPE_CHECKING:
    from typing import TypeVarTuple

    from sqlalchemy import Select
    from werkzeug.datastructures import MultiDict

    from cst_chassis.config import ChassisConfig
    from cst_chassis.envelope import Meta, PaginationMeta
    from cst_chassis.resources import ApiResource
    from cst_chassis.typing import AsyncSessionLike, SessionLike

    # The mixin is always combined with ApiResource; typing it as one lets mypy check its calls
    # to the hooks it extends. At run time it is a plain mixin (resources.py imports this
    # module, so the real base would be an import cycle).
    _MixinBase = ApiResource
    Ts = TypeVarTuple("Ts")
else:
    _MixinBase = object

__all__ = ["ApiPaginatedMixin"]

T = TypeVar("T")
T2 = TypeVar("T2")
P = TypeVar("P")

# ASCII digits only: str.isdigit() and int() also take "²", "٣", "+5", " 5", "1_0".
_DIGITS = re.compile(r"[0-9]+")
# What may stay as is in a URI (RFC 3986 reserved characters and "%"); anything else left in the
# base URL (Werkzeug 2.3 passes a Host header such as "a>b" through) is percent-encoded, so a
# link can never break out of its <...> in the Link header.
_URI_SAFE = ":/?#[]@!$&'()*+,;=%"


def _parse_natural(text: str, maximum: int) -> int | None:
    """``text`` as an int when it is ASCII digits only, else ``None``.

    Anything above ``maximum`` comes back as ``maximum + 1`` without converting a huge string
    (``int()`` of thousands of digits is slow, and beyond 4300 digits it raises).
    """
    if _DIGITS.fullmatch(text) is None:
        return None
    significant = text.lstrip("0")
    if len(significant) > len(str(maximum)):
        return maximum + 1
    return min(int(significant or "0"), maximum + 1)


def _single(args: MultiDict[str, str], name: str) -> str | None:
    values = args.getlist(name)
    if len(values) > 1:
        raise InvalidPaginationError(name, f"{name} must be given at most once")
    return values[0] if values else None


def _parse_int(
    args: MultiDict[str, str], name: str, default: int, minimum: int, maximum: int
) -> int:
    """Read one integer parameter; a bad value raises an error naming it (never echoing it)."""
    text = _single(args, name)
    if text is None:
        return default
    value = _parse_natural(text, maximum)
    if value is None or not minimum <= value <= maximum:
        raise InvalidPaginationError(name, f"{name} must be an integer from {minimum} to {maximum}")
    return value


def _parse_limit(args: MultiDict[str, str], config: ChassisConfig) -> int:
    return _parse_int(args, "limit", config.default_page_size, 1, config.max_page_size)


class _Mode(Generic[P]):
    """One way of paging: parses its parameters (``P``), fetches a page, makes the links."""

    #: Query-string arguments the links set (every other argument is kept as it came).
    link_args: ClassVar[tuple[str, ...]]

    def parse(self, args: MultiDict[str, str], config: ChassisConfig) -> P:
        raise NotImplementedError

    def fetch(self, params: P, stmt: Select[Any], session: SessionLike) -> Page[Any]:
        raise NotImplementedError

    def fetch_query(self, params: P, query: Query[Any]) -> Page[Any]:
        raise NotImplementedError

    async def fetch_async(
        self, params: P, stmt: Select[Any], session: AsyncSessionLike
    ) -> Page[Any]:
        raise NotImplementedError

    def links(self, page: Page[Any]) -> tuple[str | None, str | None]:
        """The query-string tails (``offset=..&limit=..``) of the next and previous pages."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class _OffsetParams:
    offset: int
    limit: int


@dataclass(frozen=True, slots=True)
class _OffsetMode(_Mode[_OffsetParams]):
    with_total: bool
    link_args: ClassVar[tuple[str, ...]] = ("offset", "limit")

    def parse(self, args: MultiDict[str, str], config: ChassisConfig) -> _OffsetParams:
        offset = _parse_int(args, "offset", 0, 0, MAX_OFFSET)
        return _OffsetParams(offset, _parse_limit(args, config))

    def fetch(self, params: _OffsetParams, stmt: Select[Any], session: SessionLike) -> Page[Any]:
        return paginate(
            session, stmt, offset=params.offset, limit=params.limit, with_total=self.with_total
        )

    def fetch_query(self, params: _OffsetParams, query: Query[Any]) -> Page[Any]:
        return paginate_query(
            query, offset=params.offset, limit=params.limit, with_total=self.with_total
        )

    async def fetch_async(
        self, params: _OffsetParams, stmt: Select[Any], session: AsyncSessionLike
    ) -> Page[Any]:
        page: Page[Any] = await paginate_async(
            session, stmt, offset=params.offset, limit=params.limit, with_total=self.with_total
        )
        return page

    def links(self, page: Page[Any]) -> tuple[str | None, str | None]:
        limit = page.limit
        next_offset, prev_offset = page.next_offset, page.prev_offset
        return (
            None if next_offset is None else f"offset={next_offset}&limit={limit}",
            None if prev_offset is None else f"offset={prev_offset}&limit={limit}",
        )


@dataclass(frozen=True, slots=True)
class _KeysetParams:
    # Verified once, here: the page is fetched without checking the HMAC again.
    position: CursorPayload | None
    limit: int
    secret: bytes


@dataclass(frozen=True, slots=True)
class _KeysetMode(_Mode[_KeysetParams]):
    link_args: ClassVar[tuple[str, ...]] = ("cursor", "limit", "offset")

    def parse(self, args: MultiDict[str, str], config: ChassisConfig) -> _KeysetParams:
        secrets = cursor_secrets(
            config.cursor_secret,
            config.cursor_secret_fallbacks,
            current_app.secret_key,
            current_app.config.get("SECRET_KEY_FALLBACKS"),
        )
        # One key per endpoint (and its URL arguments): a cursor issued by /a does not verify
        # on /b, even when both sort the same way.
        scope = _endpoint_scope()
        secret, *fallbacks = (scoped_secret(key, scope) for key in secrets)
        if "offset" in args:
            raise InvalidPaginationError(
                "offset",
                "offset is not accepted here: this resource pages by cursor (follow the "
                "next/prev links)",
            )
        cursor = _single(args, "cursor")
        position = None
        if cursor is not None:
            # The ordering is checked when the statement is known, in fetch.
            position = decode_cursor(
                cursor, secret, ordering=None, fallbacks=fallbacks, max_age=config.cursor_max_age
            )
        return _KeysetParams(position, _parse_limit(args, config), secret)

    def fetch(self, params: _KeysetParams, stmt: Select[Any], session: SessionLike) -> Page[Any]:
        return fetch_keyset(
            session, stmt, position=params.position, limit=params.limit, secret=params.secret
        )

    def fetch_query(self, params: _KeysetParams, query: Query[Any]) -> Page[Any]:
        # A legacy Query is its select() on its own session.
        stmt: Select[Any] = query.statement  # type: ignore[assignment]  # a Query of entities gives a Select
        return self.fetch(params, stmt, query.session)

    async def fetch_async(
        self, params: _KeysetParams, stmt: Select[Any], session: AsyncSessionLike
    ) -> Page[Any]:
        return await fetch_keyset_async(
            session, stmt, position=params.position, limit=params.limit, secret=params.secret
        )

    def links(self, page: Page[Any]) -> tuple[str | None, str | None]:
        # Cursors are url-safe base64: they go into the link as they are.
        limit = page.limit
        next_cursor, prev_cursor = page.next_cursor, page.prev_cursor
        return (
            None if next_cursor is None else f"cursor={next_cursor}&limit={limit}",
            None if prev_cursor is None else f"cursor={prev_cursor}&limit={limit}",
        )


def _endpoint_scope() -> str:
    """The current endpoint and its URL arguments, e.g. ``orders?user_id=7``."""
    endpoint = request.endpoint or ""
    view_args = request.view_args
    if not view_args:
        return endpoint
    return endpoint + "?" + urlencode(sorted((k, str(v)) for k, v in view_args.items()))


def _link_prefix(replaced: tuple[str, ...]) -> str:
    """This request's URL up to where the pagination arguments go: ``...?kept&`` or ``...?``.

    Every argument not named in ``replaced`` is kept, repeated keys included, in its order,
    URL-encoded; the caller appends its own (already URL-safe) arguments. Scheme, host and
    prefix come from the request, so the links are right behind ``ProxyFix``.
    """
    base = quote(iri_to_uri(request.base_url), safe=_URI_SAFE)
    kept = [(k, v) for k, v in request.args.items(multi=True) if k not in replaced]
    return f"{base}?{urlencode(kept)}&" if kept else f"{base}?"


class ApiPaginatedMixin(_MixinBase):
    """Pagination for an ``ApiResource``: ``class X(ApiPaginatedMixin, ApiResource)``.

    In a method, :meth:`get_paginated_query_result` (or the ``_async`` variant) fetches the page
    the query string asks for; the response's ``meta.pagination`` then carries ``next`` and
    ``prev`` links (``null`` at either end) and a ``Link`` header (RFC 8288) repeats them.

    Query string: ``offset`` (ASCII digits, ``0..2**53``, default 0) and ``limit`` (ASCII digits,
    ``1..CST_API_MAX_PAGE_SIZE``, default ``CST_API_DEFAULT_PAGE_SIZE``), each at most once. A
    bad value gives a 400 envelope whose error names ``"offset"`` or ``"limit"`` in ``path``;
    the method is not called. They are checked for every HTTP method of the resource.

    Class attributes (read once, when the class is defined):

    - ``pagination_with_total = True`` adds ``meta.pagination.total`` (one ``COUNT`` query).
    - ``pagination_mode = "keyset"`` pages by cursor instead (:mod:`cst_chassis.keyset`): the
      query string takes ``cursor`` and ``limit`` (``offset`` is a 400), the links carry the
      cursor, a bad cursor is a 400 with ``path: "cursor"``, and there is no total. Cursors are
      signed with ``CST_CURSOR_SECRET``, else the app's ``SECRET_KEY`` (at least 16 bytes;
      checked at start-up: at ``init_app`` and when the resource is registered); cursors
      signed with ``CST_CURSOR_SECRET_FALLBACKS`` still verify; with ``CST_CURSOR_MAX_AGE``
      older cursors are a 400; a cursor verifies only on the endpoint (with the same URL
      arguments) that issued it.
    - ``pagination_cache_control`` (default ``"private"``) is the response's ``Cache-Control``.

    Raises ``TypeError`` at class definition for an unknown mode, keyset with a total,
    ``init_every_request = False``, or the mixin listed after ``ApiResource``.
    """

    pagination_mode: ClassVar[Literal["offset", "keyset"]] = "offset"
    pagination_with_total: ClassVar[bool] = False
    #: The ``Cache-Control`` of a paginated response. Its links are absolute URLs built from
    #: the request's host, so by default no shared cache may store it (and serve one host's
    #: links to a request for another); ``None`` sends none (then set one in the method).
    pagination_cache_control: ClassVar[str | None] = "private"
    # The mode object, chosen once per class from the two attributes above.
    _paging: ClassVar[_Mode[Any]] = _OffsetMode(with_total=False)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_bases(cls)
        if cls.pagination_mode == "offset":
            cls._paging = _OffsetMode(with_total=cls.pagination_with_total)
        elif cls.pagination_mode == "keyset":
            if cls.pagination_with_total:
                raise TypeError(
                    f"{cls.__qualname__}: keyset pagination has no total; drop "
                    "pagination_with_total or use pagination_mode = 'offset'"
                )
            cls._paging = _KeysetMode()
        else:
            raise TypeError(
                f"{cls.__qualname__}.pagination_mode={cls.pagination_mode!r} is not supported; "
                "use one of ['keyset', 'offset']"
            )
        if getattr(cls, "init_every_request", True) is False:
            # One instance would then serve every request: pages would leak between them.
            raise TypeError(
                f"{cls.__qualname__}: a paginated resource keeps per-request state on its "
                "instance; do not set init_every_request = False"
            )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pagination_request: Any = None
        self._page: Page[Any] | None = None

    # -- fetching ---------------------------------------------------------------------------

    @overload
    def get_paginated_query_result(
        self, query_or_stmt: Query[T], session: SessionLike | None = None
    ) -> Page[T]: ...
    @overload
    def get_paginated_query_result(
        self, query_or_stmt: Select[tuple[T]], session: SessionLike | None = None
    ) -> Page[T]: ...
    @overload
    def get_paginated_query_result(
        self,
        query_or_stmt: Select[T],  # type: ignore[type-var, unused-ignore]  # SQLAlchemy 2.1's form; 2.0 bounds Select's parameter to tuples
        session: SessionLike | None = None,
    ) -> Page[T]: ...
    @overload
    def get_paginated_query_result(
        self,
        query_or_stmt: Select[T, T2, *Ts],  # type: ignore[misc, type-arg, valid-type, unused-ignore]  # SQLAlchemy 2.1's variadic Select; 2.0 has one parameter
        session: SessionLike | None = None,
    ) -> Page[tuple[T, T2, *Ts]]: ...
    def get_paginated_query_result(  # type: ignore[misc, unused-ignore]  # on SQLAlchemy 2.1 Select[Any] is one column; the overloads are the API
        self, query_or_stmt: Query[Any] | Select[Any], session: SessionLike | None = None
    ) -> Page[Any]:
        """Fetch the requested page of a legacy ``Query`` or a ``select()``, for the response.

        A ``Query`` (e.g. Flask-SQLAlchemy's ``Model.query.order_by(...)``) runs on its own
        session, or on ``session`` when given. A ``select()`` runs on ``session``, else on the
        Flask-SQLAlchemy session of ``init_app(app, db)``; with neither it raises
        :class:`MissingSessionError`. Order the query by a unique key so pages do not overlap.
        In keyset mode, a cursor made for another ordering (or with values its columns cannot
        hold) raises :class:`~cst_chassis.errors.InvalidCursorError`: a 400, no query run.
        """
        params = self._current_request()
        if isinstance(query_or_stmt, Query):
            query = query_or_stmt
            if session is not None:
                query = query.with_session(session if isinstance(session, Session) else session())
            page = self._paging.fetch_query(params, query)
        else:
            run_on = session if session is not None else self._default_session()
            page = self._paging.fetch(params, query_or_stmt, run_on)
        self._page = page
        return page

    @overload
    async def get_paginated_query_result_async(
        self, stmt: Select[tuple[T]], session: AsyncSessionLike
    ) -> Page[T]: ...
    @overload
    async def get_paginated_query_result_async(
        self,
        stmt: Select[T],  # type: ignore[type-var, unused-ignore]  # SQLAlchemy 2.1's form; 2.0 bounds Select's parameter to tuples
        session: AsyncSessionLike,
    ) -> Page[T]: ...
    @overload
    async def get_paginated_query_result_async(
        self,
        stmt: Select[T, T2, *Ts],  # type: ignore[misc, type-arg, valid-type, unused-ignore]  # SQLAlchemy 2.1's variadic Select; 2.0 has one parameter
        session: AsyncSessionLike,
    ) -> Page[tuple[T, T2, *Ts]]: ...
    async def get_paginated_query_result_async(  # type: ignore[misc, unused-ignore]  # on SQLAlchemy 2.1 Select[Any] is one column; the overloads are the API
        self, stmt: Select[Any], session: AsyncSessionLike
    ) -> Page[Any]:
        """Fetch the requested page of a ``select()`` on an ``AsyncSession``, for the response.

        Use it from an ``async def`` resource method (it runs on the chassis event loop).
        """
        page = await self._paging.fetch_async(self._current_request(), stmt, session)
        self._page = page
        return page

    def _current_request(self) -> Any:
        params = self._pagination_request
        if params is None:
            raise ChassisError(
                "get_paginated_query_result() runs inside a resource method of a request; "
                "outside one, call cst_chassis.pagination.paginate() or paginate_keyset()"
            )
        return params

    def _default_session(self) -> SessionLike:
        session = getattr(get_state().db, "session", None)
        # Flask-SQLAlchemy is optional: recognise its db.session by what it is.
        if isinstance(session, scoped_session):
            return session
        raise MissingSessionError(
            "get_paginated_query_result(select(...)) has no session to run on: pass "
            "session=..., or call CstMicroChassis().init_app(app, db) with a Flask-SQLAlchemy db"
        )

    # -- ApiResource hooks --------------------------------------------------------------------

    def _before_method(self) -> None:
        super()._before_method()
        self._page = None
        self._pagination_request = None
        self._pagination_request = self._paging.parse(request.args, get_state().config)

    def _extend_meta(self, meta: Meta) -> list[tuple[str, str]] | None:
        headers = super()._extend_meta(meta)
        page = self._page
        if page is None:  # the method did not paginate (e.g. a POST on the same resource)
            return headers
        next_args, prev_args = self._paging.links(page)
        next_url = prev_url = None
        if next_args is not None or prev_args is not None:
            prefix = _link_prefix(self._paging.link_args)
            next_url = None if next_args is None else prefix + next_args
            prev_url = None if prev_args is None else prefix + prev_args
        pagination: PaginationMeta = {"next": next_url, "prev": prev_url}
        if page.total is not None:
            pagination["total"] = page.total
        meta["pagination"] = pagination
        link = ", ".join(
            f'<{url}>; rel="{rel}"'
            for rel, url in (("next", next_url), ("prev", prev_url))
            if url is not None
        )
        if link:
            headers = [*(headers or []), ("Link", link)]
        if self.pagination_cache_control is not None:
            headers = [*(headers or []), ("Cache-Control", self.pagination_cache_control)]
        return headers


def _check_bases(cls: type) -> None:
    """The mixin's hooks must come before ``ApiResource``'s in the MRO, or they never run."""
    mro = cls.__mro__
    mixin_at = mro.index(ApiPaginatedMixin)
    for index, base in enumerate(mro):
        if "dispatch_request" in vars(base) and not issubclass(base, ApiPaginatedMixin):
            if index < mixin_at:
                raise TypeError(
                    f"{cls.__qualname__}: list ApiPaginatedMixin before the resource class "
                    f"({base.__name__}): class {cls.__name__}(ApiPaginatedMixin, {base.__name__})"
                )
            return
