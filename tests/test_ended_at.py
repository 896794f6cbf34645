"""When a job that ended without its video ended: the export's `ended_at` and `status --json` problems' carry the
time the state recorded it failed (its event), where `completed_at` says only when a render finished."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from execkit import write_manifest
from runner import api
from runner.cli import main
from runner.export import export_rows, iso
from runner.options import RunOptions


def test_a_failed_job_s_export_row_and_problem_say_when_it_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"retries": 0}, sim={"script": [
        {"route": "create", "nth": 1, "fault": "job_failure", "code": "CONTENT_POLICY_VIOLATION"}]})
    result = api.run(m, options=RunOptions(), report=False)
    assert result.exit_code == 1
    snap = api.status(m)
    failed = [j for j in snap.jobs if j.state == "failed"]
    assert len(failed) == 1
    with closing(sqlite3.connect(tmp_path / ".gridrun" / "state.db")) as db:
        (at,), = db.execute("SELECT at FROM events WHERE kind='failed' AND job_id=?", (failed[0].id,)).fetchall()
    rows = {r["key"]: r for r in export_rows(snap)}
    row = rows[failed[0].key]
    assert row["ended_at"] == iso(at) and row["completed_at"] is None, row
    assert all(r["ended_at"] is None for k, r in rows.items() if k != failed[0].key)  # done: completed_at says it
    problems = api.status_json(snap)["problems"]
    assert [(p["key"], p["ended_at"]) for p in problems] == [(failed[0].key, at)]
    assert main(["status", str(m), "--json"]) in (0, 1)
    assert json.loads(capsys.readouterr().out)["problems"][0]["ended_at"] == at
