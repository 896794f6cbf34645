"""Kill -9 the runner at random moments (and inside the POST/commit window) against a simulator in
another process; resume until done. The simulator must have been paid exactly once per job."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from chaos_kit import PHASES, ChaosResult, chaos, landed, wait_started


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("honour", [True, False], ids=["keys-honoured", "keys-ignored"])
def test_kill_nine_and_resume_pays_exactly_once(tmp_path: Path, honour: bool) -> None:
    # Enough work (32 jobs, 4 rounds of 1.2 s renders) that 6 kills land while jobs are still to do. Each seed's
    # first six runs crash at each of the three points (before-submit, after-submit, after-download) at least once
    # and are killed at random moments besides; more kills repeat the same trials (bench/chaos.py soaks longer).
    res = chaos(tmp_path, kills=6, honour=honour, seed=7 if honour else 14, seeds=8, concurrency=8,
                render_time=1.2)
    paid_exactly_once(res, kills=6)
    if not honour:
        assert res.stats["replays"] == 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_kill_nine_with_the_built_in_simulator_in_the_killed_process_pays_exactly_once(tmp_path: Path) -> None:
    """The demo's set-up: the simulator dies with each runner, and its world lives on in the state folder, so
    every resume finds the videos and requests of the runs before it."""
    # the seed's first six runs crash at each of the three points at least once (see above)
    res = chaos(tmp_path, kills=6, honour=True, seed=18, seeds=6, render_time=1.2, in_process=True)
    paid_exactly_once(res, kills=6)


def paid_exactly_once(res: ChaosResult, *, kills: int) -> None:
    assert res.kills >= kills
    assert res.final_exit == 0, res
    assert res.stats["duplicate_paid"] == 0, res.stats
    assert res.stats["creates"] == res.jobs, res.stats
    assert res.done == res.jobs and res.lost_outputs == 0
    # what the state says was paid is what the provider billed, whichever moment the kills hit
    assert res.recorded_spent_micros == res.stats["billed_micros"], (res.recorded_spent_micros, res.stats)
    # every kill landed in a run's working life, after it had recorded itself in its state, and says where
    assert len(res.landings) == res.kills, res.landings
    assert all(landing.phase in PHASES[1:] for landing in res.landings), res.landings


def test_a_run_that_ends_before_recording_itself_is_not_waited_for_nor_killed(tmp_path: Path) -> None:
    """A timed kill waits for the run's record in its state; a process that ends without one is not killed."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    assert wait_started(proc, tmp_path / ".gridrun" / "state.db", 0) is False
    assert landed(tmp_path / ".gridrun" / "state.db", proc.pid, 0) == (PHASES[0], "no run recorded")
