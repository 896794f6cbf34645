import itertools

import pytest


def test_backoff_honours_retry_after_up_to_max_pause_and_doubles_with_jitter_otherwise() -> None:
    from runner.pacing import MAX_PAUSE, backoff

    assert backoff(1, 2.5) == 2.5 and backoff(3, -1) == 0.0
    assert backoff(1, 86_400) == MAX_PAUSE  # a 5xx asking for a day holds its job 5 minutes at most
    for attempt, top in ((1, 0.25), (3, 1.0), (20, 30.0)):
        waits = [backoff(attempt, None) for _ in range(200)]
        assert top / 2 <= min(waits) and max(waits) <= top


def test_a_render_past_its_expected_time_is_polled_less_and_less_often_one_on_time_promptly(tmp_path) -> None:
    """A job expected to render in 1 s that takes 40 s: polled every 0.05 s around its expected end (one on time
    is seen ended promptly), then less and less often the longer it is overdue, at most 30 s apart; not every
    0.05 s all along (800 polls)."""
    from execkit import write_manifest

    from runner import api
    from runner.pacing import RenderTimes
    from runner.providers import get_provider

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 1.0, "jitter": 0.0})
    plan = api.plan(m)
    now = [0.0]
    times = RenderTimes(plan, get_provider("sim").caps, poll_interval=None, clock=lambda: now[0])
    job = plan.jobs[0]
    assert times.next_poll(job, 0.0) == 0.9  # the first poll: at 90 % of the expected time
    polls = []
    now[0] = 0.9
    while now[0] < 40.0:
        wait = times.next_poll(job, 0.0)
        assert 0.05 <= wait <= 30.0
        polls.append((now[0], wait))
        now[0] += wait
    assert all(wait < 0.1 for at, wait in polls if at <= 1.1)  # about its expected end: every 0.05 s
    assert all(b[1] >= a[1] for a, b in itertools.pairwise(polls))  # then further and further apart
    assert polls[-1][1] > 3.0 and len(polls) < 60, (len(polls), polls[-1])
    # a render that overruns a long expectation waits no more than 30 s between polls
    now[0] = 10_000.0
    assert times.next_poll(job, 0.0) == 30.0


def test_a_free_request_slot_is_taken_without_a_turn_of_the_event_loop_and_a_full_gate_queues() -> None:
    """The gate every request passes: a free slot is no checkpoint (a turn of the loop for each request would
    resume the task through its whole await chain once more); a full one makes the next wait, first come first
    served, until a holder leaves."""
    import anyio

    from runner.pacing import Gate

    order: list[str] = []

    async def main() -> None:
        gate = Gate(1)
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: _append(order, "other task"))
            async with gate:
                order.append("in the gate")  # before the task started beside it had its turn
                tg.start_soon(_take, gate, order, "first waiter")
                tg.start_soon(_take, gate, order, "second waiter")
                await anyio.sleep(0.01)
                order.append("leaving")

    anyio.run(main)
    assert order == ["in the gate", "other task", "leaving", "first waiter", "second waiter"]


async def _append(order: list[str], what: str) -> None:
    order.append(what)


async def _take(gate: object, order: list[str], what: str) -> None:
    async with gate:  # type: ignore[attr-defined]
        order.append(what)


def test_a_provider_that_sped_up_has_its_next_job_first_polled_when_its_quickest_last_renders_say(tmp_path) -> None:
    """Twenty renders of 60 s, then three of 6 s (the provider's queue cleared): the next job is first polled after
    about 6 s, not at 90 % of the median (54 s), and then soon again; with renders all of one time the schedule is
    the usual one."""
    from execkit import write_manifest

    from runner import api
    from runner.pacing import RenderTimes
    from runner.providers import get_provider

    plan = api.plan(write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 60.0}))
    now = [1000.0]
    times = RenderTimes(plan, get_provider("sim").caps, poll_interval=None, clock=lambda: now[0])
    job = plan.jobs[0]
    for _ in range(20):
        times.seen(60.0)
    assert times.next_poll(job, now[0]) == 54.0  # renders on time: at 90 % of the expected time, as ever
    for _ in range(3):
        times.seen(6.0)
    assert times.expected(job) == 60.0  # the median has not moved
    first = times.next_poll(job, now[0])
    assert first <= 6.0, first
    now[0] += first
    assert times.next_poll(job, 1000.0) <= 1.0  # then asked again within a fraction of the quick time
    # a job that does take the old time is asked about less and less often, never later than the usual first poll
    polls = []
    while now[0] < 1054.0:
        wait = times.next_poll(job, 1000.0)
        polls.append(wait)
        now[0] += wait
    assert now[0] == 1054.0 and len(polls) < 40 and all(b >= a for a, b in itertools.pairwise(polls[:-1]))


