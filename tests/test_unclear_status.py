"""A job whose provider gives no status gridrun can read (a status word it does not know, polls refused) is
followed for executor.UNCLEAR_AFTER, then left as it is: the run ends instead of polling it forever, the job
keeps its state and its reserve, and the next run asks again."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner import api
from runner import executor as ex_mod
from runner.executor import RunOptions
from runner.sim.faults import FaultPlan

from execkit import sim_provider, stats, write_manifest


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ex_mod, "UNCLEAR_AFTER", 1.0)
    monkeypatch.setattr(ex_mod, "backoff", lambda attempt, retry_after: 0.02)


def run(m: Path, prov, **opts):
    return api.run(m, provider=prov, options=RunOptions(**opts), report=False)


@pytest.mark.parametrize("by_list", [True, False], ids=["list", "per-job"])
def test_a_status_word_gridrun_does_not_know_ends_the_run_leaving_the_job(tmp_path: Path, by_list: bool) -> None:
    odd = [{"route": r, "p": 1.0, "fault": "unknown_status", "value": "succeeded"} for r in ("get", "list")]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0, "script": odd})
    prov = sim_provider(m)
    result = run(m, prov, **({} if by_list else {"poll_interval": 0.05}))
    assert result.exit_code == 1
    assert result.stats.counts["submitted"] + result.stats.counts["running"] == 1
    assert result.stats.reserved_micros == 350_000  # still counted: it is paid for
    job = api.status(m).jobs[0]
    assert "no status gridrun can read" in (job.error or "") and "'succeeded'" in (job.error or "")
    assert stats(prov)["creates"] == 1
    if not by_list:
        assert stats(prov)["requests"]["get"] < 100  # polled at its interval for a second, not busily
    prov.app.state.sim.faults = FaultPlan((), 0)  # the provider speaks plainly again
    again = run(m, prov)
    assert again.exit_code == 0 and again.stats.counts["done"] == 1 and stats(prov)["creates"] == 1


@pytest.mark.parametrize("by_list", [True, False], ids=["list", "per-job"])
def test_polls_refused_for_good_end_the_run_and_send_no_new_job(tmp_path: Path, by_list: bool) -> None:
    """A key revoked mid-run: every poll (the list's too) answers 401. The jobs sent are left for the next
    run, and no further job is sent (it could not be followed)."""
    refused = [{"route": r, "p": 1.0, "fault": "auth_failed"} for r in ("get", "list")]
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), run={"concurrency": 1},
                       sim={"render_time": 0.1, "jitter": 0.0, "script": refused})
    prov = sim_provider(m)
    result = run(m, prov, **({} if by_list else {"poll_interval": 0.05}))
    assert result.exit_code == 1
    assert stats(prov)["creates"] == 1 and result.stats.counts["planned"] == 2
    job = next(j for j in api.status(m).jobs if j.provider_id)
    assert "polls refused" in (job.error or "") and "401" in (job.error or "")


def test_a_short_outage_of_list_and_polls_does_not_leave_a_long_render_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list fails, then the job's own polls fail too, while a render goes on: the job asks on its own until
    one answers, and only then goes back to the list (which wakes it only on a change), so the render is
    followed to its end, not left for 'no status gridrun can read'."""
    from runner import pacing

    monkeypatch.setattr(pacing, "backoff", lambda attempt, retry_after, **kw: 0.02)  # the list's retries too
    outage = [{"route": "list", "nth": [2, 3, 4, 5, 6], "fault": "server_error", "status": 503},
              {"route": "get", "nth": list(range(1, 10)), "fault": "server_error", "status": 503}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"retries": 0},
                       sim={"render_time": 0.5, "jitter": 0.0, "script": outage})
    prov = sim_provider(m)
    prov.app.state.sim.configure({"render_time": 3.0})  # longer than the manifest's 0.5 s made gridrun expect
    result = run(m, prov)
    assert result.exit_code == 0 and result.stats.counts["done"] == 1, api.status(m).jobs[0].error
    assert stats(prov)["creates"] == 1
