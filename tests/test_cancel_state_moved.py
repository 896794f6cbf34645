"""A manifest's `state_dir:` set or changed while jobs of its run are in flight in the state it named before: the
output folder's lock still names that state, and the commands given the manifest point there rather than take
the new, empty state's word that nothing was sent."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from execkit import in_flight, write_manifest

from runner import api
from runner.options import RunOptions


def _moved(tmp_path: Path) -> Path:
    """A manifest of two jobs its run left rendering in .gridrun/, then given `state_dir: .gridrun-v2`."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 2},
                       sim={"render_time": 30, "jitter": 0.0})
    assert api.run(m, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    assert in_flight(m) == 2
    m.write_text(m.read_text() + "state_dir: .gridrun-v2\n")
    return m


def test_cancel_refuses_and_names_the_state_that_holds_the_jobs_in_flight_then_cancels_them_with_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.cli import main

    m = _moved(tmp_path)
    monkeypatch.chdir(tmp_path)
    old = tmp_path / ".gridrun"
    capsys.readouterr()
    assert main(["cancel", str(m)]) == 2
    out, err = capsys.readouterr()
    said = " ".join(err.split())
    assert "nothing to cancel" not in out + said, out + said
    assert f"names the state in {old}, where run 1 of this manifest file left 2 jobs in flight" in said, said
    assert f"`gridrun cancel {m} --state {old}` cancels them" in said, said
    assert main(["cancel", str(m), "--state", str(old)]) == 0
    assert "cancelled 2 jobs at the provider" in capsys.readouterr().out
    assert main(["cancel", str(m)]) == 0  # none left in flight there: the manifest's own state, as before
    assert "nothing to cancel" in capsys.readouterr().out


def test_status_plan_and_run_point_to_the_state_that_holds_the_jobs_in_flight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.cli import main

    m = _moved(tmp_path)
    monkeypatch.chdir(tmp_path)
    old = tmp_path / ".gridrun"
    capsys.readouterr()
    assert main(["status", str(m)]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "runs it first" not in said and f"`gridrun status {m} --state {old}` follows them" in said, said
    assert main(["plan", str(m)]) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert ("2 jobs of this manifest are paid for and in flight in another state than the one it names now"
            in said), said
    assert main(["run", str(m), "--no-report"]) != 0
    said = " ".join(capsys.readouterr().err.split())
    assert "a run here would send them again, paid a second time" in said, said
    assert not (tmp_path / ".gridrun-v2" / "state.db").exists() or not api.status(m).jobs


def test_cancel_with_a_state_folder_that_holds_no_state_is_an_error_naming_the_one_meant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--state` given the project folder (whose .gridrun/ holds the state), or a folder mistyped: an error, exit 2,
    not "nothing to cancel", exit 0, while the jobs it meant render on, billed."""
    from runner.cli import main

    m = _moved(tmp_path)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["cancel", str(m), "--state", str(tmp_path)]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "did you mean --state" in said and ".gridrun" in said, said
    assert main(["cancel", str(m), "--state", str(tmp_path / "nowhere")]) == 2
    out, err = capsys.readouterr()
    assert "nothing to cancel" not in out + err and "no state there" in " ".join(err.split()), out + err
    assert main(["cancel", str(m), "--state", str(tmp_path / ".gridrun")]) == 0  # the two still there to cancel
    assert "cancelled 2 jobs at the provider" in capsys.readouterr().out


def test_a_state_copied_to_the_folder_named_now_follows_its_jobs_unrefused(tmp_path: Path) -> None:
    """The state copied whole to the new `state_dir:` (moved to another disk): it follows the jobs in flight
    itself, so neither `plan` nor `run` says they would be sent again, and the run collects them, no new create."""
    import shutil

    from execkit import sim_provider, stats

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 2},
                       sim={"render_time": 1.0, "jitter": 0.0})
    prov = sim_provider(m)
    assert api.run(m, provider=prov, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    shutil.copytree(tmp_path / ".gridrun", tmp_path / "st2")
    m.write_text(m.read_text() + "state_dir: st2\n")
    assert not any("paid a second time" in str(w) for w in api.plan(api.load(m)).warnings)
    result = api.run(m, provider=prov, report=False, options=RunOptions(timeout=30))
    assert result.exit_code == 0 and stats(prov)["creates"] == 2, (result.status, stats(prov))


def test_what_cancel_with_state_says_to_do_next_acts_on_that_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commands `cancel --state OLD` gives for the jobs it could not cancel name OLD (`cancel --state OLD`
    again, `run` with `state_dir:` put back), not the state the manifest names now, which holds none of them."""
    from runner.cli import main

    monkeypatch.setenv("COLUMNS", "400")
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 2}, sim={
        "render_time": 30, "jitter": 0.0, "script": [{"fault": "not_allowed", "route": "delete", "nth": [1]},
                                                     {"fault": "auth_failed", "route": "delete", "nth": [2]}]})
    assert api.run(m, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    m.write_text(m.read_text() + "state_dir: .gridrun-v2\n")
    monkeypatch.chdir(tmp_path)
    old = tmp_path / ".gridrun"
    capsys.readouterr()
    assert main(["cancel", str(m), "--state", str(old)]) == 1
    said = " ".join(capsys.readouterr().err.split())
    assert "1 job not cancelled, a request to the provider having failed" in said, said
    assert f"`gridrun cancel {m} --state {old}` again tries it again" in said, said
    assert f"`gridrun cancel {m}` again" not in said, said
    back = f"`gridrun run {m}` (with the manifest's `state_dir:` put back as it was, the state in {old})"
    assert said.count(back) == 2, said  # the job whose cancel is not taken, and the one whose cancel failed
    assert in_flight(m) == 0  # the manifest's own state holds none of them


def _done_in_v2_then_in_flight_in_the_default_state(tmp_path: Path) -> Path:
    """A manifest run to its end in .gridrun-v2, then in .gridrun (its 2 jobs left rendering there), then given
    `state_dir: .gridrun-v2` again."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 2},
                       sim={"render_time": 0.05, "jitter": 0.0})
    first = m.read_text()
    m.write_text(first + "state_dir: .gridrun-v2\n")
    assert api.run(m, report=False).status == "done"
    slow = first.replace("render_time: 0.05", "render_time: 30")
    m.write_text(slow)
    assert api.run(m, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    assert in_flight(m) == 2
    m.write_text(slow + "state_dir: .gridrun-v2\n")
    return m


def test_status_in_a_state_with_runs_of_its_own_points_to_the_jobs_in_flight_in_the_state_named_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manifest run in .gridrun-v2, then in .gridrun (its jobs left rendering there), then given `state_dir:
    .gridrun-v2` again: `status` shows the run of .gridrun-v2 and warns, as `plan` does, of the jobs in flight in
    .gridrun, with the commands that reach them; once `cancel --state` has cancelled them, it no longer does."""
    import json

    from runner.cli import main

    m = _done_in_v2_then_in_flight_in_the_default_state(tmp_path)
    monkeypatch.chdir(tmp_path)
    old = tmp_path / ".gridrun"
    capsys.readouterr()
    assert main(["status", str(m)]) == 0
    out, err = capsys.readouterr()
    said = " ".join(err.split())
    assert out.startswith("t run 1 (done") and "done 2" in out, out
    assert ("warning: 2 jobs of this manifest are paid for and in flight in another state than the one it names "
            f"now ({old}, its `state_dir:` changed since)") in said, said
    assert f"`gridrun status {m} --state {old}` follows them, `gridrun cancel {m} --state {old}` cancels them" in said
    assert main(["status", str(m), "--json"]) == 0
    (warning,) = json.loads(capsys.readouterr().out)["warnings"]
    assert warning.startswith("2 jobs of this manifest are paid for and in flight in another state"), warning
    assert main(["cancel", str(m), "--state", str(old)]) == 0
    capsys.readouterr()
    assert main(["status", str(m)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("t run 1 (done") and "in flight in another state" not in err, err
    assert api.status(m).warnings == []


def test_jobs_in_flight_in_the_state_named_before_and_done_in_the_state_named_now_are_not_said_sent_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state named now has done every job left in flight in the state named before: `plan` and `run` say a run
    sends none of them again (it would not follow them), not that it pays for them a second time."""
    from runner.cli import main

    m = _done_in_v2_then_in_flight_in_the_default_state(tmp_path)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["plan", str(m)]) == 0
    err = capsys.readouterr().err
    said = " ".join(err.split())
    assert "paid a second time" not in said, said
    assert "would send none of them again" in said and "but would not follow them" in said, said
    assert main(["run", str(m), "--no-report"]) != 0
    said = " ".join(capsys.readouterr().err.split())
    assert "paid a second time" not in said and "a run here would send none of them again" in said, said


def test_of_jobs_in_flight_in_the_state_named_before_only_those_the_state_named_now_lacks_are_said_sent_again() -> None:
    """Of three jobs in flight there, one the state named now has no record of: it alone is said sent again."""
    from runner.resume import OtherState

    other = OtherState(state_dir=Path("/p/.gridrun"), run_id=1, keys=["a", "b", "c"], manifest=Path("/p/m.yaml"),
                       sent_again=("b",))
    said = other.message()
    assert "a run here would send 1 of them again (b), paid a second time, the other 2 being already done" in said
    assert other.warning().count("`gridrun run` would refuse to start: it would send 1 of them again") == 1
    assert "would send them again, paid a second time" in replace(other, sent_again=None).message()
