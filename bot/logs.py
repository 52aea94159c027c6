"""Logging: one loguru sink, with personal data masked in every line.

Openids, Weibo user ids, phone numbers and ID-card numbers never reach a log unmasked, whether a
caller remembered to mask them or not: the patcher rewrites every record's message.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from loguru import logger

# Order matters: ID-card numbers (18 chars) before phone numbers (11 digits) inside them.
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_OPENID = re.compile(r"(?<![\w-])(o[\w-]{3})[\w-]{20,}([\w-]{3})(?![\w-])")  # WeChat openids: o + 27 chars


def mask_id(value: str) -> str:
    """Keep enough of an account id to tell two apart in a log, not enough to contact the person."""
    if len(value) <= 6:
        return "*" * len(value)
    return f"{value[:3]}***{value[-3:]}"


def mask_text(text: str) -> str:
    text = _ID_CARD.sub(r"\1********\2", text)
    text = _PHONE.sub(r"\1****\2", text)
    return _OPENID.sub(r"\1***\2", text)


def _mask_record(record: Any) -> None:
    record["message"] = mask_text(record["message"])


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
