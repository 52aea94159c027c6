"""A fake WeChat + Weibo platform on one port: for tests, and for trying guanwei without real accounts.

It answers the three platform calls guanwei makes to send an answer, records every message, and
shows them on a page that refreshes itself — the stand-in for the netizen's phone.

Point guanwei at it (``platform_api`` in config.yaml)::

    wechat_base_url: http://127.0.0.1:8081/cgi-bin/
    weibo_base_url:  http://127.0.0.1:8081

Routes:

- ``GET /cgi-bin/token?grant_type=client_credential&appid=…&secret=…`` → ``{"access_token",
  "expires_in": 7200}``. Every fetch issues a new token and invalidates the one before, as WeChat
  does. A wrong appid or secret → errcode 40013; another grant_type → 40002.
- ``POST /cgi-bin/message/custom/send?access_token=…`` (JSON, as wechatpy sends it) → errcode 0.
  A token that is not the latest → 40001. The recipient (``touser``) decides the rest:

  ====================  ==================================================================
  ``oExpired…``         45015 — the 48-hour window has passed (or the user unfollowed)
  ``oGone…``            43004 — the user does not follow the account
  ``oBusy…``            45047 — the customer-service quota for this user is spent
  ``oBroken…``          HTTP 500 — the platform is having a bad day
  not ``[A-Za-z0-9_-]`` 40003 — invalid openid
  ====================  ==================================================================

- ``POST /2/messages/reply.json`` (form: ``access_token``, ``type``, ``data`` = URL-encoded JSON,
  ``receiver_id``, ``save_sender_box``) → ``{"result": true}``. Errors come in Weibo's shape
  ``{"request", "error_code", "error"}``: a wrong token → 21332 (HTTP 400); ``receiver_id`` 1 →
  20003 "User does not exists!" (HTTP 400); ``receiver_id`` 2 → 10001 "System error" (HTTP 500);
  a missing field or undecodable ``data`` → 10008.
- The publishing desk's calls: ``POST /cgi-bin/material/add_material`` (multipart ``media``; → ``media_id``),
  ``POST /cgi-bin/media/uploadimg`` (→ ``url``), ``POST /cgi-bin/draft/add`` (articles whose
  ``thumb_media_id`` must be a material uploaded before, else 40007; → ``media_id``),
  ``POST /cgi-bin/freepublish/submit`` (a draft's ``media_id``, else 40007; → ``publish_id``) and
  Weibo's ``POST /2/statuses/share.json`` (multipart: ``access_token``, ``status``, optional ``pic``;
  → ``{"id", "idstr", "text"}``). ``GET /published`` lists what was published, oldest first.
- ``GET /received`` → JSON list, oldest first, of every message that got past the token check:
  ``channel``, ``to``, ``text``, ``at`` (ISO 8601), ``delivered`` and ``code`` (0, or the errcode /
  error_code it was refused with).
- ``GET /`` → the same, newest first, as a small Chinese page that reloads every 3 seconds.

The state is a `FakePlatform` in ``app[FAKE_PLATFORM]`` (tests read ``received``, ``wechat_sent``,
``weibo_forms``, ``token_fetches``). Development only: it keeps everything in memory and shows
recipient ids unmasked — do not point real inbound traffic's answers at it.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.digests import same_secret
from bot.weibo import WeiboProtocolError, decode_reply_data

__all__ = [
    "FAKE_PLATFORM",
    "FakePlatform",
    "ReceivedMessage",
    "create_fake_platform",
    "run_fake_platform",
]

_LOCAL = ZoneInfo("Asia/Shanghai")
_OPENID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CHANNEL_LABELS = {"wechat": "微信", "weibo": "微博"}


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ReceivedMessage:
    channel: str  # "wechat" | "weibo"
    to: str
    text: str
    at: datetime
    delivered: bool
    code: int  # 0, or the errcode / error_code the fake refused it with

    def as_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "to": self.to, "text": self.text, "at": self.at.isoformat(),
                "delivered": self.delivered, "code": self.code}


@dataclass
class FakePlatform:
    appid: str
    secret: str
    weibo_token: str
    clock: Callable[[], datetime] = _utc_now
    token_fetches: int = 0
    access_token: str | None = None
    received: list[ReceivedMessage] = field(default_factory=list)
    wechat_sent: list[dict[str, Any]] = field(default_factory=list)  # {touser, msgtype, text} per call
    weibo_forms: list[dict[str, str]] = field(default_factory=list)  # the form fields, token left out
    materials: dict[str, dict[str, Any]] = field(default_factory=dict)  # media_id → {type, filename, size}
    drafts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # media_id → articles
    published: list[dict[str, Any]] = field(default_factory=list)  # {channel, id, title/text, at, …}

    def issue_token(self) -> str:
        self.token_fetches += 1
        self.access_token = f"FAKE-TOKEN-{self.token_fetches}-{secrets.token_hex(8)}"
        return self.access_token

    def token_ok(self, token: str | None) -> bool:
        return same_secret(str(self.access_token or ""), token)

    def record(self, channel: str, to: str, text: str, code: int) -> None:
        self.received.append(ReceivedMessage(channel, to, text, self.clock(), code == 0, code))


FAKE_PLATFORM = web.AppKey("fake_platform", FakePlatform)


def _same(a: str | None, b: str) -> bool:
    return same_secret(b, a)


# --- WeChat --------------------------------------------------------------------------------------

def _wechat(errcode: int, errmsg: str) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": errmsg})


async def _token(request: web.Request) -> web.Response:
    fake = request.app[FAKE_PLATFORM]
    query = request.query
    if query.get("grant_type") != "client_credential":
        return _wechat(40002, "invalid grant_type")
    if not (_same(query.get("appid"), fake.appid) and _same(query.get("secret"), fake.secret)):
        return _wechat(40013, "invalid appid or appsecret")
    return web.json_response({"access_token": fake.issue_token(), "expires_in": 7200})


_WECHAT_RULES = (
    ("oExpired", 45015, "response out of time limit or subscription is canceled"),
    ("oGone", 43004, "require subscribe"),
    ("oBusy", 45047, "out of response count limit"),
)


async def _custom_send(request: web.Request) -> web.Response:
    fake = request.app[FAKE_PLATFORM]
    if not fake.token_ok(request.query.get("access_token")):
        return _wechat(40001, "invalid credential, access_token is invalid or not latest")
    try:
        body = json.loads(await request.read())
    except (UnicodeDecodeError, ValueError):
        return _wechat(47001, "data format error")
    if not isinstance(body, dict) or not isinstance(body.get("touser"), str) or "msgtype" not in body:
        return _wechat(47001, "data format error")
    touser, msgtype = body["touser"], str(body["msgtype"])
    fake.wechat_sent.append({"touser": touser, "msgtype": msgtype, "text": body.get("text")})
    text_obj = body.get("text")
    if msgtype == "text":
        if not isinstance(text_obj, dict) or not isinstance(text_obj.get("content"), str):
            return _wechat(47001, "data format error")
        text = text_obj["content"]
    else:
        text = f"[{msgtype}]"
    if touser.startswith("oBroken"):
        fake.record("wechat", touser, text, 500)
        return web.Response(status=500, text="fake platform: internal error")
    if not _OPENID.fullmatch(touser):
        fake.record("wechat", touser, text, 40003)
        return _wechat(40003, "invalid openid")
    for prefix, errcode, errmsg in _WECHAT_RULES:
        if touser.startswith(prefix):
            fake.record("wechat", touser, text, errcode)
            return _wechat(errcode, errmsg)
    fake.record("wechat", touser, text, 0)
    return _wechat(0, "ok")


# --- Weibo ---------------------------------------------------------------------------------------

def _weibo_error(code: int, error: str, status: int = 400) -> web.Response:
    return web.json_response({"request": "/2/messages/reply.json", "error_code": code, "error": error},
                             status=status)


async def _weibo_reply(request: web.Request) -> web.Response:
    fake = request.app[FAKE_PLATFORM]
    form = await request.post()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    if not _same(fields.get("access_token"), fake.weibo_token):
        return _weibo_error(21332, "invalid_access_token")
    fields.pop("access_token")
    fake.weibo_forms.append(fields)
    receiver, kind, data = fields.get("receiver_id", ""), fields.get("type"), fields.get("data")
    if not (receiver.isascii() and receiver.isdigit()) or kind is None or data is None:
        return _weibo_error(10008, "Param error, see doc for more info")
    try:
        payload = decode_reply_data(data)
    except WeiboProtocolError:
        return _weibo_error(10008, "Param error, see doc for more info")
    text = payload.get("text") if kind == "text" else None
    if not isinstance(text, str):
        text = f"[{kind}]"
    if int(receiver) == 1:
        fake.record("weibo", receiver, text, 20003)
        return _weibo_error(20003, "User does not exists!")
    if int(receiver) == 2:
        fake.record("weibo", receiver, text, 10001)
        return _weibo_error(10001, "System error", status=500)
    fake.record("weibo", receiver, text, 0)
    return web.json_response({"result": True})


# --- publishing (draft/add, freepublish/submit, statuses/share) ----------------------------------

def _stale_token(request: web.Request) -> web.Response | None:
    if request.app[FAKE_PLATFORM].token_ok(request.query.get("access_token")):
        return None
    return _wechat(40001, "invalid credential, access_token is invalid or not latest")


async def _add_material(request: web.Request) -> web.Response:
    fake = request.app[FAKE_PLATFORM]
    if refused := _stale_token(request):
        return refused
    form = await request.post()
    media = form.get("media")
    if not isinstance(media, web.FileField):
        return _wechat(41005, "media data missing")
    with media.file:
        content = media.file.read()
    media_id = f"MEDIA-{len(fake.materials) + 1}"
    fake.materials[media_id] = {"type": request.query.get("type"), "filename": media.filename, "size": len(content)}
    return web.json_response({"media_id": media_id, "url": f"http://mmbiz.qpic.cn/fake/{media_id}"})


async def _upload_image(request: web.Request) -> web.Response:
    fake = request.app[FAKE_PLATFORM]
    if refused := _stale_token(request):
        return refused
    form = await request.post()
    media = form.get("media")
    if not isinstance(media, web.FileField):
        return _wechat(41005, "media data missing")
    media.file.close()
    fake.materials[f"IMG-{len(fake.materials) + 1}"] = {"type": "uploadimg"}
    return web.json_response({"url": f"http://mmbiz.qpic.cn/fake/img-{len(fake.materials)}.jpg"})


async def _json_body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.read())
    except (UnicodeDecodeError, ValueError):
        return None
    return body if isinstance(body, dict) else None


async def _draft_add(request: web.Request) -> web.Response:
    fake = request.app[FAKE_PLATFORM]
    if refused := _stale_token(request):
        return refused
    body = await _json_body(request)
    articles = body.get("articles") if body else None
    if not isinstance(articles, list) or not articles or not all(isinstance(a, dict) for a in articles):
        return _wechat(47001, "data format error")
    for article in articles:
        if not article.get("title") or not article.get("content"):
            return _wechat(47001, "data format error")
        if article.get("thumb_media_id") not in fake.materials:
            return _wechat(40007, "invalid media_id")
    media_id = f"DRAFT-{len(fake.drafts) + 1}"
    fake.drafts[media_id] = articles
    return web.json_response({"media_id": media_id})


async def _freepublish_submit(request: web.Request) -> web.Response:
    fake = request.app[FAKE_PLATFORM]
    if refused := _stale_token(request):
        return refused
    body = await _json_body(request)
    media_id = body.get("media_id") if body else None
    if media_id not in fake.drafts:
        return _wechat(40007, "invalid media_id")
    publish_id = str(2247483000 + len(fake.published) + 1)
    for article in fake.drafts[str(media_id)]:
        fake.published.append({"channel": "wechat", "id": publish_id, "title": article["title"],
                               "content": article["content"], "thumb_media_id": article["thumb_media_id"],
                               "at": fake.clock().isoformat()})
    return web.json_response({"errcode": 0, "errmsg": "ok", "publish_id": publish_id, "msg_data_id": publish_id})


async def _weibo_share(request: web.Request) -> web.Response:
    fake = request.app[FAKE_PLATFORM]
    form = await request.post()
    token = form.get("access_token")
    if not isinstance(token, str) or not _same(token, fake.weibo_token):
        return web.json_response({"request": "/2/statuses/share.json", "error_code": 21332,
                                  "error": "invalid_access_token"}, status=400)
    status = form.get("status")
    if not isinstance(status, str) or not status.strip():
        return web.json_response({"request": "/2/statuses/share.json", "error_code": 10008,
                                  "error": "Param error, see doc for more info"}, status=400)
    pic = form.get("pic")
    if isinstance(pic, web.FileField):
        pic.file.close()
    weibo_id = 4_900_000_000_000_000 + len(fake.published) + 1
    fake.published.append({"channel": "weibo", "id": str(weibo_id), "text": status,
                           "pic": pic.filename if isinstance(pic, web.FileField) else None,
                           "at": fake.clock().isoformat()})
    return web.json_response({"id": weibo_id, "idstr": str(weibo_id), "text": status})


async def _published(request: web.Request) -> web.Response:
    return web.json_response(request.app[FAKE_PLATFORM].published,
                             dumps=lambda obj: json.dumps(obj, ensure_ascii=False))


# --- what a person watches -----------------------------------------------------------------------

async def _received(request: web.Request) -> web.Response:
    fake = request.app[FAKE_PLATFORM]
    return web.json_response([message.as_json() for message in fake.received],
                             dumps=lambda obj: json.dumps(obj, ensure_ascii=False))


_PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="3">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>模拟平台 · 收到的消息（{count}）</title>
<style>
body {{ font-family: system-ui, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif;
       margin: 0 auto; max-width: 42rem; padding: 1rem; background: #f2f2f2; color: #222; }}
h1 {{ font-size: 1.3rem; margin: .2rem 0; }}
.hint {{ color: #666; font-size: .9rem; }}
code {{ background: #e6e6e6; padding: 0 .25rem; border-radius: 3px; }}
ol {{ list-style: none; padding: 0; }}
li {{ background: #fff; border-radius: 8px; margin: .7rem 0; padding: .7rem .9rem;
      border-left: 5px solid #07c160; }}
li.weibo {{ border-left-color: #e6162d; }}
li.refused {{ border-left-color: #999; background: #fafafa; }}
.meta {{ color: #666; font-size: .85rem; margin-bottom: .35rem; }}
.status {{ font-weight: bold; color: #07c160; }}
li.refused .status {{ color: #b00020; }}
.text {{ white-space: pre-wrap; word-break: break-word; font-size: 1.05rem; line-height: 1.5; }}
.empty {{ color: #666; text-align: center; padding: 2rem 0; }}
</style>
</head>
<body>
<h1>模拟微信 / 微博平台</h1>
<p class="hint">guanwei 发出的答复出现在这里，最新的在最上面；本页每 3 秒自动刷新。共 {count} 条。<br>
微信接口地址 <code>{base}/cgi-bin/</code>，微博接口地址 <code>{base}</code>，
JSON：<a href="received"><code>/received</code></a></p>
{body}
</body>
</html>
"""


