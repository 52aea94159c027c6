"""WeChat Official Account protocol glue: wechatpy does the work, this module never touches HTTP.

`WeChatEndpoint` verifies, decrypts and parses one push into an `InboundMessage`, and renders the
passive reply (encrypted in safe mode). Errors are typed so the HTTP edge can map them to statuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import defusedxml.ElementTree
import xmltodict
from defusedxml import DefusedXmlException
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.messages import BaseMessage
from wechatpy.replies import TextReply
from wechatpy.utils import WeChatSigner

from bot.digests import same_secret
from bot.inbound import Channel, Event, InboundMessage, Kind

# XML 1.0 forbids these code points even inside CDATA; WeChat clients still send some (U+001D).
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

_KINDS = {k.value: k for k in Kind if k not in (Kind.EVENT, Kind.UNKNOWN)}
_EVENTS = {
    "subscribe": Event.SUBSCRIBE,
    "subscribe_scan": Event.SUBSCRIBE,
    "unsubscribe": Event.UNSUBSCRIBE,
    "scan": Event.SCAN,
    "click": Event.CLICK,
    "view": Event.VIEW,
    "location": Event.LOCATION,
    "templatesendjobfinish": Event.TEMPLATE_SEND_JOB_FINISH,
}


class WeChatError(Exception):
    """A push we refuse. `status` is the HTTP status the edge should answer with."""

    status = 400


class BadSignature(WeChatError):
    status = 403


class BadPayload(WeChatError):
    status = 400


class SafeModeNotConfigured(WeChatError):
    status = 400


class MissingMsgType(WeChatError):
    """Well-formed XML without MsgType: acknowledged (so WeChat stops retrying) and not stored."""

    status = 200


def signature_of(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def signature_matches(expected: str, given: str | None) -> bool:
    return same_secret(expected, given)


def clean_xml_text(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadPayload("body is not UTF-8") from None
    return _XML_FORBIDDEN.sub("", text)


def _refuse_dtd(text: str) -> None:
    try:
        defusedxml.ElementTree.fromstring(text, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise BadPayload(f"XML with a DTD or entities refused ({type(exc).__name__})") from None
    except defusedxml.ElementTree.ParseError as exc:
        raise BadPayload(f"malformed XML: {exc}") from None


def cdata_safe(text: str) -> str:
    """wechatpy writes strings into CDATA unescaped; split any `]]>` so the reply stays well-formed."""
    return text.replace("]]>", "]]]]><![CDATA[>")


@dataclass(frozen=True)
class ParsedPush:
    inbound: InboundMessage
    message: BaseMessage  # wechatpy's object, needed to address the reply
    encrypted: bool


class WeChatEndpoint:
    def __init__(self, token: str, appid: str, aes_key: str | None, *, require_safe_mode: bool = False) -> None:
        self.token = token
        self.appid = appid
        self.crypto = WeChatCrypto(token, aes_key, appid) if aes_key else None
        self.require_safe_mode = require_safe_mode

    def verify(self, signature: str | None, timestamp: str, nonce: str) -> None:
        if not signature_matches(signature_of(self.token, timestamp, nonce), signature):
            raise BadSignature("signature does not match" if signature else "signature missing")

    def parse(self, body: bytes, query: dict[str, str]) -> ParsedPush:
        """Verify and parse one POST. `query` is the URL's query parameters."""
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        self.verify(query.get("signature"), timestamp, nonce)
        text = clean_xml_text(body)
        _refuse_dtd(text)
        encrypt_type = query.get("encrypt_type", "raw").lower()
        if encrypt_type not in ("raw", "aes"):
            raise BadPayload(f"unknown encrypt_type {encrypt_type[:16]!r}")
        encrypted = encrypt_type == "aes"
        envelope_to = None
        if encrypted:
            text, envelope_to = self._decrypt(text, query.get("msg_signature"), timestamp, nonce)
        elif self.require_safe_mode:
            raise BadSignature("plain-mode push refused: this account requires safe mode")
        elif "<Encrypt>" in text and "<MsgType>" not in text:
            raise BadPayload("encrypted body without encrypt_type=aes")
        try:
            message = parse_message(text)
        except KeyError:
            raise MissingMsgType("XML has no MsgType element") from None
        except (TypeError, AttributeError, ValueError):  # <xml/> with no children, odd shapes
            raise BadPayload("not a WeChat message") from None
        except Exception as exc:  # expat's ExpatError and friends
            raise BadPayload(f"malformed XML: {exc}") from None
        if message is None:
            raise BadPayload("empty body")
        _only_text(message._data)  # wechatpy keeps the parsed XML here
        if envelope_to and str(message._data.get("ToUserName") or "") != envelope_to:
            # The encrypted message names another account than its envelope: a spliced body, not the platform's.
            raise BadPayload("ToUserName inside Encrypt differs from the envelope's")
        try:
            inbound = to_inbound(message)
        except (ValueError, OverflowError, OSError):
            raise BadPayload("CreateTime is not a Unix time") from None
        return ParsedPush(inbound=inbound, message=message, encrypted=encrypted)

    def _decrypt(self, text: str, msg_signature: str | None, timestamp: str, nonce: str) -> tuple[str, str | None]:
        """The decrypted XML, and the envelope's ToUserName (None when the envelope has none)."""
        if self.crypto is None:
            raise SafeModeNotConfigured("encrypt_type=aes but GUANWEI_WECHAT_AES_KEY is not set")
        if not msg_signature:
            raise BadSignature("msg_signature missing in safe mode")
        try:
            envelope = xmltodict.parse(text).get("xml") or {}
        except Exception as exc:
            raise BadPayload(f"malformed XML: {exc}") from None
        if not isinstance(envelope, dict) or not envelope.get("Encrypt"):
            raise BadPayload("safe-mode body has no Encrypt element")
        try:
            plain = self.crypto.decrypt_message(envelope, msg_signature, timestamp, nonce)
        except InvalidSignatureException:
            raise BadSignature("msg_signature does not match") from None
        except InvalidAppIdException:
            # Also what a corrupt length field looks like: the AppID is read from the wrong place.
            raise BadPayload("Encrypt does not hold a message for this AppID") from None
        except Exception:  # bad base64, bad padding, a length field past the end, non-UTF-8
            raise BadPayload("Encrypt does not decrypt to a message") from None
        text = _XML_FORBIDDEN.sub("", plain if isinstance(plain, str) else plain.decode("utf-8", "replace"))
        _refuse_dtd(text)
        envelope_to = envelope.get("ToUserName")
        return text, envelope_to if isinstance(envelope_to, str) and envelope_to else None

    def render_reply(self, push: ParsedPush, text: str, *, nonce: str, timestamp: str, at: datetime) -> str:
        reply = TextReply(
            source=push.message.target,
            target=push.message.source,
            content=cdata_safe(text),
            time=int(at.timestamp()),
        ).render()
        if push.encrypted and self.crypto is not None:
            return self.crypto.encrypt_message(reply, nonce, timestamp)
        return reply


