"""What a run's end, `status` and `plan --retry` say of the jobs a retry would send again: the free steps first,
what each send may cost, and which jobs a retry picks."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

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


PLAN_GRID = ("version: 1\nname: fox\nmodel: pixverse-v5.6\nparams:\n  prompt: \"a fox {{ a }}\"\n  quality: 360p\n"
             "matrix:\n  a: [1, 2, 3]\nsim: {render_time: 0.05, jitter: 0, failure_rate: 1.0}\n")


def test_plan_retry_says_paid_not_paid_again_for_failed_jobs_never_billed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three renders failed, billed nothing: `plan --retry` says a retry pays for them, not that it pays again,
    in each row and in its summary."""
    monkeypatch.setenv("COLUMNS", "400")
    m = tmp_path / "f.yaml"
    m.write_text(PLAN_GRID, encoding="utf-8")
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 1
    code, out, _ = run_cli(capsys, "plan", str(m), "--retry")
    assert code == 0 and ("as `gridrun retry`: 3 to submit ($1.05) (3 of them settled, sent again: paid, never "
                          "billed before)") in out, out
    assert "paid again" not in out, out
    doc = json.loads(run_cli(capsys, "plan", str(m), "--retry", "--json")[1])
    assert all(j["status"] == "settled, sent again by retry (paid; nothing was billed for it before)"
               for j in doc["jobs"]), doc["jobs"]


def test_plan_retry_unknown_summary_says_the_jobs_may_pay_twice_as_its_rows_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Jobs of unknown outcome: `plan --retry --unknown` says in its summary, as in each row, that sending them
    again may pay twice, not that it pays again."""
    from execkit import quick_backoff, sim_provider, write_manifest

    from runner import api, executor
    from runner.executor import RunOptions

    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setattr(executor, "LOG_SETTLE", 0.05)
    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"retries": 0},
                       sim={"render_time": 0.1, "jitter": 0.0,
                            "script": [{"route": "create", "p": 1.0, "fault": "held"}]})
    result = api.run(m, provider=sim_provider(m), options=RunOptions(), report=False)
    assert result.stats.counts["unknown"] == 2
    code, out, _ = run_cli(capsys, "plan", str(m), "--retry", "--unknown")
    assert code == 0 and "2 to submit ($0.70) (2 of them settled, sent again: may pay twice)" in out, out
    assert "paid again" not in out, out


def test_an_attempt_of_unknown_outcome_sent_again_by_retry_unknown_stays_counted_as_possibly_billed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two jobs left rendering, then of unknown outcome once the provider lost their videos (an in-process
    simulator's world not kept); `retry --unknown` sends them again under new keys and pays for them. The earlier
    attempts, which may have been billed, stay in sight: `status` says so, `status --json` lists them with their
    $0.70, and the export's summary carries the same figure."""
    from execkit import sim_provider, write_manifest

    from runner import api
    from runner.executor import RunOptions

    monkeypatch.setenv("COLUMNS", "400")
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 3.0, "jitter": 0.0})
    api.run(m, provider=sim_provider(m), options=RunOptions(timeout=0.3), report=False)
    assert api.run(m, provider=sim_provider(m), report=False).stats.counts["unknown"] == 2  # a fresh world
    m.write_text(m.read_text().replace("render_time: 3.0", "render_time: 0.05"))
    again = api.run(m, provider=sim_provider(m), options=RunOptions(retry_unknown=True), report=False)
    assert again.stats.counts["done"] == 2, again.stats.counts
    doc = json.loads(run_cli(capsys, "status", str(m), "--json")[1])
    assert doc["possibly_billed_usd"] == pytest.approx(0.7), doc
    assert sorted(p["key"] for p in doc["possibly_billed"]) == ["style=anime,seed=1", "style=anime,seed=2"], doc["possibly_billed"]
    assert all(p["run"] == 1 and p["usd"] == pytest.approx(0.35) for p in doc["possibly_billed"])
    assert doc["possibly_billed_simulated_usd"] == pytest.approx(0.7), doc
    code, out, _ = run_cli(capsys, "status", str(m))
    out = " ".join(out.split())
    assert code == 0 and ("all runs: $0.70 more may have been billed by a simulator for 2 jobs of unknown outcome run 1 "
                          "sent (style=anime,seed=1, style=anime,seed=2), which `gridrun retry --unknown` sent again: "
                          "their earlier attempts, counted in no figure above, simulated (made-up figures, nothing "
                          "paid)") in out, out
    written = api.export(m, formats=["json"])
    summary = json.loads(written[0].read_text())["summary"]
    assert (summary["possibly_billed_jobs"], summary["possibly_billed_usd"]) == (2, pytest.approx(0.7)), summary
    assert summary["possibly_billed_simulated_usd"] == pytest.approx(0.7), summary
    # the report's row says them as the report's other simulated figures, not in the red of money that may be owed
    assert api.report(m) is not None
    page = (tmp_path / "outputs" / "t" / "report.html").read_text()
    row = page.split("attempts sent again by retry --unknown")[1].split("</div>")[0]
    assert '<small class="simulated possibly-billed">' in row and "over-budget" not in row, row
    assert "by a simulator" in row and "made-up figures, nothing paid" in row and "may have been paid" not in row, row

    # an attempt no simulator answered (a provider's, as an attempt recorded with simulator 0 is) may have been paid
    with closing(sqlite3.connect(tmp_path / ".gridrun" / "state.db")) as db:
        db.execute("UPDATE attempts SET simulator = 0 WHERE state = 'failed' AND job_id = (SELECT MIN(job_id) FROM attempts)")
        db.commit()
    doc = json.loads(run_cli(capsys, "status", str(m), "--json")[1])
    assert doc["possibly_billed_simulated_usd"] == pytest.approx(0.35), doc
    out = " ".join(run_cli(capsys, "status", str(m))[1].split())
    assert ("all runs: $0.70 more may have been billed for 2 jobs of unknown outcome run 1 sent (style=anime,seed=1, "
            "style=anime,seed=2), which `gridrun retry --unknown` sent again: their earlier attempts, counted in no "
            "figure above, may have been paid (the provider's dashboard or billing tells); of that, $0.35 simulated "
            "(made-up figures, nothing paid)") in out, out
    assert api.report(m) is not None
    page = (tmp_path / "outputs" / "t" / "report.html").read_text()
    row = page.split("attempts sent again by retry --unknown")[1].split("</div>")[0]
    assert '<strong class="over-budget possibly-billed">' in row and "of that, $0.35 simulated" in row, row


