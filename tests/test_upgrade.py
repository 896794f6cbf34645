"""A project whose state an older gridrun wrote (every released schema): what the commands of this one do with it."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from runner import api
from runner.cli import main
from runner.executor import RunOptions
from runner.state import SCHEMA_VERSION

from execkit import write_manifest
from statekit import columns_of, old_state


def _user_version(db: Path) -> int:
    with closing(sqlite3.connect(db)) as c:
        return int(c.execute("PRAGMA user_version").fetchone()[0])


def _as_older(db: Path, version: int) -> None:
    """Rewrite the state file `db` as a gridrun of schema `version` would have held the same rows: the tables and
    columns of that schema, filled from the file."""
    old = db.with_name("old.db")
    with old_state(old, version):
        pass
    keep = columns_of(old)
    with closing(sqlite3.connect(old)) as c:
        c.execute("ATTACH DATABASE ? AS new", (str(db),))
        for table, cols in keep.items():
            names = ", ".join(cols)
            c.execute(f"INSERT OR REPLACE INTO main.{table} ({names}) SELECT {names} FROM new.{table}")
        c.commit()
        c.execute("DETACH DATABASE new")
    for extra in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        extra.unlink(missing_ok=True)
    old.replace(db)
    assert _user_version(db) == version


def _left_by_a_killed_run(db: Path) -> None:
    """The three jobs of a run killed midway: seed=1 done, seed=2 sent (its video made, not yet fetched), seed=3
    never sent (planned)."""
    with closing(sqlite3.connect(db)) as c:
        videos = [Path(r[0]) for r in c.execute("SELECT output_path FROM jobs WHERE key NOT LIKE '%seed=1%'")]
        c.execute("UPDATE jobs SET state='submitted', sha256=NULL, downloaded_at=NULL, done_run_id=NULL"
                  " WHERE key LIKE '%seed=2%'")
        c.execute("DELETE FROM attempts WHERE job_id=(SELECT id FROM jobs WHERE key LIKE '%seed=3%')")
        c.execute("UPDATE jobs SET state='planned', sha256=NULL, provider_id=NULL, url=NULL, attempts=0,"
                  " cost_micros=NULL, submitted_at=NULL, completed_at=NULL, downloaded_at=NULL, done_run_id=NULL"
                  " WHERE key LIKE '%seed=3%'")
        c.execute("UPDATE runs SET status='crashed'")
        c.commit()
    for video in videos:
        video.unlink()
        video.with_suffix(".json").unlink(missing_ok=True)



def _killed_at_schema(tmp_path: Path, version: int) -> tuple[Path, Path]:
    """A project (its manifest, its state file) whose run a gridrun of schema `version` left killed midway."""
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), sim={"render_time": 0.1, "jitter": 0})
    assert api.run(m, report=False).exit_code == 0
    db = tmp_path / ".gridrun" / "state.db"
    _left_by_a_killed_run(db)
    _as_older(db, version)
    return m, db

@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_plan_and_run_on_a_state_of_an_older_schema_with_jobs_planned_in_flight_and_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], version: int
) -> None:
    """`plan` reads the state as it is (no upgrade: an older gridrun can still use it); `run` upgrades it and
    collects the job in flight, sends the one never sent, and keeps the one done."""
    m, db = _killed_at_schema(tmp_path, version)
    capsys.readouterr()

    assert main(["plan", str(m)]) == 0
    out = capsys.readouterr().out
    assert "Traceback" not in out and "1 cached" in out, out
    assert _user_version(db) == version

    assert main(["run", str(m), "--no-report"]) == 0
    assert _user_version(db) == SCHEMA_VERSION
    snap = api.status(m)
    assert sorted(j.state for j in snap.jobs) == ["done"] * 3
    assert all(Path(j.output_path).is_file() for j in snap.jobs)


def test_cancel_refused_for_want_of_an_api_key_leaves_a_state_of_an_older_schema_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command that refuses before doing anything does not upgrade the state: the older gridrun the user
    came from can still use it."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), provider="lumenfall")
    doc = yaml.safe_load(m.read_text())
    del doc["sim"]  # the simulator's knobs are for provider: sim
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    (tmp_path / ".gridrun").mkdir()
    db = tmp_path / ".gridrun" / "state.db"
    with old_state(db, 1) as c:
        c.execute("INSERT INTO runs (manifest_name, manifest_path, outputs_dir, provider, model, started_at, status)"
                  " VALUES ('t', ?, ?, 'lumenfall', 'pixverse-v5.6', 1, 'crashed')", (str(m), str(tmp_path)))
        c.execute("INSERT INTO jobs (hash, key, vals, params, state, output_path, cost_estimate_micros, attempts,"
                  " provider_id, created_at, updated_at, submitted_at) VALUES (?, 'style=anime,seed=1', '{}', '{}',"
                  " 'submitted', 'o.mp4', 350000, 1, 'v1', 1, 2, 2)", ("a" * 64,))
        c.execute("INSERT INTO run_jobs (run_id, job_id, key, position) VALUES (1, 1, 'style=anime,seed=1', 0)")
    assert main(["cancel", str(m)]) == 2
    err = capsys.readouterr().err
    assert "needs an API key" in err and "Traceback" not in err, err
    assert _user_version(db) == 1


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_cancel_with_nothing_in_flight_leaves_a_state_of_an_older_schema_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], version: int
) -> None:
    """A cancel that finds nothing in flight changes nothing, so it does not upgrade the state either: the older
    gridrun the user came from can still use it."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0})
    assert api.run(m, report=False).exit_code == 0
    db = tmp_path / ".gridrun" / "state.db"
    _as_older(db, version)
    capsys.readouterr()
    assert main(["cancel", str(m)]) == 0
    out, err = capsys.readouterr()
    assert out == "nothing in flight to cancel\n" and "Traceback" not in err, (out, err)
    assert _user_version(db) == version


