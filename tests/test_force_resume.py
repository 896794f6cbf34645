"""`gridrun run --force --resume`: a `--force` run stopped midway (a kill, its budget, a full disk) left the rest of
its re-renders done as they were; the resume re-renders those alone, never again the ones already re-rendered,
and `plan --force --resume` prices exactly what it sends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from execkit import write_manifest

from runner import api
from runner.cli import main
from runner.providers import SIM_WORLD
from runner.sim import SimConfig
from runner.sim.engine import Sim
from runner.sim.world import World

ROOT = Path(__file__).resolve().parents[1]


def world_stats(m: Path) -> dict[str, Any]:
    """The stats of the world the manifest's runs left in its state folder: every create is a paid render."""
    return Sim(SimConfig(), clock=time.time, world=World.open(m.parent / ".gridrun" / SIM_WORLD)).stats()


def _creates_per_request(m: Path) -> Counter[str]:
    """How many paid creates the simulator's world holds for each request (its fingerprint)."""
    lines = (m.parent / ".gridrun" / SIM_WORLD).read_text().splitlines()
    return Counter(r["video"]["fingerprint"] for r in map(json.loads, lines) if r.get("t") == "create")


def _killed_force(m: Path, crash_at: str) -> None:
    """`gridrun run --force` killed (-9) at the crash point `crash_at`."""
    env = {**os.environ, "GRIDRUN_CRASH_AT": crash_at, "PYTHONPATH": str(ROOT)}
    killed = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--force", "--no-report"],
                            env=env, capture_output=True, timeout=120, check=False)
    assert killed.returncode == -9, killed.stderr[-500:]


def _six(tmp_path: Path) -> Path:
    """Six jobs sent one at a time (so a crash point lands after a known number of re-renders), all done."""
    m = write_manifest(tmp_path, n_seeds=3, run={"concurrency": 1}, sim={"render_time": 0.3, "jitter": 0})
    assert api.run(m, report=False).exit_code == 0
    assert world_stats(m)["creates"] == 6
    return m


@pytest.mark.parametrize("then_plain", [False, True])
def test_a_killed_force_run_is_finished_without_paying_again_for_its_re_renders(
    tmp_path: Path, then_plain: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """kill -9 of a `--force` run after two re-renders: `plan --force --resume` counts the jobs it never sent,
    and `run --force --resume` sends those alone (straight away, or after a plain run collected what the
    killed run left), so every job is rendered twice in all: once by the first run, once since --force."""
    m = _six(tmp_path)
    _killed_force(m, "after-download:2")
    made = world_stats(m)["creates"]
    sent = made - 6  # the re-renders the killed run sent: two downloaded, more may have left meanwhile
    assert 2 <= sent <= 5, made
    left = 6 - sent
    said = f"{left} jobs {{}} done as they were" if left > 1 else "1 job {} done as it was"
    if then_plain:  # the free step first: what the killed run left in flight, collected at no new cost
        assert api.run(m, report=False).exit_code == 0
        assert world_stats(m)["creates"] == made
        code = main(["status", str(m)])
        out = " ".join(capsys.readouterr().out.split())
        assert code == 0 and (f"next: `gridrun run --force --resume` re-renders the {said.format('run 2 left')} "
                              f"(${left * 0.35:.2f})") in out, out
        listed = api.status_json(api.status(m))
        assert len(listed["force_unsent"]) == left and listed["force_run"] == 2, listed
    else:  # the killed run's own status: `gridrun run` resumes it, then --force --resume sends what it left
        code = main(["status", str(m)])
        out = " ".join(capsys.readouterr().out.split())
        assert code == 0 and "`gridrun run` resumes it then: `gridrun run --force --resume` re-renders the " \
            f"{said.format('run 2 left')} (${left * 0.35:.2f})" in out, out
    rest = api.diff(m, force=True, force_resume=True)
    assert rest is not None and rest.forced == left, rest.reasons
    to_send = rest.to_send(api.plan(m).jobs)
    assert len(to_send) == left and sum(j.cost_micros for j in to_send) == left * 350_000
    everything = api.diff(m, force=True)
    assert everything is not None and everything.forced > left  # `--force` alone re-renders those made again
    code = main(["plan", str(m), "--force", "--resume"])
    out = capsys.readouterr().out
    assert code == 0 and f"against state with --force --resume: {left} to submit (${left * 0.35:.2f})" in out, out
    code = main(["plan", str(m), "--force"])  # and `plan --force` says what it would pay again, and the cheaper way
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0 and (f"the latest --force run left {said.format('').replace('  ', ' ')}: `gridrun run --force "
                          f"--resume` sends {left} (${left * 0.35:.2f}), not the ") in out, out
    result = api.run(m, options={"force": True, "force_resume": True}, report=False)
    assert result.exit_code == 0 and result.stats.counts["done"] == 6, result.stats.counts
    assert world_stats(m)["creates"] == made + left == 12
    assert sorted(_creates_per_request(m).values()) == [2] * 6  # each job paid once before --force, once since
    assert [j.attempts for j in api.status(m).jobs] == [2] * 6  # every job's video made since --force began
    after = api.diff(m, force=True, force_resume=True)
    assert after is not None and after.forced == 0 and after.new == 0 and after.cached == 6
    listed = api.status_json(api.status(m))
    assert listed["force_unsent"] == [] and listed["force_run"] is None, listed


def test_a_resume_after_a_finished_force_or_none_sends_no_re_render(tmp_path: Path) -> None:
    """No --force run yet: `--force --resume` re-renders nothing (it sends what a plain run sends, a new job here).
    After a --force run that ended whole: nothing either."""
    m = _six(tmp_path)
    rest = api.diff(m, force=True, force_resume=True)
    assert rest is not None and rest.forced == 0 and rest.new == 0
    assert api.run(m, options={"force": True}, report=False).exit_code == 0
    assert world_stats(m)["creates"] == 12
    rest = api.diff(m, force=True, force_resume=True)
    assert rest is not None and rest.forced == 0 and rest.new == 0
    result = api.run(m, options={"force": True, "force_resume": True}, report=False)
    assert result.exit_code == 0 and result.stats.cached == 6
    assert world_stats(m)["creates"] == 12


def test_resume_without_force_is_refused_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--resume` alone would read as a plain run: refused with what it goes with, by `run` and `plan` alike."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0})
    assert main(["run", str(m), "--resume", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "run --resume goes with --force" in err and "Traceback" not in err, err
    assert not (tmp_path / ".gridrun" / "state.db").exists()
    assert main(["plan", str(m), "--resume"]) == 2
    assert "plan --resume goes with --force" in capsys.readouterr().err
    from runner.errors import UsageError

    with pytest.raises(UsageError, match="force_resume goes with force"):
        api.RunOptions(force_resume=True)
