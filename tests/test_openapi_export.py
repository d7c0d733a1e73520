"""``python -m cst_chassis.openapi`` needs no cursor secret: exporting signs nothing (issue 25)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from flask import Flask

from cst_chassis import ChassisApi, CstMicroChassis
from cst_chassis.openapi import main
from cst_chassis.resources import ApiPaginatedMixin, ApiResource


class ByPrice(ApiPaginatedMixin, ApiResource):
    pagination_mode = "keyset"

    def get(self) -> list[int]:
        return []


def create_app() -> Flask:
    """A service with a keyset resource and no cursor secret (a server would refuse to start)."""
    app = Flask("export-test")
    CstMicroChassis(app)
    ChassisApi(app).add_resource(ByPrice, "/by-price")
    return app


def test_an_app_with_a_keyset_resource_exports_without_a_cursor_secret(tmp_path: Path) -> None:
    assert "CST_CURSOR_SECRET" not in os.environ
    output = tmp_path / "openapi.json"
    assert main([f"{__name__}:create_app", "-o", str(output)]) == 0
    document = json.loads(output.read_text())
    assert "/by-price" in document["paths"]
    # The throwaway secret lived for the export only.
    assert "CST_CURSOR_SECRET" not in os.environ


def test_the_secret_of_the_environment_is_put_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CST_CURSOR_SECRET", "a secret of the operator, long enough")
    assert main([f"{__name__}:create_app", "-o", str(tmp_path / "openapi.json")]) == 0
    assert os.environ["CST_CURSOR_SECRET"] == "a secret of the operator, long enough"


def test_serving_the_same_app_without_a_secret_is_still_refused() -> None:
    with pytest.raises(ValueError, match="CST_CURSOR_SECRET"):
        create_app()
