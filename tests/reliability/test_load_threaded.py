"""The same mixed load on Werkzeug's threaded server, in-process (the fast variant).

``CST_LOAD_THREADED_REQUESTS`` sets the count (default 1500; ``make load`` runs 10,000).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.reliability.service import create_app, dispose_app
from tests.reliability.support import (
    LOAD_CLIENTS,
    POSTGRES_URL,
    SKIP_POSTGRES,
    THREADED_REQUESTS,
    captured_log,
    check_load,
    parse_log,
    plan_mix,
    run_load,
    service_database,
    summarise,
    werkzeug_server,
)

pytestmark = pytest.mark.load


@pytest.mark.parametrize(
    "kind",
    [
        "sqlite",
        pytest.param(
            "postgresql", marks=pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_POSTGRES)
        ),
    ],
)
def test_threaded_server_answers_every_request_with_its_own_id_and_log_lines(
    kind: str, tmp_path: Path
) -> None:
    tag = f"w{uuid.uuid4().hex[:6]}"
    plan = plan_mix(THREADED_REQUESTS, tag, seed_value=11)
    with service_database(kind, tmp_path) as database:
        app = create_app(database.settings(pool_size=4, max_overflow=4))
        try:
            with captured_log() as log, werkzeug_server(app) as port:
                result = run_load(port, plan, clients=LOAD_CLIENTS)
            text = log.text()
        finally:
            dispose_app(app)

    check = check_load(result.outcomes, parse_log(text), access_log=True)
    summarise(f"werkzeug threaded in-process [{kind}]", result, check)
    assert len(result.outcomes) == len(plan)
    assert check.problems == []
