"""The `guanwei` command as a person runs it: one-line errors, JSON output, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.conftest import ROOT, TEST_ENV

runner = CliRunner()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh directory, as after a clone: no .env, no data, the shipped config."""
    monkeypatch.chdir(tmp_path)
    for name in TEST_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GUANWEI_CONFIG", str(ROOT / "config.yaml"))
    monkeypatch.setenv("GUANWEI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GUANWEI_DATABASE_URL", raising=False)
    return tmp_path


def test_classify_reads_plain_and_json_lines(workdir: Path) -> None:
    lines_in = ["导游强制购物，不买不让下车，我要找记者曝光", json.dumps({"text": "请问图书馆几点开门"}), "", "{broken"]
    stdin = "\n".join(lines_in) + "\n"
    result = runner.invoke(app, ["classify"], input=stdin)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [line["severity"] for line in lines] == ["critical", "routine"]
    assert lines[0]["department"] == "market" and lines[1]["department"] == "public_service"
    assert lines[0]["matched"] and lines[0]["faq"] is None
    assert set(lines[0]) >= {"severity", "department", "score", "matched", "faq"}


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
