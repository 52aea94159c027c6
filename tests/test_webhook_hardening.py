"""Bad and hostile pushes found by trying to break the server: each kind kept as a test."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot import weibo
from bot.app import create_app
from bot.config import Settings, load_settings
from bot.context import CLOCK
from bot.platform_payloads import sign_wechat, wechat_xml
from bot.storage import Database, Inquiry, Message
from bot.wechat import signature_of
from knowledge import Classifier
from tests.conftest import ROOT, TOKEN, WEIBO_SECRET, Clock, shanghai
from tests.test_wechat_webhook import ACCOUNT, OPENID, crypto, now_of, post, push, reply_text

settings_profile = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


async def stored(database: Database, model: type) -> int:
    async with database.transaction() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_stale_timestamp_is_refused_as_replay(client: TestClient, database: Database) -> None:
    signed = sign_wechat(push("text", Content="你好"), token=TOKEN, timestamp=now_of(client) - 3600)
    response = await client.post("/wechat", params=signed.query, data=signed.body)
    assert response.status == 403
    assert await stored(database, Message) == 0


@pytest.mark.parametrize("form", ["nan", "+{t}", " {t}", "{t}e0", "{t}.0", "fullwidth", "-{t}"])
async def test_a_timestamp_that_is_not_plain_digits_is_refused(client: TestClient, database: Database, form: str) -> None:
    now = str(now_of(client))
    timestamp = now.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"}) if form == "fullwidth" \
        else form.format(t=now)
    query = {"timestamp": timestamp, "nonce": "n", "signature": signature_of(TOKEN, timestamp, "n")}
    response = await client.post("/wechat", params=query, data=push("text", Content="你好"))
    assert response.status == 403  # "nan" compared false with the window and passed before
    assert await stored(database, Message) == 0


async def test_used_timestamp_and_nonce_with_another_body_is_refused(client: TestClient, database: Database) -> None:
    first = sign_wechat(push("text", Content="请问博物馆几点开门"), token=TOKEN, timestamp=now_of(client), nonce="n1")
    assert (await client.post("/wechat", params=first.query, data=first.body)).status == 200
    # The platform's own retry (same query, same body) still passes...
    assert (await client.post("/wechat", params=first.query, data=first.body)).status == 200
    # ...a forged body under the captured signature does not.
    forged = push("text", sender="oForgedForgedForgedForgedFor", Content="导游强制购物，我要找记者曝光")
    response = await client.post("/wechat", params=first.query, data=forged)
    assert response.status == 403
    assert await stored(database, Inquiry) == 1


async def test_plain_push_refused_when_safe_mode_required(
    env: dict[str, str], database: Database, classifier: Classifier, clock: Clock, tmp_path: Path
) -> None:
    text = (ROOT / "config.yaml").read_text(encoding="utf-8").replace(
        "require_safe_mode: false", "require_safe_mode: true"
    )
    (tmp_path / "config.yaml").write_text(text, encoding="utf-8")
    settings = load_settings(tmp_path / "config.yaml", env=env)
    app = create_app(settings, database=database, classifier=classifier, clock=clock)
    async with TestClient(TestServer(app)) as client:
        assert (await post(client, push("text", Content="你好")))[0] == 403
        status, body = await post(client, push("text", Content="你好"), aes=True)
        assert status == 200 and "已登记" in reply_text(body, aes=True)


@pytest.mark.parametrize(
    "xml",
    [
        wechat_xml(to_user=ACCOUNT, from_user="", created_at=shanghai(2026, 12, 3, 9), msg_type="text", msg_id=1,
                   Content="no sender"),
        wechat_xml(to_user=ACCOUNT, from_user="o]]><x>", created_at=shanghai(2026, 12, 3, 9), msg_type="text",
                   msg_id=2, Content="markup in the sender"),
        wechat_xml(to_user=ACCOUNT, from_user=OPENID, created_at=shanghai(2026, 12, 3, 9), msg_type="text",
                   msg_id=int("9" * 70), Content="message id longer than 64 bits"),
        wechat_xml(to_user="gh_" + "x" * 80, from_user=OPENID, created_at=shanghai(2026, 12, 3, 9),
                   msg_type="text", msg_id=3, Content="account too long"),
        f"<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName>"
        "<CreateTime>13812345678x</CreateTime><MsgType>text</MsgType><Content>x</Content><MsgId>4</MsgId></xml>",
        f"<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName>"
        f"<CreateTime>{'9' * 30}</CreateTime><MsgType>text</MsgType><Content>x</Content><MsgId>5</MsgId></xml>",
        f"<xml><ToUserName>{ACCOUNT}</ToUserName><Encrypt>bm90IGEgcmVhbCBwYXlsb2Fk</Encrypt></xml>",
        '<!DOCTYPE xml><xml><MsgType>text</MsgType></xml>',
    ],
    ids=["no-sender", "markup-sender", "huge-msgid", "long-account", "createtime-text", "createtime-huge",
         "encrypt-without-encrypt-type", "bare-doctype"],
)
async def test_impossible_pushes_are_400_and_not_stored(
    client: TestClient, database: Database, xml: str, capfd: pytest.CaptureFixture[str]
) -> None:
    status, _ = await post(client, xml)
    assert status == 400
    assert await stored(database, Message) == 0
    assert "13812345678" not in capfd.readouterr().err  # never an unmasked phone number in the log


async def test_control_characters_are_stripped_before_storage(client: TestClient, database: Database) -> None:
    text = "请问\x00博物馆\x1b[2J开门\x1b]0;pwned\x07吗\x9b"
    body = weibo.build_push(type="text", sender_id=2000000077, receiver_id=5000000001,
                            created_at=shanghai(2026, 12, 3, 9, 59), text=text)
    timestamp = str(int(client.server.app[CLOCK]().timestamp() * 1000))
    params = {"timestamp": timestamp, "nonce": "1", "signature": weibo.sign(WEIBO_SECRET, timestamp, "1")}
    response = await client.post("/weibo", params=params, data=body)
    assert response.status == 200
    async with database.transaction() as session:
        inquiry = (await session.scalars(select(Inquiry))).one()
    assert inquiry.summary == "请问博物馆[2J开门]0;pwned吗"


async def test_weibo_time_far_in_the_future_is_400(client: TestClient, database: Database) -> None:
    body = json.dumps({"type": "text", "receiver_id": 5000000001, "sender_id": 3400000009,
                       "created_at": "Fri Dec 31 23:59:59 -0800 9999", "text": "hi", "data": {}}).encode()
    timestamp = str(int(client.server.app[CLOCK]().timestamp() * 1000))
    params = {"timestamp": timestamp, "nonce": "2", "signature": weibo.sign(WEIBO_SECRET, timestamp, "2")}
    response = await client.post("/weibo", params=params, data=body)
    assert response.status == 400
    assert await stored(database, Message) == 0


async def test_burst_of_different_messages_from_one_follower_makes_one_inquiry(
    client: TestClient, database: Database
) -> None:
    burst = [
        push("text", Content="景区门口的停车场收费太贵了"),
        push("image", PicUrl="http://mmbiz.qpic.cn/p.jpg", MediaId="m1"),
        push("location", Location_X="34.75", Location_Y="113.66", Scale=15, Label="某景区停车场"),
    ]
    results = await asyncio.gather(*(post(client, xml) for xml in burst))
    assert [status for status, _ in results] == [200, 200, 200]
    assert await stored(database, Inquiry) == 1
    refs = {reply_text(body).split("编号")[1][:6] for _, body in results}
    assert len(refs) == 1


async def test_r6_1d_critical_follow_up_goes_to_the_department_of_the_critical_message(
    client: TestClient, database: Database, clock: Clock
) -> None:
    await post(client, push("text", Content="请问有线电视坏了找谁修"))
    clock.now = shanghai(2026, 12, 3, 10, 5)
    await post(client, push("text", Content="你们局里有人收受贿赂当保护伞，我要向纪委举报，还要找记者曝光"))
    async with database.transaction() as session:
        inquiry = (await session.scalars(select(Inquiry))).one()
    assert (inquiry.severity, inquiry.department) == ("critical", "office")
    assert inquiry.summary.startswith("你们局里有人收受贿赂")


async def test_storage_down_then_up_loses_nothing(
    settings: Settings, database: Database, classifier: Classifier, clock: Clock, tmp_path: Path
) -> None:
    """The platform retries after a 503: the retry is stored once and answered."""
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    broken = Database(f"sqlite+aiosqlite:///{blocker / 'db.sqlite3'}")
    xml = push("text", Content="请问图书馆几点开门")
    async with TestClient(TestServer(create_app(settings, database=broken, classifier=classifier, clock=clock))) as c:
        assert (await post(c, xml))[0] == 503
    await broken.dispose()
    async with TestClient(TestServer(create_app(settings, database=database, classifier=classifier, clock=clock))) as c:
        status, body = await post(c, xml)
    assert status == 200 and "已登记" in reply_text(body)
    assert await stored(database, Inquiry) == 1


def test_safe_mode_signature_helper_matches_wechatpy() -> None:
    signed = sign_wechat("<xml><MsgType>text</MsgType></xml>", token=TOKEN, timestamp=1, nonce="n", crypto=crypto)
    encrypt = signed.body.decode().split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    assert signed.query["msg_signature"] == signature_of(TOKEN, "1", "n", encrypt)


async def test_a_flood_from_one_follower_is_told_to_slow_down_and_others_are_still_served(
    client: TestClient, database: Database
) -> None:
    flood = [push("text", sender="oFloodFloodFloodFloodFloodFl", Content=f"刷屏第{n}条") for n in range(25)]
    replies = [reply_text(body) for _, body in [await post(client, xml) for xml in flood]]
    assert sum("过于频繁" in r for r in replies) == 5  # 20 a minute are registered, the rest told politely
    status, body = await post(client, push("text", sender="oCalmCalmCalmCalmCalmCalmCal", Content="请问图书馆几点开门"))
    assert status == 200 and "已登记" in reply_text(body)
    async with database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Message).where(Message.direction == "in")) == 21


async def test_r6_1d_a_critical_report_from_a_rate_limited_follower_is_still_registered(
    client: TestClient, database: Database
) -> None:
    sender = "oPanicPanicPanicPanicPanicPa"
    for n in range(25):
        await post(client, push("text", sender=sender, Content=f"在吗{n}"))
    status, body = await post(client, push("text", sender=sender, Content="景区发生踩踏，有人受伤，赶紧派人来！"))
    assert status == 200 and "1小时内" in reply_text(body)
    status, body = await post(client, push("text", sender=sender, Content="在吗？"))
    assert "过于频繁" in reply_text(body)  # the limit still holds for the routine ones
    async with database.transaction() as session:
        critical = await session.scalar(select(func.count()).select_from(Inquiry).where(Inquiry.severity == "critical"))
        texts = (await session.scalars(select(Message.content).where(Message.direction == "in"))).all()
    assert critical == 1
    assert "景区发生踩踏，有人受伤，赶紧派人来！" in texts and "在吗？" not in texts


async def test_redis_unavailable_degrades_to_in_process_and_keeps_accepting(
    env: dict[str, str], database: Database, classifier: Classifier, clock: Clock
) -> None:
    settings = load_settings(ROOT / "config.yaml", env={**env, "GUANWEI_REDIS_URL": "redis://127.0.0.1:1/0"})
    app = create_app(settings, database=database, classifier=classifier, clock=clock)
    async with TestClient(TestServer(app)) as c:
        xml = push("text", Content="请问博物馆几点开门")
        first, retry = await post(c, xml), await post(c, xml)
        assert first[0] == retry[0] == 200 and reply_text(first[1]) == reply_text(retry[1])
        ready = await c.get("/readyz")
        assert ready.status == 503 and (await ready.json())["shared_state"].startswith("unavailable")
    assert await stored(database, Inquiry) == 1


@settings_profile
@given(body=st.binary(max_size=600))
def test_any_bytes_to_the_wechat_parser_are_a_clean_refusal_or_a_message(body: bytes) -> None:
    from bot.wechat import WeChatEndpoint, WeChatError

    endpoint = WeChatEndpoint(TOKEN, "wx1234567890abcdef", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
    query = {"timestamp": "1", "nonce": "n", "signature": signature_of(TOKEN, "1", "n")}
    for extra in ({}, {"encrypt_type": "aes", "msg_signature": "0" * 40}):
        with contextlib.suppress(WeChatError):
            endpoint.parse(body, {**query, **extra})


@settings_profile
@given(text=st.text(max_size=300))
def test_any_text_in_a_wechat_message_is_a_clean_refusal_or_a_message(text: str) -> None:
    from bot.inbound import InvalidInbound, checked
    from bot.wechat import WeChatEndpoint, WeChatError

    endpoint = WeChatEndpoint(TOKEN, "wx1234567890abcdef", None)
    query = {"timestamp": "1", "nonce": "n", "signature": signature_of(TOKEN, "1", "n")}
    xml = push("text", Content=text)
    with contextlib.suppress(WeChatError, InvalidInbound):
        checked(endpoint.parse(xml.encode("utf-8", "surrogatepass"), query).inbound)


async def test_secrets_and_personal_data_never_reach_the_log(client: TestClient, database: Database) -> None:
    from loguru import logger

    from tests.conftest import AES_KEY, TEST_ENV, WEIBO_SECRET

    lines: list[str] = []
    sink = logger.add(lines.append, level="DEBUG", format="{message}")
    try:
        await post(client, push("text", Content="我的电话13812345678，身份证410102199003071234，导游强制购物"))
        await post(client, push("text", Content="x"), token="wrongtoken")  # refused: logged
        await post(client, push("text", sender="o" + "x" * 27, msg_id=int("9" * 25), Content="bad id"))
        await client.get("/metrics")
    finally:
        logger.remove(sink)
    log = "".join(lines)
    assert "stored in inquiry" in log and "refused (403)" in log
    for secret in (*TEST_ENV.values(), AES_KEY, WEIBO_SECRET, OPENID, "13812345678", "410102199003071234"):
        assert secret not in log, secret


def _raw_push(content_xml: str) -> str:
    return (f"<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName>"
            f"<CreateTime>1796263200</CreateTime><MsgType>text</MsgType>{content_xml}<MsgId>6001</MsgId></xml>")


@pytest.mark.parametrize(("content_xml", "reason"), [
    ("<Content><b>x</b></Content>", "'Content' is not text (child elements or attributes)"),
    ("<Content>a</Content><Content>b</Content>", "'Content' is not text (a repeated element)"),
    ('<Content lang="zh">你好</Content>', "'Content' is not text (child elements or attributes)"),
    ("<Content>x</Content><Extra><y/></Extra>", "'Extra' is not text (child elements or attributes)"),
])
@pytest.mark.parametrize("aes", [False, True], ids=["plain", "safe-mode"])
async def test_a_field_that_is_not_text_is_400_with_the_reason_and_not_stored(
    client: TestClient, database: Database, content_xml: str, reason: str, aes: bool
) -> None:
    status, body = await post(client, _raw_push(content_xml), aes=aes)
    assert (status, body) == (400, f"{reason}\n")
    assert await stored(database, Message) == 0
