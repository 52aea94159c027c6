"""The FAQ knowledge base: question/answer entries, and a matcher that finds the entry a routine
message asks about (issue 3, part 4).

A netizen's routine question that matches an entry gets the entry's answer as the passive reply at
once. A wrong answer is worse than none (the message then waits for a person, within the SLA), so
the matcher is built for precision: it compares the whole normalised message with each entry's
normalised question and alternates (``rapidfuzz.fuzz.ratio``, an edit-distance similarity that
penalises length differences, so a long complaint does not match a short question it happens to
contain), answers only above a cut-off, and refuses a candidate when the message names another
subject in the same frame ("科技馆几点开门" is not "文化馆几点开门"). See ``FaqMatcher``.

Pure: no HTTP, no SQL, nothing from ``bot/``. Storage, the pipeline and the CLI live on the bot
side and use ``entries_to_dicts`` / ``entries_from_dicts``.

Entries are written in YAML (a list of mappings, or ``{entries: [...]}``) or CSV (header
``id,question,answer,alternates,department,tags``; alternates and tags separated by ``|``).
``load_entries`` validates and names the file, line and problem; ``dump_entries`` writes either
format back exactly.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from rapidfuzz import fuzz, process
from rapidfuzz.distance import Indel

from knowledge.classifier import normalize
from knowledge.yaml_base import FastSafeLoader

__all__ = [
    "ANSWER_MAX_CHARS",
    "CSV_COLUMNS",
    "DEFAULT_CUTOFF",
    "FAQ_FILE",
    "FILLERS_FILE",
    "MIN_QUERY_CHARS",
    "FaqEntry",
    "FaqFormatError",
    "FaqMatch",
    "FaqMatcher",
    "FillerWords",
    "dump_entries",
    "entries_from_dicts",
    "entries_to_dicts",
    "load_entries",
    "normalize_question",
    "usable_entries",
    "validate_entries",
]

_DATA_DIR = Path(__file__).resolve().with_name("data")
FAQ_FILE = _DATA_DIR / "faq.yaml"
FILLERS_FILE = _DATA_DIR / "faq_fillers.txt"

# A passive reply must stay short; the loader refuses longer answers. The channels' own limits are stricter
# and depend on the auto-reply wording of config.yaml: `guanwei kb import` refuses an answer that, in that
# wording, is more than one Weibo message (300 characters) or one WeChat message (2,048 bytes).
ANSWER_MAX_CHARS = 600
# Normalised messages shorter than this match nothing ("在吗", "你好！" normalise to "").
MIN_QUERY_CHARS = 2
# Only the first characters of a message are looked at; a question is far shorter, and ratio() of a
# long message against a short question is far below the cut-off anyway.
_MAX_QUERY_CHARS = 200
# fuzz.ratio (0..100) at or above which a question matches, chosen by measurement (the evidence is in
# bench/faq_match.py's docstring): once the subject check has run, unrelated messages scored at most
# 62 (two one-off exceptions), while real short questions often score 65–68.
DEFAULT_CUTOFF = 65.0
# How many candidates above the cut-off the subject check may look at before giving up.
_CANDIDATES = 5

CSV_COLUMNS = ("id", "question", "answer", "alternates", "department", "tags")
_REQUIRED = ("id", "question", "answer")
_LIST_SEPARATOR = "|"
_ID_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*\Z")
_DEPARTMENT_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
# control characters other than the line break (which an answer may contain); a CR would not survive
# a round trip through a file
_CONTROL_RE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


# --------------------------------------------------------------------------------------------
# Entries
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaqEntry:
    """One question and its answer. ``alternates`` are other phrasings of the same question;
    ``department`` (a department key) owns the answer; ``tags`` are labels for staff, the first of
    which names the entry's subject (the matcher's subject check reads it)."""

    id: str  # e.g. tickets-senior-discount: lower-case letters, digits and single hyphens
    question: str
    answer: str
    alternates: tuple[str, ...] = ()
    department: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def questions(self) -> tuple[str, ...]:
        """The question first, then the alternates."""
        return (self.question, *self.alternates)


class FaqFormatError(ValueError):
    """An FAQ file, filler file or entry list is invalid. The message names the source (file), the
    line (or entry number) and the problem; the parts are also attributes."""

    def __init__(self, source: str, problem: str, line: int | None = None, *, where: str = "line") -> None:
        at = f" {where} {line}" if line is not None else ""
        super().__init__(f"{source}{at}: {problem}")
        self.source = source
        self.line = line
        self.problem = problem


def _entry_problems(entry: FaqEntry, departments: Collection[str] | None, fillers: FillerWords) -> Iterable[str]:
    """What is wrong with one entry, field by field (each value already has the right type)."""
    if not _ID_RE.match(entry.id):
        yield f"id {entry.id!r} must be lower-case letters and digits joined by single hyphens (e.g. museum-hours)"
    for name, value in (("question", entry.question), ("answer", entry.answer)):
        if not value.strip():
            yield f"{entry.id}: empty {name}"
        elif value != value.strip():
            yield f"{entry.id}: {name} has leading or trailing whitespace"
    for name, value in (("question", entry.question), *(("alternates", a) for a in entry.alternates)):
        if "\n" in value:
            yield f"{entry.id}: {name} {value!r} spans several lines"
    for name, value in (
        ("question", entry.question),
        ("answer", entry.answer),
        *(("alternates", a) for a in entry.alternates),
        *(("tags", t) for t in entry.tags),
    ):
        if _CONTROL_RE.search(value):
            yield f"{entry.id}: {name} contains a control character (only line breaks, in the answer)"
    if len(entry.answer) > ANSWER_MAX_CHARS:
        yield (
            f"{entry.id}: answer has {len(entry.answer)} characters, more than {ANSWER_MAX_CHARS} "
            "(a WeChat passive reply must stay short)"
        )
    for name, value in (("question", entry.question), *(("alternates", a) for a in entry.alternates)):
        if len(value) > _MAX_QUERY_CHARS:
            # a message is compared by its first _MAX_QUERY_CHARS characters only, so a longer phrasing could
            # never match, and every message would be compared with all of it
            yield f"{entry.id}: {name} has {len(value)} characters, more than {_MAX_QUERY_CHARS} (a question is short)"
    for name, items in (("alternates", entry.alternates), ("tags", entry.tags)):
        for item in items:
            if not item.strip():
                yield f"{entry.id}: empty item in {name}"
            elif item != item.strip():
                yield f"{entry.id}: {name} item {item!r} has leading or trailing whitespace"
            elif _LIST_SEPARATOR in item:
                yield f"{entry.id}: {name} item {item!r} contains {_LIST_SEPARATOR!r} (the CSV list separator)"
        if len(set(items)) != len(items):
            yield f"{entry.id}: duplicate item in {name}"
    for phrasing in entry.questions:
        if phrasing.strip() and len(fillers.normalize(phrasing)) < MIN_QUERY_CHARS:
            yield f"{entry.id}: question {phrasing!r} normalises to almost nothing and could never match"
    if entry.department is not None:
        if not _DEPARTMENT_RE.match(entry.department):
            yield f"{entry.id}: department {entry.department!r} must be a department key (lower-case, digits, _)"
        elif departments is not None and entry.department not in departments:
            yield (
                f"{entry.id}: department {entry.department!r} is not configured "
                f"(configured: {', '.join(sorted(departments))})"
            )


def _problems(
    entries: Sequence[FaqEntry], departments: Collection[str] | None, fillers: FillerWords
) -> Iterator[tuple[int, str, int | None]]:
    """(index, problem, index of the entry it duplicates or None) for every entry that cannot go into service
    beside the ones before it: a bad field, a duplicate id, a phrasing that normalises to the same text as an
    earlier entry's (the matcher could not tell them apart). An entry with a problem is left out of the
    comparison for the ones after it."""
    seen_ids: dict[str, int] = {}
    seen_norm: dict[str, str] = {}
    for index, entry in enumerate(entries):
        problem = next(iter(_entry_problems(entry, departments, fillers)), None)
        if problem is None and entry.id in seen_ids:
            yield index, f"duplicate id {entry.id!r}", seen_ids[entry.id]
            continue
        norms: dict[str, str] = {}
        if problem is None:
            for phrasing in entry.questions:
                norm = fillers.normalize(phrasing)
                other = seen_norm.get(norm)
                if other is not None and other != entry.id:
                    problem = (f"{entry.id}: question {phrasing!r} normalises to {norm!r}, "
                               f"the same as a question of {other!r}")
                    break
                norms[norm] = entry.id
        if problem is not None:
            yield index, problem, None
            continue
        seen_ids[entry.id] = index
        seen_norm.update(norms)


def validate_entries(
    entries: Sequence[FaqEntry],
    *,
    source: str = "entries",
    lines: Sequence[int | None] | None = None,
    where: str = "line",
    departments: Collection[str] | None = None,
    fillers: FillerWords | None = None,
) -> None:
    """Raise FaqFormatError on the first invalid entry: bad id, empty or over-long answer, duplicate
    ids, a phrasing that normalises to the same text as another entry's (the matcher could not tell
    them apart), a department not in ``departments`` (when given). ``lines[i]`` locates entry i."""

    def at(index: int) -> int | None:
        return lines[index] if lines is not None else index + 1

    for index, problem, duplicated in _problems(entries, departments, fillers or FillerWords.default()):
        if duplicated is not None:
            problem += f" (first at {where} {at(duplicated)})"
        raise FaqFormatError(source, problem, at(index), where=where)


def usable_entries(
    entries: Sequence[FaqEntry], *, fillers: FillerWords | None = None
) -> tuple[list[FaqEntry], dict[str, str]]:
    """The entries that can go into service together, and why each of the others cannot (by id): the live
    knowledge base is answered from even when a row in it was written some other way than an import."""
    problems = {index: problem for index, problem, _ in _problems(entries, None, fillers or FillerWords.default())}
    usable = [entry for index, entry in enumerate(entries) if index not in problems]
    return usable, {entries[index].id: problem for index, problem in problems.items()}


# -- plain dicts (the database side) -----------------------------------------------------------


def entries_to_dicts(entries: Iterable[FaqEntry]) -> list[dict[str, Any]]:
    """JSON-ready dicts with every field (lists for alternates and tags, None for no department)."""
    return [
        {
            "id": e.id,
            "question": e.question,
            "answer": e.answer,
            "alternates": list(e.alternates),
            "department": e.department,
            "tags": list(e.tags),
        }
        for e in entries
    ]


def _entry_from_mapping(
    raw: Any, source: str, line: int | None, where: str, key_lines: Mapping[Any, int] | None = None
) -> FaqEntry:
    def fail(problem: str, key: Any = None) -> FaqFormatError:
        key_line = key_lines.get(key) if key_lines is not None and key is not None else None
        return FaqFormatError(source, problem, key_line or line, where="line" if key_line else where)

    if not isinstance(raw, Mapping):
        raise fail(f"an entry must be a mapping with keys {', '.join(CSV_COLUMNS)}, got {type(raw).__name__}")
    for key in raw:
        if key not in CSV_COLUMNS:
            raise fail(f"unknown key {key!r} (allowed: {', '.join(CSV_COLUMNS)})", key)
    for key in _REQUIRED:
        if key not in raw or raw[key] is None:
            ident = f"{raw['id']}: " if isinstance(raw.get("id"), str) else ""
            raise fail(f"{ident}missing required key {key!r}")

    def text(key: str) -> str:
        value = raw[key]
        if not isinstance(value, str):
            raise fail(f"{key} must be a string, got {value!r}", key)
        return value.strip()

    def strings(key: str) -> tuple[str, ...]:
        value = raw.get(key)
        if value is None:
            return ()
        if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
            raise fail(f"{key} must be a list of strings, got {value!r}", key)
        return tuple(item.strip() for item in value)

    department = raw.get("department")
    if department is not None and not isinstance(department, str):
        raise fail(f"department must be a string, got {department!r}", "department")
    return FaqEntry(
        id=text("id"),
        question=text("question"),
        answer=text("answer"),
        alternates=strings("alternates"),
        department=department.strip() or None if department is not None else None,
        tags=strings("tags"),
    )


def entries_from_dicts(
    items: Iterable[Mapping[str, Any]],
    *,
    source: str = "entries",
    departments: Collection[str] | None = None,
    validate: bool = True,
) -> list[FaqEntry]:
    """The inverse of ``entries_to_dicts``, validated like a file unless not ``validate`` (then each entry is
    only read; ``usable_entries`` sorts them); errors say ``entry N`` (1-based)."""
    entries = [_entry_from_mapping(raw, source, n, "entry") for n, raw in enumerate(items, start=1)]
    if validate:
        validate_entries(entries, source=source, where="entry", departments=departments)
    return entries


# -- YAML ------------------------------------------------------------------------------------


class _LinedDict(dict):  # type: ignore[type-arg]
    __slots__ = ("lines",)

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}


class _LinedList(list):  # type: ignore[type-arg]
    __slots__ = ("lines",)

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[int] = []


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(f"duplicate key {key!r} (first at line {first})")
        self.line = line


class _Loader(FastSafeLoader):
    """SafeLoader that records the line of every key and list item and rejects duplicate keys."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LinedDict:
    loader.flatten_mapping(node)
    result = _LinedDict()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            duplicate = key in result
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, "unhashable key", key_node.start_mark) from None
        if duplicate:
            raise _DuplicateKey(key, line, result.lines[key])
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = line
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _LinedList:
    result = _LinedList()
    for child in node.value:
        result.append(loader.construct_object(child, deep=True))
        result.lines.append(child.start_mark.line + 1)
    return result


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FaqFormatError(str(path), "file not found") from None
    except UnicodeDecodeError as exc:
        # Excel's plain "CSV" and Notepad's ANSI are GBK on a Chinese Windows
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise FaqFormatError(str(path), "not UTF-8 text (GBK?): save it as UTF-8 — in Excel, Save As → "
                             "\"CSV UTF-8 (Comma delimited)\"", line) from None
    except OSError as exc:
        raise FaqFormatError(str(path), f"cannot read: {exc}") from None


