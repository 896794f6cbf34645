"""What a terminal shows: the characters gridrun prints, written in ASCII where the output's encoding lacks them.

gridrun's lines use a few characters beyond ASCII (an arrow, an ellipsis, dashes, the live display's bar), and
names and prompts may hold any. With PYTHONIOENCODING=ascii or a C locale, writing one failed; `fit` makes each
stream write them as their ASCII equivalents (`ASCII`), and any other character it cannot encode as the
nearest ASCII.
"""

from __future__ import annotations

import codecs
import unicodedata
from typing import Any, TextIO

# What a terminal that cannot show gridrun's characters (an ascii or latin-1 locale) reads instead; one cell
# for one where the live display lays out cells, but for the ellipsis (`_render` leaves room for it).
ASCII = {"→": "->", "←": "<-", "…": "...", "—": "-", "–": "-", "·": "-", "×": "x", "±": "+/-", "•": "*",
         "█": "#", "░": "-"}
_ERRORS = "gridrun.ascii"


def _in_ascii(exc: UnicodeError) -> tuple[str | bytes, int]:
    """The codec error handler `_ERRORS`: characters the stream's encoding lacks as ASCII (`ASCII`, a letter
    without its accent, a box-drawing line as `-`, `|` or `+`, else `?`); the bytes a file name could not be
    decoded from (surrogateescape) as they were."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    text = exc.object[exc.start:exc.end]
    if all("\udc80" <= ch <= "\udcff" for ch in text):
        return bytes(ord(ch) - 0xDC00 for ch in text), exc.end
    return "".join(_ascii(ch) for ch in text), exc.end


def _ascii(ch: str) -> str:
    if ch in ASCII:
        return ASCII[ch]
    name = unicodedata.name(ch, "")
    if name.startswith("BOX DRAWINGS"):
        if " AND " in name or ("HORIZONTAL" in name) == ("VERTICAL" in name):
            return "+"
        return "-" if "HORIZONTAL" in name else "|"
    plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
    return plain or "?"


codecs.register_error(_ERRORS, _in_ascii)


def shows(stream: Any, text: str = "".join(ASCII)) -> bool:
    """`stream`'s encoding has every character of `text` (by default, all those gridrun prints)."""
    try:
        text.encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def writes_any(stream: Any) -> bool:
    """`stream`'s encoding is a UTF: it writes any text as it is (JSON needs no escapes)."""
    try:
        return codecs.lookup(getattr(stream, "encoding", None) or "utf-8").name.startswith("utf")
    except LookupError:
        return False


def fit(*streams: TextIO) -> None:
    """Streams whose encoding lacks gridrun's characters (PYTHONIOENCODING=ascii, a C locale) write each of
    them as ASCII (`_in_ascii`) instead of failing on the first: decided once, from the encoding, before the
    command writes anything (Python's own choice, `\\u2192` on standard error, reads as noise)."""
    for stream in streams:
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and not shows(stream):
            reconfigure(errors=_ERRORS)
