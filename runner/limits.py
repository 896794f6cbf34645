"""The process's limits as they show in errors: too many open files (EMFILE) said with what to do."""

from __future__ import annotations

import errno
import os
import stat
import sys

try:
    import resource
except ImportError:  # Windows: no RLIMIT_NOFILE
    resource = None  # type: ignore[assignment]

_TOO_MANY = "Too many open files"
FILES_RAN_OUT = "too many open files: raise `ulimit -n`"  # how `open_files_fix` begins, for those who look for it
# How `sticky_said` goes on, for those who look for it (the advice after a run that could not save its videos).
STICKY = "in a sticky folder"
# What the system says of a file refused for its size (EFBIG): a file-size limit, not a full disk.
FILE_TOO_LARGE = os.strerror(errno.EFBIG)


def file_size_limit() -> str | None:
    """The largest file this process may write (RLIMIT_FSIZE, `ulimit -f`), in words; None when unlimited."""
    if resource is None:
        return None
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if soft == resource.RLIM_INFINITY:
        return None
    return f"{soft:,} bytes" if soft < 1024 * 1024 else f"{soft / (1024 * 1024):,.1f} MiB"


def file_size_fix(limit: str | None = None) -> str:
    """What to do about a file refused for its size (EFBIG, "File too large"): raise the file-size limit of the
    process, `limit` (`file_size_limit`) where it is known; where this process has none (the limit was another
    process's, the one that wrote), the limit said as such, or the file system's largest file."""
    if limit is not None:
        return f"this process may write files of at most {limit} (`ulimit -f`): raise that limit"
    return ("a file-size limit (`ulimit -f` of the process that wrote it) or the largest file its file system "
            "takes: raise that limit, or use another disk")


def too_many_open_files(exc: BaseException) -> bool:
    """`exc` says the process (EMFILE) or the system (ENFILE) has no file descriptor left: a socket, a file, a
    library loaded late (an ImportError then) could not be opened. A module imported late whose file could not be
    opened may fail as a name its package lacks (Pillow's plugins, loaded at the first image saved: "cannot import
    name 'ImageFile' from 'PIL'"): an ImportError met with the process out of descriptors (`files_ran_out`) is
    one of them, not a package to reinstall. So is an error raised while handling one (uvloop's loop, which could
    not open its signals' socket pair, then refusing to close: "Cannot close a running event loop")."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.EMFILE, errno.ENFILE) or _TOO_MANY in str(exc)
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
            return True
        if isinstance(exc, ImportError) and (_TOO_MANY in str(exc) or files_ran_out()):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def files_ran_out() -> bool:
    """The process has (about) no file descriptor left now: a file cannot be opened (EMFILE, ENFILE), or those open
    are within a few of its limit (RLIMIT_NOFILE). What tells an error that names no cause (SQLite's "unable to
    open database file") met because descriptors ran out from one met for another reason (a folder not writable).
    """
    try:
        os.close(os.open(os.devnull, os.O_RDONLY))
    except OSError as exc:
        return exc.errno in (errno.EMFILE, errno.ENFILE)
    if resource is None:
        return False
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return False
    for listing in ("/proc/self/fd", "/dev/fd"):
        try:
            count = len(os.listdir(listing))
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                return True
            continue
        return count >= soft - max(8, soft // 10)
    return False


# The commands whose files open with their concurrency (a connection and a video being written a job): told to
# lower it too
CONCURRENT_COMMANDS = frozenset({"run", "retry"})
# The gridrun command in progress, the first word of its command line (set by `cli.main`); "" for a program calling
# the library
command_in_progress = ""


def open_files_fix(command: str | None = None) -> str:
    """What to do when files run out: raise the limit (its value now said), or, for `run` and `retry`, open fewer
    at once (lower run.concurrency). `command`: the gridrun command in progress, by default the one the command line
    gave (`command_in_progress`); a program calling the library, which gives none, is told as a run is."""
    now = ""
    if resource is not None:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        now = f" (now {'unlimited' if soft == resource.RLIM_INFINITY else soft})"
    if command is None:
        command = command_in_progress or "run"
    return f"{FILES_RAN_OUT}{now}{' or lower run.concurrency' if command in CONCURRENT_COMMANDS else ''}"


def code_file(path: str | os.PathLike[str]) -> bool:
    """`path` is a file of gridrun's own package, of Python's standard library or of a library installed beside
    it (site-packages, the user's own): one a module imported late, or a library's data, is read from, never a
    user's file (an output, the state), so that an error opening it names no path the user has to look at."""
    try:
        here = os.path.realpath(os.fspath(path))
    except (TypeError, ValueError, OSError):
        return False
    return any(here.startswith(folder + os.sep) for folder in _code_folders())


def _code_folders() -> list[str]:
    """The folders `code_file` reads as code's: gridrun's package, the standard library's, site-packages'."""
    folders = [os.path.dirname(os.path.abspath(__file__)), os.path.dirname(os.path.abspath(os.__file__))]
    site = sys.modules.get("site")  # not there under `python -S`
    if site is not None:
        try:
            folders += [*site.getsitepackages(), site.getusersitepackages()]
        except (AttributeError, OSError):  # an old virtualenv's own `site` lacks them
            pass
    return [os.path.realpath(folder) for folder in folders if folder]


def statvfs_near(path: str | os.PathLike[str]) -> os.statvfs_result | None:
    """`os.statvfs` of the disk holding `path`, or the nearest folder above it that is there (a file not made yet,
    a folder removed); None where the system has no `statvfs` (Windows) or no folder up to the root answers."""
    statvfs = getattr(os, "statvfs", None)
    if statvfs is None:
        return None
    here = os.path.abspath(path)
    while True:
        try:
            return statvfs(here)
        except OSError:
            up = os.path.dirname(here)
            if up == here:
                return None
            here = up


def os_reason(exc: OSError) -> str:
    """Why `exc` stopped a file from being opened or written, as the user reads it: the system's words, but for
    too many open files, said with what to do (`open_files_fix`)."""
    if too_many_open_files(exc):
        return open_files_fix()
    said = str(exc.strerror or exc)
    if exc.errno in (errno.EPERM, errno.EACCES):
        for name in (exc.filename2, exc.filename):
            sticky = sticky_said(name) if isinstance(name, (str, os.PathLike)) else None
            if sticky is not None:
                return f"{said}: {sticky}"
    return said


def sticky_said(path: str | os.PathLike[str]) -> str | None:
    """Why the file `path` (said before it) cannot be replaced or removed by this user when its folder has the
    sticky bit (`chmod +t`, as a team's drop folder like /tmp): the file is another user's, and there only its
    owner or the folder's may rename over it, whatever the folder's write permission says; None when that is not
    the case."""
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None:
        return None
    try:
        folder = os.stat(os.path.dirname(os.path.abspath(path)))
        held = os.stat(path, follow_symlinks=False)
    except (OSError, ValueError):
        return None
    me = geteuid()
    if not folder.st_mode & stat.S_ISVTX or me in (0, held.st_uid, folder.st_uid):
        return None
    return f"the file is owned by uid {held.st_uid}, {STICKY} (chmod +t), where only a file's owner may replace it"
