"""A project kept in git: its output folder committed, a fresh clone, a state tracked by mistake, a manifest moved
or checked out in a linked worktree. What is this machine's own stays out of the repository, and what a clone
cannot have is said, with what it costs, before anything is paid again."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from execkit import ONE_JOB_MANIFEST

from runner.cli import main

TWO_JOBS = (ONE_JOB_MANIFEST.replace('output: "fox.mp4"\n', 'matrix:\n  a: [1, 2]\noutput: "fox-{{ a }}.mp4"\n')
            .replace('prompt: "a fox"', 'prompt: "a fox {{ a }}"'))
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def project(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str = "", *, report: bool = False) -> Path:
    """A manifest of two jobs, run once."""
    m = tmp_path / "m.yaml"
    m.write_text(TWO_JOBS + extra, encoding="utf-8")
    code, _, err = run_cli(capsys, "run", str(m), *(() if report else ("--no-report",)))
    assert code == 0, err
    return m


def git(root: Path, *argv: str) -> str:
    return subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *argv],
                          check=True, capture_output=True, text=True).stdout


# -- the output folder's own files -------------------------------------------------------------------------------

def test_a_run_keeps_the_output_folders_lock_and_stamp_out_of_version_control(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = project(tmp_path, capsys)
    runs = tmp_path / "outputs" / "wk" / ".runs"
    lines = (runs / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "lock" in lines and "*.stamp.js" in lines
    assert not [line for line in lines if line.startswith("run-") or line == "*"]  # the manifest copies are kept
    (runs / ".gitignore").unlink()  # a .runs/ an earlier gridrun made
    run_cli(capsys, "run", str(m), "--no-report")
    assert "lock" in (runs / ".gitignore").read_text(encoding="utf-8").splitlines()
    (runs / ".gitignore").write_text("!lock\n", encoding="utf-8")  # the user's: kept
    run_cli(capsys, "run", str(m), "--no-report")
    assert (runs / ".gitignore").read_text(encoding="utf-8") == "!lock\n"


@needs_git
def test_git_add_of_the_output_folder_commits_the_videos_not_the_lock(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project(tmp_path, capsys, report=True)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    staged = git(tmp_path, "diff", "--cached", "--name-only").split()
    assert "outputs/wk/fox-1.mp4" in staged and "outputs/wk/.runs/run-1.yaml" in staged, staged
    assert "outputs/wk/.runs/lock" not in staged and "outputs/wk/.runs/report.html.stamp.js" not in staged, staged


# -- a state under version control --------------------------------------------------------------------------------

def test_an_existing_state_dir_folder_gets_a_gitignore_of_gridruns_files_only(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "notes.txt").write_text("the team's notes\n", encoding="utf-8")
    project(tmp_path, capsys, "state_dir: state\n")
    lines = (tmp_path / "state" / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert {"state.db", "lock", "sim-world.jsonl", "digests.json"} <= set(lines)
    assert "*" not in lines and "notes.txt" not in lines


@needs_git
def test_git_add_all_commits_the_users_files_in_a_state_dir_folder_not_the_state(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / ".gitkeep").write_text("", encoding="utf-8")
    (tmp_path / "state" / "notes.txt").write_text("the team's notes\n", encoding="utf-8")
    project(tmp_path, capsys, "state_dir: state\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    staged = git(tmp_path, "diff", "--cached", "--name-only").split()
    assert "state/notes.txt" in staged and "state/.gitkeep" in staged, staged
    assert not {"state/state.db", "state/lock", "state/sim-world.jsonl"} & set(staged), staged


# -- a fresh clone ----------------------------------------------------------------------------------------------

@needs_git
def test_a_fresh_clone_at_the_same_path_is_told_its_lock_came_with_the_repository(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock committed (by a gridrun before the `.gitignore`, or `git add -f`): the state it names is another
    checkout's. Still refused (it could be this one's, lost), but the choice is spelled out, with its cost."""
    m = project(tmp_path, capsys)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "add", "-f", "outputs/wk/.runs/lock")
    shutil.rmtree(tmp_path / ".gridrun")  # as a clone has it: no state
    monkeypatch.chdir(tmp_path.parent)
    code, _, err = run_cli(capsys, "plan", str(m))
    said = " ".join(err.split())
    assert code != 0 and "the state file is not there" in said, err
    assert "git tracks lock" in said and "a fresh clone of a repository that committed its output folder" in said
    assert "every job is sent and paid for again, the 2 videos" in said
    assert not (tmp_path / ".gridrun" / "state.db").exists()
    assert f"`git -C {tmp_path.resolve()} rm --cached outputs/wk/.runs/lock`" in said, err  # run from outside it
    _untracks_as_said(said.split("stop committing it: `")[1].split("`")[0], tmp_path, "outputs/wk/.runs/lock")


