"""`gridrun recover` tells this state's renders from another's by the state's part of their idempotency keys: that
of the state lost (the keys of the sidecars written by the run the output folder's lock names) is carried into
the state it rebuilds, so that a later recover (another manifest sharing the state, a video put back) adopts the
lost state's videos too; a recover that fails records nothing and leaves the state refused; a teammate's videos,
or a clone's with no lock, are another state's; a sidecar whose figures no download writes is said, not a crash."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from execkit import lose_state, sim_provider, stats, write_manifest

from runner import api


def _recover_json(m: Path, capsys: pytest.CaptureFixture[str], *more: str) -> dict[str, Any]:
    from runner.cli import main

    capsys.readouterr()
    assert main(["recover", str(m), "--json", *more]) == 0
    return json.loads(capsys.readouterr().out)


def _refused(m: Path, capsys: pytest.CaptureFixture[str]) -> str:
    from runner.cli import main

    capsys.readouterr()
    code = main(["plan", str(m)])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1, err
    return err


def test_two_manifests_sharing_a_lost_state_are_each_recovered_and_the_second_stays_refused_until_then(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two manifests in one folder share `.gridrun/`. With it lost, recovering the first (its run numbered as the
    second's lost run was) leaves the second refused, and recovering the second adopts all its videos."""
    m1 = write_manifest(tmp_path, n_seeds=2, name="m1")
    m2 = write_manifest(tmp_path, n_seeds=2, name="m2",
                        extra={"params": {"prompt": "a cat, {{ style }} style", "quality": "360p", "duration": 5}})
    prov = sim_provider(m1)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(m1, report=False).exit_code == 0
    assert api.run(m2, report=False).exit_code == 0
    assert stats(prov)["creates"] == 8
    lose_state(tmp_path)
    assert "gridrun recover" in _refused(m2, capsys)
    got = _recover_json(m1, capsys)
    assert got["counts"]["recovered"] == 4 and got["run_id"] == 3, got  # above m2's lost run, which m2's lock names
    err = _refused(m2, capsys)
    assert "names run 2 of this state" in err, err
    got = _recover_json(m2, capsys)
    assert got["counts"]["recovered"] == 4 and got["to_pay"] == 0 and got["run_id"] == 4, got
    assert api.diff(api.plan(m2)).new == 0 and api.diff(api.plan(m1)).new == 0
    assert api.run(m2, report=False).exit_code == 0
    assert stats(prov)["creates"] == 8  # nothing paid again


def test_a_lock_naming_a_recover_of_another_output_folder_is_refused_as_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The other manifest's output folder elsewhere (an `outputs_dir:` of its own): a recover of the first may take
    the number of its lost run. Its lock naming that number is still refused as a lost run's, and its recover
    adopts its videos."""
    m1 = write_manifest(tmp_path, n_seeds=2, name="m1")
    m2 = write_manifest(tmp_path, n_seeds=2, name="m2",
                        extra={"params": {"prompt": "a cat, {{ style }} style", "quality": "360p", "duration": 5},
                               "outputs_dir": "elsewhere/m2"})
    prov = sim_provider(m1)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(m1, report=False).exit_code == 0
    assert api.run(m2, report=False).exit_code == 0
    lose_state(tmp_path)
    got = _recover_json(m1, capsys)
    assert got["counts"]["recovered"] == 4 and got["run_id"] == 2, got
    err = _refused(m2, capsys)
    assert "names run 2 of this state" in err and "a recover of another output folder" in err, err
    got = _recover_json(m2, capsys)
    assert got["counts"]["recovered"] == 4 and got["to_pay"] == 0, got
    assert api.diff(api.plan(m2)).new == 0


@pytest.mark.parametrize("stop", [RuntimeError, KeyboardInterrupt])
def test_a_recover_that_fails_records_nothing_and_the_next_one_recovers_every_video(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stop: type[BaseException]
) -> None:
    """A recover that fails (a bug, a full disk) or is stopped as it records the takes leaves no run, the output
    folder's lock naming the lost run still, and the state refused: run again, it recovers every video."""
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=2)
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(m, report=False).exit_code == 0
    db = lose_state(tmp_path)
    lock = tmp_path / "outputs" / "t" / ".runs" / "lock"
    before = lock.read_text()
    real = Store.record_recovered

    def fails(self: Store, run_id: int, takes: Any) -> None:
        raise stop("stopped")

    monkeypatch.setattr(Store, "record_recovered", fails)
    with pytest.raises(stop):
        api.recover(m)
    monkeypatch.setattr(Store, "record_recovered", real)
    assert lock.read_text() == before
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    assert "gridrun recover" in _refused(m, capsys)
    got = _recover_json(m, capsys)
    assert got["counts"]["recovered"] == 4 and got["counts"]["another"] == 0, got
    assert api.diff(api.plan(m)).new == 0
    assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == 4


