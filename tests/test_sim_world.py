"""The built-in simulator keeps its world in the state folder: a later process resumes what an earlier one
left in flight, and pays nothing again. `gridrun sim serve --world FILE` does the same over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from execkit import check_outputs, sha256 as sha256_of, write_manifest

from runner import api
from runner.errors import InFlightError
from runner.cli import main
from runner.providers import SIM_WORLD
from runner.sim import SimConfig
from runner.sim.engine import Sim
from runner.sim.serve import child_server
from runner.sim.world import World


def world_stats(m: Path) -> dict[str, Any]:
    """The stats of the world the manifest's runs left in its state folder."""
    return Sim(SimConfig(), clock=time.time, world=World.open(m.parent / ".gridrun" / SIM_WORLD)).stats()


def test_jobs_left_in_flight_are_resumed_by_a_later_run_and_paid_once(tmp_path: Path) -> None:
    """The first run stops at its timeout with every job still rendering; the second, with a simulator made
    afresh from the world file, re-attaches them instead of marking them unknown."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime", "clay"), sim={"render_time": 2.0, "jitter": 0})
    first = api.run(m, options={"timeout": 0.3}, report=False)
    assert first.exit_code != 0 and first.stats.counts["done"] == 0
    assert world_stats(m)["creates"] == 4
    second = api.run(m, report=False)
    assert second.exit_code == 0 and second.stats.counts["done"] == 4, second.stats.counts
    stats = world_stats(m)
    assert stats["creates"] == 4 and stats["duplicate_paid"] == 0
    assert api.status(m).manifest_spent_micros == stats["billed_micros"]
    check_outputs(m)


def test_the_time_no_run_was_going_is_not_taken_for_a_render_time(tmp_path: Path) -> None:
    """Jobs a killed run sent and a later run collects took the pause too; new jobs are polled on time."""
    import sqlite3

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime", "clay", "comic"),
                       sim={"render_time": 1.0, "jitter": 0, "concurrency": 3}, run={"concurrency": 3})
    three = 3 * api.plan(m).jobs[0].cost_micros / 1e6
    first = api.run(m, options={"timeout": 0.3, "budget_usd": three, "allow_partial": True}, report=False)
    assert first.stats.counts["submitted"] + first.stats.counts["running"] == 3, first.stats.counts
    with sqlite3.connect(tmp_path / ".gridrun" / "state.db") as db:  # sent an hour ago, as after a night's pause
        db.execute("UPDATE jobs SET submitted_at = submitted_at - 3600 WHERE submitted_at IS NOT NULL")
    time.sleep(1.2)  # they are rendered: the next run sees them done at once
    second = api.run(m, options={"timeout": 15}, report=False)
    assert second.exit_code == 0 and second.stats.counts["done"] == 6, second.stats.counts
    assert world_stats(m)["creates"] == 6


def test_an_earlier_run_shows_its_jobs_as_it_left_them_not_as_a_later_run_finished_them(tmp_path: Path) -> None:
    """Run 1 leaves its jobs rendering; run 2 collects them. Run 1's snapshot (its report, a comparison) keeps
    its own figures: no cost, no file, no download time of run 2's."""
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime", "clay"), sim={"render_time": 1.0, "jitter": 0})
    first = api.run(m, options={"timeout": 0.3}, report=False)
    second = api.run(m, report=False)
    assert second.stats.counts["done"] == 2
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        then, now = store.snapshot(first.run_id), store.snapshot(second.run_id)
    assert {j.state for j in then.jobs} <= {"submitted", "running"}
    assert all(j.sha256 is None and j.downloaded_at is None and j.completed_at is None for j in then.jobs)
    assert all(j.cost_micros is None and j.attempts == 1 and j.provider_id for j in then.jobs)
    assert [j.provider_id for j in then.jobs] == [j.provider_id for j in now.jobs]
    assert all(j.state == "done" and j.sha256 and j.cost_micros for j in now.jobs)
    # and its money as it left it: both renders reserved, nothing billed yet (run 2 saw them billed)
    assert (then.spent_micros, then.reserved_micros) == (first.stats.spent_micros, first.stats.reserved_micros)
    assert then.spent_micros == 0 and then.reserved_micros == sum(j.cost_estimate_micros for j in then.jobs) > 0
    assert now.spent_micros == sum(j.cost_micros for j in now.jobs) and now.reserved_micros == 0


