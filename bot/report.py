"""The monthly operations report (rule R4.5): the figures a leader reads, as an .xlsx workbook and an HTML page.

Scope and definitions (they are printed in the report's 说明 too):

- The month is a calendar month in the bureau's zone (config ``timezone``, Asia/Shanghai). Its inquiries are
  those *received* in it; every other figure (alerts, undeliverable answers, transfers) is about those
  inquiries, whenever it happened.
- An inquiry may have been reopened by a follow-up after its answer (``cycle`` > 1). Every cycle is judged on
  its own: its severity, department, start (``clock_started_at``), deadline and answer. The current cycle is
  on the inquiry's row, the finished ones in ``inquiry_cycles``. Counts of inquiries (by channel, department,
  day) count each inquiry once, as critical when any of its cycles was.
- Outcome of a cycle: answered on time (``answered_at`` ≤ ``due_at``), answered late, still open past its deadline,
  still open within it, or closed without an answer (spam, duplicate, settled offline). The on-time rate is
  on time ÷ (on time + late + open past due): open inquiries not yet due, and closed ones, are not judged.
  "Still open" is as of the moment the report is made (``as_of``).
- Response time counts answers by a person (the knowledge base answers at once and has its own rate):
  routine in working minutes of reply hours (`BusinessCalendar.working_minutes_between`, the code that
  computes deadlines), critical in wall-clock minutes. Median and 90th percentile interpolate linearly
  between ranks (as Excel's PERCENTILE.INC).

`build_report` loads and computes; `write_xlsx`, `render_charts` and `write_html` write. Everything but
loading is a pure function of the rows and a `ReportContext`.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import math
import re
import shutil
import subprocess
import threading
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from loguru import logger
from sqlalchemy import select

from bot.config import Settings
from bot.logs import mask_text
from bot.replies import inquiry_ref
from bot.storage import (
    KNOWLEDGE_BASE,
    AlertKind,
    AlertRecord,
    AuditEntry,
    Database,
    Inquiry,
    InquiryCycle,
    InquiryStatus,
    Message,
)
from escalation.calendar import BusinessCalendar
from escalation.sla import CRITICAL, ROUTINE, SEVERITIES, SlaPolicy
from knowledge.classifier import SECOND_OPINION_LABEL

DATA_DIR = Path(__file__).resolve().parent / "data"
HTML_TEMPLATE = "report.html.j2"
ALL = "__all__"  # the total row of a per-department table

# Outcomes of an answer cycle.
ON_TIME, LATE, OPEN_OVERDUE, OPEN_PENDING, CLOSED = "on_time", "late", "open_overdue", "open_pending", "closed"

CHANNEL_NAMES = {"wechat": "微信", "weibo": "微博"}
SEVERITY_NAMES = {ROUTINE: "常规", CRITICAL: "紧急"}
ALERT_STATUSES = ("sent", "partial", "failed", "cancelled", "pending")
WEEKDAYS = "一二三四五六日"
# Classifier rule markers in `Inquiry.matched` ("misconduct_routed_to_office(你们局)", the second opinion's
# "相似案例判断 62%") are not terms people wrote.
_RULE_MARKER = re.compile(rf"^[a-z_]+\(.*\)$|^{SECOND_OPINION_LABEL} \d+%$")


class ReportError(ValueError):
    """The report cannot be made as asked; the message names the option."""


# --------------------------------------------------------------------------- the month


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
        if match is None or not 1 <= int(match[2]) <= 12:
            raise ReportError(f"--month: expected YYYY-MM (e.g. 2026-11), got {text!r}")
        if not 1971 <= int(match[1]) <= 2099:  # and the month after it must exist: 9999-12 has none
            raise ReportError(f"--month: {text.strip()} is not a month guanwei can hold (1971-01 to 2099-12)")
        return cls(int(match[1]), int(match[2]))

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def label(self) -> str:
        return f"{self.year}年{self.month}月"

    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def days(self) -> list[date]:
        first, after = self.first_day(), self.next().first_day()
        return [first + timedelta(days=n) for n in range((after - first).days)]

    def start(self, tz: tzinfo) -> datetime:
        """Midnight of the first day, in `tz` (aware)."""
        return datetime(self.year, self.month, 1, tzinfo=tz)

    def end(self, tz: tzinfo) -> datetime:
        """Midnight of the first day of the next month, in `tz`: the month is [start, end)."""
        return self.next().start(tz)


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class MonthRows:
    """What the database holds about one month's inquiries."""

    month: Month
    inquiries: list[Inquiry]
    alerts: list[AlertRecord]
    undeliverable: list[Message]
    transfers: list[AuditEntry]
    demo: bool = False
    finished_cycles: list[InquiryCycle] = field(default_factory=list)  # of reopened inquiries


async def load_month(database: Database, month: Month, tz: tzinfo) -> MonthRows:
    start, end = month.start(tz), month.end(tz)
    in_month = select(Inquiry.id).where(Inquiry.received_at >= start, Inquiry.received_at < end)
    async with database.transaction() as session:
        inquiries = list((await session.scalars(
            select(Inquiry).where(Inquiry.received_at >= start, Inquiry.received_at < end).order_by(Inquiry.id)
        )).all())
        finished_cycles = list((await session.scalars(
            select(InquiryCycle).where(InquiryCycle.inquiry_id.in_(in_month))
            .order_by(InquiryCycle.inquiry_id, InquiryCycle.cycle)
        )).all())
        alerts = list((await session.scalars(
            select(AlertRecord).where(AlertRecord.inquiry_id.in_(in_month)).order_by(AlertRecord.id)
        )).all())
        undeliverable = list((await session.scalars(
            select(Message).where(Message.delivery_status == "undeliverable", Message.inquiry_id.in_(in_month))
            .order_by(Message.recorded_at, Message.id)
        )).all())
        # A transfer happens after its inquiry arrived; filter by target below.
        audits = list((await session.scalars(
            select(AuditEntry).where(AuditEntry.action.in_(("transfer", "demo.generated")), AuditEntry.at >= start)
            .order_by(AuditEntry.at, AuditEntry.id)
        )).all())
    targets = {f"inquiry:{inquiry.id}" for inquiry in inquiries}
    transfers = [a for a in audits if a.action == "transfer" and a.target in targets]
    demo = any(i.account == "demo" for i in inquiries) or any(
        a.action == "demo.generated" and (a.detail or {}).get("month") == month.key for a in audits)
    return MonthRows(month, inquiries, alerts, undeliverable, transfers, demo, finished_cycles)


# --------------------------------------------------------------------------- computing


