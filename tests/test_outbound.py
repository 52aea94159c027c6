"""Answers going out (issue 5, item 4): real HTTP on loopback against the fake WeChat + Weibo platform.

The fake (`bot.fake_platform`) runs in the test's event loop on 127.0.0.1, port 0; wechatpy talks to
it through requests in a worker thread, the Weibo sender through aiohttp. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from loguru import logger

from bot.fake_platform import FAKE_PLATFORM, FakePlatform, create_fake_platform, run_fake_platform
from bot.inbound import Channel
from bot.outbound import (
    DELIVERED,
    FAILED,
    UNDELIVERABLE,
    WECHAT_TEXT_MAX_BYTES,
    DeliveryOutcome,
    Outbound,
    WeChatSender,
    WeiboSender,
    _weibo_refusal,
    cut_utf8,
)
from bot.weibo import decode_reply_data, encode_reply_data, graphemes
from escalation.notifiers import WeChatAPIClient

APPID = "wx1234567890abcdef"
APPSECRET = "s3cr3t-appsecret-never-logged"
WEIBO_TOKEN = "2.00weibo-fans-service-token-never-logged"
OPENID = "oABCD1234efgh5678ijkl9012mnop"  # shaped like a real one: o + 27 characters
WEIBO_USER = "2000000042"
ANSWER = "您好，古城墙夜游每天19:00–22:00开放，周一闭馆。感谢您的留言！"
FAMILY = "👨\u200d👩\u200d👧"  # one user-perceived character, 18 bytes of UTF-8


@dataclass
class Platform:
    fake: FakePlatform
    server: TestServer

    @property
    def wechat_base(self) -> str:
        return str(self.server.make_url("/cgi-bin/"))

    @property
    def base(self) -> str:
        return str(self.server.make_url("/")).rstrip("/")


@pytest.fixture
async def platform() -> AsyncIterator[Platform]:
    app = create_fake_platform(appid=APPID, secret=APPSECRET, weibo_token=WEIBO_TOKEN)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield Platform(app[FAKE_PLATFORM], server)
    finally:
        await server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def wechat_sender(base_url: str, secret: str = APPSECRET) -> WeChatSender:
    return WeChatSender(lambda: WeChatAPIClient(APPID, secret, api_base_url=base_url, timeout=1.0))


@pytest.fixture
def wechat(platform: Platform) -> Iterator[WeChatSender]:
    sender = wechat_sender(platform.wechat_base)
    yield sender
    sender.close()


@pytest.fixture
def weibo(platform: Platform, http: aiohttp.ClientSession) -> WeiboSender:
    return WeiboSender(http, WEIBO_TOKEN, api_base_url=platform.base, timeout=1.0)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- WeChat --------------------------------------------------------------------------------------

async def test_wechat_answer_is_delivered(platform: Platform, wechat: WeChatSender) -> None:
    outcome = await wechat.send_text(OPENID, ANSWER)

    assert outcome == DeliveryOutcome(DELIVERED, None, None)
    assert platform.fake.wechat_sent == [{"touser": OPENID, "msgtype": "text", "text": {"content": ANSWER}}]
    [received] = platform.fake.received
    assert (received.channel, received.to, received.text, received.delivered) == ("wechat", OPENID, ANSWER, True)


async def test_wechat_token_fetched_once_and_reused(platform: Platform, wechat: WeChatSender) -> None:
    await asyncio.gather(*(wechat.send_text(f"{OPENID[:-1]}{i}", f"答复{i}") for i in range(5)))
    await wechat.send_text(OPENID, ANSWER)

    assert platform.fake.token_fetches == 1  # five at once, then one more: still one token
    assert sum(m.delivered for m in platform.fake.received) == 6


async def test_wechat_token_replaced_elsewhere_is_refetched_once(platform: Platform, wechat: WeChatSender) -> None:
    await wechat.send_text(OPENID, "第一条")
    platform.fake.issue_token()  # another worker fetched: ours is no longer the latest (40001)

    outcome = await wechat.send_text(OPENID, "第二条")

    assert outcome.status == DELIVERED
    assert platform.fake.token_fetches == 3
    assert [m.text for m in platform.fake.received] == ["第一条", "第二条"]


@pytest.mark.parametrize(
    ("openid", "errcode", "words"),
    [
        ("oExpired" + "x" * 20, 45015, "48小时"),
        ("oGone" + "x" * 23, 43004, "取消关注"),
        ("not an openid!", 40003, "openid 无效"),
    ],
)
async def test_wechat_refusals_for_good_are_undeliverable(
    platform: Platform, wechat: WeChatSender, openid: str, errcode: int, words: str
) -> None:
    outcome = await wechat.send_text(openid, ANSWER)

    assert outcome.status == UNDELIVERABLE and not outcome.retryable
    assert outcome.platform_code == errcode
    assert outcome.reason is not None and words in outcome.reason and str(errcode) in outcome.reason
    [received] = platform.fake.received
    assert not received.delivered and received.code == errcode


async def test_wechat_quota_spent_45047_is_failed(wechat: WeChatSender) -> None:
    outcome = await wechat.send_text("oBusy" + "x" * 23, ANSWER)

    assert outcome.status == FAILED and outcome.retryable and outcome.platform_code == 45047


async def test_wechat_http_500_is_failed(wechat: WeChatSender) -> None:
    outcome = await wechat.send_text("oBroken" + "x" * 21, ANSWER)

    assert outcome.status == FAILED and outcome.platform_code is None
    assert outcome.reason is not None and "HTTP 500" in outcome.reason


async def test_wechat_platform_unreachable_is_failed_and_token_free(log_lines: list[str]) -> None:
    sender = wechat_sender(f"http://127.0.0.1:{closed_port()}/cgi-bin/")
    try:
        outcome = await sender.send_text(OPENID, ANSWER)
    finally:
        sender.close()

    assert outcome.status == FAILED and outcome.reason is not None and "连接微信接口失败" in outcome.reason
    assert "/cgi-bin/token?[redacted] " in outcome.reason  # requests quotes the token URL: its query goes whole
    for place in (outcome.reason, "".join(log_lines)):
        assert APPSECRET[:4] not in place and "secret=" not in place


async def test_wechat_wrong_secret_is_failed_without_leaking_it(platform: Platform) -> None:
    sender = wechat_sender(platform.wechat_base, secret="not-the-secret-at-all")
    try:
        outcome = await sender.send_text(OPENID, ANSWER)
    finally:
        sender.close()

    assert outcome.status == FAILED and outcome.platform_code == 40013
    assert outcome.reason is not None and "AppSecret" in outcome.reason
    assert "not-the-secret-at-all" not in outcome.reason
    assert platform.fake.received == []


async def test_wechat_long_text_is_cut_between_characters(platform: Platform, wechat: WeChatSender) -> None:
    # 2040 bytes of Chinese, then emoji sequences: a code-point cut at 2045 bytes would keep the man
    # (4 bytes) and drop his family; the cut goes before the whole sequence instead.
    text = "游" * 680 + FAMILY * 10 + "🇨🇳" * 5
    assert len(text.encode()) > WECHAT_TEXT_MAX_BYTES

    outcome = await wechat.send_text(OPENID, text)

    assert outcome.status == DELIVERED and outcome.reason is not None and "截断" in outcome.reason
    sent = platform.fake.received[0].text
    assert len(sent.encode()) <= WECHAT_TEXT_MAX_BYTES
    assert sent == "游" * 680 + "…"  # the family did not fit whole: it is left out, not split


def test_cut_utf8_keeps_emoji_sequences_whole() -> None:
    text = "你好" + FAMILY + "🇨🇳" + "é" + "世界"  # é as e + combining acute
    for limit in range(len("…".encode()), len(text.encode()) + 2):
        cut = cut_utf8(text, limit)
        assert len(cut.encode()) <= limit
        if cut != text:
            kept = cut.removesuffix("…")
            clusters = graphemes(text)
            assert any(kept == "".join(clusters[:n]) for n in range(len(clusters) + 1))
    assert cut_utf8(text, 10_000) == text


async def test_wechat_empty_answer_is_a_caller_error(wechat: WeChatSender) -> None:
    with pytest.raises(ValueError, match="text"):
        await wechat.send_text(OPENID, "   ")


async def test_wechat_logs_mask_the_openid_and_never_show_the_token(
    platform: Platform, wechat: WeChatSender, log_lines: list[str]
) -> None:
    await wechat.send_text(OPENID, ANSWER)
    await wechat.send_text("oExpired" + "y" * 20, ANSWER)

    logged = "\n".join(log_lines)
    assert "oAB***nop" in logged and OPENID not in logged and "oExpired" + "y" * 20 not in logged
    assert platform.fake.access_token is not None and platform.fake.access_token not in logged
    assert APPSECRET not in logged


# --- Weibo ---------------------------------------------------------------------------------------

TRICKY = "您好 a&b=c+d%20 100% \"引号\" 换行\n结束 🙂"


async def test_weibo_answer_is_delivered_with_url_encoded_data(platform: Platform, weibo: WeiboSender) -> None:
    outcome = await weibo.send_text(WEIBO_USER, TRICKY)

    assert outcome == DeliveryOutcome(DELIVERED, None, None)
    [form] = platform.fake.weibo_forms
    assert form["type"] == "text" and form["receiver_id"] == WEIBO_USER and form["save_sender_box"] == "0"
    assert "access_token" not in form  # the fake checked it and did not keep it
    # After the form layer, `data` is still URL-encoded JSON: no raw reserved or non-ASCII characters.
    assert form["data"] == encode_reply_data({"text": TRICKY})
    assert form["data"].isascii() and not set(form["data"]) & set(" &=+\"\n{}")
    assert decode_reply_data(form["data"]) == {"text": TRICKY}
    [received] = platform.fake.received
    assert (received.channel, received.to, received.text, received.delivered) == ("weibo", WEIBO_USER, TRICKY, True)


async def test_weibo_unknown_user_is_undeliverable(platform: Platform, weibo: WeiboSender) -> None:
    outcome = await weibo.send_text("1", ANSWER)

    assert outcome.status == UNDELIVERABLE and outcome.platform_code == 20003
    assert outcome.reason is not None and "不存在" in outcome.reason and "20003" in outcome.reason


async def test_weibo_system_error_is_failed(weibo: WeiboSender) -> None:
    outcome = await weibo.send_text(2, ANSWER)

    assert outcome.status == FAILED and outcome.retryable and outcome.platform_code == 10001


async def test_weibo_rejected_token_is_failed_without_leaking_it(
    platform: Platform, http: aiohttp.ClientSession, log_lines: list[str]
) -> None:
    wrong = "2.00-a-token-that-was-revoked"
    outcome = await WeiboSender(http, wrong, api_base_url=platform.base).send_text(WEIBO_USER, ANSWER)

    assert outcome.status == FAILED and outcome.platform_code == 21332
    assert outcome.reason is not None and "access_token" in outcome.reason and wrong not in outcome.reason
    assert wrong not in "\n".join(log_lines) and WEIBO_USER not in "\n".join(log_lines)
    assert platform.fake.received == []


async def test_weibo_invalid_receiver_is_undeliverable_without_a_call(platform: Platform, weibo: WeiboSender) -> None:
    outcome = await weibo.send_text("oNotAWeiboId", ANSWER)

    assert outcome.status == UNDELIVERABLE and platform.fake.weibo_forms == []


async def test_weibo_unreachable_is_failed(http: aiohttp.ClientSession) -> None:
    sender = WeiboSender(http, WEIBO_TOKEN, api_base_url=f"http://127.0.0.1:{closed_port()}", timeout=1.0)

    outcome = await sender.send_text(WEIBO_USER, ANSWER)

    assert outcome.status == FAILED and outcome.reason is not None and WEIBO_TOKEN not in outcome.reason


async def test_weibo_long_text_is_cut_to_300_characters(platform: Platform, weibo: WeiboSender) -> None:
    outcome = await weibo.send_text(WEIBO_USER, "景" * 298 + FAMILY * 3)

    assert outcome.status == DELIVERED and outcome.reason is not None and "截断" in outcome.reason
    assert platform.fake.received[0].text == "景" * 298 + "…"


def test_weibo_unknown_error_codes_stay_retryable() -> None:
    unknown = _weibo_refusal({"error_code": "21999", "error": "something new"}, [])
    permanent = _weibo_refusal({"error_code": 20301, "error": "not a follower"}, [])

    assert unknown.status == FAILED and unknown.platform_code == 21999 and "something new" in (unknown.reason or "")
    assert permanent.status == UNDELIVERABLE and permanent.platform_code == 20301


# --- Outbound ------------------------------------------------------------------------------------

async def test_outbound_routes_by_channel(platform: Platform, wechat: WeChatSender, weibo: WeiboSender) -> None:
    outbound = Outbound(wechat=wechat, weibo=weibo)

    assert (await outbound.send(Channel.WECHAT, OPENID, "微信答复")).delivered
    assert (await outbound.send("weibo", WEIBO_USER, "微博答复")).delivered
    assert [(m.channel, m.text) for m in platform.fake.received] == [("wechat", "微信答复"), ("weibo", "微博答复")]


@pytest.mark.parametrize(
    ("channel", "words"), [("wechat", "未配置微信"), ("weibo", "未配置微博"), ("qq", "未知的渠道")]
)
async def test_outbound_missing_channel_is_failed_not_an_exception(channel: str, words: str) -> None:
    outcome = await Outbound(wechat=None, weibo=None).send(channel, OPENID, ANSWER)

    assert outcome.status == FAILED and outcome.reason is not None and words in outcome.reason


# --- the fake's own pages ------------------------------------------------------------------------

async def test_fake_received_json_and_page(
    platform: Platform, wechat: WeChatSender, weibo: WeiboSender, http: aiohttp.ClientSession
) -> None:
    async with http.get(platform.base + "/") as response:
        empty = await response.text()
    assert "还没有收到消息" in empty

    await wechat.send_text(OPENID, "第一条：<script>alert(1)</script>")
    await weibo.send_text(WEIBO_USER, "第二条：微博答复")
    await wechat.send_text("oExpired" + "x" * 20, "第三条：过期")

    async with http.get(platform.base + "/received") as response:
        assert response.status == 200
        received = await response.json()
    assert [(r["channel"], r["to"], r["text"], r["delivered"], r["code"]) for r in received] == [
        ("wechat", OPENID, "第一条：<script>alert(1)</script>", True, 0),
        ("weibo", WEIBO_USER, "第二条：微博答复", True, 0),
        ("wechat", "oExpired" + "x" * 20, "第三条：过期", False, 45015),
    ]
    assert all(r["at"].endswith("+00:00") for r in received)

    async with http.get(platform.base + "/") as response:
        assert response.status == 200 and response.content_type == "text/html"
        page = await response.text()
    assert '<meta http-equiv="refresh" content="3">' in page and 'lang="zh-CN"' in page
    assert page.index("第三条") < page.index("第二条") < page.index("第一条")  # newest first
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "已送达" in page and "被拒收（错误码 45015）" in page and "微博" in page
    assert f"{platform.base}/cgi-bin/" in page


async def test_fake_token_endpoint_checks_credentials(platform: Platform, http: aiohttp.ClientSession) -> None:
    query = {"grant_type": "client_credential", "appid": APPID, "secret": "wrong"}
    async with http.get(platform.base + "/cgi-bin/token", params=query) as response:
        assert (await response.json())["errcode"] == 40013
    async with http.get(platform.base + "/cgi-bin/token", params={**query, "secret": APPSECRET}) as response:
        answer = await response.json()
    assert answer["expires_in"] == 7200 and answer["access_token"] == platform.fake.access_token
    assert platform.fake.token_fetches == 1


async def test_run_fake_platform_serves_until_cancelled(http: aiohttp.ClientSession) -> None:
    out = io.StringIO()
    task = asyncio.create_task(
        run_fake_platform("127.0.0.1", 0, appid=APPID, secret=APPSECRET, weibo_token=WEIBO_TOKEN, out=out)
    )
    try:
        for _ in range(200):
            if "received" in out.getvalue():
                break
            await asyncio.sleep(0.01)
        printed = out.getvalue()
        base = printed.split("模拟平台已启动：", 1)[1].split("/ ", 1)[0]
        assert f"wechat_base_url: {base}/cgi-bin/" in printed and f"weibo_base_url:  {base}" in printed
        async with http.get(base + "/received") as response:
            assert await response.json() == []
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.mark.parametrize(("text", "redacted"), [
    ("Max retries exceeded with url: /cgi-bin/token?grant_type=client_credential&appid=wx1&secret=s3cr3t (Caused",
     "Max retries exceeded with url: /cgi-bin/token?[redacted] (Caused"),
    ("POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abcd-1234 failed",
     "POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?[redacted] failed"),
    ("form access_token=2.00abc&type=text", "form access_token=[redacted]&type=text"),
    ('{"secret": "s3cr3t"}', '{"secret": "[redacted]"}'),
    (f"bare {APPSECRET} here", "bare [redacted] here"),
    ("路径 /a/b?x=1，好；3/4? ok", "路径 /a/b?[redacted]，好；3/4? ok"),
])
def test_redaction_removes_query_strings_and_secrets_whole(text: str, redacted: str) -> None:
    from bot.logs import redact_secrets

    assert redact_secrets(text, [APPSECRET]) == redacted


def test_every_log_line_is_redacted(log_lines: list[str]) -> None:
    from bot.logs import install_masking

    install_masking()  # as the app factory and the CLI do
    logger.warning("robot https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abcd1234 down; key=abcd…")
    assert log_lines[-1].strip() == "robot https://qyapi.weixin.qq.com/cgi-bin/webhook/send?[redacted] down; key=[redacted]"


def test_too_long_names_each_platforms_limit_before_anything_is_sent() -> None:
    outbound = Outbound()  # the limits do not need a configured sender
    assert outbound.too_long("weibo", "好" * 300) is None
    assert "301 字" in (outbound.too_long("weibo", "好" * 301) or "")
    assert outbound.too_long("wechat", "好" * 682) is None  # 2,046 bytes
    assert "2049 字节" in (outbound.too_long("wechat", "好" * 683) or "")
    assert outbound.too_long("sms", "好" * 5000) is None  # an unknown channel fails at send, with its reason
