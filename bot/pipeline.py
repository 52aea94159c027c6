"""The pipeline: one inbound message → stored, classified, queued with a deadline, acknowledged.

Platforms retry a push up to three times within ~15 s when we are slow. The dedup key is claimed
before any slow work: a retry that arrives while the first attempt is still running waits for
that attempt's outcome; a retry after it finished reads the stored reply. The database's unique
(channel, dedup_key) constraint is the last word when two workers race.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from loguru import logger
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import storage
from bot.config import Settings
from bot.inbound import Event, InboundMessage, Kind, checked
from bot.knowledge_runtime import Knowledge, KnowledgeHolder
from bot.logs import mask_id
from bot.metrics import Metrics
from bot.outbound import reply_too_long
from bot.replies import LONGEST_INQUIRY_ID, ReplyWriter
from bot.shared_state import InProcessState, SharedState
from bot.storage import (
    KNOWLEDGE_BASE,
    WEAK_ROUTING,
    Database,
    Direction,
    Inquiry,
    InquiryCycle,
    InquiryStatus,
    Message,
    StorageUnavailable,
)
from escalation.calendar import BusinessCalendar
from escalation.ladder import InquiryClock, due_now, next_fire_at, plan
from escalation.sla import first_response_due
from knowledge import Classification
from knowledge.faq import FaqMatch

Clock = Callable[[], datetime]

CRITICAL, ROUTINE = "critical", "routine"
# How long a retry that reached another worker waits for the first worker's stored reply; well
# inside WeChat's 5 s, after which a 503 makes the platform try once more.
_WAIT_FOR_OTHER_WORKER = 3.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Outcome:
    reply: str | None  # passive reply text; None means acknowledge with "success"
    inquiry_id: int | None
    replayed: bool = False  # a platform retry answered from the first attempt
    recorded_at: datetime | None = None


class KeyedLocks:
    """An asyncio lock per key, forgotten when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        knowledge: KnowledgeHolder,
        calendar: BusinessCalendar,
        clock: Clock = utc_now,
        state: SharedState | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.knowledge = knowledge
        self.calendar = calendar
        self.clock = clock
        self.replies = ReplyWriter(settings.file.replies, settings.file.bureau_name, settings.tz)
        self._in_flight: dict[str, asyncio.Future[Outcome]] = {}
        self._conversations = KeyedLocks()
        self.on_inquiry_changed: list[Callable[[], None]] = []  # e.g. wake the scheduler
        self.ladder = settings.file.escalation.ladder()
        self.state = state or InProcessState()
        self.metrics = metrics or Metrics()

    async def handle(self, message: InboundMessage) -> Outcome:
        """Store, classify, queue and acknowledge one push. Raises `InvalidInbound`, `StorageUnavailable`."""
        message = checked(message)
        if message.sender == message.account:
            # The account's own message echoed back (Weibo pushes what the account sends too, in some setups):
            # nobody from the public wrote it, so it is neither an inquiry nor answered.
            logger.info("{} push from the account itself ({}) acknowledged, not stored", message.channel,
                        mask_id(message.account))
            return Outcome(None, None)
        key = f"{message.channel}:{message.dedup_key}"
        limit = self.settings.file.server.messages_per_sender_per_minute
        if key not in self._in_flight and not await self.state.allow(f"sender:{message.channel}:{message.sender}",
                                                                      limit):
            if not self._is_critical(message):
                # A flood from one follower must not crowd out everyone else; they are told, not ignored.
                logger.warning("{} sender {} over {} messages a minute: not stored", message.channel,
                               mask_id(message.sender), limit)
                return Outcome(self.replies.rate_limited(), None)
            # Someone reporting a stampede after twenty frantic messages must still be heard (R6.1d).
            logger.warning("{} sender {} over {} messages a minute, but this one is critical: stored",
                           message.channel, mask_id(message.sender), limit)
        running = self._in_flight.get(key)
        if running is not None:
            outcome = await asyncio.shield(running)
            return Outcome(outcome.reply, outcome.inquiry_id, True, outcome.recorded_at)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            if await self.state.claim(key):
                try:
                    outcome = await self._process(message)
                except BaseException:
                    await self.state.release(key)  # let the platform's retry try again
                    raise
            else:
                outcome = await self._answer_of_other_worker(message)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here so an unawaited failure is not reported twice
            raise
        else:
            future.set_result(outcome)
            return outcome
        finally:
            del self._in_flight[key]

    def _first_alert_at(self, severity: str, now: datetime, due: datetime) -> datetime | None:
        """When the scheduler must first look at a new inquiry: now for a critical one (rung 2 at once, R6.1d),
        a routine one's first reminder otherwise — so that a burst of routine questions does not send the
        scheduler through each of them at once, holding the database while pushes wait."""
        planned = plan(InquiryClock(severity, 1, now, due), self.ladder, self.calendar)
        return now if due_now(planned, now, set()) else next_fire_at(planned, now, set())

    def _is_critical(self, message: InboundMessage) -> bool:
        return bool(message.text) and self.knowledge.current.classifier.classify(message.text).severity == CRITICAL

    async def _answer_of_other_worker(self, message: InboundMessage) -> Outcome:
        """Another worker (or an earlier attempt) claimed this push: give the same reply once it is stored."""
        for _ in range(int(_WAIT_FOR_OTHER_WORKER / 0.1)):
            async with self.db.transaction() as session:
                stored = await storage.find_reply(session, message.channel, message.dedup_key)
            if stored is not None:
                return Outcome(stored.text, None, replayed=True)
            await asyncio.sleep(0.1)
        raise StorageUnavailable("another worker is still storing this push; the platform will retry")

    async def _process(self, message: InboundMessage) -> Outcome:
        # One conversation at a time: a follower who sends text, a photo and a location in the same
        # second gets one inquiry, not three racing to be first.
        async with self._conversations.hold(f"{message.channel}:{message.account}:{message.sender}"):
            return await self._process_in_turn(message)

    async def _process_in_turn(self, message: InboundMessage) -> Outcome:
        # Understood before the write transaction opens, so the database waits for no CPU work.
        knowledge = self.knowledge.current  # one consistent pair even if a reload swaps it meanwhile
        classification = knowledge.classifier.classify(message.text) if message.text else None
        faq = _faq_answer(knowledge, message, classification)
        if faq is not None and (why := reply_too_long(message.channel, self.replies.faq_answer(
                answer=faq.entry.answer, inquiry_id=LONGEST_INQUIRY_ID))):
            # `guanwei kb import` refuses such answers; one stored some other way waits for a person instead
            logger.warning("FAQ entry {} not used as the instant reply on {}: {}", faq.entry.id, message.channel, why)
            faq = None
        now = self.clock()

        def record(session: Session) -> Outcome:
            stored = storage.stored_reply(session, message.channel, message.dedup_key)
            if stored is not None:
                logger.info("{} retry from {} answered from the first attempt", message.channel,
                            mask_id(message.sender))
                return Outcome(stored.text, None, replayed=True)
            return self._record(session, message, classification, faq, now)

        try:
            outcome = await self.db.run_write(record)
        except IntegrityError:
            # Another worker stored the same push between our lookup and our insert.
            async with self.db.transaction() as session:
                stored = await storage.find_reply(session, message.channel, message.dedup_key)
            if stored is None:
                raise
            return Outcome(stored.text, None, replayed=True)
        if outcome.replayed:
            return outcome
        self.metrics.message(message.channel, message.kind, classification.severity if classification else None)
        if outcome.inquiry_id is not None:
            for listener in self.on_inquiry_changed:
                listener()
        return outcome

    def _record(
        self,
        session: Session,
        message: InboundMessage,
        classification: Classification | None,
        faq: FaqMatch | None,
        now: datetime,
    ) -> Outcome:
        inquiry: Inquiry | None = None
        if message.kind is Kind.EVENT:
            reply = self.replies.welcome() if message.event is Event.SUBSCRIBE else None
        elif not message.opens_inquiry or (message.kind is Kind.TEXT and not message.text):
            reply = self.replies.unsupported()
        else:
            inquiry, reply = self._register(session, message, classification, faq, now)

        inbound_id = storage.insert_row(session, Message, _message_row(message, Direction.IN, now, inquiry))
        if reply is not None:
            storage.insert_row(session, Message, _message_row(message, Direction.OUT, now, inquiry,
                                                                    content=reply, reply_to_id=inbound_id))
        logger.info(
            "{} {}{} from {} stored{}",
            message.channel,
            message.kind,
            f"/{message.event}" if message.event else "",
            mask_id(message.sender),
            f" in inquiry {inquiry.id} ({inquiry.severity}, {inquiry.department}, "
            f"due {inquiry.due_at.astimezone(self.settings.tz).isoformat()})"
            if inquiry
            else "",
        )
        return Outcome(reply, inquiry.id if inquiry else None, recorded_at=now)

    def _register(
        self,
        session: Session,
        message: InboundMessage,
        classification: Classification | None,
        faq: FaqMatch | None,
        now: datetime,
    ) -> tuple[Inquiry, str | None]:
        severity = classification.severity if classification else ROUTINE
        due = first_response_due(now, severity, self.settings.sla, self.calendar)
        reopen_window = timedelta(days=self.settings.file.escalation.reopen_within_days)
        inquiry = storage.latest_inquiry_of(
            session, message.channel, message.account, message.sender, active_since=now - reopen_window
        )
        escalated = False
        if inquiry is not None and inquiry.status == InquiryStatus.ANSWERED:
            if _is_closing_remark(message):
                return inquiry, None  # "好的，谢谢": nothing to answer, nothing to reopen
            storage.insert_row(session, InquiryCycle, storage.finished_cycle_values(inquiry, now))
            _reopen(inquiry, severity, due, now)
            followup = True
            if classification is not None:
                _route_new_cycle(inquiry, classification, self.settings.file.fallback_department)
            if faq is not None:
                # a new question the knowledge base answers: the new cycle is answered at once, as a new inquiry is
                _answer_by_knowledge_base(inquiry, faq, now)
                return inquiry, self.replies.faq_answer(answer=faq.entry.answer, inquiry_id=inquiry.id)
            if severity == CRITICAL:
                # "有线电视没信号" answered, then "孩子在景区走丢了": the emergency is the new cycle's subject,
                # its department must react within the hour and the netizen gets the critical acknowledgement
                inquiry.summary = _summary(message)
                escalated = True
        elif inquiry is not None:
            followup = True
            inquiry.last_message_at = now
            if classification is not None:
                escalated = _merge_followup(inquiry, classification, due, self.settings.file.fallback_department)
                if escalated:
                    inquiry.summary = _summary(message)  # staff must see what made it critical first
                    inquiry.next_alert_at = now  # the ladder starts at once (R6.1d)
            if faq is not None:
                # Another question, one the knowledge base answers: answered at once, while the open inquiry
                # still waits for a person for what came before.
                return inquiry, self.replies.faq_answer(answer=faq.entry.answer, inquiry_id=inquiry.id)
        else:
            followup = False
            inquiry = Inquiry(
                channel=message.channel.value,
                account=message.account,
                sender=message.sender,
                status=InquiryStatus.OPEN,
                severity=severity,
                department=classification.department if classification else self.settings.file.fallback_department,
                department_confidence=classification.department_confidence if classification else 0.0,
                score=classification.score if classification else 0.0,
                matched=list(classification.matched) if classification else [],
                summary=_summary(message),
                received_at=now,
                due_at=due,
                last_message_at=now,
                cycle=1,
                clock_started_at=now,
                next_alert_at=self._first_alert_at(severity, now, due),
                escalation_level=0,
            )
            if faq is not None:
                # Answered at once by the knowledge base: the clock stops, staff still see it.
                _answer_by_knowledge_base(inquiry, faq, now)
            # A new inquiry is only inserted in this transaction, never edited: a plain INSERT, not a flush.
            inquiry.id = storage.insert_row(session, Inquiry, _column_values(inquiry))
            if faq is not None:
                return inquiry, self.replies.faq_answer(answer=faq.entry.answer, inquiry_id=inquiry.id)
        reply = self.replies.acknowledgement(
            inquiry_id=inquiry.id,
            due=inquiry.due_at,
            now=now,
            critical=inquiry.severity == CRITICAL and (not followup or escalated),
            followup=followup,
            department_name=self.settings.department_name(inquiry.department),
            media_kind=None if message.text and message.kind in (Kind.TEXT, Kind.VOICE) else message.kind,
        )
        return inquiry, reply


