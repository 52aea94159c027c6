"""Reminders (催办, R7.3b) and the escalation ladder (逐级上报, R6.1d), as a plan of timed alerts.

Pure: given an inquiry's clock (when its current cycle started, when it is due, how severe) and
the policy, `plan` lists every alert the inquiry will need if nobody answers, each with the instant
it fires and a stable key. The scheduler stores alerts by key, so a plan can be recomputed any
number of times (after a restart, after a reload) without sending anything twice.

Routine inquiries live on working time: reminders at fractions of the allowed working minutes, rung
2 at the deadline, each later rung after the previous rung's timeout in working minutes, so an
overdue routine item waits for the morning. Critical inquiries live on wall-clock time and start at
rung 2 at once; they never wait for office hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from escalation.calendar import BusinessCalendar, to_utc
from escalation.sla import CRITICAL, ROUTINE

REMINDER, ESCALATION = "reminder", "escalation"


@dataclass(frozen=True)
class Rung:
    level: int
    name: str  # shown to people: 经办人, 部门负责人, 信息中心/办公室, 局领导
    notify: tuple[str, ...]  # contact roles alerted at this rung
    timeout_minutes: int = 0  # routine: working minutes this rung has before the next is alerted
    critical_timeout_minutes: int = 0  # critical: wall-clock minutes


@dataclass(frozen=True)
class LadderPolicy:
    rungs: tuple[Rung, ...]
    reminder_fractions: tuple[float, ...] = (0.5, 0.8)
    reminder_roles: tuple[str, ...] = ("department_staff",)
    critical_start_level: int = 2

    def __post_init__(self) -> None:
        levels = [r.level for r in self.rungs]
        if levels != list(range(1, len(levels) + 1)):
            raise ValueError("rungs: levels must be 1, 2, 3, ... in order")
        if not any(r.level == self.critical_start_level for r in self.rungs):
            raise ValueError(f"critical_start_level: no rung {self.critical_start_level}")
        if any(not 0 < f < 1 for f in self.reminder_fractions):
            raise ValueError("reminders_at: each fraction must be between 0 and 1")

    def rung(self, level: int) -> Rung:
        return self.rungs[level - 1]


@dataclass(frozen=True)
class InquiryClock:
    severity: str
    cycle: int  # 1 for the first question; +1 each time a follow-up reopens an answered inquiry
    started_at: datetime  # when this cycle's clock started (receipt or reopening)
    due_at: datetime


@dataclass(frozen=True)
class PlannedAlert:
    key: str  # stable: "c1:reminder:50", "c1:rung:3"
    kind: str  # REMINDER or ESCALATION
    level: int | None  # the rung, for escalations
    fire_at: datetime
    roles: tuple[str, ...]


def plan(clock: InquiryClock, policy: LadderPolicy, calendar: BusinessCalendar) -> list[PlannedAlert]:
    """Every alert this cycle needs if nobody answers, in firing order."""
    if clock.severity not in (ROUTINE, CRITICAL):
        raise ValueError(f"severity: unknown severity {clock.severity!r}")
    critical = clock.severity == CRITICAL
    start, due = to_utc(clock.started_at, "started_at"), to_utc(clock.due_at, "due_at")
    prefix = f"c{clock.cycle}"
    alerts: list[PlannedAlert] = []

    if critical:
        allowed = (due - start).total_seconds() / 60
        for fraction in policy.reminder_fractions:
            alerts.append(PlannedAlert(f"{prefix}:reminder:{round(fraction * 100)}", REMINDER, None,
                                       start + timedelta(minutes=allowed * fraction), policy.reminder_roles))
    else:
        allowed = calendar.working_minutes_between(start, due)
        for fraction in policy.reminder_fractions:
            fire = calendar.add_working_minutes(start, round(allowed * fraction))
            alerts.append(PlannedAlert(f"{prefix}:reminder:{round(fraction * 100)}", REMINDER, None,
                                       to_utc(fire), policy.reminder_roles))

    # The first escalation: critical ones at once (R6.1d), routine ones when the deadline passes.
    level = policy.critical_start_level if critical else 2
    fire_at = start if critical else due
    while level <= len(policy.rungs):
        rung = policy.rung(level)
        alerts.append(PlannedAlert(f"{prefix}:rung:{level}", ESCALATION, level, fire_at, rung.notify))
        if critical:
            fire_at = fire_at + timedelta(minutes=rung.critical_timeout_minutes)
        else:
            fire_at = to_utc(calendar.add_working_minutes(fire_at, rung.timeout_minutes))
        level += 1
    alerts.sort(key=lambda a: (a.fire_at, a.key))
    return alerts


def due_now(alerts: list[PlannedAlert], now: datetime, already: set[str]) -> list[PlannedAlert]:
    """The alerts whose time has come and that were not recorded yet."""
    at = to_utc(now, "now")
    return [a for a in alerts if a.fire_at <= at and a.key not in already]


def next_fire_at(alerts: list[PlannedAlert], now: datetime, already: set[str]) -> datetime | None:
    at = to_utc(now, "now")
    pending = [a.fire_at for a in alerts if a.fire_at > at and a.key not in already]
    return min(pending) if pending else None
