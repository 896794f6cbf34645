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
