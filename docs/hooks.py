"""MkDocs hooks of the documentation site (mkdocs.yml, ``hooks:``); nothing here is served.

- The API reference is generated from the package itself: one page per public module of
  ``cst_chassis`` (a module whose dotted name has no part starting with ``_``), each rendering
  the names of that module's ``__all__`` with mkdocstrings. A name re-exported from another
  public module links to where it is defined instead of being rendered twice. So a change of a
  module's ``__all__``, or a module made private, flows into the site with no list to update.
- A public name without a docstring is a warning, which ``mkdocs build --strict`` turns into a
  failed build, unless ``docs/undocumented.txt`` lists it (the names that had none when the site
  was made); a listed name that has since got a docstring is reported, to be deleted from it.
- The benchmark charts (``bench/charts.py``, from the JSON in ``bench/results/``) and the
  request-flow diagram (``docs/diagrams/request_flow.py``) are drawn at build time by matplotlib
  and added to the site as generated files: nothing drawn is committed, nothing is fetched.
- Sphinx roles left in docstrings (``:class:`X```) lose the role name in the rendered HTML.
"""

from __future__ import annotations

import ast
import importlib.util
import logging
import posixpath
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "cst_chassis"
SOURCE = ROOT / "src" / PACKAGE
API_INDEX = "reference/api/index.md"
API_NAV_TITLE = "API"
UNDOCUMENTED = ROOT / "docs" / "undocumented.txt"

log = logging.getLogger("mkdocs.plugins.cst_chassis_docs")


@dataclass
class Module:
    """One public module as read from its source: what it exports and where each name is from."""

    name: str
    summary: str
    exported: list[str]
    defined: dict[str, bool] = field(default_factory=dict)  # name -> has a docstring
    imported: dict[str, str] = field(default_factory=dict)  # name -> module it comes from

    @property
    def page(self) -> str:
        return f"reference/api/{self.name}.md"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_public(dotted: str) -> bool:
    return not any(part.startswith("_") for part in dotted.split("."))


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _has_docstring(nodes: list[ast.stmt], index: int) -> bool:
    node = nodes[index]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return ast.get_docstring(node) is not None
    following = nodes[index + 1] if index + 1 < len(nodes) else None
    return (
        isinstance(following, ast.Expr)
        and isinstance(following.value, ast.Constant)
        and isinstance(following.value.value, str)
    )


def _assigned_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign):
        targets = [node.target]
    return [t.id for t in targets if isinstance(t, ast.Name)]


def read_module(path: Path) -> Module:
    """Read one module's ``__all__``, docstrings and imports without importing it."""
    name = _module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    summary = (ast.get_docstring(tree) or "").strip().split("\n\n")[0].replace("\n", " ")
    module = Module(name, summary, [])
    for index, node in enumerate(tree.body):
        for target in _assigned_names(node):
            if target == "__all__" and isinstance(node, ast.Assign | ast.AnnAssign):
                value = node.value
                if isinstance(value, ast.List | ast.Tuple):
                    module.exported = [
                        e.value
                        for e in value.elts
                        if isinstance(e, ast.Constant) and isinstance(e.value, str)
                    ]
                continue
            documented = _has_docstring(tree.body, index)
            # An overloaded function: the implementation carries the docstring.
            module.defined[target] = module.defined.get(target, False) or documented
        if isinstance(node, ast.ImportFrom):
            origin = _resolve(name, path.name == "__init__.py", node)
            for alias in node.names:
                module.imported[alias.asname or alias.name] = origin
    return module


def public_modules() -> dict[str, Module]:
    """Every public module of the package, by dotted name, sorted."""
    found = {}
    for path in sorted(SOURCE.rglob("*.py")):
        name = _module_name(path)
        if _is_public(name):
            found[name] = read_module(path)
    return dict(sorted(found.items()))


def _home(modules: dict[str, Module], module: Module, name: str) -> str | None:
    """The public module where ``name`` (exported by ``module``) is defined and rendered."""
    seen = set()
    current = module
    while name in current.imported and current.name not in seen:
        seen.add(current.name)
        origin = modules.get(current.imported[name])
        if origin is None or name not in origin.exported:
            return None  # from a private module (or not exported there): rendered here
        current = origin
    return current.name if current is not module else None


