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

    real = os.statvfs
    state = str(tmp_path / ".gridrun")

    def full(path: Any) -> Any:  # the disk of the state folder full; the others as they are
        if os.fspath(path).startswith(state):
            return SimpleNamespace(f_bavail=0, f_frsize=4096, f_blocks=100, f_bfree=0, f_files=10, f_favail=5)
        return real(path)

    monkeypatch.setattr(os, "statvfs", full)
    assert main(["status", str(manifest)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert f"the disk holding {state} has 0 bytes free: likely what stopped it" in said, said
    assert "free space there, then `gridrun run` resumes it" in said, said
