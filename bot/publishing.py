"""The publishing desk: a post from draft to published with every check the rules ask (R4.3–R5.3, R8, R9).

draft ─submit (R8.2 source, R9 screening)→ submitted ─office review (R5.1: accuracy, completeness,
timeliness, secrecy)→ reviewed ─leader approval (R5.1; R5.2: an important item's 保密审查表 approved
by a leader first)→ approved ─information centre proofreads→ proofread ─push plan (R4.3 1–4 items,
R4.4 window or a reason)→ scheduled ─publish (virus scan again, WeChat + Weibo)→ published, with
one register row per channel (R5.3). A reviewer's "no" returns the post to its department.

Pages and the JSON API call only these functions; each takes the acting user and checks permission
and sight through `bot.access`, and writes every step to the audit log (`bot.auth.audit`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.access import Actor
from bot.auth import audit
from bot.clamd import ClamdScanner, ScannerUnavailable
from bot.media import MediaLimits, MediaVerdict, inspect_media
from bot.publisher import Article, ChannelOutcome, Media, Publisher
from bot.publishing_models import (
    Post,
    PostAttachment,
    PostReview,
    PostStatus,
    PublicationRecord,
    Push,
    PushStatus,
    SecrecyForm,
)
from bot.push_plan import PushRules, WeekCheck, items_problem, week_check, week_of, window_problem
from bot.storage import AuditEntry, Database
from escalation.calendar import BusinessCalendar
from knowledge.screening import Screener

CHECKS = {"accuracy": "准确性", "completeness": "完整性", "timeliness": "时效性", "secrecy": "保密性"}
STATUS_NAMES = {PostStatus.DRAFT: "草稿", PostStatus.SUBMITTED: "待审核", PostStatus.REVIEWED: "待领导审批",
                PostStatus.APPROVED: "待校对", PostStatus.PROOFREAD: "待推送", PostStatus.SCHEDULED: "已排入推送",
                PostStatus.PUBLISHED: "已发布"}
TITLE_MAX, SOURCE_MAX, BODY_MAX = 64, 200, 20000


class NotFound(LookupError):
    """No such post (or push), or not one the actor may see."""


class Refused(ValueError):
    """The step cannot be done as asked; the message says why, in Chinese, for the person."""


@dataclass(frozen=True)
class AttachOutcome:
    verdict: MediaVerdict
    attachment_id: int | None = None
    signature: str | None = None  # the virus clamd found
    scanner_problem: str | None = None  # clamd could not scan: the file is refused

    @property
    def accepted(self) -> bool:
        return self.attachment_id is not None

    @property
    def reason(self) -> str:
        reasons = list(self.verdict.problems)
        if self.signature:
            reasons.insert(0, f"病毒扫描发现威胁（{self.signature}），文件已拒收")
        if self.scanner_problem:
            reasons.insert(0, f"{self.scanner_problem}：文件未经扫描，不能附加")
        return "；".join(reasons)

    def to_dict(self) -> dict[str, Any]:
        scan = {"clean": self.accepted, "signature": self.signature, "problem": self.scanner_problem}
        return {**self.verdict.to_dict(), "accepted": self.accepted, "attachment_id": self.attachment_id,
                "virus_scan": scan, "reason": None if self.accepted else self.reason}


@dataclass
class PostDetail:
    post: Post
    attachments: list[PostAttachment]
    reviews: list[PostReview]
    form: SecrecyForm | None
    push: Push | None
    register: list[PublicationRecord]
    events: list[AuditEntry] = field(default_factory=list)


def _require(actor: Actor, permission: str, what: str) -> None:
    if not actor.may(permission):
        raise PermissionError(what)


async def _visible(session: Any, actor: Actor, post_id: int) -> Post:
    post = await session.get(Post, post_id)
    if post is None or not actor.sees_post(post.department):
        raise NotFound(post_id)
    return post


async def _form_of(session: Any, post_id: int) -> SecrecyForm | None:
    return await session.scalar(select(SecrecyForm).where(SecrecyForm.post_id == post_id))  # type: ignore[no-any-return]


def _status(post: Post, *allowed: str, doing: str) -> None:
    if post.status not in allowed:
        raise Refused(f"该信息当前为“{STATUS_NAMES.get(post.status, post.status)}”，不能{doing}")


def _target(post_id: int) -> str:
    return f"post:{post_id}"


# --------------------------------------------------------------------------- drafts

def _clean_fields(title: str, body: str, source: str) -> tuple[str, str, str]:
    title, body, source = title.strip(), body.strip(), source.strip()
    if not title:
        raise Refused("标题不能为空")
    if len(title) > TITLE_MAX:
        raise Refused(f"标题最多 {TITLE_MAX} 个字")
    if not body:
        raise Refused("正文不能为空")
    if len(body) > BODY_MAX:
        raise Refused(f"正文最多 {BODY_MAX} 个字")
    if not source:
        raise Refused("必须注明信息来源（R8.2）")
    if len(source) > SOURCE_MAX:
        raise Refused(f"信息来源最多 {SOURCE_MAX} 个字")
    return title, body, source


async def create_post(database: Database, actor: Actor, *, title: str, body: str, source: str, department: str,
                      important: bool, departments: dict[str, str], now: datetime, remote: str) -> Post:
    _require(actor, "draft", "draft")
    title, body, source = _clean_fields(title, body, source)
    department = department.strip() or (actor.department or "")
    if department not in departments:
        raise Refused("请选择信息所属部门")
    if not actor.sees_all and department != actor.department:
        raise Refused("只能为本部门起草信息")
    async with database.transaction() as session:
        post = Post(title=title, body=body, source=source, department=department, important=important,
                    status=PostStatus.DRAFT, author=actor.name, created_at=now, updated_at=now, screening=[])
        session.add(post)
        await session.flush()
        await audit(session, at=now, actor=actor.name, action="post.create", target=_target(post.id), remote=remote,
                    title=title, important=important)
    return post


async def update_post(database: Database, actor: Actor, post_id: int, *, title: str, body: str, source: str,
                      important: bool, now: datetime, remote: str) -> Post:
    _require(actor, "draft", "draft")
    title, body, source = _clean_fields(title, body, source)
    async with database.transaction() as session:
        post = await _visible(session, actor, post_id)
        _status(post, PostStatus.DRAFT, doing="修改")
        post.title, post.body, post.source, post.important, post.updated_at = title, body, source, important, now
        await audit(session, at=now, actor=actor.name, action="post.edit", target=_target(post.id), remote=remote,
                    important=important)
    return post


async def attach(database: Database, scanner: ClamdScanner, actor: Actor, post_id: int, filename: str, data: bytes,
                 *, limits: MediaLimits, now: datetime, remote: str) -> AttachOutcome:
    """R8.3: check the file by its content, scan it with clamd, and only then attach it."""
    _require(actor, "draft", "draft")
    filename = (filename or "").replace("\\", "/").rsplit("/", 1)[-1][:200] or "unnamed"
    async with database.transaction() as session:
        post = await _visible(session, actor, post_id)
        _status(post, PostStatus.DRAFT, doing="添加附件")
    verdict = inspect_media(data, filename, limits)
    try:  # every file, even one the rules refuse: a virus is the first thing staff must hear about
        scan = await scanner.scan(data)
    except ScannerUnavailable as exc:
        outcome = AttachOutcome(verdict, scanner_problem=str(exc))
    else:
        outcome = AttachOutcome(verdict, signature=None if scan.clean else scan.signature)
        if scan.clean and verdict.ok:
            async with database.transaction() as session:
                record = PostAttachment(
                    post_id=post_id, filename=filename, kind=verdict.kind, format=verdict.format, size=len(data),
                    duration_seconds=verdict.duration_seconds, sha256=hashlib.sha256(data).hexdigest(),
                    content=data, scanned_by=scan.scanner, scanned_at=now, uploaded_by=actor.name, uploaded_at=now)
                session.add(record)
                await session.flush()
                await audit(session, at=now, actor=actor.name, action="post.attach", target=_target(post_id),
                            remote=remote, file=filename, format=verdict.format, size=len(data))
                return AttachOutcome(verdict, record.id)
    async with database.transaction() as session:
        await audit(session, at=now, actor=actor.name, action="post.attach.refused", target=_target(post_id),
                    remote=remote, file=filename, size=len(data), format=verdict.format, reason=outcome.reason)
    return outcome


async def remove_attachment(database: Database, actor: Actor, post_id: int, attachment_id: int, *, now: datetime,
                            remote: str) -> None:
    _require(actor, "draft", "draft")
    async with database.transaction() as session:
        post = await _visible(session, actor, post_id)
        _status(post, PostStatus.DRAFT, doing="删除附件")
        record = await session.get(PostAttachment, attachment_id)
        if record is None or record.post_id != post_id:
            raise NotFound(attachment_id)
        await session.delete(record)
        await audit(session, at=now, actor=actor.name, action="post.detach", target=_target(post_id), remote=remote,
                    file=record.filename)


async def submit(database: Database, screener: Screener, actor: Actor, post_id: int, *, now: datetime,
                 remote: str) -> Post:
    """Send to the office's review. R9: blocking findings must be fixed first; warnings go to the reviewer."""
    _require(actor, "draft", "draft")
    async with database.transaction() as session:
        post = await _visible(session, actor, post_id)
        _status(post, PostStatus.DRAFT, doing="提交审核")
        verdict = screener.screen(f"{post.title}\n{post.body}")
        if verdict.blocked:
            raise Refused(f"内容审查未通过（R9），请修改后再提交：{verdict.summary}")
        post.screening = [finding.to_dict() for finding in verdict.findings]
        post.status, post.submitted_at, post.updated_at = PostStatus.SUBMITTED, now, now
        await audit(session, at=now, actor=actor.name, action="post.submit", target=_target(post.id), remote=remote,
                    screening=[f.category for f in verdict.findings])
    return post


