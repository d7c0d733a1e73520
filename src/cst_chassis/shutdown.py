"""Whether this process is shutting down: from then on, readiness answers 503.

A server that drains (gunicorn on SIGTERM finishes the requests in flight) should stop being
offered new traffic before it stops: the readiness endpoint turns 503 the moment
:func:`begin_shutdown` is called, while every other endpoint keeps serving.
:mod:`cst_chassis.gunicorn_hooks` calls it from the worker's SIGTERM handler; the ASGI entry point
(:mod:`cst_chassis.asgi`) wraps the ASGI server's SIGTERM and SIGINT handlers the same way with
:func:`call_on_stop_signals` (uvicorn and granian stop their workers with SIGTERM, and their
lifespan shutdown arrives only once the requests in flight are done).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

__all__ = ["begin_shutdown", "call_on_stop_signals", "end_shutdown", "is_shutting_down"]

_shutting_down = threading.Event()

# The signals a server stops on: SIGTERM (kill, Kubernetes, a master stopping its workers) and
# SIGINT (Ctrl-C).
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)


def begin_shutdown() -> None:
    """Mark this process as shutting down (readiness answers 503 from now on)."""
    _shutting_down.set()


def end_shutdown() -> None:
    """Clear the shutdown mark: a server (re)starting in this process serves again.

    The ASGI lifespan startup calls it; so can a test that ran a shutdown in-process.
    """
    _shutting_down.clear()


def is_shutting_down() -> bool:
    """Whether :func:`begin_shutdown` was called in this process."""
    return _shutting_down.is_set()


def call_on_stop_signals(callback: Callable[[], object] = begin_shutdown) -> bool:
    """Run ``callback`` first whenever SIGTERM or SIGINT arrives, then the handler already set.

    Only a handler set in Python is wrapped (the server's own, or asyncio's for
    ``loop.add_signal_handler``, whose wake-up still happens): a signal left at its default
    action keeps it. Must be called from the main thread; returns ``False`` (and does nothing)
    anywhere else. Wrapping twice runs ``callback`` once per signal.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    for signum in STOP_SIGNALS:
        previous = signal.getsignal(signum)
        if not callable(previous) or getattr(previous, "_cst_chassis_stop", False):
            continue
        signal.signal(signum, _wrap(callback, previous))
    return True


def _wrap(
    callback: Callable[[], object], previous: Callable[[int, FrameType | None], object]
) -> Callable[[int, FrameType | None], None]:
    def on_stop(signum: int, frame: FrameType | None) -> None:
        callback()
        previous(signum, frame)

    on_stop._cst_chassis_stop = True  # type: ignore[attr-defined]  # a marker: wrapped once only
    return on_stop


# A worker forked from a master is not shutting down because the master once was.
os.register_at_fork(after_in_child=_shutting_down.clear)
