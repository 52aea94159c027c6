"""Record ids that come from outside: URL paths, form fields, JSON bodies, the command line.

Every table's id is an `Integer` primary key: 64-bit in SQLite but 32-bit (serial) in PostgreSQL.
A number outside 1…2³¹−1 names no record on either, and handing it to the driver fails (SQLite:
"Python int too large to convert to SQLite INTEGER"; asyncpg: "value out of int32 range"), so callers
parse with `record_id` and treat None as "no such record" (404), or as a bad field (400) for a value
in a request body. The one bound for both databases keeps their answers alike.
"""

from __future__ import annotations

from collections.abc import Iterable

ID_MAX = 2**31 - 1  # PostgreSQL INTEGER (SQLite's is 64-bit, but no row of ours gets past this one)


def record_id(value: object) -> int | None:
    """`value` as the id of a record that could exist, or None.

    Accepts an int (not a bool) or a string of ASCII digits; anything else, and any number outside
    1…ID_MAX, is None.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 12:
            return None
        value = int(text)
    if not isinstance(value, int):
        return None
    return value if 0 < value <= ID_MAX else None


def record_ids(values: Iterable[object]) -> list[int] | None:
    """Every value as a record id (`record_id`), or None when any of them is not one."""
    found = [record_id(value) for value in values]
    return None if None in found else [value for value in found if value is not None]
