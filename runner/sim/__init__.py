"""The simulator: a local imitation of the Lumenfall video API with fault knobs.

    app = create_app(SimConfig(render_time=0.5, failure_rate=0.1))     # in-process, via httpx.ASGITransport
    with running_server(SimConfig()) as base_url: ...                  # over HTTP, http://127.0.0.1:PORT/v1
"""

from runner.sim.app import create_app
from runner.sim.config import ConfigError, FaultRule, SimConfig
from runner.sim.faults import SimulatedReset
from runner.sim.serve import running_server

__all__ = ["ConfigError", "FaultRule", "SimConfig", "SimulatedReset", "create_app", "running_server"]
