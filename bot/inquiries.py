"""Inquiries as plain rows for the CLI and (later) the JSON API: times in the bureau's zone, ISO 8601."""

from __future__ import annotations

from typing import Any

from bot import storage
from bot.config import Settings
from bot.replies import inquiry_ref
from bot.storage import AlertRecord, Database, Inquiry


def inquiry_row(inquiry: Inquiry, settings: Settings) -> dict[str, Any]:
    tz = settings.tz
    return {
        "id": inquiry.id,
        "ref": inquiry_ref(inquiry.id),
        "channel": inquiry.channel,
        "severity": inquiry.severity,
        "department": inquiry.department,
        "department_name": settings.department_name(inquiry.department),
        "department_confidence": round(inquiry.department_confidence, 2),
        "status": inquiry.status,
        "received_at": inquiry.received_at.astimezone(tz).isoformat(),
        "due_at": inquiry.due_at.astimezone(tz).isoformat(),
        "score": round(inquiry.score, 2),
        "matched": list(inquiry.matched),
        "summary": inquiry.summary,
        "answered_at": inquiry.answered_at.astimezone(tz).isoformat() if inquiry.answered_at else None,
        "answered_by": inquiry.answered_by,
        "faq": inquiry.faq_id,
        "cycle": inquiry.cycle,
        "escalation_level": inquiry.escalation_level,
    }


def alert_row(record: AlertRecord, inquiry: Inquiry, settings: Settings) -> dict[str, Any]:
    tz = settings.tz
    return {
        "id": record.id,
        "inquiry_id": inquiry.id,
        "inquiry_ref": inquiry_ref(inquiry.id),
        "kind": record.kind,
        "level": record.level,
        "key": record.key,
        "department": inquiry.department,
        "severity": inquiry.severity,
        "inquiry_status": inquiry.status,
        "fire_at": record.fire_at.astimezone(tz).isoformat(),
        "recorded_at": record.recorded_at.astimezone(tz).isoformat(),
        "delivered_at": record.delivered_at.astimezone(tz).isoformat() if record.delivered_at else None,
        "status": record.status,
        "by": record.by,
        "note": record.note,
        "recipients": record.recipients,
    }


async def alert_rows(
    database: Database, settings: Settings, *, open_only: bool = False, limit: int | None = None
) -> list[dict[str, Any]]:
    async with database.transaction() as session:
        found = await storage.list_alerts(session, open_only=open_only, limit=limit)
        return [alert_row(record, inquiry, settings) for record, inquiry in found]


async def inquiry_rows(
    database: Database,
    settings: Settings,
    *,
    status: str | None = None,
    department: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    async with database.transaction() as session:
        found = await storage.list_inquiries(session, status=status, department=department, limit=limit)
        return [inquiry_row(inquiry, settings) for inquiry in found]
