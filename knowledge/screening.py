"""Answer screening before sending (rules R9 and R10, issue 5 part 5).

Every staff answer and auto-reply is screened before it reaches a netizen:

* R10 (article 10, 文明、规范用语): no ``uncivil`` wording (insults, mockery, rude imperatives,
  brush-offs), no ``unprofessional`` internet slang or emoji, no ``personal_data`` (mobile phone,
  ID-card and bank-card numbers, e-mail addresses);
* R9 (article 9): nothing ``banned`` (illegal or unhealthy content), no ``false_promise``
  (absolute claims, promises of outcomes the bureau cannot give — 虚假信息), no
  ``emotional_opinion`` (情绪化个人观点和看法).

``uncivil``, ``banned`` and ``personal_data`` findings **block** the answer (a department head may
override with a recorded reason — the caller's business); the others **warn** the writer.

The word lists live in ``knowledge/data/screening.yaml``, which the bureau edits; it is validated
when loaded (``ScreeningDataError`` names the file, the line and the entry). Matching:

* The answer is normalised with :func:`knowledge.classifier.normalize` (full-width → half-width,
  lower case, traditional → simplified) one character at a time, so that every position maps back
  to the original text: ``Finding.start``/``end`` index the string that was passed in.
* Terms made of letters and digits are matched on the answer with everything else (spaces,
  punctuation, symbols) removed, so "滚 蛋" and "滚-蛋" are found; a match must start and end on
  jieba token boundaries, so 滚 is found in "给我滚" but not in "不滚动播放". Terms containing a
  symbol ("亲~") are matched literally on the normalised answer.
* Patterns (regular expressions) are matched on both forms.
* Personal data is found by the built-in detectors of :mod:`knowledge.pii` (the log masking uses
  the same ones) minus an allow-list of the bureau's own published numbers and addresses.

Pure: no HTTP, no SQL, nothing from ``bot/``. ``Screener.screen`` does no I/O and never raises on
any ``str``.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from knowledge.classifier import normalize
from knowledge.pii import DETECTORS, EMAIL, fold, id_card_valid, is_email_address, luhn_valid
from knowledge.pii import mask as _mask
from knowledge.pii import spans as _pd_spans
from knowledge.segmentation import Segmenter
from knowledge.yaml_base import FastSafeLoader

__all__ = [
    "BANNED",
    "BLOCK",
    "CATEGORIES",
    "DATA_FILE",
    "EMOTIONAL_OPINION",
    "FALSE_PROMISE",
    "PERSONAL_DATA",
    "RULES",
    "SEVERITIES",
    "UNCIVIL",
    "UNPROFESSIONAL",
    "WARN",
    "Finding",
    "Screener",
    "ScreeningDataError",
    "Verdict",
    "id_card_valid",
    "luhn_valid",
]

DATA_FILE = Path(__file__).resolve().with_name("data") / "screening.yaml"

UNCIVIL = "uncivil"
BANNED = "banned"
FALSE_PROMISE = "false_promise"
EMOTIONAL_OPINION = "emotional_opinion"
PERSONAL_DATA = "personal_data"
UNPROFESSIONAL = "unprofessional"

BLOCK = "block"
WARN = "warn"

# Word-list categories, in the order they appear in the data file.
WORD_CATEGORIES = (UNCIVIL, BANNED, FALSE_PROMISE, EMOTIONAL_OPINION, UNPROFESSIONAL)
CATEGORIES = (*WORD_CATEGORIES, PERSONAL_DATA)

# Fixed by the rules, not by the data file: the bureau edits what is found, not what it weighs.
SEVERITIES: Mapping[str, str] = {
    UNCIVIL: BLOCK,
    BANNED: BLOCK,
    PERSONAL_DATA: BLOCK,
    FALSE_PROMISE: WARN,
    EMOTIONAL_OPINION: WARN,
    UNPROFESSIONAL: WARN,
}
RULES: Mapping[str, str] = {
    UNCIVIL: "R10",
    UNPROFESSIONAL: "R10",
    PERSONAL_DATA: "R10",
    BANNED: "R9",
    FALSE_PROMISE: "R9",
    EMOTIONAL_OPINION: "R9",
}

# Personal-data detectors: knowledge.pii's DETECTORS, built in; the data file names them and
# allow-lists numbers.


class ScreeningDataError(ValueError):
    """The screening data file is malformed. The message names the file, the line and the entry."""


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in an answer.

    ``start``/``end`` index the text given to :meth:`Screener.screen`, and ``term`` is that slice
    (what the writer typed, "滚-蛋" as typed) — except for personal data, where ``term`` is masked
    ("138****5678") so that verdicts can be logged and audited without copying the data.
    ``label`` names the group or detector ("赌博", "手机号码"; may be empty); ``entry`` is the data
    file entry that matched (a term, a pattern, or a detector name), for whoever edits the lists;
    ``message`` is the Chinese sentence shown to the writer ("含有不文明用语“滚”，请修改后再发送。").
    """

    category: str
    term: str
    start: int
    end: int
    severity: str
    advice: str
    label: str = ""
    entry: str = ""
    message: str = ""

    @property
    def sentence(self) -> str:
        return self.message or _sentence(
            _CATEGORY_NAMES.get(self.category, self.category), self.label, self.term, self.advice
        )

    @property
    def rule(self) -> str:
        return RULES.get(self.category, "")

    @property
    def blocking(self) -> bool:
        return self.severity == BLOCK

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "rule": self.rule,
            "severity": self.severity,
            "term": self.term,
            "start": self.start,
            "end": self.end,
            "label": self.label,
            "entry": self.entry,
            "advice": self.advice,
            "message": self.sentence,
        }


