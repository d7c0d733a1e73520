"""The Swagger UI page: security headers, and only the assets it uses (issue 26, item 5)."""

from __future__ import annotations

import pytest
from flask import Flask

from cst_chassis.openapi import swagger_ui_assets
from tests.conftest import AppFactory


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app(CST_OPENAPI_ENABLED=True)


def test_the_page_forbids_framing_sniffing_and_foreign_scripts(app: Flask) -> None:
    response = app.test_client().get("/docs")
    assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"  # no inline script, no CDN
    assert policy["connect-src"] == "'self'"  # the document, nothing else
    assert policy["frame-ancestors"] == "'none'"
    # The page obeys its own policy: every script is a file of this origin.
    html = response.get_data(as_text=True)
    assert "<script>" not in html and "http" not in html


def test_the_assets_the_page_uses_are_served_with_nosniff(app: Flask) -> None:
    client = app.test_client()
    for name in ("swagger-ui.css", "swagger-ui-bundle.js"):
        response = client.get(f"/docs/assets/{name}")
        assert response.status_code == 200, name
        assert response.data == (swagger_ui_assets() / name).read_bytes()
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        response.close()  # the file Werkzeug opened
    init = client.get("/docs/assets/swagger-ui-init.js")
    assert init.headers["X-Content-Type-Options"] == "nosniff"
    assert "validatorUrl: null" in init.get_data(as_text=True)  # no call to validator.swagger.io


@pytest.mark.parametrize(
    "name",
    [
        "oauth2-redirect.html",
        "oauth2-redirect.js",
        "index.css",
        "swagger-ui.js",
        "favicon-32x32.png",
        "LICENSE",
        "VERSION",
        "../__init__.py",
        "%2e%2e/__init__.py",
    ],
)
def test_nothing_else_of_the_package_is_served(app: Flask, name: str) -> None:
    response = app.test_client().get(f"/docs/assets/{name}")
    assert response.status_code == 404
    assert response.is_json  # the chassis's envelope, not a file
