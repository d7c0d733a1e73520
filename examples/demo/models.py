"""The demo's tables, declared on a typed ``DeclarativeBase``.

Typed models (``Mapped[...]``) rather than Flask-SQLAlchemy's ``db.Model``: ``class M(db.Model)``
does not type-check under ``mypy --strict``, while these carry their column types into queries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypedDict

from sqlalchemy import DateTime, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "Product", "ProductJson", "product_json"]

NAME_MAX_LENGTH = 100


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
