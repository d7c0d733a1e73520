"""Hostile input: pagination parameters, operation-id header values, URL arguments, raw bytes.

Property-based (hypothesis) in-process, where Werkzeug's ``environ_overrides`` lets any header
value through; raw sockets against real servers (Werkzeug threaded, gunicorn, and uvicorn and
granian over ASGI) for the CR/LF cases an HTTP client refuses to send. Whatever comes in: a valid
page or a 400 envelope, never a 500, one ``X-Operation-ID`` header holding a safe token, and never
an extra log line.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.service import create_app, dispose_app
from tests.reliability.support import (
    HEADER,
    MAX_PAGE,
    ROWS,
    GunicornServer,
    LogCapture,
    ServerProcess,
    body_leak,
    captured_log,
    envelope_problem,
    granian_asgi_server,
    gunicorn_server,
    parse_log,
    service_database,
    uvicorn_server,
    werkzeug_server,
)

SAFE_ID = re.compile(r"[A-Za-z0-9\-_.:]{1,128}")
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
MAX_OFFSET = 2**53
EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    # The app and the log capture are module-scoped; the conftest's autouse fixtures only
    # check the environment and the operation id, which hold for every example.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, LogCapture]]:
    directory = tmp_path_factory.mktemp("bad-input")
    with service_database("sqlite", directory) as database:
        app = create_app(database.settings())
        try:
            with captured_log() as log:
                yield app, log
        finally:
            dispose_app(app)


@pytest.fixture
def client(served: tuple[Flask, LogCapture]) -> FlaskClient:
    return served[0].test_client()


@pytest.fixture
def log(served: tuple[Flask, LogCapture]) -> LogCapture:
    return served[1]


def _wsgi(value: str) -> str:
    # What a WSGI server puts in the environ: the header's bytes decoded as latin-1.
    return value.encode("utf-8", "surrogatepass").decode("latin-1")


def _expected_natural(text: str, low: int, high: int) -> int | None:
    if re.fullmatch(r"[0-9]+", text) is None:
        return None
    value = int(text)
    return value if low <= value <= high else None


numbers_as_text = st.one_of(
    st.integers(min_value=-5, max_value=MAX_OFFSET + 5).map(str),
    st.sampled_from(
        ["", " 1", "1 ", "+5", "-0", "0x10", "1.5", "1e3", "٣", "1\x00", "00", "9" * 40]
    ),
    st.text(max_size=12),
)


@EXAMPLES
@given(offset=numbers_as_text, limit=numbers_as_text)
def test_pagination_parameters_give_a_valid_page_or_a_400_envelope(
    client: FlaskClient, offset: str, limit: str
) -> None:
    response = client.get("/items", query_string={"offset": offset, "limit": limit})

    want_offset = _expected_natural(offset, 0, MAX_OFFSET)
    want_limit = _expected_natural(limit, 1, MAX_PAGE)
    body = response.get_data()
    if want_offset is None or want_limit is None:
        assert response.status_code == 400, body
        assert envelope_problem(body, 400) is None
        paths = {error.get("path") for error in response.get_json()["errors"]}
        assert paths <= {"offset", "limit"} and paths
    else:
        assert response.status_code == 200, body
        ids = [item["id"] for item in response.get_json()["data"]]
        assert ids == list(range(want_offset + 1, min(want_offset + want_limit, ROWS) + 1))


@EXAMPLES
@given(args=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=5))
def test_random_url_arguments_give_a_valid_page_or_a_400_envelope(
    client: FlaskClient, args: dict[str, str]
) -> None:
    response = client.get("/items", query_string=args)

    assert response.status_code in {200, 400}
    if response.status_code == 400:
        assert envelope_problem(response.get_data(), 400) is None
    else:
        links = response.get_json()["meta"]["pagination"]
        assert all(link is None or "\n" not in link for link in links.values())


header_values = st.one_of(
    st.text(max_size=200),
    st.text(alphabet="abc-_.:\r\n\t\x00 \x7f", max_size=40),
    st.sampled_from(
        ["", "a" * 128, "a" * 129, "ok\r\nX-Injected: 1", "ok\nX-Injected: 1", "id\r", "é", "a,b"]
    ),
)


@EXAMPLES
@given(value=header_values)
def test_operation_id_header_is_reused_only_when_safe_and_never_injected(
    client: FlaskClient, log: LogCapture, value: str
) -> None:
    token = uuid.uuid4().hex
    response = client.get(
        f"/sync?token={token}", environ_overrides={"HTTP_X_OPERATION_ID": _wsgi(value)}
    )

    assert response.status_code == 200
    ids = response.headers.getlist(HEADER)
    assert len(ids) == 1
    (op,) = ids
    assert op == value if SAFE_ID.fullmatch(value) else UUID4.fullmatch(op)
    assert response.get_json()["meta"]["operation_id"] == op
    parsed = parse_log(log.text())
    assert parsed.stray == []
    mine = [r.message for r in parsed.records if token in r.message]
    assert mine == [f"served sync token={token}"]
    assert [r.operation_id for r in parsed.records if token in r.message] == [op]


# --- raw bytes on real servers -----------------------------------------------------------------

# Header lines an HTTP client refuses to send. {token} is replaced per request.
RAW_HEADERS = {
    "bare CR": b"X-Operation-ID: ok-{token}\rX-Injected: 1",
    "bare LF": b"X-Operation-ID: ok-{token}\nX-Injected: 1",
    "CRLF then header": b"X-Operation-ID: ok-{token}\r\nX-Injected: 1",
    "folded line": b"X-Operation-ID: ok-{token}\r\n X-Injected: 1",
    "two id headers": b"X-Operation-ID: one-{token}\r\nX-Operation-ID: two-{token}",
    "NUL byte": b"X-Operation-ID: ok\x00{token}",
    "UTF-8 bytes": "X-Operation-ID: \u00e9t\u00e9-{token}".encode(),
    "latin-1 bytes": b"X-Operation-ID: \xe9t\xe9-{token}",
    "DEL and ESC": b"X-Operation-ID: ok\x7f\x1b[31m{token}",
    "very long": b"X-Operation-ID: " + b"a" * 8000 + b"{token}",
    "empty": b"X-Operation-ID: ",
    "percent-encoded CRLF": b"X-Operation-ID: ok%0d%0aX-Injected:%201-{token}",
}


def _raw_get(port: int, token: str, header: bytes) -> bytes:
    request = (
        f"GET /sync?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".encode()
        + header.replace(b"{token}", token.encode())
        + b"\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _check_raw_answer(answer: bytes, token: str, log_text: str) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    status = int(status_line.split()[1])
    names = [line.split(b":", 1)[0].strip().lower() for line in header_lines]
    assert b"x-injected" not in names
    parsed = parse_log(log_text)
    assert parsed.stray == []
    # The app's own lines; Werkzeug's access line names the token too (its id is not set).
    mine = [r for r in parsed.records if token in r.message and r.logger != "werkzeug"]
    if status == 400 and HEADER.lower().encode() not in names:
        # The server's HTTP parser refused the request: the app never saw it.
        assert mine == []
        assert body_leak(body) is None
        return
    assert status == 200, answer[:300]
    ids = [
        line.split(b":", 1)[1].strip()
        for line in header_lines
        if line.lower().startswith(b"x-operation-id:")
    ]
    assert len(ids) == 1
    op = ids[0].decode("latin-1")
    assert SAFE_ID.fullmatch(op)
    assert [(r.operation_id, r.message) for r in mine] == [(op, f"served sync token={token}")]


@pytest.mark.parametrize("case", list(RAW_HEADERS))
def test_raw_header_bytes_on_the_threaded_server_never_inject_a_header_or_a_log_line(
    served: tuple[Flask, LogCapture], case: str
) -> None:
    app, log = served
    token = uuid.uuid4().hex
    with werkzeug_server(app) as port:
        answer = _raw_get(port, token, RAW_HEADERS[case])

    _check_raw_answer(answer, token, log.text())


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    directory = tmp_path_factory.mktemp("bad-input-gunicorn")
    with (
        service_database("sqlite", directory) as database,
        gunicorn_server(database.settings(), directory, workers=1, threads=2) as server,
    ):
        yield server


@pytest.mark.parametrize("case", list(RAW_HEADERS))
def test_raw_header_bytes_on_gunicorn_never_inject_a_header_or_a_log_line(
    gunicorn: GunicornServer, case: str
) -> None:
    token = uuid.uuid4().hex
    answer = _raw_get(gunicorn.port, token, RAW_HEADERS[case])

    _check_raw_answer(answer, token, gunicorn.log_text())


@pytest.fixture(scope="module", params=["uvicorn", "granian-asgi"])
def asgi_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("bad-input-asgi")
    serve = uvicorn_server if request.param == "uvicorn" else granian_asgi_server
    with (
        service_database("sqlite", directory) as database,
        serve(database.settings(), directory, workers=1) as server,
    ):
        yield server


@pytest.mark.parametrize("case", list(RAW_HEADERS))
def test_raw_header_bytes_over_asgi_never_inject_a_header_or_a_log_line(
    asgi_server: ServerProcess, case: str
) -> None:
    token = uuid.uuid4().hex
    answer = _raw_get(asgi_server.port, token, RAW_HEADERS[case])

    _check_raw_answer(answer, token, asgi_server.log_text())
