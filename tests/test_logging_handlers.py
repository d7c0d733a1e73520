"""One line per log record when the app has log handlers of its own (issues 27 and 25).

Each case runs in a fresh interpreter (logging is process-wide) and reads what really reached its
stdout and stderr: the app sets up the root logger with ``addHandler`` (zou's way),
``basicConfig``, ``fileConfig`` (Alembic's template, as its ``env.py`` runs it) or
``dictConfig``, before ``init_app``, right after it (in the app factory) or after the first
request (a module imported late). Every record must come out once, in the chassis's format with
its operation id; the fileConfig warning only when the chassis had to put something back.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
WARNING_HINT = "disable_existing_loggers=False"

# Alembic's `generic` template, logging part (what its env.py hands to fileConfig()).
ALEMBIC_INI = """\
[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console
qualname =

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
datefmt = %H:%M:%S
"""

CHILD = """\
import logging
import logging.config
import sys

from flask import Flask

from cst_chassis import CstMicroChassis

setup, when, ini = sys.argv[1:4]


def set_up():
    if setup == "addHandler":
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("APP %(levelname)s %(name)s %(message)s"))
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
    elif setup == "basicConfig":
        # After init_app the root already has a handler: only force=True changes anything.
        logging.basicConfig(
            level=logging.INFO, format="APP %(message)s", force=when != "before"
        )
    elif setup == "fileConfig":
        logging.config.fileConfig(ini)
    elif setup == "dictConfig":
        logging.config.dictConfig({
            "version": 1,
            "formatters": {"plain": {"format": "APP %(levelname)s %(message)s"}},
            "handlers": {
                "out": {
                    "class": "logging.StreamHandler",
                    "stream": "ext://sys.stdout",
                    "formatter": "plain",
                }
            },
            "root": {"level": "INFO", "handlers": ["out"]},
        })


app = Flask("svc")


@app.get("/work")
def work():
    logging.getLogger("svc.work").info("inside-request")
    app.logger.warning("app-logger-line")
    return "ok"


if when == "before":
    set_up()
CstMicroChassis().init_app(app)
if when == "after_init_app":
    set_up()
client = app.test_client()
assert client.get("/livez").status_code == 200
if when == "after_first_request":
    set_up()
assert client.get("/work", headers={"X-Operation-ID": "op-matrix"}).status_code == 200
logging.getLogger("svc.outside").warning("outside-request")
"""


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CST_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def _run(script: str, *args: str) -> str:
    """Run ``script`` in a fresh interpreter; its stdout and stderr, one after the other."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def _lines_with(log: str, marker: str) -> list[str]:
    return [line for line in log.splitlines() if marker in line]


@pytest.mark.parametrize("when", ["before", "after_init_app", "after_first_request"])
@pytest.mark.parametrize("setup", ["addHandler", "basicConfig", "fileConfig", "dictConfig"])
def test_each_record_is_one_line_in_the_chassis_format_with_the_apps_own_root_handler(
    tmp_path: Path, setup: str, when: str
) -> None:
    ini = tmp_path / "alembic.ini"
    ini.write_text(ALEMBIC_INI)
    log = _run(CHILD, setup, when, str(ini))
    expected = {
        "inside-request": rf"{STAMP} \[INFO\]\[op-matrix\] svc\.work: inside-request",
        "app-logger-line": rf"{STAMP} \[WARNING\]\[op-matrix\] svc: app-logger-line",
        "outside-request": rf"{STAMP} \[WARNING\]\[No operation_id\] svc\.outside: outside-request",
    }
    for marker, pattern in expected.items():
        lines = _lines_with(log, marker)
        assert len(lines) == 1, log
        assert re.fullmatch(pattern, lines[0]), log
    # The warning says the chassis put back what a logging.config call took after init_app
    # (fileConfig and dictConfig disable the loggers that exist); never otherwise.
    took_something = setup in ("fileConfig", "dictConfig") and when != "before"
    assert len(_lines_with(log, WARNING_HINT)) == (1 if took_something else 0), log


