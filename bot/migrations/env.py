"""Alembic environment: runs migrations over the application's async engine."""

from alembic import context

import bot.publishing_models  # noqa: F401  (the publishing desk's tables join Base.metadata)
from bot.storage import Base

target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("guanwei runs migrations online only: guanwei db upgrade")

# bot.migrate.upgrade_engine hands us a connection of the application's own async engine.
_run(context.config.attributes["connection"])
