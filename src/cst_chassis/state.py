"""``ChassisState``: what the chassis keeps per app, and :func:`get_state` to read it.

A module of its own, below every feature module: health, probes, metrics, OpenAPI, the pagination
mixin and the Celery hooks read the state through here and never import the extension (which
imports them), so there is no import circle, not even under ``TYPE_CHECKING``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import Flask, current_app

from cst_chassis.config import ChassisConfig
from cst_chassis.errors import ChassisNotInitializedError

if TYPE_CHECKING:
    from cst_chassis.management import ManagementAccess
    from cst_chassis.metrics import ChassisMetrics
    from cst_chassis.typing import DatabaseLike, HealthCheck

__all__ = ["EXTENSION_KEY", "ChassisState", "get_state"]

EXTENSION_KEY = "cst_chassis"
"""The key of the chassis state in ``app.extensions``."""


@dataclass(slots=True)
class ChassisState:
    """What the chassis keeps per app, in ``app.extensions["cst_chassis"]``."""

    config: ChassisConfig
    db: DatabaseLike | None = None
    health_checks: dict[str, HealthCheck] = field(default_factory=dict)
    # Told each health check's result and duration (the metrics, when they are on).
    health_observer: Callable[[str, bool, float], None] | None = None
    metrics: ChassisMetrics | None = None
    # Who reaches the management endpoints and sees details (cst_chassis.management).
    management: ManagementAccess | None = None


def get_state(app: Flask | None = None) -> ChassisState:
    """Return the chassis state of ``app`` (default: ``current_app``).

    Raises :class:`ChassisNotInitializedError` when ``init_app`` was not called on it.
    """
    target = current_app if app is None else app
    state = target.extensions.get(EXTENSION_KEY)
    if not isinstance(state, ChassisState):
        raise ChassisNotInitializedError(
            "cst-chassis is not initialised on this app: call CstMicroChassis().init_app(app) first"
        )
    return state
