"""The health endpoint, ``GET /status`` (``CST_HEALTH_CHECK_ENDPOINT``), and readiness.

200 when the database (if any) answers and every custom check passes, else 503; the body always
has ``name`` and ``version`` (cst-micro-chassis's shape), never an exception text, a URL or a
traceback.
The database probe and the custom checks run concurrently, so the answer comes within
``CST_HEALTH_CHECK_TIMEOUT`` seconds however many checks there are and whatever they wait on
(see :mod:`cst_chassis._health_runner` for why a stuck check cannot pile up threads, and why
polls never hold a server thread past the timeout). Readiness (``CST_READINESS_ENDPOINT``) runs
the same checks, and answers 503 at once once the process is shutting down.
Failures are logged on the ``cst_chassis.health`` logger, with the operation id of the poll that
saw them: a WARNING when a check (or the database) starts failing and an INFO line when it passes
again, once per change of state in each process, not once per poll (an outage polled 100 times is
one line, not 100), with the health cache on or off.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict, TypeVar
from urllib.parse import quote_plus

from flask import Flask, Response, current_app
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from cst_chassis import async_bridge, shutdown
from cst_chassis._health_runner import CheckSlot, Ticket, start_in_thread, start_on_loop
from cst_chassis._server_signals import follow_granian_shutdown
from cst_chassis.management import ManagementAccess
from cst_chassis.migrations import (
    MigrationScript,
    load_migration_script,
    read_versions,
    read_versions_async,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from cst_chassis.state import ChassisState
    from cst_chassis.typing import DatabaseLike, HealthCheck

__all__ = ["CheckStatus", "DatabaseStatus", "HealthBody"]

T = TypeVar("T")
DatabaseStatus = Literal["ok", "unavailable"]
"""The ``database`` value in the ``/status`` body."""
CheckStatus = Literal["ok", "failing"]
"""A custom check's value in the ``/status`` body."""

logger: logging.Logger = logging.getLogger("cst_chassis.health")

# Longest part of a driver's error message that goes into a log line.
_MAX_REASON = 300
# The key the database's state is kept under; a custom check's is ("check", its name).
_DATABASE = ("database", "")


class HealthBody(TypedDict):
    """The JSON body of the health response (200 and 503 alike).

    ``last_migration`` and ``migrations_pending`` come from the database and are absent when it
    did not answer; ``head`` comes from the code and is always there when Alembic is configured.
    ``last_migration`` and ``head`` are a string, ``null``, or a sorted list when there are
    several (branched migrations). ``shutting_down`` is only in readiness answers, ``true``,
    once the process is shutting down (:mod:`cst_chassis.shutdown`).
    """

    name: str
    version: str
    database: NotRequired[DatabaseStatus]
    last_migration: NotRequired[str | list[str] | None]
    head: NotRequired[str | list[str] | None]
    migrations_pending: NotRequired[bool | None]
    checks: NotRequired[dict[str, CheckStatus]]
    shutting_down: NotRequired[bool]


def register_health_endpoint(app: Flask, state: ChassisState) -> None:
    """Add the health route (``CST_HEALTH_CHECK_ENDPOINT``, default ``/status``) to ``app``.

    Called by ``init_app``. Reads the migrations folder named by ``CST_ALEMBIC_SCRIPT_LOCATION``
    once, here. Raises :class:`~cst_chassis.errors.ChassisConfigError` when
    the migrations folder is missing or unreadable; :class:`~cst_chassis.errors.ChassisError`
    when that key is set but Alembic is not installed.
    """
    location = state.config.alembic_script_location
    script = load_migration_script(location) if location is not None else None
    health = _Health(state, script)
    config = state.config
    app.add_url_rule(config.health_check_endpoint, "cst_chassis_health", health.view)
    if config.readiness_endpoint is not None:
        app.add_url_rule(config.readiness_endpoint, "cst_chassis_readiness", health.readiness)
        follow_granian_shutdown()  # gunicorn's is gunicorn_hooks.post_worker_init


