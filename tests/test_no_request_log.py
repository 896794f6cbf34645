"""A provider with no request log (an OpenAI-shaped API, a gateway without Lumenfall's native log: 404 to
`GET /v1/requests`) cannot tell gridrun whether a create whose answer was lost was made. Once a lookup has found
that, `plan`, `status` and a run's next steps say gridrun could not check when it last asked, that the provider's
dashboard or billing can, and that `gridrun retry --unknown` may pay twice. One 404 is no proof there never will be
a log (a gateway may answer so in a bad moment): a plain run asks again, at no cost, and collects what it finds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from execkit import write_manifest

from runner import api
from runner.cli import main
from runner.executor import RunOptions
from runner.sim import SimConfig
from runner.sim.app import create_app
from runner.sim.world import World

ROOT = Path(__file__).resolve().parent.parent
NO_LOG = {"route": "requests", "p": 1.0, "fault": "not_found"}


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


def _says_unchecked(text: str) -> None:
    said = text.lower()
    assert "request log" in said and "could not check" in said and "last asked" in said, text
    assert "dashboard or billing" in said and "cannot tell" not in said, text
    assert "retry --unknown" in said and "may pay twice" in said, text
    assert "asks again" in said or "looks them up" in said or "looks it up" in said, text


def test_a_job_of_unknown_outcome_at_a_provider_without_a_request_log_is_looked_up_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    m = _lost_create(tmp_path, monkeypatch)
    ran = _said(["run", str(m), "--no-report", "--request-timeout", "1"], capsys)
    [job] = api.status(m).jobs
    assert job.state == "unknown", (job.state, job.error)
    assert _world_stats(m)["creates"] == 1  # nothing sent again
    planned = json.loads(_said(["plan", str(m), "--json"], capsys))
    against = planned["against_state"]
    assert (against["looked_up"], against.get("unchecked"), against["settled"]) == (1, 1, 1), against
    reason = api.diff(api.plan(m)).reasons[job.key]
    assert reason.startswith("unknown:") and "could not check" in reason and "again, at no cost" in reason, reason
    _says_unchecked(_said(["plan", str(m)], capsys).split("against state:")[1])

    _says_unchecked(_said(["status", str(m)], capsys))
    _says_unchecked(ran[ran.index("some jobs did not finish"):])
    assert "no request log" in job.error and "last asked" in job.error, job.error

    # the log still answers 404: a plain run asks again, sends nothing, says the same, and notes it once
    again = _said(["run", str(m), "--no-report", "--request-timeout", "1"], capsys)
    _says_unchecked(again[again.index("some jobs did not finish"):])
    [job] = api.status(m).jobs
    assert _world_stats(m)["creates"] == 1 and job.state == "unknown"
    assert job.error.count("no request log") == 1, job.error


def test_a_plain_run_collects_the_video_once_the_log_answers_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One 404 from the request log is not taken for good: once the log answers, a plain run finds the create by
    its key and collects its video, paying nothing new."""
    m = _lost_create(tmp_path, monkeypatch)
    api.run(m, options=RunOptions(request_timeout=0.5), report=False)
    [job] = api.status(m).jobs
    assert job.state == "unknown" and "no request log" in job.error, job.error
    doc = yaml.safe_load(m.read_text())
    del doc["sim"]["script"]  # the log answers again
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    again = api.run(m, options=RunOptions(request_timeout=0.5, poll_interval=0.1), report=False)
    assert again.stats.counts["done"] == 1, (again.stats.counts, api.status(m).jobs[0].error)
    assert _world_stats(m)["creates"] == 1  # collected, not sent again


def test_a_lookup_a_plain_run_makes_marks_an_unknown_job_once_the_log_is_found_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job left unknown where the log could not be read (a 503): a plain run looks it up; finding no log (404),
    it records that on the job, and the plan says so, a later run still looking it up."""
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
    assert d.looked_up == (job.key,) and d.unchecked == (job.key,)
    _says_unchecked(_said(["status", str(m)], capsys))
    assert _world_stats(m)["creates"] == 1


def test_retry_unknown_still_sends_it_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = _lost_create(tmp_path, monkeypatch)
    api.run(m, options=RunOptions(request_timeout=0.5), report=False)
    assert api.status(m).jobs[0].state == "unknown"
    again = api.run(m, options=RunOptions(request_timeout=0.5, retry_unknown=True, poll_interval=0.1), report=False)
    assert again.exit_code == 0 and again.stats.counts["done"] == 1, again.stats.counts
    assert _world_stats(m)["creates"] == 2  # paid twice, as said
