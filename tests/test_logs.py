"""bot.logs: personal data never reaches a log unmasked, in whatever format it was written.

The log masking and the answer screening share one detector (knowledge.pii): whatever the screening
would keep from a netizen — a phone number written +86 139-1234-5678 or in full-width digits, a
15-digit ID, an ID with a wrong check digit, a UnionPay card — is masked in every log line, alert
and report that goes through ``mask_text``. Masking runs on every log line, so it must stay cheap,
and it must leave ordinary numbers (prices, dates, postcodes, order numbers, addresses) readable.
"""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loguru import logger

from bot.logs import install_masking, mask_text
from knowledge import pii
from knowledge.screening import PERSONAL_DATA, Screener


@pytest.fixture(scope="module")
def screener() -> Screener:
    return Screener.load()


def digits_of(text: str) -> str:
    return re.sub(r"[^0-9Xx]", "", text)


# (what was logged, the personal data in it, what the log shows instead)
PERSONAL_DATA_IN_LOGS = [
    # phones
    ("phone 13912345678 called", "13912345678", "phone 139****5678 called"),
    ("phone +8613912345678 called", "+8613912345678", "phone 139****5678 called"),
    ("phone 139-1234-5678 called", "139-1234-5678", "phone 139****5678 called"),
    ("phone 139 1234 5678 called", "139 1234 5678", "phone 139****5678 called"),
    ("电话１３９１２３４５６７８，请回电", "１３９１２３４５６７８", "电话139****5678，请回电"),
    ("phone (+86)139.1234.5678 called", "(+86)139.1234.5678", "phone 139****5678 called"),
    ("电话（＋８６）１３９．１２３４．５６７８", "（＋８６）１３９．１２３４．５６７８", "电话139****5678"),
    ("phone 0086 139 1234 5678 called", "0086 139 1234 5678", "phone 139****5678 called"),
    # every digit spaced, and read out in Chinese numerals (second fresh-eyes pass)
    ("救命！电话1 3 8 0 0 1 3 8 0 0 0", "1 3 8 0 0 1 3 8 0 0 0", "救命！电话138****8000"),
    ("电话一三八一二三四五六七八，快来", "一三八一二三四五六七八", "电话138****5678，快来"),
    ("电话幺三八一二三四五六七八", "幺三八一二三四五六七八", "电话138****5678"),
    ("phone 139\u200b1234\u200b5678 called", "139\u200b1234\u200b5678", "phone 139****5678 called"),
    # the first three in brackets, as an area code is written
    ("电话(138)12345678", "(138)12345678", "电话138****5678"),
    ("电话（１３８）１２３４－５６７８找我", "（１３８）１２３４－５６７８", "电话138****5678找我"),
    ("phone +86 (138) 1234 5678 called", "+86 (138) 1234 5678", "phone 138****5678 called"),
    # ID-card numbers
    ("id 410102199003071234 ok", "410102199003071234", "id 410102********1234 ok"),
    ("id 1101 0119 9003 0712 34 ok", "1101 0119 9003 0712 34", "id 110101********1234 ok"),
    ("id 110101-19900307-1234 ok", "110101-19900307-1234", "id 110101********1234 ok"),
    ("id 110101900307123 ok", "110101900307123", "id 110101******123 ok"),  # first generation, 15 digits
    ("id 110105194912310021 ok", "110105194912310021", "id 110105********0021 ok"),  # wrong check digit
    ("id 11010519491231002x ok", "11010519491231002x", "id 110105********002X ok"),
    ("身份证号ID110101199003071234。", "110101199003071234", "身份证号ID110101********1234。"),
    # bank cards, e-mail
    ("card 6222021234567890123 ok", "6222021234567890123", "card 6222***********0123 ok"),
    ("card 4111 1111 1111 1111 ok", "4111 1111 1111 1111", "card 4111********1111 ok"),
    ("mail Zhang.San@QQ.com ok", "Zhang.San@QQ.com", "mail z***@qq.com ok"),  # as the screening shows it
]


@pytest.mark.parametrize(("line", "data", "masked"), PERSONAL_DATA_IN_LOGS)
def test_pii_masked_in_log_text(line: str, data: str, masked: str) -> None:
    assert mask_text(line) == masked
    assert data not in mask_text(line)


def test_pii_masking_keeps_the_openid_rule() -> None:
    line = "from oUpF8uMuAJO_M2pxb1Q9zNjWeS6o phone +86 138-1234-5678 id 4101 0219 9003 0712 34 ok"
    assert mask_text(line) == "from oUpF***S6o phone 138****5678 id 410102********1234 ok"


