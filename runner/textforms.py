"""Text that reads alike on screen but is not the same text: a letter composed or not (`é` as U+00E9, or `e` and
the combining U+0301, as macOS tools and pasted text often write it), or an invisible format character (a zero
width space, a byte order mark left inside a file by joining two files) in one copy and not the other. Keys and
hashes keep text as written, so such twins are two jobs, paid twice; these say when two texts are alike and how
they differ, in words and escapes that show it. The same for white space an editor or a commit hook changes at line
ends (`spaced`)."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from typing import Any

# Format characters that change what is drawn: the zero width non-joiner and joiner (a Persian word's letters kept
# apart, an emoji family drawn as one) and the marks written before a number that they enclose or span (the Arabic
# number sign U+0600, the end of ayah U+06DD, ...; Unicode's Prepended_Concatenation_Mark): two texts that differ
# by one do not read alike. The tag characters are drawn only in an emoji tag sequence (`_marked`).
_DRAWN = frozenset("\u200c\u200d" "\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u0890\u0891\u08e2"
                   "\U000110bd\U000110cd")
# An emoji tag sequence: a black flag, then tags up to the cancel tag (the flags of England, Scotland and Wales).
_TAG_BASE, _TAGS, _CANCEL_TAG = "\U0001f3f4", ("\U000e0020", "\U000e007f"), "\U000e007f"


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf" and ch not in _DRAWN


_JOINERS = frozenset("\u200c\u200d")


def blank(text: str) -> bool:
    """Whether `text` shows nothing: only white space and invisible format characters (a zero width space, a byte
    order mark, a soft hyphen: what a copy and paste can leave in a cell that looks empty), the zero width joiner
    and non-joiner too, which join nothing there, and the letters that draw nothing (`_BLANK_LETTERS`). The number
    signs that are drawn (U+0600, ...) show."""
    if text.isascii():
        return not text.strip()
    return all(ch.isspace() or ch in _BLANK_LETTERS
               or (unicodedata.category(ch) == "Cf" and (ch in _JOINERS or ch not in _DRAWN))
               for ch in text)


# Characters that are letters or symbols to Unicode yet draw nothing: the Hangul fillers (U+115F, U+1160, U+3164,
# U+FFA0) and the blank Braille pattern (U+2800), which pass for a space in names and chat messages.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _marked(text: str) -> Iterator[tuple[str, bool]]:
    """Each character of `text`, and whether it is an invisible format character there: a tag is one outside an
    emoji tag sequence (after a letter, say), and drawn inside one."""
    tagged = False
    for ch in text:
        if _TAGS[0] <= ch <= _TAGS[1]:
            yield ch, not tagged
            tagged = tagged and ch != _CANCEL_TAG
        else:
            tagged = ch == _TAG_BASE
            yield ch, _invisible(ch)


def marked(text: str) -> Iterator[tuple[str, bool]]:
    """Each character of `text`, and whether it is an invisible format character there (`_marked`): what a
    terminal shows escaped, as two values that differ by one would otherwise print alike."""
    if text.isascii() or _format_characters().isdisjoint(text):
        return ((ch, False) for ch in text)
    return _marked(text)


@functools.cache
def _format_characters() -> frozenset[str]:
    """The invisible format characters (category Cf), found once, when text other than ASCII is first read: they
    are in the first two planes and in the tags of plane 14 (the others hold ideographs and private use)."""
    return frozenset(chr(code) for code in (*range(0x20000), *range(0xE0000, 0xE1000)) if _invisible(chr(code)))


def alike(text: str) -> str:
    """`text` as it reads: its invisible format characters (category Cf: U+200B, U+FEFF, U+2060, U+00AD, ...)
    left out, in one Unicode form (NFC, letters composed)."""
    if text.isascii():  # no format character is ASCII, and ASCII is in every form
        return text
    invisible = _format_characters()
    if invisible.isdisjoint(text):
        return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)
    return unicodedata.normalize("NFC", _bare(text))


def _bare(text: str) -> str:
    return "".join(ch for ch, hidden in _marked(text) if not hidden)


def drawn(text: str) -> str:
    """`text` without its invisible format characters, its letters in the form they are written."""
    if text.isascii():
        return text
    return text if _format_characters().isdisjoint(text) else _bare(text)


def alike_value(value: Any) -> Any:
    """`alike` of each string in `value` (a row's column names too); `value` itself when no string changes."""
    if isinstance(value, str):
        return alike(value)
    if isinstance(value, dict):
        out = {alike(k) if isinstance(k, str) else k: alike_value(v) for k, v in value.items()}
        return value if out == value else out
    if isinstance(value, list):
        items = [alike_value(v) for v in value]
        return value if items == value else items
    return value


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str):
                yield k
            yield from _texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v)


