"""Alerting staff (催办 reminders, 逐级上报 escalations) behind one interface (issue 4, item 6).

The scheduler decides who is told and when; this module only delivers. Every channel implements
`Notifier`: `send(contact, alert)` returns on success and raises `NotifyError` otherwise, saying
whether trying again soon could help. `deliver` sends one alert to many contacts at once, retries
each retryable failure with exponential backoff, bounds every send with a timeout, and returns one
`DeliveryResult` per contact for the caller to record. A failing or slow channel never blocks,
delays past its timeout, or cancels the others.

Channels (`Contact.channel`):

- ``wecom_robot``: a WeCom (企业微信) group robot; the address is its webhook URL, whose ``key``
  is a secret. It is masked (`key=abcd…`) in every log line, error text and repr.
- ``wechat_template``: a template message from the Official Account to a staff member's openid,
  through wechatpy (blocking, so it runs in a thread).
- ``email``: SMTP through aiosmtplib.
- ``log``: a loguru line; never fails. Useful as the last resort contact and in development.

No import of bot/, handlers/ or storage: configuration is passed in by the caller.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import aiohttp
import aiosmtplib
import requests
from loguru import logger
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

__all__ = [
    "CHANNELS",
    "EMAIL",
    "LOG",
    "WECHAT_TEMPLATE",
    "WECOM_ROBOT",
    "Alert",
    "Contact",
    "DeliveryResult",
    "EmailNotifier",
    "LogNotifier",
    "Notifier",
    "NotifyError",
    "WeChatAPIClient",
    "WeChatTemplateNotifier",
    "WeComRobotNotifier",
    "default_template_data",
    "deliver",
    "mask_address",
    "redact",
    "render_text",
]

WECOM_ROBOT = "wecom_robot"
WECHAT_TEMPLATE = "wechat_template"
EMAIL = "email"
LOG = "log"
CHANNELS = (WECOM_ROBOT, WECHAT_TEMPLATE, EMAIL, LOG)

_KIND_LABELS = {"reminder": "催办", "escalation": "逐级上报"}


# --- values ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Alert:
    """What staff are told: plain, short Chinese text."""

    subject: str
    body: str
    inquiry_id: int
    kind: str  # "reminder" (催办), "escalation" (逐级上报), or another label the scheduler uses
    rung: int | None = None
    url: str | None = None


@dataclass(frozen=True, repr=False)
class Contact:
    """Someone to tell, and how. `address` may hold a secret (a robot webhook key): see `__repr__`."""

    name: str
    channel: str
    address: str

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"contact {self.name!r}: unknown channel {self.channel!r} (expected one of {CHANNELS})")

    def __repr__(self) -> str:
        return f"Contact(name={self.name!r}, channel={self.channel!r}, address={mask_address(self)!r})"


@dataclass(frozen=True)
class DeliveryResult:
    """One contact's outcome: `attempts` is 0 when no notifier serves the contact's channel."""

    contact: Contact
    ok: bool
    attempts: int
    error: str | None = None


class NotifyError(Exception):
    """A send failed. `retryable`: trying again in a few seconds may succeed. `reason` is redacted."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        self.reason = redact(reason)
        self.retryable = retryable
        super().__init__(self.reason)

    def __repr__(self) -> str:
        return f"NotifyError({self.reason!r}, retryable={self.retryable})"


class Notifier(Protocol):
    channel: str

    async def send(self, contact: Contact, alert: Alert) -> None:
        """Deliver `alert` to `contact`, or raise NotifyError."""
        ...


# --- masking --------------------------------------------------------------------------------------

# Query parameters that carry secrets: the WeCom robot key, WeChat's appsecret and access_token.
_SECRET_PARAM = re.compile(
    r"(?i)(?<![\w-])(key|secret|access_token|password)(=|%3D)([^&\s'\"<>)\]},;]{0,4})[^&\s'\"<>)\]},;]*"
)


def redact(text: str) -> str:
    """Mask secret query parameters (`key=abcd…`) wherever they appear in `text`."""
    return _SECRET_PARAM.sub(lambda m: f"{m[1]}{m[2]}{m[3]}…", text)


def _robot_key(url: str) -> str | None:
    try:
        values = parse_qs(urlsplit(url).query).get("key")
    except ValueError:
        return None
    return values[0] if values else None


