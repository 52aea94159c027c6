"""knowledge.segmentation: the Segmenter restates jieba's cutting (no HMM) over one shared main dictionary.

Three exact checks: it cuts every labelled and CrossWOZ text exactly as ``jieba.Tokenizer().lcut(text,
HMM=False)`` does (without and with the classifier's user dictionary), the classifier and the screener load
jieba's main dictionary once between them, and the classifier's pattern pre-filter never skips a severity
pattern that matches. Failures name a set and a line number, not the text.
"""

from __future__ import annotations

import json
from pathlib import Path

import jieba
import pytest

import knowledge.segmentation as segmentation
from knowledge.classifier import DATA_DIR, USERDICT_FILE, Classifier, _load_userdict, normalize
from knowledge.screening import Screener
from knowledge.segmentation import Segmenter

DATA = Path(__file__).parent / "data"
LABELLED = ("dev.jsonl", "heldout.jsonl", "blind.jsonl")
CROSSWOZ = DATA / "crosswoz" / "user_requests_attraction_hotel.jsonl"


def _texts() -> list[tuple[str, str]]:
    """(where, text) for every message of dev, heldout, blind and the CrossWOZ requests."""
    found: list[tuple[str, str]] = []
    for name in (*LABELLED, CROSSWOZ.name):
        path = CROSSWOZ if name == CROSSWOZ.name else DATA / name
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                found.append((f"{name}:{number}", json.loads(line)["text"]))
    return found


@pytest.fixture(scope="module")
def texts() -> list[tuple[str, str]]:
    found = _texts()
    assert len(found) == 539 + 200 + 400
    return found


def test_segmenter_cuts_as_jieba_without_hmm(texts: list[tuple[str, str]]) -> None:
    """The screener's Segmenter() against a plain jieba tokenizer, then the classifier's Segmenter(userdict)
    against the same tokenizer with the same words added in the same order (jieba's add_word, which suggests
    a frequency where the user dictionary gives none). Raw texts and the normalised ones the classifier cuts."""
    userdict = _load_userdict(DATA_DIR / USERDICT_FILE)
    assert userdict, "the user dictionary is empty: the second half would prove nothing"
    reference = jieba.Tokenizer()
    inputs = [(where, text) for where, raw in texts for text in dict.fromkeys((raw, normalize(raw)))]

    plain = Segmenter()
    wrong = [where for where, text in inputs if plain.cut(text) != reference.lcut(text, HMM=False)]
    assert wrong == []

    for word, freq in userdict:
        reference.add_word(word, freq)
    ours = Segmenter(userdict)
    wrong = [where for where, text in inputs if ours.cut(text) != reference.lcut(text, HMM=False)]
    assert wrong == []
    # the user dictionary did change some cuts, so the comparison above tested the added words
    assert any(ours.cut(text) != plain.cut(text) for _, text in inputs)


def test_classifier_and_screener_share_one_main_dictionary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading both (twice over) initialises one jieba tokenizer, and every segmenter holds that same
    dictionary object; the classifier's words stay out of it."""
    initialised: list[object] = []
    real_initialize = jieba.Tokenizer.initialize

    def counting_initialize(self: jieba.Tokenizer, dictionary: object = None) -> None:
        initialised.append(self)
        real_initialize(self, dictionary)

    monkeypatch.setattr(jieba.Tokenizer, "initialize", counting_initialize)
    monkeypatch.setattr(segmentation, "_main", None)  # as in a fresh process; restored afterwards

    classifier = Classifier.load()
    screener = Screener.load()
    again = (Classifier.load(), Screener.load())

    assert len(initialised) == 1
    main, _total = segmentation._main_dictionary()
    assert len(initialised) == 1
    holders = (classifier._segmenter, screener._segmenter, again[0]._segmenter, again[1]._segmenter)
    assert all(segmenter._main is main for segmenter in holders)
    # the domain words live beside the shared dictionary, not in it
    added = [word for word, _ in _load_userdict(DATA_DIR / USERDICT_FILE) if word not in main]
    assert added and all(word in classifier._segmenter._added for word in added)
    assert not screener._segmenter._added


def test_pattern_prefilter_never_skips_a_matching_pattern(texts: list[tuple[str, str]]) -> None:
    """Every severity pattern run plainly over every normalised text: each one that matches is among those
    the pre-filter lets through (the filter may let through more, never fewer)."""
    classifier = Classifier.load()
    patterns = classifier._severity.patterns
    assert patterns
    skipped: list[tuple[str, str]] = []
    matched = 0
    for where, raw in texts:
        norm = normalize(raw)
        allowed = {pattern.name for pattern in classifier._patterns_that_can_match(norm)}
        for pattern in patterns:
            if pattern.regex.search(norm) is not None:
                matched += 1
                if pattern.name not in allowed:
                    skipped.append((where, pattern.name))
    assert skipped == []
    assert matched > 100  # the texts do exercise the patterns
