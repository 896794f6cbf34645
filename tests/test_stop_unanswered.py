"""A run that stops (the first Ctrl-C, a job's `--timeout`) while creates go unanswered or the provider pauses
every request: no create is sent after the stop, a job whose create may have been taken is left as recorded
(`submitting`, its key kept) for the next run to settle by its key, and the run ends instead of waiting out
resends or a pause that would only lead it to leave."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Self

import anyio.lowlevel
import httpx
import pytest
from execkit import check_outputs, quick_backoff, sim_provider, stats, write_manifest

from runner import api
from runner.executor import RunOptions

HELD = [{"route": "create", "p": 1.0, "fault": "held"}]


def _run(m: Path, provider: Any, **opts: Any) -> Any:
    return api.run(m, provider=provider, options=RunOptions(**opts), report=False)


def _interrupt_at_first_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first Ctrl-C comes as the run first looks up a create whose answer was lost, once the jobs sent in the
    same moment have had their turn to send theirs: in this process a held create fails at once, before they
    would otherwise have had it."""
    from runner.executor import Executor

    find = Executor._find

    async def interrupted(self: Executor, *args: Any, **kw: Any) -> Any:
        await anyio.lowlevel.checkpoint()
        self._interrupt("Ctrl-C again to detach")
        return await find(self, *args, **kw)

    monkeypatch.setattr(Executor, "_find", interrupted)


@pytest.mark.timeout(120)
def test_a_create_whose_answer_was_lost_is_not_sent_again_after_the_first_ctrl_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create's answer is lost (a gateway holds it) and the run is interrupted: the create is not sent again
    (a proxy that swallowed the first would make the second the paid one). The job is left `submitting`, its key
    kept, the run `interrupted`; the next run finds the video the held create made by that key, and pays once."""
    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"retries": 5},
                       sim={"render_time": 0.1, "jitter": 0.0, "script": HELD})
    prov = sim_provider(m)
    sim = prov.app.state.sim
    _interrupt_at_first_lookup(monkeypatch)
    first = _run(m, prov)
    job = api.status(m).jobs[0]
    assert sim.requests["create"] == len(sim.held) == 1, sim.requests
    assert first.status == "interrupted" and first.exit_code == 130, first.status
    assert job.state == "submitting" and job.attempts == 1, (job.state, job.error)
    assert "sends it again with that key" in (job.error or ""), job.error
    monkeypatch.undo()
    assert sim.release_held() == 1  # it lands: one video, for the key
    sim.configure({"script": []})
    again = _run(m, prov, poll_interval=0.1)
    assert again.exit_code == 0 and again.stats.counts["done"] == 1, again.stats.counts
    assert stats(prov)["creates"] == 1 and stats(prov)["duplicate_paid"] == 0, stats(prov)
    assert api.status(m).jobs[0].attempts == 1
    check_outputs(m)


def _cli(*words: str, cwd: Path) -> tuple[int, str, str]:
    """`gridrun WORDS` in `cwd`, in this process: (exit code, stdout, stderr), each said on one line."""
    import contextlib
    import io

    from runner.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(words))
    return code, " ".join(out.getvalue().split()), " ".join(err.getvalue().split())


@pytest.mark.timeout(120)
def test_jobs_whose_create_went_unanswered_are_not_said_to_be_collected_at_no_new_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run interrupted while its creates went unanswered does not call those jobs paid and in flight, collected
    at no new cost: it says they were sent, their answer never came, and that the next run looks them up by key and
    sends them again if the provider has none, which may cost their estimate; so does `status`."""
    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"retries": 5},
                       sim={"render_time": 0.1, "jitter": 0.0, "script": HELD})
    _interrupt_at_first_lookup(monkeypatch)
    code, _, err = _cli("run", str(m), "--no-report", cwd=tmp_path)
    assert code == 130, err
    assert {j.state for j in api.status(m).jobs} == {"submitting"}, [(j.state, j.error) for j in api.status(m).jobs]
    assert "at no new cost" not in err and "paid job" not in err, err
    assert ("interrupted with 2 jobs sent whose answer never came (created or not, unknown), not sent again: "
            "`gridrun run` looks them up by key and sends them again with the same key if the provider has no such "
            "job, which may cost their estimate ($") in err, err
    _, out, _ = _cli("status", str(m), cwd=tmp_path)
    assert "at no new cost" not in out, out
    assert ("next: `gridrun run` looks up the 2 jobs sent whose answer never came (created or not, unknown) by key "
            "and sends them again with the same key if the provider has no such job, which may cost their estimate "
            "($") in out, out


