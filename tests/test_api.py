"""ChassisApi: flask-restful's own errors enveloped; JSON output identical to flask-restful's."""

from __future__ import annotations

from collections import OrderedDict

import flask_restful
import pytest
from flask import Flask, Response
from flask.signals import got_request_exception

from cst_chassis import ChassisApi, CstMicroChassis
from cst_chassis.resources import ApiResource


class Item(ApiResource):
    def get(self) -> tuple[dict[str, object], int, dict[str, str]]:
        return {"b": 1, "a": [1, "x", None]}, 201, {"X-Extra": "yes"}


def _body(api_class: type[flask_restful.Api], accept: str | None, **config: object) -> bytes:
    app = Flask("api-test")
    app.config.update(config)
    CstMicroChassis(app)
    api = api_class(app)
    api.add_resource(Item, "/item")
    headers = {"X-Operation-ID": "fixed-id"}
    if accept is not None:
        headers["Accept"] = accept
    response = app.test_client().get("/item", headers=headers)
    assert response.status_code == 201
    assert response.headers["X-Extra"] == "yes"
    assert response.headers["Content-Type"] == "application/json"
    body: bytes = response.data
    return body


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "text/html"])
@pytest.mark.parametrize(
    "config",
    [{}, {"DEBUG": True}, {"RESTFUL_JSON": {"separators": (",", ":"), "sort_keys": True}}],
)
def test_json_body_is_byte_identical_to_flask_restful(
    accept: str | None, config: dict[str, object]
) -> None:
    # The fast path must not change a byte of what flask-restful would have sent.
    assert _body(ChassisApi, accept, **config) == _body(flask_restful.Api, accept, **config)


def test_custom_representation_is_still_negotiated() -> None:
    app = Flask("api-test")
    api = ChassisApi(app)

    @api.representation("application/xml")
    def xml(data: object, code: int, headers: object) -> Response:
        return app.response_class("<xml/>", status=code)

    api.add_resource(Item, "/item")
    response = app.test_client().get("/item", headers={"Accept": "application/xml"})
    assert response.data == b"<xml/>"


def test_not_acceptable_is_an_enveloped_json_error() -> None:
    app = Flask("api-test")
    api = ChassisApi(app, default_mediatype=None)
    api.add_resource(Item, "/item")
    response = app.test_client().get("/item", headers={"Accept": "image/png"})
    assert response.status_code == 406
    assert set(response.get_json()) == {"meta", "errors"}


def test_catch_all_404s_are_enveloped() -> None:
    app = Flask("api-test")
    ChassisApi(app, catch_all_404s=True)
    response = app.test_client().get("/no/such/route")
    assert response.status_code == 404
    assert set(response.get_json()) == {"meta", "errors"}


# --- plain flask_restful.Resource under ChassisApi: flask-restful's behaviour, enveloped bodies --


class Teapot(Exception):
    pass


class Plain(flask_restful.Resource):
    def get(self) -> None:
        raise Teapot()

    def put(self) -> None:
        flask_restful.abort(401, message="who are you?")

    def post(self) -> None:
        raise ValueError("internal detail")

    def delete(self) -> None:
        flask_restful.abort(404, message="gone", code="G1")


def _plain_app(**config: object) -> Flask:
    app = Flask("api-test")
    app.config.update(config)
    CstMicroChassis(app)
    api = ChassisApi(
        app,
        errors={"Teapot": {"message": "short and stout", "status": 418}},
        serve_challenge_on_401=True,
    )
    api.add_resource(Plain, "/plain")
    return app


def test_plain_resource_errors_are_enveloped_with_flask_restful_features() -> None:
    app = _plain_app()
    client = app.test_client()
    seen: list[str] = []

    def record(sender: Flask, exception: BaseException) -> None:
        seen.append(type(exception).__name__)

    with got_request_exception.connected_to(record, app):
        teapot = client.get("/plain")
        unauthorized = client.put("/plain")
        gone = client.delete("/plain")
        crashed = client.post("/plain")
    assert (teapot.status_code, teapot.get_json()["errors"]) == (
        418,
        [{"message": "short and stout"}],
    )
    assert unauthorized.status_code == 401
    assert unauthorized.headers["WWW-Authenticate"] == 'Basic realm="flask-restful"'
    assert gone.get_json()["errors"] == [{"message": "gone", "code": "G1"}]
    assert crashed.status_code == 500
    assert crashed.get_json()["errors"] == [{"message": "Internal server error"}]
    assert "internal detail" not in crashed.get_data(as_text=True)
    assert seen == ["Teapot", "Unauthorized", "NotFound", "ValueError"]


@pytest.mark.parametrize(
    "config", [{"TESTING": True}, {"DEBUG": True}, {"PROPAGATE_EXCEPTIONS": True}]
)
def test_plain_resource_exceptions_propagate_as_in_flask_restful(config: dict[str, object]) -> None:
    client = _plain_app(**config).test_client()
    with pytest.raises(ValueError, match="internal detail"):
        client.post("/plain")
    assert client.delete("/plain").status_code == 404  # HTTP errors never propagate


def test_api_resource_never_propagates() -> None:
    class Crash(ApiResource):
        def get(self) -> None:
            raise ValueError("boom")

    app = Flask("api-test")
    app.config["TESTING"] = True
    CstMicroChassis(app)
    ChassisApi(app).add_resource(Crash, "/crash")
    response = app.test_client().get("/crash")
    assert response.status_code == 500
    assert response.get_json()["errors"] == [{"message": "Internal server error"}]


def _xml_only_app() -> Flask:
    app = Flask("api-test")
    CstMicroChassis(app)
    api = ChassisApi(app, default_mediatype="application/xml")
    api.representations = OrderedDict()

    @api.representation("application/xml")
    def xml(data: object, code: int, headers: object) -> Response:
        response = app.response_class(f"<body>{data!r}</body>", status=code)
        response.headers.extend(headers or {})  # type: ignore[arg-type]  # flask-restful passes Headers or a list
        return response

    class Missing(flask_restful.Resource):
        def get(self) -> None:
            flask_restful.abort(404, message="no such thing")

    api.add_resource(Missing, "/missing")
    return app


def test_api_without_json_renders_errors_in_its_own_representation() -> None:
    response = _xml_only_app().test_client().get("/missing", headers={"Accept": "application/xml"})
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/xml"
    assert "no such thing" in response.get_data(as_text=True)


def test_api_without_json_falls_back_like_flask_restful_but_never_fails() -> None:
    app = _xml_only_app()
    # The client accepts nothing the API has: its default (XML), as flask-restful negotiates.
    xml = app.test_client().get("/missing", headers={"Accept": "image/png"})
    assert (xml.status_code, xml.headers["Content-Type"]) == (404, "application/xml")


def test_api_whose_default_has_no_representation_answers_json() -> None:
    # flask-restful raises InternalServerError inside handle_error here (Flask's HTML page).
    app = Flask("api-test")
    CstMicroChassis(app)
    api = ChassisApi(app)
    api.representations = OrderedDict()

    class Missing(flask_restful.Resource):
        def get(self) -> None:
            flask_restful.abort(404, message="no such thing")

    api.add_resource(Missing, "/missing")
    response = app.test_client().get("/missing", headers={"Accept": "text/html"})
    assert (response.status_code, response.headers["Content-Type"]) == (404, "application/json")
    assert response.get_json()["errors"] == [{"message": "no such thing"}]
