"""The texts netizens get back at once: welcome, acknowledgements with the promised time."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.config import RepliesConfig
from bot.inbound import Kind

_WEEKDAYS = "一二三四五六日"
_KIND_NAMES = {
    Kind.IMAGE: "图片",
    Kind.VOICE: "语音",
    Kind.VIDEO: "视频",
    Kind.SHORTVIDEO: "小视频",
    Kind.LOCATION: "位置",
    Kind.LINK: "链接",
}


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def format_due(due: datetime, now: datetime, tz: ZoneInfo) -> str:
    """A promise a person reads on a phone: "今天16:30", "明天（周五）10:30", "12月7日（周一）10:30"."""
    due_local, today = due.astimezone(tz), now.astimezone(tz).date()
    clock = due_local.strftime("%H:%M")
    days = (due_local.date() - today).days
    weekday = f"周{_WEEKDAYS[due_local.weekday()]}"
    if days == 0:
        return f"今天{clock}"
    if days == 1:
        return f"明天（{weekday}）{clock}"
    prefix = f"{due_local.year}年" if due_local.year != today.year else ""
    return f"{prefix}{due_local.month}月{due_local.day}日（{weekday}）{clock}"


# The inquiry number an FAQ reply is measured with before it is used: longer than any the bureau will reach.
LONGEST_INQUIRY_ID = 999_999_999


def inquiry_ref(inquiry_id: int) -> str:
    return f"{inquiry_id:06d}"


class ReplyWriter:
    def __init__(self, texts: RepliesConfig, bureau: str, tz: ZoneInfo) -> None:
        self.texts = texts
        self.bureau = bureau
        self.tz = tz

    def _fill(self, template: str, **values: str) -> str:
        # Every placeholder is allowed in every text (config validates the names); unused ones read "".
        return template.format_map(_Blank(bureau=self.bureau, **values))

    def welcome(self) -> str:
        return self._fill(self.texts.welcome)

    def faq_answer(self, *, answer: str, inquiry_id: int) -> str:
        return self._fill(self.texts.faq_answer, answer=answer.strip(), ref=inquiry_ref(inquiry_id))

    def rate_limited(self) -> str:
        return self._fill(self.texts.rate_limited)

    def unsupported(self) -> str:
        return self._fill(self.texts.unsupported)

    def acknowledgement(
        self,
        *,
        inquiry_id: int,
        due: datetime,
        now: datetime,
        critical: bool,
        followup: bool,
        department_name: str,
        media_kind: Kind | None = None,
    ) -> str:
        values = {"ref": inquiry_ref(inquiry_id), "due": format_due(due, now, self.tz), "department": department_name}
        if critical:
            template = self.texts.critical_ack
        elif followup:
            template = self.texts.followup_ack
        elif media_kind is not None:
            template = self.texts.media_ack
            values["kind"] = _KIND_NAMES.get(media_kind, "消息")
        else:
            template = self.texts.routine_ack
        return self._fill(template, **values)