@dataclass(frozen=True)
class ReportContext:
    """What the figures depend on besides the rows."""

    tz: tzinfo
    calendar: BusinessCalendar
    sla: SlaPolicy
    departments: dict[str, str]
    rung_names: dict[int, str]
    as_of: datetime
    bureau: str = ""
    timezone_name: str = "Asia/Shanghai"

    @classmethod
    def from_settings(cls, settings: Settings, as_of: datetime) -> ReportContext:
        return cls(
            tz=settings.tz, calendar=BusinessCalendar(settings.reply_hours), sla=settings.sla,
            departments=dict(settings.departments),
            rung_names={n: rung.name for n, rung in enumerate(settings.file.escalation.rungs, 1)},
            as_of=as_of, bureau=settings.file.bureau_name, timezone_name=settings.file.timezone,
        )

    def department_name(self, key: str) -> str:
        return self.departments.get(key, key)

    def rung_label(self, level: int | None) -> str:
        if not level:
            return "—"
        name = self.rung_names.get(level)
        return f"第{level}级 {name}" if name else f"第{level}级"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) interpolating linearly between ranks (Excel PERCENTILE.INC); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _known_severity(severity: str) -> str:
    return severity if severity in SEVERITIES else ROUTINE


@dataclass(frozen=True)
class Cycle:
    """One answer cycle, judged on its own severity, department and deadline: an inquiry's current cycle, or a
    finished one kept when a follow-up reopened the inquiry."""

    inquiry: Inquiry
    cycle: int
    severity: str
    department: str
    clock_started_at: datetime  # receipt, or the follow-up that reopened the inquiry
    due_at: datetime
    answered_at: datetime | None
    answered_by: str | None
    escalation_level: int
    closed: bool  # closed without an answer (spam, duplicate, settled offline)

    @classmethod
    def current(cls, inquiry: Inquiry) -> Cycle:
        return cls(inquiry, inquiry.cycle, _known_severity(inquiry.severity), inquiry.department,
                   inquiry.clock_started_at or inquiry.received_at, inquiry.due_at, inquiry.answered_at,
                   inquiry.answered_by, inquiry.escalation_level or 0, inquiry.status == InquiryStatus.CLOSED)

    @classmethod
    def finished(cls, row: InquiryCycle, inquiry: Inquiry) -> Cycle:
        return cls(inquiry, row.cycle, _known_severity(row.severity), row.department, row.clock_started_at,
                   row.due_at, row.answered_at, row.answered_by, row.escalation_level or 0, False)


def outcome_of(cycle: Cycle, as_of: datetime) -> str:
    """A cycle's outcome (see the module docstring)."""
    if cycle.answered_at is not None:
        return ON_TIME if cycle.answered_at <= cycle.due_at else LATE
    if cycle.closed:
        return CLOSED
    return OPEN_OVERDUE if cycle.due_at < as_of else OPEN_PENDING


def response_minutes(cycle: Cycle, calendar: BusinessCalendar) -> float | None:
    """Minutes to a person's answer: working minutes for routine, wall-clock minutes for critical.

    None when unanswered or answered by the knowledge base.
    """
    if cycle.answered_at is None or cycle.answered_by == KNOWLEDGE_BASE:
        return None
    if cycle.severity == ROUTINE:
        return calendar.working_minutes_between(cycle.clock_started_at, cycle.answered_at)
    return (cycle.answered_at - cycle.clock_started_at) / timedelta(minutes=1)


def cycles_of(rows: MonthRows) -> list[Cycle]:
    """Every answer cycle of the month's inquiries, finished and current, in order of inquiry and cycle."""
    by_id = {i.id: i for i in rows.inquiries}
    finished: dict[int, list[Cycle]] = {}
    for row in rows.finished_cycles:
        if row.inquiry_id in by_id:
            finished.setdefault(row.inquiry_id, []).append(Cycle.finished(row, by_id[row.inquiry_id]))
    return [c for i in rows.inquiries for c in [*sorted(finished.get(i.id, []), key=lambda c: c.cycle),
                                                  Cycle.current(i)]]


@dataclass(frozen=True)
class SlaFigures:
    total: int = 0
    on_time: int = 0
    late: int = 0
    open_overdue: int = 0
    open_pending: int = 0
    closed: int = 0
    median: float | None = None  # minutes to a person's answer: working (routine) or wall-clock (critical)
    p90: float | None = None
    staff_answered: int = 0  # how many answers the median and p90 are of

    @property
    def judged(self) -> int:
        return self.on_time + self.late + self.open_overdue

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.judged if self.judged else None


def _sla_figures(cycles: Sequence[Cycle], ctx: ReportContext) -> SlaFigures:
    outcomes = Counter(outcome_of(c, ctx.as_of) for c in cycles)
    minutes = [m for m in (response_minutes(c, ctx.calendar) for c in cycles) if m is not None]
    return SlaFigures(
        total=len(cycles), on_time=outcomes[ON_TIME], late=outcomes[LATE], open_overdue=outcomes[OPEN_OVERDUE],
        open_pending=outcomes[OPEN_PENDING], closed=outcomes[CLOSED], median=percentile(minutes, 0.5),
        p90=percentile(minutes, 0.9), staff_answered=len(minutes),
    )


@dataclass(frozen=True)
class DayFigures:
    day: date
    workday: bool
    total: int
    routine: int
    critical: int
    wechat: int
    weibo: int
    outside_hours: int  # received outside reply hours (nights, weekends, holidays)


@dataclass(frozen=True)
class AlertFigures:
    kind: str  # reminder | chase | escalation
    level: int | None
    label: str
    total: int
    routine: int
    critical: int
    by_status: dict[str, int]
    inquiries: int  # how many inquiries had one


@dataclass(frozen=True)
class OverdueRow:
    inquiry_id: int
    ref: str
    department: str
    severity: str
    cycle: int
    received_at: datetime
    due_at: datetime
    answered_at: datetime | None
    late_minutes: int  # wall-clock, from the deadline to the answer (or to `as_of` when still open), rounded
    late_working_minutes: int | None  # routine only: working minutes past the deadline, rounded
    escalation_level: int
    reason: str
    summary: str


@dataclass(frozen=True)
class UndeliverableRow:
    inquiry_id: int
    ref: str
    department: str
    channel: str
    at: datetime
    author: str
    reason: str
    inquiry_status: str


@dataclass(frozen=True)
class TransferRow:
    inquiry_id: int
    ref: str
    at: datetime
    actor: str
    from_department: str
    to_department: str
    reason: str


