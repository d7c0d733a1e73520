"""cst-chassis: a typed, async-capable microservice chassis for Flask and Flask-RESTful."""

from __future__ import annotations

from cst_chassis.api import ChassisApi
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
)
from cst_chassis.extension import ChassisState, CstMicroChassis, get_state
from cst_chassis.health import HealthBody
from cst_chassis.tracing import TraceContext, get_trace_context

__all__ = [
    "AsyncBridgeError",
    "AsyncBridgeTimeout",
    "ChassisApi",
    "ChassisConfig",
    "ChassisConfigError",
    "ChassisError",
    "ChassisNotInitializedError",
    "ChassisState",
    "CstMicroChassis",
    "ErrorEnvelope",
    "ErrorItem",
    "HealthBody",
    "InvalidCursorError",
    "InvalidPaginationError",
    "Meta",
    "MissingSessionError",
    "PaginationMeta",
    "SuccessEnvelope",
    "TraceContext",
    "get_operation_id",
    "get_state",
    "get_trace_context",
    "outgoing_headers",
]