def _load_yaml(path: Path, departments: Collection[str] | None) -> list[FaqEntry]:
    source = str(path)
    loader = _Loader(_read_text(path))
    try:
        doc = loader.get_single_data()
    except _DuplicateKey as exc:
        raise FaqFormatError(source, str(exc), exc.line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise FaqFormatError(source, f"invalid YAML: {problem}", mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()

    if isinstance(doc, dict):
        lines = getattr(doc, "lines", {})
        for key in doc:
            if key != "entries":
                raise FaqFormatError(source, f"unknown top-level key {key!r} (allowed: entries)", lines.get(key))
        if "entries" not in doc:
            raise FaqFormatError(source, "missing top-level key 'entries'")
        items = doc["entries"]
        if not isinstance(items, list):
            raise FaqFormatError(source, "entries must be a list of entries", lines.get("entries"))
    elif isinstance(doc, list):
        items = doc
    elif doc is None:
        items = []
    else:
        raise FaqFormatError(source, f"expected a list of entries or {{entries: [...]}}, got {type(doc).__name__}")

    item_lines: list[int | None] = list(getattr(items, "lines", [None] * len(items)))
    entries = [
        _entry_from_mapping(raw, source, item_lines[i], "line", getattr(raw, "lines", None))
        for i, raw in enumerate(items)
    ]
    validate_entries(entries, source=source, lines=item_lines, departments=departments)
    return entries


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: _Dumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump_yaml(entries: Sequence[FaqEntry], path: Path) -> None:
    items = []
    for d in entries_to_dicts(entries):
        # omit empty optional fields to keep the file readable; the loader restores the defaults
        items.append({k: v for k, v in d.items() if v not in (None, [])})
    text = yaml.dump(items, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000)
    path.write_text(text, encoding="utf-8")


# -- CSV -------------------------------------------------------------------------------------


def _split_list(value: str) -> list[str]:
    return [] if not value.strip() else [item.strip() for item in value.split(_LIST_SEPARATOR)]


def _load_csv(path: Path, departments: Collection[str] | None) -> list[FaqEntry]:
    source = str(path)
    reader = csv.reader(io.StringIO(_read_text(path), newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise FaqFormatError(source, f"empty file; expected the header {','.join(CSV_COLUMNS)}")
        header = [name.strip() for name in header]
        for name in header:
            if name not in CSV_COLUMNS:
                raise FaqFormatError(source, f"unknown column {name!r} (allowed: {', '.join(CSV_COLUMNS)})", 1)
        if len(set(header)) != len(header):
            raise FaqFormatError(source, "duplicate column in the header", 1)
        for name in _REQUIRED:
            if name not in header:
                raise FaqFormatError(source, f"missing required column {name!r}", 1)
        entries: list[FaqEntry] = []
        lines: list[int | None] = []
        line = reader.line_num + 1
        for row in reader:
            if not any(cell.strip() for cell in row):  # a blank line
                line = reader.line_num + 1
                continue
            if len(row) != len(header):
                raise FaqFormatError(source, f"expected {len(header)} fields, got {len(row)}", line)
            raw: dict[str, Any] = dict(zip(header, row, strict=True))
            for name in _REQUIRED:
                if not raw[name].strip():
                    raise FaqFormatError(source, f"empty {name}", line)
            for name in ("alternates", "tags"):
                if name in raw:
                    raw[name] = _split_list(raw[name])
            if "department" in raw:
                raw["department"] = raw["department"].strip() or None
            entries.append(_entry_from_mapping(raw, source, line, "line"))
            lines.append(line)
            line = reader.line_num + 1
    except csv.Error as exc:
        raise FaqFormatError(source, f"invalid CSV: {exc}", reader.line_num) from None
    validate_entries(entries, source=source, lines=lines, departments=departments)
    return entries


def _dump_csv(entries: Sequence[FaqEntry], path: Path) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        writer.writerow(
            [
                e.id,
                e.question,
                e.answer,
                _LIST_SEPARATOR.join(e.alternates),
                e.department or "",
                _LIST_SEPARATOR.join(e.tags),
            ]
        )
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")


# -- by extension ----------------------------------------------------------------------------


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".csv":
        return "csv"
    raise FaqFormatError(str(path), f"unknown file type {suffix or '(none)'!r}: use .yaml, .yml or .csv")


def load_entries(path: Path, *, departments: Collection[str] | None = None) -> list[FaqEntry]:
    """Read and validate an FAQ file (.yaml/.yml or .csv). ``departments``: the configured keys; when
    given, an entry's department must be one of them. Raises FaqFormatError."""
    path = Path(path)
    if _format_of(path) == "yaml":
        return _load_yaml(path, departments)
    return _load_csv(path, departments)


def dump_entries(entries: Iterable[FaqEntry], path: Path) -> None:
    """Write entries as YAML or CSV by the file's extension; ``load_entries`` reads back the same
    entries. Invalid entries are refused (FaqFormatError) before anything is written."""
    path = Path(path)
    kind = _format_of(path)
    entries = list(entries)
    validate_entries(entries, source=str(path), where="entry")
    if kind == "yaml":
        _dump_yaml(entries, path)
    else:
        _dump_csv(entries, path)


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

_NON_WORD_RE = re.compile(r"[\W_]+")  # punctuation, symbols, emoji, whitespace, joiners


class FillerWords:
    """The word lists of ``knowledge/data/faq_fillers.txt``.

    Filler words carry no meaning for matching ("请问", "谢谢", a final "吗"). A filler of two or more
    characters is removed wherever it occurs; a single character is a sentence-final particle and is
    removed only at the end of a clause (before punctuation, a space or the end), so 吧 goes from
    "是免费的吧" but not from "网吧营业时间". Protected words (``!网吧``) are never cut into, even at
    the end of a clause ("附近有网吧吗" keeps 网吧).

    Function characters (``~怎么哪…``) are kept in the text but do not count as naming a subject
    when the matcher checks what a message says in place of an entry's words (see ``FaqMatcher``):
    "惠民演出票在哪领" may stand for "惠民演出票怎么领"."""

    def __init__(
        self, words: Iterable[str] = (), protected: Iterable[str] = (), function_chars: Iterable[str] = ()
    ) -> None:
        self.words = tuple(dict.fromkeys(words))
        self.protected = tuple(dict.fromkeys(protected))
        self.function_chars = frozenset("".join(function_chars))
        multi = sorted((w for w in self.words if len(w) > 1), key=lambda w: (-len(w), w))
        single = sorted(w for w in self.words if len(w) == 1)
        keep = "|".join(map(re.escape, sorted(self.protected, key=lambda w: (-len(w), w))))
        keep_alt = f"(?P<keep>{keep})|" if keep else ""
        self._multi = re.compile(keep_alt + "(?:" + "|".join(map(re.escape, multi)) + ")") if multi else None
        self._single = re.compile(keep_alt + "[" + re.escape("".join(single)) + "]+(?= |$)") if single else None

    @classmethod
    def load(cls, path: Path) -> FillerWords:
        """One filler word a line; ``#`` starts a comment; ``!word`` protects a word; ``~chars`` adds
        function characters. Validated: FaqFormatError names the line."""
        source = str(path)
        words: dict[str, int] = {}
        protected: dict[str, int] = {}
        function_chars: dict[str, int] = {}
        for number, raw in enumerate(_read_text(path).splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            kind = line[0] if line[0] in "!~" else ""
            word = normalize(line[1:] if kind else line).strip()
            if not word:
                raise FaqFormatError(source, "empty word", number)
            if _NON_WORD_RE.search(word):
                raise FaqFormatError(source, f"{word!r} contains whitespace or punctuation", number)
            if kind == "~":
                for ch in word:
                    if ch in function_chars:
                        raise FaqFormatError(
                            source, f"duplicate function character {ch!r} (first at line {function_chars[ch]})", number
                        )
                    function_chars[ch] = number
                continue
            if word in words or word in protected:
                first = words.get(word) or protected.get(word)
                raise FaqFormatError(source, f"duplicate word {word!r} (first at line {first})", number)
            (protected if kind == "!" else words)[word] = number
        if not words:
            raise FaqFormatError(source, "no filler words")
        return cls(words, protected, function_chars)

    @staticmethod
    @lru_cache(maxsize=1)
    def default() -> FillerWords:
        """The shipped ``knowledge/data/faq_fillers.txt``, loaded once."""
        return FillerWords.load(FILLERS_FILE)

    def normalize(self, text: str) -> str:
        """Simplified, half-width, lower case; punctuation, emoji, whitespace and filler words removed."""
        text = normalize(text[: 2 * _MAX_QUERY_CHARS])
        text = _NON_WORD_RE.sub(" ", text).strip()
        if self._multi is not None:
            text = self._multi.sub(_keep_or(" "), text)
        if self._single is not None:
            # after the multi-character fillers, so "好吗谢谢" ends its clause at 吗
            text = self._single.sub(_keep_or(""), text)
        return "".join(text.split())


def _keep_or(replacement: str) -> Any:
    def repl(m: re.Match[str]) -> str:
        return m.group("keep") if m.lastgroup == "keep" else replacement

    return repl


def normalize_question(text: str, fillers: FillerWords | None = None) -> str:
    """The form the matcher compares: traditional → simplified and full-width → half-width (by
    ``knowledge.classifier.normalize``), lower case, punctuation, emoji, whitespace and the filler
    words of ``knowledge/data/faq_fillers.txt`` removed. "請問，博物館幾點開門？😊" → "博物馆几点开门"."""
    return (fillers or FillerWords.default()).normalize(text)


# --------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaqMatch:
    entry: FaqEntry
    score: float  # 0..100: fuzz.ratio of the normalised message and the matched question
    matched_question: str  # the question or alternate (as written in the entry) that matched


# Kinds of place a culture-and-tourism bureau's questions are about: an entry that names one answers only a
# message that names one too (which one is the subject check's business).
PLACE_KINDS = ("博物馆", "图书馆", "文化馆", "群艺馆", "美术馆", "纪念馆", "科技馆", "展览馆", "非遗馆", "档案馆",
               "书房", "剧院", "剧场", "音乐厅", "景区", "景点", "公园", "动物园", "植物园", "游乐园", "乐园", "遗址",
               "故居", "文化站", "文化中心", "少年宫", "体育馆", "旅游集散", "游客中心", "服务中心")
_PLACE_RE = re.compile("|".join(PLACE_KINDS))
# what counts as naming a place in a message: a kind's first two characters, so that a typo (博物官, 图书管)
# still names it; loose on purpose, since a false "names a place" only lets the other checks decide
_PLACE_MENTION_RE = re.compile("|".join(sorted({kind[:2] for kind in PLACE_KINDS})))


# A first clause that only says what the message is not ("不是投诉，", "我不是要曝光谁，", "不是什么大事，",
# "没别的意思，") says nothing about which question is asked; left in, it pushes a plain question under the
# cut-off. Only such openers: "不是说免费吗，怎么还收费" is a complaint, not a disclaimer.
_DISCLAIMER_RE = re.compile(
    r"^\s*[我俺]?[也真并]?(?:不是|并非)(?:要|想|来)?(?:投诉|举报|曝光|上访|找茬|抱怨|挑刺|找麻烦|闹事|记者|什么大事|啥大事|大事)"
    r"[^，,。.！!？?；;\n吗]{0,8}[，,。.！!；;\s]+"
    r"|^\s*[我俺]?没有?(?:啥|什么)?别的意思[^，,。.！!？?；;\n]{0,4}[，,。.！!；;\s]+"
)


class FaqMatcher:
    """Finds the entry a message asks about, or None. Build once (normalises every question and
    alternate), match many; ``match`` does no I/O and never raises on a ``str``.

    Two steps. (1) ``rapidfuzz.process.extract`` with ``fuzz.ratio`` over the normalised questions
    and alternates, keeping those at or above the cut-off. ratio is an edit-distance similarity of
    the whole strings, so word order counts and a long message scores low against a short question
    even when it contains it: a complaint that mentions a topic is not a question about it.
    (2) The best candidate is refused when the message names something else in the entry's place:
    where the alignment of the two texts has, in one stretch, two or more unmatched content
    characters on each side ("科技馆几点开门" against "文化馆几点开门", "动物园" against "博物馆";
    function characters such as 怎么/哪/能/可以 do not count). Questions about the bureau's venues
    share their frame ("几点开门", "门票多少钱") with questions about every other place in town, and
    ratio alone scores those at 70–75. The next candidate is then tried.

    (3) A message that names no place is not answered by an entry about one (every phrasing of it names a
    kind of ``PLACE_KINDS``): "请问几点开门" is not asked about the cultural centre; it waits for a person,
    who can ask which place. An entry with a phrasing that names no place ("我想当志愿者") stays open to it.

    Not caught: a one-character swap of subject between two entries that share a frame ("老人去景区
    免票吗" against "军人去景区免票") — write such entries' questions and alternates so that each
    subject appears with the common frames."""

    def __init__(
        self, entries: Iterable[FaqEntry], *, cutoff: float = DEFAULT_CUTOFF, fillers: FillerWords | None = None
    ) -> None:
        if not 0 < cutoff <= 100:
            raise ValueError(f"cutoff must be in (0, 100], got {cutoff!r}")
        self.cutoff = float(cutoff)
        self._fillers = fillers or FillerWords.default()
        self._function_chars = self._fillers.function_chars
        self.entries = tuple(entries)
        choices: dict[str, tuple[FaqEntry, str]] = {}
        for entry in self.entries:
            for phrasing in entry.questions:
                norm = self._fillers.normalize(phrasing)
                if len(norm) >= MIN_QUERY_CHARS:
                    choices.setdefault(norm, (entry, phrasing))  # the first entry wins a duplicate
        self._choices = list(choices)
        self._targets = list(choices.values())
        self._place_bound = {entry.id for entry in self.entries
                             if entry.questions and all(_PLACE_RE.search(q) for q in entry.questions)}
        # an entry's first tag names its subject (民宿, 退款, 有线电视); the others are aspects (优惠, 报修)
        self._subjects = {entry.id: subject for entry in self.entries
                          if entry.tags and len(subject := self._fillers.normalize(entry.tags[0])) >= 2}

    def __len__(self) -> int:
        return len(self.entries)

    def normalize(self, text: str) -> str:
        """The message as the matcher compares it (``normalize_question`` with this matcher's word lists)."""
        return self._fillers.normalize(text)

    def _query(self, text: str) -> str:
        """The message as it is compared: a disclaiming first clause dropped, then normalised and cut."""
        opener = _DISCLAIMER_RE.match(text)
        if opener is not None and opener.end() < len(text):
            text = text[opener.end():]
        return self._fillers.normalize(text)[:_MAX_QUERY_CHARS]

    def match(self, text: str) -> FaqMatch | None:
        """The best entry whose question or alternate scores at least the cut-off against ``text`` and
        does not name something else in its place; None for anything else."""
        if not isinstance(text, str):
            return None
        query = self._query(text)
        if len(query) < MIN_QUERY_CHARS or not self._choices:
            return None
        candidates = process.extract(
            query, self._choices, scorer=fuzz.ratio, processor=None, score_cutoff=self.cutoff, limit=_CANDIDATES
        )
        for choice, score, index in candidates:
            entry, phrasing = self._targets[index]
            if (self._names_something_else(query, choice) or self._place_missing(query, entry)
                    or self._subject_missing(query, choice, entry)):
                continue
            return FaqMatch(entry=entry, score=round(float(score), 1), matched_question=phrasing)
        return None

    def explain(self, text: str) -> dict[str, Any]:
        """For staff and tuning: the normalised message and the top candidates with their scores and
        whether the subject check refused them."""
        query = self._query(text) if isinstance(text, str) else ""
        candidates = (
            process.extract(query, self._choices, scorer=fuzz.ratio, processor=None, limit=_CANDIDATES)
            if len(query) >= MIN_QUERY_CHARS
            else []
        )
        match = self.match(text)
        return {
            "normalized": query,
            "cutoff": self.cutoff,
            "match": match.entry.id if match else None,
            "candidates": [
                {
                    "id": self._targets[index][0].id,
                    "question": self._targets[index][1],
                    "score": round(float(score), 1),
                    "names_something_else": self._names_something_else(query, choice),
                    "place_missing": self._place_missing(query, self._targets[index][0]),
                    "subject_missing": self._subject_missing(query, choice, self._targets[index][0]),
                }
                for choice, score, index in candidates
            ],
        }

    def _place_missing(self, query: str, entry: FaqEntry) -> bool:
        """The entry is about a place and the message names none ("几点开门" against "文化馆几点开门")."""
        return entry.id in self._place_bound and _PLACE_MENTION_RE.search(query) is None

    def _subject_missing(self, query: str, choice: str, entry: FaqEntry) -> bool:
        """The phrasing names the subject of its entry (its first tag: 民宿, 退款) that the message does not, and the
        message names something of its own instead: "怎么办老年证" is not "民宿怎么办证" with a word left out.
        The subject may sit anywhere, which the stretch-by-stretch check of ``_names_something_else`` misses."""
        subject = self._subjects.get(entry.id)
        if subject is None or subject not in choice or subject[:2] in query:
            return False
        function_chars = self._function_chars
        return any(ch not in function_chars
                   for op in Indel.opcodes(query, choice) if op.tag == "delete"
                   for ch in query[op.src_start : op.src_end])

    def _names_something_else(self, query: str, choice: str) -> bool:
        """True when, in one stretch of the alignment, both texts have two or more unmatched content
        characters: the message says something else where the question names its subject. A stretch
        ends at two or more matched characters in a row (one matched character between two
        substitutions does not end it: 动[物]园 against 博[物]馆)."""
        function_chars = self._function_chars
        only_query = only_choice = 0
        for op in Indel.opcodes(query, choice):
            if op.tag == "equal":
                if op.src_end - op.src_start >= 2:
                    if only_query >= 2 and only_choice >= 2:
                        return True
                    only_query = only_choice = 0
            elif op.tag == "delete":
                only_query += sum(ch not in function_chars for ch in query[op.src_start : op.src_end])
            else:  # insert (Indel has no replace)
                only_choice += sum(ch not in function_chars for ch in choice[op.dest_start : op.dest_end])
        return only_query >= 2 and only_choice >= 2
