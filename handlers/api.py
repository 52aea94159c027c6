"""The JSON API under /api: the console's actions for scripts and other systems.

Same rules as the pages (bot.staff, bot.access): 401 without a session, 403 for a role without
the permission, 404 for an inquiry in another department.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bot import auth, staff
from bot.context import CLOCK, DATABASE, OUTBOUND, SETTINGS, SHARED_STATE, screener
from bot.ids import record_id
from bot.inquiries import inquiry_row
from bot.storage import AlertRecord, Message
from handlers.web_auth import TOKEN, actor, public, remote, requires

routes = web.RouteTableDef()


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:  # a POST of optional fields only (chase) may send nothing
        return {}
    try:
        value = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _bad_request("body is not JSON") from None
    if not isinstance(value, dict):
        raise _bad_request("body must be a JSON object")
    return _encodable(value)


def _encodable(value: Any) -> Any:
    """JSON's "\udc80" escapes decode to lone surrogates, which no database (nor UTF-8) takes: U+FFFD instead."""
    if isinstance(value, str):
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if isinstance(value, list):
        return [_encodable(item) for item in value]
    if isinstance(value, dict):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    return value


def _bad_request(error: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": error}), content_type="application/json")


def _text(body: dict[str, Any], name: str, limit: int = 4000) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):  # {"text": 123} is a caller's mistake, not an empty answer
        raise _bad_request(f"{name} must be a string")
    return value[:limit]


