"""Staff answers delivered to the netizen through the platform (issue 5, item 4). No server code, no SQL.

`Outbound.send(channel, recipient, text)` hands an answer to WeChat's customer-service message API
(wechatpy, in a worker thread) or Weibo's fans-service active reply API (aiohttp), and returns a
`DeliveryOutcome` the caller records. A platform refusal is an outcome, never an exception:

- ``delivered``: the platform accepted the message. `reason` is None, or a note when the text had
  to be cut to the platform's limit.
- ``undeliverable``: the platform refused for good; sending the same answer again cannot help.
  `reason` (Chinese, for staff) says why, e.g. the 48-hour window has passed.
- ``failed``: a temporary or configuration problem (network, HTTP 5xx, rate limits, a token the
  platform keeps rejecting): the answer may be sent again later.

The only exception callers see is `ValueError` for an empty answer (a caller bug, not an outcome).

Decisions, with their sources:

- WeChat text limit: the official customer-service message page gives no limit for ``text.content``;
  2048 bytes of UTF-8 is the figure commonly cited (and WeCom's documented text limit), and WeChat
  answers errcode 45002 when content is too long. The text is cut to ``WECHAT_TEXT_MAX_BYTES``
  between user-perceived characters (never inside an emoji sequence), ending in "…".
- WeChat errcodes, from the global error-code table and shared/protocols.md: 45015 (48-hour window
  passed or the user unfollowed), 43004 (user does not follow), 40003 (invalid openid), 43019 (user
  blacklisted by the account), 48002 (user turned off messages from the account) and 45002 (content
  too long) are ``undeliverable``; 45047 (customer-service quota for this user spent), 45009 and
  -1 (system busy), token errors still failing after `WeChatAPIClient`'s single refetch, credential
  errors (40013, 40125, 40164) and everything unknown are ``failed``.
- Weibo: the fans-service documentation publishes no error code for "48 hours passed" or "user
  unfollowed". Errors come as ``{"request", "error_code", "error"}`` (open.weibo.com/wiki/Error_code,
  mirrored in weiboclient4j's ``WeiboError``). Only codes that plainly cannot succeed on a retry
  are ``undeliverable``: 20003 user does not exist, 20301 cannot message a non-follower, 20508
  refused by the user's privacy settings, 20512 user on the account's blacklist, and content
  refusals (20013 text too long, 20020 advertising, 20021 illegal content, 21602 forbidden words).
  Token errors (21314–21319, 21327, 21332) and every other or unknown code are ``failed``, with the
  platform's code and text in `reason` so staff see exactly what Weibo said. Conservative on
  purpose: an answer wrongly marked undeliverable would never be retried.
- Weibo text: cut to `bot.weibo.REPLY_TEXT_LIMIT` (300) characters, as for passive replies.
- Staff answers longer than either limit are refused before sending (`Outbound.too_long`, checked by
  `bot.staff.answer`): the cutting above is only a last guard.

No part of a token or secret, and no URL query string, reaches a log or a reason; openids and Weibo
ids are logged masked (`bot.logs.mask_id`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import requests
from loguru import logger
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from bot.inbound import Channel
from bot.logs import mask_id, mask_text, redact_secrets
from bot.weibo import ELLIPSIS, REPLY_TEXT_LIMIT, encode_reply_data, graphemes, truncate_text

__all__ = [
    "DELIVERED",
    "FAILED",
    "STATUSES",
    "STATUS_NAMES",
    "UNDELIVERABLE",
    "WECHAT_TEXT_MAX_BYTES",
    "WECHAT_UNDELIVERABLE",
    "WEIBO_REPLY_PATH",
    "WEIBO_UNDELIVERABLE",
    "DeliveryOutcome",
    "Outbound",
    "WeChatSender",
    "WeiboSender",
    "cut_utf8",
]

DELIVERED = "delivered"
UNDELIVERABLE = "undeliverable"
FAILED = "failed"
STATUSES = (DELIVERED, UNDELIVERABLE, FAILED)
STATUS_NAMES = {DELIVERED: "已送达", UNDELIVERABLE: "无法送达", FAILED: "发送失败"}  # as staff read them

WECHAT_TEXT_MAX_BYTES = 2048
WEIBO_REPLY_PATH = "/2/messages/reply.json"


@dataclass(frozen=True)
class DeliveryOutcome:
    """What became of one answer. `platform_code`: WeChat's errcode / Weibo's error_code, if any."""

    status: str
    reason: str | None = None
    platform_code: int | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status: expected one of {STATUSES}, got {self.status!r}")

    @property
    def delivered(self) -> bool:
        return self.status == DELIVERED

    @property
    def retryable(self) -> bool:
        """Sending the same answer again later may succeed."""
        return self.status == FAILED


# --- text ----------------------------------------------------------------------------------------

def _clean(text: str) -> str:
    """Lone surrogates (possible in JSON input) become U+FFFD: they cannot be encoded as UTF-8."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _require_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("an answer needs some text")
    return _clean(text)


