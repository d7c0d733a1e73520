"""Every ```python block of the README and of the docs site runs as-is, so neither can drift.

The sources are README.md, CHANGELOG.md and every Markdown page under docs/ (the site's pages;
the API reference pages are generated from docstrings at build time and hold no examples). A
block that appears twice (the README's example is also the site's home page's) runs once. Each
runs as a standalone script in a fresh interpreter, in an empty temporary directory, with no
``CST_*`` variable set, and must exit 0 within the timeout. Nothing is skipped: a block fenced as
``py``, ``python3``, ``pycon`` (which would escape this test) fails
:func:`test_python_blocks_are_fenced_as_python`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCES = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S
)
PYTHON_ALIASES = {"py", "py3", "python3", "pycon", "ipython", "python-repl"}
TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Block:
    source: Path
    line: int
    lang: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.source.relative_to(REPO)}:{self.line}"


def _blocks() -> list[Block]:
    found: list[Block] = []
    for source in SOURCES:
        if not source.is_file():
            continue
        text = source.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            lang = (
                match["lang"].strip().split(maxsplit=1)[0].lower() if match["lang"].strip() else ""
            )
            indent = match["indent"]
            body = "".join(
                row[len(indent) :] if row.startswith(indent) else row
                for row in match["body"].splitlines(keepends=True)
            )
            found.append(Block(source, line, lang, body))
    return found


def _python_blocks() -> list[Block]:
    unique: dict[str, Block] = {}
    for block in _blocks():
        if block.lang == "python":
            unique.setdefault(block.code, block)
    return list(unique.values())


PYTHON_BLOCKS = _python_blocks()


def test_readme_has_python_examples() -> None:
    assert PYTHON_BLOCKS, f"no ```python block in {[str(s) for s in SOURCES]}"


def test_the_docs_pages_are_among_the_sources() -> None:
    # The guides hold most examples: a move of the pages must not leave them unexecuted.
    pages = {b.source.relative_to(REPO).as_posix() for b in PYTHON_BLOCKS}
    assert "README.md" in pages
    assert {"docs/getting-started/quickstart-sync.md", "docs/guides/keyset.md"} <= pages


def test_python_blocks_are_fenced_as_python() -> None:
    escaped = [b.where for b in _blocks() if b.lang in PYTHON_ALIASES]
    assert escaped == [], "fence these as ```python so they are executed: " + ", ".join(escaped)


@pytest.mark.slow
@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[b.where for b in PYTHON_BLOCKS])
def test_python_block_runs_as_a_standalone_script(block: Block, tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(block.code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CST_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{block.where}: still running after {TIMEOUT_SECONDS} s\n{exc.stdout!r}")
    output = f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0, f"{block.where} exited {done.returncode}\n{output}"
