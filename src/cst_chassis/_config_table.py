"""The README's configuration table, generated from :class:`~cst_chassis.config.ChassisConfig`.

``python -m cst_chassis._config_table`` prints it; ``--write FILE...`` replaces the table between
the ``<!-- config-table:start -->`` and ``<!-- config-table:end -->`` markers of each file.
tests/test_config_table.py fails when a page holding the markers differs from it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cst_chassis.config import settings

START = "<!-- config-table:start -->"
END = "<!-- config-table:end -->"


def config_table() -> str:
    """The Markdown table of every ``CST_*`` key, its default and accepted values."""
    lines = ["| key | default | accepted values |", "| --- | --- | --- |"]
    lines += [
        f"| `{setting.key}` | {setting.default_text} | {setting.accepted} |"
        for _, setting in settings()
    ]
    return "\n".join(lines) + "\n"


def table_in(text: str) -> str:
    """The text between the markers of ``text`` (without the blank lines around it)."""
    start = text.index(START) + len(START)
    return text[start : text.index(END, start)].strip("\n") + "\n"


def replace_table(text: str) -> str:
    """``text`` with the table between its markers replaced by :func:`config_table`."""
    start = text.index(START) + len(START)
    end = text.index(END, start)
    return text[:start] + "\n\n" + config_table() + "\n" + text[end:]


def main(argv: list[str]) -> int:
    if argv[:1] == ["--write"]:
        for name in argv[1:]:
            path = Path(name)
            path.write_text(replace_table(path.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    sys.stdout.write(config_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
