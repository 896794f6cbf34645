"""`gridrun recover`: a state lost, emptied or behind is rebuilt from the finished videos and sidecars its output
folder holds, so that going on pays nothing again for them; a video altered, or a sidecar of another job, is not
adopted; --dry-run writes nothing; and the refusals of such a state name it before starting over."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import yaml
from execkit import lose_state, ran_on_sim, stats, write_manifest

from runner import api


def _runs(db: Path) -> list[tuple[int, str]]:
    with closing(sqlite3.connect(db)) as conn:
        return [(int(r[0]), str(r[1])) for r in conn.execute("SELECT id, status FROM runs ORDER BY id")]


def _said(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    got = capsys.readouterr()
    return " ".join(got.out.split()), " ".join(got.err.split())


def test_a_lost_state_is_recovered_from_the_output_folder_and_run_sends_nothing_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """state.db removed after a run: plan refuses it, naming `gridrun recover` before starting over; recover
    records every job done as a run of status recovered, the plan has nothing to pay and a run makes no create."""
    from runner.cli import main

    m, prov = ran_on_sim(tmp_path, monkeypatch)
    db = lose_state(tmp_path)
    capsys.readouterr()
    assert main(["plan", str(m)]) == 1
    err = _said(capsys)[1]
    assert f"`gridrun recover {m}`, free (nothing sent)" in err, err
    assert err.index("gridrun recover") < err.index("to start over knowingly"), err
    assert main(["recover", str(m)]) == 0
    said = _said(capsys)[0]
    assert "4 jobs found whole with their sidecars: recorded done, nothing sent ($1.40 a run would otherwise pay " \
        "again)" in said, said
    assert "`gridrun run` now costs $0.00: 0 jobs to send" in said, said
    assert _runs(db) == [(2, "recovered")]  # numbered above the lost run its output folder names
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM events WHERE kind='recovered'").fetchone()[0] == 4
        assert conn.execute("SELECT count(*) FROM jobs WHERE state='done' AND provider_id IS NOT NULL").fetchone()[0] == 4
    d = api.diff(api.plan(m))
    assert (d.new, d.cached) == (0, 4)
    assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == 4  # nothing sent again
    assert _runs(db) == [(2, "recovered"), (3, "done")]
    assert main(["status", str(m), "--runs"]) == 0
    assert "recovered" in _said(capsys)[0]


def test_an_altered_video_is_not_adopted_and_is_left_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A video whose bytes are no longer those its sidecar records (edited, cut short) is not recorded done: the
    run renders its job again (paid, and said so first), and recover leaves the file as it found it."""
    from runner.cli import main

    m, _ = ran_on_sim(tmp_path, monkeypatch)
    lose_state(tmp_path)
    video = tmp_path / "outputs" / "t" / "clay" / "seed-2.mp4"
    video.write_bytes(video.read_bytes()[:-10])
    cut = video.read_bytes()
    capsys.readouterr()
    assert main(["recover", str(m)]) == 0
    said = _said(capsys)[0]
    assert "3 jobs found whole with their sidecars" in said, said
    assert "1 job whose video is not the one its sidecar records (edited or cut short), or whose sidecar holds a " \
        "figure out of range: not adopted: style=clay,seed=2" in said, said
    assert "`gridrun run` now costs $0.35: 1 job to send (style=clay,seed=2)" in said, said
    assert video.read_bytes() == cut
    d = api.diff(api.plan(m))
    assert (d.new, d.cached) == (1, 3)


