"""Connection-pool gauges of the databases registered with the chassis, from SQLAlchemy events.

The values are set from the pool's own counters each time a connection is checked out or in
(``pool.checkedout()``, ``pool.overflow()``), in the process that holds the pool: a scrape-time
collector would only see the pools of the worker that answers the scrape, while these gauges are
written to prometheus_client's multiprocess files and summed across workers.

The ``database`` label is ``default`` for the ``db`` given to ``init_app``, and the bind key for
Flask-SQLAlchemy's other binds. An ``AsyncEngine`` given to
:func:`cst_chassis.async_bridge.register_engine` after ``init_app`` and before the first request
(the one async views use beside a sync ``db``, as the demo does) is ``async`` (``async_2``, ...
for more). Flask-SQLAlchemy creates its engines in ``db.init_app(app)``, which may also come
after the chassis's ``init_app``: they are all looked up at the first request.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine

from cst_chassis import async_bridge

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy.engine import ExceptionContext

    from cst_chassis.metrics import ChassisMetrics
    from cst_chassis.typing import DatabaseLike

__all__ = ["watch_databases", "watch_engine"]

DEFAULT_LABEL = "default"
# The label of the async engines given to register_engine, numbered from the second on.
ASYNC_LABEL = "async"
# Engines already watched (an engine shared by two apps is watched by the first one).
_watched: weakref.WeakSet[Engine] = weakref.WeakSet()
# The first requests of several threads may look for engines at once: watch each engine once.
_watch_lock = threading.Lock()


def watch_databases(
    app: Flask, db: DatabaseLike | None, metrics: ChassisMetrics
) -> Callable[[], bool]:
    """Watch ``db``'s engine(s) now, and return a callable to run at each request until it is done.

    The callable returns ``True`` once the engines were found (Flask-SQLAlchemy after
    ``db.init_app(app)``; the async engines registered with ``register_engine`` by then).
    """
    if isinstance(db, Engine | AsyncEngine):
        watch_engine(db, DEFAULT_LABEL, metrics)
    # The async engines of this app are those registered from now on (init_app is running): the
    # bridge's list is per process, and holds the engines of every app built before this one.
    first_registered = len(async_bridge._engines)

    def discover() -> bool:
        module = sys.modules.get("flask_sqlalchemy")
        if module is not None and isinstance(db, module.SQLAlchemy):
            try:
                with app.app_context():
                    engines = dict(db.engines)
            except Exception:  # db.init_app(app) not called yet: look again at the next request
                return False
            for key, engine in engines.items():
                watch_engine(engine, DEFAULT_LABEL if key is None else str(key), metrics)
        _watch_registered_engines(db, metrics, first_registered)
        return True

    return discover


def _watch_registered_engines(db: DatabaseLike | None, metrics: ChassisMetrics, first: int) -> None:
    # The engines given to register_engine (init_app's own AsyncEngine is among them, already
    # watched as "default"). The bridge keeps them in registration order.
    registered: list[AsyncEngine] = async_bridge._engines[first:]
    number = 0
    for engine in registered:
        if engine is db:
            continue
        number += 1
        watch_engine(engine, ASYNC_LABEL if number == 1 else f"{ASYNC_LABEL}_{number}", metrics)


def watch_engine(engine: Engine | AsyncEngine, label: str, metrics: ChassisMetrics) -> None:
    """Keep the pool gauges of ``engine`` under ``database=label`` up to date."""
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    with _watch_lock:
        if sync_engine in _watched:
            return
        _watched.add(sync_engine)
    size = metrics.pool_size.labels(label)
    checked_out = metrics.pool_checked_out.labels(label)
    overflow = metrics.pool_overflow.labels(label)
    failures = metrics.connect_failures.labels(label)
    # Pools without a fixed size (NullPool, StaticPool, ...) are counted by hand.
    counted = [0]

    def update(returning: int) -> None:
        pool: Any = sync_engine.pool  # dispose() replaces the pool: always read the current one
        if hasattr(pool, "checkedout"):
            # The checkin event comes before the pool takes the connection back.
            checked_out.set(pool.checkedout() - returning)
            overflow.set(max(0, pool.overflow()))
            size.set(pool.size())
        else:
            counted[0] -= returning
            checked_out.set(counted[0])

    def on_checkout(*_: object) -> None:
        if not hasattr(sync_engine.pool, "checkedout"):
            counted[0] += 1
        update(0)

    def on_checkin(*_: object) -> None:
        update(1)

    def on_error(context: ExceptionContext) -> None:
        # No Connection yet: the error came from opening one (refused, timed out, bad login).
        if context.connection is None:
            failures.inc()

    event.listen(sync_engine, "checkout", on_checkout)
    event.listen(sync_engine, "checkin", on_checkin)
    event.listen(sync_engine, "handle_error", on_error)
    update(0)
