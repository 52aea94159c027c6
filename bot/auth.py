"""Console accounts: argon2 passwords, server-side sessions, login throttling, the audit log.

Sessions live in the database, so disabling a user ends every session of theirs at once (R4.2) in
every worker. The browser keeps a random token in an HttpOnly cookie; scripts send the same token
as a bearer token. Only the token's SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.access import DEPARTMENT_ROLES, ROLES, Actor
from bot.storage import AuditEntry, SessionRecord, User

SESSION_LIFETIME = timedelta(hours=12)
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 10
_NAME = re.compile(r"[A-Za-z0-9_.\-\u4e00-\u9fff]{2,64}")
_hasher = PasswordHasher()
# Verified against when the user does not exist, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A user-management request that cannot be done; the message says why."""


@dataclass(frozen=True)
class LoginResult:
    actor: Actor | None
    token: str | None = None
    csrf_token: str | None = None
    problem: str | None = None  # for the log; the person is told only "用户名或密码错误" or "稍后再试"


def _utf8(text: str) -> bytes:
    # surrogatepass: a header or JSON string can hold lone surrogates; such a token or password is just wrong.
    return text.encode("utf-8", "surrogatepass")


def _is_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def token_id(token: str) -> str:
    return hashlib.sha256(_utf8(token)).hexdigest()


def actor_of(user: User) -> Actor:
    return Actor(user.id, user.name, user.role, user.department)


async def audit(session: AsyncSession, *, at: datetime, actor: str, action: str, target: str,
                remote: str = "", **detail: Any) -> None:
    session.add(AuditEntry(at=at, actor=actor, action=action, target=target, detail=detail, remote=remote))


async def add_user(session: AsyncSession, *, name: str, role: str, department: str | None, password: str,
                   departments: list[str], now: datetime, by: str = "cli") -> User:
    if not _NAME.fullmatch(name):
        raise AccountError("NAME: 2–64 letters, digits, Chinese characters, '.', '_' or '-'")
    if role not in ROLES:
        raise AccountError(f"--role: one of {', '.join(ROLES)}")
    if role in DEPARTMENT_ROLES and department not in departments:
        raise AccountError(f"--department: {role} needs one of {', '.join(departments)}")
    if role not in DEPARTMENT_ROLES and department is not None:
        raise AccountError(f"--department: a {role} sees every department; leave it out")
    _check_password(password)
    if await session.scalar(select(User.id).where(User.name == name)) is not None:
        raise AccountError(f"NAME: user {name!r} exists")
    user = User(name=name, role=role, department=department, password_hash=_hasher.hash(password),
                disabled=False, created_at=now, failed_logins=0)
    session.add(user)
    await audit(session, at=now, actor=by, action="user.add", target=f"user:{name}", role=role,
                department=department)
    return user


async def disable_user(session: AsyncSession, name: str, *, now: datetime, by: str = "cli") -> int:
    """Disable `name` and revoke all its sessions at once. Returns how many sessions ended."""
    user = await _existing(session, name)
    user.disabled = True
    ended = await _end_sessions(session, user)
    await audit(session, at=now, actor=by, action="user.disable", target=f"user:{name}", sessions_ended=ended)
    return ended


async def enable_user(session: AsyncSession, name: str, *, now: datetime, by: str = "cli") -> None:
    """Let a disabled account sign in again (its old sessions stay ended: it signs in afresh)."""
    user = await _existing(session, name)
    user.disabled, user.failed_logins, user.locked_until = False, 0, None
    await audit(session, at=now, actor=by, action="user.enable", target=f"user:{name}")


async def set_password(session: AsyncSession, name: str, password: str, *, now: datetime, by: str = "cli") -> int:
    """A new password (a forgotten one, or one that may have leaked): every session of the account ends and
    a lockout is lifted. Returns how many sessions ended."""
    _check_password(password)
    user = await _existing(session, name)
    user.password_hash, user.failed_logins, user.locked_until = _hasher.hash(password), 0, None
    ended = await _end_sessions(session, user)
    await audit(session, at=now, actor=by, action="user.password", target=f"user:{name}", sessions_ended=ended)
    return ended


async def _existing(session: AsyncSession, name: str) -> User:
    user = await session.scalar(select(User).where(User.name == name))
    if user is None:
        raise AccountError(f"NAME: no user {name!r}")
    return user


async def _end_sessions(session: AsyncSession, user: User) -> int:
    ended = await session.execute(
        update(SessionRecord).where(SessionRecord.user_id == user.id, SessionRecord.revoked.is_(False))
        .values(revoked=True)
    )
    return ended.rowcount or 0


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    if not _is_text(password):
        raise AccountError("password: not valid UTF-8 text (undecodable bytes; is the input in another encoding?)")


async def login(session: AsyncSession, name: str, password: str, *, now: datetime, remote: str) -> LoginResult:
    if not password:
        # Not an attempt at the password: it must not count towards the account's lockout, or anyone who knows
        # a user name could lock the account with five empty requests.
        return LoginResult(None, problem="no password")
    user = await session.scalar(select(User).where(User.name == name))
    if user is None:
        _verify(_DUMMY_HASH, password)
        await audit(session, at=now, actor=name[:64], action="login.failed", target=f"user:{name[:58]}",
                    remote=remote, reason="unknown user")
        return LoginResult(None, problem="unknown user")
    if user.locked_until is not None and user.locked_until > now:
        await audit(session, at=now, actor=name, action="login.throttled", target=f"user:{name}", remote=remote)
        return LoginResult(None, problem="throttled")
    if user.disabled or not _verify(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until, user.failed_logins = now + LOCKOUT, 0
        await audit(session, at=now, actor=name, action="login.failed", target=f"user:{name}", remote=remote,
                    reason="disabled" if user.disabled else "wrong password")
        return LoginResult(None, problem="disabled" if user.disabled else "wrong password")
    user.failed_logins, user.locked_until = 0, None
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    session.add(SessionRecord(id=token_id(token), user_id=user.id, csrf_token=csrf, created_at=now,
                              expires_at=now + SESSION_LIFETIME, revoked=False))
    await audit(session, at=now, actor=name, action="login", target=f"user:{name}", remote=remote)
    return LoginResult(actor_of(user), token, csrf)


async def resolve(session: AsyncSession, token: str, *, now: datetime) -> tuple[Actor, str] | None:
    """The actor and CSRF token of a live session, or None (expired, revoked, user disabled)."""
    row = (await session.execute(
        select(SessionRecord, User).join(User, User.id == SessionRecord.user_id)
        .where(SessionRecord.id == token_id(token))
    )).first()
    if row is None:
        return None
    record, user = row
    if record.revoked or record.expires_at <= now or user.disabled:
        return None
    return actor_of(user), record.csrf_token


async def logout(session: AsyncSession, token: str, *, now: datetime, actor: str, remote: str) -> None:
    await session.execute(update(SessionRecord).where(SessionRecord.id == token_id(token)).values(revoked=True))
    await audit(session, at=now, actor=actor, action="logout", target=f"user:{actor}", remote=remote)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, _utf8(password))
    except (VerificationError, InvalidHashError):
        return False
