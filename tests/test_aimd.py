"""Rate control against a simulator that allows 20 API requests per second: gridrun finds the rate and
keeps to it (few 429s), pays once per job, and still uses most of the rate."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from execkit import check_outputs, sim_provider, stats, write_manifest

from runner import api

RATE = 20.0


@pytest.mark.timeout(120)
def test_rate_limit_is_found_and_held_without_a_storm_of_429s(tmp_path: Path) -> None:
    # 60 jobs, 20 at a time, 0.5 s renders: the run wants ~40 creates per second on top of its polls.
    manifest = write_manifest(
        tmp_path, n_seeds=20, styles=("anime", "clay", "comic"), run={"concurrency": 20, "retries": 3},
        sim={"render_time": 0.5, "jitter": 0.2, "concurrency": 20, "rate_limit": RATE, "rate_burst": 5,
             "clip_variants": 4},  # a few distinct clips: encoding in-process is not what is measured here
    )
    provider = sim_provider(manifest)
    t0 = time.monotonic()
    result = api.run(manifest, provider=provider, report=False)
    wall = time.monotonic() - t0
    s = stats(provider)

    jobs = 60
    api_requests = sum(n for route, n in s["requests"].items() if route != "file")  # downloads are not limited
    accepted = api_requests - s["throttled"]
    summary = (f"wall {wall:.1f} s, API requests {api_requests} ({s['requests']}), 429s {s['throttled']}, "
               f"accepted {accepted / wall:.1f}/s of {RATE:g}/s")

    assert result.exit_code == 0, summary
    assert len(check_outputs(manifest)) == jobs
    assert s["creates"] == jobs and s["duplicate_paid"] == 0, s
    assert accepted > RATE * 3, f"the run never pressed against the limit: {summary}"
    # Found and held: 429s are a small part of the traffic, not a storm.
    assert s["throttled"] < 0.25 * api_requests, summary
    # ... and the rate is used, not abandoned: the accepted requests took at most twice what the limit needs.
    assert wall <= 2 * accepted / RATE + 2.0, summary


def test_a_retry_after_of_a_day_holds_the_run_at_most_five_minutes() -> None:
    """Every request of a run waits a 429's pause (polls too, whose videos' URLs expire): it is capped."""
    from runner.pacing import MAX_PAUSE, Pacer

    now = [1000.0]
    pacer = Pacer(lambda: now[0])
    assert pacer.limited(80_000.0) == MAX_PAUSE == 300.0
    assert pacer.not_before == 1000.0 + MAX_PAUSE
    assert pacer.limited(2.0) == 2.0 and pacer.not_before == 1000.0 + MAX_PAUSE  # a shorter one shortens nothing
