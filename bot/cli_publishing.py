"""`guanwei media check`, `guanwei publishing week-check` and `guanwei publishing register` (R4.3, R5.3, R8.3).

Registered on `bot.cli.app` by importing this module (the last lines of bot/cli.py).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bot.clamd import ClamdScanner, ScannerUnavailable
from bot.cli import ConfigOption, _parse_time, _with_current_schema, app, err, fail, out, settings_or_exit
from bot.config import ConfigError, load_file_config, resolve_config_path
from bot.media import MB, MediaLimits, inspect_media
from bot.storage import Database

media_app = typer.Typer(no_args_is_help=True, help="Media rules for published posts (R8.3).")
app.add_typer(media_app, name="media")
publishing_app = typer.Typer(no_args_is_help=True, help="The publishing desk: weekly push check, register.")
app.add_typer(publishing_app, name="publishing")


def _scanner(spec: str | None, config: Path | None) -> tuple[ClamdScanner, MediaLimits]:
    try:
        file = load_file_config(resolve_config_path(config))
    except ConfigError as exc:
        fail(str(exc))
    media, clamd = file.publishing.media, file.publishing.clamd
    limits = MediaLimits(int(media.image_max_mb * MB), int(media.voice_max_mb * MB), media.voice_max_seconds,
                         int(media.video_max_mb * MB))
    if spec:
        host, _, port = spec.rpartition(":")
        if spec.startswith("/") or not (port.isascii() and port.isdigit()):
            return ClamdScanner(socket=spec, timeout=clamd.timeout_seconds), limits
        if not 1 <= int(port) <= 65535:
            fail(f"--clamd: port {port} is not a TCP port (1-65535)")
        return ClamdScanner(host=host or "127.0.0.1", port=int(port), timeout=clamd.timeout_seconds), limits
    return ClamdScanner(socket=clamd.socket, host=clamd.host, port=clamd.port, timeout=clamd.timeout_seconds), limits


@media_app.command("check")
def media_check(
    file: Annotated[Path, typer.Argument(help="the file to check")],
    clamd: Annotated[str | None, typer.Option("--clamd", help="clamd's unix socket path or HOST:PORT "
                                                              "(default: publishing.clamd in config.yaml)")] = None,
    config: ConfigOption = None,
) -> None:
    """Check FILE by its content against R8.3 and scan it with clamd; prints JSON, exits 1 on a violation."""
    scanner, limits = _scanner(clamd, config)
    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"FILE: cannot read {file}: {exc.strerror or exc}")
    verdict = inspect_media(data, file.name, limits)
    result = verdict.to_dict()
    problems = list(verdict.problems)
    scan: dict[str, object]
    try:
        found = asyncio.run(scanner.scan(data))
        scan = found.to_dict()
        if not found.clean:
            problems.append(f"病毒扫描发现威胁（{found.signature}）")
    except ScannerUnavailable as exc:
        scan = {"clean": None, "signature": None, "scanner": scanner.where, "problem": str(exc)}
        problems.append(f"{exc}：未经扫描的文件不能发布")
    result.update(ok=not problems, problems=problems, virus_scan=scan)
    out.print_json(json.dumps(result, ensure_ascii=False)) if out.is_terminal else print(
        json.dumps(result, ensure_ascii=False))
    if problems:
        raise typer.Exit(1)


@publishing_app.command("week-check")
def week_check_command(
    at: Annotated[str | None, typer.Option("--at", help="act as if it were this time (ISO 8601)")] = None,
    notify: Annotated[bool, typer.Option("--notify", help="tell the information centre's contacts when short")] = False,
    config: ConfigOption = None,
) -> None:
    """R4.3: is this week heading for fewer than the minimum of pushes? Prints JSON; exits 1 when short."""
    from bot import publishing
    from bot.push_plan import PushRules
    from escalation.calendar import BusinessCalendar

    settings = settings_or_exit(config, channels=False)
    now = _parse_time(at, "--at") if at else datetime.now(settings.tz)
    rules = PushRules.from_settings(settings)

    async def check(database: Database) -> publishing.WeekCheck:
        week = await publishing.current_week(database, calendar=BusinessCalendar(settings.reply_hours), rules=rules,
                                             now=now)
        if notify and week.short:
            from bot.publishing_alerts import warn_info_center

            await warn_info_center(settings, database, week, now=now)
        return week

    week = asyncio.run(_with_current_schema(settings, check))
    print(json.dumps(week.to_dict(), ensure_ascii=False))
    if week.short:
        raise typer.Exit(1)


@publishing_app.command("register")
def register_command(
    out_file: Annotated[Path, typer.Option("--out", help="the .xlsx to write")],
    month: Annotated[str | None, typer.Option("--month", help="only this month, YYYY-MM")] = None,
    config: ConfigOption = None,
) -> None:
    """Export the publication register (信息发布登记表, R5.3) to xlsx."""
    from bot.publication_register import register_xlsx
    from bot.publishing import register_rows
    from bot.report import Month, ReportError

    if out_file.suffix.lower() != ".xlsx":
        fail(f"--out: the register is written as an Excel workbook: give a name ending in .xlsx, not {out_file.name!r}")
    settings = settings_or_exit(config, channels=False)
    try:
        wanted = Month.parse(month) if month else None
    except ReportError as exc:
        fail(str(exc))  # it names --month
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                  transient=True) as progress:
        task = progress.add_task("读取发布登记", total=2)

        async def load(database: Database) -> list:  # type: ignore[type-arg]
            tz = settings.tz
            return await register_rows(database, start=wanted.start(tz) if wanted else None,
                                       end=wanted.end(tz) if wanted else None)

        records = asyncio.run(_with_current_schema(settings, load))
        progress.update(task, advance=1, description="写入 Excel")
        try:
            out_file.parent.mkdir(parents=True, exist_ok=True)
            out_file.write_bytes(register_xlsx(records, settings.departments, settings.tz,
                                               bureau=settings.file.bureau_name))
        except OSError as exc:
            fail(f"--out: cannot write {out_file}: {exc.strerror or exc}")
        progress.update(task, advance=1)
    out.print(f"{out_file}: {len(records)} 条发布记录", highlight=False)