def test_retry_and_plan_retry_send_again_only_the_jobs_picked_by_key_and_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three renders failed: `plan --retry --key` previews sending one of them again, `retry --key` sends that one
    alone, leaving the others failed; `--code` picks by the provider's code of the last error, none when no job
    failed with it; and either without --retry in `plan` is refused."""
    monkeypatch.setenv("COLUMNS", "400")
    m = tmp_path / "f.yaml"
    m.write_text(PLAN_GRID, encoding="utf-8")
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 1
    m.write_text(PLAN_GRID.replace("failure_rate: 1.0", "failure_rate: 0.0"), encoding="utf-8")
    code, out, _ = run_cli(capsys, "plan", str(m), "--retry", "--key", "a=2")
    assert code == 0 and "as `gridrun retry`: 1 to submit ($0.35)" in out, out
    doc = json.loads(run_cli(capsys, "plan", str(m), "--retry", "--code", "internal_error", "--json")[1])
    assert doc["against_state"]["to_submit"] == 0, doc["against_state"]
    doc = json.loads(run_cli(capsys, "plan", str(m), "--retry", "--code", "CONTENT_POLICY_VIOLATION", "--key", "a=[13]",
                             "--json")[1])
    assert doc["against_state"]["to_submit"] == 2, doc["against_state"]
    code, _, err = run_cli(capsys, "plan", str(m), "--key", "a=2")
    assert code != 0 and "give them with --retry" in err, err
    code, _, err = run_cli(capsys, "retry", str(m), "--no-report", "--code", "INTERNAL_ERROR")
    from runner import api

    assert {j.key: j.state for j in api.status(m).jobs} == {"a=1": "failed", "a=2": "failed", "a=3": "failed"}
    code, _, err = run_cli(capsys, "retry", str(m), "--no-report", "--key", "a=2")
    assert {j.key: j.state for j in api.status(m).jobs} == {"a=1": "failed", "a=2": "done", "a=3": "failed"}, err
    assert {j.key: j.attempts for j in api.status(m).jobs} == {"a=1": 1, "a=2": 2, "a=3": 1}


@pytest.mark.parametrize("unknown", [False, True], ids=["retry", "retry-unknown"])
def test_retry_key_and_code_plan_their_selection_against_the_state_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, unknown: bool,
) -> None:
    """`gridrun retry --key/--code` reads the state for its selection once: the command line warns of it and the
    run refuses by it, from one plan against the state, not one each (nor, with --unknown, a third for the jobs of
    unknown outcome it picks)."""
    from execkit import quick_backoff, write_manifest

    from runner import api, executor

    monkeypatch.setenv("COLUMNS", "400")
    if unknown:  # every create held by a gateway, no retries: both jobs of unknown outcome
        monkeypatch.setattr(executor, "LOG_SETTLE", 0.05)
        quick_backoff(monkeypatch)
        m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"retries": 0},
                           sim={"render_time": 0.1, "jitter": 0.0,
                                "script": [{"route": "create", "p": 1.0, "fault": "held"}]})
        pick, left = "style=anime,seed=2", {"style=anime,seed=1": "unknown"}
    else:  # three renders failed
        m = tmp_path / "f.yaml"
        m.write_text(PLAN_GRID, encoding="utf-8")
        pick, left = "a=2", {"a=1": "failed", "a=3": "failed"}
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 1
    assert {j.state for j in api.status(m).jobs} == {"unknown" if unknown else "failed"}
    if unknown:  # the gateway holds creates no more
        write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"retries": 0},
                       sim={"render_time": 0.1, "jitter": 0.0})
    else:
        m.write_text(PLAN_GRID.replace("failure_rate: 1.0", "failure_rate: 0.0"), encoding="utf-8")
    diff = api.diff
    picks: list[tuple[str, ...]] = []

    def counted(*args: object, **kw: object) -> object:
        if kw.get("only_keys") or kw.get("only_codes"):
            picks.append((*kw.get("only_keys", ()), *kw.get("only_codes", ())))  # type: ignore[misc]
        return diff(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(api, "diff", counted)
    command = ["retry", str(m), "--no-report", "--key", pick, "--key", "nothing=*", *(["--unknown"] if unknown else [])]
    code, _, err = run_cli(capsys, *command)
    assert picks == [(pick, "nothing=*")], (picks, err)
    said = " ".join(err.split())
    assert code == 1 and "warning: --key 'nothing=*' matches none of the jobs" in said, said  # the others left
    if unknown:
        assert "warning: 1 job of unknown outcome may already have been paid for" in said, said  # the one picked
    assert {j.key: j.state for j in api.status(m).jobs} == {**left, pick: "done"}, err


def test_a_failure_that_repeats_on_every_attempt_is_said_with_its_count_and_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every render refused by content moderation, each job tried three times (a run, then two `gridrun retry`:
    failure retries are not spent on such a failure): the retry's end and `status` say how often and with which
    code, and that the prompt is what to change, as `gridrun retry` sends the same request again; `status` lists
    each job with the attempt it ended on."""
    monkeypatch.setenv("COLUMNS", "400")
    m = tmp_path / "f.yaml"
    m.write_text(PLAN_GRID, encoding="utf-8")
    assert run_cli(capsys, "run", str(m), "--no-report", "--failure-retries", "2")[0] == 1
    assert run_cli(capsys, "retry", str(m), "--no-report")[0] == 1
    code, _, err = run_cli(capsys, "retry", str(m), "--no-report")
    said = ("a=1 and 2 more jobs failed 3 times, each CONTENT_POLICY_VIOLATION: change the prompt (or its images), "
            "as `gridrun retry` sends the same request again")
    assert code == 1 and said in " ".join(err.split()), err
    last = " ".join(err.split()).rsplit("some jobs did not finish", 1)[1]
    assert last.count("`gridrun retry`") == 1 and "sends failed jobs again" not in last, err
    code, out, _ = run_cli(capsys, "status", str(m))
    assert code == 0 and said in out, out
    assert "failed a=1 and 2 more jobs (attempt 3): CONTENT_POLICY_VIOLATION" in out, out


