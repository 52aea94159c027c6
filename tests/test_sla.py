"""escalation.sla: first-response deadlines, routine (R6.1b) and critical (R6.1d)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalation.calendar import BusinessCalendar, ReplyHours
from escalation.sla import SlaPolicy, first_response_due

SH = ZoneInfo("Asia/Shanghai")
CAL = BusinessCalendar(ReplyHours.default())
POLICY = SlaPolicy()


def sh(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        pytest.param(sh("2026-12-04 17:45"), sh("2026-12-07 10:30"), id="winter-friday-after-close"),
        pytest.param(sh("2026-12-03 16:30"), sh("2026-12-04 09:30"), id="winter-thursday-1h-left"),
        pytest.param(sh("2026-06-10 10:00"), sh("2026-06-10 12:00"), id="summer-weekday-morning"),
        pytest.param(sh("2026-06-10 17:30"), sh("2026-06-11 09:30"), id="summer-1h-before-close"),
        pytest.param(sh("2026-06-10 16:30"), sh("2026-06-10 18:30"), id="summer-due-at-close"),
        pytest.param(sh("2026-06-18 17:30"), sh("2026-06-22 09:30"), id="summer-before-dragon-boat"),
        pytest.param(sh("2026-02-14 09:00"), sh("2026-02-14 11:00"), id="make-up-saturday"),
        pytest.param(sh("2026-10-03 10:00"), sh("2026-10-08 10:30"), id="national-day"),
        pytest.param(sh("2026-10-09 17:00"), sh("2026-10-10 10:00"), id="into-make-up-saturday"),
        pytest.param(sh("2026-12-05 11:00"), sh("2026-12-07 10:30"), id="winter-saturday"),
        pytest.param(sh("2026-12-04 07:00"), sh("2026-12-04 10:30"), id="before-opening"),
        pytest.param(sh("2026-12-31 16:30"), sh("2027-01-04 09:30"), id="into-fallback-year"),
    ],
)
def test_r6_1b_routine_reply_within_two_working_hours(received: datetime, due: datetime) -> None:
    result = first_response_due(received, "routine", POLICY, CAL)
    assert result == due
    assert result.utcoffset() == timedelta(hours=8)
    assert result.tzinfo == SH


@pytest.mark.parametrize(
    "received",
    [
        pytest.param(datetime(2026, 12, 4, 9, 45, tzinfo=UTC), id="utc"),
        pytest.param(datetime.fromisoformat("2026-12-04T09:45:00Z"), id="Z"),
        pytest.param(datetime.fromisoformat("2026-12-04T09:45:00+00:00"), id="+00:00"),
        pytest.param(datetime(2026, 12, 4, 4, 45, tzinfo=timezone(timedelta(hours=-5))), id="-05:00"),
    ],
)
def test_r6_1b_any_offset_gives_the_same_instant(received: datetime) -> None:
    result = first_response_due(received, "routine", POLICY, CAL)
    assert result == sh("2026-12-07 10:30")
    assert result.tzinfo == SH
    assert result.isoformat() == "2026-12-07T10:30:00+08:00"


def test_r6_1b_config_overrides_move_the_deadline() -> None:
    days_off = BusinessCalendar(ReplyHours.from_mapping(_mapping(extra_holidays=["2026-12-07"])))
    assert first_response_due(sh("2026-12-04 17:45"), "routine", POLICY, days_off) == sh("2026-12-08 10:30")
    saturday_on = BusinessCalendar(ReplyHours.from_mapping(_mapping(extra_workdays=["2026-12-05"])))
    due = first_response_due(sh("2026-12-04 17:45"), "routine", POLICY, saturday_on)
    assert due == sh("2026-12-05 10:30")


def test_r6_1b_fallback_year_2027() -> None:
    # 2027-01-01 (Friday) is New Year's Day even without the package's data.
    assert first_response_due(sh("2027-01-01 09:00"), "routine", POLICY, CAL) == sh("2027-01-04 10:30")
    assert first_response_due(sh("2027-03-03 10:00"), "routine", POLICY, CAL) == sh("2027-03-03 12:00")


def test_r6_1b_custom_policy() -> None:
    policy = SlaPolicy(routine_working_minutes=30, critical_wall_minutes=15)
    assert first_response_due(sh("2026-12-04 17:15"), "routine", policy, CAL) == sh("2026-12-07 08:45")
    assert first_response_due(sh("2026-12-04 17:15"), "critical", policy, CAL) == sh("2026-12-04 17:30")


@pytest.mark.parametrize(
    ("received", "due"),
    [
        pytest.param(sh("2026-10-02 02:00"), sh("2026-10-02 03:00"), id="holiday-night"),
        pytest.param(sh("2026-12-05 23:30"), sh("2026-12-06 00:30"), id="saturday-midnight"),
        pytest.param(sh("2026-12-04 10:00"), sh("2026-12-04 11:00"), id="working-hours"),
        pytest.param(datetime(2026, 10, 1, 18, 0, tzinfo=UTC), sh("2026-10-02 03:00"), id="utc-input"),
        pytest.param(sh("2027-02-06 02:00"), sh("2027-02-06 03:00"), id="fallback-year"),
    ],
)
def test_r6_1d_critical_within_one_wall_clock_hour(received: datetime, due: datetime) -> None:
    result = first_response_due(received, "critical", POLICY, CAL)
    assert result == due
    assert result.tzinfo == SH


def test_r6_1d_critical_is_elapsed_time_across_a_dst_change() -> None:
    ny = ZoneInfo("America/New_York")
    cal = BusinessCalendar(ReplyHours.from_mapping(_mapping(), timezone="America/New_York"))
    received = datetime(2026, 3, 8, 1, 30, tzinfo=ny)  # clocks jump 02:00 → 03:00
    due = first_response_due(received, "critical", POLICY, cal)
    assert due == datetime(2026, 3, 8, 3, 30, tzinfo=ny)
    # (subtracting two datetimes with the same ZoneInfo would give wall-clock time: compare in UTC)
    assert due.astimezone(UTC) - received.astimezone(UTC) == timedelta(hours=1)


class Severity(StrEnum):
    ROUTINE = "routine"
    CRITICAL = "critical"


def test_severity_strenum_is_accepted() -> None:
    critical = first_response_due(sh("2026-10-02 02:00"), Severity.CRITICAL, POLICY, CAL)
    assert critical == sh("2026-10-02 03:00")
    routine = first_response_due(sh("2026-12-04 10:00"), Severity.ROUTINE, POLICY, CAL)
    assert routine == sh("2026-12-04 12:00")


@pytest.mark.parametrize("severity", ["urgent", "Routine", "", "CRITICAL"])
def test_unknown_severity_is_rejected(severity: str) -> None:
    with pytest.raises(ValueError, match="severity"):
        first_response_due(sh("2026-12-04 10:00"), severity, POLICY, CAL)


@pytest.mark.parametrize("severity", ["routine", "critical"])
def test_naive_received_at_is_rejected(severity: str) -> None:
    with pytest.raises(ValueError, match="naive"):
        first_response_due(sh("2026-12-04 10:00").replace(tzinfo=None), severity, POLICY, CAL)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"routine_working_minutes": 0},
        {"critical_wall_minutes": -5},
        {"routine_working_minutes": 1.5},
        {"critical_wall_minutes": True},
    ],
)
def test_sla_policy_validates(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SlaPolicy(**kwargs)  # type: ignore[arg-type]


_LOW = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
_HIGH = int(datetime(2029, 1, 1, tzinfo=UTC).timestamp())


@settings(max_examples=75, deadline=None)
@given(seconds=st.integers(_LOW, _HIGH), offset_minutes=st.integers(-12 * 60, 14 * 60))
def test_r6_1b_r6_1d_deadlines_are_after_receipt(seconds: int, offset_minutes: int) -> None:
    received = datetime.fromtimestamp(seconds, tz=timezone(timedelta(minutes=offset_minutes)))
    routine = first_response_due(received, "routine", POLICY, CAL)
    critical = first_response_due(received, "critical", POLICY, CAL)
    assert routine >= received + timedelta(hours=2)  # 120 working minutes take at least 2 real hours
    assert CAL.working_minutes_between(received, routine) == 120
    assert CAL.is_open(routine)
    assert critical - received == timedelta(hours=1)
    assert critical.tzinfo == SH


def _mapping(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "seasons": [
            {"name": "summer", "start": "05-01", "end": "09-30", "open": "08:30", "close": "18:30"},
            {"name": "winter", "start": "10-01", "end": "04-30", "open": "08:30", "close": "17:30"},
        ],
    }
    base.update(overrides)
    return base
