"""Demo data: a realistic month of traffic in an empty database, so the monthly report (R4.5) can be seen.

Every row is marked: senders start with ``demo-``, the account is ``demo``, staff names start with
``demo-``, inbound messages carry ``fields.demo = true``, and an audit entry ``demo.generated`` records
the month, the seed and what was made. The report shows a 演示数据 banner when it finds them.

The texts are the labelled messages of ``tests/data/dev.jsonl`` (severity and department from their
labels; matched terms, score and routing confidence from the real classifier), plus questions of the
live FAQ for the inquiries the knowledge base answers. Deadlines come from `first_response_due`,
reminders and escalations from the ladder's `plan` with the real calendar: what the pipeline and the
scheduler would have recorded. The same seed gives the same month.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts import contact_routes, ladder_policy
from bot.config import ConfigError, Settings
from bot.outbound import WECHAT_UNDELIVERABLE, WEIBO_UNDELIVERABLE
from bot.replies import ReplyWriter
from bot.report import Month
from bot.storage import (
    KNOWLEDGE_BASE,
    AlertKind,
    AlertRecord,
    AlertStatus,
    AuditEntry,
    Database,
    Direction,
    Inquiry,
    InquiryCycle,
    InquiryStatus,
    Message,
    finished_cycle_values,
)
from escalation.calendar import BusinessCalendar
from escalation.ladder import ESCALATION, InquiryClock, LadderPolicy, plan
from escalation.scheduler import ContactRoute, recipients, roles_for
from escalation.sla import CRITICAL, ROUTINE, first_response_due
from knowledge import Classifier
from knowledge.faq import FAQ_FILE, FaqEntry, FaqMatcher, load_entries

ROOT = Path(__file__).resolve().parent.parent
TEXTS_FILE = ROOT / "tests" / "data" / "dev.jsonl"
DEMO_ACCOUNT = "demo"
DEMO_PREFIX = "demo-"

# Relative arrival rate by local hour: office peaks, an evening peak, a quiet night.
_HOUR_WEIGHTS = (0.8, 0.5, 0.3, 0.2, 0.2, 0.3, 0.7, 1.8, 4.0, 7.0, 8.0, 7.0, 5.0, 5.0, 7.0, 7.0, 7.0, 5.0, 3.0,
                 3.0, 3.5, 3.0, 2.0, 1.2)
CRITICAL_SHARE = 0.2
FAQ_SHARE = 0.12  # of routine inquiries: FAQ questions the knowledge base answers at once
SPAM_SHARE = 0.02
TRANSFER_SHARE = 0.06
UNDELIVERABLE_SHARE = 0.015
REOPEN_SHARE = 0.03


class DemoError(Exception):
    """Demo data cannot be made as asked; one line naming the option."""


@dataclass
class DemoSummary:
    month: Month
    seed: int
    inquiries: int = 0
    severities: Counter[str] = field(default_factory=Counter)
    departments: Counter[str] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)
    knowledge_base: int = 0
    late: int = 0
    open: int = 0
    closed: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    transfers: int = 0
    undeliverable: int = 0
    reopened: int = 0
    outside_hours: int = 0


@dataclass(frozen=True)
class _Text:
    text: str
    severity: str
    department: str
    faq: FaqEntry | None = None


def load_texts(path: Path, departments: dict[str, str]) -> list[_Text]:
    """The labelled messages, in file order (only departments the configuration knows)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DemoError(f"{path}: cannot read the labelled messages ({exc.strerror or exc}); demo data needs "
                        "a source checkout of guanwei") from None
    texts = []
    for line in lines:
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("department") in departments and row.get("severity") in (ROUTINE, CRITICAL) and row.get("text"):
            texts.append(_Text(row["text"], row["severity"], row["department"]))
    if not texts:
        raise DemoError(f"{path}: no labelled messages for the configured departments")
    return texts


async def _faq_entries(database: Database, settings: Settings) -> list[FaqEntry]:
    from bot.knowledge_runtime import load_faq_entries

    entries = await load_faq_entries(database)
    return entries or load_entries(FAQ_FILE, departments=settings.departments)