def test_status_json_and_the_export_give_a_repeated_failure_in_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What `status` says in words of jobs refused alike on every attempt, `status --json` gives each problem job in
    figures (its code, its failed attempts, whether every one carried that code, what to change), and the export
    in columns; a job whose attempts failed with different codes is told apart."""
    from runner import api
    from runner.export import export_rows

    monkeypatch.setenv("COLUMNS", "400")
    m = tmp_path / "f.yaml"
    # the run's first render fails with an internal error, every other one with a moderation verdict
    m.write_text(PLAN_GRID.replace("failure_rate: 1.0}", "failure_rate: 1.0, script: [{route: create, nth: 1, "
                                   "fault: job_failure, code: INTERNAL_ERROR}]}"), encoding="utf-8")
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 1
    m.write_text(PLAN_GRID, encoding="utf-8")  # the simulator's knobs are no part of a job's request
    assert run_cli(capsys, "retry", str(m), "--no-report")[0] == 1
    code, out, _ = run_cli(capsys, "status", str(m), "--json")
    assert code == 0, out
    problems = {p["key"]: p for p in json.loads(out)["problems"]}
    alike = {k: p for k, p in problems.items() if p["same_code"]}
    assert len(alike) == 2 and len(problems) == 3, problems
    for p in alike.values():
        assert (p["code"], p["failed_attempts"], p["fix"]) == (
            "CONTENT_POLICY_VIOLATION", 2, "change the prompt (or its images)"), p
    ((mixed_key, mixed),) = [(k, p) for k, p in problems.items() if not p["same_code"]]
    assert (mixed["code"], mixed["failed_attempts"]) == ("CONTENT_POLICY_VIOLATION", 2), mixed
    rows = {r["key"]: r for r in export_rows(api.status(m))}
    assert (rows[mixed_key]["error_code"], rows[mixed_key]["failed_attempts"], rows[mixed_key]["same_code"]) == (
        "CONTENT_POLICY_VIOLATION", 2, False)
    assert all((rows[k]["failed_attempts"], rows[k]["same_code"]) == (2, True) for k in alike)


def test_a_job_selection_without_a_retry_is_refused() -> None:
    """`only_keys` and `only_codes` pick what a retry sends again: given to a plain run, or to a diff that is no
    retry's, they are a usage error, as is a single string where a list is meant."""
    from runner import api
    from runner.errors import UsageError
    from runner.options import RunOptions

    with pytest.raises(UsageError, match="go with retry"):
        RunOptions(only_keys=("a=*",))
    with pytest.raises(UsageError, match="list of non-empty strings"):
        RunOptions(retry_failed=True, only_codes="INTERNAL_ERROR")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="go with retry"):
        api.diff("no-such.yaml", only_codes=["INTERNAL_ERROR"])
    assert RunOptions(retry_failed=True, only_keys=["a=[12]"]).picks("a=2", None)
    assert not RunOptions(retry_failed=True, only_codes=["internal_error"]).picks("a=2", "CONTENT_POLICY_VIOLATION: x")


