"""Links in the output folder: a folder on a job's path that is a link leading out of the output folder, or a
link in place of gridrun's own `.runs/`, is refused before anything is sent; links that stay inside, and an
output folder that is itself (or sits under) a link, are followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from execkit import write_manifest

from runner import api
from runner.cli import main
from runner.errors import ManifestError


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_job_folder_linked_out_of_the_output_folder_is_refused_by_plan_validate_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = write_manifest(tmp_path, n_seeds=1)
    out = tmp_path / "outputs" / "t"
    out.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "anime").symlink_to(elsewhere)
    for command in ("plan", "validate", "run"):
        code, _, err = _cli(capsys, command, str(m))
        assert code == 2, (command, err)
        assert (f"output: job 'style=anime,seed=1' would write anime/seed-1.mp4 through anime/, a link to "
                f"{elsewhere.resolve()}, outside the output folder {out.resolve()}; replace the link with a folder, "
                "or point outputs_dir: at the place it leads to") in err, (command, err)
        assert "Traceback" not in err
    assert list(elsewhere.iterdir()) == []
    assert not (out / "clay").exists() and not (out / ".runs").exists()  # nothing was run


def test_a_link_two_levels_down_leading_out_is_refused(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1, extra={"output": "{{ style }}/deep/seed-{{ seed }}.mp4"})
    out = tmp_path / "outputs" / "t"
    (out / "anime").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "anime" / "deep").symlink_to(elsewhere)
    with pytest.raises(ManifestError, match=r"through anime/deep/, a link to "):
        api.plan(m)


def test_gridruns_own_runs_folder_may_not_be_a_link(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = write_manifest(tmp_path, n_seeds=1)
    out = tmp_path / "outputs" / "t"
    out.mkdir(parents=True)
    inside = out / "kept"  # a link to a folder inside the output folder is refused too
    inside.mkdir()
    (out / ".runs").symlink_to(inside)
    for command in ("plan", "run"):
        code, _, err = _cli(capsys, command, str(m))
        assert code == 2, (command, err)
        assert (f"name: {out.resolve()}/.runs is a link to {inside.resolve()}: gridrun keeps its own files there "
                "(each run's manifest copy, the folder's lock, the files runs replaced) and writes none through a "
                "link; replace the link with a folder (move what it holds into it)") in err, (command, err)
    assert list(inside.iterdir()) == []
    (out / ".runs").unlink()
    (out / ".runs").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / ".runs" / "superseded").symlink_to(elsewhere)
    code, _, err = _cli(capsys, "run", str(m))
    assert code == 2 and f"{out.resolve()}/.runs/superseded is a link to {elsewhere.resolve()}" in err, err
    assert list(elsewhere.iterdir()) == []


def test_a_runs_folder_made_a_link_after_the_plan_is_refused_before_the_run_writes_there(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1)
    p = api.plan(m)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    p.outputs_dir.mkdir(parents=True)
    (p.outputs_dir / ".runs").symlink_to(elsewhere)
    with pytest.raises(ManifestError, match=r"/\.runs is a link to "):
        api.run(p)
    assert list(elsewhere.iterdir()) == []


def test_a_link_that_stays_in_the_output_folder_is_followed(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1)
    out = tmp_path / "outputs" / "t"
    (out / "takes" / "anime").mkdir(parents=True)
    (out / "anime").symlink_to(Path("takes") / "anime")  # relative, as a repository keeps it
    result = api.run(m)
    assert result.exit_code == 0
    assert (out / "takes" / "anime" / "seed-1.mp4").is_file()
    assert (out / "clay" / "seed-1.mp4").is_file()


def test_an_output_folder_that_is_a_link_or_under_one_is_used_where_it_leads(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    (disk / "videos").mkdir(parents=True)
    (tmp_path / "linked").symlink_to(disk / "videos")
    (tmp_path / "parent").symlink_to(disk)
    for folder, name, real in (("linked", "a", disk / "videos"), ("parent/more", "b", disk / "more")):
        m = write_manifest(tmp_path, n_seeds=1, name=name, extra={"outputs_dir": folder, "state_dir": f"s{name}"})
        result = api.run(m)
        assert result.exit_code == 0, folder
        assert (real / "anime" / "seed-1.mp4").is_file()
        assert (real / ".runs" / "run-1.yaml").is_file()
        assert os.path.realpath(result.outputs_dir) == str(real.resolve())


def test_a_link_at_a_videos_part_file_is_replaced_never_written_through(tmp_path: Path) -> None:
    """A link a shared repository committed at a video's `.part` leads to a file of the user's: the download
    removes the link and writes a file of its own there, the file it led to left as it was."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    thesis = tmp_path / "thesis.txt"
    thesis.write_text("my thesis, 200 pages\n")
    job = tmp_path / "outputs" / "t" / "anime"
    job.mkdir(parents=True)
    (job / "seed-1.mp4.part").symlink_to(Path("..") / ".." / ".." / "thesis.txt")
    result = api.run(m)
    assert result.exit_code == 0
    assert thesis.read_text() == "my thesis, 200 pages\n"
    video = job / "seed-1.mp4"
    assert not video.is_symlink() and video.is_file() and video.read_bytes()[4:8] == b"ftyp"
    assert not os.path.lexists(job / "seed-1.mp4.part")


