"""The budget once the provider is seen billing above the price table (the simulator's `cost_factor`): within a
run, the jobs in flight and the next one count at the highest ratio of bills to estimates seen; before a run
starts, at the ratio the latest bills showed, where clearly above 1x; and a run whose spending passed its budget
does not exit 0. With --allow-partial, the balance check weighs the jobs the run sends, and a 402 met once the
budget began stopping the run ends it `refused`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from runner import api
from runner.cli import main
from runner.errors import BalanceError, BudgetError
from runner.executor import RunOptions
from runner.sim.config import SimConfig
from runner.sim.serve import running_server

from execkit import lose_state, running, sim_provider, stats, wait_for, write_manifest

JOB = 350_000  # one job of write_manifest's, 360p for 5 s, in micro-USD


def run(manifest: Path, provider: Any = None, **opts: Any) -> tuple[Any, Any]:
    provider = provider or sim_provider(manifest)
    return api.run(manifest, provider=provider, options=RunOptions(**opts), report=False), provider


def test_within_a_run_the_next_job_counts_at_what_the_jobs_before_it_were_billed(tmp_path: Path) -> None:
    """Billed 4x, one job at a time, a budget of $4.00: after two jobs ($2.80 spent) a third, estimated $0.35,
    is known to cost $1.40, which passes the budget: it is not sent. Counted at its estimate it was, and the run
    spent $4.20 of $4.00."""
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime", "clay"), run={"concurrency": 1},
                       sim={"render_time": 0.05, "jitter": 0.0, "concurrency": 1, "cost_factor": 4})
    result, prov = run(m, budget_usd=4.0, allow_partial=True)
    assert (result.status, result.exit_code) == ("budget", 3)
    assert stats(prov)["creates"] == 2 and result.stats.counts["done"] == 2, result.stats.counts
    assert result.stats.spent_micros == 2 * 4 * JOB <= 4_000_000
    assert api.status(m).over_budget_note() is None


def test_billed_as_estimated_the_budget_counts_the_estimates_as_before(tmp_path: Path) -> None:
    """Nothing billed above the estimates: the budget is filled to the micro-dollar by estimates, as always."""
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime", "clay"), run={"concurrency": 1},
                       sim={"render_time": 0.05, "jitter": 0.0, "concurrency": 1})
    result, prov = run(m, budget_usd=1.40, allow_partial=True)
    assert result.status == "budget" and stats(prov)["creates"] == 4 and result.stats.spent_micros == 4 * JOB


def test_after_a_run_billed_10x_the_next_run_is_refused_before_it_sends_and_plan_says_it_exceeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo grid billed 10x: the first run passes its budget with its first wave (the price table is all it
    knows); the second, whose 6 jobs left are estimated $2.10 and known to cost $21.00, is refused with exit 3
    before any create, saying what they cost and what to do; `plan` says "exceeds" with the same figure."""
    monkeypatch.chdir(tmp_path)
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime", "clay", "comic", "cyberpunk"),
                       run={"concurrency": 6, "budget_usd": 4.2},
                       sim={"render_time": 0.2, "jitter": 0.0, "concurrency": 6, "cost_factor": 10})
    prov = sim_provider(m)
    assert main(["run", str(m), "--no-report"]) == 3
    capsys.readouterr()
    first = api.status(m)  # the first wave billed $3.50 a job: how many were sent before the first bill varies
    left = sum(j.cost_estimate_micros for j in first.jobs if j.state == "planned")
    assert left and first.spent_micros > 4_200_000
    assert main(["plan", str(m)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    need = 10 * left
    money = f"${need / 1e6:.2f}"
    assert (f"budget: $4.20 (exceeds: this run counts {money} against it, its ${left / 1e6:.2f} of estimates counted "
            "at 10x the estimates, as run 1 was billed") in out, out
    assert main(["plan", "--json", str(m)]) == 0
    assert json.loads(capsys.readouterr().out)["run_micros"] == need
    with pytest.raises(BudgetError) as refused:
        run(m, prov)
    assert refused.value.exit_code == 3 and stats(prov)["creates"] == 0
    text = str(refused.value)
    assert f"would cost {money} (estimated at ${left / 1e6:.2f}, counted at 10x the estimates, as run 1 was billed)" \
        in text, text
    assert f"correct it (a capabilities file's prices), or raise run.budget_usd or --budget (`--budget {need / 1e6:.2f}`)" \
        in text, text
    assert main(["run", str(m), "--no-report"]) == 3  # the CLI alike, nothing recorded
    assert api.status(m).run.id == first.run.id
    assert main(["run", str(m), "--no-report", "--budget", f"{need / 1e6:.2f}"]) == 0


def test_a_price_table_corrected_after_the_bills_counts_as_corrected(tmp_path: Path) -> None:
    """Billed 4x the built-in table; a capabilities file then prices the jobs at what they were billed: the next
    run counts its jobs at the new estimates, not 4x them."""
    from runner.jobs import Billing

    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), run={"concurrency": 1, "budget_usd": 1.40},
                       sim={"render_time": 0.05, "jitter": 0.0, "concurrency": 1, "cost_factor": 4})
    prov = sim_provider(m)
    first, _ = run(m, prov, allow_partial=True)
    assert first.status == "budget" and first.stats.counts["done"] == 1  # $1.40 for the first
    assert api.diff(api.plan(m)).billing == Billing(4 * JOB, JOB, first.run_id)
    caps = tmp_path / "caps.yaml"
    caps.write_text("provider: sim\nmodels:\n  pixverse-v5.6:\n    prices:\n"
                    "      base_5s: {360p: 1.40, 540p: 1.40, 720p: 1.80, 1080p: 3.00}\n")
    doc = yaml.safe_load(m.read_text())
    doc["capabilities"] = ["caps.yaml"]
    doc["run"]["budget_usd"] = 2.80
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert api.diff(api.plan(m)).billing is None  # $1.40 billed for a job now estimated $1.40
    second, _ = run(m, prov)  # the 2 jobs left, at $1.40 each: exactly the budget
    assert (second.status, second.exit_code) == ("done", 0) and second.stats.spent_micros == 2_800_000


