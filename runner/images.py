"""Input images: what kind of image a file holds, for the provider's request and the plan's check of it."""

from __future__ import annotations

import mimetypes
from pathlib import Path

_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


# Kinds told by their first bytes: a file named for one of them that does not start so is not one.
_KNOWN = frozenset({mime for _, mime in _IMAGE_MAGIC} | {"image/webp"})
HEAD = 16
"""Bytes of a file that `image_mime` needs to tell the kinds it knows by their magic."""


def image_mime(path: Path, data: bytes) -> str | None:
    """The image MIME type of `data` (a file's first HEAD bytes suffice), from its magic bytes, else from
    `path`'s extension for a kind without known magic (AVIF, HEIC, TIFF...); None for no image (or empty)."""
    for magic, mime in _IMAGE_MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    guessed, _ = mimetypes.guess_type(path.name)
    if data and guessed and guessed.startswith("image/") and guessed not in _KNOWN:
        return guessed
    return None
