"""The JSON every bench writes with ``--json PATH``, read by ``bench/charts.py`` for the docs.

One shape for all of them: which bench, the exact command line, where the figures come from
(``"measured"`` by that run, or ``"transcribed"`` from the documentation when a run was not
repeatable here, with a note saying so), the versions that ran, and the bench's own results.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = ("flask", "flask-restful", "sqlalchemy", "cst-chassis")


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def write(path: str | Path, bench: str, results: dict[str, Any]) -> None:
    """Write ``results`` of ``bench`` to ``path`` with the command line that produced them."""
    document = {
        "bench": bench,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "source": "measured",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()[0]},
        "versions": _versions(),
        "results": results,
    }
    Path(path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