def test_a_budget_that_covers_the_jobs_at_the_bills_ratio_gets_no_advice_to_raise_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Billed 4x, a budget of $100: plan's budget line says what the run counts at that ratio, and fits; what to do
    when it does not fit (correct the price table, a budget that covers it) only where it does not."""
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), run={"concurrency": 1, "budget_usd": 1.40},
                       sim={"render_time": 0.05, "jitter": 0.0, "concurrency": 1, "cost_factor": 4})
    run(m, allow_partial=True)
    capsys.readouterr()
    assert main(["plan", str(m), "--budget", "100"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "budget: $100.00 (fits: this run counts $2.80 against it, its $0.70 of estimates counted at 4x" in out, out
    assert "correct the price table" not in out and "set a budget" not in out, out
    assert main(["plan", str(m), "--budget", "2"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "(exceeds: this run counts $2.80" in out and "correct the price table, or set a budget that covers it" \
        in out, out


def test_a_run_that_passed_its_budget_does_not_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One job estimated $0.35 within a $0.35 budget, billed $0.70: every job is done, and the run spent twice its
    budget; it exits 3 (the budget's code), its status `done`, and says so; `status --watch` exits alike."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"concurrency": 1, "budget_usd": 0.35},
                       sim={"render_time": 0.05, "jitter": 0.0, "cost_factor": 2})
    result, _ = run(m)
    assert (result.status, result.exit_code) == ("done", 3)
    assert result.stats.spent_micros == 700_000
    assert main(["status", str(m), "--watch"]) == 3
    capsys.readouterr()
    (tmp_path / "cli").mkdir()
    m2 = write_manifest(tmp_path / "cli", n_seeds=1, styles=("anime",), run={"concurrency": 1, "budget_usd": 0.35},
                        sim={"render_time": 0.05, "jitter": 0.0, "cost_factor": 2})
    assert main(["run", str(m2), "--no-report"]) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert ("warning: this run passed its budget: spent $0.70 (simulated: made-up figures, nothing paid) of $0.35"
            in err) and "stopped by the budget" not in err, err


def test_a_run_that_passed_its_budget_is_marked_so_in_status_json_and_in_its_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run that spent $0.70 of a $0.35 budget (exit 3, status `done`): `status --json` carries what `status`
    says of it, and `status --runs` (its table and each run's object) by how much it passed its budget."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"concurrency": 1, "budget_usd": 0.35},
                       sim={"render_time": 0.05, "jitter": 0.0, "cost_factor": 2})
    run(m)
    assert main(["status", str(m), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["status"] == "done" and got["over_budget"].startswith(
        "passed its budget: spent $0.70 (simulated: made-up figures, nothing paid) of $0.35"), got
    assert main(["status", str(m), "--runs", "--json"]) == 0
    assert [r["over_budget_usd"] for r in json.loads(capsys.readouterr().out)] == [0.35]
    assert main(["status", str(m), "--runs"]) == 0
    assert "$0.70 ($0.35 over budget)" in " ".join(capsys.readouterr().out.split())


def test_a_run_within_its_budget_is_not_marked_over_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"concurrency": 1, "budget_usd": 0.35},
                       sim={"render_time": 0.05, "jitter": 0.0})
    run(m)
    assert main(["status", str(m), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["over_budget"] is None
    assert main(["status", str(m), "--runs", "--json"]) == 0
    assert [r["over_budget_usd"] for r in json.loads(capsys.readouterr().out)] == [None]


def test_allow_partial_the_balance_check_weighs_every_job_the_run_sends(tmp_path: Path) -> None:
    """Jobs alternating $0.70 and $0.35, a budget of $1.50: --allow-partial sends $0.70, $0.35, skips the next
    $0.70, and sends the next $0.35 ($1.40), as the run reserves them. A balance of $1.20 does not cover that: the
    run is refused before any create, not stopped by the provider's 402 midway."""
    m = _alternating(tmp_path, balance=1.2)
    prov = sim_provider(m)
    told: list[Any] = []
    with pytest.raises(BalanceError) as refused:
        api.run(m, provider=prov, options=RunOptions(allow_partial=True), report=False, on_balance=told.append)
    assert (told[0].jobs, told[0].cost_micros) == (3, 1_400_000), told
    assert stats(prov)["creates"] == 0 and refused.value.exit_code == 1
    # the budget's own count of the jobs that fit (BudgetError.jobs_fit) is the same rule
    with pytest.raises(BudgetError) as over:
        run(m, prov)
    assert over.value.jobs_fit == 3
    from runner.jobs import fitting

    plan = api.plan(m)
    assert [j.cost_micros for j in fitting(plan.jobs, [], 1_500_000)] == [700_000, 350_000, 350_000]


