"""The health endpoint (placeholder: name and version; the health issue completes it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, Response, jsonify

if TYPE_CHECKING:
    from cst_chassis.extension import ChassisState

__all__ = ["register_health_endpoint"]


def register_health_endpoint(app: Flask, state: ChassisState) -> None:
    """Add the health route (``CST_HEALTH_CHECK_ENDPOINT``, default ``/status``) to ``app``."""
    config = state.config

    def status() -> Response:
        return jsonify({"name": config.project_name, "version": config.project_version})

    app.add_url_rule(config.health_check_endpoint, "cst_chassis_health", status)
