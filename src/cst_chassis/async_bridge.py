"""One long-lived event loop per process, on which every coroutine of the app runs.

Flask's default bridge (asgiref) starts a thread and an event loop for every ``async def`` view:
slow, and a pooled async engine (asyncpg) then fails from the second request on because its
connections belong to a loop that is gone. The chassis installs :func:`async_to_sync` as the app's
``async_to_sync`` instead: each call hands the coroutine to a single daemon loop thread and waits.

Semantics (see the README's "Async views"):

- Context: the coroutine runs in a copy of the caller's context (operation id, Flask's request and
  app context); context variables it changes are copied back to the caller afterwards, as asgiref
  does. Tasks it spawns and ``asyncio.to_thread`` workers inherit that context.
- Exceptions propagate unchanged (same object, same type, the coroutine's frames in the traceback).
- Tasks the coroutine spawns and leaves running are cancelled (and awaited) when it returns, as
  with Flask's own bridge; :func:`spawn_background` starts a task that may outlive the request.
- Timeout: a call waits at most ``timeout`` seconds, then cancels the coroutine and raises
  :class:`~cst_chassis.errors.AsyncBridgeTimeout`. A *blocking* call inside a coroutine stalls the
  whole loop; run it with ``asyncio.to_thread``. The timeout bounds how long other requests wait.
- Fork: a child process starts its own loop on first use (the pid is checked). What the child
  inherited from the parent's loop is never touched again, and async engines registered with
  :func:`register_engine` get a fresh connection pool in the child.
- Loop: uvloop when it is installed (``CST_ASYNC_LOOP=asyncio`` keeps asyncio's own loop;
  ``CST_ASYNC_LOOP=uvloop`` requires it), read from the environment when the loop starts.
- Exit: an ``atexit`` hook cancels the tasks still running (background tasks), runs the
  registered shutdown coroutines (e.g. ``AsyncEngine.dispose``) and closes the loop.
- ASGI (:mod:`cst_chassis.asgi`): the server's own loop *is* the chassis loop of that process
  (:func:`adopt_loop`); no thread of ours is started. An ``async def`` view runs inside SQLAlchemy's
  greenlet bridge on that loop, so :func:`async_to_sync` (and :func:`run_coroutine`) called there
  awaits the coroutine in place (``await_``) instead of handing it to another thread; called from a
  thread of the ASGI pool (a sync view) it hands the coroutine to the server's loop as above. The
  ASGI lifespan shutdown runs :func:`close_adopted_loop` (background tasks, shutdown coroutines).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import functools
import logging
import multiprocessing.util
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import concurrency as _sa_concurrency
from sqlalchemy.util.concurrency import in_greenlet

from cst_chassis.errors import AsyncBridgeError, AsyncBridgeTimeout

__all__ = [
    "adopt_loop",
    "async_to_sync",
    "close_adopted_loop",
    "get_loop",
    "on_shutdown",
    "register_engine",
    "run_coroutine",
    "spawn_background",
]

P = ParamSpec("P")
R = TypeVar("R")

logger: logging.Logger = logging.getLogger("cst_chassis.async_bridge")

# The environment variable that picks the loop: auto (uvloop when installed), asyncio or uvloop.
LOOP_ENV = "CST_ASYNC_LOOP"
_LOOP_CHOICES = ("auto", "asyncio", "uvloop")

# How long the exit hook waits for the shutdown coroutines, then for the loop thread to stop.
_SHUTDOWN_TIMEOUT = 5.0

# The set that collects tasks spawned on behalf of one bridged call (None outside such a call).
_spawned: contextvars.ContextVar[set[asyncio.Task[Any]] | None] = contextvars.ContextVar(
    "cst_chassis_spawned", default=None
)
_MISSING = object()


def _find_await() -> Callable[[Awaitable[Any]], Any]:
    # SQLAlchemy 2.1 names it await_, 2.0 await_only (same function); CI runs both lines.
    for name in ("await_", "await_only"):
        found = getattr(_sa_concurrency, name, None)
        if callable(found):
            return found  # type: ignore[no-any-return]  # SQLAlchemy's own, typed there
    raise ImportError("sqlalchemy.util.concurrency has neither await_ nor await_only")


# Awaits in place from sync code running under greenlet_spawn (an async request on ASGI).
await_in_greenlet: Callable[[Awaitable[Any]], Any] = _find_await()


@dataclass(slots=True)
class _LoopThread:
    pid: int
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    ident: int
    # False for an ASGI server's loop (adopt_loop): the server runs it, starts and stops it.
    owned: bool = True


_current: _LoopThread | None = None
# The pid whose loop was shut down at exit: a late call there fails instead of starting a new loop.
_shut_down_pid: int | None = None
_start_lock = threading.Lock()
_shutdown_callbacks: list[Callable[[], Awaitable[object]]] = []
# Async engines given to register_engine(): disposed at exit, a fresh pool in a forked child.
_engines: list[AsyncEngine] = []
_background: set[asyncio.Task[Any]] = set()
# What a forked child inherited from the parent's loop; kept alive so nothing in it is finalised.
_inherited: list[object] = []


def _task_factory(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, Any],
    *,
    context: contextvars.Context | None = None,
) -> asyncio.Task[Any]:
    task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, context=context)
    _track(task, context)
    return task


def _track(task: asyncio.Task[Any], context: contextvars.Context | None) -> None:
    spawned = context.get(_spawned) if context is not None else _spawned.get()
    if spawned is not None:
        spawned.add(task)
        task.add_done_callback(spawned.discard)


def _install_task_factory(loop: asyncio.AbstractEventLoop) -> None:
    # On a server's loop the factory may already be the server's own: wrap it, never replace it.
    existing = loop.get_task_factory()
    if existing is None:
        loop.set_task_factory(_task_factory)  # type: ignore[arg-type]  # keyword-only context is what asyncio passes
        return
    if existing is _task_factory or getattr(existing, "_cst_chassis", False):
        return

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Future[Any]:
        task = existing(loop, coro, **kwargs)
        if isinstance(task, asyncio.Task):
            _track(task, kwargs.get("context"))
        return task

    factory._cst_chassis = True  # type: ignore[attr-defined]  # a marker: wrapped once only
    loop.set_task_factory(factory)  # type: ignore[arg-type]  # typeshed wants a positional-only factory; asyncio passes these keywords


def get_loop() -> asyncio.AbstractEventLoop:
    """Return this process's chassis event loop, starting its thread on first use.

    Raises :class:`~cst_chassis.errors.AsyncBridgeError` once the loop was shut down at exit.
    """
    current = _current
    if current is None or current.pid != os.getpid() or _gone(current):
        current = _start_loop()
    return current.loop


def _gone(current: _LoopThread) -> bool:
    # An adopted server loop that has since closed (the server stopped without a lifespan
    # shutdown, or one asyncio.run per test): the next call starts a loop thread again.
    return not current.owned and current.loop.is_closed()


def _start_loop() -> _LoopThread:
    global _current
    with _start_lock:
        current = _current
        pid = os.getpid()
        if current is not None and current.pid == pid and not _gone(current):
            return current
        if current is not None and current.pid == pid:
            _forget_adopted(current)
        elif current is not None:
            # Forked without Python's at-fork hooks: uWSGI forks its workers in C and runs
            # them only with --py-call-osafterfork. The first call in the child catches up.
            _retire_parent_loop(current)
        if _shut_down_pid == pid:
            raise AsyncBridgeError(
                "the chassis event loop was shut down at interpreter exit; "
                "run coroutines before the exit hooks"
            )
        loop = _new_loop()
        loop.set_task_factory(_task_factory)  # type: ignore[arg-type]  # keyword-only context is what asyncio passes
        ready = threading.Event()
        thread = threading.Thread(
            target=_run_loop, args=(loop, ready), name="cst-chassis-event-loop", daemon=True
        )
        thread.start()
        ready.wait()
        assert thread.ident is not None  # set once the thread has started
        current = _current = _LoopThread(pid, loop, thread, thread.ident)
        # A multiprocessing child (granian's forked workers) leaves through os._exit, which skips
        # atexit; multiprocessing runs its own finalisers first. _shutdown checks the pid, so the
        # copies a forked child inherits are harmless, and a second call does nothing.
        multiprocessing.util.Finalize(None, _shutdown, exitpriority=10)
        return current


def _new_loop() -> asyncio.AbstractEventLoop:
    # uvloop, when installed: its cross-thread wake-up (a libuv async handle) and its I/O
    # callbacks cost less loop-thread time per hand-off, and under load that is GIL time the
    # request threads wait for (README, "Where the async time goes": a PostgreSQL lookup on
    # granian, async / sync 0.59x on asyncio, 0.95x on uvloop). Read at loop start, not from the
    # app config: the loop belongs to the process, not to an app.
    choice = os.environ.get(LOOP_ENV, "auto").strip().lower()
    if choice not in _LOOP_CHOICES:
        raise AsyncBridgeError(
            f"{LOOP_ENV} must be one of {', '.join(_LOOP_CHOICES)}, not {choice[:40]!r}"
        )
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise AsyncBridgeError(
                    f"{LOOP_ENV}=uvloop but uvloop is not installed: pip install uvloop"
                ) from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()


class _Call:
    """One coroutine handed to the loop, and what the caller waits on."""

    __slots__ = ("args", "context", "done", "error", "func", "kwargs", "result", "task")

    def __init__(
        self, func: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.context = contextvars.copy_context()
        self.done = threading.Lock()
        self.done.acquire()
        self.result: Any = None
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None


def _start_call(call: _Call, loop: asyncio.AbstractEventLoop) -> None:
    # asyncio.Task directly, not loop.create_task: the call itself is not "spawned" by anyone.
    call.task = asyncio.Task(_run_call(call), loop=loop, context=call.context)


async def _run_call(call: _Call) -> None:
    spawned: set[asyncio.Task[Any]] = set()
    token = _spawned.set(spawned)
    try:
        try:
            call.result = await call.func(*call.args, **call.kwargs)
        except BaseException as exc:  # handed to the caller, which re-raises it
            call.error = exc
        leftovers = [task for task in spawned if not task.done()]
        if leftovers:
            await _cancel_leftovers(leftovers)
    finally:
        _spawned.reset(token)
        # Wake the caller from inside the coroutine: a done-callback would cost another loop turn.
        call.done.release()


async def _cancel_leftovers(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for task, result in zip(tasks, results, strict=True):
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            logger.error("Task %r failed while being cancelled", task.get_name(), exc_info=result)


def run_coroutine(
    func: Callable[P, Awaitable[R]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> R:
    """Run ``func(*args, **kwargs)`` on the chassis loop from sync code and wait (no timeout).

    For start-up work and scripts (``run_coroutine(engine.dispose)``). As for views, tasks the
    coroutine leaves running are cancelled when it returns (see :func:`spawn_background`).
    Raises what the coroutine raises, and :class:`~cst_chassis.errors.AsyncBridgeError` when
    called from the loop itself.
    """
    return _run(func, args, kwargs, -1)


def _run(
    func: Callable[..., Awaitable[R]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    timeout: float,
) -> R:
    current = _current
    if current is None or current.pid != os.getpid() or _gone(current):
        current = _start_loop()
    if threading.get_ident() == current.ident:
        if in_greenlet():
            # Sync code under greenlet_spawn on the loop (an async request on ASGI): the
            # coroutine is awaited right here, in the request's own task and context.
            awaited: R = await_in_greenlet(_run_in_place(func, args, kwargs, timeout))
            return awaited
        raise AsyncBridgeError(
            "a sync wrapper of an async function was called from the chassis event loop, "
            "which would wait for itself forever; await the coroutine directly instead"
        )
    call = _Call(func, args, kwargs)
    current.loop.call_soon_threadsafe(_start_call, call, current.loop, context=call.context)
    if not call.done.acquire(True, timeout):
        current.loop.call_soon_threadsafe(_cancel, call)
        if call.task is None:
            cause = "the event loop was blocked (a blocking call in a coroutine?) or overloaded"
        else:
            cause = "it was cancelled"
        raise AsyncBridgeTimeout(
            f"coroutine {getattr(func, '__qualname__', func)!s} did not finish within "
            f"{timeout} s (CST_ASYNC_TIMEOUT); {cause}. Run blocking calls with asyncio.to_thread"
        )
    # Bring the coroutine's context changes back, as asgiref does.
    for var, value in call.context.items():
        if var.get(_MISSING) is not value:
            var.set(value)
    error = call.error
    if error is not None:
        call.error = None  # no cycle: call -> exception -> traceback -> frame -> call
        raise error
    result: R = call.result
    return result


async def _run_in_place(
    func: Callable[..., Awaitable[R]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    timeout: float,
) -> R:
    # The same semantics as a call handed to the loop thread (_run_call): tasks the coroutine
    # leaves running are cancelled when it returns, and the timeout cancels it.
    spawned: set[asyncio.Task[Any]] = set()
    token = _spawned.set(spawned)
    try:
        if timeout < 0:
            return await func(*args, **kwargs)
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                return await func(*args, **kwargs)
        except TimeoutError:
            if not scope.expired():
                raise  # the coroutine's own TimeoutError
            raise AsyncBridgeTimeout(
                f"coroutine {getattr(func, '__qualname__', func)!s} did not finish within "
                f"{timeout} s (CST_ASYNC_TIMEOUT); it was cancelled. Run blocking calls with "
                "asyncio.to_thread"
            ) from None
    finally:
        _spawned.reset(token)
        leftovers = [task for task in spawned if not task.done()]
        if leftovers:
            await _cancel_leftovers(leftovers)


def _cancel(call: _Call) -> None:
    if call.task is not None:
        call.task.cancel()


def async_to_sync(
    func: Callable[P, Coroutine[Any, Any, R]], timeout: float | None = None
) -> Callable[P, R]:
    """Return a sync function that runs the coroutine function on the chassis loop.

    The signature Flask expects of ``Flask.async_to_sync`` (``init_app`` installs it with
    ``timeout=CST_ASYNC_TIMEOUT``). ``timeout`` (seconds, ``None`` for none) bounds each call:
    past it the coroutine is cancelled and :class:`~cst_chassis.errors.AsyncBridgeTimeout` is
    raised. Raises :class:`~cst_chassis.errors.AsyncBridgeError` when called from the loop itself.
    """
    wait = -1.0 if timeout is None else min(timeout, threading.TIMEOUT_MAX)

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return _run(func, args, kwargs, wait)

    return wrapper


def spawn_background(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """Start a task on the chassis loop that is *not* cancelled when the request ends.

    Call it from a coroutine running on the chassis loop (an async view or resource method).
    The task keeps the current context (its log lines carry the operation id), is referenced
    until it finishes, and an exception it ends with is logged. Tasks still running at
    interpreter exit are cancelled.

    Raises :class:`~cst_chassis.errors.AsyncBridgeError` when called from any other thread.
    """
    current = _current
    if current is None or current.pid != os.getpid() or threading.get_ident() != current.ident:
        coro.close()  # never awaited, and never will be: no "was never awaited" warning
        raise AsyncBridgeError(
            "spawn_background() must be called from a coroutine running on the chassis event "
            "loop (an async view or ApiResource method)"
        )
    context = contextvars.copy_context()
    context.run(_spawned.set, None)  # not one of the request's tasks: it is not cancelled
    task = current.loop.create_task(coro, context=context)
    _background.add(task)
    task.add_done_callback(_background_done)
    return task


def _background_done(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.error("Background task %r failed", task.get_name(), exc_info=error)


def on_shutdown(callback: Callable[[], Awaitable[object]]) -> None:
    """Register a coroutine function run on the loop at process exit.

    Callbacks run in reverse order of registration, each for at most 5 s; their errors are
    ignored. For an ``AsyncEngine`` use :func:`register_engine`, which also makes it fork-safe.
    """
    _shutdown_callbacks.append(callback)


def register_engine(engine: AsyncEngine) -> None:
    """Dispose ``engine`` on the loop at process exit, and give it a fresh pool in a forked child.

    ``init_app(app, db=engine)`` calls it for an ``AsyncEngine``; call it yourself for an engine
    the chassis is not given. A forked child (gunicorn, uWSGI, multiprocessing) then replaces the
    engine's pool on its first use without touching the parent's connections. Registering the
    same engine twice has no further effect.
    """
    if any(known is engine for known in _engines):
        return
    _engines.append(engine)
    on_shutdown(engine.dispose)


async def _shutdown_loop() -> None:
    # Tasks first, so the connections they hold are back in their pools when engines dispose.
    current_task = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current_task]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for callback in reversed(_shutdown_callbacks):
        try:
            await asyncio.wait_for(callback(), _SHUTDOWN_TIMEOUT)
        except Exception:  # at exit there is no one left to tell but the log
            logger.debug("Shutdown callback %r failed", callback, exc_info=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


def _shutdown() -> None:
    global _current, _shut_down_pid
    with _start_lock:
        current = _current
        if current is None or current.pid != os.getpid():
            return
        _current = None
        if not current.owned:
            return  # an ASGI server's loop: its lifespan shutdown ran close_adopted_loop
        _shut_down_pid = current.pid
    loop = current.loop
    try:
        future = asyncio.run_coroutine_threadsafe(_shutdown_loop(), loop)
        future.result(timeout=2 * _SHUTDOWN_TIMEOUT)
    except Exception:  # a loop stuck in a blocking call: leave it to the OS
        logger.warning("The chassis event loop did not shut down in time", exc_info=True)
        return
    loop.call_soon_threadsafe(loop.stop)
    current.thread.join(timeout=_SHUTDOWN_TIMEOUT)
    if not current.thread.is_alive():
        # The default executor's threads were already joined by concurrent.futures' exit hook.
        loop.close()


def adopt_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Make ``loop``, running in the calling thread, this process's chassis loop (ASGI).

    Called by :mod:`cst_chassis.asgi` on the server's loop at lifespan startup (or the first
    request). From then on :func:`run_coroutine`, :func:`spawn_background`, the liveness ping,
    async health checks and registered engines use the server's loop: one loop, one async engine
    pool per process. A loop thread the chassis had already started in this process (start-up
    work with :func:`run_coroutine` before the server ran) is stopped, and the connections its
    registered engines held are closed on it first (asyncpg connections belong to one loop).
    Adopting the loop that is already the chassis loop does nothing.
    """
    global _current
    pid = os.getpid()
    with _start_lock:
        previous = _current
        if previous is not None and previous.pid == pid and previous.loop is loop:
            return
        _install_task_factory(loop)
        _current = _LoopThread(
            pid, loop, threading.current_thread(), threading.get_ident(), owned=False
        )
    if previous is None or previous.pid != pid:
        return  # nothing of this process's to retire (a forked child is handled at fork)
    if previous.owned:
        _stop_owned_loop(previous)
    else:
        _forget_adopted(previous)


