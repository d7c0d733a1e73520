"""Cursor encoding: typed round-trips, tamper evidence, and only InvalidCursorError on bad input."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import hashlib
import hmac
import json
import re
import time
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
from cst_chassis.pagination.cursor import scoped_secret

SECRET = b"test-secret"
ORDERING = "ordering-fingerprint"


def _sign(body: bytes, secret: bytes = SECRET, version: bytes = b"\x01") -> str:
    # Builds a correctly signed cursor around an arbitrary body, the way only a holder of the
    # secret could: proves the content checks do not rely on the MAC alone.
    key = hmac.new(secret, b"cst-chassis keyset cursor v1", hashlib.sha256).digest()
    mac = hmac.new(key, version + body, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(version + mac + body).rstrip(b"=").decode()


def _signed_values(*values: object, direction: str = "a", issued_at: int | None = None) -> str:
    # A signed cursor whose value list is written out by hand (JSON as compact as the code's).
    body: dict[str, object] = {"o": ORDERING, "d": direction, "k": list(values)}
    if issued_at is not None:
        body["t"] = issued_at
    return _sign(json.dumps(body, separators=(",", ":")).encode())


def _roundtrip(*values: CursorValue) -> tuple[CursorValue, ...]:
    token = encode_cursor(CursorPayload(ORDERING, "after", values), SECRET)
    return decode_cursor(token, SECRET, ordering=ORDERING).values


EXAMPLES: list[CursorValue] = [
    None,
    True,
    False,
    0,
    12,
    -(2**70),
    1.5,
    -0.0,
    float("inf"),
    "",
    "héllo/?&=+ \x00",
    # Strings that spell another type's encoding stay strings.
    "0",
    "1",
    "12",
    b"",
    b"\x00\xff",
    decimal.Decimal("1"),
    decimal.Decimal("-12.3400"),
    decimal.Decimal("1E+30"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    dt.datetime(2024, 2, 29, 23, 59, 59, 999999),
    dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=-3, minutes=-30))),
    dt.date(1, 1, 1),
    dt.time(1, 2, 3, 4),
]


# Ids by position and type: a repr with backslashes cannot be named on a pytest command line,
# which is how mutmut selects tests.
@pytest.mark.parametrize(
    "value", EXAMPLES, ids=[f"{i}-{type(v).__name__}" for i, v in enumerate(EXAMPLES)]
)
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
    message = (
        "a keyset cursor cannot carry a dict sort value; sort on columns of type int, float, "
        "bool, str, bytes, Decimal, UUID, datetime, date or time"
    )
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
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
        # Base64 characters, but a length no encoding has (1 more than a multiple of 4).
        "five-chars": "A" * 5,
        # Decodes, but is not how those bytes are spelled (the last character has spare bits set).
        "non-canonical": "AAAAAB",
        # Decodable lengths that need 2 and 1 padding characters: too short to be a cursor.
        "ten-chars": "A" * 10,
        "fifteen-chars": "A" * 15,
        "wrong-version": base64.urlsafe_b64encode(b"\x02" + b"x" * 40).decode().rstrip("="),
        # Signed with the right key, but in a format version this code does not speak.
        "signed-other-version": _sign(b'{"o":"x","d":"a","k":[]}', version=b"\x02"),
        "not-json": _sign(b"{not json"),
        "not-utf8": _sign(b"\xff\xfe"),
        "json-list": _sign(b"[1,2]"),
        # Nested deeper than the JSON parser recurses, yet short enough to pass the length check.
        "deep-json": _sign(b"[" * 1500 + b"]" * 1500),
        "no-values": _sign(json.dumps({"o": ORDERING, "d": "a"}).encode()),
        "values-not-a-list": _sign(json.dumps({"o": ORDERING, "d": "a", "k": "ab"}).encode()),
        "no-direction": _sign(json.dumps({"o": ORDERING, "k": []}).encode()),
        "ordering-not-text": _sign(json.dumps({"o": 1, "d": "a", "k": []}).encode()),
        "bad-direction": _sign(json.dumps({"o": ORDERING, "d": "x", "k": []}).encode()),
        "untagged-value": _signed_values(1),
        "untyped-text": _signed_values(["s", 1]),
        "untyped-tag": _signed_values([1, "1"]),
        "three-part-value": _signed_values(["s", "a", "b"]),
        "unknown-tag": _signed_values(["q", "1"]),
        "bad-int": _signed_values(["i", "1.5"]),
        "bad-bool": _signed_values(["b", "yes"]),
        "bad-date": _signed_values(["da", "2024-13-01"]),
        "bad-decimal": _signed_values(["d", "1,5"]),
        "bad-uuid": _signed_values(["u", "xyz"]),
        "bad-float": _signed_values(["f", "1e999x"]),
        "bad-bytes": _signed_values(["x", "!"]),
    }


NOT_BASE64 = "The cursor is not valid url-safe base64"
NOT_ISSUED = "The cursor is not one this service issued"
MALFORMED = "The cursor's content is malformed"
BAD_VALUE = "The cursor holds a malformed value"
# The message each bad cursor gets: the 400 envelope shows it to the client.
BAD_CURSOR_MESSAGES = {
    "empty": NOT_BASE64,
    "not-base64": NOT_BASE64,
    "padding": NOT_BASE64,
    "standard-alphabet": NOT_BASE64,
    "one-char": NOT_BASE64,
    "five-chars": NOT_BASE64,
    "non-canonical": NOT_BASE64,
    "non-ascii": NOT_BASE64,
    "nul": NOT_BASE64,
    "ten-chars": NOT_ISSUED,
    "fifteen-chars": NOT_ISSUED,
    "truncated": NOT_ISSUED,
    "tampered": NOT_ISSUED,
    "other-secret": NOT_ISSUED,
    "wrong-version": NOT_ISSUED,
    "signed-other-version": NOT_ISSUED,
    "foreign-ordering": "The cursor belongs to another ordering",
    "huge": "The cursor is too long",
    "not-json": MALFORMED,
    "not-utf8": MALFORMED,
    "json-list": MALFORMED,
    "deep-json": MALFORMED,
    "no-values": MALFORMED,
    "values-not-a-list": MALFORMED,
    "no-direction": MALFORMED,
    "ordering-not-text": MALFORMED,
    "bad-direction": MALFORMED,
    "untagged-value": BAD_VALUE,
    "untyped-text": BAD_VALUE,
    "untyped-tag": BAD_VALUE,
    "three-part-value": BAD_VALUE,
    "unknown-tag": BAD_VALUE,
    "bad-int": BAD_VALUE,
    "bad-bool": BAD_VALUE,
    "bad-date": BAD_VALUE,
    "bad-decimal": BAD_VALUE,
    "bad-uuid": BAD_VALUE,
    "bad-float": BAD_VALUE,
    "bad-bytes": NOT_BASE64,  # a bytes value is base64 too
}


def test_every_bad_cursor_case_has_its_expected_message() -> None:
    assert sorted(BAD_CURSOR_MESSAGES) == sorted(_bad_cursors())


@pytest.mark.parametrize("case", sorted(_bad_cursors()))
def test_bad_cursor_raises_invalid_cursor_error_with_path_cursor(case: str) -> None:
    with pytest.raises(InvalidCursorError) as info:
        decode_cursor(_bad_cursors()[case], SECRET, ordering=ORDERING)
    assert info.value.path == "cursor"
    assert isinstance(info.value, InvalidPaginationError)
    assert info.value.message == str(info.value) == BAD_CURSOR_MESSAGES[case]


@pytest.mark.parametrize("length", range(25))
def test_short_base64_of_any_length_is_an_invalid_cursor_error(length: int) -> None:
    with pytest.raises(InvalidCursorError):
        decode_cursor("A" * length, SECRET, ordering=ORDERING)


@pytest.mark.parametrize("cursor", [None, b"AAAA", 12])
def test_a_cursor_that_is_not_text_is_an_invalid_cursor_error(cursor: object) -> None:
    with pytest.raises(InvalidCursorError):
        decode_cursor(cursor, SECRET, ordering=ORDERING)  # type: ignore[arg-type]  # deliberately wrong


def test_a_cursor_of_exactly_the_maximum_length_is_accepted() -> None:
    # 2989 characters make a body of 3055 bytes (with the issue time, 10 digits until 2286):
    # with version and MAC, 3072 bytes, which is exactly MAX_CURSOR_LENGTH (4096) base64
    # characters.
    longest = encode_cursor(CursorPayload(ORDERING, "after", ("s" * 2989,)), SECRET)
    assert len(longest) == MAX_CURSOR_LENGTH
    assert decode_cursor(longest, SECRET, ordering=ORDERING).values == ("s" * 2989,)
    longer = encode_cursor(CursorPayload(ORDERING, "after", ("s" * 2990,)), SECRET)
    assert len(longer) > MAX_CURSOR_LENGTH
    with pytest.raises(InvalidCursorError, match=r"^The cursor is too long$"):
        decode_cursor(longer, SECRET, ordering=ORDERING)


@pytest.mark.parametrize("secret", [b"", "a-text-secret-not-bytes", None])
def test_the_secret_must_be_non_empty_bytes(secret: object) -> None:
    payload = CursorPayload(ORDERING, "after", (1,))
    token = encode_cursor(payload, SECRET)
    message = "^the cursor secret must be non-empty bytes$"
    with pytest.raises(TypeError, match=message):
        encode_cursor(payload, secret)  # type: ignore[arg-type]  # deliberately wrong
    with pytest.raises(TypeError, match=message):
        decode_cursor(token, secret, ordering=ORDERING)  # type: ignore[arg-type]  # deliberately wrong


def test_the_wire_format_is_the_documented_one() -> None:
    # Cursors outlive deploys (clients keep next links), so the encoding is a contract: the
    # version byte, the truncated HMAC-SHA-256 under the derived key, and this JSON, spelled
    # out here by hand rather than produced by the code under test.
    zone = dt.timezone(dt.timedelta(hours=-3, minutes=-30))
    payload = CursorPayload(
        ORDERING,
        "at_or_before",
        (
            True,
            False,
            -5,
            1.5,
            "ä1",
            b"\x00\xfb",
            decimal.Decimal("1.50"),
            uuid.UUID(int=255),
            dt.datetime(2024, 1, 2, 3, 4, 5, 6),
            dt.datetime(2024, 1, 2, 3, 4, tzinfo=zone),
            dt.date(2024, 1, 2),
            dt.time(3, 4, 5),
            None,
        ),
        issued_at=1700000000,
    )
    body = (
        '{"o":"ordering-fingerprint","d":"B","k":[["b","1"],["b","0"],["i","-5"],'
        '["f","0x1.8000000000000p+0"],["s","ä1"],["x","APs"],["d","1.50"],'
        '["u","000000000000000000000000000000ff"],["dt","2024-01-02T03:04:05.000006"],'
        '["dt","2024-01-02T03:04:00-03:30"],["da","2024-01-02"],["t","03:04:05"],null],'
        '"t":1700000000}'
    ).encode()
    assert encode_cursor(payload, SECRET) == _sign(body)
    assert decode_cursor(_sign(body), SECRET, ordering=ORDERING) == payload


@pytest.mark.parametrize(
    ("code", "direction"),
    [("a", "after"), ("A", "at_or_after"), ("b", "before"), ("B", "at_or_before")],
)
def test_each_direction_has_its_one_letter_code(code: str, direction: str) -> None:
    token = _signed_values(["i", "1"], direction=code, issued_at=1700000000)
    assert decode_cursor(token, SECRET, ordering=ORDERING).direction == direction
    payload = CursorPayload(ORDERING, direction, (1,), issued_at=1700000000)
    assert encode_cursor(payload, SECRET) == token


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


# -- rotation, expiry, scopes (issue 26, item 3) -------------------------------------------------

OLD = b"the-secret-of-last-month"
NEW = b"the-secret-of-this-month"


def test_a_cursor_signed_with_a_fallback_secret_still_verifies() -> None:
    payload = CursorPayload(ORDERING, "after", (1,), issued_at=1700000000)
    old_cursor = encode_cursor(payload, OLD)
    assert decode_cursor(old_cursor, NEW, ordering=ORDERING, fallbacks=[OLD]) == payload
    with pytest.raises(InvalidCursorError, match=r"^The cursor is not one this service issued$"):
        decode_cursor(old_cursor, NEW, ordering=ORDERING)


def test_a_cursor_older_than_max_age_has_expired() -> None:
    cursor = encode_cursor(CursorPayload(ORDERING, "after", (1,), issued_at=1000), SECRET)
    assert decode_cursor(cursor, SECRET, ordering=ORDERING, max_age=60, now=1060).values == (1,)
    with pytest.raises(InvalidCursorError, match=r"^The cursor has expired") as info:
        decode_cursor(cursor, SECRET, ordering=ORDERING, max_age=60, now=1061)
    assert info.value.path == "cursor"


def test_a_cursor_without_an_issue_time_has_expired_when_there_is_a_max_age() -> None:
    # Made before cursors carried one (or forged without it): no age can be proven.
    cursor = _signed_values(["i", "1"])
    assert decode_cursor(cursor, SECRET, ordering=ORDERING).issued_at is None
    with pytest.raises(InvalidCursorError, match=r"^The cursor has expired"):
        decode_cursor(cursor, SECRET, ordering=ORDERING, max_age=3600)


@pytest.mark.parametrize("issued_at", ["1700000000", 1.5, True, None, [1]])
def test_an_issue_time_that_is_not_an_integer_is_malformed(issued_at: object) -> None:
    body = {"o": ORDERING, "d": "a", "k": [["i", "1"]], "t": issued_at}
    cursor = _sign(json.dumps(body, separators=(",", ":")).encode())
    if issued_at is None:
        assert decode_cursor(cursor, SECRET, ordering=ORDERING).issued_at is None
        return
    with pytest.raises(InvalidCursorError, match=r"^The cursor's content is malformed$"):
        decode_cursor(cursor, SECRET, ordering=ORDERING)


def test_a_cursor_carries_the_time_it_was_issued_at() -> None:
    before = int(time.time())
    cursor = encode_cursor(CursorPayload(ORDERING, "after", (1,)), SECRET)
    issued_at = decode_cursor(cursor, SECRET, ordering=ORDERING).issued_at
    assert issued_at is not None
    assert before <= issued_at <= int(time.time())


def test_a_cursor_of_one_scope_does_not_verify_in_another() -> None:
    cursor = encode_cursor(CursorPayload(ORDERING, "after", (1,)), scoped_secret(SECRET, "a"))
    assert decode_cursor(cursor, scoped_secret(SECRET, "a"), ordering=ORDERING).values == (1,)
    for other in (scoped_secret(SECRET, "b"), SECRET):
        with pytest.raises(InvalidCursorError, match=r"^The cursor is not one this service"):
            decode_cursor(cursor, other, ordering=ORDERING)
