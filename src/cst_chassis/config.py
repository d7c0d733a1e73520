"""``CST_*`` settings: read once in ``init_app`` into a frozen :class:`ChassisConfig`.

Each key is looked up in the process environment first, then in ``app.config`` (the seed's
order). A bad value raises :class:`~cst_chassis.errors.ChassisConfigError` naming the key and
the value; nothing falls back silently.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from cst_chassis.errors import ChassisConfigError

__all__ = ["ChassisConfig", "load_config"]

T = TypeVar("T")
LogFormat = Literal["text", "json"]

_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
# RFC 9110 token characters: what a header name may contain.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_ENDPOINT = re.compile(r"/[A-Za-z0-9._~\-/]*")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


_DEFAULT_ASYNC_TIMEOUT: float | None = 30.0
_DEFAULT_OPENAPI_DOCS_PATH: str | None = "/docs"


@dataclass(frozen=True, slots=True)
class ChassisConfig:
    """The validated chassis settings of one app (see the README's configuration table)."""

    project_name: str
    project_version: str = "N/A"
    health_check_endpoint: str = "/status"
    health_check_timeout: float = 3.0
    stream_log_level: int = logging.INFO
    log_format: LogFormat = "text"
    default_page_size: int = 25
    max_page_size: int = 100
    operation_id_header: str = "X-Operation-ID"
    async_bridge: bool = True
    async_timeout: float | None = 30.0
    alembic_script_location: str | None = None
    cursor_secret: str | None = None
    openapi_enabled: bool = False
    openapi_path: str = "/openapi.json"
    openapi_docs_path: str | None = "/docs"


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


def _endpoint(key: str, value: object) -> str:
    if isinstance(value, str):
        path = value.strip()
        path = path if path.startswith("/") else "/" + path
        if _ENDPOINT.fullmatch(path) and "//" not in path and path != "/":
            return path
    raise ChassisConfigError(key, value, "a URL path such as /status")


def _optional_endpoint(key: str, value: object) -> str | None:
    if isinstance(value, str) and value.strip().lower() in {"none", "off"}:
        return None
    return _endpoint(key, value)


def load_config(
    import_name: str,
    app_config: Mapping[str, object],
    environ: Mapping[str, str] | None = None,
) -> ChassisConfig:
    """Read and validate every ``CST_*`` key; raise ``ChassisConfigError`` on a bad value."""
    source = _Source(app_config, os.environ if environ is None else environ)
    default_page_size = source.get("CST_API_DEFAULT_PAGE_SIZE", _positive_int, 25)
    max_page_size = source.get("CST_API_MAX_PAGE_SIZE", _positive_int, 4 * default_page_size)
    if max_page_size < default_page_size:
        raise ChassisConfigError(
            "CST_API_MAX_PAGE_SIZE",
            source.raw("CST_API_MAX_PAGE_SIZE"),
            f"an integer >= CST_API_DEFAULT_PAGE_SIZE ({default_page_size})",
        )
    return ChassisConfig(
        project_name=source.get("CST_PROJECT_NAME", _string, import_name.title()),
        project_version=source.get("CST_PROJECT_VERSION", _string, "N/A"),
        health_check_endpoint=source.get("CST_HEALTH_CHECK_ENDPOINT", _endpoint, "/status"),
        health_check_timeout=source.get("CST_HEALTH_CHECK_TIMEOUT", _positive_seconds, 3.0),
        stream_log_level=source.get("CST_STREAM_LOG_LEVEL", _log_level, logging.INFO),
        log_format=source.get("CST_LOG_FORMAT", _log_format, "text"),
        default_page_size=default_page_size,
        max_page_size=max_page_size,
        operation_id_header=source.get("CST_OPERATION_ID_HEADER", _header_name, "X-Operation-ID"),
        async_bridge=source.get("CST_ASYNC_BRIDGE", _boolean, True),
        async_timeout=source.get("CST_ASYNC_TIMEOUT", _optional_seconds, _DEFAULT_ASYNC_TIMEOUT),
        alembic_script_location=source.get("CST_ALEMBIC_SCRIPT_LOCATION", _string, None),
        cursor_secret=source.get("CST_CURSOR_SECRET", _string, None),
        openapi_enabled=source.get("CST_OPENAPI_ENABLED", _boolean, False),
        openapi_path=source.get("CST_OPENAPI_PATH", _endpoint, "/openapi.json"),
        openapi_docs_path=source.get(
            "CST_OPENAPI_DOCS_PATH", _optional_endpoint, _DEFAULT_OPENAPI_DOCS_PATH
        ),
    )
