"""The wheel ships py.typed and the flask_restful stubs: a user's service type-checks with
nothing but cst-chassis installed (and its runtime dependencies)."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

# Servers, subprocesses or brokers: left out of `make check` (the Makefile).
pytestmark = pytest.mark.slow

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


@pytest.fixture(scope="module")
def user_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv's python holding the wheel (and the runtime dependencies), not the source tree."""
    env_dir = tmp_path_factory.mktemp("user") / "user-venv"
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
    return python


def test_users_service_passes_mypy_strict_with_only_the_wheel(
    user_python: Path, tmp_path: Path
) -> None:
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
            str(user_python),
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


# What a pyright-strict user writes on top of USER_SERVICE: the top-level names, a db, a page.
# (marshal's data is a Mapping here: with ``Any`` data several of flask-restful's overloads match
# and pyright strict reports their differing returns as unknown, whatever the stubs say.)
PYRIGHT_SERVICE = USER_SERVICE.replace(
    "def marshal_user(user: Any)", "def marshal_user(user: dict[str, Any])"
) + textwrap.dedent(
    """

    from typing import assert_type

    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

    from cst_chassis import Page, paginate, retry, run_coroutine
    from cst_chassis.pagination.cursor import CursorPayload, decode_cursor


    class Base(DeclarativeBase):
        pass


    class User(Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)


    engine = create_engine("sqlite://")
    CstMicroChassis().init_app(Flask("with-engine"), db=engine)


    def first_page(session: Session) -> Page[User]:
        return paginate(session, select(User), offset=0, limit=10)


    @retry(tries=3, delay=0)
    def flaky() -> int:
        return 1


    async def answer() -> int:
        return 42


    assert_type(flaky(), int)
    assert_type(run_coroutine(answer), int)


    def cursor_values(payload: CursorPayload) -> list[object]:
        return list(payload.values)


    _ = decode_cursor
    """
)


def test_users_service_passes_pyright_strict_with_only_the_wheel(
    user_python: Path, tmp_path: Path
) -> None:
    service = tmp_path / "service.py"
    service.write_text(PYRIGHT_SERVICE)
    config = {"typeCheckingMode": "strict", "pythonVersion": "3.11", "include": ["service.py"]}
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(config))
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "pyright"),
            "--pythonpath",
            str(user_python),
            "-p",
            str(tmp_path / "pyrightconfig.json"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 errors" in result.stdout, result.stdout
