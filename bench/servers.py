"""The servers under test, each started as its own process on loopback and stopped by its pid.

- bare: bench.bare_app (aiohttp answering every POST /wechat with `success`)
- werobot: bench.werobot_app (WeRoBot, fixed text reply, `robot.run(server="auto")`: bottle picks
  Waitress first when it is installed)
- guanwei: `guanwei serve --port P [--workers N]` (the venv's console script) in a temp working dir with a `.env`,
  GUANWEI_CONFIG at the shipped config.yaml; the database migrated first with `bot.migrate.upgrade`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.common import CONFIG, ROOT, SECRETS, Payloads, signed

PYTHON = sys.executable
PORTS = range(18700, 18720)  # the loopback range every server is started on, one after another
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/13"


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    workdir: Path
    log: Path
    started_at: float
    ready_after_s: float = float("nan")
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/wechat"

    def pids(self) -> list[int]:
        """The serving processes: the server itself, or its workers when it forks them."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            kids = [int(p) for p in children.read_text().split()]
        except OSError:
            kids = []
        # `serve --workers N` spawns N workers (plus multiprocessing's resource tracker, which is tiny).
        workers = []
        for kid in kids:
            with contextlib.suppress(OSError):
                if b"resource_tracker" not in Path(f"/proc/{kid}/cmdline").read_bytes():
                    workers.append(kid)
        return workers or [self.process.pid]

    def stop(self) -> None:
        """SIGINT to the server's own process group, as Ctrl+C in a terminal would (`serve --workers N` passes
        the stop on to its workers, which run in process groups of their own)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


_next_port = iter(PORTS)


def next_port() -> int:
    return next(_next_port)


def _spawn(name: str, argv: list[str], *, cwd: Path, env: dict[str, str], port: int) -> Server:
    log = cwd / f"{name}.log"
    handle = open(log, "wb")  # noqa: SIM115 - lives as long as the process
    started = time.perf_counter()
    # A session (and process group) of its own, so `stop` reaches the workers too and nothing else.
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT,
                               start_new_session=True)
    return Server(name, process, port, cwd, log, started, env=env)


async def wait_answered(server: Server, *, timeout: float = 30.0) -> float:
    """Seconds from process launch to the first answered (200) signed push; polls every 10 ms."""
    payloads = Payloads(seed="readiness-" + server.name + str(server.port))
    deadline = time.perf_counter() + timeout
    n = 0
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {server.process.returncode}; see {server.log}:\n"
                                   + server.log.read_text(errors="replace")[-2000:])
            query, body = signed(payloads.push(10_000_000 + n))
            n += 1
            try:
                async with session.post(server.url, params=query, data=body,
                                        timeout=aiohttp.ClientTimeout(total=2)) as response:
                    await response.read()
                    if response.status == 200:
                        server.ready_after_s = time.perf_counter() - server.started_at
                        return server.ready_after_s
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.01)
    server.stop()
    raise RuntimeError(f"{server.name} not answering after {timeout}s; see {server.log}")


def start_bare(port: int) -> Server:
    cwd = Path(tempfile.mkdtemp(prefix="bench-bare-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return _spawn("bare", [PYTHON, "-m", "bench.bare_app", "--port", str(port)], cwd=cwd, env=env, port=port)


def start_werobot(port: int) -> Server:
    cwd = Path(tempfile.mkdtemp(prefix="bench-werobot-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return _spawn("werobot", [PYTHON, "-m", "bench.werobot_app", "--port", str(port)], cwd=cwd, env=env, port=port)


def guanwei_env(workdir: Path, database_url: str | None = None, redis_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUANWEI_")}
    env.update(GUANWEI_CONFIG=str(CONFIG), GUANWEI_DATA_DIR=str(workdir / "data"), PYTHONPATH=str(ROOT))
    if database_url:
        env["GUANWEI_DATABASE_URL"] = database_url
    if redis_url:
        env["GUANWEI_REDIS_URL"] = redis_url
    return env


async def prepare_guanwei(
    database_url: str | None = None, redis_url: str | None = None
) -> tuple[Path, dict[str, str], str]:
    """A temp working dir with `.env` (the secrets), the database migrated: what `guanwei init` leaves."""
    from bot.config import load_settings
    from bot.migrate import upgrade

    workdir = Path(tempfile.mkdtemp(prefix="bench-guanwei-"))
    dotenv = workdir / ".env"
    dotenv.write_text("".join(f"{k}={v}\n" for k, v in SECRETS.items()))
    dotenv.chmod(0o600)
    env = guanwei_env(workdir, database_url, redis_url)
    settings = load_settings(CONFIG, env={**env, **SECRETS})
    await asyncio.to_thread(upgrade, settings.database_url)  # upgrade runs its own event loop
    return workdir, env, settings.database_url


def start_guanwei(port: int, workdir: Path, env: dict[str, str], workers: int = 1) -> Server:
    # The installed console script, what the README runs; `python -m bot` is the same where it is missing.
    script = Path(PYTHON).parent / "guanwei"
    launcher = [str(script)] if script.exists() else [PYTHON, "-m", "bot"]
    argv = [*launcher, "serve", "--port", str(port)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    return _spawn(f"guanwei-w{workers}", argv, cwd=workdir, env=env, port=port)


async def create_pg_database(name: str) -> str:
    import asyncpg

    connection = await asyncpg.connect(PG_ADMIN)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


async def drop_pg_database(name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(PG_ADMIN)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def flush_redis_db13() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    assert client.connection_pool.connection_kwargs.get("db") == 13
    client.flushdb()
    client.close()