# --------------------------------------------------------------------------- review and approval

async def review(database: Database, actor: Actor, post_id: int, checks: dict[str, tuple[bool | None, str]], *,
                 now: datetime, remote: str) -> PostReview:
    """R5.1: the office records yes/no and a comment for each check; any "no" returns the post."""
    _require(actor, "review", "review")
    recorded: dict[str, dict[str, Any]] = {}
    for key, label in CHECKS.items():
        ok, comment = checks.get(key, (None, ""))
        if ok is None:
            raise Refused(f"请对“{label}”选择通过或不通过")
        if not ok and not comment.strip():
            raise Refused(f"“{label}”不通过时须填写意见")
        recorded[key] = {"ok": ok, "comment": comment.strip()[:1000]}
    passed = all(item["ok"] for item in recorded.values())
    async with database.transaction() as session:
        post = await _visible(session, actor, post_id)
        _status(post, PostStatus.SUBMITTED, doing="审核")
        if post.author == actor.name:
            raise Refused("起草人不能审核自己的信息")
        record = PostReview(post_id=post.id, reviewer=actor.name, at=now, checks=recorded, passed=passed)
        session.add(record)
        post.status, post.updated_at = (PostStatus.REVIEWED if passed else PostStatus.DRAFT), now
        await audit(session, at=now, actor=actor.name, action="post.review" if passed else "post.return",
                    target=_target(post.id), remote=remote, checks=recorded)
    return record


