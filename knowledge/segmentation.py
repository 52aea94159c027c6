"""Chinese word segmentation, shared by the classifier and the screener.

Both cut text the way jieba does without its HMM: the most probable route through the graph of the
dictionary words found in the text. A ``jieba.Tokenizer`` each would load and hold jieba's main
dictionary (350,000 words and their prefixes: ~60 MB and half a second) once per user, and the
classifier adds domain words (``userdict.txt``) that must not change how the screener cuts an answer.
So the main dictionary is loaded once per process and never changed, and each ``Segmenter`` keeps
the words it adds in a small dictionary of its own beside it.

``Segmenter(words).cut(text)`` equals ``jieba.Tokenizer.lcut(text, HMM=False)`` on a tokenizer to
which the same words were added with ``add_word``: jieba 0.42.1's algorithm (block splitting, word
graph, route with its tie-break, runs of single letters and digits glued together) restated over the
two dictionaries. Thread-safe: a ``Segmenter`` is read-only once built.
"""

from __future__ import annotations

import logging
import re
import string
import threading
from collections.abc import Iterable
from math import log

import jieba

__all__ = ["Segmenter"]

# jieba's own expression, so that text is split into the same blocks: runs of Han characters, ASCII
# letters, digits and +#&._%- are segmented; outside them every character is a token, and so is "\r\n"
_BLOCK_RE = jieba.re_han_default
_OUTSIDE_TOKEN_RE = re.compile(r"\r\n|.", re.DOTALL)
# consecutive single-character words made of these are one token ("ab12" not cut into letters)
_ASCII_ALNUM = frozenset(string.ascii_letters + string.digits)

_main_lock = threading.Lock()
_main: tuple[dict[str, int], int] | None = None


def _main_dictionary() -> tuple[dict[str, int], int]:
    """jieba's main dictionary (word or word prefix → frequency, 0 for a prefix only) and the total of
    the frequencies. Loaded once per process, from jieba's cache file in the temp directory when there."""
    global _main
    with _main_lock:
        if _main is None:
            # jieba announces its dictionary loading at DEBUG on stderr ("Building prefix dict…"), in the middle of a
            # CLI command's output; a failure still raises
            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            _main = (tokenizer.FREQ, tokenizer.total)
        return _main


class Segmenter:
    """jieba's segmentation (no HMM) with the main dictionary plus ``words``: (word, frequency) pairs,
    added in order as ``jieba.Tokenizer.add_word`` adds them (frequency None: the one jieba suggests)."""

    __slots__ = ("_added", "_added_initials", "_log_total", "_main", "_total")

    def __init__(self, words: Iterable[tuple[str, int | None]] = ()) -> None:
        self._main, self._total = _main_dictionary()
        self._log_total = log(self._total)
        self._added: dict[str, int] = {}  # added words and those of their prefixes the main dictionary lacks
        self._added_initials: set[str] = set()  # the first characters of the keys of _added
        for word, freq in words:
            self._add(word, freq)

    def cut(self, text: str) -> list[str]:
        """The words of ``text`` in order; joined, they are ``text``."""
        words: list[str] = []
        for index, piece in enumerate(_BLOCK_RE.split(text)):
            if index % 2:  # split() puts the runs _BLOCK_RE matched at odd indices
                self._cut_block(piece, words)
            elif piece:
                words.extend(_OUTSIDE_TOKEN_RE.findall(piece))
        return words

    def pieces(self, text: str) -> list[str]:
        """``text`` in the consecutive pieces that ``cut`` cuts each on its own: the runs it segments and
        what lies between them. ``cut(text)`` is the concatenation of ``cut(piece)`` for each piece."""
        return [piece for piece in _BLOCK_RE.split(text) if piece]

    def may_straddle(self, text: str, start: int, end: int) -> bool:
        """Whether a word of ``cut(text)`` may begin inside the span [start, end) and run on past its end,
        told from the dictionary without cutting: False is certain (no dictionary word that long begins
        inside the span, and the span does not end between two letters or digits, which single-letter
        words glue together, nor inside a "\\r\\n"); True means: cut to know."""
        size = len(text)
        if end >= size or end <= start + 1:
            return False
        if text[end - 1 : end + 1] == "\r\n" or (text[end - 1] in _ASCII_ALNUM and text[end] in _ASCII_ALNUM):
            return True
        for word_start in range(start + 1, end):
            lookup = self._frequency if text[word_start] in self._added_initials else self._main.get
            word_end = word_start + 1
            freq = lookup(text[word_start])
            while freq is not None:
                if freq and word_end > end:
                    return True
                if word_end == size:
                    break
                word_end += 1
                freq = lookup(text[word_start:word_end])
        return False

    def _frequency(self, word: str, default: int | None = None) -> int | None:
        """The frequency of a word or prefix in the main dictionary with our words added over it."""
        freq = self._added.get(word)
        return self._main.get(word, default) if freq is None else freq

    def _add(self, word: str, freq: int | None) -> None:
        if not word:
            raise ValueError("cannot add an empty word")
        if freq is None:
            freq = self._suggested_frequency(word)
        self._added[word] = freq
        self._total += freq
        self._log_total = log(self._total)
        self._added_initials.add(word[0])
        for end in range(1, len(word)):
            prefix = word[:end]
            if prefix not in self._added and prefix not in self._main:
                self._added[prefix] = 0

    def _suggested_frequency(self, word: str) -> int:
        """jieba's ``suggest_freq(word)``: just high enough for the word to come out whole."""
        total = float(self._total)
        freq: float = 1
        for piece in self.cut(word):
            freq *= self._frequency(piece, 1) / total  # type: ignore[operator]
        return max(int(freq * self._total) + 1, self._frequency(word, 1))  # type: ignore[type-var]

    def _cut_block(self, block: str, words: list[str]) -> None:
        """Appends the words of one block: from its end backwards, the best route from each position
        is the word starting there that maximises log(frequency / total) plus the best route after it
        (on a tie, the longer word); a character that starts no word is a word of frequency 1."""
        n = len(block)
        main_get = self._main.get
        frequency = self._frequency
        initials = self._added_initials
        log_total = self._log_total
        route_score = [0.0] * (n + 1)
        word_end = list(range(1, n + 1))  # exclusive end of the best word starting at each position
        for start in range(n - 1, -1, -1):
            lookup = frequency if block[start] in initials else main_get
            best = None
            end = start + 1
            freq = lookup(block[start])
            while freq is not None:
                if freq:
                    score = log(freq) - log_total + route_score[end]
                    if best is None or score >= best:
                        best = score
                        word_end[start] = end
                if end == n:
                    break
                end += 1
                freq = lookup(block[start:end])
            # (as jieba writes the sum, so that it rounds alike and ties fall the same way)
            route_score[start] = log(1) - log_total + route_score[start + 1] if best is None else best
        start = 0
        glued = ""
        while start < n:
            end = word_end[start]
            word = block[start:end]
            if end - start == 1 and word in _ASCII_ALNUM:
                glued += word
            else:
                if glued:
                    words.append(glued)
                    glued = ""
                words.append(word)
            start = end
        if glued:
            words.append(glued)