def _item(message: ReceivedMessage) -> str:
    channel = _CHANNEL_LABELS.get(message.channel, message.channel)
    status = "已送达" if message.delivered else f"被拒收（错误码 {message.code}）"
    classes = message.channel + ("" if message.delivered else " refused")
    when = message.at.astimezone(_LOCAL).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f'<li class="{html.escape(classes)}"><div class="meta">{html.escape(channel)} · 发给 '
        f"<code>{html.escape(message.to)}</code> · {when} · <span class=\"status\">{html.escape(status)}</span>"
        f'</div><div class="text">{html.escape(message.text)}</div></li>'
    )


async def _page(request: web.Request) -> web.Response:
    fake = request.app[FAKE_PLATFORM]
    messages = fake.received[::-1]
    body = ("<ol>\n" + "\n".join(_item(m) for m in messages) + "\n</ol>") if messages else (
        '<p class="empty">还没有收到消息。在管理台答复一条留言，几秒后它就会出现在这里。</p>'
    )
    base = f"{request.scheme}://{request.host}"
    page = _PAGE.format(count=len(messages), base=html.escape(base), body=body)
    return web.Response(text=page, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


# --- application and runner ----------------------------------------------------------------------

def create_fake_platform(*, appid: str, secret: str, weibo_token: str,
                         clock: Callable[[], datetime] = _utc_now) -> web.Application:
    """The fake platform; its state is ``app[FAKE_PLATFORM]``."""
    app = web.Application(client_max_size=32 * 1024 * 1024)  # published videos are up to 20 MB
    app[FAKE_PLATFORM] = FakePlatform(appid=appid, secret=secret, weibo_token=weibo_token, clock=clock)
    app.router.add_get("/cgi-bin/token", _token)
    app.router.add_post("/cgi-bin/message/custom/send", _custom_send)
    app.router.add_post("/2/messages/reply.json", _weibo_reply)
    app.router.add_post("/cgi-bin/material/add_material", _add_material)
    app.router.add_post("/cgi-bin/media/uploadimg", _upload_image)
    app.router.add_post("/cgi-bin/draft/add", _draft_add)
    app.router.add_post("/cgi-bin/freepublish/submit", _freepublish_submit)
    app.router.add_post("/2/statuses/share.json", _weibo_share)
    app.router.add_get("/published", _published)
    app.router.add_get("/received", _received)
    app.router.add_get("/", _page)
    return app


async def run_fake_platform(host: str = "127.0.0.1", port: int = 8081, *, appid: str, secret: str,
                            weibo_token: str, out: TextIO | None = None) -> None:
    """Serve the fake platform on `host`:`port` until cancelled, printing its URLs first (port 0: any free)."""
    out = out or sys.stdout
    runner = web.AppRunner(create_fake_platform(appid=appid, secret=secret, weibo_token=weibo_token),
                           access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)  # noqa: S104
        base = f"http://{shown}:{bound}"
        print(f"模拟平台已启动：{base}/  （浏览器打开，查看收到的答复）", file=out)
        print(f"  platform_api.wechat_base_url: {base}/cgi-bin/", file=out)
        print(f"  platform_api.weibo_base_url:  {base}", file=out)
        print(f"  JSON: {base}/received    Ctrl+C 退出", file=out, flush=True)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