def test_a_link_at_the_output_folders_lock_is_refused_by_plan_validate_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = write_manifest(tmp_path, n_seeds=1)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    runs = tmp_path / "outputs" / "t" / ".runs"
    runs.mkdir(parents=True)
    (runs / "lock").symlink_to(Path("..") / ".." / ".." / "notes.txt")
    for command in ("plan", "validate", "run"):
        code, _, err = _cli(capsys, command, str(m))
        # a folder's file gridrun will not write through, as for the state folder's lock: the manifest is valid
        assert code == 1, (command, err)
        assert (f"{runs.resolve()}/lock is a link to {notes.resolve()}: gridrun writes the output folder's lock "
                "there and never through a link; remove the link") in err, (command, err)
        assert "Traceback" not in err
    assert notes.read_text() == "my notes\n"
    assert not (tmp_path / "outputs" / "t" / "anime").exists()  # nothing was run


def test_a_link_at_the_state_folders_lock_is_refused_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = write_manifest(tmp_path, n_seeds=1)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    (tmp_path / ".gridrun").mkdir()
    (tmp_path / ".gridrun" / "lock").symlink_to(Path("..") / "notes.txt")
    code, _, err = _cli(capsys, "run", str(m))
    assert code == 1, err
    assert (f"{tmp_path / '.gridrun' / 'lock'} is a link to {notes.resolve()}: gridrun writes the runner lock there "
            "and never through a link; remove the link") in err, err
    assert "Traceback" not in err
    assert notes.read_text() == "my notes\n"
    assert not (tmp_path / "outputs" / "t" / "anime").exists()


def test_cancel_refusing_a_link_at_the_state_folders_lock_says_to_cancel_once_it_is_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No run holds the state when its lock is a link: `cancel` says to remove the link, then cancel, with no word
    of a run to stop first (a second Ctrl-C in its terminal), and exits 1, as `run` does."""
    from runner.executor import RunOptions

    m = write_manifest(tmp_path, n_seeds=1, sim={"render_time": 600.0, "jitter": 0.0})
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    # left rendering at its timeout, for `cancel` to stop
    assert api.run(m, options=RunOptions(timeout=0.5, poll_interval=0.05), report=False).exit_code == 4
    lock = tmp_path / ".gridrun" / "lock"
    lock.unlink(missing_ok=True)
    lock.symlink_to(Path("..") / "notes.txt")
    code, _, err = _cli(capsys, "cancel", str(m))
    assert code == 1, err
    assert (f"{lock} is a link to {notes.resolve()}: gridrun writes the runner lock there and never through a link; "
            "remove the link, then cancel") in err, err
    assert "Ctrl-C" not in err and "Traceback" not in err, err
    assert notes.read_text() == "my notes\n"


def test_a_link_under_the_superseded_folder_is_refused_before_anything_is_kept_through_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job's folder under `.runs/superseded/` is named by its hash, which the manifest tells, and `files/` is
    fixed: a link committed at either would have a run keep the user's file (a clip in a video's place, a page of
    theirs at report.html) wherever it leads."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    job = api.plan(m).jobs[0]
    out = tmp_path / "outputs" / "t"
    (out / "anime").mkdir(parents=True)
    (out / "anime" / "seed-1.mp4").write_bytes(b"my own clip")
    (out / "report.html").write_text("<p>my page</p>")
    superseded = out / ".runs" / "superseded"
    superseded.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in (job.hash[:16], "files"):
        (superseded / name).symlink_to(Path("..") / ".." / ".." / ".." / "elsewhere")
        for command in ("plan", "validate", "run"):
            code, _, err = _cli(capsys, command, str(m))
            assert code == 2, (command, err)
            assert (f"{superseded.resolve()}/{name} is a link to {elsewhere.resolve()}: gridrun keeps the files runs "
                    "replaced under .runs/superseded/ and writes none through a link") in err, (command, err)
            assert "Traceback" not in err
        (superseded / name).unlink()
    assert list(elsewhere.iterdir()) == []
    assert (out / "anime" / "seed-1.mp4").read_bytes() == b"my own clip"


def test_a_link_among_the_folders_of_kept_files_and_manifests_is_found_as_one_under_superseded(tmp_path: Path) -> None:
    from runner.outputs import own_folder_link, superseded_dir

    out = tmp_path / "out"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (superseded_dir(out) / "0123456789abcdef").mkdir(parents=True)
    assert own_folder_link(out) is None
    for name in ("files", "manifests"):
        digest = superseded_dir(out) / name / "fedcba9876543210"
        digest.parent.mkdir()
        digest.symlink_to(elsewhere)
        assert own_folder_link(out) == (str(digest), str(elsewhere.resolve()), "kept")
        digest.unlink()
        assert own_folder_link(out) is None
        (superseded_dir(out) / name).rmdir()
        (superseded_dir(out) / name).symlink_to(elsewhere)  # the folder itself
        assert own_folder_link(out) is not None
        (superseded_dir(out) / name).unlink()


def test_a_take_is_not_kept_through_a_link_made_under_the_superseded_folder(tmp_path: Path) -> None:
    from runner.outputs import keep_file, superseded_dir

    out = tmp_path / "out"
    video = out / "a.mp4"
    out.mkdir()
    video.write_bytes(b"my own clip")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    superseded_dir(out).mkdir(parents=True)
    (superseded_dir(out) / "0123456789abcdef").symlink_to(elsewhere)
    with pytest.raises(OSError, match=r"0123456789abcdef is a link to .*: gridrun keeps the files runs replaced"):
        keep_file(video, superseded_dir(out) / "0123456789abcdef", unless_recorded=False, poster=False, once=True)
    assert list(elsewhere.iterdir()) == []
    assert video.read_bytes() == b"my own clip"
