"""bot.weibo — the Weibo fans-service push protocol: signatures, parsing, normalisation, replies."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone

import pytest
import regex
from hypothesis import given
from hypothesis import strategies as st

from bot import weibo
from bot.inbound import Channel, Event, Kind
from bot.weibo import (
    Article,
    EventPush,
    ImagePush,
    MentionPush,
    PositionPush,
    TextPush,
    UnknownPush,
    VoicePush,
    WeiboProtocolError,
    build_push,
    decode_reply_data,
    dedup_key,
    format_created_at,
    parse_created_at,
    parse_push,
    register_push,
    render_articles_reply,
    render_position_reply,
    render_text_reply,
    sign,
    to_inbound,
    truncate_text,
    verify_signature,
)

CST = timezone(timedelta(hours=8))
WHEN = datetime(2012, 7, 16, 18, 9, 20, tzinfo=CST)
WHEN_RAW = "Mon Jul 16 18:09:20 +0800 2012"
ACCOUNT = 5_000_000_001
USER = 1_234_567_890

SECRET = "xyz123xyz"
VECTOR_TS = "1397022061823"
VECTOR_NONCE = "57155157"
VECTOR_SIG = "90e4c22c90a58f26526c2dd5b6c56c8822edeaa1"


def raw(**overrides: object) -> bytes:
    """A push body written by hand (not via build_push), with fields overridden or removed."""
    body: dict[str, object] = {
        "type": "text",
        "receiver_id": ACCOUNT,
        "sender_id": USER,
        "created_at": WHEN_RAW,
        "text": "你好",
        "data": {},
    }
    for key, value in overrides.items():
        if value is _MISSING:
            body.pop(key, None)
        else:
            body[key] = value
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


_MISSING = object()


def push(
    type_: str = "text",
    text: str = "",
    data: Mapping[str, object] | None = None,
    *,
    sender_id: int = USER,
    receiver_id: int = ACCOUNT,
    created_at: datetime = WHEN,
    data_as_string: bool = False,
) -> bytes:
    return build_push(
        type=type_,
        sender_id=sender_id,
        receiver_id=receiver_id,
        created_at=created_at,
        text=text,
        data=data,
        data_as_string=data_as_string,
    )


# ---------------------------------------------------------------------------------------------
# Signature
# ---------------------------------------------------------------------------------------------


def test_sign_matches_published_vector() -> None:
    assert sign(SECRET, VECTOR_TS, VECTOR_NONCE) == VECTOR_SIG


def test_verify_accepts_published_vector() -> None:
    assert verify_signature(SECRET, VECTOR_SIG, VECTOR_TS, VECTOR_NONCE)


def test_sort_is_string_order_not_numeric() -> None:
    # "1397022061823" < "57155157" as strings, the other way round as numbers; the vector pins it.
    assert sign(SECRET, VECTOR_TS, VECTOR_NONCE) == sign(VECTOR_NONCE, SECRET, VECTOR_TS)


def test_verify_accepts_uppercase_hex() -> None:
    assert verify_signature(SECRET, VECTOR_SIG.upper(), VECTOR_TS, VECTOR_NONCE)


@pytest.mark.parametrize(
    ("secret", "signature", "timestamp", "nonce"),
    [
        ("wrong-secret", VECTOR_SIG, VECTOR_TS, VECTOR_NONCE),
        (SECRET, VECTOR_SIG, "1397022061824", VECTOR_NONCE),
        (SECRET, VECTOR_SIG, VECTOR_TS, "57155158"),
        (SECRET, "0" * 40, VECTOR_TS, VECTOR_NONCE),
        (SECRET, VECTOR_SIG[:-1], VECTOR_TS, VECTOR_NONCE),
        (SECRET, "", VECTOR_TS, VECTOR_NONCE),
        (SECRET, None, VECTOR_TS, VECTOR_NONCE),
        (SECRET, VECTOR_SIG, "", VECTOR_NONCE),
        (SECRET, VECTOR_SIG, VECTOR_TS, None),
        ("", sign("", VECTOR_TS, VECTOR_NONCE), VECTOR_TS, VECTOR_NONCE),
        (SECRET, "签名签名", VECTOR_TS, VECTOR_NONCE),  # non-ASCII must not raise TypeError
    ],
)
def test_verify_rejects(secret: str, signature: str | None, timestamp: str | None, nonce: str | None) -> None:
    assert verify_signature(secret, signature, timestamp, nonce) is False


# ---------------------------------------------------------------------------------------------
# created_at
# ---------------------------------------------------------------------------------------------


def test_created_at_parses_to_aware_datetime() -> None:
    parsed = parse_created_at(WHEN_RAW)
    assert parsed == WHEN
    assert parsed.utcoffset() == timedelta(hours=8)
    assert int(parsed.timestamp()) == 1342433360


def test_created_at_format_round_trip() -> None:
    assert format_created_at(WHEN) == WHEN_RAW
    minus = datetime(2024, 2, 5, 1, 2, 3, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))
    assert format_created_at(minus) == "Mon Feb 05 01:02:03 -0330 2024"
    assert parse_created_at(format_created_at(minus)) == minus


def test_created_at_single_digit_day_accepted() -> None:
    assert parse_created_at("Thu Jul 5 08:00:00 +0800 2012") == datetime(2012, 7, 5, 8, tzinfo=CST)


def test_format_rejects_naive() -> None:
    with pytest.raises(ValueError, match="aware"):
        format_created_at(datetime(2012, 7, 16, 18, 9, 20))  # noqa: DTZ001 — the point of the test


# ---------------------------------------------------------------------------------------------
# Parsing every push type
# ---------------------------------------------------------------------------------------------


def test_text_push() -> None:
    p = parse_push(push("text", "请问公积金怎么提取？"))
    assert isinstance(p, TextPush)
    assert (p.type, p.receiver_id, p.sender_id, p.created_at) == ("text", ACCOUNT, USER, WHEN)
    assert p.text == "请问公积金怎么提取？"
    assert p.data == {}
    msg = to_inbound(p)
    assert msg.channel is Channel.WEIBO
    assert msg.account == str(ACCOUNT)
    assert msg.sender == str(USER)
    assert msg.kind is Kind.TEXT
    assert msg.text == "请问公积金怎么提取？"
    assert msg.event is None
    assert msg.platform_msg_id is None
    assert msg.created_at == WHEN
    assert msg.fields == {}
    assert msg.opens_inquiry


def test_position_push() -> None:
    body = push("position", "我在这里: 北京市东城区", {"longitude": "116.407526", "latitude": "39.904030"})
    p = parse_push(body)
    assert isinstance(p, PositionPush)
    assert (p.longitude, p.latitude) == ("116.407526", "39.904030")
    assert p.coordinates == (116.407526, 39.90403)
    msg = to_inbound(p)
    assert msg.kind is Kind.LOCATION
    assert msg.text == "我在这里: 北京市东城区"
    assert msg.fields == {"longitude": "116.407526", "latitude": "39.904030"}


def test_position_numbers_become_strings_and_bad_coordinates_are_none() -> None:
    p = parse_push(push("position", "", {"longitude": 116.4, "latitude": 39.9}))
    assert isinstance(p, PositionPush)
    assert (p.longitude, p.latitude) == ("116.4", "39.9")
    bad = parse_push(push("position", "", {"longitude": "abc"}))
    assert isinstance(bad, PositionPush)
    assert bad.coordinates is None
    assert bad.latitude == ""


def test_voice_push_placeholder_is_not_content() -> None:
    p = parse_push(push("voice", "发了一个语音消息", {"vfid": 821804459, "tovfid": "3e5d8e1b1"}))
    assert isinstance(p, VoicePush)
    assert (p.vfid, p.tovfid) == ("821804459", "3e5d8e1b1")
    msg = to_inbound(p)
    assert msg.kind is Kind.VOICE
    assert msg.text == ""
    assert msg.fields == {"vfid": "821804459", "tovfid": "3e5d8e1b1"}
    assert msg.opens_inquiry


def test_image_push_placeholder_is_not_content() -> None:
    p = parse_push(push("image", "发了一张图片", {"vfid": "v1", "tovfid": "t1"}))
    assert isinstance(p, ImagePush)
    msg = to_inbound(p)
    assert msg.kind is Kind.IMAGE
    assert msg.text == ""
    assert msg.fields == {"vfid": "v1", "tovfid": "t1"}


def test_image_push_with_real_text_keeps_it() -> None:
    msg = to_inbound(parse_push(push("image", "路灯坏了，见图", {"vfid": "v1"})))
    assert msg.text == "路灯坏了，见图"


@pytest.mark.parametrize(
    ("subtype", "event"),
    [
        ("follow", Event.SUBSCRIBE),
        ("subscribe", Event.SUBSCRIBE),
        ("scan_follow", Event.SUBSCRIBE),
        ("unfollow", Event.UNSUBSCRIBE),
        ("unsubscribe", Event.UNSUBSCRIBE),
        ("scan", Event.SCAN),
        ("click", Event.CLICK),
        ("view", Event.VIEW),
        ("some_new_subtype", Event.UNKNOWN),
        ("", Event.UNKNOWN),
    ],
)
def test_event_subtypes(subtype: str, event: Event) -> None:
    data = {"subtype": subtype, "key": "MENU_GUIDE", "ticket": "tk-1"}
    p = parse_push(push("event", "", data))
    assert isinstance(p, EventPush)
    assert (p.subtype, p.key, p.ticket) == (subtype, "MENU_GUIDE", "tk-1")
    assert p.event is event
    msg = to_inbound(p)
    assert msg.kind is Kind.EVENT
    assert msg.event is event
    assert msg.fields == {"subtype": subtype, "key": "MENU_GUIDE", "ticket": "tk-1"}
    assert not msg.opens_inquiry


def test_event_without_key_or_ticket() -> None:
    p = parse_push(push("event", "", {"subtype": "follow"}))
    assert isinstance(p, EventPush)
    assert (p.key, p.ticket) == ("", "")
    assert to_inbound(p).fields == {"subtype": "follow"}


def test_event_missing_data_is_unknown_event() -> None:
    p = parse_push(raw(type="event", data=_MISSING))
    assert isinstance(p, EventPush)
    assert p.subtype == ""
    assert to_inbound(p).event is Event.UNKNOWN


def test_mention_is_kept_but_not_an_inquiry() -> None:
    p = parse_push(push("mention", "@某某局 路口红绿灯不亮", {"mid": "4091509081366576"}))
    assert isinstance(p, MentionPush)
    msg = to_inbound(p)
    assert msg.kind is Kind.UNKNOWN
    assert msg.text == "@某某局 路口红绿灯不亮"
    assert msg.fields == {"mid": "4091509081366576", "push_type": "mention"}


def test_unknown_type_does_not_raise() -> None:
    p = parse_push(push("sticker", "发了一个表情", {"sid": 7, "nested": {"a": [1, "二"]}}))
    assert type(p) is UnknownPush
    assert p.type == "sticker"
    assert p.data == {"sid": 7, "nested": {"a": [1, "二"]}}
    msg = to_inbound(p)
    assert msg.kind is Kind.UNKNOWN
    assert msg.event is None
    assert msg.text == "发了一个表情"
    assert msg.fields == {"sid": "7", "nested": '{"a": [1, "二"]}', "push_type": "sticker"}


def test_type_lookup_ignores_case_but_keeps_the_sent_name() -> None:
    p = parse_push(raw(type="Text"))
    assert isinstance(p, TextPush)
    assert p.type == "Text"


def test_register_push_custom_type() -> None:
    @register_push("shake")
    class ShakePush(weibo.WeiboPush):
        __slots__ = ()

    try:
        p = parse_push(push("shake", "摇一摇"))
        assert type(p) is ShakePush
        with pytest.raises(ValueError, match="already registered"):
            register_push("shake")(UnknownPush)
    finally:
        weibo._PUSH_TYPES.pop("shake")
    assert type(parse_push(push("shake"))) is UnknownPush


# ---------------------------------------------------------------------------------------------
# Leniency about data and ids
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_MISSING, {}),
        (None, {}),
        ("", {}),
        ("null", {}),
        ({"vfid": "1"}, {"vfid": "1"}),
        ('{"vfid": "1", "tovfid": "2"}', {"vfid": "1", "tovfid": "2"}),
        ("%7B%22vfid%22%3A%221%22%7D", {"vfid": "1"}),
        ("not json at all", {"raw": "not json at all"}),
        ([1, 2], {"raw": "[1, 2]"}),
        ('"a string"', {"raw": '"a string"'}),
    ],
)
def test_data_forms(data: object, expected: dict[str, object]) -> None:
    p = parse_push(raw(type="image", data=data))
    assert dict(p.data) == expected


def test_data_as_json_string_parses_like_object() -> None:
    as_obj = parse_push(push("image", "发了一张图片", {"vfid": "v9", "tovfid": "t9"}))
    as_str = parse_push(push("image", "发了一张图片", {"vfid": "v9", "tovfid": "t9"}, data_as_string=True))
    assert as_obj == as_str
    assert to_inbound(as_obj) == to_inbound(as_str)


def test_ids_as_digit_strings_accepted() -> None:
    p = parse_push(raw(receiver_id=str(ACCOUNT), sender_id=f" {USER} "))
    assert (p.receiver_id, p.sender_id) == (ACCOUNT, USER)


def test_int64_max_id_accepted() -> None:
    assert parse_push(raw(sender_id=2**63 - 1)).sender_id == 2**63 - 1


def test_missing_or_null_text_is_empty() -> None:
    assert parse_push(raw(text=_MISSING)).text == ""
    assert parse_push(raw(text=None)).text == ""


def test_escaped_text_and_bom_accepted() -> None:
    body = json.dumps(json.loads(raw(text="你好😀")), ensure_ascii=True).encode()
    assert b"\\ud83d" in body
    assert parse_push(b"\xef\xbb\xbf" + body).text == "你好😀"


def test_lone_surrogate_in_text_is_replaced() -> None:
    body = raw().replace("你好".encode(), b"\\ud83d!")
    assert parse_push(body).text == "\ufffd!"


# ---------------------------------------------------------------------------------------------
# Protocol errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not JSON"),
        (b"not json", "not JSON"),
        (b'{"type": "text",', "not JSON"),
        (b"[1, 2, 3]", "not an object"),
        (b'"text"', "not an object"),
        (b"null", "not an object"),
        (b"\xff\xfe{}", "not UTF-8"),
        (raw().replace("你".encode(), b"\xe4\xbd"), "not UTF-8"),
        (b'{"type": "text", "sender_id": NaN}', "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (raw(type=_MISSING), "missing type"),
        (raw(type=None), "missing type"),
        (raw(sender_id=_MISSING), "missing sender_id"),
        (raw(receiver_id=_MISSING), "missing receiver_id"),
        (raw(created_at=_MISSING), "missing created_at"),
        (raw(type=""), "type is not"),
        (raw(type=7), "type is not"),
        (raw(sender_id="abc"), "sender_id is not an int64"),
        (raw(sender_id="12a"), "sender_id is not an int64"),
        (raw(sender_id="１２３"), "sender_id is not an int64"),  # full-width digits
        (raw(sender_id=1.5), "sender_id is not an int64"),
        (raw(sender_id=1e15), "sender_id is not an int64"),
        (raw(sender_id=True), "sender_id is not an int64"),
        (raw(sender_id=[1]), "sender_id is not an int64"),
        (raw(receiver_id=0), "receiver_id out of int64 range"),
        (raw(receiver_id=-5), "receiver_id out of int64 range"),
        (raw(receiver_id=2**63), "receiver_id out of int64 range"),
        (raw(created_at="2012-07-16 18:09:20"), "created_at unparseable"),
        (raw(created_at="Mon Foo 16 18:09:20 +0800 2012"), "created_at unparseable"),
        (raw(created_at="Xyz Jul 16 18:09:20 +0800 2012"), "created_at unparseable"),
        (raw(created_at="Mon Jul 16 18:09:20 2012"), "created_at unparseable"),
        (raw(created_at="Thu Feb 30 18:09:20 +0800 2012"), "created_at not a real time"),
        (raw(created_at="Mon Jul 16 25:09:20 +0800 2012"), "created_at not a real time"),
        (raw(created_at="Mon Jul 16 18:09:20 +2500 2012"), "offset out of range"),
        (raw(created_at=1342433360), "created_at is not a string"),
        (raw(text=5), "text is not a string"),
    ],
)
def test_protocol_errors(body: bytes, reason: str) -> None:
    with pytest.raises(WeiboProtocolError, match=re.escape(reason)) as info:
        parse_push(body)
    assert isinstance(info.value, ValueError)
    assert len(info.value.reason) < 100


# ---------------------------------------------------------------------------------------------
# Dedup keys
# ---------------------------------------------------------------------------------------------


def test_dedup_key_shape() -> None:
    key = to_inbound(parse_push(push("text", "你好"))).dedup_key
    assert re.fullmatch(rf"weibo:{ACCOUNT}:{USER}:1342433360:text:[0-9a-f]{{16}}", key)


def test_dedup_key_equal_for_retries() -> None:
    body = push("text", "同一条消息")
    assert dedup_key(parse_push(body)) == dedup_key(parse_push(body))
    # a retry re-serialised differently (escaped, data as string) is still the same push
    reserialised = json.dumps(json.loads(body), ensure_ascii=True).encode()
    assert dedup_key(parse_push(reserialised)) == dedup_key(parse_push(body))


def test_dedup_key_differs_for_different_text_same_second() -> None:
    assert dedup_key(parse_push(push("text", "第一条"))) != dedup_key(parse_push(push("text", "第二条")))


def test_dedup_key_differs_for_two_images_same_second() -> None:
    # both carry the same placeholder text: the vfid tells them apart
    a = parse_push(push("image", "发了一张图片", {"vfid": "v1", "tovfid": "t1"}))
    b = parse_push(push("image", "发了一张图片", {"vfid": "v2", "tovfid": "t2"}))
    assert dedup_key(a) != dedup_key(b)


def test_dedup_key_differs_by_sender_second_and_type() -> None:
    base = dedup_key(parse_push(push("text", "x")))
    assert dedup_key(parse_push(push("text", "x", sender_id=USER + 1))) != base
    assert dedup_key(parse_push(push("text", "x", created_at=WHEN + timedelta(seconds=1)))) != base
    assert dedup_key(parse_push(push("mention", "x"))) != base


def test_dedup_key_same_instant_in_another_offset_is_equal() -> None:
    utc = WHEN.astimezone(UTC)
    same = parse_push(push("text", "x", created_at=utc))
    assert dedup_key(same) == dedup_key(parse_push(push("text", "x")))


# ---------------------------------------------------------------------------------------------
# truncate_text
# ---------------------------------------------------------------------------------------------

FAMILY = "👨\u200d👩\u200d👧\u200d👦"  # 7 code points
THUMB_MEDIUM = "👍🏽"  # base + skin tone
HEART = "❤\ufe0f"  # + VS16
CN, JP = "🇨🇳", "🇯🇵"
ENGLAND = "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
KEYCAP = "1\ufe0f\u20e3"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("一二三四五", 5, "一二三四五"),
        ("一二三四五", 4, "一二三…"),
        ("一二三四五", 1, "…"),
        ("一二三四五", 0, ""),
        ("", 0, ""),
        ("ab" + THUMB_MEDIUM, 4, "ab" + THUMB_MEDIUM),
        ("ab" + THUMB_MEDIUM + "c", 4, "ab…"),  # never between emoji and its skin tone
        ("ab" + THUMB_MEDIUM + "cd", 5, "ab" + THUMB_MEDIUM + "…"),
        ("x" + FAMILY + "y", 8, "x…"),  # never inside a ZWJ sequence
        ("x" + FAMILY + "yz", 9, "x" + FAMILY + "…"),
        (CN + JP + "!", 4, CN + "…"),  # never inside a flag pair
        (CN + JP + "!", 3, CN + "…"),
        ("a" + ENGLAND + "b", 8, "a…"),  # tag sequence
        ("a" + KEYCAP + "b", 4, "a…"),
        ("a" + HEART + "b", 3, "a…"),  # never between emoji and VS16
        ("cafe\u0301s", 5, "caf…"),  # never before a combining mark
        ("cafe\u0301s", 6, "cafe\u0301s"),
        ("한\u1100\u1161국어", 3, "한…"),  # conjoining jamo form one grapheme
        ("ab\r\ncd", 3, "ab…"),  # CRLF is one grapheme
        ("ab\ud83d\ude00c", 4, "ab…"),  # a surrogate pair left as two code points
        (FAMILY, 3, "…"),  # one grapheme longer than the budget
    ],
)
def test_truncate_examples(text: str, limit: int, expected: str) -> None:
    out = truncate_text(text, limit)
    assert out == expected
    assert len(out) <= limit


def test_truncate_default_limit_is_300() -> None:
    out = truncate_text("中" * 301)
    assert out == "中" * 299 + "…"
    assert len(out) == 300
    assert truncate_text("中" * 300) == "中" * 300


def test_truncate_negative_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        truncate_text("abc", -1)


ATOMS = [
    "中",
    "文",
    "a",
    " ",
    "\r\n",
    "\n",
    THUMB_MEDIUM,
    "👍",
    "\U0001f3fd",  # a lone skin-tone modifier
    FAMILY,
    "\u200d",
    HEART,
    "\ufe0f",
    "🇨",
    "🇳",
    CN,
    ENGLAND,
    KEYCAP,
    "e\u0301",
    "\u0301",
    "\u0308",
    "\u1100",
    "\u1161",
    "\u11a8",
    "क्ष",
    "…",
]
texts = st.lists(
    st.one_of(st.sampled_from(ATOMS), st.characters(exclude_categories=["Cs"])), max_size=40
).map("".join)


@given(text=texts, limit=st.integers(min_value=0, max_value=60))
def test_truncate_property(text: str, limit: int) -> None:
    out = truncate_text(text, limit)
    assert len(out) <= limit
    if len(text) <= limit:
        assert out == text
        return
    if limit == 0:
        assert out == ""
        return
    assert out.endswith("…")
    body = out[:-1]
    clusters = regex.findall(r"\X", text)
    prefixes = {"".join(clusters[:k]): k for k in range(len(clusters) + 1)}
    assert body in prefixes, "the kept part must be whole graphemes of the input"
    k = prefixes[body]
    # greedy: the next grapheme would not have fitted before the ellipsis
    assert k < len(clusters)
    assert len(body) + len(clusters[k]) > limit - 1
    # and re-segmenting the kept part does not change the graphemes it consists of
    assert regex.findall(r"\X", body) == clusters[:k]


# ---------------------------------------------------------------------------------------------
# Replies
# ---------------------------------------------------------------------------------------------


def test_render_text_reply_round_trip_chinese_and_emoji() -> None:
    text = "您好！您反映的问题已登记 👍🏽 编号 A/2024+1 & 谢谢 " + FAMILY + CN
    body = json.loads(render_text_reply(to_user=str(USER), from_account=ACCOUNT, text=text))
    assert body["result"] is True
    assert body["receiver_id"] == USER
    assert body["sender_id"] == ACCOUNT
    assert body["type"] == "text"
    assert set(body) == {"result", "receiver_id", "sender_id", "type", "data"}
    data = body["data"]
    assert data.isascii()
    assert not set(data) & set(' +/&="{}')
    assert decode_reply_data(data) == {"text": text}


def test_render_text_reply_truncates() -> None:
    long_text = "答" * 200 + THUMB_MEDIUM * 100
    body = json.loads(render_text_reply(to_user=USER, from_account=ACCOUNT, text=long_text))
    text = decode_reply_data(body["data"])["text"]
    assert len(text) <= 300
    assert text.endswith(THUMB_MEDIUM + "…")


def test_render_text_reply_replaces_lone_surrogates() -> None:
    body = json.loads(render_text_reply(to_user=USER, from_account=ACCOUNT, text="好\ud83d"))
    assert decode_reply_data(body["data"]) == {"text": "好\ufffd"}


@pytest.mark.parametrize("text", ["", "   "])
def test_render_text_reply_refuses_empty_text(text: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        render_text_reply(to_user=USER, from_account=ACCOUNT, text=text)


@pytest.mark.parametrize("bad", ["abc", 0, -1, 2**63, "o123"])
def test_render_text_reply_refuses_bad_ids(bad: int | str) -> None:
    with pytest.raises(ValueError):
        render_text_reply(to_user=bad, from_account=ACCOUNT, text="好")
    with pytest.raises(ValueError):
        render_text_reply(to_user=USER, from_account=bad, text="好")


def test_decode_reply_data_accepts_form_encoding() -> None:
    assert decode_reply_data("%7B%22text%22%3A%22a+b%22%7D") == {"text": "a b"}


@pytest.mark.parametrize("data", ["not json", "%5B1%5D", "%E4%BD", "%7B%22a%22%3ANaN%7D"])
def test_decode_reply_data_rejects(data: str) -> None:
    with pytest.raises(WeiboProtocolError):
        decode_reply_data(data)


def test_render_articles_reply() -> None:
    article = Article(
        display_name="办事指南", summary="公积金提取", image="https://x/i.png", url="https://x/a?b=1&c=2"
    )
    body = json.loads(render_articles_reply(to_user=USER, from_account=ACCOUNT, articles=[article]))
    assert body["type"] == "articles"
    assert decode_reply_data(body["data"]) == {
        "articles": [
            {
                "display_name": "办事指南",
                "summary": "公积金提取",
                "image": "https://x/i.png",
                "url": "https://x/a?b=1&c=2",
            }
        ]
    }
    with pytest.raises(ValueError, match="1 to 8"):
        render_articles_reply(to_user=USER, from_account=ACCOUNT, articles=[article] * 9)
    with pytest.raises(ValueError, match="1 to 8"):
        render_articles_reply(to_user=USER, from_account=ACCOUNT, articles=[])


def test_render_position_reply() -> None:
    reply = render_position_reply(to_user=USER, from_account=ACCOUNT, longitude=116.4, latitude="39.9")
    body = json.loads(reply)
    assert body["type"] == "position"
    assert decode_reply_data(body["data"]) == {"longitude": "116.4", "latitude": "39.9"}


# ---------------------------------------------------------------------------------------------
# build_push / parse_push round trip
# ---------------------------------------------------------------------------------------------


def test_build_push_exact_bytes() -> None:
    body = build_push(type="text", sender_id=USER, receiver_id=ACCOUNT, created_at=WHEN, text="你好")
    assert (
        body
        == (
            '{"type": "text", "receiver_id": 5000000001, "sender_id": 1234567890, '
            '"created_at": "Mon Jul 16 18:09:20 +0800 2012", "text": "你好", "data": {}}'
        ).encode()
    )


def test_build_push_data_as_string() -> None:
    body = json.loads(push("image", "发了一张图片", {"vfid": "v"}, data_as_string=True))
    assert body["data"] == '{"vfid": "v"}'


def test_build_push_rejects_naive_datetime() -> None:
    with pytest.raises(ValueError, match="aware"):
        push(created_at=datetime(2012, 7, 16))  # noqa: DTZ001 — the point of the test


offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(
    type_=st.sampled_from(["text", "position", "voice", "image", "event", "mention", "whatever"]),
    sender=st.integers(min_value=1, max_value=2**63 - 1),
    receiver=st.integers(min_value=1, max_value=2**63 - 1),
    when=st.datetimes(
        min_value=datetime(1000, 1, 1),  # noqa: DTZ001 — hypothesis bounds are naive by design
        max_value=datetime(9998, 12, 31),  # noqa: DTZ001
        timezones=offsets,
    ).map(lambda d: d.replace(microsecond=0)),
    text=st.text(),
    data=st.dictionaries(st.text(max_size=8), st.one_of(st.text(), st.integers(), st.none()), max_size=4),
    data_as_string=st.booleans(),
)
def test_build_parse_round_trip(
    type_: str,
    sender: int,
    receiver: int,
    when: datetime,
    text: str,
    data: dict[str, object],
    data_as_string: bool,
) -> None:
    body = build_push(
        type=type_,
        sender_id=sender,
        receiver_id=receiver,
        created_at=when,
        text=text,
        data=data,
        data_as_string=data_as_string,
    )
    p = parse_push(body)
    assert (p.type, p.sender_id, p.receiver_id, p.text, dict(p.data)) == (type_, sender, receiver, text, data)
    assert p.created_at == when
    assert p.created_at.utcoffset() == when.utcoffset()
    msg = to_inbound(p)
    assert msg.dedup_key == to_inbound(parse_push(body)).dedup_key
    assert msg.created_at.tzinfo is not None
