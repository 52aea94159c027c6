"""Storage: the SQLAlchemy models and the queries the pipeline and the CLI need.

Every time is stored as UTC. SQLite keeps no time zone, so `AwareDateTime` writes naive UTC there
and attaches UTC on the way out; PostgreSQL gets `timestamptz`. Callers only ever see aware times.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    event,
    insert,
    select,
)
from sqlalchemy.engine import Connection, Dialect, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, aliased, mapped_column
from sqlalchemy.pool import SingletonThreadPool
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeDecorator

T = TypeVar("T")


class StorageUnavailable(Exception):
    """The database could not be reached or written: the platform must retry later."""


class AwareDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; every time must carry its zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class InquiryStatus:
    OPEN = "open"  # waiting for the first answer: the SLA clock runs
    ANSWERED = "answered"
    CLOSED = "closed"  # spam, duplicate, or settled otherwise: `closed_reason` says why
    ALL = (OPEN, ANSWERED, CLOSED)


# Routing less sure than this is weak: shown as 待核对 (console) and (?) (CLI) until staff confirm or transfer it,
# and a follow-up that names its subject may re-route it.
WEAK_ROUTING = 0.5


class Inquiry(Base):
    """One conversation with a netizen that the bureau must answer (rule R7.3a registers it)."""

    __tablename__ = "inquiries"
    __table_args__ = (Index("ix_inquiries_conversation", "channel", "account", "sender", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    account: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=InquiryStatus.OPEN, index=True)
    severity: Mapped[str] = mapped_column(String(16), index=True)
    department: Mapped[str] = mapped_column(String(32), index=True)
    department_confidence: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    matched: Mapped[list[str]] = mapped_column(JSON, default=list)
    summary: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(AwareDateTime, index=True)
    due_at: Mapped[datetime] = mapped_column(AwareDateTime, index=True)
    last_message_at: Mapped[datetime] = mapped_column(AwareDateTime)
    # The first answer delivered to the netizen stops the SLA clock.
    answered_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    answered_by: Mapped[str | None] = mapped_column(String(64))  # "knowledge_base" or a staff user name
    faq_id: Mapped[str | None] = mapped_column(String(64))
    # The SLA clock: a follow-up after an answer starts a new cycle with its own deadline, so time
    # spent waiting for the netizen never counts against the department.
    cycle: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    clock_started_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    next_alert_at: Mapped[datetime | None] = mapped_column(AwareDateTime, index=True)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    closed_reason: Mapped[str | None] = mapped_column(Text)


class InquiryCycle(Base):
    """A finished answer cycle of a reopened inquiry, kept when a follow-up starts the next one.

    The inquiry's row holds only its current cycle; without these rows a critical question answered late,
    then a routine "谢谢，还想问一下…", would leave the monthly report one routine inquiry answered on time.
    """

    __tablename__ = "inquiry_cycles"
    __table_args__ = (UniqueConstraint("inquiry_id", "cycle", name="uq_inquiry_cycles_inquiry_cycle"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiries.id"), index=True)
    cycle: Mapped[int] = mapped_column(Integer)
    severity: Mapped[str] = mapped_column(String(16))
    department: Mapped[str] = mapped_column(String(32))
    clock_started_at: Mapped[datetime] = mapped_column(AwareDateTime)
    due_at: Mapped[datetime] = mapped_column(AwareDateTime)
    answered_at: Mapped[datetime] = mapped_column(AwareDateTime)
    answered_by: Mapped[str | None] = mapped_column(String(64))
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    ended_at: Mapped[datetime] = mapped_column(AwareDateTime)  # the follow-up that started the next cycle


def finished_cycle_values(inquiry: Inquiry, followup_at: datetime) -> dict[str, Any]:
    """The row that keeps an answered inquiry's current cycle, before a follow-up at `followup_at` reopens it."""
    assert inquiry.answered_at is not None, "only an answered cycle is finished by a follow-up"
    return {
        "inquiry_id": inquiry.id, "cycle": inquiry.cycle, "severity": inquiry.severity,
        "department": inquiry.department, "clock_started_at": inquiry.clock_started_at or inquiry.received_at,
        "due_at": inquiry.due_at, "answered_at": inquiry.answered_at, "answered_by": inquiry.answered_by,
        "escalation_level": inquiry.escalation_level or 0, "ended_at": followup_at,
    }