def test_a_402_met_after_the_budget_began_stopping_the_run_ends_it_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same jobs, the balance unread (its endpoint failing): the budget begins stopping the run at the second
    $0.70, the next $0.35 meets the provider's 402. The run ends `refused` (exit 1) and says to top up the
    balance, not to raise a budget that would not help."""
    m = _alternating(tmp_path, balance=1.2, script=[{"route": "balance", "p": 1.0, "fault": "server_error",
                                                      "status": 503}])
    result, prov = run(m, allow_partial=True)
    assert (result.status, result.exit_code, result.refused) == ("refused", 1, "INSUFFICIENT_BALANCE")
    assert result.stats.counts["done"] == 2 and result.stats.counts["planned"] == 4
    assert stats(prov)["billed_micros"] == result.stats.spent_micros == 1_050_000
    m2 = _alternating(tmp_path / "cli", balance=1.2, script=[{"route": "balance", "p": 1.0, "fault": "server_error",
                                                              "status": 503}])
    assert main(["run", str(m2), "--no-report", "--allow-partial"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "stopped: the provider refused the account, its balance too low or its quota spent (HTTP 402, or a code saying so): top up the balance" in err, err
    assert "stopped by the budget" not in err, err


def _alternating(tmp: Path, **sim: Any) -> Path:
    """Six jobs, $0.70 (8 s) and $0.35 (5 s) by turns, a budget of $1.50, one at a time."""
    tmp.mkdir(exist_ok=True)
    doc = {"version": 1, "name": "alt", "provider": "sim", "model": "pixverse-v5.6",
           "params": {"prompt": "a fox {{ seed }}", "quality": "360p"},
           "matrix": {"seed": [1, 2, 3], "duration": [8, 5]},
           "run": {"budget_usd": 1.5, "concurrency": 1},
           "sim": {"render_time": 0.05, "jitter": 0.0, **sim}}
    path = tmp / "alt.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.parametrize("seeds", [(1, 2), (3, 6)], ids=["same-jobs", "new-jobs"])
def test_the_simulators_made_up_bills_never_count_for_a_real_providers_plan(
    tmp_path: Path, seeds: tuple[int, int]
) -> None:
    """Billed 4x by the simulator (`cost_factor`), then the manifest sent to the real provider: its figures are no
    bills of that provider, whether the plan has those jobs still or only new ones (the simulator's no longer in the
    manifest): the next run counts its jobs at their estimates, not 4x them."""
    from runner.jobs import Billing

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"budget_usd": 100.0},
                       sim={"render_time": 0.05, "jitter": 0.0, "cost_factor": 4})
    first, _ = run(m)
    assert first.exit_code == 0 and first.stats.spent_micros == 2 * 4 * JOB
    assert api.diff(api.plan(m)).billing == Billing(4 * JOB, JOB, first.run_id)  # the simulator's plan: counted
    doc = yaml.safe_load(m.read_text())
    doc["provider"] = "lumenfall"
    doc["matrix"]["seed"] = {"range": list(seeds)}
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    plan = api.plan(m)
    assert not plan.endpoint[0].startswith("in process")
    assert api.diff(plan).billing is None


def test_the_balance_check_weighs_the_jobs_at_the_ratio_the_latest_bills_showed(tmp_path: Path) -> None:
    """One job billed 10x ($3.50 reported for $0.35), a balance of $8.15 left. Three new jobs, estimated $1.05, cost
    $10.50 billed so: the next run, with no budget, is refused before any create, its message naming the ratio and
    the budget that sends the two the balance covers; weighed at the estimates, it passed the check."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"concurrency": 1},
                       sim={"render_time": 0.05, "jitter": 0.0, "cost_factor": 10, "balance": 8.5})
    prov = sim_provider(m)
    result, _ = run(m, prov)
    assert result.exit_code == 0 and result.stats.spent_micros == 10 * JOB
    doc = yaml.safe_load(m.read_text())
    doc["matrix"]["seed"] = {"range": [1, 4]}
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    told: list[Any] = []
    with pytest.raises(BalanceError) as refused:
        api.run(m, provider=prov, report=False, on_balance=told.append)
    assert (told[0].outcome, told[0].cost_micros, told[0].balance_micros) == ("short", 30 * JOB, 8_150_000), told
    assert stats(prov)["creates"] == 1  # the first run's only
    text = str(refused.value)
    assert "below the $10.50 the 3 jobs this run would send cost (estimated at $1.05, counted at 10x the " \
           "estimates, as run 1 was billed)" in text, text
    assert "--budget 8.15 --allow-partial" in text and refused.value.jobs_fit == 2, text


