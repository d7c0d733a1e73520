"""Process-wide log output with the operation id (and trace ids) in every line.

``install_logging`` puts one stdout handler on the root logger, so every logger in the process
(the app's, libraries', werkzeug's) writes through it. The operation id and trace context are read
from their ContextVars by :class:`OperationIdFilter`, which users can also attach to handlers of
their own.

``logging.config.fileConfig`` (Alembic's standard ``env.py`` calls it) disables every existing
logger and removes the root logger's handlers: run in an app factory, it would silently drop the
chassis's error logs. :func:`restore_logging` notices that at the first request and on every
unhandled error, puts the handler back, re-enables the chassis's loggers and warns once.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TYPE_CHECKING, TextIO

from flask.signals import got_request_exception

from cst_chassis.context import incoming_ids_var, operation_id_var
from cst_chassis.tracing import get_trace_context

if TYPE_CHECKING:
    from flask import Flask

    from cst_chassis.config import LogFormat

__all__ = [
    "EDGE_TEXT_FORMAT",
    "FORMAT",
    "TEXT_FORMAT",
    "TRACE_TEXT_FORMAT",
    "CstMicroChassisLogFormatter",
    "JsonFormatter",
    "OperationIdFilter",
    "get_log_config_dict",
]

# cst-micro-chassis's format (the default of CST_LOG_TEXT_FORMAT).
TEXT_FORMAT = "%(asctime)s [%(levelname)s][%(operation_id)s] %(name)s: %(message)s"
"""cst-micro-chassis's text log format, the default of ``CST_LOG_TEXT_FORMAT``."""
# The same with the trace and span ids (``-`` outside a request).
TRACE_TEXT_FORMAT = (
    "%(asctime)s [%(levelname)s][%(operation_id)s][%(trace_id)s %(span_id)s] %(name)s: %(message)s"
)
"""The text format with the trace and span ids (``-`` outside a request)."""
# The same with the ids the edge policy restarted (``-`` when none were).
EDGE_TEXT_FORMAT = (
    "%(asctime)s [%(levelname)s][%(operation_id)s][%(trace_id)s %(span_id)s]"
    "[incoming %(incoming_operation_id)s %(incoming_trace_id)s] %(name)s: %(message)s"
)
"""The trace format plus the incoming ids the edge policy restarted (``-`` when none)."""
NO_OPERATION_ID = "No operation_id"
NO_TRACE = "-"

logger: logging.Logger = logging.getLogger("cst_chassis.logging")


class OperationIdFilter(logging.Filter):
    """Set ``record.operation_id``, ``trace_id`` and ``span_id`` from the current context.

    Outside a request they are ``No operation_id`` and ``-``. A record that already carries an
    ``operation_id`` (e.g. passed via ``extra=``) keeps it, and likewise for the trace ids.
    Also ``incoming_operation_id`` and ``incoming_trace_id``: the valid ids a request brought
    that the edge policy restarted (``CST_INCOMING_*=restart``), else ``-``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "operation_id"):
            record.operation_id = operation_id_var.get() or NO_OPERATION_ID
        if not hasattr(record, "trace_id"):
            trace = get_trace_context()
            if trace is None:
                record.trace_id = record.span_id = NO_TRACE
            else:
                record.trace_id = trace.trace_id
                record.span_id = trace.span_id
        if not hasattr(record, "incoming_operation_id"):
            incoming = incoming_ids_var.get()
            if incoming is None:
                record.incoming_operation_id = record.incoming_trace_id = NO_TRACE
            else:
                record.incoming_operation_id = incoming.operation_id or NO_TRACE
                record.incoming_trace_id = incoming.trace_id or NO_TRACE
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, operation_id, trace_id, span_id,
    exception; and incoming_operation_id / incoming_trace_id when the edge policy restarted
    them (absent otherwise)."""

    def format(self, record: logging.LogRecord) -> str:
        operation_id = getattr(record, "operation_id", None)
        trace_id = getattr(record, "trace_id", None)
        span_id = getattr(record, "span_id", None)
        payload: dict[str, object] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "operation_id": None if operation_id == NO_OPERATION_ID else operation_id,
            "trace_id": None if trace_id == NO_TRACE else trace_id,
            "span_id": None if span_id == NO_TRACE else span_id,
        }
        for key in ("incoming_operation_id", "incoming_trace_id"):
            incoming = getattr(record, key, NO_TRACE)
            if incoming != NO_TRACE:
                payload[key] = incoming
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


