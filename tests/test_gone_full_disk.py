"""`status` of a run whose process is gone without recording its end looks at the disks of its state folder and its
output folder: one all but full now is named as the likely cause (a run stops when it cannot write its state, and
cannot record that either), with what to do; with room on them, it says what it always said."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from execkit import write_manifest
from runner.cli import main


def _killed_run(tmp_path: Path) -> Path:
    manifest = write_manifest(tmp_path, n_seeds=2, run={"concurrency": 2},
                              sim={"render_time": 0.5, "jitter": 0.0, "concurrency": 2})
    killed = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(manifest), "--no-report"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "GRIDRUN_CRASH_AT": "after-submit:1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    return manifest


@pytest.mark.timeout(120)
def test_status_of_a_gone_run_names_a_full_disk_as_the_likely_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _killed_run(tmp_path)
    assert main(["status", str(manifest)]) == 0
    roomy = " ".join(capsys.readouterr().out.split())
    assert "is gone without recording its end (killed, crashed, or stopped by a state" in roomy, roomy
    assert "bytes free" not in roomy

    state = _state_disk_full(monkeypatch, tmp_path)
    assert main(["status", str(manifest)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert f"the disk holding {state} has 0 bytes free: likely what stopped it" in said, said
    assert "free space there, then `gridrun run` resumes it" in said, said


@pytest.mark.timeout(120)
def test_status_json_of_a_gone_run_gives_a_full_disk_as_the_cause_it_likely_stopped_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run stopped by its state's full disk cannot record that (the record is a write to that disk): `status
    --json`, `status --runs --json` and the export give the cause `status` infers for the gone run, a full disk,
    with a note that says "likely"; with room on the disks, none."""
    import json

    from runner import api

    manifest = _killed_run(tmp_path)
    doc = json.loads(_said(capsys, "status", str(manifest), "--json"))
    assert (doc["status"], doc["stopped_by"], doc["stopped_note"]) == ("gone", None, None), doc
    state = _state_disk_full(monkeypatch, tmp_path)
    doc = json.loads(_said(capsys, "status", str(manifest), "--json"))
    assert (doc["status"], doc["stopped_by"]) == ("gone", "disk-full"), doc
    assert f"the disk holding {state} has 0 bytes free: likely what stopped it" in doc["stopped_note"], doc
    [listed] = json.loads(_said(capsys, "status", str(manifest), "--runs", "--json"))
    # the runs listed without their manifest planned: the same note, but for the resume it cannot tell of
    resumed = ", then `gridrun run` resumes it"
    assert (listed["stopped_by"], listed["stopped_note"]) == ("disk-full", doc["stopped_note"].removesuffix(resumed)), \
        listed
    [written] = api.export(manifest, formats=["json"])
    run = json.loads(written.read_text())["summary"]["run"]
    assert (run["status"], run["stopped_by"]) == ("gone", "disk-full"), run
    # the export reads the state without planning the manifest: its note, as `status --runs`'s, proposes no run
    assert run["stopped_note"] == listed["stopped_note"], run


class _FullOnce:
    """A state store's connection whose disk is full for one commit: it fails as SQLite's does, and the disk then
    has room again (what a run's own end takes: a few pages)."""

    def __init__(self, db: Any) -> None:
        self._db, self.failed = db, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT" and not self.failed:
            import sqlite3

            self.failed = True
            exc = sqlite3.OperationalError("database or disk is full")
            exc.sqlite_errorcode = sqlite3.SQLITE_FULL
            raise exc
        return self._db.execute(sql, *args)


