"""`GET/POST /weibo`: the Sina Weibo fans-service webhook edge (protocol in bot.weibo)."""

from __future__ import annotations

from aiohttp import web

from bot import weibo
from bot.context import PIPELINE, REPLAY_GUARD

routes = web.RouteTableDef()
APP_SECRET = web.AppKey("weibo_app_secret", str)


class WeiboSignatureError(Exception):
    status = 403


def _verify(request: web.Request) -> None:
    query = request.query
    signature = query.get("signature")
    if not weibo.verify_signature(
        request.app[APP_SECRET], signature or "", query.get("timestamp", ""), query.get("nonce", "")
    ):
        raise WeiboSignatureError("signature does not match" if signature else "signature missing")


@routes.get("/weibo")
async def verify_url(request: web.Request) -> web.Response:
    _verify(request)
    return web.Response(text=request.query.get("echostr", ""))


@routes.post("/weibo")
async def receive(request: web.Request) -> web.Response:
    _verify(request)
    body = await request.read()
    await request.app[REPLAY_GUARD].check("weibo", request.query["timestamp"], request.query["nonce"], body)
    push = weibo.parse_push(body)
    outcome = await request.app[PIPELINE].handle(weibo.to_inbound(push))
    if outcome.reply is None:
        return web.Response(text="")
    body = weibo.render_text_reply(to_user=push.sender_id, from_account=push.receiver_id, text=outcome.reply)
    return web.json_response(text=body)