async def fill_secrecy_form(database: Database, actor: Actor, post_id: int, *, contains_secrets: bool | None,
                            opinion: str, now: datetime, remote: str) -> SecrecyForm:
    """保密审查表 (R5.2) for an important item; filled by its department or the office's reviewer."""
    if not (actor.may("draft") or actor.may("review")):
        raise PermissionError("draft")
    if contains_secrets is None:
        raise Refused("请选择是否涉及国家秘密、工作秘密或敏感信息")
    if not opinion.strip():
        raise Refused("请填写保密审查意见")
    async with database.transaction() as session:
        post = await _visible(session, actor, post_id)
        if not post.important:
            raise Refused("该信息未标为重要信息，无需填写保密审查表")
        _status(post, PostStatus.DRAFT, PostStatus.SUBMITTED, PostStatus.REVIEWED, doing="填写保密审查表")
        form = await _form_of(session, post.id)
        if form is None:
            form = SecrecyForm(post_id=post.id)
            session.add(form)
        form.contains_secrets, form.opinion = contains_secrets, opinion.strip()[:2000]
        form.filled_by, form.filled_at = actor.name, now
        form.approved_by, form.approved_at, form.leader_opinion = None, None, ""  # a changed form is approved anew
        await audit(session, at=now, actor=actor.name, action="secrecy.fill", target=_target(post.id), remote=remote,
                    contains_secrets=contains_secrets)
    return form


async def approve_secrecy_form(database: Database, actor: Actor, post_id: int, *, opinion: str, now: datetime,
                               remote: str) -> SecrecyForm:
    _require(actor, "approve", "approve")
    async with database.transaction() as session:
        post = await _visible(session, actor, post_id)
        form = await _form_of(session, post.id)
        if form is None:
            raise Refused("尚未填写保密审查表")
        if form.contains_secrets:
            raise Refused("保密审查表载明涉及秘密或敏感信息：不得公开发布，请退回部门修改")
        form.approved_by, form.approved_at, form.leader_opinion = actor.name, now, opinion.strip()[:2000]
        await audit(session, at=now, actor=actor.name, action="secrecy.approve", target=_target(post.id),
                    remote=remote, opinion=form.leader_opinion)
    return form


