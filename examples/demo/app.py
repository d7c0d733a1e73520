"""The demo's app factory: ``create_app()`` (also what gunicorn loads)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, Response, request
from sqlalchemy import text

from cst_chassis import ChassisApi, CstMicroChassis
from cst_chassis.async_bridge import register_engine
from cst_chassis.logging import loggable
from examples.demo.database import EXTENSION_KEY, Database, database_url_from_env
from examples.demo.migrate import MIGRATIONS_DIR
from examples.demo.resources import (
    UPSTREAM_CONFIG_KEY,
    ProductDetail,
    ProductList,
    ProductQuote,
    ProductsByPrice,
    Relay,
)

__all__ = [
    "PROJECT_NAME",
    "PROJECT_VERSION",
    "create_app",
    "production_server",
    "upstream_url_from",
]

PROJECT_NAME = "cst-chassis-demo"
PROJECT_VERSION = "1.0.0"
# Used only when CST_CURSOR_SECRET is not set and the demo runs in development (make demo, tests),
# with a warning: anyone who reads this file can forge cursors for a service that runs with it.
DEVELOPMENT_CURSOR_SECRET = "cst-chassis-demo development secret: set CST_CURSOR_SECRET"
# Servers that mean production: under them the demo refuses to start without a secret of its own.
PRODUCTION_SERVERS = frozenset({"gunicorn", "granian", "uvicorn", "hypercorn", "uwsgi", "waitress"})

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("examples.demo.access")


def create_app(database_url: str | None = None, *, upstream_url: str | None = None) -> Flask:
    """Build the demo app.

    ``database_url`` defaults to ``DATABASE_URL`` (else a SQLite file next to this module);
    ``upstream_url`` is what ``/relay`` calls, defaulting to ``DEMO_UPSTREAM_URL`` (unset: /relay
    answers 503). The database must already be migrated (``python -m examples.demo prepare``).
    The cursor secret is ``CST_CURSOR_SECRET``; when it is unset, a development value with a
    warning, except under a production server (gunicorn, granian...: ``RuntimeError``).
    ``CST_*`` variables in the environment override the defaults set here, as in any
    chassis app. Raises ``ValueError`` for a bad database or upstream URL.
    """
    # The import name doubles as the default /status name, title-cased: "Cst-Chassis-Demo".
    app = Flask(PROJECT_NAME, root_path=str(Path(__file__).resolve().parent))
    app.config.update(
        CST_PROJECT_VERSION=PROJECT_VERSION,
        # /status then also reports whether the database is behind the code's migrations.
        CST_ALEMBIC_SCRIPT_LOCATION=str(MIGRATIONS_DIR),
        # Prometheus metrics on /metrics (needs the `metrics` extra; README, "Metrics and probes").
        CST_METRICS_ENDPOINT="/metrics",
        # The health details (migrations, checks) for anyone: this is a demo to look at. A real
        # service keeps the default, `authorised`, and serves them on CST_MANAGEMENT_PORT or to
        # CST_MANAGEMENT_TOKEN (docs/guides/health.md, "Exposure").
        CST_HEALTH_DETAILS="always",
        # The OpenAPI document at /openapi.json and Swagger UI at /docs.
        CST_OPENAPI_ENABLED=True,
    )
    # Every gunicorn worker must sign cursors with the same secret: it comes from the
    # environment (the chassis reads CST_* there first), not generated per process.
    secret_from_env = bool(os.environ.get("CST_CURSOR_SECRET", "").strip())
    if not secret_from_env:
        server = production_server()
        if server is not None:
            raise RuntimeError(
                f"CST_CURSOR_SECRET is not set: the demo refuses to run under {server} with its "
                "published development secret (anyone could forge cursors); set "
                "CST_CURSOR_SECRET to a long random value, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        app.config["CST_CURSOR_SECRET"] = DEVELOPMENT_CURSOR_SECRET
    app.config[UPSTREAM_CONFIG_KEY] = upstream_url_from(
        upstream_url if upstream_url is not None else os.environ.get(UPSTREAM_CONFIG_KEY)
    )
    database = Database.connect(database_url or database_url_from_env())
    app.extensions[EXTENSION_KEY] = database

    chassis = CstMicroChassis()

    @chassis.health_check("async_pool")
    async def async_pool() -> bool:
        # A custom check, async: one round trip through the pooled AsyncEngine.
        async with database.async_engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True

    # The sync engine gives /status its last_migration (from alembic_version).
    chassis.init_app(app, database.engine)
    if not secret_from_env:  # said after init_app, so in the chassis's log format
        logger.warning(
            "CST_CURSOR_SECRET is not set: signing cursors with the demo's development secret, "
            "which anyone can read; set CST_CURSOR_SECRET to a long random value in production"
        )
    # Close the async pool's connections on the chassis event loop when the process exits.
    register_engine(database.async_engine)

    @app.after_request
    def log_access(response: Response) -> Response:
        # Werkzeug's and gunicorn's access lines are written after the request left the chassis,
        # so they carry no operation id; this one does. The route, not the raw path, and the
        # method through loggable() (escaped, at most 16 characters): Werkzeug passes any method
        # a client sends, so a raw one could forge log lines or send terminal escapes.
        rule = request.url_rule.rule if request.url_rule is not None else "(no route)"
        method = loggable(request.method, 16)
        access_logger.info("%s %s -> %d", method, rule, response.status_code)
        return response

    # catch_all_404s: an unknown path (or /products/-1, which no rule matches) is a JSON envelope.
    api = ChassisApi(app, catch_all_404s=True)
    api.add_resource(ProductList, "/products")
    api.add_resource(ProductsByPrice, "/products/by-price")
    # <int32:...>: the id column is a 32-bit integer; a larger id is a 404 at the edge.
    api.add_resource(ProductDetail, "/products/<int32:product_id>")
    api.add_resource(ProductQuote, "/products/<int32:product_id>/quote")
    api.add_resource(Relay, "/relay")
    logger.info("demo app ready on %s", database.safe_url())
    return app


def production_server() -> str | None:
    """The production server the demo runs under (``gunicorn``, ``granian``...), else ``None``.

    Read from the program's name (``gunicorn``, ``python -m gunicorn``, ``granian``...) and from
    ``SERVER_SOFTWARE``, which gunicorn sets; ``make demo`` (Werkzeug) and tests are ``None``.
    """
    software = os.environ.get("SERVER_SOFTWARE", "").partition("/")[0].lower()
    if software in PRODUCTION_SERVERS:
        return software
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if program is not None:
        for name in (program.name, program.parent.name):  # granian, or granian/__main__.py
            if name.lower() in PRODUCTION_SERVERS:
                return name.lower()
    return None


def upstream_url_from(value: str | None) -> str | None:
    """Validate the ``/relay`` target: an ``http(s)://host[:port]/...`` URL, or unset.

    It is configuration only: the request (its ``Host`` header included) never chooses where
    ``/relay`` connects. Raises ``ValueError`` naming ``DEMO_UPSTREAM_URL`` for another value.
    """
    if value is None or not value.strip():
        return None
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{UPSTREAM_CONFIG_KEY}={value!r} is invalid: expected http(s)://host/...")
    return value.strip()
