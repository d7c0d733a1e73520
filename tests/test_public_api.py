"""The public surface: what ``cst_chassis`` and each public module export, and nothing else."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest

import cst_chassis

ROOT = Path(__file__).resolve().parents[1]

# What a typical service imports, from the top (issue 18).
SERVICE_NAMES = {
    "ApiPaginatedMixin",
    "ApiResource",
    "ChassisApi",
    "CstMicroChassis",
    "OperationIdFilter",
    "Page",
    "get_operation_id",
    "get_state",
    "get_trace_context",
    "outgoing_headers",
    "paginate",
    "paginate_async",
    "paginate_keyset",
    "paginate_keyset_async",
    "paginate_query",
    "retry",
    "run_coroutine",
    "spawn_background",
}


def _modules() -> list[ModuleType]:
    names = [
        info.name
        for info in pkgutil.walk_packages(cst_chassis.__path__, "cst_chassis.")
        if not info.name.endswith("__main__")
    ]
    modules = [cst_chassis]
    for name in names:
        try:
            modules.append(importlib.import_module(name))
        except ImportError as exc:  # an optional extra that is not installed
            pytest.skip(f"{name} needs {exc.name}")
    return modules


def _is_private(module: ModuleType) -> bool:
    return any(part.startswith("_") for part in module.__name__.split(".")[1:])


def test_every_name_in_every_modules_all_resolves() -> None:
    for module in _modules():
        for name in getattr(module, "__all__", []):
            assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name}"


def test_every_public_module_declares_all_and_lists_no_private_name() -> None:
    for module in _modules():
        if _is_private(module) or module.__name__ == "cst_chassis.__main__":
            continue
        exported = getattr(module, "__all__", None)
        assert exported is not None, f"{module.__name__} has no __all__"
        assert not [name for name in exported if name.startswith("_")], module.__name__


def test_top_level_all_is_sorted_unique_and_has_what_a_service_imports() -> None:
    exported = cst_chassis.__all__
    assert exported == sorted(exported)
    assert len(set(exported)) == len(exported)
    assert set(exported) >= SERVICE_NAMES


def test_top_level_names_are_the_objects_of_their_owning_modules() -> None:
    # A re-export is the same object, so its owning module is where it was defined.
    for name in cst_chassis.__all__:
        value = getattr(cst_chassis, name)
        owner = getattr(value, "__module__", None)
        if owner is None or not owner.startswith("cst_chassis"):
            continue
        owning = importlib.import_module(owner)
        assert getattr(owning, name) is value


def test_no_module_re_exports_a_name_another_public_module_owns() -> None:
    # Kept import paths (cst-micro-chassis's and the pre-pagination package layout) are the
    # documented exceptions: they exist only to re-export.
    kept_paths = {"cst_chassis", "cst_chassis.chassis", "cst_chassis.cursor", "cst_chassis.keyset"}
    kept_names = {("cst_chassis.resources", "ApiPaginatedMixin")}
    for module in _modules():
        if module.__name__ in kept_paths or _is_private(module):
            continue
        for name in getattr(module, "__all__", []):
            owner = getattr(getattr(module, name), "__module__", module.__name__)
            if not owner.startswith("cst_chassis") or owner == module.__name__:
                continue
            if (module.__name__, name) in kept_names:
                continue
            # A package may export what its own submodules define.
            assert owner.startswith(module.__name__ + "."), (
                f"{module.__name__} re-exports {name} owned by {owner}"
            )


def _documented_imports() -> list[tuple[str, str]]:
    texts = [(ROOT / "README.md").read_text(encoding="utf-8")]
    texts += [p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").rglob("*.md"))]
    pattern = re.compile(r"^from (cst_chassis[\w.]*) import \(?([\w, \n]+?)\)?$", re.MULTILINE)
    found = []
    for text in texts:
        for module, names in pattern.findall(text):
            found += [(module, n.strip()) for n in names.split(",") if n.strip()]
    return found


def test_every_name_the_docs_import_is_in_its_modules_all() -> None:
    imports = _documented_imports()
    assert ("cst_chassis", "CstMicroChassis") in imports
    for module_name, name in imports:
        module = importlib.import_module(module_name)
        assert name in module.__all__, f"the docs import {name} from {module_name}"


@pytest.mark.parametrize(
    ("module_name", "name"),
    [
        ("cst_chassis.resources", "ApiResource"),
        ("cst_chassis.resources", "ApiPaginatedMixin"),
        ("cst_chassis.chassis", "CstMicroChassis"),
        ("cst_chassis.utils", "retry"),
    ],
)
def test_cst_micro_chassis_import_paths_still_work(module_name: str, name: str) -> None:
    assert name in importlib.import_module(module_name).__all__