def test_a_retry_step_names_the_failed_jobs_other_than_those_that_failed_alike_every_time() -> None:
    """Of three failed jobs, one refused alike on both its attempts: its own step says what to change, and the
    plain retry step names the other two, not "failed jobs" as if all of them."""
    from runner.cli import _steps

    said = _steps({"failed": 3}, None, budget=None, repeated={"a=1": (2, "CONTENT_POLICY_VIOLATION", "failed")}).text
    assert "a=1 failed 2 times, each CONTENT_POLICY_VIOLATION" in said, said
    assert said.endswith("`gridrun retry` sends the other 2 failed jobs again"), said
    said = _steps({"failed": 1}, None, budget=None, repeated={"a=1": (2, "CONTENT_POLICY_VIOLATION", "failed")}).text
    assert said.count("`gridrun retry`") == 1, said


def test_a_retry_selection_that_picks_no_job_is_refused_before_a_run_is_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three renders failed with CONTENT_POLICY_VIOLATION: `retry --code` of another code, or `--key` of a glob
    that matches none of them, is refused (exit 2) naming what it could pick, and records no run; a glob that picks
    nothing beside one that does is warned of; `plan --retry` warns the same."""
    from runner import api

    monkeypatch.setenv("COLUMNS", "400")
    m = tmp_path / "f.yaml"
    m.write_text(PLAN_GRID, encoding="utf-8")
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 1
    assert len(api.runs(m)) == 1
    code, _, err = run_cli(capsys, "retry", str(m), "--no-report", "--code", "INTERNAL_EROR")
    flat = " ".join(err.split())
    assert code == 2 and "--code INTERNAL_EROR picks none of the 3 jobs `gridrun retry` sends again" in flat, err
    assert "CONTENT_POLICY_VIOLATION ×3" in flat and "e.g. --key a=1;" in flat, err
    code, _, err = run_cli(capsys, "retry", str(m), "--no-report", "--key", "nomatch*")
    assert code == 2 and "--key 'nomatch*' picks none of the 3 jobs" in " ".join(err.split()), err
    code, out, _ = run_cli(capsys, "status", str(m), "--runs")
    assert code == 0 and "retry" not in out, out
    assert len(api.runs(m)) == 1
    code, out, err = run_cli(capsys, "plan", str(m), "--retry", "--code", "NOPE")
    assert code == 0 and "`gridrun retry` would refuse: --code NOPE picks none of the 3 jobs" in " ".join(
        err.split()), err
    m.write_text(PLAN_GRID.replace("failure_rate: 1.0", "failure_rate: 0.0"), encoding="utf-8")
    code, _, err = run_cli(capsys, "retry", str(m), "--no-report", "--key", "a=2", "--key", "b=*")
    assert code == 1 and "--key 'b=*' matches none of the jobs `gridrun retry` sends again" in " ".join(
        err.split()), err
    assert {j.key: j.state for j in api.status(m).jobs} == {"a=1": "failed", "a=2": "done", "a=3": "failed"}


def test_a_library_retry_whose_selection_picks_no_job_is_refused_and_records_no_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """`runner.run(..., options={"retry_failed": True, "only_codes": [...]})` of a code no failed job has refuses
    as `gridrun retry` does (UsageError naming what it could pick): no run recorded, nothing sent."""
    from runner import api
    from runner.errors import UsageError

    m = tmp_path / "f.yaml"
    m.write_text(PLAN_GRID, encoding="utf-8")
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 1
    with pytest.raises(UsageError, match=r"--code INTERNAL_EROR picks none of the 3 jobs"):
        api.run(api.plan(m), options={"retry_failed": True, "only_codes": ["INTERNAL_EROR"]}, report=False)
    with pytest.raises(UsageError, match=r"--key 'z\*' picks none of the 3 jobs"):
        api.run(m, options={"retry_failed": True, "only_keys": ["z*"]}, report=False)
    with pytest.raises(UsageError, match=r"there is none that `gridrun retry --unknown` sends again"):
        api.run(m, options={"retry_unknown": True, "only_keys": ["a=1"]}, report=False)
    code, _, err = run_cli(capsys, "retry", str(m), "--unknown", "--no-report", "--key", "a=1")
    assert code == 2 and "there is none that `gridrun retry --unknown` sends again" in " ".join(err.split()), err
    assert len(api.runs(m)) == 1
    assert {j.state for j in api.status(m).jobs} == {"failed"}


def test_a_failure_code_in_lower_case_is_read_as_the_providers_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A gateway writing its codes in lower case (`moderation_blocked`): the code is read as it is written, so the
    moderation verdict spends no failure retry, `status --json` gives it with what to change, and `--code` picks it
    in either case; a field a message names after the request line is no code."""
    from runner import api
    from runner.options import error_code

    monkeypatch.setenv("COLUMNS", "400")
    m = tmp_path / "f.yaml"
    m.write_text(PLAN_GRID.replace("failure_rate: 1.0", "failure_rate: 1.0, failure_code: moderation_blocked"),
                 encoding="utf-8")
    assert run_cli(capsys, "run", str(m), "--no-report", "--failure-retries", "1")[0] == 1
    assert {j.key: j.attempts for j in api.status(m).jobs} == {"a=1": 1, "a=2": 1, "a=3": 1}
    code, out, _ = run_cli(capsys, "status", str(m), "--json")
    problems = json.loads(out)["problems"]
    assert len(problems) == 3 and all(
        (p["code"], p["same_code"], p["fix"]) == ("moderation_blocked", True, "change the prompt (or its images)")
        for p in problems), problems
    for given in ("moderation_blocked", "MODERATION_BLOCKED"):
        code, out, err = run_cli(capsys, "plan", str(m), "--retry", "--code", given, "--json")
        assert code == 0 and json.loads(out)["against_state"]["to_submit"] == 3, (out, err)
        assert "is the code of none" not in err, err
    assert error_code("not sent, nothing paid: HTTP 400, moderation_blocked: POST /v1/videos: no") == "moderation_blocked"
    assert error_code("HTTP 400 (no code given): POST /v1/videos: image_url: must be a URL") is None
    assert error_code("the render failed: try again") is None


