"""Seed the catalogue with demo products when it is empty."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from examples.demo.database import Database
from examples.demo.models import Product

__all__ = ["SEED_COUNT", "seed"]

SEED_COUNT = 100
_FIRST_CREATED = datetime(2025, 1, 1, tzinfo=UTC)


def seed(database: Database, count: int = SEED_COUNT) -> int:
    """Insert ``count`` products if the table is empty; return how many were inserted."""
    with database.sessions.begin() as session:
        if session.scalar(select(func.count()).select_from(Product)):
            return 0
        session.add_all(
            Product(
                name=f"Product {number:03d}",
                # Deterministic, varied prices: 1.99 .. 99.99.
                price_cents=199 + (number * 3779) % 9800,
                created_at=_FIRST_CREATED + timedelta(hours=number),
            )
            for number in range(1, count + 1)
        )
    return count
