"""The event loop a run starts: uvloop's where it is installed, asyncio's own with `GRIDRUN_LOOP=asyncio`; a wrong
value refused before anything is planned, locked or sent."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from execkit import write_manifest

import runner
from runner.errors import UsageError

uvloop = pytest.importorskip("uvloop")


def _loops_seen(tmp_path: Path) -> tuple[int, set[str]]:
    """Run a small manifest, noting the class of the running loop at each progress call (made in the run's loop)."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0})
    seen: set[str] = set()

    def look(_: object) -> None:
        seen.add(type(asyncio.get_running_loop()).__module__)

    result = runner.run(m, report=False, on_progress=look)
    return result.exit_code, seen


def test_a_run_goes_on_uvloop_where_it_is_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRIDRUN_LOOP", raising=False)
    code, seen = _loops_seen(tmp_path)
    assert code == 0
    assert seen == {"uvloop"}


@pytest.mark.parametrize("value", ["asyncio", " AsyncIO "])
def test_gridrun_loop_asyncio_runs_on_asyncios_own_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("GRIDRUN_LOOP", value)
    code, seen = _loops_seen(tmp_path)
    assert code == 0
    assert seen and not any(module.startswith("uvloop") for module in seen)


def test_a_wrong_gridrun_loop_is_refused_before_a_run_is_recorded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDRUN_LOOP", "trio")
    m = write_manifest(tmp_path)
    with pytest.raises(UsageError, match="GRIDRUN_LOOP must be uvloop .* or asyncio, got 'trio'"):
        runner.run(m, report=False)
    with pytest.raises(UsageError, match="GRIDRUN_LOOP must be"):
        runner.cancel(m)
    assert not (tmp_path / ".gridrun").exists()


def test_gridrun_loop_uvloop_without_uvloop_says_how(tmp_path: Path) -> None:
    """Where uvloop does not import, the default falls back to asyncio's loop; asking for it by name is refused."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0})
    code = f"""
import sys, os
sys.modules["uvloop"] = None  # an import of it raises ImportError
import runner
from runner.errors import UsageError
os.environ.pop("GRIDRUN_LOOP", None)
print("default", runner.run({str(m)!r}, report=False).exit_code)
os.environ["GRIDRUN_LOOP"] = "uvloop"
try:
    runner.run({str(m)!r}, report=False)
except UsageError as e:
    print("refused", e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "default 0" in out
    assert "refused GRIDRUN_LOOP is uvloop, which is not installed here: `pip install uvloop`" in out


def test_the_cli_names_a_wrong_gridrun_loop_with_exit_2(tmp_path: Path) -> None:
    m = write_manifest(tmp_path)
    done = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m)], capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "GRIDRUN_LOOP": "bogus"})
    assert done.returncode == 2
    assert "GRIDRUN_LOOP must be uvloop (the default where it is installed) or asyncio, got 'bogus'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".gridrun").exists()



def test_gridrun_loop_asyncio_holds_where_a_program_made_uvloop_the_policys(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0})
    code = f"""
import asyncio, os, uvloop
asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # as uvloop.install() does
os.environ["GRIDRUN_LOOP"] = "asyncio"
import runner
seen = set()
runner.run({str(m)!r}, report=False, on_progress=lambda s: seen.add(type(asyncio.get_running_loop()).__module__))
print(sorted(seen))
"""
    out = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", code], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert "uvloop" not in out and "asyncio" in out, out
