"""The app's own HTTP errors (unknown paths, converters, 405, 500 in plain views) as envelopes."""

from __future__ import annotations

import pytest
from flask import Flask, abort

from cst_chassis import CstMicroChassis


def _app(**config: object) -> Flask:
    app = Flask("app-errors")
    app.config.update(config)
    CstMicroChassis(app)

    @app.get("/products/<int:product_id>")
    def product(product_id: int) -> dict[str, int]:
        if product_id > 10:
            abort(404)
        return {"id": product_id}

    @app.get("/crash")
    def crash() -> str:
        raise RuntimeError("internal detail")

    return app


@pytest.mark.parametrize("path", ["/no/such/path", "/products/abc", "/products/11"])
def test_not_found_is_a_json_envelope(path: str) -> None:
    response = _app().test_client().get(path, headers={"X-Operation-ID": "op-404"})
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    body = response.get_json()
    assert body["meta"] == {"operation_id": "op-404"}
    assert [set(item) for item in body["errors"]] == [{"message"}]


def test_method_not_allowed_on_status_is_a_json_envelope_with_allow() -> None:
    response = _app().test_client().post("/status")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert set(response.get_json()) == {"meta", "errors"}


def test_unhandled_exception_in_a_plain_view_is_a_generic_500_envelope(
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = _app()
    response = app.test_client().get("/crash")
    assert response.status_code == 500
    assert response.get_json()["errors"] == [{"message": "Internal server error"}]
    assert "internal detail" not in response.get_data(as_text=True)
    # Flask logged it (app.logger, through the chassis handler), with the traceback.
    assert "RuntimeError: internal detail" in capsys.readouterr().out


def test_redirects_are_not_turned_into_errors() -> None:
    app = _app()

    @app.get("/folder/")
    def folder() -> str:
        return "ok"

    response = app.test_client().get("/folder")
    assert response.status_code in {301, 308}


def test_switching_it_off_keeps_flasks_pages() -> None:
    response = _app(CST_ENVELOPE_HTTP_ERRORS=False).test_client().get("/no/such/path")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")