def test_a_sidecar_of_another_manifests_job_is_not_adopted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The manifest changed its prompt since its state was lost: the videos at its paths are of the earlier jobs
    (their sidecars name other hashes), and none is taken for a job of this plan."""
    from runner.cli import main

    m, _ = ran_on_sim(tmp_path, monkeypatch)
    db = lose_state(tmp_path)
    doc = yaml.safe_load(m.read_text())
    doc["params"]["prompt"] = "a wolf, {{ style }} style"
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    capsys.readouterr()
    assert main(["recover", str(m), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["format"] == "gridrun.recover/1" and got["dry_run"] is False
    assert got["counts"] == {"recovered": 0, "recorded": 0, "not-found": 0, "altered": 0, "another": 4,
                             "not-checked": 0}, got
    assert got["to_pay"] == 4 and got["to_pay_usd"] == 1.4 and got["recovered_usd"] == 0
    assert all("another job's" in j["why"] for j in got["jobs"]), got["jobs"]
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM jobs WHERE state='done'").fetchone()[0] == 0
    assert api.diff(api.plan(m)).new == 4  # and the state is no longer refused


def test_a_state_one_run_behind_gets_back_the_later_runs_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """state.db copied after a first run (2 jobs) and put back after a second (4 jobs more): plan and run refuse
    it as behind, naming recover; recover fills in the second run's jobs, leaves the first run's as the state holds
    them, and a run then sends nothing."""
    from runner.cli import main

    m, prov = ran_on_sim(tmp_path, monkeypatch, n_seeds=1)
    db = tmp_path / ".gridrun" / "state.db"
    assert not (db.parent / "state.db-wal").exists()
    first = db.read_bytes()
    write_manifest(tmp_path, n_seeds=3)
    assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == 6
    lose_state(tmp_path)
    db.write_bytes(first)
    capsys.readouterr()
    for argv in (["plan"], ["run", "--no-report"]):
        assert main([argv[0], str(m), *argv[1:]]) == 1
        err = _said(capsys)[1]
        assert "the state has lost the records of runs it made" in err, err
        assert err.index(f"`gridrun recover {m}`") < err.index("to go on knowingly"), err
    assert main(["recover", str(m)]) == 0
    said = _said(capsys)[0]
    assert "4 jobs found whole with their sidecars: recorded done" in said, said
    assert "2 jobs held by the state already, left as they are" in said, said
    assert _runs(db) == [(1, "done"), (3, "recovered")]
    assert api.diff(api.plan(m)).new == 0
    assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == 6


def test_dry_run_says_what_it_would_record_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.cli import main

    m, _ = ran_on_sim(tmp_path, monkeypatch)
    db = lose_state(tmp_path)
    lock = tmp_path / "outputs" / "t" / ".runs" / "lock"
    before = lock.read_bytes()
    capsys.readouterr()
    assert main(["recover", str(m), "--dry-run"]) == 0
    said = _said(capsys)[0]
    assert "4 jobs found whole with their sidecars: would record done" in said, said
    assert "`gridrun run` would then cost $0.00" in said, said
    assert not db.exists() and lock.read_bytes() == before
    assert main(["plan", str(m)]) == 1  # refused still


def test_an_emptied_state_names_recover_and_recover_mends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.cli import main

    m, prov = ran_on_sim(tmp_path, monkeypatch)
    db = lose_state(tmp_path)
    db.write_bytes(b"")
    capsys.readouterr()
    assert main(["plan", str(m)]) == 1
    err = _said(capsys)[1]
    assert "the state file is empty (0 bytes)" in err and f"`gridrun recover {m}`" in err, err
    assert err.index("gridrun recover") < err.index("to start over knowingly"), err
    assert main(["recover", str(m)]) == 0
    assert api.diff(api.plan(m)).new == 0
    assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == 4


def test_recover_on_a_whole_state_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.cli import main

    m, _ = ran_on_sim(tmp_path, monkeypatch)
    db = tmp_path / ".gridrun" / "state.db"
    with closing(sqlite3.connect(db)) as conn:
        jobs = conn.execute("SELECT * FROM jobs ORDER BY id").fetchall()
    capsys.readouterr()
    assert main(["recover", str(m)]) == 0
    said = _said(capsys)[0]
    assert "4 jobs held by the state already, left as they are" in said and "nothing to record" in said, said
    assert _runs(db) == [(1, "done")]
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT * FROM jobs ORDER BY id").fetchall() == jobs


def test_recover_of_one_job_says_it_in_the_singular(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One job held by the state, then one found whole after the state is lost: each count agrees with its words."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    assert api.run(m, report=False).exit_code == 0
    capsys.readouterr()
    assert main(["recover", str(m)]) == 0
    said = _said(capsys)[0]
    assert "1 job held by the state already, left as it is: style=anime,seed=1" in said, said
    lose_state(tmp_path)
    assert main(["recover", str(m)]) == 0
    said = _said(capsys)[0]
    assert "1 job found whole with its sidecar: recorded done, nothing sent" in said, said


def test_an_invalid_manifest_is_refused_and_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runner.cli import main

    m = write_manifest(tmp_path)
    m.write_text(m.read_text().replace("model: pixverse-v5.6", "model: 12"))
    assert main(["recover", str(m)]) == 2
    err = capsys.readouterr().err
    assert "t.yaml:" in err and "model: expected a non-empty string, got the number 12, as YAML reads" in err and "Traceback" not in err, err
    assert not (tmp_path / ".gridrun").exists()


def test_a_state_file_that_lost_its_write_ahead_log_names_recover_and_recover_mends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """state.db as gridrun made it (SQLite's header alone), the first run's log lost: the refusal names recover
    before starting over, and recover records the run's videos in that very file."""
    from runner import state as state_mod
    from runner.cli import main

    made: list[bytes] = []
    real = state_mod._make_whole

    def keep(path: Path) -> None:
        real(path)
        made.append(path.read_bytes())

    monkeypatch.setattr(state_mod, "_make_whole", keep)
    m, prov = ran_on_sim(tmp_path, monkeypatch)
    db = lose_state(tmp_path)
    db.write_bytes(made[0])
    capsys.readouterr()
    assert main(["plan", str(m)]) == 1
    err = _said(capsys)[1]
    assert "the state file holds no state (SQLite's header alone)" in err, err
    assert err.index(f"`gridrun recover {m}`") < err.index("to start over knowingly"), err
    assert main(["recover", str(m)]) == 0
    assert api.diff(api.plan(m)).new == 0
    assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == 4


def test_a_state_two_runs_behind_with_a_video_altered_since_goes_on_after_recover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two runs lost, a video of the last one edited since: recover adopts the others and leaves that one; the
    state no longer refuses (the sidecar beside the edited video is of a render sent before the recover), and
    the plan pays for that job alone. The recover run is numbered above the lost runs, whose manifest copies stay."""
    from runner.cli import main

    m, prov = ran_on_sim(tmp_path, monkeypatch, n_seeds=1)
    db = tmp_path / ".gridrun" / "state.db"
    first = db.read_bytes()
    for n in (2, 3):
        write_manifest(tmp_path, n_seeds=n)
        assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == 6
    lose_state(tmp_path)
    db.write_bytes(first)
    copies = {p.name: p.read_bytes() for p in (tmp_path / "outputs" / "t" / ".runs").glob("run-*.yaml")}
    video = tmp_path / "outputs" / "t" / "clay" / "seed-3.mp4"
    video.write_bytes(b"edited" + video.read_bytes())
    capsys.readouterr()
    assert main(["recover", str(m), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["counts"] == {"recovered": 3, "recorded": 2, "not-found": 0, "altered": 1, "another": 0,
                             "not-checked": 0}, got
    assert got["run_id"] == 4 and got["to_pay"] == 1, got
    assert _runs(db) == [(1, "done"), (4, "recovered")]
    assert all((tmp_path / "outputs" / "t" / ".runs" / name).read_bytes() == text for name, text in copies.items())
    assert main(["plan", str(m)]) == 0
    assert "lost the records" not in capsys.readouterr().err
    d = api.diff(api.plan(m))
    assert (d.new, d.cached) == (1, 5)


def test_a_video_removed_beside_its_sidecar_is_not_found_and_its_job_is_to_pay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.cli import main

    m, _ = ran_on_sim(tmp_path, monkeypatch)
    lose_state(tmp_path)
    (tmp_path / "outputs" / "t" / "anime" / "seed-1.mp4").unlink()
    capsys.readouterr()
    assert main(["recover", str(m)]) == 0
    said = _said(capsys)[0]
    assert "1 job not found (never finished, or the video gone): style=anime,seed=1" in said, said
    assert "`gridrun run` now costs $0.35: 1 job to send (style=anime,seed=1)" in said, said


def test_a_take_kept_under_superseded_is_adopted_where_the_jobs_path_lost_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job's video removed from its path, while the take an earlier re-render (--force) kept aside is whole under
    .runs/superseded/: that take is adopted where it is, and the next run copies it back, sending nothing."""
    from runner.cli import main

    m, prov = ran_on_sim(tmp_path, monkeypatch, n_seeds=1)
    assert api.run(m, report=False, options={"force": True}).exit_code == 0
    assert stats(prov)["creates"] == 4
    lose_state(tmp_path)
    video = tmp_path / "outputs" / "t" / "clay" / "seed-1.mp4"
    video.unlink()
    capsys.readouterr()
    assert main(["recover", str(m), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["counts"]["recovered"] == 2 and got["to_pay"] == 0, got
    kept = next(j for j in got["jobs"] if j["key"] == "style=clay,seed=1")
    assert "/.runs/superseded/" in kept["path"] and Path(kept["path"]).is_file(), kept
    assert api.diff(api.plan(m)).new == 0
    assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == 4
    assert video.read_bytes() == Path(kept["path"]).read_bytes()  # copied back, the kept take left as it was


def test_the_videos_of_another_checkout_whose_lock_came_with_a_clone_are_not_adopted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An output folder committed with its lock, cloned: the lock names a state folder never made here, written on
    another machine. Its videos are that checkout's state's, not a state lost here: none is adopted."""
    import shutil

    from runner.cli import main

    m, _ = ran_on_sim(tmp_path, monkeypatch)
    shutil.rmtree(tmp_path / ".gridrun")
    lock = tmp_path / "outputs" / "t" / ".runs" / "lock"
    lock.write_text(json.dumps({**json.loads(lock.read_text()), "host": "render-box-7"}))
    capsys.readouterr()
    assert main(["recover", str(m), "--json", "--dry-run"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["counts"]["recovered"] == 0 and got["counts"]["another"] == 4, got
    assert all("of another checkout" in j["why"] and "render-box-7" in j["why"] for j in got["jobs"]), got["jobs"]


def test_recover_is_refused_while_another_runner_holds_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recover writes under the runner lock, as a run does: held by another process, it is refused, and the
    state is left as it was (still refused as lost, nothing recorded)."""
    import fcntl

    from runner.errors import LockError

    m, _ = ran_on_sim(tmp_path, monkeypatch)
    db = lose_state(tmp_path)
    with open(tmp_path / ".gridrun" / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(LockError, match=r"holds this state.* then run `gridrun recover` again"):
            api.recover(m)
    with closing(sqlite3.connect(db)) as conn:  # made as the lock was found held: nothing in it
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    from runner.errors import StateError

    with pytest.raises(StateError, match="gridrun recover"):
        api.diff(api.plan(m))
    assert api.recover(m).run_id == 2
    assert api.diff(api.plan(m)).new == 0


def test_recover_json_refused_is_one_object_naming_the_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused, `--json` still prints one object: the manifest's absolute path, as the plan names it, and the
    errors standard error gives."""
    from runner.cli import main

    m = write_manifest(tmp_path)
    m.write_text(m.read_text().replace("model: pixverse-v5.6", "model: 12"))
    monkeypatch.chdir(tmp_path)
    assert main(["recover", m.name, "--json"]) == 2
    got = json.loads(capsys.readouterr().out)
    assert got["format"] == "gridrun.recover/1" and got["manifest"] == str(m) and got["exit_code"] == 2, got
    assert any("model: expected a non-empty string, got the number 12, as YAML reads" in e for e in got["errors"]), got


@pytest.mark.parametrize("how", ["edited", "out-of-range"])
def test_a_take_of_the_states_own_left_by_recover_is_not_called_another_states(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    """A take recover left (its video edited since, or its sidecar holding a figure out of range) was sent under
    the key part the state adopted: `plan` and `run` say it is this state's, that a run keeps it aside and renders
    its job again, which the run does; not that another state's run wrote it."""
    from runner.cli import main

    m, prov = ran_on_sim(tmp_path, monkeypatch)
    lose_state(tmp_path)
    video = tmp_path / "outputs" / "t" / "clay" / "seed-2.mp4"
    if how == "edited":
        video.write_bytes(video.read_bytes()[:-10])
    else:
        sidecar = video.with_suffix(".json")
        doc = json.loads(sidecar.read_text())
        sidecar.write_text(json.dumps({**doc, "cost_usd": -1}))
    kept = video.read_bytes()
    assert main(["recover", str(m)]) == 0
    capsys.readouterr()
    assert main(["plan", str(m)]) == 0
    err = _said(capsys)[1]
    assert "another state's" not in err, err
    why = ("its bytes are no longer those its sidecar records (edited or cut short since)" if how == "edited"
           else "its sidecar holds a figure out of range")
    assert (f"a job would write over {video}, a video this state made (by run 1 under its own key, its sidecar "
            f"says) that `gridrun recover` left as it was: {why}; a run keeps it under .runs/superseded/ in the "
            "output folder and renders its job again") in err, err
    assert main(["run", str(m), "--no-report"]) == 0
    err = _said(capsys)[1]
    assert "another state's" not in err, err
    if how == "out-of-range":  # kept as a take no record names; an edited one as a file gridrun cannot tell
        assert "1 video this state made that `gridrun recover` left as it was" in err, err
    assert stats(prov)["creates"] == 5  # rendered again
    aside = list((tmp_path / "outputs" / "t" / ".runs" / "superseded").rglob("seed-2.mp4"))
    assert [p.read_bytes() for p in aside] == [kept]


def test_recover_and_plan_say_an_edited_take_is_paid_for_again_and_how_to_put_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An edited take at a job's path is not adopted: recover and plan say plainly that the next run renders its
    job again for its price, and how to pay nothing (the video put back as its download wrote it, and recover run
    again); done so, the job is recorded done and nothing is sent."""
    from runner.cli import main

    m, prov = ran_on_sim(tmp_path, monkeypatch)
    lose_state(tmp_path)
    video = tmp_path / "outputs" / "t" / "clay" / "seed-2.mp4"
    whole = video.read_bytes()
    video.write_bytes(whole[:-10])
    capsys.readouterr()
    assert main(["recover", str(m)]) == 0
    said = _said(capsys)[0]
    assert ("the next `gridrun run` renders this job again, paying $0.35 for it (the edited file kept under "
            ".runs/superseded/): to pay nothing, put back the video and its sidecar as the download wrote them "
            f"(from a backup or a copy) and run `gridrun recover {m}` again") in said, said
    assert "or move the edited" not in said, said  # no older take of it elsewhere
    assert main(["plan", str(m)]) == 0
    err = _said(capsys)[1]
    assert ("renders its job again, paying $0.35 for it. To pay nothing, put back the video and its sidecar as the "
            f"download wrote them (from a backup or a copy) and run `gridrun recover {m}` again, which records its "
            "job done") in err, err
    video.write_bytes(whole)
    assert main(["recover", str(m)]) == 0
    said = _said(capsys)[0]
    assert "1 job found whole with its sidecar: recorded done" in said, said
    assert "`gridrun run` now costs $0.00" in said, said
    assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == 4  # nothing paid again


@pytest.mark.timeout(120)
def test_recover_of_a_whole_state_with_jobs_in_flight_says_none_found_not_zero_recorded_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run leaves its 4 jobs rendering, its state whole: recover finds no video to adopt and records nothing. It
    says none was found, not "0 jobs ... recorded done" before "nothing to record"."""
    from execkit import running

    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=2, run={"concurrency": 4},
                       sim={"render_time": 30, "jitter": 0.0, "concurrency": 4})
    with running(m, flying=4):
        pass
    capsys.readouterr()
    assert main(["recover", str(m)]) == 0
    said = _said(capsys)[0]
    assert "no job found whole with its sidecar, none to record done" in said, said
    assert "recorded done" not in said and "0 jobs found" not in said, said
    assert "4 jobs held by the state already" in said and "nothing to record: the state was left as it is" in said


def test_a_state_restored_from_a_backup_before_a_force_run_adopts_that_runs_later_takes_not_the_older(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """state.db restored from a backup taken before a `--force` run that rendered every job again (paid): refused
    as behind, then recovered as the refusal proposes. Recover records the jobs done with the later takes at their
    paths, made by the run the state lost the record of, so the next run caches them: it neither takes gridrun's
    own later videos for edited ones nor moves them aside to put the older takes back."""
    from execkit import sha256

    from runner.cli import main

    m, prov = ran_on_sim(tmp_path, monkeypatch)
    db = tmp_path / ".gridrun" / "state.db"
    backup = tmp_path / "backup.db"
    with closing(sqlite3.connect(db)) as src, closing(sqlite3.connect(backup)) as dst:
        src.backup(dst)
    assert api.run(m, report=False, options={"force": True}).exit_code == 0
    videos = sorted((tmp_path / "outputs" / "t").glob("*/*.mp4"))
    later = {v: sha256(v) for v in videos}
    creates = stats(prov)["creates"]
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (db.parent / name).unlink(missing_ok=True)
    backup.rename(db)
    capsys.readouterr()
    assert main(["plan", str(m)]) == 1
    assert "gridrun recover" in _said(capsys)[1]
    # the later takes kept are no money a run would pay again: without them, it puts the older takes back, paid
    # for nothing; what is at stake is which take is kept
    assert main(["recover", str(m), "--dry-run", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["counts"]["recovered"] == 4 and got["recovered_usd"] == 0 and got["newer_takes"] == 4, got
    assert got["recorded_cost_usd"] == 1.4 and got["to_pay_usd"] == 0, got
    assert main(["recover", str(m)]) == 0
    said = _said(capsys)[0]
    assert "4 jobs found whole with their sidecars: recorded done, nothing sent" in said, said
    assert "would otherwise pay again" not in said, said
    assert "4 of them with a later take than the state held made by run 2, whose record it lost ($1.40 as their " \
        "sidecars record)" in said, said
    assert "recorded done with those takes, kept where a run would otherwise move them aside for the older takes " \
        "it holds (paid for nothing either way)" in said, said
    assert api.run(m, report=False).exit_code == 0
    assert {v: sha256(v) for v in videos} == later  # run 2's takes stay at the jobs' paths
    assert stats(prov)["creates"] == creates
    for job in api.status(m).jobs:
        assert job.state == "done" and job.attempts == 2 and later[Path(job.output_path)] == job.sha256, job


def test_a_take_recovered_counts_what_a_run_counts_for_its_sidecar_s_figure_not_a_figure_written_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sidecar of the output folder claiming $999,999.99 for its take (a shared folder's, edited): recover
    counts what a run would count for that figure, the estimate ($0.35) where a run doubts it, so that the state,
    the export and the report say the estimate counted, not the doubted figure; a figure a run takes as billed
    (within the factors of the estimate) is counted as it is."""
    from runner.cli import main

    m, _ = ran_on_sim(tmp_path, monkeypatch)
    lose_state(tmp_path)
    folder = tmp_path / "outputs" / "t"
    for name, figure in (("anime/seed-1.json", 999999.99), ("clay/seed-1.json", 0.5)):
        sidecar = folder / name
        doc = json.loads(sidecar.read_text())
        sidecar.write_text(json.dumps({**doc, "cost_usd": figure, "cost_reported_usd": figure}))
    sidecar = folder / "anime" / "seed-2.json"  # the counted figure alone edited: the provider's is what counts
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "cost_usd": 5000.0}))
    capsys.readouterr()
    assert main(["recover", str(m), "--dry-run", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["counts"]["recovered"] == 4 and got["recorded_cost_usd"] == pytest.approx(0.35 * 3 + 0.5), got
    assert main(["recover", str(m)]) == 0
    capsys.readouterr()
    jobs = {j.key: j for j in api.status(m).jobs}
    assert jobs["style=anime,seed=1"].cost_micros == 350_000 and jobs["style=anime,seed=1"].cost_doubted
    assert jobs["style=clay,seed=1"].cost_micros == 500_000 and not jobs["style=clay,seed=1"].cost_doubted
    assert jobs["style=anime,seed=2"].cost_micros == 350_000
    assert main(["export", str(m)]) == 0
    capsys.readouterr()
    summary = json.loads((folder / "results.json").read_text())["summary"]
    assert summary["cost_usd"] == pytest.approx(0.35 * 3 + 0.5) and summary["cost_doubted"] == 1, summary
    assert main(["report", str(m)]) == 0
    page = (folder / "report.html").read_text()
    assert '"cost":999999990000' not in page and '"rep":999999990000,"doubt":true' in page
