"""The aiohttp application factory: routes, middlewares, start-up and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import signal
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import aiohttp
import redis
import redis.asyncio
from aiohttp import web
from loguru import logger
from wechatpy.session.redisstorage import RedisStorage

from bot.alerts import build_scheduler
from bot.config import Settings, environment
from bot.context import (
    CLOCK,
    DATABASE,
    EVENTS,
    KNOWLEDGE,
    METRICS,
    OUTBOUND,
    PIPELINE,
    REFUSAL_REASON,
    REPLAY_GUARD,
    SETTINGS,
    SHARED_STATE,
)
from bot.inbound import InvalidInbound
from bot.knowledge_runtime import KnowledgeHolder
from bot.live_events import EventHub
from bot.logs import install_masking
from bot.metrics import Metrics
from bot.outbound import Outbound, WeChatSender, WeiboSender
from bot.pipeline import Clock, Pipeline, utc_now
from bot.replay import ReplayGuard, ReplayRefused
from bot.shared_state import shared_state
from bot.storage import Database, StorageUnavailable
from bot.wechat import MissingMsgType, WeChatEndpoint, WeChatError
from bot.weibo import WeiboProtocolError
from escalation.calendar import BusinessCalendar
from escalation.notifiers import WeChatAPIClient
from escalation.scheduler import RedisLeaderLock
from handlers import api, console, health, publishing, wechat, weibo
from handlers.console import setup_templates
from handlers.web_auth import session_middleware
from knowledge import Classifier, KnowledgeDataError
from knowledge.faq import FaqFormatError
from knowledge.screening import Screener, ScreeningDataError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Request ids only tell log lines apart, they guard nothing: no system call (and no wait for the GIL
# on the way back from one) per request, as `secrets` would make.
_request_ids = random.Random()


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every refusal to a status with one log line; no traceback ever reaches a platform."""
    request_id = request.headers.get("X-Request-Id") or f"{_request_ids.getrandbits(48):012x}"
    if request.method != "POST" or request.path not in ("/wechat", "/weibo"):
        return await _answer(request, handler, request_id)
    # All pushes come from the platforms' few addresses, so this bound is generous: it stops a flood
    # from elsewhere, never the platform's normal traffic.
    limit = request.app[SETTINGS].file.server.requests_per_ip_per_minute
    if not await request.app[SHARED_STATE].allow(f"ip:{request.remote}", limit):
        logger.warning("POST {} refused (429): more than {} requests a minute from one address", loggable(request.path),
                       limit)
        return web.Response(status=429, text="too many requests\n")
    started, status = time.perf_counter(), "error"
    try:
        response = await _answer(request, handler, request_id)
        status = str(response.status)
        return response
    finally:
        request.app[METRICS].webhook_seconds.labels(request.path[1:], status).observe(time.perf_counter() - started)


