"""The publishing desk's HTTP edge: console pages (server-rendered, no JavaScript needed) and /api.

Thin: parse the form or JSON, call `bot.publishing`, render or answer. Refusals are 400 with the
reason; a post outside the user's sight is 404; a role without the permission is 403.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import aiohttp
import redis
from aiohttp import web
from wechatpy.session.redisstorage import RedisStorage

from bot import publishing as desk
from bot.clamd import ClamdScanner
from bot.config import Settings
from bot.context import CLOCK, DATABASE, SETTINGS, screener
from bot.ids import ID_MAX, record_id, record_ids
from bot.media import MB, MediaLimits
from bot.publication_register import register_table, register_xlsx
from bot.publisher import ChannelPublisher, Publisher, WeChatPublisher, WeiboPublisher
from bot.push_plan import PushRules
from bot.report import Month, ReportError, format_cell
from escalation.calendar import BusinessCalendar
from escalation.notifiers import WeChatAPIClient
from handlers.api import OPENAPI, _body, _op, _text
from handlers.console import render
from handlers.web_auth import actor, form_value, remote, requires

routes = web.RouteTableDef()
UPLOAD_LIMIT = 21 * MB  # the largest medium (20 MB of video) and the form around it
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)
ACTION_NAMES = {
    "post.create": "起草", "post.edit": "修改", "post.attach": "添加附件", "post.attach.refused": "附件被拒收",
    "post.detach": "删除附件", "post.submit": "提交审核", "post.review": "办公室审核通过", "post.return": "退回修改",
    "secrecy.fill": "填写保密审查表", "secrecy.approve": "领导审批保密审查表", "post.approve": "领导审批",
    "post.proofread": "信息中心校对",
}


@dataclass
class DeskServices:
    publisher: Publisher
    scanner: ClamdScanner
    rules: PushRules
    calendar: BusinessCalendar
    limits: MediaLimits
    channels: tuple[str, ...]


DESK = web.AppKey("publishing_desk", DeskServices)


def uploads(handler: H) -> H:
    """Mark a route that accepts media files: its body may be up to UPLOAD_LIMIT."""
    handler.max_upload_bytes = UPLOAD_LIMIT  # type: ignore[attr-defined]
    return handler


@web.middleware
async def upload_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Raise the body limit (server.max_body_bytes) for upload routes only; webhooks keep theirs."""
    limit = getattr(request.match_info.handler, "max_upload_bytes", None)
    if limit and request.method == "POST":
        request = request.clone(client_max_size=limit)
    return await handler(request)


def media_limits(settings: Settings) -> MediaLimits:
    media = settings.file.publishing.media
    return MediaLimits(int(media.image_max_mb * MB), int(media.voice_max_mb * MB), media.voice_max_seconds,
                       int(media.video_max_mb * MB))


def clamd_scanner(settings: Settings) -> ClamdScanner:
    config = settings.file.publishing.clamd
    return ClamdScanner(socket=config.socket, host=config.host, port=config.port, timeout=config.timeout_seconds)


def build_publisher(settings: Settings, env: Mapping[str, str], session: aiohttp.ClientSession) -> Publisher:
    api = settings.file.platform_api
    secret = env.get("GUANWEI_WECHAT_APPSECRET", "").strip()
    token = env.get("GUANWEI_WEIBO_ACCESS_TOKEN", "").strip()
    publishers: dict[str, ChannelPublisher] = {}
    if settings.wechat is not None and secret:
        appid, redis_url = settings.wechat.appid, settings.redis_url

        def client() -> WeChatAPIClient:
            storage = RedisStorage(redis.Redis.from_url(redis_url), prefix="guanwei:wechat") if redis_url else None
            return WeChatAPIClient(appid, secret, api_base_url=api.wechat_base_url, session=storage, timeout=60)

        publishers["wechat"] = WeChatPublisher(client)
    if token:
        publishers["weibo"] = WeiboPublisher(session, token, api.weibo_post_base_url)
    return Publisher(publishers)


