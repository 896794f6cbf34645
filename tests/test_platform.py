"""gridrun runs on Linux and macOS: elsewhere (Windows) every command refuses to start with one line, exit 2,
before anything is imported that would fail there or act otherwise (its lock, its signals, its liveness test)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What Windows' Python lacks that gridrun uses: os.name "nt", no fcntl, no pthread_sigmask.
AS_ON_WINDOWS = ("import os, signal, sys; os.name = 'nt'; sys.platform = 'win32'; sys.modules['fcntl'] = None; "
                 "del signal.pthread_sigmask; ")


@pytest.mark.parametrize("command", [
    ("from runner.entry import entry; sys.argv[0] = 'gridrun'; entry()", ["validate", "demo.yaml"]),
    ("from runner.entry import entry; sys.argv[0] = 'gridrun'; entry()", ["sim", "serve", "--port", "0"]),
    ("import runpy; sys.argv[0] = 'x'; runpy.run_module('runner.sim', run_name='__main__')", ["serve", "--port", "0"]),
])
def test_on_windows_every_command_refuses_with_one_line(tmp_path: Path, command: tuple[str, list[str]]) -> None:
    code, args = command
    (tmp_path / "demo.yaml").write_text((ROOT / "manifests" / "demo.yaml").read_text(encoding="utf-8"),
                                        encoding="utf-8")
    # The package is found on the path, not by an editable install's finder: that finder builds a pathlib.Path,
    # which on a faked os.name is a WindowsPath that cannot be made here (a real Windows makes it).
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", AS_ON_WINDOWS + code, *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False, env=env)
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1, done.stderr
    assert "runs on Linux and macOS only, not on win32" in done.stderr and "WSL" in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.yaml"]  # nothing written


def test_the_package_and_readme_say_linux_and_macos() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert {"Operating System :: POSIX :: Linux", "Operating System :: MacOS"} <= set(meta["classifiers"])
    setup = (ROOT / "README.md").read_text(encoding="utf-8").split("## Set up", 1)[1].split("\n## ", 1)[0]
    assert "runs on Linux and macOS" in setup
