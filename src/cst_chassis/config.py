"""``CST_*`` settings: read once in ``init_app`` into a frozen :class:`ChassisConfig`.

Each key is looked up in the process environment first, then in ``app.config`` (cst-micro-chassis's
order). A bad value raises :class:`~cst_chassis.errors.ChassisConfigError` naming the key and
the value; nothing falls back silently.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, TypeVar

from cst_chassis.errors import ChassisConfigError
from cst_chassis.logging import TEXT_FORMAT

__all__ = ["ChassisConfig"]

T = TypeVar("T")
LogFormat = Literal["text", "json"]

_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
# RFC 9110 token characters: what a header name may contain.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_ENDPOINT = re.compile(r"/[A-Za-z0-9._~\-/]*")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class _Source:
    """Looks a key up in the environment, then in the app config."""

    def __init__(self, app_config: Mapping[str, object], environ: Mapping[str, str]) -> None:
        self._app_config = app_config
        self._environ = environ

    def raw(self, key: str) -> object | None:
        if key in self._environ:
            return self._environ[key]
        return self._app_config.get(key)

    def get(self, key: str, parse: Callable[[str, object], T], default: T) -> T:
        value = self.raw(key)
        if value is None:
            return default
        return parse(key, value)


def _string(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ChassisConfigError(key, value, "a non-empty string")
    return value.strip()


def _positive_int(key: str, value: object) -> int:
    if isinstance(value, bool):
        raise ChassisConfigError(key, value, "a positive integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        number = int(value)
    else:
        raise ChassisConfigError(key, value, "a positive integer")
    if number <= 0:
        raise ChassisConfigError(key, value, "a positive integer")
    return number


def _positive_seconds(key: str, value: object) -> float:
    expected = "a positive number of seconds"
    if isinstance(value, bool):
        raise ChassisConfigError(key, value, expected)
    try:
        seconds = float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:
        raise ChassisConfigError(key, value, expected) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ChassisConfigError(key, value, expected)
    return seconds


def _optional_seconds(key: str, value: object) -> float | None:
    if isinstance(value, str) and value.strip().lower() in {"none", "off"}:
        return None
    return _positive_seconds(key, value)


def _optional_bytes(key: str, value: object) -> int | None:
    if isinstance(value, str) and value.strip().lower() in {"none", "off"}:
        return None
    return _positive_int(key, value)


def _boolean(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ChassisConfigError(key, value, "a boolean (true/false, 1/0, yes/no, on/off)")


def _log_level(key: str, value: object) -> int:
    if isinstance(value, str) and value.strip().upper() in _LEVELS:
        level: int = logging.getLevelNamesMapping()[value.strip().upper()]
        return level
    raise ChassisConfigError(key, value, "one of DEBUG, INFO, WARNING, ERROR, CRITICAL")


def _log_format(key: str, value: object) -> LogFormat:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered == "text":
            return "text"
        if lowered == "json":
            return "json"
    raise ChassisConfigError(key, value, "'text' or 'json'")


def _header_name(key: str, value: object) -> str:
    if isinstance(value, str) and _HEADER_NAME.fullmatch(value):
        return value
    raise ChassisConfigError(key, value, "an HTTP header name such as X-Operation-ID")


# Header names the operation id must not take (CST_OPERATION_ID_HEADER): the id is echoed on
# every response, so a name that HTTP, a browser, a proxy or the chassis itself gives a meaning
# to would add a second Content-Type/Content-Length, a Set-Cookie or a Location built from the
# request, or clash with the trace headers. Refused: these names, and every name starting with
# one of the prefixes below (case-insensitive).
_RESERVED_HEADERS = frozenset(
    {
        "accept", "accept-ranges", "age", "allow", "alt-svc", "authorization", "baggage",
        "cache-control", "connection", "cookie", "date", "etag", "expect", "expires",
        "forwarded", "host", "keep-alive", "last-modified", "link", "location", "origin",
        "pragma", "range", "referer", "refresh", "retry-after", "server", "set-cookie",
        "set-cookie2", "strict-transport-security", "te", "traceparent", "tracestate",
        "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via",
        "www-authenticate", "x-content-type-options", "x-frame-options", "x-real-ip",
        "x-xss-protection",
    }
)  # fmt: skip
_RESERVED_PREFIXES = (
    "content-", "access-control-", "proxy-", "x-forwarded-", "sec-", "if-", "cross-origin-",
)  # fmt: skip


def _operation_id_header(key: str, value: object) -> str:
    name = _header_name(key, value)
    lowered = name.lower()
    if lowered in _RESERVED_HEADERS or lowered.startswith(_RESERVED_PREFIXES):
        raise ChassisConfigError(
            key,
            value,
            "a header name of its own such as X-Operation-ID or X-Request-ID, not one that HTTP, "
            "browsers, proxies or tracing give a meaning to",
        )
    return name


def _text_format(key: str, value: object) -> str:
    expected = "a %-style logging format, e.g. cst_chassis.logging.TRACE_TEXT_FORMAT"
    if not isinstance(value, str) or not value.strip():
        raise ChassisConfigError(key, value, expected)
    record = logging.LogRecord("cst_chassis", logging.INFO, __file__, 0, "probe", None, None)
    record.operation_id = record.trace_id = record.span_id = "-"
    try:
        logging.Formatter(value, validate=True).format(record)
    except (ValueError, KeyError, TypeError):
        raise ChassisConfigError(key, value, expected) from None
    return value


def _seconds_or_zero(key: str, value: object) -> float:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            if float(value) == 0:
                return 0.0
    return _positive_seconds(key, value)


def _optional_endpoint(key: str, value: object) -> str | None:
    if isinstance(value, bool) and not value:
        return None
    if isinstance(value, str) and value.strip().lower() in {"", "none", "off", "false"}:
        return None
    return _endpoint(key, value)


def _endpoint(key: str, value: object) -> str:
    if isinstance(value, str):
        path = value.strip()
        path = path if path.startswith("/") else "/" + path
        if _ENDPOINT.fullmatch(path) and "//" not in path and path != "/":
            return path
    raise ChassisConfigError(key, value, "a URL path such as /status")


@dataclass(frozen=True, slots=True)
class Setting:
    """One ``CST_*`` key: how its value is parsed, and the README's words for it."""

    key: str
    parse: Callable[[str, object], Any]
    # The configuration table's "default" and "accepted values" cells (Markdown).
    default_text: str
    accepted: str


