"""The `gridrun` command's first lines: Ctrl-C, SIGTERM and a hangup are taken before anything else is imported.

gridrun's imports, its planning and the opening of its state take a quarter to half a second. A signal
then ended the command as it does any other: SIGTERM killed it (exit 143), Ctrl-C printed a traceback of
whichever import it fell in. From here, both end it as an interrupted run does: "interrupted", exit 130.
Nothing is sent before the run starts, and the state is only written in transactions, which an interrupt
rolls back; once the run's own handling is in place (the executor: the first Ctrl-C stops sending, the
second detaches), it takes over.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading

INTERRUPTED = 130
# A signal met where `interrupt` must not raise is taken again this many seconds later.
RETRY = 0.01
# Code in which a KeyboardInterrupt must not be raised: importlib's own (raised between its taking a module's
# lock, or the import lock, and the `try` that lets it go, it leaves the lock held for good, and a thread that
# imports later, the live report's, waits on it forever) and weakref callbacks (where it is printed as ignored
# and the signal is lost: the run went on to its end).
_NOT_HERE = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")
_NOT_IN = ("/_weakrefset.py", "/weakref.py")


# A hangup (the terminal closed, an SSH session dropped), where there is one.
HANGUP = getattr(signal, "SIGHUP", None)


def take_signals() -> None:
    """Ctrl-C and SIGTERM raise KeyboardInterrupt (`interrupt`), but where a launcher set them to be ignored,
    and both are unblocked: a launcher that left them blocked (the mask passes on to the programs it starts)
    would keep them from gridrun, a signal sent before this point is taken here. So is a hangup where it would
    kill the process (not under nohup, which ignores it), as the run itself takes it."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupt)
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
        signal.signal(signal.SIGTERM, interrupt)
    taken = {signal.SIGINT, signal.SIGTERM}
    if HANGUP is not None and signal.getsignal(HANGUP) is signal.SIG_DFL:
        signal.signal(HANGUP, interrupt)
        taken.add(HANGUP)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, taken)


def _handled() -> tuple[int, ...]:
    """The signals the command ends on: Ctrl-C, SIGTERM, and a hangup where `take_signals` took it."""
    hangup = () if HANGUP is None or signal.getsignal(HANGUP) is not interrupt else (HANGUP,)
    return (signal.SIGINT, signal.SIGTERM, *hangup)


# From a run's recorded end until the command has said it (`hold`): a signal is let go, not raised.
_held = False
# The process is the `gridrun` command (`entry`), whose exit takes the signals once it has said its end.
_command = False


def is_command() -> bool:
    """Whether this process is the `gridrun` command (`entry`), not a program using gridrun as a library."""
    return _command


def hold(on: bool = True) -> None:
    """Once a run has recorded its end (`Executor`), until the command has said it (`cli.main` begins the next
    command unheld; the exit's own handling takes over after it): in the `gridrun` command, Ctrl-C, SIGTERM and a
    hangup are let go by `interrupt`, so that one pressed again and again cuts none of the lines that say what the
    run left and what to run next. The run has ended: there is nothing left to stop. Elsewhere (gridrun as a
    library) nothing is held."""
    global _held
    _held = on and _command


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within: `interrupt` raises KeyboardInterrupt even where the command holds signals (`hold`): what may be cut
    short at the run's end, its final report."""
    global _held
    was, _held = _held, False
    try:
        yield
    finally:
        _held = was


# While the command waits for the reader of its last lines (`reading`): the code it then exits with on a signal.
_leave_code: int | None = None


@contextlib.contextmanager
def reading(code: int) -> Iterator[None]:
    """Within: the `gridrun` command, its run's end recorded (or no run begun), waits for the reader of its lines to
    take the last ones (a full pipe): a reader that never reads (a hung log shipper) would hold it for ever. Ctrl-C,
    SIGTERM or a hangup then end it at once with `code`, the run's own, what the reader has not read given up.
    Elsewhere (gridrun as a library) it waits."""
    global _leave_code
    if not _command:
        yield
        return
    was, _leave_code = _leave_code, code
    try:
        yield
    finally:
        _leave_code = was


