"""The alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

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


async def test_upgrade_from_every_earlier_revision_keeps_the_data(database: Database) -> None:
    """A bureau on any earlier release upgrades in place: data registered then is still there after."""
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    revisions = [r.revision for r in reversed(list(ScriptDirectory.from_config(alembic_config(database.url))
                                                  .walk_revisions()))]
    assert revisions[0] == "0001" and len(revisions) >= 4

    def down(sync) -> None:  # type: ignore[no-untyped-def]
        config = alembic_config(database.url)
        config.attributes["connection"] = sync
        command.downgrade(config, "base")

    async with database.engine.begin() as connection:
        await connection.run_sync(down)
    await upgrade_engine(database.engine, "0001")
    async with database.engine.begin() as connection:
        await connection.execute(text(
            "INSERT INTO inquiries (channel, account, sender, status, severity, department, department_confidence,"
            " score, matched, summary, received_at, due_at, last_message_at) VALUES ('wechat', 'gh_1', 'oOld',"
            " 'open', 'routine', 'market', 0.9, 1.0, '[]', '旧版本登记的留言', :t, :t, :t)"
        ), {"t": "2026-11-30 02:00:00" if database.is_sqlite else datetime(2026, 11, 30, 2, tzinfo=UTC)})
    for revision in revisions[1:]:
        await upgrade_engine(database.engine, revision)  # one release at a time
        assert await current_revision(database.engine) == revision
    async with database.transaction() as session:
        from bot.storage import Inquiry

        inquiry = (await session.scalars(select(Inquiry))).one()
    assert inquiry.summary == "旧版本登记的留言"
    assert inquiry.cycle == 1 and inquiry.clock_started_at == inquiry.received_at
    assert inquiry.next_alert_at == inquiry.received_at  # the scheduler looks at it on its first sweep
