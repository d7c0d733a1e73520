"""Inputs bounded at the edge: integer path parameters, NUL, JSON Schema integers (issue 24, 4).

Each guide pattern (``<int:id>``, a plain ``str`` field, a query string) is served here over a
real table, on SQLite and on PostgreSQL: a request the document allows must never reach the
database and fail there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, current_app, request
from flask_restful import abort, reqparse
from pydantic import BaseModel, ConfigDict

from cst_chassis import ChassisApi, CstMicroChassis
from cst_chassis._inputs import INT32_MAX, INT64_MAX, INT64_MIN
from cst_chassis.openapi import build_document, with_args, with_body
from cst_chassis.resources import ApiResource
from tests.conftest import AppFactory, Database

metadata = sa.MetaData()
things = sa.Table(
    "things",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # 32-bit on PostgreSQL
    sa.Column("name", sa.Text, nullable=False),
)
big_things = sa.Table(
    "big_things", metadata, sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False)
)


class ThingIn(BaseModel):
    """A body as the guides declare it: strict JSON types, a plain ``str``."""

    model_config = ConfigDict(strict=True)

    id: int
    name: str


def _engine_of(app: Flask) -> sa.Engine:
    engine = app.extensions["test_engine"]
    assert isinstance(engine, sa.Engine)
    return engine


def _engine() -> sa.Engine:
    return _engine_of(current_app)


class Thing(ApiResource):
    """``<int32:thing_id>`` over a 32-bit column."""

    def get(self, thing_id: int) -> dict[str, Any]:
        with _engine().connect() as conn:
            row = conn.execute(sa.select(things).where(things.c.id == thing_id)).first()
        if row is None:
            abort(404, message="no such thing")
        return {"id": row.id, "name": row.name}


class BigThing(ApiResource):
    """``<int:thing_id>`` over a 64-bit column: the default bound is the column's."""

    def get(self, thing_id: int) -> int:
        with _engine().connect() as conn:
            found = conn.scalar(sa.select(big_things.c.id).where(big_things.c.id == thing_id))
        if found is None:
            abort(404, message="no such thing")
        return thing_id


class ThingByName(ApiResource):
    """``<name>``: a text path parameter used in a query."""

    def get(self, name: str) -> int:
        with _engine().connect() as conn:
            return conn.scalar(sa.select(sa.func.count()).where(things.c.name == name)) or 0


search = reqparse.RequestParser()
search.add_argument("q", location="args")


class Things(ApiResource):
    """``GET ?q=`` (reqparse) and ``POST`` (``with_body``) as the guides write them."""

    @with_args(search)
    def get(self, args: reqparse.Namespace) -> int:
        stmt = sa.select(sa.func.count()).select_from(things)
        if args.q is not None:
            stmt = stmt.where(things.c.name.contains(args.q))
        with _engine().connect() as conn:
            return conn.scalar(stmt) or 0

    @with_body(ThingIn)
    def post(self, thing: ThingIn) -> int:
        with _engine().begin() as conn:
            conn.execute(things.insert().values(id=thing.id, name=thing.name))
        return thing.id


class RawThings(ApiResource):
    """``POST`` reading ``request.get_json()`` by hand, as Flask-RESTful code does."""

    def post(self) -> int:
        body = request.get_json()
        with _engine().begin() as conn:
            conn.execute(things.insert().values(id=int(body["id"]), name=body["name"]))
        return int(body["id"])


def _add_routes(api: ChassisApi) -> None:
    api.add_resource(Thing, "/things/<int32:thing_id>")
    api.add_resource(BigThing, "/big-things/<int:thing_id>")
    api.add_resource(ThingByName, "/things/by-name/<name>")
    api.add_resource(Things, "/things")
    api.add_resource(RawThings, "/raw-things")


@pytest.fixture
def service(database: Database, make_app: AppFactory) -> Iterator[Flask]:
    """The resources above on the test database (SQLite, and PostgreSQL when configured)."""
    engine = database.engine()
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(things.insert().values(id=INT32_MAX, name="last"))
        conn.execute(big_things.insert().values(id=INT64_MAX))
    app = make_app()
    app.extensions["test_engine"] = engine
    _add_routes(ChassisApi(app))
    yield app