@dataclass(frozen=True)
class MonthFigures:
    month: Month
    total: int
    by_channel: dict[str, int]
    by_severity: dict[str, int]
    channel_severity: dict[tuple[str, str], int]  # (channel, severity) → count
    by_department: dict[str, dict[str, int]]  # department → severity → count (every configured department)
    daily: list[DayFigures]
    by_hour: list[int]  # 24 counts, local hour of receipt
    outside_hours: int
    sla: dict[str, dict[str, SlaFigures]]  # severity → department (or ALL) → figures
    response_minutes: dict[str, list[float]]  # severity → each person's answer, for the distribution
    kb_answered: int
    kb_by_department: dict[str, int]
    alerts: list[AlertFigures]
    undeliverable: list[UndeliverableRow]
    transfers: list[TransferRow]
    overdue: list[OverdueRow]
    critical_departments: list[tuple[str, int]]
    critical_terms: list[tuple[str, int]]
    reopened: int
    demo: bool = False

    @property
    def kb_rate(self) -> float | None:
        return self.kb_answered / self.total if self.total else None

    @property
    def critical_share(self) -> float | None:
        return self.by_severity.get(CRITICAL, 0) / self.total if self.total else None

    def alert_count(self, kind: str, level: int | None = None) -> int:
        return sum(a.total for a in self.alerts if a.kind == kind and (level is None or a.level == level))

    def transfers_out(self, department: str) -> int:
        return sum(1 for t in self.transfers if t.from_department == department)

    def transfers_in(self, department: str) -> int:
        return sum(1 for t in self.transfers if t.to_department == department)

    def outcome_total(self, outcome: str) -> int:
        return sum(getattr(self.sla[s][ALL], outcome) for s in SEVERITIES)


def _ordered_keys(known: Iterable[str], seen: Iterable[str]) -> list[str]:
    keys = list(known)
    return keys + sorted(set(seen) - set(keys))


def compute_month(rows: MonthRows, ctx: ReportContext) -> MonthFigures:
    """Every figure of one month, from its rows."""
    inquiries = rows.inquiries
    cycles = cycles_of(rows)
    by_id = {i.id: i for i in inquiries}
    # An inquiry counts once, as critical when any of its cycles was (a critical question, then "谢谢，还想问…").
    severity_of: dict[int, str] = {i.id: ROUTINE for i in inquiries}
    for c in cycles:
        if c.severity == CRITICAL:
            severity_of[c.inquiry.id] = CRITICAL
    departments = _ordered_keys(ctx.departments, [*(i.department for i in inquiries), *(c.department for c in cycles)])
    channels = _ordered_keys(CHANNEL_NAMES, (i.channel for i in inquiries))

    by_department = {d: {s: 0 for s in SEVERITIES} for d in departments}
    for inquiry in inquiries:
        by_department[inquiry.department][severity_of[inquiry.id]] += 1

    days: dict[date, list[Inquiry]] = {d: [] for d in rows.month.days()}
    by_hour = [0] * 24
    outside = 0
    for inquiry in inquiries:
        local = inquiry.received_at.astimezone(ctx.tz)
        days.setdefault(local.date(), []).append(inquiry)
        by_hour[local.hour] += 1
        outside += not ctx.calendar.is_open(inquiry.received_at)
    daily = [
        DayFigures(
            day=day, workday=ctx.calendar.is_workday(day), total=len(found),
            routine=sum(severity_of[i.id] == ROUTINE for i in found),
            critical=sum(severity_of[i.id] == CRITICAL for i in found),
            wechat=sum(i.channel == "wechat" for i in found), weibo=sum(i.channel == "weibo" for i in found),
            outside_hours=sum(not ctx.calendar.is_open(i.received_at) for i in found),
        )
        for day, found in sorted(days.items())
    ]

    sla: dict[str, dict[str, SlaFigures]] = {}
    minutes: dict[str, list[float]] = {}
    for severity in SEVERITIES:
        of_severity = [c for c in cycles if c.severity == severity]
        sla[severity] = {d: _sla_figures([c for c in of_severity if c.department == d], ctx) for d in departments}
        sla[severity][ALL] = _sla_figures(of_severity, ctx)
        minutes[severity] = sorted(m for m in (response_minutes(c, ctx.calendar) for c in of_severity)
                                   if m is not None)

    kb_ids = {c.inquiry.id for c in cycles if c.answered_by == KNOWLEDGE_BASE}
    kb = [i for i in inquiries if i.id in kb_ids]
    kb_by_department = Counter(i.department for i in kb)

    undeliverable = [
        UndeliverableRow(
            inquiry_id=m.inquiry_id or 0, ref=inquiry_ref(m.inquiry_id or 0),
            department=by_id[m.inquiry_id].department if m.inquiry_id in by_id else "", channel=m.channel,
            at=m.recorded_at, author=m.author or "", reason=m.delivery_reason or "",
            inquiry_status=by_id[m.inquiry_id].status if m.inquiry_id in by_id else "",
        )
        for m in rows.undeliverable
    ]
    transfers = [
        TransferRow(
            inquiry_id=int(a.target.split(":", 1)[1]), ref=inquiry_ref(int(a.target.split(":", 1)[1])), at=a.at,
            actor=a.actor, from_department=str((a.detail or {}).get("from", "")),
            to_department=str((a.detail or {}).get("to", "")), reason=str((a.detail or {}).get("reason", "")),
        )
        for a in rows.transfers
    ]
    undeliverable_ids = {u.inquiry_id for u in undeliverable}
    transferred_ids = {t.inquiry_id for t in transfers}

    overdue = [
        _overdue_row(c, ctx, undeliverable=c.inquiry.id in undeliverable_ids,
                     transferred=c.inquiry.id in transferred_ids)
        for c in cycles if outcome_of(c, ctx.as_of) in (LATE, OPEN_OVERDUE)
    ]
    overdue.sort(key=lambda r: (r.severity != CRITICAL, -r.late_minutes, r.inquiry_id, r.cycle))

    critical = [i for i in inquiries if severity_of[i.id] == CRITICAL]
    critical_departments = Counter(i.department for i in critical).most_common()
    terms: Counter[str] = Counter()
    for inquiry in critical:
        terms.update({t for t in (inquiry.matched or []) if not _RULE_MARKER.match(t)})
    critical_terms = sorted(terms.items(), key=lambda kv: (-kv[1], kv[0]))[:15]

    return MonthFigures(
        month=rows.month,
        total=len(inquiries),
        by_channel={c: sum(i.channel == c for i in inquiries) for c in channels},
        by_severity={s: sum(severity_of[i.id] == s for i in inquiries) for s in SEVERITIES},
        channel_severity=dict(Counter((i.channel, severity_of[i.id]) for i in inquiries)),
        by_department=by_department,
        daily=daily,
        by_hour=by_hour,
        outside_hours=outside,
        sla=sla,
        response_minutes=minutes,
        kb_answered=len(kb),
        kb_by_department=dict(kb_by_department),
        alerts=_alert_figures(rows.alerts, severity_of, ctx),
        undeliverable=undeliverable,
        transfers=transfers,
        overdue=overdue,
        critical_departments=sorted(critical_departments, key=lambda kv: (-kv[1], departments.index(kv[0]))),
        critical_terms=critical_terms,
        reopened=sum(i.cycle > 1 for i in inquiries),
        demo=rows.demo,
    )