def cut_utf8(text: str, max_bytes: int) -> str:
    """At most `max_bytes` of UTF-8, cut between user-perceived characters and ending in "…" if cut."""
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    budget = max_bytes - len(ELLIPSIS.encode("utf-8"))
    kept: list[str] = []
    used = 0
    for cluster in graphemes(text):
        size = len(cluster.encode("utf-8"))
        if used + size > budget:
            break
        kept.append(cluster)
        used += size
    return "".join(kept) + ELLIPSIS


def _mask_secrets(text: str, secrets: Iterable[str | None]) -> str:
    """No part of a secret, no query string (requests quotes the token URL with its secret), no personal data."""
    return mask_text(redact_secrets(text, secrets))


# --- WeChat --------------------------------------------------------------------------------------

# errcode → why the platform will never deliver this message (shown to staff).
WECHAT_UNDELIVERABLE: dict[int, str] = {
    45015: "已超过48小时客服消息时限（对方48小时内未与公众号互动）或对方已取消关注",
    43004: "对方未关注或已取消关注公众号",
    40003: "对方的 openid 无效（不属于本公众号）",
    43019: "对方已被公众号拉黑",
    48002: "对方已拒收公众号消息",
    45002: "答复内容超过微信长度限制",
}
_WECHAT_TOKEN = frozenset({40001, 40014, 42001})
_WECHAT_CREDENTIALS = frozenset({40013, 40125, 40164, 41002, 41004})
_WECHAT_FAILED: dict[int, str] = {
    45047: "对方的客服消息条数已用完，需等对方再次发消息",
    45009: "微信接口调用次数已达上限，请稍后重试",
    -1: "微信系统繁忙，请稍后重试",
}


