"""A project folder renamed or moved with its state folder and its output folder: the output folder's lock names
the state folder where it was, and is this state's all the same. A state behind, emptied or lost after the move is
refused as it is in place, `gridrun recover` adopts the videos its runs left, and a run pays for none again."""

from __future__ import annotations

from pathlib import Path

import pytest
from execkit import lose_state, ran_on_sim, stats, write_manifest

from runner import api


def _said(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    got = capsys.readouterr()
    return " ".join(got.out.split()), " ".join(got.err.split())


def test_a_moved_project_whose_state_is_restored_from_an_older_backup_is_refused_and_recovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """state.db copied after a first run (2 jobs), put back after a second (2 jobs more), and the project folder
    renamed: plan and run refuse the state as behind, naming `gridrun recover` of the manifest where it is now;
    recover adopts the second run's videos and a run sends nothing."""
    from runner.cli import main

    proj = tmp_path / "proj"
    proj.mkdir()
    _, prov = ran_on_sim(proj, monkeypatch, n_seeds=1)
    db = proj / ".gridrun" / "state.db"
    first = db.read_bytes()
    write_manifest(proj, n_seeds=2)
    assert api.run(proj / "t.yaml", report=False).exit_code == 0
    assert stats(prov)["creates"] == 4
    lose_state(proj)
    db.write_bytes(first)
    moved = proj.rename(tmp_path / "proj2")
    m = moved / "t.yaml"
    capsys.readouterr()
    for argv in (["plan"], ["run", "--no-report"]):
        assert main([argv[0], str(m), *argv[1:]]) == 1
        err = _said(capsys)[1]
        assert "the state has lost the records of runs it made" in err, err
        assert f"the state in {proj / '.gridrun'} (this state folder, at {moved / '.gridrun'} since it moved)" in err
        assert f"`gridrun recover {m}`, free" in err, err
    assert main(["recover", str(m)]) == 0
    said = _said(capsys)[0]
    assert "2 jobs found whole with their sidecars: recorded done" in said, said
    assert "2 jobs held by the state already, left as they are" in said, said
    assert api.diff(api.plan(m)).new == 0
    assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == 4


@pytest.mark.parametrize("how", ["removed", "emptied"])
def test_a_moved_project_whose_state_is_lost_is_refused_and_recovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    """The project folder renamed, then its state.db removed or emptied: plan refuses it, naming `gridrun recover`
    of the manifest where it is now; recover adopts every video and a run sends nothing."""
    from runner.cli import main

    proj = tmp_path / "proj"
    proj.mkdir()
    _, prov = ran_on_sim(proj, monkeypatch)
    moved = proj.rename(tmp_path / "proj2")
    m = moved / "t.yaml"
    db = lose_state(moved)
    if how == "emptied":
        db.write_bytes(b"")
    capsys.readouterr()
    assert main(["plan", str(m)]) == 1
    err = _said(capsys)[1]
    assert f"`gridrun recover {m}`, free" in err, err
    assert str(proj / "t.yaml") not in err, err
    assert main(["recover", str(m)]) == 0
    said = _said(capsys)[0]
    assert "4 jobs found whole with their sidecars: recorded done, nothing sent" in said, said
    assert api.diff(api.plan(m)).new == 0
    assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == 4


def test_a_project_moved_after_a_recover_is_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state lost and recovered (the output folder's lock naming the recover's run, of that folder), then the project
    folder renamed: the recover's run is of the output folder where it was, so the state is not refused as behind,
    and a run sends nothing."""
    proj = tmp_path / "proj"
    proj.mkdir()
    _, prov = ran_on_sim(proj, monkeypatch)
    lose_state(proj)
    assert api.recover(proj / "t.yaml").run_id == 2
    moved = proj.rename(tmp_path / "proj2")
    assert api.diff(api.plan(moved / "t.yaml")).new == 0
    assert api.run(moved / "t.yaml", report=False).exit_code == 0
    assert stats(prov)["creates"] == 4


def test_a_copied_project_whose_original_is_there_is_another_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project copied, its original still there, and the copy's state lost: the output folder's lock names the
    original's state folder, which is there: the copy's state is not refused as lost, and its videos are not taken
    for its own (a run keeps them aside)."""
    import shutil

    proj = tmp_path / "proj"
    proj.mkdir()
    ran_on_sim(proj, monkeypatch)
    copy = tmp_path / "copy"
    shutil.copytree(proj, copy, symlinks=True)
    lose_state(copy)
    assert len(api.plan(copy / "t.yaml").jobs) == 4  # not refused


def test_status_of_a_renamed_projects_state_folder_names_the_manifest_where_it_is_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run left 2 jobs in flight and its project folder was renamed: `status --state` of the folder where the state
    is now proposes the manifest beside it, never the old folder; with that manifest and its run copy removed, it
    proposes writing it there from the state, and following the advice collects the 2 jobs, paying nothing again."""
    from execkit import sim_provider

    from runner.cli import main
    from runner.options import RunOptions

    proj = tmp_path / "proj"
    proj.mkdir()
    m = write_manifest(proj, n_seeds=2, styles=("clay",), sim={"render_time": 2, "jitter": 0.0})
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(m, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    assert stats(prov)["creates"] == 2
    proj.rename(tmp_path / "proj2")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["status", "--state", "proj2/.gridrun"]) == 0
    out = _said(capsys)[0]
    assert "next: `gridrun run proj2/t.yaml` collects the 2 jobs left in flight at no new cost" in out, out
    assert "proj/" not in out, out
    (tmp_path / "proj2" / "t.yaml").unlink()
    (tmp_path / "proj2" / "outputs" / "t" / ".runs" / "run-1.yaml").unlink()
    assert main(["status", "--state", "proj2/.gridrun"]) == 0
    out = _said(capsys)[0]
    assert ("next: proj2/t.yaml is no longer there: put it back as run 1 had it first (`gridrun status --state "
            "proj2/.gridrun --manifest-copy 1 > proj2/t.yaml` writes it from the text the state keeps), then `gridrun "
            "run proj2/t.yaml` collects the 2 jobs left in flight at no new cost") in out, out
    assert main(["status", "--state", "proj2/.gridrun", "--manifest-copy", "1"]) == 0
    (tmp_path / "proj2" / "t.yaml").write_text(capsys.readouterr().out)
    assert api.run(tmp_path / "proj2" / "t.yaml", report=False).exit_code == 0
    assert stats(prov)["creates"] == 2


def _run_moved(tmp_path: Path, sim: dict[str, object], *, ctrl_c: bool) -> tuple[int, str, Path]:
    """`gridrun run` of a project folder renamed (R1 to R2) once its 2 jobs are in flight, with Ctrl-C twice after
    (`ctrl_c`): its exit code, standard error, and the manifest where it is now."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from execkit import in_flight, wait_for

    first = tmp_path / "R1"
    first.mkdir()
    m = write_manifest(first, n_seeds=2, styles=("anime",), sim={"jitter": 0.0, **sim})
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "COLUMNS": "400"}
    ran = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(m)], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: in_flight(m) == 2)
        first.rename(tmp_path / "R2")
        if ctrl_c:
            for _ in range(2):
                ran.send_signal(signal.SIGINT)
                time.sleep(0.5)
    finally:
        _, err = ran.communicate(timeout=120)
    return ran.returncode, " ".join(err.split()), tmp_path / "R2" / m.name


