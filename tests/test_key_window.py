"""A create whose answer was lost is sent again with its key only while the provider still remembers the key
(`idempotency_window_seconds`, measured from the attempt the state records): past that, a provider that has
forgotten it would make and bill a second video, so the job is `unknown` instead, for `retry --unknown`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from runner import api
from runner.cli import _next_steps
from runner.errors import ManifestError
from runner.executor import RunOptions
from runner.providers import capabilities, get_provider
from runner.sim import SimConfig, create_app
from runner.sim.world import World

from execkit import check_outputs, quick_backoff, sim_provider, stats, write_manifest

ROOT = Path(__file__).resolve().parent.parent
NO_LOG = {"route": "requests", "p": 1.0, "fault": "server_error", "status": 503}


def _world_stats(m: Path) -> dict:
    """The stats of the built-in simulator's world the runs of `m` kept in its state folder."""
    return create_app(SimConfig(), world=World.open(m.parent / ".gridrun" / "sim-world.jsonl")).state.sim.stats()


# `gridrun` as it was at schema 9, before each state had a salt of its own in its idempotency keys.
SCHEMA_9_GRIDRUN = (
    "import sys; from runner import state; from runner.cli import main; del state._MIGRATIONS[9:]; "
    "state.idempotency_key = lambda job_hash, attempt, salt: f'gridrun-{job_hash[:24]}-{attempt}'; "
    "state.Store.key_salt = lambda self: ''; sys.exit(main(sys.argv[1:]))")


def _killed_after_its_create(m: Path, *, gridrun: tuple[str, ...] = ("-m", "runner.cli")) -> None:
    """`gridrun run` (`gridrun`: the interpreter's arguments that run it) killed (-9) just after the provider
    took the job's create, before the state knew its id: the job is left `submitting`."""
    env = {**os.environ, "GRIDRUN_CRASH_AT": "after-submit:1", "PYTHONPATH": str(ROOT)}
    killed = subprocess.run([sys.executable, *gridrun, "run", str(m), "--no-report"],
                            env=env, capture_output=True, timeout=120, check=False)
    assert killed.returncode == -9, killed.stderr[-500:]
    assert [j.state for j in api.status(m).jobs] == ["submitting"]
    assert _world_stats(m)["creates"] == 1


def _unknown_for_its_key_age(m: Path) -> str:
    """The one job is `unknown`, and says why it was not sent again and what `retry --unknown` does."""
    job = api.status(m).jobs[0]
    assert job.state == "unknown", (job.state, job.error)
    assert "not sent again: its idempotency key was first sent" in (job.error or "")
    assert "`gridrun retry --unknown` sends it again with the same key" in (job.error or "")
    assert api.diff(api.plan(m)).reasons[job.key].startswith("unknown:")
    return job.error or ""


def test_a_killed_run_resumed_past_the_providers_key_window_does_not_send_the_job_again(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",),
                       sim={"render_time": 0.2, "jitter": 0.0, "idempotency_window": 1, "script": [NO_LOG]})
    _killed_after_its_create(m)
    time.sleep(1.2)  # the key first sent longer ago than the provider's window
    resumed = api.run(m, options=RunOptions(request_timeout=0.5), report=False)
    assert resumed.exit_code == 1 and resumed.stats.counts["unknown"] == 1, resumed.stats.counts
    s = _world_stats(m)
    assert s["creates"] == 1 and s["duplicate_paid"] == 0, s
    _unknown_for_its_key_age(m)
    assert "`gridrun retry --unknown`" in _next_steps(resumed.stats.counts).text
    # a later plain run leaves it as it is
    assert api.run(m, options=RunOptions(request_timeout=0.5), report=False).stats.counts["unknown"] == 1
    assert _world_stats(m)["creates"] == 1


def test_a_killed_run_resumed_inside_the_key_window_sends_the_key_again_and_gets_the_same_video(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",),
                       sim={"render_time": 0.2, "jitter": 0.0, "idempotency_window": 60, "script": [NO_LOG]})
    _killed_after_its_create(m)
    prov = get_provider("sim", sim_config=api.load(m).data["sim"], state_dir=tmp_path / ".gridrun")
    resumed = api.run(m, provider=prov, options=RunOptions(request_timeout=0.5, poll_interval=0.1), report=False)
    assert resumed.exit_code == 0 and resumed.stats.counts["done"] == 1, resumed.stats.counts
    assert (stats(prov)["requests"]["create"], stats(prov)["replays"]) == (1, 1), stats(prov)  # sent again: a replay
    s = _world_stats(m)
    assert s["creates"] == 1 and s["duplicate_paid"] == 0, s
    assert api.status(m).jobs[0].attempts == 1
    check_outputs(m)


