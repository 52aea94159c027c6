"""The staff console and API over real HTTP: roles, department isolation, answers reaching a fake platform."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot import staff
from bot.access import PERMISSIONS, ROLES, Actor
from bot.app import build_outbound, create_app
from bot.auth import add_user
from bot.config import Settings
from bot.fake_platform import create_fake_platform
from bot.outbound import DeliveryOutcome
from bot.shared_state import InProcessState
from bot.storage import AuditEntry, Database, Inquiry, Message, StorageUnavailable
from knowledge import Classifier
from knowledge.screening import Screener
from tests.conftest import APPID, Clock, shanghai
from tests.test_wechat_webhook import post, push

PASSWORD = "correct horse battery"
APPSECRET = "fakeappsecret0001"
WEIBO_TOKEN = "fake-weibo-token"
USERS = {  # name → (role, department)
    "staff_market": ("staff", "market"),
    "head_market": ("head", "market"),
    "staff_arts": ("staff", "arts"),
    "info": ("info_center", None),
    "boss": ("supervisor", None),
    "root": ("admin", None),
}


@dataclass
class Console:
    client: TestClient
    platform: TestClient
    database: Database


@pytest.fixture
async def console(settings: Settings, database: Database, classifier: Classifier,
                  clock: Clock) -> AsyncIterator[Console]:
    async with database.transaction() as session:
        for name, (role, department) in USERS.items():
            await add_user(session, name=name, role=role, department=department, password=PASSWORD,
                           departments=list(settings.departments), now=clock.now)
    platform_app = create_fake_platform(appid=APPID, secret=APPSECRET, weibo_token=WEIBO_TOKEN)
    async with TestClient(TestServer(platform_app)) as platform:
        base = str(platform.make_url("/"))
        settings.file.platform_api.wechat_base_url = base + "cgi-bin/"
        settings.file.platform_api.weibo_base_url = base.rstrip("/")
        env = {"GUANWEI_WECHAT_APPSECRET": APPSECRET, "GUANWEI_WEIBO_ACCESS_TOKEN": WEIBO_TOKEN}
        app = create_app(settings, database=database, classifier=classifier, clock=clock, env=env)
        async with TestClient(TestServer(app)) as client:
            yield Console(client, platform, database)


async def api_login(client: TestClient, name: str) -> dict[str, str]:
    response = await client.post("/api/login", json={"username": name, "password": PASSWORD})
    assert response.status == 200, await response.text()
    return {"Authorization": f"Bearer {(await response.json())['token']}"}


async def new_inquiry(client: TestClient, text: str, sender: str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o") -> int:
    status, _ = await post(client, push("text", sender=sender, Content=text))
    assert status == 200
    response = await client.get("/api/inquiries", headers=await api_login(client, "info"))
    return max(item["id"] for item in await response.json())


async def test_r6_2_staff_answer_reaches_the_netizen_and_leaves_the_queue(console: Console) -> None:
    inquiry_id = await new_inquiry(console.client, "导游强制购物，不买不让下车，这归谁管？")
    headers = await api_login(console.client, "staff_market")
    queue = await (await console.client.get("/api/inquiries", headers=headers)).json()
    assert [item["id"] for item in queue] == [inquiry_id]

    answer = "您好！您反映的导游强制购物问题已转市场管理处核查，请保留购物凭证，我们会尽快联系旅行社处理。"
    response = await console.client.post(f"/api/inquiries/{inquiry_id}/answer", json={"text": answer},
                                         headers=headers)
    assert response.status == 200, await response.text()
    assert {k: (await response.json())[k] for k in ("delivery", "delivered", "sent", "recorded")} == {
        "delivery": "delivered", "delivered": True, "sent": True, "recorded": True}
    received = await (await console.platform.get("/received")).json()
    assert received[-1]["text"] == answer and received[-1]["channel"] == "wechat"
    assert await (await console.client.get("/api/inquiries", headers=headers)).json() == []
    detail = await (await console.client.get(f"/api/inquiries/{inquiry_id}", headers=headers)).json()
    assert detail["status"] == "answered" and detail["answered_by"] == "staff_market"
    assert [m["direction"] for m in detail["messages"]] == ["in", "out", "out"]


async def test_undeliverable_answer_is_an_outcome_shown_to_staff(console: Console) -> None:
    inquiry_id = await new_inquiry(console.client, "导游强制购物怎么办", sender="oExpiredAAAAAAAAAAAAAAAAAAAAA")
    headers = await api_login(console.client, "staff_market")
    response = await console.client.post(f"/api/inquiries/{inquiry_id}/answer",
                                         json={"text": "您好！已转市场管理处核查。"}, headers=headers)
    body = await response.json()
    assert response.status == 200 and body["delivery"] == "undeliverable" and body["reason"]
    assert (body["delivered"], body["sent"], body["recorded"]) == (False, False, True)  # recorded, not sent
    detail = await (await console.client.get(f"/api/inquiries/{inquiry_id}", headers=headers)).json()
    assert detail["status"] == "open"  # not delivered: the clock still runs
    assert detail["messages"][-1]["delivery"] == "undeliverable"


async def test_r10_uncivil_answer_is_blocked_and_a_head_may_override_with_a_reason(console: Console) -> None:
    inquiry_id = await new_inquiry(console.client, "导游强制购物怎么办")
    rude = "你有病吧，自己不会查吗"
    staff_headers = await api_login(console.client, "staff_market")
    blocked = await console.client.post(f"/api/inquiries/{inquiry_id}/answer", json={"text": rude},
                                        headers=staff_headers)
    assert blocked.status == 422
    assert (await blocked.json())["sent"] is False
    assert await (await console.platform.get("/received")).json() == []
    refused = await console.client.post(f"/api/inquiries/{inquiry_id}/answer",
                                        json={"text": rude, "override_reason": "我觉得没问题"}, headers=staff_headers)
    assert refused.status == 400  # staff may not override
    head_headers = await api_login(console.client, "head_market")
    personal = "您好，请直接联系导游王某，电话13812345678。"
    overridden = await console.client.post(f"/api/inquiries/{inquiry_id}/answer",
                                           json={"text": personal, "override_reason": "网友要求提供导游联系方式"},
                                           headers=head_headers)
    assert overridden.status == 200
    async with console.database.transaction() as session:
        entry = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "answer"))).one()
    assert entry.actor == "head_market" and entry.detail["override"] == "网友要求提供导游联系方式"


async def test_r6_2_transfer_needs_a_reason_and_moves_the_inquiry_out_of_sight(console: Console) -> None:
    inquiry_id = await new_inquiry(console.client, "导游强制购物怎么办")
    headers = await api_login(console.client, "staff_market")
    no_reason = await console.client.post(f"/api/inquiries/{inquiry_id}/transfer",
                                          json={"department": "arts", "reason": " "}, headers=headers)
    assert no_reason.status == 400
    moved = await console.client.post(f"/api/inquiries/{inquiry_id}/transfer",
                                      json={"department": "arts", "reason": "涉及演出票务，属艺术处"}, headers=headers)
    assert moved.status == 200
    assert (await console.client.get(f"/api/inquiries/{inquiry_id}", headers=headers)).status == 404
    arts = await api_login(console.client, "staff_arts")
    assert (await console.client.get(f"/api/inquiries/{inquiry_id}", headers=arts)).status == 200


async def test_r6_2_weak_routing_is_confirmed_by_keeping_the_inquiry_in_its_department(console: Console) -> None:
    # 待核对 stayed until the answer: keeping the inquiry where it was was refused as "already there" (fresh eyes)
    inquiry_id = await new_inquiry(console.client, "麻烦帮我看看这个情况")  # weakly routed (0.22)
    async with console.database.transaction() as session:
        inquiry = await session.get(Inquiry, inquiry_id)
        assert inquiry is not None and inquiry.department_confidence < 0.5
        department = inquiry.department
    headers = await api_login(console.client, "info")
    page = await (await console.client.get(f"/console/inquiries/{inquiry_id}", headers=headers)).text()
    assert "确认分办" in page
    kept = await console.client.post(f"/api/inquiries/{inquiry_id}/transfer",
                                     json={"department": department, "reason": "属本部门职责"}, headers=headers)
    assert kept.status == 200, await kept.text()
    detail = await (await console.client.get(f"/api/inquiries/{inquiry_id}", headers=headers)).json()
    assert detail["department"] == department and detail["department_confidence"] == 1.0
    again = await console.client.post(f"/api/inquiries/{inquiry_id}/transfer",
                                      json={"department": department, "reason": "再确认"}, headers=headers)
    assert again.status == 400  # once sure, "already there" again
    async with console.database.transaction() as session:
        actions = (await session.scalars(select(AuditEntry.action).where(
            AuditEntry.target == f"inquiry:{inquiry_id}"))).all()
    assert "confirm" in actions


async def test_close_as_spam_with_reason(console: Console) -> None:
    inquiry_id = await new_inquiry(console.client, "加微信领红包 www.spam.example")
    headers = await api_login(console.client, "info")
    response = await console.client.post(f"/api/inquiries/{inquiry_id}/close",
                                         json={"kind": "spam", "reason": "广告"}, headers=headers)
    assert response.status == 200 and (await response.json())["status"] == "closed"


async def test_r4_2_disabling_a_user_ends_their_sessions_at_once(console: Console, clock: Clock) -> None:
    from bot.auth import disable_user

    headers = await api_login(console.client, "staff_market")
    assert (await console.client.get("/api/inquiries", headers=headers)).status == 200
    async with console.database.transaction() as session:
        assert await disable_user(session, "staff_market", now=clock.now) == 1
    assert (await console.client.get("/api/inquiries", headers=headers)).status == 401
    login = await console.client.post("/api/login", json={"username": "staff_market", "password": PASSWORD})
    assert login.status == 401


async def test_login_is_throttled_after_repeated_failures(console: Console) -> None:
    for _ in range(5):
        wrong = await console.client.post("/api/login", json={"username": "info", "password": "wrong password!"})
        assert wrong.status == 401
    locked = await console.client.post("/api/login", json={"username": "info", "password": PASSWORD})
    assert locked.status == 429


async def test_requests_without_a_password_do_not_lock_the_account(console: Console) -> None:
    # five empty requests by someone who only knows the name used to lock the account for 15 minutes
    for _ in range(6):
        empty = await console.client.post("/api/login", json={"username": "info"})
        assert (empty.status, await empty.json()) == (400, {"error": "username and password are required"})
    page = await console.client.post("/console/login", data={"username": "info", "password": ""})
    assert page.status == 400 and "请输入用户名和密码" in await page.text()
    assert (await console.client.post("/api/login", json={"username": "info", "password": PASSWORD})).status == 200


async def test_console_forms_need_the_csrf_token(console: Console) -> None:
    inquiry_id = await new_inquiry(console.client, "导游强制购物怎么办")
    page = await console.client.post("/console/login", data={"username": "staff_market", "password": PASSWORD},
                                     allow_redirects=False)
    assert page.status == 303
    queue = await console.client.get("/console")
    html = await queue.text()
    assert "我的待办" in html and f"/console/inquiries/{inquiry_id}" in html
    forged = await console.client.post(f"/console/inquiries/{inquiry_id}/answer", data={"text": "您好"})
    assert forged.status == 403
    inquiry_page = await (await console.client.get(f"/console/inquiries/{inquiry_id}")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', inquiry_page)
    assert csrf is not None
    sent = await console.client.post(f"/console/inquiries/{inquiry_id}/answer",
                                     data={"text": "您好！已转市场管理处核查，请耐心等待。", "csrf_token": csrf.group(1)},
                                     allow_redirects=False)
    assert sent.status == 303
    assert (await (await console.platform.get("/received")).json())[-1]["text"].startswith("您好！已转市场管理处")


def _expected(role: str | None, permission: str | None, own: bool, path: str) -> set[int]:
    if role is None:
        return {401} if path.startswith("/api/") else {303}
    actor = Actor(0, "x", role, "market" if role in ("staff", "head") else None)
    if permission is not None and not actor.may(permission):
        return {403}
    if "{inquiry_id}" in path and not own and not actor.sees_all:
        return {404}
    return {200, 303, 400, 422}


async def test_department_isolation_every_route_with_every_role(console: Console) -> None:
    """Walk every console and API route with every role (and nobody): the rules of bot.access hold."""
    mine = await new_inquiry(console.client, "导游强制购物，不买不让下车")  # market
    theirs = await new_inquiry(console.client, "豫剧演出票怎么退", sender="oOtherOtherOtherOtherOtherOt")
    async with console.database.transaction() as session:
        departments = {i.id: i.department for i in (await session.scalars(select(Inquiry))).all()}
    assert departments[mine] == "market" and departments[theirs] != "market"
    created = await console.client.post("/api/posts", headers=await api_login(console.client, "staff_market"), json={
        "title": "非遗展演周末开幕", "body": "本周六起在市博物馆举办非遗展演。", "source": "市文化馆", "department": "market"})
    assert created.status == 201, await created.text()
    post = (await created.json())["id"]  # the publishing desk's routes walk a market post

    routes = []
    for route in console.client.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        handler = route.handler
        if not (path.startswith("/console") or path.startswith("/api/")) or getattr(handler, "public", False):
            continue
        if route.method == "HEAD" or path.endswith("/logout"):
            continue
        routes.append((route.method, path, getattr(handler, "permission", None)))
    assert len(routes) >= 15
    names = {"staff": "staff_market", "head": "head_market", "info_center": "info", "supervisor": "boss",
             "admin": "root"}
    bodies = {"answer": {"text": "您好！"}, "transfer": {"department": "office", "reason": "测试"},
              "close": {"kind": "spam", "reason": "测试"}, "chase": {"note": "测试"}}
    fresh = 0
    for role in [None, *ROLES]:
        headers = await api_login(console.client, names[role]) if role else {}
        console.client.session.cookie_jar.clear()  # the bearer token alone speaks for the role
        for method, path, permission in routes:
            for target, own in ((mine, True), (theirs, False)):
                if "{inquiry_id}" not in path and not own:
                    continue
                if method == "POST" and own and "{inquiry_id}" in path:
                    # Actions change the inquiry (a transfer moves it away): each gets a fresh one of its own.
                    fresh += 1
                    target = await new_inquiry(console.client, "导游强制购物，不买不让下车", sender=f"oWalk{fresh:023d}")
                    console.client.session.cookie_jar.clear()
                url = (path.replace("{inquiry_id}", str(target)).replace("{post_id}", str(post))
                       .replace("{attachment_id}", "999999").replace("{push_id}", "999999"))
                action = path.rsplit("/", 1)[-1]
                if method == "GET":
                    response = await console.client.get(url, headers=headers, allow_redirects=False)
                elif path.startswith("/api/"):
                    response = await console.client.post(url, json=bodies.get(action, {}), headers=headers,
                                                         allow_redirects=False)
                else:
                    response = await console.client.post(url, data=bodies.get(action, {}), headers=headers,
                                                         allow_redirects=False)
                expected = _expected(role, permission, own, path)
                if role and expected != {403} and ("{attachment_id}" in path or "{push_id}" in path):
                    expected = expected | {404}  # permitted, and there is no such attachment or push
                assert response.status in expected, (role, method, url, response.status)
    assert set(PERMISSIONS) >= {p for _, _, p in routes if p}


async def test_openapi_document_lists_the_api(console: Console) -> None:
    document = await (await console.client.get("/api/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    assert {"/api/login", "/api/inquiries", "/api/inquiries/{inquiry_id}", "/api/inquiries/{inquiry_id}/answer",
            "/api/inquiries/{inquiry_id}/transfer"} <= set(document["paths"])
    answered = document["paths"]["/api/inquiries/{inquiry_id}/answer"]["post"]["responses"]["200"]
    fields = answered["content"]["application/json"]["schema"]["properties"]
    assert set(fields) == {"delivered", "sent", "recorded", "message_id", "delivery", "reason", "screening"}
    assert fields["delivery"]["enum"] == ["delivered", "undeliverable", "failed"]
    posts = document["paths"]["/api/pushes"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert posts["properties"]["posts"] == {"type": "array", "minItems": 1,
                                            "items": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}
    assert posts["required"] == ["posts", "planned_at"]


async def test_outbound_without_platform_secrets_fails_with_a_reason(settings: Settings) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        outbound = build_outbound(settings, {}, session)
        outcome = await outbound.send("wechat", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "您好")
    assert outcome.status == "failed" and outcome.reason


async def test_messages_of_staff_answers_carry_author_and_delivery(console: Console) -> None:
    inquiry_id = await new_inquiry(console.client, "导游强制购物怎么办")
    headers = await api_login(console.client, "staff_market")
    await console.client.post(f"/api/inquiries/{inquiry_id}/answer", json={"text": "您好！已受理。"}, headers=headers)
    async with console.database.transaction() as session:
        out = (await session.scalars(select(Message).where(Message.author.is_not(None)))).one()
    assert (out.author, out.delivery_status) == ("staff_market", "delivered")


async def test_session_fixation_a_cookie_set_before_login_is_never_a_session(console: Console) -> None:
    planted = "attacker-chosen-session-value"
    console.client.session.cookie_jar.update_cookies({"guanwei_session": planted})
    assert (await console.client.get("/api/inquiries")).status == 401
    await console.client.post("/console/login", data={"username": "staff_market", "password": PASSWORD},
                              allow_redirects=False)
    issued = {c.key: c.value for c in console.client.session.cookie_jar}["guanwei_session"]
    assert issued != planted
    assert (await console.client.get("/api/inquiries", headers={"Authorization": f"Bearer {planted}"})).status == 401


def test_the_audit_log_cannot_be_edited_through_the_product() -> None:
    from handlers import api, console

    paths = [route.path for table in (api.routes, console.routes) for route in table]  # type: ignore[attr-defined]
    assert not [p for p in paths if "audit" in p]  # it is written by actions, read in pages, never edited


async def test_open_pages_hear_when_the_queue_changes(console: Console) -> None:
    import asyncio

    headers = await api_login(console.client, "staff_market")
    console.client.session.cookie_jar.clear()
    stream = await console.client.get("/console/events", headers=headers)
    assert stream.status == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
    await post(console.client, push("text", Content="导游强制购物怎么办"))
    line = await asyncio.wait_for(stream.content.readline(), timeout=5)
    assert line == b"data: changed\n"
    stream.close()


HUGE = "99999999999999999999999"  # beyond 64 bits: no row can have it (nor past 2**31 - 1: PostgreSQL INTEGER)


async def test_ids_beyond_64_bits_are_not_found_rather_than_a_crash(console: Console) -> None:
    headers = await api_login(console.client, "info")
    console.client.session.cookie_jar.clear()
    for method, path in (("GET", f"/console/inquiries/{HUGE}"), ("GET", f"/api/inquiries/{HUGE}"),
                         ("POST", f"/api/inquiries/{HUGE}/chase"), ("GET", f"/api/posts/{HUGE}"),
                         ("GET", f"/console/posts/{HUGE}"), ("POST", f"/api/pushes/{HUGE}/publish"),
                         ("GET", "/api/inquiries/2147483648"), ("GET", "/api/inquiries/-1"),
                         ("GET", "/api/inquiries/１２"), ("GET", "/api/inquiries/1e3")):
        response = await console.client.request(method, path, headers=headers, json={})
        assert response.status == 404, (method, path, response.status, await response.text())
    largest = await console.client.get("/api/inquiries/2147483647", headers=headers)
    assert (largest.status, await largest.json()) == (404, {"error": "no such inquiry in your sight"})
    post = await console.client.get(f"/api/posts/{HUGE}", headers=headers)
    assert await post.json() == {"error": "no such post in your sight"}


@pytest.mark.parametrize("posts", [[10**30], [2**31], [0], [True], ["12"], "12"])
async def test_a_push_of_ids_no_post_can_have_is_a_400_with_the_reason(console: Console, posts: object) -> None:
    headers = await api_login(console.client, "info")
    response = await console.client.post("/api/pushes", json={"posts": posts, "planned_at": "2026-12-03T10:30"},
                                         headers=headers)
    assert response.status == 400
    assert await response.json() == {"error": "posts: a list of post ids (whole numbers from 1 to 2147483647)"}
    form = await console.client.post("/console/pushes", data={"post_id": HUGE, "planned_at": "2026-12-03T10:30"},
                                     headers=headers)
    assert form.status == 400 and "所选信息的编号无效" in await form.text()


async def test_a_non_ascii_csrf_token_is_refused_not_a_crash(console: Console) -> None:
    inquiry_id = await new_inquiry(console.client, "导游强制购物怎么办")
    await console.client.post("/console/login", data={"username": "staff_market", "password": PASSWORD},
                              allow_redirects=False)
    response = await console.client.post(f"/console/inquiries/{inquiry_id}/chase", data={"note": "x"},
                                         headers={"X-CSRF-Token": "你好"})
    assert response.status == 403


async def test_undecodable_credentials_are_wrong_credentials_not_a_crash(console: Console) -> None:
    lone = '{"username": "info", "password": "\\udc80 correct horse"}'
    response = await console.client.post("/api/login", data=lone, headers={"Content-Type": "application/json"})
    assert (response.status, await response.json()) == (401, {"error": "wrong username or password"})
    nobody = '{"username": "\\udc80\\udcff", "password": "\\udc80 correct horse"}'
    response = await console.client.post("/api/login", data=nobody, headers={"Content-Type": "application/json"})
    assert response.status == 401
    response = await console.client.get("/api/inquiries", headers={"Authorization": "Bearer 你好\udc80".encode(
        "utf-8", "surrogateescape").decode("latin-1")})
    assert (response.status, await response.json()) == (401, {"error": "login required"})


async def _answer_with(settings: Settings, database: Database, classifier: Classifier, clock: Clock,
                       env: dict[str, str]) -> tuple[int, dict, list[str]]:  # type: ignore[type-arg]
    from loguru import logger

    async with database.transaction() as session:
        await add_user(session, name="staff_market", role="staff", department="market", password=PASSWORD,
                       departments=list(settings.departments), now=clock.now)
    app = create_app(settings, database=database, classifier=classifier, clock=clock, env=env)
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="DEBUG", format="{message}")
    try:
        async with TestClient(TestServer(app)) as client:
            status, _ = await post(client, push("text", Content="导游强制购物怎么办"))
            assert status == 200
            async with database.transaction() as session:
                inquiry_id = (await session.scalars(select(Inquiry.id))).one()
            headers = await api_login(client, "staff_market")
            response = await client.post(f"/api/inquiries/{inquiry_id}/answer", json={"text": "您好！已受理。"},
                                         headers=headers)
            body = await response.json()
    finally:
        logger.remove(sink)
    return response.status, body, lines


async def test_an_answer_without_an_app_secret_is_recorded_but_not_delivered(
    settings: Settings, database: Database, classifier: Classifier, clock: Clock
) -> None:
    status, body, _ = await _answer_with(settings, database, classifier, clock, env={})
    assert status == 200
    assert {k: body[k] for k in ("delivered", "sent", "recorded", "delivery", "reason")} == {
        "delivered": False, "sent": False, "recorded": True, "delivery": "failed",
        "reason": "未配置微信公众号发送（缺少 AppID/AppSecret），答复未发出"}


async def test_an_unreachable_platform_leaves_no_part_of_the_secret_in_the_reply_the_audit_or_the_log(
    settings: Settings, database: Database, classifier: Classifier, clock: Clock
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    settings.file.platform_api.wechat_base_url = f"http://127.0.0.1:{closed}/cgi-bin/"
    status, body, lines = await _answer_with(settings, database, classifier, clock,
                                             env={"GUANWEI_WECHAT_APPSECRET": APPSECRET})
    assert (status, body["delivered"], body["sent"], body["delivery"]) == (200, False, False, "failed")
    assert body["reason"].startswith("连接微信接口失败，请稍后重试（ConnectionError: HTTPConnectionPool(")
    assert "/cgi-bin/token?[redacted] " in body["reason"]
    async with database.transaction() as session:
        audit = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "answer"))).one()
    assert audit.detail["reason"] == body["reason"]
    logged = "\n".join(lines)
    assert "/cgi-bin/token?[redacted] " in logged
    for place in (body["reason"], logged):
        assert APPSECRET[:4] not in place and "secret=" not in place and APPID not in place


async def test_api_refusals_are_json_even_where_aiohttp_answers(console: Console) -> None:
    headers = await api_login(console.client, "info")
    console.client.session.cookie_jar.clear()
    unknown = await console.client.get("/api/nothing-here", headers=headers)
    assert (unknown.status, unknown.content_type, await unknown.json()) == (404, "application/json",
                                                                          {"error": "Not Found"})
    month = await console.client.get("/api/register?month=2026-13", headers=headers)
    assert (month.status, await month.json()) == (400, {"error": "月份格式为 YYYY-MM"})
    huge = await console.client.post("/api/inquiries/1/answer", data=b"x" * 300_000,
                                     headers={**headers, "Content-Type": "application/json"})
    assert (huge.status, await huge.json()) == (413, {"error": "Maximum request body size 262144 exceeded."})
    wrong_method = await console.client.delete("/api/inquiries", headers=headers)
    assert (wrong_method.status, await wrong_method.json()) == (405, {"error": "Method Not Allowed"})
    assert "GET" in wrong_method.headers["Allow"]
    page = await console.client.get("/console/nothing-here", headers=headers)
    assert page.status == 404 and page.content_type == "text/plain"  # the console's pages are not the API


async def test_a_refusal_a_handler_answers_itself_is_logged_with_its_reason(console: Console) -> None:
    from loguru import logger

    headers = await api_login(console.client, "info")
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message).strip()), level="WARNING", format="{message}")
    try:
        await console.client.post("/api/pushes", json={"posts": [10**30]}, headers=headers)
        console.client.session.cookie_jar.clear()
        await console.client.get("/api/inquiries")  # no session
    finally:
        logger.remove(sink)
    assert lines == ["POST /api/pushes refused (400): posts: a list of post ids (whole numbers from 1 to 2147483647)",
                     "GET /api/inquiries refused (401): login required"]


async def test_r6_2_a_colleague_who_answered_meanwhile_is_shown_before_a_second_answer_goes_out(
        console: Console) -> None:
    inquiry_id = await new_inquiry(console.client, "导游强制购物，不买不让下车，这归谁管？")
    staff_headers = await api_login(console.client, "staff_market")
    head_headers = await api_login(console.client, "head_market")
    # Both read the inquiry while it had no answer.
    for headers in (staff_headers, head_headers):
        detail = await (await console.client.get(f"/api/inquiries/{inquiry_id}", headers=headers)).json()
        assert [m["author"] for m in detail["messages"] if m["direction"] == "out"] == [None]
    first = await console.client.post(f"/api/inquiries/{inquiry_id}/answer", headers=staff_headers,
                                      json={"text": "您好！已联系旅行社核查，请保留凭证。", "answers_seen": 0})
    assert first.status == 200, await first.text()

    late = await console.client.post(f"/api/inquiries/{inquiry_id}/answer", headers=head_headers,
                                     json={"text": "您好！我们已受理您的投诉。", "answers_seen": 0})
    assert late.status == 409
    assert "staff_market 已答复" in (await late.json())["error"]
    received = await (await console.platform.get("/received")).json()
    assert [r["text"] for r in received] == ["您好！已联系旅行社核查，请保留凭证。"]

    # Having read it, the head adds a supplement on purpose; the first answer stays the one that counted.
    supplement = await console.client.post(f"/api/inquiries/{inquiry_id}/answer", headers=head_headers,
                                           json={"text": "补充：处理结果将在三个工作日内告知您。", "answers_seen": 1})
    assert supplement.status == 200
    detail = await (await console.client.get(f"/api/inquiries/{inquiry_id}", headers=head_headers)).json()
    assert detail["answered_by"] == "staff_market"
    assert [m["author"] for m in detail["messages"] if m["direction"] == "out"] == [None, "staff_market", "head_market"]
    garbled = await console.client.post(f"/api/inquiries/{inquiry_id}/answer", headers=head_headers,
                                        json={"text": "您好", "answers_seen": "1"})
    assert garbled.status == 400 and "answers_seen" in (await garbled.json())["error"]
    beyond = await console.client.post(f"/api/inquiries/{inquiry_id}/answer", headers=head_headers,
                                       json={"text": "您好", "answers_seen": 99})
    assert beyond.status == 400 and "只有 2 条" in (await beyond.json())["error"]
    # A client that does not say what it has read gets first-answer semantics: told, with the answer to read.
    unsaid = await console.client.post(f"/api/inquiries/{inquiry_id}/answer", headers=staff_headers,
                                       json={"text": "您好！已受理。"})
    assert unsaid.status == 409
    assert {k: (await unsaid.json())[k] for k in ("answered_by", "answer", "answers_seen")} == {
        "answered_by": "head_market", "answer": "补充：处理结果将在三个工作日内告知您。", "answers_seen": 2}
    assert len(await (await console.platform.get("/received")).json()) == 2


async def test_r6_2_an_answer_that_did_not_reach_the_netizen_does_not_stop_a_colleague(console: Console) -> None:
    inquiry_id = await new_inquiry(console.client, "导游强制购物怎么办", sender="oExpiredAAAAAAAAAAAAAAAAAAAAA")
    failed = await console.client.post(f"/api/inquiries/{inquiry_id}/answer", json={"text": "您好！已受理。"},
                                       headers=await api_login(console.client, "staff_market"))
    assert (await failed.json())["delivered"] is False
    second = await console.client.post(f"/api/inquiries/{inquiry_id}/answer", json={"text": "您好！已受理。"},
                                       headers=await api_login(console.client, "head_market"))
    assert second.status == 200  # not "staff_market 已答复": nothing reached the netizen


async def test_a_closed_inquiry_cannot_be_transferred(console: Console) -> None:
    inquiry_id = await new_inquiry(console.client, "导游强制购物怎么办")
    headers = await api_login(console.client, "info")
    closed = await console.client.post(f"/api/inquiries/{inquiry_id}/close", headers=headers,
                                       json={"kind": "spam", "reason": "广告"})
    assert closed.status == 200
    moved = await console.client.post(f"/api/inquiries/{inquiry_id}/transfer", headers=headers,
                                      json={"department": "arts", "reason": "测试"})
    assert moved.status == 400 and "已关闭" in (await moved.json())["error"]
    detail = await (await console.client.get(f"/api/inquiries/{inquiry_id}", headers=headers)).json()
    assert detail["department"] == "market"


async def test_r6_2_the_console_form_refuses_a_stale_answer_and_keeps_the_draft(console: Console) -> None:
    inquiry_id = await new_inquiry(console.client, "导游强制购物怎么办")
    colleague = await api_login(console.client, "staff_market")  # before the head's login: it sets the cookie
    await console.client.post("/console/login", data={"username": "head_market", "password": PASSWORD})
    page = await (await console.client.get(f"/console/inquiries/{inquiry_id}")).text()
    assert 'name="answers_seen" value="0"' in page
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None
    # A colleague answers through the API while the head's page is open.
    await console.client.post(f"/api/inquiries/{inquiry_id}/answer", json={"text": "您好！已受理。"},
                              headers=colleague)
    draft = "您好！已转市场管理处核查，请耐心等待。"
    stale = await console.client.post(f"/console/inquiries/{inquiry_id}/answer", allow_redirects=False,
                                      data={"text": draft, "csrf_token": csrf.group(1), "answers_seen": "0"})
    html = await stale.text()
    assert stale.status == 409
    assert "staff_market 已答复了这条留言" in html and draft in html and 'name="answers_seen" value="1"' in html
    assert [r["text"] for r in await (await console.platform.get("/received")).json()] == ["您好！已受理。"]


class _HeldPlatform:
    """A platform that keeps the first answer in flight until released, to put a second one beside it."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.in_flight = asyncio.Event()
        self.release = asyncio.Event()

    def too_long(self, channel: str, text: str) -> str | None:
        return None

    async def send(self, channel: str, recipient: str, text: str) -> DeliveryOutcome:
        self.in_flight.set()
        await self.release.wait()
        self.sent.append(text)
        return DeliveryOutcome("delivered")


