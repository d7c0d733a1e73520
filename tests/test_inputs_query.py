"""``@with_query``/``@with_headers``: typed parameters, parsed, validated, documented (issue 24)."""

from __future__ import annotations

import enum
from datetime import date
from typing import Annotated, Any, Literal

import pytest
from flask import Flask, request
from flask_restful import reqparse
from openapi_spec_validator import validate
from pydantic import BaseModel, ConfigDict, Field

from cst_chassis import ChassisApi
from cst_chassis._inputs import NUL_FREE_PATTERN
from cst_chassis.openapi import build_document, with_args, with_body, with_headers, with_query
from cst_chassis.resources import ApiPaginatedMixin, ApiResource
from tests.conftest import AppFactory


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class ProductQuery(BaseModel):
    """A strict model: query values are text, and are still converted."""

    model_config = ConfigDict(strict=True)

    q: Annotated[str, Field(max_length=10, description="Text the name contains.")] | None = None
    sort: Literal["id", "price"] = Field("id", alias="sort-by")
    min_price: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    tag: list[str] = []
    colour: Colour | None = None
    since: date | None = None
    in_stock: bool = False


class Required(BaseModel):
    day: date


class NameIn(BaseModel):
    name: str


legacy = reqparse.RequestParser()
legacy.add_argument("verbose", type=int, location="args")


class Products(ApiPaginatedMixin, ApiResource):
    @with_query(ProductQuery)
    def get(self, query: ProductQuery) -> dict[str, Any]:
        """List products."""
        # The mixin parsed offset/limit before the method ran (a bad one would be its 400).
        return {"query": query.model_dump(mode="json"), "page": request.args.get("limit")}

    @with_body(NameIn)
    @with_query(Required)
    def post(self, query: Required, body: NameIn) -> dict[str, Any]:
        # The innermost decorator's value comes first (mypy checks the order).
        return {"name": body.name, "day": query.day.isoformat()}


class Mixed(ApiResource):
    @with_args(legacy)
    @with_query(Required)
    def get(self, query: Required, args: reqparse.Namespace) -> dict[str, Any]:
        return {"verbose": args.verbose, "day": query.day.isoformat()}


class Legacy(ApiResource):
    @with_args(legacy)
    def get(self, args: reqparse.Namespace) -> int | None:
        value: int | None = args.verbose
        return value


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    app = make_app()
    api = ChassisApi(app)
    api.add_resource(Products, "/products")
    api.add_resource(Mixed, "/mixed")
    api.add_resource(Legacy, "/legacy")
    return app


