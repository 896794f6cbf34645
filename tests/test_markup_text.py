"""Text the user wrote (a job key holding a matrix value such as "[wide]") is printed as written in the lines that
end a run, not read as rich markup and dropped from them."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Any

import pytest

from runner.cli import main

MANIFEST = """\
version: 1
name: t
provider: sim
model: pixverse-v5.6
params:
  prompt: "a fox, {{ shot }}"
  quality: 360p
  duration: 5
matrix:
  shot: ["[wide]", "[bold]x"]
run:
  retries: 0
sim:
  render_time: 0.05
  jitter: 0
  failure_rate: 1.0
"""
ENDS = re.escape("some jobs did not finish (`gridrun status` says why): ")


def _end(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """The exit code of `gridrun argv` and the last line it writes to standard error."""
    code = main(list(argv))
    return code, capsys.readouterr().err.strip().splitlines()[-1]


def test_the_end_of_a_failed_run_and_its_retry_names_a_key_with_brackets_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST)
    code, end = _end(capsys, "run", str(m), "--no-report")
    assert code == 1 and re.match(ENDS + r"shot=(\[wide\]|\[bold\]x) and 1 more job failed CONTENT_POLICY", end), end
    code, end = _end(capsys, "retry", str(m), "--no-report")
    assert code == 1 and re.match(ENDS + r"shot=(\[wide\]|\[bold\]x) and 1 more job failed 2 times", end), end
    code, end = _end(capsys, "retry", str(m), "--no-report", "--key", "shot=[[]wide]")
    assert code == 1 and end.startswith("some jobs did not finish (`gridrun status` says why): shot=[wide] failed 3 "
                                        "times"), end


def test_a_report_left_out_of_date_is_said_with_the_manifest_named_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run's final page cannot be written (a full disk): the warning at its end names the command that writes
    it again, with the manifest file "[v2].yaml" in it whole."""
    import importlib

    from execkit import write_manifest

    report_module = importlib.import_module("runner.report")  # `runner.report` is the function
    real = report_module.atomic_write

    def atomic_write(path: Any, data: Any, **kw: Any) -> None:
        if str(path).endswith(".html"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data, **kw)

    from runner import live

    write_final = live.LiveViews.final_report

    def final_report(self: live.LiveViews) -> Path | None:
        with monkeypatch.context() as full:
            full.setattr(report_module, "atomic_write", atomic_write)
            return write_final(self)

    monkeypatch.setattr(live.LiveViews, "final_report", final_report)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 2.0, "jitter": 0.0})
    m = m.rename(tmp_path / "[v2].yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "400")
    assert main(["run", m.name]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert ("is out of date (run 1 ended; a page open on it says so): `gridrun report '[v2].yaml'` writes it "
            "again") in err, err


def test_the_plans_total_names_the_values_that_set_its_groups_apart_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    m = tmp_path / "p.yaml"
    m.write_text("version: 1\nname: p\nprovider: sim\nmodel: pixverse-v5.6\n"
                 "params:\n  prompt: a fox\n  quality: 540p\n  duration: 5\n"
                 "sweeps:\n"
                 "  - name: a\n    params:\n      generate_audio_switch: true\n      negative_prompt: \"[blur]\"\n"
                 "  - name: b\n    params:\n      generate_audio_switch: false\n      negative_prompt: \"[dim]haze\"\n")
    assert main(["plan", str(m)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ("total: 1 × 960x540 5s with audio, negative_prompt [blur] at $0.80 = $0.80; 1 × 960x540 5s without "
            "audio, negative_prompt [dim]haze at $0.35 = $0.35 → $1.15 for 2 jobs") in out, out
