"""The process's limits as they show in errors: too many open files (EMFILE) said with what to do."""

from __future__ import annotations

import errno
import os

try:
    import resource
except ImportError:  # Windows: no RLIMIT_NOFILE
    resource = None  # type: ignore[assignment]

_TOO_MANY = "Too many open files"
FILES_RAN_OUT = "too many open files: raise `ulimit -n`"  # how `open_files_fix` begins, for those who look for it


def too_many_open_files(exc: BaseException) -> bool:
    """`exc` says the process (EMFILE) or the system (ENFILE) has no file descriptor left: a socket, a file, a
    library loaded late (an ImportError then) could not be opened."""
    if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
        return True
    return isinstance(exc, (OSError, ImportError)) and _TOO_MANY in str(exc)


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


def open_files_fix() -> str:
    """What to do when files run out: raise the limit (its value now said), or open fewer at once."""
    now = ""
    if resource is not None:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        now = f" (now {'unlimited' if soft == resource.RLIM_INFINITY else soft})"
    return f"{FILES_RAN_OUT}{now} or lower run.concurrency"


def os_reason(exc: OSError) -> str:
    """Why `exc` stopped a file from being opened or written, as the user reads it: the system's words, but for
    too many open files, said with what to do (`open_files_fix`)."""
    if too_many_open_files(exc):
        return open_files_fix()
    return str(exc.strerror or exc)
