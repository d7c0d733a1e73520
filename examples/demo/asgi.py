"""The demo over ASGI: ``create_asgi_app()`` is what ``make demo-asgi`` serves with uvicorn.

The same app as :func:`examples.demo.app.create_app`, wrapped by :func:`cst_chassis.asgi.asgi_app`:
its ``async def`` resources await on the server's own event loop, its sync ones run in the pool.
"""

from __future__ import annotations

from cst_chassis.asgi import ASGIApp, asgi_app
from examples.demo.app import create_app

__all__ = ["create_asgi_app"]


def create_asgi_app() -> ASGIApp:
    """Build the demo app and serve it over ASGI (uvicorn/granian ``--factory``)."""
    return asgi_app(create_app())