def _only_text(data: dict[str, Any]) -> None:
    """Every field of a WeChat message is text (or empty). xmltodict turns child elements and attributes into
    a dict and a repeated element into a list: stored, those would read "{'b': 'x'}" — refused instead."""
    for name, value in data.items():
        if value is not None and not isinstance(value, str):
            shape = "a repeated element" if isinstance(value, list) else "child elements or attributes"
            raise BadPayload(f"{str(name)[:40]!r} is not text ({shape})")


def _field(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    return "" if value is None else str(value)


def to_inbound(message: BaseMessage) -> InboundMessage:
    data: dict[str, Any] = dict(message._data)  # wechatpy keeps the parsed XML here
    msg_type = _field(data, "MsgType").lower()
    created_at = datetime.fromtimestamp(int(_field(data, "CreateTime") or 0), UTC)
    account, sender = _field(data, "ToUserName"), _field(data, "FromUserName")
    msg_id = _field(data, "MsgId") or None
    event: Event | None = None
    text = ""
    if msg_type == "event":
        kind = Kind.EVENT
        event = _EVENTS.get(getattr(message, "event", "").lower(), Event.UNKNOWN)
        dedup_key = f"event:{sender}:{int(created_at.timestamp())}:{_field(data, 'Event').lower()}"
    else:
        kind = _KINDS.get(msg_type, Kind.UNKNOWN)
        dedup_key = f"msg:{msg_id}" if msg_id else f"nomsgid:{sender}:{int(created_at.timestamp())}:{msg_type}"
        if kind is Kind.TEXT:
            text = _field(data, "Content")
        elif kind is Kind.VOICE:
            text = _field(data, "Recognition")  # present when the account turned speech recognition on
        elif kind is Kind.LOCATION:
            text = _field(data, "Label")
        elif kind is Kind.LINK:
            text = " ".join(filter(None, (_field(data, "Title"), _field(data, "Description"))))
    skip = {"ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "Content", "Encrypt"}
    fields = {k: _field(data, k) for k in data if k not in skip}
    return InboundMessage(
        channel=Channel.WECHAT,
        account=account,
        sender=sender,
        kind=kind,
        created_at=created_at,
        dedup_key=f"{account}:{dedup_key}",
        text=text.strip(),
        event=event,
        platform_msg_id=msg_id,
        fields=fields,
    )