def _answers_seen(body: dict[str, Any]) -> int:
    value = body.get("answers_seen", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad_request("answers_seen must be a non-negative integer")
    return value


def _inquiry_id(request: web.Request) -> int:
    found = record_id(request.match_info["inquiry_id"])
    if found is None:  # not a number, or one no row can have (SQLite and PostgreSQL ids are 64-bit)
        raise web.HTTPNotFound(text=json.dumps({"error": NOT_FOUND}), content_type="application/json")
    return found


NOT_FOUND = "no such inquiry in your sight"


def _not_found() -> web.Response:
    return web.json_response({"error": NOT_FOUND}, status=404)


def _message_json(message: Message, tz: Any) -> dict[str, Any]:
    return {"id": message.id, "direction": message.direction, "kind": message.kind,
            "at": message.recorded_at.astimezone(tz).isoformat(), "text": message.content,
            "author": message.author, "delivery": message.delivery_status, "delivery_reason": message.delivery_reason}


def _alert_json(record: AlertRecord, tz: Any) -> dict[str, Any]:
    return {"kind": record.kind, "level": record.level, "fire_at": record.fire_at.astimezone(tz).isoformat(),
            "status": record.status, "by": record.by, "note": record.note, "recipients": record.recipients}


@routes.post("/api/login")
@public
async def login(request: web.Request) -> web.Response:
    body = await _body(request)
    async with request.app[DATABASE].transaction() as session:
        result = await auth.login(session, _text(body, "username", 64), _text(body, "password", 256),
                                  now=request.app[CLOCK](), remote=remote(request))
    if result.problem == "no password":
        return web.json_response({"error": "username and password are required"}, status=400)
    if result.actor is None or result.token is None:
        status = 429 if result.problem == "throttled" else 401
        return web.json_response({"error": "too many attempts" if status == 429 else "wrong username or password"},
                                 status=status)
    response = web.json_response({"token": result.token, "csrf_token": result.csrf_token,
                                  "user": {"name": result.actor.name, "role": result.actor.role,
                                           "department": result.actor.department}})
    response.set_cookie("guanwei_session", result.token, httponly=True, samesite="Strict", path="/",
                        secure=request.secure, max_age=int(auth.SESSION_LIFETIME.total_seconds()))
    return response


@routes.post("/api/logout")
async def logout(request: web.Request) -> web.Response:
    async with request.app[DATABASE].transaction() as session:
        await auth.logout(session, request[TOKEN], now=request.app[CLOCK](), actor=actor(request).name,
                          remote=remote(request))
    return web.json_response({"ok": True})


@routes.get("/api/inquiries")
@requires("view")
async def list_inquiries(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    # A filter the API does not have must not look like one that matched everything (?status=bogus).
    unknown = sorted(set(request.query) - {"all"})
    if unknown:
        raise _bad_request(f"unknown query parameter {unknown[0]!r}: the only one is all=0|1")
    if request.query.get("all", "0") not in ("0", "1"):
        raise _bad_request("all must be 0 or 1")
    items = await staff.queue(request.app[DATABASE], actor(request),
                              include_answered=request.query.get("all") == "1")
    return web.json_response([inquiry_row(i, settings) for i in items])


@routes.get("/api/inquiries/{inquiry_id}")
@requires("view")
async def get_inquiry(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    try:
        found = await staff.detail(request.app[DATABASE], actor(request), _inquiry_id(request))
    except staff.NotFound:
        return _not_found()
    return web.json_response({
        **inquiry_row(found.inquiry, settings),
        "messages": [_message_json(m, settings.tz) for m in found.messages],
        "alerts": [_alert_json(a, settings.tz) for a in found.alerts],
    })


@routes.post("/api/inquiries/{inquiry_id}/answer")
@requires("answer")
async def answer(request: web.Request) -> web.Response:
    body = await _body(request)
    try:
        result = await staff.answer(
            request.app[DATABASE], request.app[OUTBOUND], screener(request.app), actor(request),
            _inquiry_id(request), _text(body, "text"), now=request.app[CLOCK](), remote=remote(request),
            override_reason=_text(body, "override_reason", 500), state=request.app[SHARED_STATE],
            answers_seen=_answers_seen(body),
        )
    except staff.NotFound:
        return _not_found()
    except staff.DeliveredNotRecorded as exc:
        return web.json_response({"error": str(exc), "delivered": True, "sent": True, "recorded": False}, status=500,
                                 dumps=lambda o: json.dumps(o, ensure_ascii=False))
    except staff.AnsweredMeanwhile as exc:
        return web.json_response({"error": str(exc), "answered_by": exc.answered_by, "answer": exc.answer,
                                  "answers_seen": exc.answers}, status=409,
                                 dumps=lambda o: json.dumps(o, ensure_ascii=False))
    except staff.Refused as exc:
        return web.json_response({"error": str(exc)}, status=400)
    if not result.recorded:
        blocked = ", ".join(f.category for f in result.verdict.findings)
        return web.json_response({"error": f"screening blocked the answer: {blocked}", "delivered": False,
                                  "sent": False, "recorded": False, "screening": result.verdict.to_dict()},
                                 status=422, dumps=lambda o: json.dumps(o, ensure_ascii=False))
    # 200: the answer is recorded either way; `delivered` (and `sent`, its older name) is true only when the
    # platform accepted it for the netizen. Otherwise `delivery` says undeliverable or failed and `reason` why.
    delivery = result.delivery
    return web.json_response({"delivered": result.delivered, "sent": result.delivered, "recorded": True,
                              "message_id": result.message_id,
                              "delivery": delivery.status if delivery else None,
                              "reason": delivery.reason if delivery else None,
                              "screening": result.verdict.to_dict()}, dumps=lambda o: json.dumps(o, ensure_ascii=False))


@routes.post("/api/inquiries/{inquiry_id}/transfer")
@requires("transfer")
async def transfer(request: web.Request) -> web.Response:
    body = await _body(request)
    try:
        inquiry = await staff.transfer(request.app[DATABASE], actor(request), _inquiry_id(request),
                                       _text(body, "department", 32), _text(body, "reason"),
                                       departments=request.app[SETTINGS].departments, now=request.app[CLOCK](),
                                       remote=remote(request))
    except staff.NotFound:
        return _not_found()
    except staff.Refused as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"id": inquiry.id, "department": inquiry.department})


@routes.post("/api/inquiries/{inquiry_id}/close")
@requires("close")
async def close(request: web.Request) -> web.Response:
    body = await _body(request)
    try:
        inquiry = await staff.close(request.app[DATABASE], actor(request), _inquiry_id(request),
                                    _text(body, "kind", 16), _text(body, "reason"), now=request.app[CLOCK](),
                                    remote=remote(request))
    except staff.NotFound:
        return _not_found()
    except staff.Refused as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"id": inquiry.id, "status": inquiry.status, "reason": inquiry.closed_reason})


@routes.post("/api/inquiries/{inquiry_id}/chase")
@requires("chase")
async def chase(request: web.Request) -> web.Response:
    body = await _body(request)
    try:
        await staff.chase(request.app[DATABASE], actor(request), _inquiry_id(request), _text(body, "note", 500),
                          now=request.app[CLOCK](), remote=remote(request))
    except staff.NotFound:
        return _not_found()
    except staff.Refused as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"ok": True})


