"""Every text file gridrun opens names its encoding: under `-X warn_default_encoding` with EncodingWarning made an
error (the usual check for code that depends on the locale), the first run of a project and a simulator keeping
a world work, where the locale's encoding was taken and the warning ended them as "a bug in gridrun"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from execkit import write_manifest

STRICT = [sys.executable, "-X", "warn_default_encoding", "-W", "error::EncodingWarning"]


@pytest.mark.timeout(240)
def test_a_first_run_names_the_encoding_of_every_text_file(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    env = {**os.environ, "PYTHONWARNINGS": "error::EncodingWarning", "COLUMNS": "200"}
    for command in (["run", m.name], ["report", m.name], ["export", m.name, "--format", "csv"]):
        done = subprocess.run([*STRICT, "-m", "runner.cli", *command], capture_output=True, text=True, cwd=tmp_path,
                              env=env, timeout=120, check=False)
        assert done.returncode == 0 and "EncodingWarning" not in done.stderr, (command, done.stderr)


def test_a_simulator_holding_a_world_names_its_encoding(tmp_path: Path) -> None:
    """`sim serve --world` holds its world's lock file and starts the world afresh (`World.begin`)."""
    code = ("import sys; from pathlib import Path; from runner.sim.serve import _hold; from runner.sim.world import World\n"
            "p = Path(sys.argv[1])\n"
            "with _hold(p):\n"
            "    w = World.open(p); w.begin(1.0); w.close()\n")
    done = subprocess.run([*STRICT, "-c", code, str(tmp_path / "w.jsonl")], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "w.jsonl").read_text(encoding="utf-8").startswith('{"t":"world"'), done.stderr