def test_a_lost_answer_is_not_sent_again_once_the_key_is_past_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create's answer is lost and the request log is down: the resend would come LOG_SETTLE later, past
    the provider's window, and is not made; `retry --unknown` then sends the key, as asked, and says so."""
    from runner import executor as ex_mod

    # the key may be sent again for 0.8 - 0.5 s (window less the request timeout); the resend would be 0.5 + 0.8 s late
    monkeypatch.setattr(ex_mod, "LOG_SETTLE", 0.8)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={
        "render_time": 0.2, "jitter": 0.0, "idempotency_window": 0.8,
        "script": [{"route": "create", "nth": 1, "fault": "reset_after"}, NO_LOG]})
    prov = sim_provider(m)
    assert prov.caps.idempotency_window_seconds == 0.8  # the simulator's own knob
    first = api.run(m, provider=prov, options=RunOptions(request_timeout=0.5), report=False)
    assert first.exit_code == 1 and first.stats.counts["unknown"] == 1, first.stats.counts
    assert stats(prov)["creates"] == 1 and stats(prov)["duplicate_paid"] == 0, stats(prov)
    _unknown_for_its_key_age(m)
    again = api.run(m, provider=prov, options=RunOptions(request_timeout=0.5, retry_unknown=True, poll_interval=0.1),
                    report=False)
    assert any("sent again as asked (retry --unknown), though its idempotency key" in e for e in again.stats.last_errors)
    assert again.exit_code == 0 and stats(prov)["creates"] == 2, stats(prov)  # the provider had forgotten the key


def test_a_clock_set_back_since_the_key_was_sent_is_taken_for_a_key_past_the_window(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",),
                       sim={"render_time": 0.2, "jitter": 0.0, "idempotency_window": 60, "script": [NO_LOG]})
    _killed_after_its_create(m)
    from runner.executor import Executor
    from runner.state import Store

    plan = api.plan(m)
    with Store(tmp_path / ".gridrun" / "state.db") as store:
        ex = Executor(plan, sim_provider(m), store, clock=lambda: time.time() - 3600)
        ex.prepare()
        why = ex._key_too_old(next(iter(ex.ids.values())))
        store.end_run(ex.run_id, "interrupted")
    assert why is not None and "the clock was set back" in why


def test_the_window_is_capability_data_a_capabilities_file_overrides(tmp_path: Path) -> None:
    assert capabilities.load("lumenfall").idempotency_window_seconds == 3600
    assert capabilities.load("sim").idempotency_window_seconds is None
    over = tmp_path / "caps.yaml"
    over.write_text("provider: lumenfall\nidempotency_window_seconds: 86400\n")
    assert capabilities.load("lumenfall", extra=[over]).idempotency_window_seconds == 86400
    bad = tmp_path / "bad.yaml"
    bad.write_text("provider: lumenfall\nidempotency_window_seconds: soon\n")
    with pytest.raises(ManifestError, match="idempotency_window_seconds: expected a number of seconds > 0 or null"):
        capabilities.load("lumenfall", extra=[bad])


