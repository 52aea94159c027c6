"""Micro-benchmarks: the classifier on one core, FAQ matching, the scheduler's sweep over 100,000 inquiries.

    python -m bench.micro [--inquiries N] [--due-share F] [--sweep-only] [--database-url URL]
                          [--drain-seconds S] [--drain-passes N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.common import CONFIG, SECRETS, dev_texts, openid

SHANGHAI = ZoneInfo("Asia/Shanghai")
# The sweep runs at a fixed instant inside reply hours (a winter Thursday, 10:00) so that routine
# alerts are delivered rather than held for the morning: the heavier, deterministic case.
SWEEP_AT = datetime(2026, 12, 3, 10, 0, tzinfo=SHANGHAI)


@contextmanager
def one_core():
    """Pin this process to one CPU for the duration (the classifier goal is per core)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield min(before)
    finally:
        os.sched_setaffinity(0, before)


def classifier_rate(max_seconds: float = 10.0, passes: int = 25) -> dict[str, float]:
    from knowledge import Classifier

    t0 = time.perf_counter()
    classifier = Classifier.load()
    load_s = time.perf_counter() - t0
    texts = dev_texts()
    for text in texts:  # warm-up
        classifier.classify(text)
    with one_core() as cpu:
        done = 0
        deadline = time.perf_counter() + max_seconds
        t0 = time.perf_counter()
        for _ in range(passes):
            for text in texts:
                classifier.classify(text)
            done += len(texts)
            if time.perf_counter() > deadline:
                break
        elapsed = time.perf_counter() - t0
    mean_chars = sum(map(len, texts)) / len(texts)
    return {"messages": done, "seconds": elapsed, "rate": done / elapsed, "load_s": load_s,
            "mean_chars": mean_chars, "cpu": cpu}


def faq_rates(repeat: int = 10) -> list[dict[str, float]]:
    from bench.faq_match import bench

    return [bench(count, repeat) for count in (1_000, 10_000)]


# --- the scheduler's sweep over N open inquiries ---------------------------------------------------

def _inquiry_rows(count: int, due_share: float, seed: int = 7) -> tuple[list[dict[str, object]], int]:
    """`count` open inquiries, `due_share` of them with `next_alert_at` in the past. Returns them and how many are due."""
    rng = random.Random(seed)
    texts = dev_texts()
    departments = ["office", "info_center", "market", "enforcement", "public_service", "arts", "heritage",
                   "broadcasting", "industry"]
    rows, due = [], 0
    for n in range(count):
        critical = rng.random() < 0.05
        received = SWEEP_AT - timedelta(minutes=rng.uniform(1, 3 * 24 * 60))
        is_due = rng.random() < due_share
        due += is_due
        next_alert = (SWEEP_AT - timedelta(seconds=rng.uniform(1, 600)) if is_due
                      else SWEEP_AT + timedelta(minutes=rng.uniform(1, 8 * 60)))
        rows.append({
            "channel": "wechat", "account": "gh_benchaccount01", "sender": openid(n), "status": "open",
            "severity": "critical" if critical else "routine", "department": rng.choice(departments),
            "department_confidence": 0.8, "score": 3.0 if critical else 0.5, "matched": [],
            "summary": texts[n % len(texts)][:200], "received_at": received,
            "due_at": received + timedelta(hours=1 if critical else 2), "last_message_at": received,
            "cycle": 1, "clock_started_at": received, "next_alert_at": next_alert, "escalation_level": 0,
        })
    return rows, due


async def _seed(database, count: int, due_share: float) -> int:  # type: ignore[no-untyped-def]
    """Bulk insert the inquiries (SQLAlchemy core, executemany in chunks). Returns how many are due."""
    from sqlalchemy import insert

    from bot.storage import Inquiry

    rows, due = _inquiry_rows(count, due_share)
    async with database.engine.begin() as connection:
        for start in range(0, len(rows), 10_000):
            await connection.execute(insert(Inquiry), rows[start:start + 10_000])
    return due