def interrupt(signum: int, frame: FrameType | None) -> None:
    """The command's handler of Ctrl-C and SIGTERM until the run's own takes over (and once it has put this one
    back): KeyboardInterrupt, as Python's for Ctrl-C, but not where it would leave an import lock held or be
    lost (`_NOT_HERE`, `__del__`): there it is raised RETRY seconds later (`_later`), out of that code by then;
    nor once a run's end is recorded, until the command has said it (`hold`); while the command waits for a
    reader to take its last lines (`reading`), it ends at once."""
    if _leave_code is not None:
        os._exit(_leave_code)  # what is still buffered for the stalled reader is given up with the process
    if _held:
        return
    if frame is not None and _unsafe(frame):
        signal.signal(signal.SIGALRM, lambda _, later: _later(signum, later))
        signal.setitimer(signal.ITIMER_REAL, RETRY)
        return
    global _raised
    _raised = signum if _command else None
    raise KeyboardInterrupt


# The signal `interrupt` last raised as KeyboardInterrupt in the `gridrun` command, until a run or a cancel takes it
# (`unheeded`).
_raised: int | None = None


def unheeded() -> int | None:
    """The signal `interrupt` raised as KeyboardInterrupt since the command began, taken: a run (or a cancel) that
    gets as far as putting its own signal handling in place (`signals.taken`) was not ended by it, as code it ran let
    the KeyboardInterrupt go (on uvloop, a protocol's callback it came out of closes that connection, as any error
    does, and nothing else: raised once the response was read, the request goes on), and sends it again, to its
    own handling, so that it stops as it would have."""
    global _raised
    signum, _raised = _raised, None
    return signum


def _later(signum: int, frame: FrameType | None) -> None:
    """`signum`, put off by `interrupt`, to whichever handler now holds it: this one, where the code now running
    is judged again, or the run's own (which stops the run as for any signal), or the exit's."""
    if signal.getsignal(signum) is interrupt:
        interrupt(signum, frame)
    else:
        signal.raise_signal(signum)


def _unsafe(frame: FrameType) -> bool:
    code = frame.f_code
    if code.co_filename in _NOT_HERE or code.co_filename.endswith(_NOT_IN) or code.co_name == "__del__":
        return True
    # A class being made calls its attributes' __set_name__ (a dataclass's fields): an exception raised within one
    # comes out as a RuntimeError ("Error calling __set_name__"), a crash, not the KeyboardInterrupt it was.
    at: FrameType | None = frame
    while at is not None:
        if at.f_code.co_name == "__set_name__":
            return True
        at = at.f_back
    return False


def refuse_other_systems(prog: str = "gridrun") -> None:
    """Exit 2 with one line on a system gridrun does not run on (Windows): its runner lock, its signals and its
    test of whether a run's process lives are POSIX's (there, that test would even end the run it looks at)."""
    if os.name != "posix":
        sys.stderr.write(f"error: {prog} runs on Linux and macOS only, not on {sys.platform}; on Windows, "
                         "run it under WSL\n")
        sys.stderr.flush()
        sys.exit(2)


def entry() -> None:
    """The `gridrun` console script (and `python -m runner.cli`): signals first, then `cli.main`, then an
    exit that skips the interpreter's teardown.

    By the time `main` returns, everything gridrun wrote is committed, fsynced and closed; tearing down a
    few hundred modules and a run's objects would only free memory the OS takes back anyway (0.1-0.2 s
    after a run). The download's disk threads are ended first, and other threads given a moment; one still
    alive then has the ordinary exit, which waits for it.
    """
    global _command
    _fill_closed_streams()
    refuse_other_systems()
    _command = True
    code = INTERRUPTED

    def leave(signum: int, frame: object) -> None:  # the command's code, once `main` has returned it
        _flush()
        os._exit(code)

    try:
        take_signals()
        # The library itself (httpx too, without its command line) is imported by the command that uses it.
        try:
            from .cli import main
        except ImportError as exc:  # rich, which the command line itself needs, missing: said as in `main`
            said = missing_package(exc)
            if said is None:
                raise
            code = _say_missing(said, sys.argv[1:])
        else:
            code = main()
    except KeyboardInterrupt:  # before `main` or after it, where `main` does not catch it
        code = INTERRUPTED
        # The goodbye may wait for a reader that never reads (the interrupt may have cut a line written to it):
        # a second signal ends the command at once, what is left unsaid given up. The `end` event first, for a
        # script reading JSON lines, then the line for the person.
        with reading(INTERRUPTED):
            for signum in _handled():
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    signal.signal(signum, interrupt)
            end_interrupted(sys.argv[1:])
            _say_interrupted()
    # Everything is recorded: a signal while other threads end ends the command with its own code, at once
    # (not an interrupt; nor, in the interpreter's teardown, which puts SIGTERM back to killing it, exit 143).
    try:
        for signum in _handled():
            if signal.getsignal(signum) is not signal.SIG_IGN:
                signal.signal(signum, leave)
    except KeyboardInterrupt:  # a signal before `leave` took it: the same, at once
        _flush()
        os._exit(code)
    if _threads_left():
        sys.exit(code)  # the ordinary exit, which waits for them
    _flush()
    os._exit(code)