def test_a_video_put_back_after_a_recover_is_adopted_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Recover run twice converges: a video of the lost state moved away during the first, put back since, is
    adopted by the second, its key being the lost state's as the others' the first adopted."""
    m = write_manifest(tmp_path, n_seeds=2)
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(m, report=False).exit_code == 0
    video = tmp_path / "outputs" / "t" / "anime" / "seed-1.mp4"
    away = tmp_path / "away.mp4"
    video.rename(away)
    lose_state(tmp_path)
    got = _recover_json(m, capsys)
    assert (got["counts"]["recovered"], got["counts"]["not-found"]) == (3, 1), got
    away.rename(video)
    got = _recover_json(m, capsys)
    assert (got["counts"]["recovered"], got["counts"]["recorded"]) == (1, 3), got
    assert api.diff(api.plan(m)).new == 0
    assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == 4


@pytest.mark.parametrize(("field", "raw"), [
    ("attempt", "99999999999999999999"), ("attempt", "0"), ("cost_usd", "1e300"), ("cost_reported_usd", "-1"),
    ("downloaded_at", "Infinity"), ("submitted_at", "1e300"), ("completed_at", "NaN"),
])
def test_a_sidecar_figure_out_of_range_leaves_its_job_altered_and_the_others_recovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], field: str, raw: str
) -> None:
    """A figure no download writes (a sidecar edited by hand, or damaged) is said of its job, which is not
    adopted; the other jobs are recovered, and `--json` prints its object, as `--dry-run` before it says."""
    m = write_manifest(tmp_path, n_seeds=2)
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(m, report=False).exit_code == 0
    side = tmp_path / "outputs" / "t" / "anime" / "seed-1.json"
    doc = json.loads(side.read_text())
    doc[field] = "@@"
    side.write_text(json.dumps(doc).replace('"@@"', raw))
    lose_state(tmp_path)
    for more in (("--dry-run",), ()):
        got = _recover_json(m, capsys, *more)
        assert (got["counts"]["recovered"], got["counts"]["altered"]) == (3, 1), got
        bad = next(j for j in got["jobs"] if j["outcome"] == "altered")
        assert bad["key"] == "style=anime,seed=1" and f"its sidecar's {field}" in bad["why"] \
            and "out of range" in bad["why"], bad
    assert api.diff(api.plan(m)).new == 1


def test_a_teammates_videos_brought_into_a_lost_states_folder_are_another_states(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A teammate's videos (another state, another key part) copied into the output folder, as a `git pull`
    brings them: with this state lost, recover adopts only the videos sent under the key of the run the folder's
    lock names; the teammate's are another state's, as they are to the state whole."""
    team, me = tmp_path / "team", tmp_path / "me"
    team.mkdir()
    me.mkdir()
    tm = write_manifest(team, n_seeds=1, styles=("anime", "clay", "comic", "cyberpunk"))
    mm = write_manifest(me, n_seeds=1, styles=("anime", "clay"))
    prov = sim_provider(tm)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(tm, report=False).exit_code == 0
    assert api.run(mm, report=False).exit_code == 0
    for style in ("comic", "cyberpunk"):
        shutil.copytree(team / "outputs" / "t" / style, me / "outputs" / "t" / style)
    shutil.copy(tm, mm)
    assert api.diff(api.plan(mm)).new == 2  # the state whole: the teammate's are not its own
    lose_state(me)
    got = _recover_json(mm, capsys, "--dry-run")
    assert (got["counts"]["recovered"], got["counts"]["another"]) == (2, 2), got
    theirs = [j for j in got["jobs"] if j["outcome"] == "another"]
    assert {j["key"] for j in theirs} == {"style=comic,seed=1", "style=cyberpunk,seed=1"}, theirs
    assert all("not this state's" in j["why"] for j in theirs), theirs


