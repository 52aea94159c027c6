"""Reply hours as a working-time calendar (rule R6.1a), and arithmetic on it (R6.1b).

Pure: nothing here reads the clock, the database or the network. Every instant is an argument,
must be timezone-aware (any offset) and results come back in the configured zone.

A working day is a day that is not a weekend and not a Chinese statutory holiday, or a make-up
working day (调休). Precedence, first match wins:

1. ``extra_workdays`` from config → working day;
2. ``extra_holidays`` from config → day off;
3. ``chinese_calendar.is_workday`` (statutory holidays and make-up days as published);
4. for a year the package does not cover (it raises ``NotImplementedError``): weekends off, plus the
   statutory holidays of the current rules (全国年节及纪念日放假办法, 2025 revision) that can be
   computed — see `fallback_holidays` — and no make-up days, with one warning per year and calendar.

On a working day the bureau replies from the season's ``open`` to its ``close`` (local time). The
window is a closed interval: ``close`` itself counts as open, so a deadline exactly at closing time
is within reply hours and ``next_opening(close)`` is ``close``; a message arriving at the very
instant of closing has no working time left that day, so its clock runs from the next opening.

Datetimes are compared and subtracted in UTC, so a zone with daylight saving time still counts
elapsed minutes (subtracting two datetimes that share a ZoneInfo would count wall-clock time).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar
from loguru import logger

__all__ = [
    "LUNAR_HOLIDAYS_AVAILABLE",
    "MAX_IDLE_DAYS",
    "BusinessCalendar",
    "CalendarError",
    "ReplyHours",
    "Season",
    "fallback_holidays",
    "to_utc",
]

#: Longest run of days without reply hours we scan before deciding there are none (about 3 years).
MAX_IDLE_DAYS = 3 * 366
_ONE_DAY = timedelta(days=1)
_CACHE_DAYS = 8192  # per-date memo size: ~22 years of dates per calendar
_LEAP_YEAR = 2000  # a leap year, to enumerate every month-day including 02-29

#: (month, day) of the fixed-date statutory holidays (2025 rules): New Year, Labour Day, National Day.
_FIXED_HOLIDAYS = ((1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3))

_MONTH_DAY_RE = re.compile(r"([0-9]{2})-([0-9]{2})")
_HH_MM_RE = re.compile(r"([0-9]{2}):([0-9]{2})")
_ISO_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _load_lunardate() -> Any:
    """`lunardate` (small, pure Python, lunar years 1900–2099) if installed, else None."""
    try:
        return importlib.import_module("lunardate")
    except ImportError:  # pragma: no cover - exercised only where the package is missing
        return None


_lunardate: Any = _load_lunardate()
#: Whether uncovered years get Spring Festival, Dragon Boat and Mid-Autumn (needs `lunardate`).
LUNAR_HOLIDAYS_AVAILABLE = _lunardate is not None


_DEFAULT_MAPPING: Mapping[str, Any] = {
    "seasons": [
        {"name": "summer", "start": "05-01", "end": "09-30", "open": "08:30", "close": "18:30"},
        {"name": "winter", "start": "10-01", "end": "04-30", "open": "08:30", "close": "17:30"},
    ],
    "extra_holidays": [],
    "extra_workdays": [],
}


class CalendarError(ValueError):
    """The calendar has no reply hours to offer: none within `MAX_IDLE_DAYS`, or past year 9999."""


def to_utc(t: datetime, name: str = "t") -> datetime:
    """`t` as a UTC datetime; ValueError if it is naive (or not a datetime at all)."""
    if not isinstance(t, datetime):
        raise TypeError(f"{name}: expected a timezone-aware datetime, got {type(t).__name__}")
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{name}: naive datetime {t.isoformat()} — pass a timezone-aware datetime")
    try:
        return t.astimezone(UTC)
    except OverflowError:
        raise CalendarError(f"{name}: {t.isoformat()} is outside the representable range") from None


# --------------------------------------------------------------------------- seasons and config


@dataclass(frozen=True)
class Season:
    """Reply hours for the days from `start` to `end` (month, day), both inclusive.

    `start` after `end` wraps the year end: winter ``(10, 1)`` → ``(4, 30)``.
    """

    name: str
    start: tuple[int, int]
    end: tuple[int, int]
    open: time
    close: time

    def __post_init__(self) -> None:
        label = f"season {self.name!r}"
        for field_name in ("start", "end"):
            md = getattr(self, field_name)
            if not _is_month_day(md):
                raise ValueError(f"{label}: {field_name} {md!r} is not a (month, day) of the year")
        for field_name in ("open", "close"):
            value = getattr(self, field_name)
            if not isinstance(value, time) or value.tzinfo is not None:
                raise ValueError(f"{label}: {field_name} must be a local time without tzinfo")
        if not self.open < self.close:
            raise ValueError(f"{label}: open {self.open:%H:%M} must be before close {self.close:%H:%M}")

    def contains(self, d: date) -> bool:
        """Whether the day's month and day fall in this season (the year does not matter)."""
        md = (d.month, d.day)
        if self.start <= self.end:
            return self.start <= md <= self.end
        return md >= self.start or md <= self.end


