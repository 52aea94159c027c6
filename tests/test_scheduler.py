"""Reminders, the escalation ladder and chasing, end to end on a real database with a fake clock."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert, select

from bot.alerts import build_scheduler, record_chase
from bot.config import Settings
from bot.storage import AlertRecord, Database, Inquiry
from escalation import scheduler as scheduler_module
from escalation.notifiers import Alert, Contact
from escalation.scheduler import _BATCH, _MARK_EVERY, _SENDING_AT_ONCE, RedisLeaderLock, Scheduler, SweepReport
from tests.conftest import Clock, shanghai
from tests.test_wechat_webhook import post, push, reply_text

STAMPEDE = "景区门口人太多了发生踩踏有人受伤了赶紧派人来"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def scheduler_for(settings: Settings, database: Database, http: aiohttp.ClientSession, clock: Clock,
                  env: dict[str, str] | None = None, **kwargs: Any) -> Scheduler:
    return build_scheduler(settings, database, http, clock=clock, env=env or {}, **kwargs)


async def alerts(database: Database) -> list[AlertRecord]:
    async with database.transaction() as session:
        return list((await session.scalars(select(AlertRecord).order_by(AlertRecord.id))).all())


async def test_r6_1d_critical_message_alerts_rung_two_at_once_and_rung_three_after_its_timeout(
    client: TestClient, settings: Settings, database: Database, clock: Clock, http: aiohttp.ClientSession
) -> None:
    status, body = await post(client, push("text", Content=STAMPEDE))
    assert status == 200 and "1小时内" in reply_text(body)
    scheduler = scheduler_for(settings, database, http, clock)

    report = await scheduler.sweep()
    assert (report.recorded, report.delivered) == (1, 1)
    [rung2] = await alerts(database)
    assert (rung2.key, rung2.level, rung2.status) == ("c1:rung:2", 2, "sent")
    assert [r["name"] for r in rung2.recipients] == ["各处室负责人（示例）"]  # the department head, in hours

    assert (await scheduler.sweep()).recorded == 0  # nothing twice
    clock.now += timedelta(minutes=29)
    assert (await scheduler.sweep()).recorded == 0
    clock.now += timedelta(minutes=1)  # rung 2's critical timeout (30 min) has passed
    report = await scheduler.sweep()
    keys = [a.key for a in await alerts(database)]
    assert keys == ["c1:rung:2", "c1:reminder:50", "c1:rung:3"]
    rung3 = (await alerts(database))[-1]
    assert {r["name"] for r in rung3.recipients} == {"旅游信息中心值班（示例）", "局办公室（示例）"}
    async with database.transaction() as session:
        inquiry = (await session.scalars(select(Inquiry))).one()
    assert inquiry.escalation_level == 3


async def test_r6_1c_critical_alert_at_night_goes_to_the_on_duty_contact_only(
    client: TestClient, settings: Settings, database: Database, clock: Clock, http: aiohttp.ClientSession
) -> None:
    clock.now = shanghai(2026, 12, 5, 23, 30)  # Saturday night
    await post(client, push("text", Content=STAMPEDE))
    await scheduler_for(settings, database, http, clock).sweep()
    [rung2] = await alerts(database)
    assert [r["name"] for r in rung2.recipients] == ["夜间节假日值班（示例）"]


async def test_r6_1b_overdue_routine_alert_waits_for_the_morning(
    client: TestClient, settings: Settings, database: Database, clock: Clock, http: aiohttp.ClientSession
) -> None:
    clock.now = shanghai(2026, 12, 3, 16, 0)  # Thursday, 90 minutes before closing
    await post(client, push("text", Content="请问非遗传承人补贴怎么申请"))  # due Friday 09:00
    scheduler = scheduler_for(settings, database, http, clock)
    clock.now = shanghai(2026, 12, 4, 9, 0, 1)
    await scheduler.sweep()
    assert [a.key for a in await alerts(database)] == ["c1:reminder:50", "c1:reminder:80", "c1:rung:2"]
    # A restart at night finds an undelivered routine alert: it is held, not sent at night.
    async with database.transaction() as session:
        (await session.scalars(select(AlertRecord).where(AlertRecord.key == "c1:rung:2"))).one().status = "pending"
    clock.now = shanghai(2026, 12, 4, 22, 0)
    report = await scheduler_for(settings, database, http, clock).sweep()
    assert (report.recorded, report.waiting, report.delivered) == (2, 3, 0)  # rungs 3 and 4 came due that day
    clock.now = shanghai(2026, 12, 7, 8, 31)
    report = await scheduler_for(settings, database, http, clock).sweep()
    assert report.delivered >= 1
    assert {a.status for a in await alerts(database)} == {"sent"}


async def test_restart_in_the_middle_of_a_ladder_sends_nothing_twice(
    client: TestClient, settings: Settings, database: Database, clock: Clock, http: aiohttp.ClientSession
) -> None:
    await post(client, push("text", Content=STAMPEDE))
    await scheduler_for(settings, database, http, clock).sweep()
    clock.now += timedelta(minutes=35)
    # A new process (new scheduler, same database) picks up exactly where the old one stopped.
    restarted = scheduler_for(settings, database, http, clock)
    assert (await restarted.sweep()).recorded == 2  # reminder 50% and rung 3, rung 2 not again
    assert (await restarted.sweep()).recorded == 0
    assert len({a.key for a in await alerts(database)}) == len(await alerts(database)) == 3


async def test_answered_inquiry_gets_no_more_alerts(
    client: TestClient, settings: Settings, database: Database, clock: Clock, http: aiohttp.ClientSession
) -> None:
    await post(client, push("text", Content="请问文化馆的公益培训怎么报名"))
    scheduler = scheduler_for(settings, database, http, clock)
    await scheduler.sweep()
    async with database.transaction() as session:
        inquiry = (await session.scalars(select(Inquiry))).one()
        inquiry.status, inquiry.answered_at, inquiry.answered_by = "answered", clock.now, "张三"
    clock.now += timedelta(hours=5)
    assert (await scheduler.sweep()).recorded == 0
    assert await alerts(database) == []


async def test_r7_3b_chase_is_recorded_and_delivered_to_the_department(
    client: TestClient, settings: Settings, database: Database, clock: Clock, http: aiohttp.ClientSession
) -> None:
    await post(client, push("text", Content="请问文化馆的公益培训怎么报名"))
    await record_chase(database, 1, by="信息中心李四", note="请今天上午答复", now=clock.now)
    await scheduler_for(settings, database, http, clock).sweep()
    [chase] = [a for a in await alerts(database) if a.kind == "chase"]
    assert (chase.by, chase.note, chase.status) == ("信息中心李四", "请今天上午答复", "sent")
    assert {r["name"] for r in chase.recipients} == {"各处室经办人（示例）", "各处室负责人（示例）"}


async def test_r7_3b_reminders_reach_a_real_wecom_robot(
    client: TestClient, settings: Settings, database: Database, clock: Clock, http: aiohttp.ClientSession
) -> None:
    received: list[dict[str, Any]] = []

    async def robot(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    robot_app = web.Application()
    robot_app.router.add_post("/cgi-bin/webhook/send", robot)
    async with TestServer(robot_app) as server:
        url = str(server.make_url("/cgi-bin/webhook/send?key=secret-robot-key"))
        contacts = settings.file.escalation.contacts
        contacts.insert(0, type(contacts[0])(name="公共服务处工作群", role="department_staff",
                                             department="public_service", channel="wecom_robot",
                                             address_env="GUANWEI_ROBOT_PUBLIC"))
        await post(client, push("text", Content="请问文化馆的公益培训怎么报名"))
        clock.now += timedelta(minutes=61)
        scheduler = scheduler_for(settings, database, http, clock, env={"GUANWEI_ROBOT_PUBLIC": url})
        await scheduler.sweep()
    [reminder] = await alerts(database)
    assert reminder.recipients == [{"name": "公共服务处工作群", "channel": "wecom_robot", "ok": True, "attempts": 1,
                                    "error": None}]
    assert "催办提醒" in received[0]["text"]["content"] and "000001" in received[0]["text"]["content"]


async def test_follow_up_after_an_answer_reopens_with_a_new_deadline(
    faq_client: TestClient, database: Database, clock: Clock
) -> None:
    await post(faq_client, push("text", Content="请问市博物馆周一开门吗"))  # answered by the FAQ
    clock.now = shanghai(2026, 12, 3, 15, 0)
    _, thanks = await post(faq_client, push("text", Content="好的，谢谢！"))
    assert thanks == "success"  # a thank-you reopens nothing
    _, body = await post(faq_client, push("text", Content="不对啊，我上周一去的时候是开着的，到底开不开？"))
    assert "已并入您的留言（编号000001）" in reply_text(body)
    async with database.transaction() as session:
        inquiry = (await session.scalars(select(Inquiry))).one()
    assert (inquiry.status, inquiry.cycle) == ("open", 2)
    assert inquiry.clock_started_at == shanghai(2026, 12, 3, 15, 0)
    assert inquiry.due_at == shanghai(2026, 12, 3, 17, 0)  # the wait for the netizen does not count


async def test_r6_1d_with_redis_unreachable_every_worker_sweeps_rather_than_none(log_lines: list[str]) -> None:
    # A dead Redis used to fail every sweep: no alert for a critical inquiry until Redis came back.
    import socket

    import redis.asyncio

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = redis.asyncio.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=0.5)
    try:
        lock = RedisLeaderLock(client, key="guanwei:test:dead", ttl_seconds=1)
        assert [await lock.acquire(), await lock.acquire()] == [True, True]
        await lock.release()  # nothing to give back, no error
    finally:
        await client.aclose()
    warnings = [line for line in log_lines if "Redis unreachable" in line]
    assert len(warnings) == 1  # said once per outage, not every sweep


async def test_two_workers_race_for_the_scheduler_lock_and_one_takes_over() -> None:
    url = os.environ.get("GUANWEI_TEST_REDIS_URL")
    if not url:
        pytest.skip("GUANWEI_TEST_REDIS_URL not set: Redis lock test skipped (.ci/run sets it)")
    import secrets

    import redis.asyncio

    client = redis.asyncio.from_url(url)
    key = f"guanwei:test:{secrets.token_hex(4)}:leader"
    try:
        first = RedisLeaderLock(client, key=key, ttl_seconds=0.3)
        second = RedisLeaderLock(client, key=key, ttl_seconds=0.3)
        assert [await first.acquire(), await second.acquire()] == [True, False]
        assert await first.acquire()  # the holder renews
        import asyncio

        await asyncio.sleep(0.4)  # the holder died: its lock lapses
        assert await second.acquire()
        assert not await first.acquire()
        await second.release()
        assert await first.acquire()
    finally:
        await client.delete(key)
        await client.aclose()


# --- many inquiries due at once --------------------------------------------------------------------

RECEIVED = shanghai(2026, 12, 3, 10, 0)  # a winter Thursday; reply hours 08:30–17:30
AFTER_AN_HOUR = shanghai(2026, 12, 3, 11, 1)
STAFF, HEAD, INFO_CENTRE, OFFICE, LEADER = (
    "各处室经办人（示例）", "各处室负责人（示例）", "旅游信息中心值班（示例）", "局办公室（示例）", "分管局领导（示例）")
# At 11:01 a critical inquiry received at 10:00 (due 11:00, 30 min per rung) has its whole ladder due;
# a routine one (due 12:00) only its 50% reminder, with the 80% one next at 11:36.
CRITICAL_ALERTS = {"c1:rung:2": [HEAD], "c1:reminder:50": [STAFF], "c1:rung:3": [INFO_CENTRE, OFFICE],
                   "c1:reminder:80": [STAFF], "c1:rung:4": [LEADER]}
ROUTINE_ALERTS = {"c1:reminder:50": [STAFF]}


async def open_inquiries(database: Database, *, critical: int, routine: int) -> None:
    """Open inquiries all received at 10:00, as the pipeline leaves them (`next_alert_at` = receipt).
    The critical ones come first in the scheduler's order (their `next_alert_at` is a second earlier)."""
    rows = [
        {"channel": "wechat", "account": "gh_test", "sender": f"o{n:05d}", "status": "open",
         "severity": "critical" if n < critical else "routine", "department": "public_service",
         "department_confidence": 0.9, "score": 3.0 if n < critical else 0.5, "matched": [], "summary": "留言",
         "received_at": RECEIVED, "due_at": RECEIVED + timedelta(hours=1 if n < critical else 2),
         "last_message_at": RECEIVED, "cycle": 1, "clock_started_at": RECEIVED,
         "next_alert_at": RECEIVED - timedelta(seconds=1) if n < critical else RECEIVED, "escalation_level": 0}
        for n in range(critical + routine)
    ]
    async with database.transaction() as session:
        await session.execute(insert(Inquiry), rows)


