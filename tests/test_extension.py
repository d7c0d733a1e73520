"""init_app: registration in app.extensions, once per app, typed state."""

from __future__ import annotations

import pytest
from flask import Flask

from cst_chassis import ChassisError, ChassisNotInitializedError, CstMicroChassis, get_state


def test_init_app_registers_typed_state() -> None:
    app = Flask("svc")
    chassis = CstMicroChassis()
    chassis.init_app(app)
    state = get_state(app)
    assert state.config.project_name == "Svc"
    assert state.db is None


def test_constructor_with_app_initialises_it() -> None:
    app = Flask("svc")
    CstMicroChassis(app)
    assert "cst_chassis" in app.extensions


def test_second_init_app_on_the_same_app_raises() -> None:
    app = Flask("svc")
    chassis = CstMicroChassis(app)
    with pytest.raises(ChassisError, match="already initialised"):
        chassis.init_app(app)


def test_one_extension_serves_several_apps() -> None:
    chassis = CstMicroChassis()
    first, second = Flask("first"), Flask("second")
    chassis.init_app(first)
    chassis.init_app(second)
    assert get_state(first).config.project_name == "First"
    assert get_state(second).config.project_name == "Second"


def test_get_state_without_init_app_says_what_to_do() -> None:
    with pytest.raises(ChassisNotInitializedError, match=r"init_app\(app\)"):
        get_state(Flask("plain"))


def test_get_state_defaults_to_current_app(app: Flask) -> None:
    with app.app_context():
        assert get_state() is get_state(app)


def test_db_of_unknown_type_is_rejected_before_anything_is_installed() -> None:
    app = Flask("kind-check")
    wsgi_app = app.wsgi_app
    with pytest.raises(TypeError, match=r"Engine or an AsyncEngine, not builtins\.str"):
        CstMicroChassis().init_app(app, "sqlite:///x.db")  # type: ignore[arg-type]  # the wrong type is the point
    assert app.wsgi_app == wsgi_app
    assert "cst_chassis" not in app.extensions
    assert list(app.url_map.iter_rules()) == list(Flask("fresh").url_map.iter_rules())
    CstMicroChassis().init_app(app)  # the app is still free for a correct call
    assert get_state(app).db is None


FEATURE_MODULES = ["health", "probes", "metrics", "openapi", "pagination_mixin", "celery"]


@pytest.mark.parametrize("module", FEATURE_MODULES)
def test_feature_modules_read_the_state_without_importing_the_extension(module: str) -> None:
    # The extension imports the feature modules; a feature module importing it back (even for
    # types) is an import circle. They read ChassisState/get_state from cst_chassis.state.
    import ast
    from pathlib import Path

    import cst_chassis

    package = Path(cst_chassis.__file__).parent
    path = package / f"{module}.py"
    if not path.exists():
        path = package / module / "__init__.py"
    imported: set[str] = set()
    for source in [path] if path.name != "__init__.py" else sorted(path.parent.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
                if node.module == "cst_chassis":  # only submodules, never the package's names
                    imported.update(f"cst_chassis.{alias.name}" for alias in node.names)
    assert "cst_chassis.extension" not in imported
    for name in imported - {"cst_chassis"}:
        if name.startswith("cst_chassis."):
            part = name.split(".")[1]
            assert (package / f"{part}.py").exists() or (package / part).is_dir(), name
