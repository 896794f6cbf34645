"""The simulator: a local imitation of the Lumenfall video API with fault knobs.

    app = create_app(SimConfig(render_time=0.5, failure_rate=0.1))     # in-process, via httpx.ASGITransport
    with running_server(SimConfig()) as base_url: ...                  # over HTTP, http://127.0.0.1:PORT/v1

The names load on first use: checking a manifest's `sim:` knobs needs `runner.sim.config` alone, not the
web app and server behind it.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {
    "create_app": "runner.sim.app",
    "ConfigError": "runner.sim.config",
    "FaultRule": "runner.sim.config",
    "SimConfig": "runner.sim.config",
    "SimulatedReset": "runner.sim.faults",
    "running_server": "runner.sim.serve",
}

__all__ = ["ConfigError", "FaultRule", "SimConfig", "SimulatedReset", "create_app", "running_server"]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'runner.sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
