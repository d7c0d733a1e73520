"""marshal_with and fields dicts in the OpenAPI document (issue 24 item 2).

A Flask-RESTful codebase gets a correct document without rewriting its resources: the fields say
what is sent, whatever the method is annotated with (often the plain class it returns, which
pydantic cannot describe and which used to make /openapi.json a 500). Each response is checked
against its documented schema with jsonschema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jsonschema
import pytest
from flask import Flask
from flask_restful import fields, marshal_with
from openapi_spec_validator import validate

from cst_chassis import ChassisApi
from cst_chassis.openapi import Created
from cst_chassis.resources import ApiResource
from tests.conftest import AppFactory


class Legacy:
    """A plain class, as Flask-RESTful code returns it to marshal_with."""

    def __init__(self, ident: int = 7) -> None:
        self.id = ident
        self.name = "legacy"
        self.active = True
        self.ratio = None
        self.created = datetime(2026, 3, 4, 5, 6, 7)
        self.tags = ["a", "b"]
        self.owner = {"login": "ada"}
        self.password_hash = "never-in-the-fields"


owner_fields = {"login": fields.String}
legacy_fields: dict[str, Any] = {
    "id": fields.Integer,
    "name": fields.String,
    "active": fields.Boolean,
    "ratio": fields.Float,
    "created": fields.DateTime(dt_format="iso8601"),
    "tags": fields.List(fields.String),
    "owner": fields.Nested(owner_fields),
    "meta": {"name": fields.String(attribute="name")},
    "raw": fields.Raw,
}


class One(ApiResource):
    @marshal_with(legacy_fields)
    def get(self) -> Legacy:
        return Legacy()


class Many(ApiResource):
    @marshal_with(legacy_fields, envelope="items")
    def get(self) -> list[Legacy]:
        return [Legacy(1), Legacy(2)]


class Decorated(ApiResource):
    method_decorators = {"post": [marshal_with({"id": fields.Integer})]}

    def post(self) -> Created[Legacy]:
        return Legacy(5), 201


def _app(make_app: AppFactory) -> Flask:
    app = make_app(CST_OPENAPI_ENABLED=True)
    api = ChassisApi(app)
    api.add_resource(One, "/one")
    api.add_resource(Many, "/many")
    api.add_resource(Decorated, "/decorated")
    return app


def _data_schema(document: dict[str, Any], path: str, method: str, status: str) -> Any:
    response = document["paths"][path][method]["responses"][status]
    return response["content"]["application/json"]["schema"]


def _check(document: dict[str, Any], schema: dict[str, Any], body: Any) -> None:
    # The document's own components, so that $refs inside the schema resolve.
    jsonschema.validate(body, {**schema, "components": document["components"]})


def test_a_marshal_with_method_annotated_with_a_plain_class_is_documented_not_a_500(
    make_app: AppFactory,
) -> None:
    client = _app(make_app).test_client()
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    document = answer.get_json()
    validate(document)
    data = _data_schema(document, "/one", "get", "200")["properties"]["data"]
    assert data["required"] == list(legacy_fields)
    properties = data["properties"]
    assert properties["id"] == {"type": "integer"}  # Integer defaults to 0: never null
    assert properties["name"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert properties["created"]["anyOf"][0] == {"type": "string", "format": "date-time"}
    assert properties["tags"]["anyOf"][0]["type"] == "array"
    assert properties["owner"]["properties"] == {
        "login": {"anyOf": [{"type": "string"}, {"type": "null"}]}
    }
    assert properties["raw"] == {}


def test_what_marshal_with_sends_validates_against_the_document(make_app: AppFactory) -> None:
    client = _app(make_app).test_client()
    document = client.get("/openapi.json").get_json()
    for path, method, status in [
        ("/one", "get", "200"),
        ("/many", "get", "200"),
        ("/decorated", "post", "201"),
    ]:
        response = client.open(path, method=method.upper())
        assert response.status_code == int(status)
        _check(document, _data_schema(document, path, method, status), response.get_json())
        assert b"never-in-the-fields" not in response.data


def test_a_list_annotation_and_an_envelope_shape_the_schema(make_app: AppFactory) -> None:
    document = _app(make_app).test_client().get("/openapi.json").get_json()
    data = _data_schema(document, "/many", "get", "200")["properties"]["data"]
    assert data["required"] == ["items"]
    assert data["properties"]["items"]["type"] == "array"
    posted = _data_schema(document, "/decorated", "post", "201")["properties"]["data"]
    assert posted == {
        "type": "object",
        "properties": {"id": {"type": "integer"}},
        "required": ["id"],
    }


class Late(ApiResource):
    def get(self) -> Any:
        return {}


# Unresolvable when the class is registered (as if imported under TYPE_CHECKING), a plain class
# when the document is built: the body is left undescribed, the document still served.
Late.get.__annotations__["return"] = "LateLegacy"


def test_a_body_pydantic_cannot_describe_leaves_the_rest_of_the_document_served(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(CST_OPENAPI_ENABLED=True)
    ChassisApi(app).add_resource(Late, "/late")
    monkeypatch.setitem(globals(), "LateLegacy", Legacy)
    capsys.readouterr()
    answer = app.test_client().get("/openapi.json")
    assert answer.status_code == 200
    document = answer.get_json()
    validate(document)
    data = _data_schema(document, "/late", "get", "200")["properties"]["data"]
    assert data == {"description": "Not described (see the service's log)."}
    assert "Late.get: its success body is left undescribed" in capsys.readouterr().out
