"""A state file that lost what it held (its write-ahead log gone), damaged past its first pages, or made on a full
disk: every command names the file and says what happened and what to do, and nothing is sent or paid again."""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from runner import api
from runner import state as state_mod

from execkit import sim_provider, stats, write_manifest


def _header_only_at_first_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Any, bytes]:
    """A project run once whose state file is then as a run killed before SQLite's first checkpoint leaves it with
    its write-ahead log lost: the file as gridrun made it (SQLite's header only; the run lived in state.db-wal),
    no log beside it, the runs' files in the output folder. Returns the manifest, its simulator and the file's
    bytes."""
    made: list[bytes] = []
    real = state_mod._make_whole

    def keep(path: Path) -> None:
        real(path)
        made.append(path.read_bytes())

    monkeypatch.setattr(state_mod, "_make_whole", keep)
    m = write_manifest(tmp_path, n_seeds=1)
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(m, report=False).exit_code == 0
    db = tmp_path / ".gridrun" / "state.db"
    for beside in ("state.db-wal", "state.db-shm"):
        (db.parent / beside).unlink(missing_ok=True)
    assert len(made) == 1 and len(made[0]) <= 65536
    db.write_bytes(made[0])
    return m, prov, made[0]


def test_a_state_file_whose_write_ahead_log_was_lost_is_refused_not_read_as_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A first run killed before any checkpoint keeps its whole state in state.db-wal; that log lost (a backup or
    a sync of `*.db` only, a clean-up of temporary files), state.db holds SQLite's header alone, as empty as a
    0-byte file. Beside the runs' files that name this state it is refused by every command, naming the log,
    not read as "nothing has run here", which would have `run` send and pay for every job again."""
    from runner.cli import main
    m, prov, header = _header_only_at_first_run(tmp_path, monkeypatch)
    creates = stats(prov)["creates"]
    db = tmp_path / ".gridrun" / "state.db"
    lock = tmp_path / "outputs" / "t" / ".runs" / "lock"
    capsys.readouterr()
    for argv in (["plan"], ["status"], ["run", "--no-report"], ["retry", "--no-report"], ["report"], ["export"],
                 ["cancel"]):
        assert main([argv[0], str(m), *argv[1:]]) == 1, argv
        err = " ".join(capsys.readouterr().err.split())
        assert f"{db}: the state file holds no state (SQLite's header alone)" in err, (argv, err)
        assert "its write-ahead log state.db-wal is not there" in err and ".runs/run-1.yaml" in err, (argv, err)
        assert f"to start over knowingly (every job sent and paid for again), remove it and {lock}" in err, err
        assert "Traceback" not in err
    assert stats(prov)["creates"] == creates and db.read_bytes() == header  # nothing sent, nothing written
    db.unlink()
    lock.unlink()  # started over knowingly
    assert main(["run", str(m), "--no-report"]) == 0
    assert stats(prov)["creates"] == creates + 2


def test_a_state_file_holding_its_header_alone_is_new_once_the_output_folders_lock_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The header-only file a run killed as it made the state leaves, after a start over (state.db and the output
    folder's .runs/lock removed): no run of it wrote the output folder, so it is a new state."""
    m, _, _ = _header_only_at_first_run(tmp_path, monkeypatch)
    (tmp_path / "outputs" / "t" / ".runs" / "lock").unlink()
    assert api.diff(api.plan(m)) is None
    assert api.run(m, report=False).exit_code == 0



def _damage_page(db: Path, table_or_index: str) -> int:
    """Overwrite the first page of `table_or_index` in the state file `db` (no write-ahead log beside it) with junk,
    as a disk error or a copy that went wrong leaves it; returns the page's number."""
    with closing(sqlite3.connect(db)) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table_or_index,)).fetchone()[0]
    with open(db, "r+b") as f:
        f.seek((page - 1) * page_size)
        f.write(bytes(range(256)) * (page_size // 256))
    return page


def _finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Any, Path]:
    """A project whose run ended, its state checkpointed into state.db (no write-ahead log beside it)."""
    m = write_manifest(tmp_path, n_seeds=1)
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(m, report=False).exit_code == 0
    db = tmp_path / ".gridrun" / "state.db"
    assert not (db.parent / "state.db-wal").exists()
    return m, prov, db


def _runs(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])


