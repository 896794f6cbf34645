"""The balance check before a run's first create (`runner.balance`), against the simulator's `balance` knob and its
faults on the balance route: a run the account cannot pay for is refused whole, before any create; one it can pay
for, or whose balance cannot be read, runs as it would without the check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner import api
from runner import balance as balance_mod
from runner.balance import BalanceCheck
from runner.cli import main
from runner.errors import BalanceError, NotRecordedError
from runner.executor import RunOptions
from runner.providers import get_provider

from execkit import sim_provider, stats, write_manifest

JOB = 350_000  # one job of write_manifest's, 360p for 5 s, in micro-USD


def six_jobs(tmp: Path, **sim: Any) -> Path:
    return write_manifest(tmp, n_seeds=3, styles=("anime", "clay"), run={"concurrency": 1},
                          sim={"render_time": 0.05, "jitter": 0.0, **sim})


def run(manifest: Path, provider: Any = None, **opts: Any) -> tuple[Any, Any, list[BalanceCheck]]:
    """Run `manifest` on the in-process simulator; the run's result (or the error that refused it), the provider
    and what the balance check told."""
    provider = provider or sim_provider(manifest)
    told: list[BalanceCheck] = []
    try:
        result: Any = api.run(manifest, provider=provider, options=RunOptions(**opts), report=False,
                              on_balance=told.append)
    except BalanceError as exc:
        result = exc
    return result, provider, told


def test_a_run_the_balance_cannot_pay_for_is_refused_before_any_create_and_records_nothing(tmp_path: Path) -> None:
    m = six_jobs(tmp_path, balance=0.7)  # two jobs of $0.35
    refused, prov, told = run(m)
    assert isinstance(refused, BalanceError) and refused.exit_code == 1
    assert stats(prov)["creates"] == 0 and stats(prov)["requests"] == {"balance": 1}, stats(prov)
    assert told == [BalanceCheck("short", 6 * JOB, 6, balance_micros=2 * JOB)]
    assert str(refused) == ("the account's balance is $0.70, below the $2.10 the 6 jobs this run would send cost (the "
                            "plan's estimate): nothing was sent; top up the balance and run again, or send the 2 jobs "
                            "it covers with `--budget 0.70 --allow-partial`")
    with pytest.raises(NotRecordedError):
        api.runs(m)  # no run recorded: `gridrun run` once topped up is a first run


def test_a_balance_that_covers_no_job_says_only_to_top_up(tmp_path: Path) -> None:
    refused, prov, _ = run(six_jobs(tmp_path, balance=0.2))
    assert isinstance(refused, BalanceError) and stats(prov)["creates"] == 0
    assert str(refused).endswith("nothing was sent; top up the balance and run again"), str(refused)


def test_a_run_the_balance_covers_runs_every_job(tmp_path: Path) -> None:
    m = six_jobs(tmp_path, balance=2.1)  # exactly the run's cost: not lower, so enough
    result, prov, told = run(m)
    assert result.exit_code == 0 and result.stats.counts["done"] == 6 and stats(prov)["creates"] == 6
    assert told == [BalanceCheck("enough", 6 * JOB, 6, balance_micros=6 * JOB)]
    assert stats(prov)["requests"]["balance"] == 1  # asked once, before the first create


def test_an_account_without_a_limit_runs(tmp_path: Path) -> None:
    result, prov, told = run(six_jobs(tmp_path))  # no balance knob: the simulator says `unlimited`
    assert result.exit_code == 0 and stats(prov)["creates"] == 6
    assert [t.outcome for t in told] == ["unlimited"] and told[0].balance_micros is None


@pytest.mark.parametrize(("fault", "said"), [
    ({"fault": "not_found"}, "HTTP 404, NOT_FOUND"),
    ({"fault": "server_error", "status": 503}, "HTTP 503"),
    ({"fault": "malformed_json"}, "malformed JSON"),
    ({"fault": "reset_before"}, "the connection failed"),
    ({"fault": "slow", "delay": 30}, "no answer within 0.2 s"),
])
def test_a_balance_that_cannot_be_read_lets_the_run_go_on_as_without_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: dict[str, Any], said: str
) -> None:
    """The endpoint missing, failing, garbled, cut or too slow: the run sends as it did before the check, and the
    provider's 402 stops it midway, refused (exit 1) with two jobs made."""
    monkeypatch.setattr(balance_mod, "TIMEOUT", 0.2)
    m = six_jobs(tmp_path, balance=0.7, script=[{"route": "balance", "p": 1, **fault}])
    result, prov, told = run(m)
    assert result.status == "refused" and result.exit_code == 1 and result.refused == "INSUFFICIENT_BALANCE"
    assert stats(prov)["creates"] == 2 and result.stats.counts["done"] == 2
    assert [t.outcome for t in told] == ["unknown"] and said in (told[0].detail or ""), told
    assert stats(prov)["requests"]["balance"] == 1  # never asked again


def test_with_allow_partial_only_the_jobs_the_budget_lets_through_count(tmp_path: Path) -> None:
    m = six_jobs(tmp_path, balance=0.7)
    refused, prov, told = run(m, budget_usd=1.4, allow_partial=True)  # four jobs fit the budget, two the balance
    assert isinstance(refused, BalanceError) and stats(prov)["creates"] == 0
    assert told[0].cost_micros == 4 * JOB and told[0].jobs == 4
    assert "below the $1.40 the 4 jobs this run would send cost" in str(refused)
    assert "send the 2 jobs it covers with `--budget 0.70 --allow-partial`" in str(refused)
    result, prov, told = run(m, prov, budget_usd=0.7, allow_partial=True)  # as the refusal said
    assert told == [BalanceCheck("enough", 2 * JOB, 2, balance_micros=2 * JOB)]
    assert result.status == "budget" and result.exit_code == 3 and result.refused is None
    assert stats(prov)["creates"] == 2 and result.stats.counts["done"] == 2


def test_jobs_done_before_are_not_counted(tmp_path: Path) -> None:
    """Cached jobs cost nothing: a run that adds two jobs to four done asks the balance for two."""
    m = write_manifest(tmp_path, n_seeds=2, sim={"render_time": 0.05, "jitter": 0.0})
    first, prov, _ = run(m)
    assert first.exit_code == 0 and stats(prov)["creates"] == 4
    prov.app.state.sim.configure({"balance": 2.1})  # $1.40 owed for the four: $0.70 left, two jobs' worth
    m = write_manifest(tmp_path, n_seeds=3, sim={"render_time": 0.05, "jitter": 0.0})
    second, prov, told = run(m, prov)
    assert told == [BalanceCheck("enough", 2 * JOB, 2, balance_micros=2 * JOB)]
    assert second.exit_code == 0 and second.stats.cached == 4 and stats(prov)["creates"] == 6


def test_a_provider_without_a_balance_endpoint_is_not_asked(tmp_path: Path) -> None:
    m = six_jobs(tmp_path, balance=0.7)
    prov = sim_provider(m)
    prov.balance = None  # as a provider class without the method
    result, prov, told = run(m, prov)
    assert [t.outcome for t in told] == ["not_asked"] and "balance" not in stats(prov)["requests"]
    assert result.status == "refused" and stats(prov)["creates"] == 2


def test_run_json_carries_one_balance_event_and_the_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The refusal's `end` event says `refused`, as the README's exit table does, where a script reading it could
    not tell it from a lock held or an invalid manifest (no status) but by the errors' words."""
    m = six_jobs(tmp_path, balance=0.7)
    assert main(["run", str(m), "--no-report", "--json"]) == 1
    got = capsys.readouterr()
    events = [json.loads(line) for line in got.out.splitlines()]
    assert events[0] == {"event": "balance", "outcome": "short", "balance_usd": 0.7, "cost_usd": 2.1, "jobs": 6,
                         "detail": None}
    assert len(events) == 2 and events[1]["event"] == "end", events
    assert (events[1]["status"], events[1]["exit_code"]) == ("refused", 1), events[1]
    assert events[1]["errors"][0].startswith("the account's balance is $0.70, below the $2.10"), events[1]
    assert got.err.startswith("error: the account's balance is $0.70, below the $2.10"), got.err
    assert main(["run", str(m), "--no-report", "--json", "--budget", "0.70", "--allow-partial"]) == 3
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events if e["event"] == "balance"] == ["balance"]
    assert events[0]["outcome"] == "enough" and events[-1]["event"] == "end" and events[-1]["counts"]["done"] == 2


@pytest.mark.anyio
async def test_an_answer_of_an_unread_shape_is_an_unknown_balance(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lumenfall does not publish the shape: one gridrun cannot read with certainty is taken as no answer."""
    monkeypatch.setenv("LUMENFALL_API_KEY", "lmnfl_test")

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"credits": 3})

    prov = get_provider("lumenfall")
    async with prov.client(transport=httpx.MockTransport(answer)) as client:
        nothing = await balance_mod.check(prov, client, [])
        found = await balance_mod.check(prov, client, [_priced(JOB)])
    assert nothing.outcome == "not_asked" and nothing.detail == "this run sends nothing to pay for"
    assert found.outcome == "unknown" and "cannot read with certainty (no 'balance')" in (found.detail or ""), found


def _priced(micros: int) -> Any:
    """A stand-in job: all the check reads of one is its cost."""
    from types import SimpleNamespace

    return SimpleNamespace(cost_micros=micros)


def test_a_balance_refusal_carries_the_balance_the_cost_and_the_jobs_it_covers(tmp_path: Path) -> None:
    refused, _, _ = run(six_jobs(tmp_path, balance=0.7))  # two jobs of $0.35
    assert isinstance(refused, BalanceError)
    assert (refused.balance_micros, refused.cost_micros, refused.jobs, refused.jobs_fit) == (2 * JOB, 6 * JOB, 6, 2)


def test_a_balance_of_2_05_pays_for_jobs_costing_2_05(tmp_path: Path) -> None:
    """A balance that is no whole number of micro-dollars as a float ($2.05 × 10⁶ is 2049999.9999999998) pays
    for jobs costing it exactly: two 360p and three 720p jobs of 5 s, all made, and nothing left after them."""
    m = tmp_path / "bal.yaml"
    m.write_text("""version: 1
name: bal
provider: sim
model: pixverse-v5.6
params:
  prompt: "a fox {{ i }}"
  duration: 5
matrix:
  include:
    - {i: 1, quality: 360p}
    - {i: 2, quality: 360p}
    - {i: 3, quality: 720p}
    - {i: 4, quality: 720p}
    - {i: 5, quality: 720p}
run:
  concurrency: 1
sim:
  render_time: 0.05
  jitter: 0
  balance: 2.05
""")
    result, prov, told = run(m)
    assert told == [BalanceCheck("enough", 2_050_000, 5, balance_micros=2_050_000)]
    assert result.exit_code == 0 and result.refused is None and result.stats.counts["done"] == 5
    assert stats(prov)["creates"] == 5 and stats(prov)["billed_micros"] == 2_050_000
