"""Serving: the document at ``CST_OPENAPI_PATH``, Swagger UI at ``CST_OPENAPI_DOCS_PATH``.

The page's assets come from the installed ``flask-swagger-ui`` package (no CDN).
"""

from __future__ import annotations

import importlib.resources
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, Response, abort, current_app, send_from_directory
from werkzeug.wrappers import Response as ResponseBase

from cst_chassis.errors import ChassisError
from cst_chassis.openapi.document import _JSON, build_document

if TYPE_CHECKING:
    from cst_chassis.config import ChassisConfig

__all__ = ["register_openapi", "swagger_ui_assets"]

_SWAGGER_UI_PACKAGE = "flask_swagger_ui"


class _DocumentView:
    """Builds the document at its first request (every resource is added by then), once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._body: bytes | None = None

    def __call__(self) -> Response:
        if self._body is None:
            with self._lock:
                if self._body is None:
                    app = current_app._get_current_object()  # type: ignore[attr-defined]  # LocalProxy API
                    document = build_document(app)
                    self._body = json.dumps(document, indent=2).encode() + b"\n"
        return Response(self._body, mimetype=_JSON)


_DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-ui-init.js"></script>
</body>
</html>
"""

# A separate script rather than inline JavaScript, so a strict Content-Security-Policy can stay.
# validatorUrl null: Swagger UI would otherwise load a badge from validator.swagger.io, which
# the policy forbids (and which would tell a third party where the document lives).
_DOCS_INIT = """window.ui = SwaggerUIBundle(
  {{url: {url}, dom_id: "#swagger-ui", validatorUrl: null}}
);
"""
_INIT_SCRIPT = "swagger-ui-init.js"
# What the page loads from the package; nothing else of its folder is served (not
# oauth2-redirect.html, which would be a page of the service's origin that nobody asked for).
_PACKAGE_ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js"})
# Scripts and styles only from this origin; requests only to it (the document). Swagger UI
# sets style attributes and uses data: images for its icons, hence those two allowances.
_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_ASSET_HEADERS = {"X-Content-Type-Options": "nosniff"}


def swagger_ui_assets() -> Path:
    """The folder of Swagger UI's files inside the ``flask-swagger-ui`` package."""
    folder = Path(str(importlib.resources.files(_SWAGGER_UI_PACKAGE) / "dist"))
    if not (folder / "swagger-ui-bundle.js").is_file():
        raise ChassisError(f"Swagger UI assets not found in {folder}; reinstall flask-swagger-ui")
    return folder


def register_openapi(app: Flask, config: ChassisConfig) -> None:
    """Serve the document at ``CST_OPENAPI_PATH`` and Swagger UI at ``CST_OPENAPI_DOCS_PATH``.

    Called by ``init_app`` when ``CST_OPENAPI_ENABLED`` is true. The page's assets are served
    from ``<docs path>/assets/`` out of the installed ``flask-swagger-ui`` package: only the
    stylesheet and script the page loads (plus its own start-up script), with
    ``X-Content-Type-Options: nosniff``. The page itself is sent with a Content-Security-Policy
    that allows scripts, styles and requests from the service's own origin only, and with
    ``X-Frame-Options: DENY`` (no framing, hence no click-jacking) and ``nosniff``.
    """
    app.add_url_rule(config.openapi_path, "cst_openapi_document", _DocumentView())
    docs_path = config.openapi_docs_path
    if docs_path is None:
        return
    assets_folder = swagger_ui_assets()
    assets_url = docs_path.rstrip("/") + "/assets"
    page = _DOCS_PAGE.format(title=_html_escape(config.project_name), assets=assets_url)
    init_script = _DOCS_INIT.format(url=json.dumps(config.openapi_path))

    def docs_page() -> Response:
        return Response(page, mimetype="text/html", headers=_PAGE_HEADERS)

    def docs_asset(filename: str) -> ResponseBase:
        if filename == _INIT_SCRIPT:
            response = Response(init_script, mimetype="text/javascript")
        elif filename in _PACKAGE_ASSETS:
            response = send_from_directory(assets_folder, filename, max_age=3600)
        else:
            abort(404)
        response.headers.update(_ASSET_HEADERS)
        return response

    app.add_url_rule(docs_path, "cst_openapi_docs", docs_page)
    app.add_url_rule(f"{assets_url}/<filename>", "cst_openapi_docs_asset", docs_asset)


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
