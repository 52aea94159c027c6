"""The `guanwei` command. Thin: parse arguments, call the library, print; errors are one line."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.config import ConfigError, Settings, load_settings
from bot.ids import record_id
from bot.inbound import strip_controls
from bot.logs import setup_logging
from bot.storage import Database

T = TypeVar("T")

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="guanwei 官微 — answers the public on the bureau's WeChat and Weibo accounts.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
users_app = typer.Typer(no_args_is_help=True, help="Console accounts.")
app.add_typer(users_app, name="users")
kb_app = typer.Typer(no_args_is_help=True, help="The FAQ knowledge base (answers sent at once to routine questions).")
app.add_typer(kb_app, name="kb")
out = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="config.yaml (default: ./config.yaml or $GUANWEI_CONFIG)")
]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def fail_about(name: object, problem: object) -> NoReturn:
    """`name: problem` on one line; said once when the problem already starts with the name (library errors
    about a file often do: "faq.txt: unknown file type")."""
    text, prefix = str(problem), f"{name}:"
    fail(text if text.startswith(prefix) else f"{prefix} {text}")


def _no_inquiry(inquiry_id: int) -> NoReturn:
    fail(f"INQUIRY_ID: no inquiry {inquiry_id}")


def _possible_inquiry(inquiry_id: int) -> int:
    """INQUIRY_ID as typed, if a row could have it (ids are 64-bit); else the error of a missing one."""
    if record_id(inquiry_id) is None:
        _no_inquiry(inquiry_id)
    return inquiry_id


InquiryArgument = Annotated[int, typer.Argument(help="the inquiry's number", callback=_possible_inquiry)]


def settings_or_exit(config: Path | None, *, channels: bool = True) -> Settings:
    try:
        return load_settings(config, channels=channels)
    except ConfigError as exc:
        fail(str(exc))


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _database_error(exc: Exception) -> NoReturn:
    fail(f"GUANWEI_DATABASE_URL: cannot use the database: {_first_line(exc)}")


def _is_database_error(exc: BaseException) -> bool:
    """Whether the database (or the way to it) failed: only then is GUANWEI_DATABASE_URL to blame."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.storage import StorageUnavailable

    # OSError: connection refused, unknown host, timeout, an unwritable SQLite directory.
    return isinstance(exc, (StorageUnavailable, SQLAlchemyError, OSError))


