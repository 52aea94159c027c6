"""The alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from bot.migrate import alembic_config, current_revision, ensure_current, head_revision, upgrade_engine
from bot.storage import Base, Database


async def test_migrated_schema_matches_the_models(database: Database) -> None:
    async with database.engine.connect() as connection:
        differences = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert differences == []
    assert await current_revision(database.engine) == head_revision(database.url)
    await ensure_current(database.engine, database.url)  # does not raise


async def test_downgrade_to_empty_and_up_again(database: Database) -> None:
    def down(sync) -> None:  # type: ignore[no-untyped-def]
        config = alembic_config(database.url)
        config.attributes["connection"] = sync
        command.downgrade(config, "base")

    async with database.engine.begin() as connection:
        await connection.run_sync(down)
        tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    assert set(tables) <= {"alembic_version"}
    await upgrade_engine(database.engine)
    assert await current_revision(database.engine) == head_revision(database.url)
