"""Refusals of the account that do not come as an HTTP 402 to a create: a render failed for the balance, a 429, 400 or
403 whose code names the quota or the billing; and a provider unavailable for a while (a 5xx with Retry-After)."""

from __future__ import annotations

from pathlib import Path

from execkit import sim_provider, stats, write_manifest

from runner import api
from runner.executor import RunOptions


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


def _down(retry_after: float, nth: list[int] | None = None) -> list[dict]:
    """Creates answered 503 with a Retry-After (the provider down for maintenance): the `nth`, else every one."""
    when = {"nth": nth} if nth else {"p": 1.0}
    return [{"route": "create", "fault": "server_error", "status": 503, "retry_after": retry_after, **when}]


def test_a_503_asking_to_wait_longer_than_the_run_waits_stops_the_run_until_then(tmp_path: Path) -> None:
    """The provider unavailable for an hour: not waited out job by job (5 minutes each try, in silence). Its request
    log, read first, has no video: the job and those not sent stay planned, the run stopped saying until when."""
    m = write_manifest(tmp_path, n_seeds=4, styles=("anime",), run={"concurrency": 1},
                       sim={"render_time": 0.1, "jitter": 0.0, "script": _down(3600)})
    import time

    before = time.time()
    result, prov = run(m, timeout=20)
    assert stats(prov)["requests"]["create"] == 1, stats(prov)["requests"]
    assert stats(prov)["requests"].get("requests", 0) >= 1  # looked up in the log before anything else
    assert result.exit_code == 1 and result.refused == "PROVIDER_UNAVAILABLE", (result.status, result.refused)
    assert result.unavailable_until is not None and before + 3590 < result.unavailable_until < time.time() + 3610
    jobs = api.status(m).jobs
    assert {j.state for j in jobs} == {"planned"}, [(j.key, j.state, j.error) for j in jobs]
    assert any("unavailable until" in (j.error or "") and "nothing paid" in (j.error or "") for j in jobs)


def test_creates_answered_503_with_retry_after_pause_together_and_stop_after_one_jobs_tries(
    tmp_path: Path, monkeypatch
) -> None:
    """Every create 503 with a short Retry-After: all creates wait it out once, together (shown in the progress as a
    429's pause is), and once a job's tries are spent the run stops, the other jobs never sent (not every job
    ground through its own tries)."""
    from runner import executor

    monkeypatch.setattr(executor, "PAUSE_SHOWN", 0.5)
    seen: list = []
    m = write_manifest(tmp_path, n_seeds=6, styles=("anime",), run={"concurrency": 2, "retries": 0},
                       sim={"render_time": 0.1, "jitter": 0.0, "script": _down(1)})
    prov = sim_provider(m)
    result = api.run(m, provider=prov, options=RunOptions(timeout=60), report=False,
                     on_progress=lambda s: seen.append((s.paused, s.paused_by)))
    tries = 0 + 3  # run.retries + 3 sends of a job whose log has nothing after each
    assert stats(prov)["requests"]["create"] <= 2 * tries, stats(prov)["requests"]
    assert stats(prov)["creates"] == 0
    assert result.refused == "PROVIDER_UNAVAILABLE" and result.exit_code == 1
    assert {j.state for j in api.status(m).jobs} == {"planned"}
    assert any(paused is not None and by == 503 for paused, by in seen), seen[-5:]


def test_a_job_interrupted_while_the_provider_is_unavailable_is_not_said_never_answered(tmp_path: Path) -> None:
    """Its create was answered (503) and the log read after it has no video: interrupted during the pause, it is
    planned again (nothing paid), not left `submitting` as a create whose answer never came."""
    import threading

    stop = threading.Event()
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"concurrency": 1},
                       sim={"render_time": 0.1, "jitter": 0.0, "script": _down(60, nth=[1])})

    def progress(s) -> None:
        if s.counts.get("submitting") and stats(prov)["requests"].get("requests", 0) >= 1:
            stop.set()

    prov = sim_provider(m)
    result = api.run(m, provider=prov, options=RunOptions(timeout=90), report=False, on_progress=progress, stop=stop)
    assert result.status == "interrupted" and stats(prov)["requests"]["create"] == 1
    job = api.status(m).jobs[0]
    assert job.state == "planned" and "answered HTTP 503" in (job.error or ""), (job.state, job.error)
    assert not any("never answered" in e for e in result.stats.last_errors), result.stats.last_errors


def test_failure_retries_are_counted_on_across_a_render_failed_for_the_account(tmp_path: Path) -> None:
    """`run.failure_retries: 2`: two renders fail, the third (the second failure retry) fails for the balance. Once
    topped up, a plain run sends the job once, as owed, and begins no new count: 4 creates in all, not 6."""
    script = [{"route": "create", "nth": [1, 2], "fault": "job_failure", "code": "GENERATION_FAILED"},
              {"route": "create", "nth": [3], "fault": "job_failure", "code": "INSUFFICIENT_BALANCE"},
              {"route": "create", "nth": [4, 5, 6, 7], "fault": "job_failure", "code": "GENERATION_FAILED"}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"concurrency": 1, "failure_retries": 2},
                       sim={"render_time": 0.1, "jitter": 0.0, "script": script})
    first, prov = run(m, poll_interval=0.05)
    assert first.status == "refused" and stats(prov)["requests"]["create"] == 3
    assert [j.state for j in api.status(m).jobs] == ["planned"]
    again, _ = run(m, prov, poll_interval=0.05)
    assert again.status == "failed" and stats(prov)["requests"]["create"] == 4, stats(prov)["requests"]


def test_a_5xx_then_a_stop_leaves_the_job_for_a_lookup_by_key_where_the_provider_ignores_keys(tmp_path: Path) -> None:
    """The provider made the video, answered the create 504 with a Retry-After, and its request log does not show
    it yet; the run is stopped meanwhile. Where keys are ignored, a new create would be a second paid video: the job
    is left `submitting` with its key, which the next run finds in the log, paying once."""
    import threading

    from runner.errors import ServerError

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"concurrency": 1},
                       sim={"render_time": 0.1, "jitter": 0.0, "honour_idempotency": False})
    prov = sim_provider(m)
    real_submit, real_find = prov.submit, prov.find_by_key
    lagging = {"on": True, "sent": 0}

    async def submit(client, body):
        lagging["sent"] += 1
        status = await real_submit(client, body)  # taken upstream: a video made, billed
        if lagging["sent"] == 1:
            raise ServerError("Gateway Timeout", status=504, code="GATEWAY_TIMEOUT", retry_after=30)
        return status

    async def find_by_key(client, key, *, created_after=None):
        return None if lagging["on"] else await real_find(client, key, created_after=created_after)

    prov.submit, prov.find_by_key = submit, find_by_key
    stop = threading.Event()

    def progress(s):
        if lagging["sent"]:
            stop.set()

    first = api.run(m, provider=prov, options=RunOptions(timeout=60), report=False, on_progress=progress, stop=stop)
    assert first.exit_code == 130, first.status
    assert [j.state for j in api.status(m).jobs] == ["submitting"]
    lagging["on"] = False
    again = api.run(m, provider=prov, options=RunOptions(timeout=60), report=False)
    assert again.exit_code == 0 and stats(prov)["creates"] == 1, stats(prov)