@dataclass(frozen=True)
class ReplyHours:
    """The reply-hours configuration as one value (R6.1a): seasons, zone and date overrides.

    Construction validates: the seasons cover every day of the year exactly once, and no date is
    both an extra holiday and an extra working day.
    """

    seasons: tuple[Season, ...]
    tz: ZoneInfo
    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.tz, tzinfo):
            raise ValueError(f"timezone: expected a ZoneInfo, got {type(self.tz).__name__}")
        if not self.seasons:
            raise ValueError("seasons: at least one season is required")
        _check_coverage(self.seasons)
        both = sorted(self.extra_holidays & self.extra_workdays)
        if both:
            raise ValueError(f"extra_workdays: {both[0].isoformat()} is also listed in extra_holidays")

    def season_for(self, d: date) -> Season:
        """The season that `d` falls in (exactly one, guaranteed by validation)."""
        for season in self.seasons:
            if season.contains(d):
                return season
        raise AssertionError(f"no season for {d}")  # pragma: no cover - prevented by __post_init__

    @classmethod
    def default(cls) -> ReplyHours:
        """The regulation's hours: summer 05-01..09-30 08:30–18:30, winter 10-01..04-30 08:30–17:30,
        Asia/Shanghai, no overrides."""
        return cls.from_mapping(_DEFAULT_MAPPING)

    @classmethod
    def from_mapping(cls, reply_hours: Mapping[str, Any], timezone: str = "Asia/Shanghai") -> ReplyHours:
        """Build from the ``reply_hours`` section of config.yaml (the mapping inside it).

        Raises ValueError whose message starts with the offending key, e.g.
        ``seasons[1].close: expected "HH:MM", got 1050``.
        """
        if not isinstance(reply_hours, Mapping):
            raise ValueError(f"expected a mapping with 'seasons', got {type(reply_hours).__name__}")
        known = ("seasons", "extra_holidays", "extra_workdays")
        for key in reply_hours:
            if key not in known:
                raise ValueError(f"{key}: unknown key (expected one of {', '.join(known)})")
        if "seasons" not in reply_hours:
            raise ValueError("seasons: missing")
        raw_seasons = reply_hours["seasons"]
        if not isinstance(raw_seasons, list | tuple) or not raw_seasons:
            raise ValueError("seasons: expected a non-empty list of seasons")
        seasons = tuple(_parse_season(raw, f"seasons[{i}]") for i, raw in enumerate(raw_seasons))
        names = [s.name for s in seasons]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ValueError(f"seasons[{i}].name: duplicate season name {name!r}")
        try:
            tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"timezone: unknown time zone {timezone!r}") from None
        return cls(
            seasons=seasons,
            tz=tz,
            extra_holidays=_parse_dates(reply_hours.get("extra_holidays"), "extra_holidays"),
            extra_workdays=_parse_dates(reply_hours.get("extra_workdays"), "extra_workdays"),
        )


def _is_month_day(md: object) -> bool:
    if not (isinstance(md, tuple) and len(md) == 2 and all(type(x) is int for x in md)):
        return False
    try:
        date(_LEAP_YEAR, md[0], md[1])
    except ValueError:
        return False
    return True


