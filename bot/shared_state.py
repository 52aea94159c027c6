"""State that several workers must share, chosen in one place: Redis when configured, else in-process.

- message claims: the first worker to see a push claims its dedup key before any slow work; a
  retry that lands on another worker while the first is still working waits for the stored reply;
- replay memory: a used (timestamp, nonce) stays bound to its body for every worker;
- per-sender rate limits (a sliding one-minute window);
- the scheduler's leader lock and wechatpy's access-token storage (built from `redis_url`).

The in-process variant is exact for one process; `guanwei serve --workers N` refuses N > 1 without
Redis for that reason.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Protocol

import redis.asyncio
import redis.exceptions
from loguru import logger

CLAIM_SECONDS = 60  # longer than the platforms' retry window (3 tries within ~15 s)


class SharedState(Protocol):
    async def claim(self, key: str) -> bool:
        """True for the first caller of `key` within CLAIM_SECONDS; False for everyone after."""

    async def release(self, key: str) -> None:
        """Forget a claim whose work failed, so the platform's retry can try again."""

    async def remember_body(self, key: str, digest: str, ttl_seconds: int) -> str:
        """Bind `key` to `digest` if unbound; return the digest it is bound to."""

    async def allow(self, key: str, limit: int, window_seconds: float = 60.0) -> bool:
        """Count one event for `key`; False once `limit` events fall within the window."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class InProcessState:
    def __init__(self) -> None:
        self._claims: dict[str, float] = {}
        self._bodies: dict[str, tuple[str, float]] = {}
        self._events: dict[str, deque[float]] = {}

    def _expire(self) -> None:
        now = time.monotonic()
        if len(self._claims) > 4096:
            self._claims = {k: v for k, v in self._claims.items() if v > now}
        if len(self._bodies) > 4096:
            self._bodies = {k: v for k, v in self._bodies.items() if v[1] > now}
        if len(self._events) > 4096:
            self._events = {k: v for k, v in self._events.items() if v and v[-1] > now - 3600}

    async def claim(self, key: str) -> bool:
        self._expire()
        now = time.monotonic()
        if self._claims.get(key, 0) > now:
            return False
        self._claims[key] = now + CLAIM_SECONDS
        return True

    async def release(self, key: str) -> None:
        self._claims.pop(key, None)

    async def remember_body(self, key: str, digest: str, ttl_seconds: int) -> str:
        self._expire()
        now = time.monotonic()
        bound = self._bodies.get(key)
        if bound is not None and bound[1] > now:
            return bound[0]
        self._bodies[key] = (digest, now + ttl_seconds)
        return digest

    async def allow(self, key: str, limit: int, window_seconds: float = 60.0) -> bool:
        now = time.monotonic()
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - window_seconds:
            events.popleft()
        if len(events) >= limit:
            return False
        events.append(now)
        return True

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisState:
    def __init__(self, url: str, prefix: str = "guanwei") -> None:
        self.redis = redis.asyncio.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self.prefix = prefix

    def _key(self, kind: str, key: str) -> str:
        return f"{self.prefix}:{kind}:{key}"

    async def claim(self, key: str) -> bool:
        return bool(await self.redis.set(self._key("claim", key), "1", nx=True, ex=CLAIM_SECONDS))

    async def release(self, key: str) -> None:
        await self.redis.delete(self._key("claim", key))

    async def remember_body(self, key: str, digest: str, ttl_seconds: int) -> str:
        name = self._key("replay", key)
        if await self.redis.set(name, digest, nx=True, ex=ttl_seconds):
            return digest
        bound = await self.redis.get(name)
        return bound.decode() if bound is not None else digest

    async def allow(self, key: str, limit: int, window_seconds: float = 60.0) -> bool:
        # A fixed window per minute: one INCR and one EXPIRE, cheap enough for every push.
        bucket = int(time.time() // window_seconds)
        name = self._key("rate", f"{key}:{bucket}")
        async with self.redis.pipeline(transaction=True) as pipe:
            count, _ = await pipe.incr(name).expire(name, int(window_seconds) + 1).execute()
        return int(count) <= limit

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        await self.redis.aclose()


class DegradingState:
    """Redis while it answers; the in-process variant while it does not, with a warning — never refuse a push."""

    def __init__(self, primary: RedisState) -> None:
        self.primary = primary
        self.fallback = InProcessState()
        self._degraded = False

    @property
    def prefix(self) -> str:
        return self.primary.prefix

    @prefix.setter
    def prefix(self, value: str) -> None:
        self.primary.prefix = value

    @property
    def redis(self) -> redis.asyncio.Redis:
        return self.primary.redis

    async def _call(self, name: str, *args: object) -> object:
        try:
            result = await getattr(self.primary, name)(*args)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            if not self._degraded:
                logger.warning("Redis unavailable ({}): dedup, replay memory and rate limits are per worker "
                               "until it returns", type(exc).__name__)
                self._degraded = True
            return await getattr(self.fallback, name)(*args)
        if self._degraded:
            logger.info("Redis is back: shared state restored")
            self._degraded = False
        return result

    async def claim(self, key: str) -> bool:
        return bool(await self._call("claim", key))

    async def release(self, key: str) -> None:
        await self._call("release", key)

    async def remember_body(self, key: str, digest: str, ttl_seconds: int) -> str:
        return str(await self._call("remember_body", key, digest, ttl_seconds))

    async def allow(self, key: str, limit: int, window_seconds: float = 60.0) -> bool:
        return bool(await self._call("allow", key, limit, window_seconds))

    async def ping(self) -> None:
        await self.primary.ping()  # readiness reports the truth, even while degraded

    async def close(self) -> None:
        await self.primary.close()


def shared_state(redis_url: str | None, prefix: str = "guanwei") -> SharedState:
    return DegradingState(RedisState(redis_url, prefix)) if redis_url else InProcessState()
