"""Why a local path a manifest names (an input image, a capability file, a folder, a data file) cannot be
used, in words, for the error that points at its field.

pathlib meets a path no file system takes with three kinds of error: ValueError for a NUL byte in it,
RuntimeError for a symlink loop (Python 3.11's `resolve()`), OSError for a name too long (ENAMETOOLONG) or a
loop met by `stat()`. A caller catches `UNUSABLE` around the calls that resolve or test such a path, and says
`why_unusable(exc)` at the field. A path a run records must be UTF-8 text as well (`not_recordable`).
"""

from __future__ import annotations

import errno
import os
import re

__all__ = ["UNUSABLE", "not_recordable", "shown", "why_unusable"]

UNUSABLE = (OSError, RuntimeError, ValueError)
SHOWN_MAX = 160  # characters of a path a message shows
_SURROGATE = re.compile("[\ud800-\udfff]")


def why_unusable(exc: BaseException) -> str:
    """What is wrong with a path that raised `exc` (one of `UNUSABLE`)."""
    if isinstance(exc, ValueError):
        return "its name holds a NUL byte (\\0), which no file name can hold"
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
        size = f" ({len(os.fsencode(exc.filename)):,} bytes)" if isinstance(exc.filename, str) else ""
        return f"its name is too long for the file system{size}; choose a shorter one"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)  # RuntimeError: "Symlink loop from '...'"


def not_recordable(path: str | os.PathLike[str]) -> str | None:
    """Why a run cannot record `path` (its manifest's, its output or state folder), None when it can.

    A run records these paths as text, in its state (SQLite takes only UTF-8) and in reports and exports that
    other programs read; a name of bytes that are not UTF-8 (Python holds each as a lone surrogate, \\udc80 to
    \\udcff) is refused rather than recorded as another name, which no later reader would find on disk.
    """
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(exc.object[exc.start])
        what = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}, a lone surrogate"
        return (f"it is not UTF-8 text ({what}), and a run records it as text in its state and reports; rename "
                "the file or folder whose name holds it")
    return None


def shown(path: str | os.PathLike[str]) -> str:
    """`path` as a message shows it: a NUL byte written as \\0 (a terminal would show nothing), a byte that is
    not UTF-8 as U+FFFD (the replacement character), and the middle of a path of thousands of characters left out."""
    text = _SURROGATE.sub("\ufffd", os.fspath(path).replace("\0", "\\0"))
    return text if len(text) <= SHOWN_MAX else f"{text[:SHOWN_MAX - 40]}…{text[-30:]}"
