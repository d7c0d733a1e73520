"""Config declared once: the docs' tables and init_app's docstring follow ``ChassisConfig``."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from cst_chassis import ChassisConfigError, CstMicroChassis
from cst_chassis._config_table import END, START, config_table, replace_table, table_in
from cst_chassis.config import ChassisConfig, load_config, settings

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", "node_modules", "site", "build", "dist", "mutants"}


def _markdown_files() -> list[Path]:
    return [
        path
        for path in sorted(ROOT.rglob("*.md"))
        if not SKIP_DIRS.intersection(path.relative_to(ROOT).parts)
        and not any(part.startswith(".venv") for part in path.relative_to(ROOT).parts)
    ]


def _pages_with_table() -> list[Path]:
    return [path for path in _markdown_files() if START in path.read_text(encoding="utf-8")]


def test_some_page_holds_the_configuration_table() -> None:
    assert _pages_with_table(), "no *.md file has the config-table markers"


@pytest.mark.parametrize("page", _pages_with_table(), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_pages_table_is_the_generated_one(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert END in text
    assert table_in(text) == config_table(), (
        f"{page.relative_to(ROOT)}: run python -m cst_chassis._config_table --write {page}"
    )


def test_the_table_has_one_row_per_field_in_declaration_order() -> None:
    keys = re.findall(r"^\| `(CST_\w+)` \|", config_table(), re.MULTILINE)
    assert keys == [setting.key for _, setting in settings()]
    assert [name for name, _ in settings()] == [f.name for f in fields(ChassisConfig)]


def test_replace_table_writes_what_table_in_reads() -> None:
    text = f"before\n\n{START}\n| stale |\n{END}\n\nafter\n"
    replaced = replace_table(text)
    assert table_in(replaced) == config_table()
    assert replaced.startswith("before\n\n") and replaced.endswith(f"{END}\n\nafter\n")


def test_init_app_docstring_names_every_key_in_declaration_order() -> None:
    doc = CstMicroChassis.init_app.__doc__ or ""
    named = re.findall(r"``(CST_\w+)``", doc)
    declared = [setting.key for _, setting in settings()]
    assert list(dict.fromkeys(named)) == declared


@pytest.mark.parametrize("name_key", [(name, s.key) for name, s in settings()], ids=str)
def test_every_declared_key_is_read_and_a_bad_value_names_it(name_key: tuple[str, str]) -> None:
    _, key = name_key
    with pytest.raises(ChassisConfigError, match=re.escape(key)):
        # A mapping is no valid value for any key, and never a default (some keys take a list).
        load_config("svc", {key: {"bad": 1}}, {})


def test_defaults_come_from_the_declaration() -> None:
    config = load_config("my-app", {}, {})
    for f in fields(ChassisConfig):
        if f.name not in {"project_name", "max_page_size"}:
            assert getattr(config, f.name) == f.default, f.name
    assert config.project_name == "My-App"
    assert config.max_page_size == 4 * config.default_page_size
