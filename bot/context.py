"""Typed keys for what the aiohttp application carries; handlers read these, never globals."""

from __future__ import annotations

from aiohttp import web

from bot.config import Settings
from bot.knowledge_runtime import KnowledgeHolder
from bot.live_events import EventHub
from bot.metrics import Metrics
from bot.outbound import Outbound
from bot.pipeline import Clock, Pipeline
from bot.replay import ReplayGuard
from bot.shared_state import SharedState
from bot.storage import Database
from knowledge.screening import Screener

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
PIPELINE = web.AppKey("pipeline", Pipeline)
CLOCK = web.AppKey("clock", Clock)
REPLAY_GUARD = web.AppKey("replay_guard", ReplayGuard)
KNOWLEDGE = web.AppKey("knowledge", KnowledgeHolder)
OUTBOUND = web.AppKey("outbound", Outbound)
SHARED_STATE = web.AppKey("shared_state", SharedState)
METRICS = web.AppKey("metrics", Metrics)
EVENTS = web.AppKey("events", EventHub)
# On a refusal page a handler rendered itself: the reason it shows, for the log's refusal line
REFUSAL_REASON = web.ResponseKey("refusal_reason", str)


def screener(app: web.Application) -> Screener:
    """The answer screening in service now: reloaded with the word lists when screening.yaml changes."""
    return app[KNOWLEDGE].current.screener
