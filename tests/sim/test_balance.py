"""What the simulated account owes (`Sim.committed_micros`, the balance and its 402): videos completed or
still rendering count, failed and cancelled ones do not (but for what a cancel charged), as the clock moves."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
from sim_kit import FakeClock

from runner.sim.config import SimConfig
from runner.sim.engine import Sim
from runner.sim.errors import ApiError
from runner.sim.lifecycle import Status
from runner.sim.world import World

BODY = {"model": "pixverse-v5.6", "quality": "360p", "duration": 5}


def owed(sim: Sim, now: float) -> int:
    """What the account owes at `now`, counted the long way."""
    return sum(v.cost_micros if v.status(now) is not Status.FAILED else v.cancel_micros for v in sim.order)


@pytest.mark.parametrize("seed", range(6))
def test_what_the_account_owes_follows_creates_failures_and_cancels(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    clock = FakeClock()
    config = SimConfig(render_time=10, jitter=0.5, concurrency=3, max_side=64, failure_rate=0.3, seed=seed,
                       cancel_charge=0.0 if seed % 2 else 0.5)
    path = tmp_path / "world.jsonl"
    sim = Sim(config, clock=clock, world=World.open(path))
    for step in range(300):
        roll = rng.random()
        if roll < 0.45:
            sim.create({**BODY, "prompt": f"p{step}", "duration": rng.choice([5, 8])},
                       force_failure="CONTENT_POLICY_VIOLATION" if rng.random() < 0.1 else None)
        elif roll < 0.6 and sim.order:
            sim.cancel(rng.choice(sim.order).id)
        elif roll < 0.97:
            clock.advance(rng.choice([0.0, 0.5, 3.0, 11.0]))
        else:
            clock.advance(-rng.choice([0.5, 5.0]))  # a clock set back
        now = clock()
        assert sim.committed_micros(now) == owed(sim, now)
        earlier = now - rng.choice([0.1, 4.0, 30.0])  # an earlier moment asked after a later one
        assert sim.committed_micros(earlier) == owed(sim, earlier)
        assert sim.committed_micros(now) == owed(sim, now)
    assert sim.stats()["creates"] > 50 and any(v.slot.cancelled_at for v in sim.order)
    assert any(v.failure for v in sim.order)
    assert any(v.cancel_micros for v in sim.order) == (seed % 2 == 0)
    # replayed from the world's file, each cancel charging what it charged then, whatever the knob is now
    again = Sim(dataclasses.replace(config, cancel_charge=0.0 if config.cancel_charge else 1.0), clock=clock,
                world=World.open(path))
    for later in (0.0, 5.0, 100.0):
        assert again.committed_micros(clock() + later) == owed(sim, clock() + later) == sim.committed_micros(clock() + later)


def test_a_failed_or_cancelled_video_gives_its_cost_back_to_the_balance() -> None:
    clock = FakeClock()
    sim = Sim(SimConfig(render_time=10, jitter=0, concurrency=1, max_side=64, balance=1.0), clock=clock)
    a, _ = sim.create({**BODY, "prompt": "a"}, force_failure="CONTENT_POLICY_VIOLATION")
    sim.create({**BODY, "prompt": "b"})
    cost = a.cost_micros
    assert 2 * cost <= 1_000_000 < 3 * cost
    with pytest.raises(ApiError) as refused:
        sim.create({**BODY, "prompt": "c"})
    assert refused.value.status == 402
    clock.advance(10)  # a ends failed: its cost is no longer owed
    assert sim.committed_micros(clock()) == cost
    c, _ = sim.create({**BODY, "prompt": "c"})
    with pytest.raises(ApiError):
        sim.create({**BODY, "prompt": "d"})
    clock.advance(1)
    sim.cancel(c.id)  # queued behind b: cancelled, it ends failed at once
    clock.advance(0.5)
    assert sim.committed_micros(clock()) == cost == owed(sim, clock())
    sim.create({**BODY, "prompt": "d"})
    assert sim.committed_micros(clock()) == 2 * cost
    sim.reset()
    assert sim.committed_micros(clock()) == 0


def test_a_balance_of_whole_cents_pays_for_creates_costing_it_exactly() -> None:
    """Every whole-cent balance up to $100 pays for videos that cost it to the micro-dollar, not one more; and
    the balance route tells it to the cent, where $2.05 read in micro-dollars was $2.049999."""
    clock = FakeClock()
    cost = 350_000  # a 360p 5 s video
    for cents in range(1, 10_001):
        usd = cents / 100
        sim = Sim(SimConfig(render_time=10, jitter=0, max_side=64, balance=usd), clock=clock)
        # what the account owes, short of the balance by exactly the price of one more video
        owed_before = cents * 10_000 - cost
        sim.committed_micros = lambda now, owed=owed_before: owed  # type: ignore[method-assign]
        if owed_before >= 0:
            sim.create({**BODY, "prompt": f"p{cents}"})
        sim.committed_micros = lambda now, owed=owed_before + 1: owed  # type: ignore[method-assign]
        if owed_before + 1 >= 0:
            with pytest.raises(ApiError) as refused:
                sim.create({**BODY, "prompt": f"q{cents}"})
            assert refused.value.status == 402, usd
