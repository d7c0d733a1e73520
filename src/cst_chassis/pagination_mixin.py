"""``ApiPaginatedMixin``: offset/limit pagination for ``ApiResource``, with the seed's links.

The mixin works through ``ApiResource``'s two hooks: ``_before_method`` reads ``offset`` and
``limit`` from the query string (a bad value is a 400 envelope and the method never runs), and
``_extend_meta`` turns the page the method fetched into ``meta.pagination`` and a ``Link``
header. Everything it keeps lives on the resource instance, which flask-restful creates per
request.

Another mode (keyset, ``pagination_mode = "keyset"``) plugs in at four places, each a small
branch on ``pagination_mode``: ``_SUPPORTED_MODES``; ``_before_method`` (parse ``cursor`` and, with
``_parse_limit``, ``limit``); the two ``get_paginated_query_result*`` methods (fetch); and
``_extend_meta`` (links, built on ``_link_prefix``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, overload
from urllib.parse import quote, urlencode

from flask import current_app, request
from sqlalchemy.orm import Query, Session, scoped_session
from werkzeug.urls import iri_to_uri

from cst_chassis.cursor import MAX_CURSOR_LENGTH, decode_cursor
from cst_chassis.errors import ChassisError, InvalidCursorError, MissingSessionError
from cst_chassis.extension import get_state
from cst_chassis.keyset import paginate_keyset, paginate_keyset_async
from cst_chassis.pagination import (
    MAX_OFFSET,
    AsyncSessionLike,
    Page,
    SessionLike,
    paginate,
    paginate_async,
    paginate_query,
)

if TYPE_CHECKING:
    from sqlalchemy import Select

    from cst_chassis.config import ChassisConfig
    from cst_chassis.envelope import Meta, PaginationMeta
    from cst_chassis.resources import ApiResource

    # The mixin is always combined with ApiResource; typing it as one lets mypy check its calls
    # to add_error and to the hooks it extends. At run time it is a plain mixin (resources.py
    # imports this module, so the real base would be an import cycle).
    _MixinBase = ApiResource
else:
    _MixinBase = object

__all__ = ["ApiPaginatedMixin", "MissingSessionError"]

T = TypeVar("T")

# Modes this module implements.
_SUPPORTED_MODES: frozenset[str] = frozenset({"offset", "keyset"})
# ASCII digits only: str.isdigit() and int() also take "²", "٣", "+5", " 5", "1_0".
_DIGITS = re.compile(r"[0-9]+")
# What may stay as is in a URI (RFC 3986 reserved characters and "%"); anything else left in the
# base URL (Werkzeug 2.3 passes a Host header such as "a>b" through) is percent-encoded, so a
# link can never break out of its <...> in the Link header.
_URI_SAFE = ":/?#[]@!$&'()*+,;=%"


@dataclass(frozen=True, slots=True)
class _OffsetRequest:
    offset: int
    limit: int


@dataclass(frozen=True, slots=True)
class _KeysetRequest:
    cursor: str | None
    limit: int
    secret: bytes


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


class ApiPaginatedMixin(_MixinBase):
    """Offset/limit pagination for an ``ApiResource``: ``class X(ApiPaginatedMixin, ApiResource)``.

    In a method, :meth:`get_paginated_query_result` (or the ``_async`` variant) fetches the page
    the query string asks for; the response's ``meta.pagination`` then carries ``next`` and
    ``prev`` links (``null`` at either end) and a ``Link`` header (RFC 8288) repeats them.

    Query string: ``offset`` (ASCII digits, ``0..2**53``, default 0) and ``limit`` (ASCII digits,
    ``1..CST_API_MAX_PAGE_SIZE``, default ``CST_API_DEFAULT_PAGE_SIZE``), each at most once. A
    bad value gives a 400 envelope whose errors name ``"offset"`` or ``"limit"`` in ``path``; the
    method is not called. They are checked for every HTTP method of the resource.

    Class attributes:

    - ``pagination_with_total = True`` adds ``meta.pagination.total`` (one ``COUNT`` query).
    - ``pagination_mode = "keyset"`` pages by cursor instead (:mod:`cst_chassis.keyset`): the
      query string takes ``cursor`` and ``limit`` (``offset`` is a 400), the links carry the
      cursor, a bad cursor is a 400 with ``path: "cursor"``, and there is no total. Cursors are
      signed with ``CST_CURSOR_SECRET``, else the app's ``SECRET_KEY``.
    """

    pagination_mode: ClassVar[Literal["offset", "keyset"]] = "offset"
    pagination_with_total: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.pagination_mode not in _SUPPORTED_MODES:
            raise TypeError(
                f"{cls.__qualname__}.pagination_mode={cls.pagination_mode!r} is not supported; "
                f"use one of {sorted(_SUPPORTED_MODES)}"
            )
        if cls.pagination_mode == "keyset" and cls.pagination_with_total:
            raise TypeError(
                f"{cls.__qualname__}: keyset pagination has no total; drop "
                "pagination_with_total or use pagination_mode = 'offset'"
            )
        if getattr(cls, "init_every_request", True) is False:
            # One instance would then serve every request: pages would leak between them.
            raise TypeError(
                f"{cls.__qualname__}: a paginated resource keeps per-request state on its "
                "instance; do not set init_every_request = False"
            )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pagination_request: _OffsetRequest | _KeysetRequest | None = None
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
    def get_paginated_query_result(
        self, query_or_stmt: Query[Any] | Select[Any], session: SessionLike | None = None
    ) -> Page[Any]:
        """Fetch the requested page of a legacy ``Query`` or a ``select()``, for the response.

        A ``Query`` (e.g. Flask-SQLAlchemy's ``Model.query.order_by(...)``) runs on its own
        session, or on ``session`` when given. A ``select()`` runs on ``session``, else on the
        Flask-SQLAlchemy session of ``init_app(app, db)``; with neither it raises
        :class:`MissingSessionError`. Order the query by a unique key so pages do not overlap.
        """
        if self.pagination_mode == "keyset":
            return self._keyset_page(query_or_stmt, session)
        params = self._current_offset_request()
        if isinstance(query_or_stmt, Query):
            query = query_or_stmt
            if session is not None:
                query = query.with_session(session if isinstance(session, Session) else session())
            page: Page[Any] = paginate_query(
                query,
                offset=params.offset,
                limit=params.limit,
                with_total=self.pagination_with_total,
            )
        else:
            page = paginate(
                session if session is not None else self._default_session(),
                query_or_stmt,
                offset=params.offset,
                limit=params.limit,
                with_total=self.pagination_with_total,
            )
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
    async def get_paginated_query_result_async(
        self, stmt: Select[Any], session: AsyncSessionLike
    ) -> Page[Any]:
        """Fetch the requested page of a ``select()`` on an ``AsyncSession``, for the response.

        Use it from an ``async def`` resource method (it runs on the chassis event loop).
        """
        if self.pagination_mode == "keyset":
            return await self._keyset_page_async(stmt, session)
        params = self._current_offset_request()
        page: Page[Any] = await paginate_async(
            session,
            stmt,
            offset=params.offset,
            limit=params.limit,
            with_total=self.pagination_with_total,
        )
        self._page = page
        return page

    def _current_offset_request(self) -> _OffsetRequest:
        params = self._pagination_request
        if not isinstance(params, _OffsetRequest):
            raise ChassisError(
                "get_paginated_query_result() runs inside a resource method of a request; "
                "outside one, call cst_chassis.pagination.paginate() directly"
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
        if self.pagination_mode == "keyset":
            self._pagination_request = self._parse_keyset_request(get_state().config)
            return
        self._pagination_request = self._parse_offset_request(get_state().config)

    def _extend_meta(self, meta: Meta) -> list[tuple[str, str]] | None:
        headers = super()._extend_meta(meta)
        page = self._page
        if page is None:  # the method did not paginate (e.g. a POST on the same resource)
            return headers
        if self.pagination_mode == "keyset":
            next_url, prev_url = self._keyset_links(page)
        else:
            next_url, prev_url = self._offset_links(page)
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
        return headers

    # -- query string ---------------------------------------------------------------------------

    def _parse_offset_request(self, config: ChassisConfig) -> _OffsetRequest | None:
        offset = self._parse_param("offset", 0, 0, MAX_OFFSET)
        limit = self._parse_limit(config)
        if offset is None or limit is None:
            return None
        return _OffsetRequest(offset, limit)

    def _parse_limit(self, config: ChassisConfig) -> int | None:
        return self._parse_param("limit", config.default_page_size, 1, config.max_page_size)

    def _parse_param(self, name: str, default: int, minimum: int, maximum: int) -> int | None:
        """Read one integer parameter; on a bad value add an error naming it and return None.

        The message never repeats the value: it may be anything a client sent.
        """
        values = request.args.getlist(name)
        if not values:
            return default
        if len(values) > 1:
            self.add_error(f"{name} must be given at most once", path=name)
            return None
        value = _parse_natural(values[0], maximum)
        if value is None or not minimum <= value <= maximum:
            message = f"{name} must be an integer from {minimum} to {maximum}"
            self.add_error(message, path=name)
            return None
        return value

    # -- links ------------------------------------------------------------------------------

    def _offset_links(self, page: Page[Any]) -> tuple[str | None, str | None]:
        if page.next_offset is None and page.prev_offset is None:
            return None, None
        prefix = self._link_prefix(("offset", "limit"))
        limit = page.limit
        next_url = prev_url = None
        if page.next_offset is not None:
            next_url = f"{prefix}offset={page.next_offset}&limit={limit}"
        if page.prev_offset is not None:
            prev_url = f"{prefix}offset={page.prev_offset}&limit={limit}"
        return next_url, prev_url

    def _link_prefix(self, replaced: Collection[str]) -> str:
        """This request's URL up to where the pagination arguments go: ``...?kept&`` or ``...?``.

        Every argument not named in ``replaced`` is kept, repeated keys included, in its order,
        URL-encoded; the caller appends its own (already URL-safe) arguments. Scheme, host and
        prefix come from the request, so the links are right behind ``ProxyFix``.
        """
        base = quote(iri_to_uri(request.base_url), safe=_URI_SAFE)
        kept = [(k, v) for k, v in request.args.items(multi=True) if k not in replaced]
        return f"{base}?{urlencode(kept)}&" if kept else f"{base}?"

    # -- keyset mode (pagination_mode = "keyset") --------------------------------------------

    def _keyset_page(self, query_or_stmt: Query[Any] | Select[Any], session: Any) -> Page[Any]:
        params = self._current_keyset_request()
        if isinstance(query_or_stmt, Query):
            # A legacy Query is its select() on its own session (or the one given).
            stmt: Select[Any] = query_or_stmt.statement  # type: ignore[assignment]  # a Query of entities gives a Select
            run_on = session if session is not None else query_or_stmt.session
        else:
            stmt = query_or_stmt
            run_on = session if session is not None else self._default_session()
        try:
            page: Page[Any] = paginate_keyset(
                run_on, stmt, cursor=params.cursor, limit=params.limit, secret=params.secret
            )
        except InvalidCursorError as exc:
            return self._rejected_cursor(exc, params.limit)
        self._page = page
        return page

    async def _keyset_page_async(self, stmt: Select[Any], session: AsyncSessionLike) -> Page[Any]:
        params = self._current_keyset_request()
        try:
            page: Page[Any] = await paginate_keyset_async(
                session, stmt, cursor=params.cursor, limit=params.limit, secret=params.secret
            )
        except InvalidCursorError as exc:
            return self._rejected_cursor(exc, params.limit)
        self._page = page
        return page

    def _rejected_cursor(self, exc: InvalidCursorError, limit: int) -> Page[Any]:
        # A cursor that passed the early check but does not fit this statement's ordering (or
        # its value types). The method has started: record the error, which turns its response
        # into the 400 envelope, and give it an empty page to finish with. No query ran.
        self.add_error(exc.message, path=exc.path)
        return Page(items=(), offset=0, limit=limit, has_next=False, has_prev=False)

    def _current_keyset_request(self) -> _KeysetRequest:
        params = self._pagination_request
        if not isinstance(params, _KeysetRequest):
            raise ChassisError(
                "get_paginated_query_result() runs inside a resource method of a request; "
                "outside one, call cst_chassis.keyset.paginate_keyset() directly"
            )
        return params

    def _parse_keyset_request(self, config: ChassisConfig) -> _KeysetRequest | None:
        secret = _cursor_secret(config)
        if "offset" in request.args:
            self.add_error(
                "offset is not accepted here: this resource pages by cursor (follow the "
                "next/prev links)",
                path="offset",
            )
        cursor = self._parse_cursor(secret)
        limit = self._parse_limit(config)
        if self.errors or limit is None:
            return None
        return _KeysetRequest(cursor, limit, secret)

    def _parse_cursor(self, secret: bytes) -> str | None:
        """Read ``cursor``; check its size, encoding and signature (its ordering comes later)."""
        values = request.args.getlist("cursor")
        if not values:
            return None
        if len(values) > 1:
            self.add_error("cursor must be given at most once", path="cursor")
            return None
        cursor = values[0]
        try:
            if len(cursor) > MAX_CURSOR_LENGTH:
                raise InvalidCursorError("The cursor is too long")
            decode_cursor(cursor, secret, ordering=None)
        except InvalidCursorError as exc:
            self.add_error(exc.message, path=exc.path)
            return None
        return cursor

    def _keyset_links(self, page: Page[Any]) -> tuple[str | None, str | None]:
        if page.next_cursor is None and page.prev_cursor is None:
            return None, None
        # Cursors are url-safe base64: they go into the link as they are.
        prefix = self._link_prefix(("cursor", "limit", "offset"))
        limit = page.limit
        next_url = prev_url = None
        if page.next_cursor is not None:
            next_url = f"{prefix}cursor={page.next_cursor}&limit={limit}"
        if page.prev_cursor is not None:
            prev_url = f"{prefix}cursor={page.prev_cursor}&limit={limit}"
        return next_url, prev_url


def _cursor_secret(config: ChassisConfig) -> bytes:
    """The key that signs keyset cursors: ``CST_CURSOR_SECRET``, else the app's ``SECRET_KEY``."""
    secret: str | bytes | None = config.cursor_secret or current_app.secret_key
    if not secret:
        raise ChassisError(
            "keyset pagination signs its cursors: set CST_CURSOR_SECRET (environment or "
            "app.config) or the app's SECRET_KEY"
        )
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
