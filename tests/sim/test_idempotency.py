from __future__ import annotations

import pytest
from sim_kit import Api

pytestmark = pytest.mark.anyio


async def test_same_key_returns_the_existing_video_as_a_replay(api: Api) -> None:
    first = await api.create(idempotency_key="gridrun-abc-1")
    api.clock.advance(3)
    again = await api.create(idempotency_key="gridrun-abc-1")
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["status"] == "in_progress"
    stats = api.stats()
    assert (stats["creates"], stats["replays"], stats["duplicate_paid"]) == (1, 1, 0)


async def test_same_key_other_body_returns_the_original_by_default(api: Api) -> None:
    first = await api.create(idempotency_key="k", prompt="a fox")
    other = await api.create(idempotency_key="k", prompt="a whale")
    assert other.status_code == 200
    assert other.json()["id"] == first.json()["id"]
    assert other.json()["prompt"] == "a fox"


async def test_same_key_other_body_is_409_when_the_knob_says_so(api: Api) -> None:
    api.configure(idempotency_conflict="error")
    first = await api.create(idempotency_key="k", prompt="a fox")
    other = await api.create(idempotency_key="k", prompt="a whale")
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"
    assert other.json()["error"]["param"] == "idempotency_key"
    assert first.json()["id"] in other.json()["error"]["message"]
    assert (await api.create(idempotency_key="k", prompt="a fox")).status_code == 200
    assert api.stats()["creates"] == 1


async def test_a_key_past_the_idempotency_window_makes_and_bills_a_new_video_remembered_in_turn(api: Api) -> None:
    api.configure(idempotency_window=60)
    first = (await api.create(idempotency_key="k")).json()["id"]
    api.clock.advance(59)
    assert (await api.create(idempotency_key="k")).json()["id"] == first
    api.clock.advance(1)
    second = await api.create(idempotency_key="k")
    assert second.status_code == 202 and second.json()["id"] != first
    api.clock.advance(30)
    assert (await api.create(idempotency_key="k")).json()["id"] == second.json()["id"]
    stats = api.stats()
    assert (stats["creates"], stats["replays"], stats["duplicate_paid"], stats["duplicate_keys"]) == (2, 2, 1, 1)


@pytest.mark.parametrize("window", [0, -1, True, "soon", float("nan"), float("inf")])
async def test_an_idempotency_window_that_is_no_number_of_seconds_is_refused(api: Api, window: object) -> None:
    from runner.sim import ConfigError

    with pytest.raises(ConfigError, match="idempotency_window must be a finite number of seconds > 0 or null"):
        api.sim.configure({"idempotency_window": window})


async def test_without_honouring_keys_every_post_creates_and_bills_and_is_counted_duplicate(api: Api) -> None:
    api.configure(honour_idempotency=False)
    ids = {(await api.create(idempotency_key="k")).json()["id"] for _ in range(3)}
    assert len(ids) == 3
    stats = api.stats()
    assert (stats["creates"], stats["replays"], stats["duplicate_paid"]) == (3, 0, 2)
    assert stats["duplicate_keys"] == 2


async def test_same_body_under_a_new_key_is_a_duplicate_paid_create(api: Api) -> None:
    await api.create(idempotency_key="attempt-1")
    await api.create(idempotency_key="attempt-2")
    await api.create(idempotency_key="attempt-3", prompt="something else")
    stats = api.stats()
    assert (stats["creates"], stats["duplicate_paid"], stats["duplicate_bodies"]) == (3, 1, 1)


async def test_defaults_made_explicit_count_as_the_same_body(api: Api) -> None:
    await api.create()
    await api.create(duration=5, quality="540p", seconds="5")
    assert api.stats()["duplicate_paid"] == 1


async def test_resubmitting_after_a_failure_is_not_a_duplicate(api: Api) -> None:
    api.configure(script=[{"route": "create", "nth": 1, "fault": "job_failure"}])
    first = (await api.create(idempotency_key="attempt-1")).json()["id"]
    api.clock.advance(11)
    assert (await api.video(first))["status"] == "failed"
    await api.create(idempotency_key="attempt-2")
    assert api.stats()["duplicate_paid"] == 0


async def test_rejected_create_does_not_claim_its_key(api: Api) -> None:
    assert (await api.create(idempotency_key="k", duration=7)).status_code == 400
    r = await api.create(idempotency_key="k")
    assert r.status_code == 202
    assert api.stats()["replays"] == 0
