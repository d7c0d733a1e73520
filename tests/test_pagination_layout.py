"""The pagination package stays Flask-free and acyclic, and the old import paths keep working."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import cst_chassis

PACKAGE = Path(cst_chassis.__file__).parent / "pagination"
# What the subpackage may import from the rest of cst_chassis: the error types and type aliases.
ALLOWED_OUTSIDE = {"cst_chassis.errors", "cst_chassis.typing"}


def _imports(path: Path) -> set[str]:
    """Modules ``path`` imports, at any level (``TYPE_CHECKING`` blocks included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.add(node.module)
    return found


def _module(path: Path) -> str:
    name = "cst_chassis.pagination"
    return name if path.stem == "__init__" else f"{name}.{path.stem}"


MODULES = {_module(path): _imports(path) for path in sorted(PACKAGE.glob("*.py"))}


def test_the_pagination_package_imports_no_flask_and_nothing_of_the_http_side() -> None:
    for module, imports in MODULES.items():
        assert not {name for name in imports if name.split(".")[0] in {"flask", "werkzeug"}}, module
        outside = {
            name
            for name in imports
            if name.startswith("cst_chassis") and not name.startswith("cst_chassis.pagination")
        }
        assert outside <= ALLOWED_OUTSIDE, (module, outside)


def test_the_pagination_modules_import_each_other_without_a_cycle() -> None:
    graph = {
        module: {name for name in imports if name in MODULES and name != "cst_chassis.pagination"}
        for module, imports in MODULES.items()
        if module != "cst_chassis.pagination"
    }
    assert graph["cst_chassis.pagination.page"] == set()
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module not in done:
            for imported in graph[module]:
                visit(imported, (*path, module))
            done.add(module)

    for module in graph:
        visit(module, ())


@pytest.mark.parametrize(
    ("module", "names"),
    [
        (
            "cst_chassis.pagination",
            ["Page", "paginate", "paginate_async", "paginate_query", "paginate_keyset"],
        ),
        ("cst_chassis.keyset", ["paginate_keyset", "paginate_keyset_async"]),
        ("cst_chassis.cursor", ["encode_cursor", "decode_cursor", "CursorPayload"]),
        ("cst_chassis.resources", ["ApiPaginatedMixin", "ApiResource"]),
        ("cst_chassis.pagination_mixin", ["ApiPaginatedMixin", "MissingSessionError"]),
    ],
)
def test_the_public_import_paths_keep_working(module: str, names: list[str]) -> None:
    imported = importlib.import_module(module)
    for name in names:
        assert hasattr(imported, name), f"{module}.{name}"


@pytest.mark.parametrize(
    "module",
    [
        "cst_chassis.pagination",
        "cst_chassis.pagination.keyset",
        "cst_chassis.keyset",
        "cst_chassis.pagination_mixin",
    ],
)
@pytest.mark.slow
def test_each_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    # A cycle held together by import order breaks when a module is the first one imported.
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
