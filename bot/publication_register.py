"""信息发布登记表 (R5.3): the register of published items with their review trail, as a table for the
monthly report, the console and an xlsx export (the same `bot.report.Table` machinery)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from bot.publishing import CHECKS, register_rows
from bot.publishing_models import PublicationRecord
from bot.report import DATETIME, INT, Column, ReportContext, Table, tables_xlsx_bytes
from bot.storage import Database

CHANNEL_NAMES = {"wechat": "微信公众号", "weibo": "微博"}
COLUMNS = (
    Column("序号", INT), Column("发布时间", DATETIME), Column("渠道"), Column("标题", wrap=True),
    Column("信息来源", wrap=True), Column("部门"), Column("重要信息"), Column("起草人"),
    Column("办公室审核", wrap=True), Column("保密审查表", wrap=True), Column("审批领导"), Column("信息中心校对"),
    Column("发布人"), Column("推送编号", INT), Column("平台编号"),
)


def _review_text(trail: dict) -> str:  # type: ignore[type-arg]
    review = trail.get("review") or {}
    if not review:
        return "—"
    checks = review.get("checks") or {}
    parts = [f"{label}{'✓' if (checks.get(key) or {}).get('ok') else '✗'}" for key, label in CHECKS.items()]
    return f"{review.get('by')}（{' '.join(parts)}）"


def _form_text(trail: dict, important: bool) -> str:  # type: ignore[type-arg]
    form = trail.get("secrecy_form")
    if not form:
        return "不需要" if not important else "缺"
    return f"{form.get('filled_by')}填写，{form.get('approved_by') or '未'}审批"


def register_table(records: Sequence[PublicationRecord], departments: dict[str, str]) -> Table:
    rows = []
    for n, r in enumerate(records, 1):
        trail = r.trail or {}
        rows.append((n, r.published_at, CHANNEL_NAMES.get(r.channel, r.channel), r.title, r.source,
                     departments.get(r.department, r.department), "是" if r.important else "否",
                     trail.get("author") or "", _review_text(trail), _form_text(trail, r.important),
                     trail.get("approved_by") or "", trail.get("proofread_by") or "", r.published_by, r.push_id,
                     r.platform_id))
    return Table("publications", "信息发布登记", COLUMNS, rows,
                 note="每条信息每个渠道一行，发布成功时自动登记（R5.3）；审核栏为局办公室对准确性、完整性、时效性、保密性的审查结论。")


async def month_register_table(database: Database, ctx: ReportContext, start: datetime, end: datetime) -> Table:
    return register_table(await register_rows(database, start=start, end=end), ctx.departments)


def register_xlsx(records: Sequence[PublicationRecord], departments: dict[str, str], tz: tzinfo, *,
                  bureau: str) -> bytes:
    return tables_xlsx_bytes([register_table(records, departments)], tz, title=f"{bureau}信息发布登记表")
