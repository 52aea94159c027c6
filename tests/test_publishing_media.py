"""R8.3: media rules by real content (pure functions of bytes), the clamd scanner, `guanwei media check`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.clamd import ClamdScanner, ScannerUnavailable, parse_answer
from bot.cli import app
from bot.media import MB, inspect_media, sniff
from tests import media_fixtures as m
from tests.clamd_support import clamd_socket, eicar, needs_clamd  # noqa: F401  (clamd_socket: a fixture)

runner = CliRunner()


def test_r8_3_a_3_mb_image_is_refused_with_its_size() -> None:
    data = m.big_bmp(3 * MB)
    verdict = inspect_media(data, "photo.bmp")
    assert not verdict.ok and verdict.format == "bmp" and verdict.kind == "image"
    assert verdict.size >= 3 * MB
    assert verdict.problems == (f"图片大小 {verdict.size / MB:.2f} MB 超过 2 MB 的上限",)


@pytest.mark.parametrize(("content", "what"), [(m.elf(), "Linux 可执行程序（ELF）"), (m.pe(), "Windows 可执行程序（PE）")])
def test_r8_3_a_renamed_executable_is_refused_as_what_it_really_is(content: bytes, what: str) -> None:
    verdict = inspect_media(content, "风景.jpg")
    assert not verdict.ok and verdict.kind is None
    assert verdict.problems[0].startswith(f"文件内容是{what}（文件名为 .jpg），不是允许的图片")


@pytest.mark.parametrize(("make", "name", "fmt"), [(m.wav, "clip.wav", "wav"), (m.mp3, "clip.mp3", "mp3"),
                                                   (m.amr, "clip.amr", "amr")])
def test_r8_3_a_70_second_voice_clip_is_refused_with_its_duration(make, name: str, fmt: str) -> None:  # type: ignore[no-untyped-def]
    verdict = inspect_media(make(70), name)
    assert verdict.format == fmt and verdict.kind == "voice"
    assert verdict.duration_seconds == pytest.approx(70, abs=0.1)
    assert verdict.problems == (f"语音时长 {verdict.duration_seconds:.1f} 秒超过 60 秒的上限",)


@pytest.mark.parametrize(("make", "name"), [(m.wav, "ok.wav"), (m.mp3, "ok.mp3"), (m.amr, "ok.amr")])
def test_r8_3_a_voice_clip_under_a_minute_passes(make, name: str) -> None:  # type: ignore[no-untyped-def]
    verdict = inspect_media(make(30), name)
    assert verdict.ok, verdict.problems
    assert verdict.duration_seconds == pytest.approx(30, abs=0.1)


def test_r8_3_duration_comes_from_the_content_not_the_name() -> None:
    verdict = inspect_media(m.wav(70), "short.mp3")  # a long WAV named .mp3
    assert verdict.format == "wav"
    assert "文件名扩展名 .mp3 与内容（WAV 音频）不符" in verdict.problems
    assert any("70.0 秒" in p for p in verdict.problems)


def test_r8_3_allowed_images_pass_and_other_formats_are_named() -> None:
    assert inspect_media(m.gif(), "logo.gif").ok
    assert inspect_media(m.jpeg(), "photo.JPG").ok
    refused = inspect_media(m.png(), "shot.png")
    assert refused.format == "png" and "PNG 图片" in refused.reason
    assert not inspect_media(b"\xff\xd8\xff\xe0garbage", "broken.jpg").ok  # looks like JPEG, does not parse
    assert inspect_media(b"", "empty.jpg").problems
    assert sniff(m.mp4()) == "mp4" and inspect_media(m.mp4(), "film.mp4").ok


def test_r8_3_video_over_20_mb_is_refused() -> None:
    data = m.mp4() + b"\x00" * (21 * MB)
    verdict = inspect_media(data, "film.mp4")
    assert verdict.kind == "video" and any("超过 20 MB 的上限" in p for p in verdict.problems)


def test_r8_3_clamd_answers_are_read_strictly() -> None:
    assert parse_answer("stream: OK", "x").clean
    found = parse_answer("stream: Eicar-Signature FOUND", "x")
    assert not found.clean and found.signature == "Eicar-Signature"
    with pytest.raises(ScannerUnavailable):
        parse_answer("INSTREAM size limit exceeded. ERROR", "x")
    with pytest.raises(ScannerUnavailable):
        parse_answer("something else", "x")


async def test_r8_3_a_scanner_that_is_down_blocks_the_file(tmp_path: Path) -> None:
    scanner = ClamdScanner(socket=str(tmp_path / "no-such.sock"), timeout=2)
    assert not await scanner.ping()
    with pytest.raises(ScannerUnavailable, match="无法连接病毒扫描服务"):
        await scanner.scan(m.gif())


@needs_clamd
async def test_r8_3_the_eicar_file_is_found_by_clamd(clamd_socket: str) -> None:  # noqa: F811
    scanner = ClamdScanner(socket=clamd_socket)
    assert await scanner.ping()
    result = await scanner.scan(eicar())
    assert not result.clean and (result.signature or "").startswith("Guanwei.Test.EICAR")
    assert (await scanner.scan(m.gif())).clean
    assert (await scanner.scan(m.jpeg() * 200)).clean  # several INSTREAM chunks


def _check(path: Path, *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = runner.invoke(app, ["media", "check", str(path), *extra])
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}


@needs_clamd
def test_r8_3_media_check_cli_prints_the_verdict_and_exits_non_zero_on_a_violation(
        workdir: Path, clamd_socket: str) -> None:  # noqa: F811
    files = {"ok.gif": m.gif(), "big.bmp": m.big_bmp(3 * MB), "setup.jpg": m.elf(), "long.wav": m.wav(70),
             "eicar.gif": eicar()}
    for name, data in files.items():
        (workdir / name).write_bytes(data)
    code, verdict = _check(workdir / "ok.gif", "--clamd", clamd_socket)
    assert code == 0 and verdict["ok"] and verdict["virus_scan"]["clean"] is True
    reasons = {}
    for name in ("big.bmp", "setup.jpg", "long.wav", "eicar.gif"):
        code, verdict = _check(workdir / name, "--clamd", clamd_socket)
        assert code == 1 and not verdict["ok"], name
        reasons[name] = verdict["problems"]
    assert "超过 2 MB 的上限" in reasons["big.bmp"][0]
    assert "Linux 可执行程序（ELF）" in reasons["setup.jpg"][0]
    assert "70.0 秒超过 60 秒的上限" in reasons["long.wav"][0]
    assert any("Guanwei.Test.EICAR" in p for p in reasons["eicar.gif"])


def test_media_check_cli_errors_are_one_line(workdir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["media", "check", str(workdir / "missing.gif")])
    assert result.exit_code == 2 and "cannot read" in result.output and "Traceback" not in result.output
    (workdir / "ok.gif").write_bytes(m.gif())
    code, verdict = _check(workdir / "ok.gif", "--clamd", str(tmp_path / "down.sock"))
    assert code == 1 and any("无法连接病毒扫描服务" in p for p in verdict["problems"])


def test_r8_3_inspect_never_raises_on_odd_bytes() -> None:
    for data in (b"RIFF\x00\x00\x00\x00WAVE", b"ID3\x03\x00", b"#!AMR\n\xff", b"\x30\x26\xb2\x75\x8e\x66\xcf\x11" * 3,
                 b"BM" + b"\x00" * 40, b"GIF89a", bytes(range(256)) * 4):
        verdict = inspect_media(data, "x")
        assert isinstance(verdict.problems, tuple)
