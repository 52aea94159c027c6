"""The Weibo fans-service webhook over real HTTP, pushes built and signed as the platform does."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot import weibo
from bot.context import CLOCK
from bot.storage import Database, Inquiry, Message
from tests.conftest import WEIBO_SECRET, shanghai

ACCOUNT = 5_000_000_001
USER = 2_000_000_042


def body(type_: str, text: str = "", data: dict[str, Any] | None = None, *, sender: int = USER,
         created: datetime | None = None) -> bytes:
    return weibo.build_push(type=type_, sender_id=sender, receiver_id=ACCOUNT,
                            created_at=created or shanghai(2026, 12, 3, 9, 59, 30), text=text, data=data)


def signed(client: TestClient, secret: str = WEIBO_SECRET, nonce: str | None = None) -> dict[str, str]:
    nonce = nonce or str(secrets.randbelow(10**8))
    timestamp = str(int(client.server.app[CLOCK]().timestamp() * 1000) + 123)  # milliseconds, as Weibo sends
    return {"timestamp": timestamp, "nonce": nonce, "signature": weibo.sign(secret, timestamp, nonce)}


async def send(client: TestClient, payload: bytes, **kwargs: str) -> tuple[int, dict[str, Any] | None]:
    response = await client.post("/weibo", params=signed(client, **kwargs), data=payload,
                                 headers={"Content-Type": "application/json"})
    raw = await response.text()
    return response.status, json.loads(raw) if response.status == 200 and raw else None


def text_of(reply: dict[str, Any] | None) -> str:
    assert reply is not None
    return weibo.decode_reply_data(reply["data"])["text"]


async def inquiries(database: Database) -> list[Inquiry]:
    async with database.transaction() as session:
        return list((await session.scalars(select(Inquiry))).all())


async def message_count(database: Database) -> int:
    async with database.transaction() as session:
        return await session.scalar(select(func.count()).select_from(Message)) or 0


async def test_url_verification_with_published_vector(client: TestClient) -> None:
    query = {"timestamp": "1397022061823", "nonce": "57155157", "echostr": "hello",
             "signature": "90e4c22c90a58f26526c2dd5b6c56c8822edeaa1"}
    response = await client.get("/weibo", params=query)
    assert (response.status, await response.text()) == (200, "hello")


async def test_wrong_signature_is_403_and_nothing_stored(client: TestClient, database: Database) -> None:
    status, _ = await send(client, body("text", "你好"), secret="not-our-secret")
    assert status == 403
    assert await message_count(database) == 0


async def test_r7_3a_text_push_is_registered_and_answered_in_json(client: TestClient, database: Database) -> None:
    status, reply = await send(client, body("text", "有线电视一直没信号，请问找哪个部门？"))
    assert status == 200 and reply is not None
    assert reply["result"] is True
    assert (reply["receiver_id"], reply["sender_id"], reply["type"]) == (USER, ACCOUNT, "text")
    assert "已登记" in text_of(reply) and "今天12:00" in text_of(reply)
    [inquiry] = await inquiries(database)
    assert (inquiry.channel, inquiry.sender, inquiry.department) == ("weibo", str(USER), "broadcasting")


async def test_r6_1d_accusation_and_media_threat_is_critical(client: TestClient, database: Database) -> None:
    _, reply = await send(client, body("text", "你们文旅局有人收了旅行社的好处费当保护伞，我已经把证据发给记者了"))
    assert "1小时内" in text_of(reply)
    [inquiry] = await inquiries(database)
    assert inquiry.severity == "critical"
    assert inquiry.due_at == shanghai(2026, 12, 3, 11, 0)


async def test_three_retries_make_one_inquiry_and_identical_replies(client: TestClient, database: Database) -> None:
    payload = body("text", "请问消费券怎么领？")
    results = [await send(client, payload)]
    results += await asyncio.gather(*(send(client, payload, nonce=f"{n}") for n in range(2)))
    assert {status for status, _ in results} == {200}
    assert len({text_of(reply) for _, reply in results}) == 1
    assert len(await inquiries(database)) == 1
    assert await message_count(database) == 2


async def test_two_messages_in_the_same_second_are_two_messages(client: TestClient, database: Database) -> None:
    await send(client, body("text", "请问博物馆几点开门"))
    await send(client, body("text", "还有，周一开吗"))
    assert len(await inquiries(database)) == 1  # the second joins the first
    assert await message_count(database) == 4


@pytest.mark.parametrize(("type_", "data"), [("voice", {"vfid": 1, "tovfid": 2}), ("image", {"vfid": 3, "tovfid": 4})])
async def test_r7_3a_voice_and_image_are_registered(
    client: TestClient, database: Database, type_: str, data: dict[str, Any]
) -> None:
    placeholder = weibo.VOICE_PLACEHOLDER if type_ == "voice" else weibo.IMAGE_PLACEHOLDER
    status, reply = await send(client, body(type_, placeholder, data))
    assert status == 200
    assert "已登记" in text_of(reply)
    [inquiry] = await inquiries(database)
    assert inquiry.summary == f"[{type_}]"  # the platform's placeholder text is not the netizen's words


async def test_position_push_is_registered(client: TestClient, database: Database) -> None:
    where = {"longitude": "113.66", "latitude": "34.75"}
    status, reply = await send(client, body("position", "我在这里: 二七广场", where))
    assert status == 200 and "位置" in text_of(reply)
    assert len(await inquiries(database)) == 1


@pytest.mark.parametrize("subtype", ["follow", "subscribe", "scan_follow"])
async def test_follow_events_get_the_welcome(client: TestClient, database: Database, subtype: str) -> None:
    status, reply = await send(client, body("event", "", {"subtype": subtype}))
    assert status == 200 and "欢迎关注" in text_of(reply)
    assert await inquiries(database) == []


@pytest.mark.parametrize("subtype", ["unfollow", "unsubscribe", "scan", "click", "view", "something_new"])
async def test_other_events_are_stored_with_empty_reply(client: TestClient, database: Database, subtype: str) -> None:
    status, reply = await send(client, body("event", "", {"subtype": subtype, "key": "k"}))
    assert (status, reply) == (200, None)
    assert await message_count(database) == 1


async def test_unknown_push_type_is_acknowledged(client: TestClient, database: Database) -> None:
    status, _ = await send(client, body("mention_video", "?"))
    assert status == 200
    assert await inquiries(database) == []


@pytest.mark.parametrize("payload", [b"not json", b"[1,2]", b'{"type":"text"}', b"\xff\xfe{}"])
async def test_malformed_push_is_400(client: TestClient, database: Database, payload: bytes) -> None:
    status, _ = await send(client, payload)
    assert status == 400
    assert await message_count(database) == 0


def test_long_reply_is_cut_under_the_limit_on_a_character_boundary() -> None:
    long = "请问" + "👍🏽" * 400
    rendered = weibo.render_text_reply(to_user=USER, from_account=ACCOUNT, text=long)
    text = weibo.decode_reply_data(json.loads(rendered)["data"])["text"]
    assert len(text) <= weibo.REPLY_TEXT_LIMIT
    assert not text.endswith("👍")  # never separated from its skin-tone modifier


async def test_a_push_of_the_accounts_own_message_is_acknowledged_and_not_an_inquiry(
        client: TestClient, database: Database) -> None:
    status, reply = await send(client, body("text", "您好！您反映的问题已转相关处室。", sender=ACCOUNT))
    assert (status, reply) == (200, None)
    assert await inquiries(database) == [] and await message_count(database) == 0
