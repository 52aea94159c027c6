"""The staff console: server-rendered pages (work without JavaScript, usable on a phone)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot import auth, report, staff
from bot.access import ROLE_NAMES
from bot.context import (
    CLOCK,
    DATABASE,
    EVENTS,
    OUTBOUND,
    PIPELINE,
    REFUSAL_REASON,
    SETTINGS,
    SHARED_STATE,
    screener,
)
from bot.ids import record_id
from bot.outbound import STATUS_NAMES
from bot.replies import inquiry_ref
from bot.storage import WEAK_ROUTING
from handlers.web_auth import ACTOR, COOKIE, CSRF, CSRF_FIELD, TOKEN, actor, form_value, public, remote, requires

routes = web.RouteTableDef()
KINDS = {"text": "文字", "image": "图片", "voice": "语音", "video": "视频", "shortvideo": "小视频",
         "location": "位置", "link": "链接", "event": "事件", "unknown": "其他"}
STATUS = {"open": "待答复", "answered": "已答复", "closed": "已关闭"}
ALERT_KINDS = {"reminder": "催办提醒", "escalation": "逐级上报", "chase": "人工催办"}
DELIVERY = STATUS_NAMES
ACTIONS = {"answer": "答复", "transfer": "转交", "confirm": "确认分办", "close.spam": "标记为垃圾信息",
           "close.duplicate": "标记为重复留言", "close.settled": "线下办结", "chase": "催办"}


def setup_templates(app: web.Application) -> None:
    # No context_processors: that middleware keeps state under a string request key. `render` adds
    # the common context itself.
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.PackageLoader("handlers", "templates"), autoescape=jinja2.select_autoescape(["html"]),
    )
    env.globals.update(KINDS=KINDS, STATUS=STATUS, ALERT_KINDS=ALERT_KINDS, DELIVERY=DELIVERY, ACTIONS=ACTIONS,
                       ROLE_NAMES=ROLE_NAMES, ref=inquiry_ref)


async def render(request: web.Request, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
    response = aiohttp_jinja2.render_template(template, request, {**_context(request), **context}, status=status)
    if status >= 400:  # the reason shown on the page also goes to the log (bot.app's refusal line)
        verdict = context.get("verdict")
        reason = context.get("error") or (
            "screening blocked: " + ", ".join(f.category for f in verdict.findings) if verdict is not None else None)
        if reason:
            response[REFUSAL_REASON] = str(reason)
    return response


def _context(request: web.Request) -> dict[str, Any]:
    settings = request.app[SETTINGS]
    now = request.app[CLOCK]()
    calendar = request.app[PIPELINE].calendar

    def local(t: datetime | None) -> str:
        return t.astimezone(settings.tz).strftime("%m-%d %H:%M") if t else ""

    def time_left(due: datetime, severity: str = "critical") -> str:
        """A critical inquiry's hour runs day and night (R6.1d); a routine one's two hours run in reply hours
        only (R6.1b), so "剩余2天" over a weekend would mislead: it is counted in working time."""
        if due <= now:
            return f"已超时{_span(int((now - due).total_seconds() // 60))}"
        if severity == "critical":
            return f"剩余{_span(int((due - now).total_seconds() // 60))}"
        return f"剩余工作时间{_span(int(calendar.working_minutes_between(now, due)))}"

    return {"me": request.get(ACTOR), "csrf": request.get(CSRF, ""), "CSRF_FIELD": CSRF_FIELD,
            "departments": settings.departments, "local": local, "time_left": time_left, "now": now,
            "bureau": settings.file.bureau_name, "weak_routing": WEAK_ROUTING}


def _span(minutes: int) -> str:
    if minutes < 60:
        return f"{minutes}分钟"
    hours, rest = divmod(minutes, 60)
    return f"{hours}小时{rest}分" if hours < 48 else f"{hours // 24}天"


def _inquiry_id(request: web.Request) -> int:
    found = record_id(request.match_info["inquiry_id"])
    if found is None:  # not a number, or one no row can have (ids are 64-bit)
        raise web.HTTPNotFound(text=NOT_FOUND)
    return found


NOT_FOUND = "没有这条留言，或不属于您的部门"
KB_ANSWERED_DAYS = 7  # how far back the list of what the FAQ answered on its own goes


def _answers_seen(form: Any) -> int | None:
    """The delivered staff answers the page showed when it was drawn (the form always sends it; left out, 0:
    first-answer semantics, as in the API); None when it is not a count: the form was not this console's."""
    value = form_value(form, "answers_seen", 7)
    if not value:
        return 0
    return int(value) if len(value) <= 6 and value.isascii() and value.isdigit() else None


@routes.get("/console/login")
@public
async def login_page(request: web.Request) -> web.StreamResponse:
    return await render(request, "login.html", {"error": None})


