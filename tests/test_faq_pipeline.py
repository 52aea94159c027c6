"""FAQ answers as passive replies: a routine question answered at once, never a critical one."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.context import KNOWLEDGE
from bot.storage import Database, Inquiry, InquiryCycle, save_faq_entries
from tests.conftest import shanghai
from tests.test_wechat_webhook import post, push, reply_text


async def inquiries(database: Database) -> list[Inquiry]:
    async with database.transaction() as session:
        return list((await session.scalars(select(Inquiry).order_by(Inquiry.id))).all())


async def test_routine_question_gets_the_faq_answer_and_is_answered_by_the_knowledge_base(
    faq_client: TestClient, database: Database
) -> None:
    status, body = await post(faq_client, push("text", Content="你好，请问市博物馆周一开门吗？"))
    assert status == 200
    text = reply_text(body)
    assert "每周一闭馆" in text and "自动答复" in text and "000001" in text
    [inquiry] = await inquiries(database)
    assert (inquiry.status, inquiry.answered_by, inquiry.faq_id) == ("answered", "knowledge_base", "museum-hours")
    assert inquiry.answered_at == shanghai(2026, 12, 3, 10, 0)


async def test_r6_1d_critical_message_never_gets_an_faq_answer(faq_client: TestClient, database: Database) -> None:
    _, body = await post(faq_client, push("text", Content="博物馆今天开门吗？门口发生踩踏了，好多人受伤"))
    text = reply_text(body)
    assert "1小时内" in text and "自动答复" not in text
    [inquiry] = await inquiries(database)
    assert (inquiry.severity, inquiry.status, inquiry.faq_id) == ("critical", "open", None)


async def test_unmatched_question_is_queued_for_staff(faq_client: TestClient, database: Database) -> None:
    _, body = await post(faq_client, push("text", Content="我家楼下的非遗传承人想申请补贴，需要什么材料"))
    assert "已登记" in reply_text(body)
    [inquiry] = await inquiries(database)
    assert inquiry.status == "open" and inquiry.faq_id is None


async def test_imported_faq_is_picked_up_without_restart(faq_client: TestClient, database: Database) -> None:
    question = "请问城市书房夜间几点关门"
    _, before = await post(faq_client, push("text", sender="oAAAAAAAAAAAAAAAAAAAAAAAAAAA", Content=question))
    assert "自动答复" not in reply_text(before)
    async with database.transaction() as session:
        await save_faq_entries(session, [{
            "id": "city-study-night", "question": "城市书房夜间几点关门", "answer": "您好！城市书房（示例）每晚22:00闭馆。",
            "alternates": [], "department": "public_service", "tags": [],
        }], shanghai(2026, 12, 3, 10, 1), replace_all=False)
    assert await faq_client.server.app[KNOWLEDGE].reload() is True  # what the watcher does every few seconds
    _, after = await post(faq_client, push("text", sender="oBBBBBBBBBBBBBBBBBBBBBBBBBBB", Content=question))
    assert "22:00闭馆" in reply_text(after)


async def test_r10_an_faq_answer_that_fails_the_answer_screening_is_never_sent(
    faq_client: TestClient, database: Database
) -> None:
    # Written straight into the database (`guanwei kb import` refuses it): a personal phone number.
    async with database.transaction() as session:
        await save_faq_entries(session, [{
            "id": "night-duty", "question": "夜里找谁值班", "answer": "夜里请拨打张三手机13812345678。",
            "alternates": [], "department": "info_center", "tags": [],
        }], shanghai(2026, 12, 3, 10, 1), replace_all=False)
    assert await faq_client.server.app[KNOWLEDGE].reload() is True
    _, body = await post(faq_client, push("text", Content="夜里找谁值班"))
    text = reply_text(body)
    assert "13812345678" not in text and "自动答复" not in text and "已登记" in text
    [inquiry] = await inquiries(database)
    assert (inquiry.status, inquiry.faq_id) == ("open", None)  # a person answers it


async def test_an_faq_answer_too_long_for_one_message_waits_for_a_person(
    faq_client: TestClient, database: Database
) -> None:
    # Written straight into the database (`guanwei kb import` refuses it): 590 emoji are 2,360 bytes, more than
    # one WeChat message; the passive reply went out that long (fresh-eyes pass) and Weibo's would be cut
    async with database.transaction() as session:
        await save_faq_entries(session, [{
            "id": "emoji-guide", "question": "有没有表情版的游览指南", "answer": "🏯" * 590,
            "alternates": [], "department": "info_center", "tags": [],
        }], shanghai(2026, 12, 3, 10, 1), replace_all=False)
    assert await faq_client.server.app[KNOWLEDGE].reload() is True
    _, body = await post(faq_client, push("text", Content="有没有表情版的游览指南"))
    text = reply_text(body)
    assert "🏯" not in text and "已登记" in text
    [inquiry] = await inquiries(database)
    assert (inquiry.status, inquiry.faq_id) == ("open", None)


async def test_r6_1d_an_emergency_after_an_faq_answer_is_critical_and_routed_by_itself(
    faq_client: TestClient, database: Database
) -> None:
    _, first = await post(faq_client, push("text", Content="你好，请问市博物馆周一开门吗？"))
    assert "自动答复" in reply_text(first)
    emergency = "我家孩子在景区走丢了，五岁，穿红衣服，求求你们帮忙"
    _, body = await post(faq_client, push("text", Content=emergency))
    text = reply_text(body)
    assert "1小时内" in text and "已并入" not in text  # the critical acknowledgement, not "your addition"
    [inquiry] = await inquiries(database)
    assert (inquiry.status, inquiry.cycle, inquiry.severity) == ("open", 2, "critical")
    assert inquiry.department == "industry" and inquiry.summary == emergency  # not the museum's department
    assert inquiry.next_alert_at == shanghai(2026, 12, 3, 10, 0)  # the ladder starts at once
    # The museum question's cycle is kept as it was, for the monthly report (R4.5).
    async with database.transaction() as session:
        [kept] = (await session.scalars(select(InquiryCycle))).all()
    assert (kept.inquiry_id, kept.cycle, kept.severity, kept.department, kept.answered_by) == (
        inquiry.id, 1, "routine", "public_service", "knowledge_base")
    at = shanghai(2026, 12, 3, 10, 0)
    assert (kept.clock_started_at, kept.answered_at, kept.ended_at, kept.due_at) == (
        at, at, at, shanghai(2026, 12, 3, 12, 0))


async def test_a_new_clear_question_after_an_faq_answer_goes_to_its_own_department(
    faq_client: TestClient, database: Database
) -> None:
    await post(faq_client, push("text", Content="你好，请问市博物馆周一开门吗？"))
    _, body = await post(faq_client, push("text", Content="还有，我家的有线电视机顶盒一直显示无信号，找谁修"))
    assert "已并入" in reply_text(body)
    [inquiry] = await inquiries(database)
    assert (inquiry.status, inquiry.severity, inquiry.department) == ("open", "routine", "broadcasting")


@pytest.mark.parametrize("followup", ["人呢", "怎么还没人回复", "我想问一下那个事情怎么样了"])
async def test_r6_2_a_follow_up_with_no_subject_keeps_the_inquiry_in_its_department(
    faq_client: TestClient, database: Database, followup: str
) -> None:
    # The model sends such messages to info_center, the fallback, with confidence 0.5-0.98: a follow-up of a
    # conversation is about the conversation, so its department stays (after an answer, and while open).
    await post(faq_client, push("text", Content="你好，请问市博物馆周一开门吗？"))  # public_service, by the FAQ
    await post(faq_client, push("text", Content=followup))
    [inquiry] = await inquiries(database)
    assert (inquiry.status, inquiry.cycle, inquiry.department) == ("open", 2, "public_service")
    await post(faq_client, push("text", Content=followup))
    [inquiry] = await inquiries(database)
    assert (inquiry.status, inquiry.cycle, inquiry.department) == ("open", 2, "public_service")


async def test_a_new_question_the_faq_answers_after_an_answer_is_answered_at_once(
    faq_client: TestClient, database: Database
) -> None:
    await post(faq_client, push("text", Content="你好，请问市博物馆周一开门吗？"))
    _, body = await post(faq_client, push("text", Content="图书馆几点开门"))
    assert "自动答复" in reply_text(body) and "已并入" not in reply_text(body)  # not "wait until Monday"
    [inquiry] = await inquiries(database)
    assert (inquiry.status, inquiry.cycle, inquiry.answered_by, inquiry.faq_id) == (
        "answered", 2, "knowledge_base", "library-hours")


async def test_an_faq_question_while_another_waits_for_a_person_is_answered_and_the_wait_goes_on(
    faq_client: TestClient, database: Database
) -> None:
    await post(faq_client, push("text", Content="我家楼下的非遗传承人想申请补贴，需要什么材料"))
    _, body = await post(faq_client, push("text", Content="另外，图书馆几点开门"))
    assert "自动答复" in reply_text(body)
    [inquiry] = await inquiries(database)
    assert inquiry.status == "open" and inquiry.answered_by is None  # the first question still waits