class _Health:
    """The views of one app (``/status`` and readiness), with the runs of its checks."""

    def __init__(self, state: ChassisState, script: MigrationScript | None) -> None:
        self._state = state
        self._script = script
        self._database_slot = CheckSlot()
        self._check_slots: dict[str, CheckSlot] = {}
        self._states = _States()

    def view(self) -> Response:
        """``/status``: every check, 200 or 503, within ``CST_HEALTH_CHECK_TIMEOUT``."""
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]  # LocalProxy API, untyped
        access = self._access()
        access.require_listener()
        body, healthy = self.report(app)
        return health_response(app, access.visible(body), healthy)

    def readiness(self) -> Response:
        """Readiness: ``/status``'s checks, and 503 at once once the process is shutting down."""
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]  # LocalProxy API, untyped
        access = self._access()
        access.require_listener()
        if shutdown.is_shutting_down():
            config = self._state.config
            body: HealthBody = {
                "name": config.project_name,
                "version": config.project_version,
                "shutting_down": True,
            }
            return health_response(app, access.visible(body), healthy=False)
        body, healthy = self.report(app)
        return health_response(app, access.visible(body), healthy)

    def _access(self) -> ManagementAccess:
        access = self._state.management
        assert access is not None, "init_app sets the management access before any request"
        return access

    def report(self, app: Flask) -> tuple[HealthBody, bool]:
        config = self._state.config
        timeout, ttl = config.health_check_timeout, config.health_cache_ttl
        context = contextvars.copy_context()

        database = self._state.db
        url: URL | None = None
        database_ticket: Ticket | None = None
        if database is not None:
            url, database_ticket = self._poll_database(database, timeout, ttl, context)
        check_tickets = {
            name: self._slot(name).poll(
                timeout, ttl, functools.partial(_start_check, app, name, check, timeout, context)
            )
            for name, check in list(self._state.health_checks.items())
        }
        # The runs go on concurrently: waiting on each in turn ends by the latest deadline.
        for ticket in check_tickets.values():
            ticket.wait()
        if database_ticket is not None:
            database_ticket.wait()

        body: HealthBody = {"name": config.project_name, "version": config.project_version}
        healthy = True
        observe = self._state.health_observer
        if database_ticket is not None:
            healthy = self._report_database(body, database_ticket.future, url, timeout)
            if observe is not None:
                observe("database", healthy, database_ticket.duration())
        if self._script is not None:
            body["head"] = _one_or_many(self._script.heads)
        if check_tickets:
            checks: dict[str, CheckStatus] = {}
            for name, ticket in check_tickets.items():
                checks[name] = self._check_status(name, ticket.future, timeout)
                if observe is not None:
                    observe(name, checks[name] == "ok", ticket.duration())
            body["checks"] = checks
            healthy = healthy and all(status == "ok" for status in checks.values())
        return body, healthy

    def _slot(self, name: str) -> CheckSlot:
        slot = self._check_slots.get(name)
        if slot is None:
            slot = self._check_slots.setdefault(name, CheckSlot())
        return slot

    def _poll_database(
        self,
        database: DatabaseLike,
        timeout: float,
        ttl: float,
        context: contextvars.Context,
    ) -> tuple[URL | None, Ticket]:
        if isinstance(database, AsyncEngine):
            async_engine = database
            # Always the chassis loop (even with CST_ASYNC_BRIDGE off): the timeout needs a loop
            # that can cancel the query, and a pooled engine must keep to one loop.
            return async_engine.url, self._database_slot.poll(
                timeout,
                ttl,
                lambda: start_on_loop(
                    functools.partial(read_versions_async, async_engine), timeout, context
                ),
            )
        try:
            # Flask-SQLAlchemy's engine belongs to current_app: resolve it in the request.
            engine = database if isinstance(database, Engine) else database.engine
        except Exception as exc:  # e.g. db.init_app(app) was never called
            failed: Future[Any] = Future()
            failed.set_exception(exc)
            now = time.monotonic()
            return None, Ticket(failed, now, now, lambda: now)
        return engine.url, self._database_slot.poll(
            timeout,
            ttl,
            lambda: start_in_thread("database", functools.partial(read_versions, engine), context),
        )

    def _report_database(
        self, body: HealthBody, future: Future[Any], url: URL | None, timeout: float
    ) -> bool:
        done = future.done()  # looked at once: the run may finish while this poll reports
        error = future.exception() if done else None
        if not done or error is not None:
            if self._states.changed(_DATABASE, ok=False):
                logger.warning(
                    "database %s unavailable: %s",
                    _safe_url(url),
                    _reason(error, timeout, url.password if url is not None else None),
                )
            body["database"] = "unavailable"
            return False
        if self._states.changed(_DATABASE, ok=True):
            logger.info("database %s available again", _safe_url(url))
        versions: tuple[str, ...] = future.result()
        body["database"] = "ok"
        body["last_migration"] = _one_or_many(versions)
        if self._script is not None:
            body["migrations_pending"] = self._script.pending(versions)
        return True

    def _check_status(self, name: str, future: Future[Any], timeout: float) -> CheckStatus:
        reason: str | None = None
        if not future.done():
            reason = _reason(None, timeout, None)
        elif (error := future.exception()) is not None:
            reason = _reason(error, timeout, None)
        elif future.result() is False:
            reason = "it returned False"
        if self._states.changed(("check", name), ok=reason is None):
            if reason is None:
                logger.info("check %r passing again", name)
            else:
                logger.warning("check %r failing: %s", name, reason)
        return "ok" if reason is None else "failing"


