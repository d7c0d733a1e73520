"""Run health checks concurrently, in bounded time, with at most one call in flight per check.

A blocking call cannot be interrupted: a sync check (or a sync database probe) stuck on a server
that accepts connections and never answers keeps its thread until the driver gives up. The
health endpoint must still answer in time, and repeated polls must not start one more stuck
thread each. So every check has a :class:`CheckSlot`:

- a poll starts a run when the check is idle;
- it joins the run in flight if that run started after the poll arrived (fresh for this poll);
- otherwise (an older run is still in flight) it joins the single queued run, which starts as
  soon as the old one ends. A burst of simultaneous polls thus costs at most two runs, and a poll
  never uses a result computed before it arrived: the first poll after the database comes back
  sees it back.

So a check never has more than one running call plus one queued. Sync checks run in a thread of
their own; ``async def`` checks run on the chassis event loop with a timeout, and are cancelled
when it expires.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any

from cst_chassis import async_bridge

__all__ = ["CheckSlot", "start_in_thread", "start_on_loop"]

Starter = Callable[[], "Future[Any]"]

_slots: weakref.WeakSet[CheckSlot] = weakref.WeakSet()
# Strong references to the tasks started on the loop (asyncio keeps only weak ones).
_tasks: set[asyncio.Task[None]] = set()


class CheckSlot:
    """The runs of one check: at most one in flight and one queued (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: Future[Any] | None = None
        self._started_at = 0.0
        self._queued: Future[Any] | None = None
        self._queued_start: Starter | None = None
        _slots.add(self)

    def submit(self, polled_at: float, start: Starter) -> Future[Any]:
        """Return the future result of a run no older than ``polled_at`` (``time.monotonic()``).

        ``start`` begins a run and returns its future; it is called at most once, either now or
        when the run in flight ends.
        """
        with self._lock:
            queued = self._queued
            if queued is not None:
                return queued  # it starts when the run in flight ends: after this poll
            running = self._running
            if running is None or running.done():
                return self._start(start)
            if self._started_at >= polled_at:
                return running
            queued = self._queued = Future()
            self._queued_start = start
        # Outside the lock: the callback runs at once (and takes the lock) if the run just ended.
        running.add_done_callback(self._start_queued)
        return queued

    def _start(self, start: Starter) -> Future[Any]:
        self._started_at = time.monotonic()
        try:
            self._running = start()
        except Exception as exc:  # e.g. no thread can be started: the check fails, no 500
            self._running = Future()
            self._running.set_exception(exc)
        return self._running

    def _start_queued(self, _finished: Future[Any]) -> None:
        with self._lock:
            queued, start = self._queued, self._queued_start
            self._queued = self._queued_start = None
            if queued is None or start is None:
                return
            running = self._start(start)
        running.add_done_callback(lambda done: _copy_outcome(done, queued))

    def _reset_after_fork(self) -> None:
        # The threads and loop of the parent do not exist in a child process.
        self._lock = threading.Lock()
        self._running = self._queued = None
        self._queued_start = None


def _copy_outcome(source: Future[Any], target: Future[Any]) -> None:
    error = source.exception()
    if error is not None:
        target.set_exception(error)
    else:
        target.set_result(source.result())


def start_in_thread(
    name: str, func: Callable[[], object], context: contextvars.Context
) -> Future[Any]:
    """Call ``func`` in a copy of ``context`` in a new daemon thread; return its future."""
    future: Future[Any] = Future()
    context = context.copy()  # a Context can be entered by one thread at a time

    def work() -> None:
        try:
            result = context.run(func)
        except BaseException as exc:  # handed to the polls waiting on the future
            future.set_exception(exc)
        else:
            future.set_result(result)

    threading.Thread(target=work, name=f"cst-chassis-health:{name}", daemon=True).start()
    return future


def start_on_loop(
    func: Callable[[], Awaitable[object]], timeout: float, context: contextvars.Context
) -> Future[Any]:
    """Run ``await func()`` on the chassis event loop, cancelled after ``timeout`` seconds.

    Runs in a copy of ``context``. Returns at once with the future of its result
    (``TimeoutError`` when it was cancelled).
    """
    loop = async_bridge.get_loop()
    future: Future[Any] = Future()
    context = context.copy()  # a Context can be entered by one task at a time

    async def call() -> object:
        return await func()

    async def run() -> None:
        try:
            result = await asyncio.wait_for(call(), timeout)
        except BaseException as exc:  # handed to the polls waiting on the future
            future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise  # the loop is shutting down
        else:
            future.set_result(result)

    def create() -> None:
        task = loop.create_task(run(), context=context)
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)

    loop.call_soon_threadsafe(create)
    return future


def _after_fork_in_child() -> None:
    for slot in list(_slots):
        slot._reset_after_fork()
    _tasks.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
