"""The migration guide is complete: every public name of cst-micro-chassis 0.1.0 (downloaded from
the registry) imports from the same module under ``cst_chassis`` or has a row in the README's
"Removed and changed names" table; every setting the seed read is read here or listed too.
"""

from __future__ import annotations

import ast
import importlib
import re
from typing import Any

import pytest

from cst_chassis.resources import ApiResource
from tests.third_party import ROOT, fetch_sdist

GUIDE_TABLE = "## Removed and changed names"


def _seed_sources() -> dict[str, ast.Module]:
    package = fetch_sdist("cst-micro-chassis==0.1.0", "cst-micro-chassis-0.1.0")
    folder = package / "src" / "cst_micro_chassis"
    return {path.stem: ast.parse(path.read_text(encoding="utf-8")) for path in folder.glob("*.py")}


def _public(name: str) -> bool:
    return not name.startswith("_")


def seed_public_names() -> list[tuple[str, str, str | None]]:
    """(module, name, member) for every public name the seed defines or re-exports."""
    names: list[tuple[str, str, str | None]] = []
    for module, tree in sorted(_seed_sources().items()):
        statements = _flattened(tree.body)
        imported = {
            alias.asname or alias.name.split(".")[0]
            for node in statements
            if isinstance(node, ast.Import | ast.ImportFrom) and getattr(node, "level", 0) == 0
            for alias in node.names
        }
        for node in statements:
            if module == "__init__" and isinstance(node, ast.ImportFrom) and node.level == 1:
                names += [(module, alias.asname or alias.name, None) for alias in node.names]
            elif isinstance(node, ast.FunctionDef) and _public(node.name):
                names.append((module, node.name, None))
            elif isinstance(node, ast.Assign):
                names += [
                    (module, target.id, None)
                    for target in node.targets
                    if isinstance(target, ast.Name)
                    and _public(target.id)
                    and target.id not in imported  # the seed's "g = None" import fallback
                ]
            elif isinstance(node, ast.ClassDef) and _public(node.name):
                names.append((module, node.name, None))
                members = {
                    item.name
                    for item in node.body
                    if isinstance(item, ast.FunctionDef) and _public(item.name)
                }
                # Instance attributes the seed's methods set (self.errors, self.has_next...).
                members |= {
                    sub.attr
                    for sub in ast.walk(node)
                    if isinstance(sub, ast.Attribute)
                    and isinstance(sub.ctx, ast.Store)
                    and isinstance(sub.value, ast.Name)
                    and sub.value.id == "self"
                    and _public(sub.attr)
                }
                names += [(module, node.name, member) for member in sorted(members)]
    return names


def _flattened(body: list[ast.stmt]) -> list[ast.stmt]:
    # Module-level code inside try/except and if blocks counts as module level.
    statements: list[ast.stmt] = []
    for node in body:
        statements.append(node)
        if isinstance(node, ast.Try):
            blocks = [node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)]
            for block in blocks:
                statements += _flattened(block)
        elif isinstance(node, ast.If):
            statements += _flattened(node.body) + _flattened(node.orelse)
    return statements


def _guide_first_cells() -> set[str]:
    text = (ROOT / "docs" / "guides" / "migrating.md").read_text(encoding="utf-8")
    table = text[text.index(GUIDE_TABLE) :]
    return {m.group(1) for m in re.finditer(r"^\| `([^`]+)` \|", table, re.M)}


def _probe(owner: type) -> Any:
    """An instance to look instance attributes up on (a mixin gets ApiResource as its base)."""
    if issubclass(owner, ApiResource) or owner.__name__.endswith("Mixin"):
        return type("Probe", (owner, ApiResource) if owner is not ApiResource else (owner,), {})()
    return owner()


def _exists(module: str, name: str, member: str | None) -> bool:
    target = "cst_chassis" if module == "__init__" else f"cst_chassis.{module}"
    try:
        obj = getattr(importlib.import_module(target), name)
    except (ImportError, AttributeError):
        return False
    if member is None:
        return True
    return hasattr(obj, member) or hasattr(_probe(obj), member)


def _seed_name(module: str, name: str, member: str | None) -> str:
    prefix = "cst_micro_chassis" if module == "__init__" else f"cst_micro_chassis.{module}"
    return ".".join(part for part in (prefix, name, member) if part)


def test_every_public_name_of_the_seed_imports_or_is_in_the_guide() -> None:
    names = seed_public_names()
    assert len(names) > 20  # the parse found the seed's API, not nothing
    listed = _guide_first_cells()
    missing = [
        _seed_name(*entry)
        for entry in names
        if not _exists(*entry) and _seed_name(*entry) not in listed
    ]
    assert missing == [], "add these to the README's 'Removed and changed names' table"


def test_the_guide_lists_no_name_the_seed_did_not_have() -> None:
    seed = {_seed_name(*entry) for entry in seed_public_names()}
    assert _guide_first_cells() <= seed


def test_every_setting_the_seed_read_is_read_or_in_the_guide() -> None:
    keys = {
        str(node.args[0].value)
        for tree in _seed_sources().values()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and str(node.args[0].value).isupper()
    }
    assert "CST_PROJECT_NAME" in keys and "APP_STREAM_LOG_LEVEL" in keys
    config = (ROOT / "src" / "cst_chassis" / "config.py").read_text(encoding="utf-8")
    guide = (ROOT / "docs" / "guides" / "migrating.md").read_text(encoding="utf-8")
    unaccounted = [k for k in keys if f'"{k}"' not in config and f"| `{k}` |" not in guide]
    assert unaccounted == []


@pytest.mark.parametrize(
    "statement",
    [
        "from cst_chassis.chassis import CstMicroChassis",
        "from cst_chassis.logging import FORMAT, CstMicroChassisLogFormatter, get_log_config_dict",
        "from cst_chassis.resources import ApiPaginatedMixin, ApiResource",
        "from cst_chassis.utils import retry",
    ],
)
def test_the_seeds_import_statements_work(statement: str) -> None:
    exec(statement, {})
