"""escalation.calendar: reply hours (R6.1a) as working time. Table-driven, no clock, no database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loguru import logger

from escalation.calendar import (
    LUNAR_HOLIDAYS_AVAILABLE,
    MAX_IDLE_DAYS,
    BusinessCalendar,
    CalendarError,
    ReplyHours,
    Season,
    fallback_holidays,
)

SHANGHAI = "Asia/Shanghai"
SH = ZoneInfo(SHANGHAI)
CAL = BusinessCalendar(ReplyHours.default())


def sh(text: str) -> datetime:
    """'2026-12-04 17:45' (or with seconds) → that wall time in Asia/Shanghai."""
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def d(text: str) -> date:
    return date.fromisoformat(text)


def mapping(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "seasons": [
            {"name": "summer", "start": "05-01", "end": "09-30", "open": "08:30", "close": "18:30"},
            {"name": "winter", "start": "10-01", "end": "04-30", "open": "08:30", "close": "17:30"},
        ],
        "extra_holidays": [],
        "extra_workdays": [],
    }
    base.update(overrides)
    return base


def with_season(index: int, **changes: Any) -> dict[str, Any]:
    m = mapping()
    m["seasons"][index] = {**m["seasons"][index], **changes}
    return m


@pytest.fixture
def warnings_logged() -> Iterator[list[str]]:
    messages: list[str] = []
    handler_id = logger.add(lambda msg: messages.append(msg.record["message"]), level="WARNING")
    yield messages
    logger.remove(handler_id)


# --------------------------------------------------------------------------- configuration (R6.1a)


def test_r6_1a_default_is_the_regulation_hours() -> None:
    hours = ReplyHours.default()
    assert hours.tz == SH
    assert hours.seasons == (
        Season("summer", (5, 1), (9, 30), time(8, 30), time(18, 30)),
        Season("winter", (10, 1), (4, 30), time(8, 30), time(17, 30)),
    )
    assert hours.extra_holidays == frozenset()
    assert hours.extra_workdays == frozenset()
    assert ReplyHours.from_mapping(mapping()) == hours


def test_r6_1a_extra_lists_may_be_absent_and_yaml_native_values_are_accepted() -> None:
    m = mapping()
    del m["extra_holidays"], m["extra_workdays"]
    assert ReplyHours.from_mapping(m) == ReplyHours.default()
    # PyYAML turns unquoted 2027-01-01 into a date; a time object is accepted as well.
    m = with_season(0, open=time(8, 30))
    m["extra_holidays"] = [date(2027, 1, 1)]
    hours = ReplyHours.from_mapping(m)
    assert hours.extra_holidays == {date(2027, 1, 1)}
    assert hours.seasons[0].open == time(8, 30)


def test_r6_1a_one_season_all_year_and_three_seasons() -> None:
    one = ReplyHours.from_mapping(
        {"seasons": [{"name": "all", "start": "01-01", "end": "12-31", "open": "09:00", "close": "17:00"}]}
    )
    assert BusinessCalendar(one).window(d("2026-12-04")) == (sh("2026-12-04 09:00"), sh("2026-12-04 17:00"))
    three = ReplyHours.from_mapping(
        {
            "seasons": [
                {"name": "a", "start": "03-01", "end": "06-30", "open": "08:00", "close": "12:00"},
                {"name": "b", "start": "07-01", "end": "10-31", "open": "09:00", "close": "18:00"},
                {"name": "c", "start": "11-01", "end": "02-29", "open": "10:00", "close": "16:00"},
            ]
        },
        timezone="UTC",
    )
    cal = BusinessCalendar(three)
    assert cal.season(d("2027-02-28")).name == "c"  # a non-leap year: 02-28 is still in "c"
    assert cal.season(d("2028-02-29")).name == "c"
    assert cal.season(d("2027-03-01")).name == "a"
    assert cal.window(d("2026-07-01")) == (
        datetime(2026, 7, 1, 9, tzinfo=ZoneInfo("UTC")),
        datetime(2026, 7, 1, 18, tzinfo=ZoneInfo("UTC")),
    )


@pytest.mark.parametrize(
    ("config", "timezone_name", "key"),
    [
        pytest.param({"extra_holidays": []}, "Asia/Shanghai", "seasons: missing", id="no-seasons"),
        pytest.param(mapping(seasons=[]), "Asia/Shanghai", "seasons:", id="empty-seasons"),
        pytest.param(mapping(seasons="summer"), "Asia/Shanghai", "seasons:", id="seasons-not-list"),
        pytest.param(mapping(extra_holiday=[]), "Asia/Shanghai", "extra_holiday:", id="typo-top-key"),
        pytest.param(with_season(0, end="09-29"), "Asia/Shanghai", "seasons: 09-30 is not in any", id="gap"),
        pytest.param(with_season(0, end="10-01"), "Asia/Shanghai", "seasons: 10-01 is in more", id="overlap"),
        pytest.param(with_season(1, close="08:30"), "Asia/Shanghai", "seasons[1].close:", id="open-eq-close"),
        pytest.param(with_season(1, close="07:00"), "Asia/Shanghai", "seasons[1].close:", id="close-early"),
        pytest.param(with_season(0, open="8:30"), "Asia/Shanghai", "seasons[0].open:", id="h-mm"),
        pytest.param(with_season(0, close=1110), "Asia/Shanghai", "seasons[0].close:", id="yaml-sexagesimal"),
        pytest.param(with_season(0, close="24:00"), "Asia/Shanghai", "seasons[0].close:", id="24h"),
        pytest.param(with_season(0, open="08:60"), "Asia/Shanghai", "seasons[0].open:", id="minute-60"),
        pytest.param(with_season(0, start="02-30"), "Asia/Shanghai", "seasons[0].start:", id="feb-30"),
        pytest.param(with_season(0, start="5-1"), "Asia/Shanghai", "seasons[0].start:", id="m-d"),
        pytest.param(with_season(1, name=""), "Asia/Shanghai", "seasons[1].name:", id="empty-name"),
        pytest.param(with_season(1, name="summer"), "Asia/Shanghai", "seasons[1].name:", id="dup-name"),
        pytest.param(with_season(1, colour="red"), "Asia/Shanghai", "seasons[1].colour:", id="season-typo"),
        pytest.param(
            mapping(seasons=[{"name": "x", "start": "01-01", "end": "12-31", "open": "08:30"}]),
            "Asia/Shanghai",
            "seasons[0].close: missing",
            id="season-missing-key",
        ),
        pytest.param(mapping(extra_holidays="2027-01-01"), "Asia/Shanghai", "extra_holidays:", id="not-list"),
        pytest.param(mapping(extra_holidays=["2027-13-01"]), SHANGHAI, "extra_holidays[0]:", id="month"),
        pytest.param(mapping(extra_workdays=["x", "2027/02/07"]), SHANGHAI, "extra_workdays[0]:", id="x"),
        pytest.param(mapping(extra_workdays=["20270207"]), SHANGHAI, "extra_workdays[0]:", id="basic"),
        pytest.param(
            mapping(extra_workdays=[datetime(2027, 2, 7, tzinfo=SH)]),
            "Asia/Shanghai",
            "extra_workdays[0]:",
            id="datetime-not-date",
        ),
        pytest.param(
            mapping(extra_holidays=["2027-02-07"], extra_workdays=["2027-02-07"]),
            "Asia/Shanghai",
            "extra_workdays: 2027-02-07",
            id="both-lists",
        ),
        pytest.param(mapping(), "Asia/Beijing", "timezone:", id="bad-zone"),
        pytest.param(mapping(), "../etc/passwd", "timezone:", id="zone-path"),
    ],
)
def test_r6_1a_from_mapping_rejects_bad_config_naming_the_key(
    config: dict[str, Any], timezone_name: str, key: str
) -> None:
    with pytest.raises(ValueError, match=r"^" + key.replace("[", r"\[").replace("]", r"\]")):
        ReplyHours.from_mapping(config, timezone=timezone_name)


def test_r6_1a_from_mapping_rejects_a_non_mapping() -> None:
    with pytest.raises(ValueError, match="expected a mapping"):
        ReplyHours.from_mapping(["seasons"])  # type: ignore[arg-type]


def test_r6_1a_season_validates_itself() -> None:
    with pytest.raises(ValueError, match="open 18:30 must be before close 08:30"):
        Season("bad", (1, 1), (12, 31), time(18, 30), time(8, 30))
    with pytest.raises(ValueError, match="start"):
        Season("bad", (2, 30), (12, 31), time(8, 30), time(18, 30))
    with pytest.raises(ValueError, match="seasons: 07-01 is not in any season"):
        ReplyHours((Season("half", (1, 1), (6, 30), time(8), time(9)),), SH)


# --------------------------------------------------------------------------- working days


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2026-12-04", True),  # Friday
        ("2026-12-05", False),  # Saturday
        ("2026-12-06", False),  # Sunday
        ("2026-02-14", True),  # Saturday, make-up working day (Spring Festival)
        ("2026-02-17", False),  # Spring Festival
        ("2026-02-28", True),  # Saturday, make-up working day
        ("2026-05-09", True),  # Saturday, make-up working day (Labour Day)
        ("2026-06-19", False),  # Dragon Boat, a Friday
        ("2026-10-01", False),
        ("2026-10-03", False),
        ("2026-10-07", False),
        ("2026-10-08", True),
        ("2026-10-10", True),  # Saturday, make-up working day (National Day)
    ],
)
def test_r6_1a_workdays_follow_chinese_calendar(day: str, expected: bool) -> None:
    assert CAL.is_workday(d(day)) is expected
    assert (CAL.window(d(day)) is not None) is expected


@pytest.mark.parametrize(
    ("day", "window"),
    [
        ("2026-04-30", ("08:30", "17:30")),  # last day of winter
        ("2026-05-06", ("08:30", "18:30")),  # summer
        ("2026-09-30", ("08:30", "18:30")),  # last day of summer
        ("2026-10-09", ("08:30", "17:30")),  # winter again
        ("2026-12-04", ("08:30", "17:30")),
    ],
)
def test_r6_1a_window_by_season(day: str, window: tuple[str, str]) -> None:
    assert CAL.window(d(day)) == (sh(f"{day} {window[0]}"), sh(f"{day} {window[1]}"))


def test_r6_1a_config_overrides_win_over_the_package() -> None:
    hours = ReplyHours.from_mapping(
        mapping(extra_holidays=["2026-12-07", "2026-02-14"], extra_workdays=["2026-12-05", "2026-10-03"])
    )
    cal = BusinessCalendar(hours)
    assert cal.is_workday(d("2026-12-07")) is False  # a Monday made a day off
    assert cal.is_workday(d("2026-02-14")) is False  # the package's make-up day cancelled
    assert cal.is_workday(d("2026-12-05")) is True  # a Saturday made a working day
    assert cal.is_workday(d("2026-10-03")) is True  # a National Day holiday made a working day
    assert cal.window(d("2026-12-05")) == (sh("2026-12-05 08:30"), sh("2026-12-05 17:30"))


@pytest.mark.parametrize(
    "day",
    [
        date.min,
        date.max,
        d("1899-12-31"),
        d("1900-01-31"),
        d("2003-12-31"),
        d("2004-01-01"),
        d("2099-12-31"),
        d("2100-02-01"),
        d("2101-06-01"),
        d("2028-02-29"),
    ],
)
def test_r6_1a_never_raises_on_any_date(day: date) -> None:
    cal = BusinessCalendar(ReplyHours.default())
    assert isinstance(cal.is_workday(day), bool)
    window = cal.window(day)
    assert window is None or window[0] < window[1]


def test_r6_1a_date_lookups_reject_datetimes() -> None:
    with pytest.raises(TypeError):
        CAL.is_workday(sh("2026-12-04 10:00"))


# --------------------------------------------------------------------------- years the package lacks


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2027-01-01", False),  # New Year's Day, a Friday
        ("2027-01-04", True),
        ("2027-01-09", False),  # Saturday: no make-up days are known
        ("2027-05-01", False),  # Labour Day (Saturday)
        ("2027-05-03", True),  # Monday: no bridge days are known
        ("2027-10-01", False),
        ("2027-10-04", True),  # beyond the three statutory days
        ("2026-12-31", True),  # still in the package
    ],
)
def test_r6_1a_fallback_year_uses_weekends_and_fixed_holidays(day: str, expected: bool) -> None:
    assert CAL.is_workday(d(day)) is expected


@pytest.mark.skipif(not LUNAR_HOLIDAYS_AVAILABLE, reason="lunardate missing: lunar festivals are left out")
@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2027-02-05", False),  # lunar New Year's Eve (Friday)
        ("2027-02-08", False),  # lunar 1/3 (Monday)
        ("2027-02-09", True),
        ("2027-04-05", False),  # Qingming (Monday)
        ("2027-06-09", False),  # Dragon Boat
        ("2027-09-15", False),  # Mid-Autumn
    ],
)
def test_r6_1a_fallback_year_includes_lunar_holidays(day: str, expected: bool) -> None:
    assert CAL.is_workday(d(day)) is expected


@pytest.mark.parametrize("year", [2025, 2026])
def test_r6_1a_fallback_holidays_agree_with_the_package_where_it_has_data(year: int) -> None:
    computed = fallback_holidays(year)
    assert len(computed) >= (13 if LUNAR_HOLIDAYS_AVAILABLE else 7) - 1  # Mid-Autumn may fall on 1–3 Oct
    assert [day for day in sorted(computed) if chinese_calendar.is_workday(day)] == []


def test_r6_1a_fallback_warns_once_per_year(warnings_logged: list[str]) -> None:
    cal = BusinessCalendar(ReplyHours.default())
    for day in ("2027-01-01", "2027-01-04", "2027-03-03", "2026-12-31", "2027-12-31"):
        cal.is_workday(d(day))
    assert cal.add_working_minutes(sh("2027-01-01 09:00"), 120) == sh("2027-01-04 10:30")
    assert len(warnings_logged) == 1
    assert "2027" in warnings_logged[0]
    assert "make-up working days (调休)" in warnings_logged[0]
    cal.is_workday(d("2028-06-01"))
    assert len(warnings_logged) == 2
    assert "2028" in warnings_logged[1]


def test_r6_1a_fallback_year_with_configured_schedule() -> None:
    hours = ReplyHours.from_mapping(mapping(extra_workdays=["2027-02-07"], extra_holidays=["2027-02-10"]))
    cal = BusinessCalendar(hours)
    assert cal.is_workday(d("2027-02-07")) is True  # a Sunday make-up day from the State Council
    assert cal.is_workday(d("2027-02-10")) is False


def test_r6_1a_no_working_day_in_three_years_raises_a_clear_error() -> None:
    start = d("2030-01-01")
    days = [(start + timedelta(days=i)).isoformat() for i in range(MAX_IDLE_DAYS + 10)]
    cal = BusinessCalendar(ReplyHours.from_mapping(mapping(extra_holidays=days)))
    with pytest.raises(CalendarError, match="no reply hours"):
        cal.add_working_minutes(sh("2030-01-01 09:00"), 60)
    with pytest.raises(CalendarError):
        cal.next_opening(sh("2030-01-01 09:00"))


def test_r6_1a_past_year_9999_raises_a_clear_error() -> None:
    with pytest.raises(CalendarError):
        CAL.add_working_minutes(datetime(9999, 12, 31, 12, tzinfo=SH), 24 * 60)


# --------------------------------------------------------------------------- instants


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (sh("2026-12-04 08:29:59.999999"), False),
        (sh("2026-12-04 08:30"), True),
        (sh("2026-12-04 12:00"), True),
        (sh("2026-12-04 17:30"), True),  # closing instant counts as open
        (sh("2026-12-04 17:30:00.000001"), False),
        (sh("2026-12-05 10:00"), False),  # Saturday
        (sh("2026-02-14 10:00"), True),  # make-up Saturday
        (datetime(2026, 12, 4, 0, 30, tzinfo=UTC), True),  # 08:30 in Shanghai
        (datetime(2026, 12, 4, 0, 29, tzinfo=UTC), False),
        (datetime(2026, 12, 3, 19, 30, tzinfo=timezone(timedelta(hours=-5))), True),  # Fri 08:30 +08
    ],
)
def test_r6_1a_is_open(instant: datetime, expected: bool) -> None:
    assert CAL.is_open(instant) is expected


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (sh("2026-12-04 10:00"), sh("2026-12-04 10:00")),
        (sh("2026-12-04 17:30"), sh("2026-12-04 17:30")),
        (sh("2026-12-04 17:31"), sh("2026-12-07 08:30")),
        (sh("2026-12-04 06:00"), sh("2026-12-04 08:30")),
        (sh("2026-10-01 00:00"), sh("2026-10-08 08:30")),
        (sh("2026-10-09 18:00"), sh("2026-10-10 08:30")),  # make-up Saturday
        (datetime(2026, 12, 4, 2, 0, tzinfo=UTC), sh("2026-12-04 10:00")),
    ],
)
def test_r6_1b_next_opening(instant: datetime, expected: datetime) -> None:
    result = CAL.next_opening(instant)
    assert result == expected
    assert result.tzinfo == SH


@pytest.mark.parametrize(
    ("start", "minutes", "expected"),
    [
        (sh("2026-12-04 10:00"), 0, sh("2026-12-04 10:00")),
        (sh("2026-12-04 22:00"), 0, sh("2026-12-07 08:30")),
        (sh("2026-12-04 10:00"), 60, sh("2026-12-04 11:00")),
        (sh("2026-12-04 16:30"), 60, sh("2026-12-04 17:30")),  # lands on closing time: stays there
        (sh("2026-12-04 16:30"), 61, sh("2026-12-07 08:31")),
        (sh("2026-12-04 17:30"), 1, sh("2026-12-07 08:31")),
        (sh("2026-12-03 08:30"), 540, sh("2026-12-03 17:30")),  # one whole winter day, due at close
        (sh("2026-12-03 08:30"), 541, sh("2026-12-04 08:31")),
        (sh("2026-09-30 17:00"), 120, sh("2026-10-08 09:00")),  # summer close, then National Day
        (sh("2026-12-04 10:00:30.5"), 120, sh("2026-12-04 12:00:30.5")),
    ],
)
def test_r6_1b_add_working_minutes(start: datetime, minutes: int, expected: datetime) -> None:
    result = CAL.add_working_minutes(start, minutes)
    assert result == expected
    assert result.tzinfo == SH
    assert CAL.working_minutes_between(start, result) == minutes


@pytest.mark.parametrize(
    ("a", "b", "minutes"),
    [
        (sh("2026-12-04 17:00"), sh("2026-12-07 09:00"), 60.0),
        (sh("2026-12-07 09:00"), sh("2026-12-04 17:00"), -60.0),
        (sh("2026-12-04 10:00"), sh("2026-12-04 10:00"), 0.0),
        (sh("2026-12-05 10:00"), sh("2026-12-06 10:00"), 0.0),  # weekend
        (sh("2026-12-04 10:00"), sh("2026-12-04 10:00:30"), 0.5),
        (sh("2026-12-03 08:30"), sh("2026-12-10 08:30"), 5 * 540.0),
        (sh("2026-09-30 00:00"), sh("2026-10-09 00:00"), 600.0 + 540.0),  # summer day + winter Thu 10-08
        (datetime(2026, 12, 4, 1, tzinfo=UTC), sh("2026-12-04 10:00"), 60.0),
    ],
)
def test_r6_1b_working_minutes_between(a: datetime, b: datetime, minutes: float) -> None:
    assert CAL.working_minutes_between(a, b) == minutes


def test_naive_datetimes_are_rejected() -> None:
    naive = sh("2026-12-04 10:00").replace(tzinfo=None)
    aware = sh("2026-12-04 10:00")
    with pytest.raises(ValueError, match="naive"):
        CAL.is_open(naive)
    with pytest.raises(ValueError, match="naive"):
        CAL.next_opening(naive)
    with pytest.raises(ValueError, match="naive"):
        CAL.add_working_minutes(naive, 10)
    with pytest.raises(ValueError, match="naive"):
        CAL.working_minutes_between(aware, naive)


def test_add_working_minutes_rejects_negative_and_non_int_minutes() -> None:
    with pytest.raises(ValueError, match="negative"):
        CAL.add_working_minutes(sh("2026-12-04 10:00"), -1)
    with pytest.raises(TypeError):
        CAL.add_working_minutes(sh("2026-12-04 10:00"), 1.5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- properties

_LOW = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
_HIGH = int(datetime(2029, 1, 1, tzinfo=UTC).timestamp())
_ZONES = [
    UTC,
    SH,
    ZoneInfo("America/New_York"),
    timezone(timedelta(hours=-3, minutes=-30)),
    timezone(timedelta(hours=14)),
]


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    """Aware instants 2025–2028 (package data and fallback years), in assorted zones and offsets."""
    seconds = draw(st.integers(_LOW, _HIGH))
    micros = draw(st.sampled_from([0, 0, 0, 1, 500_000, 999_999]))
    instant = datetime.fromtimestamp(seconds, tz=UTC) + timedelta(microseconds=micros)
    return instant.astimezone(draw(st.sampled_from(_ZONES)))


minutes_st = st.integers(0, 3000)
PROPERTY = settings(max_examples=75, deadline=None)


@PROPERTY
@given(start=instants(), minutes=minutes_st)
def test_r6_1b_deadline_is_never_before_receipt_and_falls_in_reply_hours(
    start: datetime, minutes: int
) -> None:
    due = CAL.add_working_minutes(start, minutes)
    assert due >= start
    assert due.tzinfo == SH
    assert CAL.is_open(due)
    assert CAL.is_workday(due.date())
    window = CAL.window(due.date())
    assert window is not None and window[0] <= due <= window[1]


@PROPERTY
@given(start=instants(), minutes=minutes_st)
def test_r6_1b_working_minutes_between_inverts_add(start: datetime, minutes: int) -> None:
    assert CAL.working_minutes_between(start, CAL.add_working_minutes(start, minutes)) == minutes


@PROPERTY
@given(a=instants(), b=instants(), minutes=minutes_st)
def test_r6_1b_add_working_minutes_is_monotonic_in_start(a: datetime, b: datetime, minutes: int) -> None:
    early, late = sorted((a, b))
    assert CAL.add_working_minutes(early, minutes) <= CAL.add_working_minutes(late, minutes)


@PROPERTY
@given(start=instants(), m1=minutes_st, m2=minutes_st)
def test_r6_1b_add_working_minutes_is_monotonic_in_minutes(start: datetime, m1: int, m2: int) -> None:
    low, high = sorted((m1, m2))
    assert CAL.add_working_minutes(start, low) <= CAL.add_working_minutes(start, high)


@PROPERTY
@given(a=instants(), b=instants())
def test_r6_1b_working_minutes_between_is_antisymmetric_and_bounded(a: datetime, b: datetime) -> None:
    forward = CAL.working_minutes_between(a, b)
    assert forward == -CAL.working_minutes_between(b, a)
    assert abs(forward) <= abs((b - a) / timedelta(minutes=1))
    assert (forward >= 0) == (b >= a) or forward == 0
