"""Live events: open console pages learn that the queue changed and refresh themselves.

One `EventHub` per worker fans events out to that worker's open pages; with Redis configured, every
worker publishes to and listens on one channel, so a message stored by worker A refreshes a page
served by worker B. Pages work without JavaScript; the events only save a manual reload.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import redis.asyncio
from loguru import logger

CHANNEL = "guanwei:events"


class EventHub:
    def __init__(self, redis_url: str | None = None) -> None:
        self._listeners: set[asyncio.Queue[str]] = set()
        self._redis = redis.asyncio.from_url(redis_url) if redis_url else None
        self._relay: asyncio.Task[None] | None = None

    def publish(self, event: str = "changed") -> None:
        if self._redis is None:
            self._fan_out(event)
            return
        task = asyncio.get_running_loop().create_task(self._publish_shared(event))
        task.add_done_callback(lambda t: t.exception())  # a lost refresh is harmless; never an unhandled error

    async def _publish_shared(self, event: str) -> None:
        assert self._redis is not None
        try:
            await self._redis.publish(CHANNEL, event)
        except Exception:  # Redis away: at least this worker's pages hear it
            self._fan_out(event)

    def _fan_out(self, event: str) -> None:
        for queue in self._listeners:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

    async def start(self) -> None:
        if self._redis is not None:
            self._relay = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        assert self._redis is not None
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._fan_out(message["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("live events: Redis subscription lost ({}), retrying", type(exc).__name__)
                await asyncio.sleep(2)

    async def stop(self) -> None:
        if self._relay is not None:
            self._relay.cancel()
            await asyncio.gather(self._relay, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[str]]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=16)
        self._listeners.add(queue)
        try:
            yield queue
        finally:
            self._listeners.discard(queue)