async def test_r6_2_while_one_answer_is_being_sent_a_second_is_refused_on_every_worker(
        console: Console, settings: Settings, clock: Clock) -> None:
    inquiry_id = await new_inquiry(console.client, "导游强制购物怎么办")
    platform = _HeldPlatform()
    state = InProcessState()
    screener = Screener.load()

    def answer(name: str, text: str, answers_seen: int = 0) -> Awaitable[staff.AnswerResult]:
        role, department = USERS[name]
        return staff.answer(console.database, platform, screener,  # type: ignore[arg-type]
                            Actor(0, name, role, department), inquiry_id, text, now=clock.now, remote="test",
                            state=state, answers_seen=answers_seen)

    first = asyncio.create_task(answer("staff_market", "您好！已受理。"))
    await platform.in_flight.wait()
    with pytest.raises(staff.Refused, match="另一条答复正在发送中"):
        await answer("head_market", "您好！我们已收到。")
    platform.release.set()
    assert (await first).delivered
    assert platform.sent == ["您好！已受理。"]
    # The claim is gone once the first answer is recorded: a deliberate supplement may follow.
    with pytest.raises(staff.AnsweredMeanwhile):  # not having read it
        await answer("head_market", "补充：三个工作日内告知结果。")
    assert (await answer("head_market", "补充：三个工作日内告知结果。", answers_seen=1)).delivered
    async with console.database.transaction() as session:
        assert (await session.get(Inquiry, inquiry_id)).answered_by == "staff_market"


