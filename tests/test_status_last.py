"""`status --runs --last N`: only the newest N runs of a long-lived project."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from execkit import ONE_JOB_MANIFEST as MANIFEST

from runner.cli import main


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # a command line argparse cannot read
        code = int(exc.code or 0)
    got = capsys.readouterr()
    return code, got.out, got.err


@pytest.fixture
def four_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST, encoding="utf-8")
    for _ in range(4):
        assert cli(capsys, "run", str(m), "--no-report")[0] == 0
    return m


def test_last_lists_only_the_newest_runs(four_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "status", str(four_runs), "--runs", "--last", "2")
    assert code == 0
    assert "4 runs, the newest 2 shown" in out
    lines = [line for line in out.splitlines()[2:] if line.strip()]
    assert [line.split()[0] for line in lines[:-1]] == ["4", "3"], out
    assert lines[-1] == "2 earlier runs: --last 0 lists all", out
    code, out, _ = cli(capsys, "status", str(four_runs), "--runs", "--last", "2", "--json")
    assert [r["run"] for r in json.loads(out)] == [4, 3]


def test_last_of_more_than_there_are_lists_them_all(four_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "status", str(four_runs), "--runs", "--last", "9")
    assert code == 0 and "4 runs, newest first" in out


def test_a_long_history_lists_the_newest_runs_unless_asked_for_all(
    four_runs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without --last, the newest RUNS_SHOWN runs (20) and how many earlier ones are not listed; --last 0 lists
    every run; --json, read by scripts, lists every run unless --last says otherwise."""
    monkeypatch.setattr(sys.modules["runner.cli"], "RUNS_SHOWN", 3, raising=False)
    code, out, _ = cli(capsys, "status", str(four_runs), "--runs")
    assert code == 0 and "4 runs, the newest 3 shown" in out
    lines = [line for line in out.splitlines()[2:] if line.strip()]
    assert [line.split()[0] for line in lines[:-1]] == ["4", "3", "2"], out
    assert lines[-1] == "1 earlier run: --last 0 lists all", out
    code, out, _ = cli(capsys, "status", str(four_runs), "--runs", "--last", "0")
    assert code == 0 and "4 runs, newest first" in out and "earlier run" not in out
    assert [line.split()[0] for line in out.splitlines()[2:] if line.strip()] == ["4", "3", "2", "1"], out
    code, out, _ = cli(capsys, "status", str(four_runs), "--runs", "--json")
    assert [r["run"] for r in json.loads(out)] == [4, 3, 2, 1]


@pytest.mark.parametrize("argv, said", [
    (["--runs", "--last", "-1"], "a number of runs is 0 (all of them) or more, got -1"),
    (["--runs", "--last", "two"], "a whole number of runs is needed"),
    (["--last", "2"], "--last goes with --runs"),
])
def test_last_refuses_what_it_cannot_take(four_runs: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                          said: str) -> None:
    code, _, err = cli(capsys, "status", str(four_runs), *argv)
    assert code == 2 and said in err and "Traceback" not in err


@pytest.mark.parametrize("argv, said", [
    (["--last", "2"], "--last goes with --runs"),
    (["--manifest-copy", "1", "--runs"], "--manifest-copy goes alone"),
    (["--every", "1"], "--every goes with --watch"),
    (["--runs", "--watch"], "--runs lists the runs recorded; --watch follows the latest one: one or the other"),
])
def test_options_that_cannot_go_together_are_refused_before_the_manifest_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], said: str,
) -> None:
    """A manifest that does not load is warned of as `status` reads it: a command line it cannot carry out is
    refused before, as argparse refuses one, with its usage."""
    m = tmp_path / "m.yaml"
    m.write_text("matrix: [\n", encoding="utf-8")
    code, out, err = cli(capsys, "status", str(m), *argv)
    assert code == 2 and out == "", err
    assert err.startswith("usage: gridrun status") and f"gridrun status: error: {said}\n" in err, err
    assert "warning" not in err and "does not load" not in err, err


@pytest.mark.parametrize("argv, said", [
    (["--last", "2"], "--last goes with --runs"),
    (["--manifest-copy", "1"], "--manifest-copy goes alone"),
    (["--runs"], "--runs lists the runs recorded; --watch follows the latest one: one or the other"),
])
def test_a_refused_watch_ends_its_json_lines_with_an_end_event(four_runs: Path, capsys: pytest.CaptureFixture[str],
                                                               argv: list[str], said: str) -> None:
    code, out, err = cli(capsys, "status", str(four_runs), "--watch", "--json", *argv)
    assert code == 2 and said in err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines == [{"event": "end", "status": None, "exit_code": 2, "errors": [said]}], out


def test_status_names_the_provider_and_model_of_a_run_that_sent_nothing(
    four_runs: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Below its spending, as of a run that sent its creates: the fourth run found every job cached."""
    code, out, _ = cli(capsys, "status", str(four_runs))
    assert code == 0
    lines = out.splitlines()
    spent = next(i for i, line in enumerate(lines) if line.startswith("  spent $0.00"))
    assert lines[spent + 1] == "  sim / pixverse-v5.6, sent nothing", out
