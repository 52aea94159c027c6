"""Push plan rules (R4.3, R4.4) as pure functions of time and the business calendar.

- R4.4: a push goes out on a workday between 10:00 and 12:00 (the bureau's time zone; workdays,
  holidays and make-up days from `escalation.calendar.BusinessCalendar`); outside it the push needs
  a recorded reason.
- R4.3: 1–4 items a push, and at least 3 pushes a week; `week_check` says whether the week in which
  `now` falls is heading for fewer (published so far + still planned this week < the minimum).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from escalation.calendar import BusinessCalendar

if TYPE_CHECKING:
    from bot.config import Settings

WEEKDAYS = "一二三四五六日"


@dataclass(frozen=True)
class PushRules:
    tz: ZoneInfo
    window_start: time = time(10, 0)
    window_end: time = time(12, 0)
    items_min: int = 1
    items_max: int = 4
    weekly_min: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> PushRules:
        config = settings.file.publishing
        start, end = time.fromisoformat(config.push_window_start), time.fromisoformat(config.push_window_end)
        return cls(settings.tz, start, end, config.items_per_push_min, config.items_per_push_max,
                   config.pushes_per_week_min)

    @property
    def window_label(self) -> str:
        return f"{self.window_start:%H:%M}–{self.window_end:%H:%M}"


def window_problem(at: datetime, calendar: BusinessCalendar, rules: PushRules) -> str | None:
    """Why `at` is outside the workday push window (R4.4), or None when it is inside."""
    if at.tzinfo is None:
        raise ValueError("at: a naive datetime; give the time zone")
    local = at.astimezone(rules.tz)
    label = f"{local:%Y-%m-%d %H:%M}（周{WEEKDAYS[local.weekday()]}）"
    if not calendar.is_workday(local.date()):
        return f"{label}不是工作日，推送应在工作日 {rules.window_label} 进行"
    if not rules.window_start <= local.time() <= rules.window_end:
        return f"{label}不在工作日推送时段 {rules.window_label} 内"
    return None


def items_problem(count: int, rules: PushRules) -> str | None:
    if count < rules.items_min or count > rules.items_max:
        return f"每次推送 {rules.items_min}–{rules.items_max} 条信息，本次选了 {count} 条"
    return None


@dataclass(frozen=True)
class WeekCheck:
    week_start: date
    week_end: date  # Sunday
    published: int
    planned: int  # not yet published, planned from now to the week's end
    workdays_left: int  # workdays from today on whose push window has not yet closed
    minimum: int

    @property
    def expected(self) -> int:
        return self.published + self.planned

    @property
    def short(self) -> bool:
        return self.expected < self.minimum

    @property
    def reachable(self) -> bool:
        """At one push a remaining workday, can the week still reach the minimum?"""
        return self.published + self.workdays_left >= self.minimum

    @property
    def label(self) -> str:
        return f"{self.week_start:%m-%d}至{self.week_end:%m-%d}"

    @property
    def message(self) -> str:
        head = f"本周（{self.label}）已推送 {self.published} 次，另有计划 {self.planned} 次"
        if not self.short:
            return f"{head}，达到每周至少 {self.minimum} 次的要求（R4.3）"
        tail = "" if self.reachable else "；即使每个剩余工作日推送一次也无法达到"
        return (f"{head}，合计不足每周 {self.minimum} 次（R4.3）：请安排推送。本周还剩 {self.workdays_left} 个"
                f"工作日{tail}")

    def to_dict(self) -> dict[str, object]:
        return {"week_start": self.week_start.isoformat(), "week_end": self.week_end.isoformat(),
                "published": self.published, "planned": self.planned, "workdays_left": self.workdays_left,
                "minimum": self.minimum, "short": self.short, "reachable": self.reachable, "message": self.message}


def week_of(now: datetime, rules: PushRules) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) in the bureau's time zone, for the week holding `now`."""
    local = now.astimezone(rules.tz)
    monday = local.date() - timedelta(days=local.weekday())
    start = datetime.combine(monday, time(0), tzinfo=rules.tz)
    return start, datetime.combine(monday + timedelta(days=7), time(0), tzinfo=rules.tz)


def week_check(now: datetime, pushes: Iterable[tuple[datetime, datetime | None]], calendar: BusinessCalendar,
               rules: PushRules) -> WeekCheck:
    """`pushes`: (planned_at, published_at or None) of every push that may touch this week."""
    start, end = week_of(now, rules)
    published = planned = 0
    for planned_at, published_at in pushes:
        if published_at is not None:
            published += start <= published_at < end
        elif now <= planned_at < end:
            planned += 1
    local = now.astimezone(rules.tz)
    workdays_left = 0
    day = local.date()
    while day < end.date():
        if calendar.is_workday(day) and (day > local.date() or local.time() <= rules.window_end):
            workdays_left += 1
        day += timedelta(days=1)
    return WeekCheck(start.date(), end.date() - timedelta(days=1), published, planned, workdays_left,
                     rules.weekly_min)