def install_logging(
    level: int, log_format: LogFormat, text_format: str = TEXT_FORMAT
) -> logging.Handler:
    """Install (or reconfigure) the chassis's stdout handler on the root logger.

    Idempotent: repeated calls, from any number of apps, keep exactly one chassis handler, so no
    line is printed twice. Existing loggers are left enabled (cst-micro-chassis's ``dictConfig``
    disabled them). The last call's level and format win. ``text_format`` is the ``%``-style
    format of the text output (``CST_LOG_TEXT_FORMAT``; :data:`TRACE_TEXT_FORMAT` adds the
    trace ids).
    """
    global _installed
    _installed = (level, log_format, text_format)
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _ChassisHandler)), None)
    if handler is None:
        handler = _ChassisHandler()
        handler.addFilter(OperationIdFilter())
        root.addHandler(handler)
    handler.setLevel(level)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(text_format)
    )
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)
    return handler


# What restore_logging puts back: the last install_logging call, and the loggers the chassis
# writes to (its own and each app's ``app.logger``).
_installed: tuple[int, LogFormat, str] | None = None
_kept_loggers: set[str] = {"cst_chassis"}
_warned = False

FILECONFIG_HINT = (
    "logging.config.fileConfig() (e.g. in Alembic's env.py) removed the cst-chassis log handler "
    "or disabled its loggers; cst-chassis restored them. Call "
    "fileConfig(..., disable_existing_loggers=False) and keep the root logger's handlers "
    "to avoid this"
)


def watch_logging(app: Flask) -> None:
    """Keep ``app.logger`` and the chassis's loggers writing even after a ``fileConfig()``.

    Connects :func:`restore_logging` to Flask's ``got_request_exception`` signal for ``app``, so
    a 500's traceback is never logged into a disabled logger; the middleware also calls it
    before the first request.
    """
    _kept_loggers.add(app.logger.name)
    got_request_exception.connect(_restore_on_error, app, weak=False)
    restore_logging()  # a fileConfig() run before init_app disabled the chassis's loggers


def _restore_on_error(_sender: object, **_extra: object) -> None:
    restore_logging()


def restore_logging() -> bool:
    """Undo what ``logging.config.fileConfig()`` did to the chassis's logging; warn once.

    Puts the chassis handler back on the root logger if it was removed (with the last level and
    format), and re-enables the chassis's loggers and each chassis app's ``app.logger`` (and
    their children) if they were disabled. Returns whether anything had to be restored.
    """
    global _warned
    if _installed is None:
        return False
    restored = False
    root = logging.getLogger()
    if not any(isinstance(h, _ChassisHandler) for h in root.handlers):
        install_logging(*_installed)
        restored = True
    for name, candidate in list(logging.Logger.manager.loggerDict.items()):
        if (
            isinstance(candidate, logging.Logger)
            and candidate.disabled
            and any(name == kept or name.startswith(kept + ".") for kept in _kept_loggers)
        ):
            candidate.disabled = False
            restored = True
    if restored and not _warned:
        _warned = True
        logger.warning(FILECONFIG_HINT)
    return restored


# -- cst-micro-chassis 0.1.0 names (README, "Migrating from cst-micro-chassis") -------------------
# Thin equivalents so code ported by renaming the package keeps importing them; install_logging
# is what init_app uses.

FORMAT = TEXT_FORMAT
"""cst-micro-chassis's name for :data:`TEXT_FORMAT`."""


class CstMicroChassisLogFormatter(logging.Formatter):
    """cst-micro-chassis's formatter: ``FORMAT`` with the current operation id (ContextVar).

    Prefer :class:`OperationIdFilter` on your handler: it works with any formatter.
    """

    def format(self, record: logging.LogRecord) -> str:
        OperationIdFilter().filter(record)
        return super().format(record)


def get_log_config_dict(app_name: str, level: str = "INFO") -> dict[str, object]:
    """cst-micro-chassis's ``logging.config.dictConfig`` dictionary, minus its bug.

    A stdout handler with :class:`CstMicroChassisLogFormatter` on the root logger and on
    ``app_name``'s logger (at ``level``; cst-micro-chassis read ``CST_STREAM_LOG_LEVEL`` at import
    time). Unlike cst-micro-chassis's, it sets ``disable_existing_loggers: False``, so applying
    it does not silence loggers created before. ``init_app`` does not use it: it calls
    ``install_logging``.
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
