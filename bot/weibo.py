"""Sina Weibo fans-service platform (粉丝服务平台) message protocol — pure, no HTTP.

Shaped like a wechatpy module: verify the push signature, parse the JSON push into a typed
model (a registry by decorator, with an :class:`UnknownPush` fallback instead of raising),
normalise it into the shared :class:`~bot.inbound.InboundMessage`, and render passive replies.
The HTTP edge (``handlers/weibo.py``) calls these functions; nothing here does I/O.

Platform facts are in ``shared/protocols.md`` (Weibo section). What this module assumes where the
published documentation is thin:

* ``data`` arrives as a JSON object, but some deployments send it as a JSON string (possibly
  URL-encoded); both are accepted, a missing/null ``data`` is ``{}``, and ``data`` that is none
  of these is kept as ``{"raw": ...}`` rather than dropping the citizen's message.
* ``created_at`` is parsed by hand (``%a``/``%b`` in ``strptime`` depend on the process locale).
* Weibo has no message id, so the dedup key hashes the text *and* the data: two images sent in
  the same second share the placeholder text but not their ``vfid``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote, unquote_plus

import regex

from bot.digests import same_secret
from bot.inbound import Channel, Event, InboundMessage, Kind

__all__ = [
    "EVENT_SUBTYPES",
    "REPLY_TEXT_LIMIT",
    "Article",
    "EventPush",
    "ImagePush",
    "MentionPush",
    "PositionPush",
    "TextPush",
    "UnknownPush",
    "VoicePush",
    "WeiboProtocolError",
    "WeiboPush",
    "build_push",
    "decode_reply_data",
    "dedup_key",
    "encode_reply_data",
    "format_created_at",
    "graphemes",
    "parse_created_at",
    "parse_push",
    "register_push",
    "registered_push_types",
    "render_articles_reply",
    "render_position_reply",
    "render_reply",
    "render_text_reply",
    "sign",
    "to_inbound",
    "truncate_text",
    "verify_signature",
]

INT64_MAX = 2**63 - 1
REPLY_TEXT_LIMIT = 300  # "under 300 Chinese characters" for a text reply
MAX_ARTICLES = 8
ELLIPSIS = "…"

# Placeholder texts the platform puts in ``text`` for media pushes: not the citizen's words.
VOICE_PLACEHOLDER = "发了一个语音消息"
IMAGE_PLACEHOLDER = "发了一张图片"

EVENT_SUBTYPES = frozenset(
    {"follow", "unfollow", "subscribe", "unsubscribe", "scan", "scan_follow", "click", "view"}
)
_EVENT_MAP: Mapping[str, Event] = {
    "follow": Event.SUBSCRIBE,
    "subscribe": Event.SUBSCRIBE,
    "scan_follow": Event.SUBSCRIBE,
    "unfollow": Event.UNSUBSCRIBE,
    "unsubscribe": Event.UNSUBSCRIBE,
    "scan": Event.SCAN,
    "click": Event.CLICK,
    "view": Event.VIEW,
}


class WeiboProtocolError(ValueError):
    """The push body is not a Weibo push we can trust: answer 400, do not retry processing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------
# Signature
# --------------------------------------------------------------------------------------------


def sign(app_secret: str, timestamp: str, nonce: str) -> str:
    """The platform's signature: sha1 hex of the sorted ``[app_secret, timestamp, nonce]`` joined."""
    joined = "".join(sorted([app_secret, timestamp, nonce]))
    # sha1 is the platform's choice, not ours.
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()  # noqa: S324


def verify_signature(
    app_secret: str, signature: str | None, timestamp: str | None, nonce: str | None
) -> bool:
    """True when ``signature`` is the platform's signature of ``timestamp`` and ``nonce``.

    Constant-time. An empty secret, signature, timestamp or nonce never verifies.
    """
    if not (app_secret and signature and timestamp and nonce):
        return False
    if not all(isinstance(v, str) for v in (app_secret, signature, timestamp, nonce)):
        return False
    return same_secret(sign(app_secret, timestamp, nonce), signature.strip().lower())


