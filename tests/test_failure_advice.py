"""What `status`, a run's end and `plan --retry` say of jobs that failed (or were refused) with a code gridrun knows
the same request meets again (`options.repeating_fix`: content policy, an invalid request): the fix, not a bare
"`gridrun retry` sends failed jobs again", and what sending them again unchanged cost the last time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from execkit import sim_provider, write_manifest

from runner import api
from runner.cli import main
from runner.options import RunOptions


def billing_failures(prov: Any, usd: float | None) -> None:
    """Makes the simulator's `prov` report every failed render billed `usd` (`metadata.cost`), as a provider that
    charges for moderation failures does; None: no cost reported for it at all, as a provider that does not say
    whether it bills failures."""
    make = prov.client

    class Billing(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.ASGITransport(app=prov.app)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            answer = await self.inner.handle_async_request(request)
            if request.method not in ("GET", "POST") or "/videos" not in request.url.path:
                return answer
            body = await answer.aread()
            try:
                doc = json.loads(body)
            except ValueError:
                return httpx.Response(answer.status_code, headers=answer.headers, content=body, request=request)
            if isinstance(doc, dict) and doc.get("status") == "failed":
                doc.setdefault("metadata", {})
                doc["metadata"] = {**(doc["metadata"] or {}), "cost": usd, "cost_currency": "USD"}
                if usd is None:
                    del doc["metadata"]["cost"]
            headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-length"}
            return httpx.Response(answer.status_code, headers=headers, json=doc, request=request)

    prov.client = lambda **kw: make(**kw, transport=Billing())


def said(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


def _refused_by_moderation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, usd: float | None = 0.10
                           ) -> tuple[Path, Any]:
    """Both renders of a two-job manifest refused by content moderation on their first attempt, each billed $0.10
    (`usd`; None: no cost reported): the manifest and the run's result."""
    monkeypatch.setenv("COLUMNS", "400")
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime", "clay"), run={"retries": 0},
                       sim={"render_time": 0.05, "jitter": 0.0, "script": [
                           {"route": "create", "p": 1.0, "fault": "job_failure", "code": "CONTENT_POLICY_VIOLATION"}]})
    prov = sim_provider(m)
    billing_failures(prov, usd)
    return m, api.run(m, provider=prov, options=RunOptions(poll_interval=0.05), report=False)