# The packages gridrun depends on, by the name they are imported as: their distribution's requirement (as
# pyproject.toml declares it) and what else does without them. Here, where nothing is imported, so that a package
# the command line itself imports (rich) is said as any other.
DEPENDENCIES = {
    "av": ("av>=17", ""), "aiohttp": ("aiohttp>=3.10", ", or set GRIDRUN_HTTP=httpx to send over httpx instead"),
    "numpy": ("numpy>=1.26", ""), "PIL": ("pillow>=10.1", ""), "httpx": ("httpx>=0.27", ""),
    "jsonschema": ("jsonschema>=4.20", ""), "rich": ("rich>=13.7", ""), "jinja2": ("jinja2>=3.1", ""),
    "markupsafe": ("markupsafe>=2.0", ""),  # jinja2's, and the report's escaping
    "yaml": ("pyyaml>=6.0.1", ""), "anyio": ("anyio>=4.3", ""), "sniffio": ("sniffio>=1.3", ""),
    "starlette": ("starlette>=0.37", ""), "uvicorn": ("uvicorn>=0.29", ""), "regex": ("regex>=2024.4", ""),
}
# The exit code of a command that needs a package the environment lacks: nothing gridrun did wrong, as for bad input.
MISSING_DEPENDENCY = 2
# What an import says when the process has no memory left to map the library in: not a package to reinstall.
NO_MEMORY_TO_IMPORT = ("failed to map segment", "Cannot allocate memory")


def missing_package(exc: BaseException) -> str | None:
    """What to say of `exc` if it is a package gridrun depends on that is not installed or does not import (an
    install with `--no-deps`, a package another tool removed or broke): the package and the command that installs
    it, not a bug to report. None for any other error (memory run out as a library was mapped in included)."""
    if not isinstance(exc, ImportError) or not exc.name or any(s in str(exc) for s in NO_MEMORY_TO_IMPORT):
        return None
    from .limits import too_many_open_files

    if too_many_open_files(exc):  # its files could not be opened: the limit is to raise (`cli._unexpected_line`)
        return None
    top = exc.name.partition(".")[0]
    if top not in DEPENDENCIES:
        return None
    requirement, instead = DEPENDENCIES[top]
    name = requirement.partition(">")[0]
    if isinstance(exc, ModuleNotFoundError):
        return f"gridrun needs the package {name}, which is not installed: `pip install '{requirement}'`{instead}"
    return (f"gridrun needs the package {name}, which does not import ({exc}): "
            f"`pip install --force-reinstall '{requirement}'`{instead}")


