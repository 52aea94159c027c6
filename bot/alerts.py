"""Alert texts for staff, and the scheduler assembled from configuration."""

from __future__ import annotations

from collections.abc import Mapping

from bot.config import Settings
from bot.logs import mask_text
from bot.replies import format_due, inquiry_ref
from bot.storage import AlertKind, AlertRecord, Inquiry
from escalation.ladder import LadderPolicy, Rung
from escalation.notifiers import Alert, Contact
from escalation.scheduler import ContactRoute


def ladder_policy(settings: Settings) -> LadderPolicy:
    config = settings.file.escalation
    rungs = tuple(
        Rung(level, r.name, tuple(r.notify), r.timeout_minutes, r.critical_timeout_minutes)
        for level, r in enumerate(config.rungs, 1)
    )
    return LadderPolicy(rungs, tuple(config.reminders_at), critical_start_level=config.critical_start_rung)


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