async def test_r6_1b_a_routine_deadline_over_the_weekend_shows_working_time_left(console: Console, clock: Clock) -> None:
    clock.now = shanghai(2026, 12, 4, 17, 0)  # a winter Friday, half an hour before reply hours end
    inquiry_id = await new_inquiry(console.client, "导游强制购物怎么办")
    clock.now = shanghai(2026, 12, 5, 10, 0)  # Saturday: the deadline is Monday 10:00
    await console.client.post("/console/login", data={"username": "staff_market", "password": PASSWORD})
    page = await (await console.client.get(f"/console/inquiries/{inquiry_id}")).text()
    assert "12-07 10:00" in page
    assert "剩余工作时间1小时30分" in page  # Monday 08:30-10:00, not "剩余2天"
    queue = await (await console.client.get("/console")).text()
    assert "剩余工作时间1小时30分" in queue
    clock.now = shanghai(2026, 12, 7, 10, 5)
    await console.client.post("/console/login", data={"username": "staff_market", "password": PASSWORD})
    assert "已超时5分钟" in await (await console.client.get(f"/console/inquiries/{inquiry_id}")).text()


async def test_an_answer_too_long_for_one_platform_message_is_refused_before_sending(console: Console) -> None:
    # A cut answer would reach the netizen without its end and still stop the clock as "delivered".
    inquiry_id = await new_inquiry(console.client, "导游强制购物，不买不让下车，这归谁管？")
    headers = await api_login(console.client, "staff_market")
    sent_before = len(await (await console.platform.get("/received")).json())
    long_answer = "您好！" + "关于您反映的问题，我们已转市场管理处核查。" * 40  # 843 characters, 2,529 bytes
    response = await console.client.post(f"/api/inquiries/{inquiry_id}/answer", json={"text": long_answer},
                                         headers=headers)
    assert response.status == 400
    error = (await response.json())["error"]
    assert "超过微信客服消息单条上限" in error and "2529" in error
    assert len(await (await console.platform.get("/received")).json()) == sent_before  # nothing went out
    detail = await (await console.client.get(f"/api/inquiries/{inquiry_id}", headers=headers)).json()
    assert detail["status"] == "open"


