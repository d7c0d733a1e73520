"""Pagination over SQLAlchemy statements: offset/limit and keyset (cursor), sync and async.

A Flask-free subpackage, one concern per module, no module importing a sibling that imports it
back:

- :mod:`~cst_chassis.pagination.page`: :class:`Page`, the result of every way of paging;
- :mod:`~cst_chassis.pagination.offset`: :func:`paginate`, :func:`paginate_async`,
  :func:`paginate_query`;
- :mod:`~cst_chassis.pagination.cursor`: signed, opaque cursors;
- :mod:`~cst_chassis.pagination.secret`: the cursor secret and its start-up checks;
- :mod:`~cst_chassis.pagination.keyset`: :func:`paginate_keyset`, :func:`paginate_keyset_async`.

``ApiPaginatedMixin`` (the Flask side, query string and links) lives in
:mod:`cst_chassis.pagination_mixin` and is imported from :mod:`cst_chassis.resources`.
"""

from __future__ import annotations

from cst_chassis.pagination.keyset import (
    DEFAULT_KEYSET_LIMIT,
    paginate_keyset,
    paginate_keyset_async,
)
from cst_chassis.pagination.offset import MAX_OFFSET, paginate, paginate_async, paginate_query
from cst_chassis.pagination.page import Page
from cst_chassis.pagination.secret import MIN_SECRET_BYTES, CursorSecretError

__all__ = [
    "DEFAULT_KEYSET_LIMIT",
    "MAX_OFFSET",
    "MIN_SECRET_BYTES",
    "CursorSecretError",
    "Page",
    "paginate",
    "paginate_async",
    "paginate_keyset",
    "paginate_keyset_async",
    "paginate_query",
]