async def sweep_bench(count: int = 100_000, due_share: float = 0.1, *, drain_seconds: float = 60.0,
                      drain_passes: int = 200, database_url: str | None = None,
                      profiler=None) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Seed, then time: a sweep with nothing due, the due query alone, one sweep with `due_share` due,
    and further sweeps until the backlog is drained (bounded by `drain_seconds` and `drain_passes`).

    `database_url`: an empty database to use instead of a fresh SQLite file (e.g. PostgreSQL)."""
    import aiohttp
    from loguru import logger
    from sqlalchemy import func, select, text

    from bot.alerts import build_scheduler
    from bot.config import load_settings
    from bot.migrate import upgrade_engine
    from bot.storage import AlertRecord, Database, Inquiry

    workdir = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    env = {**SECRETS, "GUANWEI_DATA_DIR": str(workdir / "data")}
    if database_url:
        env["GUANWEI_DATABASE_URL"] = database_url
    settings = load_settings(CONFIG, env=env)
    database = Database(settings.database_url)
    await upgrade_engine(database.engine)
    t0 = time.perf_counter()
    due = await _seed(database, count, due_share)
    seed_s = time.perf_counter() - t0
    logger.remove()
    logger.add(lambda _line: None, level="INFO")  # LogNotifier's alerts are formatted, then dropped

    due_query = (select(Inquiry).where(Inquiry.next_alert_at.is_not(None), Inquiry.next_alert_at <= SWEEP_AT)
                 .order_by(Inquiry.next_alert_at).limit(500))
    result: dict[str, float] = {"inquiries": count, "due": due, "seed_s": seed_s}
    async with aiohttp.ClientSession() as session:
        # 1. Nothing due: the clock before every next_alert_at (the state between two alerts).
        quiet = build_scheduler(settings, database, session, clock=lambda: SWEEP_AT - timedelta(days=1), env=env)
        t0 = time.perf_counter()
        await quiet.sweep()
        result["sweep_nothing_due_s"] = time.perf_counter() - t0
        async with database.transaction() as s:
            nothing = select(Inquiry.id).where(Inquiry.next_alert_at.is_not(None),
                                               Inquiry.next_alert_at <= SWEEP_AT - timedelta(days=1)).limit(500)
            t0 = time.perf_counter()
            found = (await s.execute(nothing)).all()
            result["query_nothing_due_s"] = time.perf_counter() - t0
            result["query_nothing_due_rows"] = len(found)
            t0 = time.perf_counter()
            rows = (await s.execute(due_query)).all()
            result["query_due_batch_s"] = time.perf_counter() - t0
            result["query_due_batch_rows"] = len(rows)
            compiled = due_query.compile(database.engine.sync_engine, compile_kwargs={"literal_binds": True})
            explain = "EXPLAIN QUERY PLAN" if database.is_sqlite else "EXPLAIN"
            plan = (await s.execute(text(f"{explain} {compiled}"))).all()
            result["due_query_plan"] = "; ".join(str(r[-1]).strip() for r in plan)  # type: ignore[assignment]
        # 2. The real instant: `due_share` of the inquiries are due; one sweep handles a batch of 500.
        scheduler = build_scheduler(settings, database, session, clock=lambda: SWEEP_AT, env=env)
        if profiler is not None:
            profiler.start()
        t0 = time.perf_counter()
        report = await scheduler.sweep()
        if profiler is not None:
            profiler.stop()
        result["sweep_due_s"] = time.perf_counter() - t0
        result["recorded"], result["delivered"], result["waiting"] = report.recorded, report.delivered, report.waiting
        # 3. How long until the backlog is drained (bounded: `drain_passes` passes or `drain_seconds`).
        t0 = time.perf_counter()
        passes = 0
        while passes < min(drain_passes, 1000) and time.perf_counter() - t0 < min(drain_seconds, 300):
            passes += 1
            report = await scheduler.sweep()
            if report.recorded == 0 and report.delivered == 0:
                result["drained"] = 1
                break
        else:
            result["drained"] = 0
        result["drain_s"] = time.perf_counter() - t0
        result["drain_passes"] = passes
        async with database.transaction() as s:
            result["alerts"] = await s.scalar(select(func.count()).select_from(AlertRecord))
            by_status = await s.execute(select(AlertRecord.status, func.count()).group_by(AlertRecord.status))
            result["alerts_by_status"] = dict(by_status.all())  # type: ignore[assignment]
    await database.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inquiries", type=int, default=100_000)
    parser.add_argument("--due-share", type=float, default=0.1)
    parser.add_argument("--skip-faq", action="store_true")
    parser.add_argument("--sweep-only", action="store_true", help="only the scheduler's sweep")
    parser.add_argument("--database-url", help="an empty database for the sweep instead of a fresh SQLite file")
    parser.add_argument("--drain-seconds", type=float, default=60.0, help="bound on draining the backlog (≤ 300)")
    parser.add_argument("--drain-passes", type=int, default=200, help="bound on draining the backlog (≤ 1000)")
    args = parser.parse_args()
    if not args.sweep_only:
        print("classifier:", classifier_rate())
        if not args.skip_faq:
            for row in faq_rates():
                print("faq:", row)
    print("sweep:", asyncio.run(sweep_bench(min(args.inquiries, 200_000), args.due_share,
                                            drain_seconds=args.drain_seconds, drain_passes=args.drain_passes,
                                            database_url=args.database_url)))


if __name__ == "__main__":
    main()
