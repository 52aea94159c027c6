"""Shared fixtures: settings from the shipped config.yaml, a migrated database, a client, a clock."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from loguru import logger
from sqlalchemy import text
from sqlalchemy.engine import make_url

import bot.publishing_models  # noqa: F401  (Base.metadata complete: TRUNCATE and schema comparison)
from bot.app import create_app
from bot.config import Settings, load_settings
from bot.migrate import upgrade_engine
from bot.storage import Base, Database
from knowledge import Classifier

ROOT = Path(__file__).resolve().parent.parent
SHANGHAI = ZoneInfo("Asia/Shanghai")

TOKEN = "guanweitesttoken"
APPID = "wx1234567890abcdef"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as the admin console gives
WEIBO_SECRET = "xyz123xyz"
TEST_ENV = {
    "GUANWEI_WECHAT_TOKEN": TOKEN,
    "GUANWEI_WECHAT_APPID": APPID,
    "GUANWEI_WECHAT_AES_KEY": AES_KEY,
    "GUANWEI_WEIBO_APP_SECRET": WEIBO_SECRET,
}


def shanghai(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


class Clock:
    """A clock the test sets: every time-dependent part of guanwei takes it as a parameter."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """What the code logs during the test, one string a message."""
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="DEBUG", format="{message}")
    try:
        yield lines
    finally:
        logger.remove(sink)


@pytest.fixture
def clock() -> Clock:
    return Clock(shanghai(2026, 12, 3, 10, 0))  # a winter Thursday, reply hours


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**TEST_ENV, "GUANWEI_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(ROOT / "config.yaml", env=env)


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    return Classifier.load()


# --- databases: SQLite always; PostgreSQL when GUANWEI_TEST_DATABASE_URL is set -------------------

async def _admin(url: str, statement: str) -> None:
    import asyncpg

    parsed = make_url(url)
    connection = await asyncpg.connect(
        host=parsed.host or "127.0.0.1", port=parsed.port or 5432, user=parsed.username or "postgres",
        password=parsed.password, database=parsed.database or "postgres",
    )
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _admin_sync(url: str, statement: str) -> None:
    # In a thread of its own: this session fixture is first requested from inside a test's event loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: asyncio.run(_admin(url, statement))).result()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of our own on the test server, dropped at the end of the session."""
    base = os.environ.get("GUANWEI_TEST_DATABASE_URL")
    if not base:
        pytest.skip("GUANWEI_TEST_DATABASE_URL not set: PostgreSQL tests skipped (.ci/run sets it)")
    name = f"guanwei_test_{secrets.token_hex(4)}"
    _admin_sync(base, f'CREATE DATABASE "{name}"')
    url = make_url(base).set(drivername="postgresql+asyncpg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        _admin_sync(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'guanwei.sqlite3'}")
        await upgrade_engine(db.engine)
    else:
        db = Database(request.getfixturevalue("postgres_url"))
        await upgrade_engine(db.engine)
        async with db.engine.begin() as connection:
            tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def client(
    settings: Settings, database: Database, classifier: Classifier, clock: Clock
) -> AsyncIterator[TestClient]:
    app = create_app(settings, database=database, classifier=classifier, clock=clock)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def import_starter_faq(database: Database) -> int:
    """The shipped example knowledge base, as `guanwei init` imports it."""
    from datetime import UTC

    from bot.storage import save_faq_entries
    from knowledge.faq import FAQ_FILE, entries_to_dicts, load_entries

    async with database.transaction() as session:
        written, _ = await save_faq_entries(
            session, entries_to_dicts(load_entries(FAQ_FILE)), datetime(2026, 12, 1, tzinfo=UTC), replace_all=True
        )
    return written


@pytest.fixture
async def faq_client(
    settings: Settings, database: Database, classifier: Classifier, clock: Clock
) -> AsyncIterator[TestClient]:
    """A client whose database holds the starter FAQ."""
    await import_starter_faq(database)
    app = create_app(settings, database=database, classifier=classifier, clock=clock)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh directory, as after a clone: no .env, no data, the shipped config."""
    monkeypatch.chdir(tmp_path)
    for name in TEST_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GUANWEI_CONFIG", str(ROOT / "config.yaml"))
    monkeypatch.setenv("GUANWEI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GUANWEI_DATABASE_URL", raising=False)
    return tmp_path
