"""Apply the demo's Alembic migrations (a real ``alembic upgrade head``) from Python."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from examples.demo.database import Database

__all__ = ["ALEMBIC_INI", "MIGRATIONS_DIR", "alembic_config", "head_revision", "upgrade"]

HERE = Path(__file__).resolve().parent
ALEMBIC_INI = HERE / "alembic.ini"
MIGRATIONS_DIR = HERE / "migrations"


def alembic_config() -> Config:
    """The same configuration ``alembic -c examples/demo/alembic.ini ...`` uses."""
    return Config(str(ALEMBIC_INI))


def head_revision() -> str | None:
    """The newest revision in the migrations folder."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(database: Database, revision: str = "head") -> None:
    """Run ``alembic upgrade <revision>`` on the app's sync engine, in one transaction."""
    config = alembic_config()
    with database.engine.begin() as connection:
        # env.py uses this connection instead of opening its own (Alembic's documented recipe).
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
