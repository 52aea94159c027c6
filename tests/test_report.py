"""The monthly operations report (rule R4.5): a month built by hand, every figure computed by hand.

The hand month is November 2026 (no holidays; winter reply hours 08:30–17:30, routine 120 working
minutes, critical 60 wall minutes), reported as of Tue 1 Dec 09:00; October has two inquiries for the
month-over-month change. Times below are Shanghai time.

| id | severity | department     | channel | received          | due (first_response_due) | outcome                    |
|----|----------|----------------|---------|-------------------|--------------------------|----------------------------|
| A  | routine  | market         | wechat  | Mon 11-02 10:00   | 11-02 12:00              | staff 11:00: on time, 60   |
| B  | routine  | market         | weibo   | Fri 11-06 16:30   | Mon 11-09 09:30 (weekend)| staff Mon 10:30: late, 180 |
| C  | routine  | public_service | wechat  | Sat 11-07 20:00   | Mon 11-09 10:30          | knowledge base at once     |
| D  | routine  | info_center    | wechat  | Tue 11-10 09:00   | 11-10 11:00              | still open: overdue        |
| E  | critical | market         | weibo   | Wed 11-11 22:00   | 11-11 23:00              | staff 22:40: on time, 40   |
| F  | critical | enforcement    | wechat  | Thu 11-12 14:00   | 11-12 15:00              | staff 16:30: late, 150     |
| G  | routine  | market         | wechat  | Mon 11-16 09:00   | 11-16 11:00              | closed as spam             |
| H  | routine  | office         | weibo   | Tue 11-17 09:00, reopened Wed 11-18 10:00 (cycle 2) | 11-18 12:00 | staff 11:30: on time, 90 |
| I  | routine  | market         | wechat  | Mon 11-30 17:00   | Tue 12-01 10:00          | open, not yet due          |
| J  | critical | market         | wechat  | Sun 11-29 03:00   | 11-29 04:00              | staff 03:20: on time, 20   |
| K  | routine  | market (Oct)   | wechat  | Tue 10-20 10:00   | 10-20 12:00              | staff 11:00: on time, 60   |
| L  | critical | market (Oct)   | wechat  | Wed 10-21 10:00   | 10-21 11:00              | staff 10:30: on time, 30   |

H was transferred from info_center to office and its first answer attempt was undeliverable.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.auth import add_user
from bot.config import Settings
from bot.demo_data import DemoError, generate
from bot.inquiries import inquiry_rows
from bot.migrate import upgrade_engine
from bot.report import (
    ALL,
    OPEN_OVERDUE,
    Month,
    MonthlyReport,
    ReportContext,
    ReportError,
    SlaFigures,
    load_month,
    make_report,
    render_charts,
    render_html,
    write_html,
    write_xlsx,
)
from bot.storage import (
    KNOWLEDGE_BASE,
    AlertRecord,
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
from escalation.sla import first_response_due
from knowledge import Classifier
from tests.conftest import SHANGHAI, Clock, shanghai

AS_OF = shanghai(2026, 12, 1, 9, 0)
NOVEMBER, OCTOBER = Month(2026, 11), Month(2026, 10)


# --------------------------------------------------------------------------- the hand-built month


async def build_hand_month(database: Database, settings: Settings) -> dict[str, int]:
    """Store the inquiries of the module docstring; returns letter → inquiry id."""
    calendar = BusinessCalendar(settings.reply_hours)

    def due(start: datetime, severity: str) -> datetime:
        return first_response_due(start, severity, settings.sla, calendar)

    # The deadlines the table above promises, from the code that computes them for the pipeline.
    assert due(shanghai(2026, 11, 6, 16, 30), "routine") == shanghai(2026, 11, 9, 9, 30)
    assert due(shanghai(2026, 11, 7, 20, 0), "routine") == shanghai(2026, 11, 9, 10, 30)
    assert due(shanghai(2026, 11, 30, 17, 0), "routine") == shanghai(2026, 12, 1, 10, 0)
    assert due(shanghai(2026, 11, 11, 22, 0), "critical") == shanghai(2026, 11, 11, 23, 0)

    specs: dict[str, dict[str, Any]] = {
        "A": dict(severity="routine", department="market", channel="wechat", received=shanghai(2026, 11, 2, 10, 0),
                  answered=shanghai(2026, 11, 2, 11, 0), matched=["门票"]),
        "B": dict(severity="routine", department="market", channel="weibo", received=shanghai(2026, 11, 6, 16, 30),
                  answered=shanghai(2026, 11, 9, 10, 30), level=2),
        "C": dict(severity="routine", department="public_service", channel="wechat",
                  received=shanghai(2026, 11, 7, 20, 0), answered=shanghai(2026, 11, 7, 20, 0), by=KNOWLEDGE_BASE),
        "D": dict(severity="routine", department="info_center", channel="wechat", received=shanghai(2026, 11, 10, 9, 0),
                  level=3),
        "E": dict(severity="critical", department="market", channel="weibo", received=shanghai(2026, 11, 11, 22, 0),
                  answered=shanghai(2026, 11, 11, 22, 40), matched=["强制购物", "曝光"], level=2),
        "F": dict(severity="critical", department="enforcement", channel="wechat",
                  received=shanghai(2026, 11, 12, 14, 0), answered=shanghai(2026, 11, 12, 16, 30), level=4,
                  matched=["相似案例判断 71%", "无证经营", "曝光", "misconduct_routed_to_office(你们局)"]),
        "G": dict(severity="routine", department="market", channel="wechat", received=shanghai(2026, 11, 16, 9, 0),
                  status=InquiryStatus.CLOSED),
        "H": dict(severity="routine", department="office", channel="weibo", received=shanghai(2026, 11, 17, 9, 0),
                  clock=shanghai(2026, 11, 18, 10, 0), cycle=2, answered=shanghai(2026, 11, 18, 11, 30)),
        "I": dict(severity="routine", department="market", channel="wechat", received=shanghai(2026, 11, 30, 17, 0)),
        "J": dict(severity="critical", department="market", channel="wechat", received=shanghai(2026, 11, 29, 3, 0),
                  answered=shanghai(2026, 11, 29, 3, 20), matched=["强制购物", "人身安全", "强制购物"]),
        "K": dict(severity="routine", department="market", channel="wechat", received=shanghai(2026, 10, 20, 10, 0),
                  answered=shanghai(2026, 10, 20, 11, 0)),
        "L": dict(severity="critical", department="market", channel="wechat", received=shanghai(2026, 10, 21, 10, 0),
                  answered=shanghai(2026, 10, 21, 10, 30), level=2),
    }
    ids: dict[str, int] = {}
    async with database.transaction() as session:
        for letter, spec in specs.items():
            start = spec.get("clock", spec["received"])
            answered = spec.get("answered")
            inquiry = Inquiry(
                channel=spec["channel"], account="gh_test", sender=f"o-test-{letter}",
                status=spec.get("status") or (InquiryStatus.ANSWERED if answered else InquiryStatus.OPEN),
                severity=spec["severity"], department=spec["department"], department_confidence=0.9,
                score=3.0 if spec["severity"] == "critical" else 0.0, matched=spec.get("matched", []),
                summary=f"留言{letter}", received_at=spec["received"], due_at=due(start, spec["severity"]),
                last_message_at=start, answered_at=answered, answered_by=spec.get("by", "zhang") if answered else None,
                cycle=spec.get("cycle", 1), clock_started_at=start, escalation_level=spec.get("level", 0),
                closed_reason="垃圾信息：无实际内容" if spec.get("status") == InquiryStatus.CLOSED else None,
            )
            session.add(inquiry)
            await session.flush()
            ids[letter] = inquiry.id

        def alert(letter: str, key: str, kind: str, level: int | None, at: datetime, status: str = "sent") -> None:
            session.add(AlertRecord(inquiry_id=ids[letter], key=key, kind=kind, level=level, fire_at=at,
                                    recorded_at=at, status=status, recipients=[]))

        alert("A", "c1:reminder:50", "reminder", None, shanghai(2026, 11, 2, 11, 0), "cancelled")
        alert("B", "c1:reminder:50", "reminder", None, shanghai(2026, 11, 6, 17, 30))
        alert("B", "c1:reminder:80", "reminder", None, shanghai(2026, 11, 9, 9, 6))
        alert("B", "c1:rung:2", "escalation", 2, shanghai(2026, 11, 9, 9, 30))
        alert("D", "c1:reminder:50", "reminder", None, shanghai(2026, 11, 10, 10, 0))
        alert("D", "c1:reminder:80", "reminder", None, shanghai(2026, 11, 10, 10, 36))
        alert("D", "c1:rung:2", "escalation", 2, shanghai(2026, 11, 10, 11, 0))
        alert("D", "c1:rung:3", "escalation", 3, shanghai(2026, 11, 10, 12, 0), "failed")
        alert("D", "chase:1", "chase", None, shanghai(2026, 11, 10, 15, 0))
        alert("E", "c1:rung:2", "escalation", 2, shanghai(2026, 11, 11, 22, 0))
        alert("F", "c1:rung:2", "escalation", 2, shanghai(2026, 11, 12, 14, 0))
        alert("F", "c1:reminder:50", "reminder", None, shanghai(2026, 11, 12, 14, 30))
        alert("F", "c1:rung:3", "escalation", 3, shanghai(2026, 11, 12, 14, 30))
        alert("F", "c1:reminder:80", "reminder", None, shanghai(2026, 11, 12, 14, 48))
        alert("F", "c1:rung:4", "escalation", 4, shanghai(2026, 11, 12, 15, 0))
        alert("L", "c1:rung:2", "escalation", 2, shanghai(2026, 10, 21, 10, 0))

        def answer(letter: str, at: datetime, status: str, reason: str | None = None) -> None:
            session.add(Message(inquiry_id=ids[letter], direction=Direction.OUT, channel=specs[letter]["channel"],
                                account="gh_test", sender=f"o-test-{letter}", kind="text", content="答复",
                                recorded_at=at, fields={}, author="zhang", delivery_status=status,
                                delivery_reason=reason))

        answer("H", shanghai(2026, 11, 18, 11, 0), "undeliverable", "已超过48小时客服消息时限（微信 45015）")
        answer("H", shanghai(2026, 11, 18, 11, 30), "delivered")
        answer("K", shanghai(2026, 10, 20, 10, 50), "undeliverable", "对方已取消关注（微信 43004）")

        def audit(letter: str, at: datetime, action: str, **detail: Any) -> None:
            session.add(AuditEntry(at=at, actor="li", action=action, target=f"inquiry:{ids[letter]}", detail=detail))

        audit("H", shanghai(2026, 11, 17, 9, 10), "transfer", **{"from": "info_center", "to": "office",
                                                                  "reason": "属办公室职责"})
        audit("H", shanghai(2026, 11, 18, 11, 30), "answer", delivery="delivered")
        audit("K", shanghai(2026, 10, 20, 10, 10), "transfer", **{"from": "office", "to": "market", "reason": "x"})
    return ids


async def hand_report(database: Database, settings: Settings) -> tuple[MonthlyReport, dict[str, int]]:
    ids = await build_hand_month(database, settings)
    ctx = ReportContext.from_settings(settings, AS_OF)
    rows = await load_month(database, NOVEMBER, settings.tz)
    previous = await load_month(database, OCTOBER, settings.tz)
    return make_report(rows, previous, ctx), ids


# --------------------------------------------------------------------------- every figure


async def test_r4_5_every_figure_of_a_hand_built_month(database: Database, settings: Settings) -> None:
    report, ids = await hand_report(database, settings)
    f = report.current
    ref = {letter: f"{n:06d}" for letter, n in ids.items()}

    # Volume: by channel, severity, department, channel × severity, day and hour.
    assert f.total == 10
    assert f.by_channel == {"wechat": 7, "weibo": 3}
    assert f.by_severity == {"routine": 7, "critical": 3}
    assert f.channel_severity == {("wechat", "routine"): 5, ("wechat", "critical"): 2, ("weibo", "routine"): 2,
                                  ("weibo", "critical"): 1}
    zero = {"routine": 0, "critical": 0}
    assert f.by_department == {
        "office": {"routine": 1, "critical": 0}, "info_center": {"routine": 1, "critical": 0},
        "market": {"routine": 4, "critical": 2}, "enforcement": {"routine": 0, "critical": 1},
        "public_service": {"routine": 1, "critical": 0}, "arts": zero, "heritage": zero, "broadcasting": zero,
        "industry": zero,
    }
    assert len(f.daily) == 30 and sum(d.total for d in f.daily) == 10
    busy = {d.day.day: (d.total, d.routine, d.critical, d.wechat, d.weibo, d.outside_hours, d.workday)
            for d in f.daily if d.total}
    assert busy == {
        2: (1, 1, 0, 1, 0, 0, True), 6: (1, 1, 0, 0, 1, 0, True), 7: (1, 1, 0, 1, 0, 1, False),
        10: (1, 1, 0, 1, 0, 0, True), 11: (1, 0, 1, 0, 1, 1, True), 12: (1, 0, 1, 1, 0, 0, True),
        16: (1, 1, 0, 1, 0, 0, True), 17: (1, 1, 0, 0, 1, 0, True), 29: (1, 0, 1, 1, 0, 1, False),
        30: (1, 1, 0, 1, 0, 0, True),
    }
    assert [d.workday for d in f.daily].count(False) == 9  # Sundays 1/8/15/22/29, Saturdays 7/14/21/28
    assert f.outside_hours == 3  # C Saturday night, E 22:00, J Sunday 03:00
    assert {h: n for h, n in enumerate(f.by_hour) if n} == {3: 1, 9: 3, 10: 1, 14: 1, 16: 1, 17: 1, 20: 1, 22: 1}

    # On time / late / open, per department and overall, routine and critical apart (H on its cycle 2).
    routine, critical = f.sla["routine"], f.sla["critical"]
    assert routine["market"] == SlaFigures(total=4, on_time=1, late=1, open_overdue=0, open_pending=1, closed=1,
                                           median=120.0, p90=168.0, staff_answered=2)
    assert routine["office"] == SlaFigures(total=1, on_time=1, median=90.0, p90=90.0, staff_answered=1)
    assert routine["info_center"] == SlaFigures(total=1, open_overdue=1)
    assert routine["public_service"] == SlaFigures(total=1, on_time=1)  # the knowledge base: no response time
    assert routine["enforcement"] == SlaFigures()
    assert routine[ALL] == SlaFigures(total=7, on_time=3, late=1, open_overdue=1, open_pending=1, closed=1,
                                      median=90.0, p90=162.0, staff_answered=3)  # [60, 90, 180 across the weekend]
    assert [routine[d].on_time_rate for d in ("market", "office", "info_center", "public_service", "arts", ALL)] \
        == [0.5, 1.0, 0.0, 1.0, None, 0.6]
    assert critical["market"] == SlaFigures(total=2, on_time=2, median=30.0, p90=38.0, staff_answered=2)
    assert critical["enforcement"] == SlaFigures(total=1, late=1, median=150.0, p90=150.0, staff_answered=1)
    assert critical[ALL] == SlaFigures(total=3, on_time=2, late=1, median=40.0, p90=128.0, staff_answered=3)
    assert critical[ALL].on_time_rate == pytest.approx(2 / 3)
    assert f.response_minutes == {"routine": [60.0, 90.0, 180.0], "critical": [20.0, 40.0, 150.0]}
    assert f.reopened == 1

    # Knowledge base.
    assert (f.kb_answered, f.kb_rate, f.kb_by_department) == (1, 0.1, {"public_service": 1})

    # Reminders, chases and escalations by rung.
    alerts = {(a.kind, a.level): (a.total, a.routine, a.critical, a.by_status, a.inquiries) for a in f.alerts}
    no = {"sent": 0, "partial": 0, "failed": 0, "cancelled": 0, "pending": 0}
    assert alerts == {
        ("reminder", None): (7, 5, 2, {**no, "sent": 6, "cancelled": 1}, 4),
        ("chase", None): (1, 1, 0, {**no, "sent": 1}, 1),
        ("escalation", 2): (4, 2, 2, {**no, "sent": 4}, 4),
        ("escalation", 3): (2, 1, 1, {**no, "sent": 1, "failed": 1}, 2),
        ("escalation", 4): (1, 0, 1, {**no, "sent": 1}, 1),
    }
    assert f.alert_count("escalation") == 7 and f.alert_count("reminder") == 7

    # Undeliverable answers and transfers (October's belong to October).
    assert [(u.ref, u.department, u.channel, u.at, u.reason, u.inquiry_status) for u in f.undeliverable] == [
        (ref["H"], "office", "weibo", shanghai(2026, 11, 18, 11, 0), "已超过48小时客服消息时限（微信 45015）", "answered")]
    assert [(t.ref, t.at, t.actor, t.from_department, t.to_department, t.reason) for t in f.transfers] == [
        (ref["H"], shanghai(2026, 11, 17, 9, 10), "li", "info_center", "office", "属办公室职责")]
    assert (f.transfers_in("office"), f.transfers_out("info_center"), f.transfers_in("market")) == (1, 1, 0)

    # The overdue list: critical first, then the latest first; wall and working minutes late.
    overdue = [(r.ref, r.department, r.severity, r.due_at, r.answered_at, r.late_minutes, r.late_working_minutes,
                r.escalation_level, r.reason) for r in f.overdue]
    assert overdue == [
        (ref["F"], "enforcement", "critical", shanghai(2026, 11, 12, 15, 0), shanghai(2026, 11, 12, 16, 30), 90, None,
         4, "超时答复"),
        # D: 20 days 22 hours of wall time; working: 390 (Tue) + 14 working days × 540 + 30 (Tue 1 Dec) = 7980.
        (ref["D"], "info_center", "routine", shanghai(2026, 11, 10, 11, 0), None, 30120, 7980, 3,
         "超时未答复（仍在办理）"),
        (ref["B"], "market", "routine", shanghai(2026, 11, 9, 9, 30), shanghai(2026, 11, 9, 10, 30), 60, 60, 2,
         "超时答复"),
    ]

    # What lies behind critical messages (rule markers are not terms; a term counts once per message).
    assert f.critical_departments == [("market", 2), ("enforcement", 1)]
    assert f.critical_terms == [("强制购物", 2), ("曝光", 2), ("人身安全", 1), ("无证经营", 1)]
    assert f.demo is False

    # Month over month against October (K on time in 60, L on time in 30; one escalation, one undeliverable).
    p = report.previous
    assert (p.total, p.by_severity, len(p.undeliverable), len(p.transfers)) == (2, {"routine": 1, "critical": 1}, 1, 1)
    kpi = {k.key: (k.current, k.previous, k.delta, k.relative) for k in report.kpis}
    assert kpi["total"] == (10, 2, 8, 4.0)
    assert kpi["critical"] == (3, 1, 2, 2.0)
    assert kpi["critical_share"] == (0.3, 0.5, pytest.approx(-0.2), None)
    assert kpi["outside_hours"] == (3, 0, 3, None)
    assert kpi["routine_on_time_rate"] == (0.6, 1.0, pytest.approx(-0.4), None)
    assert kpi["critical_on_time_rate"] == (pytest.approx(2 / 3), 1.0, pytest.approx(-1 / 3), None)
    assert kpi["routine_median"] == (90.0, 60.0, 30.0, 0.5)
    assert kpi["routine_p90"] == (162.0, 60.0, 102.0, 1.7)
    assert kpi["critical_median"] == (40.0, 30.0, 10.0, pytest.approx(1 / 3))
    assert kpi["critical_p90"] == (128.0, 30.0, 98.0, pytest.approx(98 / 30))
    assert kpi["kb_rate"] == (0.1, 0.0, 0.1, None)
    assert kpi["late"] == (2, 0, 2, None)
    assert kpi["open_overdue"] == (1, 0, 1, None)
    assert kpi["reminders"] == (7, 0, 7, None)
    assert kpi["escalations"] == (7, 1, 6, 6.0)
    assert kpi["chases"] == (1, 0, 1, None)
    assert kpi["undeliverable"] == (1, 1, 0, 0.0)
    assert kpi["transfers"] == (1, 1, 0, 0.0)
    assert kpi["reopened"] == (1, 0, 1, None)


async def test_r4_5_a_reopened_inquiry_is_judged_cycle_by_cycle(database: Database, settings: Settings) -> None:
    """A critical complaint answered 40 minutes late, then a routine follow-up answered on time by another
    department: the month has one critical inquiry, one late critical cycle and one on-time routine cycle."""
    calendar = BusinessCalendar(settings.reply_hours)
    received, followup = shanghai(2026, 11, 3, 14, 0), shanghai(2026, 11, 4, 10, 0)
    first_due = first_response_due(received, "critical", settings.sla, calendar)
    second_due = first_response_due(followup, "routine", settings.sla, calendar)
    assert (first_due, second_due) == (shanghai(2026, 11, 3, 15, 0), shanghai(2026, 11, 4, 12, 0))
    async with database.transaction() as session:
        inquiry = Inquiry(
            channel="wechat", account="gh_test", sender="o-test-M", status=InquiryStatus.ANSWERED,
            severity="critical", department="enforcement", department_confidence=0.9, score=3.0,
            matched=["上访"], summary="KTV的事再不管我就去上访", received_at=received, due_at=first_due,
            last_message_at=received, answered_at=shanghai(2026, 11, 3, 15, 40), answered_by="wang", cycle=1,
            clock_started_at=received, escalation_level=3,
        )
        session.add(inquiry)
        await session.flush()
        # What the pipeline does when the follow-up arrives: keep the finished cycle, then reopen.
        session.add(InquiryCycle(**finished_cycle_values(inquiry, followup)))
        inquiry.status, inquiry.cycle, inquiry.severity, inquiry.department = "open", 2, "routine", "office"
        inquiry.clock_started_at, inquiry.due_at, inquiry.escalation_level = followup, second_due, 0
        inquiry.answered_at, inquiry.answered_by = None, None
        await session.flush()
        inquiry.status, inquiry.answered_at, inquiry.answered_by = "answered", shanghai(2026, 11, 4, 11, 0), "li"
    ctx = ReportContext.from_settings(settings, AS_OF)
    report = make_report(await load_month(database, NOVEMBER, settings.tz),
                         await load_month(database, OCTOBER, settings.tz), ctx)
    f = report.current

    assert (f.total, f.by_severity, f.reopened) == (1, {"routine": 0, "critical": 1}, 1)
    assert f.by_department["office"] == {"routine": 0, "critical": 1}  # where it is now, counted once
    assert f.sla["critical"]["enforcement"] == SlaFigures(total=1, late=1, median=100.0, p90=100.0,
                                                          staff_answered=1)
    assert f.sla["routine"]["office"] == SlaFigures(total=1, on_time=1, median=60.0, p90=60.0, staff_answered=1)
    assert (f.sla["critical"][ALL].on_time_rate, f.sla["routine"][ALL].on_time_rate) == (0.0, 1.0)
    assert f.response_minutes == {"routine": [60.0], "critical": [100.0]}
    assert [(r.department, r.severity, r.cycle, r.received_at, r.late_minutes, r.escalation_level, r.reason)
            for r in f.overdue] == [
        ("enforcement", "critical", 1, received, 40, 3, "超时答复；答复后网友又追问，已另起一轮")]
    assert f.critical_departments == [("office", 1)] and f.critical_terms == [("上访", 1)]
    kpi = {k.key: k.current for k in report.kpis}
    assert (kpi["critical"], kpi["critical_on_time_rate"], kpi["late"]) == (1, 0.0, 1)


async def test_r4_5_xlsx_reads_back_with_its_sheets_headers_and_formats(
    database: Database, settings: Settings, tmp_path: Path
) -> None:
    report, ids = await hand_report(database, settings)
    path = write_xlsx(report, tmp_path / "out" / f"{report.file_stem()}.xlsx")
    assert path.name == "guanwei-report-2026-11.xlsx"
    book = load_workbook(path)
    assert book.sheetnames == ["概览与环比", "按渠道", "按紧急程度", "按部门", "按日", "常规留言按时情况",
                               "紧急留言按时情况", "提醒与上报", "超时清单", "无法送达", "转办记录", "紧急留言·部门",
                               "紧急留言·命中词", "说明"]
    for table in report.tables():
        sheet = book[table.title]
        assert [c.value for c in sheet[1]] == table.headers, table.title
        assert sheet.freeze_panes == "A2"
        assert all(sheet.column_dimensions[chr(65 + n)].width >= 8 for n in range(len(table.headers)))
    assert [c.value for c in book["常规留言按时情况"][1]] == [
        "部门", "答复轮次", "按时答复", "超时答复", "超时未答复", "未到期办理中", "关闭未答复", "按时率", "人工答复数",
        "用时中位数（工作分钟）", "用时P90（工作分钟）"]

    overview = {row[0].value: row for row in book["概览与环比"].iter_rows(min_row=2) if row[0].value}
    assert [c.value for c in overview["受理留言"][1:4]] == [10, 2, 8]
    assert overview["常规留言按时答复率"][1].value == 0.6 and overview["常规留言按时答复率"][1].number_format == "0.0%"
    assert overview["常规留言按时答复率"][3].value == pytest.approx(-40.0)  # percentage points
    total = [c.value for c in list(book["常规留言按时情况"].iter_rows(min_row=2))[9]]
    assert total == ["合计", 7, 3, 1, 1, 1, 1, 0.6, 3, 90, 162]
    assert book["常规留言按时情况"]["H2"].number_format == "0.0%"

    overdue = [[c.value for c in row] for row in book["超时清单"].iter_rows(min_row=2, max_row=4)]
    assert [row[0] for row in overdue] == [f"{ids[x]:06d}" for x in "FDB"]
    assert overdue[0][5] == shanghai(2026, 11, 12, 15, 0).replace(tzinfo=None)  # local time: Excel has no zones
    assert overdue[1][6] is None and overdue[1][7:10] == [30120, 7980, "第3级 信息中心/局办公室"]
    assert book["超时清单"]["E2"].number_format == "yyyy-mm-dd hh:mm"
    first_day = book["按日"]["A2"]
    assert first_day.value == shanghai(2026, 11, 1).replace(tzinfo=None) and first_day.number_format == "yyyy-mm-dd"


async def test_r4_5_html_is_self_contained_with_charts(database: Database, settings: Settings, tmp_path: Path) -> None:
    report, ids = await hand_report(database, settings)
    charts = render_charts(report)
    assert set(charts.images) == {"daily", "departments", "mix", "response", "hours"}
    assert all(png.startswith(b"\x89PNG") for png in charts.images.values())
    path = write_html(report, charts, tmp_path / "r.html")
    html = path.read_text(encoding="utf-8")
    assert html.count('<img src="data:image/png;base64,') == 5
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    assert "2026年11月" in html and "超时清单" in html and f"{ids['D']:06d}" in html
    assert "演示数据" not in html
    if charts.font is not None:
        assert charts.warning is None and "未找到中文字体" not in html


async def test_r4_5_charts_without_a_chinese_font_warn_instead_of_failing(
    database: Database, settings: Settings
) -> None:
    report, _ = await hand_report(database, settings)
    charts = render_charts(report, font=None)  # as on a machine where fc-list :lang=zh is empty
    assert charts.warning is not None and "fonts-noto-cjk" in charts.warning
    assert len(charts.images) == 5
    assert "未找到中文字体" in render_html(report, charts)


def test_r4_5_month_is_checked() -> None:
    assert Month.parse("2026-11") == NOVEMBER and NOVEMBER.previous() == OCTOBER
    assert Month.parse("2027-01").previous() == Month(2026, 12)
    for bad in ("2026-13", "2026-1", "11/2026", "", "2026-00"):
        with pytest.raises(ReportError, match="--month"):
            Month.parse(bad)
    assert NOVEMBER.start(SHANGHAI).astimezone(UTC) == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
    assert NOVEMBER.end(SHANGHAI) == datetime(2026, 12, 1, tzinfo=SHANGHAI) and len(NOVEMBER.days()) == 30


# --------------------------------------------------------------------------- demo data


async def test_r4_5_demo_data_fills_an_empty_database_and_refuses_a_full_one(
    database: Database, settings: Settings, classifier: Classifier
) -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    summary = await generate(database, settings, NOVEMBER, seed=7, now=now, classifier=classifier)
    assert 300 <= summary.inquiries <= 600
    async with database.transaction() as session:
        inquiries = list((await session.scalars(select(Inquiry))).all())
        generated = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "demo.generated"))).all()
        messages = await session.scalar(select(func.count()).select_from(Message))
    assert len(inquiries) == summary.inquiries and messages > 2 * summary.inquiries
    assert {i.department for i in inquiries} == set(settings.departments)
    assert {i.channel for i in inquiries} == {"wechat", "weibo"}
    assert all(i.account == "demo" and i.sender.startswith("demo-") for i in inquiries)
    assert [g.detail["month"] for g in generated] == ["2026-11"] and generated[0].detail["seed"] == 7
    assert abs(summary.severities["critical"] / summary.inquiries - 0.2) < 0.01
    assert 0.2 < summary.outside_hours / summary.inquiries < 0.6  # nights and weekends too

    report = make_report(await load_month(database, NOVEMBER, settings.tz),
                         await load_month(database, OCTOBER, settings.tz), ReportContext.from_settings(settings, now))
    f = report.current
    assert f.demo and f.total == summary.inquiries
    assert f.kb_answered > 0 and f.outcome_total("late") > 0 and f.alert_count("escalation") > 0
    assert f.transfers and f.undeliverable and f.reopened > 0
    assert all(a.by_status["pending"] == 0 for a in f.alerts)  # a real scheduler must find nothing to send
    # Deadlines are the real ones.
    calendar = BusinessCalendar(settings.reply_hours)
    assert all(i.due_at == first_response_due(i.clock_started_at, i.severity, settings.sla, calendar)
               for i in inquiries)
    # The report agrees with `guanwei inquiries`.
    rows = await inquiry_rows(database, settings)
    assert Counter(r["department"] for r in rows) == Counter({d: sum(s.values()) for d, s in f.by_department.items()
                                                              if sum(s.values())})
    assert sum(r["status"] == "open" and datetime.fromisoformat(r["due_at"]) < now for r in rows) \
        == f.outcome_total(OPEN_OVERDUE)
    assert sum(r["answered_by"] == KNOWLEDGE_BASE for r in rows) == f.kb_answered

    with pytest.raises(DemoError, match="already holds"):
        await generate(database, settings, NOVEMBER, seed=7, now=now, classifier=classifier)
    with pytest.raises(DemoError, match="has not begun"):
        await generate(database, settings, Month(2027, 1), now=now, classifier=classifier, force=True)


async def test_r4_5_demo_data_is_deterministic_for_a_seed(
    tmp_path: Path, settings: Settings, classifier: Classifier
) -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    months = []
    for name in ("a", "b"):
        database = Database(f"sqlite+aiosqlite:///{tmp_path / name}.sqlite3")
        try:
            await upgrade_engine(database.engine)
            await generate(database, settings, OCTOBER, seed=3, now=now, classifier=classifier)
            async with database.transaction() as session:
                months.append([(i.received_at, i.severity, i.department, i.status, i.answered_at, i.summary)
                               for i in (await session.scalars(select(Inquiry).order_by(Inquiry.id))).all()])
        finally:
            await database.dispose()
    assert months[0] == months[1] and len(months[0]) > 300


# --------------------------------------------------------------------------- the commands

runner = CliRunner()


def test_r4_5_report_and_demo_data_commands(workdir: Path) -> None:
    from bot.cli import app

    assert runner.invoke(app, ["init"]).exit_code == 0
    (workdir / "a-file").write_text("not a directory")
    for args in (["report", "--month", "2026-13"], ["demo-data", "--month", "2026-13"],
                 ["report", "--month", "2026-10", "--out", "a-file"],
                 ["report", "--month", "2026-10", "--out", "a-file/reports"]):
        bad = runner.invoke(app, args)
        assert bad.exit_code == 2 and isinstance(bad.exception, SystemExit), args  # typer.Exit, nothing else
        assert len(bad.output.strip().splitlines()) == 1 and "Traceback" not in bad.output, (args, bad.output)
        assert bad.output.startswith("error: --month" if "2026-13" in args else "error: --out: cannot write"), args

    made = runner.invoke(app, ["demo-data", "--month", "2026-10", "--seed", "5"])
    assert made.exit_code == 0, made.output
    assert "next: guanwei report --month 2026-10" in made.output
    again = runner.invoke(app, ["demo-data", "--month", "2026-10"])
    assert again.exit_code == 2 and "already holds" in again.output and len(again.output.strip().splitlines()) == 1

    result = runner.invoke(app, ["report", "--month", "2026-10", "--out", "reports"])
    assert result.exit_code == 0, result.output
    xlsx, html = workdir / "reports" / "guanwei-report-2026-10.xlsx", workdir / "reports" / "guanwei-report-2026-10.html"
    assert xlsx.exists() and html.exists()
    assert str(xlsx.resolve()) in result.output.replace("\n", "") and "[demo data]" in result.output
    assert load_workbook(xlsx).sheetnames[0] == "概览与环比"
    assert '<img src="data:image/png;base64,' in html.read_text(encoding="utf-8")

    # The figures agree with `guanwei inquiries`: every listed inquiry is October's, and the total matches.
    listed = json.loads(runner.invoke(app, ["inquiries", "--json", "--limit", "100000"]).stdout)
    assert {date.fromisoformat(row["received_at"][:10]).month for row in listed} == {10}
    rows = {row[0].value: [c.value for c in row] for row in load_workbook(xlsx)["按部门"].iter_rows(min_row=2)}
    assert rows["合计"][1] == len(listed)
    assert all(rows[name][1] == sum(r["department_name"] == name for r in listed) for name in rows if name != "合计"
               and name and not name.startswith("注"))


# --------------------------------------------------------------------------- the console download


async def test_r4_5_console_download_for_info_center_and_supervisors(
    client: TestClient, database: Database, settings: Settings, clock: Clock
) -> None:
    ids = await build_hand_month(database, settings)
    clock.now = AS_OF
    async with database.transaction() as session:
        for name, role, department in (("info", "info_center", None), ("boss", "supervisor", None),
                                       ("clerk", "staff", "market"), ("chief", "head", "market")):
            await add_user(session, name=name, role=role, department=department, password="correct horse battery",
                           departments=list(settings.departments), now=AS_OF)

    async def login(name: str) -> dict[str, str]:
        response = await client.post("/api/login", json={"username": name, "password": "correct horse battery"})
        return {"Authorization": f"Bearer {(await response.json())['token']}"}

    info, boss, clerk, chief = [await login(n) for n in ("info", "boss", "clerk", "chief")]
    page = await client.get("/console/report", headers=boss)
    assert page.status == 200
    text = await page.text()
    assert '<a href="/console/report">运行月报</a>' in text and "month=2026-11&amp;format=xlsx" in text  # last month
    for headers in (clerk, chief):
        assert (await client.get("/console/report", headers=headers)).status == 403
        assert (await client.get("/console/report/download?month=2026-11&format=xlsx", headers=headers)).status == 403
        assert "运行月报" not in await (await client.get("/console", headers=headers)).text()

    response = await client.get("/console/report/download?month=2026-11&format=xlsx", headers=info)
    assert response.status == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="guanwei-report-2026-11.xlsx"'
    book = load_workbook(io.BytesIO(await response.read()))
    total = [c.value for c in list(book["常规留言按时情况"].iter_rows(min_row=2))[9]]
    assert total == ["合计", 7, 3, 1, 1, 1, 1, 0.6, 3, 90, 162]  # as the hand-built month says, as of AS_OF

    response = await client.get("/console/report/download?month=2026-11&format=html", headers=boss)
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/html")
    html = await response.text()
    assert html.count('<img src="data:image/png;base64,') == 5 and f"{ids['D']:06d}" in html

    for query in ("month=2026-13&format=xlsx", "month=2026-11&format=pdf", ""):
        assert (await client.get(f"/console/report/download?{query}", headers=info)).status == 400, query
    async with database.transaction() as session:
        downloads = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "report.download")
                                           .order_by(AuditEntry.id))).all()
    assert [(a.actor, a.target, a.detail["format"]) for a in downloads] == [
        ("info", "report:2026-11", "xlsx"), ("boss", "report:2026-11", "html")]


def test_r4_5_text_people_wrote_is_never_a_formula_in_the_workbook() -> None:
    import io
    from zoneinfo import ZoneInfo

    from openpyxl import load_workbook

    from bot.report import Column, Table, tables_xlsx_bytes

    injected = '=HYPERLINK("http://example.invalid/x","点击查看")'
    table = Table("overdue", "超时清单", (Column("摘要"), Column("编号")), [(injected, "000001")])
    sheet = load_workbook(io.BytesIO(tables_xlsx_bytes([table], ZoneInfo("Asia/Shanghai"), title="t")))["超时清单"]
    assert (sheet["A2"].value, sheet["A2"].data_type) == (injected, "s")
