"""A job of unknown outcome stays counted against the run that sent it, not against a later run. A later run that
finds it at the provider (its request log, looked up at no cost) collects its video, and what it cost is still
the sending run's: the later run's budget, which `plan` said would not count it, sends the jobs the plan said
fit, and `status --runs`, the export and the run's end agree on who paid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from execkit import write_manifest

from runner import api
from runner.cli import main

NO_LOG = {"route": "requests", "p": 1.0, "fault": "not_found"}


def _unknown_then_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run 1 sends 4 jobs of $0.35 to a provider that ignores keys: the answer to its 2nd create is lost and its
    request log answers 404, so that job is left `unknown` (run 1 spent $1.05, $0.35 reserved). Then the log
    answers again and the manifest gains a 5th job."""
    from runner import executor

    monkeypatch.setattr(executor, "LOG_SETTLE", 0.2)
    m = write_manifest(tmp_path, n_seeds=4, styles=("anime",), run={"concurrency": 2, "budget_usd": 1.40},
                       sim={"render_time": 0.2, "jitter": 0.0, "honour_idempotency": False,
                            "script": [{"route": "create", "nth": [2], "fault": "reset_after"}, NO_LOG]})
    assert main(["run", str(m), "--no-report", "--request-timeout", "1"]) == 1
    states = sorted(j.state for j in api.status(m).jobs)
    assert states == ["done", "done", "done", "unknown"], states
    doc = yaml.safe_load(m.read_text())
    doc["sim"]["script"] = doc["sim"]["script"][:1]  # the log answers again
    doc["matrix"]["seed"] = {"range": [1, 5]}
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    return m


