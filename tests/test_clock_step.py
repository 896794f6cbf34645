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


def _sent_ahead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ahead: float, **sim: Any) -> Path:
    """A run of three jobs on a wall clock `ahead` seconds fast (the executor's and the state's), ended once their
    creates are taken (detached, as a second Ctrl-C ends it), their renders going on at the simulator, which keeps
    real time as a provider does. The clock is right again for what follows (NTP stepped it back)."""
    def fast() -> float:
        return time.time() + ahead

    submit, sent = SimProvider.submit, []

    async def submitted(self: SimProvider, client: Any, body: dict[str, Any]) -> Any:
        status = await submit(self, client, body)
        sent.append(status.id)
        return status

    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), sim={"jitter": 0.0, **sim})
    with monkeypatch.context() as patch:
        patch.setattr(SimProvider, "submit", submitted)
        patch.setitem(Executor.__init__.__kwdefaults__, "clock", fast)
        patch.setattr(api, "Store", functools.partial(api.Store, clock=fast))
        stop, detach = threading.Event(), threading.Event()
        runner = threading.Thread(target=lambda: api.run(m, report=False, stop=stop, detach=detach))
        runner.start()
        deadline = time.monotonic() + 30
        while len(sent) < 3 and runner.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        detach.set()
        runner.join(30)
    assert not runner.is_alive() and len(sent) == 3
    jobs = api.status(m).jobs
    assert all(j.submitted_at is not None and j.submitted_at > time.time() + ahead / 2 for j in jobs), jobs
    return m


def test_jobs_sent_while_the_wall_clock_was_ahead_are_polled_by_their_render_time_once_it_is_set_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their send times, which the clock now puts two hours ahead, are taken as now: their first poll comes after
    their render time, not two hours later, and no ETA, next check or age says hours."""
    m = _sent_ahead(tmp_path, monkeypatch, 7200.0, render_time=3.0)
    seen: list[Any] = []
    out: dict[str, Any] = {}
    stop, detach = threading.Event(), threading.Event()
    runner = threading.Thread(target=lambda: out.update(r=api.run(
        m, options=RunOptions(timeout=60), report=False, on_progress=seen.append, stop=stop, detach=detach)))
    runner.start()
    runner.join(45)  # seconds; two hours, held by the clock's step
    held = runner.is_alive()
    if held:
        stop.set()
        detach.set()
        runner.join(30)
    assert not held, "the run waited for as long as the wall clock had been ahead"
    assert out["r"].exit_code == 0 and out["r"].stats.counts["done"] == 3, out["r"].stats.counts
    assert all(s.next_check is None or s.next_check < 60 for s in seen), [s.next_check for s in seen]
    assert all(s.eta is None or s.eta < 60 for s in seen), [s.eta for s in seen]