def test_a_run_past_its_budget_says_what_of_its_spending_a_simulator_billed(tmp_path: Path) -> None:
    """The note "passed its budget" says the spending a simulator billed is made-up figures: all of it, or the part of it
    (as a run that followed a provider's jobs and sent a simulator's would), and nothing of it where none was."""
    import dataclasses

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"concurrency": 1, "budget_usd": 0.35},
                       sim={"render_time": 0.05, "jitter": 0.0, "cost_factor": 2})
    run(m)
    snap = api.status(m)
    assert snap.spent_simulated_micros == 700_000
    assert snap.over_budget_note().startswith(
        "passed its budget: spent $0.70 (simulated: made-up figures, nothing paid) of $0.35, $0.35 over"), snap
    part = dataclasses.replace(snap, spent_simulated_micros=200_000).over_budget_note()
    assert part.startswith("passed its budget: spent $0.70 (of it, $0.20 simulated: made-up figures, nothing paid) "
                           "of $0.35, $0.35 over"), part
    paid = dataclasses.replace(snap, spent_simulated_micros=0).over_budget_note()
    assert paid.startswith("passed its budget: spent $0.70 of $0.35, $0.35 over") and "simulated" not in paid, paid


CHEAP = ("provider: sim\nmodels:\n  pixverse-v5.6:\n    prices:\n      currency: USD\n"
         "      base_5s: {360p: 0.000001, 540p: 0.000001, 720p: 0.000001, 1080p: 0.000001}\n")