class WeChatSender:
    """Customer-service text messages (`message/custom/send`) through wechatpy, off the event loop.

    `client_factory` builds the client (normally `escalation.notifiers.WeChatAPIClient`, with a
    shared ``RedisStorage`` session when there are several workers); it is called once, lazily, in
    a worker thread, and the client — with its access token — is reused for every send.
    """

    def __init__(self, client_factory: Callable[[], WeChatClient], *,
                 max_bytes: int = WECHAT_TEXT_MAX_BYTES) -> None:
        self._client_factory = client_factory
        self._client: WeChatClient | None = None
        self._lock = threading.Lock()
        self._max_bytes = max_bytes

    def _get_client(self) -> WeChatClient:
        with self._lock:
            if self._client is None:
                self._client = self._client_factory()
            # One token fetch at a time: every fetch invalidates the token before it.
            _ = self._client.access_token  # the property fetches when missing or about to expire
            return self._client

    def close(self) -> None:
        """Close the client's HTTP connections (a new client is made on the next send)."""
        with self._lock:
            client, self._client = self._client, None
        http = getattr(client, "_http", None)
        if isinstance(http, requests.Session):
            http.close()

    async def send_text(self, openid: str, text: str) -> DeliveryOutcome:
        body = _require_text(text)
        content = cut_utf8(body, self._max_bytes)
        outcome = await asyncio.to_thread(self._send_blocking, openid, content)
        if outcome.delivered and content != body:
            outcome = DeliveryOutcome(
                DELIVERED, f"答复超过微信单条消息上限（{self._max_bytes} 字节），已截断后发送", None
            )
        _log("wechat", openid, outcome)
        return outcome

    def _send_blocking(self, openid: str, content: str) -> DeliveryOutcome:
        client: WeChatClient | None = None
        try:
            client = self._get_client()
            result = client.message.send_text(openid, content)
        except WeChatClientException as exc:
            return _wechat_refusal(exc, self._secrets(client))
        except requests.RequestException as exc:
            detail = _mask_secrets(f"{type(exc).__name__}: {exc}", self._secrets(client))
            return DeliveryOutcome(FAILED, f"连接微信接口失败，请稍后重试（{detail[:300]}）", None)
        except Exception as exc:  # Redis down, a malformed token answer, …: the answer is kept for a retry
            detail = _mask_secrets(f"{type(exc).__name__}: {exc}", self._secrets(client))
            return DeliveryOutcome(FAILED, f"发送微信消息时出错（{detail[:300]}）", None)
        if isinstance(result, dict) and int(result.get("errcode", 0) or 0) == 0:
            return DeliveryOutcome(DELIVERED, None, None)
        return DeliveryOutcome(FAILED, "微信接口返回了无法识别的应答", None)

    @staticmethod
    def _secrets(client: WeChatClient | None) -> list[str | None]:
        if client is None:
            return []
        token = None
        with contextlib.suppress(Exception):  # only for masking: a broken token store is reported anyway
            token = client.session.get(client.access_token_key)
        return [getattr(client, "secret", None), token if isinstance(token, str) else None]


def _wechat_refusal(exc: WeChatClientException, secrets: Sequence[str | None]) -> DeliveryOutcome:
    if exc.errcode is None:  # an HTTP error status
        status = getattr(exc.response, "status_code", None)
        return DeliveryOutcome(FAILED, f"微信接口暂时不可用（HTTP {status}），请稍后重试", None)
    try:
        errcode = int(exc.errcode)
    except (TypeError, ValueError):
        return DeliveryOutcome(FAILED, "微信接口返回了无法识别的错误码", None)
    errmsg = _mask_secrets(str(exc.errmsg or ""), secrets)[:200]
    code = f"（微信 {errcode}：{errmsg}）" if errmsg and errmsg != str(errcode) else f"（微信 {errcode}）"
    if errcode in WECHAT_UNDELIVERABLE:
        return DeliveryOutcome(UNDELIVERABLE, WECHAT_UNDELIVERABLE[errcode] + code, errcode)
    if errcode in _WECHAT_TOKEN:
        return DeliveryOutcome(FAILED, "公众号 access_token 重新获取后仍被拒绝" + code, errcode)
    if errcode in _WECHAT_CREDENTIALS:
        return DeliveryOutcome(FAILED, "公众号 AppID/AppSecret 或 IP 白名单配置有误" + code, errcode)
    return DeliveryOutcome(FAILED, _WECHAT_FAILED.get(errcode, "微信接口拒绝了本次发送") + code, errcode)


# --- Weibo ---------------------------------------------------------------------------------------

