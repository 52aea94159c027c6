"""Who may do what: roles, permissions and department isolation, decided here and nowhere else.

staff and head act on their own department's inquiries only; info_center, supervisor and admin
see every department. An inquiry outside a user's sight is "not found" (404), never "forbidden",
so its existence does not leak.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select

from bot.storage import Inquiry

ROLES = ("staff", "head", "info_center", "supervisor", "admin")
DEPARTMENT_ROLES = ("staff", "head")
ROLE_NAMES = {
    "staff": "经办人", "head": "部门负责人", "info_center": "信息中心", "supervisor": "督办", "admin": "管理员",
}

# permission → roles holding it
PERMISSIONS: dict[str, frozenset[str]] = {
    "view": frozenset(ROLES),  # the queue and inquiry pages (scoped by department below)
    "answer": frozenset({"staff", "head", "info_center", "admin"}),
    "transfer": frozenset({"staff", "head", "info_center", "admin"}),
    "close": frozenset({"staff", "head", "info_center", "admin"}),  # spam / duplicate, with a reason
    "override_screening": frozenset({"head", "info_center", "admin"}),
    "board": frozenset({"head", "info_center", "supervisor", "admin"}),
    "overview": frozenset({"info_center", "supervisor", "admin"}),
    "chase": frozenset({"info_center", "admin"}),
    "report": frozenset({"info_center", "supervisor", "admin"}),  # the monthly operations report (R4.5)
}


@dataclass(frozen=True)
class Actor:
    id: int
    name: str
    role: str
    department: str | None

    @property
    def sees_all(self) -> bool:
        return self.role not in DEPARTMENT_ROLES

    def may(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]

    def sees(self, inquiry: Inquiry) -> bool:
        return self.sees_all or inquiry.department == self.department


def scoped(query: Select, actor: Actor) -> Select:  # type: ignore[type-arg]
    """Limit an inquiry query to what `actor` may see."""
    return query if actor.sees_all else query.where(Inquiry.department == actor.department)
