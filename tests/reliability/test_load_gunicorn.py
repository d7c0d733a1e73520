"""Mixed load on gunicorn (gthread, 2 workers x 8 threads): statuses, ids and logs all exact.

On SQLite with text logs and with ``CST_LOG_FORMAT=json``, and on PostgreSQL when configured.

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
    GunicornServer,
    check_load,
    gunicorn_server,
    parse_json_log,
    parse_log,
    plan_mix,
    run_load,
    service_database,
    summarise,
)

pytestmark = pytest.mark.load


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        "sqlite-json",
        pytest.param(
            "postgresql", marks=pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_POSTGRES)
        ),
    ],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornServer]:
    kind, _, log_format = str(request.param).partition("-")
    directory = tmp_path_factory.mktemp("gunicorn")
    config = {"CST_LOG_FORMAT": log_format or "text"}
    with (
        service_database(kind, directory) as database,
        gunicorn_server(
            database.settings(pool_size=3, max_overflow=3, config=config), directory
        ) as server,
    ):
        yield server


def test_mixed_load_answers_every_request_with_its_own_id_and_log_lines(
    server: GunicornServer, request: pytest.FixtureRequest
) -> None:
    tag = f"g{uuid.uuid4().hex[:6]}"
    plan = plan_mix(LOAD_REQUESTS, tag)
    pids_before = server.worker_pids()

    result = run_load(server.port, plan, clients=LOAD_CLIENTS)

    name = request.node.callspec.id if hasattr(request.node, "callspec") else ""
    parse = parse_json_log if name.endswith("json") else parse_log
    check = check_load(result.outcomes, parse(server.log_text()))
    summarise(f"gunicorn 2x8 gthread [{name}]", result, check)
    assert len(result.outcomes) == len(plan)
    assert check.problems == []
    assert server.worker_pids() == pids_before, "a worker died or was restarted under load"
