import itertools


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
