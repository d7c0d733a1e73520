"""The slow upstream of the fan-out bench: a bare ASGI app that answers every request late.

``bench/serve.py --workload fanout`` serves it on uvicorn[standard] in a process of its own
(``uvicorn upstream_app:app``), and each request to a fan-out service awaits three concurrent
calls to it. It answers ``{"value": 1}`` after ``BENCH_UPSTREAM_DELAY`` seconds (default 0.2),
without a framework, so that its own cost stays small and the same for every service.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

DELAY = float(os.environ.get("BENCH_UPSTREAM_DELAY", "0.2"))
BODY = b'{"value": 1}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """ASGI 3: every HTTP request gets ``{"value": 1}`` after ``DELAY`` seconds."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await asyncio.sleep(DELAY)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