def health_response(app: Flask, body: HealthBody, healthy: bool) -> Response:
    """The health format: the body as JSON, 200 or 503, never cached."""
    return app.response_class(
        app.json.dumps(body) + "\n",
        status=200 if healthy else 503,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _start_check(
    app: Flask,
    name: str,
    check: HealthCheck,
    timeout: float,
    context: contextvars.Context,
) -> Future[Any]:
    if inspect.iscoroutinefunction(check):
        return start_on_loop(functools.partial(_run_async_check, app, check), timeout, context)
    return start_in_thread(
        f"check:{name}", functools.partial(_run_sync_check, app, check, timeout), context
    )


async def _run_async_check(app: Flask, check: Callable[[], Awaitable[object]]) -> object:
    # Each run gets an app context of its own: current_app works, and a Flask-SQLAlchemy
    # session used by the check is not the request's (and is removed when the run ends).
    with app.app_context():
        return await check()


def _run_sync_check(app: Flask, check: HealthCheck, timeout: float) -> object:
    with app.app_context():
        result = check()
        if inspect.isawaitable(result):  # a sync callable that returns a coroutine
            result = async_bridge.async_to_sync(_await, timeout=timeout)(result)
        return result


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


class _States:
    """Which checks failed at their last poll in this process: a change of state is logged once.

    Polls run in several server threads at once; the lock makes exactly one of them see each
    change. Nothing is failing at start, so a first failure is logged and a first pass is not.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failing: set[tuple[str, str]] = set()

    def changed(self, key: tuple[str, str], *, ok: bool) -> bool:
        """Record ``key``'s result; whether it differs from the one recorded before."""
        with self._lock:
            if ok is (key not in self._failing):
                return False
            if ok:
                self._failing.discard(key)
            else:
                self._failing.add(key)
            return True


def _one_or_many(values: tuple[str, ...]) -> str | list[str] | None:
    if not values:
        return None
    return values[0] if len(values) == 1 else list(values)


def _safe_url(url: URL | None) -> str:
    if url is None:
        return "(engine not available)"
    # No password, and no query string (it may carry credentials or key paths).
    return url.set(query={}).render_as_string(hide_password=True)


def _reason(error: BaseException | None, timeout: float, password: str | None) -> str:
    if error is None or isinstance(error, TimeoutError):
        return f"no answer within {timeout:g} s (CST_HEALTH_CHECK_TIMEOUT)"
    # The driver's own exception, not SQLAlchemy's wrapper (which repeats the SQL and a link).
    original = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    message = " ".join(str(original).split())
    if password:
        for secret in {password, quote_plus(password)}:
            message = message.replace(secret, "***")
    if len(message) > _MAX_REASON:
        message = message[:_MAX_REASON] + "..."
    kind = type(original)
    return f"{kind.__module__}.{kind.__qualname__}: {message}" if message else kind.__qualname__