def test_retry_unknown_warns_that_a_key_the_provider_has_forgotten_pays_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job whose create's answer was lost while the provider's request log was down is `unknown`; `retry
    --unknown` says how many such jobs it sends again and what that may cost, then (the log answering) finds
    the video the provider made."""
    from runner import executor as ex_mod
    from runner.cli import main

    monkeypatch.setattr(ex_mod, "LOG_SETTLE", 0.2)
    quick_backoff(monkeypatch)  # the lookups in the log that is down: that they fail, not how far apart
    sim = {"render_time": 0.1, "jitter": 0.0,
           "script": [{"route": "create", "nth": [1, 2, 3, 4, 5, 6], "fault": "reset_after"}, NO_LOG]}
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim=sim)
    assert main(["run", str(m), "--no-report", "--retries", "0", "--request-timeout", "1"]) == 1
    assert [j.state for j in api.status(m).jobs] == ["unknown"]
    capsys.readouterr()
    write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})  # log back
    assert main(["retry", "--unknown", str(m), "--no-report"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: 1 job of unknown outcome may already have been paid for" in err
    assert "sent again with its own idempotency key where the provider honours keys" in err
    assert "one that has forgotten it (a key past its dedup window, which gridrun would not send on its own)" in err


def test_retry_unknown_sends_no_failed_job_and_warns_of_nothing_with_no_job_of_unknown_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",),
                       sim={"render_time": 0.1, "jitter": 0.0, "failure_rate": 1.0})
    assert main(["run", str(m), "--no-report"]) == 1
    capsys.readouterr()
    write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    assert main(["retry", "--unknown", str(m), "--no-report"]) == 1
    assert "unknown outcome may already have been paid for" not in capsys.readouterr().err
    assert [j.state for j in api.status(m).jobs] == ["failed"]  # plain `retry` sends it
    assert main(["retry", str(m), "--no-report"]) == 0


@pytest.mark.parametrize("window, taken", [(5, 5.0), (None, None)])
def test_a_served_simulator_tells_the_run_how_long_it_remembers_keys(window: float | None, taken: float | None) -> None:
    import anyio

    from runner.sim.serve import running_server

    with running_server(SimConfig(idempotency_window=window)) as url:
        prov = get_provider("sim", base_url=url)

        async def prepare() -> None:
            async with prov.client() as client:
                await prov.prepare(client)

        anyio.run(prepare)
    assert prov.caps.idempotency_window_seconds == taken


def test_a_job_left_submitting_shows_its_cost_reserved_while_the_next_run_looks_it_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider that ignores keys: the next run reads its request log only once the lost create can no longer
    be on its way (request timeout + LOG_SETTLE, cut from 5 s to 1.5 s: what is shown meanwhile is the point, not
    how long). Meanwhile the job may well be paid for: its cost shows as reserved, with when the log is read;
    then it is found, followed and paid once."""
    from runner import executor as ex_mod

    monkeypatch.setattr(ex_mod, "LOG_SETTLE", 1.5)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",),
                       sim={"render_time": 0.2, "jitter": 0.0, "honour_idempotency": False})
    _killed_after_its_create(m)
    cost = api.plan(m).jobs[0].cost_micros
    seen = []
    resumed = api.run(m, options=RunOptions(request_timeout=0.5, poll_interval=0.1), report=False,
                      on_progress=seen.append)
    assert resumed.exit_code == 0 and resumed.stats.counts["done"] == 1, resumed.stats.counts
    looking = [s for s in seen if s.counts["submitting"] == 1]
    assert looking and all(s.reserved_micros == cost and s.spent_micros == 0 for s in looking), \
        [(s.counts, s.reserved_micros) for s in looking]
    assert any(s.next_check is not None for s in looking)
    s = _world_stats(m)
    assert s["creates"] == 1 and s["duplicate_paid"] == 0, s


@pytest.mark.parametrize("how", ["found-in-the-log", "sent-again", "retry-unknown"])
def test_a_job_an_earlier_gridrun_left_in_flight_is_followed_by_the_key_it_was_sent_with_after_the_upgrade(
    tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state of schema 9 (its keys had no salt) with a job left `submitting` after the provider took its
    create: the upgraded gridrun gives the state its salt, and finds the job by the key it was sent with, in
    the request log or by sending that key again (left `submitting`, or `unknown` and `retry --unknown`), for
    the video made then: nothing made or paid twice, the attempt's key as it was."""
    from runner.state import SCHEMA_VERSION, Store

    quick_backoff(monkeypatch)  # the lookups in a log that is down: that they fail, not how far apart
    sim = {"render_time": 0.2, "jitter": 0.0, "idempotency_window": 60}
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",),
                       sim={**sim, "script": [] if how == "found-in-the-log" else [NO_LOG]})
    _killed_after_its_create(m, gridrun=("-c", SCHEMA_9_GRIDRUN))
    db = tmp_path / ".gridrun" / "state.db"
    with closing(sqlite3.connect(db)) as old:
        assert old.execute("PRAGMA user_version").fetchone()[0] == 9
        [(sent,)] = old.execute("SELECT idempotency_key FROM attempts").fetchall()
        if how == "retry-unknown":
            with old:
                old.execute("UPDATE jobs SET state='unknown', error='outcome unknown'")
                old.execute("UPDATE attempts SET state='unknown', ended_at=?", (time.time() - 60,))
    job_hash = api.plan(m).jobs[0].hash
    assert sent == f"gridrun-{job_hash[:24]}-1"
    prov = get_provider("sim", sim_config=api.load(m).data["sim"], state_dir=tmp_path / ".gridrun")
    resumed = api.run(m, provider=prov, options=RunOptions(request_timeout=0.5, poll_interval=0.1,
                                                           retry_unknown=how == "retry-unknown"), report=False)
    assert resumed.exit_code == 0 and resumed.stats.counts["done"] == 1, resumed.stats.counts
    again = 0 if how == "found-in-the-log" else 1  # the key sent again: a replay of the video made then
    assert (stats(prov)["requests"].get("create", 0), stats(prov)["replays"]) == (again, again), stats(prov)
    s = _world_stats(m)
    assert s["creates"] == 1 and s["duplicate_paid"] == 0, s
    with Store(db, readonly=True) as store:
        assert store.schema == SCHEMA_VERSION and len(store.key_salt()) == 8
        assert [(a["n"], a["idempotency_key"]) for a in store.attempts(1)] == [(1, sent)]
        found = store.db.execute("SELECT detail FROM events WHERE kind='reconciled'").fetchall()
    assert [json.loads(d)["idempotency_key"] for (d,) in found] == ([sent] if how == "found-in-the-log" else [])
    check_outputs(m)
