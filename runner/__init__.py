"""gridrun: run declarative YAML batch manifests against paid video-generation APIs, paying once per job.

    import runner
    manifest = runner.load("manifests/demo.yaml")
    plan = runner.plan(manifest)          # pure: nothing is sent
    result = runner.run(plan)             # resumes an earlier run of the same manifest
"""

from __future__ import annotations

import sys as _sys
import types as _types

__version__ = "0.1.0"

if "httpx" not in _sys.modules:
    # `import httpx` also imports httpx's own command line (click, pygments, rich), a sixth of gridrun's
    # start-up, which gridrun never calls: blocked for that one import, importable again right after.
    _sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx  # noqa: F401
    finally:
        del _sys.modules["httpx._main"]

# Bound after the submodules load, so that `runner.plan` is the function (the module stays importable
# as `runner.plan` through `from runner.plan import ...`).
from .api import RunOptions, cancel, export, load, plan, report, run, status  # noqa: E402

__all__ = ["load", "plan", "run", "status", "report", "export", "cancel", "RunOptions"]


class _Package(_types.ModuleType):
    """`runner.report` and `runner.export` name both functions of the API and modules, which load lazily (for
    start-up): the import system then binds a submodule to its package's attribute, which would replace the
    function. This package keeps its functions; the modules stay importable (`from runner.export import ...`)."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, _types.ModuleType) and isinstance(self.__dict__.get(name), _types.FunctionType):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
