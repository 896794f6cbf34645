"""gridrun: run declarative YAML batch manifests against paid video-generation APIs, paying once per job.

    import runner
    manifest = runner.load("manifests/demo.yaml")
    plan = runner.plan(manifest)          # pure: nothing is sent
    result = runner.run(plan)             # resumes an earlier run of the same manifest
"""

from __future__ import annotations

import sys as _sys
import threading as _threading
import types as _types
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

__version__ = "0.1.0"

__all__ = ["load", "plan", "diff", "run", "status", "runs", "report", "export", "cancel", "recover", "export_rows",
           "BalanceCheck", "CancelResult", "Diff", "Manifest", "Plan", "RecoverResult", "RunOptions", "RunResult",
           "RunStatistics", "RunSummary", "Runs", "Snapshot"]

if _TYPE_CHECKING:  # what a type checker reads (the package ships py.typed); at run time, `__getattr__` loads them
    from . import errors as errors
    from .api import (
        BalanceCheck,
        CancelResult,
        Diff,
        Manifest,
        Plan,
        RecoverResult,
        RunOptions,
        RunResult,
        Runs,
        RunStatistics,
        RunSummary,
        Snapshot,
        cancel,
        diff,
        export,
        export_rows,
        load,
        plan,
        recover,
        report,
        run,
        runs,
        status,
    )


class _Later:
    """A module imported at the first use of one of its names. An annotation naming a class of a module its own
    module does not import when it loads (`executor.RunResult` in `api.run`'s, `resume.LeftBehind` in `plan.Diff`'s,
    `decimal.Decimal` in `RunOptions`'), through one of these, is found by `typing.get_type_hints` (which reads the
    names of the annotation's module), while loading that module loads neither the other (nor what it imports),
    nor a circle of imports between them."""

    def __init__(self, name: str) -> None:
        self._name = name  # ".executor": a module of the package; "decimal": any other

    def __getattr__(self, attr: str) -> _Any:
        import importlib

        return getattr(importlib.import_module(self._name, __name__), attr)

    def __repr__(self) -> str:
        return f"<module {__name__ if self._name.startswith('.') else ''}{self._name}, loaded at its first use>"


# Held while `_load_httpx` blocks httpx's command line: threads using the API for the first time at once would
# each block and unblock it, and the second to unblock found it gone (a KeyError in the host's thread).
_httpx_lock = _threading.Lock()


def _load_httpx() -> None:
    """Import httpx without its own command line (click, pygments, rich), a sixth of gridrun's start-up, which
    gridrun never calls: blocked for that one import, importable again right after; one thread at a time."""
    with _httpx_lock:
        if "httpx" in _sys.modules:
            return
        _sys.modules["httpx._main"] = None  # type: ignore[assignment]
        try:
            import httpx  # noqa: F401
        finally:
            del _sys.modules["httpx._main"]


def __getattr__(name: str) -> _Any:
    """The API (`runner.plan`, `runner.run`, ...), loaded at its first use: importing the package itself
    loads nothing else, so that the `gridrun` command (`runner.entry`) takes Ctrl-C and SIGTERM before the
    quarter of a second gridrun's imports take (httpx, only by what sends requests: `run` and `cancel`)."""
    import importlib

    if name == "errors":  # `runner.errors.GridrunError`, as the docs name the errors, before any call loaded it
        # not `from . import errors`, whose import asks this package for `errors` again (`hasattr`), endlessly
        return importlib.import_module(".errors", __name__)
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(".api", __name__), name)


class _Package(_types.ModuleType):
    """`runner.plan`, `runner.report` and `runner.export` name both functions of the API and modules: the
    import system binds a submodule to its package's attribute, which would hide the function. This package
    keeps its functions (`__getattr__` finds them); the modules stay importable (`from runner.export import ...`)."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, _types.ModuleType) and name in __all__:
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
