"""The publishing desk over real HTTP (API): review, secrecy form, approval, media, push plan, publishing to the
fake platform, register, monthly report (R4.3, R4.4, R5.1–R5.3, R8.2, R8.3, R9)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.auth import add_user
from bot.clamd import ClamdScanner
from bot.config import Settings
from bot.fake_platform import FAKE_PLATFORM
from bot.push_plan import PushRules, week_check
from bot.storage import AuditEntry, Database
from escalation.calendar import BusinessCalendar
from handlers.publishing import DESK, build_publisher
from tests import media_fixtures as m
from tests.clamd_support import clamd_socket, eicar  # noqa: F401  (clamd_socket: a fixture)
from tests.conftest import Clock, shanghai
from tests.test_console import APPSECRET, PASSWORD, WEIBO_TOKEN, Console, api_login, console  # noqa: F401  (console: a fixture)

MB = 1024 * 1024


@dataclass
class Desk:
    client: TestClient
    platform: TestClient
    database: Database
    clock: Clock
    tokens: dict[str, dict[str, str]]

    async def call(self, who: str, method: str, path: str, json: object = None, **kw: object) -> tuple[int, object]:
        if who not in self.tokens:
            self.tokens[who] = await api_login(self.client, who)
        response = await self.client.request(method, path, json=json, headers=self.tokens[who], **kw)
        body = await response.json() if response.content_type == "application/json" else await response.read()
        return response.status, body

    async def attach(self, who: str, post_id: int, name: str, data: bytes) -> tuple[int, dict]:  # type: ignore[type-arg]
        status, body = await self.call(who, "POST", f"/api/posts/{post_id}/attachments?filename={name}",
                                       data=io.BytesIO(data))
        assert isinstance(body, dict)
        return status, body


@pytest.fixture
async def desk(console: Console, settings: Settings, clock: Clock, clamd_socket: str) -> AsyncIterator[Desk]:  # noqa: F811
    async with console.database.transaction() as session:
        await add_user(session, name="office_head", role="head", department="office", password=PASSWORD,
                       departments=list(settings.departments), now=clock.now)
        await add_user(session, name="leader", role="supervisor", department=None, password=PASSWORD,
                       departments=list(settings.departments), now=clock.now)
    console.client.app[DESK].scanner = ClamdScanner(socket=clamd_socket)
    console.client.session.cookie_jar.clear()
    settings.file.platform_api.weibo_post_base_url = settings.file.platform_api.weibo_base_url  # the fake serves both
    async with aiohttp.ClientSession() as session:
        console.client.app[DESK].publisher = build_publisher(
            settings, {"GUANWEI_WECHAT_APPSECRET": APPSECRET, "GUANWEI_WEIBO_ACCESS_TOKEN": WEIBO_TOKEN}, session)
        yield Desk(console.client, console.platform, console.database, clock, {})


NEW = {"title": "市博物馆推出“非遗进校园”系列活动", "body": "即日起，市博物馆联合各区教育部门开展“非遗进校园”活动。\n活动免费，欢迎报名。",
       "source": "市博物馆 关于开展非遗进校园活动的通知", "department": "market"}
ALL_YES = {"accuracy": True, "completeness": True, "timeliness": True, "secrecy": True}


async def approved_post(desk: Desk, *, important: bool = False, title: str = NEW["title"]) -> int:
    status, post = await desk.call("staff_market", "POST", "/api/posts", {**NEW, "title": title, "important": important})
    assert status == 201, post
    post_id = post["id"]  # type: ignore[index]
    status, body = await desk.attach("staff_market", post_id, "cover.jpg", m.jpeg())
    assert status == 201, body
    assert (await desk.call("staff_market", "POST", f"/api/posts/{post_id}/submit", {}))[0] == 200
    assert (await desk.call("office_head", "POST", f"/api/posts/{post_id}/review", ALL_YES))[0] == 200
    if important:
        status, body = await desk.call("leader", "POST", f"/api/posts/{post_id}/approve", {})
        assert status == 400 and "保密审查表" in body["error"]  # type: ignore[index]
        assert (await desk.call("staff_market", "POST", f"/api/posts/{post_id}/secrecy",
                                {"contains_secrets": False, "opinion": "不涉及秘密，可以公开"}))[0] == 200
        assert (await desk.call("leader", "POST", f"/api/posts/{post_id}/secrecy/approve", {"opinion": "同意"}))[0] == 200
    assert (await desk.call("leader", "POST", f"/api/posts/{post_id}/approve", {"note": "同意发布"}))[0] == 200
    assert (await desk.call("info", "POST", f"/api/posts/{post_id}/proofread", {}))[0] == 200
    return post_id


async def test_r5_1_r5_2_an_important_post_goes_from_draft_to_the_register(desk: Desk, settings: Settings) -> None:
    post_id = await approved_post(desk, important=True)
    status, push = await desk.call("info", "POST", "/api/pushes", {"posts": [post_id], "planned_at": "2026-12-03T10:30"})
    assert status == 201 and push["outside_window_reason"] is None  # type: ignore[index]
    desk.clock.now = shanghai(2026, 12, 3, 10, 30)
    status, result = await desk.call("info", "POST", f"/api/pushes/{push['id']}/publish", {})  # type: ignore[index]
    assert status == 200 and result["status"] == "published", result  # type: ignore[index]
    fake = desk.platform.app[FAKE_PLATFORM]
    wechat = [p for p in fake.published if p["channel"] == "wechat"]
    weibo = [p for p in fake.published if p["channel"] == "weibo"]
    assert wechat[0]["title"] == NEW["title"] and "来源：市博物馆" in wechat[0]["content"]
    assert wechat[0]["thumb_media_id"] in fake.materials and fake.materials[wechat[0]["thumb_media_id"]]["type"] == "image"
    assert weibo[0]["text"].startswith(f"【{NEW['title']}】") and weibo[0]["pic"] == "cover.jpg"
    assert weibo[0]["text"].endswith(f"（来源：{NEW['source']}）")  # R8.2 on Weibo too

    status, rows = await desk.call("info", "GET", "/api/register")
    assert status == 200 and [r["channel"] for r in rows] == ["wechat", "weibo"]  # type: ignore[index,union-attr]
    trail = rows[0]["trail"]  # type: ignore[index]
    assert trail["review"]["by"] == "office_head" and trail["review"]["checks"]["secrecy"]["ok"] is True
    assert trail["secrecy_form"]["approved_by"] == "leader" and trail["approved_by"] == "leader"
    assert trail["proofread_by"] == "info" and trail["author"] == "staff_market"
    assert rows[0]["platform_id"] == wechat[0]["id"]  # type: ignore[index]

    status, week = await desk.call("info", "GET", "/api/pushes/week")
    assert week["published"] == 1 and week["short"] is True and "不足每周 3 次" in week["message"]  # type: ignore[index]

    status, xlsx = await desk.call("info", "GET", "/console/register/export?month=2026-12")
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(xlsx)).active  # type: ignore[arg-type]
    assert sheet.title == "信息发布登记" and sheet.max_row >= 3
    assert [c.value for c in sheet[2]][3] == NEW["title"]

    from bot.report import Month, build_report

    report = await build_report(desk.database, settings, Month(2026, 12), as_of=desk.clock.now)
    tables = {t.key: t for t in report.tables()}
    assert len(tables["publications"].rows) == 2

    async with desk.database.transaction() as session:
        actions = [a.action for a in (await session.scalars(
            select(AuditEntry).where(AuditEntry.target == f"post:{post_id}").order_by(AuditEntry.id))).all()]
    assert actions == ["post.create", "post.attach", "post.submit", "post.review", "secrecy.fill", "secrecy.approve",
                       "post.approve", "post.proofread"]


async def test_r8_2_a_draft_names_its_source(desk: Desk) -> None:
    status, body = await desk.call("staff_market", "POST", "/api/posts", {**NEW, "source": "  "})
    assert status == 400 and "信息来源" in body["error"]  # type: ignore[index]


async def test_r5_1_a_no_needs_a_comment_and_returns_the_post(desk: Desk) -> None:
    _, post = await desk.call("staff_market", "POST", "/api/posts", NEW)
    post_id = post["id"]  # type: ignore[index]
    await desk.call("staff_market", "POST", f"/api/posts/{post_id}/submit", {})
    status, body = await desk.call("office_head", "POST", f"/api/posts/{post_id}/review", {**ALL_YES, "accuracy": False})
    assert status == 400 and "准确性" in body["error"]  # type: ignore[index]
    status, body = await desk.call("head_market", "POST", f"/api/posts/{post_id}/review", ALL_YES)
    assert status == 403  # only the office reviews
    status, body = await desk.call("office_head", "POST", f"/api/posts/{post_id}/review",
                                   {**ALL_YES, "timeliness": False, "timeliness_comment": "活动已结束，请更新日期"})
    assert status == 200 and body["status"] == "draft"  # type: ignore[index]
    _, detail = await desk.call("staff_market", "GET", f"/api/posts/{post_id}")
    assert detail["reviews"][0]["checks"]["timeliness"] == {"ok": False, "comment": "活动已结束，请更新日期"}  # type: ignore[index]


async def test_r9_outgoing_text_with_banned_wording_cannot_be_submitted(desk: Desk) -> None:
    _, post = await desk.call("staff_market", "POST", "/api/posts", {**NEW, "body": "你有病吧，滚蛋"})
    status, body = await desk.call("staff_market", "POST", f"/api/posts/{post['id']}/submit", {})  # type: ignore[index]
    assert status == 400 and "内容审查未通过" in body["error"]  # type: ignore[index]


async def test_r8_3_refused_files_are_never_attached_and_say_why(desk: Desk) -> None:
    _, post = await desk.call("staff_market", "POST", "/api/posts", NEW)
    post_id = post["id"]  # type: ignore[index]
    cases = {"big.bmp": (m.big_bmp(3 * MB), "超过 2 MB 的上限"), "photo.jpg": (m.pe(), "Windows 可执行程序（PE）"),
             "voice.wav": (m.wav(70), "70.0 秒超过 60 秒的上限"), "poster.gif": (eicar(), "病毒扫描发现威胁")}
    for name, (data, reason) in cases.items():
        status, body = await desk.attach("staff_market", post_id, name, data)
        assert status == 422 and not body["accepted"] and reason in body["reason"], (name, body)
    _, detail = await desk.call("staff_market", "GET", f"/api/posts/{post_id}")
    assert detail["attachments"] == []  # type: ignore[index]


async def test_r4_3_a_push_holds_one_to_four_items(desk: Desk) -> None:
    status, body = await desk.call("info", "POST", "/api/pushes", {"posts": [], "planned_at": "2026-12-03T10:30"})
    assert status == 400 and "1–4 条" in body["error"]  # type: ignore[index]
    status, body = await desk.call("info", "POST", "/api/pushes", {"posts": [1, 2, 3, 4, 5],
                                                                   "planned_at": "2026-12-03T10:30"})
    assert status == 400 and "本次选了 5 条" in body["error"]  # type: ignore[index]


async def test_r4_4_outside_the_window_a_push_needs_a_recorded_reason(desk: Desk) -> None:
    post_id = await approved_post(desk)
    status, body = await desk.call("info", "POST", "/api/pushes", {"posts": [post_id], "planned_at": "2026-12-03T15:00"})
    assert status == 400 and "不在工作日推送时段 10:00–12:00 内" in body["error"]  # type: ignore[index]
    status, body = await desk.call("info", "POST", "/api/pushes", {"posts": [post_id], "planned_at": "2026-12-05T10:30"})
    assert status == 400 and "不是工作日" in body["error"]  # type: ignore[index]
    status, push = await desk.call("info", "POST", "/api/pushes", {"posts": [post_id], "planned_at": "2026-12-03T15:00",
                                                                   "reason": "配合下午新闻发布会同步发布"})
    assert status == 201 and push["outside_window_reason"] == "配合下午新闻发布会同步发布"  # type: ignore[index]
    desk.clock.now = shanghai(2026, 12, 3, 15, 0)
    status, result = await desk.call("info", "POST", f"/api/pushes/{push['id']}/publish", {})  # type: ignore[index]
    assert status == 200 and result["status"] == "published"  # type: ignore[index]


async def test_r4_4_publishing_late_without_a_reason_is_refused(desk: Desk) -> None:
    post_id = await approved_post(desk)
    _, push = await desk.call("info", "POST", "/api/pushes", {"posts": [post_id], "planned_at": "2026-12-03T11:00"})
    desk.clock.now = shanghai(2026, 12, 3, 16, 0)
    status, body = await desk.call("info", "POST", f"/api/pushes/{push['id']}/publish", {})  # type: ignore[index]
    assert status == 400 and "窗口外发布须填写理由" in body["error"]  # type: ignore[index]
    status, body = await desk.call("info", "POST", f"/api/pushes/{push['id']}/publish", {"reason": "上午系统故障，补发"})  # type: ignore[index]
    assert status == 200


async def test_r8_3_a_scanner_that_is_down_blocks_publishing(desk: Desk, tmp_path) -> None:  # type: ignore[no-untyped-def]
    post_id = await approved_post(desk)
    _, push = await desk.call("info", "POST", "/api/pushes", {"posts": [post_id], "planned_at": "2026-12-03T10:30"})
    desk.client.app[DESK].scanner = ClamdScanner(socket=str(tmp_path / "down.sock"), timeout=2)
    status, body = await desk.call("info", "POST", f"/api/pushes/{push['id']}/publish", {})  # type: ignore[index]
    assert status == 400 and "无法连接病毒扫描服务" in body["error"] and "暂停发布" in body["error"]  # type: ignore[index]
    assert desk.platform.app[FAKE_PLATFORM].published == []


@pytest.mark.parametrize(("now", "published", "planned", "short", "reachable"), [
    (shanghai(2026, 11, 30, 9, 0), 0, 0, True, True),  # Monday morning, nothing yet
    (shanghai(2026, 12, 2, 9, 0), 1, 2, False, True),  # two more planned for Thursday and Friday
    (shanghai(2026, 12, 4, 13, 0), 1, 0, True, False),  # Friday afternoon, only one: cannot be reached
    (shanghai(2026, 12, 4, 13, 0), 3, 0, False, True),
])
def test_r4_3_weekly_check_warns_when_a_week_heads_for_fewer_than_three(settings: Settings, now, published, planned,  # type: ignore[no-untyped-def]
                                                                        short: bool, reachable: bool) -> None:
    rules = PushRules.from_settings(settings)
    calendar = BusinessCalendar(settings.reply_hours)
    monday = shanghai(2026, 11, 30, 10, 30)
    pushes = [(monday + timedelta(days=n), monday + timedelta(days=n)) for n in range(published)]
    pushes += [(shanghai(2026, 12, 3 + n, 10, 30), None) for n in range(planned)]
    week = week_check(now, pushes, calendar, rules)
    assert (week.published, week.planned, week.short, week.reachable) == (published, planned, short, reachable)
    assert week.label == "11-30至12-06"


async def test_r4_3_the_weekly_warning_reaches_the_information_centre(settings: Settings, database: Database) -> None:
    from bot.publishing_alerts import warn_info_center

    rules = PushRules.from_settings(settings)
    week = week_check(shanghai(2026, 12, 4, 13, 0), [], BusinessCalendar(settings.reply_hours), rules)
    results = await warn_info_center(settings, database, week, now=shanghai(2026, 12, 4, 13, 0), env={})
    assert results and all(r.ok for r in results) and {r.contact.name for r in results} == {"旅游信息中心值班（示例）"}
    async with database.transaction() as session:
        entry = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "push.week_warning"))).one()
    assert entry.detail["published"] == 0


def test_r8_2_a_long_weibo_post_is_cut_before_its_source_never_the_source() -> None:
    from bot.publisher import WEIBO_STATUS_LIMIT, Article, weibo_status

    status = weibo_status(Article(title="标题", body="正文很长。" * 100, source="市文化广电和旅游局", author="局办公室"))
    assert len(status) <= WEIBO_STATUS_LIMIT
    assert status.endswith("…（来源：市文化广电和旅游局）")
