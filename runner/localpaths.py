"""Why a local path a manifest names (an input image, a capability file, a folder, a data file) cannot be
used, in words, for the error that points at its field.

pathlib meets a path no file system takes with three kinds of error: ValueError for a NUL byte in it,
RuntimeError for a symlink loop (Python 3.11's `resolve()`), OSError for a name too long (ENAMETOOLONG) or a
loop met by `stat()`. A caller catches `UNUSABLE` around the calls that resolve or test such a path, and says
`why_unusable(exc)` at the field. A path a run records must be UTF-8 text as well (`not_recordable`).

A process whose file-name encoding is not UTF-8 (`LC_ALL=C PYTHONUTF8=0`, a Latin-1 locale) cannot name a file
whose name holds a character beyond that encoding, and would name one holding any other character beyond ASCII in
other bytes than the UTF-8 ones every other session names it in (`caf\xe9.mp4` where a UTF-8 session looks for
`caf\xc3\xa9.mp4`, and would find its video missing): both are refused (`unnameable`). It reads the UTF-8 bytes of
a name it is given as other text, or as bytes it cannot decode (`not_recordable`). All are said as the locale's
doing (`LOCALE_FIX`), not the name's.
"""

from __future__ import annotations

import codecs
import errno
import os
import re
import sys
from pathlib import Path

__all__ = [
    "FOLDER_GONE",
    "LOCALE_FIX",
    "LONE_SURROGATE",
    "NAME_MAX",
    "PATH_MAX",
    "UNUSABLE",
    "folder_gone",
    "fs_encoding",
    "home_unexpanded",
    "limits",
    "locale_said",
    "not_recordable",
    "shown",
    "unnameable",
    "why_unusable",
    "within",
]

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


LOCALE_FIX = "run gridrun in a UTF-8 locale: LC_ALL=C.UTF-8 (or PYTHONUTF8=1) before the command"
LONE_SURROGATE = ("a lone surrogate (a \\ud800-\\udfff escape), which is not text; write the character itself, or one "
                  "\\U escape such as \\U0001F98A")


FOLDER_GONE = "the current folder was removed since this shell entered it: cd to an existing folder"


def folder_gone(path: str | os.PathLike[str]) -> str | None:
    """What is wrong with the relative `path` where the working folder it is read from was removed (a cleaned
    temporary folder, `git worktree remove`; the system then finds no relative path at all, `..` neither), None
    where it is absolute or the folder is there."""
    if os.path.isabs(path):
        return None
    try:
        os.getcwd()
    except FileNotFoundError:
        return f"{os.fspath(path)}: {FOLDER_GONE}"
    return None


def fs_encoding() -> str | None:
    """The encoding this process names files in (`sys.getfilesystemencoding`, set by the locale) where it is not
    UTF-8 (`ascii` under `LC_ALL=C PYTHONUTF8=0`, `iso8859-1`), else None."""
    name = sys.getfilesystemencoding()
    try:
        name = codecs.lookup(name).name
    except LookupError:
        pass
    return None if name == "utf-8" else name


def locale_said(what: str = "its name cannot be written in") -> str:
    """Why a name cannot be used in a process whose file-name encoding is not UTF-8, and what to do."""
    return f"{what} this process's file-name encoding ({fs_encoding() or 'utf-8'}), which the locale sets; {LOCALE_FIX}"


def unnameable(path: str | os.PathLike[str]) -> str | None:
    """Why this process cannot name `path` to the system, None when it can: said before the name is looked up.

    Where the file-name encoding is not UTF-8 (`fs_encoding`), a character beyond it cannot be written (`os.stat`
    would fail on it), and any other beyond ASCII would be written in that encoding's bytes, not the UTF-8 ones
    every other session reads: a video saved so is missing to a UTF-8 session (which would pay for it again), and
    a file named in UTF-8 is not found here. Only ASCII names are used there."""
    if fs_encoding() is None:
        return None
    try:
        os.fsencode(path)
    except UnicodeEncodeError as exc:
        return _unwritable_said(exc)
    text = os.fspath(path)
    if text.isascii():
        return None
    at = next(i for i, ch in enumerate(text) if not ch.isascii())
    return locale_said(f"its name holds {_held(text, at)}, which UTF-8 sessions name in other bytes than")


def _held(text: str, at: int) -> str:
    """The character of `text` at `at` and the part of the path it is in, escaped: `'\\xe9' (character 4 of
    caf\\xe9.mp4)`."""
    start = text.rfind(os.sep, 0, at) + 1
    end = text.find(os.sep, at)
    part = text[start:] if end < 0 else text[start:end]
    return f"'{ascii(text[at])[1:-1]}' (character {at - start + 1} of {ascii(part)[1:-1]})"


