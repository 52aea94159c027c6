"""Who is asking: the session middleware and the permission marker for console and API routes.

A route marked with `@requires("answer")` is reachable only by a logged-in user holding that
permission (bot.access); everything under /console and /api that is not marked public needs a
session. Browsers carry the session in an HttpOnly cookie and must echo the CSRF token on every
POST; scripts send the token as `Authorization: Bearer …` and need no CSRF token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from bot import auth
from bot.access import Actor
from bot.context import CLOCK, DATABASE, EVENTS
from bot.digests import same_secret

COOKIE = "guanwei_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
ACTOR = web.RequestKey("actor", Actor)
CSRF = web.RequestKey("csrf", str)
TOKEN = web.RequestKey("token", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)


def requires(permission: str) -> Callable[[H], H]:
    def mark(handler: H) -> H:
        handler.permission = permission  # type: ignore[attr-defined]
        return handler

    return mark


def public(handler: H) -> H:
    handler.public = True  # type: ignore[attr-defined]
    return handler


def actor(request: web.Request) -> Actor:
    return request[ACTOR]


def remote(request: web.Request) -> str:
    return (request.remote or "")[:64]


def _token(request: web.Request) -> tuple[str | None, bool]:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip() or None, True
    return request.cookies.get(COOKIE), False


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def _unauthenticated(request: web.Request) -> web.StreamResponse:
    if _is_api(request):
        return web.json_response({"error": "login required"}, status=401)
    raise web.HTTPSeeOther("/console/login")


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not (request.path.startswith("/console") or request.path.startswith("/api/")):
        return await handler(request)
    if getattr(handler, "public", False):
        return await handler(request)
    token, bearer = _token(request)
    if not token:
        return _unauthenticated(request)
    async with request.app[DATABASE].transaction() as session:
        found = await auth.resolve(session, token, now=request.app[CLOCK]())
    if found is None:
        return _unauthenticated(request)
    who, csrf = found
    request[ACTOR], request[CSRF], request[TOKEN] = who, csrf, token
    if request.method == "POST" and not bearer:
        given = request.headers.get(CSRF_HEADER)
        if given is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            given = str((await request.post()).get(CSRF_FIELD, ""))
        if not same_secret(csrf, given):
            raise web.HTTPForbidden(text="CSRF token missing or wrong: reload the page and try again")
    permission = getattr(handler, "permission", None)
    if permission is not None and not who.may(permission):
        if _is_api(request):
            return web.json_response({"error": f"your role may not {permission}"}, status=403)
        raise web.HTTPForbidden(text="您的角色无权进行此操作")
    if request.method != "POST":
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPRedirection:
        request.app[EVENTS].publish()  # a successful form post: other open pages refresh
        raise
    if response.status < 400:
        request.app[EVENTS].publish()
    return response


def form_value(form: Any, name: str, limit: int = 4000) -> str:
    value = form.get(name, "")
    return str(value)[:limit] if value is not None else ""
