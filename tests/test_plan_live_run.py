"""`plan` (and `recover`) taken while a run of the manifest goes on (the state's runner lock held by it): it says first that the
run goes on and sends what its own plan holds, and gives no refusal over jobs that run follows itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from execkit import running, write_manifest


@pytest.mark.timeout(120)
def test_plan_while_a_run_goes_on_names_it_first_and_gives_no_left_in_flight_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime", "clay"), run={"concurrency": 2},
                       sim={"render_time": 30, "jitter": 0.0, "concurrency": 2})
    with running(m, flying=2):
        # the prompt changed while the run goes on: every job differs, the two in flight are no longer the plan's
        m.write_text(m.read_text().replace("a fox", "a wolf"))
        monkeypatch.chdir(tmp_path)
        capsys.readouterr()
        assert main(["plan", str(m)]) == 0
        err = capsys.readouterr().err
        assert main(["recover", str(m), "--dry-run"]) == 0
        recovered = " ".join(capsys.readouterr().out.split())
        assert main(["plan", str(m), "--json"]) == 0
        planned = json.loads(capsys.readouterr().out)["live_run"]
        assert main(["recover", str(m), "--dry-run", "--json"]) == 0
        recovered_json = json.loads(capsys.readouterr().out)
    assert main(["recover", str(m), "--dry-run", "--json"]) == 0  # ended: none goes on
    assert json.loads(capsys.readouterr().out)["live_run"] is None
    said = " ".join(err.split())
    assert said.startswith("note: run 1 of this manifest is going on (pid "), said
    assert ("it sends the 2 jobs it planned and has not sent yet ($0.70) and follows the 2 in flight, as its "
            "manifest copy outputs/t/.runs/run-1.yaml has them, whatever the file says now; `gridrun run` is "
            "refused until it ends") in said, said
    assert "--leave-in-flight" not in said and "would refuse to start" not in said, said
    assert recovered.startswith("note: run 1 of this manifest is going on (pid "), recovered
    assert "; but run 1, going on, sends those it planned itself: `gridrun plan` once it ends says" in recovered, \
        recovered
    live = recovered_json["live_run"]  # as `plan --json` gives it, its message the note `recover` says first
    assert live is not None and live == planned and live["run"] == 1 and live["to_send"] == 2, (live, planned)
    assert recovered.startswith(f"note: {' '.join(live['message'].split())}"), (recovered, live)


@pytest.mark.timeout(120)
def test_plan_json_and_status_json_while_a_run_goes_on_name_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The note `plan` says first of a run going on is `live_run` in `plan --json` (its run, pid, what it has not
    sent yet and its cost, the jobs it follows, its manifest copy, the note itself); `status --json` of that run gives
    the same, and null once it has ended."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime", "clay"), run={"concurrency": 2},
                       sim={"render_time": 30, "jitter": 0.0, "concurrency": 2})
    monkeypatch.chdir(tmp_path)
    with running(m, flying=2):
        capsys.readouterr()
        assert main(["plan", str(m)]) == 0
        note = " ".join(capsys.readouterr().err.split())
        assert main(["plan", str(m), "--json"]) == 0
        planned = json.loads(capsys.readouterr().out)
        assert main(["status", str(m), "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert main(["status", "--json"]) == 0  # no manifest given: the run shown, going on
        unnamed = json.loads(capsys.readouterr().out)
    live = planned["live_run"]
    assert {k: live[k] for k in ("run", "to_send", "to_send_usd", "in_flight")} == {
        "run": 1, "to_send": 2, "to_send_usd": 0.7, "in_flight": 2}, live
    assert isinstance(live["pid"], int) and live["manifest_copy"] == str(tmp_path / "outputs/t/.runs/run-1.yaml")
    assert note.startswith(f"note: {live['message']}"), (note, live)
    assert status["live_run"] == live, status["live_run"]
    assert status["next"] is None and status["next_commands"] == [], status
    assert {k: unnamed["live_run"][k] for k in ("run", "pid", "to_send", "in_flight")} == {
        k: live[k] for k in ("run", "pid", "to_send", "in_flight")}, unnamed["live_run"]
    assert main(["status", str(m), "--json"]) == 0  # ended (stopped, its jobs left in flight)
    assert json.loads(capsys.readouterr().out)["live_run"] is None
    assert main(["plan", str(m), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["live_run"] is None


def test_status_of_an_ended_run_while_another_starts_says_so_first_and_in_its_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1 ended and a run of the manifest starting (planning, not recorded yet): `status` shows run 1 and notes
    first, as `plan` does, that a run is starting and sends what it plans; `status --json` gives it as `live_run`."""
    from runner.cli import main
    from runner.state import announcing_start

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(m), "--no-report"]) == 0
    capsys.readouterr()
    assert main(["status", str(m)]) == 0
    assert "is starting" not in capsys.readouterr().err
    with announcing_start(tmp_path / ".gridrun", manifest=m, name="t"):
        assert main(["status", str(m)]) == 0
        captured = capsys.readouterr()
        assert main(["status", str(m), "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
    said = " ".join(captured.err.split())
    assert said.startswith("note: a run of this manifest is starting (pid "), said
    assert "t run 1 (done" in captured.out, captured.out
    live = doc["live_run"]
    assert doc["run"] == 1 and live is not None and live["run"] is None and live["to_send"] == 0, doc
    assert said.startswith(f"note: {' '.join(live['message'].split())}"), (said, live)
