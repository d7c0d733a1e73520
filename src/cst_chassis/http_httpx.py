"""Forward the operation id and trace context on every call made with an ``httpx`` client.

An ``httpx`` request event hook adds :func:`~cst_chassis.context.outgoing_headers` to each
request as it is sent, in whatever request or task context the call is made::

    client = httpx.Client(event_hooks=httpx_event_hooks())
    client.get("http://payments/charge")   # carries X-Operation-ID, traceparent, tracestate
    client.get("https://api.stripe.com")   # carries none of them

    async with httpx.AsyncClient(event_hooks=httpx_async_event_hooks()) as client:
        await client.get("http://payments/charge")

Only hosts on ``CST_PROPAGATE_TO`` (default: loopback and cluster-local names, see
:mod:`cst_chassis.propagation`) get the headers; a redirect to another host loses them.
This module does not import ``httpx`` (the hooks only touch ``request.headers``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cst_chassis.context import add_outgoing_headers

if TYPE_CHECKING:
    import httpx

__all__ = [
    "add_headers_async",
    "add_headers_sync",
    "httpx_async_event_hooks",
    "httpx_event_hooks",
]


def add_headers_sync(request: httpx.Request) -> None:
    """``httpx.Client`` request hook: add the operation id and trace headers (keeps set ones)."""
    add_outgoing_headers(request.headers, request.url.host)


async def add_headers_async(request: httpx.Request) -> None:
    """``httpx.AsyncClient`` request hook: the same as :func:`add_headers_sync`."""
    add_outgoing_headers(request.headers, request.url.host)


# httpx types a hook as Callable[..., Any]; the lists are invariant, so the dicts say so too.
EventHooks = dict[str, list[Callable[..., Any]]]


def httpx_event_hooks() -> EventHooks:
    """``event_hooks`` for ``httpx.Client``: ``httpx.Client(event_hooks=httpx_event_hooks())``."""
    return {"request": [add_headers_sync]}


def httpx_async_event_hooks() -> EventHooks:
    """``event_hooks`` for ``httpx.AsyncClient``."""
    return {"request": [add_headers_async]}