def test_a_root_handler_to_a_file_is_left_alone_and_stdout_still_gets_the_lines(
    tmp_path: Path,
) -> None:
    log_file = tmp_path / "app.log"
    script = textwrap.dedent(
        f"""\
        import logging
        from flask import Flask
        from cst_chassis import CstMicroChassis

        handler = logging.FileHandler({str(log_file)!r})
        handler.setFormatter(logging.Formatter("FILE %(message)s"))
        logging.getLogger().addHandler(handler)
        CstMicroChassis().init_app(Flask("svc"))
        logging.getLogger("svc").warning("to-both")
        """
    )
    log = _run(script)
    assert len(_lines_with(log, "to-both")) == 1
    assert "[WARNING][No operation_id] svc: to-both" in log
    assert log_file.read_text() == "FILE to-both\n"


def test_werkzeugs_fallback_handler_does_not_print_its_lines_a_second_time() -> None:
    # Werkzeug gives its logger a stderr handler of its own when it logs before anything
    # handles its records (a server started, or a reloader line, before init_app).
    script = textwrap.dedent(
        """\
        from flask import Flask
        from werkzeug._internal import _log
        from cst_chassis import CstMicroChassis

        _log("info", "werkzeug-early")
        CstMicroChassis().init_app(Flask("svc"))
        _log("info", "werkzeug-later")
        """
    )
    log = _run(script)
    (line,) = _lines_with(log, "werkzeug-later")
    assert re.fullmatch(rf"{STAMP} \[INFO\]\[No operation_id\] werkzeug: werkzeug-later", line)


def test_celery_worker_logging_adopts_the_apps_root_handler() -> None:
    pytest.importorskip("celery")
    script = textwrap.dedent(
        """\
        import logging
        import sys
        from celery import Celery
        from celery.signals import setup_logging
        from cst_chassis.celery import init_celery

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("APP %(message)s"))
        logging.getLogger().addHandler(handler)
        init_celery(Celery("tasks"))
        setup_logging.send(sender=None, loglevel="INFO", logfile=None, format="", colorize=False)
        logging.getLogger("tasks").warning("from-the-worker")
        """
    )
    log = _run(script)
    (line,) = _lines_with(log, "from-the-worker")
    assert re.fullmatch(rf"{STAMP} \[WARNING\]\[No operation_id\] tasks: from-the-worker", line)


# -- gunicorn --log-config ----------------------------------------------------------------------

GUNICORN_APP = """\
import logging

from flask import Flask

from cst_chassis import CstMicroChassis

app = Flask("svc")
CstMicroChassis().init_app(app)


@app.get("/work")
def work():
    logging.getLogger("svc.work").info("served-by-gunicorn")
    return "ok"
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_gunicorn_log_config_handler_is_adopted_not_doubled(tmp_path: Path) -> None:
    pytest.importorskip("gunicorn")
    (tmp_path / "svc_app.py").write_text(GUNICORN_APP)
    ini = tmp_path / "logging.ini"
    ini.write_text(
        ALEMBIC_INI.replace(
            "level = WARNING\nhandlers = console", "level = INFO\nhandlers = console"
        )
    )
    port = _free_port()
    env = _child_env()
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{REPO}"
    output = tmp_path / "server.log"
    with output.open("w") as sink:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--log-config",
                str(ini),
                "svc_app:app",
            ],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    request = urllib.request.Request(
                        f"http://127.0.0.1:{port}/work", headers={"X-Operation-ID": "op-gunicorn"}
                    )
                    with urllib.request.urlopen(request, timeout=5) as response:
                        assert response.status == 200
                    break
                except OSError:
                    assert server.poll() is None, output.read_text()
                    assert time.monotonic() < deadline, output.read_text()
                    time.sleep(0.1)
        finally:
            server.terminate()
            server.wait(timeout=30)
    log = output.read_text()
    (line,) = _lines_with(log, "served-by-gunicorn")
    assert re.fullmatch(rf"{STAMP} \[INFO\]\[op-gunicorn\] svc\.work: served-by-gunicorn", line)