@pytest.mark.timeout(120)
def test_a_jobs_timeout_counts_the_create_that_goes_unanswered_and_ends_its_resends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--timeout` counts from the create: one a gateway holds is not sent again past the job's deadline (resends
    of minutes each, with the request timeout and the log's settling). The job is left `submitting`, its key
    kept, and the run `incomplete`; the next run finds the video the create made by that key, paying once."""
    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"retries": 5},
                       sim={"render_time": 0.1, "jitter": 0.0, "script": HELD})
    prov = sim_provider(m)
    sim = prov.app.state.sim
    first = _run(m, prov, timeout=1)
    job = api.status(m).jobs[0]
    assert sim.requests["create"] == 1, sim.requests
    assert job.state == "submitting" and "its timeout (1 s) passed" in (job.error or ""), (job.state, job.error)
    assert first.status == "incomplete", (first.status, job.error)
    assert sim.release_held() == 1
    sim.configure({"script": []})
    again = _run(m, prov, poll_interval=0.1)
    assert again.exit_code == 0 and stats(prov)["creates"] == 1 and stats(prov)["duplicate_paid"] == 0
    check_outputs(m)


def _paused_at_first_create(m: Path, stop: Any = None) -> Any:
    """The simulator of `m`, whose first create is answered 429 with a Retry-After of a day (every request of the
    run waits the longest pause, minutes); `stop`, set as that 429 comes."""
    from runner.errors import RateLimitedError

    prov = sim_provider(m)
    prov.app.state.sim.configure({"script": [{"route": "create", "nth": [1], "fault": "rate_limited",
                                              "retry_after": 86400, "retry_style": "seconds"}]})
    submit = prov.submit

    async def paused(client: Any, body: Any) -> Any:
        try:
            return await submit(client, body)
        except RateLimitedError:
            if stop is not None:
                stop.set()
            raise

    prov.submit = paused  # type: ignore[method-assign]
    return prov


def _cut_in_the_pause_of_a_429(tmp_path: Path, how: str) -> tuple[Path, Any, Any]:
    """A one-job manifest, its simulator (`_paused_at_first_create`) and its job as the run left it, stopped (`how`:
    "stop", the first Ctrl-C; "detach", a SIGTERM or a second one) as the 429 to its first create came; the run
    ended interrupted, the job planned."""
    import threading

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    event = threading.Event()
    prov = _paused_at_first_create(m, event)
    result = api.run(m, provider=prov, report=False, **{how: event})
    job = api.status(m).jobs[0]
    assert result.status == "interrupted" and job.state == "planned", (result.status, job.state, job.error)
    return m, prov, job


@pytest.mark.timeout(120)
def test_the_first_ctrl_c_cuts_a_providers_pause_that_only_a_create_waits_for(tmp_path: Path) -> None:
    """A 429 asks every request to wait a day (held to minutes); the first Ctrl-C comes during that pause. No
    create is sent after it, so the create waiting for the pause is not sent: the run ends at once (the test's
    cap guards it), the job planned, nothing paid, rather than waiting minutes only to leave."""
    m, prov, job = _cut_in_the_pause_of_a_429(tmp_path, "stop")
    assert prov.app.state.sim.requests["create"] == 1 and stats(prov)["creates"] == 0
    assert "not sent: the run stopped (interrupt)" in (job.error or ""), job.error


@pytest.mark.timeout(120)
def test_a_detach_in_a_providers_pause_after_a_429_plans_the_job_again_not_sent(tmp_path: Path) -> None:
    """The caller detaches the run (as a SIGTERM or a second Ctrl-C does) during the pause a 429 to the job's only
    create asked for: the provider refused that create, and none other was sent, so nothing can have been taken.
    The job is planned again, not sent (not left submitting for the next run to look up by its key), and the next
    run pays for it once."""
    m, prov, job = _cut_in_the_pause_of_a_429(tmp_path, "detach")
    assert "not sent: the run was interrupted while the provider was refusing creates (429), nothing paid" in (
        job.error or ""), job.error
    assert prov.app.state.sim.requests["create"] == 1 and stats(prov)["creates"] == 0
    prov.app.state.sim.configure({"script": []})
    again = api.run(m, provider=prov, report=False)
    assert again.exit_code == 0 and stats(prov)["creates"] == 1 and stats(prov)["duplicate_paid"] == 0
    check_outputs(m)


@pytest.mark.timeout(120)
def test_a_jobs_timeout_cuts_a_providers_pause_its_create_waits_for(tmp_path: Path) -> None:
    """As the first Ctrl-C, a job's deadline (`--timeout`) cuts the provider's pause its create waits for: not sent
    past it, the job is planned again, nothing paid, and the run ends at the deadline, not minutes after: left by
    its timeout, nothing failed, the run is incomplete (exit 4), as a job left rendering at its timeout leaves it."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    prov = _paused_at_first_create(m)
    result = _run(m, prov, timeout=1)
    job = api.status(m).jobs[0]
    assert job.state == "planned" and "its timeout (1 s) passed" in (job.error or ""), (job.state, job.error)
    assert prov.app.state.sim.requests["create"] == 1 and stats(prov)["creates"] == 0
    assert result.status == "incomplete" and result.exit_code == 4, result.status
    assert result.paused_out == 1 and api.status(m).run.status == "incomplete"


@pytest.mark.timeout(120)
def test_a_jobs_timeout_in_the_wait_after_its_create_could_not_connect_says_so_not_429(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every create of the job fails to open its connection (a provider down), and the job's timeout passes as it
    waits to send the next: not sent, nothing paid, said as what happened, not as a provider refusing creates."""
    from runner.cli import main
    from runner.errors import ConnectError

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    prov = sim_provider(m)

    async def unreachable(client: Any, body: Any) -> Any:
        raise ConnectError("connection refused")

    prov.submit = unreachable  # type: ignore[method-assign]
    monkeypatch.setattr(api, "_provider", lambda plan: prov)
    assert main(["run", str(m), "--timeout", "1", "--retries", "100", "--no-report"]) == 4
    said = " ".join(capsys.readouterr().err.split())
    job = api.status(m).jobs[0]
    assert job.state == "planned" and "its timeout (1 s) passed" in (job.error or ""), (job.state, job.error)
    assert "could not reach the provider" in (job.error or "") and "429" not in (job.error or ""), job.error
    assert api.status(m).run.status == "incomplete" and stats(prov)["creates"] == 0
    assert ("incomplete: 1 job not sent: its timeout (1 s a job) passed while its create could not reach the "
            "provider, nothing paid") in said and "429" not in said, said


@pytest.mark.timeout(120)
def test_a_jobs_timeout_in_the_wait_after_a_5xx_the_log_shows_made_nothing_says_so_not_429(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every create of the job is answered HTTP 500, the provider's request log then read having no video for its
    key, and the job's timeout passes as it waits to send the next: not sent, nothing paid, the run incomplete (exit
    4), said at the run's end as what happened, not as a provider refusing creates."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0, "script": [
        {"route": "create", "p": 1.0, "fault": "server_error", "status": 500}]})
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda plan: prov)
    assert main(["run", str(m), "--timeout", "1", "--retries", "100", "--no-report"]) == 4
    said = " ".join(capsys.readouterr().err.split())
    job = api.status(m).jobs[0]
    assert job.state == "planned" and "its timeout (1 s) passed" in (job.error or ""), (job.state, job.error)
    assert "answered HTTP 500 and the provider's request log has no video for it" in (job.error or ""), job.error
    assert api.status(m).run.status == "incomplete" and stats(prov)["creates"] == 0
    assert prov.app.state.sim.requests["create"] >= 1
    assert ("incomplete: 1 job not sent: its timeout (1 s a job) passed while its create was answered HTTP 500 and "
            "the provider's request log has no video for it, nothing paid") in said and "429" not in said, said


@pytest.mark.timeout(120)
def test_a_jobs_timeout_in_the_pause_another_jobs_429_asked_for_before_its_first_create_ends_incomplete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two jobs; the first create is answered 429 with a pause of a day, which every request waits (held to minutes):
    the other job's first create waits in it, and both timeouts pass there. Neither is sent, nothing paid, nothing
    failed: the run is incomplete (exit 4), as with one job, and its end names the 429's pause for both."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 2},
                       sim={"render_time": 0.1, "jitter": 0.0})
    prov = _paused_at_first_create(m)
    monkeypatch.setattr(api, "_provider", lambda plan: prov)
    assert main(["run", str(m), "--timeout", "1", "--no-report"]) == 4
    said = " ".join(capsys.readouterr().err.split())
    jobs = api.status(m).jobs
    assert [j.state for j in jobs] == ["planned", "planned"], [(j.state, j.error) for j in jobs]
    assert prov.app.state.sim.requests["create"] == 1 and stats(prov)["creates"] == 0
    assert api.status(m).run.status == "incomplete", said
    assert all("the provider was refusing creates (429)" in (j.error or "") for j in jobs), [j.error for j in jobs]
    assert ("incomplete: 2 jobs not sent: their timeout (1 s a job) passed while the provider was refusing creates "
            "(429), nothing paid") in said, said


@pytest.mark.timeout(120)
def test_a_jobs_timeout_that_passed_before_its_first_create_without_a_providers_pause_is_no_429(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job whose timeout is gone before its first create may leave, with no pause the provider asked for (the
    clock read past the deadline as the create would go): not sent, nothing paid, and not said to be held by a
    429, nor counted among the jobs such a pause left."""
    from runner.executor import Executor

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    prov = sim_provider(m)
    halted = Executor._halted

    def late(self: Executor, deadline: float | None) -> str | None:
        if deadline is not None and self.timeout and not prov.app.state.sim.requests["create"]:
            return f"its timeout ({self.timeout:g} s) passed"
        return halted(self, deadline)

    monkeypatch.setattr(Executor, "_halted", late)
    result = _run(m, prov, timeout=30)
    job = api.status(m).jobs[0]
    assert job.state == "planned" and "before its create left" in (job.error or ""), (job.state, job.error)
    assert "429" not in (job.error or "") and result.paused_out == 0, (job.error, result.paused_out)
    assert stats(prov)["creates"] == 0


@pytest.mark.timeout(120)
def test_a_run_whose_timeout_left_one_job_rendering_and_one_unsent_in_a_pause_ends_incomplete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first job is sent and renders past its timeout; every later create is answered 429 with a pause of a
    day: at the timeouts one job is left rendering and one left unsent, nothing failed. The run ends incomplete
    (exit 4) and says both."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 2},
                       sim={"render_time": 30.0, "jitter": 0.0})
    prov = sim_provider(m)
    prov.app.state.sim.configure({"script": [{"route": "create", "nth": [2, 3, 4, 5, 6], "fault": "rate_limited",
                                              "retry_after": 86400, "retry_style": "seconds"}]})
    monkeypatch.setattr(api, "_provider", lambda plan: prov)
    assert main(["run", str(m), "--timeout", "1", "--no-report"]) == 4
    said = " ".join(capsys.readouterr().err.split())
    assert stats(prov)["creates"] == 1 and api.status(m).run.status == "incomplete"
    # no poll answered in the pause: the provider last said, as it took the create, that it was queued
    assert "incomplete: 1 job still queued, not seen rendering, at its timeout (1 s a job) was left at the provider" \
        in said, said
    assert ("incomplete: 1 job not sent: its timeout (1 s a job) passed while the provider was refusing creates "
            "(429), nothing paid: `gridrun run` sends") in said, said


@pytest.mark.timeout(120)
def test_after_the_first_ctrl_c_a_lost_creates_lookup_is_tried_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The create's answer is lost and so is that of the lookup of its key (a gateway that answers nothing, each
    request waiting the request timeout): once the run is interrupted, the lookup is not tried again (three
    lookups of a request timeout each would hold the first Ctrl-C for minutes). The job is left `submitting`."""
    from runner.errors import OutcomeUnknownError

    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    prov = sim_provider(m)
    creates: list[str] = []
    lookups: list[str] = []

    async def unanswered(client: Any, body: Any) -> Any:
        creates.append(body["idempotency_key"])
        raise OutcomeUnknownError("no answer within the request timeout")

    async def lookup(client: Any, key: str, **kw: Any) -> Any:
        lookups.append(key)
        raise OutcomeUnknownError("no answer within the request timeout")

    prov.submit, prov.find_by_key = unanswered, lookup  # type: ignore[method-assign]
    _interrupt_at_first_lookup(monkeypatch)
    result = _run(m, prov)
    job = api.status(m).jobs[0]
    assert len(creates) == 1 and len(lookups) == 1, (creates, lookups)
    assert result.status == "interrupted" and job.state == "submitting", (result.status, job.state, job.error)


def _run_vanishing(m: Path) -> Any:
    """A run of `m` whose provider vanishes once its creates are answered, then stopped."""
    import threading

    prov = sim_provider(m)
    stop = threading.Event()
    make = prov.client

    def client(**kw: Any) -> httpx.AsyncClient:
        return make(**kw, transport=_Vanishing(prov.app, len(api.plan(m).jobs), stop))

    prov.client = client
    return api.run(m, provider=prov, options=RunOptions(poll_interval=0.05), stop=stop, report=False)


class _Vanishing(httpx.AsyncBaseTransport):
    """The provider's transport, gone (every request refused at connect) once it has answered `creates` creates;
    then it sets `stop`, as the first Ctrl-C would."""

    def __init__(self, app: Any, creates: int, stop: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.creates, self.stop, self.gone = creates, stop, False

    async def handle_async_request(self, request: Any) -> Any:
        if self.gone:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith("/videos") and response.status_code < 300:
            self.creates -= 1
            if self.creates == 0:
                self.gone = True
                self.stop.set()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.timeout(120)
def test_a_stopping_run_whose_provider_answers_nothing_leaves_its_jobs_in_flight_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider vanishes once the creates are answered, and the run is stopped (the first Ctrl-C): it does
    not poll the dead endpoint for ever. Once every request has failed unanswered for STOP_UNANSWERED seconds, it
    ends `interrupted` with the jobs left in flight, as the second signal would, saying why; and their notes, read
    by `status` after the run, say when the last poll failed, not that the run is "still polling"."""
    from runner import executor

    quick_backoff(monkeypatch)
    monkeypatch.setattr(executor, "STOP_UNANSWERED", 0.5)
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), sim={"render_time": 600, "jitter": 0.0})
    result = _run_vanishing(m)
    assert result.status == "interrupted" and result.exit_code == 130, result.status
    jobs = api.status(m).jobs
    assert len(jobs) == 3 and {j.state for j in jobs} <= {"submitted", "running"}, [(j.state, j.error) for j in jobs]
    said = [e for e in result.stats.last_errors if "has not answered" in e]
    assert said and "left the 3 paid jobs in flight to the next run" in said[0], result.stats.last_errors
    assert not [e for e in result.stats.last_errors if "still polling" in e], result.stats.last_errors
    for j in jobs:
        assert (j.error or "").startswith("last poll failed at "), j.error
        assert "could not connect" in (j.error or "") and "still polling" not in (j.error or ""), j.error
    _, out, _ = _cli("status", str(m), cwd=tmp_path)
    assert "still polling" not in out and "last poll failed at " in out, out


@pytest.mark.timeout(120)
def test_status_of_a_run_over_whose_jobs_notes_say_still_polling_says_their_polls_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that could not put its jobs' notes in the past as it ended (killed, crashed, or an older gridrun's) left
    them saying "polls fail, still polling": `status` of the run, over, says their polls failed."""
    from runner import executor

    quick_backoff(monkeypatch)
    monkeypatch.setattr(executor, "STOP_UNANSWERED", 0.5)
    monkeypatch.setattr(executor.Executor, "_polls_over", lambda self: None)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 600, "jitter": 0.0})
    assert _run_vanishing(m).status == "interrupted"
    assert {(j.error or "").split(":")[0] for j in api.status(m).jobs} == {"polls fail, still polling"}
    _, out, _ = _cli("status", str(m), cwd=tmp_path)
    assert "still polling" not in out and "and 1 more job: polls failed: GET /videos/{id}: could not connect" in out, out
    _, doc, _ = _cli("status", str(m), "--json", cwd=tmp_path)
    assert "still polling" not in doc and "polls failed: GET" in doc, doc


def test_a_provider_that_hangs_is_silent_from_when_the_unanswered_poll_was_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A poll sent at 0 that times out unanswered at 30 (a provider that accepts connections and never answers):
    the provider counts as silent since 0, when the poll was sent, so a stopping run leaves STOP_UNANSWERED
    seconds after the stop, not a request timeout later. An answer to another request in between bounds it."""
    from types import SimpleNamespace

    from runner.errors import TransportError
    from runner.executor import Executor
    from runner.pacing import Pacer

    quick_backoff(monkeypatch)
    now = [0.0]
    pacer = Pacer(lambda: now[0])

    class Hanging:
        calls = 0

        async def get(self, client: Any, pid: str) -> Any:
            Hanging.calls += 1
            if Hanging.calls > 1:
                raise KeyboardInterrupt  # ends the test's loop of polls
            now[0] += 30.0
            raise TransportError("GET /videos/v1: read timed out")

    fake = SimpleNamespace(pacer=pacer, provider=Hanging(), client=None, retries=3, _unanswered={}, _poll_noted={},
                           _poll_error=lambda *a, **kw: None, _files_short=lambda exc: False,
                           _files_out=lambda short: False, _files_out_since=None, _files_ran_out=False,
                           _files_out_said=anyio.Event)
    with pytest.raises(KeyboardInterrupt):
        anyio.run(Executor._get, fake, SimpleNamespace(key="a=1"), "v1")
    assert pacer.unanswered_since == 0.0, pacer.unanswered_since

    pacer.unanswered_since, pacer.answered_at = None, 12.0
    pacer.failed(TransportError("read timed out"), sent_at=0.0)
    assert pacer.unanswered_since == 12.0


def _left_downloading_after_a_ctrl_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: dict[str, Any],
                                     stop_unanswered: float, **options: Any) -> int:
    """Run two jobs against a served simulator whose every file answer has `fault`, press Ctrl-C once they
    download, with STOP_UNANSWERED at `stop_unanswered`: the run must end `interrupted`, saying it left the two paid
    jobs downloading to the next run, both recorded so, keeping no count of their downloads. The file requests the
    simulator got."""
    import os
    import signal

    from runner import executor
    from runner.executor import Executor
    from runner.sim.config import SimConfig
    from runner.sim.serve import running_server

    quick_backoff(monkeypatch)
    monkeypatch.setattr(executor, "STOP_UNANSWERED", stop_unanswered)
    config = SimConfig.from_dict({"render_time": 0.1, "jitter": 0.0, "script": [{"route": "file", "p": 1.0, **fault}]})
    termed: list[int] = []
    executors: list[Executor] = []
    real_statistics = Executor.statistics

    def statistics(self: Executor) -> Any:
        if not executors:
            executors.append(self)
        return real_statistics(self)

    def term_once_downloading(s: Any) -> None:
        if s.counts.get("downloading") and not termed:
            termed.append(1)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Executor, "statistics", statistics)
    with running_server(config) as url:
        m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), base_url=url, sim={})
        result = api.run(m, options=RunOptions(poll_interval=0.05, handle_signals=True, **options),
                         on_progress=term_once_downloading, report=False)
        files = httpx.get(url.rsplit("/v1", 1)[0] + "/_sim/stats").json()["requests"].get("file", 0)
        jobs = api.status(m).jobs
    assert termed and result.status == "interrupted" and result.exit_code == 130, (result.status, result.stats.last_errors)
    said = [e for e in result.stats.last_errors if "the videos' downloads got " in e]
    assert said and "left the 2 paid jobs downloading to the next run" in said[0], result.stats.last_errors
    assert [j.state for j in jobs] == ["downloading", "downloading"], [(j.state, j.error) for j in jobs]
    assert executors and executors[0]._fetch_high == {}, executors[0]._fetch_high
    return int(files)


@pytest.mark.timeout(180)
def test_a_stopping_run_whose_downloads_hang_leaves_them_to_the_next_run_within_the_stop_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The videos' file host takes connections and never answers (a download waits out the request timeout, try
    after try), and the run gets Ctrl-C as its jobs download: the downloads' own tries do not hold it past the
    bound. Once the downloads have got nothing for STOP_UNANSWERED seconds it ends `interrupted`, the jobs left
    downloading for the next run (which fetches them at no cost), and says why."""
    # each download's answer comes long after its request timeout (1 s), so late that no try gets it; enough tries
    # that, each waiting out its request timeout, they would hold the run far past the bound
    files = _left_downloading_after_a_ctrl_c(tmp_path, monkeypatch, {"fault": "slow", "delay": 5.0}, 0.5,
                                             request_timeout=1.0, retries=20)
    assert files < 2 * 20, files  # the downloads' tries were cut short, not all made


def test_a_lookup_of_a_key_that_hangs_counts_as_the_providers_silence_as_a_poll_does() -> None:
    """A lookup of a lost create's key sent at 0 that times out unanswered at 30: the provider counts as silent
    since 0, so a stopping run waiting on the lookup leaves within STOP_UNANSWERED, as for a poll; an answered
    lookup ends the silence."""
    from types import SimpleNamespace

    from runner.errors import TransportError
    from runner.executor import Executor
    from runner.pacing import Pacer

    now = [0.0]
    pacer = Pacer(lambda: now[0])

    class Hanging:
        calls = 0

        async def find_by_key(self, client: Any, key: str, **kw: Any) -> Any:
            Hanging.calls += 1
            now[0] += 30.0
            raise TransportError("GET /requests: read timed out")

    fake = SimpleNamespace(pacer=pacer, provider=Hanging(), client=None, _interrupted=None, _no_log=False,
                           _halted=lambda until: "interrupted", steady=lambda: now[0])
    found = anyio.run(Executor._find, fake, "key-1", None)
    assert found == (None, False) and Hanging.calls == 1
    assert pacer.unanswered_since == 0.0, pacer.unanswered_since

    class Answering:
        async def find_by_key(self, client: Any, key: str, **kw: Any) -> Any:
            return None

    fake.provider = Answering()
    assert anyio.run(Executor._find, fake, "key-1", None) == (None, True)
    assert pacer.unanswered_since is None and pacer.answered_at == 30.0


@pytest.mark.timeout(180)
def test_a_stopping_run_whose_download_stalls_mid_body_leaves_it_to_the_next_run_within_the_stop_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file host sends half of each video, then nothing for a long while, without failing, and the run gets
    Ctrl-C as its jobs download: the stall counts as silence from the last bytes that came, so the run ends
    `interrupted` within the bound, the jobs left downloading for the next run, saying why, before the stall
    ends."""
    files = _left_downloading_after_a_ctrl_c(tmp_path, monkeypatch, {"fault": "stall_body", "delay": 30.0}, 0.5)
    assert files == 2, files  # one try each, its stall not over


@pytest.mark.timeout(120)
def test_the_notes_of_jobs_left_by_a_provider_that_answers_nothing_say_when_with_the_date_and_the_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state keeps a job's note for whoever reads it later, in another time zone or another day: when its last
    poll failed, and when the provider last answered, read as the moment they were (date, time and offset from
    UTC), as every time gridrun shows, not as a bare hour of the zone the run was in."""
    import re
    import time

    from runner import executor

    quick_backoff(monkeypatch)
    monkeypatch.setattr(executor, "STOP_UNANSWERED", 0.5)
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 600, "jitter": 0.0})
        result = _run_vanishing(m)
    finally:
        monkeypatch.undo()
        time.tzset()
    moment = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0900"
    said = [e for e in result.stats.last_errors if "has not answered" in e]
    assert said and re.search(f"the provider has not answered since {moment} ", said[0]), said
    jobs = api.status(m).jobs
    assert len(jobs) == 2, jobs
    for j in jobs:
        assert re.match(f"last poll failed at {moment}: ", j.error or ""), j.error


class _Trickler:
    """A provider on 127.0.0.1 (the Lumenfall API's shape) whose every video completes at once, and whose video
    file comes as a valid MP4's first bytes, then 1 KiB every 50 ms for ever (`trickle`; else whole)."""

    def __init__(self) -> None:
        import json
        import threading
        import time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        payload = bytes(200_000)  # a minimal ISO BMFF file: ftyp, an empty moov, an mdat
        video = (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00\x00\x00\x08moov"
                 + (8 + len(payload)).to_bytes(4, "big") + b"mdat" + payload)
        self.trickle, self.creates, self.ended = True, 0, threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, doc: dict[str, Any]) -> None:
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.creates += 1
                self.reply({"id": f"v{owner.creates}", "status": "queued"})

            def do_GET(self) -> None:
                if self.path.endswith("/balance"):
                    return self.reply({"balance": 100, "currency": "USD"})
                if self.path.startswith("/v1/videos/"):
                    port = self.server.server_address[1]
                    return self.reply({"id": self.path.rsplit("/", 1)[1], "status": "completed",
                                       "output": {"url": f"http://127.0.0.1:{port}/files/v.mp4"},
                                       "metadata": {"cost": 0.35, "cost_currency": "USD"}})
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                if not owner.trickle:
                    self.send_header("Content-Length", str(len(video)))
                    self.end_headers()
                    self.wfile.write(video)
                    return
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    self.wfile.write(video[:1024])
                    while not owner.ended.is_set():
                        self.wfile.write(bytes(1024))
                        self.wfile.flush()
                        time.sleep(0.05)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ended.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.mark.timeout(120)
def test_a_stopping_run_whose_downloads_trickle_leaves_them_to_the_next_run_within_the_stop_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The video's host sends a byte now and then, never so little that the download stalls: after a Ctrl-C the run
    counts that trickle as no answer, ends `interrupted` once the download has got less than STOP_STREAM_BYTES in
    STOP_UNANSWERED seconds, the job left downloading (paid, recorded), and the next run fetches the video without
    paying for it again."""
    import os
    import signal

    from runner import executor

    quick_backoff(monkeypatch)
    monkeypatch.setattr(executor, "STOP_UNANSWERED", 0.5)
    monkeypatch.setenv("LUMENFALL_API_KEY", "sk-test")
    termed: list[int] = []

    def term_once_downloading(s: Any) -> None:
        if s.counts.get("downloading") and not termed:
            termed.append(1)
            os.kill(os.getpid(), signal.SIGINT)

    with _Trickler() as host:
        m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), provider="lumenfall", base_url=host.url, sim={})
        result = api.run(m, options=RunOptions(poll_interval=0.05, handle_signals=True),
                         on_progress=term_once_downloading, report=False)
        assert termed and result.status == "interrupted" and result.exit_code == 130, (
            result.status, result.stats.last_errors)
        said = [e for e in result.stats.last_errors if re.search(r"downloads got (nothing|[\d,]+ bytes? \(under 1 MiB\)) in", e)]
        assert said and "left the 1 paid job downloading to the next run" in said[0], result.stats.last_errors
        assert [j.state for j in api.status(m).jobs] == ["downloading"]
        host.trickle = False
        again = api.run(m, options=RunOptions(poll_interval=0.05), report=False)
        assert again.exit_code == 0 and [j.state for j in api.status(m).jobs] == ["done"]
        assert host.creates == 1


@pytest.mark.timeout(180)
def test_a_stopping_run_whose_download_tries_each_end_on_the_read_timeout_leaves_them_within_the_stop_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file host sends half of what each try asks for, then nothing, and every try ends on the read timeout,
    well inside STOP_UNANSWERED, the next beginning at once: a try that begins is no sign of the video coming in,
    so after a Ctrl-C the run ends `interrupted` once the downloads have got under STOP_STREAM_BYTES since the stop,
    the jobs left downloading for the next run, not after every try is used up."""
    files = _left_downloading_after_a_ctrl_c(tmp_path, monkeypatch, {"fault": "stall_body", "delay": 60.0}, 3.0,
                                             request_timeout=0.3, retries=100)
    assert 2 < files < 2 * 102, files  # tries ended on the read timeout and others began; not all were made


def _downloading(now: list[float], fetching: dict[int, list[Any]], downloading: int, *, at_api: bool = False) -> Any:
    """An executor with only what its downloads' counts need: `fetching` (job id -> [its `.part`, its size last
    seen, the bytes not this try's, when this try began]), `downloading` jobs in all, `now` its clock; the
    downloads of `fetching` from the API's own host (`at_api`) or from another."""
    from collections import deque

    from runner.executor import IN_FLIGHT, Executor

    ex = Executor.__new__(Executor)
    ex.steady = lambda: now[0]
    ex.counts = {s.value: 0 for s in IN_FLIGHT}
    ex.counts["downloading"] = downloading
    ex._fetching, ex._fetch_high, ex._grown, ex._streamed_at = fetching, {}, 0, None
    ex._grew = deque([(float("-inf"), 0)])
    ex._download_at_api = dict.fromkeys(fetching, at_api)
    return ex


def test_a_download_fetched_again_from_byte_0_brings_no_new_bytes_to_a_stopping_run(tmp_path: Path) -> None:
    """A server that ignores ranges sends a try the same first bytes again: the `.part` file written anew up to
    the size an earlier try had reached is no growth (the silence a stopping run counts goes on), and only bytes
    beyond it are."""
    from runner.executor import STOP_UNANSWERED

    now = [0.0]
    part = tmp_path / "s1.mp4.part"
    part.write_bytes(bytes(3_000_000))
    ex = _downloading(now, {7: [str(part), 0, 0, 0.0]}, 1)
    assert ex._fetched() == 3_000_000 and ex._grown == 3_000_000
    now[0] = 10.0
    part.write_bytes(b"")  # the next try starts the file again
    ex._fetching[7] = [str(part), 0, 0, 10.0]
    ex._fetched()
    now[0] = 20.0
    part.write_bytes(bytes(2_900_000))  # the same first bytes, again
    assert ex._fetched() == 3_000_000  # what has come: the most the file has held
    assert ex._grown == 3_000_000 and ex._stalled_since(1) == 0.0  # counted from the first try, not this one
    assert not ex._coming_in(10.0 + STOP_UNANSWERED)  # nothing new since 10 s
    now[0] = 30.0
    part.write_bytes(bytes(7_000_000))
    ex._fetched()
    assert ex._grown == 7_000_000
    assert ex._coming_in(29.0 + STOP_UNANSWERED)  # 4 MB in the last STOP_UNANSWERED seconds
    assert not ex._coming_in(30.0 + STOP_UNANSWERED)


def test_the_bytes_a_stopping_run_counts_as_videos_coming_in_are_a_mib_for_each_job_downloading() -> None:
    """Four jobs downloading, their tries ending on the read timeout one after another: of the jobs downloading,
    not of the tries under way at the moment the files are looked at, each must have got STOP_STREAM_BYTES for the
    videos to count as coming in; 1.5 MiB while one try is under way is not it."""
    import tempfile

    from runner.executor import STOP_STREAM_BYTES

    now = [0.0]
    with tempfile.TemporaryDirectory() as folder:
        part = Path(folder) / "s1.mp4.part"
        part.write_bytes(b"")
        ex = _downloading(now, {1: [str(part), 0, 0, 0.0]}, 4)
        ex._fetched()
        assert not ex._coming_in(0.0)
        now[0] = 30.0
        part.write_bytes(bytes(STOP_STREAM_BYTES * 3 // 2))  # the one try under way
        assert not ex._coming_in(30.0)
        now[0] = 40.0
        part.write_bytes(bytes(STOP_STREAM_BYTES * 4))
        assert ex._coming_in(40.0)


def _stopping_with_a_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rate: Any) -> tuple[float, str]:
    """A run stopped at 0 s on its own clock, one paid job downloading since -100 s, its file growing by `rate(t)`
    bytes in the second before t: drive `_unanswered_stop` (its checks a second apart, the clock moved by its
    sleeps) to the moment it leaves the job to the next run. That moment (seconds after the stop), and its note."""
    from types import SimpleNamespace

    from runner import executor
    from runner.executor import Executor

    now = [-100.0]
    part = tmp_path / "s1.mp4.part"
    part.write_bytes(b"")
    ex = _downloading(now, {1: [str(part), 0, 0, -100.0]}, 1)
    ex.pacer = SimpleNamespace(unanswered_since=None, answered_at=None)
    ex.errors = []
    left: list[float] = []
    ex._detach = lambda scope: left.append(now[0])

    async def sleep(seconds: float) -> None:
        for _ in range(round(seconds)):
            now[0] += 1.0
            with part.open("ab") as f:
                f.write(bytes(rate(now[0])))
            ex._fetched()  # as progress is drawn

    async def stopped() -> None:
        pass

    async def until_the_stop() -> None:
        await sleep(100.0)

    with pytest.raises(StopIteration):
        until_the_stop().send(None)
    ex._interrupted, ex._interrupted_at = SimpleNamespace(wait=stopped), now[0]
    monkeypatch.setattr(executor, "anyio", SimpleNamespace(sleep=sleep))
    with pytest.raises(StopIteration):
        Executor._unanswered_stop(ex, None).send(None)
    assert left and ex.errors, ex.errors
    return left[0], ex.errors[-1]


def test_a_stopping_run_leaves_a_download_slower_than_a_mib_a_minute_at_the_stop_bound_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A video that came fast until 50 s before the stop, then at 0.9 MiB a minute: at no moment since the stop
    has it got STOP_STREAM_BYTES in STOP_UNANSWERED seconds, so the run leaves it to the next run STOP_UNANSWERED
    seconds after the stop, as its note says, not when a count begun before the stop runs out."""
    from runner.executor import STOP_STREAM_BYTES, STOP_UNANSWERED

    left, note = _stopping_with_a_download(
        tmp_path, monkeypatch, lambda t: 200_000 if t <= -50 else int(0.9 * STOP_STREAM_BYTES / 60))
    assert left == STOP_UNANSWERED, (left, note)
    assert note.startswith(f"the videos' downloads got 0.9 MB (under 1 MiB) in the last "
                           f"{STOP_UNANSWERED:g} s, {STOP_UNANSWERED:g} s after the run began stopping: left the 1 "
                           "paid job downloading to the next run"), note


def test_a_stopping_run_leaves_a_download_at_the_first_moment_it_got_under_a_mib_in_the_last_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A video that came fast until the stop, then 1.5 MB in the minute after it, then nothing: the run waits while
    the last STOP_UNANSWERED seconds brought STOP_STREAM_BYTES, and leaves at the first check they did not (the
    bytes of the 42 s from 18 s to 60 s, 1.05 MB, are a MiB; from 19 s, 1.025 MB, are not: 79 s), as its note says,
    not a minute after the MiB that came first."""
    from runner.executor import STOP_UNANSWERED

    assert STOP_UNANSWERED == 60
    left, note = _stopping_with_a_download(tmp_path, monkeypatch,
                                           lambda t: 200_000 if t <= 0 else 25_000 if t <= 60 else 0)
    assert left == 79.0, (left, note)
    assert "got 1.0 MB (under 1 MiB) in the last 60 s, 79 s after the run began stopping" in note


def test_the_bytes_a_download_counts_over_the_last_minute_are_kept_no_longer() -> None:
    """What a stopping run needs of the downloads' growth is the last STOP_UNANSWERED seconds of it, and the count
    just before: a run downloading for hours keeps no more."""
    import tempfile

    from runner.executor import STOP_UNANSWERED

    now = [0.0]
    with tempfile.TemporaryDirectory() as folder:
        part = Path(folder) / "s1.mp4.part"
        ex = _downloading(now, {1: [str(part), 0, 0, 0.0]}, 1)
        for second in range(1, 3601):
            now[0] = float(second)
            part.write_bytes(bytes(second * 10))
            ex._fetched()
    assert len(ex._grew) == STOP_UNANSWERED + 1, len(ex._grew)
    assert ex._grew_since(3600 - STOP_UNANSWERED) == STOP_UNANSWERED * 10


@pytest.mark.parametrize("at_api", [True, False], ids=["api-host", "other-host"])
def test_a_stopping_run_asks_a_mib_a_minute_only_of_the_downloads_that_can_be_receiving(
        tmp_path: Path, at_api: bool) -> None:
    """28 jobs downloading, as many of them as hold a download slot (DOWNLOAD_CONNECTIONS from the API's own host,
    HOST_DOWNLOAD_CONNECTIONS from another) receiving and the others waiting for one (they get no byte): the link
    brings each that holds a slot 2 MiB a minute, so the videos are coming in; under a MiB a minute each, they are
    not, and the note says what came."""
    from runner.executor import (
        DOWNLOAD_CONNECTIONS,
        HOST_DOWNLOAD_CONNECTIONS,
        STOP_STREAM_BYTES,
        STOP_UNANSWERED,
    )

    slots = DOWNLOAD_CONNECTIONS if at_api else HOST_DOWNLOAD_CONNECTIONS
    now = [0.0]
    parts = [tmp_path / f"s{i}.mp4.part" for i in range(28)]
    for part in parts:
        part.write_bytes(b"")
    ex = _downloading(now, {i: [str(part), 0, 0, 0.0] for i, part in enumerate(parts)}, 28, at_api=at_api)
    ex._fetched()
    now[0] = STOP_UNANSWERED
    for part in parts[:slots]:
        part.write_bytes(bytes(2 * STOP_STREAM_BYTES))
    assert ex._coming_in(now[0])
    now[0] = 2 * STOP_UNANSWERED
    for part in parts[:slots]:
        part.write_bytes(bytes(2 * STOP_STREAM_BYTES + STOP_STREAM_BYTES * 9 // 10))
    assert not ex._coming_in(now[0])
    note = ex._stalled_note(28, 70.0, now[0])
    got = slots * (STOP_STREAM_BYTES * 9 // 10) / 1e6
    assert note.startswith(f"the videos' downloads got {got:,.1f} MB (under 1 MiB a download, of the "
                           f"{slots} that can come in at once) in the last 60 s, 70 s after the run "
                           "began stopping: left the 28 paid jobs downloading to the next run"), note
    now[0] = 3 * STOP_UNANSWERED
    assert ex._stalled_note(28, 130.0, now[0]).startswith("the videos' downloads got nothing in the last 60 s")


@pytest.mark.timeout(120)
def test_a_detach_in_the_wait_after_a_5xx_the_log_shows_made_nothing_plans_the_job_again_not_sent(
    tmp_path: Path,
) -> None:
    """The job's only create is answered HTTP 502, the provider's request log then read has no video for its key,
    and the caller detaches the run (as a SIGTERM or a second Ctrl-C does) as it waits to send it again: nothing was
    made, so the job is planned again, not sent (not left submitting for the next run to look up by its key), and
    the next run pays for it once."""
    import threading

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"retries": 20},
                       sim={"render_time": 0.1, "jitter": 0.0, "script": [
                           {"route": "create", "nth": [1], "fault": "server_error", "status": 502}]})
    prov = sim_provider(m)
    event = threading.Event()
    find = prov.find_by_key

    async def looked_up(client: Any, key: str, **kw: Any) -> Any:
        found = await find(client, key, **kw)
        if found is None:
            event.set()
        return found

    prov.find_by_key = looked_up  # type: ignore[method-assign]
    result = api.run(m, provider=prov, report=False, detach=event)
    job = api.status(m).jobs[0]
    assert result.status == "interrupted" and job.state == "planned", (result.status, job.state, job.error)
    assert ("the run was interrupted while its create was answered HTTP 502 and the provider's request log has no "
            "video for it, nothing paid") in (job.error or ""), job.error
    assert prov.app.state.sim.requests["create"] == 1 and stats(prov)["creates"] == 0
    prov.app.state.sim.configure({"script": []})
    again = api.run(m, provider=prov, report=False)
    assert again.exit_code == 0 and stats(prov)["creates"] == 1 and stats(prov)["duplicate_paid"] == 0
    check_outputs(m)
