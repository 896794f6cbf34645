"""A step of this machine's wall clock during a run (NTP, a clock set by hand, a machine resumed) moves none of its
waits: jobs are polled, paused and timed out on the steady clock, the wall clock only stamping what the state
records. A step back of an hour would otherwise hold every poll an hour, past the life of the videos' URLs."""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from execkit import write_manifest

from runner import api
from runner.executor import Executor, RunOptions
from runner.providers import capabilities
from runner.providers.sim import SimProvider

STEP = -3600.0


class SteppingClock:
    """The wall clock, stepped back by an hour for good once `step()` is called."""

    def __init__(self) -> None:
        self.offset = 0.0

    def step(self) -> None:
        self.offset = STEP

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.mark.parametrize("listing", [True, False])
def test_a_step_back_of_the_wall_clock_during_a_run_holds_no_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listing: bool
) -> None:
    # The simulator keeps real time, as a provider does; the run's wall clock (the executor's and the state's)
    # steps back an hour once the four creates are sent, while the renders (1 s) go on.
    clock = SteppingClock()
    submit, sent = SimProvider.submit, []

    async def submitted(self: SimProvider, client: Any, body: dict[str, Any]) -> Any:
        status = await submit(self, client, body)
        sent.append(status.id)
        if len(sent) == 4:
            clock.step()
        return status

    monkeypatch.setattr(SimProvider, "submit", submitted)
    monkeypatch.setitem(Executor.__init__.__kwdefaults__, "clock", clock)
    monkeypatch.setattr(api, "Store", functools.partial(api.Store, clock=clock))
    m = write_manifest(tmp_path, n_seeds=4, styles=("anime",), sim={"render_time": 1.0, "jitter": 0.0})
    if not listing:  # each job polled on its own, as for a provider that lists no videos
        real = capabilities.load

        def unlisted(*args: Any, **kwargs: Any) -> Any:
            caps = real(*args, **kwargs)
            return caps if caps is None else dataclasses.replace(caps, has_list_endpoint=False)

        monkeypatch.setattr(capabilities, "load", unlisted)
    stop, detach = threading.Event(), threading.Event()
    out: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: out.update(
        r=api.run(m, options=RunOptions(), report=False, stop=stop, detach=detach)))
    runner.start()
    runner.join(45)  # the run takes seconds; held by the step it would wait an hour
    held = runner.is_alive()
    if held:  # ended, its jobs left in flight
        stop.set()
        detach.set()
        runner.join(30)
    assert not held, "the run was held by the step of the wall clock"
    assert out["r"].exit_code == 0 and out["r"].stats.counts["done"] == 4, out["r"].stats.counts
    assert len(sent) == 4 and clock.offset == STEP