def _creates(project: Path) -> int:
    return (project / ".gridrun" / "sim-world.jsonl").read_text().count('"create"')


def test_a_run_whose_project_folder_moved_ends_failed_with_its_own_end_lines(tmp_path: Path) -> None:
    """The project folder renamed while its jobs render, every one of them failing: the run ends failed (exit 1),
    saying what its jobs did, read from its state where it is now, not that no state is there."""
    code, err, _ = _run_moved(tmp_path, {"render_time": 1.0, "failure_rate": 1.0}, ctrl_c=False)
    assert code == 1 and "Traceback" not in err, err
    assert "no state yet" not in err, err
    assert "some jobs did not finish (`gridrun status` says why): style=anime,seed=1 and 1 more job failed" in err, err


def test_a_run_whose_project_folder_moved_and_was_interrupted_says_what_it_left_in_flight(tmp_path: Path) -> None:
    """The project folder renamed while its jobs render, then Ctrl-C twice: the run exits 130 and says the jobs it
    left in flight, which a run from the folder's new place collects without sending them again."""
    code, err, m = _run_moved(tmp_path, {"render_time": 3.0}, ctrl_c=True)
    assert code == 130 and "Traceback" not in err, err
    assert "no state yet" not in err, err
    assert "interrupted with 2 jobs sent" in err and "`gridrun run` collects them at no new cost" in err, err
    assert _creates(m.parent) == 2
    assert api.run(m, report=False).exit_code == 0
    assert _creates(m.parent) == 2


