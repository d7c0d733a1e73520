"""The demo's tables, declared on a typed ``DeclarativeBase``.

Typed models (``Mapped[...]``) rather than Flask-SQLAlchemy's ``db.Model``: ``class M(db.Model)``
does not type-check under ``mypy --strict``, while these carry their column types into queries.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal, TypedDict
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import DateTime, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "INT4_MAX",
    "NAME_MAX_LENGTH",
    "Base",
    "Currency",
    "Product",
    "ProductIn",
    "ProductJson",
    "ProductQuery",
    "Quote",
    "QuoteQuery",
    "product_json",
]

NAME_MAX_LENGTH = 100
# Prices are PostgreSQL ``integer`` columns: the body model bounds them (a 400 at the edge, not
# an overflow error from the database). Ids are bounded by the route: ``<int32:product_id>``.
# NUL in text (which PostgreSQL refuses) is refused by the chassis itself (CST_REFUSE_NUL).
INT4_MAX = 2**31 - 1


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the demo; its ``metadata`` is what the migrations describe."""


class Product(Base):
    """A product of the catalogue."""

    __tablename__ = "products"
    __table_args__ = (Index("ix_products_price_cents_id", "price_cents", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX_LENGTH))
    price_cents: Mapped[int]
    # Set in Python (not a server default) so a freshly inserted row can be serialised without a
    # second query, which an AsyncSession could not lazy-load anyway.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class ProductIn(BaseModel):
    """The body of ``POST /products``: JSON types only (``"5"`` is not a price)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    # The pattern (a character that is not JSON whitespace) is what the document shows: a name
    # of spaces is refused by the schema itself, not by a validator the schema does not show.
    # An explicit class, as ``\s`` differs between Python's and pydantic-core's regex engines.
    name: Annotated[
        str, StringConstraints(min_length=1, max_length=NAME_MAX_LENGTH, pattern=r"[^ \t\n\r]")
    ]
    price_cents: Annotated[int, Field(ge=0, le=INT4_MAX)]


class ProductJson(TypedDict):
    """How a product looks in a response's ``data``."""

    id: int
    name: str
    price_cents: int
    created_at: str


def product_json(product: Product) -> ProductJson:
    """Serialise a product; times are UTC in ISO 8601 (SQLite returns them without a zone)."""
    created_at = product.created_at
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    return {
        "id": product.id,
        "name": product.name,
        "price_cents": product.price_cents,
        "created_at": created_at.isoformat(),
    }


class ProductQuery(BaseModel):
    """The query string of ``GET /products`` (``with_query``): typed, bounded, documented."""

    q: Annotated[
        str | None,
        Field(max_length=NAME_MAX_LENGTH, description="Only products whose name contains this."),
    ] = None
    sort: Literal["id", "price"] = "id"


class Currency(enum.Enum):
    """Currencies a quote can be given in (prices are stored in euro cents)."""

    EUR = "EUR"
    USD = "USD"
    GBP = "GBP"


class QuoteQuery(BaseModel):
    """The query string of ``GET /products/<id>/quote``."""

    quantity: Annotated[int, Field(ge=1, le=1000, description="How many items.")] = 1
    currency: Currency = Currency.EUR


class Quote(BaseModel):
    """A price quote: a ``UUID``, ``Decimal`` amounts, an ``Enum`` and ``datetime`` fields."""

    quote_id: UUID
    product_id: int
    quantity: int
    currency: Currency
    unit_price: Decimal
    total: Decimal
    product_created_at: datetime
    valid_until: datetime
