"""The ASGI entry point: the whole Flask app on the server's own event loop.

``asgi_app(app)`` returns an ASGI 3 application for an existing Flask app with the chassis, for
uvicorn or granian's ASGI interface::

    uvicorn --factory --workers 2 --no-access-log 'myservice:create_asgi_app'
    granian --interface asgi --workers 2 --factory myservice:create_asgi_app

Each HTTP request is turned into a WSGI environ and runs through ``app.wsgi_app`` unchanged, so
the chassis middlewares (operation id, trace context, metrics), error handlers, hooks and
teardown are the ones the WSGI path runs. Where it runs depends on the view the URL matches:

- an ``async def`` view (or an ``ApiResource``/``MethodView`` whose method for the request's verb
  is ``async def``): in a greenlet on the server's loop (SQLAlchemy's ``greenlet_spawn``). When
  Flask calls ``app.async_to_sync`` on the view, the chassis bridge sees it is in such a greenlet
  and awaits the coroutine right there (SQLAlchemy's ``await_``), in the request's task: no
  thread is held while the view awaits.
- everything else (sync views, plain Flask-RESTful resources, 404s): in a bounded thread pool
  (``CST_ASGI_THREADS``, default 40, or ``threads=``), where blocking is harmless, as Starlette
  runs ``def`` endpoints.

The body is read before the app runs, at most up to the app's ``MAX_CONTENT_LENGTH`` (which the
chassis sets from ``CST_MAX_CONTENT_LENGTH``) plus one byte: a longer body, declared or chunked, is
then answered 413 by the same code as on WSGI when the view reads it. A client that disconnects
cancels an async view in flight (``CancelledError`` in the coroutine; teardown runs). The lifespan
protocol makes the server's loop the chassis loop of the process
(:func:`cst_chassis.async_bridge.adopt_loop`) and turns readiness 503 from the stop signal on
(:mod:`cst_chassis.shutdown`). See the "Async views" guide for the design and why it is safe.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import io
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import unquote_to_bytes

from sqlalchemy.util.concurrency import greenlet_spawn

from cst_chassis import async_bridge, shutdown
from cst_chassis.state import get_state

if TYPE_CHECKING:
    from types import TracebackType

    from flask import Flask

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send", "asgi_app"]

# The ASGI 3 shapes (asgiref.typing spells them as TypedDicts; these are what this module needs).
Scope: TypeAlias = MutableMapping[str, Any]
"""An ASGI connection scope (``type`` is ``http``, ``lifespan`` or ``websocket``)."""
Message: TypeAlias = MutableMapping[str, Any]
"""An ASGI event or message."""
Receive: TypeAlias = Callable[[], Awaitable[Message]]
"""The ASGI ``receive`` callable."""
Send: TypeAlias = Callable[[Message], Awaitable[None]]
"""The ASGI ``send`` callable."""
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI 3 application."""

# A response with a known length is handed to the server in pieces of about this size (one
# thread hop each); a stream without a length goes chunk by chunk, as the app yields it.
_BATCH = 256 * 1024
# How long an async view runs before the disconnect listener starts (seconds).
_WATCH_AFTER = 0.005
# How many distinct URLs the dispatch decision remembers (per app, per process).
_URL_CACHE_SIZE = 4096

_ExcInfo: TypeAlias = "tuple[type[BaseException], BaseException, TracebackType | None]"


def asgi_app(app: Flask, *, threads: int | None = None) -> ASGIApp:
    """Return an ASGI 3 application serving ``app`` (with the chassis) on the server's loop.

    ``threads`` (default ``CST_ASGI_THREADS``, 40) bounds the threads per process that run sync
    views. ``async def`` views run on the server's loop when the chassis bridge is on
    (``CST_ASYNC_BRIDGE``, the default); with it off, they run in the thread pool too, on Flask's
    own bridge. The app itself is not changed: Flask's test client and the WSGI servers keep
    serving it as before.

    Raises :class:`~cst_chassis.errors.ChassisNotInitializedError` when ``init_app`` was not
    called on ``app``, and ``ValueError`` when ``threads`` is not a positive integer.
    """
    config = get_state(app).config
    if threads is None:
        threads = config.asgi_threads
    elif isinstance(threads, bool) or not isinstance(threads, int) or threads <= 0:
        raise ValueError(f"asgi_app(threads=...) must be a positive integer, not {threads!r}")
    return _ChassisAsgi(app, threads, on_loop=config.async_bridge)


