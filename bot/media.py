"""Media rules for published posts (R8.3), decided by a file's real content, never by its name.

- images ≤ 2 MB as bmp, jpeg (jpg) or gif;
- voice ≤ 5 MB and ≤ 60 s as mp3, wma, wav or amr;
- video ≤ 20 MB as rm (rmvb), wmv, avi, mpg (mpeg) or mp4.

`inspect_media(data, filename, limits)` is a pure function of the bytes: it sniffs the format from
magic numbers, parses enough of the file to trust it (Pillow verifies images; the duration of voice
comes from the content — mutagen reads MP3 frames, WAV headers and ASF (WMA) headers; AMR frames
are counted here, 20 ms each) and returns a `MediaVerdict` whose `problems` say in Chinese why a
file is refused. A file name's extension that names another format is refused too (a renamed
executable is the classic trick). The virus scan (bot.clamd) is a separate step: every accepted
file is scanned before it is attached and again before it is published.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

IMAGE, VOICE, VIDEO = "image", "voice", "video"
KIND_NAMES = {IMAGE: "图片", VOICE: "语音", VIDEO: "视频"}
MB = 1024 * 1024


@dataclass(frozen=True)
class MediaLimits:
    image_max_bytes: int = 2 * MB
    voice_max_bytes: int = 5 * MB
    voice_max_seconds: float = 60.0
    video_max_bytes: int = 20 * MB

    def max_bytes(self, kind: str) -> int:
        return {IMAGE: self.image_max_bytes, VOICE: self.voice_max_bytes, VIDEO: self.video_max_bytes}[kind]


# format → (kind, Chinese name, file-name extensions that may carry it)
FORMATS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "bmp": (IMAGE, "BMP 图片", ("bmp",)),
    "jpeg": (IMAGE, "JPEG 图片", ("jpg", "jpeg")),
    "gif": (IMAGE, "GIF 图片", ("gif",)),
    "mp3": (VOICE, "MP3 音频", ("mp3",)),
    "wma": (VOICE, "WMA 音频", ("wma",)),
    "wav": (VOICE, "WAV 音频", ("wav",)),
    "amr": (VOICE, "AMR 音频", ("amr",)),
    "rm": (VIDEO, "RealMedia 视频", ("rm", "rmvb")),
    "wmv": (VIDEO, "WMV 视频", ("wmv",)),
    "avi": (VIDEO, "AVI 视频", ("avi",)),
    "mpeg": (VIDEO, "MPEG 视频", ("mpg", "mpeg")),
    "mp4": (VIDEO, "MP4 视频", ("mp4",)),
}
# Recognised, but not allowed by R8.3: named so that the refusal says what the file really is.
FORBIDDEN = {
    "pe": "Windows 可执行程序（PE）", "elf": "Linux 可执行程序（ELF）", "macho": "macOS 可执行程序（Mach-O）",
    "script": "脚本文件（#!）", "zip": "ZIP 压缩包", "rar": "RAR 压缩包", "7z": "7z 压缩包", "pdf": "PDF 文档",
    "png": "PNG 图片", "webp": "WebP 图片", "tiff": "TIFF 图片", "flac": "FLAC 音频", "ogg": "Ogg 音频",
    "m4a": "M4A 音频", "mov": "QuickTime 视频", "mkv": "Matroska 视频", "flv": "FLV 视频",
}
ALLOWED_EXTENSIONS = frozenset(ext for _, _, exts in FORMATS.values() for ext in exts)
_ASF = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_ASF_VIDEO = bytes.fromhex("c0ef19bc4d5bcf11a8fd00805f5c442b")
_ASF_AUDIO = bytes.fromhex("409e69f84d5bcf11a8fd00805f5c442b")
_AMR_NB_SIZES = (12, 13, 15, 17, 19, 20, 26, 31, 5, 0, 0, 0, 0, 0, 0, 0)
_AMR_WB_SIZES = (17, 23, 32, 36, 40, 46, 50, 58, 60, 5, 0, 0, 0, 0, 0, 0)
_AMR_UNUSED_NB = frozenset(range(9, 15))
_AMR_UNUSED_WB = frozenset(range(10, 14))


@dataclass(frozen=True)
class MediaVerdict:
    filename: str
    size: int
    format: str | None  # a key of FORMATS or FORBIDDEN, None when unrecognised
    kind: str | None  # image | voice | video, None for a forbidden or unknown file
    duration_seconds: float | None = None
    problems: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def format_name(self) -> str:
        if self.format in FORMATS:
            return FORMATS[self.format][1]
        return FORBIDDEN.get(self.format or "", "无法识别的内容")

    @property
    def reason(self) -> str:
        return "；".join(self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.filename, "ok": self.ok, "kind": self.kind, "format": self.format,
                "format_name": self.format_name, "size_bytes": self.size,
                "duration_seconds": None if self.duration_seconds is None else round(self.duration_seconds, 3),
                "problems": list(self.problems)}


class _Broken(ValueError):
    """The content claims a format but does not parse as it."""


def sniff(data: bytes) -> str | None:
    """The format the bytes really are (a key of FORMATS or FORBIDDEN), or None."""
    head = data[:64]
    if head.startswith(b"#!AMR\n") or head.startswith(b"#!AMR-WB\n"):
        return "amr"
    checks: tuple[tuple[bytes, str], ...] = (
        (b"MZ", "pe"), (b"\x7fELF", "elf"), (b"\xfe\xed\xfa\xce", "macho"), (b"\xfe\xed\xfa\xcf", "macho"),
        (b"\xce\xfa\xed\xfe", "macho"), (b"\xcf\xfa\xed\xfe", "macho"), (b"\xca\xfe\xba\xbe", "macho"),
        (b"#!", "script"), (b"PK\x03\x04", "zip"), (b"Rar!\x1a\x07", "rar"), (b"7z\xbc\xaf\x27\x1c", "7z"),
        (b"%PDF", "pdf"), (b"\x89PNG\r\n\x1a\n", "png"), (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"),
        (b"fLaC", "flac"), (b"OggS", "ogg"), (b"\x1aE\xdf\xa3", "mkv"), (b"FLV\x01", "flv"),
        (b"GIF87a", "gif"), (b"GIF89a", "gif"), (b"\xff\xd8\xff", "jpeg"), (b"BM", "bmp"),
        (b".RMF", "rm"), (_ASF, "asf"), (b"\x00\x00\x01\xba", "mpeg"), (b"\x00\x00\x01\xb3", "mpeg"),
        (b"ID3", "mp3"),
    )
    for magic, name in checks:
        if head.startswith(magic):
            return _asf_kind(data) if name == "asf" else name
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WAVE": "wav", b"AVI ": "avi", b"WEBP": "webp"}.get(head[8:12])
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "mov"
        return "m4a" if brand in (b"M4A ", b"M4B ", b"M4P ") else "mp4"
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] >> 1) & 3 == 1:
        return "mp3"  # an MPEG audio frame header, layer III, without an ID3 tag
    return None


def _asf_kind(data: bytes) -> str:
    """ASF carries both WMA and WMV: a video stream in the header object makes it a video."""
    size = struct.unpack_from("<Q", data, 16)[0] if len(data) >= 24 else len(data)
    header = data[: min(size, len(data), 1 * MB)]
    return "wmv" if _ASF_VIDEO in header else "wma"


def _extension(filename: str) -> str:
    return PurePath(filename).suffix.lower().lstrip(".")


def inspect_media(data: bytes, filename: str, limits: MediaLimits | None = None) -> MediaVerdict:
    """Check one attachment against R8.3 by its content. Never raises on any bytes."""
    limits = limits or MediaLimits()
    size, ext = len(data), _extension(filename)
    found = sniff(data)
    if found is None or found in FORBIDDEN:
        what = FORBIDDEN.get(found or "", "无法识别的文件内容")
        named = f"（文件名为 .{ext}）" if ext else ""
        return MediaVerdict(filename, size, found, None, problems=(
            f"文件内容是{what}{named}，不是允许的图片（bmp、jpeg、jpg、gif）、语音（mp3、wma、wav、amr）"
            "或视频（rm、rmvb、wmv、avi、mpg、mpeg、mp4）",))
    kind, name, extensions = FORMATS[found]
    problems: list[str] = []
    if ext and ext not in extensions:
        problems.append(f"文件名扩展名 .{ext} 与内容（{name}）不符")
    duration: float | None = None
    details: dict[str, Any] = {}
    try:
        if kind == IMAGE:
            details = _verify_image(data, found)
        elif kind == VOICE:
            duration = _duration(data, found)
    except _Broken as exc:
        problems.append(f"文件内容不是完整的{name}：{exc}")
    limit = limits.max_bytes(kind)
    if size > limit:
        problems.append(f"{KIND_NAMES[kind]}大小 {_megabytes(size)} 超过 {_megabytes(limit)} 的上限")
    if size == 0:
        problems.append("文件是空的")
    if kind == VOICE and duration is not None and duration > limits.voice_max_seconds:
        problems.append(f"语音时长 {duration:.1f} 秒超过 {limits.voice_max_seconds:g} 秒的上限")
    return MediaVerdict(filename, size, found, kind, duration, tuple(problems), details)


def _megabytes(size: int) -> str:
    return f"{size / MB:.2f} MB" if size % MB else f"{size // MB} MB"


def _verify_image(data: bytes, found: str) -> dict[str, Any]:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.verify()
                real, width, height = image.format, image.width, image.height
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
        raise _Broken(f"无法解析（{type(exc).__name__}）") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise _Broken("图片像素数过大") from None
    if (real or "").lower() != found:
        raise _Broken(f"解析为 {real}")
    return {"width": width, "height": height}


def _duration(data: bytes, found: str) -> float:
    if found == "amr":
        return amr_duration(data)
    from mutagen import MutagenError
    from mutagen.asf import ASF
    from mutagen.mp3 import MP3
    from mutagen.wave import WAVE

    reader = {"mp3": MP3, "wma": ASF, "wav": WAVE}[found]
    try:
        length = float(reader(io.BytesIO(data)).info.length)
    except (MutagenError, struct.error, ValueError, EOFError, IndexError) as exc:
        raise _Broken(f"无法读取时长（{type(exc).__name__}）") from None
    if length <= 0:
        raise _Broken("时长为 0")
    return length


def amr_duration(data: bytes) -> float:
    """Seconds of an AMR (narrowband or wideband) file: every speech frame is 20 ms (RFC 4867 §5)."""
    wideband = data.startswith(b"#!AMR-WB\n")
    offset = 9 if wideband else 6
    sizes, unused = (_AMR_WB_SIZES, _AMR_UNUSED_WB) if wideband else (_AMR_NB_SIZES, _AMR_UNUSED_NB)
    frames = 0
    while offset < len(data):
        frame_type = (data[offset] >> 3) & 0x0F
        if frame_type in unused:
            raise _Broken(f"第 {frames + 1} 帧的帧类型 {frame_type} 无效")
        offset += 1 + sizes[frame_type]
        if offset > len(data):
            raise _Broken(f"第 {frames + 1} 帧不完整")
        frames += 1
    if not frames:
        raise _Broken("没有音频帧")
    return frames * 0.02
