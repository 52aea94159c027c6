"""The live knowledge: classifier word lists (files under knowledge/data) and the FAQ (database).

Both can change while the server runs: an editor saves a word list, the information centre runs
`guanwei kb import`. `KnowledgeHolder` rebuilds them off the event loop and swaps the new pair in
at once; a broken edit is logged and the previous knowledge stays in service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from loguru import logger
from sqlalchemy import func, select

from bot.storage import Database, FaqRecord, StorageUnavailable
from knowledge import Classifier, KnowledgeDataError
from knowledge.classifier import DATA_DIR
from knowledge.faq import FaqEntry, FaqFormatError, FaqMatcher, FillerWords, entries_from_dicts, usable_entries
from knowledge.screening import Screener, ScreeningDataError


@dataclass(frozen=True)
class Knowledge:
    classifier: Classifier
    faq: FaqMatcher
    screener: Screener  # the answer screening (R9, R10) for staff answers, FAQ answers and posts
    version: tuple[object, ...]  # what it was built from: file times, FAQ row count and last change


def record_to_dict(record: FaqRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "question": record.question,
        "answer": record.answer,
        "alternates": list(record.alternates),
        "department": record.department,
        "tags": list(record.tags),
    }


async def load_faq_entries(database: Database) -> list[FaqEntry]:
    """The live knowledge base's entries that can go into service together. `guanwei kb import` writes only
    such a set; a row written some other way that clashes with another (the same question twice) is left
    out and said in the log, rather than keeping the server from starting."""
    entries, left_out = usable_entries(await load_all_faq_entries(database))
    if left_out:
        logger.error("FAQ entries not answered with, they clash with others in the live knowledge base: {}",
                     "; ".join(left_out.values()))
    return entries


async def load_all_faq_entries(database: Database) -> list[FaqEntry]:
    """Every row of the live knowledge base, as it is (for `guanwei kb export` and `usable_entries`)."""
    async with database.transaction() as session:
        records = (await session.scalars(select(FaqRecord).order_by(FaqRecord.id))).all()
    return entries_from_dicts([record_to_dict(r) for r in records], validate=False)


def unfit_answers(entries: Collection[FaqEntry], screener: Screener) -> dict[str, str]:
    """Entries whose answer the answer screening blocks (R9, R10: uncivil wording, personal data…), with
    why. An FAQ answer goes out with no person reading it first, so it must pass what staff answers pass."""
    unfit = {}
    for entry in entries:
        verdict = screener.screen(entry.answer)
        if verdict.blocked:
            unfit[entry.id] = "；".join(finding.message for finding in verdict.blocking)
    return unfit


def _files_version(data_dir: Path) -> tuple[object, ...]:
    return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in data_dir.glob("*") if p.is_file()))


async def _faq_version(database: Database) -> tuple[object, ...]:
    async with database.transaction() as session:
        count, changed = (await session.execute(select(func.count(), func.max(FaqRecord.updated_at)))).one()
    return (count, changed.isoformat() if changed else None)


class KnowledgeHolder:
    def __init__(
        self,
        database: Database,
        *,
        departments: Collection[str],
        fallback: str,
        data_dir: Path = DATA_DIR,
        load_classifier: Callable[[], Classifier] | None = None,
        load_screener: Callable[[], Screener] | None = None,
    ) -> None:
        self.database = database
        self.data_dir = data_dir
        self.load_classifier = load_classifier or (
            lambda: Classifier.load(data_dir, departments=departments, fallback=fallback)
        )
        self.load_screener = load_screener or (lambda: Screener.load(data_dir / "screening.yaml"))
        self._current: Knowledge | None = None
        self._lock = asyncio.Lock()

    @property
    def current(self) -> Knowledge:
        if self._current is None:
            raise RuntimeError("knowledge not loaded yet: call `await holder.reload()` at start-up")
        return self._current

    async def _version(self) -> tuple[object, ...]:
        return (_files_version(self.data_dir), await _faq_version(self.database))

    async def reload(self, *, force: bool = False) -> bool:
        """Rebuild if anything changed (or `force`). True when new knowledge went into service."""
        async with self._lock:
            try:
                version = await self._version()
                if not force and self._current is not None and self._current.version == version:
                    return False
                entries = await load_faq_entries(self.database)
            except StorageUnavailable as exc:
                if self._current is not None:
                    raise
                # Start answering anyway (storage-down pushes get 503s); the watcher retries the FAQ.
                logger.warning("FAQ not loaded, database unavailable; will retry: {}", exc)
                version, entries = ("unloaded",), []
            try:
                classifier = await asyncio.to_thread(self.load_classifier)
                screener = await asyncio.to_thread(self.load_screener)
            except (KnowledgeDataError, ScreeningDataError) as exc:
                if self._current is None:
                    raise  # at start there is nothing to keep: `guanwei serve` says which file and line
                logger.error("word lists not reloaded, the previous ones stay in service: {}", exc)
                return False
            if unfit := unfit_answers(entries, screener):
                # Written into the database some other way than `guanwei kb import`, which refuses them.
                logger.error("FAQ entries not answered with, their answers fail the answer screening: {}",
                             "; ".join(f"{entry_id}: {why}" for entry_id, why in unfit.items()))
                entries = [entry for entry in entries if entry.id not in unfit]
            try:
                FillerWords.default.cache_clear()  # the filler list is a data file too: read it again
                matcher = FaqMatcher(entries)
            except FaqFormatError as exc:
                if self._current is None:
                    raise
                logger.error("FAQ not reloaded, the previous one stays in service: {}", exc)
                return False
            if classifier.second_opinion is None and (self._current is None
                                                      or self._current.classifier.second_opinion is not None):
                logger.warning("no second opinion (knowledge/data/second_opinion.json): the word lists alone decide "
                               "what is critical, and they miss more of what people write in their own words")
            self._current = Knowledge(classifier, matcher, screener, version)
            logger.info("knowledge loaded: {} FAQ entries, word lists from {}", len(entries), self.data_dir)
            return True

    async def watch(self, interval_seconds: float) -> None:
        """Check for changes every `interval_seconds` until cancelled."""
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await self.reload()
            except Exception as exc:  # a database hiccup must not end the watcher
                logger.warning("knowledge change check failed, will retry: {}", exc)