@pytest.mark.parametrize("where", ["events_stops", "sqlite_autoindex_attempts_1", "jobs_state"])
def test_a_state_file_damaged_past_its_first_pages_is_refused_by_run_and_named_by_every_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """A page of an index overwritten (a disk error, a copy that went wrong): `run` and `retry` check the file as
    they open it and refuse it, writing nothing and sending nothing; a command that only reads it (a `cancel` with
    nothing in flight too) and meets the damage names the file and says it is damaged, with how to recover, not
    "check that the folder is writable"."""
    from runner.cli import main
    m, prov, db = _finished(tmp_path, monkeypatch)
    creates, runs = stats(prov)["creates"], _runs(db)
    _damage_page(db, where)
    lock = tmp_path / "outputs" / "t" / ".runs" / "lock"
    capsys.readouterr()
    for argv in (["run"], ["retry"], ["run", "--force", "--no-report"]):
        assert main([argv[0], str(m), *argv[1:]]) == 1, argv
        err = " ".join(capsys.readouterr().err.split())
        assert f"{db}: the state file is damaged (" in err, (argv, err)
        assert "Restore state.db from a backup" in err and f"remove it and {lock}" in err, (argv, err)
        assert "writable" not in err and "Traceback" not in err, (argv, err)
    for argv in (["status"], ["status", "--runs"], ["report"], ["export"], ["plan"], ["cancel"]):
        code = main([argv[0], str(m), *argv[1:]])
        err = " ".join(capsys.readouterr().err.split())
        if code:  # the command met the damage
            assert code == 1 and f"{db}: the state file is damaged (" in err, (argv, err)
            assert "Restore state.db from a backup" in err and "writable" not in err, (argv, err)
    assert stats(prov)["creates"] == creates and runs == 1  # nothing sent
    with closing(sqlite3.connect(db)) as conn:  # no run recorded in it: the runs table is whole
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == runs
    db.unlink()
    lock.unlink()
    assert main(["run", str(m), "--no-report"]) == 0 and _runs(db) == 1