def test_an_earlier_runs_video_put_aside_by_a_changed_manifest_is_where_its_snapshot_points(tmp_path: Path) -> None:
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    first = api.run(m, report=False)
    m.write_text(m.read_text().replace("a fox,", "a cat,"))
    second = api.run(m, report=False)
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        (then,), (now,) = store.snapshot(first.run_id).jobs, store.snapshot(second.run_id).jobs
    assert "/.runs/superseded/" in then.output_path and Path(then.output_path).is_file()
    assert then.sha256 == sha256_of(Path(then.output_path)) and now.output_path != then.output_path


def test_jobs_whose_world_was_deleted_are_unknown_and_the_money_of_the_run_that_sent_them(tmp_path: Path) -> None:
    """They may have been paid for: reserved by run 1, which sent them, in its figures; not by the runs after it,
    which neither send nor follow them (their budgets stay theirs). Each run's own figures and the store's agree."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime", "clay"), sim={"render_time": 2.0, "jitter": 0})
    first = api.run(m, options={"timeout": 0.3}, report=False)
    assert first.stats.counts["done"] == 0
    (tmp_path / ".gridrun" / SIM_WORLD).unlink()
    second = api.run(m, report=False)
    snap = api.status(m)
    assert second.stats.counts["unknown"] == 2 and snap.counts["unknown"] == 2
    assert (second.stats.spent_micros, second.stats.reserved_micros) == (snap.spent_micros, snap.reserved_micros) == (0, 0)
    third = api.run(m, options={"budget_usd": 0.0}, report=False)  # nothing to send: no budget taken by them
    snap = api.status(m)
    assert third.exit_code == 1 and third.stats.counts["unknown"] == 2 and snap.run.id == third.run_id
    assert (third.stats.reserved_micros, snap.reserved_micros) == (0, 0)
    cost = sum(j.cost_estimate_micros for j in snap.jobs)
    assert snap.manifest_reserved_micros == cost  # the manifest's figures hold them


@pytest.mark.parametrize(("second", "problem"), [
    ("{oops", ":2: not a JSON record"),
    ('{"t":"create","dup":[false,false],"video":{"id":"v"}}', ": a record the simulator cannot replay (KeyError"),
])
def test_a_damaged_world_stops_the_run_before_anything_is_recorded_or_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], second: str, problem: str
) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    world = tmp_path / ".gridrun" / SIM_WORLD
    world.parent.mkdir()
    world.write_text('{"t":"world","v":1,"epoch":1}\n' + second + '\n{"t":"cancel","id":"v","at":2}\n')
    assert main(["run", str(m)]) == 2
    err = capsys.readouterr().err
    assert f"{world}{problem}" in err and "Traceback" not in err
    with pytest.raises(Exception, match="no run"):
        api.status(m)
    assert world.read_text().count("\n") == 3  # left as it was


def _serve(world: Path) -> list[str]:
    return [sys.executable, "-m", "runner.sim", "serve", "--port", "0", "--world", str(world), "--render-time", "0.2"]


def test_sim_serve_with_a_world_finds_it_again_after_a_restart_and_holds_it_alone(tmp_path: Path) -> None:
    world = tmp_path / "world.jsonl"
    body = {"model": "pixverse-v5.6", "prompt": "a fox", "quality": "360p", "duration": 5, "idempotency_key": "k1"}
    with child_server(_serve(world)) as (url, _pid):
        vid = httpx.post(f"{url}/videos", json=body, timeout=10).json()["id"]
        second = subprocess.run(_serve(world), check=False, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "another simulator keeps this world" in second.stderr
    with child_server(_serve(world)) as (url, _pid):
        got = httpx.get(f"{url}/videos/{vid}", timeout=10)
        assert got.status_code == 200 and got.json()["prompt"] == "a fox"
        again = httpx.post(f"{url}/videos", json=body, timeout=10).json()
        assert again["id"] == vid
        assert httpx.get(url.rsplit("/v1", 1)[0] + "/_sim/stats", timeout=10).json()["creates"] == 1


def test_a_forced_run_killed_before_its_creates_left_costs_the_next_plain_run_nothing(tmp_path: Path) -> None:
    """kill -9 (a crash point) in a --force run, between its resets and write-ahead intents and its first create
    (jobs started in one moment commit their intents together, then send: a later crash point may find a create
    already taken): the next plain run puts every job back as it was and pays for none."""
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), run={"concurrency": 3},
                       sim={"render_time": 0.2, "jitter": 0})
    assert api.run(m, report=False).exit_code == 0
    before = {j.key: j.sha256 for j in api.status(m).jobs}
    env = {**os.environ, "GRIDRUN_CRASH_AT": "before-submit:1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    killed = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--force", "--no-report"],
                            env=env, capture_output=True, timeout=120, check=False)
    assert killed.returncode == -9, killed.stderr[-500:]
    states = sorted(j.state for j in api.status(m).jobs)
    assert "planned" in states or "submitting" in states, states
    again = api.run(m, report=False)
    assert again.exit_code == 0 and again.stats.cached == 3, again.stats.counts
    assert {j.key: j.sha256 for j in api.status(m).jobs} == before
    assert world_stats(m)["creates"] == 3 and world_stats(m)["duplicate_paid"] == 0


def test_a_forced_run_killed_after_a_new_take_replaced_the_earlier_keeps_every_paid_take(tmp_path: Path) -> None:
    """kill -9 in a --force run just after its first new video was renamed into place, before the state
    said so: the earlier take is kept under .runs/superseded/, and the next plain run collects what the
    killed run sent, keeping those jobs' earlier takes too, at no new cost."""
    m = write_manifest(tmp_path, sim={"render_time": 0.2, "jitter": 0},
                       extra={"matrix": {"style": ["anime", "clay"]}, "output": "{{ style }}.mp4"})
    assert api.run(m, report=False).exit_code == 0
    before = {j.key: (j.hash, j.sha256, Path(j.output_path)) for j in api.status(m).jobs}
    _killed_run(m, "after-download:1", "run", "--force")
    creates = world_stats(m)["creates"]
    assert 3 <= creates <= 4

    def kept(job_hash: str) -> set[str]:
        folder = m.parent / "outputs" / "t" / ".runs" / "superseded" / job_hash[:16]
        return {sha256_of(p) for p in folder.glob("*/*.mp4")}

    assert any(sha in kept(h) and sha256_of(out) != sha for h, sha, out in before.values())
    again = api.run(m, report=False)
    assert again.exit_code == 0 and again.stats.counts["done"] == 2, again.stats.counts
    assert world_stats(m)["creates"] == creates
    now = {j.key: j for j in api.status(m).jobs}
    for key, (h, sha, out) in before.items():
        if now[key].attempts > 1:  # re-rendered: the earlier take is kept, the new one in place
            assert sha in kept(h) and sha256_of(out) == now[key].sha256 != sha, (kept(h), sha, now[key].sha256)
            assert kept(h) == {sha}, (kept(h), sha, now[key].sha256)
        else:
            assert sha256_of(out) == sha
    check_outputs(m)