class AlertKind:
    REMINDER = "reminder"
    ESCALATION = "escalation"
    CHASE = "chase"  # 催办 by hand (R7.3b)


class AlertStatus:
    PENDING = "pending"  # recorded, not yet delivered: delivered on the next sweep, also after a restart
    SENT = "sent"
    PARTIAL = "partial"  # some recipients failed after retries
    FAILED = "failed"
    CANCELLED = "cancelled"  # answered before the alert went out: nobody needs it any more


class AlertRecord(Base):
    """A reminder, escalation or chase: recorded once per inquiry and key, then delivered."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("inquiry_id", "key", name="uq_alerts_inquiry_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiries.id"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    level: Mapped[int | None] = mapped_column(Integer)
    fire_at: Mapped[datetime] = mapped_column(AwareDateTime)
    recorded_at: Mapped[datetime] = mapped_column(AwareDateTime, index=True)
    by: Mapped[str] = mapped_column(String(64), default="system")
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=AlertStatus.PENDING, index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    recipients: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


KNOWLEDGE_BASE = "knowledge_base"


class FaqRecord(Base):
    """One FAQ entry of the live knowledge base (imported with `guanwei kb import`)."""

    __tablename__ = "faq_entries"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    alternates: Mapped[list[str]] = mapped_column(JSON, default=list)
    department: Mapped[str | None] = mapped_column(String(32))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(AwareDateTime)


class Direction:
    IN = "in"
    OUT = "out"


class Message(Base):
    """Every message in either direction: inbound pushes (events included) and our replies."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("channel", "dedup_key", name="uq_messages_channel_dedup_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inquiry_id: Mapped[int | None] = mapped_column(ForeignKey("inquiries.id"), index=True)
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    direction: Mapped[str] = mapped_column(String(3))
    channel: Mapped[str] = mapped_column(String(16))
    account: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(128))  # the netizen, whichever way the message went
    kind: Mapped[str] = mapped_column(String(16))
    event: Mapped[str | None] = mapped_column(String(32))
    content: Mapped[str] = mapped_column(Text, default="")
    platform_msg_id: Mapped[str | None] = mapped_column(String(64))
    dedup_key: Mapped[str | None] = mapped_column(String(255))  # inbound only
    platform_created_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    recorded_at: Mapped[datetime] = mapped_column(AwareDateTime, index=True)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Staff answers sent through the platform's API (passive replies have no author).
    author: Mapped[str | None] = mapped_column(String(64))
    delivery_status: Mapped[str | None] = mapped_column(String(16))  # delivered | undeliverable | failed
    delivery_reason: Mapped[str | None] = mapped_column(Text)


class User(Base):
    """A console account. Roles: staff and head belong to one department; the others see all."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(AwareDateTime)


class SessionRecord(Base):
    """A login. The cookie (or bearer token) holds a random token; only its hash is stored."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime)
    expires_at: Mapped[datetime] = mapped_column(AwareDateTime)
    revoked: Mapped[bool] = mapped_column(default=False)


class AuditEntry(Base):
    """Who did what, when, from where (R4.1, R4.2, R6.2, R7.3b)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(AwareDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(64), index=True)  # "inquiry:12", "user:zhang"
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    remote: Mapped[str] = mapped_column(String(64), default="")


@dataclass(frozen=True)
class StoredReply:
    """What we answered the first time a push arrived; retries get the same."""

    text: str | None  # None: acknowledged with no passive reply ("success")


def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite would open deferred transactions on its own; `_begin_immediate` opens them instead.
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: Connection) -> None:
    # Take the write lock at the start, so a read inside the unit of work never finds its snapshot stale.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _enable_sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the console read while the webhook writes; busy_timeout rides out short write
    # locks, and gives up well inside WeChat's 5 s so the 503 reaches it and it retries.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=3000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _as_storage_failure(exc: BaseException) -> BaseException:
    """What a caller of `run_write` is told: a duplicate is its own to resolve, a database failure is
    `StorageUnavailable` (the platform retries), anything else is the work's own exception."""
    if isinstance(exc, IntegrityError) or not isinstance(exc, DBAPIError | OSError):
        return exc
    failure = StorageUnavailable(str(exc).splitlines()[0])
    failure.__cause__ = exc
    return failure


