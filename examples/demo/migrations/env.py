"""Alembic environment: runs the migrations on a connection the caller passes, or on DATABASE_URL.

No ``logging.config.fileConfig`` here: it would disable the loggers the app already has.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from examples.demo.database import database_url_from_env, derive_urls
from examples.demo.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """``alembic upgrade head --sql``: print the SQL instead of running it."""
    sync_url = derive_urls(database_url_from_env()).sync
    context.configure(url=sync_url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run on the connection from ``examples.demo.migrate.upgrade``, or open one."""
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    sync_url = derive_urls(database_url_from_env()).sync
    engine = create_engine(sync_url, poolclass=pool.NullPool)
    try:
        with engine.begin() as own_connection:
            _configure(own_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
