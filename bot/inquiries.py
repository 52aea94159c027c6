"""Inquiries as plain rows for the CLI and (later) the JSON API: times in the bureau's zone, ISO 8601."""

from __future__ import annotations

from typing import Any

from bot import storage
from bot.config import Settings
from bot.replies import inquiry_ref
from bot.storage import Database, Inquiry


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
    }


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