@pytest.mark.parametrize("version", [1, 2, 9, SCHEMA_VERSION - 1])
def test_cancel_with_jobs_in_flight_on_a_state_of_an_older_schema_upgrades_it_and_cancels_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], version: int
) -> None:
    """A cancel with jobs to stop at the provider records what it did: it upgrades the state to do so, as a run
    does, and cancels them."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 30.0, "jitter": 0})
    left = api.run(m, report=False, options=RunOptions(timeout=0.3))
    assert left.stats.counts["submitted"] + left.stats.counts["running"] == 2, left.stats.counts
    db = tmp_path / ".gridrun" / "state.db"
    _as_older(db, version)
    capsys.readouterr()
    assert main(["cancel", str(m)]) == 0
    out = capsys.readouterr().out
    assert "cancelled 2 jobs at the provider" in out, out
    assert _user_version(db) == SCHEMA_VERSION
    assert sorted(j.state for j in api.status(m).jobs) == ["cancelled"] * 2


@pytest.mark.parametrize("version", [2, 8])
def test_run_refused_by_its_budget_leaves_a_state_of_an_older_schema_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], version: int
) -> None:
    """The budget is checked reading the state as it is: refused, the run leaves it for the older gridrun."""
    m, db = _killed_at_schema(tmp_path, version)
    capsys.readouterr()
    assert main(["run", str(m), "--no-report", "--budget", "0.01"]) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert "1 job to submit and 1 in flight would cost $0.70, above the budget of $0.01" in err, err
    assert _user_version(db) == version
    assert main(["run", str(m), "--no-report"]) == 0  # within the budget: upgraded, and run
    assert _user_version(db) == SCHEMA_VERSION
    assert sorted(j.state for j in api.status(m).jobs) == ["done"] * 3


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_report_status_and_export_read_a_state_of_an_older_schema_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], version: int
) -> None:
    """`report` (the latest run, `--run N`, `--compare A B`), `status` and `export` read the state an older
    gridrun left without upgrading it: each writes what it writes, and the file stays byte for byte."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0})
    assert api.run(m, report=False).exit_code == 0
    assert api.run(m, report=False, options=RunOptions(force=True)).exit_code == 0
    db = tmp_path / ".gridrun" / "state.db"
    _as_older(db, version)
    before = db.read_bytes()
    out_dir = tmp_path / "outputs" / yaml.safe_load(m.read_text())["name"]
    capsys.readouterr()
    for argv in (["report", str(m)], ["report", str(m), "--run", "1"], ["report", str(m), "--compare", "1", "2"],
                 ["status", str(m)], ["status", "--runs", str(m)], ["status", "--json", str(m)],
                 ["export", str(m), "--format", "json"]):
        assert main(argv) == 0, (argv, capsys.readouterr())
        err = capsys.readouterr().err
        assert "Traceback" not in err and "error" not in err, (argv, err)
    for written in ("report.html", "report-run-1.html", "compare-1-2.html", "results.json"):
        assert (out_dir / written).is_file(), written
    assert db.read_bytes() == before
    assert _user_version(db) == version