class _ChassisAsgi:
    """The ASGI application returned by :func:`asgi_app`."""

    def __init__(self, app: Flask, threads: int, on_loop: bool) -> None:
        self.app = app
        self._threads = threads
        self._on_loop = on_loop
        # (endpoint, method) -> whether the view is a coroutine function; resolved once.
        self._async_views: dict[tuple[str, str], bool] = {}
        # (method, host, path) -> the same answer, so a repeated URL is not matched twice
        # (Flask matches it again anyway); emptied when full, so it stays small.
        self._by_url: dict[tuple[str, str, str], bool] = {}
        # Whether any view at all is async, for this many registered views (none: no matching).
        self._any_async: tuple[int, bool] = (-1, False)
        self._pool: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            # Flask has no websockets: closing before accepting is a 403 to the client.
            await receive()
            await send({"type": "websocket.close", "code": 1000})

    # --- process set-up -----------------------------------------------------------------------

    def _setup(self, loop: asyncio.AbstractEventLoop) -> None:
        async_bridge.adopt_loop(loop)
        shutdown.call_on_stop_signals()
        pid = os.getpid()
        if self._pool is None or self._pid != pid:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="cst-asgi")
        self._loop, self._pid = loop, pid

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "lifespan.startup":
                try:
                    # A server starting in this process is not shutting down (a test suite
                    # starts several in one process).
                    shutdown.end_shutdown()
                    self._setup(asyncio.get_running_loop())
                except Exception as exc:  # the server reports it and does not start
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown":
                # Normally already set by the stop signal; the requests in flight are done now.
                shutdown.begin_shutdown()
                await async_bridge.close_adopted_loop()
                pool, self._pool, self._loop = self._pool, None, None
                if pool is not None:
                    pool.shutdown(wait=False)
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- one request --------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._pid != os.getpid():
            self._setup(loop)
        environ = _environ(scope)
        body = await _read_body(environ, receive, self.app.config.get("MAX_CONTENT_LENGTH"))
        if body is None:
            return  # the client left before its body arrived: nobody to answer
        environ["wsgi.input"] = io.BytesIO(body)
        exchange = _Exchange(self.app.wsgi_app, environ)
        if self._on_loop and self._is_async(environ):
            await _serve_on_loop(exchange, receive, send, loop)
        else:
            assert self._pool is not None  # made by _setup
            await _serve_in_thread(exchange, receive, send, loop, self._pool)

    def _is_async(self, environ: dict[str, Any]) -> bool:
        app = self.app
        count = len(app.view_functions)
        if self._any_async[0] != count:
            self._any_async = (count, any(map(_may_be_async, app.view_functions.values())))
            self._by_url.clear()
        if not self._any_async[1]:
            return False
        url = (environ["REQUEST_METHOD"], environ.get("HTTP_HOST", ""), environ["PATH_INFO"])
        known = self._by_url.get(url)
        if known is not None:
            return known
        if len(self._by_url) >= _URL_CACHE_SIZE:
            self._by_url.clear()
        known = self._by_url[url] = self._match_is_async(environ)
        return known

    def _match_is_async(self, environ: dict[str, Any]) -> bool:
        app = self.app
        try:
            adapter = app.create_url_adapter(app.request_class(environ))
            if adapter is None:
                return False
            rule, _ = adapter.match(return_rule=True)
        except Exception:  # 404, 405, a redirect, an untrusted host: Flask answers, in the pool
            return False
        key = (rule.endpoint or "", environ["REQUEST_METHOD"])
        found = self._async_views.get(key)
        if found is None:
            found = self._async_views[key] = _view_is_async(app, *key)
        return found


