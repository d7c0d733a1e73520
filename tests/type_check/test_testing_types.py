"""Checked by mypy --strict and pyright strict: ``Envelope.read`` carries the data type.

``Envelope.read(response, Order)`` is an ``Envelope[Order]`` and its ``data`` an ``Order``; a
list type gives a list. The function also runs under pytest (tests/test_testing.py runs pyright
on this file).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import assert_type

from flask import Flask
from pydantic import BaseModel

from cst_chassis import ChassisApi, CstMicroChassis
from cst_chassis.envelope import ErrorItem
from cst_chassis.resources import ApiResource
from cst_chassis.testing import Envelope, read_errors


class Order(BaseModel):
    id: int
    placed: datetime


class Orders(ApiResource):
    def get(self) -> list[Order]:
        return [Order(id=1, placed=datetime(2026, 1, 1, tzinfo=UTC))]


def test_envelope_data_is_typed() -> None:
    app = Flask("typed_envelope")
    CstMicroChassis(app)
    ChassisApi(app).add_resource(Orders, "/orders")
    client = app.test_client()
    envelope = Envelope.read(client.get("/orders"), list[Order])
    assert_type(envelope, Envelope[list[Order]])
    assert_type(envelope.data, list[Order])
    assert_type(envelope.data[0].placed, datetime)
    assert_type(envelope.operation_id, str)
    assert envelope.data[0].placed.tzinfo is not None
    one = Envelope.read(client.get("/orders"), list[Order]).data[0]
    assert_type(one, Order)
    errors = read_errors(client.get("/missing"), status=404)
    assert_type(errors, list[ErrorItem])