def test_a_take_renamed_into_place_before_its_sidecar_is_not_kept_again_when_downloaded_again(tmp_path: Path) -> None:
    """kill -9 in a --force run just after a new take was renamed into place, before its sidecar was written (the
    earlier take's sidecar is still beside it): the next run downloads that take again and knows the file for the
    same bytes, keeping no copy of it; the earlier take alone is kept."""
    m = write_manifest(tmp_path, sim={"render_time": 0.2, "jitter": 0},  # no seed: a render of its own each time
                       extra={"matrix": {"style": ["anime"]}, "output": "{{ style }}.mp4"})
    assert api.run(m, report=False).exit_code == 0
    (job,) = api.status(m).jobs
    earlier, out = job.sha256, Path(job.output_path)
    _killed_run(m, "before-sidecar:1", "run", "--force")
    assert sha256_of(out) != earlier and json.loads(out.with_suffix(".json").read_text())["sha256"] == earlier
    again = api.run(m, report=False)
    assert again.exit_code == 0 and again.stats.counts["done"] == 1
    (now,) = api.status(m).jobs
    assert now.attempts == 2 and sha256_of(out) == now.sha256 != earlier
    folder = m.parent / "outputs" / "t" / ".runs" / "superseded" / job.hash[:16]
    assert {sha256_of(p) for p in folder.glob("*/*.mp4")} == {earlier}
    assert world_stats(m)["creates"] == 2
    check_outputs(m)


