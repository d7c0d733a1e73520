"""The exceptions cst-chassis raises.

Each subclass also inherits the builtin it resembles, so ``except ValueError`` keeps working
for code that does not know about the chassis.
"""

from __future__ import annotations

__all__ = [
    "AsyncBridgeError",
    "AsyncBridgeTimeout",
    "ChassisConfigError",
    "ChassisError",
    "ChassisNotInitializedError",
    "InvalidCursorError",
    "InvalidPaginationError",
    "MissingSessionError",
    "RouteCollisionError",
]


class ChassisError(Exception):
    """Base class of every error cst-chassis raises."""


class ChassisConfigError(ChassisError, ValueError):
    """A ``CST_*`` setting has a bad value; raised by ``init_app`` at start-up.

    The message names the key and the offending value.
    """

    def __init__(self, key: str, value: object, expected: str) -> None:
        self.key = key
        self.value = value
        super().__init__(f"{key}={value!r} is invalid: expected {expected}")


class ChassisNotInitializedError(ChassisError, RuntimeError):
    """The chassis is used on an app on which ``init_app`` was never called."""


class InvalidPaginationError(ChassisError, ValueError):
    """A pagination query-string parameter is malformed or out of range.

    ``path`` names the parameter (``"offset"``, ``"limit"`` or ``"cursor"``); the resource mixin
    turns it into a 400 envelope.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(message)


class MissingSessionError(ChassisError, RuntimeError):
    """A ``select()`` was given to a paginated resource, but no session to run it on."""


class InvalidCursorError(InvalidPaginationError):
    """A keyset cursor is malformed, tampered with, or belongs to another ordering."""

    def __init__(self, message: str = "Invalid cursor") -> None:
        super().__init__("cursor", message)


class AsyncBridgeError(ChassisError, RuntimeError):
    """The async bridge cannot run a coroutine (e.g. called from its own event loop)."""


class AsyncBridgeTimeout(ChassisError, TimeoutError):
    """A coroutine ran longer than ``CST_ASYNC_TIMEOUT`` on the chassis event loop."""


class RouteCollisionError(ChassisError, ValueError):
    """A chassis endpoint and an app route claim the same path and method.

    Raised at start-up, by ``init_app`` or by the registration that collides (a route, a
    blueprint, a flask-restful resource added after ``init_app``); the message names both
    endpoints, the path, the methods and the ``CST_*`` key that moves the chassis's endpoint.
    """
