"""Pushes built exactly as WeChat builds them: XML, the query's signatures, safe-mode encryption.

Used by `guanwei simulate` and by the tests, so both speak to the server the way the platform does.
Weibo's counterpart is `bot.weibo.build_push` / `bot.weibo.sign`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape

import xmltodict
from wechatpy.crypto import WeChatCrypto

from bot.wechat import signature_of


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def wechat_xml(
    *,
    to_user: str,
    from_user: str,
    created_at: datetime,
    msg_type: str,
    msg_id: int | None = None,
    **fields: str | int | float,
) -> str:
    """A plain-mode push. `fields` are the type's own elements (Content, Recognition, Event, ...)."""
    parts = [
        f"<ToUserName>{_cdata(to_user)}</ToUserName>",
        f"<FromUserName>{_cdata(from_user)}</FromUserName>",
        f"<CreateTime>{int(created_at.timestamp())}</CreateTime>",
        f"<MsgType>{_cdata(msg_type)}</MsgType>",
    ]
    for name, value in fields.items():
        parts.append(f"<{name}>{_cdata(value) if isinstance(value, str) else escape(str(value))}</{name}>")
    if msg_id is not None:
        parts.append(f"<MsgId>{msg_id}</MsgId>")
    return "<xml>" + "".join(parts) + "</xml>"


@dataclass(frozen=True)
class SignedPush:
    query: dict[str, str]
    body: bytes


def sign_wechat(
    xml: str,
    *,
    token: str,
    timestamp: int,
    nonce: str | None = None,
    openid: str | None = None,
    crypto: WeChatCrypto | None = None,
    to_user: str = "",
) -> SignedPush:
    """Wrap `xml` as WeChat would send it: signed query, encrypted body when `crypto` is given."""
    nonce = nonce or str(secrets.randbelow(10**9))
    query = {"timestamp": str(timestamp), "nonce": nonce, "signature": signature_of(token, str(timestamp), nonce)}
    if openid:
        query["openid"] = openid
    if crypto is None:
        return SignedPush(query, xml.encode("utf-8"))
    # encrypt_message renders a reply envelope; its Encrypt and MsgSignature are what a push carries.
    envelope = xmltodict.parse(crypto.encrypt_message(xml, nonce, str(timestamp)))["xml"]
    body = f"<xml><ToUserName>{_cdata(to_user)}</ToUserName><Encrypt>{_cdata(envelope['Encrypt'])}</Encrypt></xml>"
    query.update(encrypt_type="aes", msg_signature=envelope["MsgSignature"])
    return SignedPush(query, body.encode("utf-8"))


def read_wechat_reply(body: str, crypto: WeChatCrypto | None = None, *, token: str = "") -> dict[str, str]:
    """What the follower's phone would show: the reply's fields, decrypted in safe mode."""
    if not body or body == "success":
        return {}
    xml = xmltodict.parse(body)["xml"]
    if "Encrypt" in xml:
        if crypto is None:
            raise ValueError("encrypted reply but no crypto given")
        plain = crypto.decrypt_message(body, xml["MsgSignature"], xml["TimeStamp"], xml["Nonce"])
        xml = xmltodict.parse(plain)["xml"]
    return {k: str(v) for k, v in xml.items()}