def _may_be_async(view: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(view):
        return True
    view_class = getattr(view, "view_class", None)
    return isinstance(view_class, type) and any(
        inspect.iscoroutinefunction(getattr(view_class, name, None))
        for name in ("get", "post", "put", "patch", "delete", "head", "options", "dispatch_request")
    )


def _view_is_async(app: Flask, endpoint: str, method: str) -> bool:
    """Whether the view of ``endpoint`` runs a coroutine function for ``method``."""
    view = app.view_functions.get(endpoint)
    if view is None:
        return False
    if inspect.iscoroutinefunction(view):
        return True
    # Flask's View/MethodView and Flask-RESTful's Resource (Api.output keeps view_class).
    view_class = getattr(view, "view_class", None)
    if not isinstance(view_class, type):
        return False
    if inspect.iscoroutinefunction(getattr(view_class, "dispatch_request", None)):
        return True
    name = method.lower()
    meth = getattr(view_class, name, None)
    if meth is None and name == "head":
        meth = getattr(view_class, "get", None)
    return inspect.iscoroutinefunction(meth)


def _environ(scope: Scope) -> dict[str, Any]:
    """The WSGI environ of an ASGI http scope (PEP 3333; the body is added later)."""
    root_path: str = scope.get("root_path", "")
    raw_path: bytes | None = scope.get("raw_path")
    # PATH_INFO holds the percent-decoded bytes as latin-1, as gunicorn and Werkzeug's server do.
    if raw_path is not None:
        path = unquote_to_bytes(raw_path).decode("latin-1")
    else:
        path = scope["path"].encode("utf-8").decode("latin-1")
    script_name = root_path.encode("utf-8").decode("latin-1")
    if script_name and path.startswith(script_name):
        path = path[len(script_name) :]
    server = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] if server[1] is not None else 80),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        # The whole body is in wsgi.input: Werkzeug may read a chunked one to its end.
        "wsgi.input_terminated": True,
        "asgi.scope": scope,
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
        environ["REMOTE_PORT"] = str(client[1])
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        if name == "content-type":
            key = "CONTENT_TYPE"
        elif name == "content-length":
            key = "CONTENT_LENGTH"
        elif "_" in name:
            # X_Operation_ID would pass for X-Operation-ID in the environ: dropped, as gunicorn
            # and nginx drop such headers.
            continue
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if key in environ:
            value = environ[key] + ("; " if key == "HTTP_COOKIE" else ",") + value
        environ[key] = value
    return environ


async def _read_body(environ: dict[str, Any], receive: Receive, limit: int | None) -> bytes | None:
    """The request body, read no further than ``limit`` + 1 bytes; ``None`` if the client left."""
    if limit is not None:
        declared = environ.get("CONTENT_LENGTH")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            # Werkzeug refuses it (413) before reading a byte, as on WSGI: read nothing.
            return b""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk: bytes = message.get("body", b"")
        if chunk:
            chunks.append(chunk)
            size += len(chunk)
        if not message.get("more_body", False):
            break
        if limit is not None and size > limit:
            # Enough to tell: the app answers 413 when it reads the body (chunked included).
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _Exchange:
    """One WSGI call: runs the app, then hands its body over in batches, then closes it."""

    __slots__ = (
        "closed",
        "complete",
        "environ",
        "gone",
        "headers",
        "headers_sent",
        "iterable",
        "iterator",
        "length",
        "status",
        "wsgi_app",
    )

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> None:
        self.wsgi_app = wsgi_app
        self.environ = environ
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.length: int | None = None
        self.iterable: Iterable[bytes] = ()
        self.iterator: Iterator[bytes] = iter(())
        self.headers_sent = False
        self.complete = False
        self.closed = False
        self.gone = False  # the client left (seen by a _DisconnectWatcher)

    def start_message(self) -> Message:
        self.headers_sent = True
        return {"type": "http.response.start", "status": self.status, "headers": self.headers}

    def step(self, first: bool = False) -> tuple[bytes, bool]:
        """The next batch of the body and whether it is the last; closes the body after it."""
        try:
            if first:
                self.iterable = self.wsgi_app(self.environ, self._start_response)
                self.iterator = iter(self.iterable)
            chunk, done = self._batch()
            if first and not self.status:
                raise RuntimeError("the WSGI app did not call start_response")
        except BaseException:
            self.close()
            raise
        if done:
            self.close()
        return chunk, done

    def _batch(self) -> tuple[bytes, bool]:
        parts: list[bytes] = []
        size = 0
        for chunk in self.iterator:
            if not chunk:
                continue
            if self.length is None:
                return chunk, False  # a stream: each chunk goes out as it is produced
            parts.append(chunk)
            size += len(chunk)
            if size >= _BATCH:
                return b"".join(parts), False
        return b"".join(parts), True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        close = getattr(self.iterable, "close", None)
        if close is not None:
            close()

    def _start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: _ExcInfo | None = None
    ) -> Callable[[bytes], object]:
        if exc_info is not None and self.headers_sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status = int(status[:3])
        self.length = None
        encoded = []
        for name, value in headers:
            lowered = name.lower()
            if lowered == "content-length" and value.isdigit():
                self.length = int(value)
            encoded.append((lowered.encode("latin-1"), value.encode("latin-1")))
        self.headers = encoded
        return _no_write


