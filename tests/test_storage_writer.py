"""`Database.run_write`: what a caller is told matches what is in the database, alone or in a batch.

On SQLite pushes that arrive together share one transaction (group commit), each in a savepoint; on
PostgreSQL each has its own. Either way: a call that returned is stored, a call that raised left nothing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import storage
from bot.storage import Database, Message, StorageUnavailable

RECORDED_AT = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


def inbound(dedup_key: str) -> dict[str, object]:
    return {
        "direction": "in", "channel": "wechat", "account": "gh_test", "sender": "o-follower", "kind": "text",
        "content": f"问题 {dedup_key}", "dedup_key": dedup_key, "recorded_at": RECORDED_AT, "fields": {},
    }


def store(dedup_key: str):
    def work(session: Session) -> int:
        return storage.insert_row(session, Message, inbound(dedup_key))

    return work


def store_then_fail(dedup_key: str):
    def work(session: Session) -> int:
        storage.insert_row(session, Message, inbound(dedup_key))
        raise ValueError("the work's own bug")

    return work


async def stored_keys(database: Database) -> set[str]:
    async with database.transaction() as session:
        return set((await session.scalars(select(Message.dedup_key))).all())


async def test_a_burst_of_writes_is_stored_whole_and_each_caller_gets_its_own_row(database: Database) -> None:
    ids = await asyncio.gather(*(database.run_write(store(f"k{n}")) for n in range(150)))
    assert len(set(ids)) == 150
    async with database.transaction() as session:
        rows = (await session.execute(select(Message.id, Message.dedup_key))).all()
    assert {row.dedup_key: row.id for row in rows} == {f"k{n}": ids[n] for n in range(150)}


async def test_one_failing_work_undoes_only_its_own_writes(database: Database) -> None:
    works = [store("a"), store_then_fail("b"), store("c")]
    results = await asyncio.gather(*(database.run_write(work) for work in works), return_exceptions=True)
    assert isinstance(results[0], int)
    assert isinstance(results[1], ValueError)
    assert isinstance(results[2], int)
    assert await stored_keys(database) == {"a", "c"}


async def test_a_duplicate_push_raises_integrity_error_for_its_caller_alone(database: Database) -> None:
    await database.run_write(store("dup"))
    results = await asyncio.gather(
        database.run_write(store("x")), database.run_write(store("dup")), database.run_write(store("y")),
        return_exceptions=True,
    )
    assert isinstance(results[1], IntegrityError)
    assert not isinstance(results[0], BaseException)
    assert not isinstance(results[2], BaseException)
    assert await stored_keys(database) == {"dup", "x", "y"}


async def test_a_statement_that_fails_the_database_fails_its_own_caller_only(database: Database) -> None:
    def broken(session: Session) -> None:
        session.execute(text("INSERT INTO no_such_table VALUES (1)"))

    works = [store("p"), broken, store("q")]
    results = await asyncio.gather(*(database.run_write(work) for work in works), return_exceptions=True)
    assert isinstance(results[1], StorageUnavailable)
    # On SQLite the three shared a transaction that failed; the other two were written again alone.
    assert not isinstance(results[0], BaseException)
    assert not isinstance(results[2], BaseException)
    assert await stored_keys(database) == {"p", "q"}


@pytest.mark.parametrize("calls", [1, 64, 65, 200])
async def test_batches_above_the_group_limit_are_all_written(tmp_path, calls: int) -> None:
    from bot.migrate import upgrade_engine

    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'batch.sqlite3'}")
    await upgrade_engine(database.engine)
    try:
        await asyncio.gather(*(database.run_write(store(f"n{n}")) for n in range(calls)))
        async with database.transaction() as session:
            assert await session.scalar(select(func.count()).select_from(Message)) == calls
    finally:
        await database.dispose()


async def test_a_database_locked_by_another_process_is_storage_unavailable_for_the_whole_batch(tmp_path) -> None:
    import sqlite3

    from bot.migrate import upgrade_engine

    path = tmp_path / "locked.sqlite3"
    database = Database(f"sqlite+aiosqlite:///{path}")
    await upgrade_engine(database.engine)
    other_process = sqlite3.connect(path, isolation_level=None)
    try:
        other_process.execute("BEGIN IMMEDIATE")  # holds the write lock past our busy timeout
        results = await asyncio.gather(*(database.run_write(store(f"k{n}")) for n in range(5)),
                                       return_exceptions=True)
        assert all(isinstance(result, StorageUnavailable) for result in results)  # the platforms retry them
        other_process.execute("ROLLBACK")
        await database.run_write(store("after"))
        assert await stored_keys(database) == {"after"}
    finally:
        other_process.close()
        await database.dispose()
