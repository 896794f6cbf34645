"""A disk with no room left, met by the writes before a run sends anything (the runner lock, the output folder's
lock, `gridrun init`'s manifest) and by the reads and writes after (a finished state read, a video past the
file-size limit, a poster): each is said with the file, the reason and the fix, with the exit code of a write
problem, and leaves no empty file of its own behind."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from execkit import write_manifest

from runner.cli import main

NO_SPACE = os.strerror(errno.ENOSPC)


def _failing_pwrite(monkeypatch: pytest.MonkeyPatch, ends: str) -> None:
    """`os.pwrite` refuses, for want of room, every write of a file whose path ends with `ends`."""
    real: Callable[..., int] = os.pwrite

    def pwrite(fd: int, data: Any, offset: int) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(ends):
            raise OSError(errno.ENOSPC, NO_SPACE)
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)


def _report_writes_fail(monkeypatch: pytest.MonkeyPatch, ends: str) -> None:
    """The report module's writes of files whose names end with `ends` fail as on a full disk."""
    import importlib

    report_module = importlib.import_module("runner.report")  # `runner.report` is the function
    real = report_module.atomic_write

    def atomic_write(path: Any, data: Any, **kw: Any) -> None:
        if str(path).endswith(ends):
            raise OSError(errno.ENOSPC, NO_SPACE, str(path))
        real(path, data, **kw)

    monkeypatch.setattr(report_module, "atomic_write", atomic_write)


def _creates(tmp_path: Path) -> int:
    world = tmp_path / ".gridrun" / "sim-world.jsonl"
    return world.read_text().count('"t":"create"') if world.exists() else 0


def test_an_output_folder_whose_lock_cannot_be_written_is_a_write_problem_not_an_invalid_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The output folder's disk is full as the run starts: exit 1 (a folder `run` cannot write), the lock file
    named with the reason, that nothing was recorded or sent, and the fix; the lock file it made is not left
    empty; once there is room the run goes."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    _failing_pwrite(monkeypatch, "/.runs/lock")
    assert main(["run", str(m), "--no-report"]) == 1
    err = capsys.readouterr().err
    folder = tmp_path / "outputs" / "t"
    lock = folder / ".runs" / "lock"
    assert (f"error: the output folder {folder} cannot be written: {lock}: {NO_SPACE}; nothing was recorded or "
            "sent: free space on its disk, then `gridrun run` again") in err, err
    assert not lock.exists() and _creates(tmp_path) == 0
    monkeypatch.undo()
    assert main(["run", str(m), "--no-report"]) == 0
    assert lock.stat().st_size > 0 and _creates(tmp_path) == 1


def test_a_runner_lock_that_cannot_be_written_names_its_file_and_is_not_left_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The state folder's disk is full as the runner lock is written: the error names the lock file (state and
    outputs may be on two disks), says nothing was recorded or sent and what to run again; no empty lock stays."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    _failing_pwrite(monkeypatch, "/.gridrun/lock")
    assert main(["run", str(m), "--no-report"]) == 1
    err = capsys.readouterr().err
    lock = tmp_path / ".gridrun" / "lock"
    assert (f"error: cannot take the runner lock: {lock}: {NO_SPACE}; nothing was recorded or sent: free space on "
            "its disk, then `gridrun run` again") in err, err
    assert not lock.exists() and _creates(tmp_path) == 0


def test_init_on_a_full_disk_names_the_manifest_it_could_not_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`gridrun init`'s write refused for want of room: the file named (not "its disk" of no file), none left."""
    import runner.outputs

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, NO_SPACE)

    monkeypatch.setattr(runner.outputs, "fsync", fsync)
    target = tmp_path / "demo.yaml"
    assert main(["init", str(target)]) == 1
    err = capsys.readouterr().err
    assert f"error: {target}: {NO_SPACE}; free space on its disk, then `gridrun init` again" in err, err
    assert not target.exists()


