"""A video's JSON sidecar names the take that made the video, and the times the state has for it: as the download
wrote it, and as a run writes it again (missing, unreadable) from the state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from execkit import sim_provider, write_manifest
from test_interrupt import _detached_force_run, _rerenders_in_flight

from runner import api
from runner.cli import main
from runner.options import RunOptions
from runner.state import Store

_TAKE = ("provider_id", "idempotency_key", "attempt", "sha256")


def _sidecars(m: Path) -> dict[str, dict[str, Any]]:
    return {j.key: json.loads(Path(j.output_path).with_suffix(".json").read_text()) for j in api.status(m).jobs}


def _attempts(m: Path) -> dict[str, list[tuple[int, str, str, str]]]:
    with Store(m.parent / ".gridrun" / "state.db", readonly=True) as store:
        return {j.key: [(a["n"], a["idempotency_key"], a["state"], a["provider_id"]) for a in store.attempts(j.id)]
                for j in api.status(m).jobs}


def _mended(m: Path, before: dict[str, dict[str, Any]], run: Any) -> None:
    """Delete every sidecar, have `run` write them again from the state: each names the take it named before."""
    for j in api.status(m).jobs:
        Path(j.output_path).with_suffix(".json").unlink()
    run()
    after = _sidecars(m)
    for key, doc in before.items():
        assert {f: after[key][f] for f in _TAKE} == {f: doc[f] for f in _TAKE}, key


def test_a_sidecar_written_again_after_a_failed_re_render_names_the_take_that_made_the_video(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",))
    prov = sim_provider(m)
    assert api.run(m, provider=prov, report=False).exit_code == 0
    before = _sidecars(m)
    assert {d["attempt"] for d in before.values()} == {1}
    prov.app.state.sim.configure({"failure_rate": 1.0})
    api.run(m, provider=prov, options=RunOptions(force=True, failure_retries=0), report=False)
    prov.app.state.sim.configure({"failure_rate": 0.0})
    attempts = _attempts(m)
    assert {k: [a[2] for a in v] for k, v in attempts.items()} == {k: ["done", "failed"] for k in before}
    assert _sidecars(m) == before  # the failed re-render left the video and its sidecar
    _mended(m, before, lambda: api.run(m, provider=prov, report=False))
    for key, doc in before.items():
        assert doc["idempotency_key"] == attempts[key][0][1] != attempts[key][1][1]


@pytest.mark.timeout(120)
def test_a_sidecar_written_again_after_a_cancelled_re_render_names_the_take_that_made_the_video(
    tmp_path: Path,
) -> None:
    m, _, _ = _detached_force_run(tmp_path, in_world=True)
    rerenders = _rerenders_in_flight(m)
    before = _sidecars(m)
    assert main(["cancel", str(m)]) == 0
    attempts = _attempts(m)
    assert all([a[2] for a in attempts[k]] == ["done", "cancelled"] for k in rerenders)
    _mended(m, before, lambda: api.run(m, provider=None, report=False))
    for key in rerenders:
        assert before[key]["attempt"] == 1 and before[key]["idempotency_key"] == attempts[key][0][1]


def test_a_sidecar_has_the_times_the_state_and_the_export_have(tmp_path: Path) -> None:
    """`completed_at` is when the run saw the render completed, as the state and results.* have it: not the
    provider's stamp, whole seconds, which can come before `submitted_at`; a sidecar written again has the same."""
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    prov = sim_provider(m)
    assert api.run(m, provider=prov, report=False).exit_code == 0
    from runner.export import export_rows, iso

    snap = api.status(m)
    rows = {r["key"]: r for r in export_rows(snap)}
    written = _sidecars(m)
    for job in snap.jobs:
        doc = written[job.key]
        assert (doc["submitted_at"], doc["completed_at"]) == (job.submitted_at, job.completed_at), job.key
        assert doc["submitted_at"] <= doc["completed_at"] <= doc["downloaded_at"], job.key
        assert iso(doc["completed_at"]) == rows[job.key]["completed_at"], job.key
    for job in snap.jobs:
        Path(job.output_path).with_suffix(".json").unlink()
    assert api.run(m, provider=prov, report=False).exit_code == 0
    again = _sidecars(m)
    times = ("submitted_at", "completed_at")  # downloaded_at: when the file was saved, then verified
    assert {k: [d[t] for t in times] for k, d in again.items()} == {k: [d[t] for t in times] for k, d in written.items()}
