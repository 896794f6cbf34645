"""Refusals of the account that do not come as an HTTP 402 to a create: a render failed for the balance, a 429, 400 or
403 whose code names the quota or the billing; and a provider unavailable for a while (a 5xx with Retry-After)."""

from __future__ import annotations

from pathlib import Path

from runner import api
from runner.executor import RunOptions

from execkit import sim_provider, stats, write_manifest


def run(manifest: Path, provider=None, **opts):
    provider = provider or sim_provider(manifest)
    result = api.run(manifest, provider=provider, options=RunOptions(**opts), report=False)
    return result, provider


def test_a_render_failed_for_the_balance_stops_the_run_as_a_402_does(tmp_path: Path) -> None:
    """The provider takes the create, then fails the render INSUFFICIENT_BALANCE: every job would meet it. The run
    sends no other create and spends no failure retry on it; the job (nothing made) and the jobs not sent are
    planned, so that a plain run sends them once the balance is topped up."""
    script = [{"route": "create", "nth": 1, "fault": "job_failure", "code": "INSUFFICIENT_BALANCE"}]
    m = write_manifest(tmp_path, n_seeds=5, styles=("anime",), run={"concurrency": 1, "failure_retries": 2},
                       sim={"render_time": 0.1, "jitter": 0.0, "script": script})
    result, prov = run(m, poll_interval=0.05)
    assert stats(prov)["creates"] == 1, stats(prov)
    assert result.exit_code == 1 and result.status == "refused" and result.refused == "INSUFFICIENT_BALANCE"
    jobs = api.status(m).jobs
    assert [j.state for j in jobs] == ["planned"] * 5, [(j.key, j.state, j.error) for j in jobs]
    failed = next(j for j in jobs if j.attempts == 1)
    assert "INSUFFICIENT_BALANCE" in (failed.error or "") and "topped up" in (failed.error or ""), failed.error
    # the balance topped up: a plain run sends all five, the failed one under a new attempt
    again, _ = run(m, prov, poll_interval=0.05)
    assert again.exit_code == 0 and again.stats.counts["done"] == 5
    assert stats(prov)["creates"] == 6
