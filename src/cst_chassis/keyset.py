"""Kept import path: keyset pagination lives in :mod:`cst_chassis.pagination.keyset`."""

from __future__ import annotations

from cst_chassis.pagination.keyset import (
    DEFAULT_KEYSET_LIMIT,
    paginate_keyset,
    paginate_keyset_async,
)

__all__ = ["DEFAULT_KEYSET_LIMIT", "paginate_keyset", "paginate_keyset_async"]