def _say_missing(said: str, argv: Sequence[str]) -> int:
    """`said` (`missing_package`) of a package the command line itself could not import, said without it: one line
    on standard error, and the `end` event of JSON lines (`writes_json_lines`), as `main` says it of any other."""
    try:
        print(f"error: {said}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # standard error closed: the exit code says it
        pass
    write_end(argv, None, MISSING_DEPENDENCY, said)
    return MISSING_DEPENDENCY


def _words(argv: Sequence[str]) -> list[str]:
    """A command line's words before a `--` (past which words are no options)."""
    return list(argv[:argv.index("--")] if "--" in argv else argv)


def writes_json_lines(argv: Sequence[str]) -> bool:
    """Whether a command line, even one argparse refuses, asks for JSON lines that end with an `end` event:
    `run` or `retry` with --json, `status --watch --json` (not past a `--`, where words are no options). Read
    from the words alone, before anything is imported: a Ctrl-C then still ends the lines."""
    words = _words(argv)
    if "--json" not in words:
        return False
    return words[0] in ("run", "retry") or (words[0] == "status" and "--watch" in words)


def writes_json_object(argv: Sequence[str]) -> str | None:
    """The command of a command line, even one argparse refuses, that prints one JSON document on standard output:
    `plan --json`, `status --json` (with or without --runs; not --watch, whose lines end with an `end` event) and
    `matrix --json`; None for any other. Where the command fails before it wrote its document (a usage error, an
    interrupt while it loads, any error), its error object (`error_object`) is printed in its place, so that a
    script reading standard output reads JSON whatever happened."""
    words = _words(argv)
    if "--json" not in words:
        return None
    if words[0] in ("plan", "matrix") or (words[0] == "status" and "--watch" not in words):
        return words[0]
    return None


# The options of `plan` that take a value after them (`plan_manifest`), as its parser has them.
PLAN_VALUED = ("--max-jobs", "--budget", "--key", "--code", "--failure-retries")


def plan_manifest(argv: Sequence[str]) -> str | None:
    """The manifest a `plan` command line names, read from its words, where argparse has not read them (an
    interrupt as the command loads) or refused them (`--budget x`, an unknown option): the first word that is no
    option nor an option's value, or the one after `--`; made absolute, as the plan's own JSON names it
    (`Manifest.path`). None where it names none."""
    words = list(argv[1:]) if argv[:1] == ["plan"] else []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            return os.path.abspath(words[i + 1]) if i + 1 < len(words) else None
        if word == "-" or not word.startswith("-"):
            return os.path.abspath(word)
        i += 2 if word in PLAN_VALUED else 1
    return None


def error_object(command: str, manifest: str | None, code: int, errors: Sequence[str]) -> dict[str, object]:
    """The JSON object `command` (`writes_json_object`) prints in place of its document when it fails: `plan`'s
    `{"format", "manifest", "exit_code", "errors"}` (the manifest's absolute path, as the plan names it),
    `status`'s `{"run": null, "manifest", "status": null, "exit_code", "errors"}` (the manifest's name),
    `matrix`'s `{"manifest", "file", "exit_code", "errors"}` (the file's absolute path, as `plan`'s, and the file
    as given); `manifest` None where none was read."""
    if command == "plan":
        return {"format": "gridrun.plan/1", "manifest": manifest, "exit_code": code, "errors": list(errors)}
    if command == "status":
        return {"run": None, "manifest": manifest, "status": None, "exit_code": code, "errors": list(errors)}
    absolute = manifest
    if manifest is not None:
        with contextlib.suppress(OSError):  # the working folder removed: as given
            absolute = os.path.abspath(manifest)
    return {"manifest": absolute, "file": manifest, "exit_code": code, "errors": list(errors)}


_end_written = False
# A command that prints one JSON document (`writes_json_object`) has begun writing it (`document_begun`).
_document_begun = False
# The `end` event given to the thread that writes the lines (`end_queued`), set once written (`end_written`).
_end_pending: threading.Event | None = None


def lines_begin() -> None:
    """A command begins (`cli.main`, which a program may call more than once): no `end` event written yet."""
    global _end_written, _end_pending, _document_begun
    _end_written = False
    _end_pending = None
    _document_begun = False
    hold(False)
    unheeded()


def document_begun() -> None:
    """The command began writing its JSON document, or its own error object, on standard output: no error object
    (`write_end`) follows it."""
    global _document_begun
    _document_begun = True


def end_queued() -> None:
    """An `end` event was given to the thread that writes the lines, behind lines a stalled reader has not taken
    yet: `end_interrupted` waits for it (not a second one; and not the process ended with it unwritten)."""
    global _end_pending
    import threading

    if _end_pending is None:
        _end_pending = threading.Event()


def end_written() -> None:
    """An `end` event was written (or its write failed, the reader gone): `end_interrupted` writes no second one."""
    global _end_written
    _end_written = True
    if _end_pending is not None:
        _end_pending.set()


def end_interrupted(argv: Sequence[str], manifest: str | None = None) -> None:
    """The `end` event of JSON lines (`writes_json_lines`) an interrupt ended before they wrote one (the command
    still importing, parsing its arguments): a script reading them waits for it. `interrupted`, as a run
    interrupted later says; a watch's null, as for any error that stops it. Of a command that prints one JSON
    document (`writes_json_object`) and has not begun it, its error object, of `manifest` (as `write_end`)."""
    if _end_written or _document_begun:
        return
    if writes_json_object(argv) is not None:
        write_end(argv, None, INTERRUPTED, "interrupted", manifest=manifest)
        return
    if not writes_json_lines(argv):
        return
    if _end_pending is not None:  # the run's own, on its way behind lines the reader has yet to take
        with reading(INTERRUPTED):
            _end_pending.wait()
        return
    write_end(argv, None if argv[0] == "status" else "interrupted", INTERRUPTED, "interrupted")


def write_end(argv: Sequence[str], status: str | None, code: int, error: str | Sequence[str], *,
              manifest: str | None = None, **more: object) -> None:
    """The `end` event of JSON lines (`writes_json_lines`) that end before the command wrote one: `status`,
    exit `code`, `error` the line (or lines) standard error gives; nothing where one is written or on its way.
    Of a command that prints one JSON document (`writes_json_object`) and has not begun it, its error object
    instead (`error_object`, of `manifest`; `more` fields added, `errors_not_listed`, `warnings`)."""
    if _end_written or _end_pending is not None:
        return
    import json

    errors = [error] if isinstance(error, str) else list(error)
    command = writes_json_object(argv)
    if command is not None:
        if _document_begun:
            return
        document_begun()
        if command == "plan" and manifest is None:  # the command line not read, or refused: its words name it
            manifest = plan_manifest(argv)
        text = json.dumps({**error_object(command, manifest, code, errors), **more}, indent=2, default=str)
    elif writes_json_lines(argv):
        text = json.dumps({"event": "end", "status": status, "exit_code": code, "errors": errors})
    else:
        return
    if command is None:
        end_written()
    try:
        print(text, flush=True)
    except (OSError, ValueError):  # standard output gone: the exit code says it
        pass


def _threads_left(wait: float = 2.0) -> bool:
    """Threads other than this one, and not daemons, still alive once the download's disk threads are ended and
    the others given up to `wait` seconds to end (a worker winding down as its event loop closed)."""
    import threading
    import time

    download = sys.modules.get("runner.providers.download")
    if download is not None:
        download.close_disk_threads()
    deadline = time.monotonic() + wait
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    return any(t is not threading.current_thread() and not t.daemon and t.is_alive() for t in threading.enumerate())


def _fill_closed_streams() -> None:
    """Standard input, output or error closed by the launcher (`>&-`, `2>&-`: Python then has None for it) is
    opened on the null device, so that no file gridrun opens (the state) takes the closed descriptor's number,
    where a write meant for the stream would land in it. Standard output is opened there for reading only: what
    a command writes there fails as a write to a closed descriptor does (`Bad file descriptor`), and is said as
    a full disk is (`outputs.lost`: the command exits 1, not 0 with its output lost); one that writes nothing
    there ends with its own code. Standard error's writes go nowhere: the command ends with its own code. In
    order: the null device takes the lowest free number, the first one closed."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
        except OSError:
            devnull = os.open(os.devnull, os.O_RDONLY if fd == 1 else os.O_RDWR)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
            if getattr(sys, name) is None:
                setattr(sys, name, open(fd, mode, closefd=False))  # noqa: SIM115 (the stream of the process)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            continue
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def _say_interrupted() -> None:
    """What `main` says of a KeyboardInterrupt, said without rich (it may not be imported yet)."""
    try:
        print("interrupted", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # standard error closed: the exit code says it
        pass
