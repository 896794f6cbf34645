"""The Python API; the CLI is a thin layer over it.

    import runner
    m = runner.load("manifests/demo.yaml")
    p = runner.plan(m)
    result = runner.run(p)
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Iterator, NamedTuple, Sequence

from . import _Later, _load_httpx
from . import manifest as manifest_mod
from . import plan as plan_mod
from .errors import (
    CancelInterrupted, CancelNotTakenError, CancelRefusedError, CopyNotWrittenError, GridrunError, ManifestError, ManifestErrors, NeverRanError,
    NotRecordedError, OutcomeUnknownError, OutputsMovedError, ProviderError, RejectedError, RetryableError, RunStartingError, StateError,
    UsageError, request_id_in,
)
from .jobs import format_value, param_strings
from .localpaths import UNUSABLE, folder_gone, not_recordable, shown, unnameable, why_unusable
from .options import GONE_AFTER, RunOptions, check_flag, check_option, error_code, repeating_fix, run_options, selection_misses
from .outputs import kept_aside, superseded_dir, write_problem
from .manifest import Manifest
from .plan import Diff, Plan, Stored
from .providers import base_url_env, get_provider
from .providers import capabilities
from . import resume
from .resume import (
    CANCEL_LOOKS_UP_AFTER, cancel_looks_up_at, folder_shared, left_behind, name_shared, outputs_shared, state_above,
    state_linked,
)
from .records import Runs
from .state import (
    CANCEL_ASKED, CANCELLED_ON_REQUEST, SCHEMA_VERSION, JobState, RunRecord, RunSummary, Snapshot, Store, announcing_start, as_judged, check_not_lost,
    gone_at_provider, held_elsewhere, no_fresh_url, no_request_log, outputs_writer, recorded_process, state_home,
    store_error,
)
from .stats import RunStatistics, checks, eta_expected, pace, pause_left, problems
from .sweeps import IMAGE_PARAMS
from . import textforms
from .terminal import typed
from .yamlsource import MAX_BYTES, check_a_file, read_text

# With the types a caller meets: what `load`, `plan`, `status` and `runs` return, what `on_progress` is given.
__all__ = ["load", "plan", "diff", "run", "status", "runs", "report", "export", "cancel", "recover", "export_rows",
           "BalanceCheck", "CancelResult", "Diff", "Manifest", "Plan", "RecoverResult", "RunOptions", "RunResult",
           "RunStatistics", "RunSummary", "Runs", "Snapshot"]


if TYPE_CHECKING:
    from . import balance, executor
    from . import recover as recovery
    from .balance import BalanceCheck
    from .executor import RunResult
    from .export import export_rows
    from .providers.base import VideoStatus
    from .recover import RecoverResult
else:  # `run`'s and `recover`'s annotations name their classes: `typing.get_type_hints` finds them there
    balance, executor, recovery = _Later(".balance"), _Later(".executor"), _Later(".recover")

# Only `run` and `cancel` send requests: they import the executor, the providers and their HTTP stack (anyio,
# httpx) when called, so that `plan`, `status`, `report` and `export` load none of it. A run imports it in the
# thread that calls it, before it starts threads of its own.


def __getattr__(name: str) -> Any:
    """`BalanceCheck`, `RunResult`, `RecoverResult` and `export_rows`, imported at their first use."""
    if name == "BalanceCheck":
        from .balance import BalanceCheck

        return BalanceCheck
    if name == "RunResult":
        from .executor import RunResult

        return RunResult
    if name == "RecoverResult":
        from .recover import RecoverResult

        return RecoverResult
    if name == "export_rows":
        from .export import export_rows

        return export_rows
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load(path: str | Path, *, planned: bool = False, max_jobs: int | None = None) -> Manifest:
    """Load and validate a manifest. `planned`: it is loaded to be planned with the cap of jobs `max_jobs` (as
    `plan` takes it) or its own: a data file is read no further than the cap allows, a file of gigabytes refused
    after its first values.

    :raises ManifestError: or ManifestErrors (several).
    :raises UsageError: `path` is not a path, `planned` not True or False, `max_jobs` not a count of jobs.
    """
    check_flag("planned", planned)
    check_option("max_jobs", max_jobs)
    if not isinstance(path, (str, os.PathLike)):
        raise UsageError(f"expected a manifest's path (or a Manifest, where a function takes one), "
                         f"got {type(path).__name__}")
    if isinstance(path, str) and _yaml_text(path):
        said = _line_break_ended(path)
        if said is not None:
            raise UsageError(f"expected a manifest's path; {path!r} ends with a line break: {said}")
        raise UsageError("expected a manifest's path; this looks like YAML text: write it to a file (its outputs "
                         "and state go beside it) and pass that file's path")
    if (gone := folder_gone(path)) is not None:
        raise UsageError(gone)
    if planned:
        with contextlib.suppress(TypeError, ValueError):  # a NUL byte: `manifest.load` says what is wrong
            refuse_run_copy(Path(os.path.abspath(path)), shown=Path(path))
    return manifest_mod.load(Path(path), planned=planned, max_jobs=max_jobs, param_names=capabilities.param_names)


def refuse_run_copy(path: Path, *, shown: Path | None = None) -> None:
    """Refuse to plan a file under an output folder's `.runs/` whose lock records the state that wrote the folder: a
    run's copy of its manifest (`.runs/run-N.yaml`, which messages name), or one kept under `.runs/superseded/`.
    Read where it is, its relative paths start in `.runs/`: its plan would name a new state and output folder
    there, and a run would send and pay again for every job the project's state has done. `cancel` reads a run's
    copy as the manifest of that run instead (`_copy_of_run`), which plans the file it was made from. `shown`: the
    path as the user gave it, which the error names.

    :raises ManifestError: it is such a file; the message gives the command that copies it back beside the project.
    """
    runs = next((up for up in path.parents if up.name == ".runs"), None)
    if runs is None:
        return
    writer = outputs_writer(runs.parent)
    if writer is None:
        return
    state_dir = Path(writer["state_dir"])
    found = re.fullmatch(r"run-([0-9]{1,18})\.yaml", path.name) if path.parent == runs else None
    target = None
    if found:
        try:
            with Store(state_dir / "state.db", readonly=True) as store:
                run = store.run(int(found[1]))
            if Path(run.outputs_dir).resolve() == runs.parent.resolve():
                target = Path(run.manifest_path)
        except (StateError, sqlite3.Error, OSError):  # not readable, or no such run: beside the folder's writer
            pass
    if target is None:
        target = Path(writer["manifest"]).parent / path.name
    copy, back = (typed(plan_mod.relpath(p)) for p in (path, target))
    what = f"run {found[1]}'s copy of its manifest" if found else "a copy of a manifest"
    said = (f"{what}, in the output folder of the state in {state_dir}: planned here, its paths start in .runs/, "
            "so a run would start a new state there and send and pay again for every job that state has done; ")
    try:
        same = target.read_bytes() == path.read_bytes()
    except OSError:  # not there (removed, or the copy unreadable): copied back
        same = None
    if same:
        raise ManifestError(said + f"{back} reads the same: use that (gridrun run {back})", file=shown or path)
    replaces = f" (this replaces {back} as it is now)" if same is not None else ""
    raise ManifestError(said + f"copy it back beside the project and use that: cp {copy} {back}{replaces}, then "
                               f"gridrun run {back}", file=shown or path)


# The start of a manifest's text, rather than of a file's name: a document marker, a YAML directive, a flow
# mapping, or one of the fields a manifest begins with.
_TEXT_START = re.compile(r"\s*(---|%YAML|\{|(version|name|provider|model|description)\s*:\s)")


def _yaml_text(given: str) -> bool:
    """Whether the string given for a manifest's path is plainly a manifest's text (a line break in it, or a
    manifest's start), not the name of a file that is there (whatever characters it holds)."""
    return ("\n" in given or _TEXT_START.match(given) is not None) and not os.path.lexists(given)


def _line_break_ended(given: str) -> str | None:
    """What to say of `given`, a string that is no file's name and holds a line break, where it is a path ending
    with one (read from a file, or from a command's output): a single line, then the line break and perhaps blanks,
    where that line names a file, or has no `:` (no manifest's text of one line has none). Said, not taken as the
    path without it: a call is given the path it names, as the state and the messages record it. None: YAML
    text."""
    line = given.rstrip()
    if "\n" in line or "\r" in line or not line.strip():
        return None
    if os.path.lexists(line):
        return f"pass {line!r}, the file there, without it"
    if ":" in line:
        return None
    return f"no file {line!r} is there either"


def _manifest(m: Manifest | Plan | str | Path, *, planned: bool = False, max_jobs: int | None = None) -> Manifest:
    """`m` loaded, or as it is; a plan's manifest for a plan (what `status`, `report`, ... read the state of). Read
    to be shown, not planned, a run's copy of its manifest (`.runs/run-N.yaml`) is the manifest of that run in the
    state that wrote its folder (`_run_copy`): as `cancel` reads it, not a manifest of its own whose state would
    be a new one under `.runs/`."""
    if isinstance(m, Plan):
        return m.manifest
    if isinstance(m, Manifest):
        return m
    if not planned:
        copy = _run_copy(m)
        if copy is not None:
            return copy.manifest
    return load(m, planned=planned, max_jobs=max_jobs)


def _run_copy(m: str | Path) -> Plan | None:
    """The plan of `m` read as a run's copy of its manifest (`_copy_of_run`); None for any other file, and for a
    copy whose state cannot be read so (loaded then as the file it is, whose errors say what is wrong); a copy
    read so whose plan fails raises its errors, its relative paths starting where its run's did."""
    if not isinstance(m, (str, os.PathLike)):
        return None
    try:
        path = Path(os.path.abspath(m))
    except (TypeError, ValueError):  # a NUL byte: `manifest.load` says what is wrong
        return None
    if path.parent.name != ".runs" or not re.fullmatch(r"run-[0-9]{1,18}\.yaml", path.name):
        return None
    try:
        return _copy_of_run(path)
    except (ManifestError, ManifestErrors):
        raise  # read as its run's manifest, beside the file that run was made from: not as a file of its own,
        # whose data files would be looked for in .runs/
    except (GridrunError, OSError):
        return None


def _in_event_loop() -> str | None:
    """The async library whose event loop runs in this thread ("asyncio", "trio", ...: where a blocking call
    would stall it, and the run's own loop could not start), None when none does."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return "asyncio"
    import sniffio  # anyio's own dependency: it names trio's loop, and any other that registers with it

    try:
        library = sniffio.current_async_library()  # as anyio asks it, refusing to start the run's own loop
    except sniffio.AsyncLibraryNotFoundError:
        return None
    # "asyncio" with no asyncio loop running here: a context copied from a thread whose loop anyio started
    # (`await asyncio.to_thread(runner.run, ...)` under `anyio.run`), which sniffio reads as its own; `_own_loop`
    # starts the run's loop past it.
    return None if library == "asyncio" else library


def _own_loop(fn: Callable[[], Any]) -> Any:
    """`anyio.run(fn)` in a copy of this thread's context without sniffio's name of a library: set there by an
    anyio loop of the thread that started this one (`asyncio.to_thread` copies the context), it would have anyio
    refuse to start a loop in a thread that runs none (`_in_event_loop`)."""
    import contextvars

    import anyio
    import sniffio

    from .entry import is_command

    options = loop_options()
    context = contextvars.copy_context()
    context.run(sniffio.current_async_library_cvar.set, None)
    kept = _threads_loop()

    async def run() -> Any:
        import asyncio

        asyncio.get_running_loop().set_exception_handler(_interrupt_let_go)
        return await fn()

    try:
        return context.run(anyio.run, run if is_command() else fn, backend_options=options)
    finally:
        _put_back_loop(kept)


def _interrupt_let_go(loop: Any, context: dict[str, Any]) -> None:
    """The `gridrun` command's loop's handler of errors no task takes: a KeyboardInterrupt (the command's Ctrl-C or
    SIGTERM) that the loop's own code let go, as uvloop does out of a connection's callback, closing that connection,
    is said by nothing (the run takes its signal again: `entry.unheeded`), where the loop would log it with its
    traceback; anything else is logged as the loop does."""
    if isinstance(context.get("exception"), KeyboardInterrupt):
        return
    loop.default_exception_handler(context)


def loop_options() -> dict[str, Any]:
    """anyio's options for the event loop a run or a cancel starts (`_own_loop`): uvloop's where it is installed (it
    spends a fifth less CPU a request than asyncio's own loop: bench/http_bench.py), asyncio's own where it is not or
    with `GRIDRUN_LOOP=asyncio`. Read before anything is sent, so that a wrong value is said up front."""
    wanted = os.environ.get("GRIDRUN_LOOP", "").strip().lower()
    if wanted not in ("", "uvloop", "asyncio"):
        raise UsageError("GRIDRUN_LOOP must be uvloop (the default where it is installed) or asyncio, got "
                         f"{os.environ['GRIDRUN_LOOP']!r}")
    if wanted == "asyncio":
        import asyncio

        # asyncio's own even where a program made uvloop's the policy's (`uvloop.install()`)
        return {"loop_factory": asyncio.SelectorEventLoop}
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if wanted:
            raise UsageError("GRIDRUN_LOOP is uvloop, which is not installed here: `pip install uvloop`, or unset "
                             "GRIDRUN_LOOP to run on asyncio's own loop") from None
        return {}
    return {"loop_factory": _uvloop_loop}


# What uvloop logs of a loop dropped unclosed, as it drops one it could not make (`_uvloop_loop`)
_OPEN_LOOP_DROPPED = "deallocating an open event loop"


def _uvloop_loop() -> Any:
    """A new uvloop event loop, or the error that kept it from starting alone (no file descriptor left for its
    epoll, `uv_loop_init`): uvloop drops the loop it could not make as one left open, logging "deallocating an open
    event loop" before the command says what to do, which is not said here."""
    import logging

    import uvloop

    def made(record: logging.LogRecord) -> bool:
        return record.msg != _OPEN_LOOP_DROPPED

    _room_for_loop()
    log = logging.getLogger("asyncio")
    log.addFilter(made)
    try:
        return uvloop.new_event_loop()
    finally:
        log.removeFilter(made)


# File descriptors a new uvloop loop opens as it starts (its epoll, eventfd and signal pipes, and, the first time in a
# process, libuv's signal lock pipe), with one to spare
_LOOP_FILES = 8


def _room_for_loop() -> None:
    """Make sure a new uvloop loop finds the file descriptors it opens as it starts: libuv aborts the process (SIGABRT,
    no word said) where the first loop of a process cannot open its signal lock pipe.

    :raises OSError: EMFILE (or ENFILE), as the loop would have met it, for the command to say what to do.
    """
    held: list[int] = []
    try:
        for _ in range(_LOOP_FILES):
            held.append(os.open(os.devnull, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))
    except OSError as exc:  # said as the loop's: no file of the user's is short of anything
        raise OSError(exc.errno, os.strerror(exc.errno or 0)) from None
    finally:
        for fd in held:
            os.close(fd)


def _threads_loop() -> tuple[Any, Any, bool] | None:
    """This thread's current asyncio event loop as the policy holds it (None: none set), read without making one
    (`asyncio.get_event_loop` would), and whether one was ever set; None for a policy that keeps them otherwise.
    The loop `anyio.run` starts (an `asyncio.Runner`) sets the thread's loop to None as it closes: a program keeping
    its own loop (`asyncio.set_event_loop`) finds it again after `run` or `cancel` (`_put_back_loop`)."""
    import asyncio

    policy = getattr(asyncio.events, "_get_event_loop_policy", asyncio.get_event_loop_policy)()
    local = getattr(policy, "_local", None)
    if local is None or not hasattr(local, "_loop") or not hasattr(local, "_set_called"):
        return None
    return policy, local._loop, local._set_called


def _put_back_loop(kept: tuple[Any, Any, bool] | None) -> None:
    """Make the loop `_threads_loop` read this thread's current one again, as it was."""
    if kept is None:
        return
    policy, loop, set_called = kept
    if loop is not None:
        policy.set_event_loop(loop)
    else:
        policy._local._loop = None
    policy._local._set_called = set_called


def _in_a_thread(library: str, call: str) -> str:
    """How to call `call` (`runner.run, plan`: the function and its first argument) from an event loop of
    `library`: in a worker thread, as that library starts one."""
    if library == "asyncio":
        return f"`await asyncio.to_thread({call})`"
    if library == "trio":
        return f"`await trio.to_thread.run_sync({call})` (anyio's `to_thread.run_sync` alike)"
    return f"a worker thread, as `await anyio.to_thread.run_sync({call})` starts one"


def _capability_files(m: Manifest) -> list[Path]:
    """The manifest's capability files, made absolute. :raises ManifestError: one is not there, is no regular file
    (a named pipe, a device), or its path cannot be used (a NUL byte, a link loop, a name too long)."""
    files = []
    for index, name in enumerate(m.data.get("capabilities") or []):
        cannot = unnameable(name)  # a locale whose file-name encoding is not UTF-8 would look for other bytes
        if cannot is not None:
            raise m.error(("capabilities", index), f"capability file '{shown(name)}' cannot be used: {cannot}")
        try:
            given = m.base_dir / name
            path = given.resolve()
            found, folder = path.is_file(), path.is_dir()
        except UNUSABLE as exc:
            raise m.error(("capabilities", index),
                          f"capability file '{shown(name)}' cannot be used: {why_unusable(exc)}") from None
        if folder:
            raise m.error(("capabilities", index), f"capability file {path} is a directory, not a file")
        # as named: /dev/stdin resolves to a pipe's name that is no path (/proc/1234/fd/pipe:[5678])
        special = None if found else capabilities.not_regular(given)
        if special is not None:  # there, but a named pipe or a device: "not found" would send the user after a typo
            at = path if os.path.lexists(path) else given
            raise m.error(("capabilities", index), f"capability file {at}: {special}")
        if not found:
            raise m.error(("capabilities", index), f"capability file {path} not found")
        files.append(path)
    return files


def plan(m: Manifest | str | Path, *, max_jobs: int | None = None) -> Plan:
    """Expand, render, check and price every job; its warnings include a run of another state that wrote into
    its output folder (`resume.outputs_shared`). :raises ManifestError: or ManifestErrors (several), before any
    paid call."""
    return _plan(m, max_jobs=max_jobs)


def _plan(m: Manifest | str | Path, *, max_jobs: int | None = None, unread_images: bool = False) -> Plan:
    """`plan`; `unread_images`: a local input image not found is no error (`plan.build`), for `recover`, which
    sends nothing and names the jobs it could not check (`Plan.images_unread`)."""
    check_option("max_jobs", max_jobs)
    m = _manifest(m, planned=True, max_jobs=max_jobs)
    if m.unread:
        raise UsageError(f"{m.display or m.path} was read without its data files, to read its recorded runs: load "
                         "it again to plan it")
    # a Manifest loaded from such a copy as from any file (`load`, planned, refuses the path itself)
    refuse_run_copy(m.path, shown=Path(m.display) if m.display else None)
    files = _capability_files(m)
    if m.provider == "sim" and m.data.get("sim") is not None:
        _check_sim_knobs(m)
    _check_base_urls(m, files)
    try:
        caps = capabilities.load(m.provider, extra=files)
        if caps is None:
            known = ", ".join(capabilities.available())
            raise m.error(("provider",), f"unknown provider {m.provider!r} (known: {known})")
        model = caps.model(m.model)
        if model is not None:
            model.check_prices()
        built = plan_mod.build(m, caps, max_jobs=max_jobs, records=resume.RecordedImages(m),
                               unread_images=unread_images)
    except (capabilities.CapabilityDataError, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # A user's capability file of the wrong shape (a rule that is not a mapping) may surface only when
        # jobs are checked and priced.
        message = str(exc) if isinstance(exc, capabilities.CapabilityDataError) else \
            f"capability data that gridrun cannot use: {type(exc).__name__}: {exc}"
        site = _rule_site(m, files, exc) if isinstance(exc, capabilities.RuleError) else \
            _prices_site(m, files, message)
        if site is not None:
            raise site from exc
        if files:
            raise m.error(("capabilities",), message) from exc
        if os.environ.get("GRIDRUN_CAPABILITIES"):
            raise UsageError(f"GRIDRUN_CAPABILITIES: {message}") from exc
        raise  # gridrun's own data or code: a bug, shown as it is
    at = endpoint(m, caps, files)
    lowered, lowered_warnings, billed = _lowered_prices(m, caps, files, built)
    if billed:  # the provider bills them at gridrun's prices: the budget counts them so
        jobs = tuple(j._replace(cost_micros=lowered[j.hash]) if j.hash in lowered else j for j in built.jobs)
        built = replace(built, jobs=jobs, total_micros=sum(j.cost_micros for j in jobs))
    return replace(built, lowered=lowered, warnings=(*built.warnings, *lowered_warnings, *_base_url_overridden(m),
                                                     *_key_unencrypted(at),
                                    *_proxy_unparsed(at), *_sim_knobs_unused(m),
                                    *_sim_base_url_unused(m, files),
                                    *outputs_shared(built), *state_above(built), *state_linked(built)),
                   endpoint=at, key_print=_key_print(m, caps))


# The variable of a served simulator's key (`runner.providers.sim.KEY_ENV`, a module that imports the HTTP client,
# which planning does not).
SIM_KEY_ENV = "SIM_API_KEY"


def _key_print(m: Manifest, caps: Any) -> tuple[str, str] | None:
    """The fingerprint of the API key a run of `m` sends (`plan.key_fingerprint`), and the variable that holds it, as
    the environment has it now; None: no key (the simulator built in takes none; or none is set, which a run refuses)."""
    if m.provider == "sim":
        if not m.base_url:
            return None
        var = SIM_KEY_ENV
    else:
        var = caps.api_key_env or f"{m.provider.upper()}_API_KEY"
    key = os.environ.get(var, "").strip()
    return (plan_mod.key_fingerprint(key), var) if key else None


def _check_tls(prov: Any) -> None:
    """A run against an https base URL whose CA certificates the environment names wrongly (SSL_CERT_FILE,
    SSL_CERT_DIR) is refused before anything is recorded or sent: every request would fail before it left.

    :raises UsageError: naming the variable."""
    if not str(getattr(prov, "base_url", "") or "").lower().startswith("https:"):
        return
    from .providers.transport import tls_problem

    problem = tls_problem()
    if problem is not None:
        raise UsageError(problem)


def _sends_with(prov: Any) -> tuple[str, str] | None:
    """The fingerprint of the API key provider `prov` sends (`plan.key_fingerprint`), and its variable; None: it
    sends none (the simulator built in)."""
    key = prov.api_key() if callable(getattr(prov, "api_key", None)) else ""
    var = getattr(prov, "key_env", None)
    return (plan_mod.key_fingerprint(key), str(var)) if key and var else None


def _proxy_unparsed(at: tuple[str, str] | None) -> tuple[str, ...]:
    """The warning when the proxy the environment names for the run's base URL (`at`) does not parse (a password's
    '/' not percent-encoded): every request to the provider would fail unsent. The URL is not quoted."""
    if at is None or not at[0].lower().startswith(("http://", "https://")) or capabilities.is_loopback(at[0]):
        return ()
    import urllib.request

    if not urllib.request.getproxies_environment():
        return ()
    import httpx  # (with the proxies) only where a proxy is named: planning loads neither else

    from .providers.proxy import Proxies

    try:
        route = Proxies().named_for(at[0])
    except httpx.InvalidURL:  # a base URL that does not parse: said where it is set
        return ()
    if route is None or route.problem is None:
        return ()
    return (f"requests to the provider would not be sent: {route.unparsed_text()}",)


def _key_unencrypted(at: tuple[str, str]) -> tuple[str, ...]:
    """The warning when the run's base URL (`at`, as `endpoint` gives it) is http://, not https://, to another
    machine: the API key goes in clear text over the network, and to the proxy the environment names for it, which
    reads every request whole."""
    from urllib.parse import urlsplit

    url, source = at
    if not url.lower().startswith("http://") or capabilities.is_loopback(url):
        return ()
    from .providers.proxy import Proxies  # (with the HTTP client) only for such a URL: planning loads neither else

    try:
        route = Proxies().named_for(url)
    except Exception:  # a proxy variable it cannot read is said by the run, which refuses it
        route = None
    host = urlsplit(url).hostname or url
    through = f", and through the proxy {route.label}, which reads each request whole" if route is not None else ""
    # (a manifest's `base_url:` names only the provider's own https API or this machine: the environment chose it)
    return (f"{url} (from {source}) is http://, not https://: the API key goes unencrypted to {host}{through}; use "
            "an https:// base URL unless every network on the way is trusted",)


def _base_url_overridden(m: Manifest) -> tuple[str, ...]:
    """The warning at the manifest's `base_url:` when the environment's base URL variable names another endpoint:
    the variable wins (a manifest from someone else cannot send the key elsewhere), and a variable left exported
    from another session would otherwise send the run, and its key, somewhere the manifest does not say."""
    env = base_url_env(m.provider)
    given = os.environ.get(env, "").strip() if env else ""
    if not given or not isinstance(m.base_url, str) or not m.base_url.strip():
        return ()
    if plan_mod.same_endpoint(given.rstrip("/"), m.base_url.strip().rstrip("/")):
        return ()
    return (m.warning(("base_url",), f"{m.base_url} is overridden by {env}={given} in the environment, where a run "
                                     f"sends its requests and the API key (unset {env} to send to {m.base_url})"),)


def _sim_knobs_unused(m: Manifest) -> tuple[str, ...]:
    """The warning at `sim:` when its knobs do nothing: they set up the simulator built in, which a run of another
    provider, or of a served simulator (`base_url:`, which keeps the knobs it was started with), does not use. A
    rehearsal would quietly test something else than the knobs say."""
    knobs = m.data.get("sim")
    if not knobs or (m.provider == "sim" and not m.base_url):
        return ()
    if m.provider == "sim":
        why = (f"this run goes to the served simulator at {m.base_url} (`base_url:`), which keeps the "
               "knobs it was started with: set them with `gridrun sim serve` flags")
    else:
        why = (f"provider {m.provider} does not use them (a served simulator's are set with `gridrun sim serve` "
               "flags)")
    return (m.warning(("sim",), f"the knobs set up the simulator built in only, and are ignored here: {why}"),)


def _sim_base_url_unused(m: Manifest, files: Sequence[Path]) -> tuple[str, ...]:
    """The warning at the `base_url:` of each capabilities file for the simulator the manifest names, under
    `provider: sim` with no `base_url:` of its own: the run renders in process, and only the manifest's `base_url:`
    sends it to a served simulator. The file's URL is still checked (this machine only), as every base URL a file
    chooses is; a rehearsal must not seem to go to a server it never asks."""
    if m.provider != "sim" or m.base_url:
        return ()
    from . import yamlsource
    from .manifest import Warned

    out = []
    for f in files:
        document, positions = yamlsource.load_yaml(yamlsource.read_text(f, limit=yamlsource.MAX_BYTES), file=f)
        if not isinstance(document, dict) or document.get("provider") != "sim" or not document.get("base_url"):
            continue
        message = (f"ignored: the simulator built in runs in process and takes no base URL from a capabilities file; "
                   f"to run against a served simulator at {document['base_url']}, set `base_url:` in {m.display or m.path}")
        line, column = yamlsource.locate(positions, ("base_url",))
        out.append(Warned(str(ManifestError(message, file=f, line=line, column=column, field="base_url")),
                          f"{f}: base_url: {message}"))
    return tuple(out)


def _user_capability_files(files: Sequence[Path]) -> Iterator[tuple[Path, Any, Any]]:
    """Each user capabilities file that reads (GRIDRUN_CAPABILITIES's, then the manifest's), with its document and
    the positions of its values: where an error of the merged data is found its line."""
    from . import yamlsource

    named = [Path(p) for p in os.environ.get("GRIDRUN_CAPABILITIES", "").split(os.pathsep) if p]
    for f in [*named, *files]:
        try:
            document, positions = yamlsource.load_yaml(yamlsource.read_text(f, limit=yamlsource.MAX_BYTES), file=f)
        except (ManifestError, OSError):
            continue
        yield f, document, positions


def _lowered_prices(m: Manifest, caps: Any, files: Sequence[Path],
                    built: Plan) -> tuple[dict[str, int], tuple[Any, ...], bool]:
    """The jobs of `built` whose price a capabilities file the manifest names (`files`) makes lower than gridrun's
    own data does (with GRIDRUN_CAPABILITIES's files, the user's own): job hash -> gridrun's price
    (`Plan.lowered`), the warning that says so at the `capabilities:` item of the last of those files that sets the
    model's prices, with its line there, both prices of a job and their totals, and whether the provider was seen
    billing such a job at gridrun's prices (`_lowered_billed`): then the plan counts them at gridrun's prices. A
    manifest from elsewhere could otherwise set prices near 0 (or at 0): the plan would fit any budget, and the
    provider's bills, far above the estimates, be doubted."""
    if not files or not built.jobs:
        return {}, (), False
    try:
        own_caps = capabilities.load(m.provider)
    except (capabilities.CapabilityDataError, ManifestError, ManifestErrors):
        return {}, (), False
    own, model = (own_caps.model(m.model) if own_caps is not None else None), caps.model(m.model)
    if own is None or model is None or not own.prices or own.prices == model.prices:
        return {}, (), False
    lowered = {}
    for job in built.jobs:
        try:
            price = own.cost_micros(job.params, job.size)
        except (capabilities.CapabilityDataError, KeyError, TypeError, ValueError, ArithmeticError):
            continue
        if price > job.cost_micros:
            lowered[job.hash] = price
    if not lowered:
        return {}, (), False
    from . import yamlsource
    from .jobs import BILLED_FACTOR, usd_text

    item, said = capabilities.last_pricing(m.provider, m.model, files), ""
    if item is not None:
        with contextlib.suppress(ManifestError, OSError):  # read just now: its line, unless it changed since
            f = files[item]
            _, positions = yamlsource.load_yaml(yamlsource.read_text(f, limit=yamlsource.MAX_BYTES), file=f)
            line, _ = yamlsource.locate(positions, ("models", m.model, "prices"))
            said = f"{shown(str(m.data['capabilities'][item]))}:{line}"
    first = next(j for j in built.jobs if j.hash in lowered)
    billed = _lowered_billed(m, lowered)
    measured = "the budget is measured at the file's prices, until the provider bills such a job at gridrun's" \
        if billed is None else (f"the provider billed {usd_text(billed[1])} for job {shown(billed[0])}"
                                f"{'' if billed[2] is None else f' (run {billed[2]})'}: the budget counts these jobs "
                                "at gridrun's prices")
    theirs = sum(j.cost_micros for j in built.jobs if j.hash in lowered)
    ours = sum(lowered.values())
    some = f"{len(lowered):,} jobs, {usd_text(theirs)} where gridrun's data prices them {usd_text(ours)}" \
        if len(lowered) > 1 else "1 job"
    where = f"the prices of {said}" if said else "a file's prices"
    warned = m.warning(("capabilities",) if item is None else ("capabilities", item),
                       f"{where} lower gridrun's own for {m.provider}/{m.model}: job {shown(first.key)} is priced "
                       f"{usd_text(first.cost_micros)} where gridrun's data prices it {usd_text(lowered[first.hash])} "
                       f"({some}); {measured}, and a run counts a bill of such a job up to {BILLED_FACTOR:g}x "
                       "gridrun's price as billed; check that the file's prices are the provider's")
    return lowered, (warned,), billed is not None


def _lowered_billed(m: Manifest, lowered: Mapping[str, int]) -> tuple[str, int, int | None] | None:
    """The first job of `lowered` the state of `m` records billed at gridrun's own price (`Store.lowered_billed`):
    its key, the bill and the run; None where the state records none (or cannot be read): the file's prices count
    until the provider is seen billing at gridrun's."""
    try:
        db = plan_mod.state_dir_of(m, check=False) / "state.db"
        if not db.is_file():
            return None
        with Store(db, readonly=True) as store:
            return store.lowered_billed(lowered)
    except (GridrunError, sqlite3.Error, OSError):  # unreadable, or of another version: nothing to go by
        return None


def _prices_site(m: Manifest, files: Sequence[Path], message: str) -> ManifestError | None:
    """A price table's error (`provider/model: prices: ...`) at the line of the `prices:` of the last user file
    (GRIDRUN_CAPABILITIES's, then the manifest's) that sets this model's prices, which the merged data the error
    was found in no longer shows; None for another error, or prices only gridrun's own data sets."""
    from . import yamlsource

    head = f"{m.provider}/{m.model}: prices: "
    if not message.startswith(head):
        return None
    found = None
    for f, document, positions in _user_capability_files(files):
        at = ("models", m.model, "prices")
        if (isinstance(document, dict) and document.get("provider") == m.provider
                and isinstance(document.get("models"), dict) and isinstance(document["models"].get(m.model), dict)
                and "prices" in document["models"][m.model]):
            line, column = yamlsource.locate(positions, at)
            found = ManifestError(message[len(head):], file=f, line=line, column=column,
                                  field=f"models.{m.model}.prices")
    return found


def _rule_site(m: Manifest, files: Sequence[Path], exc: capabilities.RuleError) -> ManifestError | None:
    """A rule's error at the line of its key in the last user file (GRIDRUN_CAPABILITIES's, then the manifest's)
    whose `rules` for the model hold that rule; None for a rule of gridrun's own data."""
    from . import yamlsource

    found = None
    for f, document, positions in _user_capability_files(files):
        models = document.get("models") if isinstance(document, dict) else None
        model = models.get(exc.model) if isinstance(models, dict) else None
        rules = model.get("rules") if isinstance(model, dict) else None
        if not isinstance(rules, list):
            continue
        index = next((i for i, rule in enumerate(rules) if rule == exc.rule), None)
        if index is not None:
            at = ("models", exc.model, "rules", index, *exc.at)
            line, column = yamlsource.locate(positions, at)
            found = ManifestError(exc.message, file=f, line=line, column=column,
                                  field=f"models.{exc.model}.rules[{index}].{'.'.join(exc.at)}")
    return found


def _check_base_urls(m: Manifest, files: Sequence[Path]) -> None:
    """The API key goes only where the user chose: a base URL a manifest or a capabilities file it names chooses
    is the provider's own host or this machine's, and such a file chooses no key variable. Each base URL, the
    environment's too, is one requests can be sent to.

    :raises ManifestError: at the field's line. :raises UsageError: the environment's base URL.
    """
    builtin = capabilities.load(m.provider) if m.provider in capabilities.available() else None
    key_env = builtin.api_key_env if builtin is not None else None
    env = base_url_env(m.provider)
    if env and os.environ.get(env, "").strip():
        from .providers.transport import resolve_base_url

        resolve_base_url(None, env, "")  # the environment's URL is the user's choice, but it must be one
    for f in files:
        capabilities.check_user_file(f, key_env=key_env, env=env)
    url = m.base_url
    if isinstance(url, str) and capabilities.has_credentials(url):  # said before any other fault, which would quote it
        raise m.error(("base_url",), capabilities.CREDENTIALS_REFUSED)
    problem = capabilities.url_problem(url) if isinstance(url, str) and capabilities.has_http_scheme(url) else None
    if problem is not None:
        raise m.error(("base_url",), f"not a valid URL: {problem}")
    if isinstance(url, str) and builtin is not None:
        why = capabilities.untrusted_base_url(url, m.provider, key_env, env)
        if why is not None:
            raise m.error(("base_url",), why)


def endpoint(m: Manifest, caps: Any, files: Sequence[Path] = ()) -> tuple[str, str]:
    """The base URL a run of `m` sends to, and where it comes from: the environment's variable (the user's
    choice), else the manifest's `base_url:`, else a capabilities file's, else gridrun's data."""
    env = base_url_env(m.provider)
    if env and os.environ.get(env, "").strip():
        return os.environ[env].strip().rstrip("/"), f"{env} in the environment"
    if m.base_url:
        return str(m.base_url).rstrip("/"), f"base_url: of {m.path}"
    if m.provider == "sim":
        return "in process", "the simulator built in, no network"
    for f in reversed([*files]):
        more = capabilities.user_data(f)
        if more.get("base_url"):
            return str(more["base_url"]).rstrip("/"), f"base_url: of {f}"
    if os.environ.get("GRIDRUN_CAPABILITIES") and caps.base_url != capabilities.builtin_base_url(m.provider):
        return caps.base_url.rstrip("/"), "GRIDRUN_CAPABILITIES"
    return caps.base_url.rstrip("/"), "gridrun's capability data (the provider's own API)"


def _check_sim_knobs(m: Manifest) -> None:
    """:raises ManifestError: a knob of the manifest's `sim:` block unusable alone (each one at its line), or
        knobs unusable together (at the line of the last of them)."""
    from .sim.config import ConfigError, SimConfig

    knobs = m.data.get("sim") or {}
    if not isinstance(knobs, dict):
        raise m.error(("sim",), "expected a mapping of simulator knobs")
    errors = []
    for name, value in knobs.items():
        if name == "script" and isinstance(value, list) and (found := _rule_errors(m, value)):
            errors += found
            continue
        try:
            SimConfig.from_dict({name: value})
        except ConfigError as exc:
            if not exc.knobs:  # a combination is judged below, with the manifest's other knobs, not the defaults
                errors.append(m.error(("sim", name), str(exc)))
    manifest_mod.raise_all(errors)
    try:
        SimConfig.from_dict(knobs)
    except ConfigError as exc:
        named = [name for name in knobs if name in exc.knobs]  # at the last of them the manifest sets
        raise m.error(("sim", named[-1]) if named else ("sim",), str(exc)) from exc


def _rule_errors(m: Manifest, rules: list[Any]) -> list[ManifestError]:
    """The errors of the fault rules of the manifest's `sim.script`, each at the rule's own line."""
    from .sim.config import ConfigError, FaultRule

    errors = []
    for number, rule in enumerate(rules):
        if isinstance(rule, Mapping):
            try:
                FaultRule.from_dict(rule)
            except ConfigError as exc:
                errors.append(m.error(("sim", "script", number), str(exc)))
    return errors


def _stored(store: Store, p: Plan) -> tuple[dict[str, Stored], dict[str, str], str | None,
                                            tuple[dict[str, str], dict[str, dict[str, Any]], dict[str, tuple[str, ...]]],
                                            _Alike]:
    """The state's record of each job of the plan (by hash) as a run will find it, the previous run's job
    key -> hash, what is wrong when the plan's output folder is gone (`resume.outputs_gone`), what differs in
    the request of each job whose hash differs from the previous run's of its key, with the earlier values of the
    parameters that differ (`_changes`), and the jobs whose request differs from one of the previous run only in
    the Unicode form of a letter or by an invisible character, or in white space that reads the same
    (`_form_only`)."""
    rows = store.jobs_by_hash([j.hash for j in p.jobs])
    made = store.simulator_takes(list(rows))
    sent = store.sent_to(list(rows), resume.FOLLOWED)
    simulated = store.sent_to(list(rows), resume.FOLLOWED, simulator=True)
    keyed = store.sent_with(list(rows), resume.FOLLOWED)
    booked = store.booked_to_sender(list(rows))
    billed = store.billed_before(list(rows))
    stored = {}
    manifests: dict[int, str] = {}  # run id -> its manifest's name

    def run_of(run_id: int | None) -> str | None:
        """The manifest whose run `run_id` is, when it is another than the plan's (sharing the state)."""
        if run_id is None:
            return None
        if run_id not in manifests:
            try:
                manifests[run_id] = store.run(run_id).manifest_name
            except NotRecordedError:
                manifests[run_id] = p.manifest.name
        return None if manifests[run_id] == p.manifest.name else manifests[run_id]

    planned = {}
    for job in p.jobs:
        planned.setdefault(job.hash, job)
    left = resume.Left(store, p.manifest.name)
    for h, r in rows.items():
        was = as_judged(r)  # a job a killed --force left reset: as it was, as the next run will find it
        # an earlier take of its own at its path (or where the manifest's last run left it), which the run caches
        # as it is (`resume.check_done`), not the one the record names (another manifest's re-render of the same
        # request, in its own folder)
        own = resume.own_take(store, planned[h], r["id"], was, left=left) if was["state"] == "done" else None
        if own is not None:
            take = own[0]
            stored[h] = Stored(was["state"], take["done_run_id"], str(planned[h].output), True,
                               simulator_at=made.get(h), done_run_of=run_of(take["done_run_id"]), own_take=True)
            continue
        # the run's own test of a done job's video (its digest), so that "cached" here is cached there
        path = Path(was["output_path"])
        at = resume.done_video(planned[h], was) if was["sha256"] else None
        ok = at is not None
        # its file gone or altered, the very take whole where an earlier run left or kept it: the run puts it back
        copy = (resume.kept_copy(store, planned[h], r["id"], was, superseded=superseded_dir(p.outputs_dir))
                if not ok and was["state"] == "done" and was["sha256"] else None)
        stored[h] = Stored(was["state"], was["done_run_id"], str(at or path), ok,
                           restore_from=None if copy is None else str(copy),
                           output_altered=not ok and was["state"] == "done" and path.is_file(),
                           simulator_at=made.get(h), done_run_of=run_of(was["done_run_id"]),
                           gone=gone_at_provider(was["state"], dict(was).get("error")),
                           no_url=no_fresh_url(was["state"], dict(was).get("error")),
                           lost=was["state"] == "unknown" and bool(dict(was).get("provider_id")),
                           no_log=no_request_log(was["state"], dict(was).get("error")),
                           sent_to=sent.get(h), sent_to_simulator=h in simulated, sent_with=keyed.get(h),
                           senders=h in booked,
                           billed=h in billed, error=dict(was).get("error"),
                           unreported=was["state"] == "failed" and dict(was).get("cost_reported_micros") is None)
    previous: dict[str, str] = {}
    before: dict[str, str] = {}  # key -> the previous run's parameters (JSON) of a job that differs now
    # a key beyond ASCII the plan no longer has, as it reads (`textforms.alike`) -> (that key, its parameters, JSON)
    dropped: dict[str, tuple[str, str]] = {}
    gone_keys: list[tuple[str, str, str]] = []  # each key the plan no longer has, its parameters and values (JSON)
    requests: dict[str, str] = {}  # key -> the previous run's request record (JSON) of a job that differs now
    gone_requests: dict[str, str] = {}  # the same of each key the plan no longer has
    last = store.latest_run(p.manifest.name)
    if last is not None:
        now = {j.key: j.hash for j in p.jobs}
        here = _images_here(store, p)
        for r in store.run_job_rows(last.id):
            previous[r["run_key"]] = r["hash"]
            if now.get(r["run_key"], r["hash"]) != r["hash"]:
                before[r["run_key"]] = here(r["params"])
                requests[r["run_key"]] = here(r["request"])
            elif r["run_key"] not in now:
                gone_keys.append((r["run_key"], here(r["params"]), r["vals"]))
                gone_requests[r["run_key"]] = here(r["request"])
                if not r["run_key"].isascii():
                    dropped.setdefault(textforms.alike(r["run_key"]), (r["run_key"], here(r["params"])))
    form_only = (_form_only(p, last, before, dropped, previous, gone_keys,
                            requests={**gone_requests, **requests},
                            unset_then=_unset_then(p.manifest, lambda: store.manifest_copy(last.id)) if before else None)
                 if before or gone_keys else _Alike([], []))
    return (stored, previous, resume.outputs_gone(p, rows), _changes(p, last, before, requests) if before else ({}, {}, {}),
            form_only)


def _images_here(store: Store, p: Plan) -> Callable[[str], str]:
    """What maps an earlier job's parameters or request (JSON, as the state holds them) onto the manifest's folder
    now: each local input image, held by its absolute path, inside the folder of a manifest of this name that ran
    (the project moved, or copied whole with its state, to another folder), is written at the same place in the
    manifest's folder now, as the plan makes it, so that the same file is not said to differ; one outside that
    folder (`../shared/end.png`) is written at the same place from the manifest's folder now where the plan sends
    an image from there and none from where it was, and no other file is left where it was (the project moved with
    its sibling folders) or one of the same content (copied with them): its content is still compared by the
    digest its request recorded, and a file of other content left in the old place is another image, said to
    differ by its path; the text itself where no run was made in another folder (the common case: nothing
    read)."""
    here = str(p.manifest.base_dir)
    real = os.path.realpath(here)
    folders = {os.path.dirname(row[0]) for row in store.db.execute(
        "SELECT DISTINCT manifest_path FROM runs WHERE manifest_name = ?", (p.manifest.name,))}
    others = sorted((f for f in folders if f not in (here, real) and os.path.realpath(f) != real),
                    key=len, reverse=True)  # a folder inside another is the nearer
    if not others:
        return lambda text: text

    sent_now = p.image_digests

    def moved(item: Any) -> Any:
        if not isinstance(item, str) or not os.path.isabs(item):
            return item
        for folder in others:
            inner = resume.within(item, folder)
            if inner is not None:
                return str(Path(real) / inner)
        if item in sent_now:  # an image outside the project that the plan still sends from there
            return item
        for folder in others:  # outside it (`../shared/end.png`): moved with the project, as the plan sends it now
            for base in dict.fromkeys((folder, os.path.realpath(folder))):
                try:
                    there = os.path.normpath(os.path.join(real, os.path.relpath(item, base)))
                except ValueError:  # on another drive (Windows)
                    continue
                # the same file moved (none left where it was), or a copy of it (the same content there still)
                if there in sent_now and (not os.path.lexists(item) or resume._digest(item) == sent_now[there]):
                    return there
        return item

    def mapped(text: str) -> str:
        try:
            doc = json.loads(text)
        except (TypeError, ValueError):
            return text
        if not isinstance(doc, dict):
            return text
        if isinstance(doc.get("images"), dict):  # a request record: the digests of the images it sent
            doc["images"] = {moved(k): v for k, v in doc["images"].items()}
        for name in IMAGE_PARAMS:
            value = doc.get(name)
            if value is not None:
                doc[name] = [moved(v) for v in value] if isinstance(value, list) else moved(value)
        return _ENCODER.encode(doc)

    return mapped


class _Alike(NamedTuple):
    """The jobs of a plan whose request reads as one of the previous run's but is other text (`_form_only`)."""

    # (key, (then, now), the earlier key when it is another, the data files and lines of the values that differ, as
    # of `spacing`): in Unicode form, or by an invisible character
    form: list[tuple[str, tuple[Any, Any], str | None, tuple[tuple[tuple[Any, ...], str], ...], tuple[str, ...]]]
    # (key, (then, now), the earlier key when it is another, the data files the values that differ came from, the
    # lines of those values there, `shots.csv:3`): in white space at line ends, the final line break, CR/LF line ends
    spacing: list[tuple[str, tuple[Any, Any], str | None, tuple[tuple[tuple[Any, ...], str], ...], tuple[str, ...]]]
    # (key, (then, now)): in how a number is written, 5 then and 5.0 now (a `number` parameter keeps an integer
    # the manifest writes, and reads the text of a data file, or 5.0, as a float)
    numbers: Sequence[tuple[str, tuple[Any, Any]]] = ()
    # (key, ((path then, path now, digest), ...)): in the name of an input image of the same content, renamed
    renamed: Sequence[tuple[str, tuple[tuple[str, str, str], ...]]] = ()
    # (key, ((parameter, then, now, the file setting its default as named), ...)): in parameters whose default comes
    # from a capabilities file named in GRIDRUN_CAPABILITIES, outside the manifest; the file None for a parameter
    # the last run sent that neither its manifest nor the manifest now sets (a default of a capabilities file named
    # in GRIDRUN_CAPABILITIES then, most likely, no longer named)
    environment: Sequence[tuple[str, tuple[tuple[str, Any, Any, str | None], ...]]] = ()


def _form_only(p: Plan, last: Any, before: Mapping[str, str], dropped: Mapping[str, tuple[str, str]],
               previous: Mapping[str, str], gone_keys: Sequence[tuple[str, str, str]] = (), *,
               requests: Mapping[str, str] = {}, unset_then: Callable[[str], bool] | None = None) -> _Alike:
    """The jobs of the plan whose request equals that of a job of run `last` as it reads (`textforms.alike_value`:
    every string composed, its invisible format characters left out), but not as written: of the same key
    (`before`: key -> its parameters then), of a key the plan no longer has that reads the same (`dropped`), or of
    one found by its request as it reads (`_AlikeRequests`: a long value is in its key by a hash of its text as
    written). Each as (its key, (then, now), the parameters). A manifest or a data file saved again in another Unicode
    form, or a byte order mark or a zero width space taken out of it, makes them, which a run would pay for
    again.

    And apart, those whose request equals one of run `last` line by line (`textforms.spaced_value`): of the same
    key, or of a key the plan no longer has (`gone_keys`: the key of a value read from a data file is another
    when the value is, and it is found by its request). A commit hook or an editor that trims the spaces at line
    ends or adds a final line break, or a checkout or a spreadsheet that writes CRLF line ends, makes them.

    And those whose request equals one of run `last` but for how a whole number is written (5 then, 5.0 now), or
    for the name of an input image whose content is the same (`requests`: key -> the request record of run
    `last`'s job, with the digest of each image it sent): an image renamed, which the provider gets as the same
    bytes."""
    m = p.manifest
    if last.provider != m.provider or last.model != m.model:
        return _Alike([], [])
    found: list[tuple[str, tuple[Any, Any], str | None, tuple[tuple[tuple[Any, ...], str], ...], tuple[str, ...]]] = []
    spacing: list[tuple[str, tuple[Any, Any], str | None, tuple[tuple[tuple[Any, ...], str], ...], tuple[str, ...]]] = []
    row_lines: dict[tuple[Any, ...], dict[str, int]] = {}  # of each data-file axis: each value's form -> its line
    # the request of each key the plan no longer has, line by line, in the state's JSON -> (key, its values JSON):
    # made only when the plan has a job of a new key
    by_request: dict[str, tuple[str, str]] | None = None
    marked = False  # one of those holds a line break or a space at a line's end
    gone_params = {key: params for key, params, _ in gone_keys}
    gone_vals = {key: vals for key, _, vals in gone_keys}
    by_alike, by_number = _AlikeRequests(gone_keys), _NumberRequests(gone_keys)
    by_image = _ImageRequests(gone_keys, requests, p.image_digests)
    numbers: list[tuple[str, tuple[Any, Any]]] = []
    renamed: list[tuple[str, tuple[tuple[str, str, str], ...]]] = []
    environment: list[tuple[str, tuple[tuple[str, Any, Any, str | None], ...]]] = []
    for job in p.jobs:
        earlier = alike_key = None  # the earlier key: found by its request; of the same text as it reads
        if job.key in before:
            text = before[job.key]
        elif dropped and job.key not in previous and (was := dropped.get(textforms.alike(job.key))) is not None:
            text, alike_key = was[1], was[0]
        elif gone_keys and job.key not in previous and (match := by_alike.find(job.params)) is not None:
            # a value in the key by its hash (a long text), in another form: found by its request as it reads
            earlier, text = match, gone_params[match]
        elif gone_keys and job.key not in previous and (match := by_number.find(job.params)) is not None:
            # a number moved from the manifest into a data file (another key): found by its request, numbers as such
            earlier, text = match, gone_params[match]
        elif gone_keys and job.key not in previous and (match := by_image.find(job.params)) is not None:
            # an input image renamed, the name a matrix value (another key): found by its request, images by content
            earlier, text = match, gone_params[match]
        elif gone_keys and job.key not in previous:
            if by_request is None:
                by_request, marked = {}, False
                for key, params, vals in gone_keys:
                    try:
                        spaced, was_marked = _spaced_text(params)
                    except (TypeError, ValueError):
                        continue
                    marked = marked or was_marked
                    by_request.setdefault(spaced, (key, vals))
            # a request with no line break nor space at a line's end equals as written one that has none either
            if not (marked or _spaced_marks(job.params)):
                continue
            match = by_request.get(_ENCODER.encode(textforms.spaced_value(job.params)))
            if match is None:
                continue
            earlier, text = match[0], gone_params[match[0]]
        else:
            continue
        try:
            old = json.loads(text)
            new = json.loads(json.dumps(job.params, default=str))
        except (TypeError, ValueError):
            continue
        if _same_numbers(old, new):
            if _ENCODER.encode(old) != _ENCODER.encode(new):
                numbers.append((job.key, (old, new)))
            continue
        if p.image_digests and (names := _renamed_images(old, new, requests.get(earlier or job.key, ""),
                                                          p.image_digests)):
            renamed.append((job.key, names))
            continue
        if earlier is None and (defaults := _environment_defaults(old, new, job.sources, unset_then)):
            environment.append((job.key, defaults))
            continue
        if textforms.alike_value(old) == textforms.alike_value(new):
            was_key = earlier or alike_key
            files, rows = _files_of(m, job, gone_vals.get(was_key) if was_key is not None else None, row_lines,
                                    lambda t: textforms.alike(t) != t)
            found.append((job.key, (old, new), was_key, files, rows))
        elif textforms.spaced_value(old) == textforms.spaced_value(new):
            files, rows = _files_of(m, job, gone_vals[earlier] if earlier is not None else None, row_lines)
            spacing.append((job.key, (old, new), earlier, files, rows))
    return _Alike(found, spacing, numbers, renamed, environment)


# the parameters' JSON as the state writes it (`state._json`), compared as written
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)
# what a string holding a line break, a space at its end, a tab or two spaces, or a space separator beyond ASCII (a
# no-break space: `textforms.SPACES`), writes in that JSON
_MARKS = ("\\n", "\\r", ' "', "\\t", "  ", "\\u00a0", "\\u1680", "\\u200", "\\u202f", "\\u205f", "\\u3000")


def _plain(value: Any) -> bool:
    """Whether every string of `value` is ASCII: no letter in another form, no invisible character."""
    if isinstance(value, str):
        return value.isascii()
    if isinstance(value, Mapping):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return True


class _AlikeRequests:
    """The jobs of keys a plan no longer has, found by their request as it reads (`textforms.alike_value`): a
    value in the key by its first characters and a hash of its text as written (a long prompt) has another key in
    another Unicode form, or with an invisible character taken out. Read only when a job of a new key or a gone
    one holds a character beyond ASCII (the state's JSON escapes it): most plans read nothing."""

    def __init__(self, gone_keys: Sequence[tuple[str, str, str]]) -> None:
        self.gone_keys = gone_keys
        self._marked: dict[str, str] | None = None  # a request beyond ASCII as it reads, JSON -> its key
        self._plain: dict[str, str] | None = None  # an ASCII request as written (the state's JSON) -> its key

    def find(self, params: Any) -> str | None:
        """The gone key whose request reads as `params` (a job's), or None."""
        if self._marked is None:
            self._marked = {}
            for key, text, _ in self.gone_keys:
                if "\\u" in text:
                    try:
                        self._marked.setdefault(_ENCODER.encode(textforms.alike_value(json.loads(text))), key)
                    except (TypeError, ValueError):
                        continue
        plain = _plain(params)
        if plain and not self._marked:
            return None
        try:
            said = _ENCODER.encode(textforms.alike_value(json.loads(json.dumps(params, default=str))))
        except (TypeError, ValueError):
            return None
        if (key := self._marked.get(said)) is not None or plain:
            return key
        if self._plain is None:  # a text beyond ASCII now that was ASCII then: an invisible character added
            self._plain = {text: key for key, text, _ in self.gone_keys if "\\u" not in text}
        return self._plain.get(said)


def _same_numbers(first: Any, second: Any) -> bool:
    """Whether two values (parameters read from JSON) are equal, a number equal to a number however it is written
    (5 and 5.0), but a boolean only to a boolean."""
    if isinstance(first, bool) or isinstance(second, bool):
        return type(first) is type(second) and first == second
    if isinstance(first, (int, float)) and isinstance(second, (int, float)):
        return first == second
    if isinstance(first, dict) and isinstance(second, dict):
        return first.keys() == second.keys() and all(_same_numbers(v, second[k]) for k, v in first.items())
    if isinstance(first, list) and isinstance(second, list):
        return len(first) == len(second) and all(_same_numbers(a, b) for a, b in zip(first, second))
    return type(first) is type(second) and first == second


def _whole_numbers(value: Any) -> Any:
    """`value` with each float that is a whole number written as an integer (5.0 as 5)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


def _has_whole_float(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, Mapping):
        return any(_has_whole_float(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_whole_float(v) for v in value)
    return False


# a float that is a whole number in the state's JSON (5.0, 5e0 is not written so): `_NumberRequests`
_WHOLE_FLOAT = re.compile(r"[0-9]\.0(?:[,}\]]|$)")


class _NumberRequests:
    """The jobs of keys a plan no longer has, found by their request with each whole number written alike (5 and
    5.0): a number moved from the manifest into a data file, whose text a `number` parameter reads as 5.0, has
    another key. Read only when a job of a new key or a gone one holds a whole number written as a float."""

    def __init__(self, gone_keys: Sequence[tuple[str, str, str]]) -> None:
        self.gone_keys = gone_keys
        self._floats: dict[str, str] | None = None  # a request holding 5.0, written with 5 (JSON) -> its key
        self._others: dict[str, str] | None = None  # any other request as written -> its key

    def find(self, params: Any) -> str | None:
        """The gone key whose request is `params` (a job's) but for how a whole number is written, or None."""
        if self._floats is None:
            self._floats = {}
            for key, text, _ in self.gone_keys:
                if _WHOLE_FLOAT.search(text):
                    try:
                        self._floats.setdefault(_ENCODER.encode(_whole_numbers(json.loads(text))), key)
                    except (TypeError, ValueError):
                        continue
        floats = _has_whole_float(params)
        if not floats and not self._floats:
            return None
        try:
            said = _ENCODER.encode(_whole_numbers(json.loads(json.dumps(params, default=str))))
        except (TypeError, ValueError):
            return None
        if (key := self._floats.get(said)) is not None or not floats:
            return key
        if self._others is None:  # 5.0 now, 5 then
            self._others = {text: key for key, text, _ in self.gone_keys if not _WHOLE_FLOAT.search(text)}
        return self._others.get(said)


def _recorded_images(request: str) -> dict[str, str]:
    """The digest of each local input image a job sent, by its path, as its request record holds them
    (`Job.record`: `{"images": {path: sha256}}`); none for a job of an older gridrun, which recorded none."""
    if '"images"' not in (request or ""):
        return {}
    try:
        images = json.loads(request).get("images")
    except (ValueError, AttributeError):
        return {}
    if not isinstance(images, dict):
        return {}
    return {k: v for k, v in images.items() if isinstance(k, str) and isinstance(v, str)}


def _by_content(params: Any, digests: Mapping[str, str]) -> Any:
    """`params` (a job's, read from JSON) with each local image path of `digests` written as its digest."""
    out = {}
    for name, value in params.items():
        if isinstance(value, str) and value in digests:
            value = f"sha256:{digests[value]}"
        elif isinstance(value, list):
            value = [f"sha256:{digests[v]}" if isinstance(v, str) and v in digests else v for v in value]
        out[name] = value
    return out


def _renamed_images(old: Any, new: Any, request: str, digests: Mapping[str, str]) -> tuple[tuple[str, str, str], ...]:
    """The input images of an earlier job's parameters (`old`, its `request` record) renamed in `new` (a job's
    now; `digests`: the plan's), the content the same: (path then, path now, digest) each; none when the two
    differ otherwise."""
    if not (isinstance(old, dict) and isinstance(new, dict)) or old.keys() != new.keys():
        return ()
    then = _recorded_images(request)
    if not then or _by_content(old, then) != _by_content(new, digests):
        return ()
    out: list[tuple[str, str, str]] = []
    for name in old:
        a, b = old[name], new[name]
        for x, y in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
            if x != y and x in then and y in digests and (x, y, then[x]) not in out:
                out.append((x, y, then[x]))
    return tuple(out)


class _ImageRequests:
    """The jobs of keys a plan no longer has, found by their request with each local input image written as its
    digest: an image renamed whose name is a matrix value (another key), the same bytes sent. Read only when a
    job of a new key sends a local image."""

    def __init__(self, gone_keys: Sequence[tuple[str, str, str]], requests: Mapping[str, str],
                 digests: Mapping[str, str]) -> None:
        self.gone_keys, self.requests, self.digests = gone_keys, requests, digests
        self._made: dict[str, str] | None = None  # a request, its images as digests (JSON) -> its key

    def find(self, params: Any) -> str | None:
        """The gone key whose request is `params` (a job's) but for the names of its input images, or None."""
        if not self.digests or not any(v in self.digests for v in param_strings(params)):
            return None
        if self._made is None:
            self._made = {}
            for key, text, _ in self.gone_keys:
                images = _recorded_images(self.requests.get(key, ""))
                if images:
                    try:
                        self._made.setdefault(_ENCODER.encode(_by_content(json.loads(text), images)), key)
                    except (TypeError, ValueError, AttributeError):
                        continue
        if not self._made:
            return None
        try:
            return self._made.get(_ENCODER.encode(_by_content(json.loads(json.dumps(params, default=str)),
                                                              self.digests)))
        except (TypeError, ValueError):
            return None


def _environment_defaults(old: Any, new: Any, sources: Mapping[str, str], unset_then: Callable[[str], bool] | None = None,
                          ) -> tuple[tuple[str, Any, Any, str | None], ...]:
    """The parameters that differ between an earlier job's parameters (`old`) and a job's now (`new`, its
    `sources`), when each is a default that a capabilities file named in GRIDRUN_CAPABILITIES sets now: (name,
    then, now, that file as named) each; or one the earlier job sent that the job now does not, which the manifest
    does not set now nor set then (`unset_then`, of the last run's manifest, `_unset_then`): a default of a
    capabilities file no longer named, most likely in GRIDRUN_CAPABILITIES, as a variable exported in one shell and
    not in the next (that file None). None when another parameter differs too."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return ()
    end = f"{capabilities.FROM_ENVIRONMENT})"
    out: list[tuple[str, Any, Any, str | None]] = []
    for name in sorted(old.keys() | new.keys()):
        if _same_numbers(old.get(name), new.get(name)):
            continue
        source = sources.get(name, "")
        if source.startswith("default (") and source.endswith(end):
            out.append((name, old.get(name), new.get(name), source[len("default ("):-len(end)]))
        elif name not in new and name not in sources and unset_then is not None and unset_then(name):
            out.append((name, old.get(name), None, None))
        else:
            return ()
    return tuple(out)


def _unset_then(m: Manifest, copy: Callable[[], str]) -> Callable[[str], bool]:
    """Whether a parameter is one the last run's manifest (its copy, read by `copy` when first asked) does not set:
    no key of that name anywhere in it, and it names the capabilities files the manifest names now (one it named and
    the manifest no longer does is a change of the manifest, and says so). False for every one when the copy cannot
    be read."""

    @functools.cache
    def keys() -> frozenset[str] | None:
        import yaml

        try:
            text = copy()
            doc = yaml.safe_load(text) if text else None
        except yaml.YAMLError:
            doc = None
        if not isinstance(doc, dict) or (doc.get("capabilities") or []) != (m.data.get("capabilities") or []):
            return None
        found: set[str] = set()
        stack: list[Any] = [doc]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                found.update(str(k) for k in item)
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
        return frozenset(found)

    def unset(name: str) -> bool:
        found = keys()
        return found is not None and name not in found

    return unset


def _spaced_text(params: str) -> tuple[str, bool]:
    """A job's parameters as the state holds them (JSON) line by line (`textforms.spaced_value`), in that JSON, and
    whether they hold a line break or white space at a string's end: the text itself when they do not (most
    jobs: nothing to read)."""
    if not any(mark in params for mark in _MARKS):
        return params, False
    return _ENCODER.encode(textforms.spaced_value(json.loads(params))), True


def _spaced_marks(value: Any) -> bool:
    """Whether a string of `value` holds a line break, a tab or two spaces, or ends in a space."""
    if isinstance(value, str):
        return ("\n" in value or "\r" in value or "\t" in value or "  " in value or value.endswith(" ")
                or (not value.isascii() and not textforms.SPACES.isdisjoint(value)))
    if isinstance(value, Mapping):
        return any(_spaced_marks(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_spaced_marks(v) for v in value)
    return False


def _files_of(m: Manifest, job: Any, vals: str | None, row_lines: dict[tuple[Any, ...], dict[str, int]],
              odd: Callable[[str], bool] = lambda t: t != textforms.spaced(t),
              ) -> tuple[tuple[tuple[tuple[Any, ...], str], ...], tuple[str, ...]]:
    """The data files the matrix values of `job` are read from (`{file: shots.csv}`), each with the field that
    names it: those of the values that differ from `vals` (the earlier job's, JSON), or of every value holding a
    text `odd` is true of (None; by default a line break or a space at a line's end); and the lines of those values
    there (`shots.csv:3`). `row_lines`, kept by the caller: of each data-file axis, each value's form -> its line."""
    try:
        then = json.loads(vals) if vals is not None else None
    except (TypeError, ValueError):
        then = None
    names = [(name, value) for name, value in job.values
             if (then.get(name) != value if isinstance(then, dict) else
                 any(odd(t) for t in textforms.strings_in(value)))]
    files: list[tuple[tuple[Any, ...], str]] = []
    rows: list[str] = []
    for name, value in names:
        row = None
        for where, path in m.files.items():
            if not where or where[-1] != name:
                continue
            if all(path != f for _, f in files):
                files.append((where, path))
            lines = m.data_lines.get(where)
            if row is not None or lines is None:
                continue
            if where not in row_lines:
                row_lines[where] = {resume.value_form(v): at[0] for v, at in
                                    zip(resume.axis_values(m, where), lines.positions)}
            line = row_lines[where].get(resume.value_form(value))
            if line is not None:
                row = f"{resume.shown_beside(path, m.path)}:{line}"
        if row is not None:
            rows.append(row)
    return tuple((where, resume.shown_beside(path, m.path)) for where, path in files), tuple(rows)


def _changes(p: Plan, last: Any, before: Mapping[str, str], requests: Mapping[str, str] = {},
             ) -> tuple[dict[str, str], dict[str, dict[str, Any]], dict[str, tuple[str, ...]]]:
    """Job key -> what differs in its request from the job of that key in run `last` (`before`: key -> that
    job's parameters, JSON; `requests`: its request record, with the digests of its input images): "provider:
    lumenfall then, sim now", "params.quality: 540p then, 360p now", an input image whose content differs
    (`resume.changed_images`); and job key -> the earlier value of each parameter that differs (None: not set
    then), which `plan --explain` shows beside the value now; and job key -> the fields that differ ("provider",
    "params.prompt", "input images"), by which the plan groups the jobs that differ."""
    m = p.manifest
    other = [(what, then, now) for what, then, now in
             (("provider", last.provider, m.provider), ("model", last.model, m.model)) if then != now]
    common = [f"{what}: {then} then, {now} now" for what, then, now in other]
    out: dict[str, str] = {}
    earlier: dict[str, dict[str, Any]] = {}
    fields: dict[str, tuple[str, ...]] = {}
    for job in p.jobs:
        text = before.get(job.key)
        if text is None:
            continue
        parts = list(common)
        named = [what for what, _, _ in other]
        try:
            old = json.loads(text)
            new = json.loads(json.dumps(job.params, default=str))
        except (TypeError, ValueError):
            old = new = None
        if isinstance(old, dict) and isinstance(new, dict):
            for name in sorted(old.keys() | new.keys()):
                a, b = old.get(name), new.get(name)
                if a == b:
                    continue
                earlier.setdefault(job.key, {})[name] = a
                named.append(f"params.{name}")
                # a text quoted (a prompt's commas would blur where "then" begins), as --explain shows it; two
                # that print alike (a letter composed or not, an invisible character, a no-break space for a space)
                # with their characters beyond ASCII escaped
                alike = isinstance(a, str) and isinstance(b, str) and textforms.print_alike(a, b)
                shown = [("not set" if v is None else json.dumps(v, ensure_ascii=alike) if isinstance(v, str)
                          else format_value(v)) for v in (a, b)]
                short = all(len(t) <= 32 and not isinstance(v, (dict, list)) for t, v in zip(shown, (a, b)))
                # a long text that differs only in white space (a final line break, CRLF) says how, as it shows not
                spacing = (", ".join(textforms.unspaced(a, b)) if not short and isinstance(a, str)
                           and isinstance(b, str) and textforms.spaced(a) == textforms.spaced(b) else "")
                if not short and isinstance(a, str) and isinstance(b, str) and (not spacing or "spaces inside" in spacing):
                    # a long text shows where it first differs (a space more or less is hard to see otherwise)
                    around = [json.dumps(t, ensure_ascii=alike) for t in textforms.window(a, b)]
                    parts.append(f"params.{name}{f' ({spacing})' if spacing else ''}: {around[0]} then, "
                                 f"{around[1]} now")
                    continue
                parts.append(f"params.{name}: {shown[0]} then, {shown[1]} now" if short
                             else f"params.{name} ({spacing})" if spacing else f"params.{name}")
        images = {path: (then, now) for path, then, now in
                  resume.changed_images(job, text, requests.get(job.key, ""), p.image_digests)}
        if images:
            named.append("input images")
            shown = " ".join(typed(resume.shown_beside(path, m.path)) for path in images)
            parts.append(f"{'' if parts else 'the same parameters; '}input "
                         f"{'image' if len(images) == 1 else 'images'} {resume.images_said(images, last.id, m.path)}: "
                         f"put {'that file' if len(images) == 1 else 'those files'} back (e.g. git checkout <ref> -- "
                         f"{shown})")
        # the same words: the content of an input image at the same path, or the take (repeat) it stands for
        out[job.key] = "; ".join(parts) or "the same parameters; an input image's content, or the take, differs"
        fields[job.key] = tuple(named) or ("the take",)
    return out, earlier, fields


@functools.cache
def _sent_again_by(state: str, gone: bool, no_url: bool = False) -> str | None:
    """The command of `plan.RETRY_COMMANDS` that sends a settled job of the stored `state` again, as the run
    decides it (`resume.action`, `gone` and `no_url` as it takes them); None: none does. An expired job that a
    retry fetches first is sent again only if the provider gives no fresh URL: not counted here."""
    from .options import RunOptions
    from .resume import action
    from .state import JobState

    return next((command for command, opts in plan_mod.RETRY_COMMANDS.items()
                 if action(JobState(state), RunOptions(**opts), gone=gone, no_url=no_url) in ("reset", "reconcile")),
                None)


def diff(
    p: Plan | Manifest | str | Path, *, force: bool = False, retry: str | None = None, force_resume: bool = False,
    only_keys: Sequence[str] = (), only_codes: Sequence[str] = (), whole: bool = False,
) -> Diff | None:
    """The plan against the state store (None when nothing has run yet), with the jobs the last run left in
    flight that the plan no longer has, over which a run refuses to start, warnings of what the state holds
    (another manifest file of the same name, a manifest of another name writing the same output folder), and the
    files in the way that a run keeps aside (`Diff.aside`). Given a path or a `Manifest`, it plans it first, as
    `run` does. `force`: as `run --force` does; `retry`: as `gridrun retry` ("retry") or `gridrun retry --unknown`
    ("retry --unknown") does; `force_resume` (with `force`): as `run --force --resume` does, which renders again
    only the done jobs the last --force run left unsent. `only_keys` (globs), `only_codes` (error codes), with
    `retry`: as `gridrun retry --key/--code` does, which sends again only the settled jobs they pick. `whole`:
    the state file checked whole first, as a run checks it as it opens it (`gridrun plan`, which says what a run
    would do); a run's own look at the state before it starts leaves that to the run.

    :raises UsageError: `retry` is none of those, `force`, `force_resume` or `whole` not True or False, `force_resume`
        without `force`, `only_keys` or `only_codes` without `retry` or not lists of strings, or `p` of the wrong
        kind.
    :raises ManifestError: or ManifestErrors, planning a path or a `Manifest`.
    """
    if retry is not None and (not isinstance(retry, str) or retry not in plan_mod.RETRY_COMMANDS):
        raise UsageError(f"retry must be one of {', '.join(map(repr, plan_mod.RETRY_COMMANDS))} (or None), "
                         f"got {retry!r}")
    check_flag("force", force)
    check_flag("force_resume", force_resume)
    check_flag("whole", whole)
    if force_resume and not force:
        raise UsageError("force_resume goes with force, as `run --force --resume`")
    if (only_keys or only_codes) and retry is None:
        raise UsageError("only_keys and only_codes pick the jobs a retry sends again: they go with retry")
    # checked as a retry's options are (`RunOptions`): lists of strings
    picking = RunOptions(retry_failed=retry is not None, only_keys=only_keys, only_codes=only_codes)
    if not isinstance(p, Plan):
        p = plan(p)
    db = p.state_dir / "state.db"
    if not db.exists() and not os.path.islink(db):  # a link to a folder not there is refused (`Store`)
        check_not_lost(db, p.outputs_dir)  # a state whose runs wrote the output folder is not new
        return None
    try:
        store = Store(db, readonly=True, outputs_dir=p.outputs_dir)
    except NotRecordedError:  # an empty file: a run being made this moment, or one killed before it wrote
        return None
    with store:
        if whole:
            # A damaged page that the plan does not read refuses the run all the same (it checks the file whole as
            # it opens it): the plan says so, rather than predict a run that will be refused.
            store.check_whole()
        stored, previous, gone, (changes, earlier, fields), form_only = _stored(store, p)
        left, warnings = left_behind(p, store), (*name_shared(p, store), *folder_shared(p, store))
        away = resume.sent_away(p, store, retry_unknown=retry == "retry --unknown")
        keyed = resume.key_away(p, store, retry_unknown=retry == "retry --unknown",
                                skip=away.hashes if away is not None else ())
        if gone is not None:  # said before anything else: `run` and `retry` refuse it
            field = (plan_mod.outputs_field(p.manifest),)
            warnings = (p.manifest.warning(field, f"{gone} (`run` and `retry` refuse until then)"), *warnings)
        only = store.force_unsent(p.manifest.name)[1] if force_resume else None
        d = plan_mod.diff(p, stored, previous, force=force, retry=retry, sent_again_by=_sent_again_by, force_only=only,
                          picks=picking.picks if picking.only_keys or picking.only_codes else None)
        # a done job's recorded take stays, its poster with it, but for a job re-rendered (--force, a simulator's
        # video at another endpoint)
        sent = d.to_send(p.jobs)
        again = {j.output_str for j in sent}
        aside = kept_aside(p.sidecared, p.posters, skip_videos={*d.verified, *d.altered},
                           skip_posters=() if force and not force_resume else d.verified - again, renders=store.renders,
                           hashes={j.output_str: j.hash for j in p.jobs})
        # a video of gridrun's this state did not render, sent with its own key: records it lost, not another state's
        store.check_not_behind(p.outputs_dir, aside.unrecorded)
        if aside.others:  # a done job's video recorded there is copied aside first (`resume._put_aside`): kept
            recorded = {row["output_path"] for row in store.done_at(list(aside.others))}
            aside = aside._replace(others=tuple(v for v in aside.others if v not in recorded))
            aside = _own_earlier(aside, p, store)
        aside = _left_by_recover(aside, p, store)
        last = store.latest_run(p.manifest.name)
        above = None if last is None else store.billed_above(last)
        billing = resume.budget_billing(p, store) if p.budget_micros is not None else None
        # said of the jobs a run would send alone: one cached (a file saved back as the run that made it had it)
        # costs nothing
        keys = {j.key for j in sent} if any(form_only) else set()
        found = [(pair, was, files, rows) for key, pair, was, files, rows in form_only.form if key in keys]
        if found and last is not None:
            warnings = (plan_mod.form_only_warning(p.manifest, last.id, found, force=force), *warnings)
        spaced = [(pair, was, files, rows) for key, pair, was, files, rows in form_only.spacing if key in keys]
        if spaced and last is not None:
            warnings = (plan_mod.spacing_warning(p.manifest, last.id, spaced, force=force), *warnings)
        written = [pair for key, pair in form_only.numbers if key in keys]
        if written and last is not None:
            warnings = (plan_mod.numbers_warning(p.manifest, last.id, written, force=force), *warnings)
        names = [its for key, its in form_only.renamed if key in keys]
        if names and last is not None:
            warnings = (plan_mod.renamed_images_warning(p.manifest, last.id, names, force=force), *warnings)
        defaults = [its for key, its in form_only.environment if key in keys]
        if defaults and last is not None:
            warnings = (plan_mod.environment_defaults_warning(p.manifest, last.id, defaults), *warnings)
        # the earlier values of a job found under another key by its request (a data file's line ends changed)
        earlier = {**earlier, **{key: {name: pair[0].get(name) for name in pair[0].keys() | pair[1].keys()
                                       if pair[0].get(name) != pair[1].get(name)}
                                 for key, pair, was, _, _ in form_only.spacing
                                 if was is not None and isinstance(pair[0], dict) and isinstance(pair[1], dict)}}
    return replace(d, left_behind=left, sent_away=away, key_away=keyed, warnings=warnings, aside=aside, changes=changes, earlier=earlier,
                   changed_fields=fields,
                   previous_run=None if last is None else last.id, billed_above=above, billing=billing)


def _provider(p: Plan) -> Any:
    m = p.manifest
    env = base_url_env(m.provider)
    prov = get_provider(
        m.provider,
        # the environment's base URL (the user's choice) wins over the manifest's (a file from anyone)
        base_url=None if env and os.environ.get(env, "").strip() else m.base_url,
        sim_config=m.data.get("sim"),
        capability_files=_capability_files(m),
        state_dir=state_home(p.state_dir),  # the simulator's world beside the state file, a linked one's too
    )
    if hasattr(prov, "key_folders"):  # a missing key's advice names a .env file beside the manifest that sets it
        prov.key_folders = (m.path.parent,)
    if hasattr(prov, "base_url_from") and m.base_url:  # a served simulator's: named in its errors
        line, column = m.where(("base_url",))
        prov.base_url_from = f"`base_url:` at {m.display or m.path}:{line}:{column}"
    return prov


@contextlib.contextmanager
def _closing(prov: Any) -> Iterator[None]:
    """Work with `prov`, a provider made for that work (`_provider`; None: one the caller gave, left as it is),
    closed after it: what it keeps open (the simulator's world file) would stay open in a host's process, held
    in reference cycles, until a collection."""
    try:
        yield
    finally:
        close = getattr(prov, "close", None)
        if callable(close):
            close()


def run(
    p: Plan | Manifest | str | Path,
    *,
    options: RunOptions | Mapping[str, Any] = RunOptions(),
    on_progress: Callable[[RunStatistics], None] | None = None,
    argv: Sequence[str] = (),
    provider: Any = None,
    report: bool = True,
    on_balance: Callable[[balance.BalanceCheck], None] | None = None,
    stop: threading.Event | None = None,
    detach: threading.Event | None = None,
    _picking: Diff | None = None,
) -> executor.RunResult:
    """Run a plan to the end (resuming an earlier run of the same manifest). Blocks.

    Given a path or a `Manifest`, it plans it first: the result's `warnings` are then those `gridrun run` prints
    before it sends anything (an unknown parameter spelled close to a known one, a file in a job's way, another
    state writing the output folder, ...), each as `file:line:column: field: message`. Given a `Plan`, they are the
    plan's own (`Plan.warnings`; `runner.diff(plan)` has the state's).

    `options` may also be a mapping of `RunOptions` fields. Before the first create the account's balance is
    asked once, where the provider has a balance endpoint (`runner.balance`); `on_balance` is told what was found
    (what it raises refuses the run, raised as it is, nothing recorded or sent). An `on_progress` that raises is
    not called again and the run goes on: its exception is the result's `progress_error`, logged on the `runner`
    logger with its traceback. A `KeyboardInterrupt` or `SystemExit` out of it ends the run at once, as `detach`
    does (recorded interrupted, the jobs in flight left for the next run), and is raised once the state is closed.

    `stop` and `detach` let another thread (a notebook's cell, a GUI) end a run this call runs, as the first and
    second Ctrl-C do: once `stop` is set, no new job is sent, the jobs sent are followed to their end and
    downloaded, and the run ends `interrupted` (exit code 130); once `detach` is set, the run ends at once,
    `interrupted`, leaving the jobs in flight at the provider for the next run to collect at no new cost. Each is
    heeded within a tenth of a second.

    `_picking` is for `gridrun retry --key/--code`: the plan against the state of its selection (`diff` with its
    retry, `only_keys` and `only_codes`), which it made to warn of the selection first, not made again here.

    :raises BudgetError: the plan does not fit the budget.
    :raises BalanceError: the account's balance is known and below what the run would send; nothing was sent.
    :raises EndpointError: the base URL answered the balance check with a web page, not the API; nothing was sent.
    :raises InFlightError: jobs the last run sent still render, and the changed manifest no longer has them
        (`leave_in_flight` runs anyway).
    :raises LockError: another runner holds the state, or another run (of another state) writes into the output
        folder.
    :raises StateWriteError: the state could not be written once the run began (a full disk): the run stopped
        sending jobs; those it sent are collected by the next run.
    :raises UsageError: bad options, an argument of the wrong kind (`stop` not an Event, `argv` a string), or
        called from a running event loop (Jupyter, `asyncio.run`, `trio.run`), which a blocking call would stall:
        `await asyncio.to_thread(runner.run, plan, stop=stop)` runs it from there (a cancelled await leaves the run
        going in its thread: `stop.set()` stops it).
    """
    options = run_options(options)
    if provider is not None and not (hasattr(provider, "caps") and callable(getattr(provider, "client", None))):
        raise UsageError("provider must be a provider object, as `runner.providers.get_provider(name, ...)` makes, "
                         f"got {type(provider).__name__}")
    check_flag("report", report)
    _check_run_arguments(argv=argv, on_progress=on_progress, on_balance=on_balance, stop=stop, detach=detach)
    if options.handle_signals and threading.current_thread() is not threading.main_thread():
        raise UsageError("handle_signals needs the main thread, where Python delivers signals; "
                         "from another thread, run without it")
    command = "retry" if options.retry_failed or options.retry_unknown else "run"
    # the run is starting from here on (`RunStartingError` to `status` from another thread), its imports included
    # (sniffio's, then httpx's and the executor's: a quarter of a second the first time)
    with _started_here(p) as started:
        loop = _in_event_loop()
        if loop is not None:
            raise UsageError("runner.run blocks until the run ends, so it cannot be called from a running event loop"
                             f"{'' if loop == 'asyncio' else f' ({loop})'}; there, use "
                             f"{_in_a_thread(loop, 'runner.run, plan')}, with `stop=` a threading.Event whose set() "
                             "stops the run (cancelling the await does not)")
        loop_options()  # a wrong GRIDRUN_LOOP said before anything is planned or locked
        _load_httpx()  # before the executor, which imports it
        from .executor import Executor

        if not isinstance(p, Plan):
            m = _manifest(p, planned=True)
            started.of(m)
            with starting(m):
                planned = plan(m)
                # what `gridrun run` warns of before it sends, as it finds it: a folder it cannot write refused first
                plan_mod.check_writable(planned, then=command)
                warned = [str(w) for w in plan_mod.warnings_of(planned, diff(planned, force=options.force, force_resume=options.force_resume))]
                result = run(planned, options=options, on_progress=on_progress, argv=argv, provider=provider,
                             report=report, on_balance=on_balance, stop=stop, detach=detach)
            return replace(result, warnings=warned)
        prov = provider or _provider(p)
        # What the run opens is closed however it ends, a refusal too: a host calling again and again while another
        # run holds the lock would otherwise pile up open state files, held in reference cycles until a collection.
        with _closing(None if provider is not None else prov):
            if callable(getattr(prov, "api_key", None)):
                prov.api_key()  # a missing key is said before any state is made
            p = replace(p, key_print=_sends_with(prov))  # the key this run sends, as its provider has it
            _check_tls(prov)
            if report:
                _check_report_writer()
            plan_mod.check_writable(p, then=command)  # before the state is opened to write: a read-only place is only warned of by plan
            resume.check_files_writable(p, then=command, provider=prov)
            resume.check_state_linked(p)  # before a state is made beside a link, which would pay for every job again
            _judge_before_upgrade(p, options)
            if not options.leave_in_flight:  # before the output folder's lock is taken, naming this state
                resume.check_other_state(p)
            if options.only_keys or options.only_codes:
                # a selection that picks no job is refused before a run is recorded, as `gridrun retry` refuses it;
                # `_picking`: that plan against the state (`diff` with the retry and its selection), made already
                # by `gridrun retry --key/--code`, which warned of it first: not made again
                picking = _picking if _picking is not None else diff(
                    p, retry="retry --unknown" if options.retry_unknown else "retry",
                    only_keys=options.only_keys, only_codes=options.only_codes)
                refusal, _ = selection_misses(picking.retry_candidates if picking else (), options.only_keys,
                                              options.only_codes,
                                              "retry --unknown" if options.retry_unknown else "retry")
                if refusal is not None:
                    raise UsageError(refusal)
            store = Store(p.state_dir / "state.db", outputs_dir=p.outputs_dir, then=command)
            try:
                store.acquire_lock(then="run `gridrun retry` again" if command == "retry" else "run again",
                                   manifest=p.manifest.path, name=p.manifest.name)
            except BaseException:
                store.close()
                raise
            # The run's state could not be written (a full disk, another process's write transaction) once it began:
            # the task group ended every task, so nothing more is sent. Before, nothing was sent: said with the
            # state's path.
            with _closed(store, lambda failed: store.unusable(failed, then=command) if store.run_id is None
                         else store.unwritable(failed)):
                resume.check_outputs_there(p, store)
                _lock_outputs(p, store)
                # what writes killed before their rename left, in the folders this run now holds (and the state's)
                resume.remove_stale_temps(p.temps, (p.outputs_dir, p.outputs_dir / ".runs", p.state_dir))
                on_report, on_output = _report_hooks(p, report_every=options.report_every) if report else (None, None)
                ex = Executor(p, prov, store, options=options, on_progress=on_progress, on_report=on_report,
                              on_output=on_output, on_balance=on_balance, argv=argv, stop=stop, detach=detach)
                with _running_here():
                    result = _own_loop(ex.run)
    if ex.caller_raised is not None:  # `on_progress`'s Ctrl-C or exit: the run ended interrupted, its state closed
        raise ex.caller_raised
    return replace(result, warnings=[str(w) for w in p.warnings])


def recover(m: Plan | Manifest | str | Path, *, dry_run: bool = False, max_jobs: int | None = None,
            argv: Sequence[str] = (), key_part: str | None = None) -> recovery.RecoverResult:
    """Rebuild the manifest's state, lost, emptied or behind (`plan` and `run` refuse it), from what its output
    folder holds, paying nothing: each job whose finished video is at its path, whole, beside a sidecar of
    gridrun's of that very job, is recorded done with that take, as a run of status `recovered`; the output
    folder's lock then names that run, and `plan` and `run` go on from it. Jobs the state holds are left as they
    are. Nothing is sent to a provider, and no video is moved. `dry_run`: what it would find and record, writing
    nothing. Returns a `RecoverResult` (`recover_json` of the module `runner.recover` makes of it the object
    `gridrun recover --json` prints). `key_part`: the part of the idempotency keys the user names as this state's
    where the output folder's lock does not tell it (`gridrun recover --key-part`).

    :raises ManifestError: or ManifestErrors, an invalid manifest: nothing written.
    :raises LockError: another runner holds the state, or another state's run the output folder.
    :raises StateError: the state cannot be opened (damaged, another program's) or written.
    :raises UsageError: `dry_run` not True or False, `argv` not a list of words.
    """
    from .recover import recover as recovering

    check_flag("dry_run", dry_run)
    _check_argv(argv)

    # an input image moved away leaves its jobs unchecked, said as such, not the whole manifest refused
    p = m if isinstance(m, Plan) else _plan(m, max_jobs=max_jobs, unread_images=True)
    return recovering(p, dry_run=dry_run, argv=argv, key_part=key_part)


class _Start:
    """A run of this process from the call of `run` until it returns (`_started_here`): the manifest file it was
    given (None: a `Manifest` made by hand, of no file) and, once it is loaded, its state folder and name."""

    def __init__(self, manifest: Path | None) -> None:
        self.manifest = manifest
        self.state_dir: Path | None = None
        self.name: str | None = None

    def of(self, m: Manifest) -> None:
        """The run's manifest, loaded: its file, state folder and name are known."""
        self.manifest = Path(m.path)
        self.state_dir = Path(os.path.abspath(plan_mod.state_dir_of(m, check=False)))
        self.name = m.name

    def is_for(self, state_dir: Path, manifest: Path | None) -> bool:
        """Whether this run may be one of the state folder `state_dir` or of the manifest file `manifest`."""
        return (self.state_dir is not None and self.state_dir == state_dir) or \
            (manifest is not None and self.manifest == manifest)


# The runs of this process being made (threads of a host), from the call of `run`: until a first run has planned and
# taken the lock, nothing on disk says so (a state folder not there yet takes no STARTING file), and a `status` of
# another thread is told from here that it is starting (`run_starting`).
_starts: list[_Start] = []
_starts_lock = threading.Lock()


@contextlib.contextmanager
def _started_here(p: Any) -> Iterator[_Start]:
    """While it lasts, a run of `p` (what `run` was given) is being made in this process (`_starts`)."""
    given = p.manifest if isinstance(p, Plan) else p
    start = _Start(None)
    if isinstance(given, Manifest):
        start.of(given)
    elif isinstance(given, (str, os.PathLike)):
        try:
            start.manifest = Path(os.path.abspath(given))
        except (TypeError, ValueError):  # a NUL byte: `load` says what is wrong
            pass
    with _starts_lock:
        _starts.append(start)
    try:
        yield start
    finally:
        with _starts_lock:
            _starts.remove(start)


def _starting_here(state_dir: Path, m: Manifest | Plan | str | Path | None, name: str | None) -> bool:
    """Whether a run of this process is being made (`_starts`) of the state folder `state_dir` or of the manifest
    `m`, and of the manifest named `name` (None: of any; a run whose manifest is not loaded yet may be one)."""
    given = m.manifest if isinstance(m, Plan) else m
    try:
        manifest = Path(given.path) if isinstance(given, Manifest) else \
            Path(os.path.abspath(given)) if isinstance(given, (str, os.PathLike)) else None
    except (TypeError, ValueError):
        manifest = None
    state_dir = Path(os.path.abspath(state_dir))
    with _starts_lock:
        return any(s.is_for(state_dir, manifest) and (name is None or s.name in (None, name)) for s in _starts)


def _judge_before_upgrade(p: Plan, options: RunOptions) -> None:
    """A state an older gridrun wrote is upgraded, one way, once a run opens it to write: the refusals that
    need only read it (the budget, jobs left in flight the manifest no longer has) are made before, so that a
    run refused leaves it as it was, for that gridrun still to use. A reset a killed run left pending, which
    the run puts back first, leaves the judging to the run.

    :raises BudgetError, InFlightError: the run is refused.
    """
    from .executor import run_budget

    db = p.state_dir / "state.db"
    if not db.is_file():
        return
    try:
        store = Store(db, readonly=True, outputs_dir=p.outputs_dir)
    except NotRecordedError:
        return
    with store:
        if (store.schema >= SCHEMA_VERSION or held_elsewhere(store.real.with_name("lock"))
                or (store.schema >= 3 and store.pending_resets())):
            return  # a run holding it, or a reset to put back: the run's own refusal, under its lock
        resume.decide(p, store, options, budget_micros=run_budget(p, options))


def _check_run_arguments(*, argv: Any, on_progress: Any, on_balance: Any, stop: Any, detach: Any) -> None:
    """Refuse `run`'s arguments of the wrong kind before anything is planned, locked or recorded, where they
    would fail inside the run (leaving it recorded `crashed`) or be recorded wrong (`argv="run"` as `r u n`).

    :raises UsageError: naming the argument and what it must be.
    """
    _check_argv(argv)
    for name, hook in (("on_progress", on_progress), ("on_balance", on_balance)):
        if hook is not None and not callable(hook):
            raise UsageError(f"{name} must be a function (or None), got {hook!r}")
    for name, event in (("stop", stop), ("detach", detach)):
        if event is not None and not callable(getattr(event, "is_set", None)):
            raise UsageError(f"{name} must be a threading.Event (or None), whose set() another thread calls, "
                             f"got {event!r}")


def _check_argv(argv: Any) -> None:
    """:raises UsageError: `argv` is not a list of the command line's words (a string would be recorded `r u n`)."""
    if isinstance(argv, (str, bytes)) or not isinstance(argv, Sequence) or not all(isinstance(a, str) for a in argv):
        raise UsageError(f"argv must be a list of the command line's words, as ['run', 'm.yaml'], got {argv!r}")


@contextlib.contextmanager
def _closed(store: Store, error: Callable[[sqlite3.Error], Exception]) -> Iterator[None]:
    """Work on `store`, closed after it; a failure to write the state (raised alone or in the exception group of
    the work's tasks) is raised as `error(the SQLite error)`, which says what it means for the work."""
    try:
        try:
            yield
        finally:
            store.close()
    except BaseException as exc:
        failed = store_error(exc)
        if failed is None:
            raise
        raise error(failed) from exc


@contextlib.contextmanager
def starting(m: Manifest) -> Iterator[None]:
    """While it lasts, a run or retry of `m` is starting (`state.announcing_start`): from before its planning
    until `run` takes the runner lock, `status --watch` waits for it (`run_starting`) rather than report the
    latest run's end."""
    with announcing_start(plan_mod.state_dir_of(m), manifest=m.path, name=m.name):
        yield


def _lock_outputs(p: Plan, store: Store) -> None:
    """The output folder's lock, beside the runner lock `store` holds (`resume.lock_outputs`)."""
    resume.lock_outputs(p, store)


# A run allocates many short-lived objects (requests, responses, coroutine frames) while holding thousands
# of long-lived ones; with Python's default first threshold (700) the collector ran about 2,000 times in a
# 10,000-job run, 2.3 s of 41 s CPU. At 20,000 it ran 68 times, 1.3 s; peak memory stayed within the
# run-to-run spread (259 MB against 230-270 MB).
GC_YOUNG_THRESHOLD = 20_000


# The runs going on in this process (threads of a host), the collector's thresholds before the first of them,
# and those the first set.
_runs_here = 0
_threshold_before: tuple[int, ...] = ()
_threshold_set: tuple[int, ...] = ()
_runs_lock = threading.Lock()


@contextlib.contextmanager
def _running_here() -> Iterator[None]:
    """While a run lasts, the collector's first threshold raised to GC_YOUNG_THRESHOLD, then put back (a
    threshold of 0, automatic collection off, stays off). Runs of one process overlap (threads of a host): the
    first raises it, the last puts back what was there before the first, unless the program set another since
    (its own choice stands), and ends the download's disk threads, which nothing uses until another run."""
    global _runs_here, _threshold_before, _threshold_set
    with _runs_lock:
        if not _runs_here:
            _threshold_before = _threshold_set = gc.get_threshold()
            if _threshold_before[0]:
                _threshold_set = (max(_threshold_before[0], GC_YOUNG_THRESHOLD), *_threshold_before[1:])
                gc.set_threshold(*_threshold_set)
        _runs_here += 1
    try:
        yield
    finally:
        with _runs_lock:
            _runs_here -= 1
            if not _runs_here:
                if gc.get_threshold() == _threshold_set:
                    gc.set_threshold(*_threshold_before)
                download = sys.modules.get("runner.providers.download")  # loaded by the run, if it got that far
                if download is not None:
                    download.close_disk_threads()


def _check_report_writer() -> None:
    """Refuses a run that is to write its report where jinja2, which writes the page, or markupsafe, which jinja2
    and the report escape its text with, is missing or does not import: its ImportError, which `gridrun run` says
    in one line with the `pip install` that fixes it (`entry.missing_package`), exit 2, before anything is recorded
    or sent, so that no run pays for videos whose page it cannot write. A run with `report=False` (`--no-report`)
    goes on without them."""
    import jinja2  # noqa: F401
    import markupsafe  # noqa: F401


def _report_hooks(
    p: Plan, *, report_every: float | None = None,
) -> tuple[Callable[[int, bool | None], Path | None] | None, Callable[[Sequence[Path]], None] | None]:
    """The run's report builder, `build(run_id, final)` (`final` None: the run ended without its final page, whose
    stamp marks the page there out of date), and its poster maker, given new videos while the run goes on; only the
    final build makes the posters still missing. Each live page says within how long
    the run writes the next (`rebuilt_within`, reckoned with the last build's time; `report_every`: the
    run's option, its default when None)."""
    from .live import rebuilt_within
    from .report import ReportMemo, make_posters, mark_out_of_date, write_report

    every = RunOptions().report_every if report_every is None else report_every
    memo = ReportMemo()
    took = [0.0]  # seconds the last build took

    def build(run_id: int, final: bool | None) -> Path | None:
        if final is None:  # the run ended without its final page: the page it leaves says it is out of date
            with Store(p.state_dir / "state.db", readonly=True) as store:
                mark_out_of_date(store, run_id, p.outputs_dir / "report.html")
            return None
        started = time.monotonic()
        with Store(p.state_dir / "state.db", readonly=True) as store:
            path = write_report(store, run_id=run_id, posters=final, memo=memo,
                                refresh=rebuilt_within(every, took[0]))
        took[0] = time.monotonic() - started
        return path

    return build, make_posters


def _state_dir(
    m: Manifest | Plan | str | Path | None, state_dir: str | Path | None = None,
) -> tuple[Path, str | None, Path | None]:
    """The state folder, the manifest's name and the output folder it now names (the latter two None without
    a manifest: the state folder here, whose runs' folders are then taken as recorded; the folder None too
    with a `state_dir` of the caller's)."""
    if state_dir is not None:
        if not isinstance(state_dir, (str, os.PathLike)):
            raise UsageError(f"state_dir must be the path of a state folder, got {type(state_dir).__name__}")
        return Path(state_dir), (None if m is None else _manifest(m).name), None
    if m is None:
        here = Path.cwd() / ".gridrun"
        if os.path.lexists(here / "state.db"):  # a link to a folder not there is refused, naming where it leads
            return here, None, None
        if here.is_dir():
            raise UsageError(f"no manifest given, and {here} holds no state.db (nothing recorded there, or its state "
                             "was removed or is elsewhere); name the manifest")
        raise UsageError("no manifest given and no .gridrun/ state folder here; name the manifest")
    mm = _manifest(m)
    return plan_mod.state_dir_of(mm, check=False), mm.name, plan_mod.outputs_dir_of(mm, check=False)


def _given_store(m: Manifest | Plan | str | Path | None) -> tuple[Store, str | None, Path | None]:
    """The state store of manifest `m` (read-only), its name and the output folder it now names (`_state_dir`);
    the store's errors that name a manifest to give again name `m`, the file given (`Store.manifest_path`). A
    manifest file that does not load is taken as `status` takes it (`status_manifest`: as the state beside it
    recorded it), with its warning said (`export.tell`)."""
    from .export import tell

    if isinstance(m, (str, os.PathLike)):
        mm, warning = _reported_manifest(m)
        if warning is not None:
            tell(warning, "warning")
    else:
        mm = None if m is None else _manifest(m)
    sd, name, home = _state_dir(mm)
    store = Store(sd / "state.db", readonly=True, outputs_dir=home)
    store.manifest_path = None if mm is None else mm.path
    return store, name, home


def _reported_manifest(m: str | os.PathLike[str]) -> tuple[Manifest, str | None]:
    """The manifest file `m` `report` and `export` read the runs of (`_manifest`), and a warning when it is not the
    file as it is: a run's copy whose data files do not load, or a file that does not load, taken as `status` takes
    it."""
    copy = _run_copy(m)
    if copy is not None:
        return copy.manifest, _copy_warning(copy)
    try:
        return _manifest(m), None
    except (ManifestError, ManifestErrors) as exc:
        recorded = _as_recorded(m, exc, "writing the files of")
        if recorded is None:
            raise
        return recorded[0].manifest, recorded[1]


def status(
    m: Manifest | Plan | str | Path | None = None, *, state_dir: str | Path | None = None,
    reuse: dict[int, Any] | None = None,
) -> Snapshot:
    """The latest run's snapshot, read without the lock (works while a run goes on). `reuse`, kept by a
    caller that reads again and again, spares decoding the jobs that did not move (see `Store.snapshot`).
    A manifest file that does not load (a typo mid-edit, while its run goes on) is read as the state beside it
    recorded it for its latest run, as `gridrun status` reads it; the snapshot's `warnings` say so.

    :raises NotRecordedError: no state yet, or no run of the manifest.
    :raises RunStartingError: (a NotRecordedError) none yet, but a run is starting: read again in a moment.
    :raises ManifestError: or ManifestErrors, the file does not load and no state records it.
    :raises UsageError: `reuse` not a dict.
    """
    if reuse is not None and not isinstance(reuse, dict):
        raise UsageError(f"reuse must be a dict (or None), the same one given to each call, got {reuse!r}")
    m, warning = _followed(m)
    sd, name, home = _state_dir(m, state_dir)
    with _nothing_yet(m, sd, name, state_dir), Store(sd / "state.db", readonly=True, outputs_dir=home) as store:
        store.manifest_path = None if m is None else m.path
        renamed = _renamed_run(m, sd, name, store) if state_dir is None else None
        if renamed is not None:  # the run going on of this very file, under the name it had
            name, warning = renamed[0], renamed[1] if warning is None else f"{warning}; {renamed[1]}"
        snap = store.snapshot(manifest_name=name, reuse=reuse, videos=False)
        # of a run that ended (or whose process is gone): what a next run does with them, as `status` says it
        if (m is not None and any(snap.counts.get(s) for s in resume.FOLLOWED)
                and (snap.run.ended_at is not None or snap.run.process_gone())):
            snap = _sent_elsewhere(snap, m, store)
        # of the manifest's latest run, ended: the re-renders its latest --force run left as they were
        if (snap.run.ended_at is not None or snap.run.process_gone()) and snap.run.id == snap.manifest_latest_run:
            forced_by, unsent = store.force_unsent(snap.run.manifest_name)
            # planned: reset by a run killed before it sent them, which the next run puts back done as they were
            keys = tuple(j.key for j in snap.jobs if j.hash in unsent and j.state in ("done", "planned"))
            if keys:
                snap = replace(snap, force_unsent=keys, force_run=forced_by)
    # jobs of this manifest file in flight in the state it named before its `state_dir:` changed, which the output
    # folder's lock still names: where they are, beside the runs of the state it names now
    other = None if m is None or home is None else resume.in_other_state(m.path, sd, home)
    warnings = [w for w in (warning, None if other is None else other.warning()) if w is not None]
    return replace(snap, warnings=warnings) if warnings else snap


def _renamed_run(m: Manifest | None, sd: Path, name: str | None, store: Store) -> tuple[str, str] | None:
    """For a manifest file of whose `name:` the state holds no run while a run of this very file goes on (the
    state's runner lock held by its live process) under another name (`name:` edited since it started): that name,
    and a warning saying so. None otherwise."""
    from .state import lock_record, runner_lock_free, state_home

    if m is None or name is None or store.latest_run(name) is not None:
        return None
    held = lock_record(sd)
    if (held is None or held.command == "cancel" or held.name is None or held.name == name
            or not held.same_file(m.path) or runner_lock_free(state_home(sd) / "lock")):
        return _left_under_old_name(m, name, store)
    if store.latest_run(held.name) is None:
        return None
    return held.name, (f"the manifest's name: is {name} now, but the run going on (pid {held.pid}) was started from "
                       f"this file as {held.name}: that run is shown, which keeps the name it started with (the "
                       f"next `gridrun run` is a run of {name}, which has none yet)")


def _left_under_old_name(m: Manifest, name: str, store: Store) -> tuple[str, str] | None:
    """For a manifest file of whose `name:` the state holds no run: the name of the latest run made from this very
    file under another name (`name:` edited since), the latest of that name, which left jobs in flight, and a
    warning saying so; its jobs are this file's to collect. None otherwise."""
    run = resume.run_under_old_name(m.path, name, store)
    if run is None:
        return None
    flying = [r for r in store.run_job_rows(run.id) if r["state"] in plan_mod.IN_FLIGHT]
    if not flying:
        return None
    n = len(flying)
    return run.manifest_name, (f"the manifest's name: is {name} now, which has no run yet, but run {run.id} of this "
                               f"file, as {run.manifest_name}, left {n:,} {'job' if n == 1 else 'jobs'} in flight: "
                               "that run is shown")


def _own_earlier(aside: Any, p: Plan, store: Store) -> Any:
    """`aside` (`outputs.Aside`) with its `others` that are the very job's own earlier take moved to `own`: the
    sidecar names the key of the job whose video goes there and a done job of that key's earlier request, whose
    record is at another path (its copy kept aside as the request changed: another prompt, another provider), so
    that no other job's video, nor a copy a renamed sweep left, is in the way."""
    from .outputs import gridrun_sidecar

    if not aside.others:
        return aside
    keys = {j.output_str: j.key for j in p.jobs}
    docs = {v: gridrun_sidecar(Path(v)) for v in aside.others}
    done = store.done_keys([d["hash"] for d in docs.values() if d is not None])
    own = tuple(v for v, d in docs.items() if d is not None and keys.get(v) is not None
                and d.get("key") == keys[v] and done.get(d["hash"]) == keys[v])
    if not own:
        return aside
    return aside._replace(others=tuple(v for v in aside.others if v not in own), own=own)


def _left_by_recover(aside: Any, p: Plan, store: Store) -> Any:
    """`aside` (`outputs.Aside`) with its `unrecorded` videos that this state made moved to `left`: their sidecars'
    idempotency keys carry the state's own key part, or the one whose digest the output folder's lock, of this state
    folder, records (`key_part`). A render of the state's own that it has no record of is one a `gridrun recover`
    left as it was (`check_not_behind` refuses any other): its video edited or cut short since, or its sidecar
    holding a figure out of range. It is no other state's: a run keeps it aside all the same, and renders the job
    again."""
    from .outputs import gridrun_sidecar
    from .recover import _out_of_range, _salt_of
    from .state import KEYS_SALTED_AT, key_part_digest, lock_of_state, outputs_writer

    if not aside.unrecorded or store.schema < KEYS_SALTED_AT:
        return aside
    salt = store.key_salt()
    writer = lock_of_state(outputs_writer(p.outputs_dir), p.outputs_dir, p.state_dir.resolve(), salt)
    digest = writer.get("key_part") if writer is not None else None
    left, wrong = [], []
    for video in aside.unrecorded:
        doc = gridrun_sidecar(Path(video))
        theirs = _salt_of(doc.get("idempotency_key"), doc["hash"]) if doc is not None else None
        if doc is not None and theirs is not None and (theirs == salt or (digest and key_part_digest(theirs) == digest)):
            left.append(video)
            if _out_of_range(doc):
                wrong.append(video)
    if not left:
        return aside
    return aside._replace(unrecorded=tuple(v for v in aside.unrecorded if v not in left), left=tuple(left),
                          left_out_of_range=tuple(wrong))


def _sent_elsewhere(snap: Snapshot, m: Manifest, store: Store) -> Snapshot:
    """`snap` with its jobs in flight or of unknown outcome that were sent to another endpoint than `m`'s now
    (`Snapshot.sent_elsewhere`). Best effort: a manifest whose endpoint cannot be told (its capability files
    unusable, which a run says) leaves `snap` as it is."""
    try:
        files = _capability_files(m)
        caps = capabilities.load(m.provider, extra=files)
        now = endpoint(m, caps, files) if caps is not None else None
    except (GridrunError, capabilities.CapabilityDataError, OSError, ValueError):
        return snap
    if now is None:
        return snap
    followed = [j for j in snap.jobs if j.state in resume.FOLLOWED]
    sent = store.sent_to([j.hash for j in followed], resume.FOLLOWED)
    simulated = store.sent_to([j.hash for j in followed], resume.FOLLOWED, simulator=True)
    away = {j.key: sent[j.hash] for j in followed if plan_mod.sent_elsewhere(sent.get(j.hash), now[0])}
    # sent here with another API key than the one set now: a plain run refuses over them (`resume.key_away`)
    key_now = _key_print(m, caps)
    prints = store.sent_with([j.hash for j in followed if j.key not in away], resume.FOLLOWED) if key_now else {}
    keyed = {j.key: prints[j.hash] for j in followed
             if j.key not in away and plan_mod.sent_with_another_key(prints.get(j.hash), key_now)}
    if keyed:
        assert key_now is not None
        snap = replace(snap, sent_with_key=keyed, key_var=key_now[1])
    if not away:
        return snap
    anew = {k: at for k, at in away.items() for j in followed if j.key == k and j.hash in simulated}
    away = {k: at for k, at in away.items() if k not in anew}
    by = store.sent_by([j.hash for j in followed if j.key in away], resume.FOLLOWED)
    sender = {away[j.key]: by.get(j.hash) for j in followed if j.key in away}
    return replace(snap, sent_elsewhere=away, sent_anew=anew, endpoint=now,
                   point_back={at: plan_mod.point_back(m, at, sender.get(at)) for at in dict.fromkeys(away.values())})


def runs(m: Manifest | Plan | str | Path | None = None, *, state_dir: str | Path | None = None) -> Runs:
    """The manifest's runs, newest first, with their jobs done and money (without a manifest: every run of the
    state folder here), read without the lock. Run ids count the runs of every manifest sharing the state. A
    manifest file that does not load is read as `status` reads it; the list's `warnings` say so.

    :raises NotRecordedError: no state yet, or no run of the manifest.
    :raises RunStartingError: as `status`.
    :raises ManifestError: or ManifestErrors, the file does not load and no state records it.
    """
    m, warning = _followed(m)
    sd, name, home = _state_dir(m, state_dir)
    with _nothing_yet(m, sd, name, state_dir), Store(sd / "state.db", readonly=True, outputs_dir=home) as store:
        store.manifest_path = None if m is None else m.path
        found = store.run_summaries(name)
        if not found:
            raise store.not_recorded(name)
    return Runs(found, [warning] if warning else [])


def _followed(m: Manifest | Plan | str | Path | None) -> tuple[Manifest | None, str | None]:
    """The manifest `status` and `runs` read the state of, and the warning when it is not the file as it is
    (`status_manifest`, which `gridrun status` reads it with too)."""
    if isinstance(m, Plan):
        return m.manifest, None
    if m is None or isinstance(m, Manifest):
        return m, None
    return status_manifest(m)


def manifest_copy_file(m: Manifest | str | Path | None, run_id: int, *, state_dir: str | Path | None = None) -> Path:
    """Run `run_id`'s copy of the manifest (.runs/run-N.yaml in the output folder the manifest names now, else in
    the one the run recorded), written again from the text the state keeps of it when it is missing (the output
    folder's .runs/ tidied by hand): what puts the manifest back as that run had it. It is written only in the
    output folder of the manifest given, one that is there and no other state writes: never in the folder the
    run recorded (a moved project's old path, the mount point of a disk not mounted).

    :raises NotRecordedError: no state yet, or no such run of the manifest.
    :raises CopyNotWrittenError: the copy is missing and was not written again (the message says why; its `text`,
        when the state keeps it, is the copy's).
    """
    _check_run_id("run_id", run_id)
    sd, name, home = _state_dir(m, state_dir)
    with Store(sd / "state.db", readonly=True) as store:
        store.run(run_id, name)  # a run of this manifest, else the error naming its runs
        problems: list[OSError] = []
        path, there = store.manifest_copy_file(run_id, folder=home, problems=problems)
        if not there:
            text = store.manifest_copy(run_id)
            why = ("the state has no text of it" if not text else
                   "no manifest was given, whose output folder it would be written in" if home is None else
                   f"{home} is not there" if not home.is_dir() else
                   f"it cannot be written: {write_problem(problems[0], folder=path.parent)}" if problems else
                   "its output folder is written by another state")
            raise CopyNotWrittenError(
                f"{path}: run {run_id}'s manifest copy is missing and was not written again: {why}", text=text)
    return path


@contextlib.contextmanager
def _nothing_yet(
    m: Manifest | str | Path | None, sd: Path, name: str | None, state_dir: str | Path | None,
) -> Iterator[None]:
    """Read the state folder `sd` (of manifest `m`, called `name`); nothing recorded there while a run is starting
    (`run_starting`) is said so, as `gridrun status` says it, not as a manifest that never ran; and a state folder
    given (`state_dir`) with no state in it but one in its `.gridrun/` (the project folder given for the state
    folder) is named.

    :raises RunStartingError: nothing recorded, and a run is starting.
    """
    try:
        yield
    except NotRecordedError:
        pid = run_starting(m, None, state_dir=state_dir)
        inside = sd / ".gridrun"
        if pid is None and state_dir is not None and not os.path.lexists(sd / "state.db") \
                and (inside / "state.db").is_file():
            raise NotRecordedError(f"{shown(sd / 'state.db')}: no state there, but {shown(inside)} holds one: did you "
                                   f"mean --state {shown(inside)}? (a state folder is the .gridrun/ beside its "
                                   "manifests)") from None
        if pid is None and state_dir is None and isinstance(m, Manifest):
            other = resume.in_other_state(m.path, sd, plan_mod.outputs_dir_of(m, check=False))
            if other is not None:  # a `state_dir:` changed while its run went on: where that run is
                raise NotRecordedError(f"{sd / 'state.db'}: nothing of this manifest recorded here; "
                                       f"{other.place()}") from None
        if pid is None:
            raise
        of = f" of {name}" if name else ""
        raise RunStartingError(f"{sd / 'state.db'}: no run{of} recorded yet; a run is starting (pid {pid}), which "
                               "records its run once it has planned and asked the provider's balance",
                               pid=pid) from None


def runs_json(found: Sequence[RunSummary]) -> list[dict[str, Any]]:
    """`runs` as `status --runs --json` prints them."""
    return [
        {
            "run": s.run.id,
            "manifest": s.run.manifest_name,
            "manifest_path": s.run.manifest_path,
            "status": s.run.shown_status,  # `gone`: recorded as running, but its process no longer exists
            # the cause it stopped on, not its jobs' (`disk-full`), and what to do, as recorded or, for a gone run,
            # inferred (`RunRecord.stop_cause`); None: none known. The runs are listed without planning their
            # manifest, which may have changed since, so an inferred note proposes no `gridrun run` (`status M` gives
            # the step), as `status --runs` says it
            **dict(zip(("stopped_by", "stopped_note"), s.run.stop_cause(resumes=False), strict=True)),
            "process_gone": s.run.process_gone(),
            "started_at": s.run.started_at,
            "ended_at": s.run.ended_at,
            "jobs": s.jobs,
            "done": s.done,
            "cached": s.cached,
            "made": s.made,
            "not_copied": s.not_copied,
            "spent_usd": s.spent_micros / 1e6,
            "reserved_usd": s.reserved_micros / 1e6,
            "budget_usd": None if s.run.budget_micros is None else s.run.budget_micros / 1e6,
            # its provider and model, where it sent its creates, and what simulators billed of `spent_usd`
            "provider": s.run.provider,
            "model": s.run.model,
            "endpoints": [{"endpoint": at, "simulated": simulated} for at, simulated in s.endpoints],
            "spent_simulated_usd": s.spent_simulated_micros / 1e6,
            # what it spent past its budget (its exit code 3 where it would have been 0); null: within it, or none
            "over_budget_usd": s.over_budget_micros / 1e6 if s.over_budget_micros else None,
            # it ended failed and every job of it is done now, collected by a later run (`status` stays `failed`)
            "all_done_since": s.all_done_since,
            "argv": list(s.run.argv),  # the command line that started it, after `gridrun`; [] from Python
        }
        for s in found
    ]


def run_starting(
    m: Manifest | Plan | str | Path | None, run: RunRecord | None, *, state_dir: str | Path | None = None,
) -> int | None:
    """The pid of a runner that has taken the state's lock since `run` (the manifest's latest; None: the
    manifest has no run recorded) ended and has not recorded a run yet, or of a run or retry planning before
    it takes the lock (`starting`): a run or retry of the manifest starting; None when there is none. The lock
    or STARTING file names the manifest it was written for, where its gridrun records it: one of another
    manifest sharing the state, or a cancel's lock, is no run of this manifest starting (an older file, naming
    none, is taken for one)."""
    from .state import lock_record, runner_lock_free, start_record, state_home

    sd, name, _ = _state_dir(m, state_dir)
    mine = None if run is None else run.pid
    # The STARTING file read first: a run takes the lock, writes it, then removes its STARTING file, so that one
    # read after finding no STARTING file finds the lock written (read the other way round, both could miss it).
    starting = start_record(sd)
    # The lock file names its last holder after it let go: a process that still lives (a program that called
    # `run` and was refused, its budget exceeded) is no run starting once nothing holds the lock.
    locked = lock_record(sd)
    if locked is not None and runner_lock_free(state_home(sd) / "lock"):
        locked = None
    holder = next((h.pid for h in (starting, locked)
                   if h is not None and h.pid != mine and h.command != "cancel"
                   and (name is None or h.of(name) is not False)), None)
    if holder is None and os.getpid() != mine and _starting_here(sd, m, name):
        # a run of another thread, loading or planning, or about to record itself: starting until the state has a
        # run of the manifest of its own (one of another manifest sharing the state is no sign of it)
        try:
            with Store(sd / "state.db", readonly=True) as store:
                own = store.latest_run(name) if name else store.latest_run()
        except NotRecordedError:
            own = None
        recorded = own is not None and (run is None or own.id != run.id) and own.pid == os.getpid()
        return None if recorded else os.getpid()
    if holder is None:
        return None
    try:
        with Store(sd / "state.db", readonly=True) as store:
            latest = store.latest_run()
    except NotRecordedError:  # no state file yet, or one being made: the holder has recorded nothing
        latest = None
    if latest is not None and (run is None or latest.id != run.id) and latest.pid == holder:
        return None  # it has recorded its run: another manifest's
    return holder


class LiveRun(NamedTuple):
    """A run of a manifest going on this moment (the state's runner lock held by its process), as `plan` and
    `recover` name it: its figures as the state holds them now."""

    pid: int
    run_id: int | None          # None: starting, no run recorded yet
    unsent: int                 # the jobs it planned and has not sent yet
    unsent_micros: int          # what those cost, as its plan estimated them
    flying: int                 # the jobs it follows in flight (or sent, their answer not yet recorded)
    copy: Path | None           # its manifest copy (`.runs/run-N.yaml`), the plan it keeps

    def note(self, manifest: str) -> str:
        """What `plan` and `recover` say first of it."""
        from .jobs import usd_text
        from .terminal import typed

        watch = f"`gridrun status {typed(manifest)} --watch` follows it"
        if self.run_id is None:
            return (f"a run of this manifest is starting (pid {self.pid}): it sends what it plans as it reads the "
                    f"manifest now; `gridrun run` is refused until it ends ({watch}); the figures below are of the "
                    "state before it")
        copy = (f", as its manifest copy {plan_mod.relpath(self.copy)} has them" if self.copy is not None
                else "")
        flying = f" and follows the {self.flying:,} in flight" if self.flying else ""
        return (f"run {self.run_id} of this manifest is going on (pid {self.pid}): it sends the {self.unsent:,} "
                f"job{'' if self.unsent == 1 else 's'} it planned and has not sent yet "
                f"({usd_text(self.unsent_micros)}){flying}{copy}, whatever the file says now; `gridrun run` is "
                f"refused until it ends ({watch}); the figures below are of the state this moment, those jobs "
                "among them")

    def as_json(self, manifest: str) -> dict[str, Any]:
        """`plan --json`'s and `status --json`'s `live_run`: its figures, and the note `plan` says first of it."""
        return {"run": self.run_id, "pid": self.pid, "to_send": self.unsent,
                "to_send_usd": round(self.unsent_micros / 1e6, 6), "in_flight": self.flying,
                "manifest_copy": None if self.copy is None else str(self.copy), "message": self.note(manifest)}


def live_run(m: Plan | Manifest) -> LiveRun | None:
    """The run of the manifest of `m` (by its name, or its file) going on this moment: the state's runner lock held
    by a live process that took it for a run of it (or a run of it starting, `starting`), not a cancel; None when
    there is none, or the lock cannot be told held (a network share)."""
    from .state import lock_record, runner_lock_free, start_record, state_home

    mm = m.manifest if isinstance(m, Plan) else m
    sd, name = plan_mod.state_dir_of(mm, check=False), mm.name
    starting = start_record(sd)
    locked = lock_record(sd)
    if locked is not None and runner_lock_free(state_home(sd) / "lock"):
        locked = None
    holder = next((h for h in (locked, starting)
                   if h is not None and h.command != "cancel"
                   and (h.of(name) is not False or h.same_file(mm.path))), None)
    if holder is None:
        return None
    try:
        with Store(sd / "state.db", readonly=True) as store:
            run = store.running_run_of(holder.pid, holder.host)
            if run is None:
                return LiveRun(holder.pid, None, 0, 0, 0, None)
            snap = store.snapshot(run.id, videos=False)
    except (GridrunError, sqlite3.Error, OSError):
        return LiveRun(holder.pid, None, 0, 0, 0, None)
    return live_of(snap, holder.pid)


def live_of(snap: Snapshot, pid: int | None = None) -> LiveRun:
    """The run of `snap` as a run going on (`LiveRun`), its process `pid` (None: the one it recorded): what it has
    not sent yet and follows in flight, as the state holds them now."""
    run = snap.run
    unsent = [j for j in snap.jobs if j.state == JobState.PLANNED.value]
    flying = sum(1 for j in snap.jobs if j.state in resume.IN_FLIGHT)
    copy = Path(run.outputs_dir) / ".runs" / f"run-{run.id}.yaml"
    return LiveRun(run.pid if pid is None else pid, run.id, len(unsent), sum(j.cost_estimate_micros for j in unsent),
                   flying, copy if copy.is_file() else None)


def _failure_fields(snap: Snapshot, job: Any) -> dict[str, Any]:
    """`status --json`'s figures of a problem job's failures, as `status` says in words of a job failed alike on
    every attempt: `code` (the provider's code in its error, or None), `failed_attempts` (its attempts that ended
    failed or rejected: 0 for a job in another state), `same_code` (each of its attempts ended with that code),
    `fix` (what to change where sending the same request again fails alike, `options.repeating_fix`; else None)."""

    found = snap.failures.get(job.key)
    code = found.code if found is not None else error_code(job.error)
    return {"code": code, "failed_attempts": 0 if found is None else found.attempts,
            "same_code": found is not None and found.same_code,
            "fix": repeating_fix(code) if found is not None else None}


def status_json(snap: Snapshot, *, resumes: bool = True) -> dict[str, Any]:
    """`status --json`'s fields of the state alone. `resumes` False: a run of the manifest as it is now would refuse
    to resume the run gone (`status` gives that refusal as the next step), so its inferred note proposes no run."""
    r = snap.run
    elapsed, per_minute, eta = pace(snap)
    next_check, last_answer = checks(snap)
    paused = pause_left(snap)
    return {
        "run": r.id,
        "manifest": r.manifest_name,
        # the manifest file the run was started with (another checkout's, where one shares this state)
        "manifest_path": r.manifest_path,
        "status": r.shown_status,  # `gone`: recorded as running, but its process no longer exists
        # the cause it stopped on, not its jobs' (`disk-full`), and what to do, as recorded or, for a gone run,
        # inferred (`RunRecord.stop_cause`); None: none known
        **dict(zip(("stopped_by", "stopped_note"), r.stop_cause(resumes=resumes), strict=True)),
        "process_gone": r.process_gone(),  # killed or crashed before it could record its end
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "jobs": len(snap.jobs),
        "counts": {k: v for k, v in snap.counts.items()},
        # of the jobs not done, those that re-render done jobs (--force, retry) whose earlier videos are still at
        # their paths, kept there until the new ones arrive
        "rerendering": sum(1 for j in snap.jobs if j.earlier is not None),
        "spent_usd": snap.spent_micros / 1e6,
        "reserved_usd": snap.reserved_micros / 1e6,
        "manifest_spent_usd": snap.manifest_spent_micros / 1e6,  # every run of the manifest
        # the run's provider and model, and where it sent its creates: each endpoint once, and whether a simulator
        # answered there; of `spent_usd` and `manifest_spent_usd`, what simulators billed (made-up, nothing paid)
        "provider": r.provider,
        "model": r.model,
        "endpoints": [{"endpoint": at, "simulated": simulated} for at, simulated in snap.endpoints],
        "spent_simulated_usd": snap.spent_simulated_micros / 1e6,
        "manifest_spent_simulated_usd": snap.manifest_spent_simulated_micros / 1e6,
        "manifest_reserved_usd": snap.manifest_reserved_micros / 1e6,
        "budget_usd": None if r.budget_micros is None else r.budget_micros / 1e6,
        "elapsed": round(elapsed, 3),
        "per_minute": None if per_minute is None else round(per_minute, 2),
        "eta": None if eta is None else round(eta, 1),
        "eta_expected": eta is not None and eta_expected(snap),
        # of a run going on, as its heartbeat last recorded them: seconds until it next asks the provider about a
        # job while every job in flight waits for its poll, and since the provider last answered it (None: not so)
        "next_check": None if next_check is None else round(next_check, 1),
        "last_answer": None if last_answer is None else round(last_answer, 1),
        # seconds every request still waits because the provider asked, and the HTTP status that asked, as the run's
        # own `paused` and `paused_by` (its heartbeat's record); None both while there is no such pause
        "paused": None if paused is None else round(paused, 1),
        "paused_by": None if paused is None else snap.paused_by,
        "stopping": snap.stopping,  # why the run stopped sending new jobs (budget, interrupt, ...), as `run --json` says
        # renders the run paid that the provider billed above 5x their estimates, counted as billed (None: none)
        "billed_above": snap.billed_above_note(),
        # a run that spent more than its budget (its exit code 3 where it would have been 0): by how much, and why
        "over_budget": snap.over_budget_note(),
        # a create sent again with its idempotency key got a new video: an earlier send may have made and billed
        # another (None: none did)
        "keys_ignored": snap.keys_ignored_note(),
        "problems": [
            # ended_at: when a job that ended badly reached its state (epoch seconds; None for one in flight or planned);
            # the provider's code, the attempts that ended failed or rejected, whether each carried that code, and what
            # to change where sending the same request again would fail alike (`_failure_fields`)
            {"key": j.key, "state": j.state, "error": j.error, "ended_at": j.ended_at, **_failure_fields(snap, j),
             "request_id": request_id_in(j.error)}
            for j in problems(snap)
        ],
        # re-renders of done jobs (--force) the provider failed or refused: each job done as before, its video kept
        "rerenders_failed": [{"key": key, "error": error, "request_id": request_id_in(error)}
                             for key, error in snap.rerenders_failed],
        # jobs whose only take is a placeholder a simulator made at another endpoint and whose render here the provider
        # failed or refused: failed in this run (among `problems` too), the placeholder kept; `gridrun run` renders
        # them again
        "placeholders_failed": [{"key": key, "error": error, "request_id": request_id_in(error)}
                                for key, error in snap.placeholders_failed],
        # of the manifest's latest run, ended: the done jobs its latest --force run (`force_run`) left as they were,
        # unsent, which `gridrun run --force --resume` re-renders
        "force_unsent": list(snap.force_unsent),
        "force_run": snap.force_run,
        # jobs earlier runs sent, rendering still, that this run does not have: in manifest_reserved_usd, no run
        # follows them, and `gridrun cancel` stops them (or the manifest put back as `manifest_copy` collects them)
        "left_rendering": [{"key": key, "run": run, "reserved_usd": micros / 1e6,
                            "manifest_copy": snap.left_copies.get(run)}
                           for key, run, micros in snap.left_rendering],
        # jobs of unknown outcome earlier runs sent, not settled: in manifest_reserved_usd (they may have been paid),
        # not in reserved_usd; `gridrun retry --unknown` settles them
        "unknown_reserved_jobs": len(snap.left_unknown),
        "unknown_reserved_usd": sum(micros for _, _, micros in snap.left_unknown) / 1e6,
        # attempts of unknown outcome runs of the manifest sent that `gridrun retry --unknown` sent again (their videos
        # lost by the provider, or no request log to look them up in): in no spent and no reserve, yet perhaps billed
        "possibly_billed": [{"key": key, "run": run, "usd": micros / 1e6} for key, run, micros in snap.possibly_billed],
        "possibly_billed_usd": sum(micros for _, _, micros in snap.possibly_billed) / 1e6,
        "possibly_billed_simulated_usd": snap.possibly_billed_simulated_micros / 1e6,  # of it, what simulators answered
        # jobs earlier runs sent, rendered and paid (in manifest_spent_usd) but not downloaded, that this run does not
        # have: the manifest put back as `manifest_copy` downloads them
        "left_rendered": [{"key": key, "run": run, "cost_usd": micros / 1e6, "manifest_copy": snap.left_copies.get(run)}
                          for key, run, micros in snap.left_rendered],
        # of a run that ended, its jobs in flight or of unknown outcome sent to another endpoint than the manifest's
        # now (a base URL changed since): a run there collects them, a run here refuses to start over them
        "sent_elsewhere": [{"key": key, "endpoint": at, "point_back": snap.point_back.get(at)}
                           for key, at in snap.sent_elsewhere.items()],
        # of those, the ones a simulator at that endpoint answered: nothing was paid there, a run here sends them anew
        "sent_anew": [{"key": key, "endpoint": at} for key, at in snap.sent_anew.items()],
        # of a run that ended, its jobs in flight or of unknown outcome sent here with another API key than the one
        # set now (its fingerprint, never the key): a run with that key, or `run --same-account`, collects them
        "sent_with_another_key": [{"key": key, "fingerprint": fp, "variable": snap.key_var}
                                  for key, fp in snap.sent_with_key.items()],
        # what `gridrun status` warns of on standard error: the manifest file did not load, and the state's copy
        # of it, as its latest run had it, was read instead
        "warnings": list(snap.warnings),
    }


def report(
    m: Manifest | Plan | str | Path | None, *, compare: tuple[int, int] | None = None, run_id: int | None = None,
) -> Path:
    """Write report.html for the manifest's latest run (`run_id`: that run; one before the latest is written
    to report-run-N.html beside it), or two runs side by side, in the output folder the manifest names (None:
    the state folder here, into the run's recorded folder). A manifest file that does not load, or whose data
    files do not, is read as `status` reads it, with a warning (`export.told`).

    :raises UsageError: `compare` is not two run ids or names one run twice, or comes with `run_id`; `run_id` is
        not a run id.
    :raises NotRecordedError: a run id that is not a run of the manifest (the message names the manifest whose
        run it is, and the manifest's runs).
    :raises StateError: the run's videos are recorded in another folder than the manifest's (a copied or
        moved project: `run` first finds them where the manifest now puts them).
    """
    from .report import write_report

    _check_run_id("run_id", run_id)
    if compare is not None:
        if isinstance(compare, (str, bytes)) or not isinstance(compare, Sequence) or len(compare) != 2:
            raise UsageError(f"compare must be the ids of two runs, as (1, 2), got {compare!r}")
        for one in compare:
            _check_run_id("compare", one)
    if compare is not None and run_id is not None:
        raise UsageError("--compare and --run do not go together: --compare names both runs")
    if compare is not None and compare[0] == compare[1]:
        raise UsageError(f"--compare takes two different runs (run {compare[0]} was given twice)")
    store, name, home = _given_store(m)
    with store, _outputs_moved_said(store, name, home):
        return write_report(store, run_id=run_id, manifest_name=name, compare=compare, home=home)


def export(
    m: Manifest | Plan | str | Path | None, *, formats: Sequence[str] = ("jsonl", "csv", "json"), run_id: int | None = None,
) -> list[Path]:
    """Write results.jsonl / .csv / .json of the manifest's latest run (`run_id`: that run; one before the
    latest is written to results-run-N.jsonl ...) into the run's output folder, which must be the one the
    manifest names (None: the state folder here, into the run's recorded folder). A manifest file that does not
    load is read as `report` reads it.

    :raises NotRecordedError: as `report`.
    :raises StateError: as `report`.
    :raises UsageError: an unknown format, `formats` a string (or None) rather than a list of them, or `run_id` not a
        run id.
    """
    from .report import write_exports

    _check_run_id("run_id", run_id)
    if isinstance(formats, str):
        raise UsageError(f"formats must be a list of format names, as [{formats!r}], got the string {formats!r}")
    if isinstance(formats, bytes) or not isinstance(formats, Iterable):
        raise UsageError(f"formats must be a list of format names, as ['csv'], got {formats!r}")
    store, name, home = _given_store(m)
    with store, _outputs_moved_said(store, name, home):
        return write_exports(store, run_id=run_id, manifest_name=name, formats=tuple(formats), home=home)


@contextlib.contextmanager
def _outputs_moved_said(store: Store, name: str | None, home: Path | None) -> Iterator[None]:
    """`report` and `export` of a manifest whose output folder `home`, absolute in it, is not there: a refusal of the
    run's folder, gone, says where the project folder moved with it holds the videos now (`resume.moved_outputs`)
    and the relative `outputs_dir:` that names it, rather than to make the old folder again, which would have
    every video downloaded again.

    :raises StateError: refused, so."""
    try:
        yield
    except StateError:
        if home is None or name is None or store.manifest_path is None or os.path.lexists(home):
            raise
        latest = store.latest_run(name)
        done = [] if latest is None else [j.output_path for j in store.snapshot(latest.id, manifest_name=name).jobs
                                          if j.state == "done" and j.output_path]
        moved = resume.moved_outputs(home, Path(store.manifest_path).parent, done)
        if moved is None:
            raise
        said = resume.moved_outputs_said(moved, Path(store.manifest_path).parent, "its videos")
        raise StateError(
            f"{home}: the output folder the manifest names is not there: {said}, then `gridrun run` finds them there, "
            f"paying nothing for them, and writes the report there (making {home} again would have every one "
            "downloaded again)") from None


def _check_run_id(name: str, value: Any) -> None:
    """:raises UsageError: `value`, given as `name`, is neither None nor a run id (an integer, as `runs` lists)."""
    if value is not None and type(value) is not int:
        raise UsageError(f"{name}: a run's id is an integer, as `runner.runs` lists them, got {value!r}")


# Cancel requests sent at once by `cancel`.
CANCEL_AT_ONCE = 8
# A cancel request that failed for a reason that may pass (a 5xx, 408 or 429, a connection failed or timed out) is
# tried again, as a run's requests are (`pacing.backoff`: the provider's Retry-After, else a growing wait), up to
# CANCEL_TRIES times in all, none started past CANCEL_RETRY_FOR seconds after the first: the render goes on (and is
# billed) meanwhile, and `cancel` ends in bounded time.
CANCEL_TRIES = 4
CANCEL_RETRY_FOR = 60.0
# The clock `cancel`'s wait on a 404 is measured on: steady, which no step of the wall clock moves
_steady: Callable[[], float] = time.monotonic


def _cancel_tried(exc: BaseException, tries: int, took: float) -> str:
    """What was tried of a cancel request that failed `tries` times over `took` seconds, `exc` the last failure."""
    from .providers.retry_after import asked_wait

    said = [] if tries == 1 else [f"tried {tries} times over {took:.0f} s"]
    asked = getattr(exc, "retry_after", None)
    if asked is not None and tries < CANCEL_TRIES:
        said.append(f"{'not tried again' if tries == 1 else 'then no more'}: the provider asks to wait "
                    f"{asked_wait(asked)}, longer than cancel tries again for ({CANCEL_RETRY_FOR:g} s)")
    return f" ({'; '.join(said)})" if said else ""


class _StatusUnread(Exception):
    """`cancel` could not read a video's status through its tries (a 5xx, a 408 or 429, a connection failed or
    timed out each time); its message says the last failure and what was tried."""


@dataclass
class CancelResult:
    """What `cancel` did, by job key. Only `cancelled` jobs left flight; the others stay in it, for the next
    run to follow (a video finished before the request is downloaded, never lost)."""

    cancelled: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)              # of those, re-renders of done jobs: done as before
    # of those, key -> (what its cut-short render counts, in micro-USD; what the provider reported, None: nothing)
    charged: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    # whether the provider bills no video cancelled while queued (`ProviderCaps.queued_cancel_free`; None: unknown)
    queued_free: bool | None = None
    failed: dict[str, str] = field(default_factory=dict)       # ended on their own meanwhile: key -> why
    failed_kept: list[str] = field(default_factory=list)       # of those, re-renders of done jobs whose earlier
                                                               # video is whole at its path: done as before
    finished: list[str] = field(default_factory=list)          # completed before the request reached them:
                                                               # recorded rendered and paid, to be downloaded
    still_running: list[str] = field(default_factory=list)     # the provider goes on rendering them
    errors: dict[str, str] = field(default_factory=dict)       # the request itself failed: key -> why
    not_taken: dict[str, str] = field(default_factory=dict)    # the provider takes no cancel requests (HTTP 405,
                                                               # 501): still rendering, billed: key -> why
    refused: dict[str, str] = field(default_factory=dict)      # the provider refused to cancel them (a coded 400,
                                                               # 409, 422): still rendering, billed: key -> why
    gone: dict[str, str] = field(default_factory=dict)         # the provider no longer knows their video, recorded
                                                               # `unknown` as a run records them: key -> why
    unresolved: list[str] = field(default_factory=list)        # sent, the answer never recorded: not cancelled
                                                               # (the next run finds out whether it was made)
    never_sent: list[str] = field(default_factory=list)        # left `submitting`, the manifest no longer has them,
                                                               # and the provider's request log has no create of
                                                               # theirs: never sent, their attempt voided (unpaid)
    # rendered and paid, recorded `downloading` before the cancel, their videos not yet saved (a run stopped while
    # fetching them), that the manifest has: nothing to cancel, and `gridrun run` downloads them at no cost
    to_download: list[str] = field(default_factory=list)
    resend: list[str] = field(default_factory=list)           # of the jobs left `submitting` cancel looked up,
                                                               # those the manifest still has: a run looks them up
                                                               # and sends again at once those not found (paid)
    not_in_log: list[str] = field(default_factory=list)       # the same, not in the log, left as they were
                                                               # (`void_unsent` not asked)
    look_later: dict[str, tuple[str, int]] = field(default_factory=dict)  # the same, sent too recently to look up:
                                                               # key -> (when cancel looks it up, the run that
                                                               # left it)
    log_unread: dict[str, str] = field(default_factory=dict)   # the same, the request log could not be read: key ->
                                                               # why
    no_log: dict[str, int] = field(default_factory=dict)       # the same, the provider has no request log: key ->
                                                               # the run that left it
    found: dict[str, str] = field(default_factory=dict)        # left `submitting`, the manifest no longer has them,
                                                               # and found in the provider's request log: key ->
                                                               # their video's id, recorded; then cancelled as any
    # sent to another endpoint than the one now (`plan.sent_elsewhere`), asked nothing here: key -> that endpoint
    elsewhere: dict[str, str] = field(default_factory=dict)
    elsewhere_how: dict[str, str] = field(default_factory=dict)  # that endpoint -> how to point the base URL there
    # sent with another API key than the one now (`plan.sent_with_another_key`), asked nothing: key -> the
    # fingerprint of the key it was sent with; `key_var` names the variable that holds the key now
    other_key: dict[str, str] = field(default_factory=dict)
    key_var: str = ""
    # sent to a simulator at another endpoint than the one now (`plan.simulator_left`), asked nothing: nothing was
    # paid, and a run here sends them anew: key -> that endpoint
    simulated: dict[str, str] = field(default_factory=dict)
    endpoint: tuple[str, str] = ("", "")                       # the base URL now, and where it comes from
    dropped: list[str] = field(default_factory=list)           # of those left in flight, the ones the manifest
                                                               # no longer has (a run refuses to start over them)
    copy: Path | None = None                                   # the manifest as the run that sent them had it
    copy_there: bool = True                                    # False: removed, and not written again
    copy_run: int | None = None                                # the run whose copy `copy` is
    manifest: Path | None = None                               # the manifest file the copy goes back to
    # the state folder cancelled in (`state_dir` given) where it is not the one the manifest names now: what to do
    # next acts on it
    other_state: Path | None = None
    # the manifest's latest run when `gridrun recover` recorded it, and its jobs left planned, which a run whose record
    # was lost may have sent (rendering, billed, and not in flight here): (run, keys); None otherwise
    after_recover: tuple[int, list[str]] | None = None
    warnings: list[str] = field(default_factory=list)          # the manifest taken otherwise than as it is
    blocking: bool = True                                      # some of them are the latest run's: a run refuses
                                                               # to start over them (an earlier run's it does not)
    changed_runs: set[int] = field(default_factory=set)        # the runs whose jobs or money cancel recorded anew
    reports: dict[int, Path] = field(default_factory=dict)     # of those and the latest run, run id -> its report,
                                                               # written again
    report_errors: dict[int, str] = field(default_factory=dict)  # run id -> why its report could not be
    # of those, the runs whose output folder is not the manifest's now (the project copied or moved: a run writes it)
    reports_moved: set[int] = field(default_factory=set)


def cancel(m: Manifest | Plan | str | Path, *, on_wait: Callable[[str], None] | None = None,
           void_unsent: bool = False, same_account: bool = False,
           state_dir: str | Path | None = None) -> CancelResult:
    """Cancel the manifest's jobs in flight at the provider (a GET, a DELETE for those still going, then a GET
    to see what it did).

    A request that fails is recorded in `errors` and the others go on; a job the provider finished first
    stays in flight, so that `run` downloads it. A job whose video the provider no longer knows is recorded
    `unknown` (in `gone`), as a run records it: at once when that is known without asking (the built-in
    simulator's world was not kept), else once the provider has answered 404 to the GET of its status for
    `GONE_AFTER` seconds. A 404 to the cancel request (DELETE) is a failed request, in `errors`; a 405 or 501 to it,
    a provider that takes no cancel requests, is in `not_taken` (the job renders on, still in flight); a 400, 409 or
    422 with the provider's code, its refusal to cancel that video, is in `refused` (the same). `on_wait`, when
    given, is called once with a line saying what is waited for as such a wait starts. The state is opened to
    write (which upgrades one of an older schema) only when there is a job to cancel (`_nothing_to_cancel`).

    A job a stopped run left `submitting` (the manifest may still have it or not) is looked up by its key in the
    provider's request log; one the log does not list an hour after its send is in `not_in_log`, as it was, unless
    `void_unsent` asks to put it back as never sent (`never_sent`): a miss cannot rule out a create a gateway still
    holds, which the provider would then make and bill with nothing recording it.

    Jobs sent with another API key than the one now are asked nothing (in `other_key`), unless `same_account` says
    the key now is of the same account (a key rotated): then they are cancelled with it as any other, each recorded
    as an event (`same-account`).

    `state_dir`, when given, is the state folder whose jobs are cancelled instead of the one the manifest names (a
    `state_dir:` set or changed since a run of it sent them). Without it, jobs of the manifest file in flight in
    another state, which the output folder's lock names (`resume.in_other_state`), refuse the cancel: "nothing to
    cancel" here would leave them rendering, billed, and the next run would send them again.

    :raises NeverRanError: (a NotRecordedError) no run of the manifest is recorded, nor starting: nothing to cancel.
    :raises NotRecordedError: jobs of the manifest file are in flight in another state (`state_dir` not given).
    :raises StateWriteError: the state could not be written (a full disk, another program's write transaction):
        the cancel requests sent stand at the provider, and `cancel` (or `run`) again records what they did.
    :raises UsageError: `void_unsent` or `same_account` not True or False, or called from a running event loop
        (Jupyter, `asyncio.run`, `trio.run`), before anything is done: its requests run in an event loop of their
        own, which cannot start there.
    """
    check_flag("void_unsent", void_unsent)
    check_flag("same_account", same_account)
    if on_wait is not None and not callable(on_wait):
        raise UsageError(f"on_wait must be a function (or None), got {on_wait!r}")
    loop_options()  # a wrong GRIDRUN_LOOP said before anything is asked
    _load_httpx()  # before the providers, which import it
    loop = _in_event_loop()
    if loop is not None:
        raise UsageError("runner.cancel waits for the provider's answers in an event loop of its own, so it cannot be "
                         f"called from a running event loop{'' if loop == 'asyncio' else f' ({loop})'}; there, use "
                         f"{_in_a_thread(loop, 'runner.cancel, manifest')}")
    p, warning = _cancel_plan(m)
    other_state: Path | None = None
    if state_dir is not None:
        if not isinstance(state_dir, (str, os.PathLike)):
            raise UsageError(f"state_dir must be the path of a state folder, got {type(state_dir).__name__}")
        from .export import same_folder

        named = p.state_dir
        p = replace(p, state_dir=Path(os.path.abspath(state_dir)))
        if not same_folder(p.state_dir, named):
            other_state = p.state_dir
    else:
        other = resume.in_other_state(p.manifest.path, p.state_dir, p.outputs_dir)
        if other is not None:
            from .terminal import typed

            raise NotRecordedError(f"{p.state_dir / 'state.db'}: nothing cancelled: {other.place()} (`gridrun cancel "
                                   f"{typed(str(p.manifest.path))} --state {typed(str(p.state_dir))}` cancels the "
                                   "jobs of the state the manifest names now)")
    prov = _provider(p)
    db = p.state_dir / "state.db"
    if not db.exists():
        # a state unreachable is refused as `run` and `status` refuse it, not read as nothing ever run: jobs may
        # be rendering, and billing, this moment
        check_not_lost(db, p.outputs_dir)
        if os.path.islink(db):
            Store(db, outputs_dir=p.outputs_dir, then="cancel").close()  # a link to a folder not there: refused
        beside = _in_flight_beside_target(p)
        if beside is not None:  # a cleanup step told "nothing to cancel" would leave them rendering, billed
            raise NotRecordedError(f"{db}: no state yet (nothing has run here); {beside}")
        if state_dir is not None:
            # a state folder named on purpose and not there (mistyped, the project folder given for it) is an
            # error, not "nothing to cancel", exit 0, while the jobs it meant render on, billed
            inside = p.state_dir / ".gridrun"
            meant = (f": did you mean --state {shown(inside)}? (a state folder is the .gridrun/ beside its manifests)"
                     if (inside / "state.db").is_file() else "")
            raise NotRecordedError(f"{shown(db)}: no state there, so nothing cancelled{meant}")
        raise NeverRanError(f"{db}: no state yet (nothing has run here), so nothing to cancel")
    _check_recorded(p, db)
    result = CancelResult(warnings=[warning] if warning else [], manifest=p.manifest.path, other_state=other_state,
                          queued_free=prov.caps.queued_cancel_free)
    result.after_recover = _after_recover(p, db)
    if _nothing_to_cancel(p, db, result):
        return result  # nothing asked of the provider, which holds nothing open yet: no key needed to say so
    if callable(getattr(prov, "api_key", None)) and _asks_provider(p, db):
        prov.api_key()  # a missing key is said before the state is opened to be written (and upgraded)
    resume.check_files_writable(p, then="cancel", provider=prov)
    store = Store(db, outputs_dir=p.outputs_dir, then="cancel")
    asked: list[str] = []  # the jobs whose cancel request the provider took
    noted: set[str] = set()  # the jobs whose cancel request is recorded as asked (event `cancel-asked`)
    # A write of the state failed: the task group ended the other requests; said with those whose outcome went
    # unrecorded.
    try:
        with _closing(prov), _closed(store, lambda failed: store.cancel_unwritable(
                failed, sent=[k for k in asked if k not in {*result.cancelled, *result.failed}])):
            _cancel_in_flight(p, prov, store, result, asked, on_wait, void_unsent=void_unsent,
                              same_account=same_account, noted=noted)
            if result.finished:  # billed at gridrun's own price, the jobs not sent that a file prices lower weigh it
                store.raise_estimates(p.lowered)
            _rewrite_reports(p, store, result)
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt) or (
            isinstance(exc, BaseExceptionGroup) and exc.split(KeyboardInterrupt)[1] is None)
        if not interrupted or isinstance(exc, CancelInterrupted):
            raise
        # how many cancel requests were recorded as asked, and of those how many the provider's answer to is not
        # recorded: what an interrupted `cancel` says may have changed at the provider
        answered = {*result.cancelled, *result.failed, *result.finished, *result.still_running, *result.gone,
                    *result.not_taken, *result.refused}
        raise CancelInterrupted(sent=len(noted), unanswered=len(noted - answered)) from exc
    return result


def _after_recover(p: Plan, db: Path) -> tuple[int, list[str]] | None:
    """The manifest's latest run when `gridrun recover` recorded it, and the keys of its jobs it left planned: a run
    whose record was lost may have sent them, rendering and billed at the provider, which the state cannot tell
    (`CancelResult.after_recover`); None for any other latest run, or none planned."""
    from .state import RECOVERED_RUN

    try:
        with Store(db, readonly=True) as store:
            latest = store.latest_run(p.manifest.name)
            if latest is None or latest.status != RECOVERED_RUN:
                return None
            keys = [r["run_key"] for r in store.run_job_rows(latest.id, where="j.state = 'planned'")]
    except (GridrunError, sqlite3.Error, OSError):
        return None
    return (latest.id, keys) if keys else None


def _rewrite_reports(p: Plan, store: Store, result: CancelResult) -> None:
    """The report of each run whose figures `cancel` changed (`result.changed_runs`), written again where one was
    written before, as `gridrun report` writes it (in `result.reports`); one that cannot be is said in
    `result.report_errors`, and the cancel stands. The manifest's latest run's report is among them whenever any
    run's figures changed: its "all runs" line counts every run's spending and reserve. An earlier run's own report
    is its `report-run-N.html` where `gridrun report --run N` wrote one; the `report.html` it wrote at its end was
    written over by the later run's, which is the one rewritten then."""
    from .export import files_of
    from .report import write_report

    latest = store.latest_run(p.manifest.name)
    runs = set(result.changed_runs)
    if runs and latest is not None:
        runs.add(latest.id)
    for run_id in sorted(runs):
        try:
            snap = store.snapshot(run_id, manifest_name=p.manifest.name)
            folder, suffix = files_of(store, snap, p.outputs_dir)
            if not (folder / f"report{suffix}.html").is_file():
                continue  # none written: `gridrun report` writes it when asked
            result.reports[run_id] = write_report(store, run_id=run_id, manifest_name=p.manifest.name,
                                                  home=p.outputs_dir)
        except (GridrunError, OSError, sqlite3.Error) as exc:
            result.report_errors[run_id] = str(exc) or type(exc).__name__
            if isinstance(exc, OutputsMovedError):
                result.reports_moved.add(run_id)


def _cancel_plan(m: Manifest | Plan | str | Path) -> tuple[Plan, str | None]:
    """The plan `cancel` acts on, and a warning when it is not the manifest file as it is: a run's copy of its
    manifest (`<outputs>/.runs/run-N.yaml`, the one messages name) is read as the file that run was made from, in
    the state its output folder's lock records; a manifest file that does not load (a typo mid-edit, while jobs
    render) is taken as the state beside it recorded it for its latest run, so that its jobs can still be stopped.
    Either way only the jobs of the manifest's own `name:`, in its own state, are cancelled.

    :raises ManifestError: or ManifestErrors, the file does not load and no state records it.
    """
    if isinstance(m, Plan):
        m = m.manifest  # planned again: as the manifest is now, the endpoint and data files too
    if isinstance(m, Manifest):
        return plan(m), None
    if not isinstance(m, (str, os.PathLike)):
        return plan(m), None  # the error `load` gives a manifest of the wrong type
    check_a_file(m)  # standard input or a pipe: no state beside it to fall back on (`yamlsource.check_a_file`)
    path = Path(os.path.abspath(m))
    copied = _copy_of_run(path)
    if copied is not None:
        return copied, _copy_warning(copied)
    try:
        return plan(m), None
    except (ManifestError, ManifestErrors) as exc:
        recorded = _as_recorded(m, exc, "cancelling the jobs of")
        if recorded is None:
            raise
        return recorded


def status_manifest(m: str | Path) -> tuple[Manifest, str | None]:
    """The manifest `gridrun status` reads the state of, and a warning when it is not the file as it is: as `cancel`
    takes it, a manifest file that does not load (a typo mid-edit, while a run goes on) is taken as the state
    beside it recorded it for its latest run (`_as_recorded`).

    :raises ManifestError: or ManifestErrors, the file does not load and no state records it.
    """
    check_a_file(m)  # standard input or a pipe: no state beside it to fall back on (`yamlsource.check_a_file`)
    copy = _run_copy(m)
    if copy is not None:
        return copy.manifest, _copy_warning(copy)
    try:
        return load(m), None
    except (ManifestError, ManifestErrors) as exc:
        recorded = _as_recorded(m, exc, "showing the runs of")
        if recorded is None:
            raise
        return recorded[0].manifest, recorded[1]


def _copy_warning(p: Plan) -> str | None:
    """The warning of a run's copy of its manifest read as the state recorded its jobs (`_copy_of_run`), its data
    files not loading; None for a copy planned as it is."""
    return p.warnings[0] if p.manifest.unread and p.warnings else None


def _as_recorded(m: str | os.PathLike[str], exc: ManifestError | ManifestErrors, doing: str) -> tuple[Plan, str] | None:
    """The plan of the manifest file `m`, which does not load (`exc`), as the state beside it recorded it for its
    latest run made from that file (`_recorded_plan`), and the warning that says so, `doing` ("cancelling the jobs
    of") what with it; None when no state records it."""
    recorded = _recorded_plan(Path(os.path.abspath(m)), Path(m))
    if recorded is None:
        return None
    p, run_id = recorded
    first = str(exc).splitlines()[0]
    if p.manifest.unread:
        return p, (f"{m} does not load ({first}); {doing} {p.manifest.name!r} as its run {run_id} recorded its jobs, "
                   f"its {_unread_said(p.manifest)} not read (the state keeps each job's request)")
    return p, (f"{m} does not load ({first}); {doing} {p.manifest.name!r} with the manifest as its run {run_id} had "
               "it (the state keeps its copy)")


def _copy_of_run(path: Path) -> Plan | None:
    """A run's copy of its manifest (`<outputs>/.runs/run-N.yaml`) whose output folder's lock records the state
    that holds run N writing that folder: its plan, made from the copy read as the manifest file that run was
    made from (its relative paths start there), with the state that run wrote in; None for any other file."""
    found = re.fullmatch(r"run-([0-9]{1,18})\.yaml", path.name)
    writer = outputs_writer(path.parent.parent) if found and path.parent.name == ".runs" else None
    if writer is None:
        return None
    sd = Path(writer["state_dir"])
    try:
        with Store(sd / "state.db", readonly=True) as store:
            run = store.run(int(found[1]))
    except (StateError, sqlite3.Error, OSError):
        return None
    if Path(run.outputs_dir).resolve() != path.parent.parent.resolve():
        return None
    text = read_text(path, limit=MAX_BYTES)
    at = Path(run.manifest_path)
    try:
        p = plan(manifest_mod.load_text(text, path, at=at))
    except (ManifestError, ManifestErrors) as exc:
        # Its data files, read beside the file the run was made from, do not load (moved, archived, edited
        # mid-save): the run's jobs as the state records them, not the copy read as a manifest of its own, whose
        # data files would be looked for in .runs/, where no run read them.
        found = _plan_from_state(text, path, at, run.id)
        if found is None:
            raise
        first = str(exc).splitlines()[0]
        said = (f"{plan_mod.relpath(path)} does not plan ({first}); reading run {run.id} as the state "
                f"recorded its jobs, its {_unread_said(found.manifest)} not read (the state keeps each job's request)")
        p = replace(found, warnings=(said,))
    if p.state_dir != sd.resolve() or p.manifest.name != run.manifest_name:
        return None  # the copy, read there, names another state or manifest: taken as the file it is
    return p


def _recorded_plan(path: Path, shown_as: Path) -> tuple[Plan, int] | None:
    """The plan of the manifest at `path` as the state beside it (`.gridrun/`) recorded it for its latest run
    made from that file, with that run's id; None when there is no such state or run, or that text, read as
    the file, names another state."""
    if not_recordable(path) is not None:
        return None  # no run recorded a path that is not UTF-8 text: `plan` says so of the manifest
    sd = (path.parent / ".gridrun").resolve()
    if not (sd / "state.db").is_file():
        return None
    try:
        with Store(sd / "state.db", readonly=True) as store:
            run = store.latest_run_of_file(path)
            text = store.manifest_copy(run.id) if run is not None else ""
    except (StateError, sqlite3.Error, OSError):
        return None
    if run is None or not text:
        return None
    try:
        p = plan(manifest_mod.load_text(text, shown_as, at=path))
    except (ManifestError, ManifestErrors):
        found = _plan_from_state(text, shown_as, path, run.id)  # its data files do not load, or plan, as they are
        if found is None:
            return None
        p = found
    if p.state_dir != sd or p.manifest.name != run.manifest_name:
        return None
    return p, run.id


def _plan_from_state(text: str, shown_as: Path, at: Path, run_id: int) -> Plan | None:
    """The plan of the manifest `text` (read as `load_text(text, shown_as, at=at)` reads it), whose data files do
    not load or plan as they are now (a cell's quote left open in a sheet saved mid-edit, the file moved or
    archived), made of what the state records of run `run_id`'s jobs (their key, hash, request, values, video's
    path and estimate), its data files left unread (`Manifest.unread`): enough for `cancel` to stop the jobs in
    flight and for `status`, `report` and `export` to read the runs, which need no data file. None when the text
    does not load even so (the failure is not its data files'), reads none, or the state cannot be read."""
    from .jobs import Job

    try:
        m = manifest_mod.load_text(text, shown_as, at=at, read_data=False)
    except (ManifestError, ManifestErrors):
        return None
    if not m.files:
        return None  # no data file: not the reason it does not plan
    try:
        files = _capability_files(m)
        caps = capabilities.load(m.provider, extra=files)
        if caps is None:
            return None
        state_dir = plan_mod.state_dir_of(m)
        outputs_dir = plan_mod.outputs_dir_of(m)
        with Store(state_dir / "state.db", readonly=True) as store:
            rows = store.run_job_rows(run_id)
        jobs = tuple(
            Job(key=r["run_key"], sweep=r["sweep"], repeat=0, values=tuple(json.loads(r["vals"]).items()),
                params=json.loads(r["params"]), hash=r["hash"], cost_micros=r["cost_estimate_micros"],
                output_str=r["output_path"], size=(r["width"] or 0, r["height"] or 0), duration=r["duration"] or 0.0,
                mode="", origin="", sources={})
            for r in rows)
        at_endpoint = endpoint(m, caps, files)
    except (GridrunError, capabilities.CapabilityDataError, sqlite3.Error, OSError, ValueError, TypeError):
        return None
    axes = tuple(dict.fromkeys(k for j in jobs for k, _ in j.values))
    return Plan(manifest=m, provider=caps.provider, model=m.model, jobs=jobs, excluded=(), axes=axes, varying=axes,
                warnings=(), total_micros=sum(j.cost_micros for j in jobs), outputs_dir=outputs_dir,
                state_dir=state_dir, budget_micros=plan_mod.budget_micros(plan_mod.manifest_budget(m)),
                max_jobs=max(len(jobs), 1), endpoint=at_endpoint)


def _unread_said(m: Manifest) -> str:
    """The data files of `m`, loaded without them (`Manifest.unread`), as a warning names them."""
    names = [os.path.relpath(f, m.base_dir) if f.is_relative_to(m.base_dir) else str(f) for f in m.files.values()]
    names = list(dict.fromkeys(names))
    return f"data file{'' if len(names) == 1 else 's'} {', '.join(names)}"


def _check_recorded(p: Plan, db: Path) -> None:
    """Before `cancel` takes the runner lock: the manifest has a run recorded in the state `db`, or one starting.
    Read without the lock, so that the cancel of a manifest that never ran says there is nothing to cancel,
    where the lock, held by another manifest's run sharing the state, would have it told to stop that run.

    :raises NotRecordedError: no run of the manifest is recorded, nor starting.
    """
    try:
        with Store(db, readonly=True, outputs_dir=p.outputs_dir) as store:
            last = store.latest_run(p.manifest.name)
            never = _never_ran(store, p, db) if last is None else None
    except NotRecordedError:  # a state file being made this moment: the lock, taken next, decides
        return
    if never is not None and run_starting(p.manifest, None, state_dir=p.state_dir) is None:
        raise never


_CANCELLABLE = (JobState.SUBMITTING.value, JobState.SUBMITTED.value, JobState.RUNNING.value)


def _never_ran(store: Store, p: Plan, db: Path) -> NotRecordedError:
    """`cancel`'s error for a manifest of whose name the state `store` holds no run: nothing to cancel
    (`NeverRanError`), unless jobs of other manifests' runs are in flight there (a `name:` changed, another manifest
    file sharing the state folder), which that manifest's cancel stops: those named, not "nothing to cancel"."""
    from .terminal import typed, visible

    others = store.in_flight_elsewhere(p.manifest.name, _CANCELLABLE)
    if not others:
        return NeverRanError(f"{db}: no run recorded for {p.manifest.name}, so nothing to cancel")
    names = ", ".join(f"{visible(name)} ({n:,} job{'' if n == 1 else 's'})" for name, n in others[:5])
    more = f" and {len(others) - 5:,} more" if len(others) > 5 else ""
    return NotRecordedError(
        f"{db}: no run recorded for {p.manifest.name}, but this state holds jobs in flight of other manifests: "
        f"{names}{more}, rendering and billed at the provider. Nothing was cancelled: `gridrun cancel` on that "
        f"manifest's file cancels them (`gridrun status --state {typed(db.parent)} --runs` names its runs; a "
        "`name:` changed since they were sent: put it back for the cancel)")


def _unresolved(flying: Iterable[Any], last_run: int) -> list[str]:
    """Of the jobs in flight (`in_flight_rows`), those the latest run left `submitting`: sent without their answer
    recorded, which the next run finds out and no cancel can stop (an earlier run's are found by none: not named)."""
    return [r["key"] for r in flying if r["state"] == JobState.SUBMITTING.value and r["held_by"] == last_run]


def _to_download(p: Plan, store: Store) -> list[str]:
    """The manifest's jobs rendered and paid whose videos are not yet saved (`downloading`): nothing at the provider
    to cancel, but a cleanup that reads "nothing in flight" and removes the state would lose paid videos."""
    planned = {j.hash for j in p.jobs}
    return [r["key"] for r in store.in_flight_rows(p.manifest.name, (JobState.DOWNLOADING.value,))
            if r["hash"] in planned]


def _left_submitting(p: Plan, flying: Iterable[Any]) -> list[Any]:
    """Of the jobs in flight (`in_flight_rows`), those a run left `submitting`: `cancel` looks them up by their key
    in the provider's request log (free). Those the manifest no longer has no run looks up; those it has a run
    looks up too, but sends again at once what it does not find, a paid render of a job the user asked to cancel."""
    return [r for r in flying if r["state"] == JobState.SUBMITTING.value]


def _held_for_another(store: Store, lock: Path, name: str) -> bool:
    """Whether the runner lock `lock` of the open `store` is held for a manifest other than the one named `name`:
    as the lock file names it, else the run the state records for its process. False when neither tells (a
    process of an older gridrun, or on another machine), as for this manifest's own run."""
    found = recorded_process(lock)
    if found is None:
        return False
    if found.name is not None:
        return found.name != name
    row = store.running_run_of(found.pid, found.host)
    return row is not None and row.manifest_name != name


def _asks_provider(p: Plan, db: Path) -> bool:
    """Whether `cancel` has anything to ask the provider at the endpoint now, as the state `db` read as it is tells:
    a job in flight sent there (or where gridrun did not record). Those sent to another endpoint are only named,
    nothing asked of any provider, so no API key is needed for them. True where the state cannot be read so: the
    key is then asked for as before (`_cancel_in_flight` asks again for any such job it finds once it holds the
    state)."""
    try:
        store = Store(db, readonly=True, outputs_dir=p.outputs_dir)
    except (GridrunError, sqlite3.Error, OSError):
        return True
    with store:
        try:
            flying = store.in_flight_rows(p.manifest.name, _CANCELLABLE)
            sent = store.sent_to([r["hash"] for r in flying], _CANCELLABLE)
        except (GridrunError, sqlite3.Error):
            return True
    return any(not plan_mod.sent_elsewhere(sent.get(r["hash"]), p.endpoint[0]) for r in flying)


def _in_flight_beside_target(p: Plan) -> str | None:
    """For a manifest given through a link to its file, with no state beside the link: where the state beside the
    file it leads to holds jobs of the manifest at the provider (sent, rendering), what to cancel them with; None
    otherwise. The runs are there, not beside the link, as `status` through the link says (`resume.linked_state`)."""
    from .resume import state_beside_target
    from .terminal import typed

    m = p.manifest
    found = state_beside_target(p)
    if found is None:
        return None
    target, there = found
    try:
        with Store(there / "state.db", readonly=True) as store:
            flying = store.in_flight_rows(m.name, _CANCELLABLE)
    except (StateError, sqlite3.Error, OSError, ValueError):  # not readable: nothing to tell
        return None
    if not flying:
        return None
    n = len(flying)
    return (f"{m.path} is a link to {target}, beside which {there} holds {n:,} job{'' if n == 1 else 's'} of "
            f"{m.name!r} in flight at the provider (rendering, and billed): `gridrun cancel {typed(target)}`"
            " cancels them there; nothing was cancelled")


def _nothing_to_cancel(p: Plan, db: Path, result: CancelResult) -> bool:
    """Whether the manifest has no job at the provider to cancel, as the state `db` read as it is tells, no runner
    holding it: then `result` is filled as `_cancel_in_flight` fills it for no such job (the jobs left `submitting`
    by the latest run, which no cancel can stop, in `unresolved`), and the state is left as it is, at its schema,
    which opening it to write would upgrade (an older gridrun could no longer use it). False where there are jobs
    to cancel, or a runner of this manifest (or one the lock file does not name) holds the state: the state is
    opened to write then, and the cancel's lock, refused, says who holds it. The run of another manifest sharing
    the state (the manifests of one folder do) holding it does not stop a manifest with nothing in flight being
    told so, unless that run has one of the manifest's requests in flight: then the refusal says so.

    :raises NotRecordedError: no run of the manifest is recorded (nor any runner holding the state).
    """
    try:
        store = Store(db, readonly=True, outputs_dir=p.outputs_dir)
    except NotRecordedError:  # a state file being made this moment: the lock decides
        return False
    with store:
        lock = store.real.with_name("lock")
        held = held_elsewhere(lock)
        if held and not _held_for_another(store, lock, p.manifest.name):
            return False
        last = store.latest_run(p.manifest.name)
        if last is None:
            raise _never_ran(store, p, db)
        flying = store.in_flight_rows(p.manifest.name, _CANCELLABLE)
        if held and (flying or any(r["state"] in _CANCELLABLE
                                   for r in store.jobs_by_hash([j.hash for j in p.jobs]).values())):
            return False
        if any(r["state"] != JobState.SUBMITTING.value and r["provider_id"] for r in flying):
            return False
        if _left_submitting(p, flying):
            return False  # looked up by key (`_cancel_in_flight`)
        if store.sent_to([r["hash"] for r in flying], _CANCELLABLE):
            return False  # where each was sent is weighed against the endpoint now (`_cancel_in_flight`)
        result.unresolved = _unresolved(flying, last.id)
        result.to_download = _to_download(p, store)
        result.copy, result.copy_there = store.manifest_copy_file(last.id, folder=p.outputs_dir, write=False)
        result.copy_run, result.blocking = last.id, False
    return True


def _check_not_anothers(p: Plan, store: Store, flying: Sequence[Any]) -> None:
    """Refuse to cancel jobs a run sent for another project that is still there: the state here is a copy of that
    project's (a `.gridrun/` copied to try a variant, a backup restored elsewhere), or that one a copy of this; the
    renders are that project's, which a run there would collect, and cancelling them here would leave it to pay for
    them again. Another project is a run's manifest file at another path, still there, whose output folder, still
    there, is not this one's. A run of this manifest file is this project's whatever folder it wrote (its
    `outputs_dir:` changed since), as is a run whose manifest or folder is gone (the project moved here), and a
    run whose folder records this very state file as the one that wrote it (another checkout whose manifest
    names this `state_dir:`: a cancel recorded here is the record a run there reads, no copy of anything).

    :raises StateError: naming the folder, before any cancel request is sent."""
    from .export import same_folder
    from .state import written_by_state

    for run_id in sorted({r["held_by"] for r in flying}):
        run = store.run(run_id)
        folder = run.outputs_dir
        if (same_folder(folder, p.outputs_dir) or not os.path.isdir(folder)
                or same_folder(run.manifest_path, p.manifest.path) or not os.path.isfile(run.manifest_path)
                or written_by_state(folder, store.path)):
            continue
        n = sum(1 for r in flying if r["held_by"] == run_id)
        jobs = "1 job" if n == 1 else f"{n:,} jobs"
        raise StateError(
            f"{p.outputs_dir}: {jobs} in flight {'was' if n == 1 else 'were'} sent by run {run_id}, which recorded "
            f"its videos in {folder}, a folder still there: the state here is a copy of that project's (or it of "
            f"this one), and cancelling here would cancel that project's renders, which a run there collects. "
            f"Nothing was cancelled: cancel them there (`gridrun cancel` on its manifest); or, if that folder is a "
            f"copy no one runs any more, move it away and cancel here again")


def _cancel_in_flight(p: Plan, prov: Any, store: Store, result: CancelResult, asked: list[str],
                      on_wait: Callable[[str], None] | None = None, *, void_unsent: bool = False,
                      same_account: bool = False, noted: set[str] | None = None) -> None:
    """`cancel`'s work on the open `store`, filling `result` as it goes, `asked` with the jobs whose cancel
    request was taken, and `noted` with those whose request is recorded as asked, before it is sent; `on_wait`
    told once, as the first wait on a 404 starts, what is waited for.
    :raises sqlite3.Error: the state could not be written (in an exception group)."""
    import anyio

    from .executor import LOG_SKEW, earlier_whole
    from .pacing import retried, sleep_out

    db = store.path
    # The run holding the lock writes these jobs' states: it must let go of them first.
    store.acquire_lock(then="cancel (a second Ctrl-C in its terminal ends it with its jobs left in flight)",
                       manifest=p.manifest.path, name=p.manifest.name, cancel=True, requests=[j.hash for j in p.jobs],
                       again="cancel")
    last = store.latest_run(p.manifest.name)
    if last is None:
        raise _never_ran(store, p, db)
    # Every run's, not only the latest's: a run started with --leave-in-flight leaves an earlier run's jobs the
    # manifest no longer has rendering, which no run follows, and `cancel` is the way to stop them.
    flying = store.in_flight_rows(p.manifest.name, _CANCELLABLE)
    _check_not_anothers(p, store, flying)
    # Sent to another endpoint (a base URL changed since): the server now has no such video nor its create's key,
    # and asking it would record paid renders `unknown`; left as they are, for a cancel (or run) against that one.
    sent = store.sent_to([r["hash"] for r in flying], _CANCELLABLE)
    simulated = store.sent_to([r["hash"] for r in flying], _CANCELLABLE, simulator=True)
    by = store.sent_by([r["hash"] for r in flying], _CANCELLABLE)
    result.endpoint = p.endpoint
    for r in flying:
        at = sent.get(r["hash"])
        if at is not None and plan_mod.sent_elsewhere(at, p.endpoint[0]) and r["hash"] in simulated:
            result.simulated[r["key"]] = at
        elif at is not None and plan_mod.sent_elsewhere(at, p.endpoint[0]):
            result.elsewhere[r["key"]] = at
            result.elsewhere_how.setdefault(at, plan_mod.point_back(p.manifest, at, by.get(r["hash"])))
    flying = [r for r in flying if not plan_mod.sent_elsewhere(sent.get(r["hash"]), p.endpoint[0])]
    # Sent with another API key (most often another account, which does not know them): asking would record paid
    # renders `unknown`, which `retry --unknown` would pay for again; left as they are, for a cancel with that key.
    prints = store.sent_with([r["hash"] for r in flying], _CANCELLABLE) if p.key_print is not None else {}
    for r in flying:
        if plan_mod.sent_with_another_key(prints.get(r["hash"]), p.key_print) and same_account:
            # said to be of the same account as the key now (a key rotated): cancelled with it
            assert p.key_print is not None
            store.event(None, r["id"], resume.SAME_ACCOUNT, {"sent_with": prints[r["hash"]], "key_print": p.key_print[0]})
        elif plan_mod.sent_with_another_key(prints.get(r["hash"]), p.key_print):
            result.other_key[r["key"]] = prints[r["hash"]]
            result.key_var = p.key_print[1] if p.key_print is not None else ""
    flying = [r for r in flying if r["key"] not in result.other_key]
    if flying and callable(getattr(prov, "api_key", None)):
        prov.api_key()  # a job to ask about here (one run since `_asks_provider` read the state): the key first
    rows = [r for r in flying if r["state"] != JobState.SUBMITTING.value and r["provider_id"]]
    result.unresolved = _unresolved(flying, last.id)
    result.to_download = _to_download(p, store)
    planned = {j.hash for j in p.jobs}
    gone = {r["key"]: r["held_by"] for r in rows if r["hash"] not in planned}
    held = max(gone.values(), default=last.id)
    # written again when .runs/ was tidied by hand, in the manifest's output folder only
    result.copy, result.copy_there = store.manifest_copy_file(held, folder=p.outputs_dir)
    result.copy_run = held
    result.blocking = last.id in gone.values()
    left = _left_submitting(p, flying)
    waiting: list[str] = []  # the job whose 404 started the first wait, once told
    retrying: list[str] = []  # the job whose failed cancel request was the first tried again, once told
    checking: list[str] = []  # the job whose failed status check was the first tried again, once told
    # the jobs whose cancel request is recorded (event `cancel-asked`), before it is sent
    noted = set() if noted is None else noted
    began: list[bool] = []  # that cancel began is recorded

    @contextlib.contextmanager
    def recording() -> Iterator[None]:
        """One of cancel's records, in one transaction; the first also records, before it, that cancel began
        (`cancel_began`): a run whose process died recorded nothing from then on."""
        with store.batch():
            if not began:
                store.cancel_began()
            yield
        began.append(True)

    def lost(row: Any, why: str) -> None:
        """The provider no longer has the job's video: `unknown`, as a run records it (it may have been paid for,
        and stays reserved); a run that finds the video again follows it."""
        with recording():
            store.transition(row["id"], JobState.UNKNOWN, error=f"{why}; it may have been paid for. `gridrun "
                                                                "retry --unknown` re-submits (may pay twice)")
        result.gone[row["key"]] = why
        result.changed_runs.add(row["held_by"])

    def letting_go(limiter: anyio.CapacityLimiter) -> Callable[[float], Any]:
        """A wait to try again that lets go of the caller's slot of `limiter` meanwhile, so that a provider's outage
        for some jobs does not hold up the others' requests."""
        async def pause(wait: float) -> None:
            limiter.release()
            try:
                await anyio.sleep(wait)
            finally:
                with anyio.CancelScope(shield=True):  # held again, as the caller lets it go once it ends
                    await limiter.acquire()
        return pause

    async def tried(call: Callable[[], Awaitable[Any]], limiter: anyio.CapacityLimiter, key: str, told: list[str],
                    said: Callable[[BaseException], str]) -> tuple[Any, RetryableError | None, str]:
        """`call`, made again after a failure that may pass (a 5xx, a 408 or 429, a connection failed or timed out)
        as a run's requests are (`pacing.retried`): up to CANCEL_TRIES times within CANCEL_RETRY_FOR seconds, the
        slot of `limiter` (held by the caller) let go while waiting, so that a provider's outage for some jobs does
        not hold up the others; the first try again of any job told to `on_wait` (`said` of its failure) once, the
        key kept in `told`. Returns what `call` returned, or the last failure once the tries are spent with what
        was tried (its words).
        :raises ProviderError: another failure, at once."""
        tries = 1

        def again(exc: BaseException, attempt: int, wait: float) -> None:
            nonlocal tries
            tries = attempt + 1
            if on_wait is not None and not told:
                told.append(key)
                on_wait(said(exc))

        started = time.monotonic()
        try:
            return (await retried(call, tries=CANCEL_TRIES, within=CANCEL_RETRY_FOR, on_retry=again,
                                  pause=letting_go(limiter))), None, ""
        except RetryableError as exc:
            return None, exc, f"{exc}{_cancel_tried(exc, tries, time.monotonic() - started)}"

    async def status_tried(client: Any, limiter: anyio.CapacityLimiter, key: str, pid: str) -> VideoStatus:
        """The status of `pid`, the video of job `key`, asked again after a failure that may pass as the cancel
        request is (`tried`).
        :raises _StatusUnread: such a failure, once the tries are spent, with what was tried.
        :raises ProviderError: another failure (a 404 among them), at once."""
        status, failed, words = await tried(
            lambda: prov.get(client, pid), limiter, key, checking,
            lambda exc: (f"the status of {key}'s video {pid} could not be read ({exc}), and others' may not: asking "
                         f"each again, up to {CANCEL_TRIES} tries within {CANCEL_RETRY_FOR:g} s, after the wait the "
                         "provider asks for, else a growing one"))
        if failed is not None:
            raise _StatusUnread(words) from failed
        return status

    async def cancel_tried(client: Any, limiter: anyio.CapacityLimiter, key: str, pid: str) -> str | None:
        """Ask the provider to cancel `pid`, the video of job `key`, tried again after a failure that may pass
        (`tried`). Returns None once a try is taken, else what the last failed of such a failure, with what was
        tried.
        :raises ProviderError: another failure (the provider's refusal, a cancel it does not take), at once."""
        asked = 0

        async def ask() -> None:
            nonlocal asked
            asked += 1
            # an earlier try may have been taken, its answer lost (a timeout): a render ended since is not asked
            # again (a DELETE of a cancelled video may be refused)
            if asked > 1 and (await prov.get(client, pid)).terminal:
                return
            await prov.cancel(client, pid)

        _, failed, words = await tried(
            ask, limiter, key, retrying,
            lambda exc: (f"the cancel of {key}'s video {pid} failed ({exc}), and others' may: trying each again, up "
                         f"to {CANCEL_TRIES} tries within {CANCEL_RETRY_FOR:g} s, after the wait the provider asks "
                         "for, else a growing one"))
        return None if failed is None else words

    async def one(client: Any, limiter: anyio.CapacityLimiter, row: Any, later: list[Any] | None = None) -> None:
        """Cancel the job of `row`, or record how it ended. In the queued wave (`later` given), a job the provider
        says started rendering since it was looked at is not cancelled then but put in `later`, the rendering wave:
        cancelling it would free a slot where a job still queued starts rendering, to be charged as a render when
        its own cancel comes."""
        key, pid = row["key"], row["provider_id"]
        missing_since: float | None = None
        while True:
            if prov.forgot(pid):
                return lost(row, f"the built-in simulator's world has no video {pid}; it is gone (its world file, "
                                 ".gridrun/sim-world.jsonl, was deleted or replaced since the run that sent it)")
            async with limiter:
                try:
                    # Asked first: a video finished since the run stopped is left alone (where DELETE removes a
                    # finished video, as in the OpenAI shape, it would lose a paid render the next run downloads).
                    after = await status_tried(client, limiter, key, pid)
                    if later is not None and not after.terminal and after.status != "queued":
                        later.append(row)
                        return
                    if not after.terminal:
                        if key not in noted:
                            # Written ahead of the request, as a create is: a run that finds the video cancelled
                            # later (the provider may take its time) credits the cancel to the user's request, not
                            # to someone else at the provider, even where cancel cannot write the state once the
                            # provider took it, or dies before. One that cannot be written is not sent.
                            with recording():
                                store.event(None, row["id"], CANCEL_ASKED, {"provider_id": pid})
                            noted.add(key)
                        try:
                            failed = await cancel_tried(client, limiter, key, pid)
                            if failed is not None:
                                # tried again for CANCEL_RETRY_FOR seconds at most: the job renders on, and `gridrun
                                # cancel` again asks again
                                result.errors[key] = failed
                                return
                        except CancelNotTakenError as exc:
                            # asking again cannot succeed: the job renders on, and the next run follows it
                            result.not_taken[key] = str(exc)
                            return
                        except CancelRefusedError as exc:
                            # the provider's verdict on the video, met again if asked again: it renders on
                            result.refused[key] = str(exc)
                            return
                        except ProviderError as exc:
                            # A 404 to the DELETE says nothing of the video, which the GET just found (a gateway
                            # without that route answers so): the cancel failed, the job stays in flight.
                            result.errors[key] = str(exc)
                            return
                        if key not in asked:
                            asked.append(key)
                        after = await status_tried(client, limiter, key, pid)
                    break
                except _StatusUnread as exc:
                    # asked again for CANCEL_RETRY_FOR seconds at most: the job renders on, and `gridrun cancel`
                    # again asks again
                    result.errors[key] = str(exc)
                    return
                except RejectedError as exc:  # of a GET: the video's status
                    if exc.status != 404:
                        result.errors[key] = str(exc)
                        return
                    missing = exc
                except ProviderError as exc:
                    result.errors[key] = str(exc)
                    return
            # No such video (HTTP 404): believed, as a run believes it, once it has lasted GONE_AFTER seconds (a
            # provider may answer 404 for a moment for a video it has).
            now = _steady()
            missing_since = now if missing_since is None else missing_since
            if on_wait is not None and not waiting:
                waiting.append(key)
                on_wait(f"the provider answers 404 for {key}'s video {pid} ({missing}), and may for others: waiting "
                        f"up to {GONE_AFTER:g} s for each, as a run does, to see whether it knows them again; a video "
                        "it still does not know then is recorded `unknown` (nothing to cancel)")
            if now - missing_since >= GONE_AFTER:
                return lost(row, f"the provider has had no video {pid} for {now - missing_since:.0f} s ({missing})")
            # slept out on the steady clock: a timer ending a little early (uvloop's) would make one GET more, and end
            # the wait a sixth of GONE_AFTER late
            await sleep_out(_steady, GONE_AFTER / 6)
        if after.status not in ("cancelled", "failed", "completed"):
            result.still_running.append(key)
            return
        # its earlier video hashed first: what cancel found is then written in one transaction with no await in it,
        # so that no other job's writes join it
        whole = after.status == "failed" and await earlier_whole(store, row["id"])
        costs: dict[str, int | None] = {}
        with recording():
            now = _record_ended(store, row, after, whole=whole, costs=costs, own=p.lowered.get(row["hash"]))
            # no run saw it end: the runs that left it in flight, which ended, record it so, its charge in its
            # sender's; in the same transaction, so that a kill or a failed write between the two never leaves the
            # job settled and those runs' figures still reserving it
            result.changed_runs |= {row["held_by"], *store.settle_left(row["id"])}
        if after.status == "cancelled":
            result.cancelled.append(key)
            # the cancelled render's, not the job's: a re-render put back as done shows its earlier take's cost
            result.charged[key] = (costs.get("cost_micros") or 0, costs.get("cost_reported_micros"))
            if now == JobState.DONE:
                result.kept.append(key)
        elif after.status == "failed":
            result.failed[key] = after.failure
            if now == JobState.DONE:
                result.failed_kept.append(key)
        else:
            result.finished.append(key)

    async def unsent(client: Any, row: Any) -> None:
        """A job a run left `submitting` (its create sent, or about to be, the answer never recorded; a request
        that could not be written as JSON stopped an older gridrun so), which the manifest may still have: looked up by
        its attempt's key in the provider's request log, as a run looks up its own. One the log, read to its end
        once no send of it can still be on its way, does not have is most likely never sent: with `void_unsent` its
        attempt is voided, nothing paid or reserved; else it is named in `not_in_log`, as it was. One the log has gets its video's id recorded, as a run records a job it
        finds so, and is then cancelled (or recorded finished) as any job in flight. Any other stays as it is."""
        key = store.following(row["id"]).idempotency_key
        sent_at = row["submitted_at"]
        if key is None:
            return
        # Cancel finds out itself, at no cost, and says what it did: a run would look it up too, but send again at
        # once what it does not find (a paid render the user asked to cancel).
        if row["key"] in result.unresolved:
            result.unresolved.remove(row["key"])
        if row["hash"] in planned:
            result.resend.append(row["key"])
        # the longest a run's create may take (--request-timeout at most), and the log's settling, after its send:
        # before then a miss proves nothing (a create may still be on its way), but a find is as good as later
        recent = sent_at is None or time.time() - sent_at < CANCEL_LOOKS_UP_AFTER
        found: VideoStatus | None = None
        why: str | None = None
        try:  # tried again after a transient error, as a run's lookup is (`Executor._find`)
            found = await retried(
                lambda: prov.find_by_key(client, key, created_after=None if sent_at is None else sent_at - LOG_SKEW),
                tries=3, transient=(RetryableError, OutcomeUnknownError))
        except (NotImplementedError, LookupError):
            result.no_log[row["key"]] = row["held_by"]
            return
        except ProviderError as exc:
            why = str(exc) or type(exc).__name__
        if why is not None:
            result.log_unread[row["key"]] = why
            return
        if found is None and recent:
            result.look_later[row["key"]] = (cancel_looks_up_at(sent_at), row["held_by"])
            return
        if found is not None:
            # At the provider: its video's id recorded on the attempt, as a run records a job it finds by its key,
            # and the job cancelled, or recorded finished, as any job in flight.
            with recording():
                store.event(row["held_by"], row["id"], "reconciled",
                            {"provider_id": found.id, "idempotency_key": key, "by": "gridrun cancel"})
                store.transition(row["id"], JobState.SUBMITTED, provider_id=found.id,
                                 made=(p.endpoint[0] or None, bool(getattr(prov, "simulator", False))))
            result.changed_runs.add(row["held_by"])
            result.found[row["key"]] = found.id
            rows.append({**dict(row), "state": JobState.SUBMITTED.value, "provider_id": found.id})
            if row["hash"] not in planned:
                gone[row["key"]] = row["held_by"]
            return
        if not void_unsent:
            # Most likely never sent; but a gateway may still hold its create and send it on, to be made and billed
            # with nothing recording it: put back as not sent only when asked.
            result.not_in_log.append(row["key"])
            return
        with recording():
            # the run that left it too, ended or not: its report shows the job as it is now
            result.changed_runs |= {row["held_by"], *store.void_left(
                row["id"], "not in the provider's request log: never reached it (found by gridrun cancel); nothing "
                           "paid")}
        result.never_sent.append(row["key"])

    async def look(client: Any, limiter: anyio.CapacityLimiter, row: Any, queued: set[str]) -> None:
        # One look a job, not tried again here: every cancel waits for this pass. A status that could not be read
        # for a failure that may pass puts the job in the queued wave, whose check before each cancel asks again
        # (tried) and leaves it for the rendering wave if it renders; another failure, `one` says.
        async with limiter:
            try:
                now = await prov.get(client, row["provider_id"])
            except RetryableError:
                queued.add(row["key"])
                return
            except ProviderError:
                return
            if now.status == "queued" or now.terminal:
                queued.add(row["key"])

    async def requests() -> None:
        if not (left or rows):
            return  # nothing to ask of the provider here (those sent elsewhere are only named): no client, no key
        limiter = anyio.CapacityLimiter(CANCEL_AT_ONCE)
        async with prov.client() as client:
            for row in left:
                await unsent(client, row)
            # The queued ones first, all of them before any rendering one: a render cancelled frees a slot at the
            # provider, where a job queued behind it would start rendering and then be charged as a render (a
            # job cancelled while queued is free where the provider says so, `queued_cancel_free`).
            queued: set[str] = set()
            async with anyio.create_task_group() as tg:
                for row in rows:
                    tg.start_soon(look, client, limiter, row, queued)
            # Each queued job is asked again right before its cancel: one that started rendering meanwhile (a render
            # ended at the provider, and it took the slot) waits for the rendering wave, so that the charge stays
            # bounded by the provider's concurrency. Newest first: a slot freed meanwhile goes to the oldest job still
            # queued, one whose cancel is not yet under way, which is then found rendering, not cancelled as queued
            # a moment after it started.
            later: list[Any] = []
            async with anyio.create_task_group() as tg:
                # (a run's jobs come in the order it sent them, the latest run's first; sent in one batch, they
                # share a time of sending)
                order = {r["key"]: (r["submitted_at"] or 0.0, r["held_by"], i) for i, r in enumerate(rows)}
                for row in sorted((r for r in rows if r["key"] in queued), key=lambda r: order[r["key"]],
                                  reverse=True):
                    tg.start_soon(one, client, limiter, row, later)
            async with anyio.create_task_group() as tg:
                for row in [r for r in rows if r["key"] not in queued] + later:
                    tg.start_soon(one, client, limiter, row)

    interrupted: list[int] = []

    async def go() -> None:
        # The `gridrun` command's Ctrl-C, SIGTERM and hangup (`entry.interrupt`, which raises KeyboardInterrupt
        # where it lands: from a request's task, asyncio lets it out of the event loop with a traceback) are taken
        # here, in this task, for the requests' time: one ends them, and `cancel` ends interrupted.
        wanted = _command_signals()
        if not wanted:
            await requests()
            return
        from .signals import taken

        with taken(wanted) as received:
            async with anyio.create_task_group() as tg:
                async def heed() -> None:
                    async for signum in received:
                        interrupted.append(signum)
                        tg.cancel_scope.cancel()
                        return

                tg.start_soon(heed)
                await requests()
                tg.cancel_scope.cancel()

    _own_loop(go)
    if interrupted:
        raise KeyboardInterrupt
    result.dropped = [k for k in (*result.finished, *result.still_running, *result.not_taken, *result.refused)
                      if k in gone]
    result.blocking = last.id in gone.values()


def _command_signals() -> list[int]:
    """The signals whose handler is the `gridrun` command's (`entry.interrupt`): none where gridrun runs as a
    library, whose program keeps its own handling."""
    import signal

    from .entry import _handled, interrupt

    return [s for s in _handled() if signal.getsignal(s) is interrupt]


def _record_ended(store: Store, row: Any, after: VideoStatus, *, whole: bool,
                  costs: dict[str, int | None] | None = None, own: int | None = None) -> JobState:
    """Record the job of `row` as `cancel` found its render ended (`after`: cancelled, failed or completed), as a
    run records it; `whole`: it re-rendered a done job whose earlier video is whole at its path. Returns its state
    now; `costs`, given, gets what a cancelled render was recorded to cost (a re-render put back as done keeps its
    earlier take's figures on its job, not these). `own`: gridrun's own price of the job where a capabilities file
    of the manifest prices it lower (`Plan.lowered`): a completed render billed at it counts as billed, as in a
    run (`counted_cost`)."""
    from .executor import counted, end_badly, render_span

    run_id, jid = row["held_by"], row["id"]
    if after.status == "cancelled":
        ended = _ended_costs(store, run_id, row, after)
        if costs is not None:
            costs.update(ended)
        return store.cancel_job(jid, CANCELLED_ON_REQUEST, run_id=run_id, **ended)
    if after.status == "failed":
        # as the run ends it: a re-render of a done job whose earlier video is whole is done as it was
        return end_badly(store, run_id, jid, JobState.FAILED, whole=whole, error=after.failure,
                         **_ended_costs(store, run_id, row, after))
    # rendered, so billed, as a run records it: its reserve settled, for the next run that has it to download
    cost, _ = counted(store, run_id, jid, row["cost_estimate_micros"], after, completed=True, tell=True, own=own)
    # seen now, as a run that sees it late records it; how long it rendered is the provider's stamps' to say, not
    # the time until the cancel looked (a completion stamped earlier would be read as the killed run's own record)
    seen = store.clock()
    store.transition(jid, JobState.DOWNLOADING, completed_at=seen, url=after.url, expires_at=after.expires_at,
                     render_span=render_span(after, row["submitted_at"], seen), cost_micros=cost,
                     cost_reported_micros=after.cost_micros)
    return JobState.DOWNLOADING


def _ended_costs(store: Store, run_id: int, row: Any, status: VideoStatus) -> dict[str, int | None]:
    """The cost fields of the job of `row` whose render ended failed or cancelled (`status`), as the run records
    them: what it counts (`executor.counted`: the estimate for a figure far from it, a failure's recorded by event
    cost-doubted) and the provider's figure as reported."""
    from .executor import counted

    cost, _ = counted(store, run_id, row["id"], row["cost_estimate_micros"], status, completed=False,
                      tell=status.status != "cancelled")
    return {"cost_micros": cost, "cost_reported_micros": status.cost_micros}
