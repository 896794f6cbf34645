"""Jobs left rendering at their `--timeout` keep their provider slots: a run never has more of its jobs rendering at
the provider than its concurrency, as the simulator counts them (`max_in_progress`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from execkit import sim_provider, stats, write_manifest

from runner import api
from runner.executor import RunOptions


def run(manifest: Path, provider=None, **opts):
    provider = provider or sim_provider(manifest)
    result = api.run(manifest, provider=provider, options=RunOptions(**opts), report=False)
    return result, provider


@pytest.mark.parametrize("poll_interval", [None, 0.1], ids=["list", "one-by-one"])
def test_jobs_left_at_their_timeout_hold_their_slots_and_the_run_ends_with_the_rest_unsent(
    tmp_path: Path, poll_interval: float | None
) -> None:
    """Concurrency 2, renders far longer than the timeout: the 2 jobs left rendering hold both slots, so nothing
    more is sent (the provider would render them beside the 2, past what the account allows); the run does not
    wait for them either: it ends incomplete, the 4 others planned."""
    m = write_manifest(tmp_path, n_seeds=3, run={"concurrency": 2},
                       sim={"render_time": 30.0, "jitter": 0.0, "concurrency": 8})
    result, prov = run(m, timeout=0.3, poll_interval=poll_interval)
    s = stats(prov)
    assert s["max_in_progress"] == 2 and s["creates"] == 2, s
    c = result.stats.counts
    assert c["planned"] == 4 and c["submitted"] + c["running"] == 2, c
    assert result.status == "incomplete" and result.exit_code == 4
    assert result.slots_held == 2 and result.stats.stopping == "timeout"
    assert result.stats.last_errors[0].startswith("sent no new jobs: every provider slot (2) is held by jobs left "
                                                  "rendering at their timeout"), result.stats.last_errors
    assert api.status(m).run.status == "incomplete"
