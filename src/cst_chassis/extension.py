"""``CstMicroChassis``: the Flask extension that wires the chassis into an app."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from flask import Flask
from flask.logging import default_handler
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from cst_chassis import async_bridge
from cst_chassis._app_errors import install_http_error_envelope
from cst_chassis._body import install_body_checks
from cst_chassis.config import ChassisConfig, load_config
from cst_chassis.errors import ChassisError
from cst_chassis.health import register_health_endpoint
from cst_chassis.logging import install_logging, restore_logging, watch_logging
from cst_chassis.metrics import install_metrics
from cst_chassis.middleware import OperationIdMiddleware
from cst_chassis.pagination.secret import guard_view_functions
from cst_chassis.probes import register_liveness_endpoint
from cst_chassis.state import EXTENSION_KEY, ChassisState, get_state

if TYPE_CHECKING:
    from cst_chassis.typing import DatabaseLike, HealthCheck

__all__ = ["CstMicroChassis"]

CheckT = TypeVar("CheckT", bound="HealthCheck")


class CstMicroChassis:
    """The chassis extension: config, logging, operation id, async bridge, health endpoint.

    Use ``CstMicroChassis(app, db)`` or, for app factories, ``chassis = CstMicroChassis()`` then
    ``chassis.init_app(app, db)``. Health checks registered with :meth:`health_check` apply to
    every app this instance is initialised on.
    """

    def __init__(self, app: Flask | None = None, db: DatabaseLike | None = None) -> None:
        self._health_checks: dict[str, HealthCheck] = {}
        if app is not None:
            self.init_app(app, db)

    def init_app(self, app: Flask, db: DatabaseLike | None = None) -> None:
        """Install the chassis on ``app``.

        ``db`` (optional) is a Flask-SQLAlchemy instance, a SQLAlchemy ``Engine`` or an
        ``AsyncEngine``: the health endpoint then reports ``last_migration``, and paginated
        resources fall back to Flask-SQLAlchemy's session.

        Config keys read (environment first, then ``app.config``): ``CST_PROJECT_NAME``,
        ``CST_PROJECT_VERSION``, ``CST_HEALTH_CHECK_ENDPOINT``, ``CST_HEALTH_CHECK_TIMEOUT``,
        ``CST_STREAM_LOG_LEVEL``, ``CST_LOG_FORMAT``, ``CST_LOG_TEXT_FORMAT``,
        ``CST_API_DEFAULT_PAGE_SIZE``,
        ``CST_API_MAX_PAGE_SIZE``, ``CST_OPERATION_ID_HEADER``, ``CST_ASYNC_BRIDGE``,
        ``CST_ASYNC_TIMEOUT``, ``CST_ASGI_THREADS`` (used by ``cst_chassis.asgi.asgi_app``),
        ``CST_ALEMBIC_SCRIPT_LOCATION``, ``CST_CURSOR_SECRET`` (and
        ``SECRET_KEY`` when a keyset resource is already registered: the cursor secret must then
        be set and at least 16 bytes long), ``CST_MAX_CONTENT_LENGTH`` (and Flask's
        ``MAX_CONTENT_LENGTH``, which wins when set), ``CST_ENVELOPE_HTTP_ERRORS``,
        ``CST_HEALTH_CACHE_TTL``, ``CST_LIVENESS_ENDPOINT``, ``CST_READINESS_ENDPOINT``,
        ``CST_METRICS_ENDPOINT`` (and ``PROMETHEUS_MULTIPROC_DIR`` when metrics are on),
        ``CST_OPENAPI_ENABLED``, ``CST_OPENAPI_PATH``, ``CST_OPENAPI_DOCS_PATH``.

        Raises :class:`~cst_chassis.errors.ChassisConfigError` (a ``ValueError``) naming the key
        and value of a bad setting (also: ``CST_ALEMBIC_SCRIPT_LOCATION`` missing, without a
        ``versions/`` folder, or with a broken revision graph);
        :class:`~cst_chassis.errors.ChassisError`
        when the app already has the chassis or ``CST_ALEMBIC_SCRIPT_LOCATION`` is set without
        Alembic installed; ``TypeError`` when ``db`` is none of the accepted kinds.
        """
        if EXTENSION_KEY in app.extensions:
            raise ChassisError(
                f"cst-chassis is already initialised on app {app.import_name!r}; "
                "call init_app once per app"
            )
        _check_database_kind(db)
        config = load_config(app.import_name, app.config)
        # Keyset resources need a usable cursor secret: checked now and at their registration.
        guard_view_functions(app, config.cursor_secret)
        state = ChassisState(config=config, db=db, health_checks=self._health_checks)

        install_logging(config.stream_log_level, config.log_format, config.log_text_format)
        # Flask adds its own stderr handler to app.logger; with ours on the root logger every
        # app.logger line would be printed twice.
        app.logger.removeHandler(default_handler)
        app.logger.setLevel(logging.NOTSET)
        watch_logging(app)

        app.wsgi_app = OperationIdMiddleware(  # type: ignore[method-assign]  # Flask documents wrapping wsgi_app
            app.wsgi_app, config.operation_id_header, on_first_request=restore_logging
        )
        if config.async_bridge:
            app.async_to_sync = functools.partial(  # type: ignore[method-assign]  # Flask documents overriding async_to_sync
                async_bridge.async_to_sync, timeout=config.async_timeout
            )
        if isinstance(db, AsyncEngine):
            async_bridge.register_engine(db)

        install_body_checks(app, config)
        if config.envelope_http_errors:
            install_http_error_envelope(app)

        app.extensions[EXTENSION_KEY] = state
        register_health_endpoint(app, state)
        register_liveness_endpoint(app, state)
        install_metrics(app, state, explicitly_configured=_is_set(app, "CST_METRICS_ENDPOINT"))
        if config.openapi_enabled:
            _register_openapi(app, config)

    def health_check(self, name: str) -> Callable[[CheckT], CheckT]:
        """Register an extra check shown in the health response under ``name``.

        The check is a sync or ``async def`` function without arguments; it passes by returning
        (anything but ``False``) and fails by raising, returning ``False`` or running longer than
        ``CST_HEALTH_CHECK_TIMEOUT``. Each run gets an app context of its own. A failing check
        makes the health response 503::

            @chassis.health_check("cache")
            def cache() -> bool:
                return redis.ping()
        """

        def register(check: CheckT) -> CheckT:
            self._health_checks[name] = check
            return check

        return register


def _is_flask_sqlalchemy(db: object) -> bool:
    # Flask-SQLAlchemy is optional: only look at it if the app already imported it.
    module = sys.modules.get("flask_sqlalchemy")
    return module is not None and isinstance(db, module.SQLAlchemy)


def _check_database_kind(db: object) -> None:
    # Checked before anything is installed, so a wrong db leaves the app untouched.
    if db is None or isinstance(db, Engine | AsyncEngine) or _is_flask_sqlalchemy(db):
        return
    raise TypeError(
        "init_app(app, db): db must be a Flask-SQLAlchemy instance, a SQLAlchemy Engine or an "
        f"AsyncEngine, not {type(db).__module__}.{type(db).__qualname__}"
    )


def _is_set(app: Flask, key: str) -> bool:
    return key in os.environ or app.config.get(key) is not None


def _register_openapi(app: Flask, config: ChassisConfig) -> None:
    # Imported here: pydantic and Swagger UI come with the optional ``openapi`` extra, and an app
    # that leaves the document off must not need them.
    try:
        from cst_chassis.openapi import register_openapi
    except ImportError as exc:
        raise ChassisError(
            f"CST_OPENAPI_ENABLED is set but {exc.name} is not installed: "
            "pip install 'cst-chassis[openapi]'"
        ) from exc
    register_openapi(app, config)
