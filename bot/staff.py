"""What staff do with inquiries — the one place pages and the JSON API both call.

Every function takes the acting user and checks sight and permission through `bot.access`; an
inquiry the actor may not see is reported as missing. Every change is written to the audit log.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loguru import logger
from sqlalchemy import Integer, func, select

from bot import storage
from bot.access import Actor, scoped
from bot.auth import audit
from bot.outbound import DeliveryOutcome, Outbound
from bot.shared_state import SharedState
from bot.storage import (
    WEAK_ROUTING,
    AlertKind,
    AlertRecord,
    AlertStatus,
    Database,
    Direction,
    Inquiry,
    InquiryStatus,
    Message,
    StorageUnavailable,
)
from knowledge.screening import Screener, Verdict


class NotFound(LookupError):
    """No such inquiry, or not one the actor may see."""


class Refused(ValueError):
    """The action cannot be done as asked; the message says why, in Chinese, for the person."""


class AnsweredMeanwhile(Refused):
    """Someone else answered after the actor last read the inquiry (or is sending an answer right now): they
    should read it before adding theirs."""

    def __init__(self, message: str, *, answered_by: str | None = None, answer: str | None = None,
                 answers: int | None = None) -> None:
        super().__init__(message)
        # the colleague's latest answer and how many delivered answers there are now, when recorded
        self.answered_by, self.answer, self.answers = answered_by, answer, answers


class DeliveredNotRecorded(Exception):
    """The platform delivered the answer but the database would not take the record of it, even on retries:
    sending it again would reach the netizen twice. The caller must say so, never "try again"."""

    def __init__(self, delivery: DeliveryOutcome) -> None:
        super().__init__("答复已送达对方，但系统未能记录这次答复（数据库暂不可用）：请勿重复发送，请联系管理员补录")
        self.delivery = delivery


# Attempts at recording an answer the platform has already delivered, and the pause before each retry.
_RECORD_RETRY_PAUSES = (0.2, 0.5, 1.0)


@dataclass(frozen=True)
class AnswerResult:
    recorded: bool  # screening let it through: it was handed to the platform and kept in the conversation
    verdict: Verdict
    delivery: DeliveryOutcome | None = None  # what the platform did with it: only "delivered" reached the netizen
    message_id: int | None = None

    @property
    def delivered(self) -> bool:
        return self.delivery is not None and self.delivery.delivered


@dataclass
class Detail:
    inquiry: Inquiry
    messages: list[Message]
    alerts: list[AlertRecord]
    events: list[storage.AuditEntry] = field(default_factory=list)

    @property
    def staff_answer_count(self) -> int:
        """What the answer form sends back as `answers_seen`: the delivered staff answers on the page."""
        return sum(1 for m in self.messages
                   if m.direction == Direction.OUT and m.author is not None and m.delivery_status == "delivered")


async def visible(session: Any, actor: Actor, inquiry_id: int) -> Inquiry:
    inquiry = await session.get(Inquiry, inquiry_id)
    if inquiry is None or not actor.sees(inquiry):
        raise NotFound(inquiry_id)
    return inquiry


def _require(actor: Actor, permission: str) -> None:
    if not actor.may(permission):
        raise PermissionError(permission)


async def queue(database: Database, actor: Actor, *, include_answered: bool = False) -> list[Inquiry]:
    """The actor's queue, soonest deadline first."""
    statuses = [InquiryStatus.OPEN, InquiryStatus.ANSWERED] if include_answered else [InquiryStatus.OPEN]
    async with database.transaction() as session:
        query = scoped(select(Inquiry).where(Inquiry.status.in_(statuses)), actor)
        return list((await session.scalars(query.order_by(Inquiry.due_at, Inquiry.id).limit(500))).all())


async def answered_by_knowledge_base(database: Database, actor: Actor, *, since: datetime) -> list[Inquiry]:
    """What the FAQ answered on its own since `since`, newest first, in the actor's scope: nobody read those
    answers before they went out, so staff look them over (and answer again where the match was wrong)."""
    async with database.transaction() as session:
        query = scoped(select(Inquiry).where(Inquiry.answered_by == storage.KNOWLEDGE_BASE,
                                             Inquiry.answered_at >= since), actor)
        return list((await session.scalars(query.order_by(Inquiry.answered_at.desc(), Inquiry.id.desc())
                                           .limit(500))).all())


async def detail(database: Database, actor: Actor, inquiry_id: int) -> Detail:
    async with database.transaction() as session:
        inquiry = await visible(session, actor, inquiry_id)
        messages = list(await storage.messages_of(session, inquiry_id))
        alerts = [record for record, _ in await storage.list_alerts(session, inquiry_id=inquiry_id)]
        events = list((await session.scalars(
            select(storage.AuditEntry).where(storage.AuditEntry.target == f"inquiry:{inquiry_id}")
            .order_by(storage.AuditEntry.at)
        )).all())
    return Detail(inquiry, messages, alerts, events)