def _unwritable_said(exc: UnicodeEncodeError) -> str:
    """`locale_said` of a name the file-name encoding could not write (`exc`), naming the character it could not
    hold, and the name, escaped (`'\\xe9' (character 4 of caf\\xe9.mp4)`), as an output in that locale writes them
    (`terminal.fit`)."""
    text = exc.object
    if not isinstance(text, str) or not 0 <= exc.start < len(text):
        return locale_said()
    held = _held(text, exc.start)
    if _SURROGATE.match(text[exc.start]):
        # a half of a surrogate pair alone, as a manifest's `"\ud800"` escape writes it: no encoding writes it,
        # in any locale (a byte of a name that is not UTF-8, \udc80 to \udcff, is written back as that byte)
        return f"its name holds {held}, {LONE_SURROGATE}"
    return locale_said(f"its name holds {held}: it cannot be written in")


def why_unusable(exc: BaseException) -> str:
    """What is wrong with a path that raised `exc` (one of `UNUSABLE`)."""
    if isinstance(exc, UnicodeEncodeError):
        return _unwritable_said(exc)
    if isinstance(exc, UnicodeError):
        return locale_said()
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
    \\udcff) is refused rather than recorded as another name, which no later reader would find on disk. A relative
    `path` is judged with the folder it is in, as the run records it: a folder whose name the locale cannot read
    (`LC_ALL=C` in `dé/`) is no run's either.
    """
    if not os.path.isabs(path):
        try:
            path = os.path.abspath(path)
        except OSError:  # the current folder removed: judged as given
            pass
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError as exc:
        if fs_encoding() is not None:  # bytes read in a locale that is not UTF-8: UTF-8 ones too
            try:
                os.fsencode(path).decode("utf-8")
            except (UnicodeError, ValueError):
                pass
            else:
                return locale_said("it is UTF-8 text, unreadable in")
        code = ord(exc.object[exc.start])
        what = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}, a lone surrogate"
        return (f"it is not UTF-8 text ({what}), and a run records it as text in its state and reports; rename "
                "the file or folder whose name holds it")
    text = os.fspath(path)
    if fs_encoding() is not None and not text.isascii():  # a Latin-1 locale: every byte reads as a character
        try:
            os.fsencode(text).decode("utf-8")
        except UnicodeError:  # written in the manifest (`outputs_dir: caf\xe9`), or a name of Latin-1 bytes
            return unnameable(text)
        return locale_said("it is UTF-8 text, unreadable in")  # a UTF-8 name (`\xe9`) read as two characters
    return None


def home_unexpanded(path: str) -> str | None:
    """What to say of a path a manifest names (a data file, an input image) that is not there and starts with a
    home folder as a shell writes it, `~` or `~/...` (this user's), or `~name/...` of a user this system has
    (`os.path.expanduser` expands it): the ~ is not expanded, and the path it would be; None for any other (a name
    starting with ~ of no user, `~drafts`, is a name like any other)."""
    if not path.startswith("~"):
        return None
    home = os.path.expanduser(path)
    user = path[1:].split("/", 1)[0]
    if user and home == path:
        return None
    whose = "no home folder" if not user else f"not {shown(user)}'s home folder"
    meant = f" ({shown(home)})" if home != path else ""
    return (f"~{shown(user)} is not expanded: it is {whose} here, and paths are relative to the manifest's folder; "
            f"write the absolute path{meant}, or one relative to the manifest")


def shown(path: str | os.PathLike[str]) -> str:
    """`path` as a message shows it: a NUL byte written as \\0 (a terminal would show nothing), a byte that is
    not UTF-8 as U+FFFD (the replacement character), another lone surrogate (a manifest's `"\\ud800"` escape) as
    that escape, and the middle of a path of thousands of characters left out."""
    text = _SURROGATE.sub(_surrogate_shown, os.fspath(path).replace("\0", "\\0"))
    return text if len(text) <= SHOWN_MAX else f"{text[:SHOWN_MAX - 40]}…{text[-30:]}"


def _surrogate_shown(m: re.Match[str]) -> str:
    """A lone surrogate as `shown` writes it: U+FFFD for a byte of a name that is not UTF-8 (\\udc80 to \\udcff,
    as Python reads one), its escape for any other."""
    return "\ufffd" if "\udc80" <= m[0] <= "\udcff" else ascii(m[0])[1:-1]


def within(path: str, folder: str) -> str | None:
    """`path` (absolute, as a job's parameters hold a local image) inside `folder`, relative to it, as the
    manifest in `folder` would write it ("imgs/fox.png"); None when it is not inside. `folder` is taken as written
    and as its real path (an image's path has its links resolved, the manifest's folder not)."""
    for base in dict.fromkeys((folder, os.path.realpath(folder))):
        try:
            inner = Path(path).relative_to(base)
        except ValueError:
            continue
        if inner.parts and ".." not in inner.parts:
            return inner.as_posix()
    return None