def _overdue_row(cycle: Cycle, ctx: ReportContext, *, undeliverable: bool, transferred: bool) -> OverdueRow:
    inquiry = cycle.inquiry
    until = cycle.answered_at or ctx.as_of
    severity = cycle.severity
    reasons = ["超时答复" if cycle.answered_at else "超时未答复（仍在办理）"]
    if cycle.cycle > 1:
        reasons.append(f"网友追问后重新计时（第{cycle.cycle}轮）")
    if cycle.cycle < inquiry.cycle:
        reasons.append("答复后网友又追问，已另起一轮")
    if undeliverable:
        reasons.append("答复曾无法送达")
    if transferred:
        reasons.append("曾转办")
    return OverdueRow(
        inquiry_id=inquiry.id, ref=inquiry_ref(inquiry.id), department=cycle.department, severity=severity,
        cycle=cycle.cycle, received_at=cycle.clock_started_at, due_at=cycle.due_at, answered_at=cycle.answered_at,
        late_minutes=round((until - cycle.due_at) / timedelta(minutes=1)),
        late_working_minutes=round(ctx.calendar.working_minutes_between(cycle.due_at, until))
        if severity == ROUTINE else None,
        escalation_level=cycle.escalation_level, reason="；".join(reasons),
        summary=mask_text((inquiry.summary or "")[:40]),
    )


def _alert_figures(
    alerts: Sequence[AlertRecord], severity_of: dict[int, str], ctx: ReportContext
) -> list[AlertFigures]:
    groups: dict[tuple[str, int | None], list[AlertRecord]] = {
        (AlertKind.REMINDER, None): [], (AlertKind.CHASE, None): [],
        **{(AlertKind.ESCALATION, level): [] for level in sorted(ctx.rung_names) if level >= 2},
    }
    for record in alerts:
        level = record.level if record.kind == AlertKind.ESCALATION else None
        groups.setdefault((record.kind, level), []).append(record)
    labels = {AlertKind.REMINDER: "到期提醒", AlertKind.CHASE: "人工催办", AlertKind.ESCALATION: "逐级上报"}
    out = []
    for (kind, level), records in groups.items():
        severities = Counter(severity_of[r.inquiry_id] for r in records if r.inquiry_id in severity_of)
        statuses = Counter(r.status for r in records)
        out.append(AlertFigures(
            kind=kind, level=level, label=labels.get(kind, kind), total=len(records),
            routine=severities[ROUTINE], critical=severities[CRITICAL],
            by_status={s: statuses[s] for s in _ordered_keys(ALERT_STATUSES, statuses)},
            inquiries=len({r.inquiry_id for r in records}),
        ))
    return out


# --------------------------------------------------------------------------- headline figures and MoM

PCT, COUNT, MINUTES = "pct", "count", "minutes"


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    kind: str  # COUNT, PCT or MINUTES
    current: float | None
    previous: float | None

    @property
    def delta(self) -> float | None:
        """Change: a count's difference, a rate's difference in percentage points (as a fraction), minutes."""
        if self.current is None or self.previous is None:
            return None
        return self.current - self.previous

    @property
    def relative(self) -> float | None:
        """Relative change of a count or time (None for rates, and from zero)."""
        if self.kind == PCT or self.delta is None or not self.previous:
            return None
        return self.delta / self.previous


def _kpi_values(f: MonthFigures) -> list[tuple[str, str, str, float | None]]:
    routine, critical = f.sla[ROUTINE][ALL], f.sla[CRITICAL][ALL]
    return [
        ("total", "受理留言", COUNT, f.total),
        ("critical", "紧急留言", COUNT, f.by_severity.get(CRITICAL, 0)),
        ("critical_share", "紧急留言占比", PCT, f.critical_share),
        ("outside_hours", "非答复时间收到", COUNT, f.outside_hours),
        ("routine_on_time_rate", "常规留言按时答复率", PCT, routine.on_time_rate),
        ("critical_on_time_rate", "紧急留言按时答复率", PCT, critical.on_time_rate),
        ("routine_median", "常规人工答复用时中位数（工作分钟）", MINUTES, routine.median),
        ("routine_p90", "常规人工答复用时P90（工作分钟）", MINUTES, routine.p90),
        ("critical_median", "紧急人工答复用时中位数（分钟）", MINUTES, critical.median),
        ("critical_p90", "紧急人工答复用时P90（分钟）", MINUTES, critical.p90),
        ("kb_rate", "知识库自动答复率", PCT, f.kb_rate),
        ("late", "超时答复", COUNT, f.outcome_total(LATE)),
        ("open_overdue", "超时未答复", COUNT, f.outcome_total(OPEN_OVERDUE)),
        ("reminders", "到期提醒", COUNT, f.alert_count(AlertKind.REMINDER)),
        ("escalations", "逐级上报", COUNT, f.alert_count(AlertKind.ESCALATION)),
        ("chases", "人工催办", COUNT, f.alert_count(AlertKind.CHASE)),
        ("undeliverable", "答复无法送达", COUNT, len(f.undeliverable)),
        ("transfers", "转办", COUNT, len(f.transfers)),
        ("reopened", "追问后重新打开", COUNT, f.reopened),
    ]


def month_over_month(current: MonthFigures, previous: MonthFigures) -> list[Kpi]:
    before = {key: value for key, _, _, value in _kpi_values(previous)}
    return [Kpi(key, label, kind, value, before[key]) for key, label, kind, value in _kpi_values(current)]


@dataclass(frozen=True)
class MonthlyReport:
    ctx: ReportContext
    current: MonthFigures
    previous: MonthFigures
    generated_at: datetime
    extra_tables: tuple[Table, ...] = ()  # e.g. the publication register of the month (R5.3)

    @property
    def month(self) -> Month:
        return self.current.month

    @property
    def kpis(self) -> list[Kpi]:
        return month_over_month(self.current, self.previous)

    @property
    def kpi(self) -> dict[str, Kpi]:
        return {k.key: k for k in self.kpis}

    def tables(self) -> list[Table]:
        return report_tables(self)

    def file_stem(self) -> str:
        return f"guanwei-report-{self.month.key}"


Step = Callable[[str], None]