def test_failure_retries_are_counted_across_a_killed_runs_resumes(tmp_path: Path) -> None:
    """A job whose render always fails, failure_retries 1: two paid attempts in all, however often the run is
    killed (here just after the retry's create) and resumed; `gridrun retry` begins the count again."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"failure_retries": 1},
                       sim={"render_time": 0.2, "jitter": 0, "failure_rate": 1.0, "failure_code": "INTERNAL_ERROR"})
    env = {**os.environ, "GRIDRUN_CRASH_AT": "after-submit:2", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    killed = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"],
                            env=env, capture_output=True, timeout=120, check=False)
    assert killed.returncode == -9, killed.stderr[-500:]
    assert world_stats(m)["creates"] == 2
    resumed = api.run(m, report=False)
    assert resumed.exit_code == 1 and resumed.stats.counts["failed"] == 1
    assert world_stats(m)["creates"] == 2
    again = api.run(m, options={"retry_failed": True}, report=False)
    assert again.stats.counts["failed"] == 1 and world_stats(m)["creates"] == 4


def _killed_run(m: Path, crash_at: str, *args: str) -> None:
    env = {**os.environ, "GRIDRUN_CRASH_AT": crash_at, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    killed = subprocess.run([sys.executable, "-m", "runner.cli", *args, str(m), "--no-report"],
                            env=env, capture_output=True, timeout=120, check=False)
    assert killed.returncode == -9, killed.stderr[-500:]


@pytest.mark.parametrize("crash_at", ["after-failure:1", "before-submit:2", "after-reset:1"])
def test_a_failure_retry_decided_but_never_sent_is_sent_by_the_resumed_run(tmp_path: Path, crash_at: str) -> None:
    """Killed with the failure retry counted (reset) but its create not sent, also the moment the failure is
    recorded (the retry waits there for a free slot): the resumed run makes it, and it counts once; then no
    more."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"failure_retries": 1},
                       sim={"render_time": 0.2, "jitter": 0, "failure_rate": 1.0, "failure_code": "INTERNAL_ERROR"})
    _killed_run(m, crash_at, "run")
    assert world_stats(m)["creates"] == 1
    resumed = api.run(m, report=False)
    assert resumed.exit_code == 1 and resumed.stats.counts["failed"] == 1
    assert world_stats(m)["creates"] == 2, "the retry the killed run decided is made"
    assert api.run(m, report=False).exit_code == 1 and world_stats(m)["creates"] == 2, "and only once"


