from __future__ import annotations

import httpx
import pytest
from sim_kit import BASE, Api, FakeClock

from runner.sim import SimConfig, create_app
from runner.sim.schedule import Scheduler, Slot, max_overlap

pytestmark = pytest.mark.anyio


async def test_video_goes_queued_then_in_progress_then_completed(api: Api) -> None:
    r = await api.create()
    assert r.status_code == 202
    created = r.json()
    assert created["status"] == "queued"
    assert created["object"] == "video"
    assert created["completed_at"] is None and created["expires_at"] is None
    assert "output" not in created and "error" not in created

    api.clock.advance(2.5)
    mid = await api.video(created["id"])
    assert mid["status"] == "in_progress"
    assert mid["progress"] == 25

    api.clock.advance(5)
    later = await api.video(created["id"])
    assert later["progress"] == 75

    api.clock.advance(2.5)
    done = await api.video(created["id"])
    assert done["status"] == "completed"
    assert done["progress"] == 100
    assert done["completed_at"] == created["created_at"] + 10
    assert done["expires_at"] == done["completed_at"] + 3600
    assert done["output"]["content_type"] == "video/mp4"
    assert done["output"]["url"].startswith("http://sim.test/files/")
    assert done["output"]["size_bytes"] > 0
    assert done["metadata"]["cost"] == done["metadata"]["cost_estimate"] == 0.35
    assert done["seconds"] == "5" and done["size"] == "960x540"


@pytest.mark.parametrize(("factor", "cost"), [(1.2, 0.42), (0.0, 0.0), (1e6, 350_000.0)])
async def test_cost_factor_multiplies_the_reported_cost_not_the_estimate(api: Api, factor: float, cost: float) -> None:
    api.configure(cost_factor=factor)
    video = (await api.create()).json()["id"]
    api.clock.advance(10)
    done = await api.video(video)
    assert (done["metadata"]["cost"], done["metadata"]["cost_estimate"]) == (cost, 0.35)
    [entry] = (await api.client.get("http://sim.test/v1/requests")).json()["data"]
    assert entry["cost"] == cost


def test_cost_factor_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="cost_factor must be a finite number ≥ 0, got -1.0"):
        SimConfig(cost_factor=-1.0)


async def test_concurrency_cap_keeps_the_overflow_queued_first_in_first_out(api: Api) -> None:
    api.configure(concurrency=2)
    ids = [(await api.create(prompt=f"p{i}")).json()["id"] for i in range(4)]
    api.clock.advance(1)
    assert [(await api.video(i))["status"] for i in ids] == ["in_progress", "in_progress", "queued", "queued"]
    assert api.stats()["in_progress"] == 2
    api.clock.advance(10)
    assert [(await api.video(i))["status"] for i in ids] == ["completed", "completed", "in_progress", "in_progress"]
    api.clock.advance(10)
    assert {(await api.video(i))["status"] for i in ids} == {"completed"}
    assert api.stats()["max_in_progress"] == 2


async def test_cancelling_frees_the_slot_for_the_next_queued_video(api: Api) -> None:
    api.configure(concurrency=1)
    first = (await api.create(prompt="first")).json()["id"]
    second = (await api.create(prompt="second")).json()["id"]
    api.clock.advance(4)
    r = await api.client.delete(f"/videos/{first}")
    assert r.status_code == 204
    cancelled = await api.video(first)
    assert cancelled["status"] == "failed"
    assert cancelled["error"]["code"] == "cancelled"
    assert cancelled["metadata"]["cost"] == 0
    api.clock.advance(1)
    assert (await api.video(second))["status"] == "in_progress"
    api.clock.advance(9.5)
    assert (await api.video(second))["status"] == "completed"
    assert api.stats()["cancelled"] == 1


async def test_a_cancelled_video_keeps_the_progress_it_had_when_cancelled(api: Api) -> None:
    api.configure(concurrency=1)
    rendering = (await api.create(prompt="first")).json()["id"]
    queued = (await api.create(prompt="second")).json()["id"]
    api.clock.advance(4)
    assert (await api.video(rendering))["progress"] == 40
    assert (await api.client.delete(f"/videos/{rendering}")).status_code == 204
    assert (await api.client.delete(f"/videos/{queued}")).status_code == 204
    api.clock.advance(20)
    for video, progress in ((rendering, 40), (queued, 0)):
        cancelled = await api.video(video)
        assert (cancelled["status"], cancelled["error"]["code"], cancelled["progress"]) == ("failed", "cancelled", progress)


async def test_cancelling_a_finished_video_changes_nothing(api: Api) -> None:
    video = (await api.create()).json()["id"]
    api.clock.advance(11)
    assert (await api.client.delete(f"/videos/{video}")).status_code == 204
    assert (await api.video(video))["status"] == "completed"


