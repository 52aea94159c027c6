"""Shared pieces of the benchmarks: payloads, the async load generator, statistics, machine facts.

The load generator is an aiohttp client in the benchmark's own process; every server under test
runs in a separate process. Both share the machine's cores (2 on the development machine).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import platform
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bot.platform_payloads import sign_wechat, wechat_xml

ROOT = Path(__file__).resolve().parent.parent
DEV_SET = ROOT / "tests" / "data" / "dev.jsonl"
CONFIG = ROOT / "config.yaml"

# Valid-format development secrets (the same shapes as tests/conftest.py TEST_ENV).
TOKEN = "guanweibenchtoken"
APPID = "wx1234567890abcdef"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
WEIBO_SECRET = "xyz123xyz"
SECRETS = {
    "GUANWEI_WECHAT_TOKEN": TOKEN,
    "GUANWEI_WECHAT_APPID": APPID,
    "GUANWEI_WECHAT_AES_KEY": AES_KEY,
    "GUANWEI_WEIBO_APP_SECRET": WEIBO_SECRET,
}
OUR_ACCOUNT = "gh_benchaccount01"

# Hard ceilings on every loop: no run is allowed past these whatever its arguments say.
MAX_REQUESTS = 50_000
MAX_SECONDS = 120.0


def dev_texts() -> list[str]:
    return [json.loads(line)["text"] for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]


def openid(n: int) -> str:
    return "o" + hashlib.sha256(f"bench-follower-{n}".encode()).hexdigest()[:27]


@dataclass(frozen=True)
class Push:
    """One follower push before signing: the XML body and what identifies it."""

    n: int
    kind: str
    sender: str
    msg_id: int | None
    xml: str


class Payloads:
    """Realistic mixed WeChat pushes: ~85% texts from tests/data/dev.jsonl, voice with recognition,
    images, locations and follow events. Message ids are unique per run (a run prefix)."""

    def __init__(self, *, senders: int = 1000, seed: str | None = None) -> None:
        self.texts = dev_texts()
        self.senders = senders
        run = seed or secrets.token_hex(4)
        self.base_id = int(hashlib.sha256(run.encode()).hexdigest()[:9], 16) * 100_000
        self.created = int(time.time())

    def push(self, n: int, *, sender: str | None = None) -> Push:
        sender = sender or openid(n % self.senders)
        created = datetime.fromtimestamp(self.created, UTC)
        slot = n % 20
        msg_id: int | None = self.base_id + n
        if slot < 17:
            kind, fields = "text", {"Content": self.texts[n % len(self.texts)]}
        elif slot == 17:
            kind = "voice"
            fields = {"MediaId": f"media{msg_id}", "Format": "amr", "Recognition": self.texts[(n * 7) % len(self.texts)]}
        elif slot == 18:
            kind, fields = "image", {"PicUrl": "http://mmbiz.qpic.cn/bench.jpg", "MediaId": f"media{msg_id}"}
        else:
            if n % 40 == 19:
                kind, fields = "location", {"Location_X": 30.25, "Location_Y": 120.16, "Scale": 15, "Label": "西湖景区"}
            else:
                kind, fields, msg_id = "event", {"Event": "subscribe", "EventKey": ""}, None
                # Events carry no MsgId: WeChat dedups them by sender and CreateTime, so make those unique.
                created = datetime.fromtimestamp(self.created + n, UTC)
        xml = wechat_xml(to_user=OUR_ACCOUNT, from_user=sender, created_at=created, msg_type=kind,
                         msg_id=msg_id, **fields)
        return Push(n, kind, sender, msg_id, xml)


def signed(push: Push) -> tuple[dict[str, str], bytes]:
    """Sign as WeChat does, now: fresh timestamp, a nonce never used before."""
    s = sign_wechat(push.xml, token=TOKEN, timestamp=int(time.time()), nonce=secrets.token_hex(8), openid=push.sender)
    return s.query, s.body


@dataclass
class Result:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    elapsed_s: float = 0.0
    bodies: list[tuple[int, int, str]] = field(default_factory=list)  # (n, status, body) when kept

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    def summary(self) -> dict[str, float]:
        lat = sorted(self.latencies_ms)
        return {
            "requests": len(lat) + self.errors,
            "ok": self.ok,
            "non_200": sum(v for k, v in self.statuses.items() if k != 200),
            "errors": self.errors,
            "seconds": self.elapsed_s,
            "rps": self.ok / self.elapsed_s if self.elapsed_s else 0.0,
            "p50_ms": percentile(lat, 50),
            "p99_ms": percentile(lat, 99),
            "max_ms": lat[-1] if lat else float("nan"),
        }


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


async def _one(session: aiohttp.ClientSession, url: str, push: Push, result: Result, keep: bool,
               timeout: aiohttp.ClientTimeout) -> None:
    query, body = signed(push)
    t0 = time.perf_counter()
    try:
        async with session.post(url, params=query, data=body, timeout=timeout,
                                headers={"Content-Type": "text/xml"}) as response:
            text = await response.text()
            status = response.status
    except (aiohttp.ClientError, TimeoutError):
        result.errors += 1
        return
    result.latencies_ms.append((time.perf_counter() - t0) * 1000)
    result.statuses[status] = result.statuses.get(status, 0) + 1
    if keep:
        result.bodies.append((push.n, status, text))


async def closed_loop(url: str, make: Callable[[int], Push], *, requests: int, concurrency: int,
                      max_seconds: float = 60.0, warmup: int = 0, keep: bool = False) -> Result:
    """`concurrency` clients each send, wait for the answer, send the next: the server's ceiling."""
    requests, max_seconds = min(requests, MAX_REQUESTS), min(max_seconds, MAX_SECONDS)
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        scratch = Result()
        for n in range(warmup):  # a few sequential requests: connections open, caches warm
            await _one(session, url, make(MAX_REQUESTS + n), scratch, False, timeout)
        result = Result()
        counter = iter(range(requests))
        deadline = time.perf_counter() + max_seconds

        async def client() -> None:
            for n in counter:
                if time.perf_counter() > deadline:
                    return
                await _one(session, url, make(n), result, keep, timeout)

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        result.elapsed_s = time.perf_counter() - t0
    return result


async def fixed_rate(url: str, make: Callable[[int], Push], *, rate: float, seconds: float,
                     max_in_flight: int = 500) -> Result:
    """Open loop: a request every 1/rate s whatever the answers do, as a burst of followers would."""
    seconds = min(seconds, MAX_SECONDS)
    total = min(int(rate * seconds), MAX_REQUESTS)
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=max_in_flight)
    result = Result()
    async with aiohttp.ClientSession(connector=connector) as session:
        for n in range(5):
            await _one(session, url, make(MAX_REQUESTS + n), Result(), False, timeout)
        tasks = []
        t0 = time.perf_counter()
        for n in range(total):
            delay = t0 + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_one(session, url, make(n), result, False, timeout)))
        await asyncio.wait(tasks, timeout=15)
        result.elapsed_s = time.perf_counter() - t0
    return result


def machine() -> dict[str, str]:
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")