class CountingNotifier:
    """Counts every completed send by inquiry and contact; can hang from a given send on."""

    channel = "log"

    def __init__(self, hang_after: int | None = None, calls_to_wait_for: int = 0) -> None:
        self.sent: Counter[tuple[int, str]] = Counter()
        self.calls = 0
        self.hang_after = hang_after
        self.all_called = asyncio.Event()
        self.calls_to_wait_for = calls_to_wait_for

    async def send(self, contact: Contact, alert: Alert) -> None:
        self.calls += 1
        if self.calls == self.calls_to_wait_for:
            self.all_called.set()
        if self.hang_after is not None and self.calls > self.hang_after:
            await asyncio.Event().wait()  # a send that never returns: the process dies during it
        self.sent[(alert.inquiry_id, contact.name)] += 1


async def test_a_sweep_over_hundreds_of_due_inquiries_records_each_alert_once_and_marks_every_delivery(
    settings: Settings, database: Database, clock: Clock, http: aiohttp.ClientSession
) -> None:
    await open_inquiries(database, critical=300, routine=300)
    clock.now = AFTER_AN_HOUR
    scheduler = scheduler_for(settings, database, http, clock)
    notifier = CountingNotifier()
    scheduler.notifiers = {"log": notifier}

    reports = [await scheduler.sweep() for _ in range(5)]

    # A batch is 500 inquiries and 500 alerts: 300 × 5 critical and 200 × 1 routine alerts, then the last
    # 100 routine ones; 1,800 alerts delivered 500 at a time; the last sweep finds nothing left.
    assert reports == [SweepReport(1700, 500, 0, 0, backlog=True), SweepReport(100, 500, 0, 0, backlog=True),
                       SweepReport(0, 500, 0, 0, backlog=True), SweepReport(0, 300, 0, 0, backlog=False),
                       SweepReport(0, 0, 0, 0, backlog=False)]
    recorded = await alerts(database)
    async with database.transaction() as session:
        inquiries = {i.id: i for i in (await session.scalars(select(Inquiry))).all()}
    expected = {(i.id, key): names for i in inquiries.values()
                for key, names in (CRITICAL_ALERTS if i.severity == "critical" else ROUTINE_ALERTS).items()}
    assert len(recorded) == len(expected) == 1800
    assert {(a.inquiry_id, a.key): [r["name"] for r in a.recipients] for a in recorded} == expected
    assert {(a.status, a.delivered_at, a.recorded_at, a.by) for a in recorded} == {
        ("sent", AFTER_AN_HOUR, AFTER_AN_HOUR, "system")}
    assert all(r["ok"] and r["attempts"] == 1 and r["error"] is None for a in recorded for r in a.recipients)
    assert {(a.key, a.kind, a.level) for a in recorded} == {
        ("c1:rung:2", "escalation", 2), ("c1:rung:3", "escalation", 3), ("c1:rung:4", "escalation", 4),
        ("c1:reminder:50", "reminder", None), ("c1:reminder:80", "reminder", None)}
    # Each alert went to each of its contacts once (a critical inquiry's two reminders both to the staff).
    assert notifier.sent == Counter((inquiry_id, name) for (inquiry_id, _), names in expected.items() for name in names)
    assert {(i.severity, i.escalation_level, i.next_alert_at) for i in inquiries.values()} == {
        ("critical", 4, None), ("routine", 0, shanghai(2026, 12, 3, 11, 36))}


