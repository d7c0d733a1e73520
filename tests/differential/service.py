"""One small service, built on either cst-micro-chassis 0.1.0 or cst-chassis, and its answers.

Run as a script by tests/test_differential.py, once in the seed's own venv (Flask 1.1) with
``DIFF_PACKAGE=cst_micro_chassis`` and once in this project's venv with
``DIFF_PACKAGE=cst_chassis``. The code is the same for both, written as the seed's README
writes services (``flask_restful.Api``, ``ApiResource``, ``ApiPaginatedMixin`` on
Flask-SQLAlchemy); only the package name differs. It sends every request of ``REQUESTS``
through Flask's test client and prints one JSON object per request: status, body (JSON when it
parses, else the start of the text) and the headers a client reads.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any

from flask import Flask, request
from flask_restful import Api, abort, reqparse
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text

# Marks the result lines (the chassis logs to stdout too).
MARK = "DIFF-RESULT "
HEADERS = ["Content-Type", "Allow", "WWW-Authenticate", "X-Operation-ID", "Location"]

# (name, method, path, headers, body): the requests both services get.
REQUESTS: list[tuple[str, str, str, dict[str, str], bytes | None]] = [
    ("simple_with_status", "GET", "/simple/123", {}, None),
    ("simple_without_status", "GET", "/bare/123", {}, None),
    ("list_without_status", "GET", "/listing", {}, None),
    ("created_with_headers", "POST", "/simple/1", {}, None),
    ("add_error", "PUT", "/simple/1", {}, None),
    ("add_error_with_success_status", "PATCH", "/simple/1", {}, None),
    ("operation_id_header_sent", "GET", "/simple/9", {"X-Operation-ID": "client-op-1"}, None),
    ("abort_with_message", "GET", "/products/999", {}, None),
    ("abort_with_extra", "DELETE", "/products/1", {}, None),
    ("reqparse_missing_argument", "GET", "/search", {}, None),
    ("reqparse_ok", "GET", "/search?name=lamp", {}, None),
    ("unhandled_exception", "GET", "/crash", {}, None),
    ("method_not_allowed_on_resource", "DELETE", "/simple/1", {}, None),
    ("unknown_path", "GET", "/no/such/path", {}, None),
    ("converter_mismatch", "GET", "/products/abc", {}, None),
    ("status", "GET", "/status", {}, None),
    ("status_wrong_method", "POST", "/status", {}, None),
    ("page_default", "GET", "/products", {}, None),
    ("page_offset_limit", "GET", "/products?offset=2&limit=2", {}, None),
    ("page_last", "GET", "/products?offset=8&limit=5", {}, None),
    ("page_limit_zero", "GET", "/products?limit=0", {}, None),
    ("page_bad_offset", "GET", "/products?offset=abc", {}, None),
    ("page_limit_too_big", "GET", "/products?limit=101", {}, None),
    ("page_keeps_filters", "GET", "/products?q=a%20b&limit=3", {}, None),
    ("invalid_json_body", "POST", "/echo", {"Content-Type": "application/json"}, b"{nope"),
    ("valid_json_body", "POST", "/echo", {"Content-Type": "application/json"}, b'{"a": 1}'),
    (
        "body_over_one_mebibyte",
        "POST",
        "/echo",
        {"Content-Type": "application/json"},
        b'"' + b"x" * (1024 * 1024) + b'"',
    ),
]


def create_app(package: str, database: str) -> Flask:
    chassis_module: Any = importlib.import_module(package)
    resources: Any = importlib.import_module(f"{package}.resources")
    ApiResource: Any = resources.ApiResource
    ApiPaginatedMixin: Any = resources.ApiPaginatedMixin

    app = Flask("diff-service")
    app.config["SQLALCHEMY_DATABASE_URI"] = database
    app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
    # The migration guide's setting that keeps the seed's public /status body (the seed ignores it).
    app.config["CST_HEALTH_DETAILS"] = "always"
    db = SQLAlchemy()
    db.init_app(app)
    chassis_module.CstMicroChassis().init_app(app, db)
    api = Api(app)

    class Product(db.Model):  # type: ignore[name-defined, misc]  # db.Model is dynamic
        id = db.Column(db.Integer, primary_key=True)
        name = db.Column(db.String)

    class Simple(ApiResource):  # type: ignore[misc]  # either package's class (Any)
        def get(self, simple_id: str) -> Any:
            return f"It works for {simple_id}", 200

        def post(self, simple_id: str) -> Any:
            return {"id": simple_id}, 201

        def put(self, simple_id: str) -> Any:
            self.add_error("name is required", path="name")
            return None, 400

        def patch(self, simple_id: str) -> Any:
            self.add_error("already exists")
            return None, 201

    class Bare(ApiResource):  # type: ignore[misc]  # either package's class (Any)
        def get(self, simple_id: str) -> Any:
            return {"id": simple_id}

    class Listing(ApiResource):  # type: ignore[misc]  # either package's class (Any)
        def get(self) -> Any:
            return ["a", "b"]

    class ProductItem(ApiResource):  # type: ignore[misc]  # either package's class (Any)
        def get(self, product_id: int) -> Any:
            abort(404, message=f"Product {product_id} does not exist")

        def delete(self, product_id: int) -> Any:
            abort(409, message="Product is in an order", code="IN_ORDER")

    class Products(ApiPaginatedMixin, ApiResource):  # type: ignore[misc]  # either package's class (Any)
        def get(self) -> Any:
            query = Product.query.order_by(Product.id.asc())
            return [p.name for p in self.get_paginated_query_result(query)], 200

    class Search(ApiResource):  # type: ignore[misc]  # either package's class (Any)
        def get(self) -> Any:
            parser = reqparse.RequestParser()
            parser.add_argument("name", required=True, location="args")
            return parser.parse_args()["name"], 200

    class Crash(ApiResource):  # type: ignore[misc]  # either package's class (Any)
        def get(self) -> Any:
            raise KeyError("internal detail")

    class Echo(ApiResource):  # type: ignore[misc]  # either package's class (Any)
        def post(self) -> Any:
            return request.get_json(), 200

    api.add_resource(Simple, "/simple/<string:simple_id>")
    api.add_resource(Bare, "/bare/<string:simple_id>")
    api.add_resource(Listing, "/listing")
    api.add_resource(ProductItem, "/products/<int:product_id>")
    api.add_resource(Products, "/products")
    api.add_resource(Search, "/search")
    api.add_resource(Crash, "/crash")
    api.add_resource(Echo, "/echo")

    with app.app_context():
        db.create_all()
        db.session.add_all([Product(id=i, name=f"product {i}") for i in range(1, 11)])
        db.session.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        db.session.execute(text("INSERT INTO alembic_version VALUES ('abc123')"))
        db.session.commit()
    return app


def main() -> None:
    app = create_app(os.environ["DIFF_PACKAGE"], os.environ["DIFF_DATABASE"])
    client = app.test_client()
    for name, method, path, headers, body in REQUESTS:
        response = client.open(path, method=method, headers=headers, data=body)
        data = response.get_data(as_text=True)
        try:
            parsed: Any = json.loads(data)
        except ValueError:
            parsed = {"text": data[:60]}
        record = {
            "name": name,
            "status": response.status_code,
            "body": parsed,
            "headers": {h: response.headers[h] for h in HEADERS if h in response.headers},
        }
        sys.stdout.write(MARK + json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