async def approve(database: Database, actor: Actor, post_id: int, *, note: str, now: datetime, remote: str) -> Post:
    """A leader approves (R5.1); an important item needs its secrecy form approved first (R5.2)."""
    _require(actor, "approve", "approve")
    async with database.transaction() as session:
        post = await _visible(session, actor, post_id)
        _status(post, PostStatus.REVIEWED, doing="审批")
        if post.important:
            form = await _form_of(session, post.id)
            if form is None or form.approved_at is None:
                raise Refused("重要信息须先有经领导审批的保密审查表（R5.2）")
        post.status, post.approved_by, post.approved_at = PostStatus.APPROVED, actor.name, now
        post.approval_note, post.updated_at = note.strip()[:1000], now
        await audit(session, at=now, actor=actor.name, action="post.approve", target=_target(post.id), remote=remote,
                    note=post.approval_note)
    return post


async def reject(database: Database, actor: Actor, post_id: int, *, note: str, now: datetime, remote: str) -> Post:
    """A leader (or the information centre at proofreading) sends the post back to its department."""
    _require(actor, "return", "return")
    if not note.strip():
        raise Refused("退回须说明理由")
    async with database.transaction() as session:
        post = await _visible(session, actor, post_id)
        allowed = (PostStatus.REVIEWED,) if actor.may("approve") else (PostStatus.APPROVED, PostStatus.PROOFREAD)
        _status(post, *allowed, doing="退回")
        post.status, post.updated_at = PostStatus.DRAFT, now
        post.approved_by = post.approved_at = post.proofread_by = post.proofread_at = None
        await audit(session, at=now, actor=actor.name, action="post.return", target=_target(post.id), remote=remote,
                    reason=note.strip()[:1000])
    return post


async def proofread(database: Database, actor: Actor, post_id: int, *, note: str, now: datetime,
                    remote: str) -> Post:
    """The information centre proofreads the approved item (R4.4) before it joins a push."""
    _require(actor, "publish", "publish")
    async with database.transaction() as session:
        post = await _visible(session, actor, post_id)
        _status(post, PostStatus.APPROVED, doing="校对")
        post.status, post.proofread_by, post.proofread_at = PostStatus.PROOFREAD, actor.name, now
        post.proofread_note, post.updated_at = note.strip()[:1000], now
        await audit(session, at=now, actor=actor.name, action="post.proofread", target=_target(post.id),
                    remote=remote, note=post.proofread_note)
    return post


# --------------------------------------------------------------------------- pushes

async def plan_push(database: Database, actor: Actor, post_ids: Sequence[int], *, planned_at: datetime, reason: str,
                    calendar: BusinessCalendar, rules: PushRules, now: datetime, remote: str) -> Push:
    """R4.3: 1–4 proofread items; R4.4: in the workday window, or with a recorded reason."""
    _require(actor, "publish", "publish")
    ids = list(dict.fromkeys(post_ids))
    problem = items_problem(len(ids), rules)
    if problem:
        raise Refused(problem)
    outside = window_problem(planned_at, calendar, rules)
    reason = reason.strip()[:1000]
    if outside and not reason:
        raise Refused(f"{outside}：窗口外推送须填写理由（R4.4）")
    async with database.transaction() as session:
        posts = [await _visible(session, actor, post_id) for post_id in ids]
        for post in posts:
            if post.status != PostStatus.PROOFREAD:
                raise Refused(f"“{post.title}”当前为“{STATUS_NAMES.get(post.status)}”，只有已校对的信息可以排入推送")
        push = Push(planned_at=planned_at, outside_window_reason=reason if outside else "", status=PushStatus.PLANNED,
                    created_by=actor.name, created_at=now)
        session.add(push)
        await session.flush()
        for post in posts:
            post.status, post.push_id, post.updated_at = PostStatus.SCHEDULED, push.id, now
        await audit(session, at=now, actor=actor.name, action="push.plan", target=f"push:{push.id}", remote=remote,
                    posts=ids, planned_at=planned_at.isoformat(), outside_window=outside, reason=reason or None)
    return push


