"""What gridrun says of an error it did not expect (a bug in itself): a line free of API keys, and a crash file
holding the whole traceback, the versions and the command line, for a bug report that can be acted on.

An exception's text may hold anything its raiser had at hand (a request's headers, say): every text said or
recorded of one goes through `without_keys` first, as a provider's answers go through `without_secret`.
Writing the crash file is best effort: a folder that cannot be written leaves the error line without it, never
another error in its place.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

# Environment variables whose value is an API key besides those named `*_API_KEY`: a provider's `api_key_env`
# of another name is added as the provider first reads it (`key_env_read`).
_KEY_ENVS: set[str] = {"SIM_API_KEY", "LUMENFALL_API_KEY"}
# Keys shorter than this are not replaced: "[redacted]" in place of every "ab" would garble the text and hide nothing.
MIN_SECRET = 4
# The state folder this process opened last (`state.Store`), where a crash file goes; None: none opened yet.
state_folder: Path | None = None
# Where a crash file goes with no state folder at hand; None: the system's temporary folder.
fallback_folder: Path | None = None
# The command line of the command this process carries out (`cli.main`), for the crash file.
command_line: Sequence[str] = ()
# What a line said of a bug starts with, after what it stopped (`unexpected error, `, `report not written, `).
BUG = "a bug in gridrun"
# The crash file written for each exception, by its id (the exception kept, so that the id is not reused): the
# same bug met by two handlers on its way up is written once.
_written: dict[int, tuple[BaseException, Path | None]] = {}


def without_secret(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` (the API key) replaced by "[redacted]"."""
    return text.replace(secret, "[redacted]") if secret and len(secret) >= MIN_SECRET else text


def key_env_read(name: str) -> None:
    """`name` holds an API key this process sends: its value is kept out of what `without_keys` returns."""
    _KEY_ENVS.add(name)


def secrets() -> list[str]:
    """The API keys this process may hold, from the environment: the values of the variables providers read
    their keys from (`*_API_KEY`, SIM_API_KEY, and any other a provider read), longest first (so that a key
    holding another is replaced whole)."""
    found = {os.environ.get(name, "").strip() for name in _KEY_ENVS}
    found |= {value.strip() for name, value in os.environ.items() if name.upper().endswith("_API_KEY")}
    return sorted((s for s in found if len(s) >= MIN_SECRET), key=len, reverse=True)


def key_values(least: int = 12) -> dict[str, str]:
    """The API keys of `secrets`, each with the variable that holds it, those of at least `least` characters: a
    key found in a text a user wrote (a manifest) is named by its variable, never shown; a short value (a test
    key, `x`) would be found in any text."""
    names = sorted(_KEY_ENVS | {name for name in os.environ if name.upper().endswith("_API_KEY")})
    return {value: name for name in names if len(value := os.environ.get(name, "").strip()) >= least}


def without_keys(text: str) -> str:
    """`text` with every API key this process may hold replaced by "[redacted]" (`secrets`)."""
    for secret in secrets():
        text = without_secret(text, secret)
    return text


def exception_text(exc: BaseException) -> str:
    """`exc` as one line names it, "Type: message" (the type alone for an empty message), free of API keys."""
    return without_keys(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


def raised_at(exc: BaseException) -> str:
    """Where `exc` was raised, as " (at runner/module.py:LINE in function)"; "" where its traceback is gone."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    path = Path(last.filename)
    shown = "/".join(path.parts[path.parts.index("runner"):]) if "runner" in path.parts else path.name
    return f" (at {shown}:{last.lineno} in {last.name})"


def crash_file(exc: BaseException, argv: Sequence[str] | None = None, *, near: str | Path | None = None) -> Path | None:
    """Write what a bug report needs of `exc` to a new file and return its path: the whole traceback (its causes
    too), gridrun's and Python's versions, the platform and the command line, every key replaced (`without_keys`).
    It goes to the state folder this process opened (`state_folder`), else `.gridrun/` beside the manifest `near`
    where there is one, else `fallback_folder` (the system's temporary folder); None where no file could be written there. The
    command line is `argv`, else `command_line`. Written once for an exception: asked again, the same path."""
    if id(exc) in _written:
        return _written[id(exc)][1]
    path = _write_crash_file(exc, command_line if argv is None else argv, near)
    _written[id(exc)] = (exc, path)
    return path


def said_crash_file(path: Path | None) -> str:
    """How a bug's line names its crash file `path`: relative to the working folder where it is inside it."""
    if path is None:
        return ""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
    except Exception:  # noqa: BLE001 (the working folder gone)
        return str(path)


def bug_said(exc: BaseException, argv: Sequence[str] | None = None, *, near: str | Path | None = None) -> str:
    """What a line says of `exc`, a bug in gridrun: "a bug in gridrun: Type: message (at where); please report it
    with this line and <its crash file>" (with this line alone where none could be written), free of keys."""
    path = crash_file(exc, argv, near=near)
    with_file = f" and {said_crash_file(path)}, which holds its traceback" if path is not None else ""
    return f"{BUG}: {exception_text(exc)}{raised_at(exc)}; please report it with this line{with_file}"


def _write_crash_file(exc: BaseException, argv: Sequence[str], near: str | Path | None) -> Path | None:
    try:
        import tempfile
        import time
        import traceback

        folders = [f for f in (state_folder, _state_beside(near)) if f is not None and f.is_dir()]
        folders.append(fallback_folder if fallback_folder is not None else Path(tempfile.gettempdir()))
        now = time.time()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
        text = without_keys("".join([
            f"gridrun {_version()} crashed: {type(exc).__name__}{raised_at(exc)}\n",
            f"when: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now))}\n",
            f"command: {_command(argv)}\n",
            f"python: {' '.join(sys.version.split())} ({sys.executable})\n",
            f"platform: {_platform()}\n",
            f"working folder: {os.getcwd()}\n",
            "\n",
            *traceback.format_exception(exc),
        ]))
    except Exception:  # noqa: BLE001 (a report of a bug must not raise one of its own)
        return None
    for folder in folders:
        path = folder / f"crash-{stamp}-{os.getpid()}.txt"
        try:
            with open(path, "x", encoding="utf-8", errors="backslashreplace") as f:
                f.write(text)
            return path
        except Exception:  # noqa: BLE001, S112 (not writable, full, gone: the next folder, or none)
            continue
    return None


def _state_beside(manifest: str | Path | None) -> Path | None:
    """`.gridrun/` beside the manifest file `manifest` (where a state folder is unless the manifest names
    another); None for none given."""
    if manifest is None:
        return None
    try:
        return Path(manifest).absolute().parent / ".gridrun"
    except Exception:  # noqa: BLE001 (a name the system cannot take)
        return None


def _command(argv: Sequence[str]) -> str:
    """The command line, as a shell would take it again (keys, never on it, are replaced all the same)."""
    import shlex

    return shlex.join(["gridrun", *(str(a) for a in argv)])


def _version() -> str:
    from . import __version__

    return __version__


def _platform() -> str:
    import platform

    return platform.platform()
