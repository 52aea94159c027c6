"""First-response deadlines (rules R6.1b and R6.1d). Pure: the calendar and times are arguments.

- routine (R6.1b): `routine_working_minutes` of reply hours from receipt; a message that arrives
  outside reply hours starts its clock at the next opening.
- critical (R6.1d): `critical_wall_minutes` of wall-clock (elapsed) time, nights and holidays included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from escalation.calendar import BusinessCalendar, to_utc

__all__ = ["CRITICAL", "ROUTINE", "SEVERITIES", "SlaPolicy", "first_response_due"]

ROUTINE = "routine"
CRITICAL = "critical"
SEVERITIES = (ROUTINE, CRITICAL)


@dataclass(frozen=True)
class SlaPolicy:
    """Minutes to the first answer, by severity (config.yaml ``sla``)."""

    routine_working_minutes: int = 120
    critical_wall_minutes: int = 60

    def __post_init__(self) -> None:
        for name in ("routine_working_minutes", "critical_wall_minutes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive whole number of minutes, got {value!r}")


def first_response_due(
    received_at: datetime, severity: str, policy: SlaPolicy, calendar: BusinessCalendar
) -> datetime:
    """When the first answer to a message received at `received_at` is due, in the calendar's zone.

    `severity` is "routine" or "critical" (a StrEnum with those values works too); anything else, or
    a naive `received_at`, raises ValueError.
    """
    if severity == ROUTINE:
        return calendar.add_working_minutes(received_at, policy.routine_working_minutes)
    if severity == CRITICAL:
        # Elapsed time: add in UTC so a DST change in the configured zone cannot shift it.
        due = to_utc(received_at, "received_at") + timedelta(minutes=policy.critical_wall_minutes)
        return due.astimezone(calendar.tz)
    raise ValueError(f"severity: unknown severity {severity!r} (expected one of {', '.join(SEVERITIES)})")