@routes.get("/api/board")
@requires("board")
async def board(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.json_response([inquiry_row(i, settings) for i in await staff.board(request.app[DATABASE],
                                                                                  actor(request))])


@routes.get("/api/overview")
@requires("overview")
async def overview(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    loads = await staff.overview(request.app[DATABASE], actor(request), now=request.app[CLOCK](),
                                 departments=settings.departments)
    return web.json_response([{"department": load.department, "open": load.open, "overdue": load.overdue,
                               "critical": load.critical,
                               "oldest_due": load.oldest_due.astimezone(settings.tz).isoformat()
                               if load.oldest_due else None} for load in loads])


@routes.get("/api/openapi.json")
@public
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


def _op(summary: str, *, body: dict[str, Any] | None = None, optional: dict[str, Any] | None = None,
        public_: bool = False, responses: dict[str, Any] | None = None) -> dict[str, Any]:
    """An operation; `body` maps each required field to its JSON schema (anything else: a string), `optional`
    the fields that may be left out."""
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {"200": {"description": "OK"}, "401": {"description": "login required"},
                      "403": {"description": "role lacks the permission"},
                      "404": {"description": "no such inquiry in the caller's departments"}},
    }
    if public_:
        operation["security"] = []
        operation["responses"] = {"200": {"description": "OK"}, "401": {"description": "wrong credentials"},
                                  "429": {"description": "too many attempts"}}
    if body or optional:
        properties = {name: schema if isinstance(schema, dict) else {"type": "string"}
                      for name, schema in {**(body or {}), **(optional or {})}.items()}
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if body:
            schema["required"] = list(body)
        # a body of optional fields may be left out altogether (an empty body reads as {})
        operation["requestBody"] = {"required": bool(body), "content": {"application/json": {"schema": schema}}}
    operation["responses"].update(responses or {})
    return operation


def _json_of(description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {
        "type": "object", "properties": properties}}}}


_SCREENING = {"type": "object", "description": "findings of the R9/R10 screening"}
_ANSWERED = _json_of(
    "The answer is recorded in the conversation. Whether it reached the netizen is `delivered`: false when the "
    "platform refused it for good (`delivery` undeliverable) or it could not be sent (`delivery` failed: platform "
    "unreachable, no app secret); `reason` says why.", {
        "delivered": {"type": "boolean", "description": "the platform accepted it for the netizen"},
        "sent": {"type": "boolean", "description": "the same as delivered (its older name)"},
        "recorded": {"type": "boolean", "enum": [True]},
        "message_id": {"type": "integer"},
        "delivery": {"type": "string", "enum": ["delivered", "undeliverable", "failed"]},
        "reason": {"type": "string", "nullable": True},
        "screening": _SCREENING})
_BLOCKED = _json_of("Screening blocked the answer: nothing was sent or recorded (a head may override with "
                    "`override_reason`)", {"delivered": {"type": "boolean", "enum": [False]},
                                           "sent": {"type": "boolean", "enum": [False]},
                                           "recorded": {"type": "boolean", "enum": [False]}, "screening": _SCREENING})


_ANSWERS_SEEN = {"type": "integer", "minimum": 0, "default": 0, "description":
                 "how many delivered staff answers the caller has read (0 when left out: a first answer); when a "
                 "colleague has answered since, or is sending one now, nothing is sent and the reply is 409 with "
                 "their answer and the count to send again with; more than exist is 400"}
_ID = [{"name": "inquiry_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "guanwei staff API", "version": "1"},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                       "cookie": {"type": "apiKey", "in": "cookie", "name": "guanwei_session"}}},
    "security": [{"bearer": []}, {"cookie": []}],
    "paths": {
        "/api/login": {"post": _op("Log in; returns a bearer token and sets the session cookie",
                                   body={"username": 1, "password": 1}, public_=True)},
        "/api/logout": {"post": _op("End this session")},
        "/api/inquiries": {"get": _op("The caller's queue, soonest deadline first (all=1 adds answered)")},
        "/api/inquiries/{inquiry_id}": {"parameters": _ID, "get": _op("One inquiry with its messages and alerts")},
        "/api/inquiries/{inquiry_id}/answer": {"parameters": _ID, "post": _op(
            "Screen and send an answer through the platform (422 with findings when screening blocks it)",
            body={"text": 1}, optional={"override_reason": 1, "answers_seen": _ANSWERS_SEEN},
            responses={"200": _ANSWERED, "422": _BLOCKED, "409": _json_of(
                "Not sent: a colleague answered since the caller last read the inquiry (answers_seen is behind) "
                "or is sending an answer right now", {
                    "error": {"type": "string"}, "answered_by": {"type": "string", "nullable": True},
                    "answer": {"type": "string", "nullable": True},
                    "answers_seen": {"type": "integer", "nullable": True,
                                     "description": "send again with this to add a supplement"}})})},
        "/api/inquiries/{inquiry_id}/transfer": {"parameters": _ID, "post": _op(
            "Transfer to another department with a reason (R6.2)", body={"department": 1, "reason": 1})},
        "/api/inquiries/{inquiry_id}/close": {"parameters": _ID, "post": _op(
            "Close as spam, duplicate or settled, with a reason", body={"kind": 1, "reason": 1})},
        "/api/inquiries/{inquiry_id}/chase": {"parameters": _ID, "post": _op("催办: chase the department (R7.3b)",
                                                                             optional={"note": 1})},
        "/api/board": {"get": _op("Escalated open inquiries (rung 2 and up)")},
        "/api/overview": {"get": _op("Every department's open, overdue and critical counts")},
    },
}
