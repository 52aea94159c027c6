"""The scheduler: the one part of escalation/ that reads storage and sends notifications.

Each sweep (1) records the alerts whose time has come — reminders, ladder rungs — once per
inquiry and key, then (2) delivers whatever is recorded but not yet delivered. Recording comes
first and is idempotent, so a restart resends nothing that was delivered and skips nothing that
was due; a crash between delivery and marking it delivered is the only window for a duplicate.

Only one worker sweeps at a time: a `LeaderLock` (Redis with expiry, or in-process) decides.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from loguru import logger
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage import AlertKind, AlertRecord, AlertStatus, Database, Inquiry, InquiryStatus
from escalation.calendar import BusinessCalendar
from escalation.ladder import ESCALATION, InquiryClock, LadderPolicy, due_now, next_fire_at, plan
from escalation.notifiers import Alert, Contact, Notifier, deliver
from escalation.sla import CRITICAL

# Well inside the minute-level promises of the ladder (R6.1d: one hour).
_WAKE_COALESCE_SECONDS = 0.2
_BATCH = 500


@dataclass(frozen=True)
class ContactRoute:
    """A contact and whom it serves: a role, and for department roles optionally one department."""

    contact: Contact
    role: str
    department: str | None = None


@dataclass(frozen=True)
class SweepReport:
    recorded: int
    delivered: int
    failed: int
    waiting: int  # routine alerts held until reply hours


class LeaderLock(Protocol):
    async def acquire(self) -> bool: ...
    async def release(self) -> None: ...


class InProcessLock:
    """The embedded default: one process, so it always leads."""

    async def acquire(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class RedisLeaderLock:
    """SET NX with an expiry; the holder renews it each sweep, a dead holder's lock lapses."""

    _RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
    _RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

    def __init__(self, redis, key: str = "guanwei:scheduler:leader", ttl_seconds: float = 60.0) -> None:  # type: ignore[no-untyped-def]
        self.redis = redis
        self.key = key
        self.ttl_ms = int(ttl_seconds * 1000)
        # Says who holds it: an operator (or a test) can tell which worker runs the scheduler.
        self.token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    async def acquire(self) -> bool:
        if await self.redis.eval(self._RENEW, 1, self.key, self.token, self.ttl_ms):
            return True
        return bool(await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    async def release(self) -> None:
        await self.redis.eval(self._RELEASE, 1, self.key, self.token)


def roles_for(record: AlertRecord, policy: LadderPolicy) -> tuple[str, ...]:
    if record.kind == AlertKind.ESCALATION and record.level:
        return policy.rung(record.level).notify
    if record.kind == AlertKind.CHASE:
        return ("department_staff", "department_head")
    return policy.reminder_roles


def recipients(
    roles: Sequence[str], department: str, routes: Sequence[ContactRoute], *, on_duty_only: bool
) -> list[Contact]:
    """Who gets an alert. Outside reply hours a critical alert goes to the on-duty contacts only."""
    if on_duty_only:
        duty = [r.contact for r in routes if r.role == "on_duty"]
        if duty:
            return duty
    chosen: list[Contact] = []
    for role in roles:
        for_role = [r for r in routes if r.role == role]
        # A department's own contact wins; a contact with no department serves every department.
        own = [r.contact for r in for_role if r.department == department]
        chosen.extend(own or [r.contact for r in for_role if r.department is None])
    return list(dict.fromkeys(chosen))


class Scheduler:
    def __init__(
        self,
        database: Database,
        calendar: BusinessCalendar,
        policy: LadderPolicy,
        routes: Sequence[ContactRoute],
        notifiers: Mapping[str, Notifier],
        describe: Callable[[Inquiry, AlertRecord, LadderPolicy], Alert],
        *,
        clock: Callable[[], datetime],
        lock: LeaderLock | None = None,
        interval_seconds: float = 30.0,
    ) -> None:
        self.db = database
        self.calendar = calendar
        self.policy = policy
        self.routes = list(routes)
        self.notifiers = notifiers
        self.describe = describe
        self.clock = clock
        self.lock = lock or InProcessLock()
        self.interval = interval_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A new or changed inquiry: look again now instead of at the next interval."""
        self._wake.set()

    async def sweep(self) -> SweepReport:
        now = self.clock()
        recorded = await self._record_due(now)
        delivered, failed, waiting = await self._deliver_pending(now)
        return SweepReport(recorded, delivered, failed, waiting)

    async def _record_due(self, now: datetime) -> int:
        recorded = 0
        async with self.db.transaction(write=True) as session:
            due = (
                await session.scalars(
                    select(Inquiry)
                    .where(Inquiry.next_alert_at.is_not(None), Inquiry.next_alert_at <= now)
                    .order_by(Inquiry.next_alert_at)
                    .limit(_BATCH)
                )
            ).all()
            keys = await _recorded_keys(session, [i.id for i in due])
            for inquiry in due:
                if inquiry.status != InquiryStatus.OPEN:
                    inquiry.next_alert_at = None  # answered or closed: its clock has stopped
                    continue
                clock = InquiryClock(inquiry.severity, inquiry.cycle, inquiry.clock_started_at or inquiry.received_at,
                                     inquiry.due_at)
                planned = plan(clock, self.policy, self.calendar)
                already = keys.get(inquiry.id, set())
                for step in due_now(planned, now, already):
                    session.add(AlertRecord(
                        inquiry_id=inquiry.id, key=step.key,
                        kind=AlertKind.ESCALATION if step.kind == ESCALATION else AlertKind.REMINDER,
                        level=step.level, fire_at=step.fire_at, recorded_at=now, by="system",
                        status=AlertStatus.PENDING, recipients=[],
                    ))
                    already.add(step.key)
                    recorded += 1
                    if step.level:
                        inquiry.escalation_level = max(inquiry.escalation_level, step.level)
                inquiry.next_alert_at = next_fire_at(planned, now, already)
        return recorded

    async def _deliver_pending(self, now: datetime) -> tuple[int, int, int]:
        async with self.db.transaction() as session:
            rows = (
                await session.execute(
                    select(AlertRecord, Inquiry)
                    .join(Inquiry, Inquiry.id == AlertRecord.inquiry_id)
                    .where(AlertRecord.status == AlertStatus.PENDING)
                    .order_by(AlertRecord.fire_at, AlertRecord.id)
                    .limit(_BATCH)
                )
            ).all()
        open_now = self.calendar.is_open(now)
        delivered = failed = waiting = 0
        for record, inquiry in rows:
            if record.kind != AlertKind.CHASE and inquiry.status != InquiryStatus.OPEN:
                await self._finish(record.id, AlertStatus.CANCELLED, now, [])
                continue
            critical = inquiry.severity == CRITICAL
            if not critical and not open_now and record.kind != AlertKind.CHASE:
                waiting += 1  # a routine alert waits for the morning
                continue
            contacts = recipients(roles_for(record, self.policy), inquiry.department, self.routes,
                                  on_duty_only=critical and not open_now)
            results = await deliver(self.describe(inquiry, record, self.policy), contacts, self.notifiers)
            status = _status_of([r.ok for r in results])
            delivered += status != AlertStatus.FAILED
            failed += status != AlertStatus.SENT
            summary = [{"name": r.contact.name, "channel": r.contact.channel, "ok": r.ok, "attempts": r.attempts,
                        "error": r.error} for r in results]
            await self._finish(record.id, status, now, summary)
            logger.info("alert {} for inquiry {} ({}): {} to {} contact(s)", record.key, inquiry.id, record.kind,
                        status, len(results))
        return delivered, failed, waiting

    async def _finish(self, record_id: int, status: str, now: datetime, summary: list[dict[str, object]]) -> None:
        async with self.db.transaction(write=True) as session:
            record = await session.get(AlertRecord, record_id)
            if record is not None:
                record.status, record.delivered_at, record.recipients = status, now, summary

    async def run(self) -> None:
        """Sweep while leader; sleep until the next due alert, a wake-up, or the interval."""
        try:
            while True:
                self._wake.clear()  # before the sweep: a wake-up during it means look again
                try:
                    if await self.lock.acquire():
                        await self.sweep()
                except Exception as exc:  # the loop must outlive a database or Redis hiccup
                    logger.warning("scheduler sweep failed, will retry: {}", exc)
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=await self._sleep_for())
                    # In a burst every new inquiry wakes us: gather them into one sweep, not one each.
                    await asyncio.sleep(_WAKE_COALESCE_SECONDS)
        finally:
            try:
                await self.lock.release()
            except Exception as exc:
                logger.warning("scheduler lock not released (it will expire): {}", exc)

    async def _sleep_for(self) -> float:
        try:
            async with self.db.transaction() as session:
                soonest = await session.scalar(
                    select(Inquiry.next_alert_at)
                    .where(Inquiry.next_alert_at.is_not(None))
                    .order_by(Inquiry.next_alert_at)
                    .limit(1)
                )
        except Exception:
            return self.interval
        if soonest is None:
            return self.interval
        return min(self.interval, max(0.5, (soonest - self.clock()).total_seconds()))


def _status_of(delivered: Sequence[bool]) -> str:
    if not delivered:
        return AlertStatus.FAILED  # nobody to tell is a configuration fault, never a silent success
    if all(delivered):
        return AlertStatus.SENT
    return AlertStatus.PARTIAL if any(delivered) else AlertStatus.FAILED


async def _recorded_keys(session: AsyncSession, inquiry_ids: Sequence[int]) -> dict[int, set[str]]:
    keys: dict[int, set[str]] = {}
    if not inquiry_ids:
        return keys
    rows = await session.execute(
        select(AlertRecord.inquiry_id, AlertRecord.key).where(AlertRecord.inquiry_id.in_(inquiry_ids))
    )
    for inquiry_id, key in rows:
        keys.setdefault(inquiry_id, set()).add(key)
    return keys