def _errors(response: Any) -> list[dict[str, Any]]:
    body = response.get_json()
    assert set(body) == {"meta", "errors"}, body
    errors: list[dict[str, Any]] = body["errors"]
    return errors


# -- integer path parameters ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/things/2147483648",  # one past a PostgreSQL integer
        "/things/9223372036854775808",
        "/big-things/9223372036854775808",  # one past a bigint (SQLite's INTEGER too)
        "/big-things/" + "9" * 40,
        "/big-things/" + "9" * 5000,
    ],
)
def test_an_integer_path_parameter_beyond_its_bound_is_a_404_envelope_not_a_500(
    service: Flask, path: str
) -> None:
    response = service.test_client().get(path)
    assert response.status_code == 404, response.get_data(as_text=True)
    assert _errors(response)


def test_the_largest_ids_in_range_reach_the_database(service: Flask) -> None:
    client = service.test_client()
    assert client.get(f"/things/{INT32_MAX}").get_json()["data"]["name"] == "last"
    assert client.get(f"/big-things/{INT64_MAX}").get_json()["data"] == INT64_MAX


def test_routes_added_before_init_app_are_bounded_too() -> None:
    app = Flask("early")
    api = ChassisApi(app)
    api.add_resource(BigThing, "/big-things/<int:thing_id>")
    api.add_resource(ThingByName, "/things/by-name/<name>")
    CstMicroChassis(app)
    client = app.test_client()
    assert client.get(f"/big-things/{INT64_MAX + 1}").status_code == 404
    assert client.get("/big-things/" + "9" * 5000).status_code == 404
    response = client.get("/things/by-name/a%00b")
    assert response.status_code == 400
    assert _errors(response)[0]["path"] == "name"


class Echo(ApiResource):
    def get(self, **values: Any) -> dict[str, Any]:
        return values


@pytest.mark.parametrize(
    ("rule", "minimum", "maximum"),
    [
        ("<int:n>", 0, INT64_MAX),
        ("<int(signed=True):n>", INT64_MIN, INT64_MAX),
        ("<int32:n>", 0, INT32_MAX),
        ("<int32(signed=True):n>", -(2**31), INT32_MAX),
        ("<int(max=2147483647):n>", 0, INT32_MAX),
        ("<int(min=10, max=99):n>", 10, 99),
    ],
)
def test_the_document_shows_each_integer_bound_and_the_route_enforces_it(
    make_app: AppFactory, rule: str, minimum: int, maximum: int
) -> None:
    app = make_app()
    ChassisApi(app).add_resource(Echo, f"/echo/{rule}")
    (parameter,) = [
        p
        for p in build_document(app)["paths"]["/echo/{n}"]["get"]["parameters"]
        if p["in"] == "path"
    ]
    assert parameter["schema"] == {"type": "integer", "minimum": minimum, "maximum": maximum}
    client = app.test_client()
    assert client.get(f"/echo/{maximum}").get_json()["data"] == {"n": maximum}
    assert client.get(f"/echo/{maximum + 1}").status_code == 404
    if minimum < 0:
        assert client.get(f"/echo/{minimum}").get_json()["data"] == {"n": minimum}
        assert client.get(f"/echo/{minimum - 1}").status_code == 404


# -- NUL ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "error_path"),
    [
        ("GET", "/things/by-name/a%00b", None, "name"),
        ("GET", "/things?q=a%00b", None, "q"),
        ("POST", "/things", b'{"id": 7, "name": "a\\u0000b"}', "name"),
        ("POST", "/raw-things", b'{"id": 7, "name": "a\\u0000b"}', "name"),
        ("POST", "/raw-things", b'{"id": 7, "name": "x", "tags": [{"k": "\\u0000"}]}', "tags.0.k"),
    ],
)
def test_nul_is_a_400_naming_the_parameter_before_the_database_sees_it(
    service: Flask,
    capsys: pytest.CaptureFixture[str],
    method: str,
    path: str,
    body: bytes | None,
    error_path: str,
) -> None:
    response = service.test_client().open(
        path, method=method, data=body, content_type="application/json"
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert [e["path"] for e in _errors(response)] == [error_path]
    assert "\x00" not in response.get_data(as_text=True)
    logged = capsys.readouterr()
    assert "Traceback" not in logged.out + logged.err
    with _engine_of(service).connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(things)) == 1