def _check_coverage(seasons: tuple[Season, ...]) -> None:
    day = date(_LEAP_YEAR, 1, 1)
    while day.year == _LEAP_YEAR:
        covering = [s.name for s in seasons if s.contains(day)]
        if not covering:
            raise ValueError(f"seasons: {day:%m-%d} is not in any season")
        if len(covering) > 1:
            raise ValueError(f"seasons: {day:%m-%d} is in more than one season ({', '.join(covering)})")
        day += _ONE_DAY


def _parse_season(raw: object, key: str) -> Season:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{key}: expected a mapping with name, start, end, open, close")
    fields = ("name", "start", "end", "open", "close")
    for k in raw:
        if k not in fields:
            raise ValueError(f"{key}.{k}: unknown key (expected one of {', '.join(fields)})")
    for k in fields:
        if k not in raw:
            raise ValueError(f"{key}.{k}: missing")
    name = raw["name"]
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{key}.name: expected a non-empty string, got {name!r}")
    start = _parse_month_day(raw["start"], f"{key}.start")
    end = _parse_month_day(raw["end"], f"{key}.end")
    opening = _parse_time(raw["open"], f"{key}.open")
    closing = _parse_time(raw["close"], f"{key}.close")
    if not opening < closing:
        raise ValueError(f"{key}.close: {closing:%H:%M} must be after open {opening:%H:%M}")
    return Season(name=name.strip(), start=start, end=end, open=opening, close=closing)


def _parse_month_day(value: object, key: str) -> tuple[int, int]:
    match = _MONTH_DAY_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f'{key}: expected a quoted "MM-DD" string, got {value!r}')
    md = (int(match[1]), int(match[2]))
    if not _is_month_day(md):
        raise ValueError(f"{key}: {value!r} is not a day of the year")
    return md


def _parse_time(value: object, key: str) -> time:
    if isinstance(value, time):
        if value.tzinfo is not None or value.second or value.microsecond:
            raise ValueError(f"{key}: expected a local HH:MM time, got {value!r}")
        return value
    match = _HH_MM_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        hint = ""
        if isinstance(value, int):
            hint = " (quote it: YAML reads an unquoted 18:30 as the number 1110)"
        raise ValueError(f'{key}: expected a quoted "HH:MM" string, got {value!r}{hint}')
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        raise ValueError(f"{key}: {value!r} is not a time of day")
    return time(hour, minute)


def _parse_dates(value: object, key: str) -> frozenset[date]:
    if value is None:
        return frozenset()
    if not isinstance(value, list | tuple | set | frozenset):
        raise ValueError(f'{key}: expected a list of "YYYY-MM-DD" dates, got {value!r}')
    out: set[date] = set()
    for i, item in enumerate(value):
        if isinstance(item, datetime):
            raise ValueError(f"{key}[{i}]: expected a date, got the datetime {item.isoformat()}")
        if isinstance(item, date):  # PyYAML turns an unquoted 2027-01-01 into a date
            out.add(item)
            continue
        if not isinstance(item, str) or not _ISO_DATE_RE.fullmatch(item):
            raise ValueError(f'{key}[{i}]: expected an ISO date "YYYY-MM-DD", got {item!r}')
        try:
            out.add(date.fromisoformat(item))
        except ValueError:
            raise ValueError(f"{key}[{i}]: {item!r} is not a valid date") from None
    return frozenset(out)


# --------------------------------------------------------------------------- uncovered years


def fallback_holidays(year: int) -> frozenset[date]:
    """Statutory holidays of `year` that can be computed without a published schedule.

    The current rules (全国年节及纪念日放假办法 as revised in 2024, in force from 2025):
    New Year's Day 1 Jan; Spring Festival = lunar New Year's Eve and lunar 1/1–1/3; Qingming
    (the solar term, 4–6 Apr); Labour Day 1–2 May; Dragon Boat lunar 5/5; Mid-Autumn lunar 8/15;
    National Day 1–3 Oct. Lunar festivals come from `lunardate` (lunar years 1900–2099) and are left
    out when it is missing or the year is out of its range; Qingming comes from
    `chinese_calendar.get_solar_terms` (1900–2100). The State Council's yearly schedule also moves
    weekends around these days (调休) and bridges gaps; that cannot be computed, so it is not here.
    """
    days = {date(year, month, day) for month, day in _FIXED_HOLIDAYS}
    days.update(_lunar_holidays(year))
    qingming = _qingming(year)
    if qingming is not None:
        days.add(qingming)
    return frozenset(days)


