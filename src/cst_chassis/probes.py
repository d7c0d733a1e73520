"""The liveness endpoint (``CST_LIVENESS_ENDPOINT``, default ``/livez``).

Liveness answers "should this process be restarted?", so it never touches the database (a
restart does not repair a database; readiness, on ``CST_READINESS_ENDPOINT``, reports that). It
is 200 when the process answers and, when the app uses the chassis event loop (the async bridge
is on, or the ``db`` is an ``AsyncEngine``), that loop runs a no-op within
``CST_HEALTH_CHECK_TIMEOUT``: a loop blocked by a sync call inside a coroutine stalls every async
request of the process, and only a restart cures it. The no-op goes through the same
:class:`~cst_chassis._health_runner.CheckSlot` as the health checks: one ping in flight at a time,
and once it is overdue every poll answers 503 at once instead of holding a server thread.
"""

from __future__ import annotations

import contextvars
import functools
from typing import TYPE_CHECKING

from flask import Flask, Response, current_app
from sqlalchemy.ext.asyncio import AsyncEngine

from cst_chassis._health_runner import CheckSlot, start_on_loop
from cst_chassis.health import HealthBody, health_response

if TYPE_CHECKING:
    from cst_chassis.state import ChassisState

__all__ = ["LOOP_CHECK"]

# The name of the event-loop check in the liveness body (and in the health metrics).
LOOP_CHECK = "event_loop"
"""Name of the event-loop check in the liveness body and the health metrics."""


def register_liveness_endpoint(app: Flask, state: ChassisState) -> None:
    """Add the liveness route when ``CST_LIVENESS_ENDPOINT`` is not off (``init_app`` calls it)."""
    endpoint = state.config.liveness_endpoint
    if endpoint is not None:
        app.add_url_rule(endpoint, "cst_chassis_liveness", _Liveness(state).view)


async def _noop() -> None:
    return None


class _Liveness:
    def __init__(self, state: ChassisState) -> None:
        self._state = state
        self._loop_slot = CheckSlot()

    def view(self) -> Response:
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]  # LocalProxy API, untyped
        state = self._state
        access = state.management
        assert access is not None, "init_app sets the management access before any request"
        access.require_listener()
        config = state.config
        body: HealthBody = {"name": config.project_name, "version": config.project_version}
        healthy = True
        if config.async_bridge or isinstance(state.db, AsyncEngine):
            timeout = config.health_check_timeout
            ticket = self._loop_slot.poll(
                timeout,
                0.0,  # never cached: a loop blocked since the last poll must show at once
                functools.partial(start_on_loop, _noop, timeout, contextvars.copy_context()),
            )
            ticket.wait()
            future = ticket.future
            healthy = future.done() and future.exception() is None
            body["checks"] = {LOOP_CHECK: "ok" if healthy else "failing"}
            if state.health_observer is not None:
                state.health_observer(LOOP_CHECK, healthy, ticket.duration())
        return health_response(app, access.visible(body), healthy)
