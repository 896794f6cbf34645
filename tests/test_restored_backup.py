"""A state.db restored from a backup taken before some runs (the remedy gridrun gives for a damaged or emptied
state) has no record of the videos those runs made, which are still at their paths with their sidecars. A video
whose sidecar carries this state's idempotency key for the job (its key salt and the job's hash) and whose bytes
have the SHA-256 it records is this state's own: the next run records it done, paying nothing, and keeps nothing
aside. Anything short of those proofs is sent again as before (a provider that ignores keys bills it again)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from execkit import sim_provider, stats, write_manifest

from runner import api
from runner.cli import main
from runner.executor import RunOptions
from runner.plan import overwrites
from runner.state import idempotency_key

SIM = {"render_time": 0.05, "jitter": 0.0, "honour_idempotency": False}


def _backup(db: Path, to: Path) -> None:
    with sqlite3.connect(db) as src, sqlite3.connect(to) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def _restore(backup: Path, db: Path) -> None:
    shutil.copyfile(backup, db)
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)


def _restored(tmp_path: Path) -> tuple[Path, Any, list[Path]]:
    """Run 1 (2 jobs), a backup of its state, run 2 (2 jobs more, made and paid), then the backup restored over
    state.db: (the manifest, the simulator's provider, the videos run 2 made)."""
    m = write_manifest(tmp_path, n_seeds=1, sim=SIM)
    prov = sim_provider(m)
    assert api.run(m, provider=prov, report=False).exit_code == 0
    db = tmp_path / ".gridrun" / "state.db"
    _backup(db, tmp_path / "backup.db")
    m = write_manifest(tmp_path, n_seeds=2, sim=SIM)
    assert api.run(m, provider=prov, report=False).exit_code == 0
    assert stats(prov)["creates"] == 4
    _restore(tmp_path / "backup.db", db)
    out = tmp_path / "outputs" / "t"
    return m, prov, [out / "anime" / "seed-2.mp4", out / "clay" / "seed-2.mp4"]


def _events(tmp_path: Path, kind: str) -> list[dict[str, Any]]:
    with sqlite3.connect(tmp_path / ".gridrun" / "state.db") as db:
        rows = db.execute("SELECT detail FROM events WHERE kind=?", (kind,)).fetchall()
    db.close()
    return [json.loads(r[0]) for r in rows]


def _superseded(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "outputs" / "t" / ".runs" / "superseded"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_videos_a_restored_state_lost_the_record_of_are_adopted_not_paid_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m, prov, made = _restored(tmp_path)
    sides = {v: json.loads(v.with_suffix(".json").read_text()) for v in made}
    d = api.diff(m)
    assert d is not None and d.new == 0 and d.cached == 4 and d.adopted == 2, d
    assert not d.aside.unrecorded
    capsys.readouterr()
    assert main(["plan", str(m)]) == 0
    said = capsys.readouterr()
    assert "did not render" not in said.out + said.err
    assert "0 to submit" in said.out and "4 cached (2 of them made by this state" in said.out, said.out
    result = api.run(m, provider=prov, report=False)
    assert result.exit_code == 0 and result.stats.counts["done"] == 4
    assert stats(prov)["creates"] == 4  # nothing sent again
    assert not result.unrecorded_kept and not _superseded(tmp_path)
    jobs = {Path(j.output_path): j for j in api.status(m).jobs}
    for video in made:
        job, side = jobs[video], sides[video]
        assert job.state == "done" and job.provider_id == side["provider_id"] and job.sha256 == side["sha256"]
        assert json.loads(video.with_suffix(".json").read_text()) == side  # left as it was
    adopted = _events(tmp_path, "adopted")
    assert sorted(e["provider_id"] for e in adopted) == sorted(s["provider_id"] for s in sides.values())
    assert result.stats.spent_micros == 0  # this run paid nothing
    # the next run caches all four, as any done job
    again = api.run(m, provider=prov, report=False)
    assert again.exit_code == 0 and stats(prov)["creates"] == 4 and not _superseded(tmp_path)
    # status, report and export tell them done
    capsys.readouterr()
    assert main(["status", str(m)]) == 0
    assert "done 4" in capsys.readouterr().out
    assert main(["report", str(m)]) == 0 and main(["export", str(m), "--format", "jsonl"]) == 0
    out = tmp_path / "outputs" / "t"
    rows = {r["output_path"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    for video in made:
        row = rows[video.relative_to(out).as_posix()]
        assert row["state"] == "done" and row["provider_id"] == sides[video]["provider_id"], row
        assert row["cost_usd"] == sides[video]["cost_usd"]


def test_retry_adopts_them_too_and_force_sends_them_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`retry` sends again only settled jobs: a video this state made is adopted as by `run`. `--force` renders
    every job again, as asked: sent, its earlier video kept aside first."""
    m, prov, _ = _restored(tmp_path)
    assert api.run(m, provider=prov, report=False, options=RunOptions(retry_failed=True)).exit_code == 0
    assert stats(prov)["creates"] == 4 and len(_events(tmp_path, "adopted")) == 2
    forced = api.diff(m, force=True)
    assert forced is not None and forced.adopted == 0 and forced.new == 4
    tmp2 = tmp_path / "again"
    tmp2.mkdir()
    m2, prov2, made2 = _restored(tmp2)
    d = api.diff(m2, force=True)
    assert d is not None and d.adopted == 0 and d.new == 4
    # told as this state's own, not as another state's
    assert not d.aside.unrecorded and sorted(d.aside.own) == sorted(map(str, made2)), d.aside
    said = " ".join(overwrites(api.plan(m2), d))
    assert "did not render" not in said and "a run of this state made whose record it lost" in said, said
    monkeypatch.chdir(tmp2)
    capsys.readouterr()
    assert main(["run", str(m2), "--force", "--no-report"]) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert not _events(tmp2, "adopted") and len(_events(tmp2, "submitting")) == 2 + 4  # run 1, then all four
    assert _superseded(tmp2)  # the earlier videos kept before the new ones took their place
    assert "did not render" not in said and "2 videos this state made, whose record a state.db restored" in said, said


def _other_salt(video: Path) -> None:
    side = json.loads(video.with_suffix(".json").read_text())
    salt = side["idempotency_key"].split("-")[2]
    other = "0" * len(salt) if salt != "0" * len(salt) else "1" * len(salt)
    side["idempotency_key"] = idempotency_key(side["hash"], side["attempt"], other)
    video.with_suffix(".json").write_text(json.dumps(side))


def _bytes_differ(video: Path) -> None:
    video.write_bytes(video.read_bytes() + b"\0")


def _other_hash(video: Path) -> None:
    """The sidecar names another job (its hash, and the key this state gives that job): not this job's video."""
    side = json.loads(video.with_suffix(".json").read_text())
    salt = side["idempotency_key"].split("-")[2]
    side["hash"] = "f" * len(side["hash"])
    side["idempotency_key"] = idempotency_key(side["hash"], side["attempt"], salt)
    video.with_suffix(".json").write_text(json.dumps(side))


@pytest.mark.parametrize("spoil", [_other_salt, _bytes_differ, _other_hash], ids=lambda f: f.__name__.strip("_"))
def test_a_video_short_of_the_proofs_is_sent_again_as_before(tmp_path: Path, spoil: Any) -> None:
    m, prov, made = _restored(tmp_path)
    spoil(made[0])
    d = api.diff(m)
    assert d is not None and d.adopted == 1 and d.new == 1 and d.cached == 3, d
    assert d.aside.unrecorded == (str(made[0]),) and not d.aside.own  # warned of as before
    result = api.run(m, provider=prov, report=False)
    assert result.exit_code == 0 and result.stats.counts["done"] == 4
    assert stats(prov)["creates"] == 5  # the spoiled one sent again; the other adopted
    assert [e["path"] for e in _events(tmp_path, "adopted")] == [str(made[1])]
    assert _superseded(tmp_path)  # what was in its way kept first, as before
