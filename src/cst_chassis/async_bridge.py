"""One long-lived event loop per process, on which every coroutine of the app runs.

Flask's default bridge (asgiref) starts a thread and an event loop for every ``async def`` view:
slow, and a pooled async engine (asyncpg) then fails from the second request on because its
connections belong to a loop that is gone. The chassis installs :func:`async_to_sync` as the app's
``async_to_sync`` instead: each call hands the coroutine to a single daemon loop thread and waits.

Semantics (see the README's "Async views"):

- Context: the coroutine runs in a copy of the caller's context (operation id, Flask's request and
  app context); context variables it changes are copied back to the caller afterwards.
- Exceptions propagate unchanged (same object, same traceback).
- Tasks the coroutine spawns and leaves running are cancelled when it returns, as with Flask's own
  bridge; :func:`spawn_background` starts a task that may outlive the request.
- Timeout: a call waits at most ``timeout`` seconds, then cancels the coroutine and raises
  :class:`~cst_chassis.errors.AsyncBridgeTimeout`. A *blocking* call inside a coroutine stalls the
  whole loop; run it with ``asyncio.to_thread``. The timeout bounds how long other requests wait.
- Fork: a child process starts its own loop on first use (the pid is checked).
- Exit: an ``atexit`` hook runs the registered shutdown coroutines (e.g. ``AsyncEngine.dispose``),
  cancels what is left and closes the loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import functools
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from cst_chassis.errors import AsyncBridgeError, AsyncBridgeTimeout

__all__ = [
    "async_to_sync",
    "get_loop",
    "on_shutdown",
    "run_coroutine",
    "spawn_background",
]

P = ParamSpec("P")
R = TypeVar("R")

# The set that collects tasks spawned on behalf of one bridged call (None outside such a call).
_spawned: contextvars.ContextVar[set[asyncio.Task[Any]] | None] = contextvars.ContextVar(
    "cst_chassis_spawned", default=None
)
_MISSING = object()


@dataclass(slots=True)
class _LoopThread:
    pid: int
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread


_current: _LoopThread | None = None
_start_lock = threading.Lock()
_shutdown_callbacks: list[Callable[[], Awaitable[object]]] = []
_background: set[asyncio.Task[Any]] = set()


def _task_factory(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, Any],
    *,
    context: contextvars.Context | None = None,
) -> asyncio.Task[Any]:
    task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, context=context)
    spawned = context.get(_spawned) if context is not None else _spawned.get()
    if spawned is not None:
        spawned.add(task)
        task.add_done_callback(spawned.discard)
    return task


def get_loop() -> asyncio.AbstractEventLoop:
    """Return this process's chassis event loop, starting its thread on first use."""
    global _current
    current = _current
    if current is not None and current.pid == os.getpid():
        return current.loop
    with _start_lock:
        current = _current
        if current is None or current.pid != os.getpid():
            loop = asyncio.new_event_loop()
            loop.set_task_factory(_task_factory)  # type: ignore[arg-type]  # keyword-only context is what asyncio passes
            thread = threading.Thread(
                target=_run_loop, args=(loop,), name="cst-chassis-event-loop", daemon=True
            )
            thread.start()
            current = _current = _LoopThread(os.getpid(), loop, thread)
    return current.loop


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


class _Call:
    """One coroutine handed to the loop, and what the caller waits on."""

    __slots__ = ("done", "error", "result", "task")

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.result: Any = None
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None


async def _run_call(call: _Call, awaitable: Callable[[], Awaitable[Any]]) -> None:
    spawned: set[asyncio.Task[Any]] = set()
    token = _spawned.set(spawned)
    try:
        call.result = await awaitable()
    except BaseException as exc:  # handed to the caller, which re-raises it
        call.error = exc
    finally:
        leftovers = [task for task in spawned if not task.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.gather(*leftovers, return_exceptions=True)
        _spawned.reset(token)
        # Wake the caller from inside the coroutine: a done-callback would cost another loop turn.
        call.done.release()


def run_coroutine(
    func: Callable[P, Awaitable[R]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> R:
    """Run ``func(*args, **kwargs)`` on the chassis loop and wait for it (no timeout)."""
    return _run(func, args, kwargs, None)


def _run(
    func: Callable[..., Awaitable[R]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    timeout: float | None,
) -> R:
    loop = get_loop()
    current = _current
    if current is not None and threading.current_thread() is current.thread:
        raise AsyncBridgeError(
            "a sync wrapper of an async function was called from the chassis event loop; "
            "await the coroutine directly instead"
        )
    context = contextvars.copy_context()
    call = _Call()

    def start() -> None:
        call.task = loop.create_task(
            _run_call(call, functools.partial(func, *args, **kwargs)), context=context
        )

    loop.call_soon_threadsafe(start)
    if not call.done.acquire(timeout=-1 if timeout is None else timeout):
        loop.call_soon_threadsafe(_cancel, call)
        raise AsyncBridgeTimeout(
            f"coroutine {getattr(func, '__qualname__', func)!s} did not finish within "
            f"{timeout} s (CST_ASYNC_TIMEOUT); it was cancelled"
        )
    # Bring the coroutine's context changes back, as asgiref does.
    for var, value in context.items():
        if var.get(_MISSING) is not value:
            var.set(value)
    if call.error is not None:
        error = call.error
        call.error = None  # break the frame -> exception -> frame cycle
        raise error
    result: R = call.result
    return result


def _cancel(call: _Call) -> None:
    if call.task is not None:
        call.task.cancel()


def async_to_sync(
    func: Callable[P, Coroutine[Any, Any, R]], timeout: float | None = None
) -> Callable[P, R]:
    """Return a sync function that runs the coroutine function on the chassis loop.

    The signature Flask expects of ``Flask.async_to_sync``; ``timeout`` (seconds) bounds each call.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return _run(func, args, kwargs, timeout)

    return wrapper


def spawn_background(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """Start a task on the chassis loop that is *not* cancelled when the request ends.

    Must be called from a coroutine running on the chassis loop. The task keeps the current
    context (so its log lines carry the operation id) and is referenced until it finishes.
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    context.run(_spawned.set, None)
    task = loop.create_task(coro, context=context)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


def on_shutdown(callback: Callable[[], Awaitable[object]]) -> None:
    """Register a coroutine function run on the loop at process exit (e.g. ``engine.dispose``)."""
    _shutdown_callbacks.append(callback)


async def _shutdown_loop() -> None:
    for callback in reversed(_shutdown_callbacks):
        with contextlib.suppress(Exception):  # at exit there is no one left to tell
            await callback()
    current_task = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current_task]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    loop = asyncio.get_running_loop()
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


def _shutdown() -> None:
    global _current
    current = _current
    if current is None or current.pid != os.getpid() or current.loop.is_closed():
        return
    try:
        future = asyncio.run_coroutine_threadsafe(_shutdown_loop(), current.loop)
        future.result(timeout=5)
    except Exception:  # a loop stuck in a blocking call: leave it to the OS
        pass
    current.loop.call_soon_threadsafe(current.loop.stop)
    current.thread.join(timeout=5)
    if not current.thread.is_alive():
        current.loop.close()
    _current = None


def _after_fork_in_child() -> None:
    global _current, _start_lock
    # The parent's loop thread does not exist here; the child starts its own on first use.
    _current = None
    _start_lock = threading.Lock()
    _background.clear()


atexit.register(_shutdown)
os.register_at_fork(after_in_child=_after_fork_in_child)