def setup(app: web.Application, settings: Settings, env: Mapping[str, str]) -> None:
    """Routes and services of the desk; the publisher's HTTP session lives as long as the app."""
    app.add_routes(routes)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app[DESK] = DeskServices(
                build_publisher(settings, env, session), clamd_scanner(settings), PushRules.from_settings(settings),
                BusinessCalendar(settings.reply_hours), media_limits(settings),
                tuple(settings.file.publishing.channels))
            yield

    app.cleanup_ctx.append(lifecycle)


def _id(request: web.Request, name: str) -> int:
    found = record_id(request.match_info[name])
    if found is None:  # not a number, or one no row can have (ids are 64-bit): nothing there
        raise web.HTTPNotFound(text=NOT_FOUND)
    return found


NOT_FOUND = "没有这条信息，或不在您的查看范围内"


def _now(request: web.Request) -> datetime:
    return request.app[CLOCK]()


def _yes(value: str) -> bool | None:
    return {"yes": True, "no": False, "1": True, "0": False, "true": True, "false": False}.get(value.strip().lower())


def _planned_at(text: str, settings: Settings) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise desk.Refused("请填写计划推送时间（YYYY-MM-DD HH:MM）") from None
    return value.replace(tzinfo=settings.tz) if value.tzinfo is None else value


async def _guard(call: Awaitable[Any]) -> Any:
    """bot.publishing's refusals as HTTP: 404 not found, 403 not allowed; Refused is left to the caller."""
    try:
        return await call
    except desk.NotFound:
        raise web.HTTPNotFound(text=NOT_FOUND) from None
    except PermissionError:
        raise web.HTTPForbidden(text="您的角色无权进行此操作") from None


# --------------------------------------------------------------------------- pages

@routes.get("/console/desk")
@requires("desk")
async def desk_page(request: web.Request) -> web.StreamResponse:
    status = request.query.get("status") or None
    posts = await _guard(desk.desk(request.app[DATABASE], actor(request),
                                   status=status if status in desk.STATUS_NAMES else None))
    return await render(request, "desk.html", {"posts": posts, "status": status, "STATUS_NAMES": desk.STATUS_NAMES})


@routes.get("/console/desk/new")
@requires("draft")
async def new_post_page(request: web.Request) -> web.StreamResponse:
    return await render(request, "post_new.html", {"form": {}, "error": None})