async def _with_current_schema(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` on the configured database once its schema is known to be current."""
    from bot.migrate import SchemaOutOfDate, ensure_current

    database = Database(settings.database_url)
    try:
        await ensure_current(database.engine, settings.database_url)
        return await work(database)
    except (SchemaOutOfDate, ConfigError) as exc:
        fail(str(exc))
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as exc:
        if _is_database_error(exc):
            _database_error(exc)
        # Not the database's fault, and not one the command knows how to explain: say what it was, in one line.
        fail(f"unexpected error ({type(exc).__name__}): {_first_line(exc)}")
    finally:
        await database.dispose()


async def _schema_checked(_database: Database) -> None:
    """Nothing more to do: `_with_current_schema` has checked it."""


@app.command()
def init(config: ConfigOption = None) -> None:
    """First run: write development secrets to ./.env (if absent) and create the database."""
    env_path = Path(".env")
    if env_path.exists():
        out.print(f"{env_path} exists; keeping its values.")
    else:
        aes_key = base64.b64encode(secrets.token_bytes(32)).decode()[:43]
        env_path.write_text(
            "# Development secrets written by `guanwei init`. Never commit this file.\n"
            "# In production set these from the WeChat / Weibo admin consoles (environment or secret store).\n"
            f"GUANWEI_WECHAT_TOKEN={secrets.token_hex(16)}\n"
            f"GUANWEI_WECHAT_APPID=wx{secrets.token_hex(8)}\n"
            f"GUANWEI_WECHAT_AES_KEY={aes_key}\n"
            f"GUANWEI_WEIBO_APP_SECRET={secrets.token_hex(16)}\n"
            "# For answers sent from the console (customer-service messages, Weibo active replies):\n"
            f"GUANWEI_WECHAT_APPSECRET={secrets.token_hex(16)}\n"
            f"GUANWEI_WEIBO_ACCESS_TOKEN={secrets.token_hex(16)}\n",
            encoding="utf-8",
        )
        env_path.chmod(0o600)
        out.print(f"wrote development secrets to {env_path} (mode 600)")
    db_upgrade(config)
    settings = settings_or_exit(config)
    if asyncio.run(_with_current_schema(settings, _faq_count)) == 0:
        from knowledge.faq import FAQ_FILE

        _import_faq(settings, FAQ_FILE, merge=False)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Create the schema or bring it up to date (SQLite and PostgreSQL)."""
    from bot.migrate import head_revision, upgrade

    settings = settings_or_exit(config)
    try:
        upgrade(settings.database_url)
    except Exception as exc:  # connection refused, permission denied, unknown database...
        _database_error(exc)
    out.print(f"database schema at revision {head_revision(settings.database_url)}")


async def _faq_count(database: Database) -> int:
    from bot.knowledge_runtime import load_faq_entries

    return len(await load_faq_entries(database))


def _import_faq(settings: Settings, path: Path, *, merge: bool) -> None:
    from sqlalchemy import select

    from bot.knowledge_runtime import record_to_dict
    from bot.pipeline import utc_now
    from bot.storage import FaqRecord, save_faq_entries
    from knowledge.faq import FaqFormatError, entries_from_dicts, entries_to_dicts, load_entries, validate_entries

    try:
        entries = load_entries(path, departments=settings.departments)
    except FaqFormatError as exc:
        fail(str(exc))
    except OSError as exc:
        fail_about(path, exc.strerror or exc)
    if not entries and not merge:
        fail(f"{path}: no entries; importing it would empty the live knowledge base")
    from bot.knowledge_runtime import unfit_answers
    from knowledge.screening import Screener

    unfit = unfit_answers(entries, Screener.load())
    for entry_id, why in unfit.items():
        err.print(f"{path}: entry {entry_id}: {why}", highlight=False, soft_wrap=True)
    if unfit:
        fail(f"{path}: {len(unfit)} answer(s) fail the answer screening (R9, R10), nothing imported: "
             "an FAQ answer is sent with nobody reading it first", code=1)
    from bot.inbound import Channel
    from bot.outbound import reply_too_long
    from bot.replies import LONGEST_INQUIRY_ID, ReplyWriter

    replies = ReplyWriter(settings.file.replies, settings.file.bureau_name, settings.tz)
    too_long = {}
    for entry in entries:  # the reply is the answer in the auto-reply wording; Weibo and WeChat never cut it
        reply = replies.faq_answer(answer=entry.answer, inquiry_id=LONGEST_INQUIRY_ID)
        if whys := [why for channel in (Channel.WEIBO, Channel.WECHAT) if (why := reply_too_long(channel, reply))]:
            too_long[entry.id] = "；".join(whys)
    for entry_id, why in too_long.items():
        err.print(f"{path}: entry {entry_id}: {why}", highlight=False, soft_wrap=True)
    if too_long:
        fail(f"{path}: {len(too_long)} answer(s) do not fit one message with the auto-reply wording, nothing "
             "imported: the follower would get the answer cut short", code=1)

    async def save(database: Database) -> tuple[int, int, int] | str:
        async with database.transaction() as session:
            live = {record.id: record_to_dict(record) for record in (await session.scalars(select(FaqRecord)))}
            if merge:  # the file is valid on its own; the merged whole must be too, or the server could not use it
                merged = {**live, **{row["id"]: row for row in entries_to_dicts(entries)}}
                try:
                    validate_entries(entries_from_dicts(merged.values(), validate=False), where="entry")
                except FaqFormatError as exc:
                    return exc.problem
            written, removed = await save_faq_entries(session, entries_to_dicts(entries), utc_now(),
                                                      replace_all=not merge)
            return written, removed, sum(entry.id in live for entry in entries)

    saved = asyncio.run(_with_current_schema(settings, save))
    if isinstance(saved, str):
        fail(f"{path}: with the live knowledge base: {saved}; nothing imported "
             "(change the question, or give the entry the live entry's id to replace it)")
    written, removed, replaced = saved
    out.print(f"FAQ: {written} entries imported from {path} ({written - replaced} new, {replaced} replacing an entry "
              "of the same id)" + (f", {removed} removed" if removed else "")
              + " (a running server picks them up within its reload interval)", highlight=False)


def _account_action(config: Path | None, action: Callable[..., Awaitable[T]]) -> T:
    """Run `action(session, settings)` in one transaction; a refusal (AccountError) is one line, exit 2."""
    from bot.auth import AccountError

    settings = settings_or_exit(config, channels=False)

    async def run(database: Database) -> T:
        try:
            async with database.transaction() as session:
                return await action(session, settings)
        except AccountError as exc:
            fail(str(exc))

    return asyncio.run(_with_current_schema(settings, run))


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="login name")],
    role: Annotated[str, typer.Option(help="staff, head, info_center, supervisor or admin")],
    department: Annotated[str | None, typer.Option(help="department key, for staff and head")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
    config: ConfigOption = None,
) -> None:
    """Create a console account (the password is read from stdin, never from the command line)."""
    from bot.auth import add_user
    from bot.pipeline import utc_now

    settings_or_exit(config, channels=False)  # a broken config is said before the password is asked for
    password = _read_password(password_stdin)
    _account_action(config, lambda session, settings: add_user(
        session, name=name, role=role, department=department, password=password,
        departments=list(settings.departments), now=utc_now()))
    out.print(f"user {name} ({role}{', ' + department if department else ''}) added", highlight=False)


def _read_password(password_stdin: bool) -> str:
    import getpass

    if password_stdin:
        # Bytes, decoded here: whatever the locale makes of stdin, bytes that are not UTF-8 reach the account
        # checks as surrogates, and they say so (never a UnicodeDecodeError, never "the database").
        stdin = getattr(sys.stdin, "buffer", None)
        line = stdin.readline() if stdin is not None else sys.stdin.readline().encode("utf-8", "surrogateescape")
        return line.decode("utf-8", "surrogateescape").rstrip("\r\n")
    if sys.stdin.isatty():
        return getpass.getpass("password: ")
    fail("password: give --password-stdin and pipe it in")


@users_app.command("enable")
def users_enable(name: Annotated[str, typer.Argument(help="login name")], config: ConfigOption = None) -> None:
    """Let a disabled account sign in again."""
    from bot.auth import enable_user
    from bot.pipeline import utc_now

    _account_action(config, lambda session, _settings: enable_user(session, name, now=utc_now()))
    out.print(f"user {name} enabled", highlight=False)


@users_app.command("password")
def users_password(
    name: Annotated[str, typer.Argument(help="login name")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
    config: ConfigOption = None,
) -> None:
    """Set a new password; the account's sessions end at once and a lockout is lifted."""
    from bot.auth import set_password
    from bot.pipeline import utc_now

    settings_or_exit(config, channels=False)
    password = _read_password(password_stdin)
    ended = _account_action(config, lambda session, _settings: set_password(session, name, password, now=utc_now()))
    out.print(f"password of {name} changed; {ended} session(s) ended", highlight=False)


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="login name")], config: ConfigOption = None) -> None:
    """Disable an account; its sessions end at once (R4.2)."""
    from bot.auth import disable_user
    from bot.pipeline import utc_now

    ended = _account_action(config, lambda session, _settings: disable_user(session, name, now=utc_now()))
    out.print(f"user {name} disabled; {ended} session(s) ended", highlight=False)


@users_app.command("list")
def users_list(config: ConfigOption = None) -> None:
    """List console accounts."""
    from sqlalchemy import select

    from bot.storage import User

    settings = settings_or_exit(config, channels=False)

    async def run(database: Database) -> list:
        async with database.transaction() as session:
            return list((await session.scalars(select(User).order_by(User.name))).all())

    table = Table(title="users")
    for column in ("name", "role", "department", "state"):
        table.add_column(column)
    for user in asyncio.run(_with_current_schema(settings, run)):
        table.add_row(escape(user.name), user.role, user.department or "-", "disabled" if user.disabled else "active")
    out.print(table)


@kb_app.command("import")
def kb_import(
    file: Annotated[Path, typer.Argument(help="FAQ entries: .yaml, or .csv with id,question,answer,alternates,...")],
    config: ConfigOption = None,
    merge: Annotated[bool, typer.Option(help="keep entries the file does not list (default: replace all)")] = False,
) -> None:
    """Validate a FAQ file and make it the live knowledge base."""
    _import_faq(settings_or_exit(config), file, merge=merge)


@kb_app.command("export")
def kb_export(
    out_file: Annotated[Path, typer.Option("--out", help=".yaml or .csv")] = Path("faq-export.yaml"),
    config: ConfigOption = None,
) -> None:
    """Write the live knowledge base to a file (edit it, then `guanwei kb import` it back)."""
    from bot.knowledge_runtime import load_all_faq_entries
    from knowledge.faq import FaqFormatError, dump_entries, usable_entries

    settings = settings_or_exit(config)
    entries, left_out = usable_entries(asyncio.run(_with_current_schema(settings, load_all_faq_entries)))
    for problem in left_out.values():  # rows written some other way than an import; the server does not use them
        err.print(f"warning: left out (the server does not answer with it either): {problem}", highlight=False,
                  soft_wrap=True)
    try:
        dump_entries(entries, out_file)
    except (FaqFormatError, OSError) as exc:
        fail_about(out_file, exc.strerror if isinstance(exc, OSError) and exc.strerror else exc)
    out.print(f"FAQ: {len(entries)} entries written to {out_file}", highlight=False)


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="listen address (default from config.yaml)")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="listen port (default from config.yaml)")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes sharing the port "
                                         "(more than one needs GUANWEI_REDIS_URL)")] = 1,
    json_logs: Annotated[bool, typer.Option("--json-logs", help="one JSON object per log line")] = False,
) -> None:
    """Run the webhook server and the console (SIGTERM or Ctrl+C: in-flight requests finish first)."""
    import multiprocessing

    settings = settings_or_exit(config)
    if workers > 1 and not settings.redis_url:
        fail("--workers: more than one worker needs GUANWEI_REDIS_URL (message claims and replay memory are "
             "shared through Redis; without it each worker would only know its own)")
    host = host or settings.file.server.host
    port = port or settings.file.server.port
    if workers == 1:
        _serve_worker(config, host, port, json_logs, parent_pid=None)
        return
    # Every worker binds the same port (SO_REUSEPORT) and the kernel spreads connections over them;
    # the scheduler runs in whichever worker holds the Redis lock.
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_serve_worker, args=(config, host, port, json_logs, os.getpid()),
                                daemon=False)
                for _ in range(workers)]
    told: set[int] = set()

    def stop_workers(_signum: int, _frame: object) -> None:
        # Each worker in a process group of its own hears one SIGTERM, from here: whether the stop came from
        # Ctrl+C, `kill` of this process or a supervisor. A second signal would cut its graceful shutdown short.
        for child in children:
            if child.pid is not None and child.pid not in told and child.is_alive():
                told.add(child.pid)
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_workers)
    signal.signal(signal.SIGINT, stop_workers)
    for child in children:
        child.start()
    for child in children:
        child.join()  # each finishes its in-flight requests first (up to 30 s)
    # A worker still starting when the stop came has no graceful shutdown yet: ended by our SIGTERM, it stopped
    # as asked. Any other non-zero exit is a failure.
    if any(child.exitcode not in (0, None) and not (child.pid in told and child.exitcode == -signal.SIGTERM)
           for child in children):
        raise typer.Exit(1)


def _stop_with_parent(parent_pid: int) -> None:
    """A worker whose parent was killed outright (SIGKILL) gets SIGTERM instead of serving on alone (Linux)."""
    import ctypes
    import ctypes.util

    with suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    # The death signal is only armed from here on: a parent killed while this worker was still starting (a
    # second on a loaded machine) left it serving alone, adopted by init.
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


def _serve_worker(config: Path | None, host: str, port: int, json_logs: bool, parent_pid: int | None) -> None:
    """Serve alone (`parent_pid` None), or as one of several workers started by `parent_pid` on a shared port."""
    from aiohttp import web

    from bot.app import create_app
    from knowledge import KnowledgeDataError
    from knowledge.faq import FaqFormatError
    from knowledge.screening import ScreeningDataError

    reuse_port = parent_pid is not None
    if parent_pid is not None:
        os.setpgrp()  # out of the terminal's process group: stop signals come from the parent, once
        _stop_with_parent(parent_pid)
    setup_logging(json=json_logs)
    settings = settings_or_exit(config)

    async def checked_app() -> web.Application:
        await _with_current_schema(settings, _schema_checked)
        return create_app(settings, reload_on_sighup=True, run_scheduler=True)

    channels = [name for name, on in (("/wechat", settings.wechat), ("/weibo", settings.weibo_app_secret)) if on]
    banner = (f"guanwei serving {', '.join(channels) or 'no channel'} and /console on http://{host}:{port}"
              f"{' (one of several workers)' if reuse_port else ''} (Ctrl+C stops)")
    try:
        # `print` runs once the socket is bound: a failed start never looks like a working one.
        web.run_app(checked_app(), host=host, port=port, access_log=None, reuse_port=reuse_port or None,
                    shutdown_timeout=30.0, print=lambda _text: err.print(banner, highlight=False))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc} (another server running? try --port)")
    except (KnowledgeDataError, ScreeningDataError, FaqFormatError) as exc:
        # a running server keeps its previous lists after a broken edit; at start there are none to keep
        fail(f"cannot start: {exc} (fix the file; a running server keeps its previous lists meanwhile)")


@app.command()
def classify(
    config: ConfigOption = None,
    faq_file: Annotated[Path | None, typer.Option("--faq", help="FAQ file to match against "
                                                  "(default: the live knowledge base, else the shipped one)")] = None,
) -> None:
    """Classify messages from stdin, one per line (plain text or JSON with a "text" field).

    Prints one JSON object per line: severity, department, confidence (of the routing), score,
    matched terms, faq (the entry a routine question would be answered with, or null).
    """
    from knowledge import Classifier, KnowledgeDataError
    from knowledge.faq import FaqMatcher

    setup_logging("WARNING")
    settings = settings_or_exit(config, channels=False)
    try:
        classifier = Classifier.load(departments=settings.departments, fallback=settings.file.fallback_department)
    except KnowledgeDataError as exc:
        fail(str(exc))
    faq = FaqMatcher(_faq_entries_for_classify(settings, faq_file))
    refused = 0
    for number, raw in enumerate(sys.stdin.buffer, 1):
        try:
            # GBK or UTF-16 read as UTF-8 would be classified as noise, silently: refused instead
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            line, problem = "x", (f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at {exc.start}); convert it first, "
                                  "e.g. iconv -f GBK -t UTF-8")
        else:
            problem = None
        if not line.strip():
            continue
        text, problem = (line, problem) if problem is not None else _classify_input(line)
        if problem is not None:
            # Still one output line per message (blank lines carry none), so outputs line up with the messages.
            refused += 1
            err.print(f"line {number}: {problem}", highlight=False)
            print(json.dumps({"line": number, "error": problem}, ensure_ascii=False), flush=True)
            continue
        result = classifier.classify(text).to_dict()
        match = faq.match(text) if result["severity"] == "routine" else None
        result.update(confidence=result.pop("department_confidence"), faq=match.entry.id if match else None)
        print(json.dumps(result, ensure_ascii=False), flush=True)
    if refused:
        raise typer.Exit(1)


def _faq_entries_for_classify(settings: Settings, faq_file: Path | None) -> list:
    from bot.knowledge_runtime import load_faq_entries
    from bot.migrate import ensure_current
    from knowledge.faq import FAQ_FILE, FaqFormatError, load_entries

    if faq_file is None:
        async def live() -> list:
            database = Database(settings.database_url)
            try:
                await ensure_current(database.engine, settings.database_url)
                return await load_faq_entries(database)
            finally:
                await database.dispose()

        try:
            entries = asyncio.run(live())
        except Exception as exc:  # no database yet: classification works without one
            err.print(f"(live knowledge base not readable: {type(exc).__name__}; using {FAQ_FILE.name})",
                      highlight=False)
            entries = []
        if entries:
            return entries
        faq_file = FAQ_FILE
    try:
        return load_entries(faq_file, departments=settings.departments)
    except FaqFormatError as exc:
        fail(str(exc))
    except OSError as exc:
        fail_about(faq_file, exc.strerror or exc)


def _classify_input(line: str) -> tuple[str, str | None]:
    """The text to classify from one input line, or the reason it has none."""
    if not line.lstrip().startswith("{"):
        return line, None
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return "", f"not valid JSON ({exc.msg})"
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        return "", 'JSON without a string "text" field'
    return value["text"], None


@app.command("eval")
def evaluate_command(
    file: Annotated[Path, typer.Argument(help="labelled messages, JSON lines with text, severity, department")],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    show: Annotated[int, typer.Option(min=0, help="at most this many misclassified lines")] = 50,
) -> None:
    """Measure the classifier on a labelled file: critical recall/precision/F1, department accuracy, confusions.

    Exits 1 when a goal (recall ≥ 0.95, precision ≥ 0.85, department accuracy ≥ 0.85) is missed.
    """
    from knowledge import Classifier, KnowledgeDataError
    from knowledge.evaluation import evaluate, load_examples, render_report

    setup_logging("WARNING")
    settings = settings_or_exit(config, channels=False)
    try:
        examples = load_examples(file, departments=list(settings.departments))
    except (ValueError, OSError) as exc:
        fail_about(file, getattr(exc, "strerror", None) or exc)
    if not examples:
        fail(f"{file}: no examples")
    try:
        classifier = Classifier.load(departments=settings.departments, fallback=settings.file.fallback_department)
    except KnowledgeDataError as exc:
        fail(str(exc))
    report = evaluate(classifier, examples, departments=list(settings.departments))
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        for renderable in render_report(report, max_misclassified=show):
            out.print(renderable)
    if not report.goals_met:
        raise typer.Exit(1)


@app.command()
def inquiries(
    config: ConfigOption = None,
    status: Annotated[str | None, typer.Option(help="open, answered or closed")] = None,
    department: Annotated[str | None, typer.Option(help="department key, e.g. market")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON array")] = False,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="at most this many")] = 1000,
) -> None:
    """List inquiries, soonest deadline first."""
    from bot.inquiries import inquiry_rows
    from bot.storage import KNOWLEDGE_BASE, WEAK_ROUTING, InquiryStatus

    settings = settings_or_exit(config, channels=False)
    if status is not None and status not in InquiryStatus.ALL:
        fail(f"--status: must be one of {', '.join(InquiryStatus.ALL)}")
    if department is not None and department not in settings.departments:
        fail(f"--department: unknown key {department!r} (known: {', '.join(settings.departments)})")
    rows = asyncio.run(_with_current_schema(
        settings, lambda database: inquiry_rows(database, settings, status=status, department=department, limit=limit)
    ))
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{len(rows)} inquiries (times {settings.file.timezone}; (?) = routing uncertain, "
                        "(FAQ) = answered by the knowledge base)")
    for column in ("id", "channel", "severity", "department", "status", "received", "due", "summary"):
        table.add_column(column, overflow="fold")
    for row in rows:
        confidence = "" if row["department_confidence"] >= WEAK_ROUTING else " [yellow](?)[/]"  # weak: check it
        table.add_row(
            str(row["id"]), row["channel"],
            f"[bold red]{row['severity']}[/]" if row["severity"] == "critical" else row["severity"],
            escape(row["department_name"]) + confidence,
            row["status"] + (" (FAQ)" if row.get("answered_by") == KNOWLEDGE_BASE else ""),
            row["received_at"][5:16].replace("T", " "),
            row["due_at"][5:16].replace("T", " "), escape(strip_controls(row["summary"][:40])),
        )
    out.print(table)


@app.command()
def show(
    inquiry_id: InquiryArgument,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """One inquiry: classification, deadline, the whole conversation and its alerts."""
    from bot import storage
    from bot.inquiries import alert_row, inquiry_row

    settings = settings_or_exit(config, channels=False)

    async def load(database: Database) -> dict | None:
        async with database.transaction() as session:
            inquiry = await session.get(storage.Inquiry, inquiry_id)
            if inquiry is None:
                return None
            messages = await storage.messages_of(session, inquiry_id)
            alerts = await storage.list_alerts(session, inquiry_id=inquiry_id)
            return {
                **inquiry_row(inquiry, settings),
                "messages": [{"direction": m.direction, "kind": m.kind, "at": m.recorded_at.astimezone(settings.tz)
                              .isoformat(), "content": m.content, "author": m.author, "delivery": m.delivery_status,
                              "delivery_reason": m.delivery_reason} for m in messages],
                "alerts": [alert_row(record, inq, settings) for record, inq in alerts],
            }

    found = asyncio.run(_with_current_schema(settings, load))
    if found is None:
        _no_inquiry(inquiry_id)
    if as_json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
        return
    out.print(f"[bold]留言 {found['ref']}[/]  {found['channel']}  {found['severity']}  "
              f"{escape(found['department_name'])} (confidence {found['department_confidence']})  {found['status']}")
    out.print(f"received {found['received_at']}  due {found['due_at']}  cycle {found['cycle']}  "
              f"matched: {escape('、'.join(found['matched']) or '-')}", highlight=False)
    for message in found["messages"]:
        arrow = "→ 网友" if message["direction"] == "out" else "网友 →"
        out.print(f"  {message['at'][5:16].replace('T', ' ')} {arrow} " + escape(f"[{message['kind']}] ")
                  + escape(strip_controls(message["content"])) + _delivery_note(message), highlight=False)
    for alert in found["alerts"]:
        out.print(f"  ! {alert['fire_at'][5:16].replace('T', ' ')} {alert['kind']} {alert['level'] or ''} "
                  f"{alert['status']}", highlight=False)


def _delivery_note(message: dict) -> str:  # type: ignore[type-arg]
    """A staff answer's fate, as the console shows it; one that did not reach the netizen is marked ✗."""
    from bot.outbound import DELIVERED, STATUS_NAMES

    status = message.get("delivery")
    if not status:
        return ""  # the immediate replies and the netizen's own messages
    by = f"{message['author']}, " if message.get("author") else ""
    reason = f": {message['delivery_reason']}" if message.get("delivery_reason") else ""
    mark = "" if status == DELIVERED else "[bold red]✗[/] "
    return f"  ({mark}{escape(by + STATUS_NAMES.get(status, status) + strip_controls(reason))})"


@app.command()
def escalations(
    config: ConfigOption = None,
    open_only: Annotated[bool, typer.Option("--open", help="only for inquiries still waiting for an answer")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON array")] = False,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="at most this many")] = 1000,
) -> None:
    """List reminders, chases and escalations, newest first, with who was told and whether it got through."""
    from bot.inquiries import alert_rows

    settings = settings_or_exit(config, channels=False)
    rows = asyncio.run(_with_current_schema(
        settings, lambda database: alert_rows(database, settings, open_only=open_only, limit=limit)
    ))
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{len(rows)} alerts (times {settings.file.timezone})")
    for column in ("inquiry", "kind", "rung", "due to fire", "status", "recipients"):
        table.add_column(column, overflow="fold")
    for row in rows:
        who = ", ".join(f"{r['name']}{'' if r['ok'] else '✗'}" for r in row["recipients"]) or "-"
        table.add_row(row["inquiry_ref"], row["kind"], str(row["level"] or ""), row["fire_at"][5:16].replace("T", " "),
                      row["status"], escape(who))
    out.print(table)


def _parse_time(value: str, name: str) -> datetime:
    from bot.inbound import EARLIEST, LATEST

    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"{name}: {value!r} is not an ISO 8601 time (e.g. 2026-12-04T17:45+08:00)")
    if parsed.tzinfo is None:
        fail(f"{name}: {value!r} has no offset; add one (+08:00) or Z")
    if not EARLIEST <= parsed < LATEST:  # what a message can carry; deadlines and ladders stay inside the calendar
        fail(f"{name}: {value!r} is outside the years guanwei deals in ({EARLIEST.year}–{LATEST.year - 1})")
    return parsed


@app.command()
def sweep(
    config: ConfigOption = None,
    at: Annotated[str | None, typer.Option(help="act as if it were this time (ISO 8601 with offset)")] = None,
) -> None:
    """Run one scheduler sweep: record due reminders and escalations, deliver what is pending."""
    import aiohttp

    from bot.alerts import build_scheduler
    from bot.pipeline import utc_now

    setup_logging()
    settings = settings_or_exit(config, channels=False)
    moment = _parse_time(at, "--at") if at else None

    async def run(database: Database) -> None:
        async with aiohttp.ClientSession() as session:
            scheduler = build_scheduler(settings, database, session, clock=(lambda: moment) if moment else utc_now)
            report = await scheduler.sweep()
        out.print(f"recorded {report.recorded} alert(s); delivered {report.delivered}, failed {report.failed}, "
                  f"{report.waiting} routine alert(s) waiting for reply hours", highlight=False)

    try:
        asyncio.run(_with_current_schema(settings, run))
    except ConfigError as exc:
        fail(str(exc))


@app.command()
def chase(
    inquiry_id: InquiryArgument,
    by: Annotated[str, typer.Option(help="who chases (recorded)")],
    note: Annotated[str, typer.Option(help="what to tell the department")] = "",
    config: ConfigOption = None,
) -> None:
    """催办: chase a department about an inquiry; recorded now, delivered by the next sweep (R7.3b)."""
    from bot.alerts import record_chase
    from bot.pipeline import utc_now

    if not by.strip():
        fail("--by: say who chases (it is recorded and shown to the department)")
    settings = settings_or_exit(config, channels=False)

    async def run(database: Database) -> None:
        try:
            await record_chase(database, inquiry_id, by=by.strip(), note=note, now=utc_now())
        except LookupError:
            _no_inquiry(inquiry_id)
        except ValueError as exc:
            fail(f"INQUIRY_ID: {exc}")

    asyncio.run(_with_current_schema(settings, run))
    out.print(f"chase recorded for inquiry {inquiry_id}; the scheduler delivers it within its sweep interval")


@app.command()
def deadline(
    received_at: Annotated[str, typer.Argument(help="ISO 8601 with offset, e.g. 2026-12-04T17:45+08:00 or ...Z")],
    severity: Annotated[str, typer.Option(help="routine or critical")] = "routine",
    config: ConfigOption = None,
) -> None:
    """Print when the first answer to a message received at RECEIVED_AT is due (R6.1b, R6.1d)."""
    from escalation.calendar import BusinessCalendar
    from escalation.sla import SEVERITIES, first_response_due

    settings = settings_or_exit(config, channels=False)
    if severity not in SEVERITIES:
        fail(f"--severity: must be one of {', '.join(SEVERITIES)}")
    received = _parse_time(received_at, "RECEIVED_AT")
    try:
        due = first_response_due(received, severity, settings.sla, BusinessCalendar(settings.reply_hours))
    except (ValueError, OverflowError) as exc:
        fail(f"RECEIVED_AT: {exc}")
    print(due.isoformat())


@app.command("fake-platform")
def fake_platform(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="listen address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="listen port")] = 8081,
) -> None:
    """A fake WeChat + Weibo platform on loopback that records the answers staff send (for trying out).

    Start guanwei with GUANWEI_PLATFORM_API_URL=http://127.0.0.1:8081 to send answers here.
    """
    from bot.config import environment
    from bot.fake_platform import run_fake_platform

    settings = settings_or_exit(config)
    env = environment()
    secret, token = env.get("GUANWEI_WECHAT_APPSECRET", ""), env.get("GUANWEI_WEIBO_ACCESS_TOKEN", "")
    if not secret or not token or settings.wechat is None:
        fail("GUANWEI_WECHAT_APPSECRET, GUANWEI_WEIBO_ACCESS_TOKEN: not set (`guanwei init` writes development ones)")
    try:
        asyncio.run(run_fake_platform(host, port, appid=settings.wechat.appid, secret=secret, weibo_token=token))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        pass


@app.command()
def simulate(
    config: ConfigOption = None,
    url: Annotated[str, typer.Option(help="the running server")] = "http://127.0.0.1:8080",
) -> None:
    """Send realistic follower messages to a running server, signed as the platforms sign."""
    import aiohttp

    from bot.simulate import Simulator, load_script

    settings = settings_or_exit(config)
    simulator = Simulator(settings, url)
    script = load_script()

    async def run() -> list:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return await simulator.run(session, script)

    try:
        exchanges = asyncio.run(run())
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        fail(f"cannot reach {url}: {exc or type(exc).__name__} (is `guanwei serve` running?)")
    table = Table(title=f"guanwei simulate → {url}", show_lines=True)
    for column in ("#", "sent as", "follower wrote", "HTTP", "reply the follower sees"):
        table.add_column(column, overflow="fold")
    for n, exchange in enumerate(exchanges, 1):
        status = str(exchange.status) if exchange.status == 200 else f"[red]{exchange.status}[/]"
        table.add_row(str(n), exchange.label, exchange.said, status, exchange.reply)
    out.print(table)
    if any(e.status != 200 for e in exchanges):
        raise typer.Exit(1)


def main() -> None:
    app()


import bot.cli_publishing  # noqa: E402,F401  registers `media check` and `publishing …` on `app`
from bot import cli_report  # noqa: E402,F401  registers `report` and `demo-data` on `app`

if __name__ == "__main__":
    # `python -m bot.cli` runs this file as a second module, __main__; cli_report registered its commands on
    # the app of `bot.cli`, so run that one.
    from bot.cli import main as main_with_every_command

    main_with_every_command()
