"""The documentation site builds strictly and offline, documents every public name, and its
charts come from the benches' JSON; the changelog and the package version agree.

The build runs once per session (``mkdocs build --strict`` into a temporary folder, about 15-30 s):
any warning fails it, so a broken link or anchor, an unresolved reference, or an undocumented
public name fails here as it does in ``make docs``. The site's code examples are run by
tests/test_readme.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from .script_support import load_script

# Builds the whole site in a subprocess: left out of `make check` (the Makefile).
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
CHANGELOG = REPO / "CHANGELOG.md"
RESULTS = REPO / "bench" / "results"
# Hosts a page must not load anything from: the build is offline, and so is the site.
FETCHING = re.compile(r"fonts\.googleapis\.com|fonts\.gstatic\.com|unpkg\.com|cdn\.jsdelivr\.net")
EXTERNAL_ASSET = re.compile(
    r"<(?:script|img)[^>]+src=\"(?:https?:)?//|<link[^>]+href=\"(?:https?:)?//"
)


def _load(path: Path) -> ModuleType:
    return load_script(path, "_docs")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed\n{done.stdout}\n{done.stderr}"
    yield out


def test_site_builds_strictly_with_every_page(site: Path) -> None:
    for page in ["index.html", "changelog.html", "reference/configuration.html"]:
        assert (site / page).is_file(), page
    assert (site / "reference" / "api" / "cst_chassis.html").is_file()


def test_site_loads_nothing_from_the_network(site: Path) -> None:
    # Pages and style sheets name no outside host (Material's Google Fonts are turned off).
    # Material's script bundle can fetch two things itself, neither used here: mermaid.js when a
    # page has a Mermaid diagram (this site draws its diagram as SVG), and a ResizeObserver
    # polyfill for browsers that lack it.
    offending = []
    for path in site.rglob("*"):
        if path.suffix in {".html", ".css"}:
            text = path.read_text(encoding="utf-8", errors="replace")
            if FETCHING.search(text) or (path.suffix == ".html" and EXTERNAL_ASSET.search(text)):
                offending.append(path.relative_to(site).as_posix())
            if 'class="mermaid"' in text:
                offending.append(f"{path.relative_to(site).as_posix()}: a Mermaid block")
    assert offending == []


def test_every_public_name_has_an_entry_in_the_api_reference(site: Path) -> None:
    hooks = _load(REPO / "docs" / "hooks.py")
    modules = hooks.public_modules()
    assert "cst_chassis" in modules and "cst_chassis.pagination" in modules
    html = "".join(
        p.read_text(encoding="utf-8") for p in (site / "reference" / "api").glob("*.html")
    )
    anchors = set(re.findall(r'id="(cst_chassis[\w.]*)"', html))
    missing = []
    for module in modules.values():
        assert module.exported, f"{module.name} exports nothing: give it an __all__"
        for name in module.exported:
            home = hooks._home(modules, module, name) or module.name
            if f"{home}.{name}" not in anchors:
                missing.append(f"{module.name}.{name}")
    assert missing == []


def test_reference_pages_follow_all_and_link_re_exports_to_their_definition() -> None:
    hooks = _load(REPO / "docs" / "hooks.py")
    Module = hooks.Module
    modules = {
        "cst_chassis.a": Module(
            "cst_chassis.a",
            "",
            ["Local", "Moved", "Hidden"],
            {"Local": True},
            {"Moved": "cst_chassis.b", "Hidden": "cst_chassis._private"},
        ),
        "cst_chassis.b": Module("cst_chassis.b", "", ["Moved"], {"Moved": False}),
    }
    page = hooks.api_page(modules, modules["cst_chassis.a"])
    # Defined here, or from a private module: rendered here. From a public one: a link.
    assert "members: [Local, Hidden]" in page
    assert "[`Moved`][cst_chassis.b.Moved]" in page
    assert hooks.undocumented(modules) == ["cst_chassis.b.Moved"]


def test_charts_in_the_site_are_drawn_from_the_bench_json(site: Path) -> None:
    charts = _load(REPO / "bench" / "charts.py")
    drawn = dict(charts.render(RESULTS))
    assert set(drawn) == {
        "overhead.svg",
        "keyset.svg",
        "serve.svg",
        "serve-fanout.svg",
        "serve-sweep.svg",
        "instructions.svg",
    }
    for name, svg in drawn.items():
        assert (site / "assets" / "charts" / name).read_bytes() == svg, name


def test_a_chart_changes_when_its_json_changes(tmp_path: Path) -> None:
    charts = _load(REPO / "bench" / "charts.py")
    for path in RESULTS.glob("*.json"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    document = json.loads((tmp_path / "serve.json").read_text(encoding="utf-8"))
    document["results"]["medians"][0]["requests_per_second"] *= 2
    (tmp_path / "serve.json").write_text(json.dumps(document), encoding="utf-8")
    before, after = dict(charts.render(RESULTS)), dict(charts.render(tmp_path))
    assert before["serve.svg"] != after["serve.svg"]
    assert before["keyset.svg"] == after["keyset.svg"]


def test_bench_json_was_measured_by_the_command_it_names() -> None:
    # Every figure the site draws was written by a bench run (bench_json.write), none copied in.
    files = sorted(RESULTS.glob("*.json"))
    assert {p.name for p in files} >= {"overhead.json", "keyset.json", "serve.json", "load.json"}
    for path in files:
        document = json.loads(path.read_text(encoding="utf-8"))
        assert document["source"] == "measured" and document["results"], path.name
        assert re.match(r"(\S*/)?python\S* bench/\w+\.py ", document["command"]), path.name
        assert document["measured_at"] and document["versions"]["cst-chassis"], path.name


def test_request_flow_diagram_is_in_the_site(site: Path) -> None:
    flow = _load(REPO / "docs" / "diagrams" / "request_flow.py")
    assert (site / "assets" / "diagrams" / "request-flow.svg").read_bytes() == flow.render()
    assert "request-flow.svg" in (site / "guides" / "request-flow.html").read_text("utf-8")


def test_configuration_page_keeps_the_generated_table_markers() -> None:
    text = (REPO / "docs" / "reference" / "configuration.md").read_text(encoding="utf-8")
    start, end = "<!-- config-table:start -->", "<!-- config-table:end -->"
    assert text.count(start) == 1 and text.count(end) == 1
    table = text[text.index(start) : text.index(end)]
    assert "| `CST_PROJECT_NAME` |" in table


# --- the changelog -------------------------------------------------------------------------------

SECTION = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?$", re.M)
KINDS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_changelog_newest_release_is_the_package_version() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    versions = [m["version"] for m in SECTION.finditer(CHANGELOG.read_text(encoding="utf-8"))]
    released = [v for v in versions if v != "Unreleased"]
    assert released, "CHANGELOG.md has no released section"
    assert released[0] == project["version"]


def test_changelog_follows_keep_a_changelog() -> None:
    text = CHANGELOG.read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    versions = [m["version"] for m in SECTION.finditer(text)]
    assert versions[0] == "Unreleased" and versions.count("Unreleased") == 1
    kinds = set(re.findall(r"^### (.+)$", text, re.M))
    assert kinds <= KINDS, kinds - KINDS


def test_readme_is_a_landing_page_whose_links_resolve() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) < 200
    targets = re.findall(r"\]\((?!https?:)([^)#\s]+)", text)
    assert targets, "the README links into the docs"
    assert [t for t in targets if not (REPO / t).exists()] == []