async def test_cancel_charge_charges_a_part_of_the_price_of_a_video_cancelled_while_rendering(api: Api) -> None:
    """A provider that promises no refund: the video cancelled while rendering reports and owes `cancel_charge` of
    its price (its reported cost times `cost_factor`, as a completed one's); the one cancelled while queued, $0."""
    api.configure(concurrency=1, cancel_charge=0.4, balance=10.0)
    rendering = (await api.create(prompt="rendering")).json()["id"]
    queued = (await api.create(prompt="queued")).json()["id"]
    api.clock.advance(4)
    for video in (rendering, queued):
        assert (await api.client.delete(f"/videos/{video}")).status_code == 204
    api.clock.advance(1)
    charged, free = await api.video(rendering), await api.video(queued)
    assert (charged["status"], charged["error"]["code"], charged["metadata"]["cost"]) == ("failed", "cancelled", 0.14)
    assert (free["status"], free["error"]["code"], free["metadata"]["cost"]) == ("failed", "cancelled", 0)
    log = {e["video_id"]: e for e in (await api.client.get("/requests")).json()["data"]}
    assert (log[rendering]["status"], log[rendering]["cost"]) == ("cancelled", 0.14)
    assert (log[queued]["status"], log[queued]["cost"]) == ("cancelled", None)
    assert (await api.client.get("/balance")).json()["balance"] == 9.86
    assert api.stats()["billed_micros"] == 140_000 and api.stats()["cancelled"] == 2
    api.configure(cost_factor=100)  # the figure reported, not what the account owes
    assert (await api.video(rendering))["metadata"]["cost"] == 14.0
    assert (await api.client.get("/balance")).json()["balance"] == 9.86


async def test_failure_rate_fails_a_seeded_fraction_with_the_configured_code(api: Api) -> None:
    api.configure(failure_rate=0.5, failure_code="CONTENT_POLICY_VIOLATION")
    ids = [(await api.create(prompt=f"p{i}")).json()["id"] for i in range(40)]
    api.clock.advance(100)
    videos = [await api.video(i) for i in ids]
    failed = [v for v in videos if v["status"] == "failed"]
    assert 10 <= len(failed) <= 30
    assert {v["error"]["code"] for v in failed} == {"CONTENT_POLICY_VIOLATION"}
    assert all("output" not in v and v["metadata"]["cost"] == 0 for v in failed)
    assert api.stats()["failures"] == len(failed)


async def test_time_scale_and_jitter_shape_render_times() -> None:
    clock = FakeClock()
    app = create_app(SimConfig(render_time=100, jitter=0.5, time_scale=0.01), clock=clock)
    sim = app.state.sim
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        for i in range(20):
            await client.post("/videos", json={"model": "pixverse-v5.6", "prompt": f"p{i}"})
    renders = [v.slot.render for v in sim.order]
    assert all(0.5 <= r <= 1.5 for r in renders)
    assert max(renders) - min(renders) > 0.3


async def test_same_seed_gives_the_same_ids_render_times_and_failures() -> None:
    async def world(seed: int) -> list[tuple[str, float, str | None]]:
        app = create_app(SimConfig(seed=seed, jitter=0.5, failure_rate=0.3), clock=FakeClock())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
            for i in range(10):
                await client.post("/videos", json={"model": "pixverse-v5.6", "prompt": f"p{i}"})
        return [(v.id, v.slot.render, v.failure) for v in app.state.sim.order]

    assert await world(1) == await world(1)
    assert await world(1) != await world(2)


def test_schedule_starts_each_video_when_the_earliest_slot_frees() -> None:
    scheduler = Scheduler()
    slots = [Slot(created=t, render=r, concurrency=2) for t, r in [(0, 10), (0, 4), (1, 5), (2, 1)]]
    for s in slots:
        scheduler.add(s)
    assert [(s.start, s.end) for s in slots] == [(0, 10), (0, 4), (4, 9), (9, 10)]
    assert max_overlap(slots, now=100) == 2


def test_cancelling_a_queued_video_means_it_never_starts() -> None:
    scheduler = Scheduler()
    a, b, c = (Slot(created=0, render=5, concurrency=1) for _ in range(3))
    for s in (a, b, c):
        scheduler.add(s)
    scheduler.cancel(b, at=1)
    assert (b.start, b.end) == (1, 1)
    assert (c.start, c.end) == (5, 10)


async def test_a_fresh_simulator_never_reuses_the_ids_of_an_earlier_one() -> None:
    async def first_id(clock: FakeClock) -> str:
        app = create_app(SimConfig(), clock=clock)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
            r = await client.post("/videos", json={"model": "pixverse-v5.6", "prompt": "x"})
        return str(r.json()["id"])

    assert await first_id(FakeClock(1_800_000_000)) != await first_id(FakeClock(1_800_000_500))
