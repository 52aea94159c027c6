"""Console accounts over their life (R4.2): disabled and enabled again, a new password ends every session."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from bot import auth
from bot.cli import app
from bot.storage import Database
from tests.conftest import shanghai

NOW = shanghai(2026, 12, 3, 10, 0)
runner = CliRunner()


async def sign_in(database: Database, password: str) -> auth.LoginResult:
    async with database.transaction() as session:
        return await auth.login(session, "zhang", password, now=NOW, remote="127.0.0.1")


async def live(database: Database, token: str) -> bool:
    async with database.transaction() as session:
        return await auth.resolve(session, token, now=NOW) is not None


async def test_r4_2_a_disabled_account_enabled_again_signs_in_afresh(database: Database) -> None:
    async with database.transaction() as session:
        await auth.add_user(session, name="zhang", role="staff", department="market", password="a long password 1",
                            departments=["market"], now=NOW)
    before = await sign_in(database, "a long password 1")
    async with database.transaction() as session:
        assert await auth.disable_user(session, "zhang", now=NOW) == 1
    assert (await sign_in(database, "a long password 1")).problem == "disabled"
    async with database.transaction() as session:
        await auth.enable_user(session, "zhang", now=NOW)
    assert not await live(database, before.token or "")  # the old session stays ended
    assert (await sign_in(database, "a long password 1")).actor is not None


async def test_r4_2_a_new_password_ends_every_session_and_lifts_a_lockout(database: Database) -> None:
    async with database.transaction() as session:
        await auth.add_user(session, name="zhang", role="staff", department="market", password="a long password 1",
                            departments=["market"], now=NOW)
    first, second = await sign_in(database, "a long password 1"), await sign_in(database, "a long password 1")
    for _ in range(auth.MAX_FAILED_LOGINS):
        await sign_in(database, "wrong password!!")
    assert (await sign_in(database, "a long password 1")).problem == "throttled"
    async with database.transaction() as session:
        assert await auth.set_password(session, "zhang", "a new long password", now=NOW) == 2
    assert not await live(database, first.token or "") and not await live(database, second.token or "")
    assert (await sign_in(database, "a long password 1")).problem == "wrong password"
    assert (await sign_in(database, "a new long password")).actor is not None


def test_users_enable_and_password_from_the_command_line(workdir: Path) -> None:
    runner.invoke(app, ["init"])
    added = runner.invoke(app, ["users", "add", "li", "--role", "info_center", "--password-stdin"],
                          input="a long password 2\n")
    assert added.exit_code == 0, added.output
    assert runner.invoke(app, ["users", "disable", "li"]).exit_code == 0
    enabled = runner.invoke(app, ["users", "enable", "li"])
    assert enabled.exit_code == 0 and "user li enabled" in enabled.output
    changed = runner.invoke(app, ["users", "password", "li", "--password-stdin"], input="another long one\n")
    assert changed.exit_code == 0 and "password of li changed; 0 session(s) ended" in changed.output
    short = runner.invoke(app, ["users", "password", "li", "--password-stdin"], input="short\n")
    assert short.exit_code == 2 and "password: at least" in short.output and "Traceback" not in short.output
    nobody = runner.invoke(app, ["users", "enable", "nobody"])
    assert nobody.exit_code == 2 and "no user 'nobody'" in nobody.output
    listed = runner.invoke(app, ["users", "list"])
    assert "li" in listed.output and "active" in listed.output
