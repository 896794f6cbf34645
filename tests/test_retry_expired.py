"""`gridrun retry` and an expired video: the video is paid for, so a fresh URL (free) is asked for first, as a plain
run does; only a video the provider no longer has, or gives no fresh URL for, is rendered again (paid again), once.
`plan --retry` counts and words them so."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from execkit import quick_backoff, sim_provider, stats, write_manifest

from runner import api
from runner.cli import main
from runner.options import RunOptions
from runner.state import gone_at_provider, no_fresh_url


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    got = capsys.readouterr()
    return code, got.out, got.err


def renewing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulator's status GET hands over a new URL each time (it reads only the URL's token)."""
    from runner.providers.sim import SimProvider

    given = iter(range(1, 1000))
    get = SimProvider.get

    async def renewed(self, client, video_id):  # type: ignore[no-untyped-def]
        status = await get(self, client, video_id)
        if status.url:
            status = dataclasses.replace(status, url=f"{status.url}&n={next(given)}")
        return status

    monkeypatch.setattr(SimProvider, "get", renewed)


@pytest.fixture
def expired(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Any]:
    """One job rendered and paid whose every download was refused as expired, though its provider handed over a new
    URL on each GET: `expired`, not one given no fresh URL (`no_fresh_url`) nor gone. Then the provider serves its
    downloads again (no fault left). The manifest and the simulator (the same provider object for each run)."""
    quick_backoff(monkeypatch)
    refused = [{"route": "file", "p": 1, "fault": "expired"}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"script": refused})
    prov = sim_provider(m)
    with monkeypatch.context() as patched:
        renewing(patched)
        first = api.run(m, provider=prov, options=RunOptions(), report=False)
    assert first.exit_code == 1 and first.stats.counts["expired"] == 1
    job = api.status(m).jobs[0]
    assert not no_fresh_url(job.state, job.error) and not gone_at_provider(job.state, job.error)
    assert stats(prov)["requests"]["create"] == 1
    prov.app.state.sim.configure({"script": []})
    return m, prov


def aged(m: Path, prov: Any) -> None:
    """The job's URL issued two hours ago, past its hour: its `expires_at`, as the provider gives it, has passed."""
    sim = prov.app.state.sim
    video = sim.videos[api.status(m).jobs[0].provider_id]
    video.url_issued -= 7200.0
    sim.tokens[video.url_token] = (video, video.url_issued)


def retry(m: Path, prov: Any) -> Any:
    return api.run(m, provider=prov, options=RunOptions(retry_failed=True), report=False)


def test_retry_fetches_an_expired_video_given_a_fresh_url_and_pays_nothing(expired: tuple[Path, Any]) -> None:
    m, prov = expired
    result = retry(m, prov)
    assert result.exit_code == 0 and result.stats.counts["done"] == 1, result.stats.counts
    assert stats(prov)["requests"]["create"] == 1  # no new render
    assert result.stats.spent_micros == 0
    assert api.status(m).jobs[0].attempts == 1


def test_retry_renders_again_once_a_video_the_provider_gives_no_fresh_url_for(expired: tuple[Path, Any]) -> None:
    """The provider hands back only the URL that expired (its links not renewed, an hour gone by): asked first, at no
    cost, then rendered again in the same run, paid once."""
    m, prov = expired
    sim = prov.app.state.sim
    sim.configure({"refresh_urls": False})
    aged(m, prov)
    files = stats(prov)["requests"].get("file", 0)
    result = retry(m, prov)
    assert result.exit_code == 0 and result.stats.counts["done"] == 1, result.stats.counts
    assert stats(prov)["requests"]["create"] == 2  # one new render
    # the URL that expired tried first (refused), then the new render's
    assert stats(prov)["requests"]["file"] - files > 1
    assert result.stats.spent_micros == 350_000
    assert api.status(m).jobs[0].attempts == 2


def test_retry_renders_again_once_a_video_the_provider_no_longer_has(expired: tuple[Path, Any]) -> None:
    m, prov = expired
    sim = prov.app.state.sim
    sim.videos.pop(api.status(m).jobs[0].provider_id)  # forgotten at the provider
    result = retry(m, prov)
    assert result.exit_code == 0 and result.stats.counts["done"] == 1, result.stats.counts
    assert stats(prov)["requests"]["create"] == 2
    assert result.stats.spent_micros == 350_000


