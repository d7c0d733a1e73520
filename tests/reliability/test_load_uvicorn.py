"""Mixed load over ASGI on uvicorn[standard] (2 workers; ``cst_chassis.asgi.asgi_app``).

The same checks as on gunicorn and granian WSGI (statuses, ids, data, log lines all exact), on
SQLite and, when configured, on PostgreSQL: the async views run in greenlets on each worker's
own loop with its pooled async engine, the sync ones in each worker's thread pool.
``CST_LOAD_REQUESTS`` sets the request count (default 3000; ``make load`` runs 10,000).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.reliability.support import (
    LOAD_CLIENTS,
    LOAD_REQUESTS,
    POSTGRES_URL,
    SKIP_POSTGRES,
    ServerProcess,
    check_load,
    parse_log,
    plan_mix,
    run_load,
    service_database,
    summarise,
    uvicorn_server,
)

pytestmark = pytest.mark.load


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param(
            "postgresql", marks=pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_POSTGRES)
        ),
    ],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("uvicorn")
    with (
        service_database(str(request.param), directory) as database,
        uvicorn_server(database.settings(pool_size=3, max_overflow=3), directory) as server,
    ):
        yield server


def test_mixed_load_on_uvicorn_answers_every_request_with_its_own_id_and_log_lines(
    server: ServerProcess, request: pytest.FixtureRequest
) -> None:
    tag = f"r{uuid.uuid4().hex[:6]}"
    plan = plan_mix(LOAD_REQUESTS, tag)
    pids_before = server.worker_pids()

    result = run_load(server.port, plan, clients=LOAD_CLIENTS)

    check = check_load(result.outcomes, parse_log(server.log_text()))
    summarise(f"uvicorn 2 workers ASGI [{request.node.callspec.id}]", result, check)
    assert len(result.outcomes) == len(plan)
    assert check.problems == []
    assert server.worker_pids() == pids_before, "a worker died or was restarted under load"
