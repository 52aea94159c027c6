"""`guanwei report` and `guanwei demo-data`: the monthly operations report (R4.5) and a month to try it on.

Registered on `bot.cli.app` by importing this module (the last line of bot/cli.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.cli import ConfigOption, _with_current_schema, app, err, fail, out, settings_or_exit
from bot.report import Month, MonthlyReport, ReportError, build_report, render_charts, utc_now, write_html, write_xlsx
from bot.storage import Database

MonthOption = Annotated[str, typer.Option("--month", help="the month, YYYY-MM (in the bureau's time zone)")]


@app.command()
def report(
    month: MonthOption,
    out_dir: Annotated[Path, typer.Option("--out", help="directory for the .xlsx and .html")] = Path("."),
    config: ConfigOption = None,
) -> None:
    """Write the monthly operations report (R4.5): guanwei-report-YYYY-MM.xlsx and .html with charts."""
    wanted = _parse_month(month)
    settings = settings_or_exit(config, channels=False)
    try:  # before the slow part: a wrong --out is found at once
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"--out: cannot write to {out_dir}: {exc.strerror or exc}")
    # Steps: 2 reading, 1 computing, 5 charts, the workbook, the page.
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total}"), TimeElapsedColumn(), console=err, transient=True) as progress:
        task = progress.add_task("准备", total=10)

        def step(description: str) -> None:
            progress.update(task, description=description, advance=1)

        async def build(database: Database) -> MonthlyReport:
            return await build_report(database, settings, wanted, as_of=utc_now(), step=step)

        result = asyncio.run(_with_current_schema(settings, build))
        charts = render_charts(result, step=step)
        stem = out_dir / result.file_stem()
        try:
            step("写入 Excel 工作簿")
            xlsx = write_xlsx(result, stem.with_suffix(".xlsx"))
            step("写入 HTML 报告")
            html = write_html(result, charts, stem.with_suffix(".html"))
        except OSError as exc:
            fail(f"--out: cannot write to {out_dir}: {exc.strerror or exc}")
    if charts.warning:
        err.print(f"warning: {charts.warning}", highlight=False, soft_wrap=True)
    f = result.current
    routine, critical = result.kpi["routine_on_time_rate"].current, result.kpi["critical_on_time_rate"].current
    out.print(f"{wanted.label}: {f.total} inquiries ({f.by_severity.get('critical', 0)} critical), on time: routine "
              f"{_pct(routine)}, critical {_pct(critical)}; {len(f.overdue)} overdue"
              + ("  [demo data]" if f.demo else ""), highlight=False, soft_wrap=True, markup=False)
    out.print(f"wrote {xlsx.resolve()}", highlight=False, soft_wrap=True)
    out.print(f"wrote {html.resolve()}", highlight=False, soft_wrap=True)


def _parse_month(text: str) -> Month:
    try:
        return Month.parse(text)
    except ReportError as exc:
        fail(str(exc))


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


@app.command("demo-data")
def demo_data(
    month: MonthOption,
    seed: Annotated[int, typer.Option(help="the same seed makes the same month")] = 1,
    force: Annotated[bool, typer.Option("--force", help="add to a database that already holds inquiries")] = False,
    config: ConfigOption = None,
) -> None:
    """Fill an EMPTY database with a realistic demo month (every row marked demo) to try `guanwei report` on."""
    from bot.demo_data import DemoError, DemoSummary, generate
    from bot.logs import setup_logging

    setup_logging("WARNING")  # jieba's dictionary chatter
    wanted = _parse_month(month)
    settings = settings_or_exit(config, channels=False)

    async def run(database: Database) -> DemoSummary:
        try:
            return await generate(database, settings, wanted, seed=seed, force=force)
        except DemoError as exc:
            fail(str(exc))

    with err.status(f"generating demo data for {wanted.label}…"):
        summary = asyncio.run(_with_current_schema(settings, run))
    table = Table(title=f"demo data {wanted.key} (seed {seed}): {summary.inquiries} inquiries, every row marked demo")
    table.add_column("department")
    table.add_column("inquiries", justify="right")
    for key, name in settings.departments.items():
        table.add_row(name, str(summary.departments.get(key, 0)))
    out.print(table)
    alerts = ", ".join(f"{k.rstrip(':')} {v}" for k, v in sorted(summary.alerts.items()))
    out.print(
        f"critical {summary.severities.get('critical', 0)}, routine {summary.severities.get('routine', 0)}; "
        f"wechat {summary.channels.get('wechat', 0)}, weibo {summary.channels.get('weibo', 0)}; "
        f"outside reply hours {summary.outside_hours}; knowledge base {summary.knowledge_base}; "
        f"answered late {summary.late}; still open {summary.open}; closed {summary.closed}; "
        f"transfers {summary.transfers}; undeliverable {summary.undeliverable}; reopened {summary.reopened}",
        highlight=False, soft_wrap=True)
    out.print(f"alerts: {alerts or 'none'}", highlight=False, soft_wrap=True)
    out.print(f"next: guanwei report --month {wanted.key}", highlight=False)