_CATEGORY_NAMES = {
    UNCIVIL: "不文明用语",
    BANNED: "违法违规或不健康内容",
    FALSE_PROMISE: "绝对化或无法兑现的承诺",
    EMOTIONAL_OPINION: "情绪化的个人观点",
    UNPROFESSIONAL: "网络用语或表情",
    PERSONAL_DATA: "个人信息",
}
_TRAILING_PUNCT = "。．.，,；;！!"


def _sentence(name: str, label: str, term: str, advice: str) -> str:
    """E.g. 含有不文明用语“滚”，请修改后再发送。 / 含有违法违规或不健康内容（赌博）“网上赌场”，不得发布，请删除。"""
    what = f"{name}（{label}）" if label else name
    advice = advice.rstrip(_TRAILING_PUNCT)
    return f"含有{what}“{term}”，{advice}。" if advice else f"含有{what}“{term}”。"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The findings for one answer, in text order. Blocked when any finding blocks."""

    findings: tuple[Finding, ...] = ()

    @property
    def blocked(self) -> bool:
        return any(f.severity == BLOCK for f in self.findings)

    @property
    def clean(self) -> bool:
        return not self.findings

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == BLOCK)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity != BLOCK)

    @property
    def categories(self) -> tuple[str, ...]:
        """The categories found, each once, in text order."""
        return tuple(dict.fromkeys(f.category for f in self.findings))

    @property
    def sentences(self) -> tuple[str, ...]:
        """One Chinese sentence per finding, blocking findings first; repeats of the same sentence
        (the same word three times) are said once."""
        ordered = [*self.blocking, *self.warnings]
        return tuple(dict.fromkeys(f.sentence for f in ordered))

    @property
    def summary(self) -> str:
        """The sentences, one per line; empty when the answer is clean."""
        return "\n".join(self.sentences)

    def to_dict(self) -> dict[str, Any]:
        return {
            "blocked": self.blocked,
            "summary": self.summary,
            "findings": [f.to_dict() for f in self.findings],
        }


# --------------------------------------------------------------------------------------------
# Loading and validating the data file
# --------------------------------------------------------------------------------------------


class _Lined(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers the line (1-based) of each key."""

    __slots__ = ("lines",)

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}


class _LinedList(list):  # type: ignore[type-arg]
    __slots__ = ("lines",)

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[int] = []


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(key, line, first)
        self.key, self.line, self.first = key, line, first


