"""A small client of ClamAV's daemon (clamd): PING and INSTREAM over its unix or TCP socket.

The protocol (clamd(8)): commands prefixed with ``z`` end in a NUL byte and so do the answers.
INSTREAM sends the file as chunks, each preceded by its length as a 4-byte big-endian integer,
and ends with a zero-length chunk; clamd answers ``stream: OK``, ``stream: <signature> FOUND`` or
``… ERROR`` (e.g. ``INSTREAM size limit exceeded``, when the file is over clamd's StreamMaxLength).

A scanner that cannot be reached, times out or answers an error raises `ScannerUnavailable`: the
caller must block the file, never let it through. No personal data is sent anywhere but clamd.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass

CHUNK = 64 * 1024


class ScannerUnavailable(Exception):
    """clamd could not scan the file: it must not be attached or published. The message says why."""


@dataclass(frozen=True)
class ScanResult:
    clean: bool
    signature: str | None  # the virus name clamd reported, when not clean
    scanner: str  # where it was scanned, for the record

    def to_dict(self) -> dict[str, object]:
        return {"clean": self.clean, "signature": self.signature, "scanner": self.scanner}


class ClamdScanner:
    """`socket` (a unix socket path) wins over `host`:`port` when both are given."""

    def __init__(self, *, socket: str | None = None, host: str | None = None, port: int = 3310,
                 timeout: float = 30.0) -> None:
        if not socket and not host:
            raise ValueError("clamd: give a unix socket path or a host")
        self.socket, self.host, self.port, self.timeout = socket, host, port, timeout

    @property
    def where(self) -> str:
        return f"unix:{self.socket}" if self.socket else f"tcp:{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"ClamdScanner({self.where})"

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.socket:
            return await asyncio.open_unix_connection(self.socket)
        return await asyncio.open_connection(self.host, self.port)

    async def _exchange(self, command: bytes, payload: bytes | None = None) -> str:
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await self._connect()
                try:
                    writer.write(b"z" + command + b"\0")
                    if payload is not None:
                        for start in range(0, len(payload), CHUNK):
                            chunk = payload[start:start + CHUNK]
                            writer.write(struct.pack(">I", len(chunk)) + chunk)
                            await writer.drain()
                        writer.write(struct.pack(">I", 0))
                    await writer.drain()
                    answer = await reader.readuntil(b"\0")
                finally:
                    writer.close()
                    with contextlib.suppress(ConnectionError, OSError):
                        await writer.wait_closed()
        except TimeoutError:
            raise ScannerUnavailable(f"病毒扫描服务（clamd，{self.where}）超时未应答") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            detail = getattr(exc, "strerror", None) or type(exc).__name__
            raise ScannerUnavailable(f"无法连接病毒扫描服务（clamd，{self.where}）：{detail}") from None
        return answer.rstrip(b"\0").decode("utf-8", "replace").strip()

    async def ping(self) -> bool:
        try:
            return await self._exchange(b"PING") == "PONG"
        except ScannerUnavailable:
            return False

    async def scan(self, data: bytes) -> ScanResult:
        answer = await self._exchange(b"INSTREAM", data)
        return parse_answer(answer, self.where)


def parse_answer(answer: str, where: str) -> ScanResult:
    """clamd's INSTREAM answer → a result; an ERROR (or anything unexpected) → ScannerUnavailable."""
    text = answer.split(":", 1)[1].strip() if answer.startswith("stream:") else answer
    if text == "OK":
        return ScanResult(True, None, where)
    if text.endswith(" FOUND"):
        return ScanResult(False, text[: -len(" FOUND")].strip(), where)
    if "size limit exceeded" in text:
        raise ScannerUnavailable(f"文件超过病毒扫描服务的 StreamMaxLength，未能扫描（clamd：{text[:200]}）")
    raise ScannerUnavailable(f"病毒扫描服务未能扫描该文件（clamd：{text[:200]}）")
