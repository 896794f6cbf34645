"""Input images: what kind of image a file holds, for the provider's request and the plan's check of it."""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
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


# Kinds a data URI may say it holds though gridrun cannot tell them by their bytes (as `_BY_EXTENSION` for files).
_BY_TYPE_ONLY = frozenset(_BY_EXTENSION.values())
# Other names tools write for those kinds (legacy, vendor or mistaken ones), each judged as the kind it names.
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-citrix-jpeg": "image/jpeg",
            "image/x-png": "image/png", "image/x-citrix-png": "image/png", "image/x-ms-bmp": "image/bmp",
            "image/x-bmp": "image/bmp"}
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")
_KINDS = "PNG, JPEG, WebP, GIF, BMP, or by their media type alone AVIF, HEIC, TIFF..."
"""The kinds of image a data URI may hold, as its errors name them."""


def is_data_uri(value: str) -> bool:
    return value[:5].lower() == "data:"


def other_scheme(value: str) -> str | None:
    """The scheme of a URL `value` that is neither https nor http (those are the model's to judge) nor a data
    URI, e.g. 'ftp' or 'file'; None for anything else (a local path)."""
    found = _SCHEME.match(value)
    if found is None:
        return None
    scheme = found.group()[:-3].lower()
    return None if scheme in ("http", "https") else scheme


def data_uri_problem(value: str) -> str | None:
    """Why the data URI `value` is not an image gridrun can send, as a local file is checked: an image media
    type, base64 that decodes, and first bytes of that kind of image (or, for a kind gridrun does not tell by
    its bytes, any bytes at all); None when it is one."""
    header, comma, payload = value[5:].partition(",")
    if not comma:
        return "has no ',' before its data (write data:image/png;base64,...)"
    mediatype, *options = [part.strip() for part in header.split(";")]
    declared = _ALIASES.get(mediatype.lower(), mediatype.lower())
    if not declared.startswith("image/"):
        return f"says it holds {mediatype or 'text/plain (no media type)'!r}, not an image ({_KINDS})"
    if "base64" not in (o.lower() for o in options):
        return "is not base64 (write data:image/png;base64,...)"
    data = _base64_payload(payload)
    if data is None:
        return "holds data that is not valid base64"
    if not data:
        return "is not an image gridrun can send; it is empty"
    found = image_mime(Path(), data[:HEAD])
    if declared in _BY_TYPE_ONLY and found is None:
        return None
    if found is None:
        return f"says {mediatype!r} but its bytes are not an image gridrun can send ({_KINDS})"
    if found != declared:
        return f"says {mediatype!r} but its bytes are {found}"
    return None


def _base64_payload(payload: str) -> bytes | None:
    """The bytes of a data URI's base64 `payload` as decoders take it (WHATWG's forgiving base64, what browsers
    use): `%XX` escapes undone (RFC 2397 data is URL-encoded), white space dropped, the trailing '=' padding
    optional; None for what is not base64 even so."""
    text = b"".join(urllib.parse.unquote_to_bytes(payload).split()) if "%" in payload else \
        "".join(payload.split()).encode("utf-8", "surrogatepass")
    if len(text) % 4 == 0 and text.endswith(b"="):
        text = text[:-2] if text.endswith(b"==") else text[:-1]
    if len(text) % 4 == 1:
        return None
    try:
        return base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
