"""Smoke test of the benchmarks at a tiny size: the load generator, payloads and a sweep run end to end."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestServer

from bench.common import Payloads, closed_loop
from bench.micro import sweep_bench


def test_closed_loop_against_a_bare_app() -> None:
    async def run() -> dict[str, float]:
        async def receive(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(text="success")

        app = web.Application()
        app.router.add_post("/wechat", receive)
        async with TestServer(app, host="127.0.0.1") as server:
            result = await closed_loop(str(server.make_url("/wechat")), Payloads().push, requests=20,
                                       concurrency=4, max_seconds=10)
        return result.summary()

    summary = asyncio.run(run())
    assert summary["ok"] == 20 and summary["errors"] == 0


def test_sweep_bench_small() -> None:
    result = asyncio.run(sweep_bench(200, 0.1, drain_seconds=1))
    assert result["inquiries"] == 200 and result["query_nothing_due_rows"] == 0
