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
import sys

__all__ = ["NAME_MAX", "PATH_MAX", "UNUSABLE", "limits", "not_recordable", "shown", "why_unusable"]

UNUSABLE = (OSError, RuntimeError, ValueError)
SHOWN_MAX = 160  # characters of a path a message shows
_SURROGATE = re.compile("[\ud800-\udfff]")

PATH_MAX = 4096
"""The longest path, in bytes with its terminating NUL, that Linux opens: what `limits` takes when the system
does not say (1024 on macOS, its MAXPATHLEN)."""

NAME_MAX = 255
"""The longest file or folder name, in bytes, of the usual file systems (ext4, APFS, NTFS counts UTF-16): what
`limits` takes when the system does not say."""


def limits(folder: str | os.PathLike[str]) -> tuple[int, int]:
    """(PATH_MAX, NAME_MAX) of the file system `folder` is on, or would be made on: as the system tells them for
    its nearest folder that is there (`pathconf`), 143-byte names on eCryptfs, 1,024-byte paths on macOS; the
    usual limits when it does not tell."""
    probe = os.path.abspath(os.fspath(folder))
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    path_max = 1024 if sys.platform == "darwin" else PATH_MAX
    return _asked(probe, "PC_PATH_MAX", path_max), _asked(probe, "PC_NAME_MAX", NAME_MAX)


def _asked(path: str, name: str, default: int) -> int:
    """`os.pathconf(path, name)`, or `default` when the system has no answer (no limit, an error, no pathconf)."""
    try:
        value = os.pathconf(path, name)
    except (OSError, ValueError, AttributeError):
        return default
    return value if value > 0 else default


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
