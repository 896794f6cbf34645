"""gridrun: run declarative YAML batch manifests against paid video-generation APIs, paying once per job."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load", "plan", "run", "status", "report", "export", "cancel", "RunOptions"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(name)
