"""A JSON-body endpoint served by gunicorn in tests/test_body.py (default chassis limits)."""

from __future__ import annotations

from flask import Flask, request

from cst_chassis import ChassisApi, CstMicroChassis
from cst_chassis.resources import ApiResource


class Items(ApiResource):
    def post(self) -> tuple[dict[str, int], int]:
        body = request.get_json()
        return {"received": len(body) if isinstance(body, list | dict | str) else 0}, 201


def create_app() -> Flask:
    app = Flask("body-app")
    CstMicroChassis(app)
    ChassisApi(app).add_resource(Items, "/items")
    return app