def test_a_first_content_policy_failure_is_told_its_fix_and_its_cost_not_a_bare_retry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both renders refused by content moderation on their first attempt, each billed $0.10: `status` and `plan
    --retry` say to change the prompt, that `gridrun retry` would send the same request, refused again, and what it
    was billed; nothing offers a bare "`gridrun retry` sends failed jobs again"."""
    m, result = _refused_by_moderation(tmp_path, monkeypatch)
    assert result.stats.counts["failed"] == 2 and result.stats.spent_micros == 200_000, result.stats.counts
    code, out = said(capsys, "status", str(m))
    assert code == 0 and "sends failed jobs again" not in out, out
    assert ("style=anime,seed=1 and 1 more job failed CONTENT_POLICY_VIOLATION: change the prompt (or its images); "
            "`gridrun retry` would send the same request, refused again and billed again ($0.10 each last time)"
            ) in out, out
    code, out = said(capsys, "plan", str(m), "--retry")
    assert code == 0 and "warning" in out and ("2 of the jobs `gridrun retry` sends failed CONTENT_POLICY_VIOLATION, "
                                               "which the same request meets again") in out, out
    assert "refused again, paid again for the 2 jobs billed the last time ($0.20): change the prompt" in out, out


def test_status_json_and_plan_json_give_the_fix_and_the_last_bill_of_a_first_content_policy_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What `status` says to run next is in `status --json` (`next`, and the commands it names), and the warning
    `plan --retry` gives of jobs refused again is in `plan --retry --json` (`refused_again`), with the jobs, what to
    change and what their last attempts were billed."""
    m, result = _refused_by_moderation(tmp_path, monkeypatch)
    assert result.stats.counts["failed"] == 2, result.stats.counts
    capsys.readouterr()
    assert main(["status", str(m)]) == 0
    text = capsys.readouterr().out
    (line,) = [" ".join(line.split()) for line in text.split("\n  ") if line.lstrip().startswith("next: ")]
    assert main(["status", str(m), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert line == f"next: {doc['next']}", (line, doc["next"])
    assert "refused again and billed again ($0.10 each last time)" in doc["next"], doc["next"]
    # the prompt is changed by hand first: neither the retry refused again nor the one sending them anyway is a step
    assert doc["next_commands"] == [], doc
    assert doc["next_note"] is None and doc["live_run"] is None and doc["missing_videos"] == [], doc
    assert main(["plan", str(m), "--retry", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    (refused,) = plan["refused_again"]
    assert {k: refused[k] for k in ("state", "code", "fix", "jobs", "billed_last_time", "billed_usd")} == {
        "state": "failed", "code": "CONTENT_POLICY_VIOLATION", "fix": "change the prompt (or its images)",
        "jobs": ["style=anime,seed=1", "style=clay,seed=1"], "billed_last_time": 2, "billed_usd": 0.2}, refused
    assert main(["plan", str(m), "--retry"]) == 0
    warned = " ".join(capsys.readouterr().err.split())
    assert f"warning: {refused['message']}" in warned, (warned, refused)
    assert "billed the last time ($0.20)" in refused["message"], refused
    assert main(["plan", str(m), "--json"]) == 0  # a plain run sends none of them again
    assert json.loads(capsys.readouterr().out)["refused_again"] is None


def test_failed_renders_whose_cost_was_not_reported_are_not_said_free(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both renders refused by content moderation, the provider reporting no cost for them (the report says "not
    reported"): `status`, a run's end and `plan --retry` say their cost was not reported, not "nothing paid" nor
    "never billed before"; `plan --retry --json` counts them apart."""
    m, result = _refused_by_moderation(tmp_path, monkeypatch, usd=None)
    assert result.stats.counts["failed"] == 2 and result.stats.spent_micros == 0, result.stats.counts
    assert [j.cost_reported_micros for j in api.status(m).jobs] == [None, None]
    code, out = said(capsys, "status", str(m))
    assert code == 0 and "nothing paid" not in out, out
    assert ("style=anime,seed=1 and 1 more job failed CONTENT_POLICY_VIOLATION: change the prompt (or its images); "
            "`gridrun retry` would send the same request, refused again (their cost was not reported: the provider may "
            "bill failed renders)") in out, out
    code, out = said(capsys, "plan", str(m), "--retry")
    assert code == 0 and "never billed" not in out, out
    assert ("2 to submit ($0.70) (2 of them settled, sent again: paid, the last attempt's cost not reported)"
            ) in out, out
    assert ("refused again, the last attempt's cost not reported for the 2 jobs: change the prompt") in out, out
    assert main(["plan", str(m), "--retry", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["against_state"]["retried"] == 2 and plan["against_state"]["retried_cost_not_reported"] == 2, plan
    (refused,) = plan["refused_again"]
    assert {k: refused[k] for k in ("billed_last_time", "billed_usd", "cost_not_reported")} == {
        "billed_last_time": 0, "billed_usd": None, "cost_not_reported": 2}, refused
    assert {j["key"]: j["status"] for j in plan["jobs"]} == dict.fromkeys(
        ("style=anime,seed=1", "style=clay,seed=1"),
        "settled, sent again by retry (paid; the cost of its last attempt was not reported)"), plan["jobs"]


def test_failed_renders_reported_free_are_said_to_have_paid_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both renders refused by content moderation, each reported at $0: nothing paid, never billed before."""
    m, _ = _refused_by_moderation(tmp_path, monkeypatch, usd=0.0)
    assert [j.cost_reported_micros for j in api.status(m).jobs] == [0, 0]
    code, out = said(capsys, "status", str(m))
    assert code == 0 and "refused again (nothing paid)" in out and "not reported" not in out, out
    code, out = said(capsys, "plan", str(m), "--retry")
    assert "(2 of them settled, sent again: paid, never billed before)" in out and "not reported" not in out, out
    assert main(["plan", str(m), "--retry", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["against_state"]["retried_cost_not_reported"] == 0, plan
    (refused,) = plan["refused_again"]
    assert (refused["billed_last_time"], refused["billed_usd"], refused["cost_not_reported"]) == (0, 0.0, 0), refused


def test_a_create_rejected_with_a_field_error_is_told_it_can_only_fail_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A create refused 422 with a field error (no code): nothing paid, but sent again unchanged it can only be
    refused again: `status` says to change the request, not a bare "`gridrun retry` sends rejected ones again"."""
    monkeypatch.setenv("COLUMNS", "400")
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"retries": 0},
                       sim={"render_time": 0.05, "jitter": 0.0})
    prov = sim_provider(m)
    make = prov.client

    class Refusing(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.ASGITransport(app=prov.app)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST" and request.url.path.endswith("/videos"):
                return httpx.Response(422, request=request, json={"detail": [
                    {"loc": ["body", "duration"], "msg": "value is not a valid enumeration member",
                     "type": "type_error.enum"}]})
            return await self.inner.handle_async_request(request)

    prov.client = lambda **kw: make(**kw, transport=Refusing())
    result = api.run(m, provider=prov, options=RunOptions(poll_interval=0.05), report=False)
    assert result.stats.counts["rejected"] == 1, result.stats.counts
    code, out = said(capsys, "status", str(m))
    assert code == 0 and "sends rejected ones again" not in out, out
    assert ("change the request; `gridrun retry` would send the same request, refused again (nothing paid)") in out, out


def test_a_runs_end_says_the_fix_of_a_first_content_policy_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run whose every render is refused by content moderation ends saying to change the prompt, and how to send
    the jobs anyway, not a bare "`gridrun retry` sends failed jobs again"."""
    monkeypatch.setenv("COLUMNS", "400")
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime", "clay"), run={"retries": 0},
                       sim={"render_time": 0.05, "jitter": 0.0, "script": [
                           {"route": "create", "p": 1.0, "fault": "job_failure", "code": "CONTENT_POLICY_VIOLATION"}]})
    code, out = said(capsys, "run", str(m), "--no-report")
    last = out.rsplit("some jobs did not finish", 1)[1]
    assert code == 1 and "sends failed jobs again" not in last, out
    assert ("failed CONTENT_POLICY_VIOLATION: change the prompt (or its images); `gridrun retry` would send the same "
            "request, refused again (nothing paid); `gridrun retry --code CONTENT_POLICY_VIOLATION` sends them anyway"
            ) in last, out


def test_a_billed_failed_attempt_a_failure_retry_sent_again_is_in_the_exports_costs_and_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first render fails billed $0.35, its failure retry and the other job complete at $0.35: the run spent
    $1.05. The rows' `cost_with_failed_attempts_usd` sum to it, the failed job's saying $0.70; the summary's
    `cost_by_run` adds up to `spent_usd`; and the report's cost cell shows the failed attempt's charge."""
    from runner.export import ROW_FIELDS, export_rows, summary

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime", "clay"), run={"retries": 0, "concurrency": 1},
                       sim={"render_time": 0.05, "jitter": 0.0, "concurrency": 1, "script": [
                           {"route": "create", "nth": 1, "fault": "job_failure", "code": "INTERNAL_ERROR"}]})
    prov = sim_provider(m)
    billing_failures(prov, 0.35)
    result = api.run(m, provider=prov, options=RunOptions(poll_interval=0.05, failure_retries=1), report=False)
    assert result.stats.counts["done"] == 2 and result.stats.spent_micros == 1_050_000, result.stats.counts
    snap = api.status(m)
    rows = {r["key"]: r for r in export_rows(snap)}
    assert ROW_FIELDS[-1] == "cost_with_failed_attempts_usd"
    assert sum(r["cost_with_failed_attempts_usd"] for r in rows.values()) == pytest.approx(1.05), rows
    retried = [r for r in rows.values() if r["attempts"] == 2]
    assert len(retried) == 1 and (retried[0]["cost_usd"], retried[0]["cost_with_failed_attempts_usd"]) == (0.35, 0.7)
    s = summary(snap)
    assert s["spent_usd"] == pytest.approx(1.05) and sum(s["cost_by_run"].values()) == pytest.approx(1.05), s
    assert (s["cost_with_failed_attempts_usd"], s["cost_failed_attempts_usd"]) == (pytest.approx(1.05), pytest.approx(0.35))
    page = api.report(m).read_text(encoding="utf-8")
    assert "(+$0.35 for a failed attempt, billed and sent again)" in page
    assert '"xa":350000' in page.replace(" ", "") and '"xf":true' in page.replace(" ", "")


@pytest.mark.parametrize(("billed", "said"), [
    ((0, 0), " (nothing paid);"),
    ((None,), " (its cost was not reported: the provider may bill failed renders);"),
    ((0, None, None), " (nothing paid for 1 of them, the cost of 2 not reported: the provider may bill failed renders);"),
    ((100_000, None), (" and billed again ($0.10 for 1 job of them last time) (the cost of 1 of them was not "
                       "reported: the provider may bill failed renders);")),
    ((100_000, 100_000), " and billed again ($0.10 each last time);"),
])
def test_a_refusal_met_again_says_what_was_paid_apart_from_what_was_not_reported(
    billed: tuple[int | None, ...], said: str,
) -> None:
    from runner.cli import Refusal, _refused_again_steps

    fix = "change the prompt (or its images)"
    again = {f"i={n}": Refusal("failed", "CONTENT_POLICY_VIOLATION", fix, b) for n, b in enumerate(billed)}
    (step,) = _refused_again_steps(again)
    assert f"`gridrun retry` would send the same request, refused again{said}" in step, step
