"""Index products by price (the order of /products/by-price and ?sort=price).

Revision ID: a7c4e2d19b58
Revises: 3f2a1c9b7d10
Create Date: 2025-01-20 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "a7c4e2d19b58"
down_revision: str | None = "3f2a1c9b7d10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_products_price_cents_id", "products", ["price_cents", "id"])


def downgrade() -> None:
    op.drop_index("ix_products_price_cents_id", table_name="products")