def _redact_with(text: str, secrets: Iterable[str | None]) -> str:
    """`redact`, and also every literal occurrence of the given secrets (in case one appears bare)."""
    for secret in secrets:
        if secret and len(secret) > 4:
            text = text.replace(secret, f"{secret[:4]}…")
    return redact(text)


def mask_address(contact: Contact) -> str:
    """The contact's address as it may appear in a log line."""
    address = contact.address
    if contact.channel == WECOM_ROBOT:
        return _redact_with(address, [_robot_key(address)])
    if contact.channel == WECHAT_TEMPLATE:
        return f"{address[:3]}***{address[-3:]}" if len(address) > 6 else "***"
    if contact.channel == EMAIL:
        local, at, domain = address.partition("@")
        return f"{local[:1]}***{at}{domain}"
    return address


def _describe(contact: Contact) -> str:
    return f"{contact.name} ({contact.channel} {mask_address(contact)})"


# --- rendering ------------------------------------------------------------------------------------

def render_text(alert: Alert) -> str:
    """The alert as plain text: subject, body, then the inquiry, the rung and the link."""
    lines = [alert.subject, alert.body]
    facts = [f"事项编号：#{alert.inquiry_id}"]
    if alert.rung is not None:
        facts.append(f"上报层级：第{alert.rung}级")
    lines.append("；".join(facts))
    if alert.url:
        lines.append(f"详情：{alert.url}")
    return "\n".join(line for line in lines if line)


def _cut_utf8(text: str, max_bytes: int) -> str:
    """Cut on a character boundary so the UTF-8 encoding fits `max_bytes`, marking the cut with …."""
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    budget = max_bytes - len("…".encode())
    return text.encode("utf-8")[:budget].decode("utf-8", "ignore") + "…"


# --- WeCom group robot ----------------------------------------------------------------------------

# WeCom robot errcodes that another try cannot fix; any other non-zero errcode is retried.
_WECOM_PERMANENT = frozenset({
    93000,  # invalid webhook url (key unknown or robot removed)
    93004,  # robot disabled
    93008,  # robot not in the group / group dissolved
    40008,  # invalid message type
    44004,  # empty text content
})
_WECOM_TEXT_MAX_BYTES = 2048
_WECOM_MARKDOWN_MAX_BYTES = 4096


class WeComRobotNotifier:
    """POSTs the alert to the contact's WeCom robot webhook (`{"errcode": 0, "errmsg": "ok"}` = sent).

    Non-zero errcodes are retryable (45009 is the robot's rate limit: 20 messages a minute) except
    the permanent ones (93000 invalid webhook URL, …); HTTP 5xx, 429, connection errors and timeouts
    are retryable; other 4xx are not.
    """

    channel = WECOM_ROBOT

    def __init__(self, session: aiohttp.ClientSession, *, markdown: bool = False, timeout: float = 10.0) -> None:
        self._session = session
        self._markdown = markdown
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def payload(self, alert: Alert) -> dict[str, Any]:
        if self._markdown:
            lines = [f"**{alert.subject}**", f"> {alert.body}", f"> 事项编号：#{alert.inquiry_id}"]
            if alert.rung is not None:
                lines.append(f"> 上报层级：第{alert.rung}级")
            if alert.url:
                lines.append(f"[查看详情]({alert.url})")
            content = _cut_utf8("\n".join(lines), _WECOM_MARKDOWN_MAX_BYTES)
            return {"msgtype": "markdown", "markdown": {"content": content}}
        return {"msgtype": "text", "text": {"content": _cut_utf8(render_text(alert), _WECOM_TEXT_MAX_BYTES)}}

    async def send(self, contact: Contact, alert: Alert) -> None:
        key = _robot_key(contact.address)

        def fail(reason: str, retryable: bool) -> NotifyError:
            return NotifyError(_redact_with(reason, [key]), retryable=retryable)

        try:
            async with self._session.post(
                contact.address, json=self.payload(alert), timeout=self._timeout
            ) as response:
                if response.status >= 500 or response.status == 429:
                    raise fail(f"WeCom robot: HTTP {response.status}", True)
                if response.status >= 400:
                    raise fail(f"WeCom robot: HTTP {response.status}", False)
                try:
                    answer = await response.json(content_type=None)
                except ValueError:
                    raise fail(f"WeCom robot: HTTP {response.status}, answer is not JSON", True) from None
        except TimeoutError:
            raise fail("WeCom robot: timed out", True) from None
        except aiohttp.InvalidURL:
            raise fail("WeCom robot: invalid webhook URL", False) from None
        except aiohttp.ClientError as exc:
            raise fail(f"WeCom robot: {type(exc).__name__}: {exc}", True) from None
        errcode = answer.get("errcode") if isinstance(answer, dict) else None
        if errcode == 0:
            return
        if not isinstance(errcode, int):
            raise fail(f"WeCom robot: unexpected answer {str(answer)[:200]}", True)
        errmsg = str(answer.get("errmsg", ""))[:200]
        raise fail(f"WeCom robot: errcode {errcode}: {errmsg}", errcode not in _WECOM_PERMANENT)