def _no_write(data: bytes) -> object:
    raise NotImplementedError("the WSGI write() callable is not supported on ASGI: return a body")


def _body(chunk: bytes, more: bool) -> Message:
    return {"type": "http.response.body", "body": chunk, "more_body": more}


async def _serve_in_thread(
    exchange: _Exchange,
    receive: Receive,
    send: Send,
    loop: asyncio.AbstractEventLoop,
    pool: ThreadPoolExecutor,
) -> None:
    # The request's context copied once, for every step of it: the thread sees what an outer
    # ASGI middleware set, and what the app leaves set dies with the request.
    run = contextvars.copy_context().run
    watcher: _DisconnectWatcher | None = None
    try:
        chunk, done = await loop.run_in_executor(pool, run, exchange.step, True)
        await send(exchange.start_message())
        if not done:
            # A stream: servers drop what is sent after a disconnect without a word, so an
            # endless one would be produced forever. Stop pulling once the client has left.
            watcher = _DisconnectWatcher(receive, exchange, _nothing)
            watcher.start(loop)
        await send(_body(chunk, not done))
        while not done and not exchange.gone:
            chunk, done = await loop.run_in_executor(pool, run, exchange.step)
            exchange.complete = done
            await send(_body(chunk, not done))
    finally:
        if watcher is not None:
            watcher.stop()
        if not exchange.closed:
            await loop.run_in_executor(pool, run, exchange.close)


def _nothing() -> None:
    return None


async def _serve_on_loop(
    exchange: _Exchange, receive: Receive, send: Send, loop: asyncio.AbstractEventLoop
) -> None:
    # A task of its own (its own context), so that a disconnect can cancel it.
    task = loop.create_task(greenlet_spawn(_respond_in_greenlet, exchange, send))
    watcher = _DisconnectWatcher(receive, exchange, task.cancel)
    # Listening costs a task and a few loop turns: only a request still running after a moment
    # gets it (a client that left by then is noticed at once, since receive() reports it).
    timer = loop.call_later(_WATCH_AFTER, watcher.start, loop)
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # the server cancels this request: not ours to swallow
        # The client left: the view got the CancelledError and the teardown ran. Nobody to answer.
    finally:
        timer.cancel()
        watcher.stop()


class _DisconnectWatcher:
    """Waits for ``http.disconnect`` while a response is produced, and calls ``on_gone`` then."""

    __slots__ = ("exchange", "listening", "on_gone", "receive")

    def __init__(
        self, receive: Receive, exchange: _Exchange, on_gone: Callable[[], object]
    ) -> None:
        self.receive = receive
        self.exchange = exchange
        self.on_gone = on_gone
        self.listening: asyncio.Task[Message] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.exchange.complete or self.listening is not None:
            return
        self.listening = loop.create_task(_next_message(self.receive))
        self.listening.add_done_callback(self._on_message)

    def stop(self) -> None:
        if self.listening is not None:
            self.listening.cancel()

    def _on_message(self, done: asyncio.Task[Message]) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        if done.result()["type"] == "http.disconnect" and not self.exchange.complete:
            self.exchange.gone = True
            self.on_gone()


async def _next_message(receive: Receive) -> Message:
    return await receive()


def _respond_in_greenlet(exchange: _Exchange, send: Send) -> None:
    # Runs under greenlet_spawn: the app, its async views (awaited in place by the bridge) and
    # the body's production all happen in this greenlet, and each send is awaited in turn.
    await_ = async_bridge.await_in_greenlet
    try:
        chunk, done = exchange.step(first=True)
        await_(send(exchange.start_message()))
        while True:
            if done:
                exchange.complete = True
            await_(send(_body(chunk, not done)))
            if done:
                return
            # A server's send() need not suspend (uvicorn drops what is sent to a client that
            # left): give the loop a turn between chunks, so that a disconnect is noticed (and
            # cancels this task) and other requests run while a long stream is produced.
            await_(asyncio.sleep(0))
            chunk, done = exchange.step()
    finally:
        exchange.close()
