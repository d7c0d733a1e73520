"""Kept import path: keyset cursors live in :mod:`cst_chassis.pagination.cursor`."""

from __future__ import annotations

from cst_chassis.pagination.cursor import (
    MAX_CURSOR_LENGTH,
    CursorPayload,
    CursorValue,
    Direction,
    decode_cursor,
    encode_cursor,
)

__all__ = [
    "MAX_CURSOR_LENGTH",
    "CursorPayload",
    "CursorValue",
    "Direction",
    "decode_cursor",
    "encode_cursor",
]
