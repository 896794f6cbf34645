"""What a run's end, `status` and `plan --retry` say of the jobs a retry would send again: the free steps first,
what each send may cost, and which jobs a retry picks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_runs_end_names_the_free_lookup_of_jobs_of_unknown_outcome_before_retry_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run leaving jobs of unknown outcome (every create held by a gateway, no retries) ends with the steps
    `status` gives: a plain run looks them up in the provider's request log at no cost first, and `retry
    --unknown` (which may pay twice) only for those still not found; each job's own error says the same."""
    from execkit import quick_backoff, write_manifest

    from runner import api, executor

    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setattr(executor, "LOG_SETTLE", 0.05)
    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"retries": 0},
                       sim={"render_time": 0.1, "jitter": 0.0,
                            "script": [{"route": "create", "p": 1.0, "fault": "held"}]})
    code, _, err = run_cli(capsys, "run", str(m), "--no-report")
    assert code == 1, err
    last = err.strip().splitlines()[-1]
    assert ("`gridrun run` looks up the 2 jobs of unknown outcome in the provider's request log (no cost) and "
            "collects what it finds; `gridrun retry --unknown` sends again those still not found (may pay twice)"
            ) in last, err
    snap = api.status(m)
    unknown = [j for j in snap.jobs if j.state == "unknown"]
    assert len(unknown) == 2
    for j in unknown:
        assert "`gridrun run` looks it up in the provider's request log (no cost)" in (j.error or ""), j.error
        assert j.error.index("`gridrun run` looks it up") < j.error.index("`gridrun retry --unknown`"), j.error
