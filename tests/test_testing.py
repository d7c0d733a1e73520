"""cst_chassis.testing: the typed envelope reader and the in-process conformance check (item 7)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_restful import abort
from pydantic import BaseModel, Field

from cst_chassis import ChassisApi
from cst_chassis.openapi import Created, with_body
from cst_chassis.resources import ApiResource
from cst_chassis.testing import (
    ConformanceError,
    Envelope,
    EnvelopeError,
    check_conformance,
    read_errors,
)
from tests.conftest import AppFactory

REPO = Path(__file__).resolve().parent.parent


class Order(BaseModel):
    id: int
    placed: datetime


class OrderIn(BaseModel):
    quantity: int = Field(ge=1, le=100)


class Orders(ApiResource):
    def get(self, order_id: int) -> Order:
        if order_id > 50:
            abort(404, message="no such order")
        return Order(id=order_id, placed=datetime(2026, 1, 2, tzinfo=UTC))

    @with_body(OrderIn)
    def post(self, order: OrderIn, order_id: int) -> Created[Order]:
        return Order(id=order.quantity, placed=datetime(2026, 1, 2, tzinfo=UTC)), 201


class Drifted(ApiResource):
    """Documents integer values but sends text: what the conformance check is for."""

    def get(self) -> dict[str, int]:
        return {"count": "many"}  # type: ignore[dict-item]  # the bug under test


class Crashes(ApiResource):
    def get(self, n: int) -> int:
        return 100 // (n - 7)


def _app(make_app: AppFactory, *resources: tuple[type[ApiResource], str]) -> Flask:
    app = make_app()
    api = ChassisApi(app)
    for resource, url in resources:
        api.add_resource(resource, url)
    return app


def test_envelope_reads_data_as_the_type_with_the_operation_id(make_app: AppFactory) -> None:
    client = _app(make_app, (Orders, "/orders/<int(max=1000):order_id>")).test_client()
    envelope = Envelope.read(client.get("/orders/3", headers={"X-Operation-ID": "op-t"}), Order)
    assert envelope.data == Order(id=3, placed=datetime(2026, 1, 2, tzinfo=UTC))
    assert envelope.data.placed.year == 2026  # a datetime again, not the JSON text
    assert envelope.operation_id == "op-t"
    assert envelope.headers["X-Operation-ID"] == "op-t"
    created = Envelope.read(client.post("/orders/1", json={"quantity": 4}), Order, status=201)
    assert created.status == 201 and created.data.id == 4


def test_envelope_refuses_a_wrong_status_or_data_that_does_not_fit(make_app: AppFactory) -> None:
    client = _app(make_app, (Orders, "/orders/<int(max=1000):order_id>")).test_client()
    with pytest.raises(EnvelopeError, match=r"expected status 200, got 404: .*no such order"):
        Envelope.read(client.get("/orders/99"), Order)
    with pytest.raises(EnvelopeError, match="data does not fit"):
        Envelope.read(client.get("/orders/3"), list[Order])
    assert read_errors(client.get("/orders/99"), status=404) == [{"message": "no such order"}]
    with pytest.raises(EnvelopeError, match="not an error envelope"):
        read_errors(client.get("/orders/3"))


def test_check_conformance_passes_a_service_that_answers_as_documented(
    make_app: AppFactory,
) -> None:
    app = _app(make_app, (Orders, "/orders/<int(max=1000):order_id>"))
    check_conformance(app, max_examples=10)


def test_check_conformance_reports_a_body_that_drifted_from_the_document(
    make_app: AppFactory,
) -> None:
    # Four operations: these three and the health endpoint, which conforms too.
    app = _app(make_app, (Drifted, "/drifted"), (Orders, "/orders/<int(max=1000):order_id>"))
    with pytest.raises(ConformanceError) as caught:
        check_conformance(app, max_examples=5)
    report = str(caught.value)
    assert report.startswith("1 of 4 operations do not conform to the document")
    assert "GET /drifted" in report and "Response violates schema" in report


def test_check_conformance_finds_a_500_and_says_how_to_reproduce_it(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _app(make_app, (Crashes, "/crash/<int(max=20):n>"))
    with pytest.raises(ConformanceError) as caught:
        check_conformance(app, max_examples=50, seed=1)
    report: Any = str(caught.value)
    assert "GET /crash/{n}" in report and "Server error" in report
    assert "curl" in report and "/crash/7" in report
    capsys.readouterr()  # the 500's traceback, logged by the chassis


@pytest.mark.slow
def test_envelope_types_are_pyright_strict_clean(tmp_path: Path) -> None:
    # mypy --strict checks the same file as part of `make typecheck`.
    config = {
        "typeCheckingMode": "strict",
        "pythonVersion": "3.11",
        "stubPath": str(REPO / "typings"),
        "extraPaths": [str(REPO)],
    }
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(config))
    checked = REPO / "tests" / "type_check" / "test_testing_types.py"
    pyright = str(Path(sys.executable).parent / "pyright")
    result = subprocess.run(
        [
            pyright,
            "--pythonpath",
            sys.executable,
            "-p",
            str(tmp_path / "pyrightconfig.json"),
            "--stats",
            str(checked),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Total files checked: 1" in result.stdout, result.stdout
    assert "0 errors" in result.stdout
