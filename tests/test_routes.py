"""A chassis endpoint and an app route on one path and method: a start-up error, never a shadow.

Werkzeug answers with the rule registered first, so before this check zou's own ``/status``
silently answered the chassis's body. Every chassis endpoint, both orders (app route before or
after ``init_app``), and each way an app registers a route.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import flask_restful
import pytest
from flask import Blueprint, Flask
from werkzeug.routing import Rule

from cst_chassis import ChassisApi, CstMicroChassis, RouteCollisionError
from cst_chassis.routes import CHASSIS_ENDPOINTS

# (chassis endpoint name, its default path, the key that moves it, config that switches it on)
ENDPOINTS = [
    ("cst_chassis_health", "/status", "CST_HEALTH_CHECK_ENDPOINT", {}),
    ("cst_chassis_liveness", "/livez", "CST_LIVENESS_ENDPOINT", {}),
    ("cst_chassis_readiness", "/readyz", "CST_READINESS_ENDPOINT", {}),
    (
        "cst_chassis_metrics",
        "/metrics",
        "CST_METRICS_ENDPOINT",
        {"CST_METRICS_ENDPOINT": "/metrics"},
    ),
    ("cst_openapi_document", "/openapi.json", "CST_OPENAPI_PATH", {"CST_OPENAPI_ENABLED": True}),
    ("cst_openapi_docs", "/docs", "CST_OPENAPI_DOCS_PATH", {"CST_OPENAPI_ENABLED": True}),
]
WAYS = [
    "add_url_rule",
    "route",
    "blueprint",
    "flask_restful_api",
    "chassis_api",
    "api_on_blueprint",
]


class Mine(flask_restful.Resource):
    def get(self) -> dict[str, str]:
        return {"mine": "yes"}


def mine() -> dict[str, str]:
    return {"mine": "yes"}


def register(app: Flask, way: str, path: str, methods: tuple[str, ...] = ("GET",)) -> None:
    """Register the app's own route on ``path`` the way ``way`` says (views answer ``mine``)."""
    if way == "add_url_rule":
        app.add_url_rule(path, "mine", mine, methods=list(methods))
    elif way == "route":
        app.route(path, methods=list(methods))(mine)
    elif way == "blueprint":
        blueprint = Blueprint("own", __name__)
        blueprint.add_url_rule(path, "mine", mine, methods=list(methods))
        app.register_blueprint(blueprint)
    elif way == "flask_restful_api":
        flask_restful.Api(app).add_resource(Mine, path)
    elif way == "chassis_api":
        ChassisApi(app).add_resource(Mine, path)
    else:  # zou's way: one flask_restful.Api per blueprint, the blueprint registered afterwards
        blueprint = Blueprint("own", __name__)
        flask_restful.Api(blueprint).add_resource(Mine, path)
        app.register_blueprint(blueprint)


def app_with(config: dict[str, object]) -> Flask:
    app = Flask("routes")
    app.config.update(config)
    return app


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize(("endpoint", "path", "key", "config"), ENDPOINTS)
@pytest.mark.parametrize("order", ["app_first", "chassis_first"])
def test_a_chassis_endpoint_and_an_app_route_on_one_path_fail_at_start_up(
    order: str, endpoint: str, path: str, key: str, config: dict[str, object], way: str
) -> None:
    app = app_with(config)
    steps: list[Callable[[], None]] = [
        lambda: register(app, way, path),
        lambda: CstMicroChassis().init_app(app),
    ]
    if order == "chassis_first":
        steps.reverse()
    steps[0]()
    with pytest.raises(RouteCollisionError) as caught:
        steps[1]()
    message = str(caught.value)
    assert f"route collision on {path} (GET, HEAD)" in message
    assert repr(endpoint) in message  # the chassis's endpoint
    assert "mine" in message or "'own." in message  # the app's endpoint (mine, own.mine, own.mine)
    assert f"with {key} (e.g. {key}=/chassis{path})" in message


def test_the_message_names_the_apps_endpoint_exactly() -> None:
    app = Flask("routes")
    CstMicroChassis().init_app(app)
    with pytest.raises(RouteCollisionError, match=r"the app's endpoint 'health_of_my_own'"):
        app.add_url_rule("/status", "health_of_my_own", mine)


def test_moving_the_chassis_endpoint_with_its_key_lets_both_answer() -> None:
    app = app_with({"CST_HEALTH_CHECK_ENDPOINT": "/chassis/status"})
    register(app, "api_on_blueprint", "/status")
    CstMicroChassis().init_app(app)
    client = app.test_client()
    assert client.get("/status").get_json() == {"mine": "yes"}
    assert client.get("/chassis/status").status_code == 200


def test_a_chassis_endpoint_turned_off_leaves_the_path_to_the_app() -> None:
    app = app_with({"CST_LIVENESS_ENDPOINT": "off"})
    CstMicroChassis().init_app(app)
    register(app, "route", "/livez")
    assert app.test_client().get("/livez").get_json() == {"mine": "yes"}


@pytest.mark.parametrize("order", ["app_first", "chassis_first"])
def test_other_methods_on_the_same_path_are_no_collision(order: str) -> None:
    app = Flask("routes")
    if order == "chassis_first":
        CstMicroChassis().init_app(app)
    register(app, "add_url_rule", "/status", methods=("POST",))
    if order == "app_first":
        CstMicroChassis().init_app(app)
    client = app.test_client()
    assert client.post("/status").get_json() == {"mine": "yes"}
    assert client.get("/status").status_code == 200


def test_a_route_for_every_method_collides() -> None:
    app = Flask("routes")
    CstMicroChassis().init_app(app)
    blueprint = Blueprint("own", __name__)
    # A rule without a method list answers every method (a Rule's methods=None).
    blueprint.record(lambda state: state.app.url_map.add(Rule("/readyz", endpoint="any")))
    with pytest.raises(RouteCollisionError, match=r"/readyz \(GET, HEAD\)"):
        app.register_blueprint(blueprint)


@pytest.mark.parametrize("path", ["/status/", "/status/<name>", "/<name>", "/api/status"])
def test_neighbouring_paths_are_no_collision(path: str) -> None:
    app = Flask("routes")
    CstMicroChassis().init_app(app)
    app.add_url_rule(path, "mine", mine)
    assert app.test_client().get("/status").status_code == 200


def test_app_routes_that_collide_with_each_other_are_left_to_flask() -> None:
    # Only chassis-versus-app pairs are the chassis's business.
    app = Flask("routes")
    CstMicroChassis().init_app(app)
    app.add_url_rule("/a", "a", mine)
    app.add_url_rule("/a", "b", mine)
    assert app.test_client().get("/a").get_json() == {"mine": "yes"}


def test_the_migration_guide_lists_every_route_the_chassis_adds() -> None:
    guide = (Path(__file__).resolve().parents[1] / "docs/guides/migrating.md").read_text()
    section = guide.split("## What a swap adds to an app", 1)[1].split("\n## ", 1)[0]
    for key in set(CHASSIS_ENDPOINTS.values()):
        assert f"| `{key}`" in section or f"`{key}` (" in section, key
