"""Run health checks concurrently, in bounded time, without letting polls hold server threads.

A blocking call cannot be interrupted: a sync check (or a sync database probe) stuck on a server
that accepts connections and never answers keeps its thread until the driver gives up. The
health endpoint must still answer in time, and polls must neither start one more stuck thread each
nor hold a server thread each while they wait (with more pollers than server threads, that stalls
every other endpoint). So every check has a :class:`CheckSlot`, and a poll gets a :class:`Ticket`:

- when the check is idle, the poll starts a run, and waits for it until the run's deadline
  (its start plus ``CST_HEALTH_CHECK_TIMEOUT``);
- when a run is in flight and within its deadline, the poll joins it (one run for every
  concurrent poll) and waits until the same deadline;
- when a run is in flight past its deadline (*overdue*: stuck), the poll answers at once from
  that known state — failing — instead of waiting; no second run starts while it is stuck;
- when the last run that ended *failed slowly* (it failed at or near its deadline: timed out,
  cancelled at the timeout, or a driver's own timeout), a poll answers from it at once, failing,
  and the next run goes on in the background (started by this poll if none is in flight): its
  result is what the polls after it report. A run that failed fast (connection refused) is
  no reason to expect a slow one: polls wait for the next run, and see a recovery at once;
- with ``CST_HEALTH_CACHE_TTL`` > 0, a poll that finds a run that ended less than that long ago
  answers from it without starting another one (Spring Boot's health cache).

So a poll never holds a server thread past the timeout, and a check never has more than one call
in flight. And during an outage polls do not hold server threads at all: a check that keeps
failing at its deadline (an ``async def`` check cancelled at the timeout, a driver whose
connect timeout is the health timeout) would otherwise make every poll wait the full timeout
for each new run. With more pollers than server threads those waits queue up one behind the
other in the server (gunicorn's and granian's request queues are first in, first out): ``/status``
took several times the timeout, and requests that need no database waited behind the polls
(issue 25). The price: after a slow failure, the poll that follows a recovery still reports
the failure (one poll late).

Sync checks run in a thread of their own; ``async def`` checks run on the chassis event loop with
a timeout, and are cancelled when it expires.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Any

from cst_chassis import async_bridge

__all__ = ["CheckSlot", "Ticket", "start_in_thread", "start_on_loop"]

Starter = Callable[[], "Future[Any]"]

# A failed run that took at least this share of the timeout is a slow failure (see above).
_SLOW_FAILURE = 0.5

_slots: weakref.WeakSet[CheckSlot] = weakref.WeakSet()
# Strong references to the tasks started on the loop (asyncio keeps only weak ones).
_tasks: set[asyncio.Task[None]] = set()


@dataclass(frozen=True, slots=True)
class Ticket:
    """What a poll waits on: the run's future, until ``deadline`` (``time.monotonic()``)."""

    future: Future[Any]
    started_at: float
    deadline: float
    finished_at: Callable[[], float | None]

    def wait(self) -> None:
        """Block until the run ends or its deadline passes (at once when it is overdue)."""
        remaining = self.deadline - time.monotonic()
        if remaining > 0 and not self.future.done():
            wait([self.future], timeout=remaining)

    def duration(self) -> float:
        """How long the run took, or has been running so far."""
        finished = self.finished_at()
        return (time.monotonic() if finished is None else finished) - self.started_at


class _Run:
    __slots__ = ("deadline", "finished_at", "future", "started_at")

    def __init__(self, future: Future[Any], started_at: float, deadline: float) -> None:
        self.future = future
        self.started_at = started_at
        self.deadline = deadline
        self.finished_at: float | None = None

    def ticket(self, deadline: float | None = None) -> Ticket:
        return Ticket(
            self.future,
            self.started_at,
            self.deadline if deadline is None else deadline,
            lambda: self.finished_at,
        )


class CheckSlot:
    """The runs of one check: at most one in flight (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._run: _Run | None = None
        # The run before the current one (ended), while the current one may be in flight.
        self._previous: _Run | None = None
        _slots.add(self)

    def poll(self, timeout: float, cache_ttl: float, start: Starter) -> Ticket:
        """Return the run this poll reports on, starting one if needed.

        ``start`` begins a run and returns its future; it is called at most once, now.
        """
        with self._lock:
            now = time.monotonic()
            run = self._run
            if run is not None and not run.future.done():
                if now >= run.deadline:  # overdue: report it as it is, now
                    return run.ticket(deadline=now)
                previous = self._previous
                if previous is not None and _failed_slowly(previous, timeout):  # do not wait
                    return previous.ticket(deadline=now)
                return run.ticket()  # within its deadline: join it
            if run is not None:
                finished = run.finished_at
                if cache_ttl > 0 and finished is not None and now - finished < cache_ttl:
                    return run.ticket(deadline=now)
            self._previous = run
            self._run = self._start(start, now, timeout)
            if run is not None and _failed_slowly(run, timeout):  # the new run goes on unwaited
                return run.ticket(deadline=now)
            return self._run.ticket()

    def _start(self, start: Starter, now: float, timeout: float) -> _Run:
        try:
            future = start()
        except Exception as exc:  # e.g. no thread can be started: the check fails, no 500
            future = Future()
            future.set_exception(exc)
        run = _Run(future, now, now + timeout)

        def finished(_done: Future[Any]) -> None:
            run.finished_at = time.monotonic()

        future.add_done_callback(finished)
        return run

    def _reset_after_fork(self) -> None:
        # The threads and loop of the parent do not exist in a child process.
        self._lock = threading.Lock()
        self._run = None
        self._previous = None


def _failed_slowly(run: _Run, timeout: float) -> bool:
    # Failed as the views judge it (raised, a timeout included, or returned False), and took at
    # least half the timeout: the next run is likely to end at its deadline too.
    future, finished = run.future, run.finished_at
    if finished is None or finished - run.started_at < timeout * _SLOW_FAILURE:
        return False
    return future.exception() is not None or future.result() is False


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