async def test_a_crash_while_delivering_resends_at_most_one_chunk_and_loses_nothing(
    settings: Settings, database: Database, clock: Clock, http: aiohttp.ClientSession
) -> None:
    await open_inquiries(database, critical=0, routine=_MARK_EVERY + _SENDING_AT_ONCE)
    clock.now = AFTER_AN_HOUR
    # The first chunk goes out; of the second, half the sends return and the rest hang when the process dies.
    half = _SENDING_AT_ONCE // 2
    dying = CountingNotifier(hang_after=_MARK_EVERY + half, calls_to_wait_for=_MARK_EVERY + _SENDING_AT_ONCE)
    crashing = scheduler_for(settings, database, http, clock)
    crashing.notifiers = {"log": dying}
    sweep = asyncio.create_task(crashing.sweep())
    await dying.all_called.wait()
    sweep.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sweep

    recorded = await alerts(database)
    assert len(recorded) == _MARK_EVERY + _SENDING_AT_ONCE  # recording had committed before delivery began
    assert Counter(a.status for a in recorded) == {"sent": _MARK_EVERY, "pending": _SENDING_AT_ONCE}

    restarted = scheduler_for(settings, database, http, clock)
    after_restart = CountingNotifier()
    restarted.notifiers = {"log": after_restart}
    assert await restarted.sweep() == SweepReport(0, _SENDING_AT_ONCE, 0, 0)
    assert {a.status for a in await alerts(database)} == {"sent"}
    sends = dying.sent + after_restart.sent
    assert len(sends) == _MARK_EVERY + _SENDING_AT_ONCE  # every alert reached its contact
    assert Counter(sends.values()) == {1: _MARK_EVERY + half, 2: half}  # sent twice: only the unmarked chunk's