async def answer(
    database: Database,
    outbound: Outbound,
    screener: Screener,
    actor: Actor,
    inquiry_id: int,
    text: str,
    *,
    now: datetime,
    remote: str,
    override_reason: str = "",
    state: SharedState | None = None,
    answers_seen: int = 0,
) -> AnswerResult:
    """Screen the answer (R9, R10), send it through the platform, record it; the first delivered answer
    stops the SLA clock. A blocked answer is not sent unless a head overrides it with a reason.

    Two colleagues must not both answer the same netizen without knowing it: while one answer is being
    sent, the inquiry is claimed in the shared state (every worker sees it) and a second is refused; and
    when `answers_seen` (the delivered staff answers the actor has read; 0 by default, so a caller that does
    not say gets first-answer semantics) is behind, the actor is told who answered meanwhile instead of
    sending. Sending again with the new count adds a deliberate supplement."""
    _require(actor, "answer")
    text = text.strip()
    if not text:
        raise Refused("答复内容不能为空")
    verdict = screener.screen(text)
    override_reason = override_reason.strip()
    if verdict.blocked and not override_reason:
        return AnswerResult(False, verdict)
    if verdict.blocked and not actor.may("override_screening"):
        raise Refused("答复未通过审查，只有部门负责人或信息中心可以说明理由后强制发送")
    claim = f"answering:{inquiry_id}"
    if state is not None and not await state.claim(claim):
        raise AnsweredMeanwhile(
            "这条留言的另一条答复正在发送中（同事的，或您刚刚提交的），请稍候刷新查看后再决定是否补充")
    try:
        return await _send_answer(database, outbound, actor, inquiry_id, text, verdict, now=now, remote=remote,
                                  override_reason=override_reason, answers_seen=answers_seen)
    finally:
        if state is not None:
            await state.release(claim)


async def _send_answer(database: Database, outbound: Outbound, actor: Actor, inquiry_id: int, text: str,
                       verdict: Verdict, *, now: datetime, remote: str, override_reason: str,
                       answers_seen: int) -> AnswerResult:
    async with database.transaction() as session:
        inquiry = await visible(session, actor, inquiry_id)
        if inquiry.status == InquiryStatus.CLOSED:
            raise Refused("该留言已关闭，不能再答复")
        answers = await staff_answers(session, inquiry_id)
        if answers_seen > len(answers):
            raise Refused(f"answers_seen 为 {answers_seen}，但这条留言只有 {len(answers)} 条已送达的答复")
        if len(answers) > answers_seen:
            raise AnsweredMeanwhile(
                f"在您阅读之后，{answers[-1].author} 已答复了这条留言。您的答复尚未发送；"
                "如仍需补充，请核对其答复后再发送。",
                answered_by=answers[-1].author, answer=answers[-1].content, answers=len(answers))
        channel, recipient = inquiry.channel, inquiry.sender
    if (too_long := outbound.too_long(channel, text)) is not None:
        raise Refused(too_long)
    delivery = await outbound.send(channel, recipient, text)
    pauses = iter(_RECORD_RETRY_PAUSES)
    while True:
        try:
            return await _record_answer(database, actor, inquiry_id, text, verdict, delivery, now=now, remote=remote,
                                        override_reason=override_reason)
        except StorageUnavailable as exc:
            if not delivery.delivered:
                raise  # nothing reached the netizen: a plain retry later is right
            pause = next(pauses, None)
            if pause is None:
                logger.error("answer to inquiry {} by {} delivered but not recorded: {}", inquiry_id, actor.name, exc)
                raise DeliveredNotRecorded(delivery) from exc
            await asyncio.sleep(pause)


async def _record_answer(database: Database, actor: Actor, inquiry_id: int, text: str, verdict: Verdict,
                         delivery: DeliveryOutcome, *, now: datetime, remote: str,
                         override_reason: str) -> AnswerResult:
    async with database.transaction() as session:
        inquiry = await visible(session, actor, inquiry_id)
        message = Message(
            inquiry_id=inquiry.id, direction=Direction.OUT, channel=inquiry.channel, account=inquiry.account,
            sender=inquiry.sender, kind="text", content=text, recorded_at=now, fields={}, author=actor.name,
            delivery_status=delivery.status, delivery_reason=delivery.reason,
        )
        session.add(message)
        if delivery.status == "delivered" and inquiry.status == InquiryStatus.OPEN:
            inquiry.status, inquiry.answered_at, inquiry.answered_by = InquiryStatus.ANSWERED, now, actor.name
            inquiry.next_alert_at = None
        await session.flush()
        await audit(session, at=now, actor=actor.name, action="answer", target=f"inquiry:{inquiry.id}",
                    remote=remote, delivery=delivery.status, reason=delivery.reason,
                    screening=[f.category for f in verdict.findings], override=override_reason or None)
        message_id = message.id
    return AnswerResult(True, verdict, delivery, message_id)


async def staff_answers(session: Any, inquiry_id: int) -> list[Message]:
    """The answers people (not the automatic replies) sent on this inquiry that reached the netizen, oldest
    first. One the platform refused or never got does not stop a colleague from answering."""
    return list((await session.scalars(
        select(Message).where(Message.inquiry_id == inquiry_id, Message.direction == Direction.OUT,
                              Message.author.is_not(None), Message.delivery_status == "delivered")
        .order_by(Message.id)
    )).all())


