"""The service the reliability suite drives: one app with every kind of endpoint.

Each endpoint writes a known set of log records per request, one of which names the ``token``
the client passed in the query string (see :data:`EXPECTED_RECORDS`), so a test can check that
the operation id of every response matches exactly the log lines its request wrote.

Under gunicorn the app is built from a JSON settings string in an environment variable::

    RELIABILITY_SERVICE_SETTINGS='{...}' gunicorn 'tests.reliability.service:create_app_from_env()'
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Flask, current_app, request
from flask_restful import abort
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session

from cst_chassis import ChassisApi, CstMicroChassis, get_operation_id
from cst_chassis.asgi import ASGIApp, asgi_app
from cst_chassis.async_bridge import run_coroutine
from cst_chassis.context import operation_id_var
from cst_chassis.pagination import Page
from cst_chassis.resources import ApiPaginatedMixin, ApiResource
from cst_chassis.shutdown import is_shutting_down

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "EXPECTED_RECORDS",
    "LEAK_MESSAGE",
    "SETTINGS_ENV",
    "ServiceSettings",
    "create_app",
    "create_app_from_env",
    "create_asgi_app_from_env",
    "dispose_app",
    "items",
    "metadata",
    "seed",
]

SETTINGS_ENV = "RELIABILITY_SERVICE_SETTINGS"
EXTENSION_KEY = "cst_reliability"
LEAK_MESSAGE = "operation id leaked into a new request"
SECRET_MARKER = "reliability-secret"

log = logging.getLogger("reliability.service")

# A token names one request in the log; it is checked so the service never logs raw input.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DIGITS = re.compile(r"[0-9]{1,20}")

metadata = sa.MetaData()
items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
)

# Log records each endpoint writes for one request, besides the "served <kind> token=<token>"
# line: messages that start with these prefixes. ``/status`` writes none at all.
EXPECTED_RECORDS: dict[str, tuple[str, ...]] = {
    "sync": (),
    "async": (),
    "items": (),
    "invalid": (),
    "missing": (),
    "boom": ("Unhandled exception on GET /boom",),
    "unserialisable": ("Unhandled exception on GET /unserialisable",),
    "slow": (),
    "hold": (),
}


@dataclass(frozen=True)
class ServiceSettings:
    """How to build the service: its databases, pool sizes and chassis config."""

    database_url: str
    async_database_url: str
    connect_args: dict[str, Any] = field(default_factory=dict)
    async_connect_args: dict[str, Any] = field(default_factory=dict)
    pool_size: int = 5
    max_overflow: int = 10
    pool_timeout: float = 10.0
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServiceSettings:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class _Engines:
    sync: sa.Engine
    async_: AsyncEngine


def _engines() -> _Engines:
    engines = current_app.extensions[EXTENSION_KEY]
    assert isinstance(engines, _Engines)
    return engines


def _count_sql() -> sa.Select[Any]:
    return sa.select(sa.func.count()).select_from(items)


def _where() -> dict[str, object]:
    return {
        "pid": os.getpid(),
        "thread": threading.get_ident(),
        "seen_operation_id": get_operation_id(),
    }


class _Logged(ApiResource):
    """A resource that logs ``served <kind> token=<token>`` once per request."""

    kind = "?"

    def _served(self) -> str | None:
        token = request.args.get("token", "-")
        if token != "-" and _TOKEN.fullmatch(token) is None:
            self.add_error("token must be 1-64 letters, digits, '-' or '_'", path="token")
            return None
        log.info("served %s token=%s", self.kind, token)
        return token


class SyncResource(_Logged):
    kind = "sync"

    def get(self) -> object:
        token = self._served()
        if token is None:
            return None
        with _engines().sync.connect() as conn:
            count = conn.execute(_count_sql()).scalar_one()
        return {"token": token, "count": count, **_where()}


class AsyncResource(_Logged):
    kind = "async"

    async def get(self) -> object:
        token = self._served()
        if token is None:
            return None
        async with _engines().async_.connect() as conn:
            count = (await conn.execute(_count_sql())).scalar_one()
        await asyncio.sleep(0)
        return {"token": token, "count": count, **_where()}


class ItemsResource(ApiPaginatedMixin, _Logged):
    """``items`` page by page, through the chassis's offset/limit pagination."""

    kind = "items"

    def get(self) -> object:
        token = self._served()
        if token is None:
            return None
        stmt = sa.select(items.c.id, items.c.name).order_by(items.c.id)
        with Session(_engines().sync) as session:
            page: Page[tuple[int, str]] = self.get_paginated_query_result(stmt, session)
        return [{"id": item_id, "name": name} for item_id, name in page]


class InvalidResource(_Logged):
    kind = "invalid"

    def get(self) -> object:
        if self._served() is not None:
            self.add_error("name is required", path="name")
        return {"ignored": True}


class MissingResource(_Logged):
    kind = "missing"

    def get(self) -> object:
        if self._served() is not None:
            abort(404, message="item not found")
        return None


class BoomResource(_Logged):
    kind = "boom"

    def get(self) -> object:
        if self._served() is None:
            return None
        # Everything the client must never see: exception text, SQL, a database URL.
        url = _engines().sync.url.render_as_string(hide_password=False)
        raise RuntimeError(f"{SECRET_MARKER}: SELECT secret FROM items -- {url}")


