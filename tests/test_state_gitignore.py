"""A state folder is kept out of version control: a clone sharing its key salt would share its resends' keys."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from execkit import ONE_JOB_MANIFEST as MANIFEST

from runner.cli import main


def run(capsys: pytest.CaptureFixture[str], manifest: Path) -> None:
    code = main(["run", str(manifest), "--no-report"])
    capsys.readouterr()
    assert code == 0


def manifest(tmp_path: Path, extra: str = "") -> Path:
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST + extra, encoding="utf-8")
    return m


def test_a_run_writes_a_gitignore_into_the_state_folder_it_makes(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, manifest(tmp_path))
    lines = (tmp_path / ".gridrun" / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "*" in lines


def test_an_existing_gridrun_folder_without_one_gets_it_on_the_next_run(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    m = manifest(tmp_path)
    run(capsys, m)
    (tmp_path / ".gridrun" / ".gitignore").unlink()  # a state an earlier gridrun made
    main(["plan", str(m)])  # reads only
    capsys.readouterr()
    assert not (tmp_path / ".gridrun" / ".gitignore").exists()
    run(capsys, m)
    assert "*" in (tmp_path / ".gridrun" / ".gitignore").read_text(encoding="utf-8").splitlines()
    (tmp_path / ".gridrun" / ".gitignore").write_text("state.db\n", encoding="utf-8")  # one of the user's: kept
    run(capsys, m)
    assert (tmp_path / ".gridrun" / ".gitignore").read_text(encoding="utf-8") == "state.db\n"


def test_a_state_dir_gridrun_makes_gets_one_an_existing_folder_of_another_name_one_of_its_own_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, manifest(tmp_path, "state_dir: states/wk\n"))
    assert "*" in (tmp_path / "states" / "wk" / ".gitignore").read_text(encoding="utf-8").splitlines()
    other = tmp_path / "other"
    (other / "notes").mkdir(parents=True)
    (other / "notes" / "todo.txt").write_text("a folder of the user's\n", encoding="utf-8")
    run(capsys, manifest(other, "state_dir: notes\n"))  # a folder that was there: perhaps not only the state's
    lines = (other / "notes" / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "state.db" in lines and "*" not in lines


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_add_all_commits_no_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, manifest(tmp_path))
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    staged = subprocess.run([*git, "diff", "--cached", "--name-only"], check=True, capture_output=True,
                            text=True).stdout.split()
    assert "m.yaml" in staged
    assert not [p for p in staged if p.startswith(".gridrun/")], staged