@pytest.mark.parametrize(
    "line",
    [
        "ticket price 120 yuan, student 60.5 yuan",
        "visit on 2026-12-04 09:30:15, 2026年12月4日, 20261204",
        "postcode 450000, office 0371-12345678, hotline 12345, 400-123-4567",
        "order 20261204000123 refunded",  # 14 digits
        "order 202612040001234567 refunded",  # 18 digits, but 20 is no province
        "case 202612040001234 filed",  # 15 digits, no province
        "case 110101202613451234 filed",  # a region-like start, but no birth date
        "client 139.123.45.167 refused (429)",  # an IPv4 address is not a dotted phone number
        "weibo sender 5012345678, inquiry #42, took 1234.5 ms",
        "already masked: 138****5678 110101********1234 z***@qq.com",
        "三四五个人一起去，一九四九年建成，十一点开门",  # Chinese numerals in ordinary text
        "scores 1 3 5 7 9 2 4 6 8 0",  # ten spaced digits: one short of a phone
        "area (0371)12345678, room (138)1234567, order (139)123456789",  # a landline; one short; one too many
    ],
)
def test_pii_ordinary_numbers_stay_readable_in_logs(line: str) -> None:
    assert mask_text(line) == line


def test_pii_every_log_line_is_masked(log_lines: list[str]) -> None:
    install_masking()  # as the app factory and the CLI do
    logger.info("netizen wrote: 我的手机+86 139-1234-5678，身份证1101 0119 9003 0712 34")
    assert log_lines[-1].strip() == "netizen wrote: 我的手机139****5678，身份证110101********1234"


# --------------------------------------------------------------------------------------------
# The logs mask at least what the screening blocks
# --------------------------------------------------------------------------------------------

SCREENED_ANSWERS = [
    "请联系负责人张先生，电话13812345678",
    "电话+86 138 1234 5678",
    "电话(+86)139.1234.5678",
    "投诉人身份证号11010519491231002X，请核对",
    "您好，身份证 1101 0119 9003 0712 34",
    "老身份证号110101900307123",
    "编号110105194912310021",
    "退款账户6222021234567890123",
    "退款请转到卡号4111 1111 1111 1111",
    "他的邮箱是zhangsan@qq.com",
]


@pytest.mark.parametrize("answer", SCREENED_ANSWERS)
def test_pii_log_masking_covers_what_the_screening_blocks(screener: Screener, answer: str) -> None:
    (finding,) = screener.screen(answer).findings
    assert finding.category == PERSONAL_DATA
    masked = mask_text(answer)
    assert finding.term in masked  # the same mask in the log as in the verdict
    assert screener.screen(masked).findings == ()


FRAGMENTS = [
    "138", "139", "1234", "5678", "0712", "34", "110101", "1101", "19900307", "900307", "123", "002X",
    "6222", "0212", "4111", "86", "+86", "(+86)", "（＋８６）", "１３９", "@", "qq.com", "zhang",
    " ", "-", ".", "—", "，", "电话", "\u200b", "\t", "\n", "x", "X", "0", "9",
]


@settings(max_examples=500, deadline=None)
@given(text=st.lists(st.sampled_from(FRAGMENTS), max_size=24).map("".join))
def test_pii_log_masking_covers_every_screening_finding(screener: Screener, text: str) -> None:
    # Every digit and letter of every number or address the screening finds is inside a span the
    # log masking replaces (positions are the original text's for both).
    masked_spans = [(s, e) for _, s, e in pii.find(pii.fold(text))]
    for finding in screener.screen(text).findings:
        if finding.category != PERSONAL_DATA:
            continue
        for at in range(finding.start, finding.end):
            if text[at].isalnum():
                assert any(s <= at < e for s, e in masked_spans), (text, finding)


@settings(max_examples=300, deadline=None)
@given(text=st.text())
def test_pii_log_masking_never_raises(text: str) -> None:
    assert isinstance(mask_text(text), str)


def test_pii_log_masking_is_fast() -> None:
    # It runs on every log line: typical lines, most without personal data, a few with.
    lines = [
        "wechat answer to oUp***S6o delivered",
        "POST /wechat refused (429): more than 60 requests a minute from one address",
        "alert overdue for inquiry #1234 sent to 王主任 (email w***@example.gov.cn) on try 2",
        "knowledge loaded: 1234 FAQ entries, word lists from /srv/guanwei/knowledge/data",
        "内容：您好，我的电话是13912345678，身份证110101199003071234，请回电",
    ] * 2_000
    started = time.perf_counter()
    for line in lines:
        mask_text(line)
    assert time.perf_counter() - started < 1.0  # about 0.1 s on a laptop


def test_pii_log_masking_of_a_long_hostile_line_is_bounded() -> None:
    started = time.perf_counter()
    for text in ("1-" * 5_000, "6-" * 5_000, "1" * 10_000, "62 " * 3_000, "x@" + "a." * 3_000):
        mask_text(text)
    assert time.perf_counter() - started < 3.0
