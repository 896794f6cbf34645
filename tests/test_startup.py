"""What a command imports before it does anything: a command that needs no manifest, no state and no request
(`--help`, `--version`, a command line it refuses) loads none of the library, nor the packages behind it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The console script, its modules written to standard error as it ends (argparse's exit, for these).
CHILD = """\
import atexit, json, sys
atexit.register(lambda: sys.stderr.write(json.dumps(sorted(sys.modules))))
sys.argv[0] = "gridrun"
from runner.entry import entry
entry()
"""

# Not needed to read a command line or say it is wrong.
UNNEEDED = ("runner.api", "runner.manifest", "runner.plan", "runner.state", "runner.executor", "runner.report",
            "runner.providers", "jsonschema", "referencing", "yaml", "httpx", "anyio", "asyncio", "jinja2")


def _imported(args: list[str], cwd: Path) -> set[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          check=False, env=env)
    return set(json.loads(done.stderr[done.stderr.index("[\""):]))


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["run", "--help"], ["rnu", "m.yaml"]],
                         ids=["help", "version", "run-help", "usage-error"])
def test_a_command_line_alone_imports_none_of_the_library(tmp_path: Path, args: list[str]) -> None:
    imported = _imported(args, tmp_path)
    assert "runner.cli" in imported
    loaded = sorted(m for m in imported if any(m == u or m.startswith(u + ".") for u in UNNEEDED))
    assert loaded == [], loaded
