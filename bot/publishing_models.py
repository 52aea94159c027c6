"""Storage models of the publishing desk (R4.3–R5.3, R8): posts, attachments, reviews, secrecy forms,
pushes and the publication register. They share `bot.storage.Base`, so migrations and tests see them
wherever this module is imported (bot.migrations.env, bot.app, tests.conftest)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage import AwareDateTime, Base


class PostStatus:
    DRAFT = "draft"  # being written; also after the reviewer returned it
    SUBMITTED = "submitted"  # waiting for the office's review (R5.1)
    REVIEWED = "reviewed"  # the four checks passed: waiting for a leader
    APPROVED = "approved"  # a leader approved (and, if important, the secrecy form): the info centre proofreads
    PROOFREAD = "proofread"  # ready for a push
    SCHEDULED = "scheduled"  # in a planned push
    PUBLISHED = "published"
    ALL = (DRAFT, SUBMITTED, REVIEWED, APPROVED, PROOFREAD, SCHEDULED, PUBLISHED)


class Post(Base):
    """One item for the account: written by a department, reviewed, approved, proofread, pushed."""

    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(200))  # R8.2: where the information comes from
    department: Mapped[str] = mapped_column(String(32), index=True)
    important: Mapped[bool] = mapped_column(Boolean, default=False)  # R5.2: needs a secrecy form
    status: Mapped[str] = mapped_column(String(16), default=PostStatus.DRAFT, index=True)
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime)
    updated_at: Mapped[datetime] = mapped_column(AwareDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    screening: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # R9 findings at submission
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    approval_note: Mapped[str] = mapped_column(Text, default="")
    proofread_by: Mapped[str | None] = mapped_column(String(64))
    proofread_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    proofread_note: Mapped[str] = mapped_column(Text, default="")
    push_id: Mapped[int | None] = mapped_column(ForeignKey("pushes.id"), index=True)
    published_at: Mapped[datetime | None] = mapped_column(AwareDateTime)


class PostAttachment(Base):
    """A media file that passed R8.3 and the virus scan. Refused files are never stored."""

    __tablename__ = "post_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(8))  # image | voice | video
    format: Mapped[str] = mapped_column(String(8))
    size: Mapped[int] = mapped_column(Integer)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    scanned_by: Mapped[str] = mapped_column(String(255))
    scanned_at: Mapped[datetime] = mapped_column(AwareDateTime)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(AwareDateTime)


class PostReview(Base):
    """The office's review (R5.1): accuracy, completeness, timeliness, secrecy — each yes/no + comment."""

    __tablename__ = "post_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"), index=True)
    reviewer: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(AwareDateTime)
    checks: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"accuracy": {"ok": true, "comment": ""}, …}
    passed: Mapped[bool] = mapped_column(Boolean)


class SecrecyForm(Base):
    """保密审查表 (R5.2): filled for an important item, approved by a leader before it may be published."""

    __tablename__ = "secrecy_forms"
    __table_args__ = (UniqueConstraint("post_id", name="uq_secrecy_forms_post"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"))
    contains_secrets: Mapped[bool] = mapped_column(Boolean)  # 是否涉及国家秘密、工作秘密或敏感信息
    opinion: Mapped[str] = mapped_column(Text)  # 审查意见
    filled_by: Mapped[str] = mapped_column(String(64))
    filled_at: Mapped[datetime] = mapped_column(AwareDateTime)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    leader_opinion: Mapped[str] = mapped_column(Text, default="")


class PushStatus:
    PLANNED = "planned"
    PUBLISHED = "published"
    PARTIAL = "partial"  # some item or channel failed: publish again to retry what is missing
    ALL = (PLANNED, PUBLISHED, PARTIAL)


class Push(Base):
    """One push (群发/推送) of 1–4 items (R4.3), planned in the workday window 10:00–12:00 (R4.4)."""

    __tablename__ = "pushes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    planned_at: Mapped[datetime] = mapped_column(AwareDateTime, index=True)
    outside_window_reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=PushStatus.PLANNED, index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime)
    published_by: Mapped[str | None] = mapped_column(String(64))
    published_at: Mapped[datetime | None] = mapped_column(AwareDateTime)


class PublicationRecord(Base):
    """信息发布登记表 (R5.3): one row per item and channel, written when the platform accepted it."""

    __tablename__ = "publication_register"
    __table_args__ = (UniqueConstraint("post_id", "channel", name="uq_publication_register_post_channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"), index=True)
    push_id: Mapped[int] = mapped_column(ForeignKey("pushes.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    platform_id: Mapped[str] = mapped_column(String(128))  # WeChat publish_id / Weibo status id
    title: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(32))
    important: Mapped[bool] = mapped_column(Boolean)
    published_at: Mapped[datetime] = mapped_column(AwareDateTime, index=True)
    published_by: Mapped[str] = mapped_column(String(64))
    trail: Mapped[dict[str, Any]] = mapped_column(JSON)  # who wrote, reviewed, approved, proofread, when
