"""What a terminal shows: the characters gridrun prints, written in ASCII where the output's encoding lacks them.

gridrun's lines use a few characters beyond ASCII (an arrow, an ellipsis, dashes, the live display's bar), and
names and prompts may hold any. With PYTHONIOENCODING=ascii, writing one failed; `fit` makes each stream write
gridrun's own as their ASCII equivalents (`ASCII`), and any other character it cannot encode (a name's, a
prompt's) as Python escapes it, `\\xe9`: a value is never shown as another one (`anime` for `anim\\xe9`). In the
C or POSIX locale, whose characters are ASCII's, Python writes UTF-8 all the same (its UTF-8 mode): `fit` makes
the streams ASCII there, as that locale's terminal reads them.
"""

from __future__ import annotations

import codecs
import os
import re
import shlex
import sys
import unicodedata
from collections.abc import Mapping
from typing import Any, TextIO

from . import textforms

# What a terminal that cannot show gridrun's characters (an ascii or latin-1 locale) reads instead; one cell
# for one where the live display lays out cells, but for the ellipsis (`_render` leaves room for it).
ASCII = {"→": "->", "←": "<-", "…": "...", "—": "-", "–": "-", "·": "-", "×": "x", "±": "+/-", "•": "*",
         "≥": ">=", "█": "#", "░": "-"}
_ERRORS = "gridrun.ascii"


