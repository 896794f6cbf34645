"""The command's standard streams: closed by the launcher, full, or read no more."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from execkit import write_manifest

from runner import api


def _sh(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`line` run by sh, "$GR" the `gridrun` command; its own output captured where it leaves it open."""
    return subprocess.run(["sh", "-c", line], check=False, capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "GR": f"{sys.executable} -m runner.cli"})


def test_a_closed_standard_output_or_error_leaves_the_commands_own_exit_code(tmp_path: Path) -> None:
    """`>&-`, `2>&-` (a cron job's, a service's): the command does its work and exits with its own code, no
    traceback; a run's videos and state are as with the streams open."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    for closing in (">&-", "2>&-", ">&- 2>&-"):
        done = _sh(f"$GR validate {m} {closing}", tmp_path)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (closing, done)
    done = _sh(f"$GR run {m} --no-report >&- 2>err.txt", tmp_path)
    err = (tmp_path / "err.txt").read_text()
    assert done.returncode == 0 and "Traceback" not in err, (done, err)
    assert api.status(m).counts["done"] == 1
    for closing in (">&-", "2>&-", ">&- 2>&-"):
        done = _sh(f"$GR run {m} --json --no-report {closing}", tmp_path)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (closing, done)
