"""ChassisApi: flask-restful's own errors enveloped; JSON output identical to flask-restful's."""

from __future__ import annotations

import flask_restful
import pytest
from flask import Flask, Response

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
