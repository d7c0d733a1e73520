"""Readiness 503 on SIGTERM under granian, which has no worker hook for it.

gunicorn lets a config module wrap each worker's SIGTERM handler
(:func:`cst_chassis.gunicorn_hooks.post_worker_init`). granian has no such hook: its WSGI worker
loads the app first, then installs its own SIGINT/SIGTERM handlers
(``granian._signals.set_sync_signals``), which set the event its server drains on. On SIGTERM a
granian worker stops after the requests in flight, and until then it still answers new
connections (measured with granian 2.8: a new connection 0.5 s after SIGTERM was served while a
held request finished) — so readiness must say 503 there, as it does under gunicorn.

:func:`follow_granian_shutdown` (called while the app is built, in the worker, before granian
installs its handlers) wraps that installer so that the handlers it installs first call
:func:`cst_chassis.shutdown.begin_shutdown`. If the handlers are already installed (an app built
later, in the main thread) they are wrapped at once. It relies on a private granian function:
when a granian release renames it, nothing is wrapped and readiness simply stays as it was
(``tests/test_granian_deployment.py`` notices).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from cst_chassis.shutdown import begin_shutdown

__all__ = ["follow_granian_shutdown"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_MARK = "_cst_chassis_wrapped"


def follow_granian_shutdown() -> None:
    """Under granian, make the worker's SIGINT/SIGTERM call ``begin_shutdown`` first."""
    if "granian" not in sys.modules:  # not served by granian
        return
    try:
        from granian import _signals
    except ImportError:
        return
    original: Any = getattr(_signals, "set_sync_signals", None)
    if original is not None and not getattr(original, _MARK, False):

        def set_sync_signals() -> Any:
            event = original()
            _wrap_installed(lambda handler: True)
            return event

        setattr(set_sync_signals, _MARK, True)
        _signals.set_sync_signals = set_sync_signals
    # Already installed (the app was built after granian set its handlers): wrap them now.
    _wrap_installed(lambda handler: getattr(handler, "__module__", "") == _signals.__name__)


def _wrap_installed(belongs: Callable[[Any], bool]) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signal.signal works in the main thread only
    for signum in _SIGNALS:
        previous = signal.getsignal(signum)
        if callable(previous) and not getattr(previous, _MARK, False) and belongs(previous):
            signal.signal(signum, _chained(previous))


def _chained(previous: Callable[[int, FrameType | None], Any]) -> Callable[..., Any]:
    def handler(signum: int, frame: FrameType | None) -> Any:
        begin_shutdown()
        return previous(signum, frame)

    setattr(handler, _MARK, True)
    return handler