def test_a_clone_with_no_state_and_no_lock_takes_none_of_the_videos_as_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fresh clone: the manifest and its output folder, with no `.runs/lock` (kept out of version control) and
    no state. Nothing says the videos are this state's: recover adopts none, as a run would pay for them."""
    team, clone = tmp_path / "team", tmp_path / "clone"
    team.mkdir()
    tm = write_manifest(team, n_seeds=2)
    prov = sim_provider(tm)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(tm, report=False).exit_code == 0
    clone.mkdir()
    shutil.copy(tm, clone / tm.name)
    shutil.copytree(team / "outputs", clone / "outputs")
    (clone / "outputs" / "t" / ".runs" / "lock").unlink()
    got = _recover_json(clone / tm.name, capsys, "--dry-run")
    assert (got["counts"]["recovered"], got["counts"]["another"]) == (0, 4), got
    assert all("nothing tells this state's renders from another's" in j["why"] for j in got["jobs"]), got["jobs"]


def test_recover_json_prints_its_object_whatever_ends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An error gridrun does not know (a bug) still leaves a machine caller one `gridrun.recover/1` object, with
    the exit code, as a refusal does."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1)

    def fails(*args: Any, **kwargs: Any) -> Any:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    monkeypatch.setattr(api, "recover", fails)
    code = main(["recover", str(m), "--json"])
    got = json.loads(capsys.readouterr().out)
    assert code == 1 and got["format"] == "gridrun.recover/1" and got["exit_code"] == 1, got
    assert any("too large" in e for e in got["errors"]), got


def _drop_key_part(folder: Path) -> None:
    """The output folder's lock as a gridrun that recorded no key part in it wrote it."""
    lock = folder / ".runs" / "lock"
    doc = json.loads(lock.read_text())
    assert "key_part" in doc, doc
    del doc["key_part"]
    doc.pop("key_part_value", None)
    lock.write_text(json.dumps(doc))