def test_failure_retries_read_a_code_by_its_whole_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A code that names the provider's trouble (an upstream's bad response, a moderation service timing out) is sent
    again by run.failure_retries though it holds INVALID or MODERATION; a moderation verdict by another name (safety,
    NSFW, a filter, a flag) is not."""
    from runner import api
    from runner.options import repeating_fix

    monkeypatch.setenv("COLUMNS", "400")
    m = tmp_path / "f.yaml"
    m.write_text(PLAN_GRID.replace("failure_rate: 1.0", "failure_rate: 1.0, failure_code: UPSTREAM_INVALID_RESPONSE"),
                 encoding="utf-8")
    code, _, err = run_cli(capsys, "run", str(m), "--no-report", "--failure-retries", "1")
    assert code == 1 and "would repeat" not in err, err
    assert {j.key: j.attempts for j in api.status(m).jobs} == {"a=1": 2, "a=2": 2, "a=3": 2}
    problems = json.loads(run_cli(capsys, "status", str(m), "--json")[1])["problems"]
    assert [p["fix"] for p in problems] == [None, None, None], problems
    for code_ in ("MODERATION_SERVICE_TIMEOUT", "UPSTREAM_INVALID_RESPONSE", "INTERNAL_ERROR", "UPSTREAM_ERROR"):
        assert repeating_fix(code_) is None, code_
    for code_ in ("SAFETY_FILTERED", "NSFW", "CONTENT_FILTERED", "FLAGGED", "moderation_blocked",
                  "content_policy_violation", "CONTENT_POLICY_VIOLATION"):
        assert repeating_fix(code_) == "change the prompt (or its images)", code_
    for code_ in ("INVALID_REQUEST", "BAD_REQUEST", "invalid_request_error"):
        assert repeating_fix(code_) == "change the request", code_


@pytest.mark.parametrize("key", ["shot=[wide]", "shot=close*", "shot=a?c", "shot=[!w]"])
def test_the_key_a_selection_that_picks_nothing_proposes_picks_that_job_alone(key: str) -> None:
    """The `--key` a refusal (and a warning) proposes is a glob that picks exactly its job, though the key holds
    the glob's own characters (`[`, `*`, `?`), among keys those characters would match as a glob."""
    import shlex

    from runner.options import picked, selection_misses

    others = ["shot=w", "shot=closeup", "shot=abc", "shot=[wide]x", "shot=x"]
    candidates = [(key, "RENDER_ERROR: failed"), *((k, "RENDER_ERROR: failed") for k in others if k != key)]
    refusal, _ = selection_misses(candidates, ["nope"], [])
    assert refusal is not None
    proposed = shlex.split(refusal.split("(e.g. --key ", 1)[1].split(";", 1)[0])[0]
    assert [k for k, e in candidates if picked(k, e, (proposed,), ())] == [key], proposed
    _, warned = selection_misses(candidates, ["nope", "shot=x"], [])
    proposed = shlex.split(warned[0].split("(e.g. --key ", 1)[1].rsplit(")", 1)[0])[0]
    assert [k for k, e in candidates if picked(k, e, (proposed,), ())] == [key], proposed