def test_a_finished_state_is_read_where_sqlite_cannot_make_its_shared_memory_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status` and `plan` of a state a run closed, where SQLite cannot make the shared-memory
    file it reads a state in WAL mode with (the disk filled by another program, a file-size limit): read as
    immutable, as in a folder that cannot be written, where an open to read would fail with "disk I/O error"."""
    import resource

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    assert main(["run", str(m), "--no-report"]) == 0
    state = tmp_path / ".gridrun"
    assert not (state / "state.db-wal").exists()  # closed: the log checkpointed and removed
    capsys.readouterr()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        status = main(["status", str(m)])
        said = capsys.readouterr()
        plan = main(["plan", str(m)])
        runs = main(["status", str(m), "--runs"])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert status == 0 and "done 2" in said.out and "cannot open state" not in said.err, said
    assert plan == 0 and runs == 0, capsys.readouterr().err


def test_a_video_past_the_file_size_limit_is_said_as_that_limit_not_as_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Videos refused for their size (EFBIG: `ulimit -f`) on a disk with room: the run's end, `status` and a
    write problem say to raise the file-size limit, not to free space on the disk."""
    from runner.outputs import write_problem
    from runner.providers import download

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})

    def too_large(*args: object, **kw: object) -> None:
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(args[0]))

    monkeypatch.setattr(download, "_create", too_large)
    assert main(["run", str(m), "--no-report"]) == 1
    err = capsys.readouterr().err
    outputs = tmp_path / "outputs" / "t"
    said = f"videos could not be saved in {outputs}: "
    assert f"{said}this process may write files" in err or f"{said}a file-size limit (`ulimit -f`" in err, err
    assert "free space" not in err, err
    monkeypatch.undo()
    main(["status", str(m)])
    out = capsys.readouterr().out
    assert f"next: {said}a file-size limit (`ulimit -f`" in out or f"next: {said}this process may" in out, out
    assert "free space" not in out, out
    problem = write_problem(OSError(errno.EFBIG, os.strerror(errno.EFBIG), "/v/a.mp4"), then="`gridrun report` again")
    assert problem.startswith("/v/a.mp4: File too large; ") and "`ulimit -f`" in problem, problem
    assert problem.endswith(", then `gridrun report` again") and "free space" not in problem, problem


def test_posters_that_cannot_be_written_are_warned_of_once_and_no_earlier_take_poster_stands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run of new takes whose posters cannot be written (no space left): the run ends done, warning once of the
    posters not written, the first named with why and the fix; the earlier takes' posters, which the report would
    show over the new videos, are removed. `gridrun report` warns alike; with room, it writes them."""
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    assert main(["run", str(m)]) == 0
    folder = tmp_path / "outputs" / "t" / "anime"
    posters = sorted(folder.glob("*.jpg"))
    assert len(posters) == 3
    before = {p: p.read_bytes() for p in posters}
    text = m.read_text().replace("a fox", "a whale")
    m.write_text(text)
    _report_writes_fail(monkeypatch, ".jpg")
    capsys.readouterr()
    assert main(["run", str(m)]) == 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    end = max(i for i, line in enumerate(lines) if line.startswith("done 3"))
    said = [line for line in lines[end:] if "poster not written" in line]
    assert len(said) == 1, err
    assert f"poster not written: {posters[0]}: {NO_SPACE}; free space on its disk, then `gridrun report` writes it" \
           " (and 2 more); their videos are saved, and the report shows the videos' own first frames" in said[0], err
    assert not any(p.exists() for p in posters), [p for p in posters if p.exists()]  # no fox over a whale
    assert main(["report", str(m)]) == 0
    assert "warning: poster not written: " in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["report", str(m)]) == 0
    assert all(p.exists() and p.read_bytes() != before[p] for p in posters)


def test_a_state_file_that_could_not_be_made_whole_is_removed_not_left_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run whose new state file cannot be written past SQLite's header (a full disk; here a file-size limit):
    refused, nothing sent, and the header-only state.db, with the empty log beside it, removed, where the next
    `status` would read them as a state whose log was lost. `status` then says no state yet; with room, the run
    goes."""
    import resource

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    state = tmp_path / ".gridrun"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        code = main(["run", str(m), "--no-report"])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    err = capsys.readouterr().err
    assert code == 1 and f"{state / 'state.db'}: cannot open state: " in err and "nothing was sent" in err, err
    assert not [p.name for p in state.glob("state.db*")], sorted(p.name for p in state.iterdir())
    assert main(["status", str(m)]) == 2
    assert "no state yet" in capsys.readouterr().err
    assert main(["run", str(m), "--no-report"]) == 0 and _creates(tmp_path) == 1


def test_a_report_of_an_earlier_run_that_cannot_be_written_says_to_run_that_report_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`gridrun report --run 1` on a full disk: the command to run again keeps `--run 1`, which a plain
    `gridrun report` (the latest run's) would not write."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    assert main(["run", str(m), "--no-report"]) == 0
    assert main(["run", str(m), "--no-report"]) == 0
    _report_writes_fail(monkeypatch, ".html")
    capsys.readouterr()
    assert main(["report", str(m), "--run", "1"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"{NO_SPACE}; free space on its disk, then `gridrun report --run 1` again" in err, err
    assert main(["report", str(m)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"{NO_SPACE}; free space on its disk, then `gridrun report` again" in err, err


def test_a_run_stopped_by_a_full_disk_records_the_video_it_wrote_not_its_part_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The download's `.part` file refused for want of room: the note the run records of what stopped it names
    the video, as the job's error does, not the temporary file."""
    from runner import api
    from runner.providers import download

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})

    def full(*args: object, **kw: object) -> None:
        raise OSError(errno.ENOSPC, NO_SPACE, str(args[0]))

    monkeypatch.setattr(download, "_create", full)
    assert main(["run", str(m), "--no-report"]) == 1
    capsys.readouterr()
    video = tmp_path / "outputs" / "t" / "anime" / "seed-1.mp4"
    note = api.status(m).run.stop_cause()[1] or ""
    assert f"stopped on a full disk: {video}: {NO_SPACE}" in note and ".part" not in note, note


def test_a_manifest_copy_that_cannot_be_written_again_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status --manifest-copy 1`, the copy removed and its output disk full: the text is given on stdout, and the
    error says the copy could not be written for want of room, with the file and the fix, not "written by another
    state, or cannot be written"."""
    import runner.state

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    assert main(["run", str(m), "--no-report"]) == 0
    copy = tmp_path / "outputs" / "t" / ".runs" / "run-1.yaml"
    copy.unlink()

    def full(path: Any, data: Any, **kw: Any) -> None:
        raise OSError(errno.ENOSPC, NO_SPACE, str(path))

    monkeypatch.setattr(runner.state, "atomic_write", full)
    capsys.readouterr()
    assert main(["status", str(m), "--manifest-copy", "1"]) == 0
    said = capsys.readouterr()
    assert said.out == m.read_text()
    err = " ".join(said.err.split())
    assert f"it cannot be written: {copy}: {NO_SPACE}; free space on its disk" in err, err
    assert "another state" not in err, err