def test_an_escaped_backslash_u0000_is_text_not_nul(service: Flask) -> None:
    response = service.test_client().post("/things", json={"id": 8, "name": "\\u0000"})
    assert response.status_code == 200, response.get_data(as_text=True)


def test_cst_refuse_nul_false_lets_nul_through(make_app: AppFactory) -> None:
    app = make_app(CST_REFUSE_NUL="false")

    class Raw(ApiResource):
        def post(self, name: str) -> dict[str, Any]:
            return {"name": name, "q": request.args["q"], "body": request.get_json()}

    ChassisApi(app).add_resource(Raw, "/raw/<name>")
    response = app.test_client().post("/raw/a%00?q=b%00", json={"c": "\x00"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["data"] == {"name": "a\x00", "q": "b\x00", "body": {"c": "\x00"}}


def test_a_second_read_of_request_args_refuses_nul_too(make_app: AppFactory) -> None:
    app = make_app()
    seen: list[str] = []

    class Twice(ApiResource):
        def get(self) -> None:
            for _ in range(2):
                try:
                    request.args.get("q")
                except Exception as exc:  # the point: each read raises
                    seen.append(type(exc).__name__)

    ChassisApi(app).add_resource(Twice, "/twice")
    app.test_client().get("/twice?q=%00")
    assert seen == ["BadRequest", "BadRequest"]


# -- JSON Schema integers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"), [(b"18680.0", 18680), (b"1.868e4", 18680), (b"18680", 18680)]
)
def test_a_whole_number_written_as_a_float_is_an_integer(
    service: Flask, raw: bytes, stored: int
) -> None:
    body = b'{"id": ' + raw + b', "name": "lamp"}'
    response = service.test_client().post("/things", data=body, content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["data"] == stored


@pytest.mark.parametrize("raw", [b"18680.5", b'"18680"', b"true", b"1e400"])
def test_what_json_schema_does_not_call_an_integer_is_refused(service: Flask, raw: bytes) -> None:
    body = b'{"id": ' + raw + b', "name": "lamp"}'
    response = service.test_client().post("/things", data=body, content_type="application/json")
    assert response.status_code == 400
    assert [e["path"] for e in _errors(response)] == ["id"]


def _patterns_accept(schema: dict[str, Any], text: str) -> bool:
    # JSON Schema's "pattern" (a search, not a full match), here and under "allOf".
    patterns = [schema.get("pattern")] + [s.get("pattern") for s in schema.get("allOf", [])]
    return all(re.search(p, text) for p in patterns if p is not None)


@pytest.mark.parametrize("refuse", [True, False])
def test_the_document_says_which_strings_refuse_nul(make_app: AppFactory, refuse: bool) -> None:
    # A request the document allows must be accepted: with NUL refused, it says so.
    app = make_app(CST_REFUSE_NUL=str(refuse).lower())
    api = ChassisApi(app)
    api.add_resource(Things, "/things")
    api.add_resource(ThingByName, "/things/by-name/<name>")
    document = build_document(app)
    body_name = document["components"]["schemas"]["ThingIn"]["properties"]["name"]
    (query,) = [p for p in document["paths"]["/things"]["get"]["parameters"] if p["in"] == "query"]
    (path,) = [
        p
        for p in document["paths"]["/things/by-name/{name}"]["get"]["parameters"]
        if p["in"] == "path"
    ]
    for schema in (body_name, query["schema"], path["schema"]):
        assert _patterns_accept(schema, "a\x00b") is not refuse, schema
        assert _patterns_accept(schema, "ab")
    # Responses are not requests: their strings are described as before.
    assert "pattern" not in str(document["components"]["schemas"].get("ErrorItem", {}))
