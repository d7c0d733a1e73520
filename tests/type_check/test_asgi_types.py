"""Checked by mypy --strict: ``asgi_app`` as a typed service's ASGI factory uses it."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import assert_type

from flask import Flask

from cst_chassis import CstMicroChassis
from cst_chassis.asgi import ASGIApp, Message, Scope, asgi_app


def create_asgi_app() -> ASGIApp:
    app = Flask("typed-asgi")
    CstMicroChassis().init_app(app)
    return asgi_app(app, threads=8)


def test_asgi_app_is_an_asgi3_callable() -> None:
    server = create_asgi_app()
    assert_type(server, ASGIApp)

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        del message

    scope: Scope = {"type": "lifespan"}
    call = server(scope, receive, send)
    assert_type(call, Awaitable[None])
    # Not awaited here (the lifespan would wait for a shutdown message): close it cleanly.
    close = getattr(call, "close", None)
    assert callable(close)
    close()