def test_a_run_whose_final_report_cannot_be_written_names_the_live_page_it_left_out_of_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run wrote its live page, then its final page was refused for want of room: the page there still shows
    the run going on. The run's end and `status` name that page as out of date, with what writes it again; its
    stamp tells a tab open on it the same. Once there is room `gridrun report` writes it, and nothing says so."""
    from runner import live
    from runner.outputs import stamp_ended

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 2.0, "jitter": 0.0})
    monkeypatch.chdir(tmp_path)
    real = live.LiveViews.final_report
    pages: list[str] = []

    def final_report(self: live.LiveViews) -> Path | None:
        report = tmp_path / "outputs" / "t" / "report.html"
        pages.append(report.read_text() if report.exists() else "")
        with monkeypatch.context() as full:
            _report_writes_fail(full, ".html")
            return real(self)

    monkeypatch.setattr(live.LiveViews, "final_report", final_report)
    assert main(["run", m.name]) == 0
    err = " ".join(capsys.readouterr().err.split())
    report = tmp_path / "outputs" / "t" / "report.html"
    assert '"live":true' in pages[0] and report.read_text() == pages[0]  # the live page, left as it was
    said = ("outputs/t/report.html is out of date (run 1 ended; a page open on it says so): `gridrun report t.yaml` "
            "writes it again once there is room")
    assert f"{report}: {NO_SPACE}; free space on its disk; {said}" in err, err
    assert (stamp_ended(report) or {}).get("run") == 1
    assert main(["status", m.name]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"warning: {said}" in out, out
    assert main(["status", m.name, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["report_out_of_date"] == {
        "path": str(report), "command": "gridrun report t.yaml", "message": said}
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert main(["report", m.name]) == 0 and stamp_ended(report) is None
    assert main(["status", m.name]) == 0
    assert "out of date" not in capsys.readouterr().out
    assert main(["status", m.name, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["report_out_of_date"] is None


def test_a_write_problem_naming_no_file_names_the_folder_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A full disk met by a write to a file open already, whose error names no file: the final report not written
    names the output folder being written, whose disk to free, not "its disk" of nothing named; a write problem
    given no folder either names the disk as the one written to."""
    import importlib

    from runner.outputs import write_problem

    report_module = importlib.import_module("runner.report")  # `runner.report` is the function
    real = report_module.write_report

    def write_report(*args: Any, **kw: Any) -> Any:
        if kw.get("posters"):  # the run's final page
            raise OSError(errno.ENOSPC, NO_SPACE)
        return real(*args, **kw)

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    monkeypatch.setattr(report_module, "write_report", write_report)
    assert main(["run", str(m)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    outputs = tmp_path / "outputs" / "t"
    assert f"report not written: writing in {outputs}: {NO_SPACE}; free space on its disk" in err, err
    assert write_problem(OSError(errno.ENOSPC, NO_SPACE)) == f"{NO_SPACE}; free space on the disk written to"
    assert write_problem(OSError(errno.EACCES, os.strerror(errno.EACCES)), folder=outputs, then="`gridrun run` again") \
        == f"writing in {outputs}: {os.strerror(errno.EACCES)}; make it writable, then `gridrun run` again"
