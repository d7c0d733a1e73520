"""ApiResource: the envelope for every return form, errors, aborts, 500s, async methods."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import flask_restful
import pytest
from flask import Blueprint, Flask, Response, make_response
from flask.signals import got_request_exception
from flask_restful import abort, reqparse
from werkzeug.exceptions import Conflict
from werkzeug.wrappers import Response as ResponseBase

from cst_chassis import (
    ChassisApi,
    CstMicroChassis,
    InvalidCursorError,
    InvalidPaginationError,
    get_operation_id,
)
from cst_chassis.resources import ApiPaginatedMixin, ApiResource


def _client_for(app: Flask, resource: type[ApiResource], url: str = "/r") -> Any:
    api = ChassisApi(app)
    api.add_resource(resource, url)
    return app.test_client()


@pytest.mark.parametrize(
    ("returned", "status", "data"),
    [
        ("It works for 123", 200, "It works for 123"),
        (("created", 201), 201, "created"),
        ([1, 2, 3], 200, [1, 2, 3]),
        ([[1, 2], 3], 200, [[1, 2], 3]),
        ({"a": 1}, 200, {"a": 1}),
        (None, 200, None),
        ((["x", "y"], 202), 202, ["x", "y"]),
    ],
)
def test_every_return_form_is_enveloped_with_its_status(
    app: Flask, returned: Any, status: int, data: Any
) -> None:
    class R(ApiResource):
        def get(self) -> Any:
            return returned

    response = _client_for(app, R).get("/r", headers={"X-Operation-ID": "op-r"})
    assert response.status_code == status
    assert response.get_json() == {"meta": {"operation_id": "op-r"}, "data": data}


def test_three_tuple_keeps_status_and_headers(app: Flask) -> None:
    class R(ApiResource):
        def post(self) -> tuple[dict[str, int], int, dict[str, str]]:
            return {"id": 7}, 201, {"Location": "/r/7"}

    response = _client_for(app, R).post("/r")
    assert response.status_code == 201
    assert response.headers["Location"].endswith("/r/7")
    assert response.get_json()["data"] == {"id": 7}


def test_body_operation_id_matches_the_header(app: Flask) -> None:
    class R(ApiResource):
        def get(self) -> str:
            return "x"

    response = _client_for(app, R).get("/r")
    assert response.get_json()["meta"]["operation_id"] == response.headers["X-Operation-ID"]


def test_add_error_gives_400_with_errors_and_no_data(app: Flask) -> None:
    class R(ApiResource):
        def post(self) -> tuple[str, int]:
            self.add_error("name is required", path="name")
            self.add_error("something else")
            return "ignored", 200

    response = _client_for(app, R).post("/r", headers={"X-Operation-ID": "op-e"})
    assert response.status_code == 400
    assert response.get_json() == {
        "meta": {"operation_id": "op-e"},
        "errors": [{"message": "name is required", "path": "name"}, {"message": "something else"}],
    }


def test_add_error_keeps_an_explicit_error_status(app: Flask) -> None:
    class R(ApiResource):
        def post(self) -> tuple[None, int]:
            self.add_error("already exists")
            return None, 409

    assert _client_for(app, R).post("/r").status_code == 409


def test_errors_never_carry_over_to_the_next_request(app: Flask) -> None:
    class R(ApiResource):
        init_every_request = False  # the same instance serves every request

        def get(self) -> str:
            if flask_request_arg() == "bad":
                self.add_error("bad input", path="q")
            return "fine"

    client = _client_for(app, R)
    assert client.get("/r?q=bad").status_code == 400
    ok = client.get("/r?q=good")
    assert ok.status_code == 200
    assert ok.get_json()["data"] == "fine"


def flask_request_arg() -> str | None:
    from flask import request

    return request.args.get("q")


@pytest.mark.parametrize(
    ("raiser", "status", "message"),
    [
        (lambda: abort(404), 404, None),
        (lambda: abort(404, message="Product 9 not found"), 404, "Product 9 not found"),
        (lambda: flask_abort(403), 403, None),
        (lambda: (_ for _ in ()).throw(Conflict("taken")), 409, "taken"),
    ],
)
def test_http_exceptions_become_error_envelopes(
    app: Flask, raiser: Callable[[], None], status: int, message: str | None
) -> None:
    class R(ApiResource):
        def get(self) -> None:
            raiser()

    response = _client_for(app, R).get("/r")
    body = response.get_json()
    assert response.status_code == status
    assert set(body) == {"meta", "errors"}
    assert len(body["errors"]) == 1
    assert isinstance(body["errors"][0]["message"], str) and body["errors"][0]["message"]
    if message is not None:
        assert body["errors"][0]["message"] == message


def flask_abort(code: int) -> None:
    from flask import abort as abort_

    abort_(code)


def test_unexpected_exception_is_a_generic_500_logged_with_traceback(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    class R(ApiResource):
        def get(self) -> None:
            raise KeyError("secret-internal-detail")

    capsys.readouterr()
    response = _client_for(app, R).get("/r", headers={"X-Operation-ID": "op-500"})
    text = response.get_data(as_text=True)
    assert response.status_code == 500
    assert response.get_json() == {
        "meta": {"operation_id": "op-500"},
        "errors": [{"message": "Internal server error"}],
    }
    assert "secret" not in text and "KeyError" not in text and "Traceback" not in text
    log = capsys.readouterr().out
    assert "[ERROR][op-500] cst_chassis: Unhandled exception on GET /r" in log
    assert "Traceback" in log and "KeyError: 'secret-internal-detail'" in log


def test_method_not_allowed_is_enveloped_by_chassis_api(app: Flask) -> None:
    class R(ApiResource):
        def get(self) -> str:
            return "x"

    response = _client_for(app, R).delete("/r")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert set(response.get_json()) == {"meta", "errors"}


def test_unserialisable_result_is_a_500_envelope_with_chassis_api(app: Flask) -> None:
    class R(ApiResource):
        def get(self) -> object:
            return object()

    response = _client_for(app, R).get("/r")
    assert response.status_code == 500
    assert response.get_json()["errors"] == [{"message": "Internal server error"}]


def test_plain_flask_restful_api_works_too(app: Flask) -> None:
    class R(ApiResource):
        def get(self) -> str:
            return "plain"

    api = flask_restful.Api(app)
    api.add_resource(R, "/plain")
    assert app.test_client().get("/plain").get_json()["data"] == "plain"


def test_response_objects_pass_through_untouched(app: Flask) -> None:
    class R(ApiResource):
        def get(self) -> Response:
            return make_response("raw text", 202)

    response = _client_for(app, R).get("/r")
    assert (response.status_code, response.get_data(as_text=True)) == (202, "raw text")


def test_head_is_served_by_get(app: Flask) -> None:
    class R(ApiResource):
        def get(self) -> str:
            return "x"

    assert _client_for(app, R).head("/r").status_code == 200


def test_async_methods_are_awaited(app: Flask) -> None:
    class R(ApiResource):
        async def get(self) -> dict[str, str | None]:
            await asyncio.sleep(0)
            return {"op": get_operation_id()}

        async def post(self) -> tuple[str, int]:
            self.add_error("nope", path="body")
            return "x", 200

    client = _client_for(app, R)
    response = client.get("/r", headers={"X-Operation-ID": "op-a"})
    assert response.get_json() == {"meta": {"operation_id": "op-a"}, "data": {"op": "op-a"}}
    assert client.post("/r").status_code == 400


def test_async_methods_work_under_sync_method_decorators(app: Flask) -> None:
    calls: list[str] = []

    def audited(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append("audited")
            return func(*args, **kwargs)

        return wrapper

    class R(ApiResource):
        method_decorators = [audited]

        async def get(self) -> str:
            await asyncio.sleep(0)
            return "decorated async"

    response = _client_for(app, R).get("/r")
    assert response.get_json()["data"] == "decorated async"
    assert calls == ["audited"]


def test_method_decorators_mapping_applies_per_method(app: Flask) -> None:
    def deny(func: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            abort(401, message="login required")

        return wrapper

    class R(ApiResource):
        method_decorators = {"post": [deny]}

        def get(self) -> str:
            return "open"

        def post(self) -> str:
            return "secret"

    client = _client_for(app, R)
    assert client.get("/r").status_code == 200
    denied = client.post("/r")
    assert denied.status_code == 401
    assert denied.get_json()["errors"] == [{"message": "login required"}]


def test_async_exception_becomes_a_500_envelope(app: Flask) -> None:
    class R(ApiResource):
        async def get(self) -> None:
            raise RuntimeError("async secret")

    response = _client_for(app, R).get("/r")
    assert response.status_code == 500
    assert "async secret" not in response.get_data(as_text=True)


def test_resources_work_on_blueprints_with_prefix(app: Flask) -> None:
    blueprint = Blueprint("v1", __name__, url_prefix="/v1")
    api = ChassisApi(blueprint)

    class R(ApiResource):
        def get(self, item_id: int) -> dict[str, int]:
            return {"id": item_id}

    api.add_resource(R, "/items/<int:item_id>")
    app.register_blueprint(blueprint)
    assert app.test_client().get("/v1/items/5").get_json()["data"] == {"id": 5}


def test_resource_class_kwargs_reach_the_constructor(app: Flask) -> None:
    class R(ApiResource):
        def __init__(self, greeting: str) -> None:
            super().__init__()
            self.greeting = greeting

        def get(self) -> str:
            return self.greeting

    api = ChassisApi(app)
    api.add_resource(R, "/greet", resource_class_kwargs={"greeting": "hi"})
    assert app.test_client().get("/greet").get_json()["data"] == "hi"


def test_api_representations_are_honoured(app: Flask) -> None:
    api = ChassisApi(app)

    @api.representation("text/csv")
    def csv(data: Any, code: int, headers: Any) -> Response:
        response = make_response(f"op,{data['data']}", code)
        response.headers.extend(headers or {})
        return response

    class R(ApiResource):
        def get(self) -> str:
            return "v"

    api.add_resource(R, "/csv")
    response = app.test_client().get("/csv", headers={"Accept": "text/csv"})
    assert response.get_data(as_text=True) == "op,v"


def test_without_init_app_the_body_still_has_an_operation_id() -> None:
    bare = Flask("bare")

    class R(ApiResource):
        def get(self) -> str:
            return "x"

    body = _client_for(bare, R).get("/r").get_json()
    assert isinstance(body["meta"]["operation_id"], str)
    assert body["data"] == "x"


# --- error details: reqparse, abort extras, pagination errors, decorators ----------------------


@pytest.mark.parametrize("api_class", [ChassisApi, flask_restful.Api])
def test_reqparse_errors_become_one_item_per_argument(
    app: Flask, api_class: type[flask_restful.Api]
) -> None:
    class R(ApiResource):
        def get(self) -> str:
            parser = reqparse.RequestParser()
            parser.add_argument("name", required=True, location="args")
            return str(parser.parse_args()["name"])

    api_class(app).add_resource(R, "/r")
    response = app.test_client().get("/r")
    assert response.status_code == 400
    assert response.get_json()["errors"] == [
        {"message": "Missing required parameter in the query string", "path": "name"}
    ]


@pytest.mark.parametrize("api_class", [ChassisApi, flask_restful.Api])
def test_bundled_reqparse_errors_name_every_argument(
    app: Flask, api_class: type[flask_restful.Api]
) -> None:
    class R(ApiResource):
        def get(self) -> str:
            parser = reqparse.RequestParser(bundle_errors=True)
            parser.add_argument("name", required=True, location="args")
            parser.add_argument("age", type=int, location="args", help="age: {error_msg}")
            return str(parser.parse_args())

    api_class(app).add_resource(R, "/r")
    response = app.test_client().get("/r?age=old")
    assert response.status_code == 400
    errors = sorted(response.get_json()["errors"], key=lambda item: item["path"])
    assert [item["path"] for item in errors] == ["age", "name"]
    assert errors[0]["message"].startswith("age: invalid literal for int()")
    assert errors[1]["message"] == "Missing required parameter in the query string"


@pytest.mark.parametrize(
    ("kwargs", "items"),
    [
        ({"message": "conflict", "code": "X1"}, [{"message": "conflict", "code": "X1"}]),
        ({"message": "bad", "path": "name"}, [{"message": "bad", "path": "name"}]),
        (
            {"message": ["first", {"message": "second", "path": "b"}]},
            [{"message": "first"}, {"message": "second", "path": "b"}],
        ),
        ({"message": {"a": "is wrong"}}, [{"message": "is wrong", "path": "a"}]),
        ({"code": "X2"}, [{"message": Conflict.description, "code": "X2"}]),
    ],
)
def test_abort_details_reach_the_error_item(
    app: Flask, kwargs: dict[str, Any], items: list[dict[str, Any]]
) -> None:
    class R(ApiResource):
        def get(self) -> None:
            abort(409, **kwargs)

    response = _client_for(app, R).get("/r")
    assert response.status_code == 409
    assert response.get_json()["errors"] == items


def test_abort_extra_that_json_cannot_hold_keeps_the_message(app: Flask) -> None:
    class R(ApiResource):
        def get(self) -> None:
            abort(422, message="unprocessable", detail=object())

    response = _client_for(app, R).get("/r")
    assert response.status_code == 422
    assert response.get_json()["errors"] == [{"message": "unprocessable"}]


def test_invalid_pagination_error_from_the_hook_is_a_400_with_path(app: Flask) -> None:
    class R(ApiResource):
        def _before_method(self) -> None:
            raise InvalidPaginationError("limit", "limit must be an integer from 1 to 100")

        def get(self) -> str:
            raise AssertionError("the method must not run")

    response = _client_for(app, R).get("/r?limit=0")
    assert response.status_code == 400
    assert response.get_json()["errors"] == [
        {"message": "limit must be an integer from 1 to 100", "path": "limit"}
    ]


def test_invalid_cursor_error_in_the_method_is_a_400_with_path(app: Flask) -> None:
    class R(ApiResource):
        def get(self) -> str:
            raise InvalidCursorError("The cursor is too long")

    response = _client_for(app, R).get("/r")
    assert response.status_code == 400
    assert response.get_json()["errors"] == [
        {"message": "The cursor is too long", "path": "cursor"}
    ]


def _require_token(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from flask import request

        if request.headers.get("Authorization") != "Bearer ok":
            abort(401, message="log in first")
        return func(*args, **kwargs)

    return wrapper


def test_auth_decorator_answers_before_the_pagination_checks(app: Flask) -> None:
    class Products(ApiPaginatedMixin, ApiResource):
        method_decorators = [_require_token]

        def get(self) -> list[int]:
            return []

    client = _client_for(app, Products)
    assert client.get("/r?limit=0").status_code == 401
    limited = client.get("/r?limit=0", headers={"Authorization": "Bearer ok"})
    assert limited.status_code == 400
    assert limited.get_json()["errors"][0]["path"] == "limit"


@pytest.mark.parametrize("api_class", [ChassisApi, flask_restful.Api])
def test_flask_restful_error_features_apply_to_api_resources(
    app: Flask, api_class: type[flask_restful.Api]
) -> None:
    class Teapot(Exception):
        pass

    class R(ApiResource):
        def get(self) -> None:
            raise Teapot()

        def delete(self) -> None:
            abort(401, message="who are you?")

    api = api_class(
        app,
        errors={"Teapot": {"message": "short and stout", "status": 418}},
        serve_challenge_on_401=True,
    )
    api.add_resource(R, "/r")
    client = app.test_client()
    seen: list[BaseException] = []

    def record(sender: Flask, exception: BaseException) -> None:
        seen.append(exception)

    with got_request_exception.connected_to(record, app):
        teapot = client.get("/r")
        unauthorized = client.delete("/r")
    assert teapot.status_code == 418
    assert teapot.get_json()["errors"] == [{"message": "short and stout"}]
    assert unauthorized.status_code == 401
    assert unauthorized.headers["WWW-Authenticate"] == 'Basic realm="flask-restful"'
    assert [type(e).__name__ for e in seen] == ["Teapot", "Unauthorized"]


def test_drop_in_path_sends_the_same_bytes_as_chassis_api() -> None:
    bodies = []
    for api_class in (ChassisApi, flask_restful.Api):
        app = Flask("drop-in")
        CstMicroChassis(app)

        class R(ApiResource):
            def get(self) -> tuple[dict[str, int], int, dict[str, str]]:
                return {"b": 2, "a": 1}, 201, {"X-A": "1"}

        api_class(app).add_resource(R, "/r")
        response = app.test_client().get("/r", headers={"X-Operation-ID": "same"})
        assert response.headers["X-A"] == "1"
        bodies.append((response.status_code, response.headers["Content-Type"], response.data))
    assert bodies[0] == bodies[1]


def test_an_api_that_overrides_make_response_still_sees_every_response(app: Flask) -> None:
    class TaggingApi(flask_restful.Api):
        def make_response(self, data: Any, *args: Any, **kwargs: Any) -> ResponseBase:
            response = super().make_response(data, *args, **kwargs)
            response.headers["X-Tagged"] = "yes"
            return response

    class R(ApiResource):
        def get(self) -> str:
            return "tagged"

    TaggingApi(app).add_resource(R, "/r")
    response = app.test_client().get("/r")
    assert (response.headers["X-Tagged"], response.get_json()["data"]) == ("yes", "tagged")
