"""`kill -9` of a real `guanwei serve` in the middle of a burst: every message that got a 200 is stored."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from sqlalchemy import select

from bot.migrate import upgrade_engine
from bot.platform_payloads import sign_wechat, wechat_xml
from bot.storage import Database, Message
from tests.conftest import ROOT, TEST_ENV, TOKEN


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, **TEST_ENV, "GUANWEI_CONFIG": str(ROOT / "config.yaml"), "GUANWEI_DATA_DIR": str(workdir)}
    env.pop("GUANWEI_REDIS_URL", None)
    env.pop("GUANWEI_DATABASE_URL", None)
    return subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "bot", "serve", "--port", str(port)], cwd=workdir, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


async def wait_until_up(port: int, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("server did not start")


async def test_kill_9_during_a_burst_loses_no_acknowledged_message(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'guanwei.sqlite3'}")
    await upgrade_engine(database.engine)
    await database.dispose()
    port = free_port()
    server = start_server(tmp_path, port)
    acknowledged: list[int] = []
    try:
        await wait_until_up(port)

        async def send(session: aiohttp.ClientSession, n: int) -> None:
            msg_id = 7_000_000_000_000_000_000 + n
            xml = wechat_xml(to_user="gh_crashtest00001", from_user=f"oCrash{n:022d}", created_at=datetime.now(UTC),
                             msg_type="text", msg_id=msg_id, Content=f"请问第{n}个问题怎么办理")
            signed = sign_wechat(xml, token=TOKEN, timestamp=int(time.time()))
            try:
                async with session.post(f"http://127.0.0.1:{port}/wechat", params=signed.query,
                                        data=signed.body) as response:
                    await response.read()
                    if response.status == 200:
                        acknowledged.append(msg_id)
            except (TimeoutError, aiohttp.ClientError):
                pass  # the connection died with the server: not acknowledged, the platform would retry

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            burst = [asyncio.create_task(send(session, n)) for n in range(300)]
            while len(acknowledged) < 60:
                await asyncio.sleep(0.005)
            os.kill(server.pid, signal.SIGKILL)
            await asyncio.gather(*burst)
    finally:
        server.kill()
        server.wait(timeout=10)

    assert 60 <= len(acknowledged) < 300  # killed mid-burst
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'guanwei.sqlite3'}")
    try:
        async with database.transaction() as session:
            stored = set((await session.scalars(select(Message.platform_msg_id).where(
                Message.direction == "in"))).all())
    finally:
        await database.dispose()
    assert {str(m) for m in acknowledged} <= stored