def test_a_lock_written_on_another_machine_for_a_state_never_here_is_told_as_a_clone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = project(tmp_path, capsys)
    shutil.rmtree(tmp_path / ".gridrun")
    lock = tmp_path / "outputs" / "wk" / ".runs" / "lock"
    doc = json.loads(lock.read_text(encoding="utf-8"))
    lock.write_text(json.dumps({**doc, "host": "render-box-7"}), encoding="utf-8")
    code, _, err = run_cli(capsys, "plan", str(m))
    said = " ".join(err.split())
    assert code != 0 and "written on another machine (render-box-7)" in said and "fresh clone" in said, err


def test_a_state_lost_here_is_still_refused_as_lost(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The lock this machine's, not tracked: a disk not mounted, a folder wiped, as it was."""
    m = project(tmp_path, capsys)
    shutil.rmtree(tmp_path / ".gridrun")
    code, _, err = run_cli(capsys, "run", str(m), "--no-report")
    said = " ".join(err.split())
    assert code != 0 and "its disk not mounted" in said and "fresh clone" not in said, err


def test_a_plan_with_no_state_counts_the_videos_made_for_the_very_same_request(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A clone elsewhere: the committed videos' sidecars record these jobs' hashes; the plan says how many, and
    that a run pays for them again. They are not taken as done."""
    m = project(tmp_path, capsys)
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy(m, clone / "m.yaml")
    shutil.copytree(tmp_path / "outputs", clone / "outputs")
    (clone / "outputs" / "wk" / ".runs" / "lock").unlink()  # ignored by git: not in a clone
    code, _, err = run_cli(capsys, "plan", str(clone / "m.yaml"))
    said = " ".join(err.split())
    assert ("2 of these jobs have a video of gridrun's in" in said and "pays for them again ($" in said
            and "keeping those videos under .runs/superseded/; to use them, run where their state is" in said), err
    (clone / "outputs" / "wk" / "fox-2.json").write_text(
        (clone / "outputs" / "wk" / "fox-2.json").read_text(encoding="utf-8").replace('"hash": "', '"hash": "0'),
        encoding="utf-8")  # another request's video: not counted
    code, out, err = run_cli(capsys, "plan", str(clone / "m.yaml"))
    said = " ".join(err.split())
    assert code == 0, err
    assert ("1 of these jobs has a video of gridrun's in" in said and "made for the very same request" in said
            and "a run here sends and pays for it again ($" in said
            and "keeping that video under .runs/superseded/; to use it, run where its state is" in said), err
    code, out, _ = run_cli(capsys, "plan", str(clone / "m.yaml"), "--json")
    assert any("made for the very same request" in w for w in json.loads(out)["warnings"])
    code, out, err = run_cli(capsys, "run", str(clone / "m.yaml"), "--no-report", "--json")
    assert code == 0 and "made for the very same request" in err


# -- a state git tracks ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("with_git", [True, False])
def test_run_and_plan_force_warn_of_a_state_git_tracks(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, with_git: bool) -> None:
    """Read with `git ls-files`, or, git not installed, from the index file itself."""
    if shutil.which("git") is None:
        pytest.skip("needs git to make the repository")
    m = project(tmp_path, capsys)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "m.yaml")
    said = "`git rm -r --cached"
    code, _, err = run_cli(capsys, "plan", str(m), "--force")
    assert code == 0 and said not in err, err  # not tracked: nothing said
    git(tmp_path, "add", "-f", ".gridrun")
    if not with_git:
        monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "plan", str(m))
    assert code == 0 and said not in err, err  # a plan sends nothing
    code, _, err = run_cli(capsys, "plan", str(m), "--force")
    assert code == 0 and "git tracks the state file" in err and f"{said} .gridrun`" in " ".join(err.split()), err
    code, out, _ = run_cli(capsys, "plan", str(m), "--force", "--json")
    assert any("git tracks the state file" in w for w in json.loads(out)["warnings"])
    code, _, err = run_cli(capsys, "run", str(m), "--no-report")
    assert code == 0 and "git tracks the state file" in err, err


def _untracks_as_said(command: str, root: Path, path: str) -> None:
    """The command a warning printed, run where it was printed (the current folder), untracks `path` of `root`."""
    assert path in git(root, "ls-files")
    subprocess.run(shlex.split(command), check=True, capture_output=True, text=True)
    assert path not in git(root, "ls-files")
    assert (root / path).exists()


@needs_git
def test_the_command_that_stops_git_tracking_the_state_works_from_outside_the_work_tree(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Planned from a folder outside the repository, the warning names the work tree (`git -C`): git takes no
    path outside the tree it runs in. From inside, the path from the current folder, as before."""
    repo = tmp_path / "repo"
    repo.mkdir()
    m = project(repo, capsys)
    git(repo, "init", "-q")
    git(repo, "add", "-f", ".gridrun")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    code, _, err = run_cli(capsys, "plan", str(m), "--force")
    said = " ".join(err.split())
    assert code == 0 and f"`git -C {repo.resolve()} rm -r --cached .gridrun`" in said, err
    _untracks_as_said(said.split("stop committing it: `")[1].split("`")[0], repo, ".gridrun/state.db")
    git(repo, "add", "-f", ".gridrun")
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")
    code, _, err = run_cli(capsys, "plan", str(m), "--force")
    assert code == 0 and "`git rm -r --cached ../.gridrun`" in " ".join(err.split()), err


def test_no_git_work_tree_nothing_is_tracked(tmp_path: Path) -> None:
    from runner.gittrack import tracked

    (tmp_path / "f").write_text("x", encoding="utf-8")
    assert tracked(tmp_path / "f") in (False, None)  # a folder above tmp could be a work tree of the machine's
    (tmp_path / ".git").mkdir()
    assert tracked(tmp_path / "f") in (False, None)


# -- a report rebuilt ---------------------------------------------------------------------------------------------

def test_a_report_rebuilt_from_an_unchanged_state_is_the_same_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = project(tmp_path, capsys, report=True)
    page = tmp_path / "outputs" / "wk" / "report.html"
    stamp = tmp_path / "outputs" / "wk" / ".runs" / "report.html.stamp.js"
    was = page.read_bytes(), stamp.read_bytes()
    code, _, err = run_cli(capsys, "report", str(m))
    assert code == 0, err
    assert (page.read_bytes(), stamp.read_bytes()) == was
    code, _, err = run_cli(capsys, "run", str(m))  # a new run: a new page
    assert code == 0 and page.read_bytes() != was[0] and stamp.read_bytes() != was[1]


# -- a manifest moved, a linked worktree ----------------------------------------------------------------------------

def test_a_manifest_in_a_linked_worktree_is_told_of_the_main_worktrees_state(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`git worktree add ../wt -b exp`: the worktree's `.git` file leads to the main one's repository, whose
    checkout holds the state of the manifest's runs (made here as git makes it: no git needed)."""
    main_tree = tmp_path / "repo"
    main_tree.mkdir()
    m = project(main_tree, capsys)
    (main_tree / ".git" / "worktrees" / "wt").mkdir(parents=True)
    (main_tree / ".git" / "worktrees" / "wt" / "commondir").write_text("../..\n", encoding="utf-8")
    wt = tmp_path / "wt"
    (wt / "shots").mkdir(parents=True)
    (wt / ".git").write_text(f"gitdir: {main_tree / '.git' / 'worktrees' / 'wt'}\n", encoding="utf-8")
    moved = wt / "shots" / "m.yaml"
    shutil.copy(m, moved)
    code, _, err = run_cli(capsys, "plan", str(moved))
    said = " ".join(err.split())
    assert code == 0 and f"but {main_tree.resolve() / '.gridrun'} holds the runs of 'wk'" in said, err
    assert "2 of these 2 jobs done there" in said
    assert ("set `state_dir: ../../repo/.gridrun` and `outputs_dir: ../../repo/outputs/wk` (where its videos are)"
            in said), err


def test_a_manifest_moved_three_folders_down_its_work_tree_is_told_of_the_state_at_its_root(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = project(tmp_path, capsys)
    (tmp_path / ".git").mkdir()  # the work tree's root
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    moved = m.rename(deep / "m.yaml")
    code, _, err = run_cli(capsys, "plan", str(moved))
    said = " ".join(err.split())
    assert code == 0 and "2 of these 2 jobs done there" in said and "`state_dir: ../../../.gridrun`" in said, err
    os.rename(tmp_path / ".git", tmp_path / "not-git")  # outside a work tree: only a few folders up
    (tmp_path / "a" / "b" / "c" / "d").mkdir()
    deeper = moved.rename(deep / "d" / "m.yaml")
    code, _, err = run_cli(capsys, "plan", str(deeper))
    assert code == 0 and "no state at" not in err, err


def test_another_manifest_of_the_same_name_down_the_work_tree_is_not_told_of_the_state_at_its_root(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A manifest four folders down that only shares `name:` with the root's, which ran and is there still: none
    of its jobs is done in the root's state, so nothing is said of that state; moved there instead, the root's
    manifest is told of it."""
    m = project(tmp_path, capsys)
    (tmp_path / ".git").mkdir()  # the work tree's root
    deep = tmp_path / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    other = deep / "m.yaml"
    other.write_text(m.read_text(encoding="utf-8").replace("a fox", "a whale"), encoding="utf-8")
    code, _, err = run_cli(capsys, "plan", str(other))
    assert code == 0 and "holds the runs of" not in err, err
    other.unlink()
    moved = m.rename(other)
    code, _, err = run_cli(capsys, "plan", str(moved))
    said = " ".join(err.split())
    assert code == 0 and "holds the runs of 'wk'" in said and "2 of these 2 jobs done there" in said, err


def test_a_report_rebuilt_after_another_manifest_of_the_state_ran_is_the_same_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two manifests of one folder share its state: a run of the other changes nothing of this one's runs and
    jobs, so this one's page, rebuilt, is the same file, stamp and all."""
    m = project(tmp_path, capsys, report=True)
    other = tmp_path / "other.yaml"
    other.write_text(TWO_JOBS.replace("name: wk", "name: other").replace("a fox", "a cat"), encoding="utf-8")
    assert "name: other" in other.read_text(encoding="utf-8")
    page = tmp_path / "outputs" / "wk" / "report.html"
    stamp = tmp_path / "outputs" / "wk" / ".runs" / "report.html.stamp.js"
    was = page.read_bytes(), stamp.read_bytes()
    code, _, err = run_cli(capsys, "run", str(other), "--no-report")
    assert code == 0, err
    code, _, err = run_cli(capsys, "report", str(m))
    assert code == 0, err
    assert (page.read_bytes(), stamp.read_bytes()) == was