def _setting(
    key: str, parse: Callable[[str, object], T], default: T, default_text: str, accepted: str
) -> T:
    # A dataclass field whose metadata declares the key: load_config and the docs' table
    # (cst_chassis._config_table) are derived from these declarations, and a test holds
    # init_app's docstring to their key list.
    setting = Setting(key, parse, default_text, accepted)
    found: T = field(default=default, metadata={_SETTING: setting})
    return found


_SETTING = "cst_chassis.setting"


def _optional(default: T) -> T | None:
    # Types a default as its optional field's type, so _setting's T is ``X | None``.
    return default


# 1 MiB, nginx's default client_max_body_size: ample for JSON, small enough that a worker never
# buffers an attacker's 200 MB.
_ONE_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ChassisConfig:
    """The validated chassis settings of one app (see the README's configuration table).

    Each field declares its ``CST_*`` key, parser, default and documentation once, here.
    """

    # No default: load_config uses the app's import name.
    project_name: str = field(
        metadata={
            _SETTING: Setting(
                "CST_PROJECT_NAME",
                _string,
                "the app's import name, title-cased (`my-app` \N{RIGHTWARDS ARROW} `My-App`)",
                "non-empty string",
            )
        }
    )
    project_version: str = _setting(
        "CST_PROJECT_VERSION", _string, "N/A", "`N/A`", "non-empty string"
    )
    health_check_endpoint: str = _setting(
        "CST_HEALTH_CHECK_ENDPOINT",
        _endpoint,
        "/status",
        "`/status`",
        "URL path, leading slash optional",
    )
    health_check_timeout: float = _setting(
        "CST_HEALTH_CHECK_TIMEOUT", _positive_seconds, 3.0, "`3`", "seconds, > 0"
    )
    stream_log_level: int = _setting(
        "CST_STREAM_LOG_LEVEL",
        _log_level,
        logging.INFO,
        "`INFO`",
        "`DEBUG`, `INFO`, `WARNING`, `ERROR`, `CRITICAL`",
    )
    log_format: LogFormat = _setting(
        "CST_LOG_FORMAT", _log_format, "text", "`text`", "`text` or `json`"
    )
    log_text_format: str = _setting(
        "CST_LOG_TEXT_FORMAT",
        _text_format,
        TEXT_FORMAT,
        "cst-micro-chassis's format",
        "`%`-style logging format (`cst_chassis.logging.TRACE_TEXT_FORMAT` adds the trace ids)",
    )
    default_page_size: int = _setting(
        "CST_API_DEFAULT_PAGE_SIZE", _positive_int, 25, "`25`", "integer > 0"
    )
    max_page_size: int = _setting(
        "CST_API_MAX_PAGE_SIZE",
        _positive_int,
        100,  # 4 x default_page_size (load_config)
        "4 \N{MULTIPLICATION SIGN} the page size",
        "integer ≥ the page size",
    )
    operation_id_header: str = _setting(
        "CST_OPERATION_ID_HEADER",
        _operation_id_header,
        "X-Operation-ID",
        "`X-Operation-ID`",
        "an HTTP header name of its own (not `Content-Type`, `Set-Cookie`, `Location`... see "
        "[Operation id and logging](#operation-id-and-logging))",
    )
    async_bridge: bool = _setting(
        "CST_ASYNC_BRIDGE",
        _boolean,
        True,
        "`true`",
        "boolean (`true/false`, `1/0`, `yes/no`, `on/off`)",
    )
    async_timeout: float | None = _setting(
        "CST_ASYNC_TIMEOUT",
        _optional_seconds,
        _optional(30.0),
        "`30`",
        "seconds > 0, or `none` for no bound",
    )
    asgi_threads: int = _setting(
        "CST_ASGI_THREADS",
        _positive_int,
        40,
        "`40`",
        "integer > 0: threads per process running sync views under "
        "[ASGI](#async-views) (`asgi_app(app, threads=...)` wins)",
    )
    alembic_script_location: str | None = _setting(
        "CST_ALEMBIC_SCRIPT_LOCATION",
        _string,
        None,
        "unset",
        "path of the Alembic migrations folder",
    )
    cursor_secret: str | None = _setting(
        "CST_CURSOR_SECRET",
        _string,
        None,
        "unset (then `SECRET_KEY`)",
        "non-empty string, signs keyset cursors",
    )
    max_content_length: int | None = _setting(
        "CST_MAX_CONTENT_LENGTH",
        _optional_bytes,
        _optional(_ONE_MIB),
        "`1048576` (1 MiB); Flask's `MAX_CONTENT_LENGTH` wins when the app sets it",
        "bytes > 0, or `none` for no limit",
    )
    envelope_http_errors: bool = _setting(
        "CST_ENVELOPE_HTTP_ERRORS",
        _boolean,
        True,
        "`true`",
        "boolean: the app's own HTTP errors (404, 405, 413, 500...) as envelopes",
    )
    health_cache_ttl: float = _setting(
        "CST_HEALTH_CACHE_TTL",
        _seconds_or_zero,
        0.0,
        "`0` (off)",
        "seconds ≥ 0 a finished health run is reused",
    )
    liveness_endpoint: str | None = _setting(
        "CST_LIVENESS_ENDPOINT",
        _optional_endpoint,
        _optional("/livez"),
        "`/livez`",
        "URL path, or `off`",
    )
    readiness_endpoint: str | None = _setting(
        "CST_READINESS_ENDPOINT",
        _optional_endpoint,
        _optional("/readyz"),
        "`/readyz`",
        "URL path, or `off`",
    )
    metrics_endpoint: str | None = _setting(
        "CST_METRICS_ENDPOINT",
        _optional_endpoint,
        _optional("/metrics"),
        "`/metrics` (with the `metrics` extra)",
        "URL path, or `off`",
    )
    openapi_enabled: bool = _setting(
        "CST_OPENAPI_ENABLED",
        _boolean,
        False,
        "`false`",
        "boolean: serve the [OpenAPI](#openapi) document and docs page",
    )
    openapi_path: str = _setting(
        "CST_OPENAPI_PATH",
        _endpoint,
        "/openapi.json",
        "`/openapi.json`",
        "URL path of the document",
    )
    openapi_docs_path: str | None = _setting(
        "CST_OPENAPI_DOCS_PATH",
        _optional_endpoint,
        _optional("/docs"),
        "`/docs`",
        "URL path of the Swagger UI page, or `off`",
    )