class _Builder:
    """Makes one inquiry at a time with its messages, alerts and audit entries."""

    def __init__(self, settings: Settings, session: AsyncSession, rng: random.Random, until: datetime,
                 summary: DemoSummary, routes: list[ContactRoute], run: str) -> None:
        self.settings = settings
        self.session = session
        self.rng = rng
        self.until = until
        self.summary = summary
        self.routes = routes
        self.run = run
        self.calendar = BusinessCalendar(settings.reply_hours)
        self.policy: LadderPolicy = ladder_policy(settings)
        self.replies = ReplyWriter(settings.file.replies, settings.file.bureau_name, settings.tz)
        departments = list(settings.departments)
        # Some departments are quicker than others: a leader should see a difference.
        self.slowness = {d: rng.choice((0.4, 0.7, 1.0, 1.0, 1.4, 2.2)) for d in departments}
        self.count = 0

    def staff(self, department: str) -> str:
        return f"{DEMO_PREFIX}{department}"

    # ---- timing

    def answer_delay(self, severity: str, department: str, start: datetime) -> datetime | None:
        """When a person answers, or None when nobody does (forgotten)."""
        r = self.rng.random()
        slow = self.slowness[department]
        if severity == CRITICAL:
            late_p, never_p = min(0.6, 0.12 * slow), 0.02 * slow
            if r < never_p:
                return None
            late = r < never_p + late_p
            minutes = 62 + self.rng.expovariate(1 / 40) if late else self.rng.triangular(3, 55, 10)
            return start + timedelta(minutes=minutes, seconds=self.rng.randint(0, 59))
        late_p, never_p = min(0.6, 0.10 * slow), 0.015 * slow
        if r < never_p:
            return None
        late = r < never_p + late_p
        # Late ones mostly by a little, a few by days.
        minutes = (120 + min(1500, max(2, round(self.rng.expovariate(1 / 100))))) if late \
            else round(self.rng.triangular(4, 119, 45))
        return self.calendar.add_working_minutes(start, minutes) + timedelta(seconds=self.rng.randint(0, 59))

    # ---- rows

    def add_message(self, inquiry: Inquiry, direction: str, at: datetime, content: str, *,
                    reply_to: Message | None = None, author: str | None = None, delivery: tuple[str, str] | None = None
                    ) -> Message:
        inbound = direction == Direction.IN
        self.count += 1
        message = Message(
            inquiry_id=inquiry.id, reply_to_id=reply_to.id if reply_to else None, direction=direction,
            channel=inquiry.channel, account=DEMO_ACCOUNT, sender=inquiry.sender, kind="text",
            content=content, platform_msg_id=f"demo{self.run}{self.count:06d}" if inbound else None,
            dedup_key=f"demo:{self.run}:{self.count}" if inbound else None,
            platform_created_at=at if inbound else None, recorded_at=at, fields={"demo": True} if inbound else {},
            author=author, delivery_status=delivery[0] if delivery else None,
            delivery_reason=delivery[1] if delivery and delivery[1] else None,
        )
        self.session.add(message)
        return message

    def audit(self, at: datetime, actor: str, action: str, inquiry: Inquiry, **detail: Any) -> None:
        self.session.add(AuditEntry(at=at, actor=actor, action=action, target=f"inquiry:{inquiry.id}",
                                    detail={**detail, "demo": True}, remote="demo"))

    def alerts_for(self, inquiry: Inquiry, cycle: int, start: datetime, due: datetime, stop: datetime, *,
                   ended: bool = True) -> int:
        """Record what the scheduler would have recorded for one cycle, up to `stop`: the answer or closing
        (`ended`), or the end of the simulated time for an inquiry still open.

        Alerts still waiting to be delivered at the end are left out: a real server's scheduler would
        deliver a pending record, and demo data must never alert anybody.
        """
        severity = inquiry.severity
        critical = severity == CRITICAL
        level = 0
        for step in plan(InquiryClock(severity, cycle, start, due), self.policy, self.calendar):
            if step.fire_at >= stop:
                continue
            deliver_at = step.fire_at if critical else self.calendar.next_opening(step.fire_at)
            if deliver_at >= stop and not ended:
                continue
            record = AlertRecord(
                inquiry_id=inquiry.id, key=step.key,
                kind=AlertKind.ESCALATION if step.kind == ESCALATION else AlertKind.REMINDER, level=step.level,
                fire_at=step.fire_at, recorded_at=step.fire_at, by="system", note="",
            )
            if deliver_at >= stop:
                # A routine alert waiting for the morning, answered first: nobody needs it any more.
                record.status, record.delivered_at, record.recipients = AlertStatus.CANCELLED, stop, []
            else:
                self.deliver(record, inquiry, deliver_at)
            self.session.add(record)
            self.summary.alerts[f"{record.kind}:{record.level or ''}"] += 1
            level = max(level, step.level or 0)
        inquiry.escalation_level = max(inquiry.escalation_level, level)
        return level

    def deliver(self, record: AlertRecord, inquiry: Inquiry, at: datetime) -> None:
        on_duty = inquiry.severity == CRITICAL and not self.calendar.is_open(at)
        contacts = recipients(roles_for(record, self.policy), inquiry.department, self.routes, on_duty_only=on_duty)
        failed = self.rng.random() < 0.03
        record.recipients = [
            {"name": c.name, "channel": c.channel, "ok": not (failed and n == 0), "attempts": 3 if failed and n == 0
             else 1, "error": "演示：通知渠道超时" if failed and n == 0 else None}
            for n, c in enumerate(contacts)
        ]
        oks = [r["ok"] for r in record.recipients]
        record.status = (AlertStatus.FAILED if not oks or not any(oks)
                         else AlertStatus.SENT if all(oks) else AlertStatus.PARTIAL)
        record.delivered_at = at

    async def inquiry(self, number: int, received: datetime, text: _Text, channel: str,
                      classifier: Classifier, others: list[str]) -> None:
        rng, settings = self.rng, self.settings
        classification = classifier.classify(text.text)
        severity, department = text.severity, text.department
        due = first_response_due(received, severity, settings.sla, self.calendar)
        transferred_from: str | None = None
        if text.faq is None and rng.random() < TRANSFER_SHARE:
            transferred_from = rng.choice([d for d in others if d != department])
        inquiry = Inquiry(
            channel=channel, account=DEMO_ACCOUNT, sender=f"{DEMO_PREFIX}{channel}-{self.run}-{number:04d}",
            status=InquiryStatus.OPEN, severity=severity, department=department,
            department_confidence=1.0 if transferred_from else classification.department_confidence,
            score=classification.score, matched=list(classification.matched), summary=text.text[:200],
            received_at=received, due_at=due, last_message_at=received, cycle=1, clock_started_at=received,
            next_alert_at=None, escalation_level=0,
        )
        self.session.add(inquiry)
        await self.session.flush()
        summary = self.summary
        summary.inquiries += 1
        summary.severities[severity] += 1
        summary.departments[department] += 1
        summary.channels[channel] += 1
        summary.outside_hours += not self.calendar.is_open(received)
        inbound = self.add_message(inquiry, Direction.IN, received, text.text)
        await self.session.flush()
        department_name = settings.department_name(transferred_from or department)

        if text.faq is not None:
            inquiry.status, inquiry.answered_at, inquiry.answered_by = InquiryStatus.ANSWERED, received, KNOWLEDGE_BASE
            inquiry.faq_id = text.faq.id
            self.add_message(inquiry, Direction.OUT, received, self.replies.faq_answer(
                answer=text.faq.answer, inquiry_id=inquiry.id), reply_to=inbound)
            summary.knowledge_base += 1
            return
        self.add_message(inquiry, Direction.OUT, received, self.replies.acknowledgement(
            inquiry_id=inquiry.id, due=due, now=received, critical=severity == CRITICAL, followup=False,
            department_name=department_name), reply_to=inbound)

        if severity == ROUTINE and (len(text.text.strip()) <= 3 or rng.random() < SPAM_SHARE):
            closed_at = self.calendar.add_working_minutes(received, rng.randint(5, 60))
            if closed_at <= self.until:
                self.alerts_for(inquiry, 1, received, due, closed_at)
                self.close(inquiry, closed_at, "spam", "无实际内容")
                return

        if transferred_from:
            moved = (self.calendar.add_working_minutes(received, rng.randint(3, 40)) if severity == ROUTINE
                     else received + timedelta(minutes=rng.randint(2, 12)))
            if moved <= self.until:
                self.audit(moved, self.staff(transferred_from), "transfer", inquiry,
                           **{"from": transferred_from, "to": department, "reason": "不属本部门职责，转主管部门办理"})
                summary.transfers += 1

        answered = self.answer_delay(severity, department, received)
        await self.finish_cycle(inquiry, 1, received, due, answered)
        if inquiry.status == InquiryStatus.ANSWERED and severity == ROUTINE and rng.random() < REOPEN_SHARE:
            await self.reopen(inquiry)

    async def finish_cycle(self, inquiry: Inquiry, cycle: int, start: datetime, due: datetime,
                           answered: datetime | None) -> None:
        """Answer the cycle at `answered` (None or after `until`: it stays open), with its alerts."""
        rng, summary = self.rng, self.summary
        if answered is not None and rng.random() < UNDELIVERABLE_SHARE:
            # The platform refuses for good (the netizen unfollowed, or the 48-hour window passed): the
            # inquiry stays open, and staff settle it by telephone.
            if answered <= self.until:
                reason = (WECHAT_UNDELIVERABLE[45015] + "（微信 45015）" if inquiry.channel == "wechat"
                          else WEIBO_UNDELIVERABLE[20301] + "（微博 20301）")
                self.add_message(inquiry, Direction.OUT, answered, "【演示】您好，您反映的问题已办理，详见……",
                                 author=self.staff(inquiry.department), delivery=("undeliverable", reason))
                summary.undeliverable += 1
                closed_at = answered + timedelta(minutes=rng.randint(20, 90))
                if closed_at <= self.until:
                    self.alerts_for(inquiry, cycle, start, due, closed_at)
                    self.close(inquiry, closed_at, "settled", "答复无法送达，已电话联系网友告知办理结果")
                    return
            answered = None
        if answered is None or answered > self.until:
            self.alerts_for(inquiry, cycle, start, due, self.until, ended=False)
            self.chase_maybe(inquiry, due)
            inquiry.next_alert_at = None
            summary.open += 1
            return
        self.alerts_for(inquiry, cycle, start, due, answered)
        staff = self.staff(inquiry.department)
        department_name = self.settings.department_name(inquiry.department)
        text = f"【演示】您好，您的留言已由{department_name}办理，答复如下：……"
        self.add_message(inquiry, Direction.OUT, answered, text, author=staff, delivery=("delivered", ""))
        self.audit(answered, staff, "answer", inquiry, delivery="delivered", reason=None, screening=[], override=None)
        inquiry.status, inquiry.answered_at, inquiry.answered_by = InquiryStatus.ANSWERED, answered, staff
        inquiry.next_alert_at = None
        summary.late += answered > due

    def chase_maybe(self, inquiry: Inquiry, due: datetime) -> None:
        if due >= self.until or self.rng.random() < 0.5:
            return
        at = self.calendar.add_working_minutes(due, 90)
        if at >= self.until:
            return
        record = AlertRecord(inquiry_id=inquiry.id, key=f"chase:{at.timestamp():.6f}", kind=AlertKind.CHASE,
                             level=None, fire_at=at, recorded_at=at, by=f"{DEMO_PREFIX}info_center",
                             note="请尽快答复网友", status=AlertStatus.PENDING, recipients=[])
        self.deliver(record, inquiry, at)
        self.session.add(record)
        self.audit(at, f"{DEMO_PREFIX}info_center", "chase", inquiry, note="请尽快答复网友")
        self.summary.alerts["chase:"] += 1

    def close(self, inquiry: Inquiry, at: datetime, kind: str, reason: str) -> None:
        labels = {"spam": "垃圾信息", "duplicate": "重复留言", "settled": "已线下办结"}
        inquiry.status, inquiry.next_alert_at = InquiryStatus.CLOSED, None
        inquiry.closed_reason = f"{labels[kind]}：{reason}"
        self.audit(at, self.staff(inquiry.department), f"close.{kind}", inquiry, reason=reason)
        self.summary.closed += 1

    async def reopen(self, inquiry: Inquiry) -> None:
        """A follow-up after the answer: a new cycle with its own deadline (as the pipeline's `_reopen`)."""
        assert inquiry.answered_at is not None
        followup = inquiry.answered_at + timedelta(minutes=self.rng.randint(60, 2 * 24 * 60))
        if followup >= self.until:
            return
        due = first_response_due(followup, ROUTINE, self.settings.sla, self.calendar)
        self.session.add(InquiryCycle(**finished_cycle_values(inquiry, followup)))
        inquiry.status, inquiry.cycle, inquiry.clock_started_at = InquiryStatus.OPEN, inquiry.cycle + 1, followup
        inquiry.severity = ROUTINE  # the follow-up is an ordinary question, whatever the first one was
        inquiry.due_at, inquiry.last_message_at = due, followup
        inquiry.answered_at = inquiry.answered_by = None
        inbound = self.add_message(inquiry, Direction.IN, followup, "还有个问题想再问一下，刚才说的情况具体怎么办理？")
        await self.session.flush()
        self.add_message(inquiry, Direction.OUT, followup, self.replies.acknowledgement(
            inquiry_id=inquiry.id, due=due, now=followup, critical=False, followup=True,
            department_name=self.settings.department_name(inquiry.department)), reply_to=inbound)
        self.summary.reopened += 1
        await self.finish_cycle(inquiry, inquiry.cycle, followup, due, self.answer_delay(
            ROUTINE, inquiry.department, followup))