@routes.post("/console/desk")
@requires("draft")
async def create_post(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    fields = {name: form_value(form, name, limit) for name, limit in
              (("title", 200), ("body", 20000), ("source", 400), ("department", 32))}
    try:
        post = await _guard(desk.create_post(
            request.app[DATABASE], actor(request), **fields, important=form_value(form, "important") == "1",
            departments=request.app[SETTINGS].departments, now=_now(request), remote=remote(request)))
    except desk.Refused as exc:
        return await render(request, "post_new.html", {"form": fields, "error": str(exc)}, status=400)
    raise web.HTTPSeeOther(f"/console/posts/{post.id}")


async def _post_page(request: web.Request, post_id: int, extra: dict[str, Any] | None = None,
                     status: int = 200) -> web.StreamResponse:
    found = await _guard(desk.post_detail(request.app[DATABASE], actor(request), post_id))
    return await render(request, "post.html", {
        "d": found, "p": found.post, "STATUS_NAMES": desk.STATUS_NAMES, "CHECKS": desk.CHECKS,
        "ACTION_NAMES": ACTION_NAMES, "limits": request.app[DESK].limits, **(extra or {})}, status=status)


@routes.get("/console/posts/{post_id}")
@requires("desk")
async def post_page(request: web.Request) -> web.StreamResponse:
    return await _post_page(request, _id(request, "post_id"))


async def _act(request: web.Request, post_id: int, call: Awaitable[Any]) -> web.StreamResponse:
    try:
        await _guard(call)
    except desk.Refused as exc:
        return await _post_page(request, post_id, {"error": str(exc)}, status=400)
    raise web.HTTPSeeOther(f"/console/posts/{post_id}")


@routes.post("/console/posts/{post_id}/edit")
@requires("draft")
async def edit_post(request: web.Request) -> web.StreamResponse:
    post_id, form = _id(request, "post_id"), await request.post()
    return await _act(request, post_id, desk.update_post(
        request.app[DATABASE], actor(request), post_id, title=form_value(form, "title", 200),
        body=form_value(form, "body", 20000), source=form_value(form, "source", 400),
        important=form_value(form, "important") == "1", now=_now(request), remote=remote(request)))


@routes.post("/console/posts/{post_id}/attachments")
@requires("draft")
@uploads
async def upload_attachment(request: web.Request) -> web.StreamResponse:
    post_id = _id(request, "post_id")
    form = await request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        return await _post_page(request, post_id, {"error": "请选择要上传的文件"}, status=400)
    try:
        data = await asyncio.to_thread(upload.file.read)
    finally:
        upload.file.close()
    try:
        outcome = await _guard(desk.attach(request.app[DATABASE], request.app[DESK].scanner, actor(request), post_id,
                                           upload.filename or "", data, limits=request.app[DESK].limits,
                                           now=_now(request), remote=remote(request)))
    except desk.Refused as exc:
        return await _post_page(request, post_id, {"error": str(exc)}, status=400)
    if not outcome.accepted:
        return await _post_page(request, post_id, {"refused": outcome}, status=400)
    raise web.HTTPSeeOther(f"/console/posts/{post_id}")


@routes.post("/console/posts/{post_id}/attachments/{attachment_id}/delete")
@requires("draft")
async def delete_attachment(request: web.Request) -> web.StreamResponse:
    post_id, attachment_id = _id(request, "post_id"), _id(request, "attachment_id")
    return await _act(request, post_id, desk.remove_attachment(
        request.app[DATABASE], actor(request), post_id, attachment_id, now=_now(request), remote=remote(request)))


@routes.get("/console/posts/{post_id}/attachments/{attachment_id}")
@requires("desk")
async def download_attachment(request: web.Request) -> web.StreamResponse:
    post_id, attachment_id = _id(request, "post_id"), _id(request, "attachment_id")
    found = await _guard(desk.post_detail(request.app[DATABASE], actor(request), post_id))
    for attachment in found.attachments:
        if attachment.id == attachment_id:
            from bot.publisher import MIME

            return web.Response(body=attachment.content, headers={
                "Content-Type": MIME.get(attachment.format, "application/octet-stream"),
                "Content-Disposition": f'attachment; filename="attachment-{attachment.id}.{attachment.format}"',
                "X-Content-Type-Options": "nosniff"})
    raise web.HTTPNotFound(text="没有这个附件")


@routes.post("/console/posts/{post_id}/submit")
@requires("draft")
async def submit_post(request: web.Request) -> web.StreamResponse:
    post_id = _id(request, "post_id")
    return await _act(request, post_id, desk.submit(request.app[DATABASE], screener(request.app), actor(request),
                                                    post_id, now=_now(request), remote=remote(request)))


def _checks(get: Callable[[str], str]) -> dict[str, tuple[bool | None, str]]:
    return {key: (_yes(get(key)), get(f"{key}_comment")) for key in desk.CHECKS}


@routes.post("/console/posts/{post_id}/review")
@requires("review")
async def review_post(request: web.Request) -> web.StreamResponse:
    post_id, form = _id(request, "post_id"), await request.post()
    return await _act(request, post_id, desk.review(
        request.app[DATABASE], actor(request), post_id, _checks(lambda name: form_value(form, name, 1000)),
        now=_now(request), remote=remote(request)))


@routes.post("/console/posts/{post_id}/secrecy")
@requires("draft")
async def secrecy_form(request: web.Request) -> web.StreamResponse:
    post_id, form = _id(request, "post_id"), await request.post()
    return await _act(request, post_id, desk.fill_secrecy_form(
        request.app[DATABASE], actor(request), post_id, contains_secrets=_yes(form_value(form, "contains_secrets", 8)),
        opinion=form_value(form, "opinion", 2000), now=_now(request), remote=remote(request)))


def _note_step(step: Callable[..., Awaitable[Any]], field: str, permission: str) -> Handler:
    """A step that takes one free-text note (an opinion, a reason) from the form."""

    async def handler(request: web.Request) -> web.StreamResponse:
        post_id, form = _id(request, "post_id"), await request.post()
        return await _act(request, post_id, step(request.app[DATABASE], actor(request), post_id,
                                                 **{field: form_value(form, field, 2000)}, now=_now(request),
                                                 remote=remote(request)))

    return requires(permission)(handler)


# The leader approves the secrecy form and the post; the leader (at approval) or the information centre (at
# proofreading) returns a post; the information centre proofreads.
for _path, _call, _field, _permission in (("secrecy/approve", desk.approve_secrecy_form, "opinion", "approve"),
                                          ("approve", desk.approve, "note", "approve"),
                                          ("return", desk.reject, "note", "return"),
                                          ("proofread", desk.proofread, "note", "publish")):
    routes.post(f"/console/posts/{{post_id}}/{_path}")(_note_step(_call, _field, _permission))


async def _pushes_page(request: web.Request, extra: dict[str, Any] | None = None, status: int = 200) -> web.Response:
    services, now = request.app[DESK], _now(request)
    database = request.app[DATABASE]
    week = await desk.current_week(database, calendar=services.calendar, rules=services.rules, now=now)
    from bot.push_plan import week_of

    since, _ = week_of(now, services.rules)
    listed = await _guard(desk.pushes(database, actor(request), since=since))
    ready = [p for p in await _guard(desk.desk(database, actor(request), status=desk.PostStatus.PROOFREAD))]
    return await render(request, "pushes.html", {
        "week": week, "pushes": listed, "ready": ready, "rules": services.rules, "STATUS_NAMES": desk.STATUS_NAMES,
        "default_time": now.astimezone(services.rules.tz).strftime("%Y-%m-%dT10:30"), **(extra or {})},
        status=status)


@routes.get("/console/pushes")
@requires("desk")
async def pushes_page(request: web.Request) -> web.StreamResponse:
    return await _pushes_page(request)


@routes.post("/console/pushes")
@requires("publish")
async def plan_push(request: web.Request) -> web.StreamResponse:
    form, services, settings = await request.post(), request.app[DESK], request.app[SETTINGS]
    try:
        ids = record_ids(form.getall("post_id", []))
        if ids is None:
            raise desk.Refused("所选信息的编号无效")
        await _guard(desk.plan_push(request.app[DATABASE], actor(request), ids,
                                    planned_at=_planned_at(form_value(form, "planned_at", 40), settings),
                                    reason=form_value(form, "reason", 1000), calendar=services.calendar,
                                    rules=services.rules, now=_now(request), remote=remote(request)))
    except desk.Refused as exc:
        return await _pushes_page(request, {"error": str(exc)}, status=400)
    raise web.HTTPSeeOther("/console/pushes")


@routes.post("/console/pushes/{push_id}/publish")
@requires("publish")
async def publish_push(request: web.Request) -> web.StreamResponse:
    push_id, form = _id(request, "push_id"), await request.post()
    try:
        outcome = await _publish(request, push_id, form_value(form, "reason", 1000))
    except desk.Refused as exc:
        return await _pushes_page(request, {"error": str(exc)}, status=400)
    return await _pushes_page(request, {"published": outcome})


async def _publish(request: web.Request, push_id: int, reason: str) -> desk.PushOutcome:
    services, settings = request.app[DESK], request.app[SETTINGS]
    return await _guard(desk.publish_push(  # type: ignore[no-any-return]
        request.app[DATABASE], services.publisher, services.scanner, actor(request), push_id, reason=reason,
        channels=services.channels, departments=settings.departments, calendar=services.calendar,
        rules=services.rules, now=_now(request), remote=remote(request)))


@routes.post("/console/pushes/{push_id}/cancel")
@requires("publish")
async def cancel_push(request: web.Request) -> web.StreamResponse:
    push_id = _id(request, "push_id")
    try:
        await _guard(desk.cancel_push(request.app[DATABASE], actor(request), push_id, now=_now(request),
                                      remote=remote(request)))
    except desk.Refused as exc:
        return await _pushes_page(request, {"error": str(exc)}, status=400)
    raise web.HTTPSeeOther("/console/pushes")


def _month_bounds(request: web.Request) -> tuple[Month | None, datetime | None, datetime | None]:
    text = request.query.get("month", "")
    if not text:
        return None, None, None
    try:
        month = Month.parse(text)
    except ReportError:
        raise web.HTTPBadRequest(text="月份格式为 YYYY-MM") from None
    tz = request.app[SETTINGS].tz
    return month, month.start(tz), month.end(tz)


@routes.get("/console/register")
@requires("register")
async def register_page(request: web.Request) -> web.StreamResponse:
    month, start, end = _month_bounds(request)
    settings, services = request.app[SETTINGS], request.app[DESK]
    records = await desk.register_rows(request.app[DATABASE], start=start, end=end)
    table = register_table(records, settings.departments)
    week = await desk.current_week(request.app[DATABASE], calendar=services.calendar, rules=services.rules,
                                   now=_now(request))
    return await render(request, "register.html", {
        "table": table, "month": month, "week": week,
        "cell": lambda value, kind: format_cell(value, kind, settings.tz)})


@routes.get("/console/register/export")
@requires("register")
async def register_export(request: web.Request) -> web.StreamResponse:
    month, start, end = _month_bounds(request)
    settings = request.app[SETTINGS]
    records = await desk.register_rows(request.app[DATABASE], start=start, end=end)
    body = await asyncio.to_thread(register_xlsx, records, settings.departments, settings.tz,
                                   bureau=settings.file.bureau_name)
    name = f"guanwei-register-{month.key if month else 'all'}.xlsx"
    return web.Response(body=body, headers={"Content-Type": XLSX,
                                            "Content-Disposition": f'attachment; filename="{name}"'})


# --------------------------------------------------------------------------- JSON API

def _json_error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _post_json(post: desk.Post, tz: Any) -> dict[str, Any]:
    def when(t: datetime | None) -> str | None:
        return t.astimezone(tz).isoformat() if t else None

    return {"id": post.id, "title": post.title, "body": post.body, "source": post.source,
            "department": post.department, "important": post.important, "status": post.status,
            "author": post.author, "screening": post.screening, "approved_by": post.approved_by,
            "approved_at": when(post.approved_at), "proofread_by": post.proofread_by, "push_id": post.push_id,
            "published_at": when(post.published_at), "updated_at": when(post.updated_at)}


async def _api(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except desk.NotFound:
        raise web.HTTPNotFound(text=json.dumps({"error": "no such post in your sight"}),
                               content_type="application/json") from None
    except PermissionError as exc:
        raise web.HTTPForbidden(text=json.dumps({"error": f"your role may not {exc}"}),
                                content_type="application/json") from None
    except desk.Refused as exc:
        raise web.HTTPBadRequest(text=json.dumps({"error": str(exc)}, ensure_ascii=False),
                                 content_type="application/json") from None


def _api_id(request: web.Request, name: str) -> int:
    found = record_id(request.match_info[name])
    if found is None:  # not a number, or one no row can have (ids are 64-bit): nothing there
        raise web.HTTPNotFound(text=json.dumps({"error": f"no such {name.removesuffix('_id')} in your sight"}),
                               content_type="application/json")
    return found


@routes.get("/api/posts")
@requires("desk")
async def api_posts(request: web.Request) -> web.Response:
    tz = request.app[SETTINGS].tz
    posts = await _api(desk.desk(request.app[DATABASE], actor(request), status=request.query.get("status") or None))
    return web.json_response([_post_json(p, tz) for p in posts])


@routes.post("/api/posts")
@requires("draft")
async def api_create_post(request: web.Request) -> web.Response:
    body = await _body(request)
    try:
        post = await _api(desk.create_post(
            request.app[DATABASE], actor(request), title=_text(body, "title", 200), body=_text(body, "body", 20000),
            source=_text(body, "source", 400), department=_text(body, "department", 32),
            important=body.get("important") is True, departments=request.app[SETTINGS].departments,
            now=_now(request), remote=remote(request)))
    except desk.Refused as exc:
        return _json_error(str(exc))
    return web.json_response(_post_json(post, request.app[SETTINGS].tz), status=201)


@routes.get("/api/posts/{post_id}")
@requires("desk")
async def api_post(request: web.Request) -> web.Response:
    tz = request.app[SETTINGS].tz
    found = await _api(desk.post_detail(request.app[DATABASE], actor(request), _api_id(request, "post_id")))
    return web.json_response({
        **_post_json(found.post, tz),
        "attachments": [{"id": a.id, "file": a.filename, "kind": a.kind, "format": a.format, "size": a.size,
                         "duration_seconds": a.duration_seconds, "scanned_by": a.scanned_by}
                        for a in found.attachments],
        "reviews": [{"by": r.reviewer, "at": r.at.astimezone(tz).isoformat(), "passed": r.passed, "checks": r.checks}
                    for r in found.reviews],
        "secrecy_form": None if found.form is None else {
            "contains_secrets": found.form.contains_secrets, "opinion": found.form.opinion,
            "filled_by": found.form.filled_by, "approved_by": found.form.approved_by},
        "register": [{"channel": r.channel, "platform_id": r.platform_id,
                      "published_at": r.published_at.astimezone(tz).isoformat()} for r in found.register],
    }, dumps=lambda o: json.dumps(o, ensure_ascii=False))


@routes.post("/api/posts/{post_id}/attachments")
@requires("draft")
@uploads
async def api_attach(request: web.Request) -> web.Response:
    """The file as the raw body; ?filename=… names it."""
    post_id = _api_id(request, "post_id")
    data = await request.read()
    outcome = await _api(desk.attach(request.app[DATABASE], request.app[DESK].scanner, actor(request), post_id,
                                     request.query.get("filename", ""), data, limits=request.app[DESK].limits,
                                     now=_now(request), remote=remote(request)))
    return web.json_response(outcome.to_dict(), status=201 if outcome.accepted else 422,
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _step(name: str, permission: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        post_id, body = _api_id(request, "post_id"), await _body(request)
        database, who, now, where = request.app[DATABASE], actor(request), _now(request), remote(request)
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "submit": lambda: desk.submit(database, screener(request.app), who, post_id, now=now, remote=where),
            "review": lambda: desk.review(database, who, post_id, _checks(
                lambda key: str(body.get(key)).lower() if isinstance(body.get(key), bool) else _text(body, key, 1000)),
                now=now, remote=where),
            "secrecy": lambda: desk.fill_secrecy_form(
                database, who, post_id, contains_secrets=body.get("contains_secrets")
                if isinstance(body.get("contains_secrets"), bool) else None,
                opinion=_text(body, "opinion", 2000), now=now, remote=where),
            "secrecy/approve": lambda: desk.approve_secrecy_form(database, who, post_id,
                                                                 opinion=_text(body, "opinion", 2000), now=now,
                                                                 remote=where),
            "approve": lambda: desk.approve(database, who, post_id, note=_text(body, "note", 1000), now=now,
                                            remote=where),
            "proofread": lambda: desk.proofread(database, who, post_id, note=_text(body, "note", 1000), now=now,
                                                remote=where),
        }
        try:
            await _api(calls[name]())
        except desk.Refused as exc:
            return _json_error(str(exc))
        found = await _api(desk.post_detail(database, who, post_id))
        return web.json_response(_post_json(found.post, request.app[SETTINGS].tz),
                                 dumps=lambda o: json.dumps(o, ensure_ascii=False))

    handler.__name__ = f"api_{name.replace('/', '_')}"
    return requires(permission)(handler)


for _name, _permission in (("submit", "draft"), ("review", "review"), ("secrecy", "draft"),
                           ("secrecy/approve", "approve"), ("approve", "approve"), ("proofread", "publish")):
    routes.post(f"/api/posts/{{post_id}}/{_name}")(_step(_name, _permission))


@routes.post("/api/pushes")
@requires("publish")
async def api_plan_push(request: web.Request) -> web.Response:
    body, services, settings = await _body(request), request.app[DESK], request.app[SETTINGS]
    given = body.get("posts")
    try:
        # JSON numbers only: "12" is not a post id here.
        ids = record_ids(i if isinstance(i, int) else None for i in given) if isinstance(given, list) else None
        if ids is None:
            raise desk.Refused(f"posts: a list of post ids (whole numbers from 1 to {ID_MAX})")
        push = await _api(desk.plan_push(request.app[DATABASE], actor(request), ids,
                                         planned_at=_planned_at(_text(body, "planned_at", 40), settings),
                                         reason=_text(body, "reason", 1000), calendar=services.calendar,
                                         rules=services.rules, now=_now(request), remote=remote(request)))
    except desk.Refused as exc:
        return _json_error(str(exc))
    return web.json_response({"id": push.id, "planned_at": push.planned_at.astimezone(settings.tz).isoformat(),
                              "outside_window_reason": push.outside_window_reason or None}, status=201)


@routes.post("/api/pushes/{push_id}/publish")
@requires("publish")
async def api_publish(request: web.Request) -> web.Response:
    push_id, body = _api_id(request, "push_id"), await _body(request)
    try:
        outcome = await _api(_publish(request, push_id, _text(body, "reason", 1000)))
    except desk.Refused as exc:
        return _json_error(str(exc))
    return web.json_response({"id": push_id, "status": outcome.push.status, "results": {
        str(post_id): [{"channel": o.channel, "ok": o.ok, "platform_id": o.platform_id, "reason": o.reason}
                       for o in outcomes] for post_id, outcomes in outcome.results.items()}},
        dumps=lambda o: json.dumps(o, ensure_ascii=False))


@routes.get("/api/pushes/week")
@requires("desk")
async def api_week(request: web.Request) -> web.Response:
    services = request.app[DESK]
    week = await desk.current_week(request.app[DATABASE], calendar=services.calendar, rules=services.rules,
                                   now=_now(request))
    return web.json_response(week.to_dict(), dumps=lambda o: json.dumps(o, ensure_ascii=False))


@routes.get("/api/register")
@requires("register")
async def api_register(request: web.Request) -> web.Response:
    _, start, end = _month_bounds(request)
    tz = request.app[SETTINGS].tz
    records = await desk.register_rows(request.app[DATABASE], start=start, end=end)
    return web.json_response([{"post_id": r.post_id, "push_id": r.push_id, "channel": r.channel,
                               "platform_id": r.platform_id, "title": r.title, "source": r.source,
                               "department": r.department, "important": r.important,
                               "published_at": r.published_at.astimezone(tz).isoformat(),
                               "published_by": r.published_by, "trail": r.trail} for r in records],
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


_POST = [{"name": "post_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
_PUSH = [{"name": "push_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
OPENAPI["paths"].update({
    "/api/posts": {"get": _op("Posts in the caller's sight (status=… filters)"),
                   "post": _op("Draft a post (source required, R8.2)", body={"title": 1, "body": 1, "source": 1})},
    "/api/posts/{post_id}": {"parameters": _POST, "get": _op("One post with attachments, reviews, form, register")},
    "/api/posts/{post_id}/attachments": {"parameters": _POST, "post": _op(
        "Attach the raw body (?filename=…): R8.3 by content and a clamd scan; 422 with the reason when refused")},
    "/api/posts/{post_id}/submit": {"parameters": _POST, "post": _op("Screen (R9) and send to the office's review")},
    "/api/posts/{post_id}/review": {"parameters": _POST, "post": _op(
        "Office review (R5.1): accuracy, completeness, timeliness, secrecy — booleans and *_comment")},
    "/api/posts/{post_id}/secrecy": {"parameters": _POST, "post": _op("Fill the 保密审查表 (R5.2)")},
    "/api/posts/{post_id}/secrecy/approve": {"parameters": _POST, "post": _op("A leader approves the form")},
    "/api/posts/{post_id}/approve": {"parameters": _POST, "post": _op("A leader approves the post")},
    "/api/posts/{post_id}/proofread": {"parameters": _POST, "post": _op("The information centre proofreads")},
    "/api/pushes": {"post": _op("Plan a push of 1–4 proofread posts (R4.3) in the window or with a reason (R4.4)",
                                body={"posts": {"type": "array", "minItems": 1, "items": {
                                    "type": "integer", "minimum": 1, "maximum": ID_MAX}},
                                    "planned_at": {"type": "string", "example": "2026-12-07T10:30+08:00"}})},
    "/api/pushes/{push_id}/publish": {"parameters": _PUSH, "post": _op("Publish on WeChat and Weibo; register")},
    "/api/pushes/week": {"get": _op("This week's push check (R4.3)")},
    "/api/register": {"get": _op("The publication register (R5.3), ?month=YYYY-MM")},
})
