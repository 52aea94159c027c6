"""`GET /healthz`: the process is up and serving."""

from aiohttp import web

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
