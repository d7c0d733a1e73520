"""Mixed load on gunicorn (gthread, 2 workers x 8 threads): statuses, ids and logs all exact.

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
        pytest.param(
            "postgresql", marks=pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_POSTGRES)
        ),
    ],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GunicornServer]:
    directory = tmp_path_factory.mktemp("gunicorn")
    with (
        service_database(request.param, directory) as database,
        gunicorn_server(database.settings(pool_size=3, max_overflow=3), directory) as server,
    ):
        yield server


def test_mixed_load_answers_every_request_with_its_own_id_and_log_lines(
    server: GunicornServer, request: pytest.FixtureRequest
) -> None:
    tag = f"g{uuid.uuid4().hex[:6]}"
    plan = plan_mix(LOAD_REQUESTS, tag)
    pids_before = server.worker_pids()

    result = run_load(server.port, plan, clients=LOAD_CLIENTS)

    check = check_load(result.outcomes, parse_log(server.log_text()))
    name = request.node.callspec.id if hasattr(request.node, "callspec") else ""
    summarise(f"gunicorn 2x8 gthread [{name}]", result, check)
    assert len(result.outcomes) == len(plan)
    assert check.problems == []
    assert server.worker_pids() == pids_before, "a worker died or was restarted under load"