def _routes(settings: Settings) -> list[ContactRoute]:
    try:
        return contact_routes(settings, {})
    except ConfigError:
        # Contacts whose addresses live in the environment: name them without their addresses.
        from escalation.notifiers import Contact

        return [ContactRoute(Contact(c.name, "log", ""), c.role, c.department)
                for c in settings.file.escalation.contacts]


def _arrivals(month: Month, settings: Settings, rng: random.Random, end: datetime) -> list[datetime]:
    calendar = BusinessCalendar(settings.reply_hours)
    arrivals = []
    for day in month.days():
        n = rng.randint(13, 20) if calendar.is_workday(day) else rng.randint(6, 11)
        for _ in range(n):
            hour = rng.choices(range(24), weights=_HOUR_WEIGHTS)[0]
            moment = datetime(day.year, day.month, day.day, hour, rng.randint(0, 59), rng.randint(0, 59),
                              tzinfo=settings.tz)
            if moment < end:
                arrivals.append(moment)
    return sorted(arrivals)


async def generate(
    database: Database,
    settings: Settings,
    month: Month,
    *,
    seed: int = 1,
    force: bool = False,
    now: datetime | None = None,
    classifier: Classifier | None = None,
    texts_file: Path = TEXTS_FILE,
) -> DemoSummary:
    """Fill the database with a demo month. Refuses a database that holds inquiries unless `force`."""
    now = now or datetime.now(UTC)
    start, end = month.start(settings.tz), month.end(settings.tz)
    if start >= now:
        raise DemoError(f"--month: {month.key} has not begun; demo data is a month that already happened")
    async with database.transaction() as session:
        existing = await session.scalar(select(func.count()).select_from(Inquiry)) or 0
    if existing and not force:
        raise DemoError(f"the database already holds {existing} inquiries; demo data goes into an empty database "
                        "(--force adds it anyway)")
    texts = load_texts(texts_file, settings.departments)
    faq = await _faq_entries(database, settings)
    classifier = classifier or Classifier.load(departments=settings.departments,
                                               fallback=settings.file.fallback_department)
    matcher = FaqMatcher(faq)
    faq_texts = [
        _Text(question, ROUTINE, entry.department or settings.file.fallback_department, entry)
        for entry in faq for question in entry.alternates
        if (entry.department or settings.file.fallback_department) in settings.departments
        and (found := matcher.match(question)) is not None and found.entry.id == entry.id
        and classifier.classify(question).severity == ROUTINE
    ]
    routine = [t for t in texts if t.severity == ROUTINE]
    critical = [t for t in texts if t.severity == CRITICAL]

    rng = random.Random(seed)
    summary = DemoSummary(month=month, seed=seed)
    until = min(now, end + timedelta(days=3))  # events of late-month inquiries spill into the next days
    run = f"{month.key.replace('-', '')}s{seed}n{existing}"
    departments = list(settings.departments)
    async with database.transaction() as session:
        builder = _Builder(settings, session, rng, until, summary, _routes(settings), run)
        arrivals = _arrivals(month, settings, rng, min(end, now))
        critical_ones = set(rng.sample(range(len(arrivals)), round(len(arrivals) * CRITICAL_SHARE)))
        for number, received in enumerate(arrivals, 1):
            if number - 1 in critical_ones:
                text = rng.choice(critical)
            elif faq_texts and rng.random() < FAQ_SHARE:
                text = rng.choice(faq_texts)
            else:
                text = rng.choice(routine)
            channel = "wechat" if rng.random() < 0.62 else "weibo"
            await builder.inquiry(number, received, text, channel, classifier, departments)
        session.add(AuditEntry(
            at=now, actor=f"{DEMO_PREFIX}generator", action="demo.generated", target=f"demo:{month.key}",
            detail={"month": month.key, "seed": seed, "inquiries": summary.inquiries, "demo": True,
                    "texts": str(texts_file.name)}, remote="demo",
        ))
    return summary
