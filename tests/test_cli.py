"""The `guanwei` command as a person runs it: one-line errors, JSON output, no tracebacks."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.storage import Inquiry
from tests.conftest import TEST_ENV

runner = CliRunner()
NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


def an_inquiry(**fields: Any) -> Inquiry:
    return Inquiry(**{"channel": "wechat", "account": "gh_1", "sender": "oX", "severity": "routine",
                      "department": "arts", "department_confidence": 0.9, "score": 0.0, "matched": [],
                      "summary": "请问演出票怎么退", "received_at": NOW, "due_at": NOW, "last_message_at": NOW,
                      **fields})


def init_with(*rows: object) -> None:
    """`guanwei init`, then `rows` written to its database in order (the first inquiry is number 1)."""
    from bot.config import load_settings
    from bot.storage import Database

    runner.invoke(app, ["init"])
    database_url = load_settings().database_url

    async def add() -> None:
        database = Database(database_url)
        async with database.transaction() as session:
            for row in rows:
                session.add(row)
                await session.flush()
        await database.dispose()

    asyncio.run(add())


def test_classify_reads_plain_and_json_lines(workdir: Path) -> None:
    lines_in = ["导游强制购物，不买不让下车，我要找记者曝光", json.dumps({"text": "请问图书馆几点开门"}), "", "{broken"]
    stdin = "\n".join(lines_in) + "\n"
    result = runner.invoke(app, ["classify"], input=stdin)
    assert result.exit_code == 1, result.output  # one line could not be read
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines[2] == {"line": 4, "error": "not valid JSON (Expecting property name enclosed in double quotes)"}
    assert [line["severity"] for line in lines[:2]] == ["critical", "routine"]
    assert lines[0]["department"] == "market" and lines[1]["department"] == "public_service"
    assert lines[0]["matched"] and lines[0]["faq"] is None
    assert set(lines[0]) == {"severity", "department", "confidence", "score", "matched", "faq", "second_opinion"}
    assert 0.0 <= lines[0]["second_opinion"] <= 1.0  # p(critical) of the second opinion, 4 decimals


def test_classify_refuses_text_that_is_not_utf8_instead_of_classifying_noise(workdir: Path) -> None:
    stampede = "景区发生踩踏，好多人受伤"
    stdin = "\ufeff请问图书馆几点开门\n".encode() + f"{stampede}\n".encode("gbk") + f"{stampede}\n".encode()
    result = runner.invoke(app, ["classify"], input=stdin)
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines[0]["severity"] == "routine" and lines[0]["department"] == "public_service"  # a BOM is fine
    assert lines[1] == {"line": 2, "error": "not UTF-8 text (byte 0xbe at 0); convert it first, e.g. iconv -f GBK -t UTF-8"}
    assert lines[2]["severity"] == "critical"


def test_serve_without_secrets_is_one_line_naming_the_setting(workdir: Path) -> None:
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "GUANWEI_WECHAT_TOKEN" in result.output
    assert "Traceback" not in result.output


def test_init_writes_secrets_and_database_then_inquiries_lists_json(workdir: Path) -> None:
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    env_file = workdir / ".env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert "GUANWEI_WECHAT_AES_KEY=" in env_file.read_text()
    assert (workdir / "data" / "guanwei.sqlite3").exists()
    again = runner.invoke(app, ["init"])
    assert again.exit_code == 0 and "keeping its values" in again.output

    listed = runner.invoke(app, ["inquiries", "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == []


def test_inquiries_rejects_unknown_department(workdir: Path) -> None:
    runner.invoke(app, ["init"])
    result = runner.invoke(app, ["inquiries", "--department", "tourism"])
    assert result.exit_code == 2
    assert "--department" in result.output and "market" in result.output


def test_inquiries_on_a_database_never_created_says_what_to_do(workdir: Path) -> None:
    (workdir / ".env").write_text("\n".join(f"{k}={v}" for k, v in TEST_ENV.items()))
    result = runner.invoke(app, ["inquiries"])
    assert result.exit_code == 2
    assert "guanwei db upgrade" in result.output


def test_serve_on_a_busy_port_is_one_line(workdir: Path) -> None:
    import socket

    runner.invoke(app, ["init"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output


def test_inquiries_table_shows_follower_text_literally(workdir: Path) -> None:
    init_with(an_inquiry(channel="weibo", account="1", sender="2", department="market",
                         summary="[reverse]假冒[/reverse]"))
    result = runner.invoke(app, ["inquiries"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "[reverse]假冒[/reverse]" in result.output


def test_init_imports_the_starter_faq_and_kb_round_trips(workdir: Path) -> None:
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert "FAQ:" in result.output and "entries imported" in result.output

    exported = runner.invoke(app, ["kb", "export", "--out", "faq.csv"])
    assert exported.exit_code == 0, exported.output
    rows = (workdir / "faq.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "id,question,answer,alternates,department,tags" and len(rows) > 45

    (workdir / "mine.yaml").write_text(
        "- id: opening\n  question: 开放时间\n  answer: 您好，每天9点开放。\n", encoding="utf-8"
    )
    replaced = runner.invoke(app, ["kb", "import", "mine.yaml"])
    assert replaced.exit_code == 0 and "1 entries imported" in replaced.output and "removed" in replaced.output
    out_of_one = runner.invoke(app, ["kb", "export", "--out", "one.yaml"])
    assert "1 entries" in out_of_one.output


def test_kb_import_of_a_broken_file_is_one_line_and_changes_nothing(workdir: Path) -> None:
    runner.invoke(app, ["init"])
    (workdir / "bad.yaml").write_text("- id: Not Valid\n  question: q\n  answer: a\n", encoding="utf-8")
    result = runner.invoke(app, ["kb", "import", "bad.yaml"])
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and "Traceback" not in result.output
    missing = runner.invoke(app, ["kb", "import", "nope.yaml"])
    assert missing.exit_code == 2 and "nope.yaml" in missing.output


def test_r10_kb_import_refuses_answers_that_fail_the_answer_screening(workdir: Path) -> None:
    runner.invoke(app, ["init"])
    (workdir / "phone.yaml").write_text(
        "- id: hotline\n  question: 投诉电话是多少\n  answer: 请拨打张三手机13812345678\n"
        "- id: hours\n  question: 几点开门\n  answer: 您好，每天9点开放。\n", encoding="utf-8")
    result = runner.invoke(app, ["kb", "import", "phone.yaml", "--merge"])
    assert result.exit_code == 1, result.output
    assert "entry hotline" in result.output and "nothing imported" in result.output
    assert "13812345678" not in result.output  # the finding names it masked
    exported = runner.invoke(app, ["kb", "export", "--out", "now.yaml"])
    assert "13812345678" not in (workdir / "now.yaml").read_text(encoding="utf-8") and exported.exit_code == 0


def test_kb_import_refuses_an_answer_that_would_be_cut_on_weibo_or_wechat(workdir: Path) -> None:
    # 280 characters are under the file limit (600) but not with the auto-reply wording under Weibo's 300; 590
    # emoji are 2,360 bytes, over WeChat's 2,048
    runner.invoke(app, ["init"])
    (workdir / "long.yaml").write_text(
        f"- id: long-history\n  question: 古城的历史\n  answer: {'古城历史悠久。' * 40}\n"
        f"- id: emoji-guide\n  question: 表情版游览指南\n  answer: {'🏯' * 590}\n"
        "- id: fine\n  question: 几点开门\n  answer: 您好，每天9点开放。\n", encoding="utf-8")
    result = runner.invoke(app, ["kb", "import", "long.yaml", "--merge"])
    assert result.exit_code == 1, result.output
    assert "entry long-history" in result.output and "微博私信单条上限（300 字）" in result.output
    assert "entry emoji-guide" in result.output and "2048 字节" in result.output
    assert "nothing imported" in result.output
    exported = runner.invoke(app, ["kb", "export", "--out", "now.yaml"])
    assert "古城历史悠久" not in (workdir / "now.yaml").read_text(encoding="utf-8") and exported.exit_code == 0


def test_kb_import_merge_refuses_a_question_the_live_knowledge_base_already_has(workdir: Path) -> None:
    # A merged file was checked only on its own: the stored set then held one question twice, the server kept
    # its old FAQ, `kb export` failed and `serve` no longer started (fresh-eyes pass)
    runner.invoke(app, ["init"])
    (workdir / "clone.yaml").write_text(
        "- id: clone-hours\n  question: 图书馆几点开门几点关门\n  answer: 您好，十点开门。\n"
        "  department: public_service\n", encoding="utf-8")
    result = runner.invoke(app, ["kb", "import", "clone.yaml", "--merge"])
    assert result.exit_code == 2, result.output
    assert "clone.yaml" in result.output and "library-hours" in result.output and "nothing imported" in result.output
    exported = runner.invoke(app, ["kb", "export", "--out", "now.yaml"])
    assert exported.exit_code == 0 and "clone-hours" not in (workdir / "now.yaml").read_text(encoding="utf-8")
    # the same question under the live entry's id replaces it
    (workdir / "clone.yaml").write_text(
        "- id: library-hours\n  question: 图书馆几点开门几点关门\n  answer: 您好，十点开门。\n"
        "  department: public_service\n", encoding="utf-8")
    replaced = runner.invoke(app, ["kb", "import", "clone.yaml", "--merge"])
    assert replaced.exit_code == 0, replaced.output
    runner.invoke(app, ["kb", "export", "--out", "now.yaml"])
    assert "十点开门" in (workdir / "now.yaml").read_text(encoding="utf-8")


def test_a_clashing_row_written_behind_the_importers_back_is_left_out_not_fatal(workdir: Path) -> None:
    from bot.config import load_settings
    from bot.knowledge_runtime import load_faq_entries
    from bot.storage import Database, FaqRecord

    runner.invoke(app, ["init"])
    database_url = load_settings().database_url

    async def add_clash_and_load() -> list[str]:
        database = Database(database_url)
        async with database.transaction() as session:
            session.add(FaqRecord(id="zz-clone", question="市图书馆的开放时间是什么？", answer="十点", alternates=[],
                                  department=None, tags=[], updated_at=NOW))
        try:
            return [entry.id for entry in await load_faq_entries(database)]
        finally:
            await database.dispose()

    ids = asyncio.run(add_clash_and_load())
    assert "library-hours" in ids and "zz-clone" not in ids  # the first by id keeps the question
    exported = runner.invoke(app, ["kb", "export", "--out", "now.yaml"])
    assert exported.exit_code == 0, exported.output
    assert "left out" in exported.output and "zz-clone" in exported.output


@pytest.mark.parametrize(
    ("received", "severity", "due"),
    [
        ("2026-12-04T17:45+08:00", "routine", "2026-12-07T10:30:00+08:00"),  # winter Friday evening
        ("2026-12-04T09:45Z", "routine", "2026-12-07T10:30:00+08:00"),  # the same instant in UTC
        ("2026-02-14T09:00+08:00", "routine", "2026-02-14T11:00:00+08:00"),  # make-up Saturday
        ("2026-10-03T10:00+08:00", "routine", "2026-10-08T10:30:00+08:00"),  # National Day week
        ("2026-04-30T17:00+08:00", "routine", "2026-05-06T10:00:00+08:00"),  # into Labour Day and summer hours
        ("2026-12-05T23:30+08:00", "critical", "2026-12-06T00:30:00+08:00"),  # Saturday night
    ],
)
def test_r6_1b_r6_1d_deadline_command(workdir: Path, received: str, severity: str, due: str) -> None:
    result = runner.invoke(app, ["deadline", received, "--severity", severity])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == due


@pytest.mark.parametrize(("args", "named"), [
    (["2026-12-04T10:00"], "no offset"), (["yesterday"], "not an ISO 8601"),
    (["2026-12-04T10:00Z", "--severity", "urgent"], "--severity"),
])
def test_deadline_bad_input_is_one_line(workdir: Path, args: list[str], named: str) -> None:
    result = runner.invoke(app, ["deadline", *args])
    assert result.exit_code == 2 and named in result.output and "Traceback" not in result.output


def test_r7_3b_chase_sweep_and_escalations_from_the_command_line(workdir: Path) -> None:
    init_with(an_inquiry(due_at=datetime(2026, 12, 3, 4, 0, tzinfo=UTC), clock_started_at=NOW, next_alert_at=NOW))
    assert runner.invoke(app, ["chase", "1", "--by", "信息中心", "--note", "请尽快"]).exit_code == 0
    assert runner.invoke(app, ["chase", "99", "--by", "x"]).exit_code == 2
    swept = runner.invoke(app, ["sweep", "--at", "2026-12-03T12:01+08:00"])
    assert swept.exit_code == 0, swept.output
    assert "recorded 3 alert(s)" in swept.output  # reminders at 50% and 80%, rung 2 at the deadline
    listed = runner.invoke(app, ["escalations", "--json"])
    rows = json.loads(listed.stdout)
    assert sorted(r["kind"] for r in rows) == ["chase", "escalation", "reminder", "reminder"]
    assert all(r["status"] == "sent" for r in rows)


def test_r7_3b_chase_refuses_an_answered_inquiry_and_an_empty_name(workdir: Path) -> None:
    init_with(an_inquiry(status="open", due_at=NOW, clock_started_at=NOW, next_alert_at=NOW),
              an_inquiry(status="answered", due_at=NOW, clock_started_at=NOW, answered_at=NOW, answered_by="x"))
    answered = runner.invoke(app, ["chase", "2", "--by", "信息中心"])
    assert answered.exit_code == 2 and "answered: nothing to chase" in answered.output
    nameless = runner.invoke(app, ["chase", "1", "--by", "  "])
    assert nameless.exit_code == 2 and "--by" in nameless.output
    listed = json.loads(runner.invoke(app, ["escalations", "--json"]).stdout)
    assert listed == []  # neither was recorded


def test_a_key_given_twice_in_config_yaml_is_refused_with_its_line(workdir: Path) -> None:
    from tests.conftest import ROOT

    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    assert "\n  market: " in text
    (workdir / "twice.yaml").write_text(text.replace("\n  market: ", "\n  market: 重复\n  market: ", 1), encoding="utf-8")
    result = runner.invoke(app, ["inquiries", "--config", "twice.yaml"])
    assert result.exit_code == 2 and "duplicate key 'market'" in result.output and "Traceback" not in result.output


def test_show_prints_the_conversation(workdir: Path) -> None:
    runner.invoke(app, ["init"])
    assert runner.invoke(app, ["show", "7"]).exit_code == 2


def test_show_marks_answers_that_did_not_reach_the_netizen(workdir: Path) -> None:
    from bot.storage import Message

    init_with(an_inquiry(), *(Message(inquiry_id=1, direction="out", channel="wechat", account="gh_1", sender="oX",
                                      kind="text", content=f"答复{n}", recorded_at=NOW, fields={}, author="zhang",
                                      delivery_status=status, delivery_reason=reason)
                              for n, (status, reason) in enumerate([("failed", "连接微信接口失败，请稍后重试"),
                                                                    ("undeliverable", "对方已取消关注公众号"),
                                                                    ("delivered", None)])))
    result = runner.invoke(app, ["show", "1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines() if "答复" in line]
    assert lines == ["12-03 10:00 → 网友 [text] 答复0  (✗ zhang, 发送失败: 连接微信接口失败，请稍后重试)",
                     "12-03 10:00 → 网友 [text] 答复1  (✗ zhang, 无法送达: 对方已取消关注公众号)",
                     "12-03 10:00 → 网友 [text] 答复2  (zhang, 已送达)"]
    shown = json.loads(runner.invoke(app, ["show", "1", "--json"]).stdout)
    assert [(m["delivery"], m["delivery_reason"]) for m in shown["messages"]] == [
        ("failed", "连接微信接口失败，请稍后重试"), ("undeliverable", "对方已取消关注公众号"), ("delivered", None)]


HUGE = "99999999999999999999999"


@pytest.mark.parametrize("args", [["chase", HUGE, "--by", "li"], ["show", HUGE], ["show", "2147483648"],
                                  ["show", "0"]])
def test_an_inquiry_number_no_row_can_have_is_no_inquiry(workdir: Path, args: list[str]) -> None:
    runner.invoke(app, ["init"])
    result = runner.invoke(app, args)
    assert (result.exit_code, result.output) == (2, f"error: INQUIRY_ID: no inquiry {args[1]}\n")


@pytest.mark.parametrize("command", [["inquiries"], ["sweep"], ["deadline", "2026-12-04T17:45+08:00"],
                                     ["media", "check", "x.jpg"], ["classify"]])
def test_a_ladder_that_cannot_run_is_refused_by_every_command_naming_the_setting(workdir: Path,
                                                                                 command: list[str]) -> None:
    import yaml

    from tests.conftest import ROOT

    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["escalation"]["reminders_at"] = [1.5]
    (workdir / "bad.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = runner.invoke(app, [*command, "--config", "bad.yaml"], input="")
    assert (result.exit_code, result.output) == (
        2, "error: bad.yaml: escalation.reminders_at: each fraction must be between 0 and 1\n")


def test_a_password_that_is_not_utf8_is_one_line_about_the_password(workdir: Path) -> None:
    runner.invoke(app, ["init"])
    result = runner.invoke(app, ["users", "add", "wang2", "--role", "staff", "--department", "market",
                                 "--password-stdin"], input=b"a long \xff\xfe password\n")
    assert (result.exit_code, result.output) == (
        2, "error: password: not valid UTF-8 text (undecodable bytes; is the input in another encoding?)\n")
    fine = runner.invoke(app, ["users", "add", "wang2", "--role", "staff", "--department", "market",
                               "--password-stdin"], input="a long 密码 password\n".encode())
    assert (fine.exit_code, fine.output) == (0, "user wang2 (staff, market) added\n")


@pytest.mark.parametrize(("args", "message"), [
    (["deadline", "9999-12-31T23:59+08:00", "--severity", "critical"],
     "RECEIVED_AT: '9999-12-31T23:59+08:00' is outside the years guanwei deals in (2000–2099)"),
    (["sweep", "--at", "1999-12-31T23:59Z"], "--at: '1999-12-31T23:59Z' is outside the years guanwei deals in "
                                             "(2000–2099)"),
    (["publishing", "week-check", "--at", "2100-01-01T00:00Z"],
     "--at: '2100-01-01T00:00Z' is outside the years guanwei deals in (2000–2099)"),
    (["report", "--month", "9999-12"], "--month: 9999-12 is not a month guanwei can hold (1971-01 to 2099-12)"),
    (["publishing", "register", "--out", "r.xlsx", "--month", "9999-12"],
     "--month: 9999-12 is not a month guanwei can hold (1971-01 to 2099-12)"),
    (["publishing", "register", "--out", "r.xlsx", "--month", "99"],
     "--month: expected YYYY-MM (e.g. 2026-11), got '99'"),
    (["media", "check", "photo.jpg", "--clamd", "127.0.0.1:99999"], "--clamd: port 99999 is not a TCP port (1-65535)"),
    (["publishing", "register", "--out", "register.csv"],
     "--out: the register is written as an Excel workbook: give a name ending in .xlsx, not 'register.csv'"),
])
def test_out_of_range_input_is_one_line_naming_the_option(workdir: Path, args: list[str], message: str) -> None:
    runner.invoke(app, ["init"])
    (workdir / "photo.jpg").write_bytes(b"not really")
    result = runner.invoke(app, args)
    assert (result.exit_code, result.output) == (2, f"error: {message}\n")


def test_a_failure_that_is_not_the_databases_does_not_blame_it(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.inquiries

    async def broken(*_args: object, **_kwargs: object) -> list:  # type: ignore[type-arg]
        raise ValueError("year 10000 is out of range")

    runner.invoke(app, ["init"])
    monkeypatch.setattr(bot.inquiries, "inquiry_rows", broken)
    result = runner.invoke(app, ["inquiries"])
    assert (result.exit_code, result.output) == (2, "error: unexpected error (ValueError): year 10000 is out of range\n")


def test_a_database_that_cannot_be_reached_is_blamed_on_its_url(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUANWEI_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    result = runner.invoke(app, ["inquiries"])
    assert result.exit_code == 2
    assert result.output.startswith("error: GUANWEI_DATABASE_URL: cannot use the database: ")
    assert result.output.count("\n") == 1


@pytest.mark.parametrize(("args", "message"), [
    (["kb", "export", "--out", "nu"], "nu: unknown file type '(none)': use .yaml, .yml or .csv"),
    (["kb", "import", "nu"], "nu: unknown file type '(none)': use .yaml, .yml or .csv"),
    (["eval", "none.jsonl"], "none.jsonl: file not found"),
    (["publishing", "register", "--out", "r.xlsx", "--month", "2026-13"],
     "--month: expected YYYY-MM (e.g. 2026-11), got '2026-13'"),
])
def test_an_error_names_its_file_or_option_once(workdir: Path, args: list[str], message: str) -> None:
    runner.invoke(app, ["init"])
    (workdir / "nu").touch()
    result = runner.invoke(app, args)
    assert (result.exit_code, result.output) == (2, f"error: {message}\n")
