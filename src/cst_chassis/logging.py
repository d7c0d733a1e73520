"""Process-wide log output with the operation id (and trace ids) in every line.

``install_logging`` makes the root logger's console output the chassis's: when the root logger
already has handlers writing to stdout or stderr (the app's ``addHandler``, ``basicConfig``,
``fileConfig``, ``dictConfig``, a server's ``--log-config``), the chassis *adopts* them — their
stream and level stay, they get the chassis's formatter and :class:`OperationIdFilter` — and adds
nothing; otherwise it adds one stdout handler of its own. Every logger in the process (the
app's, libraries', werkzeug's) writes through that one output, so each record is one line.

Handlers that appear later are adopted too: ``logging.config.fileConfig`` and ``dictConfig``
(Alembic's standard ``env.py`` calls the former) are watched, the middleware re-checks before
the first request and Flask's ``got_request_exception`` on every unhandled error, and the first
record logged after any change of the root's handlers triggers the same check.

The text format writes each record on one line: control characters in the message and in every
field (see :class:`TextFormatter`). :func:`loggable` also caps a request-derived value's length.
"""

from __future__ import annotations

import functools
import json
import logging
import logging.config
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from flask.signals import got_request_exception

from cst_chassis.context import incoming_ids_var, operation_id_var
from cst_chassis.tracing import get_trace_context

if TYPE_CHECKING:
    from flask import Flask

    from cst_chassis.config import LogFormat

