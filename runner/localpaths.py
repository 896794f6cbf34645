"""Why a local path a manifest names (an input image, a capability file, a folder, a data file) cannot be
used, in words, for the error that points at its field.

pathlib meets a path no file system takes with three kinds of error: ValueError for a NUL byte in it,
RuntimeError for a symlink loop (Python 3.11's `resolve()`), OSError for a name too long (ENAMETOOLONG) or a
loop met by `stat()`. A caller catches `UNUSABLE` around the calls that resolve or test such a path, and says
`why_unusable(exc)` at the field.
"""

from __future__ import annotations

import errno
import os

__all__ = ["UNUSABLE", "shown", "why_unusable"]

UNUSABLE = (OSError, RuntimeError, ValueError)
SHOWN_MAX = 160  # characters of a path a message shows


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


def shown(path: str | os.PathLike[str]) -> str:
    """`path` as a message shows it: a NUL byte written as \\0 (a terminal would show nothing), and the middle
    of a path of thousands of characters left out."""
    text = os.fspath(path).replace("\0", "\\0")
    return text if len(text) <= SHOWN_MAX else f"{text[:SHOWN_MAX - 40]}…{text[-30:]}"