async def transfer(database: Database, actor: Actor, inquiry_id: int, department: str, reason: str, *,
                   departments: dict[str, str], now: datetime, remote: str) -> Inquiry:
    """Hand an inquiry to the department that owns it (R6.2): a reason is required and recorded."""
    _require(actor, "transfer")
    reason = reason.strip()
    if department not in departments:
        raise Refused("请选择要转交的部门")
    if not reason:
        raise Refused("转交必须说明理由")
    async with database.transaction() as session:
        inquiry = await visible(session, actor, inquiry_id)
        if inquiry.status == InquiryStatus.CLOSED:
            raise Refused("该留言已关闭，不能再转交")
        if inquiry.department == department:
            if inquiry.department_confidence >= WEAK_ROUTING:
                raise Refused("该留言已在此部门")
            # "keep it here" on a weakly routed inquiry confirms the routing: 待核对 goes away
            inquiry.department_confidence = 1.0
            await audit(session, at=now, actor=actor.name, action="confirm", target=f"inquiry:{inquiry.id}",
                        remote=remote, department=department, reason=reason)
            return inquiry
        previous, inquiry.department, inquiry.department_confidence = inquiry.department, department, 1.0
        await audit(session, at=now, actor=actor.name, action="transfer", target=f"inquiry:{inquiry.id}",
                    remote=remote, **{"from": previous, "to": department, "reason": reason})
    return inquiry


async def close(database: Database, actor: Actor, inquiry_id: int, kind: str, reason: str, *,
                now: datetime, remote: str) -> Inquiry:
    """Mark as spam or duplicate (or otherwise settled), with a reason; the clock stops."""
    _require(actor, "close")
    labels = {"spam": "垃圾信息", "duplicate": "重复留言", "settled": "已线下办结"}
    reason = reason.strip()
    if kind not in labels:
        raise Refused("请选择关闭类型")
    if not reason:
        raise Refused("关闭必须说明理由")
    async with database.transaction() as session:
        inquiry = await visible(session, actor, inquiry_id)
        inquiry.status, inquiry.next_alert_at = InquiryStatus.CLOSED, None
        inquiry.closed_reason = f"{labels[kind]}：{reason}"
        await audit(session, at=now, actor=actor.name, action=f"close.{kind}", target=f"inquiry:{inquiry.id}",
                    remote=remote, reason=reason)
    return inquiry


async def chase(database: Database, actor: Actor, inquiry_id: int, note: str, *, now: datetime,
                remote: str) -> None:
    """催办 (R7.3b): recorded now, delivered to the department by the scheduler's next sweep."""
    _require(actor, "chase")
    async with database.transaction() as session:
        inquiry = await visible(session, actor, inquiry_id)
        if inquiry.status != InquiryStatus.OPEN:
            raise Refused("该留言已答复或关闭，无需催办")
        session.add(AlertRecord(
            inquiry_id=inquiry.id, key=f"chase:{now.timestamp():.6f}", kind=AlertKind.CHASE, level=None,
            fire_at=now, recorded_at=now, by=actor.name, note=note.strip(), status=AlertStatus.PENDING,
            recipients=[],
        ))
        await audit(session, at=now, actor=actor.name, action="chase", target=f"inquiry:{inquiry.id}",
                    remote=remote, note=note.strip())


async def board(database: Database, actor: Actor) -> list[Inquiry]:
    """Open inquiries escalated past the handler (rung 2 and up), most escalated first."""
    _require(actor, "board")
    async with database.transaction() as session:
        query = scoped(select(Inquiry).where(Inquiry.status == InquiryStatus.OPEN,
                                             Inquiry.escalation_level >= 2), actor)
        return list((await session.scalars(
            query.order_by(Inquiry.escalation_level.desc(), Inquiry.due_at).limit(500)
        )).all())


@dataclass(frozen=True)
class DepartmentLoad:
    department: str
    open: int
    overdue: int
    critical: int
    oldest_due: datetime | None


async def overview(
    database: Database, actor: Actor, *, now: datetime, departments: dict[str, str]
) -> list[DepartmentLoad]:
    """Every department's open load, for the information centre's chasing (R7.3b)."""
    _require(actor, "overview")
    async with database.transaction() as session:
        rows = (await session.execute(
            select(
                Inquiry.department,
                func.count(),
                func.sum((Inquiry.due_at < now).cast(Integer)),
                func.sum((Inquiry.severity == "critical").cast(Integer)),
                func.min(Inquiry.due_at),
            ).where(Inquiry.status == InquiryStatus.OPEN).group_by(Inquiry.department)
        )).all()
    by_key = {row[0]: row for row in rows}
    loads = []
    for key in departments:
        row = by_key.get(key)
        loads.append(DepartmentLoad(key, row[1] if row else 0, int(row[2] or 0) if row else 0,
                                    int(row[3] or 0) if row else 0, row[4] if row else None))
    return loads
