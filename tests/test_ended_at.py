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


def test_the_providers_request_id_of_a_jobs_error_has_a_field_of_its_own_in_status_json_and_the_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The provider refuses a create, naming its request id (x-request-id): the job's error keeps saying it as it
    did, and `status --json` (problems) and the export's row give it in a field of their own, `request_id`; a job
    whose error names none has null there."""
    import httpx
    from execkit import sim_provider

    from runner.export import export_rows

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    prov = sim_provider(m)
    make = prov.client

    class Refusing(httpx.AsyncBaseTransport):
        """The simulator, but the first create is refused (HTTP 422) under a request id."""

        def __init__(self) -> None:
            self.inner, self.refused = httpx.ASGITransport(app=prov.app), False

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST" and request.url.path.endswith("/videos") and not self.refused:
                self.refused = True
                return httpx.Response(422, headers={"x-request-id": "req_7Hk2-x9"}, request=request, json={
                    "error": {"code": "INVALID_PROMPT", "message": "the prompt was refused"}})
            return await self.inner.handle_async_request(request)

    prov.client = lambda **kw: make(**kw, transport=Refusing())
    result = api.run(m, provider=prov, options=RunOptions(poll_interval=0.05), report=False)
    assert result.exit_code == 1
    snap = api.status(m)
    [rejected] = [j for j in snap.jobs if j.state == "rejected"]
    assert "the prompt was refused (request id req_7Hk2-x9)" in (rejected.error or ""), rejected.error
    rows = {r["key"]: r for r in export_rows(snap)}
    assert rows[rejected.key]["request_id"] == "req_7Hk2-x9" and rows[rejected.key]["error"] == rejected.error
    assert [r["request_id"] for k, r in rows.items() if k != rejected.key] == [None]
    assert main(["status", str(m), "--json"]) == 0
    [problem] = json.loads(capsys.readouterr().out)["problems"]
    assert (problem["key"], problem["request_id"], problem["error"]) == (rejected.key, "req_7Hk2-x9", rejected.error)
