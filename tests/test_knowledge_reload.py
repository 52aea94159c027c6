"""The running server's knowledge (word lists, answer screening, FAQ) follows edits without a restart, and a
broken edit leaves the previous version in service; at start, with nothing to keep, `serve` says which file."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.knowledge_runtime import KnowledgeHolder
from bot.storage import Database
from knowledge.classifier import DATA_DIR
from knowledge.screening import ScreeningDataError

DEPARTMENTS = ("office", "info_center", "market", "enforcement", "public_service", "arts", "heritage",
               "broadcasting", "industry")
BRUSH_OFF = "您好，这个问题请您自己去问景区。"


def touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    copy = tmp_path / "knowledge-data"
    shutil.copytree(DATA_DIR, copy)
    return copy


async def test_r10_an_edit_of_the_answer_screening_is_in_service_without_a_restart(
    database: Database, data_dir: Path
) -> None:
    # screening.yaml was read once at start: a term a clerk added was ignored by the staff answers the running
    # server screened, while `kb import` already used it (second fresh-eyes pass)
    holder = KnowledgeHolder(database, departments=DEPARTMENTS, fallback="info_center", data_dir=data_dir)
    assert await holder.reload(force=True)
    assert not holder.current.screener.screen(BRUSH_OFF).blocked

    screening = data_dir / "screening.yaml"
    text = screening.read_text(encoding="utf-8")
    screening.write_text(text.replace("爱咋咋地, ", "自己去问景区, 爱咋咋地, ", 1), encoding="utf-8")
    touch_later(screening)
    assert await holder.reload() is True
    assert holder.current.screener.screen(BRUSH_OFF).blocked

    screening.write_text(text.replace("brush_off:", "brush_off: [", 1), encoding="utf-8")  # broken YAML
    touch_later(screening)
    assert await holder.reload() is False
    assert holder.current.screener.screen(BRUSH_OFF).blocked  # the last good rules stay in service


def test_serve_with_a_broken_data_file_is_one_line(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a running server keeps its lists after a broken edit; the next start printed an 80-line traceback
    def broken(_cls: object, _path: object = None) -> None:
        raise ScreeningDataError("knowledge/data/screening.yaml line 3: uncivil.brush_off: not a list")

    runner = CliRunner()
    runner.invoke(app, ["init"])
    monkeypatch.setattr("knowledge.screening.Screener.load", classmethod(broken))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = runner.invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code == 2, result.output
    assert "cannot start: knowledge/data/screening.yaml line 3" in result.output
    assert "Traceback" not in result.output
