"""Cursor encoding: typed round-trips, tamper evidence, and only InvalidCursorError on bad input."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import hashlib
import hmac
import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cst_chassis.cursor import (
    MAX_CURSOR_LENGTH,
    CursorPayload,
    CursorValue,
    decode_cursor,
    encode_cursor,
)
from cst_chassis.errors import InvalidCursorError, InvalidPaginationError

SECRET = b"test-secret"
ORDERING = "ordering-fingerprint"


def _sign(body: bytes, secret: bytes = SECRET) -> str:
    # Builds a correctly signed cursor around an arbitrary body, the way only a holder of the
    # secret could: proves the content checks do not rely on the MAC alone.
    key = hmac.new(secret, b"cst-chassis keyset cursor v1", hashlib.sha256).digest()
    mac = hmac.new(key, b"\x01" + body, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(b"\x01" + mac + body).rstrip(b"=").decode()


def _roundtrip(*values: CursorValue) -> tuple[CursorValue, ...]:
    token = encode_cursor(CursorPayload(ORDERING, "after", values), SECRET)
    return decode_cursor(token, SECRET, ordering=ORDERING).values


EXAMPLES: list[CursorValue] = [
    None,
    True,
    False,
    0,
    -(2**70),
    1.5,
    -0.0,
    float("inf"),
    "",
    "héllo/?&=+ \x00",
    b"\x00\xff",
    decimal.Decimal("-12.3400"),
    decimal.Decimal("1E+30"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    dt.datetime(2024, 2, 29, 23, 59, 59, 999999),
    dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=-3, minutes=-30))),
    dt.date(1, 1, 1),
    dt.time(1, 2, 3, 4),
]


@pytest.mark.parametrize("value", EXAMPLES, ids=repr)
def test_each_supported_type_round_trips_with_its_type(value: CursorValue) -> None:
    (back,) = _roundtrip(value)
    assert back == value
    assert type(back) is type(value)


def test_aware_datetime_keeps_its_offset() -> None:
    value = dt.datetime(2024, 6, 1, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=45)))
    (back,) = _roundtrip(value)
    assert isinstance(back, dt.datetime)
    assert back.utcoffset() == dt.timedelta(hours=5, minutes=45)


def test_nan_round_trips() -> None:
    (back,) = _roundtrip(float("nan"))
    assert isinstance(back, float) and back != back


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=20)
        | st.binary(max_size=10)
        | st.decimals(allow_nan=False)
        | st.uuids()
        | st.datetimes()
        | st.datetimes(timezones=st.timezones())
        | st.dates()
        | st.times(),
        max_size=4,
    )
)
def test_random_values_round_trip_exactly(values: list[CursorValue]) -> None:
    back = _roundtrip(*values)
    assert [_comparable(v) for v in back] == [_comparable(v) for v in values]
    assert [type(v) for v in back] == [type(v) for v in values]


def _comparable(value: CursorValue) -> object:
    # An aware datetime comes back with a fixed offset instead of its zone: same wall time and
    # same offset, hence the same instant (== between zones is False around DST folds).
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return (value.replace(tzinfo=None), value.utcoffset())
    return value


def test_cursor_is_url_safe_text() -> None:
    token = encode_cursor(CursorPayload(ORDERING, "before", ("a b&c", 1)), SECRET)
    assert token.isascii()
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_direction_round_trips() -> None:
    for direction in ("after", "at_or_after", "before", "at_or_before"):
        token = encode_cursor(CursorPayload(ORDERING, direction, (1,)), SECRET)
        assert decode_cursor(token, SECRET, ordering=ORDERING).direction == direction


def test_unsupported_value_type_is_a_type_error_at_encoding() -> None:
    with pytest.raises(TypeError, match="cannot carry a dict"):
        encode_cursor(CursorPayload(ORDERING, "after", ({},)), SECRET)  # type: ignore[arg-type]  # deliberately wrong


def _bad_cursors() -> dict[str, str]:
    good = encode_cursor(CursorPayload(ORDERING, "after", (1, "x")), SECRET)
    flipped = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    return {
        "empty": "",
        "not-base64": "!!!!",
        "padding": good + "==",
        "standard-alphabet": good.replace("-", "+") if "-" in good else good + "+",
        "one-char": "A",
        "truncated": good[:20],
        "tampered": flipped,
        "other-secret": encode_cursor(CursorPayload(ORDERING, "after", (1,)), b"other"),
        "foreign-ordering": encode_cursor(CursorPayload("another", "after", (1,)), SECRET),
        "huge": "A" * (MAX_CURSOR_LENGTH + 1),
        "non-ascii": good + "é",
        "nul": good + "\x00",
        "wrong-version": base64.urlsafe_b64encode(b"\x02" + b"x" * 40).decode().rstrip("="),
        "not-json": _sign(b"{not json"),
        "not-utf8": _sign(b"\xff\xfe"),
        "json-list": _sign(b"[1,2]"),
        "deep-json": _sign(b"[" * 3000 + b"]" * 3000),
        "no-values": _sign(json.dumps({"o": ORDERING, "d": "a"}).encode()),
        "bad-direction": _sign(json.dumps({"o": ORDERING, "d": "x", "k": []}).encode()),
        "untagged-value": _sign(json.dumps({"o": ORDERING, "d": "a", "k": [1]}).encode()),
        "unknown-tag": _sign(json.dumps({"o": ORDERING, "d": "a", "k": [["q", "1"]]}).encode()),
        "bad-int": _sign(json.dumps({"o": ORDERING, "d": "a", "k": [["i", "1.5"]]}).encode()),
        "huge-int": _sign(json.dumps({"o": ORDERING, "d": "a", "k": [["i", "9" * 5000]]}).encode()),
        "bad-bool": _sign(json.dumps({"o": ORDERING, "d": "a", "k": [["b", "yes"]]}).encode()),
        "bad-date": _sign(
            json.dumps({"o": ORDERING, "d": "a", "k": [["da", "2024-13-01"]]}).encode()
        ),
        "bad-decimal": _sign(json.dumps({"o": ORDERING, "d": "a", "k": [["d", "1,5"]]}).encode()),
        "bad-uuid": _sign(json.dumps({"o": ORDERING, "d": "a", "k": [["u", "xyz"]]}).encode()),
        "bad-float": _sign(json.dumps({"o": ORDERING, "d": "a", "k": [["f", "1e999x"]]}).encode()),
        "bad-bytes": _sign(json.dumps({"o": ORDERING, "d": "a", "k": [["x", "!"]]}).encode()),
    }


@pytest.mark.parametrize("case", sorted(_bad_cursors()))
def test_bad_cursor_raises_invalid_cursor_error_with_path_cursor(case: str) -> None:
    with pytest.raises(InvalidCursorError) as info:
        decode_cursor(_bad_cursors()[case], SECRET, ordering=ORDERING)
    assert info.value.path == "cursor"
    assert isinstance(info.value, InvalidPaginationError)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_raises_anything_but_invalid_cursor_error(text: str) -> None:
    with contextlib.suppress(InvalidCursorError):
        decode_cursor(text, SECRET, ordering=ORDERING)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_signed_body_never_raises_anything_but_invalid_cursor_error(body: bytes) -> None:
    with contextlib.suppress(InvalidCursorError):
        decode_cursor(_sign(body), SECRET, ordering=ORDERING)


def test_error_message_does_not_echo_the_cursor() -> None:
    hostile = "<script>alert(1)</script>"
    with pytest.raises(InvalidCursorError) as info:
        decode_cursor(hostile, SECRET, ordering=ORDERING)
    assert "script" not in str(info.value)


def test_cursor_can_be_vetted_without_knowing_its_ordering() -> None:
    token = encode_cursor(CursorPayload("some-ordering", "after", (1,)), SECRET)
    assert decode_cursor(token, SECRET, ordering=None).ordering == "some-ordering"
    with pytest.raises(InvalidCursorError):
        decode_cursor(token[:-1], SECRET, ordering=None)