def test_a_manifest_s_capabilities_file_lowering_prices_is_said_and_the_bills_count_against_the_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest from elsewhere names a capabilities file setting prices near 0: `plan` says so at its
    `capabilities:` item, with the file's line and both prices, and the provider's bills at gridrun's own prices,
    350,000x the estimates, count against the budget as billed rather than being doubted (the estimates counting):
    the run stops on its budget, exit 3, and the next plan counts the jobs left at what they were billed."""
    m = write_manifest(tmp_path, n_seeds=5, styles=("anime", "clay"), run={"concurrency": 1, "budget_usd": 1.00},
                       sim={"render_time": 0.05, "jitter": 0.0, "concurrency": 1})
    (tmp_path / "cheap.yaml").write_text(CHEAP)
    doc = yaml.safe_load(m.read_text())
    doc["capabilities"] = ["cheap.yaml"]
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    line = m.read_text().splitlines().index("capabilities:") + 2  # its item, on the next line
    assert main(["plan", str(m)]) == 0
    got = capsys.readouterr()
    said = " ".join((got.out + got.err).split())
    assert (f"{m}:{line}:3: capabilities[0]: the prices of cheap.yaml:4 lower gridrun's own for sim/pixverse-v5.6: "
            "job style=anime,seed=1 is priced $0.000001 where gridrun's data prices it $0.35 (10 jobs, $0.00001 where "
            "gridrun's data prices them $3.50)") in said, said
    assert "budget: $1.00 (fits" in said, said
    result, prov = run(m)  # a provider billing at gridrun's own prices
    assert (result.status, result.exit_code) == ("budget", 3)
    assert stats(prov)["creates"] == 2 and result.stats.spent_micros == 2 * JOB, result.stats.spent_micros
    assert any("the provider billed $0.35 for a job estimated $0.000001 at the prices of" in e
               for e in result.stats.last_errors), result.stats.last_errors
    done = [j for j in api.status(m).jobs if j.state == "done"]
    assert len(done) == 2 and all(j.cost_micros == JOB and not j.cost_doubted for j in done), done
    assert main(["plan", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "budget: $1.00 (exceeds: this run counts $2.80 against it" in said, said
    # the state lost and rebuilt from the output folder: its takes count as the run counted them
    lose_state(tmp_path)
    assert main(["recover", str(m)]) == 0
    capsys.readouterr()
    done = [j for j in api.status(m).jobs if j.state == "done"]
    assert len(done) == 2 and all(j.cost_micros == JOB and not j.cost_doubted for j in done), done


def test_a_bill_at_gridrun_s_own_price_of_a_job_a_file_prices_lower_counts_as_billed() -> None:
    from runner.jobs import counted_cost

    assert counted_cost(1, JOB, completed=True) == (1, True)  # no price of gridrun's own to weigh it against
    assert counted_cost(1, JOB, completed=True, own=JOB) == (JOB, False)
    assert counted_cost(1, 20 * JOB, completed=True, own=JOB) == (20 * JOB, False)
    assert counted_cost(1, 21 * JOB, completed=True, own=JOB) == (1, True)  # another unit: doubted as before
    assert counted_cost(1, 0, completed=True, own=JOB) == (1, True)
    assert counted_cost(1, JOB, completed=False, own=JOB) == (1, True)  # a failed render's charge: as before


def _cheap(tmp_path: Path, **kwargs: Any) -> Path:
    """write_manifest's manifest naming a capabilities file (CHEAP) that prices its jobs near 0."""
    m = write_manifest(tmp_path, **kwargs)
    (tmp_path / "cheap.yaml").write_text(CHEAP)
    doc = yaml.safe_load(m.read_text())
    doc["capabilities"] = ["cheap.yaml"]
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    return m


