"""Prometheus metrics: counters the pipeline and edges bump, gauges read from the database at scrape time.

Every application has its own registry, so tests (and several apps in one process) never collide.
Database-derived figures (open, overdue, alerts) are counted at scrape time, so every worker reports
the same truth however many there are.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select

from bot.storage import AlertRecord, Database, Inquiry, InquiryStatus


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter("guanwei_messages", "Inbound messages stored, by channel, kind and severity",
                                ["channel", "kind", "severity"], registry=self.registry)
        self.webhook_seconds = Histogram(
            "guanwei_webhook_seconds", "Time to answer a platform push (WeChat allows 5 s)", ["channel", "status"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0), registry=self.registry,
        )
        self.open_inquiries = Gauge("guanwei_open_inquiries", "Inquiries waiting for an answer, by department",
                                    ["department"], registry=self.registry)
        self.overdue = Gauge("guanwei_overdue_inquiries", "Open inquiries past their deadline",
                             registry=self.registry)
        self.alerts = Gauge("guanwei_alerts", "Reminders, escalations and chases recorded, by kind and status",
                            ["kind", "status"], registry=self.registry)

    def message(self, channel: str, kind: str, severity: str | None) -> None:
        self.messages.labels(channel, kind, severity or "none").inc()

    async def refresh(self, database: Database, now: datetime) -> None:
        async with database.transaction() as session:
            by_department = (await session.execute(
                select(Inquiry.department, func.count()).where(Inquiry.status == InquiryStatus.OPEN)
                .group_by(Inquiry.department)
            )).all()
            overdue = await session.scalar(
                select(func.count()).where(Inquiry.status == InquiryStatus.OPEN, Inquiry.due_at < now)
            )
            alerts = (await session.execute(
                select(AlertRecord.kind, AlertRecord.status, func.count())
                .group_by(AlertRecord.kind, AlertRecord.status)
            )).all()
        self.open_inquiries.clear()
        for department, count in by_department:
            self.open_inquiries.labels(department).set(count)
        self.overdue.set(overdue or 0)
        self.alerts.clear()
        for kind, status, count in alerts:
            self.alerts.labels(kind, status).set(count)

    def exposition(self) -> web.Response:
        response = web.Response(body=generate_latest(self.registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        response.charset = "utf-8"
        return response
