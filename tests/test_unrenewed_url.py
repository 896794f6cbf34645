"""An expired video the provider gives no fresh URL for: `plan`, `status` and the run's last line name `gridrun
retry` (paid, and what it costs) as the way to it, not a free fetch; a provider that does hand over a fresh URL
keeps the free fetch advised."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from execkit import quick_backoff, sim_provider, stats, write_manifest
from runner import api
from runner.cli import main
from runner.options import RunOptions
from runner.state import no_fresh_url


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    got = capsys.readouterr()
    return code, got.out, got.err


@pytest.fixture
def unrenewed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two jobs rendered and paid whose URLs expired at once, at a provider that hands back the same URL when asked
    again (`refresh_urls: false`)."""
    quick_backoff(monkeypatch)
    return write_manifest(tmp_path, n_seeds=1, sim={"url_ttl": 0, "refresh_urls": False})


def test_the_run_names_a_paid_retry_not_a_free_fetch(unrenewed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "run", str(unrenewed))
    assert code == 1
    snap = api.status(unrenewed)
    assert snap.counts["expired"] == 2 and all(no_fresh_url(j.state, j.error) for j in snap.jobs)
    last = [line for line in err.splitlines() if "gridrun retry" in line][-1]
    assert "asks again for the fresh" not in last and "at no cost" not in last
    assert ("`gridrun retry` sends expired ones (the only way, as the provider hands back only the URLs that "
            "expired: a new render, paid, $0.70) again") in last
    # and so on the next run, which asks once more and is given the same URLs again
    code, _, err = cli(capsys, "run", str(unrenewed))
    assert code == 1 and "asks again for the fresh" not in err
    assert "the only way, as the provider hands back only the URLs that expired: a new render, paid, $0.70" in err


def test_status_and_plan_do_not_count_on_a_fresh_url(unrenewed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "run", str(unrenewed))
    _, out, _ = cli(capsys, "status", str(unrenewed))
    nxt = [line for line in out.splitlines() if "next:" in line]
    assert nxt and "at no cost" not in nxt[0]
    assert "hands back only the URLs that expired: a new render, paid, $0.70" in nxt[0]
    code, out, _ = cli(capsys, "plan", str(unrenewed), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["against_state"]["to_fetch_again"] == 0 and doc["against_state"]["settled"] == 2
    reasons = [j["status"] for j in doc["jobs"]]
    assert all("gave no fresh URL" in r and "$0.35" in r and "at no cost" not in r for r in reasons), reasons


def test_a_provider_giving_fresh_urls_again_is_fetched_for_free(unrenewed: Path) -> None:
    """A plain run still asks once more, at no cost: a provider that renews its links by then hands the videos over."""
    prov = sim_provider(unrenewed)
    api.run(unrenewed, provider=prov, options=RunOptions(), report=False)
    prov.app.state.sim.configure({"url_ttl": 3600, "refresh_urls": True})
    again = api.run(unrenewed, provider=prov, options=RunOptions(), report=False)
    assert again.exit_code == 0 and again.stats.counts["done"] == 2 and again.stats.spent_micros == 0


def test_a_fresh_url_that_failed_too_is_asked_for_again_at_no_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The provider hands over a new URL on each GET, and each download of it is refused as expired: asking again is
    fair, so the free fetch stays the advice."""
    quick_backoff(monkeypatch)
    refused = [{"route": "file", "p": 1, "fault": "expired"}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"script": refused})
    from runner.providers.sim import SimProvider

    given = iter(range(1, 1000))
    get = SimProvider.get

    async def renewing(self, client, video_id):  # type: ignore[no-untyped-def]
        status = await get(self, client, video_id)
        if status.url:  # a new URL each time (the simulator reads only its token)
            status = dataclasses.replace(status, url=f"{status.url}&n={next(given)}")
        return status

    monkeypatch.setattr(SimProvider, "get", renewing)
    code, _, err = cli(capsys, "run", str(m))
    assert code == 1
    snap = api.status(m)
    assert snap.counts["expired"] == 1 and not any(no_fresh_url(j.state, j.error) for j in snap.jobs)
    assert "`gridrun run` asks again for the fresh URL of 1 job whose URL expired, at no cost" in err


def test_a_completed_video_given_no_url_waits_downloading_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider whose completed video carries no URL, asked again, still none: the job is left downloading, said,
    for the next run to fetch at no cost; the run goes on."""
    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.05})
    from runner.providers.sim import SimProvider

    get = SimProvider.get

    async def no_url(self, client, video_id):  # type: ignore[no-untyped-def]
        status = await get(self, client, video_id)
        return dataclasses.replace(status, url=None)

    monkeypatch.setattr(SimProvider, "get", no_url)
    result = api.run(m, provider=sim_provider(m), options=RunOptions(poll_interval=0.05), report=False)
    assert result.exit_code == 1 and result.stats.counts["downloading"] == 1, result.stats.counts
    assert "the provider gave no download URL" in (api.status(m).jobs[0].error or "")


