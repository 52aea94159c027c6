"""Replay protection for signed webhooks.

WeChat's plain-mode `signature` covers only token, timestamp and nonce, not the body: a captured
URL could carry any body. So a signed request is accepted only while its timestamp is fresh, and a
(timestamp, nonce) pair is bound to the first body seen with it: the platform's own retries
(same body) pass, a different body under a used pair is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

from bot.shared_state import SharedState


class ReplayRefused(Exception):
    status = 403


class ReplayGuard:
    def __init__(self, window_seconds: int, clock: Callable[[], datetime], state: SharedState) -> None:
        self.window = window_seconds
        self.clock = clock
        self.state = state  # shared by all workers when Redis is configured

    async def check(self, channel: str, timestamp: str, nonce: str, body: bytes) -> None:
        now = self.clock().timestamp()
        # Both platforms send a whole number of ASCII digits; float() would also take "nan" (which compares
        # false with everything, so it would pass the window), "+1e9", " 12", or full-width digits.
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 16:
            raise ReplayRefused("timestamp is not a whole number of seconds (milliseconds for Weibo)")
        sent = float(timestamp)
        if channel == "weibo":
            sent /= 1000  # Weibo stamps in milliseconds
        if abs(now - sent) > self.window:
            raise ReplayRefused(f"timestamp outside the {self.window}s window (clock skew or replay)")
        key, digest = f"{channel}:{timestamp}:{nonce[:64]}", hashlib.sha256(body).hexdigest()
        if await self.state.remember_body(key, digest, 2 * self.window) != digest:
            raise ReplayRefused("timestamp and nonce already used for another body")
