"""``python -m examples.demo [serve|prepare]``: migrate, seed, and serve the demo.

- ``prepare``: apply the Alembic migrations (``upgrade head``) and seed products if empty.
- ``serve`` (default): ``prepare``, then serve on ``HOST``:``PORT`` (default 127.0.0.1:5000)
  with Werkzeug's threaded server, printing the URLs of the API, its OpenAPI document and its
  docs page. ``/relay`` calls this server's own ``/status`` unless ``DEMO_UPSTREAM_URL`` says
  otherwise. For several processes use gunicorn (README, "Deployment").
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from flask import Flask
from werkzeug.serving import make_server

from cst_chassis import get_state
from examples.demo import migrate
from examples.demo.app import create_app
from examples.demo.database import get_database
from examples.demo.resources import UPSTREAM_CONFIG_KEY
from examples.demo.seed import seed

logger = logging.getLogger("examples.demo")


def prepare(app: Flask) -> None:
    """Migrate the app's database to the newest revision and seed it when empty."""
    database = get_database(app)
    migrate.upgrade(database)
    logger.info("database at revision %s", migrate.head_revision())
    inserted = seed(database)
    if inserted:
        logger.info("seeded %d products", inserted)
    else:
        logger.info("products already present: not seeding")
    # Connections opened here must not be inherited by server processes forked later.
    database.engine.dispose()


def _port(value: str) -> int:
    port = int(value) if value.isdigit() else -1
    if not 0 <= port <= 65535:
        raise SystemExit(f"PORT={value!r} is invalid: expected an integer in 0..65535")
    return port


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.demo", description=__doc__)
    parser.add_argument("command", nargs="?", choices=("serve", "prepare"), default="serve")
    args = parser.parse_args(argv)
    app = create_app()
    prepare(app)
    if args.command == "serve":
        host = os.environ.get("HOST", "127.0.0.1")
        port = _port(os.environ.get("PORT", "5000"))
        server = make_server(host, port, app, threaded=True)
        base = f"http://{host}:{server.server_port}"
        # The server's own address, known once bound (PORT=0 picks a free one): configuration
        # set here, not something a request could change.
        if app.config.get(UPSTREAM_CONFIG_KEY) is None:
            app.config[UPSTREAM_CONFIG_KEY] = f"{base}/status"
        config = get_state(app).config
        print(f" * Running on {base}", flush=True)
        print(f" * OpenAPI document: {base}{config.openapi_path}", flush=True)
        if config.openapi_docs_path is not None:
            print(f" * API docs (Swagger UI): {base}{config.openapi_docs_path}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
