"""Schema migrations (alembic) for SQLite and PostgreSQL, driven from code rather than an ini file."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class SchemaOutOfDate(Exception):
    pass


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision` (blocking; call outside a running event loop)."""
    from bot.storage import Database  # storage imports nothing of ours; here to keep start-up light

    async def run() -> None:
        database = Database(url)  # creates the SQLite data directory on a first run
        try:
            await upgrade_engine(database.engine, revision)
        finally:
            await database.dispose()

    asyncio.run(run())


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


async def ensure_current(engine: AsyncEngine, url: str) -> None:
    """Refuse to serve on a schema older (or newer) than this code's."""
    have, want = await current_revision(engine), head_revision(url)
    if have != want:
        state = "empty" if have is None else f"at revision {have}"
        raise SchemaOutOfDate(f"database schema is {state}, this version needs {want}: run `guanwei db upgrade`")


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """`upgrade` for callers already inside an event loop (tests, `serve --migrate`)."""

    def run(sync_connection) -> None:  # type: ignore[no-untyped-def]
        config = alembic_config(engine.url.render_as_string(hide_password=False))
        config.attributes["connection"] = sync_connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)
