"""The wheel ships py.typed and the flask_restful stubs: a user's service type-checks with
nothing but cst-chassis installed (and its runtime dependencies)."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

USER_SERVICE = textwrap.dedent(
    """
    from __future__ import annotations

    from typing import Any

    from flask import Flask
    from flask_restful import Api, abort, fields, marshal

    from cst_chassis import CstMicroChassis, get_operation_id
    from cst_chassis.resources import ApiResource


    # The everyday marshalling idiom: a dict of field classes, not annotated.
    user_fields = {"id": fields.Integer, "name": fields.String}


    def marshal_user(user: Any) -> dict[str, Any]:
        return dict(marshal(user, user_fields))


    class Product(ApiResource):
        def get(self, product_id: int) -> dict[str, int | str | None]:
            if product_id < 0:
                abort(404, message="no such product")
            return {"id": product_id, "op": get_operation_id()}


    app = Flask("typed-user-service")
    CstMicroChassis().init_app(app)
    Api(app).add_resource(Product, "/products/<int:product_id>")
    """
)


def _build_wheel(out: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = out.glob("cst_chassis-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built once for every test of this module."""
    return _build_wheel(tmp_path_factory.mktemp("dist"))


def test_wheel_contains_py_typed_and_stub_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "cst_chassis/py.typed" in names
    assert "flask_restful-stubs/__init__.pyi" in names
    assert "flask_restful-stubs/reqparse.pyi" in names


def test_users_service_passes_mypy_strict_with_only_the_wheel(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "user-venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    # Runtime dependencies (flask, flask_restful, sqlalchemy) come from the test venv; the
    # project's own source tree and typings/ are not on the path.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    service = tmp_path / "service.py"
    service.write_text(USER_SERVICE)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--python-executable",
            str(python),
            "--config-file",
            "/dev/null",
            str(service),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout
