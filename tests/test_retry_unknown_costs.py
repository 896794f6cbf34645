"""`gridrun retry --unknown` and what it weighs before it sends: the jobs of unknown outcome it sends again (a new
paid create, unless a lookup by key finds them) count as jobs to send, against the account's balance and against
the budget, as any run's new jobs do; not as jobs in flight that it only follows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from execkit import quick_backoff, sim_provider, stats, write_manifest

from runner import api
from runner.balance import BalanceCheck
from runner.errors import BalanceError, BudgetError
from runner.options import RunOptions

JOB = 350_000  # one job of write_manifest's, 360p for 5 s, in micro-USD


@pytest.fixture
def unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Any]:
    """Four jobs whose every create was cut before the provider read it: `unknown`, nothing made, nothing paid.
    Then the connection is sound again. The manifest and the simulator (the same provider object for each run)."""
    quick_backoff(monkeypatch)
    from runner import executor

    monkeypatch.setattr(executor, "LOG_SETTLE", 0.2)  # how long the provider's log is waited for is not tested here
    cut = [{"route": "create", "fault": "reset_before", "p": 1.0}]
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime", "clay"), sim={"render_time": 0.05, "script": cut})
    prov = sim_provider(m)
    first = api.run(m, provider=prov, options=RunOptions(request_timeout=0.5, retries=1), report=False)
    assert first.stats.counts["unknown"] == 4, first.stats.counts
    assert stats(prov)["creates"] == 0
    prov.app.state.sim.configure({"script": []})
    return m, prov


def test_the_balance_weighs_the_jobs_retry_unknown_sends_again(unknown: tuple[Path, Any]) -> None:
    """A balance below what sending the four again costs refuses the retry before anything is sent, as it refuses
    a run's new jobs; not a check that finds nothing to pay for, then the provider's 402 midway."""
    m, prov = unknown
    prov.app.state.sim.configure({"balance": 0.5})
    creates = stats(prov)["requests"].get("create", 0)
    told: list[BalanceCheck] = []
    with pytest.raises(BalanceError) as refused:
        api.run(m, provider=prov, options=RunOptions(retry_unknown=True, request_timeout=0.5), report=False,
                on_balance=told.append)
    assert told == [BalanceCheck("short", 4 * JOB, 4, balance_micros=500_000)]
    assert stats(prov)["requests"].get("create", 0) == creates  # nothing sent
    assert stats(prov)["creates"] == 0
    assert "the 4 jobs this run would send" in str(refused.value)
    assert "send the 1 job it covers with `--budget 0.50 --allow-partial`" in str(refused.value), str(refused.value)
    assert {j.state for j in api.status(m).jobs} == {"unknown"}


def test_over_its_budget_retry_unknown_is_refused_for_jobs_to_send_not_jobs_in_flight(
    unknown: tuple[Path, Any]
) -> None:
    """The refusal names them as jobs to send again, which may pay twice, and what --allow-partial does: send up to
    the budget, which it then does."""
    m, prov = unknown
    with pytest.raises(BudgetError) as refused:
        api.run(m, provider=prov, options=RunOptions(retry_unknown=True, budget_usd=0.5, request_timeout=0.5),
                report=False)
    said = str(refused.value)
    assert said == ("4 jobs of unknown outcome to send again (may pay twice) would cost $1.40, above the budget of "
                    "$0.50; raise run.budget_usd or --budget, or pass --allow-partial to run up to the budget"), said
    assert (refused.value.jobs, refused.value.in_flight, refused.value.jobs_fit) == (4, 0, 1)
    assert stats(prov)["creates"] == 0
    partial = api.run(m, provider=prov, options=RunOptions(retry_unknown=True, budget_usd=0.5, allow_partial=True,
                                                           request_timeout=0.5, poll_interval=0.05), report=False)
    assert partial.status == "budget" and partial.stats.counts["done"] == 1, (partial.status, partial.stats.counts)
    assert stats(prov)["creates"] == 1 and partial.stats.spent_micros == JOB
    # the others, looked up and found never to have reached the provider, wait to be sent as new jobs do
    assert partial.stats.counts["planned"] == 3, partial.stats.counts