def test_a_teammates_videos_of_a_run_of_the_same_number_leave_this_states_own_recovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every checkout's first run is run 1: a teammate's, run after this state's and pulled into its output folder,
    carries the same run number and later times. The output folder's lock records the digest of this state's key
    part, so recover adopts this state's videos and calls the teammate's another state's. Of a lock that records
    none, the two key parts of run 1 are said, each with the files that carry it."""
    team, me = tmp_path / "team", tmp_path / "me"
    team.mkdir()
    me.mkdir()
    tm = write_manifest(team, n_seeds=1, styles=("anime", "clay", "comic", "cyberpunk"))
    mm = write_manifest(me, n_seeds=1, styles=("anime", "clay"))
    prov = sim_provider(tm)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(mm, report=False).exit_code == 0
    assert api.run(tm, report=False).exit_code == 0  # the teammate's run 1, after this one
    for style in ("comic", "cyberpunk"):
        shutil.copytree(team / "outputs" / "t" / style, me / "outputs" / "t" / style)
    shutil.copy(tm, mm)
    lose_state(me)
    got = _recover_json(mm, capsys, "--dry-run")
    assert (got["counts"]["recovered"], got["counts"]["another"]) == (2, 2), got
    assert {j["key"] for j in got["jobs"] if j["outcome"] == "recovered"} == {"style=anime,seed=1",
                                                                            "style=clay,seed=1"}, got
    _drop_key_part(me / "outputs" / "t")
    got = _recover_json(mm, capsys, "--dry-run")
    assert got["counts"]["another"] == 4, got
    why = got["jobs"][0]["why"]
    assert "2 key parts" in why and "comic/seed-1.json" in why and "anime/seed-1.json" in why, why


@pytest.mark.parametrize("key_part", [True, False])
def test_a_teammates_videos_older_than_a_run_that_wrote_none_are_not_adopted_nor_their_key_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], key_part: bool
) -> None:
    """A teammate's videos pulled into the output folder, then a run of this state that wrote no video (each job
    failed): with the state lost, the sidecars written before the lock's run are no evidence of this state's key
    part; recover adopts none of them, and the state never takes the teammate's key part as its own."""
    team, me = tmp_path / "team", tmp_path / "me"
    team.mkdir()
    me.mkdir()
    tm = write_manifest(team, n_seeds=1)
    prov = sim_provider(tm)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(tm, report=False).exit_code == 0
    shutil.copytree(team / "outputs", me / "outputs")
    (me / "outputs" / "t" / ".runs" / "lock").unlink()
    with closing(sqlite3.connect(team / ".gridrun" / "state.db")) as db:
        theirs = db.execute("SELECT value FROM meta WHERE name='key_salt'").fetchone()[0]
    mm = write_manifest(me, n_seeds=1, sim={"script": [{"route": "create", "p": 1, "fault": "job_failure",
                                                        "times": 1000}]})
    mine = sim_provider(mm)
    monkeypatch.setattr(api, "_provider", lambda p: mine)
    api.run(mm, report=False)
    assert not any(j.state == "done" for j in api.status(mm).jobs)
    lose_state(me)
    if not key_part:
        _drop_key_part(me / "outputs" / "t")
    got = _recover_json(mm, capsys)
    assert (got["counts"]["recovered"], got["counts"]["another"]) == (0, 2), got
    db = me / ".gridrun" / "state.db"
    if db.exists():
        with closing(sqlite3.connect(db)) as con:
            row = con.execute("SELECT value FROM meta WHERE name='key_salt'").fetchone()
        assert row is None or row[0] != theirs


