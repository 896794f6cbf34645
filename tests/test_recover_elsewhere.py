"""`gridrun recover` where a job's path does not hold its latest take whole: the videos an earlier `output:` wrote
elsewhere in the output folder are found by their sidecars and adopted; a take the user edited at the job's path is
not replaced by an older one kept aside; takes found but none adopted leave a refused state refused; and an input
image moved away leaves its job unchecked, the others recovered."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import yaml
from execkit import lose_state, ran_on_sim, sim_provider, stats, write_manifest

from runner import api
from runner.errors import StateError


def _said(capsys: pytest.CaptureFixture[str]) -> str:
    return " ".join(capsys.readouterr().out.split())


def test_videos_an_earlier_output_wrote_elsewhere_are_adopted_and_the_next_run_copies_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The manifest's `output:` changed, then the state was lost: every finished video is at the path the earlier
    `output:` gave it, beside its sidecar. Recover finds them there and records them done; the next run copies
    them to the new paths and sends nothing."""
    from runner.cli import main

    m, prov = ran_on_sim(tmp_path, monkeypatch)
    doc = yaml.safe_load(m.read_text())
    doc["output"] = "v2/{{ style }}_{{ seed }}.mp4"
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    lose_state(tmp_path)
    capsys.readouterr()
    assert main(["recover", str(m), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["counts"]["recovered"] == 4 and got["counts"]["not-found"] == 0 and got["to_pay"] == 0, got
    clay = next(j for j in got["jobs"] if j["key"] == "style=clay,seed=2")
    assert clay["path"] == str(tmp_path / "outputs" / "t" / "clay" / "seed-2.mp4"), clay
    assert "where an earlier `output:` put it" in clay["why"], clay
    capsys.readouterr()
    assert main(["plan", str(m), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["against_state"]["to_submit"] == 0
    assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == 4  # nothing sent again
    moved = tmp_path / "outputs" / "t" / "v2" / "clay_2.mp4"
    assert moved.read_bytes() == Path(clay["path"]).read_bytes()


def test_a_refused_state_stays_refused_when_every_take_found_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every video was edited since the state was lost: none is adopted, and recover records no run, so the
    refusal that keeps `run` from paying again for them stays, and recover says so."""
    from runner.cli import main

    m, _ = ran_on_sim(tmp_path, monkeypatch, n_seeds=1)
    db = lose_state(tmp_path)
    for video in (tmp_path / "outputs" / "t").glob("*/seed-1.mp4"):
        with video.open("ab") as f:
            f.write(b"EDITED")
    capsys.readouterr()
    assert main(["recover", str(m)]) == 0
    said = _said(capsys)
    assert "2 jobs whose videos are not the ones their sidecars record" in said, said
    assert "recorded nothing: the state stays refused as it was, since the output folder holds 2 takes of this " \
        "manifest's jobs not adopted" in said, said
    assert not db.exists() or db.stat().st_size == 0 or not _runs(db)
    with pytest.raises(StateError):
        api.diff(api.plan(m))  # still refused, naming recover


def _runs(db: Path) -> list[int]:
    with closing(sqlite3.connect(db)) as conn:
        return [int(r[0]) for r in conn.execute("SELECT id FROM runs")]


def test_a_take_edited_at_the_jobs_path_is_not_replaced_by_an_older_take_kept_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --force re-render made attempt 2 and kept attempt 1 under .runs/superseded/; the user then edited attempt
    2's video at the job's path and the state was lost. Recover does not record attempt 1 as the job's video: the
    job is said altered, naming the older take left, and the kept take is adopted for no job."""
    from runner.cli import main

    m, prov = ran_on_sim(tmp_path, monkeypatch, n_seeds=1)
    assert api.run(m, report=False, options={"force": True}).exit_code == 0
    assert stats(prov)["creates"] == 4
    video = tmp_path / "outputs" / "t" / "anime" / "seed-1.mp4"
    current = json.loads(video.with_suffix(".json").read_text())
    assert current["attempt"] == 2
    with video.open("ab") as f:
        f.write(b"EDITED")
    db = lose_state(tmp_path)
    capsys.readouterr()
    assert main(["recover", str(m), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    anime = next(j for j in got["jobs"] if j["key"] == "style=anime,seed=1")
    assert anime["outcome"] == "altered" and anime["path"] == str(video), anime
    assert "older take of the job (attempt 1) found elsewhere not adopted" in anime["why"], anime
    assert got["counts"]["recovered"] == 1 and got["takes_left"] == 2, got
    with closing(sqlite3.connect(db)) as conn:
        ids = [r[0] for r in conn.execute("SELECT provider_id FROM jobs WHERE state='done'")]
    assert len(ids) == 1 and current["provider_id"] not in ids, ids


def test_a_take_kept_aside_as_late_as_the_edited_one_is_adopted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy of the very take at the job's path kept whole elsewhere (same attempt, same time) is no older: it is
    adopted, and the job recorded done with that take."""
    m, _ = ran_on_sim(tmp_path, monkeypatch, n_seeds=1)
    video = tmp_path / "outputs" / "t" / "anime" / "seed-1.mp4"
    spare = tmp_path / "outputs" / "t" / "spare"
    spare.mkdir()
    (spare / "seed-1.mp4").write_bytes(video.read_bytes())
    (spare / "seed-1.json").write_bytes(video.with_suffix(".json").read_bytes())
    with video.open("ab") as f:
        f.write(b"EDITED")
    lose_state(tmp_path)
    r = api.recover(m)
    anime = next(f for f in r.jobs if f.key == "style=anime,seed=1")
    assert anime.outcome == "recovered" and anime.path == str(spare / "seed-1.mp4"), anime
    assert anime.provider_id == json.loads(video.with_suffix(".json").read_text())["provider_id"]


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32 + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def test_an_input_image_moved_away_leaves_the_state_refused_until_it_is_back_and_recover_runs_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One job's input image moved away, then the state lost: recover plans the manifest all the same and names
    the job not checked with the image's path, but records nothing: the state stays refused (a run recorded would
    lift the refusal, and with the image back the next run pay again for that job's video). With the image back,
    recover adopts the three videos and a run sends nothing."""
    from runner.cli import main

    for name in ("fox", "owl", "moon"):
        (tmp_path / f"{name}.png").write_bytes(PNG.replace(b"\x00" * 32, name.encode().ljust(32, b"\x00")))
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0},
                       extra={"params": {"prompt": "a fox {{ seed }}", "quality": "360p", "duration": 5,
                                         "input_reference": "{{ pic }}"}})
    m.write_text(m.read_text().replace("matrix:\n", "matrix:\n  pic: [fox.png, owl.png, moon.png]\n")
                 .replace("{{ style }}/seed-{{ seed }}.mp4", "{{ pic }}.mp4"))
    prov = sim_provider(m)
    assert api.run(m, provider=prov, report=False).exit_code == 0
    (tmp_path / "moon.png").rename(tmp_path / "moon-elsewhere.png")
    lose_state(tmp_path)
    capsys.readouterr()
    assert main(["recover", str(m)]) == 0
    said = _said(capsys)
    looked = str(tmp_path / "moon.png")
    assert "2 jobs found whole with their sidecars: recorded done" in said, said
    assert f"1 job not checked: pic=moon.png,style=anime,seed=1 (its input image {looked} is not found: put it " \
        "back and recover again)" in said, said
    assert "recorded nothing: the state stays refused as it was, since 1 job not checked" in said, said
    assert "now costs" not in said, said
    assert main(["recover", str(m), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["counts"]["not-checked"] == 1 and got["counts"]["recovered"] == 2 and got["run_id"] is None, got
    assert "put the image back, or remove the job from the manifest, and recover again" in got["unchecked"], got
    (tmp_path / "moon-elsewhere.png").rename(tmp_path / "moon.png")
    assert main(["plan", str(m)]) == 1
    assert "gridrun recover" in capsys.readouterr().err
    assert main(["recover", str(m), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["counts"]["recovered"] == 3 and got["unchecked"] is None and got["to_pay"] == 0, got
    assert api.diff(api.plan(m)).new == 0
    assert api.run(m, provider=prov, report=False).exit_code == 0
    assert stats(prov)["creates"] == 3  # nothing paid again


def test_a_job_not_adopted_is_sent_again_above_the_attempts_its_sidecars_show_under_the_key_part_carried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The rebuilt state carries the lost state's key part: a job recover left (its take at its path edited, an
    older one kept aside) is sent again as attempt 3, above attempts 1 and 2 its sidecars show, so that its key is
    one the provider has not answered (it would give back the older render)."""
    from runner.cli import main

    m, _prov = ran_on_sim(tmp_path, monkeypatch, n_seeds=1)
    assert api.run(m, report=False, options={"force": True}).exit_code == 0
    video = tmp_path / "outputs" / "t" / "anime" / "seed-1.mp4"
    with video.open("ab") as f:
        f.write(b"EDITED")
    db = lose_state(tmp_path)
    capsys.readouterr()
    assert main(["recover", str(m), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["counts"]["altered"] == 1 and got["run_id"] is not None, got
    assert api.run(m, report=False).exit_code == 0
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT a.n, a.idempotency_key FROM attempts a JOIN jobs j ON j.id = a.job_id"
                            " WHERE j.key = 'style=anime,seed=1'").fetchall()
    assert [n for n, _ in rows] == [3] and rows[0][1].endswith("-3"), rows


def test_a_job_recovered_done_with_an_earlier_take_is_forced_above_the_later_attempt_its_sidecars_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Attempt 1's take is back at the job's path, attempt 2's (a --force re-render) kept elsewhere in the output
    folder, when the state is lost. Recover records the job done with attempt 1, and numbers its next attempt
    above 2 all the same: `run --force` then sends attempt 3 under a fresh key, not attempt 2's, which the provider
    has answered already (it would give back that render, unpaid for again but not the new one asked for)."""
    from runner.cli import main

    m, prov = ran_on_sim(tmp_path, monkeypatch, n_seeds=1)
    video = tmp_path / "outputs" / "t" / "anime" / "seed-1.mp4"
    first = video.read_bytes(), video.with_suffix(".json").read_bytes()
    assert api.run(m, report=False, options={"force": True}).exit_code == 0
    later = tmp_path / "outputs" / "t" / "later" / "seed-1.mp4"  # attempt 2's take, moved out of the way
    later.parent.mkdir()
    video.rename(later)
    video.with_suffix(".json").rename(later.with_suffix(".json"))
    video.write_bytes(first[0])
    video.with_suffix(".json").write_bytes(first[1])
    assert json.loads(later.with_suffix(".json").read_text())["attempt"] == 2
    db = lose_state(tmp_path)
    capsys.readouterr()
    assert main(["recover", str(m), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    anime = next(j for j in got["jobs"] if j["key"] == "style=anime,seed=1")
    assert anime["outcome"] == "recovered" and anime["path"] == str(video), anime
    with closing(sqlite3.connect(db)) as conn:  # the job's current attempt stays its take's, the floor kept apart
        assert conn.execute("SELECT attempts FROM jobs WHERE key = 'style=anime,seed=1'").fetchone()[0] == 1
    creates = stats(prov)["creates"]
    assert api.run(m, report=False, options={"force": True}).exit_code == 0
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT a.n, a.idempotency_key FROM attempts a JOIN jobs j ON j.id = a.job_id"
                            " WHERE j.key = 'style=anime,seed=1' AND a.run_id IS NOT NULL").fetchall()
        skipped = conn.execute("SELECT count(*) FROM events WHERE kind='attempts-skipped'").fetchone()[0]
    assert [n for n, _ in rows] == [3] and rows[0][1].endswith("-3"), rows
    assert skipped == 1
    assert stats(prov)["creates"] == creates + 2 and stats(prov)["replays"] == 0  # both jobs rendered anew


def test_an_edited_take_with_an_older_one_kept_aside_says_moving_it_away_adopts_the_older(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Attempt 2's take at the job's path edited, attempt 1's kept aside by the --force that made 2: recover says the
    next run renders the job again for its price, and that moving the edited file out of the output folder has the
    next recover adopt the older take; done so, it does, and nothing is paid."""
    from runner.cli import main

    m, prov = ran_on_sim(tmp_path, monkeypatch, n_seeds=1)
    assert api.run(m, report=False, options={"force": True}).exit_code == 0
    video = tmp_path / "outputs" / "t" / "anime" / "seed-1.mp4"
    with video.open("ab") as f:
        f.write(b"EDITED")
    lose_state(tmp_path)
    capsys.readouterr()
    assert main(["recover", str(m)]) == 0
    said = _said(capsys)
    assert ("the next `gridrun run` renders this job again, paying $0.35 for it (the edited file kept under "
            ".runs/superseded/)") in said, said
    assert ("or move the edited file of style=anime,seed=1 out of the output folder and recover again, which adopts "
            "the older take found elsewhere in the folder") in said, said
    video.rename(tmp_path / "edited.mp4")
    assert main(["recover", str(m)]) == 0
    said = _said(capsys)
    assert "1 job found whole with its sidecar: recorded done" in said and "now costs $0.00" in said, said
    creates = stats(prov)["creates"]
    assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == creates