async def cancel_push(database: Database, actor: Actor, push_id: int, *, now: datetime, remote: str) -> None:
    _require(actor, "publish", "publish")
    async with database.transaction() as session:
        push = await session.get(Push, push_id)
        if push is None:
            raise NotFound(push_id)
        if push.status != PushStatus.PLANNED:
            raise Refused("已发布（或部分发布）的推送不能取消")
        for post in (await session.scalars(select(Post).where(Post.push_id == push.id))).all():
            post.status, post.push_id, post.updated_at = PostStatus.PROOFREAD, None, now
        await session.delete(push)
        await audit(session, at=now, actor=actor.name, action="push.cancel", target=f"push:{push_id}", remote=remote)


@dataclass(frozen=True)
class PushOutcome:
    push: Push
    results: dict[int, list[ChannelOutcome]]  # post id → one outcome per channel

    @property
    def complete(self) -> bool:
        return self.push.status == PushStatus.PUBLISHED


def _trail(post: Post, reviews: Sequence[PostReview], form: SecrecyForm | None, tz: Any) -> dict[str, Any]:
    def when(t: datetime | None) -> str | None:
        return t.astimezone(tz).isoformat() if t else None

    last = reviews[-1] if reviews else None
    return {
        "author": post.author, "submitted_at": when(post.submitted_at),
        "review": {"by": last.reviewer, "at": when(last.at), "checks": last.checks} if last else None,
        "secrecy_form": {"filled_by": form.filled_by, "filled_at": when(form.filled_at),
                         "approved_by": form.approved_by, "approved_at": when(form.approved_at),
                         "opinion": form.opinion, "leader_opinion": form.leader_opinion} if form else None,
        "approved_by": post.approved_by, "approved_at": when(post.approved_at),
        "proofread_by": post.proofread_by, "proofread_at": when(post.proofread_at),
        "screening": [f.get("category") for f in post.screening or []],
    }


async def publish_push(database: Database, publisher: Publisher, scanner: ClamdScanner, actor: Actor, push_id: int,
                       *, reason: str, channels: Sequence[str], departments: dict[str, str],
                       calendar: BusinessCalendar, rules: PushRules, now: datetime, remote: str) -> PushOutcome:
    """Publish every item of the push on every channel not yet done; record each success in the register.

    Refused before anything is sent: outside the window without a reason (R4.4), an important item
    without its approved secrecy form (R5.2), or an attachment clamd cannot scan or finds infected (R8.3)."""
    _require(actor, "publish", "publish")
    reason = reason.strip()[:1000]
    async with database.transaction() as session:
        push = await session.get(Push, push_id)
        if push is None:
            raise NotFound(push_id)
        if push.status == PushStatus.PUBLISHED:
            raise Refused("该推送已发布")
        outside = window_problem(now, calendar, rules)
        if outside and not (reason or push.outside_window_reason):
            raise Refused(f"现在是{outside}：窗口外发布须填写理由（R4.4）")
        posts = list((await session.scalars(select(Post).where(Post.push_id == push.id).order_by(Post.id))).all())
        if problem := items_problem(len(posts), rules):
            raise Refused(problem)
        done = {(r.post_id, r.channel) for r in (await session.scalars(
            select(PublicationRecord).where(PublicationRecord.push_id == push.id))).all()}
        prepared = []
        for post in posts:
            form = await _form_of(session, post.id)
            if post.important and (form is None or form.approved_at is None):
                raise Refused(f"“{post.title}”是重要信息，缺少经领导审批的保密审查表（R5.2），不能发布")
            if post.approved_at is None or post.proofread_at is None:
                raise Refused(f"“{post.title}”尚未经领导审批和信息中心校对，不能发布")
            attachments = list((await session.scalars(
                select(PostAttachment).where(PostAttachment.post_id == post.id).order_by(PostAttachment.id))).all())
            reviews = list((await session.scalars(
                select(PostReview).where(PostReview.post_id == post.id).order_by(PostReview.id))).all())
            prepared.append((post, attachments, _trail(post, reviews, form, rules.tz)))
    for post, attachments, _ in prepared:  # signatures change: scan again right before publishing
        for attachment in attachments:
            try:
                scan = await scanner.scan(attachment.content)
            except ScannerUnavailable as exc:
                raise Refused(f"{exc}：附件未经病毒扫描，暂停发布") from None
            if not scan.clean:
                raise Refused(f"“{post.title}”的附件 {attachment.filename} 扫描发现威胁（{scan.signature}），不能发布")
    results: dict[int, list[ChannelOutcome]] = {}
    for post, attachments, trail in prepared:
        article = Article(post.title, post.body, post.source, departments.get(post.department, post.department),
                          tuple(Media(a.filename, a.kind, a.format, a.content) for a in attachments))
        for channel in channels:
            if (post.id, channel) in done:
                continue
            outcome = await publisher.publish(channel, article)
            results.setdefault(post.id, []).append(outcome)
            if outcome.ok:
                done.add((post.id, channel))
                async with database.transaction() as session:
                    session.add(PublicationRecord(
                        post_id=post.id, push_id=push_id, channel=channel, platform_id=outcome.platform_id or "",
                        title=post.title, source=post.source, department=post.department, important=post.important,
                        published_at=now, published_by=actor.name, trail=trail))
    async with database.transaction() as session:
        push = await session.get(Push, push_id)
        assert push is not None
        complete = True
        for post, _, _ in prepared:
            record = await session.get(Post, post.id)
            assert record is not None
            if all((post.id, channel) in done for channel in channels):
                record.status, record.published_at, record.updated_at = PostStatus.PUBLISHED, now, now
            else:
                complete = False
        push.status = PushStatus.PUBLISHED if complete else PushStatus.PARTIAL
        push.published_by, push.published_at = actor.name, now
        if outside and reason:
            push.outside_window_reason = reason
        failures = {str(pid): [o.reason for o in outs if not o.ok] for pid, outs in results.items()}
        await audit(session, at=now, actor=actor.name, action="push.publish", target=f"push:{push_id}", remote=remote,
                    status=push.status, outside_window=outside, reason=reason or push.outside_window_reason or None,
                    failures={k: v for k, v in failures.items() if v})
    return PushOutcome(push, results)