def settings() -> tuple[tuple[str, Setting], ...]:
    """Every setting as ``(field name, Setting)``, in the order of :class:`ChassisConfig`."""
    return tuple((f.name, f.metadata[_SETTING]) for f in fields(ChassisConfig))


def load_config(
    import_name: str,
    app_config: Mapping[str, object],
    environ: Mapping[str, str] | None = None,
) -> ChassisConfig:
    """Read and validate every ``CST_*`` key; raise ``ChassisConfigError`` on a bad value."""
    source = _Source(app_config, os.environ if environ is None else environ)
    defaults = {f.name: f.default for f in fields(ChassisConfig)}
    values: dict[str, Any] = {}
    for name, setting in settings():
        default = defaults[name]
        # The defaults that depend on the app or on another key.
        if name == "project_name":  # required: no default of its own
            default = import_name.title()
        elif name == "max_page_size":
            default = 4 * values["default_page_size"]
        values[name] = source.get(setting.key, setting.parse, default)
    # The app's own MAX_CONTENT_LENGTH (Flask's key) wins: the chassis only supplies a default.
    if app_config.get("MAX_CONTENT_LENGTH") is not None:
        values["max_content_length"] = _positive_int(
            "MAX_CONTENT_LENGTH", app_config["MAX_CONTENT_LENGTH"]
        )
    if values["max_page_size"] < values["default_page_size"]:
        raise ChassisConfigError(
            "CST_API_MAX_PAGE_SIZE",
            source.raw("CST_API_MAX_PAGE_SIZE"),
            f"an integer >= CST_API_DEFAULT_PAGE_SIZE ({values['default_page_size']})",
        )
    return ChassisConfig(**values)