def _forget_adopted(stale: _LoopThread) -> None:
    # An earlier server's loop (closed by now, e.g. one asyncio.run per test): its pools'
    # connections belong to it; give the engines fresh pools without touching them.
    _inherited.append(stale)
    for engine in _engines:
        _inherited.append(engine.sync_engine.pool)
        engine.sync_engine.dispose(close=False)


def _stop_owned_loop(stale: _LoopThread) -> None:
    async def close() -> None:
        current_task = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current_task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for engine in _engines:
            with contextlib.suppress(Exception):  # a dead server: the pool is replaced anyway
                await asyncio.wait_for(engine.dispose(), _SHUTDOWN_TIMEOUT)

    try:
        asyncio.run_coroutine_threadsafe(close(), stale.loop).result(2 * _SHUTDOWN_TIMEOUT)
    except Exception:  # a blocked loop: leave its thread (a daemon) to the OS
        logger.warning("The chassis loop thread did not stop in time", exc_info=True)
        return
    stale.loop.call_soon_threadsafe(stale.loop.stop)
    stale.thread.join(timeout=_SHUTDOWN_TIMEOUT)
    if not stale.thread.is_alive():
        stale.loop.close()


async def close_adopted_loop() -> None:
    """Release the adopted server loop (ASGI lifespan shutdown; run on that loop).

    Cancels the :func:`spawn_background` tasks still running, runs the shutdown coroutines
    (:func:`on_shutdown`, registered engines' ``dispose``), each for at most 5 s, and forgets the
    loop: a later call in this process starts a chassis loop thread again.
    """
    global _current
    loop = asyncio.get_running_loop()
    current = _current
    if current is None or current.owned or current.loop is not loop:
        return
    tasks = [task for task in _background if task.get_loop() is loop and not task.done()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for callback in reversed(_shutdown_callbacks):
        try:
            await asyncio.wait_for(callback(), _SHUTDOWN_TIMEOUT)
        except Exception:  # shutting down: there is no one left to tell but the log
            logger.debug("Shutdown callback %r failed", callback, exc_info=True)
    with _start_lock:
        if _current is current:
            _current = None


def _after_fork_in_child() -> None:
    global _start_lock
    _start_lock = threading.Lock()
    if _current is not None:
        _retire_parent_loop(_current)


def _retire_parent_loop(stale: _LoopThread) -> None:
    global _current
    _current = None
    # The parent's loop thread does not exist here. Mark its loop closed so that nothing
    # inherited ever acts on it: a finaliser that unregistered a socket (asyncpg terminates
    # unclosed connections) would remove it from the epoll set the parent still uses.
    if isinstance(stale.loop, asyncio.BaseEventLoop):
        stale.loop._closed = True  # type: ignore[attr-defined]  # no public way to retire a loop without running it
    # A uvloop loop's state is C-level (its _closed is read-only); it only acts when run or
    # when a handle is finalised, and _inherited keeps every handle referenced.
    with contextlib.suppress(RuntimeError):  # the set of tasks changed while forking
        for task in asyncio.all_tasks(stale.loop):
            task._log_destroy_pending = False  # type: ignore[attr-defined]  # the parent still runs them
    _inherited.append(stale)
    _inherited.extend(_background)
    _background.clear()
    for engine in _engines:
        # SQLAlchemy's recipe for a forked child: a fresh pool, the parent's connections left
        # alone (close=False does no I/O). The old pool is kept so it is never finalised here.
        _inherited.append(engine.sync_engine.pool)
        engine.sync_engine.dispose(close=False)


atexit.register(_shutdown)
os.register_at_fork(after_in_child=_after_fork_in_child)
