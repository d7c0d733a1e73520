"""Request bodies: a default size limit (413 in the envelope) and unparsable JSON as a 400."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import flask_restful
import pytest
from flask import Flask, request
from flask_restful import reqparse
from werkzeug.test import TestResponse

from cst_chassis import ChassisApi, ChassisConfigError, CstMicroChassis, get_state
from cst_chassis.resources import ApiResource

ROOT = Path(__file__).resolve().parent.parent


class Echo(ApiResource):
    def post(self) -> object:
        return request.get_json()


def _app(api_class: type[flask_restful.Api] = ChassisApi, **config: object) -> Flask:
    app = Flask("body-test")
    app.config.update(config)
    CstMicroChassis(app)
    api_class(app).add_resource(Echo, "/echo")

    @app.post("/plain")
    def plain() -> dict[str, object]:
        return {"json": request.get_json()}

    return app


@pytest.mark.parametrize("path", ["/echo", "/plain"])
@pytest.mark.parametrize(
    "body", [b"{not json", b"[" * 1000 + b"]" * 1000, b"[" * 100_000, b'{"a": 1'], ids=repr
)
def test_unparsable_json_is_a_400_naming_the_body(path: str, body: bytes) -> None:
    response = _app().test_client().post(path, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["errors"] == [
        {"message": "The request body is not valid JSON", "path": "body"}
    ]


def test_reqparse_json_argument_with_a_deep_body_is_a_400(app: Flask) -> None:
    class Named(ApiResource):
        def post(self) -> str:
            parser = reqparse.RequestParser()
            parser.add_argument("name", location="json")
            return str(parser.parse_args()["name"])

    ChassisApi(app).add_resource(Named, "/named")
    response = app.test_client().post(
        "/named", data=b'{"name": ' + b"[" * 5000, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["path"] == "body"


def test_default_limit_is_one_mebibyte_and_413_is_enveloped() -> None:
    app = _app(flask_restful.Api)
    assert get_state(app).config.max_content_length == app.config["MAX_CONTENT_LENGTH"] == 2**20
    client = app.test_client()
    payload = b'"' + b"x" * (2**20) + b'"'
    for path in ("/echo", "/plain"):
        response = client.post(path, data=payload, content_type="application/json")
        assert response.status_code == 413
        assert set(response.get_json()) == {"meta", "errors"}
    small = client.post("/echo", json="x" * 1000)
    assert (small.status_code, small.get_json()["data"]) == (200, "x" * 1000)


def _chunked_post(app: Flask, path: str, body: bytes) -> TestResponse:
    # What a server that decodes chunked bodies hands the app: Transfer-Encoding: chunked (so no
    # content length counts) and wsgi.input_terminated set (gunicorn, Werkzeug's server), so
    # Werkzeug reads the decoded stream up to the limit.
    return app.test_client().post(
        path,
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


@pytest.mark.parametrize("path", ["/echo", "/plain"])
def test_a_chunked_body_over_the_limit_is_a_413_not_a_cut_body(path: str) -> None:
    app = _app(CST_MAX_CONTENT_LENGTH=100)
    over = _chunked_post(app, path, b'"' + b"x" * 150 + b'"')
    assert over.status_code == 413
    assert over.get_json()["errors"][0]["message"]
    at_limit = b'"' + b"x" * 98 + b'"'  # exactly 100 bytes: nothing left unread
    assert _chunked_post(app, path, at_limit).status_code == 200
    assert _chunked_post(app, path, b'"short"').status_code == 200


def test_cst_max_content_length_sets_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CST_MAX_CONTENT_LENGTH", "100")
    client = _app().test_client()
    assert client.post("/echo", json="x" * 200).status_code == 413
    assert client.post("/echo", json="x" * 50).status_code == 200


def test_the_apps_own_max_content_length_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CST_MAX_CONTENT_LENGTH", "100")
    app = _app(MAX_CONTENT_LENGTH=5000)
    assert app.config["MAX_CONTENT_LENGTH"] == 5000
    assert app.test_client().post("/echo", json="x" * 200).status_code == 200


def test_limit_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CST_MAX_CONTENT_LENGTH", "none")
    app = _app()
    assert app.config["MAX_CONTENT_LENGTH"] is None
    assert app.test_client().post("/echo", json="x" * 2**21).status_code == 200


@pytest.mark.parametrize("value", ["0", "-1", "1MB", ""])
def test_bad_limit_fails_at_start_up(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CST_MAX_CONTENT_LENGTH", value)
    with pytest.raises(ChassisConfigError, match="CST_MAX_CONTENT_LENGTH"):
        _app()


# --- on gunicorn: the limit holds before the body is read ---------------------------------------


@pytest.fixture
def gunicorn_port() -> Iterator[int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CST_")}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers=1",
            "--worker-class=gthread",
            "--threads=2",
            "tests.apps.body_app:create_app()",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("gunicorn did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def _exchange(port: int, head: bytes, body: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head + body)
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


@pytest.mark.slow
def test_gunicorn_refuses_a_200_mb_post_without_reading_it(gunicorn_port: int) -> None:
    # The client announces 200 MB and sends 1 KB: the answer must come back anyway, so the
    # worker decided from the Content-Length, without waiting for (or buffering) the body.
    head = (
        b"POST /items HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 209715200\r\nConnection: close\r\n\r\n"
    )
    answer = _exchange(gunicorn_port, head, b"[" + b"1," * 500)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"errors": [{"message": ' in answer


@pytest.mark.slow
def test_gunicorn_refuses_a_chunked_body_over_the_limit(gunicorn_port: int) -> None:
    # No Content-Length to decide from: Werkzeug reads at most the limit, so the worker never
    # holds more than 1 MiB, and the byte after it makes the answer a 413.
    head = (
        b"POST /items HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    chunk = b'"' + b"x" * 65534 + b'"'
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20)) + b"0\r\n\r\n"
    answer = _exchange(gunicorn_port, head, body)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"errors": [{"message": ' in answer