def _spent(m: Path, capsys: pytest.CaptureFixture[str]) -> tuple[float, float, float, float]:
    """`status --json`: what the latest run and every run of the manifest spent, and of each what was simulated."""
    capsys.readouterr()
    assert main(["status", "--json", str(m)]) == 0
    doc = json.loads(capsys.readouterr().out)
    return (doc["spent_usd"], doc["spent_simulated_usd"], doc["manifest_spent_usd"],
            doc["manifest_spent_simulated_usd"])


@pytest.mark.parametrize("version", [1, 8, 10])
def test_spending_at_the_simulator_before_attempts_kept_where_is_simulated_after_an_upgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], version: int
) -> None:
    """The attempts of `provider: sim` an older gridrun made (before attempts kept whether a simulator answered)
    were made at a simulator: what they cost is counted simulated, read as the older gridrun left it and after a
    run upgrades the state, in `status`, `status --runs` and the export; nothing is said spent at providers."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0})
    assert api.run(m, report=False).exit_code == 0
    db = tmp_path / ".gridrun" / "state.db"
    _as_older(db, version)
    spent, simulated, _, _ = _spent(m, capsys)
    assert spent > 0 and simulated == spent
    assert _user_version(db) == version

    write_manifest(tmp_path, n_seeds=3, styles=("anime",), sim={"render_time": 0.1, "jitter": 0})
    assert api.run(m, report=False).exit_code == 0
    assert _user_version(db) == SCHEMA_VERSION
    spent, simulated, all_spent, all_simulated = _spent(m, capsys)
    assert 0 < spent < all_spent and simulated == spent and all_simulated == all_spent
    assert main(["status", str(m)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "at providers" not in out or "$0.00 at providers" in out, out
    assert main(["status", "--runs", str(m)]) == 0
    assert "runs 2 and 1" in " ".join(capsys.readouterr().err.split())
    assert main(["export", str(m), "--run", "1", "--format", "json"]) == 0
    summary = json.loads((tmp_path / "outputs" / "t" / "results-run-1.json").read_text())["summary"]
    assert summary["spent_usd"] > 0 and summary["spent_simulated_usd"] == summary["spent_usd"], summary


def test_spending_of_another_provider_before_attempts_kept_where_stays_paid_after_an_upgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An attempt of a provider other than `sim` made before attempts kept where was made there: paid."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0})
    assert api.run(m, report=False).exit_code == 0
    db = tmp_path / ".gridrun" / "state.db"
    _as_older(db, 10)
    with closing(sqlite3.connect(db)) as c:
        c.execute("UPDATE runs SET provider='lumenfall'")
        c.commit()
    spent, simulated, _, _ = _spent(m, capsys)
    assert spent > 0 and simulated == 0


def test_status_of_jobs_an_older_gridrun_left_unknown_gives_the_advice_of_this_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An older gridrun recorded with a job of unknown outcome (no video id) to re-submit it with `retry --unknown`;
    this one looks it up first: `status` says that advice alone, after the provider's own message."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0})
    assert api.run(m, report=False).exit_code == 0
    db = tmp_path / ".gridrun" / "state.db"
    _as_older(db, 10)
    said = ("no answer after 2 tries: POST /videos: the connection failed after the request may have been sent "
            "(NetworkError: ClientOSError: [Errno 104] Connection reset by peer); the job may have been created; it "
            "may have been paid for. `gridrun retry --unknown` re-submits (may pay twice)")
    with closing(sqlite3.connect(db)) as c:
        c.execute("UPDATE jobs SET state='unknown', error=?, provider_id=NULL, url=NULL, sha256=NULL,"
                  " completed_at=NULL, downloaded_at=NULL, done_run_id=NULL", (said,))
        c.execute("UPDATE attempts SET state='unknown', provider_id=NULL, billed_micros=NULL, error=?", (said,))
        c.execute("UPDATE runs SET status='failed'")
        c.commit()
    capsys.readouterr()
    assert main(["status", str(m)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ("[Errno 104] Connection reset by peer); the job may have been created; it may have been paid for. "
            "`gridrun run` looks it up in the provider's request log (no cost) and collects it if it was made; "
            "`gridrun retry --unknown` re-submits it if still not found (may pay twice)") in out, out
    assert "`gridrun retry --unknown` re-submits (may pay twice)" not in out, out
    assert "next: `gridrun run` looks up the 2 jobs of unknown outcome" in out, out
    with closing(sqlite3.connect(db)) as c:  # read as it is
        assert {r[0] for r in c.execute("SELECT error FROM jobs")} == {said}


def _without_mark(poster: Path) -> None:
    """The poster at `poster` as a gridrun before the poster mark wrote it: its JPEG comment segment left out."""
    data = poster.read_bytes()
    pos = 2
    while data[pos + 1] != 0xFE:
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    poster.write_bytes(data[:pos] + data[pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big"):])


def test_posters_an_older_gridrun_wrote_are_said_to_be_perhaps_its_own_at_a_re_render(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The posters of a gridrun before the poster mark have none: `plan --force` and `run --force` keep them as
    they keep an image of the user's, and say they may be an older gridrun's posters."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0})
    assert api.run(m).exit_code == 0  # its report makes the posters
    posters = sorted((tmp_path / "outputs" / "t").rglob("*.jpg"))
    assert len(posters) == 2
    for poster in posters:
        _without_mark(poster)
    _as_older(tmp_path / ".gridrun" / "state.db", 8)
    capsys.readouterr()
    assert main(["plan", "--force", str(m)]) == 0
    said = " ".join("".join(capsys.readouterr()).split())
    assert (f"a job's poster would replace {posters[0]} and 1 more, an image with no poster mark of gridrun's (a "
            "poster an older gridrun wrote, or an image of yours)") in said, said
    assert main(["run", "--force", "--no-report", str(m)]) == 0
    said = " ".join("".join(capsys.readouterr()).split())
    assert ("2 files that gridrun cannot tell for its own (a video no sidecar of gridrun's records, with none beside "
            "it or edited in place; an image with no poster mark: a poster an older gridrun wrote, or an image of "
            "yours) were where") in said, said


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_report_status_and_export_read_a_killed_run_of_an_older_schema_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], version: int
) -> None:
    """The same of a run an older gridrun left killed midway (jobs done, in flight and planned)."""
    m, db = _killed_at_schema(tmp_path, version)
    before = db.read_bytes()
    capsys.readouterr()
    for argv in (["report", str(m)], ["status", str(m)], ["status", "--runs", str(m)], ["status", "--json", str(m)],
                 ["export", str(m)]):
        assert main(argv) == 0, (argv, capsys.readouterr())
        assert "Traceback" not in capsys.readouterr().err, argv
    assert db.read_bytes() == before
