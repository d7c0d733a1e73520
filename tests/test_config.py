"""Config: env first, then app.config; bad values fail at start-up naming key and value."""

from __future__ import annotations

import logging
import re

import pytest
from flask import Flask

from cst_chassis import ChassisConfigError, CstMicroChassis, get_state
from cst_chassis.config import load_config
from tests.conftest import AppFactory


def test_defaults_follow_the_seed(app: Flask) -> None:
    config = get_state(app).config
    assert config.project_name == "Test-Cst-Micro-Chassis"
    assert config.project_version == "N/A"
    assert config.health_check_endpoint == "/status"
    assert config.stream_log_level == logging.INFO
    assert config.default_page_size == 25
    assert config.max_page_size == 100
    assert config.operation_id_header == "X-Operation-ID"
    assert config.log_format == "text"
    assert config.async_bridge is True


def test_environment_wins_over_flask_config(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CST_PROJECT_NAME", "from-env")
    app = make_app(CST_PROJECT_NAME="from-config", CST_PROJECT_VERSION="1.2.3")
    config = get_state(app).config
    assert config.project_name == "from-env"
    assert config.project_version == "1.2.3"


def test_max_page_size_defaults_to_four_times_the_page_size(make_app: AppFactory) -> None:
    app = make_app(CST_API_DEFAULT_PAGE_SIZE="10")
    assert get_state(app).config.max_page_size == 40


def test_typed_flask_config_values_are_accepted(make_app: AppFactory) -> None:
    app = make_app(CST_API_DEFAULT_PAGE_SIZE=10, CST_ASYNC_BRIDGE=False, CST_ASYNC_TIMEOUT=2.5)
    config = get_state(app).config
    assert (config.default_page_size, config.async_bridge, config.async_timeout) == (10, False, 2.5)


def test_health_endpoint_gets_a_leading_slash() -> None:
    assert load_config("x", {"CST_HEALTH_CHECK_ENDPOINT": "health"}, {}).health_check_endpoint == (
        "/health"
    )


def test_async_timeout_can_be_disabled() -> None:
    assert load_config("x", {}, {"CST_ASYNC_TIMEOUT": "none"}).async_timeout is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CST_STREAM_LOG_LEVEL", "LOUD"),
        ("CST_API_DEFAULT_PAGE_SIZE", "abc"),
        ("CST_API_DEFAULT_PAGE_SIZE", "0"),
        ("CST_API_DEFAULT_PAGE_SIZE", "-5"),
        ("CST_API_DEFAULT_PAGE_SIZE", "2.5"),
        ("CST_API_MAX_PAGE_SIZE", "ten"),
        ("CST_LOG_FORMAT", "xml"),
        ("CST_OPERATION_ID_HEADER", "X Operation"),
        ("CST_LOG_TEXT_FORMAT", "%(nope)s %(message)s"),
        ("CST_LOG_TEXT_FORMAT", "%(message"),
        ("CST_HEALTH_CHECK_TIMEOUT", "0"),
        ("CST_HEALTH_CHECK_TIMEOUT", "nan"),
        ("CST_ASYNC_BRIDGE", "maybe"),
        ("CST_ASYNC_TIMEOUT", "-1"),
        ("CST_HEALTH_CHECK_ENDPOINT", "/a b"),
        ("CST_PROJECT_NAME", ""),
    ],
)
def test_bad_value_from_env_names_key_and_value(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch, key: str, value: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=key) as excinfo:
        make_app()
    assert isinstance(excinfo.value, ChassisConfigError)
    assert repr(value) in str(excinfo.value)


def test_bad_value_from_flask_config_is_rejected(make_app: AppFactory) -> None:
    with pytest.raises(ChassisConfigError, match="CST_API_DEFAULT_PAGE_SIZE=True"):
        make_app(CST_API_DEFAULT_PAGE_SIZE=True)


def test_max_page_size_below_default_is_rejected(make_app: AppFactory) -> None:
    with pytest.raises(ChassisConfigError, match="CST_API_MAX_PAGE_SIZE='10'"):
        make_app(CST_API_DEFAULT_PAGE_SIZE="25", CST_API_MAX_PAGE_SIZE="10")


def test_a_bad_config_leaves_the_app_untouched(make_app: AppFactory) -> None:
    app = Flask("bad")
    app.config["CST_LOG_FORMAT"] = "yaml"
    original_wsgi_app = app.wsgi_app
    with pytest.raises(ChassisConfigError):
        CstMicroChassis(app)
    assert "cst_chassis" not in app.extensions
    assert app.wsgi_app == original_wsgi_app


@pytest.mark.parametrize(
    "name",
    [
        "Content-Type",
        "content-length",
        "Location",
        "Set-Cookie",
        "Transfer-Encoding",
        "Connection",
        "WWW-Authenticate",
        "traceparent",
        "Tracestate",
        "Access-Control-Allow-Origin",
        "X-Forwarded-For",
        "Content-Security-Policy",
        "Proxy-Authorization",
    ],
)
def test_operation_id_header_refuses_names_http_gives_a_meaning_to(
    make_app: AppFactory, name: str
) -> None:
    # Echoed on every response, such a name would duplicate Content-Type/Content-Length or
    # reflect a client-chosen Set-Cookie/Location.
    with pytest.raises(ChassisConfigError, match=f"CST_OPERATION_ID_HEADER={name!r}"):
        make_app(CST_OPERATION_ID_HEADER=name)


@pytest.mark.parametrize("name", ["X-Request-ID", "X-Correlation-ID", "Request-Id", "X-Trace"])
def test_operation_id_header_accepts_names_of_its_own(make_app: AppFactory, name: str) -> None:
    app = make_app(CST_OPERATION_ID_HEADER=name)
    response = app.test_client().get("/status", headers={name: "op-1"})
    assert response.headers.getlist(name) == ["op-1"]


def test_readme_lists_exactly_the_refused_operation_id_header_names() -> None:
    from pathlib import Path

    from cst_chassis.config import _RESERVED_HEADERS, _RESERVED_PREFIXES

    guide = Path(__file__).resolve().parent.parent / "docs/guides/operation-id-and-logging.md"
    readme = guide.read_text()
    section = readme[readme.index("`CST_OPERATION_ID_HEADER` must be") :]
    section = section[section.index("Refused:") : section.index("\n\n")]
    names = {name.lower() for name in re.findall(r"`([A-Za-z0-9-]+)`", section)}
    prefixes = {name for name in names if name.endswith("-")}
    assert prefixes == set(_RESERVED_PREFIXES)
    assert names - prefixes == set(_RESERVED_HEADERS)