def test_the_method_gets_the_typed_model_from_the_query_string(app: Flask) -> None:
    response = app.test_client().get(
        "/products?q=lamp&sort-by=price&min_price=5&tag=a&tag=b&colour=red&since=2024-02-29"
        "&in_stock=true&limit=2&offset=1"
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["data"] == {
        "query": {
            "q": "lamp",
            "sort": "price",
            "min_price": 5,
            "tag": ["a", "b"],
            "colour": "red",
            "since": "2024-02-29",
            "in_stock": True,
        },
        "page": "2",  # pagination's own parameters are left to the mixin
    }


def test_defaults_apply_when_the_query_string_is_empty(app: Flask) -> None:
    data = app.test_client().get("/products").get_json()["data"]["query"]
    assert data == {
        "q": None,
        "sort": "id",
        "min_price": 0,
        "tag": [],
        "colour": None,
        "since": None,
        "in_stock": False,
    }


def test_each_bad_parameter_is_one_400_error_naming_it(app: Flask) -> None:
    response = app.test_client().get(
        "/products?q=" + "x" * 11 + "&sort-by=name&min_price=-1&colour=green&since=yesterday"
    )
    assert response.status_code == 400
    body = response.get_json()
    assert set(body) == {"meta", "errors"}
    assert sorted(e["path"] for e in body["errors"]) == [
        "colour",
        "min_price",
        "q",
        "since",
        "sort-by",
    ]
    assert all(e["message"] for e in body["errors"])
    # Values are not echoed back.
    assert "yesterday" not in response.get_data(as_text=True)


def test_a_missing_required_parameter_is_a_400_naming_it(app: Flask) -> None:
    response = app.test_client().get("/mixed")
    assert response.status_code == 400
    assert [e["path"] for e in response.get_json()["errors"]] == ["day"]


@pytest.mark.parametrize(("text", "value"), [("18680", 18680), ("18680.0", 18680)])
def test_integer_parameters_follow_json_schema(app: Flask, text: str, value: int) -> None:
    response = app.test_client().get(f"/products?min_price={text}")
    assert response.get_json()["data"]["query"]["min_price"] == value


def test_a_fractional_integer_parameter_is_refused(app: Flask) -> None:
    response = app.test_client().get("/products?min_price=18680.5")
    assert response.status_code == 400
    assert [e["path"] for e in response.get_json()["errors"]] == ["min_price"]


def test_nul_in_a_typed_query_parameter_is_a_400_naming_it(app: Flask) -> None:
    response = app.test_client().get("/products?q=a%00")
    assert response.status_code == 400
    assert [e["path"] for e in response.get_json()["errors"]] == ["q"]


def test_with_query_stacks_with_with_args_and_with_body(app: Flask) -> None:
    client = app.test_client()
    mixed = client.get("/mixed?verbose=2&day=2024-01-01").get_json()["data"]
    assert mixed == {"verbose": 2, "day": "2024-01-01"}
    assert client.get("/legacy?verbose=3").get_json()["data"] == 3
    created = client.post("/products?day=2024-01-02", json={"name": "lamp"}).get_json()["data"]
    assert created == {"name": "lamp", "day": "2024-01-02"}
    refused = client.post("/products", json={"name": 1})
    assert refused.status_code == 400


def test_each_field_is_a_documented_query_parameter(app: Flask) -> None:
    document = build_document(app)
    validate(document)
    operation = document["paths"]["/products"]["get"]
    query = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    assert list(query) == [
        "offset",
        "limit",
        "q",
        "sort-by",
        "min_price",
        "tag",
        "colour",
        "since",
        "in_stock",
    ]
    # Optional parameters are documented without null: a query string cannot spell it.
    assert query["q"]["schema"] == {
        "type": "string",
        "maxLength": 10,
        "description": "Text the name contains.",
        "pattern": NUL_FREE_PATTERN,  # CST_REFUSE_NUL, on by default
    }
    assert query["sort-by"]["schema"] == {
        "default": "id",
        "enum": ["id", "price"],
        "type": "string",
    }
    assert query["min_price"]["schema"] == {
        "default": 0,
        "type": "integer",
        "minimum": 0,
        "maximum": 2**31 - 1,
    }
    assert query["tag"]["schema"]["items"] == {"type": "string", "pattern": NUL_FREE_PATTERN}
    assert query["tag"]["style"] == "form" and query["tag"]["explode"] is True
    assert query["colour"]["schema"] == {"$ref": "#/components/schemas/Colour"}
    assert query["since"]["schema"] == {"type": "string", "format": "date"}
    assert not any(p.get("required") for p in query.values())
    assert "400" in operation["responses"]
    mixed = document["paths"]["/mixed"]["get"]["parameters"]
    assert {p["name"]: p.get("required", False) for p in mixed if p["in"] == "query"} == {
        "verbose": False,
        "day": True,
    }


# -- headers (with_headers) -----------------------------------------------------------------


class Tenant(BaseModel):
    x_tenant: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,40}$", description="Whose data.")]
    x_priority: Annotated[int, Field(ge=0, le=9)] = 5
    trace: str | None = Field(None, alias="X-Trace-Tag")


class Report(ApiResource):
    @with_query(Required)
    @with_headers(Tenant)
    def get(self, tenant: Tenant, query: Required) -> dict[str, Any]:
        return {**tenant.model_dump(), "day": query.day.isoformat()}


@pytest.fixture
def report_app(make_app: AppFactory) -> Flask:
    app = make_app()
    ChassisApi(app).add_resource(Report, "/report")
    return app


def test_the_method_gets_the_typed_headers(report_app: Flask) -> None:
    response = report_app.test_client().get(
        "/report?day=2024-03-01",
        headers={"X-Tenant": "acme", "x-priority": "7", "X-Trace-Tag": "t1"},
    )
    assert response.get_json()["data"] == {
        "x_tenant": "acme",
        "x_priority": 7,
        "trace": "t1",
        "day": "2024-03-01",
    }


def test_a_bad_or_missing_header_is_a_400_naming_the_header(report_app: Flask) -> None:
    client = report_app.test_client()
    missing = client.get("/report?day=2024-03-01")
    assert [e["path"] for e in missing.get_json()["errors"]] == ["X-Tenant"]
    bad = client.get("/report?day=2024-03-01", headers={"X-Tenant": "ACME!", "X-Priority": "10"})
    assert bad.status_code == 400
    assert sorted(e["path"] for e in bad.get_json()["errors"]) == ["X-Priority", "X-Tenant"]


def test_each_header_field_is_a_documented_header_parameter(report_app: Flask) -> None:
    document = build_document(report_app)
    validate(document)
    headers = {
        p["name"]: p
        for p in document["paths"]["/report"]["get"]["parameters"]
        if p["in"] == "header" and p["name"] != "X-Operation-ID"
    }
    assert list(headers) == ["X-Tenant", "X-Priority", "X-Trace-Tag"]
    assert headers["X-Tenant"]["required"] is True
    assert headers["X-Tenant"]["description"] == "Whose data."
    assert headers["X-Priority"]["schema"] == {
        "default": 5,
        "type": "integer",
        "minimum": 0,
        "maximum": 9,
    }