# --------------------------------------------------------------------------------------------
# created_at: "Mon Jul 16 18:09:20 +0800 2012"
# --------------------------------------------------------------------------------------------

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CREATED_AT_RE = re.compile(
    r"(?P<wd>[A-Za-z]{3}) (?P<mon>[A-Za-z]{3}) +(?P<day>\d{1,2}) "
    r"(?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2}) (?P<sign>[+-])(?P<oh>\d{2}):?(?P<om>\d{2}) (?P<year>\d{4})",
    re.ASCII,
)


def parse_created_at(value: str) -> datetime:
    """Parse the platform's ``created_at`` into an aware datetime (the offset as sent).

    Locale-independent. The weekday name must be a real one but is not checked against the date.
    """
    match = _CREATED_AT_RE.fullmatch(value.strip())
    if match is None:
        raise WeiboProtocolError(f"created_at unparseable: {_short(value)}")
    weekday, month = match["wd"].title(), match["mon"].title()
    if weekday not in _WEEKDAYS or month not in _MONTHS:
        raise WeiboProtocolError(f"created_at unparseable: {_short(value)}")
    offset_minutes = int(match["oh"]) * 60 + int(match["om"])
    if int(match["om"]) >= 60 or offset_minutes >= 24 * 60:
        raise WeiboProtocolError(f"created_at offset out of range: {_short(value)}")
    offset = timedelta(minutes=offset_minutes if match["sign"] == "+" else -offset_minutes)
    try:
        return datetime(
            int(match["year"]),
            _MONTHS.index(month) + 1,
            int(match["day"]),
            int(match["h"]),
            int(match["m"]),
            int(match["s"]),
            tzinfo=timezone(offset),
        )
    except ValueError:
        raise WeiboProtocolError(f"created_at not a real time: {_short(value)}") from None


def format_created_at(value: datetime) -> str:
    """Format an aware datetime the way the platform does, in its own offset."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("created_at must be timezone-aware")
    total_minutes, rest = divmod(int(offset.total_seconds()), 60)
    if rest:
        raise ValueError("created_at offset must be whole minutes")
    sign_char = "-" if total_minutes < 0 else "+"
    hours, minutes = divmod(abs(total_minutes), 60)
    return (
        f"{_WEEKDAYS[value.weekday()]} {_MONTHS[value.month - 1]} {value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d} {sign_char}{hours:02d}{minutes:02d} "
        f"{value.year:04d}"
    )


# --------------------------------------------------------------------------------------------
# Typed pushes and their registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class WeiboPush:
    """A parsed push. ``data`` is the platform's ``data`` object (``{}`` when absent)."""

    type: str
    receiver_id: int  # our account
    sender_id: int  # the netizen
    created_at: datetime  # aware, in the offset the platform sent
    text: str = ""
    data: Mapping[str, Any] = field(default_factory=dict, hash=False)

    # How this push type normalises; subclasses override.
    inbound_kind: ClassVar[Kind] = Kind.UNKNOWN

    def inbound_text(self) -> str:
        return self.text

    def inbound_event(self) -> Event | None:
        return None


_P = TypeVar("_P", bound=type[WeiboPush])
_PUSH_TYPES: dict[str, type[WeiboPush]] = {}


def register_push(push_type: str) -> Callable[[_P], _P]:
    """Register a :class:`WeiboPush` subclass for a push ``type``.

    The subclass's own fields (all ``str``, default ``""``) are filled from ``data`` by name.
    """

    def decorator(cls: _P) -> _P:
        existing = _PUSH_TYPES.get(push_type)
        if existing is not None and existing is not cls:
            raise ValueError(f"push type {push_type!r} already registered to {existing.__name__}")
        _PUSH_TYPES[push_type] = cls
        return cls

    return decorator


def registered_push_types() -> Mapping[str, type[WeiboPush]]:
    return dict(_PUSH_TYPES)


@register_push("text")
@dataclass(frozen=True, slots=True, kw_only=True)
class TextPush(WeiboPush):
    inbound_kind: ClassVar[Kind] = Kind.TEXT


