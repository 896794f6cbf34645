"""A simulator's placeholder whose render at another endpoint (a provider, after rehearsing on `gridrun sim
serve`) the provider failed: the job is not presented as done with a video of that provider's. It failed there;
its only take is the simulator's placeholder, kept at its path, and a plain `gridrun run` renders it again. No
`--force` was given, so nothing speaks of one.

The simulator is served on 127.0.0.1 in a thread; "the provider" is another served simulator, failing every
render, whose answers carry no `X-Gridrun-Simulator` header (a test double: nothing here talks to a provider)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from execkit import Unmarked, served, write_manifest

from runner import api
from runner.cli import main
from runner.export import export_rows
from runner.sim import SimConfig, create_app

KNOBS = {"render_time": 0.05, "jitter": 0.0, "max_side": 64, "fps": 4}


@contextmanager
def serving(config: SimConfig, *, marked: bool) -> Iterator[str]:
    """A simulator served on 127.0.0.1 (marked: as `gridrun sim serve` serves it; else as a provider would
    answer); yields its base URL."""
    app = create_app(config)
    with served(app if marked else Unmarked(app)) as origin:
        yield f"{origin}/v1"


def to(m: Path, url: str) -> Path:
    doc = yaml.safe_load(m.read_text())
    doc["base_url"] = url
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    return m


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    with serving(SimConfig(**KNOBS), marked=True) as url:
        yield url


@pytest.fixture(scope="module")
def failing() -> Iterator[str]:
    with serving(SimConfig(**KNOBS, failure_rate=1.0), marked=False) as url:
        yield url


def test_a_placeholder_whose_render_the_provider_failed_is_failed_not_done(
    tmp_path: Path, sim: str, failing: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `provider: lumenfall`, whose endpoint may be a simulator or not (`provider: sim` sends only to a simulator);
    # the served ones here take any key
    monkeypatch.setenv("LUMENFALL_API_KEY", "lmnfl_test_key_0123456789")
    monkeypatch.delenv("LUMENFALL_BASE_URL", raising=False)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), provider="lumenfall", base_url=sim,
                       run={"poll_interval": 0.05, "failure_retries": 0})
    assert api.run(m, report=False).exit_code == 0
    videos = sorted((m.parent / "outputs" / "t").rglob("seed-*.mp4"))
    assert len(videos) == 2
    placeholders = {p: p.read_bytes() for p in videos}

    to(m, failing)
    capsys.readouterr()
    assert main(["run", str(m), "--no-report"]) == 1
    said = capsys.readouterr().err
    assert "--force" not in said and "the earlier video kept" not in said, said
    assert "placeholder" in said and "not rendered" in said, said
    assert "`gridrun run` renders" in said, said
    # the placeholders stay where they were, untouched: nothing is lost
    assert {p: p.read_bytes() for p in videos} == placeholders

    snap = api.status(m)
    assert snap.counts["done"] == 0 and snap.counts["failed"] == 2, snap.counts
    assert not snap.rerenders_failed and len(snap.placeholders_failed) == 2
    assert main(["status", str(m)]) == 0
    shown = capsys.readouterr().out
    assert "--force" not in shown and "done 2" not in shown, shown
    assert "placeholder" in shown and "`gridrun run` renders" in shown, shown

    rows = export_rows(api.status(m))
    assert len(rows) == 2
    for row in rows:
        assert row["state"] == "failed" and row["error"], row
        assert row["output_path"] is None and row["cached_from_run"] is None, row
        assert "CONTENT_POLICY_VIOLATION" in row["error"], row

    # what a plain run does next: render them again (the provider still failing here)
    d = api.diff(api.plan(m))
    assert d is not None and len(d.to_send(api.plan(m).jobs)) == 2

    # the run's page: the note, and no cell that links the placeholder as the job's video
    assert main(["report", str(m)]) == 0
    page = (m.parent / "outputs" / "t" / "report.html").read_text()
    assert 'class="placeholders-failed">2 jobs failed at the provider' in page, page
    assert '"state":"failed"' in page and '"src":' not in page


@pytest.mark.parametrize("flags", [["--force"], ["--force", "--resume"]], ids=["force", "force-resume"])
def test_a_placeholder_whose_render_the_provider_failed_under_force_is_failed_not_done(
    tmp_path: Path, sim: str, failing: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    flags: list[str],
) -> None:
    """Sent by `--force` (or `--force --resume`), a simulator's placeholder is still no video of this provider's:
    its failed render leaves it failed, as a plain run's does, not "done, the earlier video kept", and the next step
    named is the plain `gridrun run`, not the paid `--force`."""
    monkeypatch.setenv("LUMENFALL_API_KEY", "lmnfl_test_key_0123456789")
    monkeypatch.delenv("LUMENFALL_BASE_URL", raising=False)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), provider="lumenfall", base_url=sim,
                       run={"poll_interval": 0.05, "failure_retries": 0})
    assert api.run(m, report=False).exit_code == 0
    to(m, failing)
    capsys.readouterr()
    main(["run", str(m), "--no-report", *flags])
    said = capsys.readouterr().err
    assert "the earlier video kept" not in said and "not rendered" in said, said
    snap = api.status(m)
    assert snap.counts["done"] == 0 and snap.counts["failed"] == 2, snap.counts
    assert not snap.rerenders_failed and len(snap.placeholders_failed) == 2
    assert main(["status", str(m)]) == 0
    shown = capsys.readouterr().out
    assert "`gridrun run --force` tries again" not in shown and "`gridrun run` renders" in shown, shown


@pytest.fixture(scope="module")
def rendering() -> Iterator[str]:
    """Another served simulator as a provider would answer, rendering every job."""
    with serving(SimConfig(**KNOBS), marked=False) as url:
        yield url


def test_an_earlier_runs_failed_placeholders_stay_failed_in_its_views(
    tmp_path: Path, sim: str, failing: str, rendering: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run whose placeholders' renders failed is listed (`status --runs`) and exported (`export --run N`) as its
    events say, failed, when it is the latest run and after later runs rendered the jobs and rendered them again
    (`--force`): the store keeps each job's latest re-run, not what that run met."""
    monkeypatch.setenv("LUMENFALL_API_KEY", "lmnfl_test_key_0123456789")
    monkeypatch.delenv("LUMENFALL_BASE_URL", raising=False)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), provider="lumenfall", base_url=sim,
                       run={"poll_interval": 0.05, "failure_retries": 0})
    assert api.run(m, report=False).exit_code == 0
    to(m, failing)
    assert main(["run", str(m), "--no-report"]) == 1
    latest = api.runs(m)[0]
    assert (latest.run.id, latest.jobs, latest.done) == (2, 2, 0), latest

    to(m, rendering)
    assert main(["run", str(m), "--no-report"]) == 0
    assert main(["run", str(m), "--no-report", "--force"]) == 0
    capsys.readouterr()
    assert main(["status", str(m), "--runs", "--json"]) == 0
    listed = {r["run"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed[2]["done"] == 0 and listed[2]["jobs"] == 2, listed[2]
    assert listed[3]["done"] == listed[4]["done"] == 2

    assert main(["export", str(m), "--run", "2", "--format", "json"]) == 0
    written = json.loads((m.parent / "outputs" / "t" / "results-run-2.json").read_text())
    rows = written["rows"]
    assert len(rows) == 2 and written["summary"]["counts"]["failed"] == 2, written["summary"]
    for row in rows:
        assert row["state"] == "failed" and "CONTENT_POLICY_VIOLATION" in row["error"], row
        assert row["output_path"] is None, row
