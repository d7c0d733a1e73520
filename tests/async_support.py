"""Helpers for the async bridge tests: a real threaded server, an HTTP client, a tiny schema."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import String, insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.serving import make_server


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "bridge_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


def item_name(item_id: int) -> str:
    return f"item-{item_id}"


async def create_items(engine: AsyncEngine, count: int) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        await conn.execute(
            insert(Item),
            [{"id": i, "name": item_name(i)} for i in range(1, count + 1)],
        )


@dataclass
class Server:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.contextmanager
def serve(app: Flask) -> Iterator[Server]:
    """Serve ``app`` with Werkzeug's threaded server on 127.0.0.1 (a free port) in a thread."""
    werkzeug_logger = logging.getLogger("werkzeug")
    level = werkzeug_logger.level
    werkzeug_logger.setLevel(logging.WARNING)  # no access log line per request
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Server("127.0.0.1", server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        werkzeug_logger.setLevel(level)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


def get(host: str, port: int, path: str, headers: dict[str, str] | None = None) -> Reply:
    """One GET on a fresh connection; the body is decoded as JSON."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        raw = response.read()
        return Reply(response.status, dict(response.getheaders()), json.loads(raw))
    finally:
        conn.close()
