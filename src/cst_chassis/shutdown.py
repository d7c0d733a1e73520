"""Whether this process is shutting down: from then on, readiness answers 503.

A server that drains (gunicorn on SIGTERM finishes the requests in flight) should stop being
offered new traffic before it stops: the readiness endpoint turns 503 the moment
:func:`begin_shutdown` is called, while every other endpoint keeps serving.
:mod:`cst_chassis.gunicorn_hooks` calls it from the worker's SIGTERM handler.
"""

from __future__ import annotations

import os
import threading

__all__ = ["begin_shutdown", "is_shutting_down"]

_shutting_down = threading.Event()


def begin_shutdown() -> None:
    """Mark this process as shutting down (readiness answers 503 from now on)."""
    _shutting_down.set()


def is_shutting_down() -> bool:
    """Whether :func:`begin_shutdown` was called in this process."""
    return _shutting_down.is_set()


# A worker forked from a master is not shutting down because the master once was.
os.register_at_fork(after_in_child=_shutting_down.clear)
