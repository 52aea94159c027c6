"""Personal data in free text: mobile phone, ID-card and bank-card numbers, e-mail addresses.

One detector for both places that must not let personal data through: the answer screening
(``knowledge.screening``, rule R10) blocks an answer that contains any, and the log masking
(``bot.logs``) masks it in every log line. Sharing it keeps the logs from missing a format the
screening knows (a number written ``+86 139-1234-5678`` or ``１３９１２３４５６７８``).

The detectors read half-width text: the screening gives its normalised view, the logs
:func:`fold` the line first. Both fold every character on its own, so a position in the folded
text is the position in the original.

What counts (false alarms matter too: an answer full of order numbers and dates must pass):

* phone — a mainland mobile number 1[3-9]x xxxx xxxx, digits optionally separated by spaces or
  dashes, dotted as 139.1234.5678, or with the first three in brackets as (139)1234-5678; with or
  without +86, 0086, 86 or (+86) in front.
* id_card — 18 characters (second generation) or 15 digits (first generation), separators
  anywhere, laid out like an ID: a province code, then a real birth date. The check digit is not
  required: a mistyped ID is still someone's ID. The layout is what keeps order and case numbers
  out (20261204000123 is neither 15 nor 18 digits; 202612040001234567 starts with no province).
* bank_card — 16–19 digits starting like a card; Luhn-valid, except UnionPay (62), because some
  Chinese debit cards fail Luhn and a 62… number of that length is nothing else in an answer.
* email — an e-mail address.

Standard library and ``knowledge.classifier.normalize`` only: nothing from ``bot/``, no HTTP, no SQL.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Iterator

from knowledge.classifier import normalize

__all__ = [
    "BANK_CARD",
    "DETECTORS",
    "EMAIL",
    "ID_CARD",
    "PHONE",
    "card_like",
    "find",
    "fold",
    "id_card_shaped",
    "id_card_valid",
    "is_email_address",
    "luhn_valid",
    "mask",
    "mask_personal_data",
    "spans",
]

PHONE = "phone"
ID_CARD = "id_card"
BANK_CARD = "bank_card"
EMAIL = "email"
DETECTORS = (ID_CARD, BANK_CARD, PHONE, EMAIL)  # in the order they claim text: an ID holds a phone-like run

# --------------------------------------------------------------------------------------------
# Folding: full-width and look-alike characters to ASCII, one for one
# --------------------------------------------------------------------------------------------

# Characters first seen are remembered; the cap keeps a flood of distinct characters from growing
# the table without end (past it a character is folded each time it is seen).
_FOLD_CACHE_LIMIT = 65_536


class _Folding(dict[int, int]):
    """A ``str.translate`` table: each character to the single character the screening's
    normalisation makes of it ("１" → "1", "＋" → "+", "（" → "(", a tab or zero-width space → " "),
    or to itself. A character it expands to several ("⑪" → "11") is left alone so positions stay put."""

    def __missing__(self, code: int) -> int:
        if chr(code) in _CHINESE_DIGITS:  # a number read out to voice input or typed so: 一三八一二三四五六七八
            value = ord(_CHINESE_DIGITS[chr(code)])
            self[code] = value
            return value
        try:
            folded = normalize(chr(code))
        except Exception:  # lone surrogates and the like: leave them, never fail a log line
            folded = ""
        value = ord(folded) if len(folded) == 1 else code
        if len(self) < _FOLD_CACHE_LIMIT:
            self[code] = value
        return value


_CHINESE_DIGITS = {**{c: str(i) for i, c in enumerate("〇一二三四五六七八九")}, "零": "0", "幺": "1"}
_FOLD = _Folding()


def fold(text: str) -> str:
    """``text`` as the detectors read it, position for position. ASCII text too: a tab or a newline
    inside a number separates its digits like a space does for the screening."""
    return text.translate(_FOLD)


# --------------------------------------------------------------------------------------------
# Patterns: candidates only; the checks below decide
# --------------------------------------------------------------------------------------------

# Separators people put inside a number: space, hyphen, hyphen look-alikes, en and em dash, minus.
_SEP = "[ \\-\u2010\u2011\u2013\u2014\u2212]"
# The country code: +86, 0086, 86, (+86), (0086), (86).
_COUNTRY = r"(?:\((?:\+|00)?86\)|(?:\+|00)?86)"
_PHONE_RE = re.compile(
    rf"(?<![0-9])(?:{_COUNTRY}(?:{_SEP}|\.)?)?(?:1{_SEP}?[3-9]"
    # Dots only in the 3-4-4 grouping: an IPv4 address (octets of at most three digits) never has it.
    rf"(?:[0-9]\.[0-9]{{4}}\.[0-9]{{4}}|(?:{_SEP}?[0-9]){{9}})"
    # The first three in brackets, as a landline's area code is written: (138)1234-5678, （138）12345678.
    rf"|\(1[3-9][0-9]\){_SEP}?[0-9](?:{_SEP}?[0-9]){{7}})(?![0-9])"
)
_ID18_RE = re.compile(rf"(?<![0-9])[1-9](?:{_SEP}?[0-9]){{16}}{_SEP}?[0-9xX](?![0-9])")
_ID15_RE = re.compile(rf"(?<![0-9])[1-9](?:{_SEP}?[0-9]){{14}}(?![0-9xX])")
_CARD_RE = re.compile(rf"(?<![0-9])[0-9](?:{_SEP}?[0-9]){{15,18}}(?![0-9])")
_EMAIL_RE = re.compile(r"(?<![a-z0-9._%+-])[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}", re.IGNORECASE)
_NOT_DIGIT = re.compile(r"[^0-9xX]")

# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------

# The province-level codes of GB/T 2260 that start a resident ID (71 Taiwan; 81, 82, 83 the
# residence permits of Hong Kong, Macao and Taiwan residents).
_PROVINCES = frozenset(
    str(code)
    for code in (11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
                 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83)
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10x98765432"


def id_card_valid(number: str) -> bool:
    """An 18-character resident ID-card number (GB 11643) whose last character is the right check
    digit (X or x for 10). Separators are not accepted here."""
    number = number.lower()
    if len(number) != 18 or not number[:17].isascii() or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return number[17] == _ID_CHECK[total % 11]


def _real_date(year: int, month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


def id_card_shaped(number: str) -> bool:
    """Laid out like a resident ID, whatever its check digit: a province code, then a birth date —
    YYYYMMDD (1800–2099) at positions 7–14 of 18 characters (the last may be X), or YYMMDD (19YY)
    at positions 7–12 of 15 digits. Separators are not accepted here."""
    if not number.isascii() or number[:2] not in _PROVINCES:
        return False
    if len(number) == 18 and number[:17].isdigit() and number[17] in "0123456789xX":
        year = number[6:10]
        return year[:2] in ("18", "19", "20") and _real_date(int(year), int(number[10:12]), int(number[12:14]))
    if len(number) == 15 and number.isdigit():
        return _real_date(1900 + int(number[6:8]), int(number[8:10]), int(number[10:12]))
    return False


def luhn_valid(number: str) -> bool:
    """The Luhn check of bank-card numbers (ISO/IEC 7812); digits only."""
    if not number or not number.isascii() or not number.isdigit():
        return False
    total = 0
    for i, d in enumerate(reversed(number)):
        n = int(d)
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def card_like(digits: str) -> bool:
    """16–19 digits starting like a card: UnionPay 62 (Luhn not required: some Chinese debit cards
    fail it), or Luhn-valid and Visa 4, Mastercard 5 and 2221–2720, JCB/Amex 3, Discover 6.
    Excludes order and case numbers starting 20xx or 1."""
    if not 16 <= len(digits) <= 19 or not digits.isascii() or not digits.isdigit():
        return False
    if digits.startswith("62"):
        return True
    if digits[0] in "3456" or (digits[0] == "2" and 2221 <= int(digits[:4]) <= 2720):
        return luhn_valid(digits)
    return False


def is_email_address(text: str) -> bool:
    return _EMAIL_RE.fullmatch(text) is not None


# --------------------------------------------------------------------------------------------
# Finding
# --------------------------------------------------------------------------------------------


def _digits(raw: str) -> str:
    return _NOT_DIGIT.sub("", raw)


def _id_span(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    return m.span() if id_card_shaped(_digits(m.group())) else None


def _card_span(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    """The card number in a run of digits: the whole run, or the longest prefix ending before a
    separator ("6222 0212 3456 7890 1" + a stray digit group) that is card-like."""
    s, e = m.span()
    if text[s] not in "23456":  # no card starts otherwise: spare the Luhn checks
        return None
    cuts = (cut for cut in range(e, s, -1) if cut == e or (not text[cut].isdigit() and text[cut - 1].isdigit()))
    for cut in cuts:
        digits = _digits(text[s:cut])
        if len(digits) < 16:
            return None
        if card_like(digits):
            return s, cut
    return None


def _scan(
    regex: re.Pattern[str], text: str, check: Callable[[str, re.Match[str]], tuple[int, int] | None]
) -> Iterator[tuple[int, int]]:
    """Spans of the matches that pass ``check``. After a rejected candidate the search goes on from
    its second character, not its end: separators allowed anywhere let a candidate start on the
    digits before a real number ("编号 12 110101 19900307 1234")."""
    at = 0
    while (m := regex.search(text, at)) is not None:
        span = check(text, m)
        if span is None:
            at = m.start() + 1
        else:
            yield span
            at = span[1]


def spans(kind: str, text: str) -> Iterator[tuple[int, int]]:
    """The spans of one kind of personal data in (folded) ``text``, in text order. Spans of the
    same kind do not overlap; spans of different kinds may (see :func:`find`)."""
    if kind == ID_CARD:
        second = [*_scan(_ID18_RE, text, _id_span)]
        # A 15-digit candidate inside an 18-character ID is its first part ("110101190101011 234").
        first = [(s, e) for s, e in _scan(_ID15_RE, text, _id_span) if not any(a < e and s < b for a, b in second)]
        yield from sorted(second + first)
    elif kind == BANK_CARD:
        yield from _scan(_CARD_RE, text, _card_span)
    elif kind == PHONE:
        for m in _PHONE_RE.finditer(text):
            yield m.span()
    elif kind == EMAIL:
        for m in _EMAIL_RE.finditer(text):
            yield m.span()
    else:
        raise ValueError(f"unknown personal-data detector {kind!r}")


def find(text: str, kinds: Iterable[str] = DETECTORS) -> list[tuple[str, int, int]]:
    """``(kind, start, end)`` of the personal data in (folded) ``text``, in text order, none
    overlapping: kinds claim text in :data:`DETECTORS` order, so an ID is not also read as the
    phone number inside it."""
    wanted = set(kinds)
    claimed: list[tuple[str, int, int]] = []
    for kind in DETECTORS:
        if kind in wanted:
            for s, e in spans(kind, text):
                if not any(a < e and s < b for _, a, b in claimed):
                    claimed.append((kind, s, e))
    return sorted(claimed, key=lambda item: item[1])


def mask(kind: str, raw: str) -> str:
    """What may be shown of a finding: 138****5678, 110105********002X, 110101******123,
    6222***********0128, z***@qq.com — enough to tell two apart, not enough to use."""
    if kind == EMAIL:
        local, _, domain = raw.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = _digits(fold(raw)).upper()
    if kind == PHONE:
        digits = digits[-11:]  # without the country code
        return f"{digits[:3]}****{digits[-4:]}"
    head = 6 if kind == ID_CARD else 4
    # The last four of a 15-digit ID would include the birth day: keep the three-digit sequence only.
    tail = 3 if kind == ID_CARD and len(digits) == 15 else 4
    return digits[:head] + "*" * max(len(digits) - head - tail, 0) + digits[-tail:]


# Every personal number has at least eleven digits, each at most two characters from the next (") " in
# "(138) 1234 5678"). One search for such a run spares most log lines the detectors (they run on every line).
_NUMBER_GATE = re.compile(r"[0-9](?:[^0-9]{0,2}[0-9]){10}")


def mask_personal_data(text: str) -> str:
    """``text`` with every phone, ID-card and bank-card number and e-mail address masked (see
    :func:`mask`), as written: "+86 139-1234-5678" becomes "139****5678". For log lines."""
    folded = fold(text)
    kinds = [ID_CARD, BANK_CARD, PHONE] if _NUMBER_GATE.search(folded) else []
    if "@" in folded:
        kinds.append(EMAIL)
    found = find(folded, kinds) if kinds else []
    if not found:
        return text
    pieces: list[str] = []
    last = 0
    for kind, s, e in found:
        pieces.append(text[last:s])
        pieces.append(mask(kind, folded[s:e]))
        last = e
    pieces.append(text[last:])
    return "".join(pieces)