def _lunar_holidays(year: int) -> set[date]:
    if _lunardate is None or not 1900 <= year <= 2099:
        return set()
    try:
        new_year = _lunardate.LunarDate(year, 1, 1).to_solar_date()
        days = {new_year + timedelta(days=k) for k in (-1, 0, 1, 2)}
        days.add(_lunardate.LunarDate(year, 5, 5).to_solar_date())
        days.add(_lunardate.LunarDate(year, 8, 15).to_solar_date())
    except Exception as exc:  # best effort: never let a library quirk break the calendar
        logger.debug("lunardate failed for {}: {!r}", year, exc)
        return set()
    return {d for d in days if d.year == year}


def _qingming(year: int) -> date | None:
    if not 1900 <= year <= 2100:
        return None
    try:
        terms = chinese_calendar.get_solar_terms(date(year, 4, 1), date(year, 4, 10))
    except Exception as exc:  # best effort, as above (older chinese_calendar lacks solar terms)
        logger.debug("chinese_calendar.get_solar_terms failed for {}: {!r}", year, exc)
        return None
    for day, name in terms:
        if name == "清明":
            return day  # type: ignore[no-any-return]
    return None


def _fallback_note(year: int) -> str:
    included = ["New Year's Day", "Labour Day 1–2 May", "National Day 1–3 Oct"]
    missing: list[str] = []
    (included if _qingming(year) is not None else missing).append("Qingming")
    lunar = "Spring Festival (New Year's Eve + 3 days), Dragon Boat, Mid-Autumn"
    (included if _lunar_holidays(year) else missing).append(lunar)
    note = "included: " + ", ".join(included)
    return note + ("; NOT included: " + ", ".join(missing) if missing else "")


# --------------------------------------------------------------------------- the calendar


