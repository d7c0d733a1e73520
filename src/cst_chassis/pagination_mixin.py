"""Placeholder: the pagination issue builds ``ApiPaginatedMixin`` here."""

from __future__ import annotations

__all__ = ["ApiPaginatedMixin"]


class ApiPaginatedMixin:
    """Offset/limit pagination for ``ApiResource`` (being built)."""