def test_a_pasted_proposed_key_holding_glob_characters_sends_that_job_again_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Failed jobs `shot=[wide]` and `shot=w`: the key `retry --key nope` proposes, pasted, sends `shot=[wide]`
    again, not `shot=w`, which the glob `shot=[wide]` matches."""
    import shlex

    from runner import api

    monkeypatch.setenv("COLUMNS", "400")
    m = tmp_path / "f.yaml"
    m.write_text(PLAN_GRID.replace("a: [1, 2, 3]", 'a: ["[wide]", "w"]'), encoding="utf-8")
    assert run_cli(capsys, "run", str(m), "--no-report")[0] == 1
    code, _, err = run_cli(capsys, "retry", str(m), "--no-report", "--key", "nope")
    flat = " ".join(err.split())
    assert code == 2 and "(e.g. --key " in flat, err
    proposed = shlex.split(flat.split("(e.g. --key ", 1)[1].split(";", 1)[0])[0]
    m.write_text(m.read_text().replace("failure_rate: 1.0", "failure_rate: 0.0"), encoding="utf-8")
    run_cli(capsys, "retry", str(m), "--no-report", "--key", proposed)
    assert {j.key: j.state for j in api.status(m).jobs} == {"a=[wide]": "done", "a=w": "failed"}, proposed


MIXED_REFUSALS = """\
version: 1
name: mixed
provider: sim
model: pixverse-v5.6
params: {prompt: "a fox, {{ look }} look", quality: 540p, duration: 5}
matrix: {look: [a, b, c, d]}
output: "{{ look }}.mp4"
run: {budget_usd: 5, concurrency: 1, retries: 0}
sim:
  render_time: 0.05
  jitter: 0
  concurrency: 1
  script:
    - {route: create, fault: job_failure, code: CONTENT_POLICY_VIOLATION, nth: [1, 3]}
    - {route: create, fault: job_failure, code: INTERNAL_ERROR, nth: [4]}
