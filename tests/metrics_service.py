"""The service the metrics, probe and shutdown tests run under gunicorn.

Every kind of request the chassis labels (sync, async, paginated, 4xx, 5xx, unmatched), and two
that a test can hold open: ``/hold/<name>`` keeps a pooled connection checked out, and both holds
wait until the file ``<release_dir>/<name>`` exists. Built from a JSON settings string::

    METRICS_SERVICE_SETTINGS='{...}' gunicorn 'tests.metrics_service:create_app_from_env()'
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from flask_restful import abort
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session

from cst_chassis import ChassisApi, CstMicroChassis
from cst_chassis.asgi import ASGIApp, asgi_app
from cst_chassis.pagination import Page
from cst_chassis.resources import ApiPaginatedMixin, ApiResource
from cst_chassis.shutdown import is_shutting_down
from tests.reliability.service import items

__all__ = ["SETTINGS_ENV", "MetricsServiceSettings", "create_app", "create_app_from_env"]

SETTINGS_ENV = "METRICS_SERVICE_SETTINGS"
_KEY = "cst_metrics_service"
# How long a held request waits for its release file, then for the SIGTERM to arrive.
_HOLD_LIMIT = 30.0


@dataclass(frozen=True)
class MetricsServiceSettings:
    database_url: str
    async_database_url: str
    release_dir: str
    connect_args: dict[str, Any] = field(default_factory=dict)
    async_connect_args: dict[str, Any] = field(default_factory=dict)
    pool_size: int = 5
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass(frozen=True)
class _Parts:
    engine: sa.Engine
    async_engine: AsyncEngine
    release_dir: Path


def _parts() -> _Parts:
    parts = current_app.extensions[_KEY]
    assert isinstance(parts, _Parts)
    return parts


def _count() -> sa.Select[Any]:
    return sa.select(sa.func.count()).select_from(items)


class SyncResource(ApiResource):
    def get(self) -> object:
        with _parts().engine.connect() as conn:
            return {"count": conn.execute(_count()).scalar_one(), "pid": os.getpid()}


class AsyncResource(ApiResource):
    async def get(self) -> object:
        async with _parts().async_engine.connect() as conn:
            count = (await conn.execute(_count())).scalar_one()
        return {"count": count, "pid": os.getpid()}


class ItemsResource(ApiPaginatedMixin, ApiResource):
    def get(self) -> object:
        stmt = sa.select(items.c.id, items.c.name).order_by(items.c.id)
        with Session(_parts().engine) as session:
            page: Page[tuple[int, str]] = self.get_paginated_query_result(stmt, session)
        return [item_id for item_id, _ in page]


class ItemResource(ApiResource):
    def get(self, item_id: int) -> object:
        if item_id > 1000:
            abort(404, message="no such item")
        return {"id": item_id}


class InvalidResource(ApiResource):
    def get(self) -> object:
        self.add_error("name is required", path="name")
        return None


class BoomResource(ApiResource):
    def get(self) -> object:
        raise RuntimeError("boom")


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + _HOLD_LIMIT
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def _after_release(name: str) -> dict[str, object]:
    # Once released, a hold also waits (boundedly) for the SIGTERM a shutdown test sends, and
    # reports what readiness answers at that moment.
    release_dir = _parts().release_dir
    if (release_dir / f"{name}.await-shutdown").exists():
        deadline = time.monotonic() + _HOLD_LIMIT
        while not is_shutting_down() and time.monotonic() < deadline:
            time.sleep(0.01)
    readiness = current_app.test_client().get(current_app.config["READINESS_PATH"])
    return {"held": name, "readiness": readiness.status_code, "pid": os.getpid()}


class HoldResource(ApiResource):
    """Keeps a pooled connection checked out until ``<release_dir>/<name>`` exists."""

    def get(self, name: str) -> object:
        release_dir = _parts().release_dir
        with _parts().engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            (release_dir / f"{name}.started").touch()
            _wait_for(release_dir / name)
        return _after_release(name)


class AsyncHoldResource(ApiResource):
    """An async view that waits on the chassis loop until ``<release_dir>/<name>`` exists."""

    async def get(self, name: str) -> object:
        release_dir = _parts().release_dir
        (release_dir / f"{name}.started").touch()
        deadline = time.monotonic() + _HOLD_LIMIT
        while not (release_dir / name).exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]  # LocalProxy API, untyped
        return await asyncio.to_thread(_after_release_in_context, app, name)


def _after_release_in_context(app: Flask, name: str) -> dict[str, object]:
    with app.app_context():
        return _after_release(name)


def create_app(settings: MetricsServiceSettings) -> Flask:
    app = Flask("cst-metrics-service")
    app.config.update(
        {
            "CST_PROJECT_VERSION": "9.9.9",
            "CST_ASYNC_TIMEOUT": 60,
            "CST_METRICS_ENDPOINT": "/metrics",  # off unless set
        }
    )
    app.config.update(settings.config)
    app.config["READINESS_PATH"] = app.config.get("CST_READINESS_ENDPOINT", "/readyz")
    engine = sa.create_engine(
        settings.database_url,
        connect_args=settings.connect_args,
        pool_size=settings.pool_size,
        max_overflow=5,
    )
    async_engine = create_async_engine(
        settings.async_database_url, connect_args=settings.async_connect_args
    )
    CstMicroChassis().init_app(app, engine)
    app.extensions[_KEY] = _Parts(engine, async_engine, Path(settings.release_dir))
    api = ChassisApi(app)
    api.add_resource(SyncResource, "/sync")
    api.add_resource(AsyncResource, "/async")
    api.add_resource(ItemsResource, "/items")
    api.add_resource(ItemResource, "/items/<int:item_id>")
    api.add_resource(InvalidResource, "/invalid")
    api.add_resource(BoomResource, "/boom")
    api.add_resource(HoldResource, "/hold/<name>")
    api.add_resource(AsyncHoldResource, "/hold-async/<name>")
    return app


def create_app_from_env() -> Flask:
    """gunicorn's entry point: settings from ``METRICS_SERVICE_SETTINGS``."""
    raw = json.loads(os.environ[SETTINGS_ENV])
    return create_app(MetricsServiceSettings(**raw))


def create_asgi_app_from_env() -> ASGIApp:
    """The same service over ASGI (``cst_chassis.asgi.asgi_app``), for uvicorn and granian."""
    return asgi_app(create_app_from_env())
