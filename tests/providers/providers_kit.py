from __future__ import annotations

import struct
import zlib
from typing import Any

from execkit import served

KEY = "lmnfl_TESTKEY_0123456789abcdef"
BASE = "https://api.lumenfall.ai/v1"


def video(**over: Any) -> dict[str, Any]:
    """A Lumenfall video object."""
    obj: dict[str, Any] = {
        "id": "video_123",
        "object": "video",
        "created_at": 1_800_000_000,
        "completed_at": None,
        "expires_at": None,
        "status": "queued",
        "model": "pixverse-v5.6",
        "prompt": "a red fox",
        "seconds": "5",
        "size": "1024x576",
    }
    obj.update(over)
    return obj


def png_bytes() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def mp4_bytes(payload: bytes = bytes(range(256)) * 40) -> bytes:
    """A minimal ISO BMFF file: an ftyp box, an (empty) moov box and an mdat box holding `payload`."""
    ftyp = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    moov = b"\x00\x00\x00\x08moov"
    mdat = (8 + len(payload)).to_bytes(4, "big") + b"mdat" + payload
    return ftyp + moov + mdat


MP4 = mp4_bytes()


def no_secret(exc: BaseException, secret: str = KEY) -> None:
    """`exc`, its message fields and its repr never show the key."""
    assert secret not in str(exc)
    assert secret not in repr(exc)
    assert secret not in str(getattr(exc, "message", ""))
    assert secret not in repr(exc.args)


serving = served  # the ASGI app on 127.0.0.1 in a thread while the block runs; yields its origin