"""


def test_the_step_for_the_other_failed_jobs_names_the_retry_that_sends_them_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two jobs refused for their prompt, one failed INTERNAL_ERROR: the step for the other one names the retry
    that picks it alone (a plain `gridrun retry` sends the refused ones again too), at the run's end and in
    `status`; a `--key` that picks nothing gives as its example a job that would not be refused again."""
    from runner import api

    monkeypatch.setenv("COLUMNS", "400")
    m = tmp_path / "m.yaml"
    m.write_text(MIXED_REFUSALS, encoding="utf-8")
    code, _, err = run_cli(capsys, "run", str(m), "--no-report")
    assert code == 1, err
    states = {j.key: j.state for j in api.status(m).jobs}
    assert sorted(states.values()) == ["done", "failed", "failed", "failed"], states
    end = " ".join(err.split())
    assert "`gridrun retry --code INTERNAL_ERROR` sends the other failed job again" in end, end
    assert "`gridrun retry` sends the other" not in end, end
    code, out, _ = run_cli(capsys, "status", str(m))
    flat = " ".join(out.split())
    assert code == 0 and "`gridrun retry --code INTERNAL_ERROR` sends the other failed job again" in flat, flat
    code, _, err = run_cli(capsys, "retry", str(m), "--no-report", "--key", "look=z")
    assert code == 2 and "e.g. --key look=d;" in " ".join(err.split()), err
