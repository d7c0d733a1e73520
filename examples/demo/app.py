"""The demo's app factory: ``create_app()`` (also what gunicorn loads)."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, Response, request
from sqlalchemy import text

from cst_chassis import ChassisApi, CstMicroChassis
from cst_chassis.async_bridge import on_shutdown
from examples.demo.database import EXTENSION_KEY, Database, database_url_from_env
from examples.demo.migrate import MIGRATIONS_DIR
from examples.demo.resources import ProductDetail, ProductList, ProductsByPrice, Relay

__all__ = ["PROJECT_NAME", "PROJECT_VERSION", "create_app"]

PROJECT_NAME = "cst-chassis-demo"
PROJECT_VERSION = "1.0.0"
DEMO_CURSOR_SECRET = "cst-chassis-demo: not a secret"

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("examples.demo.access")


def create_app(database_url: str | None = None, *, upstream_url: str | None = None) -> Flask:
    """Build the demo app.

    ``database_url`` defaults to ``DATABASE_URL`` (else a SQLite file next to this module);
    ``upstream_url`` is what ``/relay`` calls (default: this server's own ``/status``). The
    database must already be migrated (``python -m examples.demo prepare``). ``CST_*`` variables
    in the environment override the defaults set here, as in any chassis app.
    """
    # The import name doubles as the default /status name, title-cased: "Cst-Chassis-Demo".
    app = Flask(PROJECT_NAME, root_path=str(Path(__file__).resolve().parent))
    app.config.update(
        CST_PROJECT_VERSION=PROJECT_VERSION,
        # /status then also reports whether the database is behind the code's migrations.
        CST_ALEMBIC_SCRIPT_LOCATION=str(MIGRATIONS_DIR),
        DEMO_UPSTREAM_URL=upstream_url,
        # Signs the keyset cursors of /products/by-price. A fixed value so that every gunicorn
        # worker accepts the others' cursors; set CST_CURSOR_SECRET for a real service.
        CST_CURSOR_SECRET=DEMO_CURSOR_SECRET,
        # Prometheus metrics on /metrics (needs the `metrics` extra; README, "Metrics and probes").
        CST_METRICS_ENDPOINT="/metrics",
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
    # Close the async pool's connections on the chassis event loop when the process exits.
    on_shutdown(database.async_engine.dispose)

    @app.after_request
    def log_access(response: Response) -> Response:
        # Werkzeug's and gunicorn's access lines are written after the request left the chassis,
        # so they carry no operation id; this one does. The route, not the raw path: a client
        # cannot forge log lines through it.
        rule = request.url_rule.rule if request.url_rule is not None else "(no route)"
        access_logger.info("%s %s -> %d", request.method, rule, response.status_code)
        return response

    api = ChassisApi(app)
    api.add_resource(ProductList, "/products")
    api.add_resource(ProductsByPrice, "/products/by-price")
    api.add_resource(ProductDetail, "/products/<int:product_id>")
    api.add_resource(Relay, "/relay")
    logger.info("demo app ready on %s", database.safe_url())
    return app
