"""Opaque, tamper-evident cursors for keyset pagination.

A cursor is the url-safe base64 (no padding) of ``version byte + HMAC + JSON payload``. The
payload names the ordering it belongs to (a fingerprint computed by :mod:`cst_chassis.keyset`),
which side of the boundary row the page lies on, and the boundary row's sort-key values, each
tagged with its type so that ``int``, ``float``, ``bool``, ``str``, ``bytes``, ``Decimal``,
``UUID``, ``datetime`` (naive and aware), ``date``, ``time`` and ``None`` come back exactly.

The HMAC (SHA-256, truncated to 128 bits) uses a key derived from the caller's secret, so a
cursor cannot be forged or edited without it. Secrets rotate: :func:`decode_cursor` also accepts
cursors signed with ``fallbacks`` (older secrets), while new ones are signed with the first. A
cursor carries the second it was issued at, so ``max_age`` can expire it; and
:func:`scoped_secret` derives a secret per endpoint, so a cursor issued by one endpoint does not
verify on another. Anything wrong with a cursor raises
:class:`~cst_chassis.errors.InvalidCursorError` and nothing else; the MAC is checked before the
JSON is parsed, so hostile input never reaches the JSON parser.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import functools
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from cst_chassis.errors import InvalidCursorError

__all__ = [
    "MAX_CURSOR_LENGTH",
    "CursorPayload",
    "CursorValue",
    "Direction",
    "decode_cursor",
    "encode_cursor",
    "scoped_secret",
]

# What a cursor may carry: the Python types SQLAlchemy returns for common sort columns.
CursorValue: TypeAlias = (
    int
    | float
    | bool
    | str
    | bytes
    | decimal.Decimal
    | uuid.UUID
    | dt.datetime
    | dt.date
    | dt.time
    | None
)
"""A value a cursor may carry: the Python types SQLAlchemy returns for common sort columns."""

# Where the page lies relative to the boundary row, in the ordering's own direction.
Direction = Literal["after", "at_or_after", "before", "at_or_before"]
"""Where a page lies relative to the cursor's boundary row, in the ordering's direction."""

# Longer cursors are refused unread: a real one is a few hundred characters unless the sort
# keys are long strings, and proxies commonly cap URLs near 8 KiB.
MAX_CURSOR_LENGTH = 4096
"""Longest cursor accepted, in characters; longer ones are refused unread."""

_VERSION = b"\x01"
_MAC_BYTES = 16
_KEY_CONTEXT = b"cst-chassis keyset cursor v1"
_SCOPE_CONTEXT = b"cst-chassis keyset cursor scope\x00"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_INTEGER = re.compile(r"-?[0-9]+")
_DIRECTION_CODES: dict[Direction, str] = {
    "after": "a",
    "at_or_after": "A",
    "before": "b",
    "at_or_before": "B",
}
_DIRECTIONS: dict[str, Direction] = {code: name for name, code in _DIRECTION_CODES.items()}


@dataclass(frozen=True, slots=True)
class CursorPayload:
    """What a cursor carries: the ordering's fingerprint, a direction, the boundary values.

    ``issued_at`` (Unix seconds) is set by :func:`encode_cursor` and read back by
    :func:`decode_cursor`; ``None`` for a cursor made before cursors carried it.
    """

    ordering: str
    direction: Direction
    values: tuple[CursorValue, ...]
    issued_at: int | None = None


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    # The alphabet check makes decoding strict (the stdlib silently drops foreign characters),
    # and re-encoding rejects non-canonical spellings of the same bytes.
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise InvalidCursorError("The cursor is not valid url-safe base64")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(raw) != text:
        raise InvalidCursorError("The cursor is not valid url-safe base64")
    return raw


@functools.lru_cache(maxsize=256)
def _derived_key(secret: bytes) -> bytes:
    # A key of its own, so the app's SECRET_KEY never signs anything but what Flask signs.
    return hmac.new(secret, _KEY_CONTEXT, hashlib.sha256).digest()


def _mac(secret: bytes, message: bytes) -> bytes:
    return hmac.digest(_derived_key(secret), message, hashlib.sha256)[:_MAC_BYTES]


@functools.lru_cache(maxsize=1024)
def scoped_secret(secret: bytes, scope: str) -> bytes:
    """The secret that signs the cursors of one ``scope`` (e.g. an endpoint).

    Derived from ``secret``: a cursor signed with ``scoped_secret(s, "a")`` does not verify with
    ``scoped_secret(s, "b")``:
    the resource mixin scopes by endpoint, so a cursor cannot be replayed on another endpoint
    that happens to sort the same way.
    """
    _check_secret(secret)
    return hmac.digest(secret, _SCOPE_CONTEXT + scope.encode(), hashlib.sha256)


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or not secret:
        raise TypeError("the cursor secret must be non-empty bytes")


def _encode_value(value: CursorValue) -> list[str] | None:
    # Order matters: bool is an int, datetime is a date.
    if value is None:
        return None
    if isinstance(value, bool):
        return ["b", "1" if value else "0"]
    if isinstance(value, int):
        return ["i", str(value)]
    if isinstance(value, float):
        return ["f", value.hex()]
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, bytes):
        return ["x", _b64encode(value)]
    if isinstance(value, decimal.Decimal):
        return ["d", str(value)]
    if isinstance(value, uuid.UUID):
        return ["u", value.hex]
    if isinstance(value, dt.datetime):
        return ["dt", value.isoformat()]
    if isinstance(value, dt.date):
        return ["da", value.isoformat()]
    if isinstance(value, dt.time):
        return ["t", value.isoformat()]
    raise TypeError(
        f"a keyset cursor cannot carry a {type(value).__name__} sort value; sort on columns of "
        "type int, float, bool, str, bytes, Decimal, UUID, datetime, date or time"
    )


def _decode_value(item: object) -> CursorValue:
    if item is None:
        return None
    if not (
        isinstance(item, list)
        and len(item) == 2
        and isinstance(item[0], str)
        and isinstance(item[1], str)
    ):
        raise InvalidCursorError("The cursor holds a malformed value")
    tag: str = item[0]
    text: str = item[1]
    try:
        if tag == "b" and text in ("0", "1"):
            return text == "1"
        if tag == "i" and _INTEGER.fullmatch(text):
            return int(text)
        if tag == "f":
            return float.fromhex(text)
        if tag == "s":
            return text
        if tag == "x":
            return _b64decode(text) if text else b""
        if tag == "d":
            return decimal.Decimal(text)
        if tag == "u":
            return uuid.UUID(hex=text)
        if tag == "dt":
            return dt.datetime.fromisoformat(text)
        if tag == "da":
            return dt.date.fromisoformat(text)
        if tag == "t":
            return dt.time.fromisoformat(text)
    except InvalidCursorError:
        raise
    except (ValueError, ArithmeticError):
        pass
    raise InvalidCursorError("The cursor holds a malformed value")


def encode_cursor(payload: CursorPayload, secret: bytes) -> str:
    """Serialise and sign ``payload``; the result is safe in a URL query string unescaped.

    The cursor records ``payload.issued_at``, or the current time when it is ``None``.
    Raises ``TypeError`` for a value of an unsupported type (a programming error, not bad input).
    """
    _check_secret(secret)
    issued_at = int(time.time()) if payload.issued_at is None else payload.issued_at
    body = json.dumps(
        {
            "o": payload.ordering,
            "d": _DIRECTION_CODES[payload.direction],
            "k": [_encode_value(value) for value in payload.values],
            "t": issued_at,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    message = _VERSION + body
    return _b64encode(_VERSION + _mac(secret, message) + body)


def decode_cursor(
    cursor: str,
    secret: bytes,
    *,
    ordering: str | None,
    fallbacks: Sequence[bytes] = (),
    max_age: float | None = None,
    now: float | None = None,
) -> CursorPayload:
    """Verify and decode a cursor made by :func:`encode_cursor` for ``ordering``.

    The cursor verifies when it was signed with ``secret`` or one of ``fallbacks`` (older
    secrets, during a rotation). With ``max_age`` (seconds), a cursor issued longer ago than
    that (at ``now``, default the current time), or carrying no issue time, has expired.

    Raises :class:`~cst_chassis.errors.InvalidCursorError` (``path == "cursor"``) when the
    cursor is too long, not base64, signed with another secret, edited, expired, made for
    another ordering, or carries malformed values. ``ordering=None`` skips the ordering check
    (to vet a cursor before the statement it belongs to is known).
    """
    _check_secret(secret)
    for fallback in fallbacks:
        _check_secret(fallback)
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursorError("The cursor is too long")
    raw = _b64decode(cursor)
    version, mac, body = raw[:1], raw[1 : 1 + _MAC_BYTES], raw[1 + _MAC_BYTES :]
    if version != _VERSION or len(mac) != _MAC_BYTES:
        raise InvalidCursorError("The cursor is not one this service issued")
    if not any(hmac.compare_digest(mac, _mac(key, version + body)) for key in (secret, *fallbacks)):
        raise InvalidCursorError("The cursor is not one this service issued")
    try:
        data = json.loads(body.decode())
    except (ValueError, RecursionError, binascii.Error):
        raise InvalidCursorError("The cursor's content is malformed") from None
    if not (
        isinstance(data, dict)
        and isinstance(data.get("o"), str)
        and data.get("d") in _DIRECTIONS
        and isinstance(data.get("k"), list)
    ):
        raise InvalidCursorError("The cursor's content is malformed")
    issued_at = data.get("t")
    if issued_at is not None and (type(issued_at) is not int):
        raise InvalidCursorError("The cursor's content is malformed")
    if max_age is not None:
        current = time.time() if now is None else now
        if issued_at is None or current - issued_at > max_age:
            raise InvalidCursorError(
                "The cursor has expired: start again from the first page (no cursor)"
            )
    if ordering is not None and data["o"] != ordering:
        raise InvalidCursorError("The cursor belongs to another ordering")
    values = tuple(_decode_value(item) for item in data["k"])
    return CursorPayload(data["o"], _DIRECTIONS[data["d"]], values, issued_at)