def _in_ascii(exc: UnicodeError) -> tuple[str | bytes, int]:
    """The codec error handler `_ERRORS`: characters the stream's encoding lacks as ASCII (`ASCII`, a box-drawing
    line as `-`, `|` or `+`, else as Python escapes it, `\\xe9`, `\\u72d0`); the bytes a file name could not be
    decoded from (surrogateescape) as they were."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    text = exc.object[exc.start:exc.end]
    if all("\udc80" <= ch <= "\udcff" for ch in text):
        return bytes(ord(ch) - 0xDC00 for ch in text), exc.end
    return _in_letters(text), exc.end


def _in_letters(text: str) -> str:
    """`text` (characters a stream's encoding lacks) in ASCII, each as `_ascii` writes it."""
    return "".join(_ascii(ch) for ch in text)


def _escape(ch: str) -> str:
    return ch.encode("unicode_escape").decode("ascii")


def _ascii(ch: str) -> str:
    """`ch` in ASCII: gridrun's own characters as their equivalents (`ASCII`, a box-drawing line of its tables),
    any other (a letter of a name or a prompt, an accent written apart) as Python escapes it (`\\xe9`, `\\u72d0`,
    `e\\u0301`): two values that differ are never written alike, as `anime` for `anim\\xe9` or a `?` for each would
    have them."""
    if ch in ASCII:
        return ASCII[ch]
    name = unicodedata.name(ch, "")
    if name.startswith("BOX DRAWINGS"):
        if " AND " in name or ("HORIZONTAL" in name) == ("VERTICAL" in name):
            return "+"
        return "-" if "HORIZONTAL" in name else "|"
    return _escape(ch)


codecs.register_error(_ERRORS, _in_ascii)


# What acts on a terminal rather than shows: C0 controls but tab (ESC opens a colour, a title, a clipboard write; CR
# returns over the line), DEL and C1 controls, the line and paragraph separators (U+2028, U+2029: a line break to a
# terminal or log reader that takes them as one, and to Python's `splitlines`; nothing seen to others); and the
# invisible format characters as the twin check knows them (`textforms.marked`: category Cf, among them the
# bidirectional embeddings, overrides and isolates, U+202E reversing the rest of the line, a soft hyphen, a zero width
# space, direction marks, a byte order mark, a tag outside an emoji flag), which show nothing: two values one of them
# tells apart would print alike. Not the zero width joiner and non-joiner (U+200D, U+200C) nor the marks that enclose a
# number (U+0600): they change what is drawn (an emoji family as one, a Persian word's letters kept apart) and are shown
# as written.
_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


# The bytes of a file name that are not UTF-8, as Python keeps them (surrogateescape).
_UNDECODED = re.compile("[\udc80-\udcff]")


def _acting(text: str) -> list[tuple[str, bool]]:
    """Each character of `text`, and whether it acts on a terminal or shows nothing there (`visible` escapes it)."""
    return [(ch, hidden or _CONTROLS.match(ch) is not None) for ch, hidden in textforms.marked(text)]


def _acts(text: str) -> bool:
    if _CONTROLS.search(text):
        return True
    return not text.isascii() and any(acts for _, acts in _acting(text))


def visible(text: str) -> str:
    """`text` with each character that would act on a terminal written as Python writes it in a string (`\\x1b`,
    `\\r`, `\\u202e`), as an error's `!r` of a value does: a value of a manifest or a data file from elsewhere cannot
    clear the screen or retitle the window, and is seen as it is."""
    if not _acts(text):
        return text
    return "".join(repr(ch)[1:-1] if acts else ch for ch, acts in _acting(text))


def value_shown(text: str) -> str:
    """`text`, a value as a table or a list of jobs shows it (a job's key, a matrix value), as `visible` shows it;
    where the output writes escapes for the characters its encoding lacks (`\\xe9` for `\u00e9`, `fit`), a
    backslash of its own as `\\\\`, as Python escapes it: the value typed `anim\\xe9` is shown `anim\\\\xe9`, not as
    `anim\u00e9` is."""
    if "\\" in text and not (writes_any(sys.stdout) and writes_any(sys.stderr)):
        text = text.replace("\\", "\\\\")
    return visible(text)


def typed(word: str | os.PathLike[str]) -> str:
    """`word` (a manifest's path) as a command a message proposes writes it: escaped as `visible` escapes it and
    quoted for the shell, so that a space or a `#` in the name (`'my grid #1.yaml'`) is not a second word or a
    comment where the line is pasted, and an ESC in it does not act on the terminal. A name holding a character
    `visible` escapes, or a byte that is not UTF-8, is written in the shell's ANSI-C quotes (`$'grid\\u00adv2.yaml'`,
    `$'\\xff.yaml'`, as bash and zsh read them), each such character as its escape: pasted, the line names the same
    file, not one with a backslash in its name. So is a name holding a character the output cannot show (`\\u00e9`
    in the C locale), that character as its UTF-8 bytes (`$'caf\\xc3\\xa9.yaml'`), which name it in any locale,
    where the output would write an escape the shell reads as other characters."""
    text = os.fspath(word)
    shown = _shown(text)
    if shown and not _acts(text) and not _UNDECODED.search(text):
        return shlex.quote(text)
    return "$'" + "".join(_ansi_c(ch, acts, shown or _shown(ch)) for ch, acts in _acting(text)) + "'"


def _shown(text: str) -> bool:
    """Standard output and standard error (`fit`) both write `text` as it is."""
    return text.isascii() or shows(sys.stdout, text) and shows(sys.stderr, text)


def _ansi_c(ch: str, acts: bool, shown: bool = True) -> str:
    """`ch` inside the shell's `$'...'`: a byte of the name that is not UTF-8 (Python's lone surrogate for it) as
    that byte, `\\xff`; a character the output cannot show (not `shown`) as its UTF-8 bytes, `\\xc3\\xa9`; a
    character `visible` escapes as `\\uXXXX` (`\\UXXXXXXXX` beyond U+FFFF, where `\\ue0001` would read as U+E000
    and a `1`); a quote and a backslash escaped, the rest as it is."""
    if ch in "'\\":
        return "\\" + ch
    if _UNDECODED.match(ch):
        return f"\\x{ord(ch) - 0xDC00:02x}"
    if not shown:
        return "".join(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogatepass"))
    if not acts:
        return ch
    return f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"


def runs_it_first(manifest: str | os.PathLike[str]) -> str:
    """The hint for a manifest with no run recorded: the command that runs it, or, for a path a run cannot record
    (a name that is not UTF-8 text), what `run` would say of it instead of a command it refuses."""
    from .localpaths import not_recordable

    why = not_recordable(manifest)
    if why is not None:
        return f"the manifest's own path cannot be run: {why}"
    return f"`gridrun run {typed(manifest)}` runs it first"


def shows(stream: Any, text: str = "".join(ASCII)) -> bool:
    """`stream`'s encoding has every character of `text` (by default, all those gridrun prints)."""
    try:
        text.encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def written(stream: Any, text: str) -> str:
    """`text` as `stream` writes it (`fit`): each character its encoding lacks as its ASCII equivalent. A table
    laid out on this text has the widths it is shown with; laid out on `text`, its cells were measured before
    the stream wrote "->" for "→", and a row holding one was a cell wider than its column."""
    if shows(stream, text):
        return text
    out, at = [], 0
    for i, ch in enumerate(text):
        if shows(stream, ch) or "\udc80" <= ch <= "\udcff":
            if at < i:
                out.append(_in_letters(text[at:i]))
            out.append(ch)
            at = i + 1
    if at < len(text):
        out.append(_in_letters(text[at:]))
    return "".join(out)


def writes_any(stream: Any) -> bool:
    """`stream`'s encoding is a UTF: it writes any text as it is (JSON needs no escapes)."""
    try:
        return codecs.lookup(getattr(stream, "encoding", None) or "utf-8").name.startswith("utf")
    except LookupError:
        return False


def fit(*streams: TextIO) -> None:
    """Streams whose encoding lacks gridrun's characters (PYTHONIOENCODING=ascii) write each of them as ASCII
    (`_in_ascii`) instead of failing on the first, and in the C or POSIX locale (`c_locale`) every stream is
    ASCII: decided once, from the encoding and the locale, before the command writes anything (Python's own
    choice, `\\u2192` on standard error, reads as noise)."""
    ascii_only = c_locale()
    for stream in streams:
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and ascii_only:
            reconfigure(encoding="ascii", errors=_ERRORS)
        elif reconfigure is not None and not shows(stream):
            reconfigure(errors=_ERRORS)


# What Python sets LC_CTYPE to where it was C or POSIX (PEP 538), where the locale it names can be had.
_COERCED = frozenset({"C.UTF-8", "C.utf8", "UTF-8"})


def c_locale(environ: Mapping[str, str] = os.environ) -> bool:
    """The command was started in the C or POSIX locale (LC_ALL, else LC_CTYPE, else LANG; none set is C) and
    no encoding was asked for (PYTHONIOENCODING, PYTHONUTF8, -X utf8): its terminal reads ASCII, though Python
    writes UTF-8 there. Python may have set LC_CTYPE to C.UTF-8 on the way (PEP 538), but then its UTF-8 mode
    is on, which it turns on by itself in that locale alone (PEP 540; in any from 3.15, PEP 686)."""
    if environ.get("PYTHONIOENCODING") or environ.get("PYTHONUTF8") or "utf8" in sys._xoptions:
        return False
    name = environ.get("LC_ALL") or environ.get("LC_CTYPE") or environ.get("LANG") or "C"
    if name in ("C", "POSIX"):
        return True
    return name in _COERCED and bool(sys.flags.utf8_mode) and sys.version_info < (3, 15)