@pytest.mark.parametrize("where", ["events_stops", "events"])
def test_plan_refuses_a_damaged_state_the_run_would_refuse_though_it_reads_no_damaged_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """A page of the events overwritten, which the plan does not read: `plan` checks the file whole as `run` does,
    and refuses it with the same words (its --json as an error object), rather than predict a run that is refused."""
    from runner.cli import main
    m, prov, db = _finished(tmp_path, monkeypatch)
    creates = stats(prov)["creates"]
    _damage_page(db, where)
    capsys.readouterr()
    assert main(["run", str(m), "--no-report"]) == 1
    refused = " ".join(capsys.readouterr().err.split())
    assert f"{db}: the state file is damaged (" in refused, refused
    assert main(["plan", str(m)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"{db}: the state file is damaged (" in err and "Restore state.db" in err, err
    assert main(["plan", str(m), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == 1 and any("the state file is damaged" in e for e in doc["errors"]), doc
    assert stats(prov)["creates"] == creates  # nothing sent


def test_a_damaged_state_the_report_meets_is_named_as_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report of a run that could not read its state (damaged meanwhile) says so as the state store does:
    the file, damaged, and how to recover; not the name of SQLite's exception class."""
    from runner.live import LiveViews
    from runner.state import Store
    _, _, db = _finished(tmp_path, monkeypatch)

    def report(final: bool) -> Path:
        err = sqlite3.DatabaseError("database disk image is malformed")
        err.sqlite_errorcode = sqlite3.SQLITE_CORRUPT  # type: ignore[attr-defined]
        raise err

    with Store(db, outputs_dir=tmp_path / "outputs" / "t") as store:
        live = LiveViews(store, report=report, posters=None, report_every=60.0, errors=[], clock=lambda: 0.0)
        assert live.final_report() is None
    assert live.report_error is not None and "DatabaseError" not in live.report_error
    assert live.report_error.startswith(f"report not written: {db}: the state file is damaged (database disk "
                                        "image is malformed)"), live.report_error


def test_a_damaged_state_met_outside_its_store_is_said_as_damaged_not_as_a_folder_to_make_writable() -> None:
    """SQLite's SQLITE_CORRUPT reaching the command line without the store that met it (which names the file):
    said as a damaged state file, with how to recover, not as a folder to make writable."""
    from runner.cli import _error_lines
    err = sqlite3.DatabaseError("database disk image is malformed")
    err.sqlite_errorcode = sqlite3.SQLITE_CORRUPT  # type: ignore[attr-defined]
    [line] = _error_lines(err, "status")
    assert "the file is damaged: a copy or sync that stopped midway, or a disk error" in line, line
    assert "Restore state.db from a backup" in line and "writable" not in line, line


def _io_error() -> sqlite3.OperationalError:
    """SQLite's error where it could not grow the write-ahead log's index (state.db-shm) on a disk that is full."""
    err = sqlite3.OperationalError("disk I/O error")
    err.sqlite_errorcode = sqlite3.SQLITE_IOERR | (19 << 8)  # type: ignore[attr-defined]  # SQLITE_IOERR_SHMSIZE
    return err


@pytest.mark.parametrize("when", ["new", "ran"])
def test_a_full_disk_met_as_the_state_is_opened_is_said_as_full_with_the_bytes_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], when: str
) -> None:
    """A disk with a few KiB free: SQLite makes state.db but cannot grow its state.db-shm, and says only "disk I/O
    error". Every command says the disk holding the state is full, and how much is free, not "not a gridrun state
    file" (which has the user move the file aside) nor "check that the folder is writable"."""
    import shutil

    from runner.cli import main
    m = write_manifest(tmp_path, n_seeds=1)
    if when == "ran":
        assert api.run(m, report=False).exit_code == 0
    else:
        (tmp_path / ".gridrun").mkdir()
        with closing(sqlite3.connect(tmp_path / ".gridrun" / "state.db")) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    db = tmp_path / ".gridrun" / "state.db"
    real = shutil.disk_usage

    def full(path: str | Path) -> Any:
        usage = real(path)
        return type(usage)(usage.total, usage.total - 24_576, 24_576)

    def failing(self: state_mod.Store) -> tuple[int, list[str]]:
        raise _io_error()

    monkeypatch.setattr(shutil, "disk_usage", full)
    monkeypatch.setattr(state_mod.Store, "_schema", failing)
    capsys.readouterr()
    for argv in (["run", "--no-report"], ["status"], ["plan"], ["report"], ["export"]):
        code = main([argv[0], str(m), *argv[1:]])
        err = " ".join(capsys.readouterr().err.split())
        assert code == 1, (argv, err)
        assert f"{db}: cannot open state: disk I/O error" in err, (argv, err)
        assert f"the disk holding {db.parent} is full (24,576 bytes free): free space on it" in err, (argv, err)
        assert "not a gridrun state file" not in err and "writable" not in err, (argv, err)


def test_a_file_sqlite_cannot_read_as_a_database_is_still_not_a_gridrun_state_file(tmp_path: Path) -> None:
    """What SQLite reads as no database at all (SQLITE_NOTADB) is said as a file that is not gridrun's."""
    from runner.errors import StateError
    m = write_manifest(tmp_path, n_seeds=1)
    (tmp_path / ".gridrun").mkdir()
    (tmp_path / ".gridrun" / "state.db").write_bytes(b"not a database, a text file: " * 200)
    with pytest.raises(StateError, match="state.db: not a gridrun state file \\(file is not a database\\)"):
        api.status(m)


def test_a_state_file_another_program_holds_exclusively_is_said_as_held_not_as_not_gridruns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database browser (or `PRAGMA locking_mode=EXCLUSIVE`) that wrote to state.db keeps readers out too:
    SQLite says "database is locked" as the state's version is read. Said as the program to close, not as "not
    a gridrun state file", which would have the user move the file aside and start over, paying again."""
    from runner.cli import main
    m, _, db = _finished(tmp_path, monkeypatch)

    def held(self: state_mod.Store) -> tuple[int, list[str]]:
        err = sqlite3.OperationalError("database is locked")
        err.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
        raise err

    monkeypatch.setattr(state_mod.Store, "_schema", held)
    capsys.readouterr()
    for argv in (["status"], ["plan"], ["report"]):
        assert main([argv[0], str(m)]) == 1, argv
        err = " ".join(capsys.readouterr().err.split())
        assert f"{db}: cannot open state: database is locked; another process holds state.db in a write " \
               "transaction, not a gridrun run" in err, (argv, err)
        assert "not a gridrun state file" not in err, (argv, err)


def test_a_state_folder_removed_while_a_run_goes_on_is_written_back_and_the_run_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`.gridrun/` removed as a run goes on (a clean-up script, `git clean -fdx`): the run writes on into the file
    it holds open, then, as it ends, writes that state back where it was and ends with an error saying so (exit
    1), not "done" and exit 0 with every record of what it paid gone; the next commands read it, and the next run
    pays for nothing again."""
    import shutil

    from runner.cli import main
    m = write_manifest(tmp_path, n_seeds=2, sim={"render_time": 0.3, "jitter": 0})
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    state = tmp_path / ".gridrun"
    real_run = api.run

    def wiped(*args: Any, on_progress: Any = None, **kwargs: Any) -> Any:
        def progress(s: Any) -> None:
            if s.counts.get("submitted", 0) + s.counts.get("running", 0) and state.exists():
                shutil.rmtree(state)
            if on_progress is not None:
                on_progress(s)
        return real_run(*args, on_progress=progress, **kwargs)

    monkeypatch.setattr(api, "run", wiped)
    assert main(["run", str(m), "--no-report"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"{state / 'state.db'}: the state file was removed while this run went on" in err, err
    assert "written back there" in err and "Traceback" not in err, err
    monkeypatch.setattr(api, "run", real_run)
    creates = stats(prov)["creates"]
    assert creates == 4
    snap = api.status(m)
    assert [j.state for j in snap.jobs] == ["done"] * 4
    assert main(["run", str(m), "--no-report"]) == 0
    assert stats(prov)["creates"] == creates  # nothing paid again


@pytest.mark.parametrize(("name", "more"), [
    ("state.db-shm", "; or, while no gridrun uses this state, remove it: it holds nothing to keep"),
    ("state.db", ""),
])
def test_a_write_refused_by_a_read_only_file_of_the_state_names_that_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, more: str) -> None:
    """SQLite makes -wal and -shm with the state file's mode: a `status` of a read-only state.db leaves a
    read-only -shm, which refuses the next run's writes once state.db alone is made writable again. The remedy
    names the file this process may not write, not "check that the folder and its files are writable"."""
    from runner.state import remedy

    for each in ("state.db", "state.db-wal", "state.db-shm"):
        (tmp_path / each).write_bytes(b"")
    (tmp_path / name).chmod(0o444)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m, **kw: Path(p).name != name and real_access(p, m, **kw))
    exc = sqlite3.OperationalError("attempt to write a readonly database")
    exc.sqlite_errorcode = sqlite3.SQLITE_READONLY  # type: ignore[attr-defined]
    said = remedy(exc, folder=tmp_path)
    assert said == f"{tmp_path / name} is read-only (mode 0444): make it writable (chmod u+w {tmp_path / name}){more}"
    monkeypatch.setattr(os, "access", real_access)
    (tmp_path / name).chmod(0o644)
    monkeypatch.setattr(os, "access", lambda p, m, **kw: True)
    assert remedy(exc, folder=tmp_path) == "check that the folder and its files are writable and on a local disk"


def _lost_a_later_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Any, Path]:
    """A project run once (2 jobs), its manifest grown to 6 jobs and run again, then its state file put back as
    the first run left it with no write-ahead log beside it: what losing state.db-wal after the later run
    leaves (or restoring state.db from a copy made between the runs). Returns the manifest, its simulator and
    the state file."""
    m = write_manifest(tmp_path, n_seeds=1)
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(m, report=False).exit_code == 0
    db = tmp_path / ".gridrun" / "state.db"
    assert not (db.parent / "state.db-wal").exists()
    first = db.read_bytes()
    write_manifest(tmp_path, n_seeds=3)
    assert api.run(m, report=False).exit_code == 0
    assert stats(prov)["creates"] == 6
    for beside in ("state.db-wal", "state.db-shm"):
        (db.parent / beside).unlink(missing_ok=True)
    db.write_bytes(first)
    assert _runs(db) == 1
    return m, prov, db


def test_a_state_that_lost_a_later_run_is_refused_before_anything_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The write-ahead log lost after a later run: the state is whole, one run behind. The output folder says so
    (the later run's manifest copy, and sidecars whose key carries this state's own id for renders it has no
    record of): every command that reads it there refuses, naming what was found and what to do, rather than
    taking the later run's videos for another state's and sending their jobs, and paying for them, again."""
    from runner.cli import main
    m, prov, db = _lost_a_later_run(tmp_path, monkeypatch)
    before = db.read_bytes()
    lock = tmp_path / "outputs" / "t" / ".runs" / "lock"
    capsys.readouterr()
    for argv in (["plan"], ["status"], ["run", "--no-report"], ["retry", "--no-report"]):
        assert main([argv[0], str(m), *argv[1:]]) == 1, argv
        err = " ".join(capsys.readouterr().err.split())
        assert f"{db}: the state has lost the records of runs it made" in err, (argv, err)
        assert f"{lock} names run 2 of this state as the last to write the folder (its manifest copy run-2.yaml), " \
            "while the last run it records is run 1" in err, (argv, err)
        assert "Put state.db-wal back beside it, or restore both from a backup" in err, (argv, err)
        assert "to go on knowingly from the state as it is" in err and f"remove {lock}" in err, (argv, err)
        assert "another state" not in err.replace("taking their videos for another state's", "") and "Traceback" not in err
    assert stats(prov)["creates"] == 6 and db.read_bytes() == before  # nothing sent, nothing written


def test_a_state_that_lost_the_renders_of_a_run_it_records_is_refused_by_their_sidecars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no manifest copy above the state's last run (a log lost after part of it was copied into the file,
    a copy removed), the sidecars still tell: a render sent with this state's own key that it has no record of
    is its own, lost, and `plan` and `run` refuse before anything is sent. Removing the output folder's lock
    goes on knowingly; the run that does is recorded, and the files left from before are no evidence after."""
    from runner.cli import main
    m, prov, db = _lost_a_later_run(tmp_path, monkeypatch)
    lock = tmp_path / "outputs" / "t" / ".runs" / "lock"
    record = json.loads(lock.read_text())
    assert record["run"] == 2
    lock.write_text(json.dumps({k: v for k, v in record.items() if k != "run"}))  # as an older gridrun wrote it
    capsys.readouterr()
    for argv in (["plan"], ["run", "--no-report"]):
        assert main([argv[0], str(m), *argv[1:]]) == 1, argv
        err = " ".join(capsys.readouterr().err.split())
        assert f"{db}: the state has lost the records of runs it made" in err, (argv, err)
        assert "and 3 more holds a render sent by run 2 with this state's own key (gridrun-" in err, (argv, err)
        assert "names run" not in err and f"remove {lock}" in err, (argv, err)
    assert stats(prov)["creates"] == 6
    lock.unlink()  # gone on knowingly
    assert main(["run", str(m), "--no-report"]) == 0
    assert _runs(db) == 2  # sent again, with the same keys: the simulator, honouring them, made no new render
    capsys.readouterr()
    assert main(["plan", str(m)]) == 0
    assert "lost the records" not in capsys.readouterr().err


def test_a_state_begun_again_is_not_taken_for_one_that_lost_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """State.db and the output folder's lock removed to start over: the earlier state's manifest copies and
    sidecars stay, but its key's id is not the new state's, and its copies were written before the new state's
    run began: the new state is not refused."""
    m, _, db = _lost_a_later_run(tmp_path, monkeypatch)
    db.unlink()
    (tmp_path / "outputs" / "t" / ".runs" / "lock").unlink()
    write_manifest(tmp_path, n_seeds=1)
    assert api.run(m, report=False).exit_code == 0
    write_manifest(tmp_path, n_seeds=3)
    assert api.diff(api.plan(m)) is not None
    assert api.run(m, report=False).exit_code == 0


def test_another_states_manifest_copies_above_this_ones_runs_are_no_sign_of_lost_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An output folder committed with its manifest copies: a `git pull` brings a teammate's `run-3.yaml`, written
    now, above this state's one run. The lock is this state's own, naming its run 1: nothing was lost, and plan,
    status and run go on."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1)
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(m, report=False).exit_code == 0
    runs = tmp_path / "outputs" / "t" / ".runs"
    assert json.loads((runs / "lock").read_text())["run"] == 1
    for n in (2, 3):  # pulled: a teammate's runs, their files' times now
        (runs / f"run-{n}.yaml").write_text(m.read_text())
    capsys.readouterr()
    for argv in (["plan"], ["status"], ["run", "--no-report"]):
        assert main([argv[0], str(m), *argv[1:]]) == 0, argv
        assert "lost the records" not in capsys.readouterr().err, argv
    assert json.loads((runs / "lock").read_text())["run"] == 2  # this state's second run, written over the copy


@pytest.mark.parametrize("sqlite3_there", [True, False])
def test_a_damaged_state_names_sqlites_own_recovery_as_a_free_step_where_the_sqlite3_program_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], sqlite3_there: bool
) -> None:
    """Without a backup, the only other way was to start over, paying for every job again. Where the sqlite3
    program is on the PATH, SQLite's `.recover` is said first: free, in the state's folder, the damaged file and
    its log moved aside, not away (a log left beside the recovered file would be read into it). Not said where
    there is no sqlite3 to run it."""
    import shutil

    from runner.cli import main
    m, prov, db = _finished(tmp_path, monkeypatch)
    creates = stats(prov)["creates"]
    _damage_page(db, "jobs_state")
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: (
        ("/usr/bin/sqlite3" if sqlite3_there else None) if name == "sqlite3" else real_which(name, *a, **k)))
    capsys.readouterr()
    assert main(["run", str(m), "--no-report"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "Restore state.db from a backup" in err and "to start over knowingly" in err, err
    step = (f"without one, first try SQLite's own recovery, free and sending nothing (while no gridrun uses the state): "
            f"in {db.parent}, `sqlite3 state.db .recover | sqlite3 recovered.db`; then move state.db, and state.db-wal "
            "and state.db-shm where there, aside (not away) and recovered.db to state.db")
    assert (step in err) == sqlite3_there, err
    if sqlite3_there:  # the free step comes before the paid one
        assert err.index(".recover") < err.index("to start over knowingly"), err
    assert stats(prov)["creates"] == creates  # refused: nothing sent


def test_a_header_only_state_file_beside_an_empty_log_says_the_log_is_empty_not_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite's header alone beside an empty state.db-wal (the log emptied, or a command stopped by a full disk
    as it made the state again): refused as the header alone is, the log said to be empty, not "not there" with
    the advice to put it back."""
    from runner.cli import main
    m, _prov, _header = _header_only_at_first_run(tmp_path, monkeypatch)
    (tmp_path / ".gridrun" / "state.db-wal").write_bytes(b"")
    capsys.readouterr()
    assert main(["status", str(m)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "its write-ahead log state.db-wal is empty" in err and "is not there" not in err, err
    assert "Put state.db-wal back" not in err and "Restore both from a backup; or `gridrun recover" in err, err
