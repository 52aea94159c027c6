"""Two real `guanwei serve` processes on one PostgreSQL and one Redis: the production shape, proven."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio
from sqlalchemy import func, select, text

from bot.migrate import upgrade_engine
from bot.platform_payloads import read_wechat_reply, sign_wechat, wechat_xml
from bot.storage import Base, Database, Inquiry, Message
from tests.conftest import ROOT, TEST_ENV, TOKEN
from tests.test_crash import free_port, wait_until_up

LEADER_KEY = "guanwei:scheduler:leader"


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("GUANWEI_TEST_REDIS_URL")
    if not url:
        pytest.skip("GUANWEI_TEST_REDIS_URL not set: the multi-process test needs the real Redis (.ci/run sets it)")
    return url


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """The shipped config with a short scheduler lock, so a takeover happens within the test."""
    text = (ROOT / "config.yaml").read_text(encoding="utf-8").replace("leader_lock_seconds: 60", "leader_lock_seconds: 3")
    text = text.replace("sweep_interval_seconds: 30", "sweep_interval_seconds: 1")
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
async def cluster(postgres_url: str, redis_url: str, config_file: Path,
                  tmp_path: Path) -> AsyncIterator[tuple[list[subprocess.Popen[bytes]], list[int]]]:
    database = Database(postgres_url)
    await upgrade_engine(database.engine)
    async with database.engine.begin() as connection:
        tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await database.dispose()
    client = redis.asyncio.from_url(redis_url)
    await client.delete(LEADER_KEY)
    env = {**os.environ, **TEST_ENV, "GUANWEI_CONFIG": str(config_file), "GUANWEI_DATABASE_URL": postgres_url,
           "GUANWEI_REDIS_URL": redis_url}
    ports = [free_port(), free_port()]
    servers = [subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port)],  # noqa: S603
                                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for port in ports]
    try:
        for port in ports:
            await wait_until_up(port)
        yield servers, ports
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        keys = [key async for key in client.scan_iter("guanwei:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def pids_of(servers: list[subprocess.Popen[bytes]]) -> Iterator[int]:
    return (server.pid for server in servers)


async def test_two_workers_200_messages_three_times_each_one_scheduler_and_takeover(
    cluster: tuple[list[subprocess.Popen[bytes]], list[int]], postgres_url: str, redis_url: str
) -> None:
    servers, ports = cluster
    texts = ["请问博物馆几点开门", "导游强制购物怎么办", "有线电视没信号", "KTV噪音扰民", "景区门票多少钱"]
    replies: dict[int, list[str]] = {}

    async def deliver(session: aiohttp.ClientSession, n: int, attempt: int) -> None:
        created = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
        xml = wechat_xml(to_user="gh_cluster0000001", from_user=f"oCluster{n:020d}", created_at=created,
                         msg_type="text", msg_id=8_000_000_000_000_000_000 + n, Content=texts[n % len(texts)])
        signed = sign_wechat(xml, token=TOKEN, timestamp=int(time.time()), nonce=f"{n}-{attempt}")
        port = ports[(n + attempt) % 2]  # the retries land on both workers
        for _ in range(5):  # as the platform does: a 5xx is retried
            async with session.post(f"http://127.0.0.1:{port}/wechat", params=signed.query, data=signed.body) as r:
                if r.status == 200:
                    replies.setdefault(n, []).append(read_wechat_reply(await r.text()).get("Content", ""))
                    return
            await asyncio.sleep(0.5)
        raise AssertionError(f"message {n} attempt {attempt} never accepted")

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(deliver(session, n, attempt) for n in range(200) for attempt in range(3)))

    assert len(replies) == 200
    assert all(len(set(sent)) == 1 and len(sent) == 3 for sent in replies.values())
    database = Database(postgres_url)
    try:
        async with database.transaction() as session:
            assert await session.scalar(select(func.count()).select_from(Inquiry)) == 200
            assert await session.scalar(select(func.count()).select_from(Message).where(Message.direction == "in")) == 200
    finally:
        await database.dispose()

    # Exactly one scheduler: the lock names one of the two workers; kill it and the other takes over.
    client = redis.asyncio.from_url(redis_url)
    try:
        holder = (await client.get(LEADER_KEY) or b"").decode()
        leader_pid = int(holder.split(":")[1])
        assert leader_pid in set(pids_of(servers))
        os.kill(leader_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        new_holder = holder
        while time.monotonic() < deadline and (new_holder == holder or not new_holder):
            await asyncio.sleep(0.2)
            new_holder = (await client.get(LEADER_KEY) or b"").decode()
        other = next(pid for pid in pids_of(servers) if pid != leader_pid)
        assert int(new_holder.split(":")[1]) == other
    finally:
        await client.aclose()


def worker_pids(parent: int) -> set[int]:
    """`serve --workers N`'s workers: the parent's children, less multiprocessing's resource tracker."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return {int(pid) for pid in children if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()}


async def wait_for_workers(parent: int, count: int, seconds: float) -> set[int]:
    """The workers once there are ``count`` of them: on a loaded machine the port answers when the first worker
    listens, and a child that has just forked (the resource tracker before its exec) still shows the parent's
    command line, so one look may count one too few or one too many."""
    deadline = time.monotonic() + seconds
    workers = worker_pids(parent)
    while len(workers) != count and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        workers = worker_pids(parent)
    return workers


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except OSError:
        return True
    return state == "Z"  # exited; only its parent has yet to reap it


async def wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not all(gone(pid) for pid in pids):
        await asyncio.sleep(0.1)
    return {pid for pid in pids if not gone(pid)}


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
async def test_stopping_the_parent_of_serve_workers_stops_every_worker(
    redis_url: str, tmp_path: Path, how: signal.Signals
) -> None:
    # Only the parent is signalled, as a supervisor (systemd with KillMode=process) or `kill PID` does.
    env = {**os.environ, **TEST_ENV, "GUANWEI_CONFIG": str(ROOT / "config.yaml"), "GUANWEI_DATA_DIR": str(tmp_path),
           "GUANWEI_REDIS_URL": redis_url}
    env.pop("GUANWEI_DATABASE_URL", None)
    subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    port = free_port()
    parent = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port), "--workers", "2"],  # noqa: S603
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    try:
        await wait_until_up(port, seconds=40)
        workers = await wait_for_workers(parent.pid, 2, seconds=20)
        assert len(workers) == 2
        parent.send_signal(how)
        assert await wait_gone(workers, seconds=25) == set()
        exit_code = parent.wait(timeout=10)
        assert exit_code == (-signal.SIGKILL if how is signal.SIGKILL else 0)
    finally:
        for pid in [parent.pid, *workers]:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)
        parent.wait(timeout=10)
