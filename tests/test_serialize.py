"""Responses written from the return annotation (cst_chassis._serialize, issue 24 item 1).

A method annotated with a model, dataclass, TypedDict, date/time, UUID, Decimal, Enum, Page[T]
or Created[T] answers what its annotation (and the document) says, only the annotated fields; a
value that does not fit is a 500 whose log names the field and the error type, never the value.
Plain annotations and unannotated methods keep flask-restful's bytes.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, NotRequired, TypedDict
from uuid import UUID

import flask_restful
import pytest
from flask import Flask
from flask_restful import fields, marshal_with
from pydantic import BaseModel, ConfigDict

from cst_chassis import ChassisApi
from cst_chassis.openapi import Created, OpenAPIError, with_body
from cst_chassis.pagination import Page
from cst_chassis.resources import ApiResource

OP = {"X-Operation-ID": "op-s"}


class Status(enum.Enum):
    OPEN = "open"
    SHIPPED = "shipped"


class User(BaseModel):
    id: int
    name: str


class UserRow(User):
    """What the database layer holds: more than the API may show."""

    password_hash: str


class Line(BaseModel):
    sku: UUID
    price: Decimal
    status: Status


class Order(BaseModel):
    id: int
    placed: datetime
    lines: list[Line]


@dataclasses.dataclass
class Slot:
    day: date
    start: time
    by: User | None


class Event(TypedDict):
    at: datetime
    note: NotRequired[str]


class OrderIn(BaseModel):
    lines: int


class Legacy:
    """A plain class, as a marshal_with method returns it."""

    def __init__(self) -> None:
        self.id = 7
        self.name = "legacy"
        self.secret = "never-listed-in-the-fields"


class OrmRow:
    def __init__(self) -> None:
        self.id = 3
        self.name = "from attributes"
        self.password_hash = "orm-hash"


class UserFromRow(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str


ORDER = Order(
    id=1,
    placed=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    lines=[Line(sku=UUID(int=1), price=Decimal("12.50"), status=Status.SHIPPED)],
)


def _client(app: Flask, *resources: tuple[type[ApiResource], str], api: Any = ChassisApi) -> Any:
    registry = api(app)
    for resource, url in resources:
        registry.add_resource(resource, url)
    return app.test_client()


def _get(app: Flask, resource: type[ApiResource], **kwargs: Any) -> Any:
    return _client(app, (resource, "/r")).get("/r", headers=OP, **kwargs)


def test_a_model_is_written_from_its_annotation_with_iso_dates_uuid_decimal_enum(
    app: Flask,
) -> None:
    class R(ApiResource):
        def get(self) -> Order:
            return ORDER

    response = _get(app, R)
    assert response.status_code == 200
    assert response.get_json() == {
        "meta": {"operation_id": "op-s"},
        "data": {
            "id": 1,
            "placed": "2026-01-02T03:04:05Z",
            "lines": [
                {
                    "sku": "00000000-0000-0000-0000-000000000001",
                    "price": "12.50",
                    "status": "shipped",
                }
            ],
        },
    }


def test_a_subclass_returned_where_its_base_is_annotated_sends_only_the_base_fields(
    app: Flask,
) -> None:
    class R(ApiResource):
        def get(self) -> list[User]:
            return [UserRow(id=1, name="ada", password_hash="pbkdf2$secret")]

    response = _get(app, R)
    assert response.status_code == 200
    assert response.get_json()["data"] == [{"id": 1, "name": "ada"}]
    assert b"pbkdf2" not in response.data and b"password_hash" not in response.data


def test_a_typeddict_drops_keys_it_does_not_declare_and_writes_datetimes(app: Flask) -> None:
    class R(ApiResource):
        def get(self) -> Event:
            return {"at": datetime(2026, 5, 6, 7, 8), "internal": "x"}  # type: ignore[typeddict-unknown-key]  # what a careless query returns

    response = _get(app, R)
    assert response.get_json()["data"] == {"at": "2026-05-06T07:08:00"}


def test_a_dataclass_with_date_time_and_a_nested_model(app: Flask) -> None:
    class R(ApiResource):
        def get(self) -> Slot:
            return Slot(
                day=date(2026, 2, 3),
                start=time(9, 30),
                by=UserRow(id=2, name="b", password_hash="h"),
            )

    response = _get(app, R)
    assert response.get_json()["data"] == {
        "day": "2026-02-03",
        "start": "09:30:00",
        "by": {"id": 2, "name": "b"},
    }


def test_a_page_of_models_is_sent_as_its_items(app: Flask) -> None:
    page = Page(
        items=[User(id=1, name="a"), User(id=2, name="b")],
        offset=0,
        limit=2,
        has_next=False,
        has_prev=False,
    )

    class R(ApiResource):
        def get(self) -> Page[User]:
            return page

    class L(ApiResource):
        def get(self) -> list[User]:
            return page  # type: ignore[return-value]  # a Page is a Sequence, not a list

    client = _client(app, (R, "/r"), (L, "/l"))
    expected = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    assert client.get("/r").get_json()["data"] == expected
    assert client.get("/l").get_json()["data"] == expected


def test_created_from_a_typed_body_answers_201_with_the_model(app: Flask) -> None:
    class R(ApiResource):
        @with_body(OrderIn)
        async def post(self, order: OrderIn) -> Created[Order]:
            return ORDER.model_copy(update={"id": order.lines}), 201

    response = _client(app, (R, "/r")).post("/r", json={"lines": 9})
    assert response.status_code == 201
    assert response.get_json()["data"]["id"] == 9
    assert response.get_json()["data"]["placed"] == "2026-01-02T03:04:05Z"


def test_an_object_with_attributes_fits_a_model_that_reads_attributes(app: Flask) -> None:
    class R(ApiResource):
        def get(self) -> UserFromRow:
            return OrmRow()  # type: ignore[return-value]  # what an ORM query returns

    response = _get(app, R)
    assert response.get_json()["data"] == {"id": 3, "name": "from attributes"}
    assert b"orm-hash" not in response.data


def test_a_value_that_does_not_fit_is_a_500_naming_the_field_never_the_value(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    class R(ApiResource):
        def get(self) -> list[User]:
            return [{"id": "customer-secret-value", "name": "x"}]  # type: ignore[list-item]  # the bug under test

    capsys.readouterr()
    response = _get(app, R)
    assert response.status_code == 500
    assert response.get_json() == {
        "meta": {"operation_id": "op-s"},
        "errors": [{"message": "Internal server error"}],
    }
    assert b"customer-secret-value" not in response.data
    log = capsys.readouterr().out
    assert (
        "R.get returned a value that does not fit its return annotation: 0.id: int_parsing" in log
    )
    assert "customer-secret-value" not in log


def test_none_where_a_model_is_annotated_is_a_500(app: Flask) -> None:
    class R(ApiResource):
        def get(self) -> User:
            return None  # type: ignore[return-value]  # the bug under test

    assert _get(app, R).status_code == 500


def test_an_error_recorded_by_the_method_wins_over_its_annotation(app: Flask) -> None:
    class R(ApiResource):
        def get(self) -> User:
            self.add_error("no such user", path="id")
            return None  # type: ignore[return-value]  # the errors are sent, not this

    response = _get(app, R)
    assert response.status_code == 400
    assert response.get_json()["errors"] == [{"message": "no such user", "path": "id"}]


@pytest.mark.parametrize("debug", [False, True])
def test_plain_annotations_and_unannotated_methods_keep_flask_restfuls_bytes(
    make_app: Any, debug: bool
) -> None:
    app = make_app(DEBUG=debug)

    class Plain(ApiResource):
        def get(self) -> dict[str, Any]:
            return {"b": [1, 2.5, None], "a": "é"}

    class Bare(ApiResource):
        def get(self):  # type: ignore[no-untyped-def]  # flask-restful code as it is written
            return {"b": [1, 2.5, None], "a": "é"}

    client = _client(app, (Plain, "/plain"), (Bare, "/bare"))
    settings: dict[str, Any] = {"indent": 4, "sort_keys": False} if debug else {}
    body = {"meta": {"operation_id": "op-s"}, "data": {"b": [1, 2.5, None], "a": "é"}}
    expected = (json.dumps(body, **settings) + "\n").encode()
    assert client.get("/plain", headers=OP).data == expected
    assert client.get("/bare", headers=OP).data == expected


def test_any_holding_dates_uuids_decimals_and_enums_is_written_not_a_500(app: Flask) -> None:
    class R(ApiResource):
        def get(self) -> dict[str, Any]:
            return {
                "at": date(2026, 1, 1),
                "id": UUID(int=2),
                "n": Decimal("1.5"),
                "s": Status.OPEN,
            }

    response = _get(app, R)
    assert response.status_code == 200
    assert response.get_json()["data"] == {
        "at": "2026-01-01",
        "id": "00000000-0000-0000-0000-000000000002",
        "n": "1.5",
        "s": "open",
    }


def test_marshal_with_keeps_shaping_the_output_whatever_the_annotation(app: Flask) -> None:
    class R(ApiResource):
        @marshal_with({"id": fields.Integer, "name": fields.String})
        def get(self) -> Legacy:
            return Legacy()

    response = _get(app, R)
    assert response.status_code == 200
    assert response.get_json()["data"] == {"id": 7, "name": "legacy"}


def test_an_annotation_pydantic_cannot_write_is_refused_at_registration(app: Flask) -> None:
    class Unwritable(ApiResource):
        def get(self) -> Legacy:
            return Legacy()

    with pytest.raises(OpenAPIError, match=r"Unwritable\.get: pydantic cannot serialize"):
        ChassisApi(app).add_resource(Unwritable, "/u")


def test_a_negotiated_representation_gets_json_ready_values(app: Flask) -> None:
    # Not the JSON shortcut: flask-restful's content negotiation renders the body.
    class R(ApiResource):
        def get(self) -> Order:
            return ORDER

    response = _get(app, R, environ_overrides={"HTTP_ACCEPT": "application/json;q=0.9"})
    assert response.status_code == 200
    assert response.get_json()["data"]["lines"][0]["price"] == "12.50"


def test_typed_bodies_work_on_a_plain_flask_restful_api(app: Flask) -> None:
    class R(ApiResource):
        def get(self) -> User:
            return UserRow(id=4, name="d", password_hash="h")

    response = _client(app, (R, "/r"), api=flask_restful.Api).get("/r")
    assert response.get_json()["data"] == {"id": 4, "name": "d"}


def test_an_instance_built_without_validation_that_does_not_serialize_is_a_500(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    class R(ApiResource):
        def get(self) -> User:
            # model_construct skips validation: the wrong type surfaces when it is written.
            return User.model_construct(id="secret-id-text", name="x")

    capsys.readouterr()
    response = _get(app, R)
    assert response.status_code == 500
    assert b"secret-id-text" not in response.data
    log = capsys.readouterr().out
    assert "R.get returned a value that does not serialize as its return annotation" in log
    assert "at field id: expected int" in log
    assert "secret-id-text" not in log


def test_a_page_under_a_plain_annotation_is_sent_as_its_items(app: Flask) -> None:
    class R(ApiResource):
        def get(self) -> Any:
            return Page(items=[{"id": 1}], offset=0, limit=1, has_next=False, has_prev=False)

    assert _get(app, R).get_json()["data"] == [{"id": 1}]
