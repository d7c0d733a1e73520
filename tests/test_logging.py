"""Logging: the seed's format with the operation id, idempotent, JSON on demand."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from cst_chassis import CstMicroChassis
from cst_chassis import logging as cst_logging
from cst_chassis.logging import OperationIdFilter
from tests.conftest import AppFactory

LINE = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[(?P<level>[A-Z]+)\]\[(?P<op>[^\]]+)\] "
    r"(?P<name>\S+): (?P<message>.*)"
)


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line]


def test_lines_follow_the_seed_format_with_the_operation_id(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = logging.getLogger("myapp")

    @app.get("/hello")
    def hello() -> str:
        logger.info("I received a GET request")
        return "ok"

    capsys.readouterr()
    app.test_client().get("/hello", headers={"X-Operation-ID": "op-1"})
    logger.warning("Hello CST")
    first, second = _lines(capsys)
    match = LINE.fullmatch(first)
    assert match is not None
    assert match.group("level", "op", "name", "message") == (
        "INFO",
        "op-1",
        "myapp",
        "I received a GET request",
    )
    assert "[WARNING][No operation_id] myapp: Hello CST" in second


def test_two_apps_never_print_a_line_twice(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    make_app("one")
    make_app("two")
    capsys.readouterr()
    logging.getLogger("x").warning("once")
    assert len([line for line in _lines(capsys) if line.endswith("x: once")]) == 1


def test_app_logger_lines_are_not_duplicated_by_flasks_default_handler(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    app.logger.warning("from app.logger")
    captured = capsys.readouterr()
    assert captured.out.count("from app.logger") == 1
    assert "from app.logger" not in captured.err


def test_loggers_created_before_init_app_keep_working(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    early = logging.getLogger("created.before.init")
    make_app()
    capsys.readouterr()
    early.info("still here")
    assert "created.before.init: still here" in capsys.readouterr().out


def test_stream_log_level_filters_lower_levels(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    make_app(CST_STREAM_LOG_LEVEL="ERROR")
    capsys.readouterr()
    logging.getLogger("lvl").warning("hidden")
    logging.getLogger("lvl").error("shown")
    out = capsys.readouterr().out
    assert "hidden" not in out
    assert "shown" in out


def test_json_format_is_one_object_per_line(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(CST_LOG_FORMAT="json")

    @app.get("/fail")
    def fail() -> str:
        try:
            raise ValueError("bad thing")
        except ValueError:
            logging.getLogger("jsonlog").exception("it failed")
        return "ok"

    capsys.readouterr()
    app.test_client().get("/fail", headers={"X-Operation-ID": "op-json"})
    (line,) = _lines(capsys)
    record = json.loads(line)
    assert record["level"] == "ERROR"
    assert record["logger"] == "jsonlog"
    assert record["message"] == "it failed"
    assert record["operation_id"] == "op-json"
    assert "ValueError: bad thing" in record["exception"]
    assert record["time"].endswith("Z")


def test_json_format_outside_a_request_has_null_operation_id(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    make_app(CST_LOG_FORMAT="json")
    capsys.readouterr()
    logging.getLogger("outside").warning("no request")
    assert json.loads(_lines(capsys)[0])["operation_id"] is None


def test_filter_can_be_attached_to_a_users_own_handler(app: Flask) -> None:
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect()
    handler.addFilter(OperationIdFilter())
    logger = logging.getLogger("own.handler")
    logger.addHandler(handler)
    try:

        @app.get("/own")
        def own() -> str:
            logger.warning("with id")
            return "ok"

        app.test_client().get("/own", headers={"X-Operation-ID": "op-own"})
    finally:
        logger.removeHandler(handler)
    assert [getattr(r, "operation_id", None) for r in records] == ["op-own"]


def test_reinitialising_switches_format_without_a_second_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    CstMicroChassis(Flask("text-app"))
    app = Flask("json-app")
    app.config["CST_LOG_FORMAT"] = "json"
    CstMicroChassis(app)
    capsys.readouterr()
    logging.getLogger("switch").warning("now json")
    (line,) = _lines(capsys)
    assert json.loads(line)["message"] == "now json"


# -- logging.config.fileConfig() in an app factory (Alembic's env.py) -------------------------


@pytest.fixture
def alembic_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], None]]:
    """Run a real ``alembic upgrade head`` with Alembic's own ``generic`` template (whose env.py
    calls ``fileConfig(alembic.ini)``); restore every logger's state afterwards."""
    from alembic import command
    from alembic.config import Config

    ini = tmp_path / "alembic.ini"
    config = Config(str(ini))
    command.init(config, str(tmp_path / "migrations"))
    text = ini.read_text().replace(
        "sqlalchemy.url = driver://user:pass@localhost/dbname",
        f"sqlalchemy.url = sqlite:///{tmp_path / 'app.db'}",
    )
    ini.write_text(text)
    monkeypatch.setattr(cst_logging, "_warned", False)
    # As in a fresh process: no init_app has run yet (a migration before it is not watched).
    monkeypatch.setattr(cst_logging, "_installed", None)
    manager = logging.Logger.manager
    disabled = {
        name: logger.disabled
        for name, logger in manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def upgrade() -> None:
        command.upgrade(Config(str(ini)), "head")

    yield upgrade
    for name, logger in manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            logger.disabled = disabled.get(name, False)
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def _factory_app(upgrade: Callable[[], None], *, migrate_first: bool) -> Flask:
    app = Flask("factory_app")
    if migrate_first:
        upgrade()
    CstMicroChassis().init_app(app)
    if not migrate_first:
        upgrade()

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("kaboom-in-view")

    @app.get("/hello")
    def hello() -> str:
        app.logger.info("hello from the app")
        return "ok"

    return app


@pytest.mark.parametrize("migrate_first", [True, False], ids=["before-init_app", "after-init_app"])
def test_error_logs_survive_alembic_fileconfig_in_the_app_factory(
    alembic_upgrade: Callable[[], None],
    capsys: pytest.CaptureFixture[str],
    migrate_first: bool,
) -> None:
    app = _factory_app(alembic_upgrade, migrate_first=migrate_first)
    client = app.test_client()
    assert client.get("/boom", headers={"X-Operation-ID": "op-boom"}).status_code == 500
    assert client.get("/boom").status_code == 500
    assert client.get("/hello", headers={"X-Operation-ID": "op-hello"}).status_code == 200
    captured = capsys.readouterr()
    # The chassis adopted the stderr handler fileConfig installed: each record once, there.
    log = captured.out + captured.err
    assert log.count("[ERROR][op-boom] factory_app: Exception on /boom [GET]") == 1
    assert log.count("RuntimeError: kaboom-in-view") == 2
    assert log.count("[INFO][op-hello] factory_app: hello from the app") == 1
    assert "hello from the app" not in captured.out
    # fileConfig() before init_app took nothing from the chassis: no warning then.
    assert log.count("disable_existing_loggers=False") == (0 if migrate_first else 1)


def test_error_logs_survive_a_fileconfig_after_the_first_request(
    alembic_upgrade: Callable[[], None], app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("kaboom-later")

    client = app.test_client()
    assert client.get("/status").status_code in (200, 503)
    capsys.readouterr()
    alembic_upgrade()
    # logging.config is watched: the handler and loggers are restored as fileConfig() returns.
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count("disable_existing_loggers=False") == 1
    assert client.get("/boom", headers={"X-Operation-ID": "op-late"}).status_code == 500
    captured = capsys.readouterr()
    log = captured.out + captured.err
    assert log.count("[ERROR][op-late]") == 1
    assert log.count("RuntimeError: kaboom-later") == 1


def test_nothing_is_restored_or_warned_without_fileconfig(
    app: Flask, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cst_logging, "_warned", False)
    app.test_client().get("/status")
    assert cst_logging.restore_logging() is False
    assert "disable_existing_loggers" not in capsys.readouterr().out
