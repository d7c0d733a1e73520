"""An app served on two listeners in tests/test_management.py (CST_MANAGEMENT_PORT from env)."""

from __future__ import annotations

from flask import Flask

from cst_chassis import CstMicroChassis


def create_app() -> Flask:
    app = Flask("management-app")
    app.config["CST_METRICS_ENDPOINT"] = "/metrics"

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    CstMicroChassis(app)
    return app
