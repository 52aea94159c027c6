"""Notifiers (issue 4, item 6): real I/O on loopback — fake WeCom robot, fake WeChat API, local SMTP.

Servers run in the test's event loop on 127.0.0.1, port 0; nothing of the network stack is mocked.
"""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.smtp import SMTP, Envelope, Session

from escalation.notifiers import (
    EMAIL,
    LOG,
    WECHAT_TEMPLATE,
    WECOM_ROBOT,
    Alert,
    Contact,
    DeliveryResult,
    EmailNotifier,
    LogNotifier,
    Notifier,
    NotifyError,
    WeChatAPIClient,
    WeChatTemplateNotifier,
    WeComRobotNotifier,
    deliver,
    mask_address,
    redact,
)

ROBOT_KEY = "0123abcd-5eaf-4bc4-97a0-0ec2f1a5c3e9"
APPID = "wx1234567890abcdef"
APPSECRET = "s3cr3t-appsecret-never-logged"
OPENID = "oABCD1234efgh5678ijkl9012mnop"
ALERT = Alert(
    subject="【逐级上报】咨询超时未办结",
    body="游客咨询“古城墙夜游开放时间”已超过1小时未答复，请部门负责人督办。",
    inquiry_id=42,
    kind="escalation",
    rung=2,
    url="https://guanwei.example.gov.cn/inquiries/42",
)


