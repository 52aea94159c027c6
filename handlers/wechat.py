"""`GET/POST /wechat`: the WeChat Official Account webhook edge.

Verify, decrypt and parse (bot.wechat), hand the message to the pipeline, render its reply.
Errors are raised as typed exceptions and mapped to statuses by the error middleware.
"""

from __future__ import annotations

from aiohttp import web

from bot.context import CLOCK, PIPELINE, REPLAY_GUARD
from bot.wechat import WeChatEndpoint

routes = web.RouteTableDef()
ENDPOINT = web.AppKey("wechat_endpoint", WeChatEndpoint)


@routes.get("/wechat")
async def verify_url(request: web.Request) -> web.Response:
    """The admin console's URL check: echo `echostr` when the signature is ours."""
    query = request.query
    request.app[ENDPOINT].verify(query.get("signature"), query.get("timestamp", ""), query.get("nonce", ""))
    return web.Response(text=query.get("echostr", ""))


@routes.post("/wechat")
async def receive(request: web.Request) -> web.Response:
    endpoint = request.app[ENDPOINT]
    body = await request.read()
    push = endpoint.parse(body, dict(request.query))
    await request.app[REPLAY_GUARD].check("wechat", request.query["timestamp"], request.query["nonce"], body)
    outcome = await request.app[PIPELINE].handle(push.inbound)
    if outcome.reply is None:
        return web.Response(text="success")
    now = request.app[CLOCK]()
    body = endpoint.render_reply(
        push,
        outcome.reply,
        nonce=request.query.get("nonce", ""),
        timestamp=str(int(now.timestamp())),
        at=outcome.recorded_at or now,
    )
    return web.Response(text=body, content_type="application/xml")
