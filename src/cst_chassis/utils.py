"""Small helpers kept from cst-micro-chassis: :func:`retry`."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, cast, overload

__all__ = ["retry"]

P = ParamSpec("P")
R = TypeVar("R")

_logger: logging.Logger = logging.getLogger("cst_chassis.retry")


class _Retry:
    """``retry(...)`` as a decorator object, so overloads can tell sync from async targets."""

    def __init__(
        self, tries: int, delay: float, back_off: float, logger: logging.Logger | None
    ) -> None:
        if tries < 1:
            raise ValueError(f"retry(tries={tries!r}): tries must be >= 1")
        if delay < 0:
            raise ValueError(f"retry(delay={delay!r}): delay must be >= 0")
        if back_off < 1:
            raise ValueError(f"retry(back_off={back_off!r}): back_off must be >= 1")
        self.tries: int = tries
        self.delay: float = delay
        self.back_off: float = back_off
        self.logger: logging.Logger = logger or _logger

    @overload
    def __call__(
        self, func: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __call__(self, func: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, func: Callable[P, Any]) -> Callable[P, Any]:
        if inspect.iscoroutinefunction(func):
            return self._wrap_async(cast(Callable[P, Coroutine[Any, Any, Any]], func))
        return self._wrap_sync(func)

    def _log(self, func: Callable[..., Any], attempt: int, reason: str, wait: float) -> None:
        self.logger.warning(
            "%s: attempt %d/%d %s; retrying in %s s",
            getattr(func, "__qualname__", func),
            attempt,
            self.tries,
            reason,
            wait,
        )

    def _wrap_sync(self, func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            wait = self.delay
            for attempt in range(1, self.tries + 1):
                try:
                    result = func(*args, **kwargs)
                except Exception as exc:
                    if attempt == self.tries:
                        raise
                    self._log(func, attempt, f"raised {type(exc).__name__}", wait)
                else:
                    if result or attempt == self.tries:
                        return result
                    self._log(func, attempt, "returned a falsy result", wait)
                # Looked up on the module at call time so tests can patch
                # cst_chassis.utils.time.sleep.
                time.sleep(wait)
                wait *= self.back_off
            raise AssertionError("unreachable")  # pragma: no cover

        return wrapper

    def _wrap_async(
        self, func: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]:
        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            wait = self.delay
            for attempt in range(1, self.tries + 1):
                try:
                    result = await func(*args, **kwargs)
                except Exception as exc:
                    if attempt == self.tries:
                        raise
                    self._log(func, attempt, f"raised {type(exc).__name__}", wait)
                else:
                    if result or attempt == self.tries:
                        return result
                    self._log(func, attempt, "returned a falsy result", wait)
                await asyncio.sleep(wait)
                wait *= self.back_off
            raise AssertionError("unreachable")  # pragma: no cover

        return wrapper


def retry(
    tries: int = 3,
    delay: float = 2,
    back_off: float = 2,
    custom_logger: logging.Logger | None = None,
) -> _Retry:
    """Retry a function (sync or ``async def``) on an exception or a falsy result.

    It is called up to ``tries`` times, waiting ``delay`` seconds after the first failure and
    multiplying the wait by ``back_off`` each time. After the last try the last exception is
    raised, or the last (falsy) result is returned, as in cst-micro-chassis. The decorated
    function keeps its signature for type checkers.
    """
    return _Retry(tries, delay, back_off, custom_logger)
