"""cst-chassis: a typed, async-capable microservice chassis for Flask and Flask-RESTful.

The names a service uses are exported here. Each lives in the module named in the README's API
reference (``cst_chassis.resources``, ``cst_chassis.pagination``, ...), whose own ``__all__``
lists its public names. Modules whose name starts with an underscore (``_health_runner``,
``_error_handling``, ...) are internals: their names may change in any release.
"""

from __future__ import annotations

from cst_chassis.api import ChassisApi
from cst_chassis.async_bridge import register_engine, run_coroutine, spawn_background
from cst_chassis.config import ChassisConfig
from cst_chassis.context import get_operation_id, outgoing_headers
from cst_chassis.envelope import ErrorEnvelope, ErrorItem, Meta, PaginationMeta, SuccessEnvelope
from cst_chassis.errors import (
    AsyncBridgeError,
    AsyncBridgeTimeout,
    ChassisConfigError,
    ChassisError,
    ChassisNotInitializedError,
    InvalidCursorError,
    InvalidPaginationError,
    MissingSessionError,
    RouteCollisionError,
)
from cst_chassis.extension import CstMicroChassis
from cst_chassis.health import HealthBody
from cst_chassis.logging import OperationIdFilter
from cst_chassis.pagination import (
    CursorSecretError,
    Page,
    paginate,
    paginate_async,
    paginate_keyset,
    paginate_keyset_async,
    paginate_query,
)
from cst_chassis.pagination_mixin import ApiPaginatedMixin
from cst_chassis.resources import ApiResource
from cst_chassis.state import ChassisState, get_state
from cst_chassis.tracing import TraceContext, get_trace_context
from cst_chassis.utils import retry

__all__ = [
    "ApiPaginatedMixin",
    "ApiResource",
    "AsyncBridgeError",
    "AsyncBridgeTimeout",
    "ChassisApi",
    "ChassisConfig",
    "ChassisConfigError",
    "ChassisError",
    "ChassisNotInitializedError",
    "ChassisState",
    "CstMicroChassis",
    "CursorSecretError",
    "ErrorEnvelope",
    "ErrorItem",
    "HealthBody",
    "InvalidCursorError",
    "InvalidPaginationError",
    "Meta",
    "MissingSessionError",
    "OperationIdFilter",
    "Page",
    "PaginationMeta",
    "RouteCollisionError",
    "SuccessEnvelope",
    "TraceContext",
    "get_operation_id",
    "get_state",
    "get_trace_context",
    "outgoing_headers",
    "paginate",
    "paginate_async",
    "paginate_keyset",
    "paginate_keyset_async",
    "paginate_query",
    "register_engine",
    "retry",
    "run_coroutine",
    "spawn_background",
]