def _counted(value: Any) -> Counter[str]:
    """How many times each invisible format character is in the strings of `value`."""
    return Counter(ch for text in _texts(value) if not text.isascii() for ch, hidden in _marked(text) if hidden)


def unlike_parts(first: Any, second: Any) -> tuple[bool, list[str]]:
    """How two values that are `alike` differ: whether a letter is written in another Unicode form, and the
    invisible format characters that one holds more of than the other (all those they hold where each holds as
    many, but in other places)."""
    counts = [_counted(first), _counted(second)]
    invisible = counts[0] | counts[1]
    bare = [[_bare(t) for t in _texts(v)] for v in (first, second)]
    differ = sorted(ch for ch in invisible if counts[0][ch] != counts[1][ch]) or sorted(invisible)
    return bare[0] != bare[1] or not invisible, differ


def unlike(first: Any, second: Any) -> str:
    """How two values that are `alike` differ, in words: "Unicode form (a letter composed or not)", "an invisible
    U+200B" (naming those one holds more of than the other), or both."""
    form, names = unlike_parts(first, second)
    said = []
    if form:
        said.append("Unicode form (a letter composed or not)")
    if names:
        listed = ", ".join(f"U+{ord(ch):04X}" for ch in names[:3]) + (", ..." if len(names) > 3 else "")
        said.append(f"{'an invisible' if len(names) == 1 else 'the invisible'} {listed}")
    return " and ".join(said)


def escaped(text: str) -> str:
    """`text` with what does not show written as an escape: invisible format characters, combining marks, letters
    made of a base and a mark (`caf\\u00e9`, `cafe\\u0301`), and every character of a letter that NFC writes as
    another (`한` as three jamo, `\\u1112\\u1161\\u11ab`; `ſ` with its marks); the rest (other scripts, emoji) as
    written."""
    if text.isascii():
        return text
    marked = list(_marked(text))
    out = []
    start = 0
    while start < len(text):
        end = _letter_end(text, start)
        composes = not unicodedata.is_normalized("NFC", text[start:end])
        for ch, hidden in marked[start:end]:
            if ch.isascii() or not (composes or hidden or unicodedata.category(ch).startswith("M")
                                    or unicodedata.normalize("NFD", ch) != ch):
                out.append(ch)
            else:
                code = ord(ch)
                out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        start = end
    return "".join(out)


def _letter_end(text: str, start: int) -> int:
    """Where the letter at `start` ends: after the combining marks that follow it and the characters that compose
    with it into one (a Hangul vowel and final jamo after the jamo they follow)."""
    end = start + 1
    while end < len(text) and (unicodedata.combining(text[end])
                               or len(unicodedata.normalize("NFC", text[start:end + 1])) == 1):
        end += 1
    return end


# --- white space that reads the same ----------------------------------------------------------------
# A text saved again by an editor or a commit hook (pre-commit's trailing-whitespace and end-of-file-fixer,
# .editorconfig's trim_trailing_whitespace and insert_final_newline), or checked out with CRLF line ends (Windows,
# core.autocrlf, a CSV saved by a spreadsheet), reads as it did but is other text: keys and hashes keep it as
# written, so its jobs are paid again. These tell such twins and how they differ.


