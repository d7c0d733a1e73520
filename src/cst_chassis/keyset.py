"""Keyset ("seek method") pagination over SQLAlchemy ``select()``: every page costs the same.

A page is fetched with ``WHERE (sort keys) > (boundary row's keys) ORDER BY ... LIMIT n + 1``
instead of ``OFFSET``; the boundary travels in an opaque, signed cursor (:mod:`cst_chassis.cursor`).

How the ordering is read:

- It is the statement's ``ORDER BY``: columns or SQL expressions, each ascending or descending,
  with or without an explicit ``nulls_first()`` / ``nulls_last()``.
- It must be total (no two rows tie). When the keys do not include the primary key of the first
  selected entity (or all columns of one of its unique, NOT NULL constraints), the missing
  primary-key columns are appended, in the direction of the last key (so an index on
  ``(key, id)`` serves both directions). A statement without such an entity and without a total
  ordering is refused with :class:`~cst_chassis.errors.ChassisError`.
- NULLs sort where the database puts them (PostgreSQL and Oracle: as larger than every value,
  i.e. last when ascending; SQLite, MySQL, SQL Server and others: as smaller), or where an
  explicit ``nulls_first()`` / ``nulls_last()`` puts them. The seek condition uses explicit
  ``IS NULL`` terms for nullable keys, so no row is dropped or repeated around NULLs.

The previous page reverses the ordering (directions and NULL placement), seeks before the first
row of the current page, and reverses the rows it gets back.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import functools
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

import sqlalchemy as sa
from sqlalchemy.orm.exc import UnmappedColumnError
from sqlalchemy.sql import elements, operators

from cst_chassis.cursor import CursorPayload, CursorValue, Direction, decode_cursor, encode_cursor
from cst_chassis.errors import ChassisError, InvalidCursorError, InvalidPaginationError

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.engine import Row

    # Imported where first needed at run time: cst_chassis.pagination may re-export this
    # module's functions, and importing it here at load time would then make a cycle.
    from cst_chassis.pagination import Page
    from cst_chassis.typing import AsyncSessionLike, SessionLike

__all__ = ["DEFAULT_KEYSET_LIMIT", "paginate_keyset", "paginate_keyset_async"]

T = TypeVar("T")

DEFAULT_KEYSET_LIMIT = 25

# Dialects whose NULL sorts as larger than every value (NULLS LAST when ascending).
_NULLS_HIGH_DIALECTS = frozenset({"postgresql", "oracle", "cockroachdb"})
# Dialects that understand row-value comparisons such as ``(a, b) > (1, 2)``.
_ROW_VALUE_DIALECTS = frozenset({"postgresql", "sqlite", "mysql", "mariadb", "cockroachdb"})
_KEY_LABEL = "_cst_keyset_{}"

# Values of these Python types may stand for each other in a cursor (a NUMERIC column may come
# back as int on one driver and Decimal on another); anything else must match exactly.
_FAMILIES: tuple[tuple[type, str], ...] = (
    (bool, "bool"),
    (int, "number"),
    (float, "number"),
    (decimal.Decimal, "number"),
    (str, "str"),
    (bytes, "bytes"),
    (uuid.UUID, "uuid"),
    (dt.datetime, "datetime"),
    (dt.date, "date"),
    (dt.time, "time"),
)


def _family(kind: type) -> str | None:
    if issubclass(kind, enum.Enum):
        return "str"  # enum members travel as their names, which SQLAlchemy's Enum accepts
    for base, family in _FAMILIES:  # bool before int, datetime before date
        if issubclass(kind, base):
            return family
    return None


@dataclass(frozen=True, slots=True)
class _Key:
    expr: sa.ColumnElement[Any]
    descending: bool
    # NULL compares as larger than every value (so it comes last when ascending).
    nulls_high: bool
    # An explicit nulls_first()/nulls_last() must be re-emitted; the dialect default need not.
    explicit_nulls: bool
    nullable: bool
    family: str | None


@dataclass(frozen=True, slots=True)
class _Ordering:
    keys: tuple[_Key, ...]
    fingerprint: str
    row_values: bool


def _unwrap(clause: Any) -> tuple[Any, bool, bool | None]:
    """Strip ``desc()``/``nulls_last()``/label wrappers: (expression, descending, nulls_last)."""
    descending = False
    nulls_last: bool | None = None
    element = clause
    while True:
        if isinstance(element, elements.UnaryExpression) and element.modifier in (
            operators.desc_op,
            operators.asc_op,
            operators.nulls_first_op,
            operators.nulls_last_op,
        ):
            if element.modifier is operators.desc_op:
                descending = True
            elif element.modifier is operators.nulls_first_op:
                nulls_last = False
            elif element.modifier is operators.nulls_last_op:
                nulls_last = True
            element = element.element
        elif isinstance(element, elements._textual_label_reference | elements.TextClause):
            raise ChassisError(
                "keyset pagination needs column expressions in ORDER BY (order_by(User.name)), "
                "not text or label names"
            )
        elif isinstance(element, elements._label_reference | elements.Label):
            element = element.element
        else:
            return element, descending, nulls_last


@dataclass(frozen=True, slots=True)
class _Entity:
    """The first selected entity or table: its tables, primary key and unique NOT NULL keys."""

    tables: frozenset[Any] = frozenset()
    primary_key: tuple[sa.ColumnElement[Any], ...] = ()
    unique_keys: tuple[frozenset[Any], ...] = ()


def _entity(stmt: Select[Any]) -> _Entity:
    descriptions = stmt.column_descriptions
    if not descriptions:
        return _Entity()
    entity = descriptions[0].get("entity")
    if entity is not None:
        return _entity_info(entity)
    table = getattr(descriptions[0].get("expr"), "table", None)
    return _entity_info(table) if isinstance(table, sa.Table) else _Entity()


@functools.lru_cache(maxsize=256)
def _entity_info(entity: Any) -> _Entity:
    # Cached: mapped classes and tables live as long as the process; aliases made per request
    # only cost a cache slot.
    if isinstance(entity, sa.Table):
        table = entity
        tables = frozenset({table})
        pk_columns: Sequence[Any] = list(table.primary_key.columns)

        def translate(column: Any) -> sa.ColumnElement[Any] | None:
            return column  # type: ignore[no-any-return]  # a Core Column is its own clause

    else:
        insp = sa.inspect(entity)
        mapper = insp.mapper
        table = mapper.local_table
        tables = frozenset(mapper.tables if insp.is_mapper else {insp.selectable})
        pk_columns = mapper.primary_key

        def translate(column: Any) -> sa.ColumnElement[Any] | None:
            # The entity's own attribute, so an aliased entity gets its alias's column.
            try:
                prop = mapper.get_property_by_column(column)
            except UnmappedColumnError:
                return None
            clause = getattr(getattr(entity, prop.key, None), "__clause_element__", None)
            return clause() if clause is not None else None

    primary_key = tuple(c for c in map(translate, pk_columns) if c is not None)
    if len(primary_key) != len(pk_columns):
        primary_key = ()
    candidates = [list(c.columns) for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    candidates += [list(i.columns) for i in table.indexes if i.unique]
    unique_keys = []
    for columns in candidates:
        if columns and all(not c.nullable for c in columns):
            translated = [translate(c) for c in columns]
            if all(t is not None for t in translated):
                unique_keys.append(frozenset(_identity(t) for t in translated))
    return _Entity(tables, primary_key, tuple(unique_keys))


def _identity(expr: Any) -> Any:
    # ORM attributes give annotated copies of a column; the plain column identifies it.
    return expr._deannotate() if isinstance(expr, sa.ColumnClause) else expr


def _describe(expr: Any) -> str:
    # Stable across processes (cursors outlive deploys): names, never object ids.
    table = getattr(expr, "table", None)
    if isinstance(expr, sa.ColumnClause) and isinstance(getattr(table, "name", None), str):
        return f"{table.name}.{expr.name}"  # type: ignore[union-attr]  # checked just above
    try:
        return str(expr.compile(compile_kwargs={"literal_binds": True}))
    except Exception:  # literal rendering is best effort (some types cannot be rendered)
        return str(expr)


def _make_key(
    expr: Any, descending: bool, nulls_last: bool | None, entity: _Entity, dialect: str
) -> _Key:
    # nulls_last on a descending key puts NULL below every value, and so on.
    nulls_high = dialect in _NULLS_HIGH_DIALECTS if nulls_last is None else nulls_last != descending
    # A NOT NULL column is NULL-free only in the entity's own tables: an outer join can fill
    # another table's NOT NULL column with NULL.
    nullable = bool(getattr(expr, "nullable", True)) or getattr(expr, "table", None) not in (
        entity.tables
    )
    try:
        family = _family(expr.type.python_type)
    except NotImplementedError:
        family = None
    return _Key(expr, descending, nulls_high, nulls_last is not None, nullable, family)


def _ordering(stmt: Select[Any], dialect: str) -> _Ordering:
    if stmt._limit_clause is not None or stmt._offset_clause is not None:
        raise ChassisError(
            "paginate_keyset sets LIMIT itself and cannot honour OFFSET: "
            "remove .limit()/.offset() from the statement"
        )
    entity = _entity(stmt)
    keys = [_make_key(*_unwrap(clause), entity, dialect) for clause in stmt._order_by_clauses]
    present = {_identity(k.expr) for k in keys}
    total = any(unique <= present for unique in entity.unique_keys)
    if entity.primary_key and not total:
        descending = keys[-1].descending if keys else False
        for column in entity.primary_key:
            if _identity(column) not in present:
                keys.append(_make_key(column, descending, None, entity, dialect))
    elif not total:
        raise ChassisError(
            "keyset pagination needs a total ordering: order by a unique column last, or select "
            "a mapped entity (or table) with a primary key so it can be appended"
        )
    description = "\n".join(
        f"{int(k.descending)}{int(k.nulls_high)}{_describe(k.expr)}" for k in keys
    )
    digest = hashlib.sha256(description.encode("utf-8")).digest()[:12]
    row_values = (
        dialect in _ROW_VALUE_DIALECTS
        and len(keys) > 1
        and not any(k.nullable for k in keys)
        and len({k.descending for k in keys}) == 1
    )
    return _Ordering(
        tuple(keys), base64.urlsafe_b64encode(digest).decode("ascii"), row_values=row_values
    )


def _order_by(key: _Key, reverse: bool) -> sa.ColumnElement[Any]:
    descending = key.descending != reverse
    clause = key.expr.desc() if descending else key.expr.asc()
    if key.explicit_nulls:
        clause = clause.nulls_last() if key.nulls_high != descending else clause.nulls_first()
    return clause


def _bind(key: _Key, value: CursorValue) -> sa.ColumnElement[Any]:
    return sa.literal(value, key.expr.type)


def _seek(
    ordering: _Ordering, reverse: bool, inclusive: bool, values: Sequence[CursorValue]
) -> sa.ColumnElement[bool]:
    """Rows strictly after (or at, when ``inclusive``) ``values`` in the (reversed) ordering."""
    keys = ordering.keys
    if ordering.row_values:
        left = sa.tuple_(*(k.expr for k in keys))
        right = sa.tuple_(*(_bind(k, v) for k, v in zip(keys, values, strict=True)))
        descending = keys[0].descending != reverse
        if descending:
            return left <= right if inclusive else left < right
        return left >= right if inclusive else left > right

    disjuncts: list[sa.ColumnElement[bool]] = []
    equal: list[sa.ColumnElement[bool]] = []
    bound: sa.ColumnElement[bool] | None = None
    for index, (key, value) in enumerate(zip(keys, values, strict=True)):
        descending = key.descending != reverse
        nulls_after = key.nulls_high != descending
        expr = key.expr
        after: sa.ColumnElement[bool] | None
        same: sa.ColumnElement[bool]
        if value is None:
            after = None if nulls_after else expr.is_not(None)
            same = expr.is_(None)
        else:
            bind = _bind(key, value)
            after = expr < bind if descending else expr > bind
            if nulls_after and key.nullable:
                after = sa.or_(after, expr.is_(None))
            same = expr == bind
        if index == 0:
            # A redundant range on the leading key lets the database seek an index to it.
            if value is None and nulls_after:
                bound = expr.is_(None)
            elif value is not None and not (nulls_after and key.nullable):
                bind = _bind(key, value)
                bound = expr <= bind if descending else expr >= bind
        if after is not None:
            disjuncts.append(sa.and_(*equal, after))
        equal.append(same)
    if inclusive:
        disjuncts.append(sa.and_(*equal))
    condition = sa.or_(*disjuncts) if disjuncts else sa.false()
    return condition if bound is None else sa.and_(bound, condition)


def _cursor_value(value: Any) -> CursorValue:
    if isinstance(value, enum.Enum):
        return value.name
    return value  # type: ignore[no-any-return]  # checked by encode_cursor


def _check_values(ordering: _Ordering, values: Sequence[CursorValue]) -> None:
    if len(values) != len(ordering.keys):
        raise InvalidCursorError("The cursor does not match this ordering")
    for key, value in zip(ordering.keys, values, strict=True):
        if value is None:
            if not key.nullable:
                raise InvalidCursorError("The cursor holds a value of the wrong type")
        elif key.family is not None and _family(type(value)) != key.family:
            raise InvalidCursorError("The cursor holds a value of the wrong type")


@dataclass(frozen=True, slots=True)
class _Plan:
    stmt: Select[Any]
    ordering: _Ordering
    position: CursorPayload | None
    width: int
    limit: int
    secret: bytes

    @property
    def reverse(self) -> bool:
        return self.position is not None and self.position.direction in ("before", "at_or_before")


def _check_arguments(limit: int, secret: bytes) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidPaginationError("limit", "limit must be a positive integer")
    if not isinstance(secret, bytes):
        raise TypeError("paginate_keyset(secret=...) must be bytes")
    if not secret:
        raise ValueError("paginate_keyset(secret=...) must not be empty")


def _plan(stmt: Select[Any], dialect: str, cursor: str | None, limit: int, secret: bytes) -> _Plan:
    ordering = _ordering(stmt, dialect)
    position = None
    if cursor is not None:
        position = decode_cursor(cursor, secret, ordering=ordering.fingerprint)
        _check_values(ordering, position.values)
    reverse = position is not None and position.direction in ("before", "at_or_before")
    keyed = stmt.order_by(None).order_by(*(_order_by(k, reverse) for k in ordering.keys))
    if position is not None:
        inclusive = position.direction in ("at_or_after", "at_or_before")
        condition = _seek(ordering, reverse, inclusive, position.values)
        keyed = keyed.having(condition) if stmt._group_by_clauses else keyed.where(condition)
    keyed = keyed.add_columns(
        *(k.expr.label(_KEY_LABEL.format(i)) for i, k in enumerate(ordering.keys))
    ).limit(limit + 1)
    return _Plan(keyed, ordering, position, len(stmt.column_descriptions), limit, secret)


def _page(plan: _Plan, rows: Sequence[Row[Any]]) -> Page[Any]:
    more = len(rows) > plan.limit
    rows = list(rows[: plan.limit])
    if plan.reverse:
        rows.reverse()
    width = plan.width
    items = [row[0] if width == 1 else tuple(row[:width]) for row in rows]
    ordering = plan.ordering

    def cursor(direction: Direction, row: Row[Any] | None) -> str:
        if row is None:
            assert plan.position is not None
            values = plan.position.values
        else:
            values = tuple(_cursor_value(v) for v in row[width:])
        return encode_cursor(CursorPayload(ordering.fingerprint, direction, values), plan.secret)

    position = plan.position
    if position is None:
        has_prev, has_next = False, more
    elif plan.reverse:
        has_prev, has_next = more, True
    else:
        has_prev, has_next = True, more
    next_cursor = prev_cursor = None
    if rows:
        if has_next:
            next_cursor = cursor("after", rows[-1])
        if has_prev:
            prev_cursor = cursor("before", rows[0])
    elif position is not None:
        # An empty page (rows were deleted): point back across the boundary, including the
        # boundary row itself when this page excluded it.
        inclusive = position.direction in ("at_or_after", "at_or_before")
        if plan.reverse:
            next_cursor = cursor("after" if inclusive else "at_or_after", None)
        else:
            prev_cursor = cursor("before" if inclusive else "at_or_before", None)
    from cst_chassis.pagination import Page

    return Page(
        items=tuple(items),
        offset=0,
        limit=plan.limit,
        has_next=has_next,
        has_prev=has_prev,
        next_cursor=next_cursor,
        prev_cursor=prev_cursor,
    )


def _dialect_name(bind: Any) -> str:
    return str(bind.dialect.name)


@overload
def paginate_keyset(
    session: SessionLike,
    stmt: Select[tuple[T]],
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_KEYSET_LIMIT,
    secret: bytes,
) -> Page[T]: ...
@overload
def paginate_keyset(
    session: SessionLike,
    stmt: Select[T],  # type: ignore[type-var, unused-ignore]  # SQLAlchemy 2.1 form; 2.0 bounds Select's parameter to a tuple
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_KEYSET_LIMIT,
    secret: bytes,
) -> Page[T]: ...
def paginate_keyset(
    session: SessionLike,
    stmt: Select[Any],
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_KEYSET_LIMIT,
    secret: bytes,
) -> Page[Any]:
    """Fetch one page of ``stmt`` by keyset: the page after/before ``cursor`` (first when None).

    ``stmt`` is a ``select()`` with an ``ORDER BY`` (made total by appending the primary key when
    needed) and without ``LIMIT``/``OFFSET``. ``secret`` signs the cursors (e.g. the app's
    ``SECRET_KEY`` as bytes). Returns a :class:`~cst_chassis.pagination.Page` with
    ``offset=0``, ``next_cursor``/``prev_cursor`` (``None`` when there is no such page), and
    ``has_next``/``has_prev``. One query per page, with ``LIMIT limit + 1``.

    Raises :class:`~cst_chassis.errors.InvalidCursorError` for a malformed, tampered, foreign or
    oversized cursor, :class:`~cst_chassis.errors.InvalidPaginationError` (path ``"limit"``)
    for ``limit < 1``, and :class:`~cst_chassis.errors.ChassisError` for an ordering that cannot
    be paginated (text ORDER BY, no total order and no primary key, LIMIT/OFFSET present).
    """
    _check_arguments(limit, secret)
    plan = _plan(stmt, _dialect_name(session.get_bind(clause=stmt)), cursor, limit, secret)
    return _page(plan, session.execute(plan.stmt).all())


@overload
async def paginate_keyset_async(
    session: AsyncSessionLike,
    stmt: Select[tuple[T]],
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_KEYSET_LIMIT,
    secret: bytes,
) -> Page[T]: ...
@overload
async def paginate_keyset_async(
    session: AsyncSessionLike,
    stmt: Select[T],  # type: ignore[type-var, unused-ignore]  # SQLAlchemy 2.1 form; 2.0 bounds Select's parameter to a tuple
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_KEYSET_LIMIT,
    secret: bytes,
) -> Page[T]: ...
async def paginate_keyset_async(
    session: AsyncSessionLike,
    stmt: Select[Any],
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_KEYSET_LIMIT,
    secret: bytes,
) -> Page[Any]:
    """:func:`paginate_keyset` for an ``AsyncSession`` (same arguments, result and errors)."""
    _check_arguments(limit, secret)
    plan = _plan(stmt, _dialect_name(session.get_bind(clause=stmt)), cursor, limit, secret)
    result = await session.execute(plan.stmt)
    return _page(plan, result.all())