def api_page(modules: dict[str, Module], module: Module) -> str:
    """The Markdown of one module's reference page."""
    rendered = [n for n in module.exported if _home(modules, module, n) is None]
    linked = [(n, home) for n in module.exported if (home := _home(modules, module, n))]
    lines = [
        f"::: {module.name}",
        "    options:",
        "      show_root_heading: true",
        f"      members: [{', '.join(rendered)}]" if rendered else "      members: false",
        "",
    ]
    if linked:
        lines += [
            "",
            "Also exported here, documented where they are defined:",
            "",
            "| name | defined in |",
            "| --- | --- |",
            *(f"| [`{n}`][{home}.{n}] | [`{home}`][{home}] |" for n, home in linked),
            "",
        ]
    return "\n".join(lines)


def api_index(modules: dict[str, Module]) -> str:
    rows = [f"| [`{m.name}`]({m.name}.md) | {m.summary} |" for m in modules.values()]
    return "\n".join(
        [
            "# API reference",
            "",
            "Every public module of `cst_chassis` and the names it exports (its `__all__`), from "
            "their docstrings. Import from the package itself (`from cst_chassis import ...`) "
            "where a name is exported there.",
            "",
            "| module | what it is for |",
            "| --- | --- |",
            *rows,
            "",
        ]
    )


def undocumented(modules: dict[str, Module]) -> list[str]:
    """Public names defined without a docstring, as ``module.name``."""
    return [
        f"{m.name}.{n}"
        for m in modules.values()
        for n in m.exported
        if n in m.defined and not m.defined[n]
    ]


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


def drawings() -> dict[str, bytes]:
    """Every picture of the site, drawn now: ``{site path: SVG bytes}``."""
    charts = _load(ROOT / "bench" / "charts.py")
    flow = _load(ROOT / "docs" / "diagrams" / "request_flow.py")
    pictures: dict[str, bytes] = {
        f"assets/charts/{name}": svg for name, svg in charts.render(ROOT / "bench" / "results")
    }
    pictures["assets/diagrams/request-flow.svg"] = flow.render()
    return pictures


# --- MkDocs events ------------------------------------------------------------------------------


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    modules = public_modules()
    pages: list[Any] = [{"Overview": API_INDEX}]
    pages += [{m.name: m.page} for m in modules.values()]
    for section in config.nav or []:
        if not isinstance(section, dict):
            continue
        for entries in section.values():
            if not isinstance(entries, list):
                continue
            for position, entry in enumerate(entries):
                if entry == {API_NAV_TITLE: API_INDEX}:
                    entries[position] = {API_NAV_TITLE: pages}
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    modules = public_modules()
    missing = set(undocumented(modules))
    allowed = {
        line.strip()
        for line in UNDOCUMENTED.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for name in sorted(missing - allowed):
        log.warning("public name without a docstring: %s", name)
    # Not a warning: the list is shared by branches merged at different times, so one that
    # documents a name must not fail the build of the others. Delete the names reported here.
    for name in sorted(allowed - missing):
        log.info("%s is documented now (or gone): delete it from docs/undocumented.txt", name)
    files.append(File.generated(config, API_INDEX, content=api_index(modules)))
    for module in modules.values():
        files.append(File.generated(config, module.page, content=api_page(modules, module)))
    for path, svg in drawings().items():
        files.append(File.generated(config, path, content=svg))
    return files


CONFIG_TABLE = re.compile(r"<!-- config-table:start -->.*?<!-- config-table:end -->", re.S)
SAME_PAGE_LINK = re.compile(r"\]\(#([\w-]+)\)")


def on_page_markdown(markdown: str, page: Any, files: Files, **kwargs: Any) -> str:
    """Point the configuration table's ``(#guide)`` links at the guide pages.

    The table is generated from the config declaration (``cst_chassis._config_table``) and written
    verbatim between its markers, with links to sections of the one-page manual it came from;
    here ``#operation-id-and-logging`` becomes ``guides/operation-id-and-logging.md``.
    """
    pages = {Path(f.src_uri).stem: f.src_uri for f in files.documentation_pages()}

    def to_page(match: re.Match[str]) -> str:
        target = pages.get(match[1])
        if target is None:
            return match[0]
        return f"]({posixpath.relpath(target, posixpath.dirname(page.file.src_uri))})"

    return CONFIG_TABLE.sub(lambda table: SAME_PAGE_LINK.sub(to_page, table[0]), markdown)


SPHINX_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):<code>~?")


def on_page_content(html: str, **kwargs: Any) -> str:
    return SPHINX_ROLE.sub("<code>", html)
