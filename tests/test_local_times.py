"""Local times printed with their offset from UTC: across a DST fall-back, or read in another time zone, a
wall-clock time alone reads as another moment."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.cli import main
from runner.state import Holder, _outputs_locked_out

MANIFEST = """\
version: 1
name: wk
provider: sim
model: pixverse-v5.6
params:
  prompt: "a fox, take {{ take }}"
  quality: 360p
  duration: 5
matrix:
  take: [TAKE]
output: "fox-{{ take }}.mp4"
sim:
  render_time: 0.05
"""
BEFORE = 1793511003.0  # 2026-11-01 05:30:03 UTC: 01:30:03 EDT (-0400)
AFTER = 1793513402.0   # 2026-11-01 06:10:02 UTC: 01:10:02 EST (-0500), 40 min later


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    if time.strftime("%z", time.localtime(BEFORE)) != "-0400":
        pytest.skip("no time zone data for America/New_York")
    yield
    monkeypatch.undo()
    time.tzset()


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


@pytest.fixture
def two_runs_across_dst(tmp_path: Path, capsys: pytest.CaptureFixture[str], new_york: None) -> Path:
    m = tmp_path / "m.yaml"
    for take, started in ((1, BEFORE), (2, AFTER)):
        m.write_text(MANIFEST.replace("TAKE", str(take)), encoding="utf-8")
        assert cli(capsys, "run", str(m), "--no-report")[0] == 0
        with sqlite3.connect(tmp_path / ".gridrun" / "state.db") as db:
            db.execute("UPDATE runs SET started_at = ?, seen_at = ?, ended_at = ? WHERE id = ?",
                       (started, started + 1, started + 2, take))
    return m


def test_status_runs_gives_each_start_its_offset_across_dst(two_runs_across_dst: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    _, out = cli(capsys, "status", str(two_runs_across_dst), "--runs")
    assert "2026-11-01 01:10:02 -0500" in out
    assert "2026-11-01 01:30:03 -0400" in out
    _, out = cli(capsys, "status", str(two_runs_across_dst), "--runs", "--json")  # the moments, as they were
    assert {r["started_at"] for r in json.loads(out)} == {BEFORE, AFTER}


def test_status_runs_says_one_offset_once_in_its_header(two_runs_across_dst: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(two_runs_across_dst.parent / ".gridrun" / "state.db") as db:
        db.execute("UPDATE runs SET started_at = ? WHERE id = 1", (AFTER - 60,))
    _, out = cli(capsys, "status", str(two_runs_across_dst), "--runs")
    assert "started (-0500)" in out and "2026-11-01 01:09:02 " in out and "01:09:02 -0500" not in out


def test_status_gives_the_runs_start_its_offset(two_runs_across_dst: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    _, out = cli(capsys, "status", str(two_runs_across_dst))
    assert "started 2026-11-01 01:10:02 -0500" in out


def test_a_lock_holder_is_named_with_the_offset_of_its_start(new_york: None) -> None:
    held = Holder(123, "host", "2026-11-01 01:10:02", started=AFTER)
    assert held.process == "pid 123 on host since 2026-11-01 01:10:02 -0500"
    older = Holder(123, "host", "2026-11-01 01:10:02")  # an older gridrun's file: no moment, no offset
    assert older.process == "pid 123 on host since 2026-11-01 01:10:02"
    folder = _outputs_locked_out(Path("out"), {"pid": "1", "host": "h", "since": "2026-11-01 01:10:02",
                                               "started": str(AFTER), "state_dir": "s", "manifest": "m"},
                                 field="name")
    assert "since 2026-11-01 01:10:02 -0500" in folder
