"""Log injection (issue 26, item 6): no request-derived value reaches a text log line raw.

Payloads: ANSI escapes (ESC, CSI sequences that recolour, clear the screen or hide text) and line
breaks (a forged log line), sent in the method, the path, the query string and headers, to the
chassis in-process and to the demo as ``make demo`` serves it (Werkzeug's server, raw sockets).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from cst_chassis import ChassisApi, CstMicroChassis
from cst_chassis import logging as cst_logging
from cst_chassis._error_handling import report_exception
from cst_chassis.logging import LOGGABLE_MAX_LENGTH, TextFormatter, loggable

REPO = Path(__file__).resolve().parent.parent
ESC = "\x1b"
STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[")
# What the payloads below would make a line start with, were a line break written raw.
FORGED = "FORGED [CRITICAL]"

HOSTILE_ENVIRON = {
    "REQUEST_METHOD": f"{ESC}[31mPWN{ESC}[0m",
    "PATH_INFO": f"/boom/{ESC}[2J\n{FORGED} in path",
    "QUERY_STRING": f"q={ESC}[8mhidden\r\n{FORGED} in query",
    "HTTP_X_OPERATION_ID": f"op{ESC}[31m\n{FORGED} in header",
    "HTTP_TRACEPARENT": f"00-{ESC}[0m\n{FORGED}",
    "HTTP_USER_AGENT": f"{ESC}]0;title{chr(7)}\u2028{FORGED} in user agent",
}


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _assert_one_line_per_record(out: str) -> None:
    assert ESC not in out
    assert "\u2028" not in out
    for line in out.splitlines():
        assert not line.startswith("FORGED"), out


def test_text_format_escapes_control_characters_in_the_message_and_every_field(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    del app
    capsys.readouterr()
    logging.getLogger("inj").warning(
        "a%sb", f"{ESC}[2J\n{FORGED}\r\u2028\u202e", extra={"operation_id": f"id{ESC}[31m\n"}
    )
    out = capsys.readouterr().out
    (line,) = out.splitlines()
    assert line.endswith(
        r"[WARNING][id\x1b[31m\x0a] inj: a\x1b[2J\x0aFORGED [CRITICAL]\x0d\u2028\u202eb"
    )
    _assert_one_line_per_record(out)


def test_a_traceback_keeps_its_lines_but_not_its_escapes(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    del app
    capsys.readouterr()
    try:
        raise ValueError(f"bad {ESC}[31mvalue")
    except ValueError:
        logging.getLogger("inj").exception("failed on %s", f"{ESC}[0m")
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith(r"inj: failed on \x1b[0m")
    assert "Traceback (most recent call last):" in out.splitlines()[1]
    assert r"ValueError: bad \x1b[31mvalue" in out
    assert ESC not in out


def test_werkzeugs_own_colour_codes_are_dropped(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    del app
    capsys.readouterr()
    # What Werkzeug's request line for a 405 looks like: its escaping, then its colours.
    logging.getLogger("werkzeug").info(
        '127.0.0.1 - - [x] "%s" %s -', f"{ESC}[1m{ESC}[31m\\x1b[31mPWN / HTTP/1.1{ESC}[0m", 405
    )
    out = capsys.readouterr().out
    assert out.endswith('werkzeug: 127.0.0.1 - - [x] "\\x1b[31mPWN / HTTP/1.1" 405 -\n')


def test_loggable_caps_the_length_and_escapes() -> None:
    assert loggable("x" * 300) == "x" * LOGGABLE_MAX_LENGTH + "...[100 more]"
    assert loggable(f"{ESC}\n{ESC}\t", 2) == r"\x1b\x0a...[2 more]"
    assert loggable("GET") == "GET"
    assert loggable(404) == "404"


def test_hostile_method_path_query_and_headers_never_reach_a_line_raw(
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = Flask("hostile")
    CstMicroChassis().init_app(app)
    ChassisApi(app)

    @app.before_request
    def explode() -> None:
        raise RuntimeError("before any view")

    capsys.readouterr()
    client = app.test_client()
    assert client.get(environ_overrides=HOSTILE_ENVIRON).status_code == 500
    with app.test_request_context(environ_overrides=HOSTILE_ENVIRON):
        report_exception(RuntimeError("in a resource"), signal=False)
    out = capsys.readouterr().out
    # Flask's own line (path and method, raw) and the chassis's (method, capped), escaped.
    assert r"Exception on /boom/\x1b[2J\x0aFORGED [CRITICAL] in path [\x1b[31MPWN\x1b[0M]" in out
    assert r"Unhandled exception on \x1b[31MPWN\x1b[0M (no route)" in out
    _assert_one_line_per_record(out)
    assert len(STAMP.findall(out)) == 2


def test_a_long_method_is_capped_in_the_chassis_line(capsys: pytest.CaptureFixture[str]) -> None:
    app = Flask("long")
    CstMicroChassis().init_app(app)
    capsys.readouterr()
    with app.test_request_context(environ_overrides={"REQUEST_METHOD": "P" * 5000}):
        report_exception(RuntimeError("x"), signal=False)
    assert "Unhandled exception on " + "P" * 16 + "...[4984 more] (no route)" in (
        capsys.readouterr().out
    )


def test_the_text_formatter_on_a_users_handler(capsys: pytest.CaptureFixture[str]) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(TextFormatter("%(levelname)s %(message)s"))
    record = logging.LogRecord("own", logging.INFO, __file__, 1, "m%s", (f"{ESC}\n",), None)
    handler.handle(record)
    assert capsys.readouterr().out == "INFO m\\x1b\\x0a\n"
    assert cst_logging.escape_control_characters("plain\ttext") == "plain\ttext"


# -- the demo as `make demo` serves it: Werkzeug's server, raw sockets ---------------------------


def _raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.slow
def test_demo_on_werkzeug_writes_no_raw_escape_to_its_log(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CST_")}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}",
        PORT="0",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(REPO),
    )
    log_path = tmp_path / "demo.log"
    with log_path.open("wb") as sink:
        demo = subprocess.Popen(
            [sys.executable, "-m", "examples.demo"],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not (
            found := re.search(rb"Running on http://127\.0\.0\.1:(\d+)", log_path.read_bytes())
        ):
            assert demo.poll() is None, log_path.read_bytes().decode(errors="replace")
            assert time.monotonic() < deadline, log_path.read_bytes().decode(errors="replace")
            time.sleep(0.1)
        port = int(found[1])
        end = b"Host: demo\r\nConnection: close\r\n\r\n"
        # A method made of ANSI escapes; a path and a query with escapes and line breaks; headers
        # with raw escapes (the operation id is refused, the user agent is never logged).
        answers = [
            _raw_request(port, b"\x1b[31mPWN\x1b[0m /products HTTP/1.1\r\n" + end),
            _raw_request(
                port,
                b"GET /products/%1b[2J%0aFORGED%20[CRITICAL]?q=%1b[8m%0d%0aFORGED HTTP/1.1\r\n"
                + b"X-Operation-ID: op\x1b[31m\r\nUser-Agent: \x1b]0;pwned\x07\r\n"
                + end,
            ),
            _raw_request(port, b"GET /products/1?q=%1b[31m%0aFORGED HTTP/1.1\r\n" + end),
        ]
        assert [answer.split(b" ", 2)[1] for answer in answers] == [b"405", b"404", b"200"]
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=30)
    log = log_path.read_bytes()
    text = log.decode()
    assert b"\x1b" not in log, text
    assert b"\x07" not in log, text
    for line in text.splitlines():
        assert not line.startswith("FORGED"), text
    assert r"examples.demo.access: \x1b[31MPWN\x1b[0M (no route) -> 405" in text