WEIBO_UNDELIVERABLE: dict[int, str] = {
    20003: "对方微博用户不存在",
    20301: "对方不是本账号的粉丝，无法发送私信",
    20508: "对方的隐私设置不允许接收本账号的消息",
    20512: "对方在本账号的黑名单中",
    20013: "答复内容超过微博长度限制",
    20020: "答复内容被微博判定为广告",
    20021: "答复内容被微博判定为违规",
    21602: "答复内容含有微博禁止的词语",
}
_WEIBO_TOKEN = frozenset({21314, 21315, 21316, 21317, 21318, 21319, 21327, 21332})
_WEIBO_BUSY = frozenset({10001, 10002, 10003, 10009, 10010, 10011, 10022, 10023, 10024, 21331})


class WeiboSender:
    """Fans-service active replies: POST ``{api_base_url}/2/messages/reply.json``, form-encoded.

    `access_token` is the fans-service token from the platform's developer page (long-lived; there
    is nothing to refetch — a rejected token is reported as ``failed`` until it is replaced).
    """

    def __init__(self, session: aiohttp.ClientSession, access_token: str,
                 api_base_url: str = "https://m.api.weibo.com", *, timeout: float = 10.0,
                 max_chars: int = REPLY_TEXT_LIMIT) -> None:
        self._session = session
        self._access_token = access_token
        self._url = api_base_url.rstrip("/") + WEIBO_REPLY_PATH
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_chars = max_chars

    def __repr__(self) -> str:
        return f"WeiboSender(url={self._url!r})"

    async def send_text(self, receiver_id: str | int, text: str) -> DeliveryOutcome:
        body = _require_text(text)
        receiver = str(receiver_id).strip()
        if not (receiver.isascii() and receiver.isdigit()) or not 0 < int(receiver) < 2**63:
            outcome = DeliveryOutcome(UNDELIVERABLE, "对方的微博用户ID无效", None)
            _log("weibo", receiver, outcome)
            return outcome
        content = truncate_text(body, self._max_chars)
        outcome = await self._post(receiver, content)
        if outcome.delivered and content != body:
            outcome = DeliveryOutcome(
                DELIVERED, f"答复超过微博单条消息上限（{self._max_chars} 字），已截断后发送", None
            )
        _log("weibo", receiver, outcome)
        return outcome

    async def _post(self, receiver: str, content: str) -> DeliveryOutcome:
        form = {
            "access_token": self._access_token,
            "type": "text",
            "data": encode_reply_data({"text": content}),
            "receiver_id": receiver,
            "save_sender_box": "0",
        }
        secrets = [self._access_token]
        try:
            async with self._session.post(self._url, data=form, timeout=self._timeout) as response:
                status = response.status
                raw = await response.read()
        except TimeoutError:
            return DeliveryOutcome(FAILED, "微博接口超时，请稍后重试", None)
        except aiohttp.ClientError as exc:
            detail = _mask_secrets(f"{type(exc).__name__}: {exc}", secrets)
            return DeliveryOutcome(FAILED, f"连接微博接口失败，请稍后重试（{detail[:300]}）", None)
        try:
            answer: Any = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            answer = None
        if isinstance(answer, dict) and answer.get("error_code") not in (None, "", 0, "0"):
            return _weibo_refusal(answer, secrets)
        if status >= 400 or not isinstance(answer, dict):
            what = f"HTTP {status}" if status >= 400 else "无法识别的应答"
            return DeliveryOutcome(FAILED, f"微博接口暂时不可用（{what}），请稍后重试", None)
        if answer.get("result") is False:
            return DeliveryOutcome(FAILED, "微博接口未接受本次发送（result=false）", None)
        return DeliveryOutcome(DELIVERED, None, None)


def _weibo_refusal(answer: dict[str, Any], secrets: Sequence[str | None]) -> DeliveryOutcome:
    try:
        code = int(answer["error_code"])
    except (TypeError, ValueError):
        return DeliveryOutcome(FAILED, "微博接口返回了无法识别的错误码", None)
    message = _mask_secrets(str(answer.get("error") or ""), secrets)[:200]
    said = f"（微博 {code}：{message}）" if message else f"（微博 {code}）"
    if code in WEIBO_UNDELIVERABLE:
        return DeliveryOutcome(UNDELIVERABLE, WEIBO_UNDELIVERABLE[code] + said, code)
    if code in _WEIBO_TOKEN:
        return DeliveryOutcome(FAILED, "微博粉丝服务 access_token 无效或已过期，请更新配置" + said, code)
    if code in _WEIBO_BUSY:
        return DeliveryOutcome(FAILED, "微博系统繁忙或调用频次超限，请稍后重试" + said, code)
    return DeliveryOutcome(FAILED, "微博接口拒绝了本次发送" + said, code)


