"""Load test with platform retries (issue 7): nothing lost, nothing duplicated.

    python -m bench.load [--backend sqlite|pg] [--messages 2000] [--concurrency 64]

Starts guanwei (sqlite: the embedded default, one worker; pg: PostgreSQL + Redis, `--workers 2`,
a database of its own created and dropped, Redis db 13 flushed afterwards) and sends a burst of
`--messages` mixed WeChat pushes, each from its own follower. About 30% are sent again 1–2 times
as the platform does when it gets no answer in time: half of those retries race the first attempt
(sent at the same moment), the other half follow once the first answer came back. Every attempt is
freshly signed (new timestamp and nonce), as WeChat's retries are.

Then it reads the database and reports
- accepted: messages that got at least one 200;
- lost: messages that got a 200 but are not in the database;
- duplicated: messages stored more than once, followers with more than one inquiry, or a retry
  whose passive reply differs from the first attempt's;
- p50/p99 latency over all attempts.
Loopback only; bounded (at most 5,000 messages, 120 s of sending).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from bench import servers
from bench.common import Payloads, Push, percentile, signed
from bot.platform_payloads import read_wechat_reply

SENDER_BASE = 50_000_000  # followers of this test never overlap with the readiness probes'


@dataclass
class Attempt:
    status: int
    latency_ms: float
    reply: tuple[str, str] | None  # (MsgType, Content) of the passive reply; None for `success`


@dataclass
class Sent:
    push: Push
    copies: int
    concurrent: bool
    attempts: list[Attempt] = field(default_factory=list)


async def _send(session: aiohttp.ClientSession, url: str, sent: Sent) -> None:
    query, body = signed(sent.push)
    t0 = time.perf_counter()
    try:
        async with session.post(url, params=query, data=body, timeout=aiohttp.ClientTimeout(total=10)) as r:
            text, status = await r.text(), r.status
    except (aiohttp.ClientError, TimeoutError):
        sent.attempts.append(Attempt(0, (time.perf_counter() - t0) * 1000, None))
        return
    reply = None
    if status == 200 and text != "success":
        fields = read_wechat_reply(text)
        reply = (fields.get("MsgType", ""), fields.get("Content", ""))
    sent.attempts.append(Attempt(status, (time.perf_counter() - t0) * 1000, reply))


async def burst(url: str, messages: int, concurrency: int, seed: int = 11) -> tuple[list[Sent], float]:
    rng = random.Random(seed)
    payloads = Payloads(senders=10**9, seed=secrets.token_hex(4))
    plan = []
    for n in range(min(messages, 5_000)):
        push = payloads.push(SENDER_BASE + n)
        retried = rng.random() < 0.3
        plan.append(Sent(push, 1 + (rng.choice((1, 2)) if retried else 0), retried and rng.random() < 0.5))
    gate = asyncio.Semaphore(concurrency)
    deadline = time.perf_counter() + 120

    async def one(sent: Sent) -> None:
        async with gate:
            if time.perf_counter() > deadline:
                return
            if sent.concurrent:
                await asyncio.gather(*(_send(session, url, sent) for _ in range(sent.copies)))
            else:
                for _ in range(sent.copies):
                    await _send(session, url, sent)

    connector = aiohttp.TCPConnector(limit=concurrency * 3)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(s) for s in plan))
        elapsed = time.perf_counter() - t0
    return plan, elapsed


async def audit(database_url: str, plan: list[Sent]) -> dict[str, int]:
    from sqlalchemy import func, select

    from bot.storage import Database, Direction, Inquiry, Message

    senders = [s.push.sender for s in plan]
    database = Database(database_url)
    try:
        async with database.transaction() as session:
            inbound = Counter(dict((await session.execute(
                select(Message.sender, func.count()).where(Message.direction == Direction.IN,
                                                           Message.sender.in_(senders))
                .group_by(Message.sender))).all()))
            inquiries = Counter(dict((await session.execute(
                select(Inquiry.sender, func.count()).where(Inquiry.sender.in_(senders))
                .group_by(Inquiry.sender))).all()))
    finally:
        await database.dispose()
    accepted = lost = stored_twice = two_inquiries = reply_mismatch = 0
    for sent in plan:
        ok = [a for a in sent.attempts if a.status == 200]
        if not ok:
            continue
        accepted += 1
        stored = inbound.get(sent.push.sender, 0)
        lost += stored == 0
        stored_twice += stored > 1
        two_inquiries += inquiries.get(sent.push.sender, 0) > 1
        reply_mismatch += len({a.reply for a in ok}) > 1
    return {"accepted": accepted, "lost": lost, "stored_twice": stored_twice, "two_inquiries": two_inquiries,
            "reply_mismatch": reply_mismatch,
            "duplicated": stored_twice + two_inquiries + reply_mismatch}


async def run(backend: str, messages: int, concurrency: int) -> dict[str, object]:
    pg_name = None
    if backend == "pg":
        pg_name = f"guanwei_bench_load_{secrets.token_hex(3)}"
        url = await servers.create_pg_database(pg_name)
        workdir, env, database_url = await servers.prepare_guanwei(url, servers.REDIS_URL)
        server = servers.start_guanwei(servers.next_port(), workdir, env, workers=2)
    else:
        workdir, env, database_url = await servers.prepare_guanwei()
        server = servers.start_guanwei(servers.next_port(), workdir, env)
    try:
        await servers.wait_answered(server)
        plan, elapsed = await burst(server.url, messages, concurrency)
    finally:
        server.stop()
    try:
        counts = await audit(database_url, plan)
    finally:
        if pg_name:
            await servers.drop_pg_database(pg_name)
            servers.flush_redis_db13()
    attempts = [a for s in plan for a in s.attempts]
    latencies = sorted(a.latency_ms for a in attempts if a.status)
    statuses = Counter(a.status for a in attempts)
    return {
        "backend": "PostgreSQL + Redis, 2 workers" if backend == "pg" else "embedded SQLite, 1 worker",
        "messages": len(plan), "attempts": len(attempts), "retried": sum(s.copies > 1 for s in plan),
        "concurrent_retries": sum(s.concurrent for s in plan), "statuses": dict(statuses),
        **counts, "not_accepted": len(plan) - counts["accepted"],
        "seconds": elapsed, "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
        "concurrency": concurrency,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "pg", "both"), default="both")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    for backend in ("sqlite", "pg") if args.backend == "both" else (args.backend,):
        print(json.dumps(asyncio.run(run(backend, args.messages, args.concurrency)), ensure_ascii=False))


if __name__ == "__main__":
    main()
