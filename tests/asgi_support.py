"""Drive an ASGI app in-process, as a server would: lifespan, requests, disconnects.

A request gets its body in the chunks given, then ``receive()`` waits until the test sets the
request's ``disconnect`` event (as uvicorn's does once the body is read). Nothing is mocked below
the ASGI interface: the chassis runs exactly as under uvicorn, on the running asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cst_chassis.asgi import ASGIApp, Message


@dataclass
class AsgiResponse:
    """What the app sent for one request."""

    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    more_body: list[bool] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]


async def request(
    app: ASGIApp,
    method: str,
    path: str,
    *,
    query: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
    body: Sequence[bytes] = (),
    disconnect: asyncio.Event | None = None,
    root_path: str = "",
) -> AsgiResponse:
    """Send one request; ``body`` chunks go out one ``http.request`` message each."""
    pending: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": n < len(body) - 1}
        for n, chunk in enumerate(body)
    ] or [{"type": "http.request", "body": b"", "more_body": False}]
    gone = disconnect or asyncio.Event()
    response = AsgiResponse()

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        response.messages.append(message)
        if message["type"] == "http.response.start":
            response.status = message["status"]
            response.headers = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"]
            ]
        elif message["type"] == "http.response.body":
            response.chunks.append(message.get("body", b""))
            response.more_body.append(message.get("more_body", False))
            if not message.get("more_body", False):
                gone.set()  # as uvicorn: once the response is complete, receive() says so

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "root_path": root_path,
        "query_string": query,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    return response


@contextlib.asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Run the app's lifespan startup, then (on exit) its shutdown, as a server does."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()

    async def send(message: Message) -> None:
        await outbox.put(message)

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.3"}, "state": {}}
    task = asyncio.ensure_future(app(scope, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        stopped = await outbox.get()
        assert stopped["type"] == "lifespan.shutdown.complete", stopped
        await task
