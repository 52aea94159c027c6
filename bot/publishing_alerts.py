"""The weekly push check's warning to the information centre (R4.3), through the alert machinery the
escalation ladder uses (config.yaml `escalation.contacts` with role info_center; their channels)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import aiohttp

from bot.alerts import build_notifiers, contact_routes
from bot.auth import audit
from bot.config import Settings, environment
from bot.push_plan import WeekCheck
from bot.storage import Database
from escalation.notifiers import Alert, DeliveryResult, deliver

ALERT_KIND = "push_plan"


def week_alert(week: WeekCheck) -> Alert:
    subject = f"【推送提醒】本周（{week.label}）推送不足{week.minimum}次"
    return Alert(subject=subject, body=f"{subject}\n{week.message}\n", inquiry_id=0, kind=ALERT_KIND)


async def warn_info_center(settings: Settings, database: Database, week: WeekCheck, *, now: datetime,
                           env: Mapping[str, str] | None = None) -> list[DeliveryResult]:
    """Send the warning to every info_center contact and record it in the audit log."""
    env = environment() if env is None else env
    routes = [route for route in contact_routes(settings, env) if route.role == "info_center"]
    async with aiohttp.ClientSession() as session:
        notifiers = build_notifiers(settings, env, routes, session)
        results = await deliver(week_alert(week), [route.contact for route in routes], notifiers)
    async with database.transaction() as db_session:
        await audit(db_session, at=now, actor="system", action="push.week_warning",
                    target=f"week:{week.week_start.isoformat()}", published=week.published, planned=week.planned,
                    recipients=[{"name": r.contact.name, "ok": r.ok} for r in results])
    return results