# SQLite's primary result codes that concern the database, not one statement (SQLITE_ERROR, 1, is a
# statement's own: a missing table, a syntax error): BUSY LOCKED NOMEM READONLY IOERR CORRUPT FULL
# CANTOPEN AUTH NOTADB.
_SQLITE_FAILING = {5, 6, 7, 8, 10, 11, 13, 14, 23, 26}


def _database_itself_failing(result: object) -> bool:
    """Locked past its busy timeout, disk full or failing, file gone: whatever is written next fails too."""
    if not isinstance(result, StorageUnavailable):
        return False
    code = getattr(getattr(result.__cause__, "orig", None), "sqlite_errorcode", None)
    return code is None or code & 0xFF in _SQLITE_FAILING


# How many pushes one SQLite transaction may carry: enough to absorb a burst, few enough that one slow
# batch does not hold the pushes behind it long.
_GROUP_COMMIT_MAX = 64


@dataclass(frozen=True)
class _Written:
    value: Any


class Database:
    """The engine and session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            # A first run creates the data directory; a path that cannot exist fails later, as a 5xx.
            with suppress(OSError):
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: AsyncEngine = create_async_engine(url, pool_pre_ping=not self.is_sqlite)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _enable_sqlite_wal)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one write lock per file. Writers racing for it in their own connections wait in
        # SQLite's busy handler (sleeps of up to 100 ms each, p99 of seconds in a burst), and a
        # transaction that read before another committed fails at once with "database is locked".
        # Queueing this process's writers on an asyncio lock instead hands the file over without sleeps.
        self._sqlite_writer = asyncio.Lock() if self.is_sqlite else None
        # `run_write` on SQLite: group commit on a writer thread of its own, with a plain pysqlite connection.
        # Pushes that arrive while a batch is being written wait in `_pending` and go together into the next
        # transaction: one fsync for the batch instead of one per push, and one hop to the thread and back
        # (aiosqlite hops for every statement, each hop waiting for the busy event loop). A push is still
        # acknowledged only after the commit that holds it has returned; if anything in a batch fails, the
        # batch is rolled back and each push written again alone (savepoints would cost every push two
        # statements more for the rare failure).
        self._writer_engine: Engine | None = None
        self._writer_thread: ThreadPoolExecutor | None = None
        self._pending: list[tuple[Callable[[Session], Any], asyncio.Future[Any]]] = []
        self._draining: asyncio.Task[None] | None = None
        if self.is_sqlite:
            self._writer_engine = create_engine(parsed.set(drivername="sqlite+pysqlite"), poolclass=SingletonThreadPool)
            event.listen(self._writer_engine, "connect", _enable_sqlite_wal)
            event.listen(self._writer_engine, "connect", _no_implicit_begin)
            event.listen(self._writer_engine, "begin", _begin_immediate)
            self._writer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")

    async def run_write(self, work: Callable[[Session], T]) -> T:
        """Run `work(session)` in a write transaction and return its result once that transaction is committed.

        The work is plain synchronous SQLAlchemy, must not commit, and may run more than once (on SQLite it
        shares a transaction with other pushes' work; if that transaction fails, it runs again alone), so it
        reads what it needs inside. Its own exception undoes only its own writes. Failures surface as
        `StorageUnavailable` (and `IntegrityError` as itself), as with `transaction`."""
        if self._writer_thread is None:
            try:
                async with self.sessions() as session, session.begin():
                    return await session.run_sync(work)
            except IntegrityError:
                raise
            except (OperationalError, DBAPIError, OSError) as exc:
                raise StorageUnavailable(str(exc).splitlines()[0]) from exc
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((work, done))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain_pending())
        return await asyncio.shield(done)  # a caller that gives up does not take the batch down with it

    async def _drain_pending(self) -> None:
        assert self._sqlite_writer is not None
        async with self._sqlite_writer:
            while self._pending:
                batch, self._pending = self._pending[:_GROUP_COMMIT_MAX], self._pending[_GROUP_COMMIT_MAX:]
                works = [work for work, _ in batch]
                results = await self._write_in_thread(works)
                failure = next((result for result in results if isinstance(result, BaseException)), None)
                if len(batch) > 1 and failure is not None and not _database_itself_failing(failure):
                    # Something in the batch failed and the batch was rolled back: each alone now, so that a
                    # failure (a duplicate push, a poisonous one, a bug) is its own caller's and nobody else's.
                    results = await self._write_one_at_a_time(works)
                for (_, done), result in zip(batch, results, strict=True):
                    if done.done():
                        continue
                    if isinstance(result, BaseException):
                        done.set_exception(result)
                    else:
                        done.set_result(result.value)

    async def _write_one_at_a_time(self, works: list[Callable[[Session], Any]]) -> list[_Written | BaseException]:
        results: list[_Written | BaseException] = []
        for work in works:
            [result] = await self._write_in_thread([work])
            results.append(result)
            if _database_itself_failing(result):
                # The rest would only wait for the database again, one by one; their platforms retry them all.
                results.extend([result] * (len(works) - len(results)))
                break
        return results

    async def _write_in_thread(self, works: list[Callable[[Session], Any]]) -> list[_Written | BaseException]:
        assert self._writer_thread is not None
        try:
            return await asyncio.get_running_loop().run_in_executor(self._writer_thread, self._write_batch, works)
        except BaseException as exc:  # every waiter must hear of it, whatever it is
            return [_as_storage_failure(exc)] * len(works)

    def _write_batch(self, works: list[Callable[[Session], Any]]) -> list[_Written | BaseException]:
        """In the writer thread: every work in one transaction, committed once; any failure rolls it all back."""
        assert self._writer_engine is not None
        with Session(self._writer_engine, expire_on_commit=False) as session, session.begin():
            return [_Written(work(session)) for work in works]

    @asynccontextmanager
    async def transaction(self, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        """A session in one transaction; database failures surface as `StorageUnavailable`.

        `write=True` marks a transaction on a hot path that writes: on SQLite it waits its turn
        behind this process's other writers. It must not open another write transaction inside."""
        turn = self._sqlite_writer if write and self._sqlite_writer else nullcontext()
        async with turn, self._session_in_transaction() as session:
            yield session

    @asynccontextmanager
    async def _session_in_transaction(self) -> AsyncIterator[AsyncSession]:
        try:
            async with self.sessions() as session, session.begin():
                yield session
        except IntegrityError:
            raise
        except (OperationalError, DBAPIError, OSError) as exc:
            raise StorageUnavailable(str(exc).splitlines()[0]) from exc

    async def dispose(self) -> None:
        if self._draining is not None:
            with suppress(Exception):
                await self._draining  # what was accepted is written before the connection closes
        await self.engine.dispose()
        if self._writer_thread is not None and self._writer_engine is not None:
            # SingletonThreadPool keeps a connection per thread: close it in the thread that owns it.
            await asyncio.get_running_loop().run_in_executor(self._writer_thread, self._writer_engine.dispose)
            self._writer_thread.shutdown(wait=True)


_Reply = aliased(Message, name="reply")
# Built once: on the hot path of every push, building the expression costs more than running it.
_FIND_REPLY = (
    select(Message.id, _Reply.content)
    .outerjoin(_Reply, (_Reply.reply_to_id == Message.id) & (_Reply.direction == Direction.OUT))
    .where(Message.channel == bindparam("channel"), Message.dedup_key == bindparam("dedup_key"))
    .limit(1)
)


async def find_reply(session: AsyncSession, channel: str, dedup_key: str) -> StoredReply | None:
    return await session.run_sync(stored_reply, channel, dedup_key)


def stored_reply(session: Session, channel: str, dedup_key: str) -> StoredReply | None:
    row = session.execute(_FIND_REPLY, {"channel": channel, "dedup_key": dedup_key}).first()
    return None if row is None else StoredReply(text=row.content)


def insert_row(session: Session, model: type[Base], values: dict[str, Any]) -> int:
    """Insert one row and return its id: a single statement, without the unit of work's flush machinery
    (what a push on the hot path needs; objects that are edited later go through the ORM)."""
    table = model.__table__
    return session.execute(_insert_returning_id(table), values).scalar_one()


@cache
def _insert_returning_id(table: Table) -> Insert:
    return insert(table).returning(table.c.id)


_LATEST_INQUIRY_OF = (
    select(Inquiry)
    .where(
        Inquiry.channel == bindparam("channel"),
        Inquiry.account == bindparam("account"),
        Inquiry.sender == bindparam("sender"),
        (Inquiry.status == InquiryStatus.OPEN)
        | ((Inquiry.status == InquiryStatus.ANSWERED) & (Inquiry.last_message_at >= bindparam("active_since"))),
    )
    .order_by(Inquiry.id.desc())
    .limit(1)
)


def latest_inquiry_of(
    session: Session, channel: str, account: str, sender: str, *, active_since: datetime
) -> Inquiry | None:
    """The conversation a new message belongs to: the open inquiry, or one answered since `active_since`."""
    return session.scalar(
        _LATEST_INQUIRY_OF, {"channel": channel, "account": account, "sender": sender, "active_since": active_since}
    )


async def list_inquiries(
    session: AsyncSession, *, status: str | None = None, department: str | None = None, limit: int | None = None
) -> Sequence[Inquiry]:
    query = select(Inquiry).order_by(Inquiry.due_at, Inquiry.id)
    if status:
        query = query.where(Inquiry.status == status)
    if department:
        query = query.where(Inquiry.department == department)
    if limit:
        query = query.limit(limit)
    return (await session.scalars(query)).all()


async def messages_of(session: AsyncSession, inquiry_id: int) -> Sequence[Message]:
    return (
        await session.scalars(select(Message).where(Message.inquiry_id == inquiry_id).order_by(Message.id))
    ).all()


async def save_faq_entries(
    session: AsyncSession, rows: Sequence[dict[str, Any]], now: datetime, *, replace_all: bool
) -> tuple[int, int]:
    """Write FAQ entries (dicts as `knowledge.faq.entries_to_dicts` makes them). Returns (written, removed)."""
    existing = {record.id: record for record in (await session.scalars(select(FaqRecord))).all()}
    removed = 0
    if replace_all:
        keep = {row["id"] for row in rows}
        for faq_id, record in existing.items():
            if faq_id not in keep:
                await session.delete(record)
                removed += 1
    for row in rows:
        record = existing.get(row["id"]) or FaqRecord(id=row["id"])
        record.question = row["question"]
        record.answer = row["answer"]
        record.alternates = list(row.get("alternates") or [])
        record.department = row.get("department")
        record.tags = list(row.get("tags") or [])
        record.updated_at = now
        session.add(record)
    return len(rows), removed


async def list_alerts(
    session: AsyncSession, *, open_only: bool = False, inquiry_id: int | None = None, limit: int | None = None
) -> Sequence[Any]:
    """Alerts with their inquiries, newest first; `open_only`: of inquiries still waiting for an answer."""
    query = (
        select(AlertRecord, Inquiry)
        .join(Inquiry, Inquiry.id == AlertRecord.inquiry_id)
        .order_by(AlertRecord.fire_at.desc(), AlertRecord.id.desc())
    )
    if open_only:
        query = query.where(Inquiry.status == InquiryStatus.OPEN)
    if inquiry_id is not None:
        query = query.where(AlertRecord.inquiry_id == inquiry_id)
    if limit:
        query = query.limit(limit)
    return (await session.execute(query)).all()