def _faq_answer(
    knowledge: Knowledge, message: InboundMessage, classification: Classification | None
) -> FaqMatch | None:
    """An FAQ answer may stand in for a person only for a routine question in words; never for a critical one."""
    if classification is None or classification.severity != ROUTINE or message.kind not in (Kind.TEXT, Kind.VOICE):
        return None
    return knowledge.faq.match(message.text)


# A short message made only of these is a thank-you after an answer, not a new question.
_CLOSING_REMARK = re.compile(r"(?:谢谢|多谢|感谢|谢了|好的|好|收到|知道了|明白了|了解了|嗯|哦|ok|okay|thanks|thank you|"
                             r"辛苦了|您|你|们|啦|了|呢|啊|[\s\W_])+", re.IGNORECASE)


def _is_closing_remark(message: InboundMessage) -> bool:
    return message.kind is Kind.TEXT and len(message.text) <= 20 and bool(_CLOSING_REMARK.fullmatch(message.text))


def _reopen(inquiry: Inquiry, severity: str, due: datetime, now: datetime) -> None:
    """A follow-up after an answer: a new cycle with a new deadline; the wait for the netizen is not counted."""
    inquiry.status = InquiryStatus.OPEN
    inquiry.cycle += 1
    inquiry.severity = severity
    inquiry.clock_started_at = now
    inquiry.due_at = due
    inquiry.last_message_at = now
    inquiry.answered_at = None
    inquiry.answered_by = None
    inquiry.next_alert_at = now


