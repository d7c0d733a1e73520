"""Keyset ("seek method") pagination over SQLAlchemy ``select()``: every page costs the same.

A page is fetched with ``WHERE <after the boundary row> ORDER BY ... LIMIT n + 1`` instead of
``OFFSET``; the boundary travels in an opaque, signed cursor (:mod:`.cursor`).

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
  explicit ``nulls_first()`` / ``nulls_last()`` puts them.

Why the seek is split into segments: an ``OR k IS NULL`` arm next to ``k > v`` keeps planners
from turning the condition into an index range (PostgreSQL then scans the index from its start
and filters: O(depth)). So the rows after the boundary are cut into *segments* that are each one
index range, in the ordering's order: the non-NULL values after the boundary of the leading key
(``k >= v AND (k > v OR (k = v AND <rest>))``, or a row-value comparison ``(k, id) > (v, w)``
where every key runs one direction and the later keys are NOT NULL), and then, when NULLs of a
nullable leading key sort after the values, ``k IS NULL``. A boundary on a NULL leading key
seeks inside ``k IS NULL`` on the next key the same way. Segments are fetched one after the
other, each only when the ones before came back short of a full page, so a page deep in the
non-NULL values is one query and a page that crosses into the NULLs two. Within a segment the
leading key's NULL placement no longer matters, so ``ORDER BY`` drops an explicit
``NULLS FIRST/LAST`` there, and the index in the dialect's own NULL placement serves it.

The segments' conditions are built once per ordering shape (keys, direction, which boundary
values are NULL) with bind parameters, and the boundary's values are given at execution: a deep
page then costs the same Python work as the first one.

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
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple, overload

import sqlalchemy as sa
from sqlalchemy.orm.exc import UnmappedColumnError
from sqlalchemy.sql import elements, operators

from cst_chassis.errors import ChassisError, InvalidCursorError, InvalidPaginationError
from cst_chassis.pagination.cursor import (
    CursorPayload,
    CursorValue,
    Direction,
    decode_cursor,
    encode_cursor,
)
from cst_chassis.pagination.page import Page

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.engine import Row

    from cst_chassis.typing import AsyncSessionLike, SessionLike

__all__ = ["DEFAULT_KEYSET_LIMIT", "paginate_keyset", "paginate_keyset_async"]

T = TypeVar("T")
T2 = TypeVar("T2")
Ts = TypeVarTuple("Ts")

DEFAULT_KEYSET_LIMIT = 25
"""Page size of ``paginate_keyset`` when no limit is given."""

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
    dialect: str


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
    digest = hashlib.sha256(description.encode()).digest()[:12]
    return _Ordering(tuple(keys), base64.urlsafe_b64encode(digest).decode(), dialect)


def _scan(key: _Key, reverse: bool) -> tuple[bool, bool]:
    """(descending, NULLs after the values) of ``key`` as the page query walks it."""
    descending = key.descending != reverse
    return descending, key.nulls_high != descending


def _order_by(key: _Key, reverse: bool, nullness_fixed: bool) -> sa.ColumnElement[Any]:
    descending, nulls_after = _scan(key, reverse)
    clause = key.expr.desc() if descending else key.expr.asc()
    # Where a segment fixes the key's nullness its NULL placement is moot; dropping an explicit
    # one lets an index in the dialect's own placement serve the ORDER BY.
    if key.explicit_nulls and not nullness_fixed:
        clause = clause.nulls_last() if nulls_after else clause.nulls_first()
    return clause


# A boundary value in a seek condition: a bind parameter whose value is given at execution (see
# _seek_segments), or None for a NULL boundary value.
_Value = elements.BindParameter[Any] | None
_SEEK_PARAM = "_cst_seek_{}"


def _after_any(
    keys: Sequence[_Key], values: Sequence[_Value], reverse: bool, inclusive: bool
) -> sa.ColumnElement[bool]:
    """Rows after ``values`` as one OR of prefixes, with ``IS NULL`` terms for nullable keys.

    Used only below an equality on a key before these (inside one group of equal leading
    values), where the planner has already narrowed the rows to a range.
    """
    disjuncts: list[sa.ColumnElement[bool]] = []
    equal: list[sa.ColumnElement[bool]] = []
    for key, value in zip(keys, values, strict=True):
        descending, nulls_after = _scan(key, reverse)
        expr = key.expr
        after: sa.ColumnElement[bool] | None
        if value is None:
            after = None if nulls_after else expr.is_not(None)
            same: sa.ColumnElement[bool] = expr.is_(None)
        else:
            bind = value
            after = expr < bind if descending else expr > bind
            if nulls_after and key.nullable:
                after = sa.or_(after, expr.is_(None))
            same = expr == bind
        if after is not None:
            disjuncts.append(sa.and_(*equal, after))
        equal.append(same)
    if inclusive:
        disjuncts.append(sa.and_(*equal))
    return sa.or_(*disjuncts)  # never empty: the last key is NOT NULL, so it adds a term


def _values_range(
    ordering: _Ordering,
    level: int,
    values: Sequence[_Value],
    reverse: bool,
    inclusive: bool,
) -> sa.ColumnElement[bool]:
    """Rows whose key ``level`` (not NULL, = ``values[level]`` or after it) lie after ``values``.

    One index range on that key: a row-value comparison where every remaining key runs the same
    way and the later ones are NOT NULL, else a redundant ``k >= v`` bound ANDed to the OR form.
    """
    keys = ordering.keys[level:]
    rest = values[level:]
    key, value = keys[0], rest[0]
    descending, _ = _scan(key, reverse)
    binds = [v for v in rest if v is not None]
    if (
        len(keys) > 1
        and ordering.dialect in _ROW_VALUE_DIALECTS
        and len(binds) == len(rest)
        and not any(k.nullable for k in keys[1:])
        and all(_scan(k, reverse)[0] == descending for k in keys[1:])
    ):
        left = sa.tuple_(*(k.expr for k in keys))
        right = sa.tuple_(*binds)
        if descending:
            return left <= right if inclusive else left < right
        return left >= right if inclusive else left > right
    expr, bind = key.expr, value
    bound = expr <= bind if descending else expr >= bind
    strict = expr < bind if descending else expr > bind
    if len(keys) == 1:
        return bound if inclusive else strict
    inner = _after_any(keys[1:], rest[1:], reverse, inclusive)
    return sa.and_(bound, sa.or_(strict, sa.and_(expr == bind, inner)))


# A segment: its condition (None: every row) and how many leading keys have a fixed nullness.
_Segment = tuple["sa.ColumnElement[bool] | None", int]


def _segments_after(
    ordering: _Ordering,
    values: Sequence[_Value],
    reverse: bool,
    inclusive: bool,
    level: int = 0,
    prefix: tuple[sa.ColumnElement[bool], ...] = (),
) -> list[_Segment]:
    """The rows after ``values``, as index ranges in the order the page reads them.

    Recursion on NULL values ends before the keys do: the primary key or unique key that makes
    the ordering total is NOT NULL, so its boundary value is never NULL.
    """
    key, value = ordering.keys[level], values[level]
    _, nulls_after = _scan(key, reverse)
    expr = key.expr
    if value is None:
        # Inside the NULL group first (seeking on the next key), then, when NULLs come first,
        # every non-NULL value.
        segments = _segments_after(
            ordering, values, reverse, inclusive, level + 1, (*prefix, expr.is_(None))
        )
        if not nulls_after:
            segments.append((sa.and_(*prefix, expr.is_not(None)), level + 1))
        return segments
    segments = [
        (sa.and_(*prefix, _values_range(ordering, level, values, reverse, inclusive)), level + 1)
    ]
    if key.nullable and nulls_after:
        segments.append((sa.and_(*prefix, expr.is_(None)), level + 1))
    return segments


@functools.lru_cache(maxsize=512)
def _seek_segments(
    ordering: _Ordering, reverse: bool, inclusive: bool, nulls: tuple[bool, ...]
) -> tuple[_Segment, ...]:
    """:func:`_segments_after` for boundaries with NULLs where ``nulls`` says, built once.

    The boundary's values are bind parameters named ``_cst_seek_<i>``, given at execution (see
    :func:`_seek_params`): building the condition costs more than the rest of a page's Python
    work, and it depends only on the ordering (its key expressions, which for a mapped class are
    the same objects on every request), the direction and where the NULLs are.
    """
    values = [
        None if null else sa.bindparam(_SEEK_PARAM.format(i), type_=key.expr.type)
        for i, (key, null) in enumerate(zip(ordering.keys, nulls, strict=True))
    ]
    return tuple(_segments_after(ordering, values, reverse, inclusive))


def _seek_params(values: Sequence[CursorValue]) -> dict[str, Any]:
    return {_SEEK_PARAM.format(i): v for i, v in enumerate(values) if v is not None}


def _segments_from_start(ordering: _Ordering, reverse: bool) -> list[_Segment]:
    key = ordering.keys[0]
    if not key.nullable or key.nulls_high == (ordering.dialect in _NULLS_HIGH_DIALECTS):
        return [(None, 0)]  # an index in the dialect's NULL placement serves the ORDER BY
    # NULLs placed against the dialect's index order: read values and NULLs as two ranges.
    _, nulls_after = _scan(key, reverse)
    values, nulls = (key.expr.is_not(None), 1), (key.expr.is_(None), 1)
    return [values, nulls] if nulls_after else [nulls, values]


def _cursor_value(value: Any) -> CursorValue:
    if isinstance(value, enum.Enum):
        return value.name
    return value  # type: ignore[no-any-return]  # checked by encode_cursor


# Integer widths where the column type's name is not the whole story: SQLite integers are all
# 64-bit; on these dialects INTEGER is 32-bit and SMALLINT (PostgreSQL, MySQL) 16-bit.
_INT32_DIALECTS = frozenset({"postgresql", "mysql", "mariadb", "mssql", "cockroachdb"})
_NONFINITE_DIALECTS = frozenset({"postgresql", "cockroachdb"})
# PostgreSQL numeric: up to 131072 digits before the point and 16383 after.
_PG_NUMERIC_DIGITS = 131072
_PG_NUMERIC_SCALE = 16383
_FLOAT_EXPONENT = 308
_SURROGATES = re.compile("[\ud800-\udfff]")


def _integer_bits(type_: sa.Integer, dialect: str) -> int:
    if dialect == "sqlite" or isinstance(type_, sa.BigInteger):
        return 64
    if isinstance(type_, sa.SmallInteger) and dialect in _INT32_DIALECTS:
        return 16
    return 32 if dialect in _INT32_DIALECTS else 64


def _fits(key: _Key, value: CursorValue, dialect: str) -> bool:
    """Whether the database can compare ``key`` with ``value`` (signed, yet forged; not None)."""
    type_: Any = key.expr.type
    if isinstance(type_, sa.TypeDecorator):
        type_ = type_.impl_instance
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        if dialect == "sqlite" and not -(2**63) <= value < 2**63:
            return False  # sqlite3 cannot bind it at all
        if isinstance(type_, sa.Integer):
            bits = _integer_bits(type_, dialect)
            return bool(-(2 ** (bits - 1)) <= value < 2 ** (bits - 1))
        return not isinstance(type_, sa.Float) or abs(value) < 2**1023
    if isinstance(value, float | decimal.Decimal):
        if isinstance(type_, sa.Integer):
            return False  # integer columns come back as int: a fraction was never issued
        if not value.is_finite() if isinstance(value, decimal.Decimal) else not _finite(value):
            return dialect in _NONFINITE_DIALECTS
        if isinstance(value, decimal.Decimal):
            if dialect in _NONFINITE_DIALECTS and not isinstance(type_, sa.Float):
                return value.adjusted() < _PG_NUMERIC_DIGITS and (
                    int(value.as_tuple().exponent) >= -_PG_NUMERIC_SCALE
                )
            return -_FLOAT_EXPONENT <= value.adjusted() < _FLOAT_EXPONENT or value.is_zero()
        return True
    if isinstance(value, str):
        if _SURROGATES.search(value):
            return False  # no driver can encode a lone surrogate
        return not ("\x00" in value and dialect in _NONFINITE_DIALECTS)  # PostgreSQL text
    return True


def _finite(value: float) -> bool:
    return value - value == 0.0  # False for inf and NaN, without importing math for one call


def _check_values(ordering: _Ordering, values: Sequence[CursorValue]) -> None:
    if len(values) != len(ordering.keys):
        raise InvalidCursorError("The cursor does not match this ordering")
    for key, value in zip(ordering.keys, values, strict=True):
        if value is None:
            if not key.nullable:
                raise InvalidCursorError("The cursor holds a value of the wrong type")
        elif key.family is not None and _family(type(value)) != key.family:
            raise InvalidCursorError("The cursor holds a value of the wrong type")
        elif not _fits(key, value, ordering.dialect):
            raise InvalidCursorError("The cursor holds a value out of range for its column")


@dataclass(frozen=True, slots=True)
class _Plan:
    stmt: Select[Any]
    ordering: _Ordering
    position: CursorPayload | None
    segments: tuple[_Segment, ...]
    params: dict[str, Any]
    width: int
    limit: int
    secret: bytes

    @property
    def reverse(self) -> bool:
        return self.position is not None and self.position.direction in ("before", "at_or_before")

    def statement(self, segment: _Segment, rows_so_far: int) -> Select[Any]:
        """The query for one segment, limited to what the page still needs (plus one)."""
        condition, fixed = segment
        keys = self.ordering.keys
        reverse = self.reverse
        keyed = self.stmt.order_by(None).order_by(
            *(_order_by(k, reverse, i < fixed) for i, k in enumerate(keys))
        )
        if condition is not None:
            grouped = bool(self.stmt._group_by_clauses)
            keyed = keyed.having(condition) if grouped else keyed.where(condition)
        return keyed.add_columns(
            *(k.expr.label(_KEY_LABEL.format(i)) for i, k in enumerate(keys))
        ).limit(self.limit + 1 - rows_so_far)


def _check_arguments(limit: int, secret: bytes) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidPaginationError("limit", "limit must be a positive integer")
    if not isinstance(secret, bytes):
        raise TypeError("paginate_keyset(secret=...) must be bytes")
    if not secret:
        raise ValueError("paginate_keyset(secret=...) must not be empty")


def _plan(
    stmt: Select[Any],
    dialect: str,
    position: CursorPayload | None,
    limit: int,
    secret: bytes,
) -> _Plan:
    ordering = _ordering(stmt, dialect)
    params: dict[str, Any] = {}
    if position is None:
        segments: Sequence[_Segment] = _segments_from_start(ordering, reverse=False)
    else:
        if position.ordering != ordering.fingerprint:
            raise InvalidCursorError("The cursor belongs to another ordering")
        _check_values(ordering, position.values)
        reverse = position.direction in ("before", "at_or_before")
        inclusive = position.direction in ("at_or_after", "at_or_before")
        nulls = tuple(value is None for value in position.values)
        segments = _seek_segments(ordering, reverse, inclusive, nulls)
        params = _seek_params(position.values)
    width = len(stmt.column_descriptions)
    return _Plan(stmt, ordering, position, tuple(segments), params, width, limit, secret)


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


def _decode(cursor: str | None, secret: bytes) -> CursorPayload | None:
    return None if cursor is None else decode_cursor(cursor, secret, ordering=None)


def fetch_keyset(
    session: SessionLike,
    stmt: Select[Any],
    *,
    position: CursorPayload | None,
    limit: int,
    secret: bytes,
) -> Page[Any]:
    """:func:`paginate_keyset` for a cursor already verified by :func:`.cursor.decode_cursor`.

    The resource mixin verifies a cursor's HMAC before the method runs (a bad one is then a 400
    before any work); this runs the page without checking the signature a second time. Its
    ordering and values are still checked against ``stmt``.
    """
    _check_arguments(limit, secret)
    plan = _plan(stmt, _dialect_name(session.get_bind(clause=stmt)), position, limit, secret)
    rows: list[Row[Any]] = []
    for segment in plan.segments:
        rows += session.execute(plan.statement(segment, len(rows)), plan.params).all()
        if len(rows) > limit:
            break
    return _page(plan, rows)


async def fetch_keyset_async(
    session: AsyncSessionLike,
    stmt: Select[Any],
    *,
    position: CursorPayload | None,
    limit: int,
    secret: bytes,
) -> Page[Any]:
    """:func:`fetch_keyset` for an ``AsyncSession``."""
    _check_arguments(limit, secret)
    plan = _plan(stmt, _dialect_name(session.get_bind(clause=stmt)), position, limit, secret)
    rows: list[Row[Any]] = []
    for segment in plan.segments:
        result = await session.execute(plan.statement(segment, len(rows)), plan.params)
        rows += result.all()
        if len(rows) > limit:
            break
    return _page(plan, rows)


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
@overload
def paginate_keyset(
    session: SessionLike,
    stmt: Select[T, T2, *Ts],  # type: ignore[misc, type-arg, valid-type, unused-ignore]  # SQLAlchemy 2.1's variadic Select; 2.0 has one parameter
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_KEYSET_LIMIT,
    secret: bytes,
) -> Page[tuple[T, T2, *Ts]]: ...
def paginate_keyset(  # type: ignore[misc, unused-ignore]  # on SQLAlchemy 2.1 Select[Any] is one column; the overloads are the API
    session: SessionLike,
    stmt: Select[Any],
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_KEYSET_LIMIT,
    secret: bytes,
) -> Page[Any]:
    """Fetch one page of ``stmt`` by keyset: the page after/before ``cursor`` (first when None).

    ``stmt`` is a ``select()`` with an ``ORDER BY`` (made total by appending the primary key when
    needed) and without ``LIMIT``/``OFFSET``. ``secret`` signs the cursors (at least
    ``MIN_SECRET_BYTES`` random bytes, e.g. the app's ``SECRET_KEY``). Returns a
    :class:`~cst_chassis.pagination.Page` with ``offset=0``, ``next_cursor``/``prev_cursor``
    (``None`` when there is no such page), and ``has_next``/``has_prev``. A page is one query
    with ``LIMIT limit + 1``, and a second one only when it reaches the NULLs of a nullable
    leading key (see the module's docstring). A ``select()`` of several columns gives tuples.

    Raises :class:`~cst_chassis.errors.InvalidCursorError` for a malformed, tampered, foreign or
    oversized cursor, or one whose values do not fit the columns (then no query runs);
    :class:`~cst_chassis.errors.InvalidPaginationError` (path ``"limit"``) for ``limit < 1``;
    :class:`~cst_chassis.errors.ChassisError` for an ordering that cannot be paginated (text
    ORDER BY, no total order and no primary key, LIMIT/OFFSET present).
    """
    _check_arguments(limit, secret)
    position = _decode(cursor, secret)
    return fetch_keyset(session, stmt, position=position, limit=limit, secret=secret)


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
@overload
async def paginate_keyset_async(
    session: AsyncSessionLike,
    stmt: Select[T, T2, *Ts],  # type: ignore[misc, type-arg, valid-type, unused-ignore]  # SQLAlchemy 2.1's variadic Select; 2.0 has one parameter
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_KEYSET_LIMIT,
    secret: bytes,
) -> Page[tuple[T, T2, *Ts]]: ...
async def paginate_keyset_async(  # type: ignore[misc, unused-ignore]  # on SQLAlchemy 2.1 Select[Any] is one column; the overloads are the API
    session: AsyncSessionLike,
    stmt: Select[Any],
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_KEYSET_LIMIT,
    secret: bytes,
) -> Page[Any]:
    """:func:`paginate_keyset` for an ``AsyncSession`` (same arguments, result and errors)."""
    _check_arguments(limit, secret)
    position = _decode(cursor, secret)
    return await fetch_keyset_async(session, stmt, position=position, limit=limit, secret=secret)