def test_plan_retry_counts_an_expired_video_as_fetched_first_not_sent(
    expired: tuple[Path, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner import cli as cli_mod

    monkeypatch.setattr(cli_mod.out, "width", 300)  # the totals whole on their line
    m, _ = expired
    code, out, _ = cli(capsys, "plan", str(m), "--retry", "--json")
    assert code == 0
    doc = json.loads(out)
    state = doc["against_state"]
    assert (state["to_submit"], state["retried"], state["to_fetch_again"], state["settled"]) == (0, 0, 1, 0)
    assert state["fetched_first"] == {"jobs": 1, "usd": 0.35}
    assert doc["run_micros"] == 0
    assert doc["jobs"][0]["status"].startswith("expired: a fresh URL is asked for first, at no cost; sent again")
    code, out, _ = cli(capsys, "plan", str(m), "--retry")
    assert code == 0
    assert ("0 to submit ($0.00), 0 cached, 1 to fetch again ($0.00; 1 expired: a fresh URL is asked for first, at no "
            "cost; sent again only if the provider no longer has it, up to $0.35)") in out
    # a plain plan: fetched, never sent
    plain = json.loads(cli(capsys, "plan", str(m), "--json")[1])["against_state"]
    assert plain["fetched_first"] == {"jobs": 0, "usd": 0.0} and plain["to_fetch_again"] == 1


def test_plan_retry_sends_at_once_an_expired_video_given_no_fresh_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One the provider gave no fresh URL for when last asked (`no_fresh_url`) is sent again by a retry, not asked
    first: counted among those to submit."""
    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"url_ttl": 0, "refresh_urls": False})
    assert cli(capsys, "run", str(m))[0] == 1
    job = api.status(m).jobs[0]
    assert no_fresh_url(job.state, job.error)
    state = json.loads(cli(capsys, "plan", str(m), "--retry", "--json")[1])["against_state"]
    assert (state["to_submit"], state["retried"], state["to_fetch_again"]) == (1, 1, 0)
    assert state["fetched_first"] == {"jobs": 0, "usd": 0.0}


def test_retry_held_by_its_budget_leaves_the_expired_job_as_it_was(expired: tuple[Path, Any]) -> None:
    """Sending it again would pass the budget (its fetch counted nothing against it): not sent, and left expired, as
    it was, not planned; the run says it stopped at its budget."""
    m, prov = expired
    sim = prov.app.state.sim
    sim.configure({"refresh_urls": False})
    aged(m, prov)
    result = api.run(m, provider=prov, options=RunOptions(retry_failed=True, budget_usd=0.1), report=False)
    assert result.status == "budget" and result.stats.spent_micros == 0, (result.status, result.stats.counts)
    assert stats(prov)["requests"]["create"] == 1
    job = api.status(m).jobs[0]
    assert job.state == "expired" and job.attempts == 1


def test_retry_does_not_render_again_a_video_whose_fresh_get_went_unanswered(
    expired: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider's status GET fails for a while (500s) as the retry asks for a fresh URL: no answer is no sign it
    gives none. Left expired without the no-fresh-URL mark, the next run asking again at no cost; nothing paid."""
    m, prov = expired
    renewing(monkeypatch)  # its links do renew
    prov.app.state.sim.configure({"script": [
        {"route": "get", "nth": list(range(2, 12)), "fault": "server_error", "status": 500},
        {"route": "file", "nth": [1, 2], "fault": "expired"}]})
    result = api.run(m, provider=prov, options=RunOptions(retry_failed=True, retries=0), report=False)
    assert stats(prov)["requests"]["create"] == 1  # no new render
    assert result.stats.spent_micros == 0
    job = api.status(m).jobs[0]
    assert job.state == "expired" and job.attempts == 1, (job.state, job.error)
    assert not no_fresh_url(job.state, job.error) and "at no cost" in (job.error or ""), job.error


def test_retry_does_not_render_again_a_video_whose_fresh_urls_failed_too(
    expired: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every GET hands over a new URL, but the retry's downloads of them are refused as expired (a CDN still
    spreading a newly signed URL): the provider renews its links, so the video is not rendered again."""
    m, prov = expired
    renewing(monkeypatch)
    prov.app.state.sim.configure({"script": [{"route": "file", "nth": [1, 2, 3, 4, 5], "fault": "expired"}]})
    result = retry(m, prov)
    assert stats(prov)["requests"]["create"] == 1  # no new render
    assert result.stats.spent_micros == 0
    job = api.status(m).jobs[0]
    assert job.state == "expired" and job.attempts == 1, (job.state, job.error)
    assert not no_fresh_url(job.state, job.error) and "at no cost" in (job.error or ""), job.error
    # the next plain run asks again and fetches it, at no cost
    again = api.run(m, provider=prov, options=RunOptions(), report=False)
    assert again.exit_code == 0 and stats(prov)["requests"]["create"] == 1
    assert api.status(m).jobs[0].state == "done"
