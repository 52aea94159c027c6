"""Logging: one loguru sink, with personal data masked and secrets removed in every line.

Openids, Weibo user ids, phone, ID-card and bank-card numbers and e-mail addresses never reach a log
unmasked, and URL query strings and secret-named parameters (secret=, access_token=, key=…) never
reach it at all, whether a caller remembered or not: the patcher rewrites every record's message.

Numbers and addresses are found by knowledge.pii, the detector the answer screening uses, so a log
line masks every format (+86 139-1234-5678, full-width digits, a 15-digit ID, an ID with a wrong
check digit) that the screening would keep from a netizen.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any

from loguru import logger

from knowledge.pii import mask_personal_data

_OPENID = re.compile(r"(?<![\w-])(o[\w-]{3})[\w-]{20,}([\w-]{3})(?![\w-])")  # WeChat openids: o + 27 chars


# A URL's (or a path's) query string: "…/token?grant_type=client_credential&appid=wx…&secret=…" as requests
# quotes it in its errors. Dropped whole: no part of a secret may reach a log, a reason or the audit log.
_QUERY = re.compile(r"((?:\b[A-Za-z][A-Za-z0-9+.-]*://|(?<![\w.~/-])/)[^\s?#'\"<>()]*)\?[A-Za-z0-9\-._~:/?@!$&*+,;=%\[\]]+")
# Secret-looking parameters anywhere else (a form body, "key=…" in a message): the value goes, the name stays.
_SECRET_PARAM = re.compile(
    r"(?i)(?<![\w-])(key|secret|appsecret|access_token|token|password|passwd)(=|%3D|\": ?\"|': ?')"
    r"[^&\s'\"<>)\]},;]*"
)
REDACTED = "[redacted]"


def redact_secrets(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with URL query strings, secret-named parameters and every given secret removed entirely."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    text = _QUERY.sub(lambda m: f"{m[1]}?{REDACTED}", text)
    return _SECRET_PARAM.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)


def mask_id(value: str) -> str:
    """Keep enough of an account id to tell two apart in a log, not enough to contact the person."""
    if len(value) <= 6:
        return "*" * len(value)
    return f"{value[:3]}***{value[-3:]}"


def mask_text(text: str) -> str:
    """`text` with personal data masked: 139****5678, 110101********1234, oUpF***S6o, z***@qq.com."""
    return _OPENID.sub(r"\1***\2", mask_personal_data(text))


def _mask_record(record: Any) -> None:
    record["message"] = redact_secrets(mask_text(record["message"]))


def install_masking() -> None:
    """Mask personal data in every record, whichever sinks exist (the app factory calls this too)."""
    logger.configure(patcher=_mask_record)


def setup_logging(level: str = "INFO", json: bool = False) -> None:
    # jieba announces its dictionary loading on stderr through the standard logging module.
    logging.getLogger("jieba").setLevel(logging.WARNING)
    logger.remove()
    install_masking()
    # Resolve sys.stderr at each write: tests and embedding programs swap it.
    logger.add(lambda line: sys.stderr.write(line), level=level, serialize=json, backtrace=False, diagnose=False)
