"""gridrun: run declarative YAML batch manifests against paid video-generation APIs, paying once per job.

    import runner
    manifest = runner.load("manifests/demo.yaml")
    plan = runner.plan(manifest)          # pure: nothing is sent
    result = runner.run(plan)             # resumes an earlier run of the same manifest
"""

from __future__ import annotations

import sys as _sys

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