async def _answer(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
    with logger.contextualize(request_id=request_id):
        try:
            response = await handler(request)
        except MissingMsgType as exc:
            logger.warning("{} {}: {}; acknowledged, nothing stored", request.method, loggable(request.path), exc)
            return web.Response(text="success")
        except (WeChatError, weibo.WeiboSignatureError, ReplayRefused, InvalidInbound) as exc:
            logger.warning("{} {} refused ({}): {}", request.method, loggable(request.path), exc.status, exc)
            return web.Response(status=exc.status, text=f"{exc}\n")
        except WeiboProtocolError as exc:
            logger.warning("{} {} refused (400): {}", request.method, loggable(request.path), exc)
            return web.Response(status=400, text=f"{exc}\n")
        except StorageUnavailable as exc:
            # 5xx makes the platform retry: better a retry than an acknowledged message we lost.
            logger.error("{} {}: storage unavailable, answering 503 (the platform, or the caller, retries): {}",
                         request.method, loggable(request.path), exc)
            return web.Response(status=503, text="storage unavailable, retry later\n")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            problem = _problem(exc)
            logger.warning("{} {} refused ({}): {}", request.method, loggable(request.path), exc.status, problem)
            if _is_api(request) and exc.content_type != "application/json":
                # /api speaks JSON even where aiohttp answers for it: unknown path (404), wrong method (405),
                # body too large (413), and handlers' plain-text refusals.
                headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
                return web.json_response({"error": problem}, status=exc.status, headers=headers,
                                         dumps=lambda o: json.dumps(o, ensure_ascii=False))
            raise
        except Exception as exc:
            # The traceback goes through the masking patcher like any message: bound SQL parameters
            # and exception texts can hold openids and phone numbers.
            trace = "".join(traceback.format_exception(exc))
            logger.error("{} {} failed unexpectedly: {}", request.method, loggable(request.path), trace)
            return web.Response(status=500, text="internal error\n")
        if response.status >= 400:  # a refusal the handler answered itself (a form's error page, an API 400)
            logger.warning("{} {} refused ({}): {}", request.method, loggable(request.path), response.status,
                           _answered_problem(response))
        response.headers["X-Request-Id"] = request_id
        return response


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def loggable(path: str) -> str:
    """A request path as it may stand in a log line: "%0A" decodes to a newline, which would let anyone write a
    line of their own into the log (and "%00" a NUL): control characters are shown escaped."""
    return _CONTROL_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", path)


def _is_api(request: web.Request) -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def _problem(exc: web.HTTPException) -> str:
    """What the refusal says: its own text, or its reason phrase when it has only aiohttp's "404: Not Found"."""
    text = (exc.text or "").strip()
    if exc.content_type == "application/json":
        with contextlib.suppress(ValueError, KeyError, TypeError):
            return str(json.loads(text)["error"])
    return exc.reason if not text or text == f"{exc.status}: {exc.reason}" else text


def _answered_problem(response: web.StreamResponse) -> str:
    """The reason in a refusal's body: the API's {"error": …}, a plain text's first line; a page's is in the page."""
    body = response.text if isinstance(response, web.Response) and response.body is not None else None
    if body and response.content_type == "application/json":
        with contextlib.suppress(ValueError, KeyError, TypeError):
            return str(json.loads(body)["error"])[:300]
        return response.reason
    if body and response.content_type == "text/plain":
        return body.strip().splitlines()[0][:300] if body.strip() else response.reason
    if REFUSAL_REASON in response:
        return str(response[REFUSAL_REASON])[:300]
    return f"{response.reason} (the reason is on the page)" if body else response.reason


async def _to_console(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console")


def build_outbound(settings: Settings, env: Mapping[str, str], session: aiohttp.ClientSession) -> Outbound:
    """Senders for the channels whose API secret is set; answers on another channel fail with a reason."""
    api = settings.file.platform_api
    wechat_secret = env.get("GUANWEI_WECHAT_APPSECRET", "").strip()
    weibo_token = env.get("GUANWEI_WEIBO_ACCESS_TOKEN", "").strip()
    wechat_sender = None
    if settings.wechat is not None and wechat_secret:
        appid, redis_url = settings.wechat.appid, settings.redis_url

        def client() -> WeChatAPIClient:
            # Every token fetch invalidates the one before: all workers share it through Redis.
            storage = RedisStorage(redis.Redis.from_url(redis_url), prefix="guanwei:wechat") if redis_url else None
            return WeChatAPIClient(appid, wechat_secret, api_base_url=api.wechat_base_url, session=storage)

        wechat_sender = WeChatSender(client)
    weibo_sender = WeiboSender(session, weibo_token, api_base_url=api.weibo_base_url) if weibo_token else None
    return Outbound(wechat_sender, weibo_sender)


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    classifier: Classifier | None = None,
    clock: Clock = utc_now,
    reload_on_sighup: bool = False,
    run_scheduler: bool = False,
    outbound: Outbound | None = None,
    screener: Screener | None = None,
    env: Mapping[str, str] | None = None,
) -> web.Application:
    """Build the application. Tests pass their own database, classifier, clock and outbound."""
    install_masking()
    app = web.Application(
        middlewares=[errors_middleware, publishing.upload_limit_middleware, session_middleware],
        client_max_size=settings.file.server.max_body_bytes,
    )
    env = environment() if env is None else env
    db = database or Database(settings.database_url)
    knowledge = KnowledgeHolder(
        db,
        departments=settings.departments,
        fallback=settings.file.fallback_department,
        load_classifier=(lambda: classifier) if classifier is not None else None,
        load_screener=(lambda: screener) if screener is not None else None,
    )
    app[SETTINGS] = settings
    app[DATABASE] = db
    app[CLOCK] = clock
    app[KNOWLEDGE] = knowledge
    state = shared_state(settings.redis_url)
    app[SHARED_STATE] = state
    app[REPLAY_GUARD] = ReplayGuard(settings.file.server.replay_window_seconds, clock, state)
    metrics = Metrics()
    app[METRICS] = metrics
    events = EventHub(settings.redis_url)
    app[EVENTS] = events
    app[PIPELINE] = Pipeline(settings, db, knowledge, BusinessCalendar(settings.reply_hours), clock, state, metrics)

    setup_templates(app)
    app.add_routes(health.routes)
    app.add_routes(console.routes)
    app.add_routes(api.routes)
    publishing.setup(app, settings, env)  # the publishing desk (R4.3–R5.3, R8.3)
    app.router.add_get("/", _to_console)
    if settings.wechat is not None:
        app[wechat.ENDPOINT] = WeChatEndpoint(
            settings.wechat.token,
            settings.wechat.appid,
            settings.wechat.aes_key,
            require_safe_mode=settings.file.channels.wechat.require_safe_mode,
        )
        app.add_routes(wechat.routes)
    if settings.weibo_app_secret is not None:
        app[weibo.APP_SECRET] = settings.weibo_app_secret
        app.add_routes(weibo.routes)

    async def knowledge_lifecycle(app: web.Application) -> AsyncIterator[None]:
        try:
            await knowledge.reload(force=True)
        except (KnowledgeDataError, ScreeningDataError, FaqFormatError):
            # a broken data file at start: the app never starts, so its cleanup never runs
            if database is None:
                await db.dispose()
            raise
        tasks = {asyncio.create_task(knowledge.watch(settings.file.knowledge.reload_check_seconds))}
        loop = asyncio.get_running_loop()
        if reload_on_sighup:
            def on_sighup() -> None:
                logger.info("SIGHUP: reloading word lists and FAQ")
                task = asyncio.create_task(knowledge.reload(force=True))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

            loop.add_signal_handler(signal.SIGHUP, on_sighup)
        yield
        if reload_on_sighup:
            loop.remove_signal_handler(signal.SIGHUP)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def scheduler_lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            lock = None
            redis_client = None
            if settings.redis_url:
                redis_client = redis.asyncio.from_url(settings.redis_url)
                # The lock must outlive a sweep; a dead holder's lock lapses after this long.
                timing = settings.file.escalation
                ttl = max(timing.leader_lock_seconds, 2 * timing.sweep_interval_seconds)
                lock = RedisLeaderLock(redis_client, ttl_seconds=ttl)
            scheduler = build_scheduler(settings, db, session, clock=clock, lock=lock)
            app[PIPELINE].on_inquiry_changed.append(scheduler.wake)
            task = asyncio.create_task(scheduler.run())
            yield
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if redis_client is not None:
                await redis_client.aclose()

    async def on_cleanup(app: web.Application) -> None:
        await state.close()
        if database is None:  # only dispose what we created
            await db.dispose()

    async def outbound_lifecycle(app: web.Application) -> AsyncIterator[None]:
        if outbound is not None:
            app[OUTBOUND] = outbound
            yield
            return
        async with aiohttp.ClientSession() as session:
            app[OUTBOUND] = build_outbound(settings, env, session)
            yield

    async def events_lifecycle(app: web.Application) -> AsyncIterator[None]:
        await events.start()
        app[PIPELINE].on_inquiry_changed.append(events.publish)
        yield
        await events.stop()

    app.cleanup_ctx.append(knowledge_lifecycle)
    app.cleanup_ctx.append(outbound_lifecycle)
    app.cleanup_ctx.append(events_lifecycle)
    if run_scheduler:
        app.cleanup_ctx.append(scheduler_lifecycle)
    app.on_cleanup.append(on_cleanup)
    return app