# Spaces and tabs between two words of a line, more than one or a tab: `{{ a }} {{ b }}` with b empty writes two
# spaces, which a template tidied (`{{- b }}`) writes as one.
_INNER_SPACES = re.compile(r"(?<=[^ \t\n])(?: [ \t]+|\t[ \t]*)(?=[^ \t\n])")


# The space separators beyond ASCII (Unicode's category Zs): a no-break space U+00A0 (a spreadsheet's, a word
# processor's before `:;?!` in French), the narrow one U+202F (macOS in dates and times), the figure and thin spaces
# U+2007, U+2009, ... A re-export or an editor's "replace non-breaking spaces" writes a plain space for them: the
# text reads the same (keys already fold them, as `str.split` does).
SPACES = frozenset("\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000")
_AS_SPACE = {ord(ch): " " for ch in SPACES}


def plain_spaces(text: str) -> str:
    """`text` with each space separator beyond ASCII (`SPACES`) written as a space."""
    return text if text.isascii() else text.translate(_AS_SPACE)


def print_alike(first: str, second: str) -> bool:
    """Whether two texts print alike: the same but for the Unicode form of a letter, an invisible format character
    or a space separator beyond ASCII (a no-break space for a space), which a terminal shows the same."""
    return alike(plain_spaces(first)) == alike(plain_spaces(second))