def test_renders_seen_are_kept_per_5_s_of_clip_so_a_5_s_clip_is_not_expected_to_take_a_10_s_ones_time(tmp_path) -> None:
    """A real provider's grid of 5 s and 10 s clips: after three 10 s clips of 120 s, a 5 s clip is expected in
    60 s (first polled at 54 s, as the prior scales by duration), not 120 s; after three 5 s clips of 45 s, a 10 s
    clip in 90 s. A simulator renders every duration alike: no scaling."""
    from execkit import write_manifest

    from runner import api
    from runner.pacing import RenderTimes
    from runner.providers import get_provider

    mix = {"matrix": {"style": ["anime"], "seed": [1], "duration": [5, 10]}, "output": "d{{ duration }}.mp4"}
    plan = api.plan(write_manifest(tmp_path, provider="lumenfall", extra=mix))
    caps = get_provider("lumenfall").caps
    d5, d10 = sorted(plan.jobs, key=lambda j: j.duration)
    assert (d5.duration, d10.duration) == (5, 10)
    now = [1000.0]
    times = RenderTimes(plan, caps, poll_interval=None, clock=lambda: now[0])
    for _ in range(3):
        times.seen(120.0, d10)
    assert times.expected(d5) == 60.0 and times.expected(d10) == 120.0
    assert times.next_poll(d5, now[0]) == 54.0
    assert times.earliest_done(d5) == pytest.approx(57.0)
    other = RenderTimes(plan, caps, poll_interval=None, clock=lambda: now[0])
    for _ in range(3):
        other.seen(45.0, d5)
    assert other.expected(d10) == 90.0
    (tmp_path / "s").mkdir()
    sim = RenderTimes(api.plan(write_manifest(tmp_path / "s", extra=mix)), get_provider("sim").caps,
                      poll_interval=None, clock=lambda: now[0])
    s5, s10 = sorted(sim.plan.jobs, key=lambda j: j.duration)
    for _ in range(3):
        sim.seen(2.0, s10)
    assert sim.expected(s5) == sim.expected(s10) == 2.0


def test_the_render_times_seen_are_summed_up_once_per_render_not_at_every_poll_or_progress_update(
        tmp_path, monkeypatch) -> None:
    """The median of the last renders is read for every poll, list round and progress update (once per job rendering
    there): worked out again each time, it cost the event loop more than the polls' own bookkeeping. It is worked
    out once per render seen, and follows each new one."""
    import statistics

    from execkit import write_manifest

    from runner import api, pacing
    from runner.providers import get_provider

    plan = api.plan(write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 10.0}))
    now = [1000.0]
    times = pacing.RenderTimes(plan, get_provider("sim").caps, poll_interval=None, clock=lambda: now[0])
    job = plan.jobs[0]
    medians = []
    real_median = statistics.median

    def median(values):
        medians.append(list(values))
        return real_median(values)

    monkeypatch.setattr(pacing.statistics, "median", median)
    assert times.expected(job) == 10.0 and medians == []  # the simulator's knob, before three renders are seen
    for seconds in (8.0, 12.0, 9.0):
        times.seen(seconds)
    for _ in range(100):
        assert times.expected(job) == 9.0
        assert times.earliest_done(job) == pytest.approx(0.95 * 8.0)
        assert times.list_interval() == pytest.approx(9.0 * 0.0125)
        times.next_poll(job, now[0])
    assert len(medians) == 1
    times.seen(3.0)  # a quick one: the median, the quickest and the first poll follow it at once
    assert times.expected(job) == 8.5 and times.earliest_done(job) == pytest.approx(0.95 * 3.0)
    assert times.next_poll(job, now[0]) == pytest.approx(0.95 * 3.0)
    for seconds in range(60):
        times.seen(20.0 + seconds)
    assert times.expected(job) == real_median([20.0 + s for s in range(10, 60)])  # the last 50 only
    assert len(medians) == 3


def test_a_progress_update_works_out_a_render_time_once_per_clip_duration_not_once_per_job_in_flight(
        tmp_path, monkeypatch) -> None:
    """The ETA of a progress update takes each job in flight's expected end (`RenderTimes.ends`): the same as
    `expected` job by job, but the render time worked out once per clip duration, once in all for a simulator's
    jobs; and the jobs past their expected end count as ending now (`expected_end`)."""
    from execkit import write_manifest

    from runner import api
    from runner.pacing import RenderTimes
    from runner.providers import get_provider
    from runner.stats import expected_end

    mix = {"matrix": {"style": ["anime"], "seed": [1, 2, 3], "duration": [5, 10]}, "output": "s{{ seed }}d{{ duration }}.mp4"}
    now = [1000.0]
    for provider in ("lumenfall", "sim"):
        folder = tmp_path / provider
        folder.mkdir()
        plan = api.plan(write_manifest(folder, provider=provider, extra=mix))
        times = RenderTimes(plan, get_provider(provider).caps, poll_interval=None, clock=lambda: now[0])
        sent = [(900.0 + i, job) for i, job in enumerate(plan.jobs * 100)]  # 600 jobs in flight
        for seen in ((), (40.0, 50.0, 60.0)):
            for seconds in seen:
                times.seen(seconds, plan.jobs[0])
            asked = []
            expected = times.expected
            monkeypatch.setattr(times, "expected", lambda job, asked=asked, expected=expected: asked.append(job) or expected(job))
            ends = times.ends(sent)
            monkeypatch.undo()
            assert ends == [since + times.expected(job) for since, job in sent]
            assert len(asked) == (1 if provider == "sim" else 2), (provider, len(asked))
    assert expected_end(10.0, [12.0, 3.0, 10.0, 11.0], 0, 2, 1.0) == 2.0
    assert expected_end(10.0, [3.0, 4.0], 3, 2, 1.0) == 2.0  # both past: free now, three more in two waves
    assert expected_end(10.0, [3.0, 14.0], 3, 2, 1.0) == 5.0  # one slot free now, the other at 14