async def build_report(
    database: Database, settings: Settings, month: Month, *, as_of: datetime, step: Step | None = None
) -> MonthlyReport:
    """Load and compute the month and the one before it. `step` is told what is being done (a progress bar)."""
    ctx = ReportContext.from_settings(settings, as_of)
    tell = step or (lambda _what: None)
    tell(f"读取 {month.label} 的留言")
    rows = await load_month(database, month, ctx.tz)
    tell(f"读取 {month.previous().label} 的留言（环比）")
    previous_rows = await load_month(database, month.previous(), ctx.tz)
    tell("计算指标")
    made = make_report(rows, previous_rows, ctx)
    from bot.publication_register import month_register_table  # the publishing desk's register (R5.3)

    register = await month_register_table(database, ctx, month.start(ctx.tz), month.end(ctx.tz))
    return dataclasses.replace(made, extra_tables=(register,))


def make_report(rows: MonthRows, previous_rows: MonthRows, ctx: ReportContext) -> MonthlyReport:
    return MonthlyReport(ctx, compute_month(rows, ctx), compute_month(previous_rows, ctx), ctx.as_of)


# --------------------------------------------------------------------------- tables (the same for xlsx and HTML)

TEXT, INT, RATE, MIN, DURATION, DATETIME, DAY, DELTA, DELTA_PP, CHANGE = (
    "text", "int", "rate", "min", "duration", "datetime", "day", "delta", "delta_pp", "change")


@dataclass(frozen=True)
class Cell:
    """A value with its own format, for a column whose rows differ (the headline figures)."""

    value: Any
    kind: str


@dataclass(frozen=True)
class Column:
    header: str
    kind: str = TEXT
    wrap: bool = False  # long free text: the HTML page lets it wrap


@dataclass(frozen=True)
class Table:
    key: str
    title: str  # the sheet's name: at most 31 characters
    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]]
    note: str = ""
    total_row: bool = False  # the last row is a total

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]


def _kpi_kinds(kind: str) -> tuple[str, str]:
    """(value format, change format) for a headline figure."""
    return {PCT: (RATE, DELTA_PP), MINUTES: (MIN, DELTA)}.get(kind, (INT, DELTA))


def report_tables(report: MonthlyReport) -> list[Table]:
    f, ctx = report.current, report.ctx
    name = ctx.department_name
    tables: list[Table] = []

    kpi_rows = []
    for k in report.kpis:
        value_kind, delta_kind = _kpi_kinds(k.kind)
        kpi_rows.append((k.label, Cell(k.current, value_kind), Cell(k.previous, value_kind),
                         Cell(k.delta, delta_kind), Cell(k.relative, CHANGE)))
    tables.append(Table("overview", "概览与环比", (
        Column("指标"), Column(f"本月（{f.month.label}）"), Column(f"上月（{report.previous.month.label}）"),
        Column("变化"), Column("变化幅度")), kpi_rows,
        note="率的变化以百分点计；用时为人工答复（不含知识库自动答复）。"))

    total = f.total or 1
    tables.append(Table("channel", "按渠道", (
        Column("渠道"), Column("留言数", INT), Column("占比", RATE), Column("常规", INT), Column("紧急", INT)),
        [(CHANNEL_NAMES.get(c, c), n, n / total if f.total else None,
          f.channel_severity.get((c, ROUTINE), 0), f.channel_severity.get((c, CRITICAL), 0))
         for c, n in f.by_channel.items()]
        + [("合计", f.total, 1.0 if f.total else None, f.by_severity[ROUTINE], f.by_severity[CRITICAL])],
        total_row=True))

    tables.append(Table("severity", "按紧急程度", (
        Column("紧急程度"), Column("留言数", INT), Column("占比", RATE), Column("答复时限"),
        Column("按时答复率", RATE)),
        [(SEVERITY_NAMES[s], n, n / total if f.total else None, _sla_label(ctx.sla, s), f.sla[s][ALL].on_time_rate)
         for s, n in f.by_severity.items()]))

    tables.append(Table("department", "按部门", (
        Column("部门"), Column("留言数", INT), Column("占比", RATE), Column("常规", INT), Column("紧急", INT),
        Column("知识库答复", INT), Column("转入", INT), Column("转出", INT)),
        [(name(d), sum(s.values()), sum(s.values()) / total if f.total else None, s[ROUTINE], s[CRITICAL],
          f.kb_by_department.get(d, 0), f.transfers_in(d), f.transfers_out(d)) for d, s in f.by_department.items()]
        + [("合计", f.total, 1.0 if f.total else None, f.by_severity[ROUTINE], f.by_severity[CRITICAL],
            f.kb_answered, len(f.transfers), len(f.transfers))],
        note="部门为留言当前的承办部门（转办后计入新部门）。", total_row=True))

    tables.append(Table("daily", "按日", (
        Column("日期", DAY), Column("星期"), Column("工作日"), Column("留言数", INT), Column("常规", INT),
        Column("紧急", INT), Column("微信", INT), Column("微博", INT), Column("非答复时间收到", INT)),
        [(d.day, f"周{WEEKDAYS[d.day.weekday()]}", "是" if d.workday else "否", d.total, d.routine, d.critical,
          d.wechat, d.weibo, d.outside_hours) for d in f.daily]
        + [("合计", "", "", f.total, f.by_severity[ROUTINE], f.by_severity[CRITICAL],
            f.by_channel.get("wechat", 0), f.by_channel.get("weibo", 0), f.outside_hours)],
        total_row=True))

    for severity, title, unit in ((ROUTINE, "常规留言按时情况", "工作分钟"), (CRITICAL, "紧急留言按时情况", "分钟")):
        by = f.sla[severity]
        tables.append(Table(f"sla_{severity}", title, (
            Column("部门"), Column("答复轮次", INT), Column("按时答复", INT), Column("超时答复", INT),
            Column("超时未答复", INT), Column("未到期办理中", INT), Column("关闭未答复", INT), Column("按时率", RATE),
            Column("人工答复数", INT), Column(f"用时中位数（{unit}）", MIN), Column(f"用时P90（{unit}）", MIN)),
            [(name(d) if d != ALL else "合计", s.total, s.on_time, s.late, s.open_overdue, s.open_pending, s.closed,
              s.on_time_rate, s.staff_answered, s.median, s.p90) for d, s in by.items()],
            note=f"时限：{_sla_label(ctx.sla, severity)}。按时率 = 按时答复 ÷（按时答复 + 超时答复 + 超时未答复）。"
                 "网友在答复后追问另起一轮，每轮按自己的紧急程度、时限和答复时间计；部门为该轮的承办部门。",
            total_row=True))

    tables.append(Table("alerts", "提醒与上报", (
        Column("类型"), Column("级别"), Column("次数", INT), Column("常规留言", INT), Column("紧急留言", INT),
        Column("已送达", INT), Column("部分送达", INT), Column("送达失败", INT), Column("已取消", INT),
        Column("待发送", INT), Column("涉及留言", INT)),
        [(a.label, ctx.rung_label(a.level) if a.level else "—", a.total, a.routine, a.critical,
          a.by_status.get("sent", 0), a.by_status.get("partial", 0), a.by_status.get("failed", 0),
          a.by_status.get("cancelled", 0), a.by_status.get("pending", 0), a.inquiries) for a in f.alerts],
        note="已取消：提醒或上报尚未发出时留言已答复。"))

    tables.append(Table("overdue", "超时清单", (
        Column("编号"), Column("部门"), Column("紧急程度"), Column("轮次", INT), Column("收到时间", DATETIME),
        Column("答复时限", DATETIME), Column("答复时间", DATETIME), Column("超时（自然时间）", DURATION),
        Column("超时（工作分钟）", MIN), Column("上报级别", wrap=True), Column("原因", wrap=True),
        Column("摘要", wrap=True)),
        [(r.ref, name(r.department), SEVERITY_NAMES[r.severity], r.cycle, r.received_at, r.due_at, r.answered_at,
          r.late_minutes, r.late_working_minutes, ctx.rung_label(r.escalation_level), r.reason, r.summary)
         for r in f.overdue],
        note=f"超时未答复的留言计至统计时点 {_fmt_datetime(ctx.as_of, ctx.tz)}。"))

    tables.append(Table("undeliverable", "无法送达", (
        Column("编号"), Column("部门"), Column("渠道"), Column("发送时间", DATETIME), Column("答复人"),
        Column("平台返回原因", wrap=True), Column("留言当前状态")),
        [(u.ref, name(u.department), CHANNEL_NAMES.get(u.channel, u.channel), u.at, u.author, u.reason,
          _STATUS_NAMES.get(u.inquiry_status, u.inquiry_status)) for u in f.undeliverable]))

    tables.append(Table("transfers", "转办记录", (
        Column("编号"), Column("转办时间", DATETIME), Column("操作人"), Column("原部门"), Column("转至部门"),
        Column("理由", wrap=True)),
        [(t.ref, t.at, t.actor, name(t.from_department), name(t.to_department), t.reason) for t in f.transfers]))

    critical_total = f.by_severity[CRITICAL] or 1
    tables.append(Table("critical_departments", "紧急留言·部门", (
        Column("部门"), Column("紧急留言数", INT), Column("占紧急留言", RATE), Column("按时答复率", RATE)),
        [(name(d), n, n / critical_total, f.sla[CRITICAL][d].on_time_rate) for d, n in f.critical_departments]))
    tables.append(Table("critical_terms", "紧急留言·命中词", (
        Column("命中词"), Column("留言数", INT), Column("占紧急留言", RATE)),
        [(term, n, n / critical_total) for term, n in f.critical_terms],
        note="分类器判定紧急时命中的词（每条留言每个词计一次），前15个。"))

    tables.extend(report.extra_tables)
    tables.append(Table("notes", "说明", (Column("项目"), Column("说明", wrap=True)), _notes(report)))
    return tables