class Recorder:
    """Collects the delays `deliver` asks to sleep, without sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# --- a fake WeCom robot ---------------------------------------------------------------------------

@dataclass
class FakeRobot:
    """Answers from `script` in order (then `{"errcode": 0}`): a dict is JSON, an int an HTTP status,
    "hang" waits until the test ends."""

    script: list[Any] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        self.keys.append(request.query.get("key", ""))
        step = self.script.pop(0) if self.script else {"errcode": 0, "errmsg": "ok"}
        if step == "hang":
            await self.release.wait()
            step = {"errcode": 0, "errmsg": "ok"}
        if isinstance(step, int):
            return web.Response(status=step, text="server error")
        return web.json_response(step)


@pytest.fixture
async def robot() -> AsyncIterator[FakeRobot]:
    fake = FakeRobot()
    app = web.Application()
    app.router.add_post("/cgi-bin/webhook/send", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("/cgi-bin/webhook/send").with_query(key=ROBOT_KEY))
    try:
        yield fake
    finally:
        fake.release.set()
        await server.close()


def robot_contact(robot: FakeRobot) -> Contact:
    return Contact("值班群", WECOM_ROBOT, robot.url)


async def test_wecom_robot_posts_text_json(robot: FakeRobot, http: aiohttp.ClientSession) -> None:
    await WeComRobotNotifier(http).send(robot_contact(robot), ALERT)

    assert robot.keys == [ROBOT_KEY]
    [payload] = robot.received
    assert payload["msgtype"] == "text"
    content = payload["text"]["content"]
    assert content.startswith(ALERT.subject + "\n" + ALERT.body)
    assert "#42" in content and "第2级" in content and ALERT.url in content


async def test_wecom_robot_markdown(robot: FakeRobot, http: aiohttp.ClientSession) -> None:
    await WeComRobotNotifier(http, markdown=True).send(robot_contact(robot), ALERT)

    [payload] = robot.received
    assert payload["msgtype"] == "markdown"
    assert f"**{ALERT.subject}**" in payload["markdown"]["content"]


async def test_wecom_robot_cuts_long_text_to_2048_bytes(robot: FakeRobot, http: aiohttp.ClientSession) -> None:
    long_alert = Alert("长", "字" * 3000, 1, "reminder", None)
    await WeComRobotNotifier(http).send(robot_contact(robot), long_alert)

    content = robot.received[0]["text"]["content"]
    assert len(content.encode("utf-8")) <= 2048 and content.endswith("…")


async def test_wecom_rate_limited_45009_is_retried(robot: FakeRobot, http: aiohttp.ClientSession) -> None:
    robot.script = [{"errcode": 45009, "errmsg": "api freq out of limit"}]
    sleep = Recorder()

    [result] = await deliver(ALERT, [robot_contact(robot)], {WECOM_ROBOT: WeComRobotNotifier(http)},
                             jitter=0, sleep=sleep)

    assert result == DeliveryResult(robot_contact(robot), ok=True, attempts=2)
    assert sleep.delays == [1.0]
    assert len(robot.received) == 2


async def test_wecom_invalid_webhook_93000_is_not_retried(robot: FakeRobot, http: aiohttp.ClientSession) -> None:
    robot.script = [{"errcode": 93000, "errmsg": "invalid webhook url"}]
    sleep = Recorder()

    [result] = await deliver(ALERT, [robot_contact(robot)], {WECOM_ROBOT: WeComRobotNotifier(http)}, sleep=sleep)

    assert not result.ok and result.attempts == 1
    assert result.error is not None and "93000" in result.error
    assert sleep.delays == [] and len(robot.received) == 1


async def test_wecom_http_500_twice_then_success(robot: FakeRobot, http: aiohttp.ClientSession) -> None:
    robot.script = [500, 502]
    sleep = Recorder()

    [result] = await deliver(ALERT, [robot_contact(robot)], {WECOM_ROBOT: WeComRobotNotifier(http)},
                             jitter=0, sleep=sleep)

    assert result.ok and result.attempts == 3
    assert sleep.delays == [1.0, 2.0]  # exponential


async def test_wecom_http_4xx_is_not_retried(robot: FakeRobot, http: aiohttp.ClientSession) -> None:
    robot.script = [404]
    with pytest.raises(NotifyError) as caught:
        await WeComRobotNotifier(http).send(robot_contact(robot), ALERT)
    assert not caught.value.retryable and "404" in caught.value.reason


async def test_wecom_timeout_is_retryable(robot: FakeRobot, http: aiohttp.ClientSession) -> None:
    robot.script = ["hang"]
    started = time.monotonic()
    with pytest.raises(NotifyError) as caught:
        await WeComRobotNotifier(http, timeout=0.2).send(robot_contact(robot), ALERT)
    assert caught.value.retryable and "timed out" in caught.value.reason
    assert time.monotonic() - started < 1.0


async def test_wecom_hanging_robot_is_cut_by_deliver_timeout(robot: FakeRobot, http: aiohttp.ClientSession) -> None:
    robot.script = ["hang"]  # the first try hangs, the second succeeds
    sleep = Recorder()

    [result] = await deliver(ALERT, [robot_contact(robot)], {WECOM_ROBOT: WeComRobotNotifier(http)},
                             timeout=0.2, jitter=0, sleep=sleep)

    assert result.ok and result.attempts == 2 and sleep.delays == [1.0]


# --- a fake WeChat API ----------------------------------------------------------------------------

@dataclass
class FakeWeChat:
    """/cgi-bin/token hands out TOKEN-1, TOKEN-2, … (each invalidating the last);
    /cgi-bin/message/template/send answers errcodes from `script` first, then checks the token."""

    script: list[int] = field(default_factory=list)
    token_calls: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    tokens_used: list[str] = field(default_factory=list)
    base_url: str = ""

    @property
    def token(self) -> str:
        return f"TOKEN-{self.token_calls}"

    async def token_endpoint(self, request: web.Request) -> web.Response:
        if request.query.get("appid") != APPID or request.query.get("secret") != APPSECRET:
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        self.token_calls += 1
        return web.json_response({"access_token": self.token, "expires_in": 7200})

    async def send_endpoint(self, request: web.Request) -> web.Response:
        self.tokens_used.append(request.query.get("access_token", ""))
        self.sent.append(await request.json())
        if self.script:
            errcode = self.script.pop(0)
            return web.json_response({"errcode": errcode, "errmsg": f"scripted {errcode}"})
        if request.query.get("access_token") != self.token:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": 200228332})


@pytest.fixture
async def wechat() -> AsyncIterator[FakeWeChat]:
    fake = FakeWeChat()
    app = web.Application()
    app.router.add_get("/cgi-bin/token", fake.token_endpoint)
    app.router.add_post("/cgi-bin/message/template/send", fake.send_endpoint)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake.base_url = str(server.make_url("/cgi-bin/"))
    try:
        yield fake
    finally:
        await server.close()


@pytest.fixture
def template_notifier(wechat: FakeWeChat) -> Iterator[WeChatTemplateNotifier]:
    notifier = WeChatTemplateNotifier(
        lambda: WeChatAPIClient(APPID, APPSECRET, api_base_url=wechat.base_url, timeout=1.0),
        "TEMPLATE-ID-1",
        url_for_inquiry=lambda inquiry_id: f"https://guanwei.example.gov.cn/i/{inquiry_id}",
    )
    yield notifier
    notifier.close()


STAFF = Contact("李科长", WECHAT_TEMPLATE, OPENID)


async def test_wechat_template_sends_with_fetched_token(
    wechat: FakeWeChat, template_notifier: WeChatTemplateNotifier
) -> None:
    no_link = Alert("催办", "请尽快答复", 7, "reminder", None)
    await template_notifier.send(STAFF, no_link)
    await template_notifier.send(STAFF, ALERT)

    assert wechat.token_calls == 1  # one token for both sends
    assert wechat.tokens_used == ["TOKEN-1", "TOKEN-1"]
    first, second = wechat.sent
    assert first["touser"] == OPENID and first["template_id"] == "TEMPLATE-ID-1"
    assert first["url"] == "https://guanwei.example.gov.cn/i/7"  # from url_for_inquiry
    assert first["data"]["first"] == {"value": "催办"}
    assert first["data"]["keyword1"] == {"value": "#7"}
    assert second["url"] == ALERT.url  # the alert's own link wins
    assert second["data"]["keyword3"] == {"value": ALERT.body}


async def test_wechat_token_invalid_40001_refetches_once_and_retries(
    wechat: FakeWeChat, template_notifier: WeChatTemplateNotifier
) -> None:
    wechat.script = [40001]

    await template_notifier.send(STAFF, ALERT)

    assert wechat.token_calls == 2
    assert wechat.tokens_used == ["TOKEN-1", "TOKEN-2"]


async def test_wechat_token_refetch_is_bounded_to_once(
    wechat: FakeWeChat, template_notifier: WeChatTemplateNotifier
) -> None:
    wechat.script = [40001, 42001, 40001]  # wechatpy alone would refetch for as long as this lasts

    with pytest.raises(NotifyError) as caught:
        await template_notifier.send(STAFF, ALERT)

    assert not caught.value.retryable and "42001" in caught.value.reason
    assert wechat.token_calls == 2 and len(wechat.sent) == 2
    await template_notifier.send(STAFF, ALERT)  # the next call gets its own refetch: 40001, then ok
    assert wechat.token_calls == 3
    assert wechat.tokens_used == ["TOKEN-1", "TOKEN-2", "TOKEN-2", "TOKEN-3"]


async def test_wechat_not_following_43004_is_not_retried(
    wechat: FakeWeChat, template_notifier: WeChatTemplateNotifier
) -> None:
    wechat.script = [43004]
    sleep = Recorder()

    [result] = await deliver(ALERT, [STAFF], {WECHAT_TEMPLATE: template_notifier}, sleep=sleep)

    assert not result.ok and result.attempts == 1 and sleep.delays == []
    assert result.error is not None and "43004" in result.error


async def test_wechat_system_busy_is_retried(wechat: FakeWeChat, template_notifier: WeChatTemplateNotifier) -> None:
    wechat.script = [-1]
    sleep = Recorder()

    [result] = await deliver(ALERT, [STAFF], {WECHAT_TEMPLATE: template_notifier}, jitter=0, sleep=sleep)

    assert result.ok and result.attempts == 2 and sleep.delays == [1.0]


# --- a local SMTP server --------------------------------------------------------------------------

class Mailbox:
    def __init__(self, rcpt_answer: str | None = None) -> None:
        self.rcpt_answer = rcpt_answer
        self.messages: list[tuple[Envelope, email.message.EmailMessage]] = []

    async def handle_RCPT(  # aiosmtpd's hook names
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rcpt_answer:
            return self.rcpt_answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        self.messages.append((envelope, message))
        return "250 Message accepted"


async def smtp_server(mailbox: Mailbox) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(mailbox, hostname="localhost", loop=loop), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_email_utf8_subject_and_body() -> None:
    mailbox = Mailbox()
    server, port = await smtp_server(mailbox)
    try:
        notifier = EmailNotifier("127.0.0.1", port, sender="官微 <guanwei@example.gov.cn>", starttls=False, timeout=2)
        await notifier.send(Contact("王主任", EMAIL, "wang@example.gov.cn"), ALERT)
    finally:
        server.close()
        await server.wait_closed()

    [(envelope, message)] = mailbox.messages
    assert envelope.mail_from == "guanwei@example.gov.cn"
    assert envelope.rcpt_tos == ["wang@example.gov.cn"]
    assert message["Subject"] == ALERT.subject
    assert message["To"] == "王主任 <wang@example.gov.cn>"
    body = message.get_content()
    assert ALERT.body in body and "事项编号：#42" in body and ALERT.url in body
    assert message.get_content_charset() == "utf-8"


@pytest.mark.parametrize(("answer", "retryable"), [("550 5.1.1 no such user", False), ("451 4.3.0 try later", True)])
async def test_email_refused_recipient(answer: str, retryable: bool) -> None:
    server, port = await smtp_server(Mailbox(rcpt_answer=answer))
    try:
        with pytest.raises(NotifyError) as caught:
            await EmailNotifier("127.0.0.1", port, sender="guanwei@example.gov.cn", timeout=2).send(
                Contact("无此人", EMAIL, "nobody@example.gov.cn"), ALERT
            )
    finally:
        server.close()
        await server.wait_closed()
    assert caught.value.retryable is retryable


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_email_server_down_is_retryable() -> None:
    with pytest.raises(NotifyError) as caught:
        await EmailNotifier("127.0.0.1", closed_port(), sender="guanwei@example.gov.cn", timeout=1).send(
            Contact("王主任", EMAIL, "wang@example.gov.cn"), ALERT
        )
    assert caught.value.retryable


# --- log ------------------------------------------------------------------------------------------

async def test_log_notifier_writes_the_alert(log_lines: list[str]) -> None:
    await LogNotifier().send(Contact("值班员", LOG, "-"), ALERT)
    assert any(ALERT.subject in line and "#42" in line for line in log_lines)


# --- deliver --------------------------------------------------------------------------------------

class AlwaysFails:
    channel = EMAIL

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, contact: Contact, alert: Alert) -> None:
        self.calls += 1
        raise NotifyError("SMTP 421 service not available", retryable=True)


class Slow:
    channel = WECHAT_TEMPLATE

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, contact: Contact, alert: Alert) -> None:
        self.calls += 1
        await asyncio.sleep(30)


async def test_deliver_failing_and_slow_notifiers_do_not_block_the_others(
    robot: FakeRobot, http: aiohttp.ClientSession, log_lines: list[str]
) -> None:
    failing, slow, sleep = AlwaysFails(), Slow(), Recorder()
    contacts = [
        robot_contact(robot),
        Contact("王主任", EMAIL, "wang@example.gov.cn"),
        Contact("李科长", WECHAT_TEMPLATE, OPENID),
        Contact("值班员", LOG, "-"),
    ]
    notifiers: dict[str, Notifier] = {
        WECOM_ROBOT: WeComRobotNotifier(http), EMAIL: failing, WECHAT_TEMPLATE: slow, LOG: LogNotifier()
    }

    started = time.monotonic()
    results = await deliver(ALERT, contacts, notifiers, attempts=3, timeout=0.15, jitter=0, sleep=sleep)
    elapsed = time.monotonic() - started

    assert [r.contact for r in results] == contacts
    wecom, mail, template, log = results
    assert wecom == DeliveryResult(contacts[0], ok=True, attempts=1)
    assert log == DeliveryResult(contacts[3], ok=True, attempts=1)
    assert mail == DeliveryResult(contacts[1], ok=False, attempts=3, error="SMTP 421 service not available")
    assert template.ok is False and template.attempts == 3 and template.error == "timed out after 0.15 s"
    assert failing.calls == 3 and slow.calls == 3
    assert sorted(sleep.delays) == [1.0, 1.0, 2.0, 2.0]  # each contact: 1 s, then 2 s
    assert elapsed < 1.5  # the slow one's three 0.15 s timeouts, concurrently with the rest
    assert len(robot.received) == 1


async def test_deliver_backoff_is_exponential_with_small_jitter_and_capped() -> None:
    sleep = Recorder()
    [result] = await deliver(ALERT, [Contact("王主任", EMAIL, "wang@example.gov.cn")], {EMAIL: AlwaysFails()},
                             attempts=6, base_delay=0.5, max_delay=4.0, jitter=0.1, sleep=sleep)
    assert not result.ok and result.attempts == 6
    for delay, base in zip(sleep.delays, [0.5, 1.0, 2.0, 4.0, 4.0], strict=True):
        assert base <= delay <= base * 1.1


async def test_deliver_without_notifier_for_channel_and_duplicate_contacts() -> None:
    mail = Contact("王主任", EMAIL, "wang@example.gov.cn")
    results = await deliver(ALERT, [mail, mail], {}, sleep=Recorder())
    assert results == [DeliveryResult(mail, ok=False, attempts=0, error="no notifier for channel email")]


async def test_deliver_records_a_crashing_notifier_without_retrying() -> None:
    class Broken:
        channel = LOG

        async def send(self, contact: Contact, alert: Alert) -> None:
            raise KeyError("oops")

    [result] = await deliver(ALERT, [Contact("值班员", LOG, "-")], {LOG: Broken()}, sleep=Recorder())
    assert result == DeliveryResult(Contact("值班员", LOG, "-"), ok=False, attempts=1, error="KeyError: 'oops'")


def test_contact_rejects_unknown_channel() -> None:
    with pytest.raises(ValueError, match="sms"):
        Contact("张三", "sms", "13800000000")


# --- secrets --------------------------------------------------------------------------------------

async def test_robot_key_and_appsecret_never_in_logs_or_errors(
    robot: FakeRobot, http: aiohttp.ClientSession, log_lines: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="wechatpy")
    dead_robot = Contact("停用群", WECOM_ROBOT, f"http://127.0.0.1:{closed_port()}/cgi-bin/webhook/send?key={ROBOT_KEY}")

    class Leaky:  # a buggy robot notifier whose exception carries the whole URL and the bare key
        channel = WECOM_ROBOT

        async def send(self, contact: Contact, alert: Alert) -> None:
            raise RuntimeError(f"cannot post to {robot.url} (key {ROBOT_KEY})")

    robot.script = [{"errcode": 93000, "errmsg": f"invalid webhook url, hint: key={ROBOT_KEY}"}]
    dead_wechat = WeChatTemplateNotifier(
        lambda: WeChatAPIClient(APPID, APPSECRET, api_base_url=f"http://127.0.0.1:{closed_port()}/cgi-bin/"),
        "TEMPLATE-ID-1",
    )
    try:
        results = await deliver(
            ALERT,
            [robot_contact(robot), dead_robot, STAFF],
            {WECOM_ROBOT: WeComRobotNotifier(http, timeout=1), WECHAT_TEMPLATE: dead_wechat},
            attempts=2, sleep=Recorder(),
        )
        leaky = await deliver(ALERT, [robot_contact(robot)], {WECOM_ROBOT: Leaky()})
    finally:
        dead_wechat.close()

    assert not any(r.ok for r in results)
    texts = [
        *log_lines,
        caplog.text,
        *(str(r.error) for r in [*results, *leaky]),
        *(repr(r) for r in [*results, *leaky]),
        mask_address(robot_contact(robot)),
    ]
    assert any("key=0123…" in text for text in texts)
    for text in texts:
        assert ROBOT_KEY not in text
        assert APPSECRET not in text
    assert results[2].error is not None and "secret=s3cr…" in results[2].error  # the token URL, masked


def test_redact_masks_secret_query_parameters() -> None:
    assert redact(f"POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={ROBOT_KEY}&debug=1") == (
        "POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=0123…&debug=1"
    )
    assert redact("url: /cgi-bin/token?appid=wx1&secret=abcdefgh') failed") == (
        "url: /cgi-bin/token?appid=wx1&secret=abcd…') failed"
    )
    assert redact("monkey=bananas") == "monkey=bananas"
