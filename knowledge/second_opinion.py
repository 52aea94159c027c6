"""The second opinion on severity and department: two small logistic regressions on a message's characters.

The word lists in ``severity.yaml`` and ``departments.yaml`` miss messages written in words nobody put on them:
on 900 messages by writers who never saw them (``tests/data/train_t1``–``t3``), the lists alone found 0.54 of the
critical messages and routed 0.79 to the right department. Two logistic regressions over the message's character
1–3-grams, trained on labelled messages (``python -m knowledge.train_second_opinion``), catch most of
what the lists miss:

- severity: a message is critical when the word lists say so **or** the model's p(critical) reaches its
  threshold;
- department: the model's log-odds for each department plus ``lexicon_weight`` times the word lists' routing
  score for it; the largest wins, and its share of the softmax is the routing confidence.

The weights are a data file like the word lists (``knowledge/data/second_opinion.json``); when the file is absent
the classifier uses the word lists alone.

Scoring is pure Python (scikit-learn is needed only to train), identical to scikit-learn's
``TfidfVectorizer(analyzer="char", ngram_range=(1, 3), binary=True)`` followed by the models: the normalised
text, lower-cased, with runs of whitespace collapsed to one space → its distinct substrings of 1 to 3
characters that have an idf → each weighs idf / (the square root of the sum of their idf²) → bias + the sum
of weight × that. ``evidence`` names the n-grams that pushed a decision most, so a decision the model made
still lists the words that made it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from operator import add
from typing import Any

__all__ = ["SECOND_OPINION_FILE", "SecondOpinion"]

SECOND_OPINION_FILE = "second_opinion.json"

_WHITESPACE_RUN_RE = re.compile(r"\s\s+")


@dataclass(frozen=True, slots=True)
class SecondOpinion:
    threshold: float  # critical when p >= threshold
    severity_bias: float
    departments: tuple[str, ...]
    department_bias: tuple[float, ...]
    lexicon_weight: float  # added to a department's log-odds per unit of the word lists' routing score
    # n-gram → (idf², idf·w_severity, idf·w_department for each of ``departments``); every n-gram of the
    # training vocabulary is here, since each counts in the vector's length even where its weights are 0
    table: Mapping[str, tuple[float, ...]] = field(repr=False)
    ngram: tuple[int, int] = (1, 3)
    source: str = ""  # the file it was read from, for messages

    @staticmethod
    def prepare(norm: str) -> str:
        """The text the n-grams are taken from: lower-cased, whitespace runs collapsed (as scikit-learn does)."""
        return _WHITESPACE_RUN_RE.sub(" ", norm.lower())

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], source: str = "") -> SecondOpinion:
        """Build from the file's contents, already validated (``knowledge.classifier`` checks the file)."""
        severity, department = doc["severity"], doc["department"]
        keys = tuple(department["keys"])
        sev_weights: Mapping[str, float] = severity["weights"]
        dep_weights: list[Mapping[str, float]] = [department["weights"].get(key, {}) for key in keys]
        # Most of an n-gram's department weights are 0 (pruned): they all share one float object instead of
        # a million separate ones (about 25 MB a worker with 125,000 n-grams).
        zero = 0.0
        table = {
            gram: (idf * idf, idf * sev_weights.get(gram, 0.0),
                   *(idf * w if (w := column.get(gram)) else zero for column in dep_weights))
            for gram, idf in doc["idf"].items()
        }
        low, high = doc.get("ngram", (1, 3))
        return cls(
            threshold=float(severity["threshold"]), severity_bias=float(severity["bias"]), departments=keys,
            department_bias=tuple(float(b) for b in department["bias"]),
            lexicon_weight=float(department["lexicon_weight"]), table=table, ngram=(low, high), source=source,
        )

    def _grams(self, norm: str) -> dict[str, None]:
        """The distinct substrings of ``low`` to ``high`` characters (binary features: each counts once), in
        the order they first occur: a dict rather than a set, so that summing their weights in this order
        gives the same float in every process (a set's order follows string hashes, which vary per process)."""
        text = self.prepare(norm)
        low, high = self.ngram
        grams: list[str] = list(text) if low == 1 else []
        current: str | list[str] = text
        for n in range(2, high + 1):  # each (n-1)-gram followed by the next character (faster than slicing)
            current = list(map(add, current, text[n - 1 :]))
            if n >= low:
                grams += current
        return dict.fromkeys(grams)

    def assess(self, norm: str) -> tuple[float, dict[str, float]]:
        """p(critical), and each department's log-odds, of a text already passed through
        ``knowledge.classifier.normalize``."""
        rows = [row for row in map(self.table.get, self._grams(norm)) if row is not None]
        if rows:
            # column sums in the grams' fixed order: deterministic in every process
            sums = list(map(sum, zip(*rows, strict=True)))
            length = math.sqrt(sums[0])
            z = self.severity_bias + sums[1] / length
            logits = {key: bias + total / length
                      for key, bias, total in zip(self.departments, self.department_bias, sums[2:], strict=True)}
        else:
            z = self.severity_bias
            logits = dict(zip(self.departments, self.department_bias, strict=True))
        return _logistic(z), logits

    def probability(self, norm: str) -> float:
        """p(critical) alone."""
        return self.assess(norm)[0]

    def evidence(self, norm: str, limit: int = 4, department: str | None = None) -> list[str]:
        """Up to ``limit`` n-grams of two or more characters in the text that pushed most towards critical (or,
        given ``department``, towards that department), heaviest first, leaving out one that lies inside (or
        around) an n-gram already listed and any that is not all letters or CJK characters: digits are left out,
        since the evidence is shown in alerts and pages and a message's digits may be a phone or ID number."""
        column = 1 if department is None else 2 + self.departments.index(department)
        table = self.table
        weighed = [(gram, row[column]) for gram in self._grams(norm)
                   if len(gram) >= 2 and (row := table.get(gram)) is not None and row[column] > 0.0]
        chosen: list[str] = []
        for gram, _ in sorted(weighed, key=lambda item: (-item[1], item[0])):
            # "了," or " a" would say nothing to a reader; "123" may be a piece of someone's phone number
            if not gram.isalnum() or any(ch.isdigit() for ch in gram):
                continue
            if any(gram in other or other in gram for other in chosen):
                continue
            chosen.append(gram)
            if len(chosen) == limit:
                break
        return chosen


def _logistic(z: float) -> float:
    if z < -700:  # math.exp overflows past ~709
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))