def _answer_by_knowledge_base(inquiry: Inquiry, faq: FaqMatch, now: datetime) -> None:
    inquiry.status = InquiryStatus.ANSWERED
    inquiry.answered_at = now
    inquiry.answered_by = KNOWLEDGE_BASE
    inquiry.faq_id = faq.entry.id
    inquiry.next_alert_at = None


def _names_a_subject(classification: Classification, fallback_department: str) -> bool:
    """Whether a follow-up says what it is about. The fallback department is where messages with no subject go
    ("人呢", "怎么还没人回复"), so a confident fallback is no reason to move a conversation that has one."""
    return classification.department != fallback_department and classification.department_confidence >= WEAK_ROUTING


def _route_new_cycle(inquiry: Inquiry, classification: Classification, fallback_department: str) -> None:
    """A message after an answer opens a new cycle about that message: a critical one, or one whose topic is
    clear, is routed by its own classification; a bare follow-up ("到底开不开？") stays where it was."""
    inquiry.matched = list(dict.fromkeys([*classification.matched, *inquiry.matched]))
    inquiry.score = classification.score
    if classification.severity == CRITICAL or _names_a_subject(classification, fallback_department):
        inquiry.department = classification.department
        inquiry.department_confidence = classification.department_confidence


def _merge_followup(
    inquiry: Inquiry, classification: Classification, due: datetime, fallback_department: str
) -> bool:
    """Fold a follow-up's classification into its open inquiry. Returns True when it became critical."""
    inquiry.matched = list(dict.fromkeys([*inquiry.matched, *classification.matched]))
    if inquiry.department_confidence < WEAK_ROUTING and _names_a_subject(classification, fallback_department):
        inquiry.department = classification.department
        inquiry.department_confidence = classification.department_confidence
    if classification.severity == CRITICAL and inquiry.severity != CRITICAL:
        # What made it critical decides who must react within the hour (R6.1d).
        inquiry.severity = CRITICAL
        inquiry.department = classification.department
        inquiry.department_confidence = classification.department_confidence
        inquiry.score = max(inquiry.score, classification.score)
        inquiry.due_at = min(inquiry.due_at, due)
        return True
    return False


def _summary(message: InboundMessage) -> str:
    return message.text[:200] if message.text else f"[{message.kind}]"


def _column_values(row: Inquiry) -> dict[str, object]:
    return {c.key: getattr(row, c.key) for c in Inquiry.__table__.columns if c.key != "id"}


def _message_row(
    message: InboundMessage,
    direction: str,
    now: datetime,
    inquiry: Inquiry | None,
    content: str | None = None,
    reply_to_id: int | None = None,
) -> dict[str, object]:
    inbound = direction == Direction.IN
    return {
        "inquiry_id": inquiry.id if inquiry else None,
        "reply_to_id": reply_to_id,
        "direction": direction,
        "channel": message.channel.value,
        "account": message.account,
        "sender": message.sender,
        "kind": message.kind.value if inbound else Kind.TEXT.value,
        "event": message.event.value if inbound and message.event else None,
        "content": message.text if inbound else (content or ""),
        "platform_msg_id": message.platform_msg_id if inbound else None,
        "dedup_key": message.dedup_key if inbound else None,
        "platform_created_at": message.created_at if inbound else None,
        "recorded_at": now,
        "fields": dict(message.fields) if inbound else {},
    }