class BusinessCalendar:
    """Working time under a `ReplyHours` configuration. Cheap per call: per-date lookups are memoised.

    Not thread-hostile (the memos are lru_caches); build it once from config and share it.
    """

    def __init__(self, hours: ReplyHours) -> None:
        self._hours = hours
        self._tz = hours.tz
        by_month_day: dict[tuple[int, int], Season] = {}
        day = date(_LEAP_YEAR, 1, 1)
        while day.year == _LEAP_YEAR:
            by_month_day[(day.month, day.day)] = hours.season_for(day)
            day += _ONE_DAY
        self._season_by_month_day = by_month_day
        self._fallback_years: dict[int, frozenset[date]] = {}
        # Per-instance memos (a method-level lru_cache would be shared and keep calendars alive).
        self._workday_memo = lru_cache(maxsize=_CACHE_DAYS)(self._compute_is_workday)
        self._window_memo = lru_cache(maxsize=_CACHE_DAYS)(self._compute_window)
        self._utc_window_memo = lru_cache(maxsize=_CACHE_DAYS)(self._compute_utc_window)

    @property
    def hours(self) -> ReplyHours:
        return self._hours

    @property
    def tz(self) -> tzinfo:
        """The configured zone; every datetime this calendar returns is in it."""
        return self._tz

    # ---- per-date lookups

    def is_workday(self, d: date) -> bool:
        """Whether the bureau works on `d` (see the module docstring for the precedence). Never raises
        for a date."""
        return self._workday_memo(_as_date(d))

    def window(self, d: date) -> tuple[datetime, datetime] | None:
        """The reply-hours window of `d` as aware datetimes in the configured zone, or None on a day off."""
        return self._window_memo(_as_date(d))

    def season(self, d: date) -> Season:
        """The season whose hours apply on `d`."""
        d = _as_date(d)
        return self._season_by_month_day[(d.month, d.day)]

    # ---- instants

    def is_open(self, t: datetime) -> bool:
        """Whether `t` is within reply hours on a working day; the closing instant counts as open."""
        u = to_utc(t)
        span = self._utc_window_memo(self._local_date(u))
        return span is not None and span[0] <= u <= span[1]

    def next_opening(self, t: datetime) -> datetime:
        """`t` itself (in the configured zone) if open, else the start of the next reply-hours window."""
        u = to_utc(t)
        for opening, _closing in self._spans_from(u):
            return max(u, opening).astimezone(self._tz)
        raise AssertionError("unreachable")  # pragma: no cover - _spans_from raises instead of ending

    def add_working_minutes(self, start: datetime, minutes: int) -> datetime:
        """The instant `minutes` of reply hours after `start` (R6.1b), in the configured zone.

        A start outside reply hours counts from the next opening; 0 minutes gives `next_opening`.
        A deadline that lands exactly on a closing time stays there (it does not roll to the next day).
        """
        if isinstance(minutes, bool) or not isinstance(minutes, int):
            raise TypeError(f"minutes: expected an int, got {type(minutes).__name__}")
        if minutes < 0:
            raise ValueError(f"minutes: must not be negative, got {minutes}")
        u = to_utc(start, "start")
        remaining = timedelta(minutes=minutes)
        for opening, closing in self._spans_from(u):
            t = max(u, opening)
            available = closing - t
            if remaining <= available:
                return (t + remaining).astimezone(self._tz)
            remaining -= available
        raise AssertionError("unreachable")  # pragma: no cover

    def working_minutes_between(self, a: datetime, b: datetime) -> float:
        """Minutes of reply hours from `a` to `b`; negative when `b` is before `a`.

        Exact inverse of `add_working_minutes`:
        ``working_minutes_between(s, add_working_minutes(s, m)) == m``.
        """
        ua, ub = to_utc(a, "a"), to_utc(b, "b")
        if ub < ua:
            return -self.working_minutes_between(b, a)
        total = timedelta(0)
        for opening, closing in self._spans_from(ua):
            if opening >= ub:
                break
            total += min(closing, ub) - max(opening, ua)
        return total / timedelta(minutes=1)

    # ---- internals

    def _local_date(self, u: datetime) -> date:
        try:
            return u.astimezone(self._tz).date()
        except OverflowError:
            raise CalendarError(f"{u.isoformat()} is outside the representable range") from None

    def _spans_from(self, u: datetime) -> Iterator[tuple[datetime, datetime]]:
        """UTC (open, close) windows whose close is not before `u`, in order, from `u`'s local date on.

        Bounded: raises CalendarError after `MAX_IDLE_DAYS` consecutive days without reply hours.
        """
        day = self._local_date(u)
        idle = 0
        while True:
            span = self._utc_window_memo(day)
            if span is None:
                idle += 1
                if idle > MAX_IDLE_DAYS:
                    raise CalendarError(
                        f"no reply hours in the {MAX_IDLE_DAYS} days before {day.isoformat()}: "
                        "check reply_hours.extra_holidays"
                    )
            elif span[1] >= u:
                idle = 0
                yield span
            if day == date.max:
                raise CalendarError("no reply hours before the end of year 9999")
            day += _ONE_DAY

    def _compute_is_workday(self, d: date) -> bool:
        if d in self._hours.extra_workdays:
            return True
        if d in self._hours.extra_holidays:
            return False
        try:
            return bool(chinese_calendar.is_workday(d))
        except NotImplementedError:
            pass
        return d.weekday() < 5 and d not in self._fallback_for(d.year)

    def _fallback_for(self, year: int) -> frozenset[date]:
        holidays = self._fallback_years.get(year)
        if holidays is None:
            holidays = fallback_holidays(year)
            self._fallback_years[year] = holidays
            logger.warning(
                "chinese_calendar has no holiday data for {}: working days that year are weekdays minus "
                "the computable statutory holidays ({}); make-up working days (调休) and bridge days off "
                "are unknown — add the State Council schedule to reply_hours.extra_holidays / extra_workdays",
                year,
                _fallback_note(year),
            )
        return holidays

    def _compute_window(self, d: date) -> tuple[datetime, datetime] | None:
        if not self._workday_memo(d):
            return None
        season = self._season_by_month_day[(d.month, d.day)]
        return (
            datetime.combine(d, season.open, tzinfo=self._tz),
            datetime.combine(d, season.close, tzinfo=self._tz),
        )

    def _compute_utc_window(self, d: date) -> tuple[datetime, datetime] | None:
        local = self._window_memo(d)
        if local is None:
            return None
        try:
            return local[0].astimezone(UTC), local[1].astimezone(UTC)
        except OverflowError:
            raise CalendarError(f"{d.isoformat()} is outside the representable range") from None


def _as_date(d: date) -> date:
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"expected a date, got {type(d).__name__} (use is_open/next_opening for instants)")
    return d
