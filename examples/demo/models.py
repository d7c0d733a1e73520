"""The demo's tables, declared on a typed ``DeclarativeBase``.

Typed models (``Mapped[...]``) rather than Flask-SQLAlchemy's ``db.Model``: ``class M(db.Model)``
does not type-check under ``mypy --strict``, while these carry their column types into queries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, TypedDict

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import DateTime, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "INT4_MAX",
    "NAME_MAX_LENGTH",
    "Base",
    "Product",
    "ProductIn",
    "ProductJson",
    "StorableText",
    "product_json",
    "storable_text",
]

NAME_MAX_LENGTH = 100
# Ids and prices are PostgreSQL ``integer`` columns: a larger value must be a 400 at the edge,
# not an overflow error from the database.
INT4_MAX = 2**31 - 1


def storable_text(value: str) -> str:
    """``value`` unless a database could not store it: NUL, or a lone surrogate (not UTF-8).

    PostgreSQL refuses NUL in text, and a lone surrogate cannot be encoded for any driver; both
    would otherwise fail inside the query, as a 500.
    """
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


StorableText = Annotated[str, AfterValidator(storable_text)]


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

    name: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_LENGTH),
        AfterValidator(storable_text),
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
