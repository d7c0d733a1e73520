"""The reliability service plus a demo-like ``async def`` check on its pooled AsyncEngine.

The demo (examples/demo) registers such a check; against a silent database its runs are
cancelled at ``CST_HEALTH_CHECK_TIMEOUT`` one after the other, which is what the poll-storm
test (tests/reliability/test_poll_storm.py) needs besides the stuck sync probe. Served as
``tests.reliability.storm_service:create_app_from_env()``, settings from the environment.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from flask import Flask

from cst_chassis.asgi import ASGIApp, asgi_app
from cst_chassis.state import get_state
from tests.reliability import service

__all__ = ["create_app_from_env", "create_asgi_app_from_env"]


def create_app_from_env() -> Flask:
    """The service of ``RELIABILITY_SERVICE_SETTINGS`` with an ``async_pool`` health check."""
    app = service.create_app(service.ServiceSettings.from_json(os.environ[service.SETTINGS_ENV]))
    engines = app.extensions[service.EXTENSION_KEY]

    async def async_pool() -> bool:
        async with engines.async_.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
        return True

    get_state(app).health_checks["async_pool"] = async_pool
    return app


def create_asgi_app_from_env() -> ASGIApp:
    """The same app over ASGI (uvicorn; 2 threads for its sync views, as the WSGI workers have)."""
    return asgi_app(create_app_from_env(), threads=2)
