"""Input images: what kind of image a file holds, for the provider's request and the plan's check of it."""

from __future__ import annotations

from pathlib import Path

_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
# Kinds gridrun does not tell by their bytes, taken by their extension alone.
_BY_EXTENSION = {".avif": "image/avif", ".heic": "image/heic", ".heif": "image/heif", ".tif": "image/tiff",
                 ".tiff": "image/tiff"}
# A BMP's info header is one of these sizes (core, OS/2, V1 to V5): "BM" alone begins plenty of text.
_BMP_HEADERS = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
HEAD = 32
"""Bytes of a file that `image_mime` needs to tell the kinds it knows by their magic."""


def image_mime(path: Path, data: bytes) -> str | None:
    """The image MIME type of `data` (a file's first HEAD bytes suffice), from its magic bytes, else from
    `path`'s extension for a kind without known magic (AVIF, HEIC, TIFF); None for no image (or empty)."""
    for magic, mime in _IMAGE_MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:2] == b"BM" and len(data) >= 18 and int.from_bytes(data[14:18], "little") in _BMP_HEADERS:
        return "image/bmp"
    return _BY_EXTENSION.get(path.suffix.lower()) if data else None
