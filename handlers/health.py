"""`GET /healthz` (the process is up), `GET /readyz` (the database and Redis answer), `GET /metrics`."""

from aiohttp import web
from loguru import logger
from sqlalchemy import text

from bot.context import CLOCK, DATABASE, METRICS, SHARED_STATE

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    try:
        async with request.app[DATABASE].transaction() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        await request.app[SHARED_STATE].ping()
        checks["shared_state"] = "ok"
    except Exception as exc:
        checks["shared_state"] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    if not ready:
        logger.warning("not ready: {}", checks)
    return web.json_response({"status": "ready" if ready else "not ready", **checks}, status=200 if ready else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    collected = request.app[METRICS]
    try:
        await collected.refresh(request.app[DATABASE], request.app[CLOCK]())
    except Exception as exc:  # still export the counters when the database is away
        logger.warning("metrics: database figures not refreshed: {}", exc)
    return collected.exposition()