__all__ = [
    "EDGE_TEXT_FORMAT",
    "FORMAT",
    "LOGGABLE_MAX_LENGTH",
    "TEXT_FORMAT",
    "TRACE_TEXT_FORMAT",
    "CstMicroChassisLogFormatter",
    "JsonFormatter",
    "OperationIdFilter",
    "TextFormatter",
    "escape_control_characters",
    "get_log_config_dict",
    "loggable",
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


# -- one record, one line: control characters escaped ------------------------------------------

# C0 controls but the tab, DEL, C1 controls (CSI is U+009B), the Unicode line and paragraph
# separators and the bidirectional overrides/isolates (which can reorder what a viewer shows).
_UNSAFE_CODES = [
    *range(0x09),
    *range(0x0A, 0x20),
    *range(0x7F, 0xA0),
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
]
_ESCAPES = {
    code: (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}") for code in _UNSAFE_CODES
}
_UNSAFE = re.compile("[" + "".join(re.escape(chr(code)) for code in _UNSAFE_CODES) + "]")
# A traceback keeps its line breaks (its other control characters are escaped).
_ESCAPES_KEEPING_NEWLINES = {code: text for code, text in _ESCAPES.items() if code != 0x0A}
# Werkzeug's development server colours its own lines (it escapes the client's bytes first).
_SGR = re.compile("\x1b\\[[0-9;]*m")

LOGGABLE_MAX_LENGTH = 200
""":func:`loggable`'s default cap on a value's length, in characters."""


def escape_control_characters(text: str) -> str:
    """``text`` with each control character written as a ``\\xNN`` or ``\\uNNNN`` escape (ESC is
    ``\\x1b``, a newline ``\\x0a``).

    Escaped: C0 controls except the tab (so newlines, carriage returns and ESC), DEL, C1
    controls, U+2028/U+2029 and the bidirectional overrides and isolates (U+202A to U+202E,
    U+2066 to U+2069). Text without any is returned as it is (one regular-expression scan).
    """
    if text.isprintable() or _UNSAFE.search(text) is None:
        return text
    return text.translate(_ESCAPES)


def loggable(value: object, max_length: int = LOGGABLE_MAX_LENGTH) -> str:
    """``value`` as text fit for one log line: at most ``max_length`` characters of it (a
    ``...[N more]`` marker says how many were cut), control characters escaped.

    Use it for every request-derived value (method, path, query string, header) written to a
    log line, in any format::

        access.info("%s %s -> %d", loggable(request.method, 16), loggable(request.full_path),
                    response.status_code)
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) > max_length:
        text = f"{text[:max_length]}...[{len(text) - max_length} more]"
    return escape_control_characters(text)


class TextFormatter(logging.Formatter):
    """A ``%``-style formatter that writes each record on one line.

    Control characters in the formatted line (the message, ``%(operation_id)s`` and any other
    field) are escaped as in :func:`escape_control_characters`, so a value from a request cannot
    start a forged line or send terminal escapes. A traceback or stack keeps its line breaks,
    with its other control characters escaped. Werkzeug's development-server lines lose the colour
    codes Werkzeug adds to them (it escapes the client's bytes itself). ``init_app`` uses it for
    the text format; use it on handlers of your own with :class:`OperationIdFilter`.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = self._style.format(record)
        # isprintable() is False for every character escaped (and for the tab): a fast pre-check.
        if line.isprintable() or _UNSAFE.search(line) is None:
            return line
        if record.name == "werkzeug":
            line = _SGR.sub("", line)
        return line.translate(_ESCAPES)

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{_escape_keeping_newlines(record.exc_text)}"
        if record.stack_info:
            stack = self.formatStack(record.stack_info)
            line = f"{line}\n{_escape_keeping_newlines(stack)}"
        return line


def _escape_keeping_newlines(text: str) -> str:
    if _UNSAFE.search(text) is None:
        return text
    return text.translate(_ESCAPES_KEEPING_NEWLINES)


# -- the root logger's console output ---------------------------------------------------------


class _ChassisHandler(logging.StreamHandler[TextIO]):
    """The stdout handler the chassis adds when the root logger has no console handler.

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
    """Make the root logger's console output the chassis's (see the module docstring).

    The root's handlers that write to stdout or stderr are adopted (stream and level kept, the
    chassis's formatter and :class:`OperationIdFilter` set); when there is none, the chassis's
    own stdout handler is added at ``level``. Flask's and Werkzeug's fallback handlers would
    print a line twice and are removed. The root logger's level is lowered to ``level`` when it
    is higher. Idempotent: repeated calls, from any number of apps, never add a second handler;
    the last call's level and format win. ``text_format`` is the ``%``-style format of the text
    output (``CST_LOG_TEXT_FORMAT``; :data:`TRACE_TEXT_FORMAT` adds the trace ids). Returns the
    handler that now writes the console lines (the first adopted one, or the chassis's).
    """
    global _installed
    with _lock:
        _installed = (level, log_format, text_format)
        _handler.setLevel(level)
        _watch()
        _adopt(quiet=True)
        root = logging.getLogger()
        return next((h for h in root.handlers if _is_console(h)), _handler)


# What _adopt applies: the last install_logging call, and the loggers the chassis writes to
# (its own and each app's ``app.logger``), re-enabled when a fileConfig()/dictConfig() disabled
# them.
_installed: tuple[int, LogFormat, str] | None = None
_kept_loggers: set[str] = {"cst_chassis"}
_warned = False
_lock = threading.RLock()
_handler = _ChassisHandler()
_handler.addFilter(OperationIdFilter())
# The root logger's handlers as _adopt last left them; any change is looked at again.
_seen: list[logging.Handler] = []

FILECONFIG_HINT = (
    "logging.config.fileConfig() or dictConfig() (e.g. in Alembic's env.py) removed the "
    "cst-chassis log handler or disabled its loggers after init_app; cst-chassis restored them. "
    "Call fileConfig(..., disable_existing_loggers=False) and keep a console handler on the root "
    "logger to avoid this"
)


def _is_console(handler: logging.Handler) -> bool:
    # A handler writing to the process's stdout or stderr (a file handler never is).
    if isinstance(handler, _ChassisHandler):
        return True
    if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
        return False
    stream = handler.stream
    if stream is None:
        return False
    if any(stream is s for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)):
        return True
    try:
        return stream.fileno() in (1, 2)
    except (AttributeError, OSError, ValueError):
        return False


def _formatter(log_format: LogFormat, text_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter(text_format)


def _adopt(*, quiet: bool) -> bool:
    """Bring the root's console output in line with the last install_logging; True when the
    chassis had to undo something (its handler removed, its loggers disabled)."""
    global _seen, _warned
    with _lock:
        if _installed is None:
            return False
        level, log_format, text_format = _installed
        root = logging.getLogger()
        theirs = [h for h in root.handlers if h is not _handler and _is_console(h)]
        was_writing = _handler in _seen
        removed = False
        formatter = _formatter(log_format, text_format)
        if theirs:
            if _handler in root.handlers:
                root.removeHandler(_handler)
            for handler in theirs:
                handler.setFormatter(formatter)
                if not any(isinstance(f, OperationIdFilter) for f in handler.filters):
                    handler.addFilter(OperationIdFilter())
        elif _handler not in root.handlers:
            removed = was_writing
            root.addHandler(_handler)
        _handler.setFormatter(formatter)
        if root.level == logging.NOTSET or root.level > level:
            root.setLevel(level)
        _remove_fallback_handlers()
        reenabled = _enable_kept_loggers()
        _seen = list(root.handlers)
        restored = removed or reenabled
    if restored and not quiet and not _warned:
        _warned = True
        logger.warning(FILECONFIG_HINT)
    return restored


def _remove_fallback_handlers() -> None:
    # Werkzeug adds a stderr handler to its logger when it logs before anything handles its
    # records; next to the root's console handler it would print each of its lines twice.
    werkzeug = logging.Logger.manager.loggerDict.get("werkzeug")
    if isinstance(werkzeug, logging.Logger):
        for handler in list(werkzeug.handlers):
            kind = type(handler)
            if kind.__module__ == "werkzeug._internal" and kind.__name__ == "_ColorStreamHandler":
                werkzeug.removeHandler(handler)


def _enable_kept_loggers() -> bool:
    enabled = False
    for name, candidate in list(logging.Logger.manager.loggerDict.items()):
        if (
            isinstance(candidate, logging.Logger)
            and candidate.disabled
            and any(name == kept or name.startswith(kept + ".") for kept in _kept_loggers)
        ):
            candidate.disabled = False
            enabled = True
    return enabled


def _watch() -> None:
    # Once per process: logging.config's two functions re-adopt after they ran, and the record
    # factory looks at the root's handlers (a list comparison) before each record is handled.
    for name in ("fileConfig", "dictConfig"):
        current = getattr(logging.config, name)
        if not getattr(current, "_cst_chassis_watch", False):
            setattr(logging.config, name, _watching(current))
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "_cst_chassis_watch", False):
        logging.setLogRecordFactory(_checking(factory))


def _watching(configure: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(configure)
    def reconfigure(*args: Any, **kwargs: Any) -> Any:
        try:
            return configure(*args, **kwargs)
        finally:
            _adopt(quiet=False)

    reconfigure._cst_chassis_watch = True  # type: ignore[attr-defined]  # marks the wrapper
    return reconfigure


def _checking(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        if logging.root.handlers != _seen:
            _adopt(quiet=False)
        return factory(*args, **kwargs)

    make_record._cst_chassis_watch = True  # type: ignore[attr-defined]  # marks the wrapper
    return make_record


def watch_logging(app: Flask) -> None:
    """Keep ``app.logger`` writing through the chassis's output even after a ``fileConfig()``.

    ``app.logger`` is re-enabled (silently: this runs at ``init_app``) if a ``fileConfig()``
    run before disabled it, and whenever a later one does (with a warning). Connects
    :func:`restore_logging` to Flask's ``got_request_exception`` signal for ``app``, so a 500's
    traceback is never logged into a disabled logger; the middleware also calls it before the
    first request.
    """
    _kept_loggers.add(app.logger.name)
    got_request_exception.connect(_restore_on_error, app, weak=False)
    _adopt(quiet=True)


def _restore_on_error(_sender: object, **_extra: object) -> None:
    restore_logging()


def restore_logging() -> bool:
    """Adopt the root's console handlers again and undo what a ``fileConfig()`` did; warn once.

    Puts the chassis's handler back when it was removed and nothing else writes to the console,
    and re-enables the chassis's loggers and each chassis app's ``app.logger`` (and their
    children) if they were disabled. Returns whether anything had to be restored; the warning
    (once per process) is only logged then.
    """
    return _adopt(quiet=False)


# -- cst-micro-chassis 0.1.0 names (README, "Migrating from cst-micro-chassis") -------------------
# Thin equivalents so code ported by renaming the package keeps importing them; install_logging
# is what init_app uses.

FORMAT = TEXT_FORMAT
"""cst-micro-chassis's name for :data:`TEXT_FORMAT`."""


class CstMicroChassisLogFormatter(TextFormatter):
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