@pytest.mark.timeout(120)
def test_renders_cancel_finds_billed_at_gridrun_s_own_price_count_as_billed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run of a manifest whose capabilities file prices jobs near 0 is stopped with 2 jobs in flight, which the
    provider renders and bills at gridrun's own prices; `gridrun cancel` finds them finished: their bills count as
    billed, as the run's own poll counts them, not their estimates, and the next plan counts the jobs left at the
    ratio billed: it exceeds the budget."""
    with running_server(SimConfig(render_time=1.0, jitter=0.0, concurrency=4)) as url:
        m = _cheap(tmp_path, n_seeds=5, styles=("anime", "clay"), run={"concurrency": 2, "budget_usd": 1.00},
                   base_url=url, sim={})
        with running(m, flying=2):
            pass
        stats_url = url.rsplit("/v1", 1)[0] + "/_sim/stats"
        wait_for(lambda: httpx.get(stats_url).json()["completions"] == 2)
        result = api.cancel(m)
        assert len(result.finished) == 2 and not result.cancelled, result
    ended = [j for j in api.status(m).jobs if j.state == "downloading"]
    assert len(ended) == 2 and all(j.cost_micros == JOB and not j.cost_doubted for j in ended), ended
    assert api.status(m).spent_micros == 2 * JOB
    capsys.readouterr()
    assert main(["plan", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "budget: $1.00 (exceeds" in said, said


def test_takes_recover_adopts_billed_at_gridrun_s_own_price_count_for_the_next_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest whose capabilities file prices jobs near 0 ran into its budget; its state is lost, and `gridrun
    recover` adopts the takes, each counted at the bill its sidecar records (gridrun's own price): the
    figure it says a run would otherwise pay again is those bills, and the next plan counts the jobs left at the
    ratio they were billed, so the next run is refused before it sends, not run past the budget again."""
    m = _cheap(tmp_path, n_seeds=5, styles=("anime", "clay"), run={"concurrency": 2, "budget_usd": 1.00},
               sim={"render_time": 0.05, "jitter": 0.0, "concurrency": 2})
    result, _ = run(m)
    assert result.exit_code == 3
    done = sum(1 for j in api.status(m).jobs if j.state == "done")
    assert done >= 2
    lose_state(tmp_path)
    found = api.recover(m)
    assert found.recovered_micros == done * JOB, found.recovered_micros
    capsys.readouterr()
    assert main(["plan", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "budget: $1.00 (exceeds" in said, said
    with pytest.raises(BudgetError) as refused:
        run(m)
    assert refused.value.exit_code == 3


FREE = CHEAP.replace("0.000001", "0.0")


@pytest.mark.timeout(120)
def test_a_file_pricing_jobs_at_0_meets_the_budget_at_gridrun_s_price_once_billed_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A capabilities file prices every job at $0.00, and the provider bills gridrun's own price: once the first
    bill is seen, the run reserves the jobs it sends at gridrun's price, so it stops within its budget rather than
    passing it by a batch; its next step names the budget the jobs left need, the next plan counts them at
    gridrun's price ("exceeds"), and the next run is refused before it sends."""
    with running_server(SimConfig(render_time=0.3, jitter=0.0, concurrency=4)) as url:
        m = _cheap(tmp_path, n_seeds=5, styles=("anime", "clay"), run={"concurrency": 2, "budget_usd": 1.00},
                   base_url=url, sim={})
        (tmp_path / "cheap.yaml").write_text(FREE)
        assert main(["plan", str(m)]) == 0
        assert "budget: $1.00 (fits" in " ".join(capsys.readouterr().out.split())
        assert main(["run", str(m), "--no-report"]) == 3
        said = " ".join(capsys.readouterr().err.split())
        snap = api.status(m)
        assert snap.counts["done"] == 2 and snap.spent_micros == 2 * JOB <= 1_000_000, (snap.counts, said)
        assert ("stopped by the budget: `gridrun run --budget 2.80` sends the 8 jobs not sent ($2.80): a plain "
                "`gridrun run` refuses") in said, said
        assert main(["plan", str(m)]) == 0
        said = " ".join(capsys.readouterr().out.split())
        assert "budget: $1.00 (exceeds: this run counts $2.80 against it" in said, said
        assert main(["run", str(m), "--no-report"]) == 3
        assert api.status(m).spent_micros == 2 * JOB