class _Loader(FastSafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML keeps the last silently) and records lines."""


def _mapping(loader: _Loader, node: yaml.MappingNode) -> _Lined:
    loader.flatten_mapping(node)
    out = _Lined()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, "unhashable key", key_node.start_mark) from None
        if key in out:
            raise _DuplicateKey(key, line, out.lines[key])
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = line
    return out


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> _LinedList:
    out = _LinedList()
    for child in node.value:
        out.append(loader.construct_object(child, deep=True))
        out.lines.append(child.start_mark.line + 1)
    return out


_Loader.add_constructor("tag:yaml.org,2002:map", _mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _sequence)


def _line(container: Any, key: Any) -> int | None:
    lines = getattr(container, "lines", None)
    if isinstance(lines, dict):
        return lines.get(key)
    if isinstance(lines, list) and isinstance(key, int) and 0 <= key < len(lines):
        return lines[key]
    return None


@dataclass(frozen=True, slots=True)
class _Rule:
    """Where a term or pattern came from, and what a finding of it says."""

    category: str
    label: str
    advice: str
    entry: str
    where: str


@dataclass(frozen=True, slots=True)
class _Data:
    labels: dict[str, str]
    compact_terms: dict[str, _Rule]  # letters and digits only: matched with separators removed
    literal_terms: dict[str, _Rule]  # containing a symbol: matched on the normalised text
    patterns: tuple[tuple[re.Pattern[str], _Rule], ...]
    exceptions: tuple[str, ...]
    detectors: dict[str, str]  # detector → label
    pd_advice: str
    allow_numbers: frozenset[str]
    allow_emails: frozenset[str]
    allow_email_domains: tuple[str, ...]
    allow_patterns: tuple[re.Pattern[str], ...]


class _Parser:
    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, where: str, problem: str, line: int | None = None) -> ScreeningDataError:
        at = f" line {line}" if line else ""
        return ScreeningDataError(f"{self.path}{at}: {where}: {problem}")

    def load(self) -> _Data:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ScreeningDataError(f"{self.path}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ScreeningDataError(f"{self.path}: cannot read: {exc}") from None
        loader = _Loader(text)
        try:
            root = loader.get_single_data()
        except _DuplicateKey as exc:
            raise self.error(repr(exc.key), f"duplicate key (first at line {exc.first})", exc.line) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            raise self.error("YAML", f"invalid YAML: {problem}", mark.line + 1 if mark else None) from None
        finally:
            loader.dispose()
        return self.parse(root)

    # -- structure -----------------------------------------------------------------------------

    def mapping(self, value: Any, where: str, line: int | None) -> Mapping[Any, Any]:
        if not isinstance(value, Mapping):
            raise self.error(where, f"must be a mapping, got {type(value).__name__}", line)
        return value

    def keys(self, value: Mapping[Any, Any], where: str, allowed: Iterable[str], required: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in value:
            if key not in allowed:
                raise self.error(
                    f"{where}.{key}" if where else str(key),
                    f"unknown key (allowed: {', '.join(allowed)})",
                    _line(value, key),
                )
        for key in required:
            if key not in value:
                raise self.error(where or "top level", f"missing required key {key!r}")

    def text(self, value: Any, where: str, line: int | None, *, empty: bool = False) -> str:
        if not isinstance(value, str):
            raise self.error(where, f"must be a string, got {value!r}", line)
        value = value.strip()
        if not value and not empty:
            raise self.error(where, "must not be empty", line)
        return value

    def items(self, value: Any, where: str, line: int | None) -> Iterator[tuple[str, Any, int | None]]:
        if value is None:
            return
        if not isinstance(value, list):
            raise self.error(where, f"must be a list, got {type(value).__name__}", line)
        for index, item in enumerate(value):
            yield f"{where}[{index}]", item, _line(value, index) or line

    def term(self, raw: Any, where: str, line: int | None) -> str:
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise self.error(where, f"term must be a string, got {raw!r}", line)
        term = _normalize(str(raw)).strip()
        if not term:
            raise self.error(where, f"empty term {raw!r}", line)
        if any(ch.isspace() for ch in term):
            raise self.error(where, f"term {term!r} contains whitespace (separators are ignored when matching)", line)
        return term

    def regex(self, raw: Any, where: str, line: int | None) -> re.Pattern[str]:
        if not isinstance(raw, str) or not raw.strip():
            raise self.error(where, f"pattern must be a non-empty string, got {raw!r}", line)
        try:
            compiled = re.compile(raw, re.IGNORECASE)
        except re.error as exc:
            raise self.error(where, f"bad regular expression {raw!r}: {exc}", line) from None
        if compiled.search("") is not None:
            raise self.error(where, f"pattern {raw!r} matches the empty string", line)
        return compiled

    # -- the file ------------------------------------------------------------------------------

    def parse(self, root: Any) -> _Data:
        root = self.mapping(root, "top level", None)
        self.keys(root, "", (*CATEGORIES, "exceptions"), CATEGORIES)
        seen: dict[str, str] = {}  # normalised term → where it was first defined
        labels: dict[str, str] = {}
        compact: dict[str, _Rule] = {}
        literal: dict[str, _Rule] = {}
        patterns: list[tuple[re.Pattern[str], _Rule]] = []

        for category in WORD_CATEGORIES:
            section = self.mapping(root[category], category, _line(root, category))
            self.keys(section, category, ("label", "advice", "groups"), ("label", "advice", "groups"))
            labels[category] = self.text(section["label"], f"{category}.label", _line(section, "label"))
            advice = self.text(section["advice"], f"{category}.advice", _line(section, "advice"))
            groups = self.mapping(section["groups"], f"{category}.groups", _line(section, "groups"))
            if not groups:
                raise self.error(f"{category}.groups", "no groups", _line(section, "groups"))
            for name, group in groups.items():
                gwhere = f"{category}.groups.{name}"
                gline = _line(groups, name)
                if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                    raise self.error(gwhere, "group names are lower-case identifiers (letters, digits, _)", gline)
                group = self.mapping(group, gwhere, gline)
                self.keys(group, gwhere, ("label", "advice", "terms", "patterns"), ())
                label = self.text(group.get("label", ""), f"{gwhere}.label", _line(group, "label"), empty=True)
                gadvice = advice
                if "advice" in group:
                    gadvice = self.text(group["advice"], f"{gwhere}.advice", _line(group, "advice"))
                count = 0
                for where, raw, line in self.items(group.get("terms"), f"{gwhere}.terms", _line(group, "terms")):
                    term = self.term(raw, where, line)
                    if term in seen:
                        raise self.error(where, f"duplicate term {term!r} (also {seen[term]})", line)
                    seen[term] = where
                    rule = _Rule(category, label, gadvice, term, where)
                    (compact if _compact(term) == term else literal)[term] = rule
                    count += 1
                for where, raw, line in self.items(
                    group.get("patterns"), f"{gwhere}.patterns", _line(group, "patterns")
                ):
                    compiled = self.regex(raw, where, line)
                    patterns.append((compiled, _Rule(category, label, gadvice, compiled.pattern, where)))
                    count += 1
                if not count:
                    raise self.error(gwhere, "no terms or patterns", gline)

        exceptions: list[str] = []
        for where, raw, line in self.items(root.get("exceptions"), "exceptions", _line(root, "exceptions")):
            exceptions.append(self.term(raw, where, line))

        pd = self.mapping(root[PERSONAL_DATA], PERSONAL_DATA, _line(root, PERSONAL_DATA))
        self.keys(pd, PERSONAL_DATA, ("label", "advice", "detectors", "allow"), ("label", "advice", "detectors"))
        labels[PERSONAL_DATA] = self.text(pd["label"], f"{PERSONAL_DATA}.label", _line(pd, "label"))
        pd_advice = self.text(pd["advice"], f"{PERSONAL_DATA}.advice", _line(pd, "advice"))
        dmap = self.mapping(pd["detectors"], f"{PERSONAL_DATA}.detectors", _line(pd, "detectors"))
        self.keys(dmap, f"{PERSONAL_DATA}.detectors", DETECTORS, ())
        detectors = {
            name: self.text(dmap[name], f"{PERSONAL_DATA}.detectors.{name}", _line(dmap, name))
            for name in DETECTORS
            if name in dmap
        }

        allow = self.mapping(pd.get("allow") or {}, f"{PERSONAL_DATA}.allow", _line(pd, "allow"))
        awhere = f"{PERSONAL_DATA}.allow"
        self.keys(allow, awhere, ("numbers", "emails", "email_domains", "patterns"), ())
        numbers: set[str] = set()
        for where, raw, line in self.items(allow.get("numbers"), f"{awhere}.numbers", _line(allow, "numbers")):
            if isinstance(raw, bool) or not isinstance(raw, str | int):
                raise self.error(where, f"must be a number written as a string, got {raw!r}", line)
            digits = re.sub(r"[\s()\-+]", "", _normalize(str(raw)))
            if not re.fullmatch(r"[0-9]{3,20}", digits):
                raise self.error(where, f"{raw!r} is not a phone or card number (3–20 digits)", line)
            numbers.add(digits)
        emails: set[str] = set()
        for where, raw, line in self.items(allow.get("emails"), f"{awhere}.emails", _line(allow, "emails")):
            address = self.text(raw, where, line).lower()
            if not is_email_address(address):
                raise self.error(where, f"{raw!r} is not an e-mail address", line)
            emails.add(address)
        domains: list[str] = []
        for where, raw, line in self.items(
            allow.get("email_domains"), f"{awhere}.email_domains", _line(allow, "email_domains")
        ):
            domain = self.text(raw, where, line).lower().lstrip("@.")
            if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)*", domain):
                raise self.error(where, f"{raw!r} is not a domain name", line)
            domains.append(domain)
        allow_patterns = tuple(
            self.regex(raw, where, line)
            for where, raw, line in self.items(allow.get("patterns"), f"{awhere}.patterns", _line(allow, "patterns"))
        )

        return _Data(
            labels=labels,
            compact_terms=compact,
            literal_terms=literal,
            patterns=tuple(patterns),
            exceptions=tuple(exceptions),
            detectors=detectors,
            pd_advice=pd_advice,
            allow_numbers=frozenset(numbers),
            allow_emails=frozenset(emails),
            allow_email_domains=tuple(domains),
            allow_patterns=allow_patterns,
        )


# --------------------------------------------------------------------------------------------
# Text views: normalised and compact, each with a map back to the original positions
# --------------------------------------------------------------------------------------------


# Traditional → simplified for characters of the screening lists that the classifier's table
# (which covers its own word lists) does not map. Each item is "traditional simplified".
_EXTRA_T2S_PAIRS = """
滾滚 媽妈 癡痴 賤贱 爛烂 悶闷 鬱郁 黴霉 臥卧 噠哒 噓嘘 睏困 尷尴 摳抠 揮挥 撐撑 暈晕 條条 淚泪 澀涩
犢犊 皺皱 種种 腫肿 勝胜 見见 訝讶 轉转 轍辙 顛颠 飽饱 髏髅 東东 妳你 迴回 蠻蛮 罵骂 瞭了 聽听
"""
_EXTRA_T2S = {ord(pair[0]): pair[1] for pair in _EXTRA_T2S_PAIRS.split()}


@lru_cache(maxsize=8192)
def _norm_char(ch: str) -> str:
    try:
        return normalize(ch).translate(_EXTRA_T2S)
    except Exception:  # the classifier's normaliser is tuned elsewhere; screening must not fail
        return " "


def _normalize(text: str) -> str:
    """The form the word lists are compared in (the classifier's normalize, character by character)."""
    return "".join(_norm_char(ch) for ch in text)


def _compact(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


class _View:
    """A transformed text and, for each of its characters, the index of the original character.
    For the compact view, ``breaks`` are the positions where sentence punctuation was removed."""

    __slots__ = ("breaks", "index", "text")

    def __init__(self, text: str, index: list[int], breaks: tuple[int, ...] = ()) -> None:
        self.text = text
        self.index = index
        self.breaks = breaks

    def span(self, start: int, end: int) -> tuple[int, int]:
        return self.index[start], self.index[end - 1] + 1


# Removed characters that separate sentences or phrases ("滚！滚！" is two words, not 滚滚). Spaces,
# dashes, dots, symbols and emoji are treated as inserted to dodge the filter ("滚-蛋", "s.b").
_WEAK_PUNCT = frozenset(".·•‧・*/\\'`")


@lru_cache(maxsize=4096)
def _is_break(ch: str) -> bool:
    if ch in "\n\r\u2028\u2029":
        return True
    return unicodedata.category(ch) in ("Po", "Ps", "Pe", "Pi", "Pf") and ch not in _WEAK_PUNCT


def _views(original: str) -> tuple[_View, _View]:
    norm_chars: list[str] = []
    norm_index: list[int] = []
    compact_chars: list[str] = []
    compact_index: list[int] = []
    breaks: list[int] = []
    pending_break = False
    for i, ch in enumerate(original):
        for c in _norm_char(ch):
            norm_chars.append(c)
            norm_index.append(i)
            if c.isalnum():
                if pending_break and compact_chars:
                    breaks.append(len(compact_chars))
                pending_break = False
                compact_chars.append(c)
                compact_index.append(i)
            elif _is_break(c) or _is_break(ch):  # normalize turns a newline into a space
                pending_break = True
    compact = _View("".join(compact_chars), compact_index, tuple(breaks))
    return _View("".join(norm_chars), norm_index), compact


# The personal-data detectors live in knowledge.pii; allow-listed numbers are compared digits only.
_NON_DIGIT = re.compile(r"[^0-9x]")


# --------------------------------------------------------------------------------------------
# The screener
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Hit:
    start: int  # original positions
    end: int
    rule: _Rule


class Screener:
    """Screens answers before they are sent. Build with :meth:`Screener.load`; ``screen`` is pure."""

    def __init__(self, data: _Data) -> None:
        self._data = data
        by_first: dict[str, list[tuple[str, _Rule]]] = {}
        for term, rule in data.compact_terms.items():
            by_first.setdefault(term[0], []).append((term, rule))
        for entries in by_first.values():
            entries.sort(key=lambda item: -len(item[0]))
        self._by_first = by_first
        self._literal = _alternation(data.literal_terms)
        self._exceptions_compact = _alternation([e for e in data.exceptions if _compact(e) == e])
        self._exceptions_literal = _alternation([e for e in data.exceptions if _compact(e) != e])
        # jieba's main dictionary alone, no domain words: the classifier's would change where a word ends.
        # The dictionary is the one the classifier uses, loaded once per process.
        self._segmenter = Segmenter()

    @classmethod
    def load(cls, path: Path | str | None = None) -> Screener:
        """Read and validate the data file (default ``knowledge/data/screening.yaml``).
        Raises ScreeningDataError naming the file, line and entry on any problem."""
        return cls(_Parser(Path(path) if path is not None else DATA_FILE).load())

    @property
    def sizes(self) -> dict[str, int]:
        """Number of terms and patterns per category, and of allow-list entries (for reports)."""
        sizes = dict.fromkeys(WORD_CATEGORIES, 0)
        for rule in (*self._data.compact_terms.values(), *self._data.literal_terms.values()):
            sizes[rule.category] += 1
        for _, rule in self._data.patterns:
            sizes[rule.category] += 1
        sizes["exceptions"] = len(self._data.exceptions)
        d = self._data
        sizes["personal_data_allow"] = (
            len(d.allow_numbers) + len(d.allow_emails) + len(d.allow_email_domains) + len(d.allow_patterns)
        )
        return sizes

    def screen(self, text: str) -> Verdict:
        """The verdict for one answer. Never raises on any ``str`` (other objects are coerced)."""
        text = _as_text(text)
        if not text:
            return Verdict(())
        norm, compact = _views(text)
        hits = [*self._word_hits(norm, compact)]
        if hits:
            covered = _Cover(self._exception_spans(norm, compact))
            hits = [h for h in hits if not covered(h.start, h.end)]
        findings = [self._finding(text, hit) for hit in _resolve(hits)]
        findings.extend(self._personal_data(norm))
        findings.sort(key=lambda f: (f.start, -f.end, CATEGORIES.index(f.category)))
        return Verdict(tuple(findings))

    # -- word lists ----------------------------------------------------------------------------

    def _word_hits(self, norm: _View, compact: _View) -> Iterator[_Hit]:
        ctext = compact.text
        candidates: list[tuple[int, int, _Rule]] = []
        by_first = self._by_first
        for i, ch in enumerate(ctext):
            entries = by_first.get(ch)
            if entries:
                for term, rule in entries:
                    if ctext.startswith(term, i):
                        candidates.append((i, i + len(term), rule))
        if candidates:
            # A term must be whole words: its ends on token boundaries, either of the text with
            # every separator removed (finds "滚。蛋") or of the text cut at sentence punctuation
            # (finds "滚！滚！", which the first reads as the word 滚滚).
            joined = _boundaries(self._segmenter, [ctext])
            cut = _boundaries(self._segmenter, _split(ctext, compact.breaks)) if compact.breaks else joined
            taken: set[int] = set()  # the longest aligned term at each position
            for s, e, rule in candidates:
                if s in taken:
                    continue
                if (s in joined[0] and e in joined[1]) or (s in cut[0] and e in cut[1]):
                    taken.add(s)
                    yield _Hit(*compact.span(s, e), rule)
        if self._literal is not None:
            for m in self._literal.finditer(norm.text):
                yield _Hit(*norm.span(m.start(1), m.end(1)), self._data.literal_terms[m.group(1)])
        for regex, rule in self._data.patterns:
            for view in (norm, compact):
                for m in regex.finditer(view.text):
                    if m.end() > m.start():
                        yield _Hit(*view.span(m.start(), m.end()), rule)

    def _exception_spans(self, norm: _View, compact: _View) -> list[tuple[int, int]]:
        """Original spans of the exception phrases. A phrase is not read across sentence punctuation:
        "滚！滚！" is not the harmless 滚滚."""
        spans: list[tuple[int, int]] = []
        if self._exceptions_compact is not None:
            for m in _finditer_overlapping(self._exceptions_compact, compact.text):
                s, e = m
                if not any(s < b < e for b in compact.breaks):
                    spans.append(compact.span(s, e))
        if self._exceptions_literal is not None:
            spans.extend(norm.span(*m) for m in _finditer_overlapping(self._exceptions_literal, norm.text))
        return spans

    # -- personal data -------------------------------------------------------------------------

    def _finding(self, text: str, hit: _Hit) -> Finding:
        rule = hit.rule
        term = text[hit.start : hit.end]
        name = self._data.labels.get(rule.category, rule.category)
        return Finding(
            category=rule.category,
            term=term,
            start=hit.start,
            end=hit.end,
            severity=SEVERITIES[rule.category],
            advice=rule.advice,
            label=rule.label,
            entry=rule.entry,
            message=_sentence(name, rule.label, term, rule.advice),
        )

    def _personal_data(self, norm: _View) -> list[Finding]:
        data = self._data
        if not data.detectors:
            return []
        ntext = norm.text
        allowed = [m.span() for regex in data.allow_patterns for m in regex.finditer(ntext)]
        claimed: list[tuple[int, int]] = []  # norm-view spans already reported
        out: list[Finding] = []

        name = data.labels.get(PERSONAL_DATA, PERSONAL_DATA)

        def report(kind: str, s: int, e: int) -> None:
            claimed.append((s, e))
            start, end = norm.span(s, e)
            masked = _mask(kind, ntext[s:e])
            label = data.detectors[kind]
            out.append(
                Finding(
                    category=PERSONAL_DATA,
                    term=masked,
                    start=start,
                    end=end,
                    severity=SEVERITIES[PERSONAL_DATA],
                    advice=data.pd_advice,
                    label=label,
                    entry=kind,
                    message=_sentence(name, label, masked, data.pd_advice),
                )
            )

        def free(s: int, e: int) -> bool:
            if any(a < e and s < b for a, b in claimed):
                return False
            return not any(a <= s and e <= b for a, b in allowed)

        def listed(raw: str) -> bool:
            digits = _NON_DIGIT.sub("", raw).removeprefix("00")  # 0086…: the country code as dialled abroad
            return digits in data.allow_numbers or (digits.startswith("86") and digits[2:] in data.allow_numbers)

        folded = fold(ntext)  # one for one, so spans in it are spans in ntext (一三八… read as digits)
        for kind in DETECTORS:
            if kind not in data.detectors:
                continue
            for s, e in _pd_spans(kind, folded):
                if not free(s, e):
                    continue
                if kind == EMAIL:
                    address = ntext[s:e]
                    domain = address.rpartition("@")[2]
                    if address in data.allow_emails or any(
                        domain == d or domain.endswith("." + d) for d in data.allow_email_domains
                    ):
                        continue
                elif listed(folded[s:e]):
                    continue
                report(kind, s, e)
        return out


class _Cover:
    """Is a span inside one of these spans? O(log n) per question."""

    __slots__ = ("reach", "starts")

    def __init__(self, spans: Iterable[tuple[int, int]]) -> None:
        ordered = sorted(spans)
        self.starts = [a for a, _ in ordered]
        self.reach: list[int] = []  # the furthest end among spans starting at or before each start
        furthest = -1
        for _, b in ordered:
            furthest = max(furthest, b)
            self.reach.append(furthest)

    def __call__(self, start: int, end: int) -> bool:
        at = bisect.bisect_right(self.starts, start) - 1
        return at >= 0 and self.reach[at] >= end


def _split(text: str, breaks: Iterable[int]) -> list[str]:
    pieces: list[str] = []
    last = 0
    for at in breaks:
        pieces.append(text[last:at])
        last = at
    pieces.append(text[last:])
    return pieces


def _boundaries(segmenter: Segmenter, pieces: Iterable[str]) -> tuple[set[int], set[int]]:
    """Token starts and ends (jieba, no HMM) of consecutive pieces of one text, in its offsets."""
    starts: set[int] = set()
    ends: set[int] = set()
    offset = 0
    for piece in pieces:
        for word in segmenter.cut(piece):
            starts.add(offset)
            offset += len(word)
            ends.add(offset)
    return starts, ends


def _alternation(terms: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted(set(terms), key=lambda t: (-len(t), t))
    return re.compile("(" + "|".join(map(re.escape, ordered)) + ")") if ordered else None


def _finditer_overlapping(regex: re.Pattern[str], text: str) -> Iterator[tuple[int, int]]:
    """The longest match starting at each position (matches may overlap)."""
    at = 0
    while at < len(text):
        m = regex.search(text, at)
        if m is None:
            return
        yield m.span(1)
        at = m.start(1) + 1


def _resolve(hits: list[_Hit]) -> list[_Hit]:
    """Within a category, overlapping hits are one finding (leftmost, then longest). Across
    categories both stay: an emoji run is unprofessional even inside an insult."""
    hits.sort(key=lambda h: (h.start, -(h.end - h.start)))
    accepted: dict[str, list[tuple[int, int]]] = {}
    out: list[_Hit] = []
    for hit in hits:
        spans = accepted.setdefault(hit.rule.category, [])
        if any(a < hit.end and hit.start < b for a, b in spans):
            continue
        spans.append((hit.start, hit.end))
        out.append(hit)
    return out


def _as_text(text: object) -> str:
    if isinstance(text, str):
        return text
    if text is None:
        return ""
    if isinstance(text, bytes | bytearray):
        return bytes(text).decode("utf-8", errors="replace")
    return str(text)