class UnserialisableResource(_Logged):
    kind = "unserialisable"

    def get(self) -> object:
        if self._served() is None:
            return None
        return {"value": object(), "secret": SECRET_MARKER}


class SlowResource(_Logged):
    """Logs, then sleeps ``ms`` milliseconds (at most 5000): a request to disconnect from."""

    kind = "slow"

    def get(self) -> object:
        token = self._served()
        if token is None:
            return None
        raw = request.args.get("ms", "0")
        delay = int(raw) if _DIGITS.fullmatch(raw) else 0
        time.sleep(min(delay, 5000) / 1000)
        return {"token": token, **_where()}


class EchoResource(ApiResource):
    """Reads the body: a sync ``POST`` (the ASGI pool) and an async ``PUT`` (the server's loop)."""

    def post(self) -> object:
        return {"length": len(request.get_data()), **_where()}

    async def put(self) -> object:
        await asyncio.sleep(0)
        return {"length": len(request.get_data()), **_where()}


# How long a held request waits for its release file, then for the shutdown to begin.
_HOLD_LIMIT = 20.0


class HoldResource(ApiResource):
    """``GET /hold/<name>?release=<dir>``: waits until ``<dir>/<name>`` exists (async, on the
    loop), then until the process is shutting down (or a bound), then reports what readiness
    answers at that moment: a request in flight across a graceful shutdown."""

    async def get(self, name: str) -> object:
        if _TOKEN.fullmatch(name) is None:
            self.add_error("bad name", path="name")
            return None
        release = request.args.get("release", "")
        if not release.startswith("/") or ".." in release:
            self.add_error("release must be an absolute directory", path="release")
            return None
        directory = Path(release)
        log.info("hold %s started", name)
        (directory / f"{name}.started").touch()
        deadline = time.monotonic() + _HOLD_LIMIT
        try:
            while not (directory / name).exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            # The client left (ASGI cancels the view): logged under the request's own id.
            log.info("hold %s cancelled", name)
            (directory / f"{name}.cancelled").touch()
            raise
        deadline = time.monotonic() + _HOLD_LIMIT
        while not is_shutting_down() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]  # LocalProxy API, untyped
        readiness = await asyncio.to_thread(_readiness, app)
        return {"held": name, "readiness": readiness, "pid": os.getpid()}


def _readiness(app: Flask) -> int:
    return app.test_client().get("/readyz").status_code


class LeakProbe:
    """The outermost WSGI layer: logs an error if a request starts with an operation id set.

    A thread that serves several requests (keep-alive, a gthread pool) would show the previous
    request's id here if the chassis failed to reset it.
    """

    def __init__(self, wsgi_app: WSGIApplication) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        leaked = operation_id_var.get()
        if leaked is not None:
            log.error("%s: %s", LEAK_MESSAGE, leaked)
        return self.wsgi_app(environ, start_response)


def create_app(settings: ServiceSettings) -> Flask:
    """Build the service: chassis on a pooled sync engine (health) plus a pooled AsyncEngine."""
    app = Flask("cst-reliability")
    app.config.update(settings.config)
    pool = {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "pool_timeout": settings.pool_timeout,
    }
    sync_engine = sa.create_engine(
        settings.database_url, connect_args=settings.connect_args, **pool
    )
    async_engine = create_async_engine(
        settings.async_database_url, connect_args=settings.async_connect_args, **pool
    )
    CstMicroChassis().init_app(app, sync_engine)
    app.extensions[EXTENSION_KEY] = _Engines(sync_engine, async_engine)
    api = ChassisApi(app)
    api.add_resource(SyncResource, "/sync")
    api.add_resource(AsyncResource, "/async")
    api.add_resource(ItemsResource, "/items")
    api.add_resource(InvalidResource, "/invalid")
    api.add_resource(MissingResource, "/missing")
    api.add_resource(BoomResource, "/boom")
    api.add_resource(UnserialisableResource, "/unserialisable")
    api.add_resource(SlowResource, "/slow")
    api.add_resource(EchoResource, "/echo")
    api.add_resource(HoldResource, "/hold/<name>")
    app.wsgi_app = LeakProbe(app.wsgi_app)  # type: ignore[method-assign]  # Flask documents wrapping wsgi_app
    return app


def create_app_from_env() -> Flask:
    """Gunicorn's entry point: settings from ``RELIABILITY_SERVICE_SETTINGS``."""
    return create_app(ServiceSettings.from_json(os.environ[SETTINGS_ENV]))


def create_asgi_app_from_env() -> ASGIApp:
    """uvicorn's and granian's ASGI entry point (``--factory``): the same app, over ASGI."""
    return asgi_app(create_app_from_env())


def dispose_app(app: Flask) -> None:
    """Close the service's connection pools (in-process servers, at the end of a test)."""
    engines = app.extensions[EXTENSION_KEY]
    assert isinstance(engines, _Engines)
    engines.sync.dispose()
    run_coroutine(engines.async_.dispose)


def seed(engine: sa.Engine, rows: int = 107) -> None:
    """Create ``items`` and fill it with ``rows`` rows."""
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(items.insert(), [{"id": i, "name": f"item-{i}"} for i in range(1, rows + 1)])