def _state_disk_full(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The disk of the state folder (`tmp_path`/.gridrun, returned) is full, as `os.statvfs` says; the others as they
    are."""
    real = os.statvfs
    state = str(tmp_path / ".gridrun")

    def full(path: Any) -> Any:
        if os.fspath(path).startswith(state):
            return SimpleNamespace(f_bavail=0, f_frsize=4096, f_blocks=100, f_bfree=0, f_files=10, f_favail=5)
        return real(path)

    monkeypatch.setattr(os, "statvfs", full)
    return state


def _said(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    main(list(argv))
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.timeout(120)
def test_a_run_whose_state_disk_filled_records_that_it_stopped_on_a_full_disk_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The state's disk is full as the run writes it: the run ends `crashed` (the status every gridrun reads), and
    records that it stopped on a full disk: `status --runs`, `status`, `status --json` and the export say so, and
    what to do, not a bare `crashed`."""
    import json

    from runner import api
    from runner import executor as ex_mod

    follow = ex_mod.Executor._follow

    async def disk_full(self: Any, *args: Any, **kw: Any) -> Any:
        if not isinstance(self.store.db, _FullOnce):
            self.store.db = _FullOnce(self.store.db)
        return await follow(self, *args, **kw)

    monkeypatch.setattr(ex_mod.Executor, "_follow", disk_full)
    m = write_manifest(tmp_path, n_seeds=2, sim={"render_time": 0.2, "jitter": 0.0})
    assert main(["run", str(m), "--no-report"]) == 1
    capsys.readouterr()
    monkeypatch.setattr(ex_mod.Executor, "_follow", follow)
    state = tmp_path / ".gridrun" / "state.db"
    runs = _said(capsys, "status", str(m), "--runs")
    assert "crashed (disk full)" in runs, runs
    assert (f"run 1 stopped on a full disk: the state store {state} could not be written (database or disk is full); "
            "free space on its disk, then `gridrun run` goes on from where it stopped") in runs, runs
    shown = _said(capsys, "status", str(m))
    assert "run 1 (crashed (disk full), started" in shown and "stopped on a full disk: the state store" in shown, shown
    doc = json.loads(_said(capsys, "status", str(m), "--json"))
    assert doc["status"] == "crashed" and doc["stopped_by"] == "disk-full", doc
    assert "free space on its disk, then `gridrun run`" in doc["stopped_note"]
    listed = json.loads(_said(capsys, "status", str(m), "--runs", "--json"))
    assert [(r["status"], r["stopped_by"]) for r in listed] == [("crashed", "disk-full")], listed
    assert listed[0]["stopped_note"] == doc["stopped_note"]
    [written] = api.export(m, formats=["json"])
    run = json.loads(written.read_text())["summary"]["run"]
    assert (run["status"], run["stopped_by"], run["stopped_note"]) == ("crashed", "disk-full", doc["stopped_note"])


@pytest.mark.timeout(120)
def test_a_run_whose_videos_hit_a_full_disk_records_that_it_stopped_on_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No space left as the videos are written: the run stops sending and ends `failed`, as before, and records
    that a full disk stopped it, with the file and what to do, which `status --runs` and `status --json` say."""
    import errno
    import json

    from runner.providers import download

    def full(*args: object, **kw: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(args[0]))

    monkeypatch.setattr(download, "_create", full)
    m = write_manifest(tmp_path, n_seeds=2, sim={"render_time": 0.2, "jitter": 0.0})
    assert main(["run", str(m), "--no-report"]) == 1
    capsys.readouterr()
    monkeypatch.undo()
    runs = _said(capsys, "status", str(m), "--runs")
    assert "failed (disk full)" in runs, runs
    assert "run 1 stopped on a full disk: " in runs and ".mp4: No space left on device; free space on its disk, " \
        "then `gridrun run` goes on" in runs, runs
    doc = json.loads(_said(capsys, "status", str(m), "--json"))
    assert (doc["status"], doc["stopped_by"]) == ("failed", "disk-full"), doc


@pytest.mark.timeout(120)
def test_a_write_refused_mid_download_names_the_file_in_the_full_disk_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No space left as the bytes of a video are written (the system's error of a write to an open file names no
    file): the note the run records names the file the download was writing, so that the user knows which disk to
    free."""
    import errno
    import json

    from runner.providers import download

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(download, "_write_all", full)
    m = write_manifest(tmp_path, n_seeds=2, sim={"render_time": 0.2, "jitter": 0.0})
    assert main(["run", str(m), "--no-report"]) == 1
    capsys.readouterr()
    monkeypatch.undo()
    doc = json.loads(_said(capsys, "status", str(m), "--json"))
    assert (doc["status"], doc["stopped_by"]) == ("failed", "disk-full"), doc
    note = doc["stopped_note"]
    assert note.startswith(f"stopped on a full disk: {tmp_path}") and ".mp4: No space left on device; free " \
        "space on its disk, then `gridrun run` goes on" in note, note


@pytest.mark.timeout(120)
def test_a_gone_run_on_a_full_disk_whose_manifest_changed_proposes_no_resume_in_any_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run killed with jobs in flight on a full disk, its prompt edited since: a run refuses to start over those
    jobs, so neither `status`'s line, `status --json`'s inferred `stopped_note` nor `status --watch`'s end says
    "`gridrun run` resumes it"; each gives that refusal as the next step. The manifest as the run had it, each
    says a run resumes it again."""
    import json

    monkeypatch.setenv("COLUMNS", "400")
    manifest = _killed_run(tmp_path)
    state = _state_disk_full(monkeypatch, tmp_path)
    as_run_had_it = manifest.read_text()
    manifest.write_text(as_run_had_it.replace("a fox", "a wolf"))
    assert as_run_had_it != manifest.read_text()
    said = _said(capsys, "status", str(manifest))
    assert "0 bytes free: likely what stopped it" in said and "resumes it" not in said, said
    assert "`gridrun run` of the manifest as it is now refuses to start" in said, said
    doc = json.loads(_said(capsys, "status", str(manifest), "--json"))
    assert doc["stopped_by"] == "disk-full" and "0 bytes free: likely what stopped it" in doc["stopped_note"], doc
    assert "resumes it" not in doc["stopped_note"] and "refuses to start" in doc["next"], doc
    assert main(["status", str(manifest), "--watch", "--every", "0.2"]) == 5
    watched = " ".join(capsys.readouterr().out.split())
    assert "0 bytes free: likely what stopped it" in watched and "resumes it" not in watched, watched
    assert "`gridrun run` of the manifest as it is now refuses to start" in watched, watched

    # `status --runs` lists the runs without planning the manifest: its note, text and --json alike, proposes no run
    listed = _said(capsys, "status", str(manifest), "--runs")
    [run] = json.loads(_said(capsys, "status", str(manifest), "--runs", "--json"))
    assert run["stopped_note"].endswith("likely what stopped it (a run stops when it cannot write its state or its "
                                        "videos); free space there"), run
    assert f"run 1 {run['stopped_note']}" in listed and "resumes it" not in listed, listed

    manifest.write_text(as_run_had_it)
    said = _said(capsys, "status", str(manifest))
    assert "free space there, then `gridrun run` resumes it" in said and "refuses to start" not in said, said
    doc = json.loads(_said(capsys, "status", str(manifest), "--json"))
    assert doc["stopped_note"].endswith("free space there, then `gridrun run` resumes it") and doc["next"] is None, doc
    assert main(["status", str(manifest), "--watch", "--every", "0.2"]) == 5
    watched = " ".join(capsys.readouterr().out.split())
    assert "free space there, then `gridrun run` resumes it" in watched and "refuses" not in watched, watched
