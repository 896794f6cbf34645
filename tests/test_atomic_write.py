from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner import outputs
from runner.outputs import atomic_write


def test_atomic_write_makes_the_folder_and_writes_bytes_or_text(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "video.json"
    atomic_write(target, b'{"x": 1}\n')
    assert target.read_bytes() == b'{"x": 1}\n'
    atomic_write(target, "naïve\n", durable=False)
    assert target.read_bytes() == "naïve\n".encode()
    assert sorted(p.name for p in target.parent.iterdir()) == ["video.json"]


def test_atomic_write_fsyncs_only_when_durable(tmp_path: Path, disk_steps: list[str]) -> None:
    """Durable: the new file's data, then its rename (the folder's fsync, after the rename); not durable:
    neither; `sync_folder_after=False`: the data only, the caller syncs the folder."""
    atomic_write(tmp_path / "durable", b"1")
    assert disk_steps == ["fsync file", "rename to durable", "fsync folder"]
    disk_steps.clear()
    atomic_write(tmp_path / "quick", b"2", durable=False)
    assert disk_steps == ["rename to quick"]
    disk_steps.clear()
    atomic_write(tmp_path / "batched", b"3", sync_folder_after=False)
    assert disk_steps == ["fsync file", "rename to batched"]
    assert (tmp_path / "durable").read_bytes() == b"1" and (tmp_path / "batched").read_bytes() == b"3"


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.html"
    target.write_bytes(b"old")

    def full(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "write", full)
    with pytest.raises(OSError, match="No space"):
        atomic_write(target, b"new" * 1000)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


@pytest.mark.parametrize("call", ["write", "open", "replace"])
def test_a_failed_atomic_write_names_the_file_it_was_to_write_not_its_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    """A full disk fails the write naming no file, a folder made unwritable fails the open or the rename naming
    the temporary file: each error names the destination, which is what the user knows of."""
    target = tmp_path / ".runs" / "run-2.yaml"
    real = getattr(outputs.os, call)

    def refuse(*args: object, **kw: object) -> object:
        if call == "write":
            raise OSError(28, "No space left on device")
        if call == "open" and not str(args[0]).endswith(".tmp"):
            return real(*args, **kw)
        raise OSError(1, "Operation not permitted", str(args[0]), *([str(args[1])] if call == "replace" else []))

    monkeypatch.setattr(outputs.os, call, refuse)
    with pytest.raises(OSError) as exc:
        atomic_write(target, b"name: m\n")
    assert exc.value.filename == str(target) and exc.value.filename2 is None, (exc.value.filename, exc.value.filename2)
    assert outputs.write_problem(exc.value, then="`gridrun run` again").startswith(f"{target}: ")


def test_a_large_write_is_complete_even_when_the_kernel_takes_it_in_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.write
    monkeypatch.setattr(outputs.os, "write", lambda fd, data: real(fd, bytes(data)[:1000]))
    data = os.urandom(10_000)
    atomic_write(tmp_path / "x.bin", data)
    assert (tmp_path / "x.bin").read_bytes() == data


def test_a_name_that_just_fits_is_written_though_its_temporary_file_has_more_around_it(tmp_path: Path) -> None:
    """The plan lets a video's name take 250 bytes (its .part takes 255): its sidecar and poster, written
    through a temporary file, must fit too."""
    from runner.outputs import atomic_write

    for name in ("x" * 246 + ".json", "ü" * 120 + ".jpg"):
        atomic_write(tmp_path / name, b"data")
        assert (tmp_path / name).read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


@pytest.fixture
def on_macos(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """sys.platform as on macOS, with its F_FULLFSYNC: the fcntl calls made, (file mode bits, command)."""
    import fcntl
    import stat
    import sys

    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(fcntl, "F_FULLFSYNC", 51, raising=False)

    def fake_fcntl(fd: int, cmd: int, *args: object) -> int:
        calls.append((stat.S_IFMT(os.fstat(fd).st_mode), cmd))
        return 0

    monkeypatch.setattr(fcntl, "fcntl", fake_fcntl)
    return calls


def test_a_durable_write_on_macos_reaches_the_disk_with_f_fullfsync(
    tmp_path: Path, on_macos: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """macOS's fsync leaves data in the drive's cache: a durable write there asks F_FULLFSYNC, of the file and
    of its folder, and no plain fsync; a file system refusing F_FULLFSYNC (a network share, an external disk)
    gets a plain fsync."""
    import fcntl
    import stat

    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    atomic_write(tmp_path / "video.json", b"{}")
    assert on_macos == [(stat.S_IFREG, 51), (stat.S_IFDIR, 51)] and synced == []

    def refused(fd: int, cmd: int, *args: object) -> int:
        on_macos.append((0, cmd))
        raise OSError(45, "Operation not supported")

    monkeypatch.setattr(fcntl, "fcntl", refused)
    atomic_write(tmp_path / "video.json", b"{1}")
    assert on_macos[2:] == [(0, 51), (0, 51)] and len(synced) == 2
    assert (tmp_path / "video.json").read_bytes() == b"{1}"


def test_every_durable_write_goes_through_the_one_fsync_helper() -> None:
    """A downloaded video, a sidecar, a report: each is synced by `outputs.fsync` (F_FULLFSYNC on macOS)."""
    import re

    package = Path(outputs.__file__).parent
    calls = {str(p.relative_to(package)): len(re.findall(r"\bos\.fsync\(", p.read_text(encoding="utf-8")))
             for p in package.rglob("*.py")}
    assert {p: n for p, n in calls.items() if n} == {"outputs.py": 1}


def test_a_run_removes_the_temporary_files_of_writes_killed_before_their_rename_and_no_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write killed between its data and its rename (kill -9, a power cut) leaves its temporary file, named
    with the writer's process and thread ids, which no later write takes. A run removes those of gridrun's
    naming in the folders it writes (its videos', the output folder and its .runs/, the state folder) once their
    writer is gone; not a file of another name, one whose writer runs, nor one written a moment ago."""
    import os
    import subprocess
    import sys
    import threading

    from execkit import sim_provider, write_manifest

    from runner import api, resume

    m = write_manifest(tmp_path, n_seeds=1)
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert api.run(m, report=False).exit_code == 0
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    out, state = tmp_path / "outputs" / "t", tmp_path / ".gridrun"
    tid = threading.get_ident()
    stale = [out / f".report.html.{gone.pid}.140571618305728.tmp", out / ".runs" / f".run-1.yaml.{gone.pid}.{tid}.tmp",
             out / "anime" / f".seed-1.jpg.{gone.pid}.{tid}.tmp", state / f".digests.json.{gone.pid}.{tid}.tmp"]
    # not gridrun's: another naming, or numbers of the user's (a thread id is pointer-sized)
    others = [out / ".notes.tmp", out / f"report.html.{gone.pid}.{tid}.tmp", out / f".notes.{gone.pid}.tmp",
              out / ".notes.2024.12.tmp", state / ".keep.1999.2000.tmp", out / f".notes.{gone.pid}.7.tmp",
              out / ".notes.2024.20241206.tmp", state / ".x.20241206.153000123456.tmp"]
    young = out / "anime" / f".seed-1.json.{gone.pid}.{tid}.tmp"
    for path in (*stale, *others, young):
        path.write_bytes(b"part of a file")
        if path != young:
            os.utime(path, (1_000_000_000, 1_000_000_000))
    assert api.run(m, report=False).exit_code == 0
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in (*others, young))
    # a writer that runs still (its file written since it started), with any age allowed: left; the young one,
    # its writer gone, is removed now
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        writing = out / f".report.html.{alive.pid}.{tid}.tmp"
        writing.write_bytes(b"part of a file")
        monkeypatch.setattr(resume, "STALE_TEMP_AGE", -1.0)
        assert api.run(m, report=False).exit_code == 0
        assert writing.exists() and not young.exists()
    finally:
        alive.kill()
        alive.wait()