def test_a_url_refused_before_its_expiry_time_is_fetched_again_for_free_not_rendered_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file host refuses a URL (403) for a while, and the provider, asked again, hands back the same URL, which
    its `expires_at` says is good for another hour: not "no fresh URL", nor a paid `retry` advised. The next plain
    run fetches it, at no cost, and `plan --retry` does not count it among the jobs it sends again."""
    quick_backoff(monkeypatch)
    refused = [{"route": "file", "p": 1, "fault": "expired", "times": 10}]
    m = write_manifest(tmp_path, n_seeds=1, sim={"script": refused})
    prov = sim_provider(m)
    first = api.run(m, provider=prov, options=RunOptions(), report=False)
    assert first.exit_code == 1 and first.stats.counts["expired"] == 2, first.stats.counts
    snap = api.status(m)
    for job in snap.jobs:
        assert not no_fresh_url(job.state, job.error), job.error
        error = job.error or ""
        assert "at no cost" in error and "renders it again" not in error.split("; after ")[0], error
    _, out, _ = cli(capsys, "status", str(m))
    nxt = [line for line in out.splitlines() if "next:" in line]
    assert nxt and "the only way" not in nxt[0] and "at no cost" in nxt[0], nxt
    state = json.loads(cli(capsys, "plan", str(m), "--retry", "--json")[1])["against_state"]
    assert (state["to_submit"], state["retried"], state["to_fetch_again"]) == (0, 0, 2), state
    again = api.run(m, provider=prov, options=RunOptions(), report=False)
    assert again.exit_code == 0 and again.stats.counts["done"] == 2 and again.stats.spent_micros == 0
    assert stats(prov)["requests"]["create"] == 2  # each rendered once


def test_a_url_refused_run_after_run_before_its_expiry_time_says_until_when_and_promises_no_fetch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file host keeps refusing the URL the provider keeps handing back, valid by its `expires_at`: the job's
    error and `status`'s next step say until when (the URL's expiry time, local) it stays so and that `gridrun
    retry` renders it again after that; refused in a second run too, the fetch is no longer promised."""
    from runner.records import local_time

    quick_backoff(monkeypatch)
    refused = [{"route": "file", "p": 1, "fault": "expired", "times": 1000}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"script": refused})
    prov = sim_provider(m)
    first = api.run(m, provider=prov, options=RunOptions(), report=False)
    assert first.exit_code == 1 and first.stats.counts["expired"] == 1, first.stats.counts
    job = api.status(m).jobs[0]
    world = prov.app.state.sim
    video = world.get(job.provider_id)
    until = local_time(int(video.url_issued + world.config.url_ttl))  # the URL's expires_at, as this machine shows it
    assert f"until {until}" in (job.error or "") and "fetches it" in (job.error or ""), job.error
    assert "refused again" not in (job.error or ""), job.error
    _, out, _ = cli(capsys, "status", str(m))
    nxt = " ".join(line.strip() for line in out.split("next:", 1)[1].splitlines())
    assert f"until {until}" in nxt and "`gridrun retry` renders it again" in nxt, nxt
    again = api.run(m, provider=prov, options=RunOptions(), report=False)
    assert again.exit_code == 1 and again.stats.spent_micros == 0 and stats(prov)["requests"]["create"] == 1
    job = api.status(m).jobs[0]
    error = job.error or ""
    assert job.state == "expired" and "refused again" in error and f"until {until}" in error, error
    assert "fetches it" not in error, error


def test_the_runs_end_line_says_until_when_a_refused_url_stays_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file host refuses a URL the provider keeps handing back, valid by its `expires_at`: the run's end line
    says until when, as the job's error and `status` do, and that `gridrun retry` renders it again after that."""
    from runner.state import same_url_until

    quick_backoff(monkeypatch)
    monkeypatch.setenv("COLUMNS", "400")
    refused = [{"route": "file", "p": 1, "fault": "expired", "times": 1000}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"script": refused})
    code, _, err = cli(capsys, "run", str(m), "--no-report")
    job = api.status(m).jobs[0]
    until = same_url_until(job.state, job.error)
    assert code == 1 and job.state == "expired" and until, job.error
    end = " ".join(err.split()).rsplit("some jobs did not finish", 1)[1]
    assert f"until {until}" in end and "`gridrun retry` renders it again" in end, end