def test_retry_begins_the_count_again_for_a_job_whose_failure_retry_was_never_sent(tmp_path: Path) -> None:
    """`gridrun retry` after a run killed with its failure retry unsent: 1 + failure_retries attempts."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"failure_retries": 1},
                       sim={"render_time": 0.2, "jitter": 0, "failure_rate": 1.0, "failure_code": "INTERNAL_ERROR"})
    _killed_run(m, "before-submit:2", "run")
    assert world_stats(m)["creates"] == 1
    again = api.run(m, options={"retry_failed": True}, report=False)
    assert again.stats.counts["failed"] == 1 and world_stats(m)["creates"] == 3



@pytest.mark.parametrize("crash_at", ["after-failure:1", "after-reset:2", "before-submit:2"])
def test_a_failed_re_render_whose_failure_retry_a_killed_run_never_sent_leaves_the_done_job_as_it_was(
    tmp_path: Path, crash_at: str
) -> None:
    """A --force run killed after its re-render failed and its failure retry was decided (or begun), never sent;
    the resumed run allows no more failure retries: the job is done with its earlier video (event rerun-failed),
    as after a failed re-render with no retry, not failed for a paid `retry`; nothing is sent again."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.2, "jitter": 0})
    first = api.run(m, report=False)
    assert first.exit_code == 0
    job = api.status(m).jobs[0]
    m.write_text(m.read_text().replace("jitter: 0", "jitter: 0\n  failure_rate: 1.0\n  failure_code: INTERNAL_ERROR"))
    _killed_run(m, crash_at, "run", "--force", "--failure-retries", "1")
    assert world_stats(m)["creates"] == 2
    resumed = api.run(m, options={"failure_retries": 0}, report=False)
    assert resumed.exit_code == 0 and resumed.stats.counts["done"] == 1, resumed.stats.counts
    assert world_stats(m)["creates"] == 2
    now = api.status(m).jobs[0]
    assert now.state == "done" and now.sha256 == job.sha256 == sha256_of(Path(job.output_path)), now
    assert now.attempts == 2 and now.cost_micros == job.cost_micros
    check_outputs(m)
    assert api.run(m, options={"retry_failed": True}, report=False).exit_code == 0 and world_stats(m)["creates"] == 2


def _age_sends(m: Path, seconds: float) -> None:
    """The sends of the jobs left `submitting` made `seconds` earlier, as a state left long ago has them."""
    import sqlite3

    with sqlite3.connect(m.parent / ".gridrun" / "state.db") as db:
        db.execute("UPDATE jobs SET submitted_at = submitted_at - ? WHERE state = 'submitting'", (seconds,))
    db.close()


@pytest.mark.parametrize("crash_at, reached", [("before-submit:1", False), ("after-submit:1", True)])
def test_cancel_voids_a_job_left_sending_the_manifest_no_longer_has_only_when_the_log_never_saw_it(
        tmp_path: Path, crash_at: str, reached: bool) -> None:
    """A run stopped with a job `submitting` (a request it could not write, a kill) and the manifest changed since:
    no run looks that job up, and a run refuses to start over it. `cancel` looks it up by its key in the provider's
    request log: one the provider has is recorded as sent at once; one not there is voided only with --void-unsent
    (nothing paid or reserved, and a run of the manifest as it is starts), once no send of it can still be on its
    way."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.2, "jitter": 0})
    _killed_run(m, crash_at, "run")
    assert [j.state for j in api.status(m).jobs] == ["submitting"]
    assert world_stats(m)["creates"] == (1 if reached else 0)
    m.write_text(m.read_text().replace("a fox,", "a red fox,"))
    key = api.status(m).jobs[0].key
    recent = api.cancel(m)
    assert not recent.unresolved, "no run looks it up"
    if reached:
        assert list(recent.found) == [key] and not recent.look_later and not recent.never_sent, recent
        assert [j.state for j in api.status(m).jobs] != ["submitting"]
        return
    assert list(recent.look_later) == [key] and not recent.never_sent, "a send may still be on its way"
    _age_sends(m, 7200)
    result = api.cancel(m)
    assert result.not_in_log == [key] and not result.never_sent and not result.unresolved
    assert [j.state for j in api.status(m).jobs] == ["submitting"], "a gateway may still hold its create"
    result = api.cancel(m, void_unsent=True)
    assert result.never_sent == [key] and not result.unresolved and not result.not_in_log
    snap = api.status(m)
    assert [j.state for j in snap.jobs] == ["planned"] and snap.reserved_micros == 0 and snap.spent_micros == 0
    again = api.run(m, report=False)
    assert again.exit_code == 0 and again.stats.counts["done"] == 1
    assert world_stats(m)["creates"] == 1


@pytest.mark.parametrize("render_time", [30.0, 0.2])
def test_cancel_records_a_job_left_sending_that_the_log_has_and_cancels_or_collects_it(
        tmp_path: Path, render_time: float) -> None:
    """A run killed after its create reached the provider, the answer unrecorded; the manifest drops the job. Once
    no send can be on its way, `cancel` finds the create in the request log: the video's id is recorded, and the job
    is cancelled while it renders (nothing reserved any more), or, rendered already, recorded finished and paid
    (its charge counted), and the manifest put back downloads it without a second create."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": render_time, "jitter": 0})
    _killed_run(m, "after-submit:1", "run")
    text = m.read_text()
    m.write_text(text.replace("a fox,", "a red fox,"))
    if render_time < 1:
        time.sleep(render_time + 0.3)
    _age_sends(m, 7200)
    result = api.cancel(m)
    [job] = api.status(m).jobs
    assert list(result.found) == [job.key] and result.found[job.key] == job.provider_id, result
    assert not result.unresolved and not result.never_sent and not result.errors
    if render_time > 1:
        assert result.cancelled == [job.key] and job.state == "cancelled"
        assert api.status(m).reserved_micros == 0
    else:
        assert result.finished == [job.key] == result.dropped and job.state == "downloading"
        snap = api.status(m)
        assert snap.reserved_micros == 0 and snap.spent_micros == world_stats(m)["billed_micros"] > 0
        m.write_text(text)
        again = api.run(m, report=False)
        assert again.exit_code == 0 and again.stats.counts["done"] == 1, again.stats.counts
    assert world_stats(m)["creates"] == 1


