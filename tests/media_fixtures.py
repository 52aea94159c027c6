"""Real media files built in the tests: images with Pillow, WAV with the wave module, MP3 and AMR frames."""

from __future__ import annotations

import io
import struct
import wave


def gif(width: int = 32, height: int = 24) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (183, 28, 28)).save(buffer, "GIF")
    return buffer.getvalue()


def jpeg(width: int = 64, height: int = 48, *, quality: int = 90) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 80, 160)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    return buffer.getvalue()


def big_bmp(min_bytes: int = 3 * 1024 * 1024) -> bytes:
    """A real BMP of at least `min_bytes` (24-bit, uncompressed: 3 bytes a pixel)."""
    from PIL import Image

    side = int((min_bytes / 3) ** 0.5) + 8
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 200, 200)).save(buffer, "BMP")
    return buffer.getvalue()


def wav(seconds: float, *, rate: int = 8000) -> bytes:
    """Mono 8-bit PCM silence: 8 kB a second."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(b"\x80" * int(seconds * rate))
    return buffer.getvalue()


def mp3(seconds: float) -> bytes:
    """MPEG-1 layer III frames, 128 kbit/s, 48 kHz: 384 bytes and 1152 samples (24 ms) each."""
    frame = bytes([0xFF, 0xFB, 0x94, 0x04]) + b"\x00" * (384 - 4)
    return frame * round(seconds * 48000 / 1152)


def amr(seconds: float) -> bytes:
    """AMR narrowband, 12.2 kbit/s frames (FT 7: 1 + 31 bytes, 20 ms each)."""
    return b"#!AMR\n" + (bytes([0x3C]) + b"\x00" * 31) * int(seconds / 0.02)


def elf() -> bytes:
    """The start of a 64-bit Linux executable (what a renamed program begins with)."""
    return b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + struct.pack("<HHI", 2, 0x3E, 1) + b"\x00" * 200


def pe() -> bytes:
    """The start of a Windows executable: the MZ stub pointing at a PE header."""
    stub = bytearray(b"MZ" + b"\x00" * 62)
    struct.pack_into("<I", stub, 0x3C, 64)
    return bytes(stub) + b"PE\x00\x00" + b"\x00" * 200


def mp4() -> bytes:
    return struct.pack(">I", 24) + b"ftypisom" + b"\x00\x00\x02\x00isommp41" + struct.pack(">I", 8) + b"free"