def test_a_found_job_of_unknown_outcome_is_booked_to_the_run_that_sent_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    m = _unknown_then_found(tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(["plan", str(m), "--budget", "0.35"]) == 0
    assert "budget: $0.35 (fits" in capsys.readouterr().out
    assert main(["run", str(m), "--no-report", "--budget", "0.35"]) == 0  # the new job sent, nothing over budget
    said = capsys.readouterr()
    end = said.out + said.err
    assert "left in flight" not in end and "passed its budget" not in end, end
    assert sorted(j.state for j in api.status(m).jobs) == ["done"] * 5
    runs = {r.run.id: r for r in api.runs(m)}
    assert (runs[1].spent_micros, runs[1].reserved_micros) == (1_400_000, 0)
    assert (runs[2].spent_micros, runs[2].reserved_micros) == (350_000, 0)
    assert main(["status", str(m), "--runs", "--json"]) == 0
    listed = {r["run"]: r for r in json.loads(capsys.readouterr().out)}
    assert (listed[1]["spent_usd"], listed[2]["spent_usd"]) == (1.4, 0.35), listed
    for run, spent in ((1, 1.4), (2, 0.35)):
        assert main(["export", str(m), "--run", str(run), "--format", "json"]) == 0
        out = m.parent / "outputs" / "t" / ("results.json" if run == 2 else f"results-run-{run}.json")
        doc = json.loads(out.read_text())
        assert doc["summary"]["spent_usd"] == spent, doc["summary"]
        paid = sum(r["cost_usd"] for r in doc["rows"] if r["paid_in_run"] == run)
        assert round(paid, 6) == spent, doc["rows"]


def test_a_found_job_of_unknown_outcome_does_not_pass_a_zero_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing new to send, nothing in flight: the lookup's find costs the later run nothing."""
    m = _unknown_then_found(tmp_path, monkeypatch)
    doc = yaml.safe_load(m.read_text())
    doc["matrix"]["seed"] = {"range": [1, 4]}
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    capsys.readouterr()
    assert main(["run", str(m), "--no-report", "--budget", "0"]) == 0
    said = capsys.readouterr()
    assert "passed its budget" not in said.out + said.err, said.out + said.err
    assert [r.spent_micros for r in api.runs(m)] == [0, 1_400_000]


def _found_and_left_in_flight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run 1 leaves 3 jobs rendering at their timeout and one `unknown` (no request log); run 2 finds that one
    and leaves all four rendering at their timeout."""
    from runner import executor

    monkeypatch.setattr(executor, "LOG_SETTLE", 0.2)
    m = write_manifest(tmp_path, n_seeds=4, styles=("anime",), run={"concurrency": 4, "budget_usd": 1.40},
                       sim={"render_time": 6.0, "jitter": 0.0, "honour_idempotency": False,
                            "script": [{"route": "create", "nth": [2], "fault": "reset_after"}, NO_LOG]})
    quick = ["--no-report", "--timeout", "1", "--request-timeout", "1"]
    assert main(["run", str(m), *quick]) == 1
    assert sorted(j.state for j in api.status(m).jobs) == ["running", "running", "running", "unknown"]
    doc = yaml.safe_load(m.read_text())
    doc["sim"]["script"] = doc["sim"]["script"][:1]  # the log answers again
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert main(["run", str(m), *quick]) == 4  # all four left rendering at their timeout
    assert [j.state for j in api.status(m).jobs] == ["running"] * 4
    assert api.runs(m)[0].reserved_micros == 1_050_000  # the found one is run 1's reserve still
    return m


def test_a_found_job_a_run_left_in_flight_is_still_the_senders_money_for_the_run_that_collects_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 2 finds the job of unknown outcome run 1 sent, and leaves it rendering at its timeout with the others;
    run 3 collects them all. Its budget, and `plan`'s, counts the 3 jobs run 1 left in flight, not the one run
    2 found: that one's charge is run 1's."""
    m = _found_and_left_in_flight(tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(["plan", str(m), "--budget", "1.05"]) == 0
    planned = capsys.readouterr().out
    assert "budget: $1.05 (fits" in planned and "4 in flight ($1.05)" in planned, planned
    assert main(["run", str(m), "--no-report", "--budget", "1.05"]) == 0
    assert [j.state for j in api.status(m).jobs] == ["done"] * 4
    assert {r.run.id: r.spent_micros for r in api.runs(m)} == {1: 350_000, 2: 0, 3: 1_050_000}


def test_cancel_settles_a_found_job_a_run_left_in_flight_in_the_record_of_the_run_that_sent_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`gridrun cancel` of the jobs run 2 left rendering: the one it had found of unknown outcome leaves run 1's
    reserve (which held it), not run 2's (which never did)."""
    m = _found_and_left_in_flight(tmp_path, monkeypatch)
    assert main(["cancel", str(m)]) == 0
    assert [j.state for j in api.status(m).jobs] == ["cancelled"] * 4
    assert {r.run.id: r.reserved_micros for r in api.runs(m)} == {1: 0, 2: 0}


def test_a_failed_run_whose_jobs_a_later_run_found_done_is_listed_failed_all_done_since(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 1 ends `failed`, its job of unknown outcome left so; run 2 finds that job at the provider and collects
    it. `status --runs` lists run 1 as it ended, failed, and says its jobs are all done since; `--json` keeps its
    `status` and says so in `all_done_since`. Before run 2, run 1 is failed alone."""
    monkeypatch.setenv("COLUMNS", "400")
    m = _unknown_then_found(tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(["status", str(m), "--runs", "--json"]) == 0
    (one,) = json.loads(capsys.readouterr().out)
    assert (one["status"], one["done"], one["all_done_since"]) == ("failed", 3, False), one
    assert main(["status", str(m), "--runs"]) == 0
    assert "all done since" not in capsys.readouterr().out
    assert main(["run", str(m), "--no-report"]) == 0
    capsys.readouterr()
    assert main(["status", str(m), "--runs", "--json"]) == 0
    listed = {r["run"]: r for r in json.loads(capsys.readouterr().out)}
    assert (listed[1]["status"], listed[1]["done"], listed[1]["jobs"], listed[1]["all_done_since"]) == \
        ("failed", 4, 4, True), listed[1]
    assert (listed[2]["status"], listed[2]["all_done_since"]) == ("done", False), listed[2]
    assert main(["status", str(m), "--runs"]) == 0
    rows = {line.split()[0]: " ".join(line.split()) for line in capsys.readouterr().out.splitlines()[2:] if line.strip()}
    assert "failed, all done since 4/4" in rows["1"] and "all done since" not in rows["2"], rows
    assert [r.all_done_since for r in api.runs(m)] == [False, True]
