"""Property: for every supported return annotation, what the app sends fits what its document says.

hypothesis generates values of each annotation (models, dataclasses, TypedDicts, dates and
times, UUID, Decimal, Enum, nesting, ``X | None``, ``Page[T]``, ``Created[T]``); a real app
returns them through ``ApiResource``; each response body is validated with ``jsonschema``
(formats checked: ``date-time``, ``date``, ``time``, ``uuid``) against the schema
``build_document`` gives that operation (issue 24 item 5).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, NotRequired, TypedDict, cast
from uuid import UUID

import jsonschema
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from cst_chassis import ChassisApi
from cst_chassis.openapi import Created, build_document
from cst_chassis.pagination import Page
from cst_chassis.resources import ApiResource
from tests.conftest import AppFactory


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Line(BaseModel):
    sku: UUID
    price: Decimal
    colour: Colour


class Order(BaseModel):
    id: int
    name: str
    placed: datetime
    level: Level
    note: str | None
    lines: list[Line]


class Customer(BaseModel):
    id: int
    name: str


class CustomerRow(Customer):
    password_hash: str


@dataclasses.dataclass
class Slot:
    day: date
    start: time
    by: Customer | None


class Event(TypedDict):
    at: datetime
    kind: Colour
    note: NotRequired[str]


# Aware datetimes and times: JSON Schema's date-time and time (RFC 3339) require an offset, and
# the chassis writes what it is given (see docs/guides/responses.md on naive values).
# Fixed offsets: a time with a ZoneInfo has no offset (it depends on the date).
offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
aware = st.datetimes(timezones=st.timezones() | offsets)
aware_times = st.times(timezones=offsets)
decimals = st.decimals(
    allow_nan=False, allow_infinity=False, places=2, min_value=-(10**9), max_value=10**9
)
text = st.text(max_size=20)
lines = st.builds(Line, sku=st.uuids(), price=decimals, colour=st.sampled_from(Colour))
orders = st.builds(
    Order,
    id=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    name=text,
    placed=aware,
    level=st.sampled_from(Level),
    note=st.none() | text,
    lines=st.lists(lines, max_size=3),
)
customers = st.builds(
    CustomerRow,
    id=st.integers(min_value=0, max_value=2**31),
    name=text,
    password_hash=st.just("pbkdf2$leak"),
)
slots = st.builds(Slot, day=st.dates(), start=aware_times, by=st.none() | customers)
events = st.fixed_dictionaries(
    {"at": aware, "kind": st.sampled_from(Colour)}, optional={"note": text}
)


def _page(items: list[Any]) -> Page[Any]:
    return Page(items=items, offset=0, limit=max(len(items), 1), has_next=False, has_prev=False)


# path -> (return annotation, values, status)
CASES: dict[str, tuple[Any, st.SearchStrategy[Any], int]] = {
    "/model": (Order, orders, 200),
    "/subclass": (Customer, customers, 200),
    "/dataclass": (Slot, slots, 200),
    "/typeddict": (Event, events, 200),
    "/list": (list[Order], st.lists(orders, max_size=3), 200),
    "/page": (cast(Any, Page)[Customer], st.lists(customers, max_size=3).map(_page), 200),
    "/created": (cast(Any, Created)[Order], orders.map(lambda order: (order, 201)), 201),
    "/optional": (Order | None, st.none() | orders, 200),
    "/mapping": (dict[str, Decimal], st.dictionaries(text, decimals, max_size=3), 200),
    "/enum": (Colour, st.sampled_from(Colour), 200),
    "/uuid": (UUID, st.uuids(), 200),
    "/date": (date, st.dates(), 200),
    "/datetime": (datetime, aware, 200),
}


def _resource(annotation: Any, current: dict[str, Any], path: str) -> type[ApiResource]:
    def get(self: ApiResource) -> Any:
        return current[path]

    get.__annotations__ = {"self": ApiResource, "return": annotation}
    name = "R" + path.strip("/").title()
    resource: type[ApiResource] = type(name, (ApiResource,), {"get": get})
    return resource


def _app(make_app: AppFactory, current: dict[str, Any]) -> Flask:
    app = make_app()
    api = ChassisApi(app)
    for path, (annotation, _, _) in CASES.items():
        api.add_resource(_resource(annotation, current, path), path, endpoint=path.strip("/"))
    return app


def _validator(document: dict[str, Any], path: str, status: int) -> Callable[[Any], None]:
    response = document["paths"][path]["get"]["responses"][str(status)]
    schema = {
        **response["content"]["application/json"]["schema"],
        "components": document["components"],
    }
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return validator.validate


def test_every_supported_annotation_answers_json_that_fits_the_document(
    make_app: AppFactory,
) -> None:
    current: dict[str, Any] = {}
    app = _app(make_app, current)
    document = build_document(app)
    validators = {
        path: _validator(document, path, status) for path, (_, _, status) in CASES.items()
    }
    client = app.test_client()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        for path, (_, values, status) in CASES.items():
            current[path] = data.draw(values, label=path)
            response = client.get(path)
            assert response.status_code == status, (path, response.get_data(as_text=True))
            validators[path](response.get_json())
            assert b"pbkdf2$leak" not in response.data, path

    check()
