"""Input images: what kind of image a file holds, for the provider's request and the plan's check of it."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
import urllib.parse
from pathlib import Path
from typing import BinaryIO, Self

_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"II+\x00", "image/tiff"),  # BigTIFF
    (b"MM\x00+", "image/tiff"),
)
# The ISO base media file `ftyp` brands of HEIF images (ISO/IEC 23008-12; AVIF is HEIF holding AV1): by the
# codec a brand names, or, for a brand any HEIF file may carry (`mif1`), by the file's extension.
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"MiHE", b"MiHB"})
_AVIF_BRANDS = frozenset({b"avif", b"avis", b"avio", b"MA1B", b"MA1A"})
_HEIF_BRANDS = frozenset({b"mif1", b"mif2", b"msf1", b"miaf", b"MiHA", b"MiPr"})
_HEIF_KINDS = {".avif": "image/avif", ".heic": "image/heic", ".heif": "image/heif"}
# A BMP's info header is one of these sizes (core, OS/2, V1 to V5): "BM" alone begins plenty of text.
_BMP_HEADERS = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
# What the error of a job left unsent says when a local input image it names was written over or removed after the
# plan (`Executor._read_images`): its request cannot be made as planned until the file holds those bytes again.
_NOT_AS_PLANNED = re.compile(r"the input image (.+?) (?:changed|cannot be read) since the plan")
HEAD = 32
"""Bytes of a file that `image_mime` needs to tell the kinds it knows by their magic."""
TAIL = 65536
"""Bytes at the end of a file that `cut_short` reads: a PNG's IEND, a JPEG's EOI, and room for the data some
tools write after them."""


def image_mime(path: Path, data: bytes) -> str | None:
    """The image MIME type of `data` (a file's first HEAD bytes suffice), from its magic bytes (for HEIF, its
    `ftyp` brands, and `path`'s extension where those name no codec); None for no image (or empty). An
    extension alone makes nothing an image: a text file named .heic is none."""
    for magic, mime in _IMAGE_MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:2] == b"BM" and len(data) >= 18 and int.from_bytes(data[14:18], "little") in _BMP_HEADERS:
        return "image/bmp"
    if data[4:8] == b"ftyp" and len(data) >= 12:
        end = min(len(data), max(16, int.from_bytes(data[:4], "big")))
        brands = {data[8:12], *(data[i:i + 4] for i in range(16, end - 3, 4))}
        if brands & _AVIF_BRANDS:
            return "image/avif"
        if brands & _HEIC_BRANDS:
            return "image/heic"
        if brands & _HEIF_BRANDS:
            return _HEIF_KINDS.get(path.suffix.lower(), "image/heif")
    return None


_PNG_END = b"IEND\xaeB`\x82"
_JPEG_END = b"\xff\xd9"
# In a JPEG's coded data a 0xFF byte is followed by 0x00 (a stuffed byte) or a restart marker, 0xD0 to 0xD7.
_JPEG_CODED = re.compile(rb"\xff(?![\x00\xd0-\xd7]|\Z)")


def cut_short(mime: str, tail: bytes, whole: bool) -> str | None:
    """Why an image of `mime` whose last bytes are `tail` (up to TAIL of them; all of its bytes when `whole`) is
    not all there, as a copy or download that stopped early leaves it: a PNG without its closing IEND chunk, a
    JPEG without its end-of-image marker; None when it is complete, or of a kind not checked so.

    A JPEG may be followed by data of other kinds (a phone's motion photo appends a video to the picture): a tail
    that is none of a JPEG's coded data and holds no end marker is taken as such data, unless it is the whole
    file."""
    if mime == "image/png" and _PNG_END not in tail:
        return "is cut short: a PNG ends with an IEND chunk, and this one has none (a copy or download that stopped early?)"
    if mime == "image/jpeg" and _JPEG_END not in tail and (whole or _JPEG_CODED.search(tail) is None):
        return ("is cut short: a JPEG ends with an end-of-image marker (FF D9), and this one has none (a copy or "
                "download that stopped early?)")
    return None


# Other names tools write for those kinds (legacy, vendor or mistaken ones), each judged as the kind it names.
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-citrix-jpeg": "image/jpeg",
            "image/x-png": "image/png", "image/x-citrix-png": "image/png", "image/x-ms-bmp": "image/bmp",
            "image/x-bmp": "image/bmp"}
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")
KINDS = "PNG, JPEG, WebP, GIF, BMP, TIFF, HEIC, HEIF or AVIF"
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


def data_uri_problem(value: str, max_bytes: int | None = None) -> str | None:
    """Why the data URI `value` is not an image gridrun can send, as a local file is checked: an image media
    type, base64 that decodes (to at most `max_bytes`, the provider's limit), the bytes of that kind of image,
    all of them (`cut_short`); None when it is one."""
    header, comma, payload = value[5:].partition(",")
    if not comma:
        return "has no ',' before its data (write data:image/png;base64,...)"
    mediatype, *options = [part.strip() for part in header.split(";")]
    declared = _ALIASES.get(mediatype.lower(), mediatype.lower())
    if not declared.startswith("image/"):
        return f"says it holds {mediatype or 'text/plain (no media type)'!r}, not an image ({KINDS})"
    if "base64" not in (o.lower() for o in options):
        return "is not base64 (write data:image/png;base64,...)"
    data = _base64_payload(payload)
    if data is None:
        return "holds data that is not valid base64"
    if not data:
        return "is not an image gridrun can send; it is empty"
    if max_bytes is not None and len(data) > max_bytes:
        return f"holds {size_text(len(data))}, more than the {size_text(max_bytes)} the provider takes"
    found = image_mime(Path(_HEIF_NAMES.get(declared, "")), data[:HEAD])
    if found is None:
        return f"says {mediatype!r} but its bytes are not an image gridrun can send ({KINDS})"
    if found != declared and not ("image/heif" in (found, declared) and {found, declared} <= _HEIF_TYPES):
        return f"says {mediatype!r} but its bytes are {found}"
    return cut_short(found, data[-TAIL:], len(data) <= TAIL)


def stand_in(value: str) -> str:
    """What a simulator keeps of the data URI `value` once it has checked it: its media type, the SHA-256 and the
    size of the bytes it holds, `data:image/png;sha256=<hex>;bytes=<n>` (no data: no comma). Kept for each video,
    and written down in its world, the whole image (megabytes each, often the same one for every job of a grid)
    would grow the simulator's memory and file with every create. A value that is no data URI of base64, or
    already a stand-in, is returned as it is."""
    if not is_data_uri(value):
        return value
    header, comma, payload = value[5:].partition(",")
    if not comma:
        return value
    mediatype, *options = [part.strip() for part in header.split(";")]
    if "base64" not in (o.lower() for o in options):
        return value
    data = _base64_payload(payload)
    if data is None:
        return value
    return f"data:{mediatype};sha256={hashlib.sha256(data).hexdigest()};bytes={len(data)}"


# HEIF by its media type, for a file whose brands name no codec: judged as the kind the data URI says. HEIC
# and AVIF are kinds of HEIF: a data URI may call either by that name.
_HEIF_NAMES = {mime: f"image{ext}" for ext, mime in _HEIF_KINDS.items()}
_HEIF_TYPES = frozenset(_HEIF_KINDS.values())


def size_text(count: int) -> str:
    """A byte count as a message writes it: "20 MB (20,000,000 bytes)"."""
    return f"{count / 1e6:.4g} MB ({count:,} bytes)"


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


class ReadImage(str):
    """A local input image's path, as the job's parameters hold it, with `data`: the bytes read of it to send.

    The file is read once, as its create is sent, and those bytes are checked against the SHA-256 the plan hashed
    (`read_as_planned`): the provider sends them, not the file read again, so what is sent is the request the
    job's hash names even while the file is written over (a `git checkout`, a pull, an editor saving). Still the
    path's text, so a provider that knows nothing of it reads the path as before."""

    data: bytes

    def __new__(cls, path: str, data: bytes) -> Self:
        image = super().__new__(cls, path)
        image.data = data
        return image


def not_regular(mode: int) -> str:
    """What a file of `mode` (`st_mode`), where an input image is looked for and is no regular file, is: "is a
    folder, not an image file", "is a named pipe, not a regular file holding an image"."""
    if stat.S_ISDIR(mode):
        return "is a folder, not an image file"
    return f"is {special_kind(mode) or 'not a file'}, not a regular file holding an image"


def special_kind(mode: int) -> str | None:
    """What a file of `mode` (`st_mode`) that reading could wait on for ever is: "a named pipe" (opening one waits
    for a writer), "a socket", "a character device" (a terminal waits for input) or "a block device"; None for
    any other file."""
    kinds = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"))
    return next((what for test, what in kinds if test(mode)), None)


class NotRegular(OSError):
    """An input image's path names something other than a regular file (a named pipe, a device, a folder):
    refused unread, as reading it could wait for ever (`open_regular`). `what` says what it is (`not_regular`)."""

    def __init__(self, path: str | os.PathLike[str], mode: int) -> None:
        self.what = not_regular(mode)
        super().__init__(f"it {self.what}")
        self.strerror = f"it {self.what}"
        self.filename = os.fspath(path)


def open_regular(path: str | os.PathLike[str], buffering: int = -1) -> BinaryIO:
    """`path` opened to read, once it is known to be a regular file. It is opened without waiting (`O_NONBLOCK`)
    and checked before anything is read: opening a named pipe for reading waits for a writer, and reading one, or
    a terminal, waits for data, which would hold the whole run (its downloads, its interrupt) on one file.

    :raises OSError: the file is not there or cannot be read; `NotRegular`: it is no regular file.
    """
    return open(path, "rb", buffering=buffering, opener=_open_regular)


def _open_regular(path: str, flags: int) -> int:
    """The descriptor of `path` opened with `flags`, without waiting, once `stat` shows a regular file there (a
    device is not even opened) and `fstat` the one opened (a named pipe put in its place meanwhile)."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegular(path, mode)
    fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegular(path, mode)
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(fd, True)  # a regular file reads as ever; the flag was for the open alone
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_as_planned(path: str, sha256: str) -> ReadImage | str:
    """The file at `path` read whole, once, as a `ReadImage` when its bytes have the SHA-256 `sha256` the plan
    hashed; else the SHA-256 they have now (hex), the bytes let go at once (an image may be 20 MB).

    :raises OSError: the file cannot be read; `NotRegular`: it is no longer a regular file (a named pipe put in
        its place would otherwise hold the run until something writes to it).
    """
    with open_regular(path) as f:
        data = f.read()
    now = hashlib.sha256(data).hexdigest()
    return ReadImage(path, data) if now == sha256 else now


def not_as_planned(error: str | None) -> str | None:
    """The input image (its path) that a job's `error` says was written over or removed after the plan, so that
    the job was left unsent: a run sends it as planned only once the file is put back; None for another error."""
    found = _NOT_AS_PLANNED.search(error or "")
    return found.group(1) if found else None
