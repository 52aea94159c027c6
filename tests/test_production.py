"""Production shape: readiness, metrics, and state shared by several workers through the real Redis."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import create_app
from bot.config import Settings, load_settings
from bot.storage import Database, Inquiry
from knowledge import Classifier
from tests.conftest import ROOT, Clock
from tests.test_wechat_webhook import now_of, post, push, reply_text


async def test_readyz_checks_the_database(client: TestClient) -> None:
    response = await client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"status": "ready", "database": "ok", "shared_state": "ok"}


async def test_readyz_is_503_when_the_database_is_away(settings: Settings, classifier: Classifier,
                                                       clock: Clock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    broken = Database(f"sqlite+aiosqlite:///{blocker / 'db.sqlite3'}")
    async with TestClient(TestServer(create_app(settings, database=broken, classifier=classifier, clock=clock))) as c:
        response = await c.get("/readyz")
        assert response.status == 503 and (await response.json())["database"].startswith("unavailable")
    await broken.dispose()


async def test_metrics_count_messages_latency_and_open_inquiries(client: TestClient) -> None:
    await post(client, push("text", Content="景区发生踩踏，有人受伤"))
    await post(client, push("text", sender="oBBBBBBBBBBBBBBBBBBBBBBBBBBB", Content="请问博物馆几点开门"))
    text = await (await client.get("/metrics")).text()
    assert 'guanwei_messages_total{channel="wechat",kind="text",severity="critical"} 1.0' in text
    assert 'guanwei_messages_total{channel="wechat",kind="text",severity="routine"} 1.0' in text
    assert 'guanwei_webhook_seconds_count{channel="wechat",status="200"} 2.0' in text
    assert "guanwei_open_inquiries{department=" in text and "guanwei_overdue_inquiries 0.0" in text


@pytest.fixture
async def two_workers(env: dict[str, str], database: Database, classifier: Classifier,
                      clock: Clock) -> AsyncIterator[tuple[TestClient, TestClient]]:
    url = os.environ.get("GUANWEI_TEST_REDIS_URL")
    if not url:
        pytest.skip("GUANWEI_TEST_REDIS_URL not set: multi-worker Redis tests skipped (.ci/run sets it)")
    prefix_env = {**env, "GUANWEI_REDIS_URL": url}
    settings = load_settings(ROOT / "config.yaml", env=prefix_env)
    apps = [create_app(settings, database=database, classifier=classifier, clock=clock) for _ in range(2)]
    prefix = f"guanwei-test-{secrets.token_hex(4)}"
    for app in apps:  # a key prefix of this test's own, removed afterwards
        from bot.context import SHARED_STATE

        app[SHARED_STATE].prefix = prefix  # type: ignore[attr-defined]
    async with TestClient(TestServer(apps[0])) as first, TestClient(TestServer(apps[1])) as second:
        yield first, second
        redis = apps[0][SHARED_STATE].redis  # type: ignore[attr-defined]
        keys = [key async for key in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)


async def test_retries_spread_over_two_workers_make_one_inquiry_and_identical_replies(
    two_workers: tuple[TestClient, TestClient], database: Database
) -> None:
    first, second = two_workers
    pushes = [push("text", sender=f"oWorker{n:021d}", Content=f"请问第{n}个景区几点开门") for n in range(20)]
    attempts = [post(worker, xml) for xml in pushes for worker in (first, second, first)]
    results = await asyncio.gather(*attempts)
    assert {status for status, _ in results} == {200}
    for n in range(20):
        replies = {reply_text(body) for _, body in results[3 * n: 3 * n + 3]}
        assert len(replies) == 1
    async with database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Inquiry)) == 20


async def test_replay_memory_is_shared_between_workers(two_workers: tuple[TestClient, TestClient]) -> None:
    from bot.platform_payloads import sign_wechat
    from tests.conftest import TOKEN

    first, second = two_workers
    signed = sign_wechat(push("text", Content="请问博物馆几点开门"), token=TOKEN, timestamp=now_of(first), nonce="shared")
    assert (await first.post("/wechat", params=signed.query, data=signed.body)).status == 200
    forged = push("text", sender="oForgedForgedForgedForgedFor", Content="导游强制购物，我要曝光")
    assert (await second.post("/wechat", params=signed.query, data=forged)).status == 403


async def test_a_redis_restart_in_the_middle_of_traffic_loses_nothing(
    env: dict[str, str], database: Database, classifier: Classifier, clock: Clock, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    import shutil
    import subprocess

    from tests.test_crash import free_port

    server_binary = shutil.which("redis-server")
    if server_binary is None:
        pytest.skip("redis-server not installed: a private Redis to restart is needed")
    port = free_port()

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([server_binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",  # noqa: S603
                                 "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)

    redis_process = start()
    await asyncio.sleep(0.3)
    settings = load_settings(ROOT / "config.yaml", env={**env, "GUANWEI_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    app = create_app(settings, database=database, classifier=classifier, clock=clock)
    try:
        async with TestClient(TestServer(app)) as c:
            sent = 0

            async def burst(count: int) -> None:
                nonlocal sent
                for _ in range(count):
                    xml = push("text", sender=f"oRestart{sent:020d}", Content="请问博物馆几点开门")
                    first, retry = await post(c, xml), await post(c, xml)
                    assert first[0] == retry[0] == 200 and reply_text(first[1]) == reply_text(retry[1])
                    sent += 1

            await burst(10)
            redis_process.terminate()
            redis_process.wait(timeout=10)
            await burst(10)  # Redis gone: degraded, still accepting, still one inquiry per message
            redis_process = start()
            await asyncio.sleep(0.3)
            await burst(10)  # Redis back
    finally:
        redis_process.terminate()
        redis_process.wait(timeout=10)
    async with database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Inquiry)) == 30
