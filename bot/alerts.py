"""Alert texts for staff, and the scheduler assembled from configuration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

import aiohttp

from bot.config import Settings, environment
from bot.logs import mask_text
from bot.replies import format_due, inquiry_ref
from bot.storage import AlertKind, AlertRecord, AlertStatus, Database, Inquiry, InquiryStatus
from escalation.calendar import BusinessCalendar
from escalation.ladder import LadderPolicy
from escalation.notifiers import (
    Alert,
    Contact,
    EmailNotifier,
    LogNotifier,
    Notifier,
    WeChatAPIClient,
    WeChatTemplateNotifier,
    WeComRobotNotifier,
)
from escalation.scheduler import ContactRoute, LeaderLock, Scheduler


def ladder_policy(settings: Settings) -> LadderPolicy:
    return settings.file.escalation.ladder()


def contact_routes(settings: Settings, env: Mapping[str, str]) -> list[ContactRoute]:
    """Contacts with their addresses; those given as `address_env` are read from the environment."""
    from bot.config import ConfigError

    routes = []
    for n, contact in enumerate(settings.file.escalation.contacts):
        address = contact.address or ""
        if contact.address_env:
            address = env.get(contact.address_env, "").strip()
            if not address:
                raise ConfigError(f"{contact.address_env}: not set (escalation.contacts[{n}] {contact.name})")
        if contact.department is not None and contact.department not in settings.departments:
            raise ConfigError(f"escalation.contacts[{n}].department: unknown department {contact.department!r}")
        routes.append(ContactRoute(Contact(contact.name, contact.channel, address), contact.role, contact.department))
    return routes


def describe_alert(settings: Settings, inquiry: Inquiry, record: AlertRecord, policy: LadderPolicy) -> Alert:
    """A short Chinese alert; phone and ID-card numbers masked, as it may travel through third parties."""
    ref = inquiry_ref(inquiry.id)
    due = format_due(inquiry.due_at, record.fire_at, settings.tz)
    department = settings.department_name(inquiry.department)
    urgency = "【紧急】" if inquiry.severity == "critical" else ""
    if record.kind == AlertKind.ESCALATION and record.level:
        rung = policy.rung(record.level)
        overdue = record.fire_at >= inquiry.due_at
        subject = f"{urgency}【逐级上报·{rung.name}】留言{ref}" + ("已超时未答复" if overdue else "须1小时内响应")
    elif record.kind == AlertKind.CHASE:
        subject = f"{urgency}【催办】信息中心催办留言{ref}（{department}）"
    else:
        subject = f"{urgency}【催办提醒】留言{ref}将于{due}到期"
    body = (
        f"{subject}\n承办：{department}\n时限：{due}\n"
        f"内容：{mask_text(inquiry.summary[:120])}\n"
        + (f"命中：{'、'.join(inquiry.matched[:6])}\n" if inquiry.matched else "")
        + (f"说明：{record.note}\n" if record.note else "")
    )
    return Alert(subject=subject, body=body, inquiry_id=inquiry.id, kind=record.kind, rung=record.level)


def build_notifiers(
    settings: Settings, env: Mapping[str, str], routes: list[ContactRoute], session: aiohttp.ClientSession
) -> dict[str, Notifier]:
    """One notifier per channel the contacts use; a channel's settings are checked only if it is used."""
    from bot.config import ConfigError

    used = {route.contact.channel for route in routes}
    notifiers: dict[str, Notifier] = {"log": LogNotifier()}
    if "wecom_robot" in used:
        notifiers["wecom_robot"] = WeComRobotNotifier(session)
    if "email" in used:
        mail = settings.file.notifiers.email
        notifiers["email"] = EmailNotifier(
            mail.host, mail.port, sender=mail.sender, starttls=mail.starttls, use_tls=mail.use_tls,
            username=env.get("GUANWEI_SMTP_USER") or None, password=env.get("GUANWEI_SMTP_PASSWORD") or None,
        )
    if "wechat_template" in used:
        template = settings.file.notifiers.wechat_template
        secret = env.get("GUANWEI_WECHAT_APPSECRET", "").strip()
        if not secret or settings.wechat is None:
            raise ConfigError("GUANWEI_WECHAT_APPSECRET: needed by contacts whose channel is wechat_template")
        if not template.template_id:
            raise ConfigError("notifiers.wechat_template.template_id: needed by wechat_template contacts")
        appid = settings.wechat.appid
        notifiers["wechat_template"] = WeChatTemplateNotifier(
            lambda: WeChatAPIClient(appid, secret, api_base_url=template.api_base_url), template.template_id
        )
    return notifiers


def build_scheduler(
    settings: Settings,
    database: Database,
    session: aiohttp.ClientSession,
    *,
    clock: Callable[[], datetime],
    env: Mapping[str, str] | None = None,
    lock: LeaderLock | None = None,
) -> Scheduler:
    env = environment() if env is None else env
    routes = contact_routes(settings, env)
    policy = ladder_policy(settings)
    return Scheduler(
        database,
        BusinessCalendar(settings.reply_hours),
        policy,
        routes,
        build_notifiers(settings, env, routes, session),
        lambda inquiry, record, policy_: describe_alert(settings, inquiry, record, policy_),
        clock=clock,
        lock=lock,
        interval_seconds=settings.file.escalation.sweep_interval_seconds,
    )


async def record_chase(database: Database, inquiry_id: int, *, by: str, note: str, now: datetime) -> AlertRecord:
    """催办 by hand (R7.3b): recorded now, delivered by the next sweep to the department."""
    async with database.transaction() as session:
        inquiry = await session.get(Inquiry, inquiry_id)
        if inquiry is None:
            raise LookupError(f"no inquiry {inquiry_id}")
        if inquiry.status != InquiryStatus.OPEN:  # as the console refuses it: nobody is late on an answered one
            raise ValueError(f"inquiry {inquiry_id} is {inquiry.status}: nothing to chase")
        record = AlertRecord(
            inquiry_id=inquiry_id, key=f"chase:{now.timestamp():.6f}", kind=AlertKind.CHASE, level=None,
            fire_at=now, recorded_at=now, by=by, note=note, status=AlertStatus.PENDING, recipients=[],
        )
        session.add(record)
    return record