def test_cancel_settles_in_the_ended_runs_record_a_job_left_sending_that_it_finds_and_cancels(tmp_path: Path) -> None:
    """Run 1 sends a job and is killed; the manifest drops it and run 2 (--leave-in-flight) ends, recording run 1
    as it left it (sending, reserved). `cancel` finds the job in the request log and cancels it (and run 2's, which
    it left rendering): run 1's record no longer reserves it."""
    import sqlite3

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 30.0, "jitter": 0})
    _killed_run(m, "after-submit:1", "run")
    m.write_text(m.read_text().replace("a fox,", "a red fox,"))
    assert api.run(m, options={"leave_in_flight": True, "timeout": 0.5}, report=False).run_id == 2

    def money() -> dict[str, int]:
        with sqlite3.connect(tmp_path / ".gridrun" / "state.db") as db:
            text = db.execute("SELECT final_money FROM runs WHERE id = 1").fetchone()[0]
        db.close()
        return json.loads(text)

    assert money()["reserved"] > 0
    _age_sends(m, 7200)
    result = api.cancel(m)
    assert len(result.found) == 1 and len(result.cancelled) == 2, result  # run 2's own job left rendering too
    assert money()["reserved"] == 0
    assert world_stats(m)["creates"] == 2


def test_cancel_voids_a_job_left_sending_after_a_later_run_ended(tmp_path: Path) -> None:
    """A run killed with a job `submitting` (never sent); the manifest drops the job and a later run
    (--leave-in-flight) ends, recording the job as it left it. `cancel` voids it without a crash, and neither the
    state nor the killed run's record reserves it any more."""
    import sqlite3

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.2, "jitter": 0})
    _killed_run(m, "before-submit:1", "run")
    m.write_text(m.read_text().replace("a fox,", "a red fox,"))
    later = api.run(m, options={"leave_in_flight": True}, report=False)
    assert later.exit_code == 0
    db_path = tmp_path / ".gridrun" / "state.db"

    def read(sql: str) -> list[Any]:
        with sqlite3.connect(db_path) as db:
            rows = db.execute(sql).fetchall()
        db.close()
        return rows

    [(key, job_id)] = read("SELECT key, id FROM jobs WHERE state = 'submitting'")
    assert json.loads(read("SELECT final_money FROM runs WHERE id = 1")[0][0])["reserved"] > 0
    _age_sends(m, 7200)
    result = api.cancel(m, void_unsent=True)
    assert result.never_sent == [key] and not result.unresolved
    assert read(f"SELECT state FROM jobs WHERE id = {job_id}") == [("planned",)]
    assert json.loads(read("SELECT final_money FROM runs WHERE id = 1")[0][0])["reserved"] == 0
    assert api.status(m).reserved_micros == 0
    assert world_stats(m)["creates"] == 1