@register_push("position")
@dataclass(frozen=True, slots=True, kw_only=True)
class PositionPush(WeiboPush):
    longitude: str = ""
    latitude: str = ""

    inbound_kind: ClassVar[Kind] = Kind.LOCATION

    @property
    def coordinates(self) -> tuple[float, float] | None:
        """``(longitude, latitude)`` as floats, or None when missing or out of range."""
        try:
            lon, lat = float(self.longitude), float(self.latitude)
        except ValueError:
            return None
        if not (math.isfinite(lon) and math.isfinite(lat)) or abs(lon) > 180 or abs(lat) > 90:
            return None
        return lon, lat


@register_push("voice")
@dataclass(frozen=True, slots=True, kw_only=True)
class VoicePush(WeiboPush):
    vfid: str = ""  # the voice file id, as the receiver downloads it
    tovfid: str = ""

    inbound_kind: ClassVar[Kind] = Kind.VOICE

    def inbound_text(self) -> str:
        return "" if self.text.strip() == VOICE_PLACEHOLDER else self.text


@register_push("image")
@dataclass(frozen=True, slots=True, kw_only=True)
class ImagePush(WeiboPush):
    vfid: str = ""
    tovfid: str = ""

    inbound_kind: ClassVar[Kind] = Kind.IMAGE

    def inbound_text(self) -> str:
        return "" if self.text.strip() == IMAGE_PLACEHOLDER else self.text


@register_push("event")
@dataclass(frozen=True, slots=True, kw_only=True)
class EventPush(WeiboPush):
    subtype: str = ""  # follow, unfollow, subscribe, unsubscribe, scan, scan_follow, click, view, …
    key: str = ""  # menu key (click), URL (view), scene (scan)
    ticket: str = ""  # QR code ticket (scan, scan_follow)

    inbound_kind: ClassVar[Kind] = Kind.EVENT

    @property
    def event(self) -> Event:
        return _EVENT_MAP.get(self.subtype.strip().lower(), Event.UNKNOWN)

    def inbound_event(self) -> Event | None:
        return self.event


@register_push("mention")
@dataclass(frozen=True, slots=True, kw_only=True)
class MentionPush(WeiboPush):
    """An @-mention of our account. The shape is unverified (needs extra permission), so it is
    normalised as ``Kind.UNKNOWN`` with its text and data kept for the record."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownPush(WeiboPush):
    """Any push type nobody registered: acknowledge and ignore, keeping what was sent."""


_BASE_FIELDS = frozenset(f.name for f in fields(WeiboPush))


def _build(cls: type[WeiboPush], **common: Any) -> WeiboPush:
    data: Mapping[str, Any] = common["data"]
    extra: dict[str, Any] = {
        f.name: _field_str(data.get(f.name)) for f in fields(cls) if f.name not in _BASE_FIELDS
    }
    return cls(**common, **extra)


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _loads(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def parse_push(body: bytes | str) -> WeiboPush:
    """Parse a push body into its registered type; unknown types become :class:`UnknownPush`.

    Raises :class:`WeiboProtocolError` for a body that is not a Weibo push at all.
    """
    if isinstance(body, bytes | bytearray | memoryview):
        try:
            text_body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            raise WeiboProtocolError("body is not UTF-8") from None
    else:
        text_body = body
    text_body = text_body.removeprefix("\ufeff")
    try:
        obj = _loads(text_body)
    except (ValueError, RecursionError):
        raise WeiboProtocolError("body is not JSON") from None
    if not isinstance(obj, dict):
        raise WeiboProtocolError(f"body is a JSON {type(obj).__name__}, not an object")

    for required in ("type", "sender_id", "receiver_id", "created_at"):
        if obj.get(required) is None:
            raise WeiboProtocolError(f"missing {required}")
    push_type = obj["type"]
    if not isinstance(push_type, str) or not push_type.strip():
        raise WeiboProtocolError("type is not a non-empty string")
    push_type = push_type.strip()
    receiver_id = _coerce_id(obj["receiver_id"], "receiver_id")
    sender_id = _coerce_id(obj["sender_id"], "sender_id")
    created_raw = obj["created_at"]
    if not isinstance(created_raw, str):
        raise WeiboProtocolError("created_at is not a string")
    created_at = parse_created_at(created_raw)
    text = obj.get("text")
    if text is None:
        text = ""
    elif not isinstance(text, str):
        raise WeiboProtocolError("text is not a string")

    cls = _PUSH_TYPES.get(push_type.lower(), UnknownPush)
    return _build(
        cls,
        type=push_type,
        receiver_id=receiver_id,
        sender_id=sender_id,
        created_at=created_at,
        text=_scrub_surrogates(text),
        data=_coerce_data(obj.get("data")),
    )


def _coerce_id(value: Any, name: str) -> int:
    """A positive int64, given as a JSON integer or a string of digits."""
    if isinstance(value, bool):
        raise WeiboProtocolError(f"{name} is not an int64")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise WeiboProtocolError(f"{name} is not an int64")
    if not 0 < number <= INT64_MAX:
        raise WeiboProtocolError(f"{name} out of int64 range")
    return number


def _coerce_data(value: Any) -> dict[str, Any]:
    """``data`` as an object: accepts an object, a JSON string (maybe URL-encoded), null/absent."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        if not value.strip():
            return {}
        for candidate in (value, unquote_plus(value)):
            try:
                decoded = _loads(candidate)
            except (ValueError, RecursionError):
                continue
            if isinstance(decoded, dict):
                return decoded
            if decoded is None:
                return {}
            break
        return {"raw": value}
    return {"raw": json.dumps(value, ensure_ascii=False)}


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------


