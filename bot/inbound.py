"""One normalised inbound message, whatever platform it came from.

The WeChat and Weibo edges translate their payloads into this type; everything after the edge
(pipeline, storage, classification) sees only this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
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
