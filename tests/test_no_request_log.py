"""A provider with no request log (an OpenAI-shaped API, a gateway without Lumenfall's native log: 404 to
`GET /v1/requests`) cannot tell gridrun whether a create whose answer was lost was made. Once a lookup has found
that, `plan`, `status` and a run's next steps promise no free lookup in the log: they say gridrun cannot tell, that
the provider's dashboard or billing can, and that `gridrun retry --unknown` may pay twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from execkit import write_manifest

from runner import api
from runner.cli import main
from runner.executor import RunOptions
from runner.sim import SimConfig
from runner.sim.app import create_app
from runner.sim.world import World

ROOT = Path(__file__).resolve().parent.parent
NO_LOG = {"route": "requests", "p": 1.0, "fault": "not_found"}
PROMISES = ("looks up", "looked up", "(no cost)", "at no cost")


def _world_stats(m: Path) -> dict:
    return create_app(SimConfig(), world=World.open(m.parent / ".gridrun" / "sim-world.jsonl")).state.sim.stats()


def _lost_create(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A job whose create the provider (keys ignored, no request log) took, its answer lost with the run killed
    (-9) just after; then a run that finds no log to look it up in, which leaves it `unknown`."""
    from runner import executor

    monkeypatch.setattr(executor, "LOG_SETTLE", 0.2)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",),
                       sim={"render_time": 0.2, "jitter": 0.0, "honour_idempotency": False, "script": [NO_LOG]})
    env = {**os.environ, "GRIDRUN_CRASH_AT": "after-submit:1", "PYTHONPATH": str(ROOT)}
    killed = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"],
                            env=env, capture_output=True, timeout=120, check=False)
    assert killed.returncode == -9, killed.stderr[-500:]
    assert [j.state for j in api.status(m).jobs] == ["submitting"]
    return m


def _said(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    main(argv)
    out = capsys.readouterr()
    return out.out + out.err


def _promises_no_lookup(text: str) -> None:
    said = text.lower()
    assert "request log" in said and "cannot tell" in said and "dashboard or billing" in said, text
    assert "retry --unknown" in said and "may pay twice" in said, text
    assert not any(p in said for p in PROMISES), text


def test_a_job_of_unknown_outcome_at_a_provider_without_a_request_log_is_promised_no_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    m = _lost_create(tmp_path, monkeypatch)
    ran = _said(["run", str(m), "--no-report", "--request-timeout", "1"], capsys)
    [job] = api.status(m).jobs
    assert job.state == "unknown", (job.state, job.error)
    assert _world_stats(m)["creates"] == 1  # nothing sent again
    planned = json.loads(_said(["plan", str(m), "--json"], capsys))
    against = planned["against_state"]
    assert (against["looked_up"], against.get("unchecked"), against["settled"]) == (0, 1, 1), against
    reason = api.diff(api.plan(m)).reasons[job.key]
    assert reason.startswith("unknown:") and "cannot tell" in reason and "request log, at no cost" not in reason
    _promises_no_lookup(_said(["plan", str(m)], capsys).split("against state:")[1])

    _promises_no_lookup(_said(["status", str(m)], capsys))
    _promises_no_lookup(ran[ran.index("some jobs did not finish"):])
    assert "no request log" in job.error and "dashboard or billing" in job.error, job.error

    # a plain run asks nothing more of the log, sends nothing, and says the same
    again = _said(["run", str(m), "--no-report", "--request-timeout", "1"], capsys)
    _promises_no_lookup(again[again.index("some jobs did not finish"):])
    assert _world_stats(m)["creates"] == 1 and api.status(m).jobs[0].state == "unknown"


def test_a_lookup_a_plain_run_makes_marks_an_unknown_job_once_the_log_is_found_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job left unknown where the log could not be read (a 503): a plain run looks it up; finding no log (404),
    it records that on the job, and the plan promises no further lookup."""
    m = _lost_create(tmp_path, monkeypatch)
    doc = m.read_text()
    m.write_text(doc.replace("fault: not_found", "fault: server_error\n    status: 503"))
    first = api.run(m, options=RunOptions(request_timeout=0.5), report=False)
    [job] = api.status(m).jobs
    assert first.stats.counts["unknown"] == 1 and "no request log" not in job.error, job.error
    assert api.diff(api.plan(m)).looked_up == (job.key,)  # the log may answer later: looked up
    m.write_text(doc)
    api.run(m, options=RunOptions(request_timeout=0.5), report=False)
    [job] = api.status(m).jobs
    assert job.state == "unknown" and "no request log" in job.error, job.error
    d = api.diff(api.plan(m))
    assert d.looked_up == () and d.unchecked == (job.key,)
    _promises_no_lookup(_said(["status", str(m)], capsys))
    assert _world_stats(m)["creates"] == 1


def test_retry_unknown_still_sends_it_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = _lost_create(tmp_path, monkeypatch)
    api.run(m, options=RunOptions(request_timeout=0.5), report=False)
    assert api.status(m).jobs[0].state == "unknown"
    again = api.run(m, options=RunOptions(request_timeout=0.5, retry_unknown=True, poll_interval=0.1), report=False)
    assert again.exit_code == 0 and again.stats.counts["done"] == 1, again.stats.counts
    assert _world_stats(m)["creates"] == 2  # paid twice, as said
