"""Process-wide log output with the operation id in every line.

``install_logging`` puts one stdout handler on the root logger, so every logger in the process
(the app's, libraries', werkzeug's) writes through it. The operation id is read from the
ContextVar by :class:`OperationIdFilter`, which users can also attach to handlers of their own.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TYPE_CHECKING, TextIO

from cst_chassis.context import operation_id_var

if TYPE_CHECKING:
    from cst_chassis.config import LogFormat

__all__ = [
    "TEXT_FORMAT",
    "JsonFormatter",
    "OperationIdFilter",
    "install_logging",
]

TEXT_FORMAT = "%(asctime)s [%(levelname)s][%(operation_id)s] %(name)s: %(message)s"
NO_OPERATION_ID = "No operation_id"


class OperationIdFilter(logging.Filter):
    """Set ``record.operation_id`` from the current context (``No operation_id`` outside one).

    A record that already carries an ``operation_id`` (e.g. passed via ``extra=``) keeps it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "operation_id"):
            record.operation_id = operation_id_var.get() or NO_OPERATION_ID
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, operation_id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        operation_id = getattr(record, "operation_id", None)
        payload: dict[str, object] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "operation_id": None if operation_id == NO_OPERATION_ID else operation_id,
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload, default=str)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{seconds}.{int(record.msecs):03d}Z"


class _ChassisHandler(logging.StreamHandler[TextIO]):
    """The one handler the chassis owns (a second ``init_app`` reuses it).

    It writes to whatever ``sys.stdout`` is at emit time, so a redirected stdout (a test runner's
    capture, a process manager) gets the lines.
    """

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def install_logging(level: int, log_format: LogFormat) -> logging.Handler:
    """Install (or reconfigure) the chassis's stdout handler on the root logger.

    Idempotent: repeated calls, from any number of apps, keep exactly one chassis handler, so no
    line is printed twice. Existing loggers are left enabled (the seed's ``dictConfig`` disabled
    them). The last call's level and format win.
    """
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _ChassisHandler)), None)
    if handler is None:
        handler = _ChassisHandler()
        handler.addFilter(OperationIdFilter())
        root.addHandler(handler)
    handler.setLevel(level)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)
    return handler


# -- cst-micro-chassis 0.1.0 names (README, "Migrating from cst-micro-chassis") -------------------
# Thin equivalents so code ported by renaming the package keeps importing them; install_logging
# is what init_app uses.

FORMAT = TEXT_FORMAT


class CstMicroChassisLogFormatter(logging.Formatter):
    """The seed's formatter: ``FORMAT`` with the current operation id (from the ContextVar).

    Prefer :class:`OperationIdFilter` on your handler: it works with any formatter.
    """

    def format(self, record: logging.LogRecord) -> str:
        OperationIdFilter().filter(record)
        return super().format(record)


def get_log_config_dict(app_name: str, level: str = "INFO") -> dict[str, object]:
    """The seed's ``logging.config.dictConfig`` dictionary, minus its bug.

    A stdout handler with :class:`CstMicroChassisLogFormatter` on the root logger and on
    ``app_name``'s logger (at ``level``; the seed read ``CST_STREAM_LOG_LEVEL`` at import time).
    Unlike the seed's, it sets ``disable_existing_loggers: False``, so applying it does not
    silence loggers created before. ``init_app`` does not use it: it calls ``install_logging``.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "standard": {
                "()": f"{__name__}.CstMicroChassisLogFormatter",
                "format": FORMAT,
            }
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "standard",
                "level": "DEBUG",
            }
        },
        "root": {"handlers": ["console"], "level": "INFO"},
        "loggers": {app_name: {"handlers": ["console"], "propagate": False, "level": level}},
    }


__all__ += ["FORMAT", "CstMicroChassisLogFormatter", "get_log_config_dict"]
