"""The OpenAPI document (cst_chassis.openapi): derived from annotations, valid, served, exported.

Each document is checked with openapi-spec-validator. The schemathesis run against the demo
lives in tests/test_schemathesis.py.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict

import pytest
from flask import Flask, Response
from flask_restful import abort, inputs, reqparse
from openapi_spec_validator import validate
from pydantic import BaseModel, Field

from cst_chassis import ChassisApi, ChassisConfigError
from cst_chassis._inputs import NUL_FREE_PATTERN
from cst_chassis.openapi import (
    Accepted,
    Created,
    OpenAPIError,
    build_document,
    error_statuses,
    swagger_ui_assets,
    type_adapter,
    with_args,
    with_body,
)
from cst_chassis.resources import ApiPaginatedMixin, ApiResource
from tests.conftest import AppFactory

REPO = Path(__file__).resolve().parent.parent


class Colour(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


class ItemJson(TypedDict):
    """An item as the API shows it."""

    id: int
    name: str
    colour: Colour
    note: NotRequired[str | None]


@dataclasses.dataclass
class Stamp:
    at: datetime
    by: str | None


class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=20)
    quantity: int = Field(ge=0, le=10)


class Items(ApiPaginatedMixin, ApiResource):
    """Items of the catalogue."""

    def get(self) -> list[ItemJson]:
        """List the items.

        A page at a time.
        """
        return []

    @with_body(ItemIn)
    def post(self, item: ItemIn) -> Created[ItemJson]:
        """Add an item."""
        return {"id": 1, "name": item.name, "colour": Colour.RED}, 201


class ItemsByCursor(ApiPaginatedMixin, ApiResource):
    pagination_mode = "keyset"

    def get(self) -> list[ItemJson]:
        return []


class Item(ApiResource):
    async def get(self, item_id: int) -> ItemJson | None:
        """Read an item."""
        if item_id == 404:
            abort(404)
        return None

    def delete(self, item_id: int) -> tuple[Stamp, Literal[202], dict[str, str]]:
        return Stamp(at=datetime(2025, 1, 1), by=None), 202, {"X-Extra": "1"}


search = reqparse.RequestParser()
search.add_argument("term", location="args", required=True)
search.add_argument("page", type=inputs.int_range(1, 50), location="args")
search.add_argument("exact", type=inputs.boolean, location="args")
search.add_argument("colour", choices=("red", "blue"), location="args")
search.add_argument("tag", action="append", location="args")

labels = reqparse.RequestParser()
labels.add_argument("label", type=str, location="json", required=True)
labels.add_argument("weight", type=float, location="json")


class Search(ApiResource):
    @with_args(search)
    def get(self, args: reqparse.Namespace) -> dict[str, str]:
        return {"term": args.term, "page": str(args.page)}

    @with_args(labels)
    @error_statuses(409)
    def put(self, args: reqparse.Namespace) -> Accepted[list[str]]:
        return [args.label], 202


class Raw(ApiResource):
    def get(self, name: str, rest: str) -> Response:
        return Response("plain", mimetype="text/plain")


class Broken(ApiResource):
    def get(self) -> int:
        return 0


# As if the return type were only imported under TYPE_CHECKING (or misspelt).
Broken.get.__annotations__["return"] = "NoSuchType"


def _app(make_app: AppFactory, **config: Any) -> Flask:
    # A keyset resource is registered below: the chassis refuses to start without a cursor secret.
    app = make_app(
        CST_OPENAPI_ENABLED=True,
        CST_PROJECT_VERSION="2.0.0",
        CST_CURSOR_SECRET="openapi-tests-cursor-secret",
        **config,
    )
    api = ChassisApi(app)
    api.add_resource(Items, "/items")
    api.add_resource(ItemsByCursor, "/items/by-cursor")
    api.add_resource(Item, "/items/<int(max=99999):item_id>")
    api.add_resource(Search, "/search")
    api.add_resource(Raw, "/raw/<name>/<path:rest>")
    return app


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return _app(make_app)


@pytest.fixture
def document(app: Flask) -> dict[str, Any]:
    document = build_document(app)
    validate(document)
    return document


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = document["components"][kind][name]
    return node


def _data_schema(document: dict[str, Any], path: str, method: str, status: str) -> Any:
    response = _resolve(document, document["paths"][path][method]["responses"][status])
    return response["content"]["application/json"]["schema"]["properties"]["data"]


# -- derived from annotations --------------------------------------------------------------


def test_document_is_valid_openapi_3_1_named_after_the_project(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {"title": "Test-Cst-Micro-Chassis", "version": "2.0.0"}


def test_every_resource_added_to_the_api_is_described(document: dict[str, Any]) -> None:
    assert set(document["paths"]) == {
        "/items",
        "/items/by-cursor",
        "/items/{item_id}",
        "/search",
        "/raw/{name}/{rest}",
        "/status",
    }
    assert set(document["paths"]["/items/{item_id}"]) == {"get", "delete"}


def test_success_data_is_the_return_annotation_through_pydantic(document: dict[str, Any]) -> None:
    data = _data_schema(document, "/items", "get", "200")
    assert data == {"type": "array", "items": {"$ref": "#/components/schemas/ItemJson"}}
    item = document["components"]["schemas"]["ItemJson"]
    assert item["required"] == ["id", "name", "colour"]  # NotRequired kept on Python 3.11
    assert item["properties"]["colour"] == {"$ref": "#/components/schemas/Colour"}
    assert document["components"]["schemas"]["Colour"]["enum"] == ["red", "blue"]
    assert item["description"] == "An item as the API shows it."
    optional = _data_schema(document, "/items/{item_id}", "get", "200")
    assert optional == {"anyOf": [{"$ref": "#/components/schemas/ItemJson"}, {"type": "null"}]}


def test_the_status_in_the_return_type_is_the_documented_success_status(
    document: dict[str, Any],
) -> None:
    items = document["paths"]["/items"]
    assert "201" in items["post"]["responses"] and "200" not in items["post"]["responses"]
    stamp = _data_schema(document, "/items/{item_id}", "delete", "202")
    assert stamp == {"$ref": "#/components/schemas/Stamp"}
    at = document["components"]["schemas"]["Stamp"]["properties"]["at"]
    assert at == {"format": "date-time", "title": "At", "type": "string"}
    assert _data_schema(document, "/search", "put", "202")["type"] == "array"


def test_the_success_envelope_carries_the_operation_id(document: dict[str, Any]) -> None:
    response = document["paths"]["/search"]["get"]["responses"]["200"]
    envelope = response["content"]["application/json"]["schema"]
    assert envelope["required"] == ["meta", "data"]
    assert envelope["properties"]["meta"] == {"$ref": "#/components/schemas/Meta"}
    assert document["components"]["schemas"]["Meta"]["required"] == ["operation_id"]
    assert response["headers"]["X-Operation-ID"]["required"] is True


def test_docstrings_become_summary_and_description(document: dict[str, Any]) -> None:
    get = document["paths"]["/items"]["get"]
    assert (get["summary"], get["description"]) == ("List the items.", "A page at a time.")
    assert document["paths"]["/items"]["post"]["summary"] == "Add an item."


def test_path_parameters_come_from_the_url_converters(document: dict[str, Any]) -> None:
    [item_id, header] = document["paths"]["/items/{item_id}"]["get"]["parameters"]
    assert item_id == {
        "name": "item_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 0, "maximum": 99999},
    }
    assert header["name"] == "X-Operation-ID" and header["in"] == "header"
    name, rest = document["paths"]["/raw/{name}/{rest}"]["get"]["parameters"][:2]
    # CST_REFUSE_NUL (on by default): the document says NUL is refused (issue 24).
    assert name["schema"] == {
        "type": "string",
        "minLength": 1,
        "pattern": "^[^/]+$",
        "allOf": [{"pattern": NUL_FREE_PATTERN}],
    }
    assert rest["schema"] == {"type": "string", "minLength": 1, "pattern": NUL_FREE_PATTERN}


def test_error_envelopes_are_documented_per_operation(document: dict[str, Any]) -> None:
    responses = document["paths"]["/items/{item_id}"]["get"]["responses"]
    assert set(responses) == {"200", "400", "404", "405", "500", "504"}  # async: 504
    assert set(document["paths"]["/items"]["get"]["responses"]) == {"200", "400", "405", "500"}
    assert set(document["paths"]["/search"]["put"]["responses"]) == {
        "202",
        "400",
        "405",
        "409",
        "415",
        "500",
    }
    bad = document["components"]["responses"]["400"]
    assert "path" in bad["description"]
    schema = bad["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}
    error_item = document["components"]["schemas"]["ErrorItem"]
    assert error_item["required"] == ["message"] and "path" in error_item["properties"]


def test_pagination_parameters_have_the_configured_bounds(make_app: AppFactory) -> None:
    app = _app(make_app, CST_API_DEFAULT_PAGE_SIZE="10", CST_API_MAX_PAGE_SIZE="40")
    document = build_document(app)
    get = document["paths"]["/items"]["get"]
    params = {p["name"]: p["schema"] for p in get["parameters"] if p["in"] == "query"}
    assert params["limit"] == {"type": "integer", "minimum": 1, "maximum": 40, "default": 10}
    assert params["offset"]["minimum"] == 0
    assert set(document["paths"]["/items/by-cursor"]["get"]["parameters"][1]) >= {"name", "in"}
    keyset = {p["name"] for p in document["paths"]["/items/by-cursor"]["get"]["parameters"]} - {
        "X-Operation-ID"
    }
    assert keyset == {"cursor", "limit"}
    response = get["responses"]["200"]
    assert "Link" in response["headers"]
    meta = response["content"]["application/json"]["schema"]["properties"]["meta"]
    assert meta["required"] == ["operation_id", "pagination"]
    pagination = document["components"]["schemas"]["PaginationMeta"]
    assert pagination["required"] == ["next", "prev"]
    # The POST of the same resource is not paginated.
    assert "Link" not in document["paths"]["/items"]["post"]["responses"]["201"]["headers"]


def test_reqparse_arguments_become_query_parameters_and_body_fields(
    document: dict[str, Any],
) -> None:
    query = {
        p["name"]: p
        for p in document["paths"]["/search"]["get"]["parameters"]
        if p["in"] == "query"
    }
    text = {"type": "string", "pattern": NUL_FREE_PATTERN}  # CST_REFUSE_NUL, on by default
    assert query["term"]["required"] is True and query["term"]["schema"] == text
    assert query["page"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 50}
    assert query["exact"]["schema"] == {"type": "boolean"}
    assert query["colour"]["schema"] == {"type": "string", "enum": ["red", "blue"]}
    assert query["tag"]["schema"] == {"type": "array", "items": text}
    body = document["paths"]["/search"]["put"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {
        "type": "object",
        "properties": {"label": text, "weight": {"type": "number"}},
        "required": ["label"],
    }


def test_a_typed_body_model_is_the_request_body(document: dict[str, Any]) -> None:
    body = document["paths"]["/items"]["post"]["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ItemIn"}
    quantity = document["components"]["schemas"]["ItemIn"]["properties"]["quantity"]
    assert (quantity["minimum"], quantity["maximum"]) == (0, 10)


def test_status_is_documented_with_the_health_body(document: dict[str, Any]) -> None:
    status = document["paths"]["/status"]["get"]
    for code in ("200", "503"):
        schema = status["responses"][code]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/HealthBody"}
    assert document["components"]["schemas"]["HealthBody"]["required"] == ["name", "version"]


def test_a_response_object_is_documented_without_a_body_schema(document: dict[str, Any]) -> None:
    assert "content" not in document["paths"]["/raw/{name}/{rest}"]["get"]["responses"]["200"]


def test_an_annotation_that_does_not_resolve_names_the_method(make_app: AppFactory) -> None:
    app = make_app()
    ChassisApi(app).add_resource(Broken, "/broken")
    with pytest.raises(OpenAPIError, match=r"Broken\.get: its annotations do not resolve"):
        build_document(app)


def test_type_adapter_accepts_typing_typeddicts_with_not_required_keys() -> None:
    assert type_adapter(ItemJson).validate_python({"id": 1, "name": "a", "colour": "red"}) == {
        "id": 1,
        "name": "a",
        "colour": Colour.RED,
    }


# -- the decorators at run time ------------------------------------------------------------


def test_with_body_passes_the_validated_model(app: Flask) -> None:
    response = app.test_client().post("/items", json={"name": "box", "quantity": 3})
    assert response.status_code == 201
    assert response.get_json()["data"] == {"id": 1, "name": "box", "colour": "red"}


@pytest.mark.parametrize(
    ("body", "content_type", "paths"),
    [
        (b'{"name": "", "quantity": 11}', "application/json", ["name", "quantity"]),
        (b'{"quantity": 1}', "application/json", ["name"]),
        (b"[1]", "application/json", ["body"]),
        (b"{", "application/json", ["body"]),
        (b"[" * 5000 + b"]" * 5000, "application/json", ["body"]),
        (b'{"name": "box", "quantity": 1}', "text/plain", ["body"]),
    ],
)
def test_with_body_answers_a_400_naming_each_bad_field(
    app: Flask, body: bytes, content_type: str, paths: list[str]
) -> None:
    response = app.test_client().post("/items", data=body, content_type=content_type)
    assert response.status_code == 400
    errors = response.get_json()["errors"]
    assert [e["path"] for e in errors] == paths
    assert all("box" not in e["message"] for e in errors)  # values are not echoed


def test_with_args_parses_once_and_reports_each_bad_argument_by_path(app: Flask) -> None:
    client = app.test_client()
    ok = client.get("/search?term=lamp&page=3")
    assert (ok.status_code, ok.get_json()["data"]) == (200, {"term": "lamp", "page": "3"})
    bad = client.get("/search?page=99")
    assert bad.status_code == 400
    assert [e["path"] for e in bad.get_json()["errors"]] == ["term"]
    assert client.put("/search", json={"label": "x"}).status_code == 202


def test_decorated_async_methods_still_run_on_the_event_loop(make_app: AppFactory) -> None:
    class AsyncItems(ApiResource):
        @with_body(ItemIn)
        async def post(self, item: ItemIn) -> Created[str]:
            return item.name, 201

    app = make_app()
    ChassisApi(app).add_resource(AsyncItems, "/async-items")
    assert inspect.iscoroutinefunction(AsyncItems.post)
    response = app.test_client().post("/async-items", json={"name": "a", "quantity": 1})
    assert (response.status_code, response.get_json()["data"]) == (201, "a")


# -- serving and export --------------------------------------------------------------------


def test_the_document_is_off_unless_enabled(make_app: AppFactory) -> None:
    app = make_app()
    client = app.test_client()
    assert client.get("/openapi.json").status_code == 404
    assert client.get("/docs").status_code == 404


def test_the_document_is_served_at_the_configured_path(make_app: AppFactory) -> None:
    app = _app(make_app, CST_OPENAPI_PATH="/api/schema.json", CST_OPENAPI_DOCS_PATH="off")
    client = app.test_client()
    response = client.get("/api/schema.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == json.loads(json.dumps(build_document(app)))
    assert client.get("/docs").status_code == 404


def test_the_docs_page_serves_swagger_ui_from_the_installed_package(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "/docs/assets/swagger-ui-bundle.js" in html and "//" not in html.replace("://", "")
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.data == (swagger_ui_assets() / "swagger-ui-bundle.js").read_bytes()
    bundle.close()
    init = client.get("/docs/assets/swagger-ui-init.js").get_data(as_text=True)
    assert 'url: "/openapi.json"' in init


@pytest.mark.parametrize("key", ["CST_OPENAPI_PATH", "CST_OPENAPI_DOCS_PATH"])
def test_a_bad_openapi_path_is_refused_at_start_up(make_app: AppFactory, key: str) -> None:
    with pytest.raises(ChassisConfigError, match=key):
        make_app(CST_OPENAPI_ENABLED=True, **{key: "/a b"})


@pytest.mark.slow
def test_python_m_export_writes_the_served_document(tmp_path: Path) -> None:
    output = tmp_path / "openapi.json"
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "cst_chassis.openapi", "examples.demo.app:create_app", "-o", output],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    exported = json.loads(output.read_text())
    validate(exported)
    assert exported["info"]["title"] == "cst-chassis-demo".title()
    assert set(exported["paths"]) >= {"/products", "/products/{product_id}", "/relay", "/status"}


def test_every_demo_operation_has_a_non_empty_success_schema(tmp_path: Path) -> None:
    from examples.demo.app import create_app

    app = create_app(f"sqlite:///{tmp_path / 'demo.db'}")
    document = build_document(app)
    validate(document)
    checked: list[tuple[str, str, str]] = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            successes = [code for code in operation["responses"] if code.startswith("2")]
            assert successes, (method, path)
            for code in successes:
                schema = operation["responses"][code]["content"]["application/json"]["schema"]
                data = schema["properties"]["data"] if path != "/status" else schema
                assert data not in ({}, None), (method, path, code)
                resolved = _resolve(document, data) if "$ref" in data else data
                assert resolved.get("type") or resolved.get("anyOf") or resolved.get("items")
                checked.append((method, path, code))
    assert len(checked) == 7


@pytest.mark.slow
def test_user_code_on_the_decorators_is_pyright_strict_clean(tmp_path: Path) -> None:
    # mypy --strict checks the same file as part of `make typecheck`.
    config = {
        "typeCheckingMode": "strict",
        "pythonVersion": "3.11",
        "stubPath": str(REPO / "typings"),
        "extraPaths": [str(REPO)],
    }
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(config))
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "pyright"),
            "--pythonpath",
            sys.executable,
            "-p",
            str(tmp_path / "pyrightconfig.json"),
            "--stats",
            str(REPO / "tests" / "type_check" / "test_openapi_types.py"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Total files checked: 1" in result.stdout, result.stdout
    assert "0 errors" in result.stdout