def spaced(text: str) -> str:
    """`text` as it reads line by line: its line ends LF (CRLF and a lone CR too), the spaces and tabs at the end of
    each line left out, and its final line breaks; between two words of a line, one space for spaces and tabs; a
    space separator beyond ASCII (a no-break space) a space."""
    if not text.isascii():
        text = plain_spaces(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if " \n" in text or "\t\n" in text or text.endswith((" ", "\t")):
        text = "\n".join(line.rstrip(" \t") for line in text.split("\n"))
    if "  " in text or "\t" in text:
        text = _INNER_SPACES.sub(" ", text)
    return text.rstrip("\n")


def spaced_value(value: Any) -> Any:
    """`spaced` of each string in `value` (not of a mapping's keys: a name is not a text saved by an editor)."""
    if isinstance(value, str):
        return spaced(value)
    if isinstance(value, dict):
        return {k: spaced_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [spaced_value(v) for v in value]
    return value


def _line_ends(text: str) -> str:
    crlf = text.count("\r\n")
    cr = text.count("\r") - crlf
    lf = text.count("\n") - crlf
    return "CRLF" if crlf and not (cr or lf) else "CR" if cr and not (crlf or lf) else "LF" if lf and not (crlf or cr) \
        else "mixed" if crlf + cr + lf else ""


def _trailing(lines: list[str]) -> list[int]:
    return [n for n, line in enumerate(lines, 1) if line.endswith((" ", "\t"))]


def unspaced(then: str, now: str) -> list[str]:
    """How `now` differs from `then`, two texts equal under `spaced`, in words: "CRLF line ends (LF then)", "a final
    line break added", "trailing spaces removed (line 1)"."""
    said = []
    ends = (_line_ends(then), _line_ends(now))
    if ends[0] != ends[1] and ("\r" in then or "\r" in now):
        named = [("CRLF" if "\r\n" in t else "CR") + " line ends in places" if e == "mixed" else f"{e} line ends"
                 for e, t in zip(ends, (then, now))]
        said.append(f"{named[1]} ({named[0]} then)" if all(ends) else f"{named[1]} now" if ends[1]
                    else f"{named[0]} then")
    texts = [t.replace("\r\n", "\n").replace("\r", "\n") for t in (then, now)]
    finals = [len(t) - len(t.rstrip("\n")) for t in texts]
    if finals[0] != finals[1]:
        more, many = finals[1] > finals[0], abs(finals[1] - finals[0]) > 1
        said.append(f"{'final line breaks' if many else 'a final line break'} {'added' if more else 'removed'}")
    lines = [t.rstrip("\n").split("\n") for t in texts]
    spaces = [_trailing(lines[0]), _trailing(lines[1])]
    added = [n for n in spaces[1] if n not in spaces[0] or lines[1][n - 1] != lines[0][n - 1]]
    removed = [n for n in spaces[0] if n not in spaces[1]]
    for verb, at in (("added", added), ("removed", removed)):
        if at:
            said.append(f"trailing spaces {verb} ({_lines_said(at)})")
    said.extend(_spaces_said(then, now))
    lines = [[plain_spaces(line) for line in its] for its in lines]
    inner = [n for n, (a, b) in enumerate(zip(*lines), 1) if a.rstrip(" \t") != b.rstrip(" \t")]
    if inner:
        said.append(f"spaces inside {_lines_said(inner)} changed")
    return said


def _spaces_said(then: str, now: str) -> list[str]:
    """The space separators beyond ASCII (`SPACES`) one of two texts holds more of than the other, in words: "a
    no-break space U+00A0 then, a space now"."""
    if then.isascii() and now.isascii():
        return []
    said = []
    for ch in sorted(SPACES):
        counts = (then.count(ch), now.count(ch))
        if counts[0] != counts[1]:
            named = f"{'a' if max(counts) - min(counts) == 1 else 'the'} {unicodedata.name(ch).lower()} U+{ord(ch):04X}"
            said.append(f"{named} then, a space now" if counts[0] > counts[1] else f"a space then, {named} now")
    return said


def _lines_said(at: list[int]) -> str:
    return f"line {at[0]}" if len(at) == 1 else f"lines {', '.join(map(str, at[:3]))}" + (", ..." if len(at) > 3 else "")


# How much of a text a "then"/"now" shows on either side of where it first differs.
_AROUND = 16


def window(then: str, now: str) -> tuple[str, str]:
    """The parts of two texts around where they first differ, to show side by side ("…red fox  running…" then,
    "…red fox running…" now): what differs, with up to `_AROUND` characters on either side, `…` where cut."""
    start = 0
    most = min(len(then), len(now))
    while start < most and then[start] == now[start]:
        start += 1
    end = 0
    while end < most - start and then[-1 - end] == now[-1 - end]:
        end += 1
    shown = []
    for text in (then, now):
        first, last = max(0, start - _AROUND), min(len(text), max(len(text) - end, start) + _AROUND)
        last = min(last, first + 4 * _AROUND + 2 * _AROUND)  # a long difference: its start
        shown.append(("…" if first else "") + text[first:last] + ("…" if last < len(text) else ""))
    return shown[0], shown[1]


def unspaced_value(then: Any, now: Any) -> list[str]:
    """`unspaced` of each string of `now` that differs from its place in `then`, two values equal under
    `spaced_value`, each kind of difference said once."""
    said: list[str] = []
    for a, b in zip(strings_in(then), strings_in(now)):
        if a != b:
            said.extend(s for s in unspaced(a, b) if s.split(" (")[0] not in {t.split(" (")[0] for t in said})
    return said


def strings_in(value: Any) -> Iterator[str]:
    """The strings of `value`, a mapping's by its keys' order (not its keys)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k in sorted(value, key=str):
            yield from strings_in(value[k])
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)


# A duration written with a unit ("10m", "5s", "1.5 h"), where gridrun reads a number of seconds
_WITH_UNIT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)\s*", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


def in_seconds(value: Any) -> str:
    """What to write for `value`, a duration written with its unit ("10m"), where a number of seconds is read:
    "; the unit is seconds: write 600 for 10m"; "" for any other value."""
    found = _WITH_UNIT.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        return ""
    # On the digits written, not a float's: 300h is 1080000 (not 1.08e+06), 1.2345678h is 4444.44408 whole.
    # decimal is imported here, for the message: a command line alone (--help, a usage error) stays light
    from decimal import Decimal

    seconds = Decimal(found[1]) * _UNIT_SECONDS[found[2][0].lower()]
    written = f"{seconds:f}"
    if "." in written:
        written = written.rstrip("0").rstrip(".")
    return f"; the unit is seconds: write {written} for {value.strip()}"
