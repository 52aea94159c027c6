"""One normalised inbound message, whatever platform it came from.

The WeChat and Weibo edges translate their payloads into this type; everything after the edge
(pipeline, storage, classification) sees only this.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum


class Channel(StrEnum):
    WECHAT = "wechat"
    WEIBO = "weibo"


class Kind(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VOICE = "voice"
    VIDEO = "video"
    SHORTVIDEO = "shortvideo"
    LOCATION = "location"
    LINK = "link"
    EVENT = "event"
    UNKNOWN = "unknown"


class Event(StrEnum):
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    SCAN = "scan"
    CLICK = "click"
    VIEW = "view"
    LOCATION = "location"
    TEMPLATE_SEND_JOB_FINISH = "templatesendjobfinish"
    UNKNOWN = "unknown"


# Kinds a netizen sends to ask or report something: each one is registered as (part of) an inquiry.
INQUIRY_KINDS = frozenset(
    {Kind.TEXT, Kind.IMAGE, Kind.VOICE, Kind.VIDEO, Kind.SHORTVIDEO, Kind.LOCATION, Kind.LINK}
)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    channel: Channel
    account: str  # our account: WeChat ToUserName, Weibo receiver_id
    sender: str  # the netizen: WeChat openid, Weibo sender_id
    kind: Kind
    created_at: datetime  # timezone-aware, as the platform stamped it
    dedup_key: str  # identical for every retry of the same push, distinct otherwise
    text: str = ""  # what to classify: content, voice recognition, link title, location label
    event: Event | None = None
    platform_msg_id: str | None = None
    fields: dict[str, str] = field(default_factory=dict)  # the platform's remaining fields, for the record

    @property
    def opens_inquiry(self) -> bool:
        return self.kind in INQUIRY_KINDS


class InvalidInbound(ValueError):
    """A push that parsed but cannot be a real platform message (no sender, absurd time...)."""

    status = 400


# C0 and C1 control characters except tab and newlines: PostgreSQL refuses NUL, terminals obey ESC.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_PLATFORM_ID = re.compile(r"[0-9A-Za-z_\-]+")
# The times guanwei deals in: a message's, and one a person types (`--at`, RECEIVED_AT).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_TEXT_CHARS = 20_000  # WeChat allows 2,048 bytes of text; anything longer is not a person typing
_MAX_DEDUP_KEY = 255


def strip_controls(text: str) -> str:
    return _CONTROL.sub("", text)


def _platform_id(value: str, name: str, limit: int) -> str:
    if not value:
        raise InvalidInbound(f"{name} missing")
    if len(value) > limit or not _PLATFORM_ID.fullmatch(value):
        raise InvalidInbound(f"{name} is not a platform id")
    return value


def checked(message: InboundMessage) -> InboundMessage:
    """The message made safe to store and display, or `InvalidInbound` for one no platform sends."""
    _platform_id(message.sender, "sender", 128)
    _platform_id(message.account, "account", 64)
    if message.platform_msg_id is not None and (
        len(message.platform_msg_id) > 20 or not message.platform_msg_id.isdigit()
    ):
        raise InvalidInbound("message id is not a 64-bit number")
    if not EARLIEST <= message.created_at <= LATEST:
        raise InvalidInbound("creation time is not a plausible time")
    dedup_key = message.dedup_key
    if len(dedup_key) > _MAX_DEDUP_KEY:
        dedup_key = dedup_key[:180] + ":" + hashlib.sha256(dedup_key.encode()).hexdigest()
    return replace(
        message,
        dedup_key=dedup_key,
        text=strip_controls(message.text)[:MAX_TEXT_CHARS].strip(),
        fields={strip_controls(k)[:64]: strip_controls(v)[:2000] for k, v in message.fields.items()},
    )