# --- WeChat template message ----------------------------------------------------------------------

_TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # invalid credential / access_token, expired token
# WeChat errcodes another try cannot fix (the rest, e.g. -1 system busy, are retried).
_WECHAT_PERMANENT = frozenset({
    *_TOKEN_ERRCODES,  # still failing after wechatpy's refetch: retrying only steals tokens from others
    40003,  # invalid openid
    40013,  # invalid appid
    40037,  # invalid template_id
    40125,  # invalid appsecret
    40164,  # caller IP not in the whitelist
    41028, 41029, 41030,  # form/page parameters
    43004,  # the staff member does not follow the account
    43019,  # the user blocked the account
    45009,  # daily quota of template messages spent: not back within seconds
    47001,  # malformed body
    47003,  # template data does not fit the template
    48001,  # API not authorised for this account
})


class _TimeoutSession(requests.Session):
    """A requests session with a default timeout: wechatpy's token fetch passes none at all."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._default_timeout = timeout

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._default_timeout
        return super().request(method, url, *args, **kwargs)


class _TokenRetry(threading.local):
    depth = 0
    refetched = False


class WeChatAPIClient(WeChatClient):  # type: ignore[misc]
    """wechatpy's `WeChatClient` with a configurable API base URL, timeouts, and one token refetch.

    - `api_base_url` replaces ``https://api.weixin.qq.com/cgi-bin/`` for every call, the token
      fetch included (wechatpy hard-codes the token URL in `fetch_access_token`).
    - Every request, the token fetch included, has `timeout` seconds.
    - wechatpy answers errcodes 40001/40014/42001 by fetching a new token and retrying, with no
      limit; this client does it once per call, then raises the errcode.

    Every fetch invalidates the token before it: give all workers one shared `session` storage
    (wechatpy's ``RedisStorage``) so they do not keep stealing each other's tokens.
    """

    def __init__(
        self,
        appid: str,
        secret: str,
        *,
        api_base_url: str = "https://api.weixin.qq.com/cgi-bin/",
        access_token: str | None = None,
        session: Any = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(appid, secret, access_token=access_token, session=session, timeout=timeout)
        self.API_BASE_URL = api_base_url.rstrip("/") + "/"
        self._http = _TimeoutSession(timeout)
        self._token_retry = _TokenRetry()

    def fetch_access_token(self) -> dict[str, Any]:
        return self._fetch_access_token(  # type: ignore[no-any-return]
            url=f"{self.API_BASE_URL}token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )

    def _request(self, method: str, url_or_endpoint: str, **kwargs: Any) -> Any:
        state = self._token_retry
        if state.depth == 0:
            state.refetched = False
        state.depth += 1
        try:
            return super()._request(method, url_or_endpoint, **kwargs)
        finally:
            state.depth -= 1

    def _handle_result(self, res: Any, method: Any = None, url: Any = None, result_processor: Any = None,
                       **kwargs: Any) -> Any:
        result = res if isinstance(res, dict) else self._decode_result(res)
        errcode = result.get("errcode") if isinstance(result, dict) else None
        if self.auto_retry and errcode is not None and int(errcode) in _TOKEN_ERRCODES:
            if self._token_retry.refetched:
                raise WeChatClientException(
                    int(errcode), result.get("errmsg", errcode), client=self,
                    request=getattr(res, "request", None), response=res,
                )
            self._token_retry.refetched = True  # wechatpy refetches and retries once, below
        return super()._handle_result(res, method, url, result_processor, **kwargs)


def default_template_data(alert: Alert) -> dict[str, dict[str, str]]:
    """Template fields for a classic 事项提醒 template: first, keyword1–3, remark.

    Real templates name their fields in the admin console (newer ones `thing1`, `time2`, … with
    length limits); pass `template_data=` to `WeChatTemplateNotifier` to match yours.
    """
    remark = f"上报层级：第{alert.rung}级" if alert.rung is not None else ""
    return {
        "first": {"value": alert.subject},
        "keyword1": {"value": f"#{alert.inquiry_id}"},
        "keyword2": {"value": _KIND_LABELS.get(alert.kind, alert.kind)},
        "keyword3": {"value": alert.body},
        "remark": {"value": remark},
    }


class WeChatTemplateNotifier:
    """Sends a template message to the contact's openid with wechatpy, in a worker thread.

    `client_factory` is called once, lazily, and the client is reused (one token for all sends).
    Link: `alert.url`, else `url_for_inquiry(alert.inquiry_id)` when given.
    """

    channel = WECHAT_TEMPLATE

    def __init__(
        self,
        client_factory: Callable[[], WeChatClient],
        template_id: str,
        *,
        url_for_inquiry: Callable[[int], str] | None = None,
        template_data: Callable[[Alert], dict[str, dict[str, str]]] = default_template_data,
    ) -> None:
        self._client_factory = client_factory
        self._client: WeChatClient | None = None
        self._client_lock = threading.Lock()
        self._template_id = template_id
        self._url_for_inquiry = url_for_inquiry
        self._template_data = template_data

    def _get_client(self) -> WeChatClient:
        with self._client_lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    def _send_blocking(self, openid: str, data: dict[str, dict[str, str]], url: str | None) -> None:
        client = self._get_client()
        secrets = [getattr(client, "secret", None)]
        try:
            client.message.send_template(openid, self._template_id, data, url=url)
        except WeChatClientException as exc:
            if exc.errcode is None:  # HTTP error status
                status = getattr(exc.response, "status_code", None)
                retryable = status is None or status >= 500 or status == 429
                raise NotifyError(_redact_with(f"WeChat API: HTTP {status}", secrets), retryable=retryable) from None
            errcode = int(exc.errcode)
            reason = _redact_with(f"WeChat API: errcode {errcode}: {str(exc.errmsg)[:200]}", secrets)
            raise NotifyError(reason, retryable=errcode not in _WECHAT_PERMANENT) from None
        except requests.RequestException as exc:  # connection refused, timeout, …: the text carries the URL
            reason = _redact_with(f"WeChat API: {type(exc).__name__}: {exc}", secrets)
            raise NotifyError(reason, retryable=True) from None

    def close(self) -> None:
        """Close the client's HTTP connections (the client is made again on the next send)."""
        with self._client_lock:
            client, self._client = self._client, None
        http = getattr(client, "_http", None)
        if isinstance(http, requests.Session):
            http.close()

    async def send(self, contact: Contact, alert: Alert) -> None:
        url = alert.url or (self._url_for_inquiry(alert.inquiry_id) if self._url_for_inquiry else None)
        await asyncio.to_thread(self._send_blocking, contact.address, self._template_data(alert), url)


# --- e-mail ---------------------------------------------------------------------------------------

class EmailNotifier:
    """Sends the alert as a UTF-8 plain-text e-mail through SMTP (aiosmtplib).

    `starttls=True` upgrades a plain connection (port 587); `use_tls=True` connects over TLS
    (port 465). SMTP 4xx answers, connection errors and timeouts are retryable; 5xx are not.
    """

    channel = EMAIL

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        use_tls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = password
        self._starttls = starttls
        self._use_tls = use_tls
        self._timeout = timeout

    def message(self, contact: Contact, alert: Alert) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = alert.subject
        message["From"] = self._sender
        try:
            message["To"] = Address(display_name=contact.name, addr_spec=contact.address)
        except (ValueError, IndexError, MessageError) as exc:
            raise NotifyError(f"e-mail: invalid address for {contact.name}: {exc}", retryable=False) from None
        message["Date"] = formatdate(localtime=True)
        domain = self._sender.rpartition("@")[2].strip("> ") or "guanwei.invalid"
        message["Message-ID"] = make_msgid(domain=domain)  # with a domain: no slow getfqdn()
        message.set_content(render_text(alert), charset="utf-8")
        return message

    async def send(self, contact: Contact, alert: Alert) -> None:
        message = self.message(contact, alert)
        try:
            await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                start_tls=self._starttls,
                use_tls=self._use_tls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            retryable = any(400 <= refused.code < 500 for refused in exc.recipients)
            raise NotifyError(f"e-mail: recipient refused: {exc}", retryable=retryable) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise NotifyError(f"e-mail: SMTP {exc.code}: {exc.message}", retryable=400 <= exc.code < 500) from None
        except aiosmtplib.SMTPNotSupported as exc:
            raise NotifyError(f"e-mail: {exc}", retryable=False) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise NotifyError(f"e-mail: {type(exc).__name__}: {exc}", retryable=True) from None


# --- log ------------------------------------------------------------------------------------------

class LogNotifier:
    """Writes the alert to the log (loguru). Never fails."""

    channel = LOG

    def __init__(self, level: str = "WARNING") -> None:
        self._level = level

    async def send(self, contact: Contact, alert: Alert) -> None:
        logger.bind(inquiry_id=alert.inquiry_id, alert_kind=alert.kind, rung=alert.rung).log(
            self._level, "alert for {}: {}", contact.name, render_text(alert).replace("\n", " | ")
        )


# --- delivery -------------------------------------------------------------------------------------

async def deliver(
    alert: Alert,
    contacts: Iterable[Contact],
    notifiers: Mapping[str, Notifier],
    *,
    attempts: int = 3,
    base_delay: float = 1.0,
    max_delay: float = 60.0,
    jitter: float = 0.1,
    timeout: float = 15.0,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> list[DeliveryResult]:
    """Send `alert` to every contact at once; one `DeliveryResult` per distinct contact, in order.

    Each send is bounded by `timeout` seconds (a timeout is retryable). A retryable failure is
    retried up to `attempts` tries in all, waiting `base_delay * 2**(n-1)` seconds (capped at
    `max_delay`) plus up to `jitter` of that at random before try n+1. A contact whose channel has
    no notifier fails at once with `attempts=0`. The same contact listed twice is sent to once.
    """
    if attempts < 1:
        raise ValueError(f"attempts: expected at least 1, got {attempts}")
    unique = list(dict.fromkeys(contacts))
    return list(await asyncio.gather(*(
        _deliver_one(alert, contact, notifiers.get(contact.channel), attempts=attempts, base_delay=base_delay,
                     max_delay=max_delay, jitter=jitter, timeout=timeout, sleep=sleep)
        for contact in unique
    )))


async def _deliver_one(
    alert: Alert,
    contact: Contact,
    notifier: Notifier | None,
    *,
    attempts: int,
    base_delay: float,
    max_delay: float,
    jitter: float,
    timeout: float,
    sleep: Callable[[float], Awaitable[object]],
) -> DeliveryResult:
    who = _describe(contact)
    if notifier is None:
        error = f"no notifier for channel {contact.channel}"
        logger.error("alert {} for inquiry #{} not sent to {}: {}", alert.kind, alert.inquiry_id, who, error)
        return DeliveryResult(contact, ok=False, attempts=0, error=error)
    secrets = [_robot_key(contact.address)] if contact.channel == WECOM_ROBOT else []
    error = ""
    for attempt in range(1, attempts + 1):
        try:
            async with asyncio.timeout(timeout):
                await notifier.send(contact, alert)
        except NotifyError as exc:
            error, retryable = _redact_with(exc.reason, secrets), exc.retryable
        except TimeoutError:
            error, retryable = f"timed out after {timeout:g} s", True
        except Exception as exc:  # a bug in a notifier: record it, never let it reach the other sends
            error, retryable = _redact_with(f"{type(exc).__name__}: {exc}", secrets), False
            logger.error("notifier {} crashed:\n{}", contact.channel,
                         _redact_with("".join(traceback.format_exception(exc)), secrets))
        else:
            if attempt > 1:
                logger.info("alert {} for inquiry #{} sent to {} on try {}", alert.kind, alert.inquiry_id, who, attempt)
            return DeliveryResult(contact, ok=True, attempts=attempt)
        if not retryable or attempt == attempts:
            logger.warning("alert {} for inquiry #{} not sent to {} after {} tries: {}",
                           alert.kind, alert.inquiry_id, who, attempt, error)
            return DeliveryResult(contact, ok=False, attempts=attempt, error=error)
        delay = min(base_delay * 2 ** (attempt - 1), max_delay)
        delay += delay * jitter * random.random()
        logger.info("alert {} for inquiry #{} to {}: try {} failed ({}), next in {:.1f} s",
                    alert.kind, alert.inquiry_id, who, attempt, error, delay)
        await sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