_STATUS_NAMES = {InquiryStatus.OPEN: "办理中", InquiryStatus.ANSWERED: "已答复", InquiryStatus.CLOSED: "已关闭"}


def _sla_label(policy: SlaPolicy, severity: str) -> str:
    if severity == ROUTINE:
        return f"{policy.routine_working_minutes}个工作分钟（答复时间内）"
    return f"{policy.critical_wall_minutes}分钟（不分昼夜节假日）"


def _notes(report: MonthlyReport) -> list[tuple[str, str]]:
    ctx, f = report.ctx, report.current
    notes = []
    if f.demo:
        notes.append(("演示数据", "本月数据由 guanwei demo-data 生成（发送人以 demo- 开头、账号为 demo），"
                                  "不是真实留言。"))
    notes += [
        ("统计范围", f"{f.month.label}（{ctx.timezone_name}，北京时间）内收到的留言；"
                     "提醒、上报、无法送达、转办均指这些留言的记录。"),
        ("统计时点", f"{_fmt_datetime(ctx.as_of, ctx.tz)}：“超时未答复”“办理中”按此时的状态计。"),
        ("答复时限", f"常规：{_sla_label(ctx.sla, ROUTINE)}，非答复时间收到的从下一个答复时间开始计；"
                     f"紧急：{_sla_label(ctx.sla, CRITICAL)}。"
                     "与系统计算时限使用同一套工作日历（节假日、调休、季节作息）。"),
        ("按时", "答复时间不晚于答复时限即为按时；按时率 = 按时答复 ÷（按时答复 + 超时答复 + 超时未答复）。"),
        ("重新打开的留言", f"网友在答复后追问会另起一轮、重新计时（本月 {f.reopened} 条）。"
                           "按时情况、用时和超时清单按轮计，每轮按自己的紧急程度、时限和答复时间判断；"
                           "留言数按条计，任何一轮为紧急的留言计为紧急留言。"),
        ("用时", "人工答复用时：常规按答复时间内的工作分钟，紧急按自然分钟；"
                 "中位数、P90 按线性插值（同 Excel PERCENTILE.INC）。知识库自动答复不计入用时。"),
        ("知识库自动答复率", "由知识库即时答复过（任何一轮）的留言 ÷ 本月留言总数。"),
        ("生成", f"guanwei report，{_fmt_datetime(report.generated_at, ctx.tz)}"),
    ]
    return notes


# --------------------------------------------------------------------------- formatting