def test_a_renamed_projects_status_reads_its_budget_there_and_report_names_the_free_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run stopped by its --budget with 4 jobs not sent, its project folder renamed: `status` reads the budget of
    the manifest where it is now ($5, which covers them), not the run's; `report` refuses the run's folder, gone,
    saying a run sends the jobs not done too and how to run sending none; that run pays nothing, and the report is
    written."""
    from execkit import sim_provider

    from runner.cli import main

    proj = tmp_path / "proj"
    proj.mkdir()
    m = write_manifest(proj, n_seeds=2, styles=("anime", "clay", "comic"), run={"budget_usd": 5})
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    monkeypatch.chdir(proj)
    main(["run", m.name, "--budget", "0.75", "--allow-partial", "--no-report"])
    assert stats(prov)["creates"] == 2
    moved = proj.rename(tmp_path / "proj2")
    monkeypatch.chdir(moved)
    capsys.readouterr()
    assert main(["status", m.name]) == 0
    out = _said(capsys)[0]
    assert "next: `gridrun run` sends the 4 jobs not sent ($1.40)" in out, out
    assert "--budget" not in out, out
    assert main(["report", m.name]) == 1
    err = _said(capsys)[1]
    assert "it sends the jobs not done yet too, at what `gridrun plan` says they cost (`gridrun run --budget 0 " \
        "--allow-partial` sends none of them)" in err, err
    main(["run", m.name, "--budget", "0", "--allow-partial"])
    assert stats(prov)["creates"] == 2
    assert main(["report", m.name]) == 0


def test_cancel_in_a_renamed_project_names_the_run_that_writes_its_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run left 2 jobs in flight and its project folder was renamed: `cancel` cancels them but cannot write the
    run's report in its folder, gone; it names a run from the new place, not `report --run`, which refuses alike;
    that run sends nothing, and the report is written."""
    from execkit import sim_provider

    from runner.cli import main
    from runner.options import RunOptions

    proj = tmp_path / "proj"
    proj.mkdir()
    m = write_manifest(proj, n_seeds=2, styles=("clay",), sim={"render_time": 60, "jitter": 0.0})
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(m, options=RunOptions(timeout=0.3)).status == "incomplete"
    moved = proj.rename(tmp_path / "proj2")
    monkeypatch.chdir(moved)
    capsys.readouterr()
    main(["cancel", m.name])
    err = _said(capsys)[1]
    assert "warning: the report of run 1 could not be written again" in err, err
    assert "it still shows the jobs as before the cancel; `gridrun run` on the manifest writes the report" in err, err
    assert "--run 1" not in err, err
    main(["run", m.name, "--budget", "0", "--allow-partial"])
    assert stats(prov)["creates"] == 2
    assert main(["report", m.name, "--run", "1"]) == 0


def test_an_absolute_outputs_dir_inside_a_moved_project_names_the_folder_where_it_is_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest whose `outputs_dir:` is absolute, inside its project folder, moved (A/proj to B/proj): `plan`, `run`,
    `report` and `export` name the folder where the videos are now and the relative `outputs_dir:` that names it,
    not a `mkdir` of the old folder; with it, a run sends nothing and the report is written."""
    import yaml
    from execkit import sim_provider

    from runner.cli import main

    proj = tmp_path / "A" / "proj"
    proj.mkdir(parents=True)
    m = write_manifest(proj, extra={"outputs_dir": str(proj / "out")})
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == 6
    (tmp_path / "B").mkdir()
    moved = proj.rename(tmp_path / "B" / "proj")
    monkeypatch.chdir(moved)
    capsys.readouterr()
    for argv, code in ((["plan"], 0), (["run"], 1), (["report"], 1), (["export"], 1)):
        assert main([argv[0], m.name]) == code, argv
        err = _said(capsys)[1]
        assert f"{moved / 'out'}, at the same place beside the manifest, holds" in err, (argv, err)
        assert "`outputs_dir: out`" in err and "mkdir" not in err, (argv, err)
    assert not (tmp_path / "A" / "proj").exists()
    doc = yaml.safe_load((moved / m.name).read_text())
    doc["outputs_dir"] = "out"
    (moved / m.name).write_text(yaml.safe_dump(doc, sort_keys=False))
    assert main(["run", m.name]) == 0
    assert stats(prov)["creates"] == 6
    assert main(["report", m.name]) == 0


def test_status_of_a_project_moved_mid_run_names_its_manifest_where_it_is_now_though_the_old_folder_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A project folder moved while its run went on: the run writes its videos where it started, which makes the
    old folder again (outputs only, no manifest, no `.gridrun/`). `status` with no manifest, from the folder's new
    place, names the manifest there, never the old folder, where a retry would start an empty state and pay again
    for every job."""
    from execkit import sim_provider

    from runner.cli import main

    proj = tmp_path / "proj"
    proj.mkdir()
    m = write_manifest(proj, n_seeds=2, styles=("clay",), sim={"render_time": 0.05, "failure_rate": 1.0,
                       "failure_code": "RENDER_ERROR"}, run={"retries": 0})
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(m, report=False).exit_code == 1
    moved = proj.rename(tmp_path / "proj2")
    (proj / "outputs" / "t" / "clay").mkdir(parents=True)  # what the run, moved mid-way, writes where it started
    monkeypatch.chdir(moved)
    capsys.readouterr()
    assert main(["status"]) == 0
    out = _said(capsys)[0]
    assert "`gridrun retry t.yaml` sends" in out, out
    assert "proj/" not in out and "no longer there" not in out, out
