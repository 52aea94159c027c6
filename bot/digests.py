"""Constant-time comparison of what a client sent with the secret or signature we expect.

`hmac.compare_digest` raises TypeError for a str holding any non-ASCII character, so a signature
of "你" in a query string, a CSRF header or a token would become a 500. Every comparison of a
secret goes through `same_secret`, which compares UTF-8 bytes: a non-ASCII value is simply wrong.
"""

from __future__ import annotations

import hmac


def _utf8(text: str) -> bytes:
    # surrogatepass: aiohttp and json can hand us lone surrogates, which plain UTF-8 refuses to encode.
    return text.encode("utf-8", "surrogatepass")


def same_secret(expected: str, given: object) -> bool:
    """True when `given` is a non-empty str equal to `expected` (constant time in its contents)."""
    if not isinstance(given, str) or not given or not expected:
        return False
    return hmac.compare_digest(_utf8(expected), _utf8(given))
