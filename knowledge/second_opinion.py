"""The second opinion on severity: a small logistic regression on the characters of a message.

The word lists in ``severity.yaml`` miss critical messages written in words nobody put on them (critical
recall 0.72–0.76 on messages by people who never saw the lists). A logistic regression over the message's
character 1–3-grams, trained on labelled messages (``python -m knowledge.train_second_opinion``), catches
most of those: a message is critical when the word lists say so **or** the model's probability reaches its
threshold. Its weights are a data file like the word lists (``knowledge/data/second_opinion.json``); when the
file is absent the classifier uses the word lists alone.

Scoring is pure Python (scikit-learn is needed only to train): the normalised text, lower-cased, with runs
of whitespace collapsed to one space → the set of its substrings of 1 to 3 characters → bias + the sum of
their weights → logistic → p. ``evidence`` names the n-grams that pushed p up most, so a decision made by
the model still lists the words that made it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import repeat
from operator import add

__all__ = ["SECOND_OPINION_FILE", "SecondOpinion"]

SECOND_OPINION_FILE = "second_opinion.json"

_WHITESPACE_RUN_RE = re.compile(r"\s\s+")


@dataclass(frozen=True, slots=True)
class SecondOpinion:
    bias: float
    threshold: float  # critical when p >= threshold
    weights: Mapping[str, float] = field(repr=False)  # n-gram → weight (absent n-grams weigh 0)
    ngram: tuple[int, int] = (1, 3)
    source: str = ""  # the file it was read from, for messages

    def _grams(self, norm: str) -> dict[str, None]:
        """The distinct substrings of ``low`` to ``high`` characters (binary features: each counts once), in
        the order they first occur: a dict rather than a set, so that summing their weights in this order
        gives the same float in every process (a set's order follows string hashes, which vary per process)."""
        text = _WHITESPACE_RUN_RE.sub(" ", norm.lower())
        low, high = self.ngram
        grams: list[str] = list(text) if low == 1 else []
        current: str | list[str] = text
        for n in range(2, high + 1):  # each (n-1)-gram followed by the next character (faster than slicing)
            current = list(map(add, current, text[n - 1 :]))
            if n >= low:
                grams += current
        return dict.fromkeys(grams)

    def probability(self, norm: str) -> float:
        """p(critical) of a text already passed through ``knowledge.classifier.normalize``."""
        # a plain sum in the grams' fixed order: deterministic, and within 1e-15 of math.fsum's exact sum
        # (which cost a tenth of the scoring time)
        z = self.bias + sum(map(self.weights.get, self._grams(norm), repeat(0.0)))
        if z < -700:  # math.exp overflows past ~709
            return 0.0
        return 1.0 / (1.0 + math.exp(-z))

    def evidence(self, norm: str, limit: int = 4) -> list[str]:
        """Up to ``limit`` n-grams of two or more characters in the text with the largest positive weights,
        heaviest first, leaving out one that lies inside (or around) an n-gram already listed and any that
        is not all letters, digits or CJK characters (punctuation, spaces)."""
        weights = self.weights
        ranked = sorted(
            (g for g in self._grams(norm) if len(g) >= 2 and weights.get(g, 0.0) > 0.0),
            key=lambda g: (-weights[g], g),
        )
        chosen: list[str] = []
        for gram in ranked:
            if not gram.isalnum():  # "了," or " a" would say nothing to a reader
                continue
            if any(gram in other or other in gram for other in chosen):
                continue
            chosen.append(gram)
            if len(chosen) == limit:
                break
        return chosen