def test_an_old_lock_after_a_run_that_cached_every_job_says_why_no_key_part_is_known_and_key_part_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The output folder's lock, written by a gridrun before locks recorded the key part's digest, names a run that
    cached every job (it wrote no video). Sidecars saved before it are no evidence of this state's key part (a
    teammate's carry run numbers and times alike): recover adopts nothing and says why, naming the part the
    sidecars carry and `--key-part`; named so, every video is recovered and the state takes that part as its own.
    A part no sidecar carries, or one the lock's digest is not of, is refused, nothing written."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=2)
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(m, report=False).exit_code == 0
    assert api.run(m, report=False).exit_code == 0  # run 2: every job cached
    assert stats(prov)["creates"] == 4
    db = tmp_path / ".gridrun" / "state.db"
    with closing(sqlite3.connect(db)) as conn:
        ours = conn.execute("SELECT value FROM meta WHERE name='key_salt'").fetchone()[0]
    lock = tmp_path / "outputs" / "t" / ".runs" / "lock"
    assert json.loads(lock.read_text())["run"] == 2
    lose_state(tmp_path)
    capsys.readouterr()
    assert main(["recover", str(m), "--key-part", "nosuchpart"]) == 2  # the lock's digest is not of it
    assert "--key-part: 'nosuchpart' is not the key part of this state folder's runs" in capsys.readouterr().err
    _drop_key_part(tmp_path / "outputs" / "t")
    capsys.readouterr()
    assert main(["recover", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "no job found whole with its sidecar, none to record done" in said and "recorded done" not in said, said
    assert ("which takes here are this state's is not known: run 2, which the output folder's lock names, wrote no "
            "video here (each of its jobs cached, or none finished)") in said, said
    assert f"`gridrun recover {m} --key-part PART` (the sidecars here carry {ours!r} by anime/seed-1.json" in said, said
    assert not db.exists() or "recovered" not in str(_runs_of(db))
    assert main(["recover", str(m), "--key-part", "nosuchpart"]) == 2
    assert "no sidecar in" in capsys.readouterr().err
    got = _recover_json(m, capsys, "--key-part", ours)
    assert got["counts"]["recovered"] == 4 and got["to_pay"] == 0 and got["key_part_unknown"] is None, got
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT value FROM meta WHERE name='key_salt'").fetchone()[0] == ours
    assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == 4  # nothing paid again


def _runs_of(db: Path) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT id, status FROM runs").fetchall()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("old_lock", [False, True])
def test_a_state_lost_with_jobs_in_flight_and_no_video_yet_is_rebuilt_under_their_keys_or_says_they_are_paid_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], old_lock: bool
) -> None:
    """A run leaves its 4 jobs rendering, and its state is lost before any video is downloaded: no sidecar carries
    the key part. The output folder's lock records it, so recover carries it into the rebuilt state, and the next
    run collects the 4 renders under the keys the provider knows: nothing billed twice. Of a lock written by a
    gridrun that recorded only the part's digest, the refusal and recover (text and --json) say the lost run may
    have left the 4 jobs in flight under keys unknown, which `gridrun run` pays for again ($1.40)."""
    import time

    from execkit import running

    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=2, run={"concurrency": 4},
                       sim={"render_time": 30, "jitter": 0.0, "concurrency": 4})
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    with running(m, flying=4):
        pass
    assert stats(prov)["creates"] == 4 and not list((tmp_path / "outputs" / "t").glob("*/*.mp4"))
    lose_state(tmp_path)
    if old_lock:
        lock = tmp_path / "outputs" / "t" / ".runs" / "lock"
        doc = json.loads(lock.read_text())
        del doc["key_part_value"]
        lock.write_text(json.dumps(doc))
    err = _refused(m, capsys)
    unknown = "may have left jobs in flight at the provider whose keys are unknown, and `gridrun run` pays for them again"
    assert (unknown in err) == old_lock, err
    got = _recover_json(m, capsys, "--dry-run")
    assert got["in_flight_unknown"] == ({"run": 1, "jobs": 4, "usd": 1.4} if old_lock else None), got
    assert main(["recover", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    if old_lock:
        assert ("run 1, which the output folder's lock names, may have left in flight at the provider any of the 4 "
                "jobs not found here; their keys are unknown") in said, said
        assert "pays for them again ($1.40)" in said, said
    else:
        assert ("run 1, which the output folder's lock names, may have left some of these jobs in flight at the "
                "provider: they are sent again under its key part") in said, said
        assert ("until a run does, they may be rendering and billed there, and `gridrun cancel` sees nothing in "
                "flight (the state records none): to stop them instead, `gridrun run`") in said, said
        # cancel cannot tell: it says so, and how to reach them, rather than that nothing is in flight
        assert main(["cancel", str(m)]) == 0
        said = " ".join(capsys.readouterr().out.split())
        assert "nothing in flight to cancel" not in said, said
        assert ("nothing in flight that the state records; but run 2 was recorded by `gridrun recover`, and the "
                "run whose record was lost may have sent its 4 jobs not sent") in said, said
    sim = prov.app.state.sim
    monkeypatch.setattr(sim, "clock", lambda: time.time() + 60)  # the renders ended meanwhile
    assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == (8 if old_lock else 4)
    assert stats(prov)["duplicate_paid"] == (4 if old_lock else 0)
