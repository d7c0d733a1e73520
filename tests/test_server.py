"""A real threaded server: concurrent sync and async requests keep their own operation ids.

Each response's id must match exactly the log lines its request wrote, and no id may appear in
two requests.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import re
import threading
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask, request
from werkzeug.serving import make_server

from cst_chassis import ChassisApi
from cst_chassis.resources import ApiResource
from tests.conftest import AppFactory

# Servers, subprocesses or brokers: left out of `make check` (the Makefile).
pytestmark = pytest.mark.slow

LINE = re.compile(r"\[INFO\]\[(?P<op>[^\]]+)\] served: token=(?P<token>\S+)")
REQUESTS = 240
CLIENTS = 12


class Sync(ApiResource):
    def get(self) -> str:
        token = request.args["token"]
        logging.getLogger("served").info("token=%s", token)
        logging.getLogger("served").info("token=%s", token)
        return token


class Async(ApiResource):
    async def get(self) -> str:
        token = request.args["token"]
        logging.getLogger("served").info("token=%s", token)
        await asyncio.sleep(0.001)
        logging.getLogger("served").info("token=%s", token)
        return token


@pytest.fixture
def server(make_app: AppFactory) -> Iterator[int]:
    app: Flask = make_app()
    api = ChassisApi(app)
    api.add_resource(Sync, "/sync")
    api.add_resource(Async, "/async")
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv.server_port
    finally:
        srv.shutdown()
        thread.join(10)


def _call(port: int, path: str) -> tuple[int, str, dict[str, object]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = json.loads(response.read())
        return response.status, response.headers["X-Operation-ID"], body
    finally:
        connection.close()


def test_concurrent_requests_keep_their_ids_in_logs_and_bodies(
    server: int, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    paths = [f"/{'sync' if i % 2 else 'async'}?token=t{i}" for i in range(REQUESTS)]
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda p: _call(server, p), paths))

    logged: dict[str, list[str]] = defaultdict(list)
    for match in LINE.finditer(capfd.readouterr().out):
        logged[match["op"]].append(match["token"])

    header_ids = [op for _, op, _ in results]
    assert len(set(header_ids)) == REQUESTS, "an operation id was shared by two requests"
    for index, (status, op, body) in enumerate(results):
        assert status == 200
        assert body["meta"] == {"operation_id": op}
        assert body["data"] == f"t{index}"
        assert logged[op] == [f"t{index}", f"t{index}"]
    assert set(logged) == set(header_ids)