async def test_api_and_console_refuse_malformed_fields_instead_of_guessing(console: Console) -> None:
    inquiry_id = await new_inquiry(console.client, "导游强制购物怎么办")
    headers = await api_login(console.client, "staff_market")
    bogus = await console.client.get("/api/inquiries?status=bogus", headers=headers)
    assert (bogus.status, await bogus.json()) == (400, {"error": "unknown query parameter 'status': the only one is "
                                                                 "all=0|1"})
    assert (await console.client.get("/api/inquiries?all=yes", headers=headers)).status == 400
    number = await console.client.post(f"/api/inquiries/{inquiry_id}/answer", json={"text": 123}, headers=headers)
    assert (number.status, await number.json()) == (400, {"error": "text must be a string"})

    await console.client.post("/console/login", data={"username": "head_market", "password": PASSWORD})
    page = await (await console.client.get(f"/console/inquiries/{inquiry_id}")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None
    draft = "您好！已转市场管理处核查。"
    tampered = await console.client.post(f"/console/inquiries/{inquiry_id}/answer", allow_redirects=False,
                                         data={"text": draft, "csrf_token": csrf.group(1), "answers_seen": "abc"})
    assert tampered.status == 400 and "答复表单不完整" in await tampered.text()
    assert await (await console.platform.get("/received")).json() == []  # nothing went out


async def test_an_answer_delivered_but_not_recorded_says_do_not_send_again(
        console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    # The database refuses the record after the platform has delivered: "retry" would reach the netizen twice.
    inquiry_id = await new_inquiry(console.client, "导游强制购物怎么办")
    headers = await api_login(console.client, "staff_market")
    record = staff._record_answer
    failures = {"left": 3}  # every attempt: the first and the two retries

    async def flaky(*args: object, **kwargs: object) -> staff.AnswerResult:
        if failures["left"]:
            failures["left"] -= 1
            raise StorageUnavailable("database is locked")
        return await record(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(staff, "_RECORD_RETRY_PAUSES", (0.0, 0.0))
    monkeypatch.setattr(staff, "_record_answer", flaky)
    response = await console.client.post(f"/api/inquiries/{inquiry_id}/answer", json={"text": "您好！已受理。"},
                                         headers=headers)
    body = await response.json()
    assert response.status == 500 and body["delivered"] is True and body["recorded"] is False
    assert "请勿重复发送" in body["error"]
    assert [r["text"] for r in await (await console.platform.get("/received")).json()] == ["您好！已受理。"]

    failures["left"] = 1  # a lock that passes: the retry records it, once
    second = await console.client.post(f"/api/inquiries/{inquiry_id}/answer",
                                       json={"text": "补充：三个工作日内告知结果。"}, headers=headers)
    assert second.status == 200 and (await second.json())["recorded"] is True
    detail = await (await console.client.get(f"/api/inquiries/{inquiry_id}", headers=headers)).json()
    assert [m["text"] for m in detail["messages"] if m["author"]] == ["补充：三个工作日内告知结果。"]


async def test_a_request_path_cannot_write_a_line_of_its_own_into_the_log(
        console: Console, log_lines: list[str]) -> None:
    # "%0A" in a path decodes to a newline: anyone, without logging in, could forge log lines (fresh-eyes pass)
    await console.client.get("/nothing%0AFORGED-404%00")
    refused = [line.strip() for line in log_lines if "refused (404)" in line]
    assert refused == ["GET /nothing\\x0aFORGED-404\\x00 refused (404): Not Found"]
    assert not any(line.startswith("FORGED") for line in "\n".join(log_lines).splitlines())


async def test_refusals_on_pages_and_blocked_answers_log_their_reason(console: Console, log_lines: list[str]) -> None:
    inquiry_id = await new_inquiry(console.client, "导游强制购物怎么办")
    headers = await api_login(console.client, "staff_market")
    blocked = await console.client.post(f"/api/inquiries/{inquiry_id}/answer", json={"text": "你是不是傻，滚"},
                                        headers=headers)
    assert blocked.status == 422 and (await blocked.json())["error"].startswith("screening blocked the answer: ")
    await console.client.post("/console/login", data={"username": "staff_market", "password": PASSWORD})
    page = await (await console.client.get(f"/console/inquiries/{inquiry_id}")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None
    await console.client.post(f"/console/inquiries/{inquiry_id}/transfer", allow_redirects=False,
                              data={"department": "arts", "reason": "", "csrf_token": csrf.group(1)})
    refusals = [line.strip() for line in log_lines if " refused (" in line]
    assert any("refused (422): screening blocked the answer: " in line for line in refusals), refusals
    assert any(line.endswith("refused (400): 转交必须说明理由") for line in refusals), refusals
    assert not any("the reason is on the page" in line for line in refusals)


async def test_api_chase_needs_no_body_as_its_openapi_says(console: Console) -> None:
    inquiry_id = await new_inquiry(console.client, "导游强制购物怎么办")
    headers = await api_login(console.client, "info")
    spec = await (await console.client.get("/api/openapi.json", headers=headers)).json()
    chase_body = spec["paths"]["/api/inquiries/{inquiry_id}/chase"]["post"]["requestBody"]
    assert chase_body["required"] is False and "note" in chase_body["content"]["application/json"]["schema"]["properties"]
    response = await console.client.post(f"/api/inquiries/{inquiry_id}/chase", headers=headers)
    assert response.status == 200, await response.text()


async def test_what_the_knowledge_base_answered_is_listed_for_staff_in_their_scope(console: Console) -> None:
    # An FAQ answer goes out with nobody reading it first; the queue lists open inquiries only, so staff had no
    # page showing what the FAQ had answered (second fresh-eyes pass)
    from bot.context import KNOWLEDGE
    from tests.conftest import import_starter_faq

    await import_starter_faq(console.database)
    assert await console.client.server.app[KNOWLEDGE].reload() is True
    status, _ = await post(console.client, push("text", sender="oKbKbKbKbKbKbKbKbKbKbKbKbKbKb",
                                                Content="请问市博物馆周一开门吗？"))
    assert status == 200
    await console.client.post("/console/login", data={"username": "info", "password": PASSWORD})
    page = await (await console.client.get("/console/knowledge-base")).text()
    assert "museum-hours" in page and "市博物馆周一开门" in page and "知识库答复" in page
    console.client.session.cookie_jar.clear()
    await console.client.post("/console/login", data={"username": "staff_market", "password": PASSWORD})
    assert "museum-hours" not in await (await console.client.get("/console/knowledge-base")).text()