def dedup_key(push: WeiboPush) -> str:
    """Same for every retry of one push, different for two messages in the same second.

    ``weibo:{receiver}:{sender}:{epoch seconds}:{type}:{digest}``, the digest being the first 16
    hex digits of sha1 over the text and the canonical data (so two images in one second, whose
    texts are the same placeholder, still differ by ``vfid``).
    """
    epoch = int(push.created_at.timestamp())
    canonical = json.dumps(push.data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    material = f"{push.text}\x00{canonical}".encode("utf-8", "surrogatepass")
    digest = hashlib.sha1(material, usedforsecurity=False).hexdigest()[:16]
    return f"weibo:{push.receiver_id}:{push.sender_id}:{epoch}:{push.type}:{digest}"


def to_inbound(push: WeiboPush) -> InboundMessage:
    """Normalise a push into the channel-independent :class:`InboundMessage`."""
    fields_out = {str(k): _field_str(v) for k, v in push.data.items()}
    if push.inbound_kind is Kind.UNKNOWN:
        fields_out["push_type"] = push.type
    return InboundMessage(
        channel=Channel.WEIBO,
        account=str(push.receiver_id),
        sender=str(push.sender_id),
        kind=push.inbound_kind,
        created_at=push.created_at,
        dedup_key=dedup_key(push),
        text=push.inbound_text(),
        event=push.inbound_event(),
        platform_msg_id=None,
        fields=fields_out,
    )


def _field_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _scrub_surrogates(value)
    return _scrub_surrogates(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _scrub_surrogates(text: str) -> str:
    """Join surrogate pairs into code points and replace lone surrogates with U+FFFD."""
    if _SURROGATE_RE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------------------------
# Truncation on user-perceived characters
# --------------------------------------------------------------------------------------------

_GRAPHEME_RE = regex.compile(r"\X")


def _grapheme_ends(text: str) -> Iterator[int]:
    """End offsets of the extended grapheme clusters of ``text`` (UAX #29, via ``regex``'s ``\\X``).

    A surrogate pair left as two code points is never split either.
    """
    for match in _GRAPHEME_RE.finditer(text):
        end = match.end()
        if end < len(text) and "\ud800" <= text[end - 1] <= "\udbff" and "\udc00" <= text[end] <= "\udfff":
            continue
        yield end


def graphemes(text: str) -> list[str]:
    """``text`` split into user-perceived characters."""
    out: list[str] = []
    start = 0
    for end in _grapheme_ends(text):
        out.append(text[start:end])
        start = end
    return out


def truncate_text(text: str, limit: int = REPLY_TEXT_LIMIT) -> str:
    """At most ``limit`` code points, cut between user-perceived characters, ending in "…" when cut.

    Never cuts inside a surrogate pair, an emoji sequence (skin tone, variation selector, ZWJ,
    keycap, tag sequence), a regional-indicator flag, or before a combining mark.
    """
    if limit < 0:
        raise ValueError("limit must be >= 0")
    if len(text) <= limit:
        return text
    if limit == 0:
        return ""
    budget = limit - len(ELLIPSIS)
    cut = 0
    for end in _grapheme_ends(text):
        if end > budget:
            break
        cut = end
    return text[:cut] + ELLIPSIS


# --------------------------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------------------------


def encode_reply_data(payload: Mapping[str, Any]) -> str:
    """The reply ``data`` field: URL-encoded UTF-8 JSON (every reserved character escaped)."""
    return quote(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), safe="")


def decode_reply_data(data: str) -> dict[str, Any]:
    """Inverse of :func:`encode_reply_data` (also accepts ``+`` for space, as form encoders send)."""
    try:
        decoded = _loads(unquote_plus(data, errors="strict"))
    except (ValueError, RecursionError):
        raise WeiboProtocolError("reply data is not URL-encoded UTF-8 JSON") from None
    if not isinstance(decoded, dict):
        raise WeiboProtocolError("reply data is not a JSON object")
    return decoded


def render_reply(
    *, to_user: int | str, from_account: int | str, type: str, payload: Mapping[str, Any]
) -> str:
    """A passive reply body of any ``type`` (text, articles, position)."""
    body = {
        "result": True,
        "receiver_id": _reply_id(to_user, "to_user"),
        "sender_id": _reply_id(from_account, "from_account"),
        "type": type,
        "data": encode_reply_data(payload),
    }
    return json.dumps(body, ensure_ascii=False)


def render_text_reply(
    *, to_user: int | str, from_account: int | str, text: str, limit: int = REPLY_TEXT_LIMIT
) -> str:
    """A passive text reply; the text is cut to ``limit`` user-perceived-safe characters."""
    clean = _scrub_surrogates(text)
    if not clean.strip():
        raise ValueError("reply text is empty: answer with an empty body instead")
    return render_reply(
        to_user=to_user, from_account=from_account, type="text", payload={"text": truncate_text(clean, limit)}
    )


@dataclass(frozen=True, slots=True)
class Article:
    display_name: str
    summary: str
    image: str  # image URL
    url: str


def render_articles_reply(*, to_user: int | str, from_account: int | str, articles: Sequence[Article]) -> str:
    """A passive articles reply (1 to 8 articles)."""
    if not 1 <= len(articles) <= MAX_ARTICLES:
        raise ValueError(f"an articles reply carries 1 to {MAX_ARTICLES} articles, not {len(articles)}")
    payload = {
        "articles": [
            {"display_name": a.display_name, "summary": a.summary, "image": a.image, "url": a.url}
            for a in articles
        ]
    }
    return render_reply(to_user=to_user, from_account=from_account, type="articles", payload=payload)


def render_position_reply(
    *, to_user: int | str, from_account: int | str, longitude: float | str, latitude: float | str
) -> str:
    payload = {"longitude": str(longitude), "latitude": str(latitude)}
    return render_reply(to_user=to_user, from_account=from_account, type="position", payload=payload)


def _reply_id(value: int | str, name: str) -> int:
    try:
        return _coerce_id(value, name)
    except WeiboProtocolError as exc:
        raise ValueError(exc.reason) from None


# --------------------------------------------------------------------------------------------
# Building pushes like the platform (simulator, tests)
# --------------------------------------------------------------------------------------------


def build_push(
    *,
    type: str,
    sender_id: int,
    receiver_id: int,
    created_at: datetime,
    text: str = "",
    data: Mapping[str, Any] | None = None,
    data_as_string: bool = False,
) -> bytes:
    """A push body as the platform sends it (``data_as_string`` for the JSON-string variant)."""
    payload: Any = dict(data or {})
    if data_as_string:
        payload = json.dumps(payload, ensure_ascii=False)
    body = {
        "type": type,
        "receiver_id": int(receiver_id),
        "sender_id": int(sender_id),
        "created_at": format_created_at(created_at),
        "text": text,
        "data": payload,
    }
    return json.dumps(body, ensure_ascii=False).encode("utf-8")
