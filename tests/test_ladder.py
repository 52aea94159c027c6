"""The reminder and escalation plan (R6.1d 逐级上报, R7.3b 催办): pure, table-driven, no database."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.alerts import ladder_policy
from bot.config import Settings
from escalation.calendar import BusinessCalendar
from escalation.ladder import InquiryClock, LadderPolicy, Rung, due_now, next_fire_at, plan
from escalation.sla import first_response_due
from tests.conftest import shanghai


@pytest.fixture
def calendar(settings: Settings) -> BusinessCalendar:
    return BusinessCalendar(settings.reply_hours)


@pytest.fixture
def policy(settings: Settings) -> LadderPolicy:
    return ladder_policy(settings)


def schedule(received: datetime, severity: str, settings: Settings, calendar: BusinessCalendar,
             policy: LadderPolicy) -> dict[str, datetime]:
    due = first_response_due(received, severity, settings.sla, calendar)
    steps = plan(InquiryClock(severity, 1, received, due), policy, calendar)
    return {step.key: step.fire_at.astimezone(calendar.tz) for step in steps}


@pytest.mark.parametrize(
    ("name", "received", "expected"),
    [
        ("friday evening waits for monday", shanghai(2026, 12, 4, 17, 45), {
            "c1:reminder:50": shanghai(2026, 12, 7, 9, 30), "c1:reminder:80": shanghai(2026, 12, 7, 10, 6),
            "c1:rung:2": shanghai(2026, 12, 7, 10, 30), "c1:rung:3": shanghai(2026, 12, 7, 11, 30),
            "c1:rung:4": shanghai(2026, 12, 7, 13, 30)}),
        ("make-up saturday is a working day", shanghai(2026, 2, 14, 9, 0), {
            "c1:reminder:50": shanghai(2026, 2, 14, 10, 0), "c1:reminder:80": shanghai(2026, 2, 14, 10, 36),
            "c1:rung:2": shanghai(2026, 2, 14, 11, 0), "c1:rung:3": shanghai(2026, 2, 14, 12, 0),
            "c1:rung:4": shanghai(2026, 2, 14, 14, 0)}),
        ("national day week waits for the 8th", shanghai(2026, 10, 3, 10, 0), {
            "c1:reminder:50": shanghai(2026, 10, 8, 9, 30), "c1:reminder:80": shanghai(2026, 10, 8, 10, 6),
            "c1:rung:2": shanghai(2026, 10, 8, 10, 30), "c1:rung:3": shanghai(2026, 10, 8, 11, 30),
            "c1:rung:4": shanghai(2026, 10, 8, 13, 30)}),
        ("the day before 1 May crosses into summer hours", shanghai(2026, 4, 30, 17, 0), {
            "c1:reminder:50": shanghai(2026, 5, 6, 9, 0), "c1:reminder:80": shanghai(2026, 5, 6, 9, 36),
            "c1:rung:2": shanghai(2026, 5, 6, 10, 0), "c1:rung:3": shanghai(2026, 5, 6, 11, 0),
            "c1:rung:4": shanghai(2026, 5, 6, 13, 0)}),
    ],
)
def test_r6_1b_r7_3b_routine_plan_lives_on_working_time(
    name: str, received: datetime, expected: dict[str, datetime], settings: Settings,
    calendar: BusinessCalendar, policy: LadderPolicy,
) -> None:
    assert schedule(received, "routine", settings, calendar, policy) == expected


def test_r6_1d_critical_at_2330_on_saturday_starts_at_rung_two_at_once(
    settings: Settings, calendar: BusinessCalendar, policy: LadderPolicy
) -> None:
    plan_ = schedule(shanghai(2026, 12, 5, 23, 30), "critical", settings, calendar, policy)
    assert plan_ == {
        "c1:rung:2": shanghai(2026, 12, 5, 23, 30),  # the department head, at once, at night
        "c1:reminder:50": shanghai(2026, 12, 6, 0, 0),
        "c1:rung:3": shanghai(2026, 12, 6, 0, 0),
        "c1:reminder:80": shanghai(2026, 12, 6, 0, 18),
        "c1:rung:4": shanghai(2026, 12, 6, 0, 30),
    }
    assert "c1:rung:1" not in plan_


def test_r7_3b_due_now_skips_what_was_recorded_and_next_fire_is_the_earliest_open(
    settings: Settings, calendar: BusinessCalendar, policy: LadderPolicy
) -> None:
    received = shanghai(2026, 12, 3, 10, 0)
    steps = plan(InquiryClock("routine", 1, received, shanghai(2026, 12, 3, 12, 0)), policy, calendar)
    now = shanghai(2026, 12, 3, 11, 40)
    assert [s.key for s in due_now(steps, now, set())] == ["c1:reminder:50", "c1:reminder:80"]
    assert [s.key for s in due_now(steps, now, {"c1:reminder:50"})] == ["c1:reminder:80"]
    assert next_fire_at(steps, now, set()) == shanghai(2026, 12, 3, 12, 0)
    assert next_fire_at(steps, shanghai(2026, 12, 3, 16, 0), set()) is None  # rung 4 was the last


def test_a_new_cycle_has_its_own_keys(calendar: BusinessCalendar, policy: LadderPolicy) -> None:
    first = plan(InquiryClock("routine", 1, shanghai(2026, 12, 3, 10), shanghai(2026, 12, 3, 12)), policy, calendar)
    second = plan(InquiryClock("routine", 2, shanghai(2026, 12, 3, 14), shanghai(2026, 12, 3, 16)), policy, calendar)
    assert not {s.key for s in first} & {s.key for s in second}


@pytest.mark.parametrize(
    ("rungs", "fractions", "start", "message"),
    [
        ((Rung(1, "a", ("leader",)), Rung(3, "b", ("leader",))), (0.5,), 1, "levels"),
        ((Rung(1, "a", ("leader",)),), (0.5,), 2, "critical_start_level"),
        ((Rung(1, "a", ("leader",)), Rung(2, "b", ("leader",))), (1.5,), 2, "between 0 and 1"),
    ],
)
def test_policy_validation(rungs: tuple[Rung, ...], fractions: tuple[float, ...], start: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LadderPolicy(rungs, fractions, critical_start_level=start)
