"""A command started in a working folder that was removed since (a cleaned temporary folder, a re-cloned checkout,
`git worktree remove`): the paths it prints are absolute, and a finished run ends as it ended, not with "No such
file or directory" and exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from execkit import write_manifest


def _in_removed_folder(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`gridrun args`, started in a folder removed before it starts."""
    gone = tmp_path / "gone"
    gone.mkdir(exist_ok=True)
    code = ("import os, runpy, sys; os.chdir(sys.argv[1]); os.rmdir(sys.argv[1]); sys.argv = ['gridrun', *sys.argv[2:]]; "
            "runpy.run_module('runner.cli', run_name='__main__')")
    return subprocess.run([sys.executable, "-c", code, str(gone), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"}, check=False)


@pytest.mark.timeout(240)
def test_a_run_started_in_a_removed_folder_ends_done_naming_its_files_absolute(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    out = tmp_path / "outputs" / "t"
    run = _in_removed_folder(tmp_path, "run", str(m))
    assert run.returncode == 0, run.stderr
    assert "No such file" not in run.stderr and f"report: {out / 'report.html'}" in run.stdout, run.stdout
    assert f"videos: {out}" in run.stdout, run.stdout
    again = _in_removed_folder(tmp_path, "run", str(m), "--force", "--json")
    end = json.loads(again.stdout.splitlines()[-1])
    assert (end["status"], end["exit_code"], again.returncode) == ("done", 0, 0), again.stdout + again.stderr
    for command, said in ((["report"], f"report: {out / 'report.html'}"), (["export", "--format", "csv"],
                                                                              str(out / "results.csv")),
                          (["plan"], f"outputs: {out}")):
        done = _in_removed_folder(tmp_path, *command, str(m))
        assert done.returncode == 0 and said in done.stdout, (command, done.stdout, done.stderr)


@pytest.mark.timeout(240)
def test_a_relative_path_given_in_a_removed_folder_is_refused_saying_the_folder_was_removed(tmp_path: Path) -> None:
    """No relative path can be found from a removed folder (`..` neither): each command given one says that the
    working folder was removed and to cd to an existing one (exit 2, nothing sent), not "No such file or directory"
    (exit 1), nor `init`'s "mkdir -p ." first."""
    (tmp_path / "proj").mkdir()
    write_manifest(tmp_path / "proj", n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    said = "the current folder was removed since this shell entered it: cd to an existing folder"
    for command in (["init", "x.yaml"], ["init"], ["run", "../proj/t.yaml"], ["validate", "t.yaml"],
                    ["plan", "../proj/t.yaml"], ["status", "../proj/t.yaml"], ["status"], ["matrix", "../proj/t.yaml"],
                    ["retry", "../proj/t.yaml"], ["cancel", "../proj/t.yaml"], ["report", "../proj/t.yaml"],
                    ["export", "../proj/t.yaml"], ["status", "--state", ".gridrun"]):
        done = _in_removed_folder(tmp_path, *command)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert said in done.stderr.lower() and "No such file" not in done.stderr, (command, done.stderr)
        if command[1:]:
            assert f"error: {command[-1]}: " in done.stderr, (command, done.stderr)
    assert not (tmp_path / "proj" / ".gridrun").exists()  # nothing recorded, nothing sent
    run = _in_removed_folder(tmp_path, "run", "--json", "../proj/t.yaml")
    end = json.loads(run.stdout.splitlines()[-1])
    assert (end["event"], end["exit_code"], run.returncode) == ("end", 2, 2) and said in end["errors"][0], run.stdout
    plan = json.loads(_in_removed_folder(tmp_path, "plan", "--json", "../proj/t.yaml").stdout)
    assert plan["exit_code"] == 2 and said in plan["errors"][0], plan
    assert _in_removed_folder(tmp_path, "init", "-").returncode == 0  # standard output: no folder needed