def _fmt_datetime(value: datetime, tz: tzinfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def humanize_minutes(minutes: float) -> str:
    total = round(minutes)
    days, rest = divmod(total, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}天" if days else "", f"{hours}小时" if hours else "", f"{mins}分" if mins or not total else ""]
    return "".join(parts)


def format_cell(value: Any, kind: str, tz: tzinfo) -> str:
    """A cell as text, for the HTML page."""
    if isinstance(value, Cell):
        value, kind = value.value, value.kind
    if value is None or value == "":
        return "—" if value is None else ""
    if isinstance(value, str):
        return value
    if kind == INT:
        return f"{value:,}"
    if kind == RATE:
        return f"{value * 100:.1f}%"
    if kind == MIN:
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    if kind == DURATION:
        return humanize_minutes(value)
    if kind == DATETIME:
        return _fmt_datetime(value, tz)
    if kind == DAY:
        return f"{value:%m-%d}"
    if kind == DELTA:
        return f"{value:+,.0f}" if float(value).is_integer() else f"{value:+,.1f}"
    if kind == DELTA_PP:
        return f"{value * 100:+.1f}个百分点"
    if kind == CHANGE:
        return f"{value * 100:+.1f}%"
    return str(value)


_XLSX_FORMATS = {
    INT: "0", RATE: "0.0%", MIN: "0.0", DURATION: "0", DATETIME: "yyyy-mm-dd hh:mm", DAY: "yyyy-mm-dd",
    DELTA: "+0.0;-0.0;0", DELTA_PP: '+0.0"个百分点";-0.0"个百分点";0.0"个百分点"', CHANGE: "+0.0%;-0.0%;0.0%",
}


def _xlsx_value(value: Any, kind: str, tz: tzinfo) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(tz).replace(tzinfo=None)  # Excel has no zones: local time, said in the header
    if kind == DELTA_PP and isinstance(value, int | float):
        return value * 100
    return value


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# --------------------------------------------------------------------------- the workbook


def xlsx_bytes(report: MonthlyReport) -> bytes:
    """The workbook: one sheet per table, Chinese headers, frozen header row, number formats, widths to fit."""
    return tables_xlsx_bytes(report.tables(), report.ctx.tz,
                             title=f"{report.ctx.bureau}官方账号运行月报 {report.month.label}")


def tables_xlsx_bytes(tables: Sequence[Table], tz: tzinfo, *, title: str) -> bytes:
    """Any tables as a workbook, one sheet each (the monthly report; the publication register)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    workbook.remove(workbook.active)
    header_font, header_fill = Font(bold=True, color="FFFFFF"), PatternFill("solid", fgColor="1F4E79")
    total_font = Font(bold=True)
    for table in tables:
        sheet = workbook.create_sheet(table.title[:31])
        sheet.append(table.headers)
        for cell in sheet[1]:
            cell.font, cell.fill = header_font, header_fill
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        widths = [_display_width(h) for h in table.headers]
        for row in table.rows:
            values = []
            for n, raw in enumerate(row):
                kind = raw.kind if isinstance(raw, Cell) else table.columns[n].kind
                value = raw.value if isinstance(raw, Cell) else raw
                values.append((_xlsx_value(value, kind, tz), kind))
                widths[n] = max(widths[n], _display_width(format_cell(value, kind, tz)) + 1)
            sheet.append([v for v, _ in values])
            for n, (_v, kind) in enumerate(values, 1):
                cell = sheet.cell(row=sheet.max_row, column=n)
                if cell.data_type == "f":
                    # openpyxl makes any text starting with "=" a formula: a follower's "=HYPERLINK(…)" in a
                    # summary would run in the leader's Excel. Everything people wrote stays text.
                    cell.data_type = "s"
                if kind in _XLSX_FORMATS:
                    cell.number_format = _XLSX_FORMATS[kind]
        if table.total_row and table.rows:
            for cell in sheet[sheet.max_row]:
                cell.font = total_font
        for n, width in enumerate(widths, 1):
            sheet.column_dimensions[get_column_letter(n)].width = min(max(width + 2, 8), 60)
        sheet.freeze_panes = "A2"
        if table.rows:
            sheet.auto_filter.ref = f"A1:{get_column_letter(len(table.columns))}{sheet.max_row}"
        if table.note:
            sheet.cell(row=sheet.max_row + 2, column=1, value=f"注：{table.note}").font = Font(italic=True,
                                                                                              color="555555")
    workbook.properties.title = title
    workbook.properties.creator = "guanwei"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def write_xlsx(report: MonthlyReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(xlsx_bytes(report))
    return path


# --------------------------------------------------------------------------- charts

# Families that render Chinese, best first; any family fontconfig lists for :lang=zh is tried after them.
CJK_FAMILIES = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC", "Noto Sans CJK JP",
    "Droid Sans Fallback", "AR PL UMing CN",
)
AUTO = "auto"
NO_CJK_FONT = ("no font with Chinese glyphs found (fc-list :lang=zh is empty): chart labels will show boxes; "
               "install one, e.g. apt-get install fonts-noto-cjk")


def find_cjk_font() -> str | None:
    """A font family matplotlib can use for Chinese, or None. Registers fonts fontconfig knows of that
    matplotlib's font cache (built before they were installed) does not."""
    from matplotlib import font_manager

    def known() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((family for family in CJK_FAMILIES if family in names), None)

    family = known()
    if family is not None:
        return family
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    try:
        listed = subprocess.run([fc_list, ":lang=zh", "file", "family"], capture_output=True, text=True,  # noqa: S603
                                timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    families: list[str] = []
    for line in listed.splitlines():
        file_name, _, names = line.partition(":")
        try:
            font_manager.fontManager.addfont(file_name.strip())
        except (OSError, RuntimeError, ValueError):
            continue
        families.extend(n.strip() for n in names.split(",") if n.strip())
    registered = {f.name for f in font_manager.fontManager.ttflist}
    return known() or next((n for n in families if n in registered), None)


@dataclass
class Charts:
    images: dict[str, bytes] = field(default_factory=dict)  # name → PNG
    font: str | None = None
    warning: str | None = None

    def data_uri(self, name: str) -> str:
        return "data:image/png;base64," + base64.b64encode(self.images[name]).decode("ascii")


_CHARTS_LOCK = threading.Lock()
_BLUE, _RED, _GREY, _GREEN, _ORANGE = "#1F4E79", "#C0392B", "#B0B7C3", "#2E8B57", "#E67E22"


def render_charts(report: MonthlyReport, *, font: str | None = AUTO, step: Step | None = None) -> Charts:
    """The report's charts as PNGs. `font`: a family, AUTO (find one) or None (none: Chinese shows as boxes).

    Without a Chinese font the charts still render, and `Charts.warning` says why their labels are boxes.
    """
    # matplotlib's rcParams, font list and warning filters are process-wide, and the console renders in
    # worker threads: one at a time.
    with _CHARTS_LOCK:
        return _render_charts(report, font, step)


def _render_charts(report: MonthlyReport, font: str | None, step: Step | None) -> Charts:
    import matplotlib
    from matplotlib.figure import Figure

    family = find_cjk_font() if font == AUTO else font
    charts = Charts(font=family, warning=None if family else NO_CJK_FONT)
    if family is None:
        logger.warning("report charts: {}", NO_CJK_FONT)
    rc: dict[str, Any] = {
        "font.family": "sans-serif", "font.sans-serif": [*([family] if family else []), "DejaVu Sans"],
        "axes.unicode_minus": False, "axes.spines.top": False, "axes.spines.right": False, "font.size": 10,
    }
    f, ctx = report.current, report.ctx
    name = ctx.department_name

    def png(fig: Figure) -> bytes:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        return buffer.getvalue()

    with matplotlib.rc_context(rc), warnings.catch_warnings():  # type: ignore[arg-type]
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from")
        tell = step or (lambda _what: None)

        tell("绘制每日留言量")
        fig = Figure(figsize=(10, 3.6))
        ax = fig.subplots()
        xs = [d.day.day for d in f.daily]
        for d in f.daily:
            if not d.workday:
                ax.axvspan(d.day.day - 0.5, d.day.day + 0.5, color="#EEF1F5", lw=0)
        ax.plot(xs, [d.total for d in f.daily], marker="o", ms=3, color=_BLUE, label="全部留言")
        ax.plot(xs, [d.critical for d in f.daily], marker="o", ms=3, color=_RED, label="紧急留言")
        ax.bar(xs, [d.outside_hours for d in f.daily], color=_GREY, alpha=0.6, width=0.6, label="非答复时间收到")
        ax.set_xlim(0.5, len(xs) + 0.5)
        ax.set_xticks(xs)
        ax.tick_params(axis="x", labelsize=8)
        ax.set_xlabel(f"{f.month.label}（灰底为休息日）")
        ax.set_ylabel("留言数")
        ax.set_title("每日留言量")
        ax.set_ylim(0, max([d.total for d in f.daily] + [1]) * 1.3)
        ax.legend(loc="upper left", frameon=False, ncols=3)
        charts.images["daily"] = png(fig)

        tell("绘制部门对比")
        departments = [d for d, s in f.by_department.items() if sum(s.values())] or list(f.by_department)
        fig = Figure(figsize=(10, 0.5 * len(departments) + 1.4))
        ax = fig.subplots()
        ys = list(range(len(departments)))[::-1]
        routine = [f.by_department[d][ROUTINE] for d in departments]
        critical = [f.by_department[d][CRITICAL] for d in departments]
        ax.barh(ys, routine, color=_BLUE, label="常规")
        ax.barh(ys, critical, left=routine, color=_RED, label="紧急")
        ax.set_yticks(ys, [name(d) for d in departments])
        widest = max([r + c for r, c in zip(routine, critical, strict=True)] + [1])
        for y, key, r, c in zip(ys, departments, routine, critical, strict=True):
            judged = f.sla[ROUTINE][key].judged + f.sla[CRITICAL][key].judged
            on_time = f.sla[ROUTINE][key].on_time + f.sla[CRITICAL][key].on_time
            share = f"按时 {on_time / judged * 100:.0f}%" if judged else "按时 —"
            ax.text(r + c + widest * 0.01, y, share, va="center", fontsize=9,
                    color=_GREEN if judged and on_time / judged >= 0.9 else _ORANGE)
        ax.set_xlim(0, widest * 1.18)
        ax.set_xlabel("留言数（右侧为按时答复率）")
        ax.set_title("各部门留言量与按时答复率")
        ax.legend(loc="lower right", frameon=False)
        charts.images["departments"] = png(fig)

        tell("绘制紧急程度与渠道")
        fig = Figure(figsize=(10, 3.6))
        left, right = fig.subplots(1, 2)
        _pie(left, [SEVERITY_NAMES[s] for s in f.by_severity], list(f.by_severity.values()), [_BLUE, _RED],
             "紧急程度")
        _pie(right, [CHANNEL_NAMES.get(c, c) for c in f.by_channel], list(f.by_channel.values()),
             ["#07C160", "#E6162D", _GREY], "渠道")
        charts.images["mix"] = png(fig)

        tell("绘制答复用时分布")
        fig = Figure(figsize=(10, 3.6))
        left, right = fig.subplots(1, 2)
        _histogram(left, f.response_minutes[ROUTINE], ctx.sla.routine_working_minutes, _BLUE,
                   "常规留言人工答复用时", "工作分钟")
        _histogram(right, f.response_minutes[CRITICAL], ctx.sla.critical_wall_minutes, _RED,
                   "紧急留言人工答复用时", "分钟")
        charts.images["response"] = png(fig)

        tell("绘制收到时段")
        fig = Figure(figsize=(10, 3))
        ax = fig.subplots()
        ax.bar(range(24), f.by_hour, color=_BLUE)
        ax.set_xticks(range(24))
        ax.set_xlabel("收到时刻（北京时间，时）")
        ax.set_ylabel("留言数")
        ax.set_title("留言收到时段")
        charts.images["hours"] = png(fig)
    return charts


def _pie(ax: Any, labels: list[str], values: list[int], colors: list[str], title: str) -> None:
    ax.set_title(title)
    if not sum(values):
        ax.text(0.5, 0.5, "无数据", ha="center", va="center", transform=ax.transAxes)
        ax.axis("off")
        return
    ax.pie(values, labels=[f"{label}\n{v}" for label, v in zip(labels, values, strict=True)],
           colors=colors[: len(values)], autopct="%1.0f%%", startangle=90, counterclock=False,
           wedgeprops={"width": 0.45, "edgecolor": "white"}, pctdistance=0.78, textprops={"fontsize": 9})
    ax.axis("equal")


def _histogram(ax: Any, minutes: list[float], limit: int, color: str, title: str, unit: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(unit)
    ax.set_ylabel("留言数")
    if not minutes:
        ax.text(0.5, 0.5, "无人工答复", ha="center", va="center", transform=ax.transAxes)
        return
    top = max(max(minutes), limit) * 1.05
    step = max(5, math.ceil(top / 24 / 5) * 5)
    bins = [n * step for n in range(math.ceil(top / step) + 1)]
    ax.hist(minutes, bins=bins, color=color, alpha=0.85)
    ax.axvline(limit, color="#333333", ls="--", lw=1)
    ax.text(limit, ax.get_ylim()[1] * 0.95, f" 时限 {limit}", va="top", fontsize=9)
    med = percentile(minutes, 0.5)
    p90 = percentile(minutes, 0.9)
    ax.text(0.98, 0.95, f"中位数 {med:.0f}\nP90 {p90:.0f}", transform=ax.transAxes, ha="right", va="top", fontsize=9)


# --------------------------------------------------------------------------- the HTML page


def render_html(report: MonthlyReport, charts: Charts) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    environment = Environment(loader=FileSystemLoader(DATA_DIR), autoescape=select_autoescape(("html", "j2")),
                              trim_blocks=True, lstrip_blocks=True)
    tz = report.ctx.tz

    def cell(value: Any, kind: str = TEXT) -> str:
        return format_cell(value, kind, tz)

    tables = {t.key: t for t in report.tables()}
    return environment.get_template(HTML_TEMPLATE).render(
        report=report, f=report.current, ctx=report.ctx, kpi=report.kpi, tables=tables, charts=charts,
        cell=cell, isinstance=isinstance, Cell=Cell,
        charts_uri={n: charts.data_uri(n) for n in charts.images},
        generated=_fmt_datetime(report.generated_at, tz), as_of=_fmt_datetime(report.ctx.as_of, tz),
        severity_names=SEVERITY_NAMES, ROUTINE=ROUTINE, CRITICAL=CRITICAL, ALL=ALL,
    )


def write_html(report: MonthlyReport, charts: Charts, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, charts), encoding="utf-8")
    return path


def utc_now() -> datetime:
    return datetime.now(UTC)