# --------------------------------------------------------------------------- reading

async def desk(database: Database, actor: Actor, *, status: str | None = None) -> list[Post]:
    _require(actor, "desk", "desk")
    async with database.transaction() as session:
        query = select(Post).order_by(Post.updated_at.desc(), Post.id.desc()).limit(500)
        if status:
            query = query.where(Post.status == status)
        if not (actor.sees_all or actor.may("review")):
            query = query.where(Post.department == actor.department)
        return list((await session.scalars(query)).all())


async def post_detail(database: Database, actor: Actor, post_id: int) -> PostDetail:
    _require(actor, "desk", "desk")
    async with database.transaction() as session:
        post = await _visible(session, actor, post_id)
        attachments = list((await session.scalars(
            select(PostAttachment).where(PostAttachment.post_id == post_id).order_by(PostAttachment.id))).all())
        reviews = list((await session.scalars(
            select(PostReview).where(PostReview.post_id == post_id).order_by(PostReview.id))).all())
        form = await _form_of(session, post_id)
        push = await session.get(Push, post.push_id) if post.push_id else None
        register = list((await session.scalars(
            select(PublicationRecord).where(PublicationRecord.post_id == post_id))).all())
        events = list((await session.scalars(
            select(AuditEntry).where(AuditEntry.target == _target(post_id)).order_by(AuditEntry.at, AuditEntry.id)
        )).all())
    return PostDetail(post, attachments, reviews, form, push, register, events)


async def pushes(database: Database, actor: Actor, *, since: datetime) -> list[tuple[Push, list[Post]]]:
    _require(actor, "desk", "desk")
    async with database.transaction() as session:
        found = list((await session.scalars(
            select(Push).where((Push.planned_at >= since) | (Push.status != PushStatus.PUBLISHED))
            .order_by(Push.planned_at.desc()).limit(200))).all())
        posts = list((await session.scalars(select(Post).where(Post.push_id.in_([p.id for p in found])))).all())
    return [(push, [post for post in posts if post.push_id == push.id]) for push in found]


async def current_week(database: Database, *, calendar: BusinessCalendar, rules: PushRules, now: datetime) -> WeekCheck:
    start, end = week_of(now, rules)
    async with database.transaction() as session:
        rows = (await session.execute(
            select(Push.planned_at, Push.published_at).where(
                ((Push.planned_at >= start) & (Push.planned_at < end))
                | ((Push.published_at >= start) & (Push.published_at < end)))
        )).all()
    return week_check(now, [(planned, published) for planned, published in rows], calendar, rules)


async def register_rows(database: Database, *, start: datetime | None = None,
                        end: datetime | None = None) -> list[PublicationRecord]:
    async with database.transaction() as session:
        query = select(PublicationRecord).order_by(PublicationRecord.published_at, PublicationRecord.id)
        if start is not None:
            query = query.where(PublicationRecord.published_at >= start)
        if end is not None:
            query = query.where(PublicationRecord.published_at < end)
        return list((await session.scalars(query)).all())
