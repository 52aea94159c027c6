"""The WeChat webhook over real HTTP, with pushes built and signed as WeChat builds them."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime
from pathlib import Path

import pytest
import xmltodict
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from wechatpy.crypto import WeChatCrypto

from bot.app import create_app
from bot.config import Settings
from bot.context import CLOCK
from bot.platform_payloads import read_wechat_reply, sign_wechat, wechat_xml
from bot.storage import Database, Inquiry, Message
from bot.wechat import signature_of
from knowledge import Classifier
from tests.conftest import AES_KEY, APPID, TOKEN, Clock, shanghai

ACCOUNT = "gh_bureau0000001"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
_ids = itertools.count(6_000_000_000_000_000_001)
crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)


def push(msg_type: str, *, sender: str = OPENID, created: datetime | None = None, msg_id: int | None = -1,
         **fields: str | int) -> str:
    return wechat_xml(
        to_user=ACCOUNT, from_user=sender, created_at=created or shanghai(2026, 12, 3, 9, 59),
        msg_type=msg_type, msg_id=next(_ids) if msg_id == -1 else msg_id, **fields,
    )


async def post(client: TestClient, xml: str, *, aes: bool = False, token: str = TOKEN,
               wechat_crypto: WeChatCrypto | None = None, nonce: str | None = None) -> tuple[int, str]:
    signed = sign_wechat(xml, token=token, timestamp=now_of(client), nonce=nonce,
                         crypto=(wechat_crypto or crypto) if aes else None, to_user=ACCOUNT)
    response = await client.post("/wechat", params=signed.query, data=signed.body)
    return response.status, await response.text()


def now_of(client: TestClient) -> int:
    """The server's clock, so pushes are as fresh as the platform's."""
    return int(client.server.app[CLOCK]().timestamp())


def reply_text(body: str, aes: bool = False) -> str:
    return read_wechat_reply(body, crypto if aes else None)["Content"]


async def count(database: Database, model: type) -> int:
    async with database.transaction() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def only_inquiry(database: Database) -> Inquiry:
    async with database.transaction() as session:
        return (await session.scalars(select(Inquiry))).one()


def test_signature_matches_wechatpy_test_vector() -> None:
    assert signature_of("test", "1410685589", "test") == "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"


async def test_url_verification_echoes_echostr(client: TestClient) -> None:
    query = {"timestamp": "1410685589", "nonce": "abc", "echostr": "5837397520665436492"}
    query["signature"] = signature_of(TOKEN, query["timestamp"], query["nonce"])
    response = await client.get("/wechat", params=query)
    assert response.status == 200
    assert await response.text() == "5837397520665436492"


@pytest.mark.parametrize("signature", ["", "0" * 40, None, "你", "é" * 40])
async def test_url_verification_with_bad_signature_is_403(client: TestClient, signature: str | None) -> None:
    query = {"timestamp": "1410685589", "nonce": "abc", "echostr": "x"}
    if signature is not None:
        query["signature"] = signature
    response = await client.get("/wechat", params=query)
    assert response.status == 403


async def test_r7_3a_text_is_registered_routed_and_acknowledged_with_deadline(
    client: TestClient, database: Database
) -> None:
    status, body = await post(client, push("text", Content="你好，请问市博物馆周一开放吗？需要预约吗？"))
    assert status == 200
    reply = xmltodict.parse(body)["xml"]
    assert reply["ToUserName"] == OPENID and reply["FromUserName"] == ACCOUNT
    assert "已登记" in reply["Content"] and "今天12:00前答复" in reply["Content"]  # 10:00 + 2 working hours
    inquiry = await only_inquiry(database)
    assert (inquiry.channel, inquiry.sender, inquiry.severity, inquiry.status) == ("wechat", OPENID, "routine", "open")
    assert inquiry.department == "public_service"
    assert inquiry.due_at == shanghai(2026, 12, 3, 12, 0)
    assert inquiry.due_at.utcoffset() is not None
    assert await count(database, Message) == 2  # the message and our reply


async def test_safe_mode_decrypts_and_encrypts_the_reply(client: TestClient, database: Database) -> None:
    status, body = await post(client, push("text", Content="有线电视没信号了找谁？😡"), aes=True)
    assert status == 200
    envelope = xmltodict.parse(body)["xml"]
    assert set(envelope) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    assert "已登记" in reply_text(body, aes=True)
    assert (await only_inquiry(database)).department == "broadcasting"


async def test_safe_mode_payload_for_another_appid_is_refused(client: TestClient, database: Database) -> None:
    stranger = WeChatCrypto(TOKEN, AES_KEY, "wx0000000000000000")
    status, _ = await post(client, push("text", Content="你好"), aes=True, wechat_crypto=stranger)
    assert status == 400
    assert await count(database, Message) == 0


async def test_safe_mode_checks_msg_signature_not_only_signature(client: TestClient, database: Database) -> None:
    signed = sign_wechat(push("text", Content="你好"), token=TOKEN, timestamp=now_of(client), nonce="n",
                         crypto=crypto, to_user=ACCOUNT)
    query = {**signed.query, "msg_signature": "0" * 40}
    response = await client.post("/wechat", params=query, data=signed.body)
    assert response.status == 403
    assert await count(database, Message) == 0


@pytest.mark.parametrize("token", ["someoneelsestoken"])
async def test_wrong_signature_is_403_and_nothing_stored(client: TestClient, database: Database, token: str) -> None:
    status, _ = await post(client, push("text", Content="你好"), token=token)
    assert status == 403
    assert await count(database, Message) == 0


async def test_missing_signature_is_403(client: TestClient, database: Database) -> None:
    response = await client.post("/wechat", params={"timestamp": "1", "nonce": "2"}, data=push("text", Content="x"))
    assert response.status == 403
    assert await count(database, Message) == 0


async def test_a_non_ascii_signature_is_403_like_any_wrong_one(client: TestClient, database: Database) -> None:
    response = await client.post("/wechat?signature=%E4%BD%A0&timestamp=1&nonce=2", data="x")
    assert (response.status, await response.text()) == (403, "signature does not match\n")
    weibo = await client.post("/weibo?signature=%E4%BD%A0&timestamp=1&nonce=2", data="x")
    assert weibo.status == 403
    assert await count(database, Message) == 0


async def test_r6_1d_voice_recognition_is_classified_and_gets_one_hour_promise(
    client: TestClient, database: Database, clock: Clock
) -> None:
    clock.now = shanghai(2026, 12, 5, 22, 10)  # Saturday night: critical ignores reply hours (R6.1c)
    status, body = await post(client, push(
        "voice", MediaId="m1", Format="amr",
        Recognition="我在景区门口看到好多人挤在一起有人被挤倒了好像踩踏了赶紧派人来",
    ))
    assert status == 200
    text = reply_text(body)
    assert "1小时内" in text and "今天23:10" in text
    inquiry = await only_inquiry(database)
    assert inquiry.severity == "critical"
    assert inquiry.due_at == shanghai(2026, 12, 5, 23, 10)
    assert any("踩踏" in term for term in inquiry.matched)


async def test_r6_1b_message_at_1745_on_winter_friday_is_promised_monday(
    client: TestClient, database: Database, clock: Clock
) -> None:
    clock.now = shanghai(2026, 12, 4, 17, 45)
    _, body = await post(client, push("text", Content="请问图书馆周末几点开门？"))
    assert "12月7日（周一）10:30前" in reply_text(body)
    assert (await only_inquiry(database)).due_at == shanghai(2026, 12, 7, 10, 30)


async def test_three_retries_make_one_inquiry_and_identical_replies(client: TestClient, database: Database) -> None:
    xml = push("text", Content="导游强制购物，不买不让走，这归谁管？")
    first = await post(client, xml)
    retries = await asyncio.gather(*(post(client, xml, nonce=f"retry{n}") for n in range(2)))
    later = await post(client, xml, nonce="late")
    replies = {reply_text(body) for _, body in (first, *retries, later)}
    assert {status for status, _ in (first, *retries, later)} == {200}
    assert len(replies) == 1
    assert await count(database, Inquiry) == 1
    assert await count(database, Message) == 2


async def test_concurrent_retries_while_first_is_running_make_one_inquiry(
    client: TestClient, database: Database
) -> None:
    xml = push("text", Content="在景区被黑导游宰客，我要曝光")
    results = await asyncio.gather(*(post(client, xml, nonce=f"n{n}") for n in range(3)))
    assert len({reply_text(body) for _, body in results}) == 1
    assert await count(database, Inquiry) == 1


async def test_events_are_deduplicated_by_sender_and_time(client: TestClient, database: Database) -> None:
    xml = push("event", msg_id=None, Event="subscribe", EventKey="")
    first, second = await post(client, xml), await post(client, xml)
    assert first[0] == second[0] == 200
    assert reply_text(first[1]) == reply_text(second[1])
    assert await count(database, Message) == 2  # one event + one welcome


async def test_follow_up_joins_the_open_inquiry(client: TestClient, database: Database) -> None:
    await post(client, push("text", Content="请问消费券怎么领？"))
    _, body = await post(client, push("text", Content="补充一下，是文旅消费券", created=shanghai(2026, 12, 3, 10, 1)))
    assert "补充的内容已收到" in reply_text(body)
    assert await count(database, Inquiry) == 1
    async with database.transaction() as session:
        inbound = (await session.scalars(select(Message).where(Message.direction == "in"))).all()
    assert {m.inquiry_id for m in inbound} == {1}


async def test_r6_1d_follow_up_that_turns_critical_shortens_the_deadline(
    client: TestClient, database: Database, clock: Clock
) -> None:
    await post(client, push("text", Content="请问怎么投诉旅行社？"))
    clock.now = shanghai(2026, 12, 3, 10, 20)
    _, body = await post(client, push("text", Content="导游把游客打伤了，已经有十几个人受伤，我要找记者曝光"))
    inquiry = await only_inquiry(database)
    assert inquiry.severity == "critical"
    assert inquiry.due_at == shanghai(2026, 12, 3, 11, 20)
    assert "1小时内" in reply_text(body)


@pytest.mark.parametrize(
    ("msg_type", "fields", "kind_word"),
    [
        ("image", {"PicUrl": "http://mmbiz.qpic.cn/x.jpg", "MediaId": "m"}, "图片"),
        ("video", {"MediaId": "m", "ThumbMediaId": "t"}, "视频"),
        ("shortvideo", {"MediaId": "m", "ThumbMediaId": "t"}, "小视频"),
        ("location", {"Location_X": "34.75", "Location_Y": "113.66", "Scale": 15, "Label": "二七广场"}, "位置"),
        ("link", {"Title": "一篇文章", "Description": "看看", "Url": "http://example.org/a"}, "链接"),
        ("voice", {"MediaId": "m", "Format": "amr"}, "语音"),  # no Recognition: nothing to classify
    ],
)
async def test_r7_3a_every_message_type_is_registered(
    client: TestClient, database: Database, msg_type: str, fields: dict[str, str], kind_word: str
) -> None:
    status, body = await post(client, push(msg_type, **fields))
    assert status == 200
    assert f"您发送的{kind_word}已登记" in reply_text(body)
    inquiry = await only_inquiry(database)
    assert inquiry.department == "info_center" or inquiry.department_confidence > 0


@pytest.mark.parametrize(
    ("event", "extra"),
    [
        ("unsubscribe", {}),
        ("SCAN", {"EventKey": "123", "Ticket": "t"}),
        ("CLICK", {"EventKey": "MENU_CONTACT"}),
        ("VIEW", {"EventKey": "http://example.org/"}),
        ("LOCATION", {"Latitude": "34.75", "Longitude": "113.66", "Precision": "30"}),
        ("TEMPLATESENDJOBFINISH", {"MsgID": "200163836", "Status": "success"}),
    ],
)
async def test_events_are_stored_and_acknowledged_without_inquiry(
    client: TestClient, database: Database, event: str, extra: dict[str, str]
) -> None:
    status, body = await post(client, push("event", msg_id=None, Event=event, **extra))
    assert (status, body) == (200, "success")
    assert await count(database, Inquiry) == 0
    async with database.transaction() as session:
        stored = (await session.scalars(select(Message))).one()
    assert (stored.kind, stored.event) == ("event", event.lower())


async def test_subscribe_gets_the_welcome_text(client: TestClient) -> None:
    _, body = await post(client, push("event", msg_id=None, Event="subscribe", EventKey="qrscene_123", Ticket="t"))
    assert "欢迎关注" in reply_text(body)


async def test_unknown_message_type_is_stored_and_answered_politely(client: TestClient, database: Database) -> None:
    status, body = await post(client, push("miniprogrampage", Title="小程序", AppId="wx1", PagePath="p"))
    assert status == 200
    assert "暂不支持" in reply_text(body)
    assert await count(database, Inquiry) == 0
    assert await count(database, Message) == 2


async def test_xml_without_msgtype_is_acknowledged_and_not_stored(client: TestClient, database: Database) -> None:
    xml = f"<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName></xml>"
    assert await post(client, xml) == (200, "success")
    assert await count(database, Message) == 0


async def test_control_character_and_cdata_end_in_content_still_give_well_formed_reply(
    client: TestClient, database: Database
) -> None:
    status, body = await post(client, push("text", Content="请问\x1d门票]]>多少钱"))
    assert status == 200
    assert "已登记" in reply_text(body)  # parses as XML
    assert (await only_inquiry(database)).summary == "请问门票]]>多少钱"


async def test_xml_with_a_dtd_is_refused(client: TestClient, database: Database) -> None:
    xml = '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaa">]><xml><MsgType>text</MsgType></xml>'
    status, _ = await post(client, xml)
    assert status == 400
    assert await count(database, Message) == 0


async def test_garbage_encrypt_is_4xx_not_500(client: TestClient) -> None:
    body = f"<xml><ToUserName>{ACCOUNT}</ToUserName><Encrypt>bm90IGEgcmVhbCBwYXlsb2Fk</Encrypt></xml>"
    query = {"timestamp": "1", "nonce": "2", "signature": signature_of(TOKEN, "1", "2"), "encrypt_type": "aes",
             "msg_signature": signature_of(TOKEN, "1", "2", "bm90IGEgcmVhbCBwYXlsb2Fk")}
    response = await client.post("/wechat", params=query, data=body)
    assert response.status == 400


async def test_storage_unavailable_answers_503_so_wechat_retries(
    settings: Settings, classifier: Classifier, clock: Clock, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the database directory should be")
    broken = Database(f"sqlite+aiosqlite:///{blocker / 'guanwei.sqlite3'}")
    app = create_app(settings, database=broken, classifier=classifier, clock=clock)
    async with TestClient(TestServer(app)) as client:
        status, body = await post(client, push("text", Content="你好"))
    await broken.dispose()
    assert status == 503
    assert "success" not in body



async def test_safe_mode_message_naming_another_account_than_its_envelope_is_refused(
        client: TestClient, database: Database) -> None:
    inner = wechat_xml(to_user="gh_someoneelse01", from_user=OPENID, created_at=shanghai(2026, 12, 3, 9, 59),
                       msg_type="text", msg_id=next(_ids), Content="你好")
    status, _ = await post(client, inner, aes=True)  # the envelope says ACCOUNT
    assert status == 400
    assert await count(database, Message) == 0
