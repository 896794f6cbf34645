"""A step of this machine's wall clock during a run (NTP, a clock set by hand, a machine resumed) moves none of its
waits: jobs are polled, paused and timed out on the steady clock, the wall clock only stamping what the state
records. A step back of an hour would otherwise hold every poll an hour, past the life of the videos' URLs."""

from __future__ import annotations

import dataclasses
import functools
import os
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from execkit import write_manifest

from runner import api
from runner.executor import Executor, RunOptions
from runner.providers import capabilities
from runner.providers.sim import SimProvider
from runner.sim import SimConfig, create_app
from runner.sim.world import World

ROOT = Path(__file__).resolve().parent.parent
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


def _left_submitting(tmp_path: Path, *, ahead: float = 0.0, at: str = "after-submit") -> Path:
    """One job left `submitting` by a run killed (-9) `at` after-submit (the simulator, which ignores keys as its
    capabilities then say, took its create; the state did not learn its id) or before-submit (its attempt
    recorded, its create never sent). `ahead`: every time the state recorded is moved that far ahead, as a run on
    a wall clock that fast (since set back) would have recorded them."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",),
                       sim={"render_time": 0.5, "jitter": 0.0, "honour_idempotency": False})
    env = {**os.environ, "GRIDRUN_CRASH_AT": f"{at}:1", "PYTHONPATH": str(ROOT)}
    killed = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"],
                            env=env, capture_output=True, timeout=120, check=False)
    assert killed.returncode == -9, killed.stderr[-500:]
    with closing(sqlite3.connect(tmp_path / ".gridrun" / "state.db")) as db, db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
            for col in db.execute(f"PRAGMA table_info({table})").fetchall():
                if col[1].endswith("_at") and col[2] == "REAL":
                    db.execute(f"UPDATE {table} SET {col[1]} = {col[1]} + ? WHERE {col[1]} IS NOT NULL", (ahead,))
    assert [j.state for j in api.status(m).jobs] == ["submitting"]
    return m


def _creates(m: Path) -> int:
    """The creates the built-in simulator took for the runs of `m` (its world, kept in the state folder)."""
    return create_app(SimConfig(), world=World.open(m.parent / ".gridrun" / "sim-world.jsonl")).state.sim.stats()["creates"]


def _in_thread(m: Path, options: RunOptions) -> tuple[threading.Thread, threading.Event, threading.Event, dict]:
    stop, detach = threading.Event(), threading.Event()
    out: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: out.update(
        r=api.run(m, options=options, report=False, stop=stop, detach=detach)))
    runner.start()
    return runner, stop, detach, out


def test_a_create_sent_while_the_wall_clock_was_ahead_is_looked_up_after_the_request_timeout_not_hours_later(
    tmp_path: Path,
) -> None:
    """Where the provider ignores keys, the lookup of a create left `submitting` waits for it to have landed: the
    request timeout and LOG_SETTLE after it was sent, never longer from now, whatever the clock did since."""
    m = _left_submitting(tmp_path, ahead=7200.0)
    runner, stop, detach, out = _in_thread(m, RunOptions(request_timeout=2.0))
    runner.join(60)  # 7 s; two hours, held by the clock's step
    held = runner.is_alive()
    if held:
        stop.set()
        detach.set()
        runner.join(30)
    assert not held, "the lookup waited for as long as the wall clock had been ahead"
    assert out["r"].exit_code == 0 and [j.state for j in api.status(m).jobs] == ["done"]
    assert _creates(m) == 1  # found by its key in the log, not sent again


def test_the_interrupt_ends_the_wait_for_a_lost_creates_lookup_and_leaves_the_job_as_recorded(
    tmp_path: Path,
) -> None:
    """The first Ctrl-C (`stop`) ends the wait of a minute for the provider's log to settle; the log's miss that
    soon proves nothing (the create may still be on its way), so the job is left `submitting`, for the next run to
    look it up by its key, not sent nor planned again."""
    m = _left_submitting(tmp_path, at="before-submit")
    runner, stop, detach, out = _in_thread(m, RunOptions(request_timeout=60.0))
    time.sleep(1.0)
    stop.set()
    runner.join(30)  # the wait of 65 s, were it not cut
    held = runner.is_alive()
    if held:
        detach.set()
        runner.join(30)
    assert not held, "the interrupt did not end the wait"
    assert out["r"].exit_code == 130
    job = api.status(m).jobs[0]
    assert job.state == "submitting" and "the run was interrupted" in (job.error or ""), (job.state, job.error)
    assert _creates(m) == 0