@routes.post("/console/login")
@public
async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    async with request.app[DATABASE].transaction() as session:
        result = await auth.login(session, form_value(form, "username", 64), form_value(form, "password", 256),
                                  now=request.app[CLOCK](), remote=remote(request))
    if result.problem == "no password":
        return await render(request, "login.html", {"error": "请输入用户名和密码"}, status=400)
    if result.actor is None or result.token is None:
        error = "登录尝试过多，请15分钟后再试" if result.problem == "throttled" else "用户名或密码错误"
        return await render(request, "login.html", {"error": error}, status=401)
    response = web.HTTPSeeOther("/console")
    response.set_cookie(COOKIE, result.token, httponly=True, samesite="Strict", path="/",
                        secure=request.secure, max_age=int(auth.SESSION_LIFETIME.total_seconds()))
    raise response


@routes.post("/console/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    async with request.app[DATABASE].transaction() as session:
        await auth.logout(session, request[TOKEN], now=request.app[CLOCK](), actor=actor(request).name,
                          remote=remote(request))
    response = web.HTTPSeeOther("/console/login")
    response.del_cookie(COOKIE, path="/")
    raise response


@routes.get("/console")
@requires("view")
async def my_queue(request: web.Request) -> web.StreamResponse:
    items = await staff.queue(request.app[DATABASE], actor(request))
    return await render(request, "queue.html", {"items": items, "title": "我的待办"})


@routes.get("/console/knowledge-base")
@requires("view")
async def answered_by_the_knowledge_base(request: web.Request) -> web.StreamResponse:
    since = request.app[CLOCK]() - timedelta(days=KB_ANSWERED_DAYS)
    items = await staff.answered_by_knowledge_base(request.app[DATABASE], actor(request), since=since)
    return await render(request, "kb_answered.html", {"items": items, "days": KB_ANSWERED_DAYS,
                                                      "title": "知识库自动答复"})


@routes.get("/console/inquiries/{inquiry_id}")
@requires("view")
async def inquiry_page(request: web.Request) -> web.StreamResponse:
    return await _render_inquiry(request, _inquiry_id(request), {})


async def _render_inquiry(request: web.Request, inquiry_id: int, extra: dict[str, Any],
                          status: int = 200) -> web.StreamResponse:
    try:
        found = await staff.detail(request.app[DATABASE], actor(request), inquiry_id)
    except staff.NotFound:
        raise web.HTTPNotFound(text=NOT_FOUND) from None
    return await render(request, "inquiry.html", {"d": found, **extra}, status=status)


@routes.post("/console/inquiries/{inquiry_id}/answer")
@requires("answer")
async def answer_submit(request: web.Request) -> web.StreamResponse:
    inquiry_id = _inquiry_id(request)
    form = await request.post()
    text = form_value(form, "text")
    answers_seen = _answers_seen(form)
    if answers_seen is None:
        problem = {"error": "答复表单不完整，请刷新页面后重新提交", "draft": text}
        return await _render_inquiry(request, inquiry_id, problem, status=400)
    try:
        result = await staff.answer(
            request.app[DATABASE], request.app[OUTBOUND], screener(request.app), actor(request), inquiry_id, text,
            now=request.app[CLOCK](), remote=remote(request), override_reason=form_value(form, "override_reason"),
            state=request.app[SHARED_STATE], answers_seen=answers_seen,
        )
    except staff.NotFound:
        raise web.HTTPNotFound(text=NOT_FOUND) from None
    except staff.DeliveredNotRecorded as exc:
        return await _render_inquiry(request, inquiry_id, {"error": str(exc)}, status=500)
    except staff.Refused as exc:
        status = 409 if isinstance(exc, staff.AnsweredMeanwhile) else 400
        return await _render_inquiry(request, inquiry_id, {"error": str(exc), "draft": text}, status=status)
    if not result.recorded:
        return await _render_inquiry(request, inquiry_id, {"verdict": result.verdict, "draft": text}, status=400)
    raise web.HTTPSeeOther(f"/console/inquiries/{inquiry_id}")


@routes.post("/console/inquiries/{inquiry_id}/transfer")
@requires("transfer")
async def transfer_submit(request: web.Request) -> web.StreamResponse:
    inquiry_id = _inquiry_id(request)
    form = await request.post()
    try:
        await staff.transfer(request.app[DATABASE], actor(request), inquiry_id, form_value(form, "department", 32),
                             form_value(form, "reason"), departments=request.app[SETTINGS].departments,
                             now=request.app[CLOCK](), remote=remote(request))
    except staff.NotFound:
        raise web.HTTPNotFound(text=NOT_FOUND) from None
    except staff.Refused as exc:
        return await _render_inquiry(request, inquiry_id, {"error": str(exc)}, status=400)
    # After a transfer out of one's own department the inquiry is no longer visible: back to the queue.
    raise web.HTTPSeeOther("/console" if not actor(request).sees_all else f"/console/inquiries/{inquiry_id}")


@routes.post("/console/inquiries/{inquiry_id}/close")
@requires("close")
async def close_submit(request: web.Request) -> web.StreamResponse:
    inquiry_id = _inquiry_id(request)
    form = await request.post()
    try:
        await staff.close(request.app[DATABASE], actor(request), inquiry_id, form_value(form, "kind", 16),
                          form_value(form, "reason"), now=request.app[CLOCK](), remote=remote(request))
    except staff.NotFound:
        raise web.HTTPNotFound(text=NOT_FOUND) from None
    except staff.Refused as exc:
        return await _render_inquiry(request, inquiry_id, {"error": str(exc)}, status=400)
    raise web.HTTPSeeOther(f"/console/inquiries/{inquiry_id}")


@routes.post("/console/inquiries/{inquiry_id}/chase")
@requires("chase")
async def chase_submit(request: web.Request) -> web.StreamResponse:
    inquiry_id = _inquiry_id(request)
    form = await request.post()
    try:
        await staff.chase(request.app[DATABASE], actor(request), inquiry_id, form_value(form, "note"),
                          now=request.app[CLOCK](), remote=remote(request))
    except staff.NotFound:
        raise web.HTTPNotFound(text=NOT_FOUND) from None
    except staff.Refused as exc:
        return await _render_inquiry(request, inquiry_id, {"error": str(exc)}, status=400)
    raise web.HTTPSeeOther(form_value(form, "back", 200) if form_value(form, "back", 200).startswith("/console")
                           else f"/console/inquiries/{inquiry_id}")


@routes.get("/console/events")
@requires("view")
async def live_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: "changed" whenever an inquiry is stored or acted on; pages reload their list."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    async with request.app[EVENTS].subscribe() as queue:
        while True:
            try:
                line = f"data: {await asyncio.wait_for(queue.get(), timeout=25)}\n\n".encode()
            except TimeoutError:
                line = b": keep-alive\n\n"  # proxies close idle streams
            except asyncio.CancelledError:
                break
            try:
                await response.write(line)
            except ConnectionResetError:  # the tab was closed: the stream ends, nothing went wrong
                break
    return response


@routes.get("/console/board")
@requires("board")
async def escalation_board(request: web.Request) -> web.StreamResponse:
    items = await staff.board(request.app[DATABASE], actor(request))
    return await render(request, "queue.html", {"items": items, "title": "逐级上报督办板", "board": True})


@routes.get("/console/overview")
@requires("overview")
async def overview_page(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    loads = await staff.overview(request.app[DATABASE], actor(request), now=request.app[CLOCK](),
                                 departments=settings.departments)
    everything = await staff.queue(request.app[DATABASE], actor(request))
    overdue = [i for i in everything if i.due_at < request.app[CLOCK]()][:200]
    return await render(request, "overview.html", {"loads": loads, "items": overdue})


@routes.get("/console/report")
@requires("report")
async def report_page(request: web.Request) -> web.StreamResponse:
    return await _render_report_page(request)


async def _render_report_page(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    today = request.app[CLOCK]().astimezone(request.app[SETTINGS].tz)
    this_month = report.Month(today.year, today.month)
    # The report is compiled after the month ends: last month first.
    return await render(request, "report.html", {"months": [this_month.previous(), this_month], "error": error},
                        status=status)


@routes.get("/console/report/download")
@requires("report")
async def report_download(request: web.Request) -> web.StreamResponse:
    """The monthly report as the CLI writes it: ?month=YYYY-MM&format=xlsx|html, an attachment."""
    settings, now = request.app[SETTINGS], request.app[CLOCK]()
    kind = request.query.get("format", "")
    try:
        month = report.Month.parse(request.query.get("month", ""))
    except report.ReportError:
        return await _render_report_page(request, "请选择月份（格式 YYYY-MM，例如 2026-11）", status=400)
    if kind not in ("xlsx", "html"):
        return await _render_report_page(request, "请选择 Excel 或 HTML 格式", status=400)
    made = await report.build_report(request.app[DATABASE], settings, month, as_of=now)
    if kind == "xlsx":
        body = await asyncio.to_thread(report.xlsx_bytes, made)
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        charts = await asyncio.to_thread(report.render_charts, made)  # matplotlib takes seconds: off the loop
        body, content_type = report.render_html(made, charts).encode(), "text/html; charset=utf-8"
    async with request.app[DATABASE].transaction() as session:
        await auth.audit(session, at=now, actor=actor(request).name, action="report.download",
                         target=f"report:{month.key}", remote=remote(request), format=kind)
    name = f"{made.file_stem()}.{kind}"
    return web.Response(body=body, headers={"Content-Type": content_type,
                                            "Content-Disposition": f'attachment; filename="{name}"'})