# --- both ----------------------------------------------------------------------------------------

def reply_too_long(
    channel: str, text: str, *, wechat_max_bytes: int = WECHAT_TEXT_MAX_BYTES, weibo_max_chars: int = REPLY_TEXT_LIMIT
) -> str | None:
    """Why `text` does not fit one message on `channel` (in Chinese, for staff), or None: a staff answer, or an
    FAQ answer with its auto-reply wording, is never cut on its way out and still counted as answered."""
    body = _clean(text)
    if channel == Channel.WECHAT:
        size = len(body.encode("utf-8"))
        if size > wechat_max_bytes:
            return (f"答复共 {size} 字节，超过微信客服消息单条上限（{wechat_max_bytes} 字节，"
                    f"约 {wechat_max_bytes // 3} 个汉字）：请精简后再发送，或分成几条依次发送")
    elif channel == Channel.WEIBO and len(body) > weibo_max_chars:
        return (f"答复共 {len(body)} 字，超过微博私信单条上限（{weibo_max_chars} 字）："
                "请精简后再发送，或分成几条依次发送")
    return None


class Outbound:
    """One entry point for answers: `send("wechat" | "weibo", recipient, text)`."""

    def __init__(self, wechat: WeChatSender | None = None, weibo: WeiboSender | None = None) -> None:
        self.wechat = wechat
        self.weibo = weibo

    def too_long(self, channel: str, text: str) -> str | None:
        """Why `text` cannot go out as one message on `channel` (for staff, in Chinese), or None. Checked before
        sending: a cut answer would reach the netizen without its end and still count as answered."""
        return reply_too_long(
            channel, text,
            wechat_max_bytes=self.wechat._max_bytes if self.wechat is not None else WECHAT_TEXT_MAX_BYTES,
            weibo_max_chars=self.weibo._max_chars if self.weibo is not None else REPLY_TEXT_LIMIT,
        )

    async def send(self, channel: str, recipient: str, text: str) -> DeliveryOutcome:
        """Deliver `text` to `recipient` (an openid or a Weibo user id) on `channel`.

        A channel that is unknown or not configured is a ``failed`` outcome, not an exception.
        """
        _require_text(text)
        if channel == Channel.WECHAT:
            if self.wechat is None:
                return _not_configured("wechat", recipient, "未配置微信公众号发送（缺少 AppID/AppSecret），答复未发出")
            return await self.wechat.send_text(recipient, text)
        if channel == Channel.WEIBO:
            if self.weibo is None:
                return _not_configured("weibo", recipient, "未配置微博粉丝服务发送（缺少 access_token），答复未发出")
            return await self.weibo.send_text(recipient, text)
        return _not_configured(str(channel), recipient, f"未知的渠道 {str(channel)[:40]!r}，答复未发出")


def _not_configured(channel: str, recipient: str, reason: str) -> DeliveryOutcome:
    outcome = DeliveryOutcome(FAILED, reason, None)
    _log(channel, recipient, outcome)
    return outcome


def _log(channel: str, recipient: str, outcome: DeliveryOutcome) -> None:
    who = mask_id(str(recipient))
    if outcome.delivered:
        logger.info("{} answer to {} delivered{}", channel, who, f" ({outcome.reason})" if outcome.reason else "")
    else:
        logger.warning("{} answer to {} {}: {}", channel, who, outcome.status, outcome.reason)