async def test_run_drains_a_backlog_before_it_first_sleeps(
    settings: Settings, database: Database, clock: Clock, http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    await open_inquiries(database, critical=300, routine=300)
    clock.now = AFTER_AN_HOUR
    scheduler = scheduler_for(settings, database, http, clock)
    scheduler.notifiers = {"log": CountingNotifier()}
    first_sleep = asyncio.Event()
    state_at_first_sleep: list[tuple[int, int, datetime | None]] = []

    async def sleep_for() -> float:
        async with database.transaction() as session:
            pending = len((await session.scalars(select(AlertRecord).where(AlertRecord.status == "pending"))).all())
            due = len((await session.scalars(select(Inquiry).where(Inquiry.next_alert_at <= clock.now))).all())
            soonest = await session.scalar(select(Inquiry.next_alert_at).where(Inquiry.next_alert_at.is_not(None))
                                           .order_by(Inquiry.next_alert_at).limit(1))
        state_at_first_sleep.append((pending, due, soonest))
        first_sleep.set()
        return 3600.0

    monkeypatch.setattr(scheduler, "_sleep_for", sleep_for)
    running = asyncio.create_task(scheduler.run())
    try:
        await asyncio.wait_for(first_sleep.wait(), timeout=120)  # a bound against hanging, not a speed goal
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    # Four batches went out back to back, without the 35 minutes' sleep until the next alert (11:36).
    assert state_at_first_sleep[0] == (0, 0, shanghai(2026, 12, 3, 11, 36))
    assert len(await alerts(database)) == 1800


async def test_r6_1d_at_night_a_critical_alert_goes_out_even_behind_a_full_batch_of_routine_ones_waiting(
    client: TestClient, settings: Settings, database: Database, clock: Clock, http: aiohttp.ClientSession
) -> None:
    await open_inquiries(database, critical=0, routine=_BATCH)  # received Thursday 10:00, overdue by night
    clock.now = shanghai(2026, 12, 3, 22, 0)
    scheduler = scheduler_for(settings, database, http, clock)
    first = await scheduler.sweep()
    assert (first.recorded, first.delivered, first.waiting) == (5 * _BATCH, 0, _BATCH)  # whole ladders, held till morning

    await post(client, push("text", Content=STAMPEDE))  # at 22:00, behind 1,500 routine alerts by fire time
    report = await scheduler.sweep()
    assert (report.recorded, report.delivered) == (1, 1)
    async with database.transaction() as session:
        critical = (await session.scalars(select(AlertRecord).join(Inquiry).where(Inquiry.severity == "critical"))).one()
    assert (critical.key, critical.status) == ("c1:rung:2", "sent")
    assert [r["name"] for r in critical.recipients] == ["夜间节假日值班（示例）"]


async def test_a_follow_up_written_while_a_sweep_plans_is_not_overwritten_by_the_sweep(
    settings: Settings, database: Database, clock: Clock, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A push makes the inquiry critical between the sweep's read and its write (the sweep plans outside the
    # write turn; on PostgreSQL another worker may do it at any moment).
    await open_inquiries(database, critical=0, routine=1)
    clock.now = AFTER_AN_HOUR
    original = scheduler_module._recorded_keys

    async def follow_up_meanwhile(session, inquiry_ids):  # type: ignore[no-untyped-def]
        async with database.transaction() as other:  # another connection, committed at once
            inquiry = (await other.scalars(select(Inquiry))).one()
            inquiry.severity, inquiry.next_alert_at, inquiry.last_message_at = "critical", AFTER_AN_HOUR, AFTER_AN_HOUR
        return await original(session, inquiry_ids)

    monkeypatch.setattr(scheduler_module, "_recorded_keys", follow_up_meanwhile)
    await scheduler_for(settings, database, http, clock).sweep()
    monkeypatch.setattr(scheduler_module, "_recorded_keys", original)
    async with database.transaction() as session:
        inquiry = (await session.scalars(select(Inquiry))).one()
    assert (inquiry.severity, inquiry.next_alert_at) == ("critical", AFTER_AN_HOUR)  # not the routine plan's 11:36
    report = await scheduler_for(settings, database, http, clock).sweep()
    assert report.recorded >= 1  # the next sweep plans the critical ladder
    assert "c1:rung:2" in {a.key for a in await alerts(database)}


async def test_a_new_routine_inquiry_waits_for_its_first_reminder_and_a_critical_one_is_due_at_once(
    client: TestClient, settings: Settings, database: Database, clock: Clock, http: aiohttp.ClientSession
) -> None:
    clock.now = RECEIVED  # Thursday 10:00, in reply hours: routine due 12:00, first reminder at 50% = 11:00
    await post(client, push("text", sender="oRoutineRoutineRoutineRoutin", Content="请问非遗传承人补贴怎么申请"))
    await post(client, push("text", sender="oCriticalCriticalCriticalCri", Content=STAMPEDE))
    async with database.transaction() as session:
        routine, critical = (await session.scalars(select(Inquiry).order_by(Inquiry.id))).all()
    assert (routine.severity, routine.next_alert_at) == ("routine", shanghai(2026, 12, 3, 11, 0))
    assert (critical.severity, critical.next_alert_at) == ("critical", RECEIVED)
    # So the sweep right after a burst looks only at the critical ones; the routine ones' reminders come on time.
    report = await scheduler_for(settings, database, http, clock).sweep()
    assert (report.recorded, report.delivered) == (1, 1)
    clock.now = shanghai(2026, 12, 3, 11, 0)
    await scheduler_for(settings, database, http, clock).sweep()
    assert ("c1:reminder:50", routine.id) in {(a.key, a.inquiry_id) for a in await alerts(database)}
