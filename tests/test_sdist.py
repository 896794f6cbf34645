"""The source distribution reproduces the project, not only the package: the example manifests with their assets,
the tests with their helpers and data (its own `pytest` runs as a checkout's does), the README's picture, the
licence."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _listed(*args: str) -> list[str]:
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", *args], capture_output=True, timeout=60,
                            check=True).stdout
    return [name for name in listed.decode().split("\0") if name and (ROOT / name).is_file()]


def test_the_sdist_carries_the_examples_the_tests_and_their_data(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: git lists the files the source distribution must hold")
    # built from a copy of the tree as git sees it (files ignored left out): nothing a test run left behind counts
    src = tmp_path / "src"
    for name in _listed("--cached", "--others", "--exclude-standard"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    (src / "tests" / "__pycache__").mkdir()  # as a test run in the tree leaves it
    (src / "tests" / "__pycache__" / "execkit.cpython-311.pyc").write_bytes(b"")
    # the README's demo, run in the checkout first as its Set up says: its state, lock, videos and report stay
    # out of the source distribution, as .gitignore keeps them out of git (the sdist's demo would be all cached)
    demo = subprocess.run([sys.executable, "-c", "from runner.entry import entry; entry()", "run",
                           "manifests/demo.yaml"], cwd=src, capture_output=True, text=True, timeout=300, check=False)
    assert demo.returncode == 0, demo.stderr
    assert (src / "manifests" / ".gridrun" / "state.db").is_file()
    assert (src / "manifests" / "outputs" / "demo" / ".runs" / "lock").is_file()
    for left in ("tests/.gridrun/state.db", "tests/data/outputs/t/a.mp4", "tests/.pytest_cache/v/x",
                 "tests/.hypothesis/examples/x", "bench/outputs/b/a.mp4", ".ruff_cache/x"):
        (src / left).parent.mkdir(parents=True, exist_ok=True)
        (src / left).write_bytes(b"")
    code = "import sys\nfrom setuptools import build_meta\nprint(build_meta.build_sdist(sys.argv[1]))\n"
    built = subprocess.run([sys.executable, "-c", code, str(tmp_path / "dist")], cwd=src, capture_output=True,
                           text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stderr
    sdist = tmp_path / "dist" / built.stdout.split()[-1]
    with tarfile.open(sdist) as tar:
        names = {member.name.partition("/")[2] for member in tar.getmembers()}
        files = {member.name.partition("/")[2] for member in tar.getmembers() if member.isfile()}

    wanted = set(_listed("manifests", "tests", "docs", "bench", "runner", "schemas", "reports"))
    wanted |= {"LICENSE", "README.md", "pyproject.toml", ".ci/run"}
    assert "manifests/assets/fox.png" in wanted and "tests/execkit.py" in wanted and "docs/report.png" in wanted
    assert sorted(wanted - names) == []
    assert not [name for name in names if "__pycache__" in name or name.endswith((".pyc", ".pyo"))]
    # nothing else but MANIFEST.in and the metadata setuptools writes
    made = {"MANIFEST.in", "PKG-INFO", "setup.cfg"}
    assert sorted(n for n in files - wanted - made if not n.startswith("gridrun.egg-info/")) == []
