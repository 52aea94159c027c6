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
    # The publishing desk (R4.1, R5.1–R5.3). The office's reviewer is a head of REVIEW_DEPARTMENT; a bureau
    # leader signs in with the supervisor role; the information centre proofreads, plans and publishes.
    "desk": frozenset(ROLES),  # see posts (scoped by department below)
    "draft": frozenset({"staff", "head", "info_center"}),  # write, attach media, submit, fill the secrecy form
    "review": frozenset({"head"}),  # the four checks of R5.1 — only in the office (PERMISSION_DEPARTMENTS)
    "approve": frozenset({"supervisor"}),  # a leader approves posts and secrecy forms (R5.1, R5.2)
    "publish": frozenset({"info_center"}),  # proofread, plan pushes, publish (R4.4)
    "return": frozenset({"supervisor", "info_center"}),  # send a post back: at approval, or at proofreading
    "register": frozenset({"info_center", "supervisor", "admin"}),  # the publication register (R5.3)
}
REVIEW_DEPARTMENT = "office"  # 局办公室 screens every item (R5.1)
# A department role holds these permissions only in the named department.
PERMISSION_DEPARTMENTS: dict[str, str] = {"review": REVIEW_DEPARTMENT}


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
        if permission in PERMISSION_DEPARTMENTS and self.role in DEPARTMENT_ROLES \
                and self.department != PERMISSION_DEPARTMENTS[permission]:
            return False
        return self.role in PERMISSIONS[permission]

    def sees_post(self, department: str) -> bool:
        """A post of `department`: its own department, the office's reviewer, and the bureau-wide roles."""
        return self.sees_all or department == self.department or self.may("review")

    def sees(self, inquiry: Inquiry) -> bool:
        return self.sees_all or inquiry.department == self.department


def scoped(query: Select, actor: Actor) -> Select:  # type: ignore[type-arg]
    """Limit an inquiry query to what `actor` may see."""
    return query if actor.sees_all else query.where(Inquiry.department == actor.department)
