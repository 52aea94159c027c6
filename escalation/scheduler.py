"""The scheduler: the one part of escalation/ that reads storage and sends notifications.

Each sweep (1) records the alerts whose time has come — reminders, ladder rungs — once per
inquiry and key, then (2) delivers whatever is recorded but not yet delivered. Recording comes
first and is idempotent, so a restart resends nothing that was delivered and skips nothing that
was due; a crash between delivery and marking it delivered is the only window for a duplicate.
Deliveries are marked a chunk at a time (`_MARK_EVERY` alerts per transaction), which widens that
window from one alert to one chunk: after a crash mid-chunk, the alerts of that chunk already sent
go out a second time; none is skipped.

A sweep takes one batch (`_BATCH` inquiries, `_BATCH` alerts); `run` sweeps again at once while
a batch comes back full, so a backlog drains without waiting for the next interval.

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
from typing import Any, Protocol

from loguru import logger
from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage import AlertKind, AlertRecord, AlertStatus, Database, Inquiry, InquiryStatus
from escalation.calendar import BusinessCalendar
from escalation.ladder import ESCALATION, InquiryClock, LadderPolicy, due_now, next_fire_at, plan
from escalation.notifiers import Alert, Contact, DeliveryResult, Notifier, deliver
from escalation.sla import CRITICAL

# Well inside the minute-level promises of the ladder (R6.1d: one hour).
_WAKE_COALESCE_SECONDS = 0.2
_BATCH = 500
# Deliveries marked per write transaction: a transaction per alert made a batch of 500 take seconds,
# and every alert of an unmarked chunk is sent again after a crash (see the module docstring).
_MARK_EVERY = 50
# Alerts being sent at the same time: a slow channel (15 s timeout, retries) no longer holds up the
# rest of the batch, while a mail server or robot sees a handful of connections, not hundreds.
_SENDING_AT_ONCE = 10


_DUE = (
    select(Inquiry.id, Inquiry.status, Inquiry.severity, Inquiry.cycle, Inquiry.clock_started_at, Inquiry.received_at,
           Inquiry.due_at, Inquiry.escalation_level, Inquiry.last_message_at)
    .where(Inquiry.next_alert_at.is_not(None))
    .order_by(Inquiry.next_alert_at)
)
# What a follow-up changes; a plan made before such a change is not written.
_STATE = select(Inquiry.id, Inquiry.status, Inquiry.severity, Inquiry.cycle, Inquiry.last_message_at)


def _state(row: Row[Any]) -> tuple[object, ...]:
    return (row.status, row.severity, row.cycle, row.last_message_at)


_INQUIRIES = Inquiry.__table__
# Another worker may change an inquiry between this sweep's read and its write (on PostgreSQL nothing
# locks the row): a follow-up that reopens it or makes it critical sets `next_alert_at` to now. The
# sweep's plan was made for the inquiry as it was, so it is written only if the inquiry still is.
_SET_NEXT_ALERT_IF_UNCHANGED = (
    update(_INQUIRIES)
    .where(
        _INQUIRIES.c.id == bindparam("b_id"),
        _INQUIRIES.c.status == bindparam("b_status"),
        _INQUIRIES.c.severity == bindparam("b_severity"),
        _INQUIRIES.c.cycle == bindparam("b_cycle"),
        _INQUIRIES.c.last_message_at == bindparam("b_last_message_at"),
    )
    .values(next_alert_at=bindparam("next_alert_at"), escalation_level=bindparam("escalation_level"))
)


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
    backlog: bool = False  # a batch came back full and made progress: there may be more to do now


@dataclass(frozen=True)
class _Outcome:
    """An alert's delivery result, as it is marked."""

    record: AlertRecord
    status: str
    recipients: list[dict[str, object]]


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
    """SET NX with an expiry; the holder renews it each sweep, a dead holder's lock lapses.

    When Redis cannot be reached every worker leads: a critical inquiry must reach someone within the hour
    (R6.1d) whether or not Redis is up. Alerts are recorded under their unique (inquiry, key), so two workers
    sweeping at once record each alert once; at worst one is delivered twice — better than not at all."""

    _RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
    _RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

    def __init__(self, redis, key: str = "guanwei:scheduler:leader", ttl_seconds: float = 60.0) -> None:  # type: ignore[no-untyped-def]
        self.redis = redis
        self.key = key
        self.ttl_ms = int(ttl_seconds * 1000)
        # Says who holds it: an operator (or a test) can tell which worker runs the scheduler.
        self.token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.unreachable = False  # Redis failed at the last attempt: this worker leads on its own

    async def acquire(self) -> bool:
        try:
            if await self.redis.eval(self._RENEW, 1, self.key, self.token, self.ttl_ms):
                held = True
            else:
                held = bool(await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))
        except Exception as exc:  # Redis down or unreachable: lead locally rather than let alerts wait
            if not self.unreachable:
                logger.warning("scheduler lock: Redis unreachable ({}); this worker sweeps on its own until it is "
                               "back", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            self.unreachable = True
            return True
        if self.unreachable:
            logger.info("scheduler lock: Redis reachable again; one worker leads")
            self.unreachable = False
        return held

    async def release(self) -> None:
        with suppress(Exception):  # nothing to give back when Redis is gone
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
        recorded, more_due = await self._record_due(now)
        delivered, failed, waiting, more_pending = await self._deliver_pending(now)
        return SweepReport(recorded, delivered, failed, waiting, backlog=more_due or more_pending)

    async def _record_due(self, now: datetime) -> tuple[int, bool]:
        """Record the due alerts of one batch of inquiries. Returns how many, and whether the batch was full.

        The batch is read and planned outside the write turn (on SQLite, pushes wait for that turn), then
        written in one short transaction, as two executemany statements: all of the batch is recorded, or
        (after a crash) none of it and the next sweep does it again. An inquiry that changed in between
        (a follow-up reopened it or made it critical) is left for the next sweep to plan afresh."""
        async with self.db.transaction() as session:
            due = (await session.execute(_DUE.where(Inquiry.next_alert_at <= now).limit(_BATCH))).all()
            keys = await _recorded_keys(session, [inquiry.id for inquiry in due])
        if not due:
            return 0, False
        plans = {inquiry.id: self._plan_one(inquiry, now, keys.get(inquiry.id, set())) for inquiry in due}
        as_read = {inquiry.id: _state(inquiry) for inquiry in due}
        async with self.db.transaction(write=True) as session:
            now_stored = (await session.execute(_STATE.where(Inquiry.id.in_(list(plans))))).all()
            unchanged = [row.id for row in now_stored if _state(row) == as_read[row.id]]
            new_alerts = [alert for inquiry_id in unchanged for alert in plans[inquiry_id][0]]
            if new_alerts:
                # The table's INSERT, not the ORM's: that one fetches every new id back (on SQLite one statement
                # per row); nothing here needs the ids, so this is a single executemany.
                await session.execute(insert(AlertRecord.__table__), new_alerts)
            if unchanged:
                await session.execute(_SET_NEXT_ALERT_IF_UNCHANGED, [plans[inquiry_id][1] for inquiry_id in unchanged])
        return len(new_alerts), len(due) == _BATCH

    def _plan_one(self, inquiry: Row[Any], now: datetime,
                  already: set[str]) -> tuple[list[dict[str, object]], dict[str, object]]:
        """The alerts to record for one inquiry now, and its row's next alert time and escalation level."""
        seen = {"b_id": inquiry.id, "b_status": inquiry.status, "b_severity": inquiry.severity,
                "b_cycle": inquiry.cycle, "b_last_message_at": inquiry.last_message_at}
        if inquiry.status != InquiryStatus.OPEN:
            # Answered or closed: its clock has stopped.
            return [], {**seen, "next_alert_at": None, "escalation_level": inquiry.escalation_level}
        clock = InquiryClock(inquiry.severity, inquiry.cycle, inquiry.clock_started_at or inquiry.received_at,
                             inquiry.due_at)
        planned = plan(clock, self.policy, self.calendar)
        level = inquiry.escalation_level
        alerts: list[dict[str, object]] = []
        for step in due_now(planned, now, already):
            alerts.append({
                "inquiry_id": inquiry.id, "key": step.key,
                "kind": AlertKind.ESCALATION if step.kind == ESCALATION else AlertKind.REMINDER,
                "level": step.level, "fire_at": step.fire_at, "recorded_at": now, "by": "system",
                "status": AlertStatus.PENDING, "recipients": [],
            })
            already.add(step.key)
            if step.level:
                level = max(level, step.level)
        return alerts, {**seen, "next_alert_at": next_fire_at(planned, now, already), "escalation_level": level}

    async def _deliver_pending(self, now: datetime) -> tuple[int, int, int, bool]:
        """Deliver one batch of pending alerts, `_MARK_EVERY` at a time, each chunk's sends concurrent.

        Returns delivered, failed, waiting, and whether there may be more to deliver now: the batch was
        full and some of it was marked (a batch full of alerts waiting for the morning is not a backlog)."""
        async with self.db.transaction() as session:
            rows = (
                await session.execute(
                    select(AlertRecord, Inquiry)
                    .join(Inquiry, Inquiry.id == AlertRecord.inquiry_id)
                    .where(AlertRecord.status == AlertStatus.PENDING)
                    # Critical first: at night a batch full of routine alerts waiting for the morning must
                    # never keep a critical one from going out (R6.1d: one hour, nights included).
                    .order_by(Inquiry.severity != CRITICAL, AlertRecord.fire_at, AlertRecord.id)
                    .limit(_BATCH)
                )
            ).all()
        open_now = self.calendar.is_open(now)
        sending = asyncio.Semaphore(_SENDING_AT_ONCE)
        delivered = failed = waiting = marked = 0
        for start in range(0, len(rows), _MARK_EVERY):
            cancelled: list[_Outcome] = []
            to_send: list[tuple[AlertRecord, Alert, list[Contact]]] = []
            for record, inquiry in rows[start:start + _MARK_EVERY]:
                if record.kind != AlertKind.CHASE and inquiry.status != InquiryStatus.OPEN:
                    cancelled.append(_Outcome(record, AlertStatus.CANCELLED, []))
                    continue
                critical = inquiry.severity == CRITICAL
                if not critical and not open_now and record.kind != AlertKind.CHASE:
                    waiting += 1  # a routine alert waits for the morning
                    continue
                contacts = recipients(roles_for(record, self.policy), inquiry.department, self.routes,
                                      on_duty_only=critical and not open_now)
                # Described before anything is sent: a failure here leaves the whole chunk unsent, not half.
                to_send.append((record, self.describe(inquiry, record, self.policy), contacts))
            results = await asyncio.gather(*(self._send(alert, contacts, sending) for _, alert, contacts in to_send))
            sent: list[_Outcome] = []
            for (record, _, _), contact_results in zip(to_send, results, strict=True):
                status = _status_of([r.ok for r in contact_results])
                delivered += status != AlertStatus.FAILED
                failed += status != AlertStatus.SENT
                summary: list[dict[str, object]] = [
                    {"name": r.contact.name, "channel": r.contact.channel, "ok": r.ok, "attempts": r.attempts,
                     "error": r.error} for r in contact_results
                ]
                sent.append(_Outcome(record, status, summary))
            await self._mark([*cancelled, *sent], now)
            marked += len(cancelled) + len(sent)
            for outcome in sent:
                logger.info("alert {} for inquiry {} ({}): {} to {} contact(s)", outcome.record.key,
                            outcome.record.inquiry_id, outcome.record.kind, outcome.status, len(outcome.recipients))
        return delivered, failed, waiting, len(rows) == _BATCH and marked > 0

    async def _send(self, alert: Alert, contacts: list[Contact], sending: asyncio.Semaphore) -> list[DeliveryResult]:
        async with sending:
            return await deliver(alert, contacts, self.notifiers)

    async def _mark(self, outcomes: Sequence[_Outcome], now: datetime) -> None:
        if not outcomes:
            return
        async with self.db.transaction(write=True) as session:
            await session.execute(update(AlertRecord), [
                {"id": o.record.id, "status": o.status, "delivered_at": now, "recipients": o.recipients}
                for o in outcomes
            ])

    async def run(self) -> None:
        """Sweep while leader; sleep until the next due alert, a wake-up, or the interval."""
        try:
            while True:
                self._wake.clear()  # before the sweep: a wake-up during it means look again
                backlog = False
                try:
                    if await self.lock.acquire():
                        backlog = (await self.sweep()).backlog
                except Exception as exc:  # the loop must outlive a database or Redis hiccup
                    logger.warning("scheduler sweep failed, will retry: {}", exc)
                if backlog:
                    continue  # the next batch now; each sweep awaits the database, so pushes get their turn
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

