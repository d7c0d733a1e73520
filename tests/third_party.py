"""Fetch third-party code for the outside checks from the package registry, at test time.

Nothing of it is copied into the repository: sdists are downloaded with pip into ``.cache/``
(ignored by git) and reused by later runs; the seed runs in a venv of its own there.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "third-party"


def fetch_sdist(requirement: str, folder: str) -> Path:
    """Download ``requirement``'s sdist and unpack it; return the unpacked ``folder``."""
    target = CACHE / folder
    if target.is_dir():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as download:
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
                *("--no-binary", ":all:", "--dest", download, requirement),
            ],
            check=True,
        )
        (archive,) = Path(download).glob("*.tar.gz")
        with tarfile.open(archive) as tar:
            tar.extractall(download, filter="data")
        Path(download, folder).rename(target)
    return target


SEED_REQUIREMENTS = [
    "cst-micro-chassis==0.1.0",
    # The seed pins flask==1.1.*, whose Jinja2 2.11 imports a name MarkupSafe 2.1 removed.
    "markupsafe<2.1",
    # Its README's pagination example runs on Flask-SQLAlchemy; these are the last for Flask 1.1.
    "flask-sqlalchemy==2.5.1",
    "sqlalchemy==1.4.*",
]


def seed_python() -> Path:
    """A venv with the real cst-micro-chassis 0.1.0 (and its Flask 1.1); its python."""
    target = CACHE / "seed-venv"
    python = target / "bin" / "python"
    if (target / ".installed").exists():
        return python
    venv.create(target, with_pip=True, clear=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *SEED_REQUIREMENTS], check=True)
    (target / ".installed").touch()
    return python