def test_cancel_puts_back_a_job_left_sending_the_log_lacks_only_when_asked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A miss in the request log cannot rule out a create a gateway still holds: `gridrun cancel` names the job,
    the risk and the flag, and exits 1; with --void-unsent it puts the job back as not sent."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.2, "jitter": 0})
    _killed_run(m, "before-submit:1", "run")
    m.write_text(m.read_text().replace("a fox,", "a red fox,"))
    _age_sends(m, 7200)
    monkeypatch.chdir(tmp_path)
    assert main(["cancel", m.name]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "not in the provider's request log, so most likely never sent" in err, err
    assert f"`gridrun cancel {m.name} --void-unsent` puts it back as not sent" in err, err
    assert "a gateway on the way still holds a create" in err, err
    assert [j.state for j in api.status(m).jobs] == ["submitting"]
    assert main(["cancel", m.name, "--void-unsent"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "so it was put back as never sent (--void-unsent): nothing paid, nothing reserved any more" in out, out
    assert [j.state for j in api.status(m).jobs] == ["planned"]


def test_cancel_that_voids_a_job_a_killed_run_left_sending_writes_that_runs_report_again(tmp_path: Path) -> None:
    """The killed run's report, written before the cancel, shows the job voided as it is now, not `submitting`."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime", "clay"), run={"concurrency": 1},
                       sim={"render_time": 0.2, "jitter": 0})
    _killed_run(m, "before-submit:2", "run")
    page = api.report(m)
    assert '"state":"submitting"' in page.read_text()
    write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"concurrency": 1},
                   sim={"render_time": 0.2, "jitter": 0})
    _age_sends(m, 7200)
    result = api.cancel(m, void_unsent=True)
    assert len(result.never_sent) == 1 and result.reports == {1: page}, result
    text = page.read_text()
    assert '"state":"submitting"' not in text and '"state":"planned"' in text


def test_cancel_and_run_name_the_same_time_when_cancel_looks_up_a_job_left_sending(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Within the hour after the send, `cancel` does not send the user to `gridrun run` (which refuses over the job):
    both name the moment `cancel` looks it up."""
    from runner.records import local_time
    from runner.resume import CANCEL_LOOKS_UP_AFTER

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.2, "jitter": 0})
    _killed_run(m, "before-submit:1", "run")
    m.write_text(m.read_text().replace("a fox,", "a red fox,"))
    [job] = api.status(m).jobs
    when = local_time(job.submitted_at + CANCEL_LOOKS_UP_AFTER)
    monkeypatch.chdir(tmp_path)
    assert main(["cancel", m.name]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"`gridrun cancel {m.name}` looks it up in the provider's request log after {when}" in err, err
    assert "finds out (Ctrl-C" not in err, err
    assert main(["run", m.name]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "`gridrun cancel` looks them up in the provider's request log now, at no cost" in err, err
    assert f"a miss there is sure only after {when}" in err, err


def test_cancel_asks_the_request_log_again_after_a_transient_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A 5xx from the request log is tried again, as a run's lookup is; a log that keeps failing is said, with
    `gridrun cancel` again to look the job up."""
    from runner import pacing

    monkeypatch.setattr(pacing, "backoff", lambda attempt, retry_after: 0.0)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.2, "jitter": 0})
    _killed_run(m, "before-submit:1", "run")
    _age_sends(m, 7200)
    script = {"route": "requests", "nth": [1, 2, 3], "fault": "server_error", "status": 500}
    write_manifest(tmp_path, n_seeds=1, styles=("clay",), sim={"render_time": 0.2, "jitter": 0, "script": [script]})
    monkeypatch.chdir(tmp_path)
    assert main(["cancel", m.name]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "the provider's request log could not be read (" in err and "500" in err, err
    assert f"`gridrun cancel {m.name}` again looks it up" in err, err
    [job] = api.status(m).jobs
    assert job.state == "submitting"
    write_manifest(tmp_path, n_seeds=1, styles=("clay",),
                   sim={"render_time": 0.2, "jitter": 0, "script": [{**script, "nth": [1]}]})
    result = api.cancel(m)
    assert list(result.not_in_log) == [job.key] and not result.log_unread, result


def test_a_run_refused_over_a_job_left_sending_names_cancel(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.2, "jitter": 0})
    _killed_run(m, "before-submit:1", "run")
    m.write_text(m.read_text().replace("a fox,", "a red fox,"))
    with pytest.raises(InFlightError) as exc:
        api.run(m, report=False)
    assert "sent or about to be" in str(exc.value) and "`gridrun cancel` looks them up" in str(exc.value)
    assert "a miss there is sure only after " in str(exc.value)
    assert "sends it again at once if not found: a new render, paid; `gridrun cancel` first costs nothing" in \
        " ".join(str(exc.value).split())


def test_cancel_of_a_job_left_sending_the_manifest_still_has_finds_out_itself_and_sends_no_create(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed with a job `submitting` whose create never reached the provider, the manifest as it was: a run
    would look the key up and, not finding it, send the create again at once (a paid render of a job the user asked
    to cancel). `cancel` looks it up itself, at no cost; not found, it names the job, keeps it reserved, names no
    command that sends a create as the way to find out, and once no send can be on its way --void-unsent puts it
    back as never sent. Nothing is created at the provider along the way."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.2, "jitter": 0})
    _killed_run(m, "before-submit:1", "run")
    [job] = api.status(m).jobs
    assert job.state == "submitting" and world_stats(m)["creates"] == 0
    monkeypatch.chdir(tmp_path)
    assert main(["cancel", m.name]) == 1
    out, err = (" ".join(text.split()) for text in capsys.readouterr())
    assert "not in the provider's request log (looked up, at no cost)" in err, err
    assert f"`gridrun cancel {m.name}` looks it up in the provider's request log after" in err, err
    assert "sends it again at once if not found: a new render, paid" in err, err
    assert "`gridrun run" not in err and "finds out" not in err, err
    assert [j.state for j in api.status(m).jobs] == ["submitting"] and api.status(m).reserved_micros > 0
    _age_sends(m, 7200)
    assert main(["cancel", m.name]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "not in the provider's request log, so most likely never sent" in err, err
    assert "`gridrun run" not in err, err
    result = api.cancel(m, void_unsent=True)
    assert result.never_sent == [job.key] and not result.unresolved
    snap = api.status(m)
    assert [j.state for j in snap.jobs] == ["planned"] and snap.reserved_micros == 0 and snap.spent_micros == 0
    assert world_stats(m)["creates"] == 0


def test_cancel_of_a_job_left_sending_the_manifest_still_has_finds_it_in_the_log_and_cancels_it(
        tmp_path: Path) -> None:
    """A run killed after its create reached the provider, the answer unrecorded, the manifest as it was: `cancel`
    finds the create by its key in the request log at once, records the video's id and cancels it; the next run
    sends nothing."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 30.0, "jitter": 0})
    _killed_run(m, "after-submit:1", "run")
    [job] = api.status(m).jobs
    assert job.state == "submitting" and world_stats(m)["creates"] == 1
    result = api.cancel(m)
    assert list(result.found) == [job.key] and result.cancelled == [job.key], result
    assert not result.unresolved and not result.look_later and not result.dropped
    [job] = api.status(m).jobs
    assert job.state == "cancelled" and api.status(m).reserved_micros == 0
    assert world_stats(m)["creates"] == 1