@pytest.mark.timeout(120)
def test_jobs_whose_first_poll_was_set_by_the_models_render_time_are_polled_as_the_simulator_says_once_it_does(
    tmp_path, monkeypatch
) -> None:
    """A served simulator's first answer tells gridrun its render time (`/_sim/config`, asked as that answer comes);
    the jobs whose creates were answered meanwhile had their first poll set from the model's render time (a minute
    for PixVerse) where the simulator renders in a fraction of a second. Once the simulator's is known they are
    polled as it suggests: no wait for a poll lies a minute away once a job is done, and each job is created once."""
    import anyio
    import httpx
    from execkit import write_manifest

    from runner import api
    from runner.providers import get_provider
    from runner.sim.config import SimConfig
    from runner.sim.serve import running_server

    class SlowConfig(httpx.AsyncBaseTransport):
        """The network, but with no balance to ask (a 404: the run goes on, not knowing it is a simulator yet) and
        the simulator's `/_sim/config` answered a second late: the creates answered meanwhile are followed before
        the run knows the simulator's render time, as with a simulator whose answers are slow."""

        def __init__(self) -> None:
            self.inner = httpx.AsyncHTTPTransport()

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/balance"):
                return httpx.Response(404, json={"error": {"code": "NOT_FOUND"}}, request=request)
            if request.url.path.endswith("/_sim/config"):
                await anyio.sleep(1.0)
            return await self.inner.handle_async_request(request)

        async def aclose(self) -> None:
            await self.inner.aclose()

    monkeypatch.setenv("LUMENFALL_API_KEY", "lmnfl_testkey123")
    with running_server(SimConfig(render_time=0.3, jitter=0.0, concurrency=4)) as url:
        m = write_manifest(tmp_path, n_seeds=2, provider="lumenfall", base_url=url, sim={})
        prov = get_provider("lumenfall", base_url=url)
        make = prov.client
        prov.client = lambda **kw: make(**kw, transport=SlowConfig())
        waits: list[float] = []

        def look(s) -> None:
            if s.counts.get("done") and s.next_check is not None:
                waits.append(s.next_check)

        result = api.run(m, provider=prov, on_progress=look, report=False)
        stats = httpx.get(url.rsplit("/v1", 1)[0] + "/_sim/stats").json()
    assert result.status == "done", result.stats.last_errors
    assert prov.sim_render_seconds == 0.3
    assert max(waits, default=0.0) < 5.0, waits  # not the 54 s the model's minute set
    assert stats["creates"] == 4 and stats["duplicate_paid"] == 0, stats


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_sleep_on_the_steady_clock_ends_only_once_that_clock_has_moved_on_by_all_of_it(loop: str) -> None:
    """A clock running at half the speed of the event loop's (as a loop's timer ending a little early is, to
    time.monotonic: uvloop counts in whole milliseconds): a sleep of 0.1 s on it is slept out until it read 0.1 s
    more, not ended by the loop's first timer (a deadline checked right after would read as not passed yet);
    `wake` set ends it at once."""
    import time

    import anyio

    from runner.pacing import sleep_out

    if loop == "uvloop":
        pytest.importorskip("uvloop")
    t0 = time.monotonic()

    def slow() -> float:
        return t0 + (time.monotonic() - t0) / 2

    async def main() -> tuple[float, float]:
        start = slow()
        await sleep_out(slow, 0.1)
        slept = slow() - start
        wake = anyio.Event()
        wake.set()
        at = time.monotonic()
        await sleep_out(slow, 30.0, wake)
        return slept, time.monotonic() - at

    slept, woken = anyio.run(main, backend_options={"use_uvloop": loop == "uvloop"})
    assert slept >= 0.1 and woken < 5.0, (slept, woken)

    frozen = [5.0]  # a clock that does not move: one sleep, then it ends
    anyio.run(sleep_out, lambda: frozen[0], 0.05)
