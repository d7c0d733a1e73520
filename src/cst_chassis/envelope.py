"""The response envelope: ``{"meta": {...}, "data": ...}`` or ``{"meta": {...}, "errors": [...]}``.

The shapes are ``TypedDict``s so typed clients and tests can name them.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from cst_chassis.context import new_operation_id, operation_id_var

__all__ = ["ErrorEnvelope", "ErrorItem", "Meta", "PaginationMeta", "SuccessEnvelope"]


class PaginationMeta(TypedDict):
    """``meta.pagination``: links to the neighbouring pages (``None`` at either end)."""

    next: str | None
    prev: str | None
    total: NotRequired[int]


class Meta(TypedDict):
    """``meta``: the request's operation id, plus pagination on paginated resources."""

    operation_id: str
    pagination: NotRequired[PaginationMeta]


class ErrorItem(TypedDict):
    """One entry of ``errors``; ``path`` names the offending input when there is one.

    An item made from ``abort(code, message=..., **extra)`` also carries the ``extra`` keys
    (see :mod:`cst_chassis._error_handling`).
    """

    message: str
    path: NotRequired[str]


class SuccessEnvelope(TypedDict):
    """The body of a successful response."""

    meta: Meta
    data: Any


class ErrorEnvelope(TypedDict):
    """The body of an error response (never carries ``data``)."""

    meta: Meta
    errors: list[ErrorItem]


def _meta() -> Meta:
    # Outside a chassis-wrapped app there is no id in context; still give the client one.
    return {"operation_id": operation_id_var.get() or new_operation_id()}


def success_envelope(data: Any) -> SuccessEnvelope:
    """Wrap a resource's result."""
    return {"meta": _meta(), "data": data}


def error_envelope(errors: list[ErrorItem]) -> ErrorEnvelope:
    """Wrap a list of errors."""
    return {"meta": _meta(), "errors": errors}
