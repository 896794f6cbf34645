from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from runner import api
from runner.errors import BudgetError, NotRecordedError, alike
from runner.executor import RunOptions
from runner.jobs import usd_text

from execkit import check_outputs, quick_backoff, sha256, sim_provider, stats, write_manifest
from statekit import FullDisk

ROOT = Path(__file__).resolve().parent.parent


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(manifest: Path, provider=None, **opts):
    provider = provider or sim_provider(manifest)
    result = api.run(manifest, provider=provider, options=RunOptions(**opts), report=False)
    return result, provider


def test_demo_manifest_end_to_end(tmp_path: Path) -> None:
    # its simulator renders at once, not in 2 s: the sim: knobs are no part of a job's request, nor of its price
    demo = (ROOT / "manifests" / "demo.yaml").read_text(encoding="utf-8")
    assert "\n  render_time: 2.0\n" in demo
    m = tmp_path / "demo.yaml"
    m.write_text(demo.replace("\n  render_time: 2.0\n", "\n  render_time: 0.05\n"), encoding="utf-8")
    result = api.run(m)
    assert result.exit_code == 0 and result.status == "done"
    done = check_outputs(m)
    assert len(done) == 12
    snap = api.status(m)
    for job in snap.jobs:
        with av.open(job.output_path) as c:
            stream = c.streams.video[0]
            assert stream.codec_context.name == "h264"
            duration = float(c.duration) / 1_000_000
            assert abs(duration - 5.0) < 0.5, (job.key, duration)
    assert result.report is not None and result.report.is_file()
    assert (result.outputs_dir / ".runs" / f"run-{result.run_id}.yaml").read_text() == m.read_text()


def test_second_run_pays_nothing_and_reports_cached(tmp_path: Path) -> None:
    m = write_manifest(tmp_path)
    r1, prov = run(m)
    assert r1.exit_code == 0 and stats(prov)["creates"] == 6
    assert r1.stats.per_minute is not None and r1.stats.per_minute > 0
    r2, _ = run(m, prov)
    assert r2.exit_code == 0 and r2.stats.cached == 6
    assert r2.stats.per_minute is None  # cached jobs are not throughput
    assert stats(prov)["creates"] == 6 and stats(prov)["duplicate_paid"] == 0


def test_force_reruns_every_job_as_a_new_attempt(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1)
    _, prov = run(m)
    r2, _ = run(m, prov, force=True)
    assert r2.exit_code == 0 and stats(prov)["creates"] == 4
    assert stats(prov)["duplicate_paid"] == 2  # asked for: the same bodies, paid again on purpose


def _failed_force_run(tmp_path: Path, **sim: Any) -> tuple[Path, Any, Any, dict[str, str]]:
    """Two done jobs, then a --force run whose re-renders the provider fails (`sim` knobs for that run): the
    manifest, the provider, that run's result and each job's earlier SHA-256 by key."""
    m = write_manifest(tmp_path, n_seeds=1, sim={"render_time": 0.1})
    first, prov = run(m)
    assert first.exit_code == 0
    earlier = {j.key: str(j.sha256) for j in api.status(m).jobs}
    prov.app.state.sim.configure({"failure_rate": 1.0, **sim})
    forced, _ = run(m, prov, force=True)
    return m, prov, forced, earlier


def _done_as_before(m: Path, earlier: dict[str, str], *, attempts: list[str]) -> None:
    """Each job is done with its earlier video (on disk, its SHA-256 recorded), paid in the first run, in the
    state and the export alike; its attempts ended as `attempts` say."""
    from runner.export import export_rows
    from runner.state import Store

    snap = api.status(m)
    rows = {r["key"]: r for r in export_rows(snap)}
    with Store(m.parent / ".gridrun" / "state.db", readonly=True) as store:
        for job in snap.jobs:
            assert job.state == "done" and job.sha256 == earlier[job.key] == sha256(Path(job.output_path)), job
            assert [a["state"] for a in store.attempts(job.id)] == attempts, job.key
            row = rows[job.key]
            assert row["state"] == "done" and row["sha256"] == earlier[job.key] and row["paid_in_run"] == 1, row
    check_outputs(m)


def test_a_force_re_render_the_provider_fails_leaves_the_done_job_as_it_was(tmp_path: Path) -> None:
    """A re-render of a done job that the provider fails: the job is done with its earlier, paid video (not
    failed, which a paid `retry` would mend), the run ends failed and says why; a plain run and `retry` send
    nothing for it, and `--force` again re-renders it."""
    from runner.state import Store

    m, prov, forced, earlier = _failed_force_run(tmp_path)
    assert forced.exit_code == 1 and forced.status == "failed", forced.status
    assert forced.stats.counts["done"] == 2 and forced.stats.counts["failed"] == 0, forced.stats.counts
    assert forced.stats.rerenders_failed == 2 and forced.stats.cached == 2
    assert any("re-render failed, the earlier video kept: CONTENT_POLICY_VIOLATION" in e for e in forced.stats.last_errors)
    assert stats(prov)["creates"] == 4
    _done_as_before(m, earlier, attempts=["done", "failed"])
    snap = api.status(m)
    assert sorted(k for k, _ in snap.rerenders_failed) == sorted(earlier), snap.rerenders_failed
    assert all("CONTENT_POLICY_VIOLATION" in error for _, error in snap.rerenders_failed)
    for opts in ({}, {"retry_failed": True}):
        again, _ = run(m, prov, **opts)
        assert again.exit_code == 0 and again.stats.cached == 2 and stats(prov)["creates"] == 4, opts
        assert not api.status(m).rerenders_failed
    _done_as_before(m, earlier, attempts=["done", "failed"])
    prov.app.state.sim.configure({"failure_rate": 0.0})
    redone, _ = run(m, prov, force=True)
    assert redone.exit_code == 0 and stats(prov)["creates"] == 6 and redone.stats.cached == 0
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        for job in api.status(m).jobs:
            assert [a["state"] for a in store.attempts(job.id)] == ["done", "failed", "done"], job.key
            assert store.job_row(job.id)["done_run_id"] == redone.run_id, job.key
    check_outputs(m)


def test_cli_says_a_failed_re_render_left_its_job_done(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The run's end, `status` and `status --json` say which re-renders failed and why, and that the earlier videos
    are kept; neither advises a paid `retry`."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1})
    assert main(["run", str(m), "--no-report"]) == 0
    m.write_text(m.read_text().replace("render_time: 0.1", "render_time: 0.1\n  failure_rate: 1.0"))
    capsys.readouterr()
    assert main(["run", str(m), "--no-report", "--force"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    note = ("1 re-render of done jobs (--force) failed: the earlier video kept, its job done as before (`gridrun run "
            "--force` tries again, paying again)")
    assert note in err and "gridrun retry" not in err, err
    assert main(["status", str(m)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert note in out and "style=anime,seed=1: CONTENT_POLICY_VIOLATION" in out, out
    assert "failed 1" not in out and "retry" not in out, out
    assert main(["status", str(m), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["done"] == 1 and doc["problems"] == []
    assert [r["key"] for r in doc["rerenders_failed"]] == ["style=anime,seed=1"], doc


def test_money_reads_to_the_micro_dollar_alike_in_the_runs_end_status_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three renders billed $0.525 each spent $1.575: the run's last progress line, `status` and the report's
    header each show $1.575, as export's spent_usd has it, not a float's rounding of it ($1.57)."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), sim={"render_time": 0.1, "cost_factor": 1.5})
    assert main(["run", str(m)]) == 0
    err = capsys.readouterr().err
    assert "spent $1.575 + reserved $0.00" in err, err
    assert main(["status", str(m)]) == 0
    assert "spent $1.575, reserved $0.00" in capsys.readouterr().out
    header = (tmp_path / "outputs" / "t" / "report.html").read_text().split("<dl class=\"money\">")[1]
    assert '<dd class="spent">$1.575</dd>' in header, header
    assert _money_views(m) == {1.575}


def test_a_run_the_provider_billed_past_its_budget_says_so_at_its_end_in_status_and_in_its_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job estimated at $0.35 is sent within a $1.00 budget and billed $1.40 (4x, a plausible figure): the run
    spent more than its budget, and its end, `status` and its report say so, by how much and why, in place of
    a spent figure above the budget left unexplained. A run within its budget says nothing of the kind."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"budget_usd": 1.0, "concurrency": 1},
                       sim={"render_time": 0.1, "jitter": 0.0, "concurrency": 1, "cost_factor": 4.0})
    assert main(["run", str(m)]) == 3
    note = ("passed its budget: spent $1.40 (simulated: made-up figures, nothing paid) of $1.00, $0.40 over: the provider billed 1 job already sent $1.05 "
            "above its estimate (each was sent within the budget, counted at its estimate, or at the bills above the "
            "estimates seen by then, until its cost was known)")
    err = " ".join(capsys.readouterr().err.split())
    assert f"warning: this run {note}" in err, err
    assert main(["status", str(m)]) == 0
    assert note in " ".join(capsys.readouterr().out.split())
    page = (tmp_path / "outputs" / "t" / "report.html").read_text()
    assert f'<strong class="over-budget">— {note}</strong>' in page
    assert main(["run", str(m), "--budget", "5"]) == 0
    assert "passed its budget" not in capsys.readouterr().err
    assert main(["status", str(m)]) == 0
    assert "passed its budget" not in capsys.readouterr().out
    assert "passed its budget" not in (tmp_path / "outputs" / "t" / "report.html").read_text()


def test_a_failed_re_render_whose_earlier_video_is_gone_or_altered_leaves_the_job_failed(tmp_path: Path) -> None:
    """The earlier video not whole at its path (deleted, edited in place): nothing to keep, so the job is failed,
    as any failed render is."""
    m = write_manifest(tmp_path, n_seeds=1, sim={"render_time": 0.1})
    _, prov = run(m)
    gone, altered = api.status(m).jobs
    Path(gone.output_path).unlink()
    with Path(altered.output_path).open("ab") as f:
        f.write(b"the user's edit")
    prov.app.state.sim.configure({"failure_rate": 1.0})
    forced, _ = run(m, prov, force=True)
    assert forced.stats.counts["failed"] == 2 and forced.stats.rerenders_failed == 0, forced.stats.counts
    assert {j.state for j in api.status(m).jobs} == {"failed"} and not api.status(m).rerenders_failed


def test_a_failed_re_render_the_provider_charged_for_counts_in_its_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the provider charged for the failed re-render is the run's spending; the job's cost stays that of its
    earlier video, paid in the first run, and fetching that video again (lost since) moves neither."""
    from runner import executor as ex_mod
    from runner.state import Store

    charged = 120_000
    real = ex_mod.counted_cost
    monkeypatch.setattr(ex_mod, "counted_cost", lambda estimate, reported, *, completed, own=None: real(
        estimate, reported, completed=True, own=own) if completed else (charged, False))
    m, prov, forced, earlier = _failed_force_run(tmp_path)
    assert forced.stats.rerenders_failed == 2 and forced.stats.spent_micros == 2 * charged
    snap = api.status(m)
    assert snap.spent_micros == 2 * charged and snap.manifest_spent_micros == 2 * charged + 700_000
    assert all(j.cost_micros == 350_000 for j in snap.jobs)
    Path(snap.jobs[0].output_path).unlink()
    again, _ = run(m, prov)
    assert again.exit_code == 0 and stats(prov)["creates"] == 4 and again.stats.spent_micros == 0
    _done_as_before(m, earlier, attempts=["done", "failed"])
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        assert [a["billed_micros"] for a in store.attempts(snap.jobs[0].id)] == [350_000, charged]
    assert api.status(m).manifest_spent_micros == 2 * charged + 700_000


def _charged_failures(monkeypatch: pytest.MonkeyPatch, charged: int) -> None:
    """Every failed render is charged `charged` (micro-dollars), as a provider may bill one."""
    from runner import executor as ex_mod

    real = ex_mod.counted_cost
    monkeypatch.setattr(ex_mod, "counted_cost", lambda estimate, reported, *, completed, own=None: real(
        estimate, reported, completed=True, own=own) if completed else (charged, False))


@pytest.mark.parametrize("unsent", ["budget", "unreached"])
def test_a_failed_re_render_whose_failure_retry_never_reached_the_provider_leaves_the_done_job_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unsent: str
) -> None:
    """A --force re-render the provider fails and charged for, then its failure retry (run.failure_retries) never
    sent: held by the budget the charge used up, or its create refused a connection. The job is done with its
    earlier video, as after a failed re-render with no retry (event rerun-failed), not failed for a paid `retry`:
    the failed take's charge counts in the run, and a plain run and `retry` send nothing for it."""
    from runner.errors import ConnectError
    from runner.state import Store

    charged = 120_000
    _charged_failures(monkeypatch, charged)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1})
    first, prov = run(m)
    earlier = {j.key: str(j.sha256) for j in api.status(m).jobs}
    cost = api.plan(m).jobs[0].cost_micros
    prov.app.state.sim.configure({"failure_rate": 1.0, "failure_code": "INTERNAL_ERROR"})  # one sent again
    opts: dict[str, Any] = {"force": True, "failure_retries": 1}
    if unsent == "budget":
        opts["budget_usd"] = cost / 1e6  # the re-render's charge leaves too little for its retry
    else:
        real, sent = prov.submit, []

        async def refused_after_first(client: Any, body: dict[str, Any]) -> Any:
            sent.append(body)
            if len(sent) > 1:
                raise ConnectError("connection refused")
            return await real(client, body)

        prov.submit = refused_after_first
        opts["retries"] = 0
    forced, _ = run(m, prov, **opts)
    assert stats(prov)["creates"] == 2, "the first render and the re-render: the retry never reached it"
    assert forced.exit_code == 1 and forced.stats.counts["done"] == 1 and forced.stats.counts["failed"] == 0, \
        forced.stats.counts
    assert forced.stats.rerenders_failed == 1 and forced.stats.spent_micros == charged, forced.stats
    _done_as_before(m, earlier, attempts=["done", "failed"])
    snap = api.status(m)
    assert [k for k, _ in snap.rerenders_failed] == list(earlier), snap.rerenders_failed
    assert snap.spent_micros == charged and snap.manifest_spent_micros == cost + charged
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        job = snap.jobs[0]
        assert store.job_row(job.id)["done_run_id"] == first.run_id
        assert [a["billed_micros"] for a in store.attempts(job.id)] == [cost, charged]
    with closing(sqlite3.connect(tmp_path / ".gridrun" / "state.db")) as db:
        said = db.execute("SELECT run_id, detail FROM events WHERE kind='rerun-failed'").fetchall()
    assert len(said) == 1 and said[0][0] == forced.run_id, said
    assert json.loads(said[0][1])["cost_micros"] == charged and "INTERNAL_ERROR" in json.loads(said[0][1])["error"]
    if unsent == "unreached":
        prov.submit = real
    for again_opts in ({}, {"retry_failed": True}):
        again, _ = run(m, prov, **again_opts)
        assert again.exit_code == 0 and again.stats.cached == 1 and stats(prov)["creates"] == 2, again_opts
    _done_as_before(m, earlier, attempts=["done", "failed"])


def test_one_put_back_of_a_failed_re_render_serves_the_run_and_the_next_runs_judgement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`resume.retry_not_sent` is the one put-back of a failed re-render whose failure retry was never sent, for
    the run that stopped it (`run_id`, `whole` found off its event loop) and for the next run's judgement (none,
    found there): done as it was only when failed and its earlier video is whole; a video that cannot be read
    (an OSError) is not whole, in both."""
    from types import SimpleNamespace

    import anyio

    from runner import executor, outputs, resume
    from runner.state import JobState

    video = tmp_path / "a.mp4"
    video.write_bytes(b"earlier take")
    digest = sha256(video)
    put_back: list[tuple[int, int | None]] = []
    store: Any = SimpleNamespace(rerendered=lambda jid: (str(video), digest),
                                 retry_unsent=lambda jid, run_id: put_back.append((jid, run_id)) or JobState.DONE)
    assert resume.retry_not_sent(store, 1, JobState.FAILED) == JobState.DONE  # hashed here: whole
    assert resume.retry_not_sent(store, 2, JobState.FAILED, run_id=7, whole=True) == JobState.DONE
    assert resume.retry_not_sent(store, 3, JobState.FAILED, run_id=7, whole=False) == JobState.FAILED
    assert resume.retry_not_sent(store, 4, JobState.PLANNED) == JobState.PLANNED  # not failed: as it is
    assert put_back == [(1, None), (2, 7)]
    assert not hasattr(executor, "retry_not_sent") and not hasattr(executor, "_whole")  # no second copy

    def unreadable(path: Path) -> str:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(outputs, "sha256_file", unreadable)
    assert resume.whole(video, digest) is False
    assert resume.retry_not_sent(store, 5, JobState.FAILED) == JobState.FAILED and put_back == [(1, None), (2, 7)]
    assert anyio.run(executor.earlier_whole, store, 6) is False  # the run's, off its loop: the same answer


def test_a_force_re_render_the_provider_refuses_leaves_the_done_job_as_it_was(tmp_path: Path) -> None:
    """A create of a re-render that the provider refuses for what it asks (400): the job is done with its earlier
    video, not rejected."""
    from runner.errors import RejectedError

    m = write_manifest(tmp_path, n_seeds=1, sim={"render_time": 0.1})
    _, prov = run(m)
    earlier = {j.key: str(j.sha256) for j in api.status(m).jobs}

    async def refuse(client: Any, body: dict[str, Any]) -> Any:
        raise RejectedError("prompt: refused", status=400, code="INVALID_REQUEST")

    prov.submit = refuse
    forced, _ = run(m, prov, force=True)
    assert forced.exit_code == 1 and forced.stats.rerenders_failed == 2, forced.stats.counts
    assert forced.stats.counts["rejected"] == 0 and forced.stats.counts["done"] == 2
    _done_as_before(m, earlier, attempts=["done", "rejected"])
    assert all("INVALID_REQUEST" in error for _, error in api.status(m).rerenders_failed)


def test_deleted_output_is_fetched_again_without_paying(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1)
    r1, prov = run(m)
    victim = r1.outputs_dir / "anime" / "seed-1.mp4"
    victim.unlink()
    r2, _ = run(m, prov)
    assert r2.exit_code == 0 and victim.is_file()
    assert stats(prov)["creates"] == 2
    check_outputs(m)


def test_a_video_altered_in_place_is_kept_under_superseded_before_it_is_fetched_again(tmp_path: Path) -> None:
    """A done video the user edited in place is fetched again (free), but first kept, with its sidecar, under
    .runs/superseded/<hash>/<its sha256 prefix>/ as an earlier take is, and the state says where (event
    altered-kept); a deleted one is simply fetched again."""
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=1)
    r1, prov = run(m)
    jobs = {j.key: j for j in api.status(m).jobs}
    altered, deleted = (r1.outputs_dir / style / "seed-1.mp4" for style in ("anime", "clay"))
    job = next(j for j in jobs.values() if j.output_path == str(altered))
    edit = altered.read_bytes() + b"the user's edit"
    altered.write_bytes(edit)
    deleted.unlink()
    r2, _ = run(m, prov)
    assert r2.exit_code == 0 and stats(prov)["creates"] == 2  # nothing paid again
    assert sha256(altered) == job.sha256 and deleted.is_file()
    kept = r1.outputs_dir / ".runs" / "superseded" / job.hash[:16] / sha256_bytes(edit)[:16] / altered.name
    assert r2.altered_kept == (kept,) and kept.read_bytes() == edit
    assert json.loads(kept.with_suffix(".json").read_text())["sha256"] == job.sha256  # the sidecar that was beside it
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        events = [json.loads(r[0]) for r in store.db.execute("SELECT detail FROM events WHERE kind='altered-kept'")]
    assert events == [{"path": str(kept), "sha256": sha256_bytes(edit), "recorded_sha256": job.sha256}]
    check_outputs(m)
    r3, _ = run(m, prov)  # whole again: cached, nothing kept
    assert r3.stats.cached == 2 and r3.altered_kept == ()


def test_cli_run_says_where_an_altered_video_was_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runner.cli import main
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    assert main(["run", str(m), "--no-report"]) == 0
    video = tmp_path / "outputs" / "t" / "anime" / "seed-1.mp4"
    with video.open("ab") as f:
        f.write(b"trimmed")
    capsys.readouterr()
    assert main(["run", str(m), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"1 video differed from what was downloaded: kept in \S+/\.runs/superseded/[0-9a-f]{16}/"
                     r"[0-9a-f]{16}/seed-1\.mp4 before fetching it again, at no cost", err), err


def test_a_done_video_whose_sidecar_alone_is_gone_is_not_warned_of_and_gets_it_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The video is the one the state records (its SHA-256): `plan` and `run` do not call it a file gridrun
    may not have written; the run writes its sidecar again and sends nothing."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    assert main(["run", str(m), "--no-report"]) == 0
    before = {j.key: (j.attempts, j.provider_id, j.sha256) for j in api.status(m).jobs}
    side = tmp_path / "outputs" / "t" / "anime" / "seed-1.json"
    side.unlink()
    capsys.readouterr()
    assert main(["plan", str(m)]) == 0
    assert main(["run", str(m), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "no sidecar beside it" not in err and "warning" not in err, err
    assert side.is_file() and {j.key: (j.attempts, j.provider_id, j.sha256) for j in api.status(m).jobs} == before
    check_outputs(m)
    assert not (tmp_path / "outputs" / "t" / ".runs" / "superseded").exists()


def test_a_file_with_no_sidecar_in_a_new_jobs_place_is_kept_under_superseded(tmp_path: Path) -> None:
    """A file of the user's where a new job's video goes is kept, byte for byte, with the .jpg of its name
    beside it, under .runs/superseded/<hash>/<its sha256 prefix>/ before the download takes its place, and
    the state says where (event foreign-kept)."""
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    mine = tmp_path / "outputs" / "t" / "anime" / "seed-1.mp4"
    mine.parent.mkdir(parents=True)
    mine_bytes = b"MY OWN PRECIOUS FILE"
    mine.write_bytes(mine_bytes)
    mine.with_suffix(".jpg").write_bytes(b"my own poster")
    r1, prov = run(m)
    assert r1.exit_code == 0 and stats(prov)["creates"] == 1
    job = api.status(m).jobs[0]
    kept = r1.outputs_dir / ".runs" / "superseded" / job.hash[:16] / sha256_bytes(mine_bytes)[:16] / mine.name
    assert r1.foreign_kept == (kept,) and kept.read_bytes() == mine_bytes
    assert kept.with_suffix(".jpg").read_bytes() == b"my own poster"
    assert sha256(mine) == job.sha256  # the new video in its place
    check_outputs(m)
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        events = [json.loads(r[0]) for r in store.db.execute("SELECT detail FROM events WHERE kind='foreign-kept'")]
    assert events == [{"path": str(kept), "sha256": sha256_bytes(mine_bytes)}]
    r2, _ = run(m, prov)  # gridrun's own now: cached, nothing kept
    assert r2.stats.cached == 1 and r2.foreign_kept == ()


def test_a_file_with_no_sidecar_where_a_done_video_is_copied_is_kept_first(tmp_path: Path) -> None:
    """A changed output template moves a done job's video: the copy does not write over a file of the user's
    at its new place without keeping it."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    r1, prov = run(m)
    m.write_text(m.read_text().replace("output: '{{ style }}/seed-{{ seed }}.mp4'", "output: '{{ style }}.mp4'"))
    mine = r1.outputs_dir / "anime.mp4"
    mine.write_bytes(b"MY OWN FILE")
    r2, _ = run(m, prov)
    assert r2.exit_code == 0 and r2.stats.cached == 1 and stats(prov)["creates"] == 1
    job = api.status(m).jobs[0]
    kept = r1.outputs_dir / ".runs" / "superseded" / job.hash[:16] / sha256_bytes(b"MY OWN FILE")[:16] / mine.name
    assert r2.foreign_kept == (kept,) and kept.read_bytes() == b"MY OWN FILE"
    assert sha256(mine) == job.sha256


def _jpeg(path: Path, **save: Any) -> bytes:
    """Write a small JPEG at `path` as Pillow writes one (`save`: its options, a `comment`, say); its bytes."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 18), (10, 200, 30)).save(path, format="JPEG", **save)
    return path.read_bytes()


def _run_with_posters(m: Path, provider: Any = None, **opts: Any) -> tuple[Any, Any]:
    """`run`, with the report and the posters it makes as videos arrive."""
    provider = provider or sim_provider(m)
    return api.run(m, provider=provider, options=RunOptions(**opts), report=True), provider


def test_an_image_of_the_users_where_a_new_jobs_poster_goes_is_kept_before_the_poster_replaces_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A .jpg of the user's named like a video of the grid, with no video beside it, is not a poster gridrun
    wrote: `plan` says the run keeps it, which keeps it, byte for byte, under .runs/superseded/ (event foreign-kept)
    before its poster takes its place, and the next run, finding gridrun's poster there, keeps nothing."""
    from runner.outputs import gridrun_poster
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    image = tmp_path / "outputs" / "t" / "anime" / "seed-1.jpg"
    mine = _jpeg(image)
    said, warned = _plan_says(m, capsys)
    assert f"a job's poster would replace {image}, an image with no poster mark" in said and len(warned) == 1, said
    r1, prov = _run_with_posters(m)
    assert r1.exit_code == 0
    job = api.status(m).jobs[0]
    kept = r1.outputs_dir / ".runs" / "superseded" / job.hash[:16] / sha256_bytes(mine)[:16] / image.name
    assert r1.foreign_kept == (kept,) and kept.read_bytes() == mine
    assert gridrun_poster(image) and image.read_bytes() != mine  # the poster in its place
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        events = [json.loads(r[0]) for r in store.db.execute("SELECT detail FROM events WHERE kind='foreign-kept'")]
    assert events == [{"path": str(kept), "sha256": sha256_bytes(mine)}]
    r2, _ = _run_with_posters(m, prov, force=True)
    assert r2.exit_code == 0 and r2.foreign_kept == ()


def test_an_image_of_the_users_where_a_done_video_is_copied_is_kept_first(tmp_path: Path) -> None:
    """A changed output template copies a done job's video to a new place: the poster the report then makes
    there does not write over an image of the user's without keeping it."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    r1, prov = _run_with_posters(m)
    m.write_text(m.read_text().replace("output: '{{ style }}/seed-{{ seed }}.mp4'", "output: '{{ style }}.mp4'"))
    mine = _jpeg(r1.outputs_dir / "anime.jpg")
    r2, _ = _run_with_posters(m, prov)
    assert r2.exit_code == 0 and r2.stats.cached == 1
    job = api.status(m).jobs[0]
    kept = r1.outputs_dir / ".runs" / "superseded" / job.hash[:16] / sha256_bytes(mine)[:16] / "anime.jpg"
    assert r2.foreign_kept == (kept,) and kept.read_bytes() == mine
    assert (r1.outputs_dir / "anime.jpg").read_bytes() != mine


def test_a_poster_with_gridruns_mark_is_replaced_without_keeping_it(tmp_path: Path) -> None:
    """A poster with the mark is gridrun's even with neither its video nor its sidecar beside it: the video,
    deleted, is fetched again, no file is kept, and the new poster has the mark."""
    from runner.outputs import gridrun_poster

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    r1, prov = _run_with_posters(m)
    video = r1.outputs_dir / "anime" / "seed-1.mp4"
    image = video.with_suffix(".jpg")
    assert r1.exit_code == 0 and gridrun_poster(image)
    os.utime(image, (1, 1))  # the new poster is the same image: its time tells that it was written again
    video.with_suffix(".json").unlink()
    video.unlink()
    r2, _ = _run_with_posters(m, prov)
    assert r2.exit_code == 0 and r2.foreign_kept == ()
    assert gridrun_poster(image) and image.stat().st_mtime > 1
    assert not list((r1.outputs_dir / ".runs").rglob("*.jpg"))


@pytest.mark.parametrize("whose", ["user", "earlier-version"])
def test_an_image_with_no_mark_beside_gridruns_sidecar_is_kept_once_before_a_fetched_videos_poster(
    tmp_path: Path, whose: str,
) -> None:
    """A done video deleted, its sidecar left: the .jpg at its poster's place has no mark (an image of the
    user's, or a poster as earlier versions wrote it: nothing tells them apart), so the run that fetches the
    video again keeps it, byte for byte (event foreign-kept), before the new poster takes its place; the same
    image found there again is not kept twice."""
    from runner.outputs import gridrun_poster

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    r1, prov = _run_with_posters(m)
    video = r1.outputs_dir / "anime" / "seed-1.mp4"
    image = video.with_suffix(".jpg")
    job_hash = json.loads(video.with_suffix(".json").read_text())["hash"]
    mine = _jpeg(image, quality=82) if whose == "earlier-version" else _jpeg(image, comment=b"my picture")
    video.unlink()
    r2, _ = _run_with_posters(m, prov)
    kept = r1.outputs_dir / ".runs" / "superseded" / job_hash[:16] / sha256_bytes(mine)[:16] / "seed-1.jpg"
    assert r2.exit_code == 0 and r2.foreign_kept == (kept,) and kept.read_bytes() == mine
    assert gridrun_poster(image)
    image.write_bytes(mine)
    video.unlink()
    r3, _ = _run_with_posters(m, prov)
    assert r3.exit_code == 0 and r3.foreign_kept == () and gridrun_poster(image)
    assert kept.read_bytes() == mine and len(list((r1.outputs_dir / ".runs").rglob("*.jpg"))) == 1


@pytest.mark.parametrize("whose", ["user", "earlier-version", "gridrun"])
def test_a_force_rerender_keeps_an_image_with_no_mark_beside_the_earlier_take(tmp_path: Path, whose: str) -> None:
    """--force replaces a done video whose .jpg has no poster mark (an image of the user's, or an earlier
    version's poster): the image is kept, byte for byte, beside the earlier take under .runs/superseded/ (event
    foreign-kept), where the earlier run's report finds that take's poster, before the new poster takes its
    place. gridrun's own poster is not kept: a report makes it again from the kept video. (No seed is sent:
    each render of the job differs.)"""
    from runner.outputs import gridrun_poster
    from runner.report import poster_path
    from runner.state import Store

    m = write_manifest(tmp_path, extra={"matrix": {"style": ["anime"]}, "output": "{{ style }}.mp4"})  # no seed
    r1, prov = _run_with_posters(m)
    video = r1.outputs_dir / "anime.mp4"
    image = video.with_suffix(".jpg")
    was = api.status(m).jobs[0]
    mine = {"user": lambda: _jpeg(image, comment=b"my picture"), "earlier-version": lambda: _jpeg(image, quality=82),
            "gridrun": image.read_bytes}[whose]()
    r2, _ = _run_with_posters(m, prov, force=True)
    take = r1.outputs_dir / ".runs" / "superseded" / was.hash[:16] / was.sha256[:16]
    assert r2.exit_code == 0 and (take / "anime.mp4").is_file() and gridrun_poster(image)
    assert api.status(m).jobs[0].sha256 != was.sha256
    if whose == "gridrun":
        assert r2.foreign_kept == () and not list((r1.outputs_dir / ".runs").rglob("*.jpg"))
        return
    assert r2.foreign_kept == (take / "anime.jpg",) and (take / "anime.jpg").read_bytes() == mine
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        earlier = store.snapshot(r1.run_id).jobs[0]
    assert Path(earlier.output_path) == take / "anime.mp4" and poster_path(earlier.output_path).read_bytes() == mine


def test_keep_take_keeps_an_image_under_its_own_digest_where_another_holds_the_takes_poster_place(
    tmp_path: Path,
) -> None:
    """An image with no mark already kept beside the take (another one, found there by an earlier run) is not
    written over: the new image is kept alone, under its own digest, as `keep_file` keeps a lone poster."""
    from runner.outputs import keep_take, take_path

    video = tmp_path / "anime.mp4"
    video.write_bytes(b"the earlier take")
    sha = sha256_bytes(b"the earlier take")
    folder = tmp_path / "kept"
    first = _jpeg(take_path(folder, sha, "anime.jpg"), comment=b"first")
    mine = _jpeg(tmp_path / "anime.jpg", comment=b"second")
    take = keep_take(video, sha, folder)
    assert take is not None and take.path == take_path(folder, sha, "anime.mp4")
    assert take.poster is not None and take.poster.path == take_path(folder, sha256_bytes(mine), "anime.jpg")
    assert take.poster.path.read_bytes() == mine and take_path(folder, sha, "anime.jpg").read_bytes() == first


def test_cli_warns_of_and_says_where_a_file_with_no_sidecar_was_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    mine = tmp_path / "outputs" / "t" / "anime" / "seed-1.mp4"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"mine")
    assert main(["run", str(m), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "seed-1.mp4, with no sidecar beside it: a file gridrun may not have written; a run keeps it under " \
           ".runs/superseded/ in the output folder" in err, err
    assert re.search(r"1 file that gridrun cannot tell for its own \(a video no sidecar of gridrun's records, with "
                     r"none beside it or edited in place; an image with no poster mark: a poster an older gridrun "
                     r"wrote, or an image of yours\) was "
                     r"where a job's video or its poster went: kept in \S+/\.runs/superseded/"
                     r"[0-9a-f]{16}/[0-9a-f]{16}/seed-1\.mp4 before gridrun's took its place", err), err


def test_a_sidecar_has_every_field_that_tells_it_is_gridruns(tmp_path: Path) -> None:
    """What a download writes beside a video is what `gridrun_sidecar` takes for gridrun's: a field dropped
    from the sidecar would make every video look like the user's."""
    from runner.outputs import SIDECAR_FIELDS, gridrun_sidecar

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    r1, _ = run(m)
    video = r1.outputs_dir / "anime" / "seed-1.mp4"
    assert SIDECAR_FIELDS <= json.loads(video.with_suffix(".json").read_text()).keys()
    assert gridrun_sidecar(video) is not None


def _edit(video: Path) -> bytes:
    """Edit `video` in place, its sidecar left beside it as the download wrote it; the bytes it holds now."""
    edit = video.read_bytes() + b"the user's edit"
    video.write_bytes(edit)
    return edit


def _kept_foreign(result: Any, job_hash: str, video: Path, data: bytes) -> Path:
    """Where a run (`result`) kept `data`, found at `video` where job `job_hash`'s video went (foreign-kept),
    checked: byte for byte, with the sidecar that was beside it."""
    kept = result.outputs_dir / ".runs" / "superseded" / job_hash[:16] / sha256_bytes(data)[:16] / video.name
    assert result.foreign_kept == (kept,) and kept.read_bytes() == data
    assert json.loads(kept.with_suffix(".json").read_text())["sha256"] != sha256_bytes(data)  # the stale sidecar
    return kept


def test_a_video_edited_in_place_is_kept_before_a_forced_re_render_replaces_it(tmp_path: Path) -> None:
    """Its sidecar still beside it does not make the edit gridrun's: the file is not the take the sidecar
    records, so the re-render keeps it (as it keeps an earlier take it finds whole) before taking its place."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    r1, prov = run(m)
    video = r1.outputs_dir / "anime" / "seed-1.mp4"
    edit = _edit(video)
    r2, _ = run(m, prov, force=True)
    assert r2.exit_code == 0 and stats(prov)["creates"] == 2
    job = api.status(m).jobs[0]
    _kept_foreign(r2, job.hash, video, edit)
    assert sha256(video) == job.sha256
    check_outputs(m)


def test_a_video_edited_in_place_is_kept_before_a_changed_manifests_job_replaces_it(tmp_path: Path) -> None:
    """A changed prompt writes a new job's video where the edited one is: the earlier job's take is not whole
    to be put aside with its record, and the edit is kept before the new video takes its place."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    r1, prov = run(m)
    video = r1.outputs_dir / "anime" / "seed-1.mp4"
    edit = _edit(video)
    m.write_text(m.read_text().replace("a fox", "a cat"))
    r2, _ = run(m, prov)
    assert r2.exit_code == 0 and stats(prov)["creates"] == 2
    _kept_foreign(r2, api.status(m).jobs[0].hash, video, edit)
    check_outputs(m)


def test_a_video_edited_in_place_is_kept_before_another_states_job_replaces_it(tmp_path: Path) -> None:
    """Two manifests with a state each write one output folder: b's video does not replace a's edited one
    without keeping it."""
    made = []
    for name, animal in (("a", "fox"), ("b", "cat")):
        extra = {"outputs_dir": "shared", "state_dir": f"s{name}",
                 "params": {"prompt": f"a {animal}, {{{{ style }}}} style", "quality": "360p", "duration": 5}}
        made.append(write_manifest(tmp_path, name=name, n_seeds=1, styles=("anime",), extra=extra))
    a, b = made
    ra, _ = run(a)
    video = ra.outputs_dir / "anime" / "seed-1.mp4"
    edit = _edit(video)
    rb, _ = run(b)
    assert rb.exit_code == 0
    _kept_foreign(rb, api.status(b).jobs[0].hash, video, edit)


def test_two_states_asking_for_the_same_requests_each_send_keys_of_their_own_and_pay_for_their_own_renders(
    tmp_path: Path,
) -> None:
    """Two manifests with a `state_dir:` each, the same requests, one provider account: the second's creates
    are new renders it pays for, not the first's taken over by a shared idempotency key (which a `cancel` of one
    would cancel for both); its `--force` is a new take, not the first's old one recorded as paid again."""
    p, q = (write_manifest(tmp_path, n_seeds=1, name=name, extra={"state_dir": f".gridrun-{name}"})
            for name in ("pp", "qq"))
    first, prov = run(p)
    second, _ = run(q, prov)
    assert first.exit_code == second.exit_code == 0
    assert (stats(prov)["creates"], stats(prov)["replays"]) == (4, 0), stats(prov)
    ids = {name: {j.provider_id for j in api.status(m).jobs} for name, m in (("pp", p), ("qq", q))}
    assert len(ids["pp"] | ids["qq"]) == 4, ids
    forced, _ = run(q, prov, force=True)
    assert forced.exit_code == 0 and (stats(prov)["creates"], stats(prov)["replays"]) == (6, 0), stats(prov)
    assert not {j.provider_id for j in api.status(q).jobs} & (ids["pp"] | ids["qq"])
    check_outputs(p)
    check_outputs(q)


def _one_take_manifest(tmp_path: Path, *, sim_seed: int = 0) -> Path:
    """A manifest of one job that sends no seed: each simulator world draws its own picture (`sim_seed`), as
    two renders of one request differ at a real provider."""
    return write_manifest(tmp_path, sim={"render_time": 0.05, "jitter": 0.0, "seed": sim_seed},
                          extra={"matrix": {"style": ["anime"]}, "output": "{{ style }}.mp4"})


def test_a_video_of_a_state_deleted_and_begun_again_is_kept_before_the_new_states_video_replaces_it(
    tmp_path: Path,
) -> None:
    """The state removed to start over: the video its run paid for, whole with its sidecar, is a render the new
    state never made; its run keeps it (event unrecorded-kept) before the new video takes its place."""
    from runner.state import Store

    m = _one_take_manifest(tmp_path, sim_seed=1)
    assert api.run(m, report=False).exit_code == 0
    [old] = api.status(m).jobs
    video = Path(old.output_path)
    before = video.read_bytes()
    shutil.rmtree(tmp_path / ".gridrun")
    (video.parent / ".runs" / "lock").unlink()  # started over knowingly
    m.write_text(m.read_text().replace("seed: 1", "seed: 2"))  # the new world renders another picture
    r2, _ = run(m)
    [new] = api.status(m).jobs
    assert r2.exit_code == 0 and new.hash == old.hash and new.sha256 != old.sha256 == sha256_bytes(before)
    kept = r2.outputs_dir / ".runs" / "superseded" / old.hash[:16] / old.sha256[:16] / video.name
    assert r2.unrecorded_kept == (kept,) and r2.foreign_kept == () and kept.read_bytes() == before
    assert json.loads(kept.with_suffix(".json").read_text())["provider_id"] == old.provider_id
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        kinds = [r[0] for r in store.db.execute("SELECT kind FROM events WHERE kind LIKE '%-kept'")]
    assert kinds == ["unrecorded-kept"]


def _plan_says(m: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, list[str]]:
    """What `gridrun plan` warns of (standard error, one line), and the warnings of `gridrun plan --json`."""
    from runner.cli import main

    capsys.readouterr()
    assert main(["plan", str(m), *args]) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert main(["plan", str(m), "--json", *args]) == 0
    return said, json.loads(capsys.readouterr().out)["warnings"]


def test_plan_warns_beforehand_of_the_files_a_run_keeps_aside_as_unrecorded_or_foreign(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`gridrun plan` (and `--json`'s warnings) tells, once per kind, what the run then keeps under .runs/superseded/
    (events unrecorded-kept, foreign-kept): a video of gridrun's whose render the state has no record of (the state
    removed; a new state that rendered other jobs) and an image with no poster mark where a job's poster goes. Not
    an image beside a cached video, which a run leaves (but --force re-renders it), nor a take of the state's."""
    monkeypatch.chdir(tmp_path)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    r1, prov = run(m)
    video = r1.outputs_dir / "anime" / "seed-1.mp4"
    image = video.with_suffix(".jpg")
    _jpeg(image)
    said, warned = _plan_says(m, capsys)
    assert "poster" not in said and warned == [], (said, warned)  # cached: the run leaves it and its image
    said, warned = _plan_says(m, capsys, "--force")
    poster = (f"output: a job's poster would replace {image}, an image with no poster mark of gridrun's (a poster "
              "an older gridrun wrote, or an image of yours): a run keeps it under .runs/superseded/ in the output "
              "folder before the job's video and its poster take its place")
    assert poster in said and len(warned) == 1 and poster in " ".join(warned[0].split()), (said, warned)
    image.unlink()
    shutil.rmtree(tmp_path / ".gridrun")
    (r1.outputs_dir / ".runs" / "lock").unlink()  # started over knowingly
    unrecorded = (f"output: a job would write over {video}, a video of gridrun's that this state did not render "
                  "(another state's run wrote it: another state_dir, a copied project, a state begun again): a run "
                  "keeps it under .runs/superseded/ in the output folder before the job's video takes its place")
    # no state: the video was made for this very job's request, which the plan says, with what a run pays again
    same = (f"output: no state at {tmp_path / '.gridrun'} yet, and 1 of these jobs has a video of gridrun's in "
            f"{r1.outputs_dir} made for the very same request (its sidecar records the job's hash: {video}), rendered "
            "by another state")
    said, warned = _plan_says(m, capsys)
    assert same in said and len(warned) == 1 and same in " ".join(warned[0].split()), (said, warned)
    for styles in (("clay",), ("anime",)):  # a state of another job's render
        write_manifest(tmp_path, n_seeds=1, styles=styles)
        if styles == ("clay",):
            assert run(m, prov)[0].exit_code == 0
            continue
        said, warned = _plan_says(m, capsys)
        assert unrecorded in said and len(warned) == 1 and unrecorded in " ".join(warned[0].split()), (said, warned)
    r2, _ = run(m)  # a provider with no memory of the first state's create (which would give its render back)
    assert r2.unrecorded_kept and r2.foreign_kept == ()
    said, warned = _plan_says(m, capsys)
    assert "would" not in said and warned == [], (said, warned)


def test_a_runs_own_take_found_again_after_a_kill_is_not_kept(tmp_path: Path) -> None:
    """kill -9 just after a video was renamed into place, before the run's deferred writes said it was rendered:
    the resumed run downloads it again over the take it finds as its sidecar records it, a render this state
    recorded, and keeps nothing of it."""
    import subprocess
    import sys

    m = _one_take_manifest(tmp_path)
    env = {**os.environ, "GRIDRUN_CRASH_AT": "after-download:1", "PYTHONPATH": str(ROOT)}
    killed = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"], env=env,
                            capture_output=True, timeout=120, check=False)
    assert killed.returncode == -9, killed.stderr[-500:]
    video = tmp_path / "outputs" / "t" / "anime.mp4"
    take = video.read_bytes()
    # Whether the kill found `downloading` committed is a matter of milliseconds: the state as it is without it.
    with closing(sqlite3.connect(tmp_path / ".gridrun" / "state.db")) as db, db:
        db.execute("UPDATE jobs SET state='running', cost_micros=NULL, cost_reported_micros=NULL, url=NULL,"
                   " expires_at=NULL, completed_at=NULL")
        db.execute("UPDATE attempts SET state='running', billed_micros=NULL, billed_run_id=NULL")
    again = api.run(m, report=False)
    assert again.exit_code == 0 and again.foreign_kept == again.unrecorded_kept == ()
    assert not (again.outputs_dir / ".runs" / "superseded").exists()
    assert api.status(m).jobs[0].sha256 == sha256_bytes(take)
    check_outputs(m)


def test_a_done_video_copied_back_over_its_own_earlier_copy_keeps_nothing(tmp_path: Path) -> None:
    """An output template changed and changed back: the cached job's video is copied to each place in turn, and
    the copy it finds at its first place (its own take, its sidecar beside it) is not kept."""
    m = _one_take_manifest(tmp_path)
    first = m.read_text()
    r1, prov = run(m)
    m.write_text(first.replace("output: '{{ style }}.mp4'", "output: 'moved/{{ style }}.mp4'"))
    r2, _ = run(m, prov)
    m.write_text(first)
    r3, _ = run(m, prov)
    for r in (r2, r3):
        assert r.exit_code == 0 and r.stats.cached == 1 and r.foreign_kept == r.unrecorded_kept == ()
    assert stats(prov)["creates"] == 1
    assert not (r1.outputs_dir / ".runs" / "superseded").exists()
    assert api.status(m).jobs[0].output_path == str(r1.outputs_dir / "anime.mp4")
    check_outputs(m)


@pytest.mark.parametrize("command", [["plan"], ["run", "--force", "--no-report"]])
def test_plan_and_run_warn_of_a_done_video_edited_in_place_that_a_run_keeps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """The state check of `plan` and `run` already hashed the done job's video: an edited one, its sidecar
    beside it, is warned of as a file the run keeps before replacing it (fetched again, or re-rendered)."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    assert main(["run", str(m), "--no-report"]) == 0
    _edit(tmp_path / "outputs" / "t" / "anime" / "seed-1.mp4")
    capsys.readouterr()
    assert main([command[0], str(m), *command[1:]]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "seed-1.mp4, which no longer holds the video its sidecar records (edited or replaced in place): a run " \
           "keeps it under .runs/superseded/ in the output folder" in err, err

def test_changed_content_makes_new_jobs_only(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=2)
    _, prov = run(m)
    text = m.read_text().replace("- clay", "- comic")
    m.write_text(text)
    diff = api.diff(api.plan(m))
    assert diff is not None and diff.new == 2 and diff.cached == 2 and len(diff.stale) == 2
    r2, _ = run(m, prov)
    assert r2.exit_code == 0 and stats(prov)["creates"] == 6


def test_throughput_knobs_do_not_change_hashes(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=2)
    h1 = [j.hash for j in api.plan(m).jobs]
    m.write_text(m.read_text().replace("concurrency: 4\n  retries: 3", "concurrency: 9\n  retries: 0"))
    assert [j.hash for j in api.plan(m).jobs] == h1


def test_budget_refuses_to_start_and_pays_nothing(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=3, run={"budget_usd": 1.0})
    prov = sim_provider(m)
    with pytest.raises(BudgetError, match=r"\$2\.10, above the budget of \$1\.00"):
        run(m, prov)
    assert stats(prov)["creates"] == 0
    with pytest.raises(NotRecordedError):  # a refused run is not recorded: nothing ran
        api.status(m)


def test_allow_partial_stops_at_the_budget(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=3, run={"budget_usd": 1.0, "concurrency": 2})
    result, prov = run(m, allow_partial=True)
    assert result.exit_code == 3 and result.status == "budget"
    assert stats(prov)["creates"] == 2  # 0.35 each: a third would pass 1.00
    assert result.stats.spent_micros <= 1_000_000
    assert result.stats.counts["planned"] > 0 and result.stats.eta is None  # the stopped run has nothing left to end


def test_allow_partial_sends_what_fits_once_the_jobs_in_flight_settle_never_passing_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three jobs at $0.35, a budget of $0.70, two at once reserve it all: the third waits for them instead of
    stopping the run. The first render fails at $0, freeing its reserve: the third and the first's failure retry
    are sent as the budget allows, until nothing in flight could free enough for what is left. At no moment do
    the spent and reserved figures together pass the budget."""
    from runner.executor import Executor

    seen: list[int] = []  # spent + reserved, after each change of a job's state and each settling
    set_state, settle = Executor._set_state, Executor._settle

    def setting(self: Executor, *args: Any, **kwargs: Any) -> None:
        set_state(self, *args, **kwargs)
        seen.append(self._spent + self._reserved)

    def settling(self: Executor, *args: Any, **kwargs: Any) -> None:
        settle(self, *args, **kwargs)
        seen.append(self._spent + self._reserved)

    monkeypatch.setattr(Executor, "_set_state", setting)
    monkeypatch.setattr(Executor, "_settle", settling)
    script = [{"route": "create", "nth": 1, "fault": "job_failure", "code": "INTERNAL_ERROR"}]
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), run={"concurrency": 3, "failure_retries": 1},
                       sim={"render_time": 0.3, "jitter": 0.0, "script": script})
    result, prov = run(m, budget_usd=0.70, allow_partial=True)
    # the third job or the failure retry sent first, the other left (planned, or failed with its retry unsent)
    assert result.status in ("budget", "failed") and result.exit_code != 0
    assert result.stats.counts["done"] == 2 and result.stats.spent_micros == 700_000, result.stats.counts
    assert stats(prov)["creates"] == 3 and stats(prov)["billed_micros"] == 700_000
    assert seen and max(seen) <= 700_000, seen


def test_a_resumed_run_counts_the_jobs_still_in_flight_against_the_budget(tmp_path: Path) -> None:
    """Jobs an earlier run left rendering are this run's to pay for: a resumed run whose new jobs fit the
    budget, but not with the jobs in flight, refuses to start instead of stopping halfway."""
    m = write_manifest(tmp_path, n_seeds=3, sim={"render_time": 3.0, "jitter": 0.0}, run={"concurrency": 3})
    prov = sim_provider(m)
    # 2 jobs sent and left rendering at the timeout: they stay reserved, so no third is sent (a slot is free for it:
    # the budget, not the 2 slots they hold, keeps it back)
    first, _ = run(m, prov, budget_usd=0.70, allow_partial=True, timeout=0.3)
    assert first.status == "budget" and stats(prov)["creates"] == 2
    assert first.stats.counts["submitted"] + first.stats.counts["running"] == 2 and first.stats.counts["planned"] == 4
    assert first.stats.reserved_micros == 700_000
    with pytest.raises(BudgetError, match=r"4 jobs to submit and 2 in flight would cost \$2\.10, above the budget "
                                          r"of \$1\.50"):
        run(m, prov, budget_usd=1.50)
    assert stats(prov)["creates"] == 2
    assert api.status(m).run.id == first.run_id  # the refused run did not become the latest
    prov.app.state.sim.configure({"render_time": 0.1})  # the new jobs render at once; the two in flight keep theirs
    resumed, _ = run(m, prov, budget_usd=2.10, poll_interval=0.1)
    assert resumed.exit_code == 0 and stats(prov)["creates"] == 6 and resumed.stats.counts["done"] == 6


def test_a_run_with_nothing_new_to_send_refused_by_the_budget_says_the_jobs_in_flight_count_though_already_sent(
    tmp_path: Path
) -> None:
    """Two jobs left rendering, nothing new to send: a run under a budget below what they cost is refused (they
    count until their renders end), in words that say so and what collects them, not "0 jobs to submit"."""
    m = write_manifest(tmp_path, n_seeds=1, sim={"render_time": 30.0, "jitter": 0.0})
    prov = sim_provider(m)
    assert run(m, prov, timeout=0.3)[0].status == "incomplete"
    with pytest.raises(BudgetError) as caught:
        run(m, prov, budget_usd=0.50)
    said = str(caught.value)
    assert said.startswith("nothing new to submit, but the 2 jobs an earlier run left in flight would cost $0.70, "
                           "above the budget of $0.50: already sent, they are counted against the budget"), said
    assert "`gridrun run --budget 0.70` (or --allow-partial, which sends nothing new) collects them" in said
    assert "0 jobs" not in said and stats(prov)["creates"] == 2


@pytest.mark.parametrize("option", ["force", "retry_failed"])
def test_a_run_the_budget_refuses_leaves_settled_jobs_as_they_were(tmp_path: Path, option: str) -> None:
    """`--force` and `retry` make settled jobs plannable again only once the run may start: a run the
    budget refuses must not leave done (or failed) jobs planned, for the next plain run to pay for."""
    script = [{"route": "create", "nth": 1, "fault": "job_failure", "code": "CONTENT_POLICY_VIOLATION"}]
    m = write_manifest(tmp_path, n_seeds=2, sim={"script": script} if option == "retry_failed" else None)
    prov = sim_provider(m)
    first, _ = run(m, prov)
    before = {j.key: j.state for j in api.status(m).jobs}
    assert set(before.values()) == ({"done", "failed"} if option == "retry_failed" else {"done"})
    with pytest.raises(BudgetError):
        run(m, prov, budget_usd=0.10, **{option: True})
    assert {j.key: j.state for j in api.status(m).jobs} == before
    again, _ = run(m, prov)
    assert stats(prov)["creates"] == 4 and again.stats.cached == sum(state == "done" for state in before.values())


def test_a_job_the_provider_no_longer_knows_ends_unknown_instead_of_being_polled_forever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider that answers 404 for a job it took (it lost or forgot it): the job is polled through
    GONE_AFTER seconds of 404s, then `unknown` (it may have been paid for), and the run ends."""
    from runner import executor as ex_mod

    monkeypatch.setattr(ex_mod, "GONE_AFTER", 1.0)
    lost = [{"route": "get", "p": 1.0, "fault": "not_found"}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.2, "script": lost})
    result, prov = run(m, poll_interval=0.01)
    assert result.exit_code == 1 and result.stats.counts["unknown"] == 1
    assert result.stats.elapsed >= 1.0  # the 404s were polled through for GONE_AFTER first
    # ... at most every GONE_AFTER/30 seconds, however often the job would be polled otherwise
    assert stats(prov)["creates"] == 1 and 3 <= stats(prov)["requests"]["get"] <= 35
    job = api.status(m).jobs[0]
    assert "no video" in (job.error or "") and "404" in (job.error or "") and "retry --unknown" in (job.error or "")
    assert result.stats.reserved_micros == 350_000  # still counted: it may have been paid for


def test_the_first_404_to_a_poll_is_said_at_once_and_once_not_only_when_the_jobs_turn_unknown(tmp_path: Path) -> None:
    """A provider that answers 404 to every poll: the run says so among its last errors as soon as the first comes
    (what it waits for, up to GONE_AFTER seconds), once for all its jobs, not a minute later when they turn
    `unknown`. Here the run stops waiting (`--timeout`) well before that."""
    lost = [{"route": "get", "p": 1.0, "fault": "not_found"}]
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.2, "script": lost})
    result, _ = run(m, poll_interval=0.01, timeout=1.0)
    assert result.stats.counts["unknown"] == 0, result.stats.counts
    said = [e for e in result.stats.last_errors if "answers 404" in e]
    assert len(said) == 1, result.stats.last_errors
    assert "and may for others: waiting up to 60 s for each to see whether it knows them again" in said[0], said


@pytest.mark.parametrize("retry_unknown", [False, True])
def test_a_job_unknown_after_404s_is_followed_and_fetched_once_the_provider_answers_for_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, retry_unknown: bool
) -> None:
    """The provider answered 404 for a job's video long enough to make it `unknown`, then knows it again: the
    next run (plain, or `retry --unknown`) asks for it once (a free GET), follows it and downloads it, paying
    nothing new; it was left `unknown` for ever, its paid video never fetched."""
    from runner import executor as ex_mod

    monkeypatch.setattr(ex_mod, "GONE_AFTER", 0.5)
    lost = [{"route": "get", "p": 1.0, "fault": "not_found"}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.2, "script": lost})
    first, prov = run(m, poll_interval=0.01)
    assert first.stats.counts["unknown"] == 1
    prov.app.state.sim.configure({"script": []})  # the provider knows the video again
    again, _ = run(m, prov, retry_unknown=retry_unknown)
    assert again.exit_code == 0 and again.stats.counts["done"] == 1, again.stats.counts
    assert stats(prov)["creates"] == 1 and stats(prov)["duplicate_paid"] == 0
    (job,) = api.status(m).jobs
    assert job.state == "done" and job.attempts == 1 and Path(job.output_path).is_file()
    snap = api.status(m)  # spent once, by the run that saw it done; nothing reserved for it any more
    assert snap.manifest_spent_micros == 350_000 and snap.manifest_reserved_micros == 0
    check_outputs(m)


def test_jobs_left_in_flight_in_a_built_in_simulator_world_since_lost_are_unknown_at_once(tmp_path: Path) -> None:
    """A later run whose in-process simulator does not have the earlier world (its file deleted; here, none
    kept) says so at once instead of polling 404s, and `retry --unknown` sends the jobs again."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 3.0, "jitter": 0.0})
    first, _ = run(m, timeout=0.3)
    assert first.stats.counts["submitted"] + first.stats.counts["running"] == 2, first.stats.counts
    fresh = sim_provider(m)
    second, _ = run(m, fresh)
    assert second.exit_code == 1 and second.stats.counts["unknown"] == 2 and second.stats.elapsed < 1.0
    assert stats(fresh)["requests"].get("get", 0) == 0
    for job in api.status(m).jobs:
        # what it means and the risk first, where a card of the report has room for them; the video's id last
        assert (job.error or "").startswith("not in the built-in simulator's world; it may have been paid for: "
                                            "its world file (.gridrun/sim-world.jsonl) was deleted"), job.error
        assert job.provider_id and (job.error or "").endswith(f" (video {job.provider_id})"), job.error
        assert alike(job.error or "").endswith("(video …)")  # the same cause, said once for all its jobs
    fresh.app.state.sim.configure({"render_time": 0.1})  # the jobs sent again render at once
    third, _ = run(m, fresh, retry_unknown=True, poll_interval=0.1)
    assert third.exit_code == 0 and third.stats.counts["done"] == 2 and stats(fresh)["creates"] == 2
    with closing(sqlite3.connect(tmp_path / ".gridrun" / "state.db")) as db:
        abandoned = [r[0] for r in db.execute("SELECT error FROM attempts WHERE state='failed'")]
    assert len(abandoned) == 2 and all(e.startswith("lost by the provider: video ") for e in abandoned), abandoned
    assert {alike(e) for e in abandoned} == {"lost by the provider: video …; sent again (retry --unknown)"}


def test_retry_unknown_sends_again_a_job_whose_video_the_provider_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider lost a video its request log still names: `retry --unknown` checks the video before
    following it again (which would only end `unknown` again) and, finding it gone, sends the job anew."""
    from runner import executor as ex_mod

    monkeypatch.setattr(ex_mod, "GONE_AFTER", 0.5)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 2.0, "jitter": 0.0})
    prov = sim_provider(m)
    run(m, prov, timeout=0.3)  # left in flight
    lost = api.status(m).jobs[0].provider_id
    del prov.app.state.sim.videos[lost]  # gone from the provider; its request log still names it
    second, _ = run(m, prov, poll_interval=0.1)
    assert second.stats.counts["unknown"] == 1
    third, _ = run(m, prov, retry_unknown=True, poll_interval=0.1)
    assert third.exit_code == 0 and third.stats.counts["done"] == 1, third.stats.counts
    assert stats(prov)["creates"] == 2
    job = api.status(m).jobs[0]
    assert job.provider_id != lost and job.attempts == 2


def test_a_video_to_fetch_again_from_a_provider_that_lost_it_is_expired_not_a_crash(tmp_path: Path) -> None:
    """A done job whose file was altered is fetched again; when its provider no longer has the video (here
    the built-in simulator of an earlier process), the job is `expired`, and `retry` sends it again."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1})
    first, _ = run(m)
    assert first.exit_code == 0
    Path(api.status(m).jobs[0].output_path).write_bytes(b"overwritten")
    fresh = sim_provider(m)
    second, _ = run(m, fresh)
    assert second.exit_code == 1 and second.stats.counts["expired"] == 1
    assert "gridrun retry" in (api.status(m).jobs[0].error or "")
    third, _ = run(m, fresh, retry_failed=True)
    assert third.exit_code == 0 and third.stats.counts["done"] == 1 and stats(fresh)["creates"] == 1
    check_outputs(m)


def test_a_failing_progress_callback_is_an_error_shown_not_a_broken_run(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1})
    calls = []

    def broken(stats: object) -> None:
        calls.append(stats)
        raise ZeroDivisionError("division by zero")

    result = api.run(m, provider=sim_provider(m), on_progress=broken, report=False)
    assert result.exit_code == 0 and result.stats.counts["done"] == 2
    assert len(calls) == 1
    assert "on_progress failed, not called again: ZeroDivisionError: division by zero" in result.stats.last_errors


def test_a_run_ended_by_an_exception_is_recorded_as_ended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not left `running`, which `status --watch` and the report's reload would take for a live run."""
    from runner import executor as ex_mod

    async def bug(self: object, job: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(ex_mod.Executor, "_submit_job", bug)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    with pytest.raises(BaseException, match="a bug|unhandled errors"):
        run(m)
    snap = api.status(m)
    assert snap.run.status == "crashed" and snap.run.ended_at is not None


def test_a_create_refused_with_429s_alone_is_planned_again_not_unknown(tmp_path: Path) -> None:
    """A 429 creates nothing: a job whose every create was refused so is not `unknown` (\"may have been paid
    for\") but planned again, with why, and the next run sends it."""
    refuse = [{"route": "create", "p": 1.0, "fault": "rate_limited", "retry_after": 0.01}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"retries": 0},
                       sim={"render_time": 0.1, "script": refuse})
    result, prov = run(m)
    assert result.exit_code == 1 and result.stats.counts["planned"] == 1 and result.stats.reserved_micros == 0
    job = api.status(m).jobs[0]
    assert job.attempts == 0 and "never accepted (nothing paid)" in (job.error or "")
    assert stats(prov)["creates"] == 0 and stats(prov)["requests"]["create"] >= 6


def test_a_force_run_stopped_early_leaves_the_done_jobs_it_did_not_send_done(tmp_path: Path) -> None:
    """--force re-runs each done job as it sends it: when the budget stops it after two, the other two stay
    done (their videos on disk), and a later plain run pays for nothing."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime", "clay"), run={"concurrency": 1},
                       sim={"render_time": 0.1, "concurrency": 1})
    prov = sim_provider(m)
    assert run(m, prov)[0].exit_code == 0 and stats(prov)["creates"] == 4
    forced, _ = run(m, prov, force=True, budget_usd=0.70, allow_partial=True)
    assert forced.exit_code == 3 and stats(prov)["creates"] == 6
    # its own figures as the state has them: the two it did not send are done, not planned
    assert {k: v for k, v in forced.stats.counts.items() if v} == {"done": 4}, forced.stats.counts
    assert sorted(j.state for j in api.status(m).jobs) == ["done"] * 4
    again, _ = run(m, prov)
    assert again.exit_code == 0 and stats(prov)["creates"] == 6
    assert len(check_outputs(m)) == 4


def test_the_done_jobs_a_force_run_stopped_by_its_budget_did_not_send_are_cached_from_the_run_that_made_them(
    tmp_path: Path,
) -> None:
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime", "clay"), run={"concurrency": 1},
                       sim={"render_time": 0.1, "concurrency": 1})
    prov = sim_provider(m)
    first, _ = run(m, prov)
    forced, _ = run(m, prov, force=True, budget_usd=0.70, allow_partial=True)
    assert forced.exit_code == 3 and forced.stats.cached == 2, forced.stats
    jobs = api.status(m).jobs
    # the two it sent again are its own (a second attempt); the two it held back are the first run's videos
    assert sorted((j.attempts, j.cached_from_run) for j in jobs) == [(1, first.run_id)] * 2 + [(2, None)] * 2


def test_a_changed_output_template_overwrites_no_paid_video_and_going_back_finds_them_all(tmp_path: Path) -> None:
    """take-{{ take }} -> take-{{ take + 1 }}: take 1's cached copy goes where take 2's video was, which is
    first put aside (.runs/superseded), its record following it. Nothing is paid again, each job's
    recorded path holds its own video, and the first template again is cached too."""
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), sim={"render_time": 0.1})
    text = m.read_text()
    prov = sim_provider(m)
    assert run(m, prov)[0].exit_code == 0
    before = {j.hash: j.sha256 for j in api.status(m).jobs}
    m.write_text(text.replace("seed-{{ seed }}.mp4", "seed-{{ seed + 1 }}.mp4"))
    shifted, _ = run(m, prov)
    assert shifted.exit_code == 0 and shifted.stats.cached == 3
    jobs = api.status(m).jobs
    assert sorted(Path(j.output_path).name for j in jobs) == ["seed-2.mp4", "seed-3.mp4", "seed-4.mp4"]
    assert {j.hash: sha256(Path(j.output_path)) for j in jobs} == before
    m.write_text(text)
    back, _ = run(m, prov)
    assert back.exit_code == 0 and back.stats.cached == 3
    assert {j.hash: sha256(Path(j.output_path)) for j in api.status(m).jobs} == before
    assert stats(prov)["creates"] == 3


def test_a_changed_prompt_keeps_the_earlier_videos_and_going_back_pays_nothing(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1})
    text = m.read_text()
    prov = sim_provider(m)
    run(m, prov)
    fox = {j.hash: j.sha256 for j in api.status(m).jobs}
    m.write_text(text.replace("a fox", "a wolf"))
    assert run(m, prov)[0].exit_code == 0 and stats(prov)["creates"] == 4
    m.write_text(text)
    back, _ = run(m, prov)
    assert back.exit_code == 0 and back.stats.cached == 2 and stats(prov)["creates"] == 4
    assert {j.hash: sha256(Path(j.output_path)) for j in api.status(m).jobs} == fox
    check_outputs(m)


def test_an_earlier_runs_snapshot_shows_its_jobs_as_they_were_when_it_ended(tmp_path: Path) -> None:
    """Its report, or a comparison of it with a later run, must not show the later run's states."""
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime", "clay"), sim={"render_time": 1.0, "jitter": 0.0})
    prov = sim_provider(m)
    run(m, prov, timeout=0.2)                      # run 1: left in flight
    run(m, prov)                                   # run 2: resumed, done
    prov.app.state.sim.configure({"failure_rate": 1.0})
    for job in api.status(m).jobs:
        Path(job.output_path).unlink()             # gone: no earlier video for a failed re-render to leave done
    run(m, prov, force=True)                       # run 3: re-run, and failed
    store = Store(tmp_path / ".gridrun" / "state.db", readonly=True)
    try:
        def states(run_id: int) -> list[str]:
            return sorted(j.state for j in store.snapshot(run_id).jobs)

        assert set(states(1)) <= {"submitted", "running"} and len(states(1)) == 2, states(1)  # left at the timeout
        assert states(2) == ["done", "done"] and all(j.error is None for j in store.snapshot(2).jobs)
        assert states(3) == ["failed", "failed"]
        assert all("CONTENT_POLICY_VIOLATION" in (j.error or "") for j in store.snapshot(3).jobs)
        assert store.snapshot(2).counts["done"] == 2 and store.snapshot(2).counts["failed"] == 0
    finally:
        store.close()


def test_a_rendered_jobs_reported_cost_counts_against_the_budget_while_its_video_downloads(tmp_path: Path) -> None:
    """The provider bills $0.70 for a job estimated at $0.35: once its render is seen done, the next job's check
    counts the $0.70, though its video is still downloading (slowed here), and the second job ($0.35 more, over
    the $1.00 budget) is not sent. Counted at its estimate until saved, both were sent and $1.40 paid."""
    slow = [{"route": route, "nth": 1, "fault": "slow", "delay": 1.0} for route in ("file", "content")]
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"budget_usd": 1.0, "concurrency": 1},
                       sim={"render_time": 0.1, "jitter": 0.0, "concurrency": 1, "cost_factor": 2.0, "script": slow})
    result, prov = run(m)
    assert stats(prov)["creates"] == 1 and stats(prov)["faults"].get("slow") == 1
    assert result.exit_code == 3 and result.status == "budget"
    assert result.stats.counts["done"] == 1 and result.stats.counts["planned"] == 1
    assert result.stats.spent_micros == 700_000 and result.stats.reserved_micros == 0
    snap = api.status(m)
    assert (snap.spent_micros, snap.reserved_micros) == (700_000, 0) and _money_views(m) == {0.7}
    check_outputs(m)


def test_a_rendered_job_whose_download_expires_stays_spent_and_is_fetched_again_at_no_cost(tmp_path: Path) -> None:
    """The provider's $0.70 for a job estimated at $0.35 is spent once its render is seen done: its download
    expiring (every try) neither frees nor counts it again, in the run's figures or the state's, and the next
    run fetches the video at no cost, paying only for the job the budget held back."""
    expired = [{"route": route, "p": 1.0, "fault": "expired"} for route in ("file", "content")]
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"budget_usd": 1.0, "concurrency": 1, "retries": 0},
                       sim={"render_time": 0.1, "jitter": 0.0, "concurrency": 1, "cost_factor": 2.0, "script": expired})
    first, prov = run(m)
    assert stats(prov)["creates"] == 1 and first.status == "budget"
    assert first.stats.counts["expired"] == 1 and first.stats.counts["planned"] == 1
    assert (first.stats.spent_micros, first.stats.reserved_micros) == (700_000, 0)
    assert _money_views(m) == {0.7} and api.status(m).reserved_micros == 0
    prov.app.state.sim.configure({"script": []})
    again, _ = run(m, prov)
    assert again.exit_code == 0 and again.stats.counts["done"] == 2 and stats(prov)["creates"] == 2
    assert (again.stats.spent_micros, again.stats.reserved_micros) == (700_000, 0) and _money_views(m) == {0.7}
    assert api.status(m).manifest_spent_micros == 1_400_000
    from runner.state import Store

    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        assert store.snapshot(first.run_id).spent_micros == 700_000
    check_outputs(m)


def test_fetching_a_paid_video_again_costs_nothing_against_the_budget(tmp_path: Path) -> None:
    """A done job whose file was lost is downloaded again: rendered and billed before, so a budget of 0
    lets it through, and the run spends and reserves nothing."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1})
    prov = sim_provider(m)
    assert run(m, prov)[0].exit_code == 0
    Path(api.status(m).jobs[0].output_path).unlink()
    again, _ = run(m, prov, budget_usd=0.0)
    assert again.exit_code == 0 and again.stats.counts["done"] == 2 and again.stats.cached == 1
    assert again.stats.spent_micros == 0 and again.stats.reserved_micros == 0
    assert stats(prov)["creates"] == 2 and stats(prov)["downloads"] == 3
    check_outputs(m)


def _paths_hold_their_own_videos(m: Path) -> None:
    jobs = api.status(m).jobs
    assert len({j.output_path for j in jobs}) == len(jobs)
    for j in jobs:
        assert j.state == "done" and sha256(Path(j.output_path)) == j.sha256, j.key


def test_a_video_fetched_again_after_a_template_change_is_recorded_where_it_went(tmp_path: Path) -> None:
    """take 1's file is gone, then the template rotates the names: take 1 is fetched again into its new path,
    and its record says so (it said the old path, which take 3 now has)."""
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), sim={"render_time": 0.1})
    prov = sim_provider(m)
    assert run(m, prov)[0].exit_code == 0
    Path(api.status(m).jobs[0].output_path).unlink()
    m.write_text(m.read_text().replace("seed-{{ seed }}.mp4", "seed-{{ seed % 3 + 1 }}.mp4"))
    assert run(m, prov)[0].exit_code == 0
    _paths_hold_their_own_videos(m)
    assert stats(prov)["creates"] == 3


def test_a_forced_rerender_after_a_template_change_is_recorded_at_its_new_path(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1})
    prov = sim_provider(m)
    run(m, prov)
    m.write_text(m.read_text().replace("{{ style }}/seed-{{ seed }}.mp4", "new/{{ seed }}.mp4"))
    assert run(m, prov, force=True)[0].exit_code == 0
    assert sorted(Path(j.output_path).relative_to(tmp_path / "outputs" / "t").as_posix() for j in api.status(m).jobs) == [
        "new/1.mp4", "new/2.mp4"]
    _paths_hold_their_own_videos(m)


def test_a_video_paid_for_but_expired_counts_as_spent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    quick_backoff(monkeypatch)  # the tries of the expired downloads: what is counted after them is the point
    m = write_manifest(tmp_path, n_seeds=1, sim={"url_ttl": 0, "refresh_urls": False})
    run(m)
    snap = api.status(m)
    assert snap.counts["expired"] == 2 and snap.spent_micros == snap.manifest_spent_micros == 700_000


def test_a_short_lapse_of_404s_is_polled_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A provider that answers 404 for a job it knows, for a moment, does not make the job unknown, and the note
    of the wait said as the lapse began is gone from the run's last errors once it ends. (GONE_AFTER, and with it
    the polls' spacing through a lapse, cut from 60 s to 6 s: three 404s are as short a lapse.)"""
    from runner import executor as ex_mod

    monkeypatch.setattr(ex_mod, "GONE_AFTER", 6.0)
    lapse = [{"route": "get", "nth": [1, 2, 3], "fault": "not_found"}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.5, "jitter": 0.0, "script": lapse})
    result, prov = run(m, poll_interval=0.1)
    assert result.exit_code == 0 and result.stats.counts["done"] == 1
    assert stats(prov)["requests"]["get"] >= 4 and stats(prov)["creates"] == 1
    assert not any("answers 404" in e for e in result.stats.last_errors), result.stats.last_errors


@pytest.mark.parametrize(("flag", "value", "problem"), [
    ("--concurrency", "0", "must be an integer at least 1, got 0"),
    ("--concurrency", "2.5", "an integer is needed, got '2.5'"),
    ("--budget", "-1", "must be a finite number at least 0, got -1"),
    ("--budget", "nan", "a number in decimal digits (4.20, 0.5, 1e3) is needed, got 'nan'"),
    ("--retries", "-1", "must be an integer at least 0, got -1"),
    ("--poll-interval", "0", "must be a finite number above 0, got 0.0"),
    ("--timeout", "-5", "must be a finite number above 0, got -5.0"),
    ("--request-timeout", "inf", "must be a finite number above 0, got inf"),
    ("--request-timeout", "0.001", "must be at least 1 (seconds), got 0.001"),
    ("--request-timeout", "0.5", "must be at least 1 (seconds), got 0.5"),
    ("--max-jobs", "0", "must be an integer at least 1, got 0"),
])
def test_bad_run_knobs_are_usage_errors_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, problem: str
) -> None:
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1)
    with pytest.raises(SystemExit) as exited:
        main(["run", str(m), flag, value])
    assert exited.value.code == 2
    assert f"argument {flag}: {problem}" in capsys.readouterr().err
    assert not (tmp_path / ".gridrun").exists()  # nothing recorded, nothing sent


def test_the_knobs_bounds_are_the_manifest_schemas() -> None:
    """OPTION_LIMITS states again what schemas/manifest.schema.json says of `run`: they must agree."""
    import json

    from runner.manifest import SCHEMA_PATH
    from runner.options import OPTION_LIMITS

    run_props = json.loads(SCHEMA_PATH.read_text())["$defs"]["run"]["properties"]
    shared = [name for name in OPTION_LIMITS if name in run_props]
    assert len(shared) == 7, shared
    for name in shared:
        prop = run_props[name]
        integer, least, excluded, most = OPTION_LIMITS[name]
        assert (prop["type"] == "integer") == integer, name
        assert prop.get("exclusiveMinimum", prop.get("minimum")) == least, name
        assert ("exclusiveMinimum" in prop) == excluded, name
        assert prop.get("maximum") == most, name


def test_run_options_refuse_unusable_knobs_in_the_python_api() -> None:
    from runner.errors import UsageError

    with pytest.raises(UsageError, match=r"concurrency must be an integer at least 1, got 0"):
        RunOptions(concurrency=0)
    with pytest.raises(UsageError, match=r"timeout must be a number \(int or float\), got bool True"):
        RunOptions(timeout=True)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"max_jobs must be an integer at least 1, got -3"):
        api.plan(Path("never-read.yaml"), max_jobs=-3)
    assert RunOptions(concurrency=1, budget_usd=0, retries=0, report_every=0).budget_usd == 0


def test_an_output_that_cannot_be_written_is_reported_and_fetched_again_once_fixed(tmp_path: Path) -> None:
    """A folder where a video (or its .part file) should go, made after the plan (which refuses the first): the
    run goes on without a traceback, says which path, does not download again in vain, and the next run saves
    it without paying again."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",))
    planned = api.plan(m)
    outputs = tmp_path / "outputs" / "t" / "anime"
    (outputs / "seed-1.mp4").mkdir(parents=True)
    (outputs / "seed-2.mp4.part").mkdir()
    prov = sim_provider(m)
    first = api.run(planned, provider=prov, report=False)
    assert first.exit_code == 1 and first.stats.counts["downloading"] == 2
    assert stats(prov)["requests"]["file"] == 2  # one try each: fetching again cannot help
    errors = {j.key: j.error or "" for j in api.status(m).jobs}
    assert f"cannot write {outputs / 'seed-1.mp4'}: Is a directory" in errors["style=anime,seed=1"]
    assert f"cannot write {outputs / 'seed-2.mp4.part'}: Is a directory" in errors["style=anime,seed=2"]
    listed = api.status_json(api.status(m))["problems"]  # what `gridrun status` lists, with why
    assert {p["key"] for p in listed} == set(errors) and {p["state"] for p in listed} == {"downloading"}
    (outputs / "seed-1.mp4").rmdir()
    (outputs / "seed-2.mp4.part").rmdir()
    second, _ = run(m, prov)
    assert second.exit_code == 0 and len(check_outputs(m)) == 2 and stats(prov)["creates"] == 2


def test_a_report_that_cannot_be_written_is_a_warning_not_a_failed_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The videos are paid for and saved: a folder where report.html should go makes the run say so and
    exit 0; `gridrun report` then fails with the path, without a traceback."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    blocked = tmp_path / "outputs" / "t" / "report.html"
    blocked.mkdir(parents=True)
    assert main(["run", str(m)]) == 0
    err = capsys.readouterr().err
    assert f"warning: report not written: {blocked}: Is a directory" in " ".join(err.split()), err
    assert "`gridrun report` writes it" in err and err.count("report not written") == 1, err  # not listed again
    assert len(check_outputs(m)) == 1
    assert main(["report", str(m)]) == 1
    assert f"error: {blocked}: Is a directory" in capsys.readouterr().err
    blocked.rmdir()
    assert main(["report", str(m)]) == 0 and blocked.is_file()


def test_creates_that_never_reached_the_provider_say_so_in_status(tmp_path: Path) -> None:
    """A provider that cannot be reached: nothing is paid, the jobs are planned again, and `status` says
    why the run did not finish them."""
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), base_url=f"http://127.0.0.1:{port}/v1")
    result = api.run(m, options=RunOptions(retries=0), report=False)
    assert result.exit_code == 1 and result.stats.counts["planned"] == 2
    listed = api.status_json(api.status(m))["problems"]
    assert [p["state"] for p in listed] == ["planned", "planned"]
    assert all(p["error"].startswith("never reached the provider:") for p in listed)


def test_jobs_left_at_their_timeout_say_so_in_status(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 3.0, "jitter": 0.0})
    result, _ = run(m, timeout=0.3)
    assert result.exit_code == 4 and result.status == "incomplete"  # nothing failed: the next run collects them
    listed = api.status_json(api.status(m))["problems"]
    # asked once more at the deadline: it is rendering
    assert [(p["state"], p["error"]) for p in listed] == [
        ("running", "still rendering at the provider 0.3 s after its create; left running, the next run re-attaches")]


def test_a_run_that_left_jobs_rendering_at_their_timeout_is_incomplete_and_says_run_collects_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Jobs still rendering at `--timeout`, nothing failed: `incomplete`, exit 4, and the run says that the jobs
    were left at the provider and that `gridrun run` collects them; the next run does, paying nothing again."""
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 2.0, "jitter": 0.0})
    assert main(["run", str(m), "--timeout", "0.3", "--no-report"]) == 4
    said = " ".join(capsys.readouterr().err.split())
    assert "incomplete: 2 jobs still rendering at their timeout (0.3 s a job) were left at the provider: " \
           "`gridrun run` collects the 2 jobs left in flight" in said, said
    assert "failed" not in said and "retry" not in said, said
    assert api.status(m).run.status == "incomplete"
    assert main(["run", str(m), "--no-report"]) == 0
    assert len(check_outputs(m)) == 2 and [j.attempts for j in api.status(m).jobs] == [1, 1]


def test_a_job_is_asked_once_more_at_its_timeout_and_a_finished_one_is_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polls are scheduled from the expected render time, which may lie past the timeout: the job is asked
    once at the deadline, and a render that ended meanwhile is downloaded instead of left "still submitted"."""
    from runner.pacing import RenderTimes

    monkeypatch.setattr(RenderTimes, "earliest_done", lambda self, job: 600.0)  # the first poll: far past the timeout
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    result, prov = run(m, timeout=1.0)
    assert result.exit_code == 0 and result.stats.counts["done"] == 2, result.stats.counts
    assert result.stats.elapsed < 30
    check_outputs(m)


def test_the_last_errors_count_the_jobs_a_failure_met_not_its_attempts(tmp_path: Path) -> None:
    """Three jobs whose every render fails, each sent twice more (failure_retries 2): nine failed attempts of three
    jobs, told as the first job and 2 more."""
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), run={"failure_retries": 2},
                       sim={"failure_rate": 1.0, "failure_code": "INTERNAL_ERROR", "render_time": 0.05, "jitter": 0.0})
    result, prov = run(m)
    assert result.stats.counts["failed"] == 3 and stats(prov)["creates"] == 9
    (told,) = [e for e in result.stats.last_errors if "INTERNAL_ERROR" in e]
    assert re.match(r"style=anime,seed=\d and 2 more jobs: INTERNAL_ERROR", told), told


def test_job_failure_is_recorded_with_the_providers_reason(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1, sim={"script": [{"route": "create", "nth": 1, "fault": "job_failure",
                                                             "code": "CONTENT_POLICY_VIOLATION"}]})
    result, prov = run(m)
    assert result.exit_code == 1
    snap = api.status(m)
    failed = [j for j in snap.jobs if j.state == "failed"]
    assert len(failed) == 1 and "CONTENT_POLICY_VIOLATION" in (failed[0].error or "")
    assert stats(prov)["creates"] == 2


def test_retry_reruns_failed_jobs_only(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=2, sim={"script": [{"route": "create", "nth": 1, "fault": "job_failure"}]})
    r1, prov = run(m)
    assert r1.exit_code == 1 and stats(prov)["creates"] == 4
    r2, _ = run(m, prov, retry_failed=True)
    assert r2.exit_code == 0 and stats(prov)["creates"] == 5


@pytest.mark.parametrize("style", ["seconds", "date", "ms", "body"])
def test_rate_limits_are_waited_out(tmp_path: Path, style: str) -> None:
    m = write_manifest(tmp_path, n_seeds=2, sim={
        "retry_after_style": style,
        "retry_after": 0.2 if style == "ms" else 1,
        "script": [{"route": "create", "nth": [1, 2], "fault": "rate_limited"}]})
    result, prov = run(m)
    s = stats(prov)
    assert result.exit_code == 0 and s["creates"] == 4 and s["duplicate_paid"] == 0
    assert s["faults"].get("rate_limited") == 2
    check_outputs(m)


@pytest.mark.parametrize("fault", ["server_error", "reset_before", "reset_after", "malformed_json"])
def test_create_faults_never_pay_twice(tmp_path: Path, fault: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _settle_soon(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=2, sim={"script": [{"route": "create", "nth": [1, 3], "fault": fault}]})
    result, prov = run(m)
    s = stats(prov)
    assert result.exit_code == 0, api.status_json(api.status(m))
    assert s["creates"] == 4 and s["duplicate_paid"] == 0
    assert len(check_outputs(m)) == 4


class _Portal(httpx.AsyncBaseTransport):
    """A transport in front of another that answers every create itself, 200 with `body` (a captive portal's
    sign-in page, an empty body), never passing it on; every other request goes through."""

    def __init__(self, inner: Any, body: bytes, kind: str) -> None:
        self.inner, self.body, self.kind, self.creates = inner, body, kind, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/videos"):
            self.creates += 1
            return httpx.Response(200, content=self.body, headers={"Content-Type": self.kind}, request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize(("body", "kind", "said", "sends"), [
    (b"<html><head><title>Sign in to Corp WiFi</title></head><body>accept the terms</body></html>", "text/html",
     ("outcome unknown, not sent again: HTTP 200, WEB_PAGE: POST /videos: HTTP 200 with an HTML page 'Sign in to "
      "Corp WiFi', not the API's answer: something between gridrun and the provider answered"), 1),
    (b"", "application/json", "no usable answer after 3 tries: HTTP 200: POST /videos: HTTP 200 with an empty answer",
     3),
])
def test_a_create_answered_with_a_page_not_the_apis_says_what_answered_and_stays_unknown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: bytes, kind: str, said: str, sends: int) -> None:
    """Answered, only not by the API: the answer named; the job `unknown` (it may have been made: nobody can
    tell), nothing made twice. A web page (a portal, a web site) would answer every send alike: sent once."""
    _settle_soon(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    prov = sim_provider(m)
    portals: list[_Portal] = []
    real = prov.client

    def client(**kw: Any) -> Any:
        portal = _Portal(httpx.ASGITransport(app=prov.app), body, kind)
        portals.append(portal)
        return real(**kw, transport=portal)

    prov.client = client  # type: ignore[method-assign]
    result, _ = run(m, prov)
    job = api.status(m).jobs[0]
    assert job.state == "unknown", api.status_json(api.status(m))
    assert (job.error or "").startswith(said), job.error
    assert sum(p.creates for p in portals) == sends and stats(prov)["creates"] == 0
    assert result.exit_code == 1


def test_reset_after_create_without_idempotency_is_reconciled_from_the_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a provider that ignores keys, the log is read once the lost create can no longer be on its way (a
    gateway may hold it): a miss read sooner would send it again, and pay twice. (LOG_SETTLE cut from 5 s to 1 s:
    that the read waits it is the point, not its length.)"""
    from runner import executor as ex_mod

    monkeypatch.setattr(ex_mod, "LOG_SETTLE", 1.0)
    from runner.executor import LOG_SETTLE

    m = write_manifest(tmp_path, n_seeds=2, sim={"honour_idempotency": False,
                                                 "script": [{"route": "create", "nth": [1, 2], "fault": "reset_after"}]})
    prov = sim_provider(m)
    sent: list[float] = []
    read: list[float] = []
    submit, find = prov.submit, prov.find_by_key

    async def timed_submit(*args: Any, **kw: Any) -> Any:
        sent.append(time.time())
        return await submit(*args, **kw)

    async def timed_find(*args: Any, **kw: Any) -> Any:
        read.append(time.time())
        return await find(*args, **kw)

    prov.submit, prov.find_by_key = timed_submit, timed_find  # type: ignore[method-assign]
    result, _ = run(m, prov, request_timeout=1.0)
    s = stats(prov)
    assert result.exit_code == 0 and s["creates"] == 4 and s["duplicate_paid"] == 0
    assert len(read) == 2 and min(read) - min(sent) >= 1.0 + LOG_SETTLE - 0.1, (sent, read)


def test_a_log_read_short_of_its_end_proves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A create whose answer was lost, at a provider that ignores keys, is not sent again because the log's
    pages ran out before the key was found: the job is `unknown`, not paid twice."""
    _settle_soon(monkeypatch)
    from runner.providers import lumenfall

    monkeypatch.setattr(lumenfall, "MAX_LOG_PAGES", 0)
    m = write_manifest(tmp_path, n_seeds=1, sim={"honour_idempotency": False,
                                                 "script": [{"route": "create", "nth": 1, "fault": "reset_after"}]})
    result, prov = run(m, request_timeout=1.0)
    s = stats(prov)
    assert result.exit_code == 1 and s["creates"] == 2 and s["duplicate_paid"] == 0, s
    assert [j.state for j in api.status(m).jobs].count("unknown") == 1


def test_reset_after_create_with_no_log_is_unknown_and_not_resubmitted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _settle_soon(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=1, sim={"honour_idempotency": False,
                                                 "script": [{"route": "create", "nth": 1, "fault": "reset_after"},
                                                            {"route": "requests", "p": 1.0, "fault": "server_error"}]})
    prov = sim_provider(m)
    assert not prov.caps.honours_idempotency_keys  # from the simulator's own knob
    result, _ = run(m, prov, retries=1, request_timeout=1.0)
    s = stats(prov)
    assert result.exit_code == 1
    snap = api.status(m)
    unknown = [j for j in snap.jobs if j.state == "unknown"]
    assert len(unknown) == 1 and "may have been paid" in (unknown[0].error or "")
    assert s["creates"] == 2 and s["duplicate_paid"] == 0
    assert result.stats.reserved_micros == snap.reserved_micros == unknown[0].cost_estimate_micros > 0
    # a plain resume leaves it alone
    run(m, prov)
    assert stats(prov)["creates"] == 2


def test_poll_faults_are_retried(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=2, sim={"script": [
        {"route": "get", "nth": [1, 2, 3], "fault": "server_error"},
        {"route": "get", "nth": [4], "fault": "reset"},
        {"route": "get", "nth": [5], "fault": "rate_limited", "retry_after": 0.1}]})
    result, prov = run(m)
    assert result.exit_code == 0 and stats(prov)["duplicate_paid"] == 0


def test_expired_url_is_refreshed_by_a_new_get(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1, sim={"script": [{"route": "file", "nth": [1, 2], "fault": "expired"}]})
    result, prov = run(m)
    assert result.exit_code == 0 and stats(prov)["creates"] == 2
    check_outputs(m)


def test_url_gone_for_good_is_expired_and_not_repaid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner import executor as ex_mod

    waits: list[tuple[int, float | None]] = []
    monkeypatch.setattr(ex_mod, "backoff", lambda attempt, retry_after: waits.append((attempt, retry_after)) or 0.0)
    m = write_manifest(tmp_path, n_seeds=1, sim={"url_ttl": 0, "refresh_urls": False})
    result, prov = run(m)
    assert result.exit_code == 1
    # each refused URL is followed by a pause before a fresh one is asked for, not asked again at once
    tries = sorted(a for a, _ in waits)
    assert tries and tries == sorted([*range(1, tries[-1] + 1)] * 2) and tries[-1] >= 3  # per job: 1, 2, 3, ...
    snap = api.status(m)
    assert {j.state for j in snap.jobs} == {"expired"}
    assert all("not re-submitted" in (j.error or "") for j in snap.jobs)
    run(m, prov)
    assert stats(prov)["creates"] == 2
    # once the provider gives fresh URLs again, a plain run fetches the paid videos, paying nothing
    prov.app.state.sim.configure({"url_ttl": 3600, "refresh_urls": True})
    again, _ = run(m, prov)
    assert again.exit_code == 0 and again.stats.counts["done"] == 2 and again.stats.spent_micros == 0
    assert stats(prov)["creates"] == 2
    check_outputs(m)


def test_completed_videos_without_an_output_url_are_downloaded_from_their_content_route(tmp_path: Path) -> None:
    """The OpenAI shape gives no `output.url`: every video is fetched from `/videos/{id}/content`, paid once."""
    m = write_manifest(tmp_path, n_seeds=2, sim={"omit_output": True})
    result, prov = run(m)
    assert result.exit_code == 0 and result.stats.counts["done"] == 4
    assert sorted(check_outputs(m)) == sorted(j.key for j in api.plan(m).jobs)
    s = stats(prov)
    assert (s["creates"], s["duplicate_paid"], s["downloads"]) == (4, 0, 4)
    assert s["requests"]["content"] == 4 and "file" not in s["requests"]
    assert result.stats.spent_micros == 4 * 350_000


def test_expired_content_is_expired_and_not_repaid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner import executor as ex_mod

    monkeypatch.setattr(ex_mod, "backoff", lambda attempt, retry_after: 0.0)
    m = write_manifest(tmp_path, n_seeds=1, sim={"omit_output": True, "url_ttl": 0, "refresh_urls": False,
                                                 "expired_status": 410})
    prov = sim_provider(m)
    result, _ = run(m, prov)
    assert result.exit_code == 1
    snap = api.status(m)
    assert {j.state for j in snap.jobs} == {"expired"} and snap.spent_micros == 700_000
    assert all("HTTP 410" in (j.error or "") and "not re-submitted" in (j.error or "") for j in snap.jobs)
    prov.app.state.sim.configure({"url_ttl": 3600, "refresh_urls": True})
    again, _ = run(m, prov)  # fresh content once the provider serves it again: fetched, paying nothing
    assert again.exit_code == 0 and again.stats.counts["done"] == 2 and again.stats.spent_micros == 0
    assert stats(prov)["creates"] == 2
    check_outputs(m)


@pytest.mark.parametrize(("estimate", "reported", "completed", "counted", "doubted"), [
    (350_000, 350_000, True, 350_000, False),
    (350_000, 420_000, True, 420_000, False),      # 1.2x: another tier, a surcharge
    (350_000, 70_000, True, 70_000, False),        # 0.2x and 5x are the bounds, both in
    (350_000, 1_750_000, True, 1_750_000, False),
    (350_000, 69_999, True, 350_000, True),
    (350_000, 0, True, 350_000, True),             # a completed paid render is not free
    (350_000, 350_000 * 10**6, True, 350_000, True),  # micro-dollars read as dollars
    (350_000, 3_500_000, True, 3_500_000, False),  # 10x: a plausible dollar figure (a price table too low)
    (350_000, 7_000_000, True, 7_000_000, False),  # 20x, the bound, in
    (350_000, 7_000_001, True, 350_000, True),
    (350_000, 35_000_000, True, 350_000, True),    # cents read as dollars
    (750_000, 35_000_000, True, 750_000, True),    # 35 cents for a job estimated $0.75: 46.7x, cents still
    (350_000, 1_750_000, False, 1_750_000, False),  # a partial charge up to 5x, the bound, in
    (350_000, 1_750_001, False, 350_000, True),
    (350_000, 3_500_000, False, 350_000, True),    # a cancel's 10% in cents (3.5 for $0.035) read as dollars
    (350_000, 35_000_000, False, 350_000, True),
    (350_000, None, True, 350_000, False),         # none reported: the estimate, as always
    (350_000, 0, False, 0, False),                 # a failed render charged nothing
    (350_000, 100_000, False, 100_000, False),
    (350_000, None, False, None, False),
    (350_000, 350_000 * 10**6, False, 350_000, True),
    (0, 120_000, True, 120_000, False),            # nothing to compare with
])
def test_a_reported_cost_counts_only_within_a_plausible_factor_of_the_estimate(
    estimate: int, reported: int | None, completed: bool, counted: int | None, doubted: bool
) -> None:
    from runner.jobs import counted_cost

    assert counted_cost(estimate, reported, completed=completed) == (counted, doubted)


def _doubted_events(tmp_path: Path) -> list[dict]:
    from runner.state import Store

    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        return [json.loads(r[0]) for r in store.db.execute("SELECT detail FROM events WHERE kind='cost-doubted'")]


def _money_views(m: Path) -> set[float]:
    """`spent` as status, its JSON, and export's summary each show it, in USD."""
    from runner.export import summary

    snap = api.status(m)
    return {snap.spent_micros / 1e6, api.status_json(snap)["spent_usd"], summary(snap)["spent_usd"]}


def test_a_plausible_reported_cost_is_what_the_budget_counts(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=2, sim={"cost_factor": 1.2}, run={"budget_usd": 2.0})
    result, _ = run(m)
    assert result.exit_code == 0 and result.stats.counts["done"] == 4
    assert result.stats.spent_micros == 4 * 420_000 and _money_views(m) == {1.68}
    assert {j.cost_micros for j in api.status(m).jobs} == {420_000}
    assert _doubted_events(tmp_path) == [] and not any("estimate counts" in e for e in result.stats.last_errors)
    side = json.loads(Path(api.status(m).jobs[0].output_path).with_suffix(".json").read_text())
    assert side["cost_usd"] == side["cost_reported_usd"] == 0.42
    check_outputs(m)


def test_a_bill_far_above_the_estimate_counts_as_billed_stops_the_run_at_its_budget_and_is_said(tmp_path: Path) -> None:
    """A provider billing 10x the estimate (a price table too low) is billed in dollars: its figure counts, so the
    budget stops the run once passed, and the run's errors, `status`, the report and the export say it, naming
    where the prices came from."""
    from runner.export import summary
    from runner.report import render

    m = write_manifest(tmp_path, n_seeds=3, sim={"cost_factor": 10}, run={"budget_usd": 2.1, "concurrency": 1})
    result, prov = run(m, allow_partial=True)
    assert result.status == "budget" and stats(prov)["creates"] == 1, result.stats.counts
    assert result.stats.spent_micros == 3_500_000 and _money_views(m) == {3.5}
    note = ("the provider billed $3.50 for a job estimated $0.35 (10x): counted as billed; the price table may be "
            "out of date (gridrun's built-in capabilities file lumenfall.yaml, as of 2026-11-25)")
    said = [e for e in result.stats.last_errors if "counted as billed" in e]
    assert len(said) == 1 and note in said[0], result.stats.last_errors
    snap = api.status(m)
    assert snap.billed_above_note() == note and api.status_json(snap)["billed_above"] == note
    assert summary(snap)["cost_billed_above"] == note and summary(snap)["cost_doubted"] == 0
    assert note.replace("'", "&#39;") in render(snap, base_dir=tmp_path)
    assert _doubted_events(tmp_path) == []


def test_after_a_run_billed_above_its_estimates_plan_and_the_next_steps_scale_what_is_sent_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run the provider billed 10x its estimates stops at its budget: its end line's next step, `plan` and the
    next run say what the jobs sent next may cost, billed as that run's were, not only their estimates that "fit":
    the next step names the budget that covers them, `plan` says the budget is exceeded, and a plain run is
    refused before it sends."""
    from runner.cli import main

    monkeypatch.chdir(tmp_path)
    m = write_manifest(tmp_path, n_seeds=3, sim={"cost_factor": 10}, run={"budget_usd": 2.1, "concurrency": 1})
    assert main(["run", str(m), "--no-report"]) == 3
    note = ("the provider billed $3.50 for a job estimated $0.35 (10x): counted as billed; the price table may be "
            "out of date (gridrun's built-in capabilities file lumenfall.yaml, as of 2026-11-25)")
    end = " ".join(capsys.readouterr().err.split())
    assert (f"`gridrun run --budget 17.50` sends the 5 jobs not sent ($1.75: the last run (run 1) was billed 10x the "
            f"estimates ({note}): they may cost about $17.50): a plain `gridrun run` refuses, counting $17.50 against "
            "its budget") in end, end
    assert main(["plan", str(m)]) == 0
    out, err = capsys.readouterr()
    assert ("budget: $2.10 (exceeds: this run counts $17.50 against it, its $1.75 of estimates counted at 10x the "
            "estimates, as run 1 was billed") in " ".join(out.split()), out
    said = (f"warning: the last run (run 1) was billed 10x the estimates ({note}): the $1.75 this plan sends may "
            "cost about $17.50")
    assert said in " ".join(err.split()), err
    assert main(["plan", "--json", str(m)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["billed_above"] == {
        "run": 1, "jobs": 1, "estimate_usd": 0.35, "billed_usd": 3.5, "factor": 10.0, "to_send_usd": 1.75,
        "to_send_may_cost_usd": 17.5}
    assert doc["run_usd"] == 17.5
    assert main(["run", str(m), "--no-report"]) == 3  # said before it is refused, nothing sent
    err = " ".join(capsys.readouterr().err.split())
    assert said in err and "error: 5 jobs to submit would cost $17.50 (estimated at $1.75" in err, err
    assert api.status(m).run.id == 1


def test_a_bill_above_the_estimate_names_the_capabilities_file_that_priced_it(tmp_path: Path) -> None:
    caps = tmp_path / "caps.yaml"
    caps.write_text("provider: sim\nmodels:\n  pixverse-v5.6:\n    prices:\n"
                    "      base_5s: {360p: 0.035, 540p: 0.035, 720p: 0.45, 1080p: 0.75}\n")
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), extra={"capabilities": ["caps.yaml"]})
    result, _ = run(m)  # the simulator bills gridrun's own table: $0.35 for a job priced $0.035 here
    assert result.exit_code == 0 and result.stats.spent_micros == 700_000
    note = (f"the provider billed $0.35 for a job estimated $0.035 (10x), and 1 more job above 5x its estimate: "
            f"counted as billed; the price table may be out of date (capabilities file {caps})")
    assert api.status(m).billed_above_note() == note


@pytest.mark.parametrize("factor", [0.0, 1e6])
def test_an_implausible_reported_cost_is_recorded_but_the_estimate_is_counted(tmp_path: Path, factor: float) -> None:
    """A reported 0, or a figure in micro-dollars, neither frees the budget nor stops the run: the estimate
    counts, in every view of the run's money, and the reported figure is kept and flagged."""
    m = write_manifest(tmp_path, n_seeds=2, sim={"cost_factor": factor}, run={"budget_usd": 2.0, "concurrency": 1})
    result, prov = run(m)
    assert result.exit_code == 0 and result.stats.counts["done"] == 4 and stats(prov)["creates"] == 4
    assert result.stats.spent_micros == 4 * 350_000 and _money_views(m) == {1.4}
    reported = round(350_000 * factor)
    assert {j.cost_micros for j in api.status(m).jobs} == {350_000}  # as counted
    from runner.state import Store

    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:  # and as the provider reported it
        assert {r[0] for r in store.db.execute("SELECT cost_reported_micros FROM jobs")} == {reported}
    assert _doubted_events(tmp_path) == [{"reported_micros": reported, "estimate_micros": 350_000}] * 4
    said = [e for e in result.stats.last_errors if "the estimate counts against the budget" in e]
    assert len(said) == 1 and f"${reported / 1e6:,.2f}" in said[0], result.stats.last_errors
    video = Path(api.status(m).jobs[0].output_path)
    side = json.loads(video.with_suffix(".json").read_text())
    assert side["cost_usd"] == 0.35 and side["cost_reported_usd"] == reported / 1e6
    video.with_suffix(".json").unlink()
    again, _ = run(m, prov)  # the sidecar written again from the state: the cost as counted
    assert again.exit_code == 0 and again.stats.spent_micros == 0
    mended = json.loads(video.with_suffix(".json").read_text())
    assert mended["cost_usd"] == 0.35 and mended["cost_reported_usd"] == reported / 1e6
    check_outputs(m)


@pytest.mark.parametrize("fault", ["truncated", "wrong_content_type", "reset_mid_body"])
def test_bad_downloads_are_retried_and_never_kept(tmp_path: Path, fault: str) -> None:
    m = write_manifest(tmp_path, n_seeds=1, sim={"script": [{"route": "file", "nth": [1, 2], "fault": fault}]})
    result, prov = run(m)
    assert result.exit_code == 0 and stats(prov)["creates"] == 2
    check_outputs(m)
    assert not list(tmp_path.rglob("*.part"))


@pytest.mark.parametrize("refusal", [{"fault": "auth_failed"}, {"fault": "expired", "status": 400}])
def test_a_download_refused_with_another_4xx_is_tried_again_with_a_fresh_url(tmp_path: Path, refusal: dict) -> None:
    """A 401, or the 400 storage services give an expired signature, is no reason to end the run."""
    m = write_manifest(tmp_path, n_seeds=1, sim={"script": [{"route": "file", "nth": [1, 2], **refusal}]})
    result, prov = run(m)
    assert result.exit_code == 0 and stats(prov)["creates"] == 2, result.stats.counts
    check_outputs(m)


def test_a_download_refused_every_time_waits_downloading_for_the_next_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.stats import Throughput

    monkeypatch.setattr(Throughput, "per_minute", lambda self, now, elapsed: 10.0)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"script": [{"route": "file", "p": 1.0, "fault": "auth_failed"}]})
    result, prov = run(m, retries=1)
    assert result.exit_code == 1 and result.status == "failed"
    job = api.status(m).jobs[0]
    assert job.state == "downloading" and "download refused: HTTP 401" in (job.error or ""), job.error
    assert result.stats.eta is None  # the run has ended: the job waits for the next one
    prov.app.state.sim.configure({"script": []})
    again, _ = run(m, prov)
    assert again.exit_code == 0 and again.stats.spent_micros == 0 and stats(prov)["creates"] == 1
    check_outputs(m)


def test_persistently_truncated_download_stays_paid_and_resumable(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"script": [{"route": "file", "p": 1.0, "fault": "truncated"}]})
    result, prov = run(m, retries=1)
    assert result.exit_code == 1
    job = api.status(m).jobs[0]
    assert job.state == "downloading" and "download failed" in (job.error or "")
    prov.app.state.sim.configure({"script": []})
    r2, _ = run(m, prov)
    assert r2.exit_code == 0 and stats(prov)["creates"] == 1
    check_outputs(m)


def test_concurrency_is_never_exceeded_at_the_provider(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=5, run={"concurrency": 3}, sim={"concurrency": 10, "render_time": 0.3})
    result, prov = run(m)
    s = stats(prov)
    assert result.exit_code == 0 and s["max_in_progress"] <= 3


def test_invalid_sim_knob_is_a_manifest_error(tmp_path: Path) -> None:
    from runner.errors import ManifestError
    m = write_manifest(tmp_path, sim={"render_tme": 1})
    with pytest.raises(ManifestError, match=r"sim\.render_tme"):
        api.plan(m)


def test_retry_unknown_resubmits_and_says_it_may_pay_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _settle_soon(monkeypatch)
    import dataclasses
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={
        "honour_idempotency": False,
        "script": [{"route": "create", "nth": 1, "fault": "reset_after"},
                   {"route": "requests", "p": 1.0, "fault": "server_error"}]})
    prov = sim_provider(m)
    prov.caps = dataclasses.replace(prov.caps, honours_idempotency_keys=False)
    r1, _ = run(m, prov, retries=1, request_timeout=1.0)
    assert r1.exit_code == 1 and api.status(m).jobs[0].state == "unknown"
    prov.app.state.sim.configure({"script": []})
    r2, _ = run(m, prov, retry_unknown=True, request_timeout=1.0)
    assert r2.exit_code == 0
    assert stats(prov)["creates"] == 1 or stats(prov)["duplicate_paid"] <= 1
    # the request log is reachable again: the lost create is found, nothing is paid twice
    assert stats(prov)["duplicate_paid"] == 0


def _creates_lost_with_the_log_down(tmp_path: Path, fault: str) -> tuple[Path, Any, Any]:
    """One job whose first six creates meet `fault` (reset_after: made, its answer lost; reset_before: never
    received) while the provider's request log is down, run once with a 1 s request timeout: (manifest, provider,
    the run's result). Callers shorten LOG_SETTLE (`_settle_soon`) where its length is not what they test."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={
        "render_time": 0.1, "jitter": 0.0,
        "script": [{"route": "create", "nth": [1, 2, 3, 4, 5, 6], "fault": fault},
                   {"route": "requests", "p": 1.0, "fault": "server_error"}]})
    prov = sim_provider(m)
    first, _ = run(m, prov, request_timeout=1.0)
    return m, prov, first


def _settle_soon(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pause before a lost create is sent again or looked up (LOG_SETTLE, 5 s) cut to 0.2 s, and the backoffs
    between tries of a lookup in a log that is down a tenth as long, for tests of what is sent, not of when."""
    from runner import executor as ex_mod

    monkeypatch.setattr(ex_mod, "LOG_SETTLE", 0.2)
    quick_backoff(monkeypatch)


def _left_unknown_with_its_log_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Any]:
    """A job whose creates' answers were all lost while the provider's request log was down: `unknown`,
    though the provider (which honours keys) made its video at the first send."""
    _settle_soon(monkeypatch)
    m, prov, first = _creates_lost_with_the_log_down(tmp_path, "reset_after")
    assert first.exit_code == 1 and api.status(m).jobs[0].state == "unknown"
    assert stats(prov)["creates"] == 1, stats(prov)  # the resends, with the same key, were replays
    return m, prov


def test_retry_unknown_sends_the_same_key_again_where_the_provider_honours_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`retry --unknown` with the request log still down: a new key would pay for a second video; the
    attempt's own key gets the one the provider already made, at no cost."""
    _settle_soon(monkeypatch)
    m, prov = _left_unknown_with_its_log_down(tmp_path, monkeypatch)
    prov.app.state.sim.configure({"script": [{"route": "requests", "p": 1.0, "fault": "server_error"}]})
    again, _ = run(m, prov, retry_unknown=True, poll_interval=0.1)
    assert again.exit_code == 0 and again.stats.counts["done"] == 1, again.stats.counts
    assert stats(prov)["creates"] == 1 and stats(prov)["duplicate_paid"] == 0, stats(prov)
    job = api.status(m).jobs[0]
    assert job.attempts == 1
    check_outputs(m)


def test_a_plain_run_finds_an_unknown_job_by_its_key_once_the_log_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain run asks the provider's request log about each `unknown` job (free): the video an earlier
    run paid for is found and downloaded; nothing is sent. With the log still down, it stays unknown."""
    m, prov = _left_unknown_with_its_log_down(tmp_path, monkeypatch)
    still, _ = run(m, prov, poll_interval=0.1)
    assert still.exit_code == 1 and still.stats.counts["unknown"] == 1 and stats(prov)["creates"] == 1
    prov.app.state.sim.configure({"script": []})
    found, _ = run(m, prov, poll_interval=0.1)
    assert found.exit_code == 0 and found.stats.counts["done"] == 1, found.stats.counts
    assert stats(prov)["creates"] == 1 and stats(prov)["duplicate_paid"] == 0
    check_outputs(m)


def test_status_says_what_of_the_reserve_an_earlier_runs_jobs_of_unknown_outcome_hold_and_what_settles_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1 leaves a job of unknown outcome that run 2 cannot look up either: the manifest's reserve counts it, run
    2's does not. `status` says which part of the manifest's reserve it holds, and that `retry --unknown` settles it
    (`--json`: `unknown_reserved_jobs`, `unknown_reserved_usd`); once settled, neither says it any more."""
    from runner.cli import main

    monkeypatch.setenv("COLUMNS", "400")
    m, prov = _left_unknown_with_its_log_down(tmp_path, monkeypatch)
    still, _ = run(m, prov, poll_interval=0.1)
    assert still.stats.counts["unknown"] == 1
    estimate = api.plan(m).jobs[0].cost_micros
    snap = api.status(m)
    assert (snap.run.id, snap.reserved_micros, snap.manifest_reserved_micros) == (2, 0, estimate)
    assert (api.status_json(snap)["unknown_reserved_jobs"], api.status_json(snap)["unknown_reserved_usd"]) == \
           (1, estimate / 1e6)
    capsys.readouterr()
    assert main(["status", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    money = f"${estimate / 1e6:,.2f}"
    assert (f"reserved {money} {money} of it reserved by 1 job of unknown outcome run 1 "
            "sent (style=anime,seed=1), which may have been paid: run 2's reserve does not count it; `gridrun retry "
            "--unknown` settles it, each looked up by its key (free), else sent again (may pay twice)") in said, said
    monkeypatch.chdir(tmp_path)
    write_manifest(tmp_path, n_seeds=1, styles=("clay",), sim={"render_time": 0.1, "jitter": 0.0})
    prov.app.state.sim.configure({"script": []})
    assert run(m, prov)[0].exit_code == 0
    assert main(["status", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert ("run 3's reserve does not count it; the manifest no longer has it: put the manifest back as the run that "
            "sent it had it (outputs/t/.runs/run-1.yaml): copy it back to t.yaml and run `gridrun retry --unknown` on "
            "that to settle it") in said
    shutil.copy(tmp_path / "outputs/t/.runs/run-1.yaml", m)
    again, _ = run(m, prov, retry_unknown=True, poll_interval=0.1)
    assert again.exit_code == 0 and api.status(m).manifest_reserved_micros == 0
    assert api.status_json(api.status(m))["unknown_reserved_jobs"] == 0
    assert main(["status", str(m)]) == 0 and "of unknown outcome" not in capsys.readouterr().out


def test_a_plain_run_sends_an_unknown_job_the_providers_log_shows_never_arrived(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its creates were all cut before the provider handled them while its request log was down: `unknown`.
    Once the log answers that no create with the attempt's key arrived, and its last send can no longer be on
    its way (the request timeout and LOG_SETTLE after the job became unknown), nothing was made or paid: a
    plain run sends the job, once. Sooner, the miss proves nothing, and the job is left as it is."""
    from runner import executor as ex_mod

    monkeypatch.setattr(ex_mod, "LOG_SETTLE", 0.2)
    quick_backoff(monkeypatch)
    m, prov, first = _creates_lost_with_the_log_down(tmp_path, "reset_before")
    assert first.exit_code == 1 and api.status(m).jobs[0].state == "unknown" and stats(prov)["creates"] == 0
    prov.app.state.sim.configure({"script": []})
    soon, _ = run(m, prov, poll_interval=0.1, request_timeout=1.0)
    assert soon.stats.counts["unknown"] == 1 and stats(prov)["creates"] == 0, soon.stats.counts
    time.sleep(1.3)
    second, _ = run(m, prov, poll_interval=0.1, request_timeout=1.0)
    assert second.exit_code == 0 and second.stats.counts["done"] == 1, (second.stats.counts, api.status(m).jobs[0].error, stats(prov))
    assert stats(prov)["creates"] == 1 and stats(prov)["duplicate_paid"] == 0
    check_outputs(m)


def test_python_api_mirrors_the_cli(tmp_path: Path) -> None:
    import runner
    m = write_manifest(tmp_path, n_seeds=1)
    manifest = runner.load(m)
    plan = runner.plan(manifest)
    assert len(plan.jobs) == 2 and plan.total_usd == pytest.approx(0.70)
    result = runner.run(plan, report=False)
    assert result.exit_code == 0 and len(check_outputs(m)) == 2


def test_read_timeout_after_send_is_reconciled_not_repaid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _settle_soon(monkeypatch)
    from runner.sim.config import SimConfig
    from runner.sim.serve import running_server
    import httpx
    config = SimConfig.from_dict({"render_time": 0.3, "jitter": 0.0, "concurrency": 4,
                                  "script": [{"route": "create", "nth": 1, "fault": "slow", "delay": 3.0}]})
    with running_server(config) as url:
        m = write_manifest(tmp_path, n_seeds=1, base_url=url, sim={})
        result = api.run(m, options=RunOptions(request_timeout=1.0), report=False)
        s = httpx.get(url.rsplit("/v1", 1)[0] + "/_sim/stats").json()
    assert result.exit_code == 0
    assert s["creates"] == 2 and s["duplicate_paid"] == 0 and s["faults"].get("slow") == 1


def test_a_simulator_served_apart_that_ignores_keys_is_never_sent_a_lost_create_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`gridrun sim serve --no-idempotency`: the run asks the simulator first, and treats it as a provider that
    ignores keys. A create whose answer was lost, with the request log down, is left unknown: sent again with
    the same key, it would be a second paid video there."""
    _settle_soon(monkeypatch)
    from runner.sim.config import SimConfig
    from runner.sim.serve import running_server
    import httpx

    config = SimConfig.from_dict({"render_time": 0.2, "jitter": 0.0, "concurrency": 4, "honour_idempotency": False,
                                  "script": [{"route": "create", "nth": 1, "fault": "reset_after"},
                                             {"route": "requests", "p": 1.0, "fault": "server_error", "status": 503}]})
    with running_server(config) as url:
        m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), base_url=url, sim={})
        result = api.run(m, options=RunOptions(request_timeout=1.0), report=False)
        s = httpx.get(url.rsplit("/v1", 1)[0] + "/_sim/stats").json()
    assert result.stats.counts["unknown"] == 1, result.stats.counts
    assert s["creates"] == 1 and s["duplicate_paid"] == 0, s


def test_a_create_that_never_answers_is_sent_again_few_times_each_once_the_last_has_settled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a provider that honours keys (and whose request log cannot be read), a create whose answers time out
    is sent again with the same key at most MOST_RESENDS times, each request_timeout + LOG_SETTLE after the
    last send (here longer than the provider holds a create); then the job is `unknown` (paid or not, nobody
    can tell), not sent on and on."""
    from runner import executor as ex_mod
    from runner.sim.config import SimConfig
    from runner.sim.serve import running_server
    import httpx

    monkeypatch.setattr(ex_mod, "LOG_SETTLE", 1.0)
    config = SimConfig.from_dict({"render_time": 0.3, "jitter": 0.0, "concurrency": 4,
                                  "script": [{"route": "create", "p": 1.0, "fault": "slow", "delay": 1.0},
                                             {"route": "requests", "p": 1.0, "fault": "server_error", "status": 503}]})
    with running_server(config) as url:
        m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), base_url=url, sim={})
        started = time.monotonic()
        result = api.run(m, options=RunOptions(request_timeout=0.3), report=False)
        took = time.monotonic() - started
        s = httpx.get(url.rsplit("/v1", 1)[0] + "/_sim/stats").json()
    assert result.exit_code == 1 and result.stats.counts["unknown"] == 1
    assert s["requests"]["create"] == 1 + ex_mod.MOST_RESENDS and s["duplicate_paid"] == 0
    assert took >= ex_mod.MOST_RESENDS * (0.3 + 1.0)  # each resend request_timeout + LOG_SETTLE after the last
    assert "no answer after 3 tries" in (api.status(m).jobs[0].error or "")


def test_missing_key_stops_before_anything_is_recorded_or_sent(tmp_path: Path) -> None:
    from runner.errors import NeedsKeyError
    m = write_manifest(tmp_path, n_seeds=1, provider="lumenfall", sim={})
    text = m.read_text()
    m.write_text(text[: text.index("sim:")])
    with pytest.raises(NeedsKeyError, match="LUMENFALL_API_KEY"):
        api.run(m, report=False)
    assert not (tmp_path / ".gridrun").exists()  # no state made either
    from runner.errors import NotRecordedError
    with pytest.raises(NotRecordedError, match="nothing has run here"):
        api.status(m)


@pytest.mark.parametrize("argv", [["status"], ["status", "--runs"], ["report"], ["export"]],
                         ids=["status", "status --runs", "report", "export"])
def test_what_never_ran_where_nothing_ran_yet_says_to_run_it_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str],
) -> None:
    """A first manifest, never run, in a folder with no state yet: the error says what to run, the manifest as
    it was given, as it does where the state holds runs of other manifests only."""
    from runner.cli import main
    write_manifest(tmp_path, n_seeds=1)
    monkeypatch.chdir(tmp_path)
    assert main([argv[0], "t.yaml", *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert "no state yet (nothing has run here); `gridrun run t.yaml` runs it first" in err, err
    assert not (tmp_path / ".gridrun").exists()


def test_status_and_report_of_what_never_ran_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest that never ran, or a run id that is not there, is the user's slip (exit 2), not failed
    jobs (exit 1); the message says what is there."""
    from runner.cli import main
    m = write_manifest(tmp_path, n_seeds=1)
    assert main(["status", str(m)]) == 2
    assert "no state yet (nothing has run here)" in capsys.readouterr().err
    assert main(["run", str(m), "--no-report"]) == 0
    assert main(["run", str(m), "--no-report"]) == 0
    capsys.readouterr()
    assert main(["report", str(m), "--compare", "1", "7"]) == 2
    err = capsys.readouterr().err
    assert "no run 7; runs of t recorded: 1, 2" in err and "Traceback" not in err
    assert main(["report", str(m), "--compare", "1", "2"]) == 0


def test_an_emptied_state_beside_the_videos_its_runs_left_is_refused_not_read_as_new(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state.db truncated to 0 bytes, its runs' files still in the output folder, is refused by every command
    (exit 1, as a damaged state), not read as "nothing has run here", which would have `run` send and pay for
    every job again; left as it is, and removing it starts over."""
    from runner.cli import main
    m = write_manifest(tmp_path, n_seeds=1)
    assert main(["run", str(m), "--no-report"]) == 0
    sidecar = tmp_path / "outputs" / "t" / "anime" / "seed-1.json"
    before = sidecar.read_bytes()
    db = tmp_path / ".gridrun" / "state.db"
    db.write_bytes(b"")
    capsys.readouterr()
    commands = (["plan"], ["status"], ["status", "--runs"], ["run", "--no-report"], ["report"], ["export"], ["cancel"])
    for argv in commands:
        assert main([argv[0], str(m), *argv[1:]]) == 1, argv
        err = capsys.readouterr().err
        assert "the state file is empty (0 bytes)" in err and ".runs/run-1.yaml" in err, err
        assert "Restore state.db from a backup" in err and "Traceback" not in err, err
    assert db.stat().st_size == 0 and sidecar.read_bytes() == before  # nothing written, nothing sent
    shutil.rmtree(tmp_path / "outputs" / "t" / ".runs")  # the videos' sidecars tell as much
    assert main(["plan", str(m)]) == 1
    assert "anime/seed-1.json" in capsys.readouterr().err
    db.unlink()
    assert main(["run", str(m), "--no-report"]) == 0


@pytest.mark.parametrize("how", ["damaged", "emptied"])
def test_a_refused_state_says_to_remove_the_output_folders_lock_too_to_start_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    """A damaged or emptied state.db of a project that ran in place: removing it alone would only lead to the
    lost-state refusal (the output folder's lock names this state), so the message names both files; removed as
    it says, the run starts over."""
    from runner.cli import main
    m = write_manifest(tmp_path, n_seeds=1)
    assert main(["run", str(m), "--no-report"]) == 0
    db = tmp_path / ".gridrun" / "state.db"
    for beside in ("state.db-wal", "state.db-shm"):
        (db.parent / beside).unlink(missing_ok=True)
    with closing(sqlite3.connect(db)) as conn:  # pages enough that a cut leaves a whole header
        conn.execute("CREATE TABLE pad (x)")
        conn.executemany("INSERT INTO pad VALUES (?)", [(b"x" * 4000,)] * 40)
        conn.commit()
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3] if how == "damaged" else b"")
    lock = tmp_path / "outputs" / "t" / ".runs" / "lock"
    capsys.readouterr()
    assert main(["run", str(m), "--no-report"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"to start over knowingly (every job sent and paid for again), remove it and {lock}" in err, err
    assert "removing it starts over" not in err
    db.unlink()
    lock.unlink()
    assert main(["run", str(m), "--no-report"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("lost", ["state.db removed", "state folder gone"])
def test_a_missing_state_beside_the_files_its_runs_left_is_refused_not_read_as_new(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, lost: str
) -> None:
    """state.db not there (its `state_dir:` disk not mounted, a tmpfs wiped, the file removed) while the output
    folder holds its runs' files and its lock records this very state folder: refused by plan, run and status as
    an emptied one is, before anything is sent; removing the output folder's .runs/lock starts over knowingly."""
    from runner.cli import main
    m = write_manifest(tmp_path, n_seeds=1, extra={"state_dir": "st"})
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert main(["run", str(m), "--no-report"]) == 0
    state = tmp_path / "st"
    if lost == "state.db removed":
        (state / "state.db").unlink()
    else:
        shutil.rmtree(state)
    lock = tmp_path / "outputs" / "t" / ".runs" / "lock"
    capsys.readouterr()
    for argv in (["plan"], ["run", "--no-report"], ["status"], ["cancel"]):
        assert main([argv[0], str(m), *argv[1:]]) == 1, argv
        err = " ".join(capsys.readouterr().err.split())
        assert f"{state / 'state.db'}: the state file is not there, yet runs it recorded left their files in " \
               f"{tmp_path / 'outputs' / 't'} (.runs/run-1.yaml, ...), and {lock} says a run of the state in " \
               f"{state} wrote them last" in err, err
        assert f"to start over knowingly (every job sent and paid for again), remove {lock}" in err, err
        assert "Traceback" not in err
    assert stats(prov)["creates"] == 2 and not (state / "state.db").exists()  # nothing sent, nothing made
    lock.unlink()
    assert main(["run", str(m), "--no-report"]) == 0
    assert stats(prov)["creates"] == 4


def test_a_missing_state_beside_another_states_runs_is_a_new_state(tmp_path: Path) -> None:
    """The output folder written by the runs of another state folder (the manifest's `state_dir:` changed): no
    evidence that this one is lost; its run keeps their videos aside (unrecorded-kept), as `plan` warns."""
    m = write_manifest(tmp_path, n_seeds=1, extra={"state_dir": "st"})
    assert api.run(m, report=False).exit_code == 0
    m.write_text(m.read_text().replace("state_dir: st", "state_dir: st2"))
    r2 = api.run(m, report=False)
    assert r2.exit_code == 0 and len(r2.unrecorded_kept) == 2


def test_an_empty_state_file_with_no_outputs_is_a_new_state(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1)
    (tmp_path / ".gridrun").mkdir()
    (tmp_path / ".gridrun" / "state.db").write_bytes(b"")
    with pytest.raises(NotRecordedError, match="nothing has run here"):
        api.status(m)
    assert api.diff(api.plan(m)) is None
    assert api.run(m, report=False).exit_code == 0


def test_an_emptied_state_is_refused_whichever_manifest_sharing_it_opens_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two manifests of one folder share its state: emptied after a's run, it is refused to b too, whose
    output folder holds nothing (the runner lock and the simulator's world beside it tell), and without a
    manifest; b's run would have written a new state over it, which a's next run then read as new, sending and
    paying for every one of a's jobs again."""
    from runner.cli import main
    from runner.errors import StateError
    a = write_manifest(tmp_path, n_seeds=1, name="a")
    b = write_manifest(tmp_path, n_seeds=1, name="b", extra={"params": {"prompt": "a dog, {{ style }} style"}})
    assert main(["run", str(a), "--no-report"]) == 0
    db = tmp_path / ".gridrun" / "state.db"
    db.write_bytes(b"")
    capsys.readouterr()
    beside = f"left their files in {tmp_path / '.gridrun'} (lock, ...)"
    for argv, names in ((["plan", str(b)], beside), (["status", str(b)], beside),
                        (["run", str(b), "--no-report"], beside), (["run", str(a), "--no-report"], ".runs/run-1.yaml")):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert "the state file is empty (0 bytes)" in err and names in err and "Traceback" not in err, err
    with pytest.raises(StateError, match=r"\(lock, \.\.\.\)"):
        api.status(None, state_dir=tmp_path / ".gridrun")
    (tmp_path / ".gridrun" / "lock").unlink()
    with pytest.raises(StateError, match=r"\(sim-world\.jsonl, \.\.\.\)"):
        api.status(b)
    assert db.stat().st_size == 0 and not (tmp_path / "outputs" / "b").exists()  # nothing written, nothing sent
    db.unlink()  # started over knowingly: a new state
    assert main(["run", str(b), "--no-report"]) == 0


def test_a_run_killed_as_it_makes_the_state_leaves_no_empty_state_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state.db removed to start over leaves the runner lock beside it: a run killed as it made the new file
    must not leave it empty (refused as emptied then), so it is made whole under another name first."""
    import runner.state as state_mod
    m = write_manifest(tmp_path, n_seeds=1)
    assert api.run(m, report=False).exit_code == 0
    db = tmp_path / ".gridrun" / "state.db"
    db.unlink()
    (tmp_path / "outputs" / "t" / ".runs" / "lock").unlink()  # started over knowingly
    real = sqlite3.connect

    def killed(target: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real(target, *args, **kwargs)
        if str(target) == str(db):
            conn.close()
            raise KeyboardInterrupt  # killed as the connection made the file
        return conn

    monkeypatch.setattr(state_mod.sqlite3, "connect", killed)
    with pytest.raises(KeyboardInterrupt):
        api.run(m, report=False)
    monkeypatch.undo()
    assert db.stat().st_size > 0 and (tmp_path / ".gridrun" / "lock").exists()
    assert sorted(p.name for p in db.parent.iterdir()) == [".gitignore", "lock", "sim-world.jsonl", "state.db"]
    assert api.run(m, report=False).exit_code == 0


def test_cli_run_without_report_then_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runner.cli import main
    m = write_manifest(tmp_path, n_seeds=1)
    assert main(["run", str(m), "--no-report"]) == 0
    out = capsys.readouterr().out
    outputs = tmp_path / "outputs"
    assert "report:" not in out and len(check_outputs(m)) == 2
    assert not list(outputs.rglob("report.html")) and not list(outputs.rglob("*.jpg"))
    assert main(["report", str(m)]) == 0
    assert len(list(outputs.rglob("report.html"))) == 1 and len(list(outputs.rglob("*.jpg"))) == 2


def test_new_outputs_reach_the_poster_worker_during_the_run(tmp_path: Path) -> None:
    """Posters keep up with downloads: videos are handed over in batches as they are saved, each once; the
    final report makes the posters still missing."""
    import anyio

    from runner.executor import Executor
    from runner.report import make_posters, poster_path
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=4, sim={"render_time": 0.3, "jitter": 0.0, "concurrency": 8})
    plan = api.plan(m)
    handed: list[Path] = []
    finals: list[bool] = []

    def on_output(paths: list[Path]) -> None:
        assert all(p.is_file() for p in paths)
        handed.extend(paths)
        make_posters(paths)

    build, _ = api._report_hooks(plan)
    assert build is not None

    def on_report(run_id: int, final: bool) -> Path | None:
        finals.append(final)
        return build(run_id, final)

    store = Store(plan.state_dir / "state.db")
    store.acquire_lock()
    try:
        ex = Executor(plan, sim_provider(m), store, on_report=on_report, on_output=on_output)
        result = anyio.run(ex.run)
    finally:
        store.close()
    assert result.exit_code == 0
    # handed over while the run went on, each once; what came in the last second is left to the final report
    assert handed and len(set(handed)) == len(handed) and set(handed) <= {j.output for j in plan.jobs}
    assert finals[-1] is True and all(poster_path(j.output).is_file() for j in plan.jobs)


def test_the_live_report_is_rebuilt_only_after_a_job_moved(tmp_path: Path) -> None:
    """During long renders nothing on the page moves: the live report waits for a change instead of being
    rebuilt every `report_every` seconds."""
    import anyio

    from runner.executor import Executor
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=2, sim={"render_time": 3.0, "jitter": 0.0, "concurrency": 8},
                       run={"concurrency": 8})
    plan = api.plan(m)
    builds: list[tuple[bool, tuple[str, ...]]] = []
    store = Store(plan.state_dir / "state.db")
    ex: Executor

    def on_report(run_id: int, final: bool) -> Path | None:
        builds.append((final, tuple(state for state, n in ex.counts.items() for _ in range(n))))
        return None

    store.acquire_lock()
    try:
        ex = Executor(plan, sim_provider(m), store, options=RunOptions(report_every=0.1), on_report=on_report)
        result = anyio.run(ex.run)
    finally:
        store.close()
    assert result.exit_code == 0 and builds[-1][0] is True
    live = [states for final, states in builds if not final]
    # Rebuilt every 0.1 s through 3 s of rendering, there would be dozens; each build here follows a move.
    assert 1 <= len(live) <= 8, live
    assert any("running" in states or "submitted" in states for states in live)


def test_a_run_raises_the_collectors_first_threshold_and_puts_it_back(tmp_path: Path) -> None:
    import gc

    m = write_manifest(tmp_path, n_seeds=2)
    seen: list[tuple[int, int, int]] = []
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 11, 12)
        api.run(m, provider=sim_provider(m), report=False, on_progress=lambda _: seen.append(gc.get_threshold()))
        assert seen and set(seen) == {(api.GC_YOUNG_THRESHOLD, 11, 12)}
        assert gc.get_threshold() == (700, 11, 12)
        gc.set_threshold(0, 11, 12)  # automatic collection off: a run leaves it off
        seen.clear()
        (tmp_path / "again").mkdir()
        m = write_manifest(tmp_path / "again", n_seeds=2)
        api.run(m, provider=sim_provider(m), report=False, on_progress=lambda _: seen.append(gc.get_threshold()))
        assert seen and set(seen) == {(0, 11, 12)}
    finally:
        gc.set_threshold(*before)


def test_housekeeping_wakes_for_deferred_writes_not_on_a_timer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the provider renders there is nothing to commit: the housekeeping sleeps (IDLE_TICK, here
    longer than the run) instead of waking every FLUSH_DELAY, and each deferred state write wakes it."""
    import anyio

    from runner import live
    from runner.executor import Executor
    from runner.state import Store

    monkeypatch.setattr(live, "IDLE_TICK", 60.0)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",),
                       sim={"render_time": 3.0, "jitter": 0.0, "concurrency": 1}, run={"concurrency": 1})
    plan = api.plan(m)
    passes: list[bool] = []  # whether a deferred write was waiting for the pass

    housekeeping = live.LiveViews.housekeeping

    def counting(self: live.LiveViews) -> None:
        passes.append(self.store.pending)
        housekeeping(self)

    monkeypatch.setattr(live.LiveViews, "housekeeping", counting)

    store = Store(plan.state_dir / "state.db")
    store.acquire_lock()
    try:
        result = anyio.run(Executor(plan, sim_provider(m), store).run)
        assert not store.pending
    finally:
        store.close()
    assert result.exit_code == 0
    # woken by the first deferred write (the move to submitted), long before the idle tick
    assert passes and passes[0]
    # one pass per nudge at most (4 deferred moves); a 0.05 s timer would have made ~70 in this 3.5 s run
    assert len(passes) <= 4, passes


def test_status_adds_up_the_money_of_every_run_of_the_manifest(tmp_path: Path) -> None:
    """A resumed run follows jobs an earlier run sent: it counts what it saw billed; the manifest's add up."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 1.0, "jitter": 0.0})
    prov = sim_provider(m)
    run(m, prov, timeout=0.2)
    left = api.status(m)
    assert left.reserved_micros == left.manifest_reserved_micros == 700_000
    run(m, prov)
    snap = api.status(m)
    assert snap.spent_micros == 700_000 and snap.manifest_spent_micros == 700_000 and snap.manifest_reserved_micros == 0
    assert api.status_json(snap)["manifest_spent_usd"] == 0.7


def test_a_forced_render_left_downloading_is_downloaded_not_taken_for_the_earlier_render(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--force` paid for a new render whose download failed: the file on disk is still the earlier render's,
    with a sidecar naming the same job. The next run downloads the new render instead of calling it done."""
    quick_backoff(monkeypatch)  # the failing download's tries: how many, not how far apart
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    first, prov = run(m)
    earlier = api.status(m).jobs[0].provider_id
    prov.app.state.sim.configure({"script": [{"route": "file", "fault": "truncated", "p": 1.0}]})
    second, _ = run(m, prov, force=True, poll_interval=0.1)
    assert second.exit_code == 1 and second.stats.counts["downloading"] == 1, second.stats.counts
    prov.app.state.sim.configure({"script": []})
    third, _ = run(m, prov, poll_interval=0.1)
    assert third.exit_code == 0 and third.stats.counts["done"] == 1
    job = api.status(m).jobs[0]
    assert job.provider_id != earlier
    side = json.loads(Path(job.output_path).with_suffix(".json").read_text())
    assert side["provider_id"] == job.provider_id and side["sha256"] == job.sha256
    # the sidecar names the attempt that made this render: the second, sent by the --force run
    from runner.state import Store

    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        attempt = store.db.execute(
            "SELECT a.n, a.idempotency_key FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE j.key=? ORDER BY a.n DESC",
            (job.key,),
        ).fetchone()
    assert (side["attempt"], side["idempotency_key"]) == (2, attempt["idempotency_key"]) and attempt["n"] == 2
    assert side["submitted_at"] == job.submitted_at is not None
    assert stats(prov)["creates"] == 2 and stats(prov)["downloads"] == 2
    check_outputs(m)


def test_a_forced_run_that_never_reaches_the_provider_leaves_the_videos_for_the_next_run(tmp_path: Path) -> None:
    """Each done job is reset just before its create; when the create provably never arrived (no connection)
    the job is done again, with its video: the --force run fails, and a later plain run pays nothing."""
    from runner.providers import get_provider

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    first, prov = run(m)
    before = {j.key: (j.provider_id, j.sha256) for j in api.status(m).jobs}
    unreachable = get_provider("sim", base_url="http://127.0.0.1:9/v1")
    forced, _ = run(m, unreachable, force=True, retries=0)
    assert forced.exit_code == 1 and forced.stats.counts["done"] == 2, forced.stats.counts
    assert any("left done, as it was before this run" in e for e in forced.stats.last_errors)
    assert {j.key: (j.provider_id, j.sha256) for j in api.status(m).jobs} == before
    # `status` says why the run failed, with the jobs whose re-render it could not send
    said = [(p["key"], p["state"]) for p in api.status_json(api.status(m))["problems"]
            if p["error"].startswith("re-run not sent: never reached the provider")]
    assert sorted(said) == sorted((key, "done") for key in before), said
    plain, _ = run(m, prov)
    assert plain.exit_code == 0 and plain.stats.cached == 2 and stats(prov)["creates"] == 2
    check_outputs(m)


def test_the_done_jobs_a_force_run_could_not_send_are_cached_from_the_run_that_made_them(tmp_path: Path) -> None:
    """Put back done, as they were, by creates that never arrived: the videos are the first run's, and the run's
    figures and its record say so."""
    from runner.providers import get_provider

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    first, _ = run(m)
    forced, _ = run(m, get_provider("sim", base_url="http://127.0.0.1:9/v1"), force=True, retries=0)
    assert forced.exit_code == 1 and forced.stats.cached == 2, forced.stats
    assert [j.cached_from_run for j in api.status(m).jobs] == [first.run_id] * 2


def test_a_forced_run_killed_before_its_create_left_leaves_the_job_done(tmp_path: Path) -> None:
    """The state a --force run killed between its write-ahead intent and the create leaves (reset, then
    `submitting`): the next plain run finds no such create at the provider and keeps the earlier video."""
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    first, prov = run(m)
    job = api.status(m).jobs[0]
    store = Store(tmp_path / ".gridrun" / "state.db")
    try:
        jid = store.jobs_by_hash([job.hash])[job.hash]["id"]
        run_id = store.latest_run("t").id
        store.reset(jid, "--force")
        store.begin_submit(run_id, [jid])
    finally:
        store.close()
    second, _ = run(m, prov)
    assert second.exit_code == 0 and second.stats.counts["done"] == 1, second.stats.counts
    after = api.status(m).jobs[0]
    assert (after.provider_id, after.sha256, after.attempts) == (job.provider_id, job.sha256, 1)
    assert stats(prov)["creates"] == 1
    check_outputs(m)


def test_videos_that_cannot_be_saved_stop_new_jobs_and_count_as_spent(tmp_path: Path) -> None:
    """The output folder breaks mid-run (full, read-only; here a file where the folder was): the run stops
    sending jobs, those rendered are spent (not merely reserved), and the next run fetches them for nothing."""
    m = write_manifest(tmp_path, n_seeds=6, styles=("anime",), run={"concurrency": 1},
                       sim={"render_time": 0.2, "jitter": 0.0, "concurrency": 1})
    folder = tmp_path / "outputs" / "t" / "anime"
    broken = []

    def break_folder(s: object) -> None:
        if s.counts["done"] >= 1 and not broken:
            folder.rename(folder.with_name("anime.saved"))
            folder.write_text("not a folder")
            broken.append(True)

    prov = sim_provider(m)
    first = api.run(m, provider=prov, on_progress=break_folder, options=RunOptions(poll_interval=0.05), report=False)
    assert broken and first.exit_code == 1 and first.stats.stopping == "write-failed"
    assert first.stats.counts["planned"] >= 3 and stats(prov)["creates"] <= 3, first.stats.counts
    assert any("stopped sending new jobs: videos cannot be saved" in e for e in first.stats.last_errors)
    snap = api.status(m)
    assert snap.manifest_spent_micros == stats(prov)["billed_micros"] and snap.manifest_reserved_micros == 0
    folder.unlink()
    folder.with_name("anime.saved").rename(folder)
    second, _ = run(m, prov, poll_interval=0.05)
    assert second.exit_code == 0 and second.stats.counts["done"] == 6
    assert stats(prov)["creates"] == 6 and stats(prov)["duplicate_paid"] == 0
    assert api.status(m).manifest_spent_micros == stats(prov)["billed_micros"]
    check_outputs(m)


def test_a_video_saved_whose_sidecar_hits_a_full_disk_is_done_and_the_next_run_writes_the_sidecar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The video is whole and in place when its sidecar cannot be written (no space left): the job is done with
    its SHA-256 (a later run neither keeps it aside as a file not gridrun's nor, its URL expired, pays again),
    the run says which file failed and why and stops sending, and the next run writes the missing sidecar."""
    import errno

    import runner.outputs

    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), run={"concurrency": 1},
                       sim={"render_time": 0.1, "jitter": 0.0, "concurrency": 1, "url_ttl": 1, "refresh_urls": False})
    real = runner.outputs.atomic_write
    full: list[str] = []

    def atomic_write(path: object, data: object, **kw: object) -> None:
        if str(path).endswith(".json") and "outputs" in str(path):
            full.append(str(path))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data, **kw)

    monkeypatch.setattr(runner.outputs, "atomic_write", atomic_write)
    prov = sim_provider(m)
    first = api.run(m, provider=prov, options=RunOptions(poll_interval=0.05), report=False)
    monkeypatch.setattr(runner.outputs, "atomic_write", real)
    assert full and first.stats.stopping == "write-failed" and first.exit_code == 1
    done = [j for j in api.status(m).jobs if j.state == "done"]
    assert done and first.stats.counts["planned"] >= 1 and stats(prov)["creates"] == len(done), first.stats.counts
    for job in done:
        video = Path(job.output_path)
        assert job.sha256 == sha256(video) and not video.with_suffix(".json").exists()
        assert any(f"cannot write {video.with_suffix('.json')}: No space left on device" in e
                   for e in first.stats.last_errors), first.stats.last_errors
    time.sleep(1.2)  # the renders' URLs have expired: only the videos on disk are left of them
    second, _ = run(m, prov, poll_interval=0.05)
    assert second.exit_code == 0 and second.stats.cached == len(done) and second.stats.counts["done"] == 3
    assert stats(prov)["creates"] == 3 and stats(prov)["duplicate_paid"] == 0
    assert not (tmp_path / "outputs" / "t" / ".runs" / "superseded").exists()
    check_outputs(m)


def test_a_run_on_a_still_full_output_disk_sends_no_new_job_and_says_to_free_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The output folder takes not even the run's manifest copy (no space left): the run sends no new paid job,
    follows those in flight (whose videos cannot be saved either), shows why first however many jobs failed
    after it, and its end and `status` say to free space before `gridrun run`."""
    import errno

    import runner.resume
    from runner.cli import main
    from runner.providers import download

    m = write_manifest(tmp_path, n_seeds=8, styles=("anime",), run={"concurrency": 8},
                       sim={"render_time": 1.0, "jitter": 0.0, "concurrency": 8})
    world = tmp_path / ".gridrun" / "sim-world.jsonl"

    def creates() -> int:
        return world.read_text().count('"t":"create"')

    assert main(["run", str(m), "--no-report", "--timeout", "0.2"]) == 4  # incomplete: 8 left in flight
    assert creates() == 8
    write_manifest(tmp_path, n_seeds=12, styles=("anime",), run={"concurrency": 8},
                   sim={"render_time": 1.0, "jitter": 0.0, "concurrency": 8})  # 4 jobs more, not sent
    capsys.readouterr()

    def full(*args: object, **kw: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(args[0]))

    monkeypatch.setattr(runner.resume, "atomic_write", full)
    monkeypatch.setattr(download, "_create", full)
    assert main(["run", str(m), "--no-report"]) == 1
    out = capsys.readouterr()
    assert creates() == 8  # nothing new paid for
    lines = out.err.splitlines()
    last = max(i for i, line in enumerate(lines) if " | spent " in line)  # the run's last line: its bullets below
    shown = [line for line in lines[last + 1:] if line.startswith("  • ")]
    # what the run ended with, its last errors (5), each once, the note on why no job was sent first
    assert len(shown) == len(set(shown)) == 5 and shown[0].startswith("  • sent no new jobs: videos cannot be saved "
                                                                      "(manifest copy not written: "), shown
    assert "No space left on device; free space on its disk" in shown[0]
    outputs = tmp_path / "outputs" / "t"
    assert f"videos could not be saved in {outputs}: free space on its disk" in out.err
    monkeypatch.undo()
    main(["status", str(m)])
    assert f"next: videos could not be saved in {outputs}: free space on its disk" in capsys.readouterr().out


def test_an_output_disk_out_of_inodes_is_said_as_such_not_as_one_to_free_space_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """"No space left on device" from a disk with room but no free inode (`df -h` shows it nearly empty, `df -i`
    full): the run's errors, its end and `status` say inodes and `df -i`, not "free space on its disk", which the
    user could not act on."""
    import errno

    import runner.resume
    from runner.cli import main
    from runner.providers import download

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 1.0, "jitter": 0.0})
    assert main(["run", str(m), "--no-report", "--timeout", "0.2"]) == 4  # incomplete: left in flight
    capsys.readouterr()

    def full(*args: object, **kw: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(args[0]))

    real = os.statvfs

    def statvfs(path: Any) -> os.statvfs_result:  # room (blocks free), no inode free
        st = real(path)
        return os.statvfs_result((st.f_bsize, st.f_frsize, 1 << 20, 1 << 19, 1 << 19, 40, 0, 0, st.f_flag,
                                  st.f_namemax))

    monkeypatch.setattr(runner.resume, "atomic_write", full)
    monkeypatch.setattr(download, "_create", full)
    monkeypatch.setattr(os, "statvfs", statvfs)
    assert main(["run", str(m), "--no-report"]) == 1
    err = capsys.readouterr().err
    outputs = tmp_path / "outputs" / "t"
    assert "No space left on device; no free inodes (files) are left on its disk, though space is (`df -i`" in err
    assert f"videos could not be saved in {outputs}: no free inodes (files) are left on its disk" in err
    assert "free space on its disk" not in err
    main(["status", str(m)])
    out = capsys.readouterr().out
    assert f"next: videos could not be saved in {outputs}: no free inodes (files) are left on its disk" in out


def test_too_many_open_files_in_the_in_process_simulator_is_a_provider_error_the_run_rides_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The built-in simulator runs in the run's process: a clip it cannot encode for want of file descriptors
    is its 500 (saying what to do), which the run retries, not an exception that ends the run."""
    import errno

    from runner.sim.app import host_error
    from runner.sim.engine import Sim

    real = Sim.clip
    failures = iter(range(6))

    def clip(self: Sim, video: object) -> object:
        if next(failures, None) is not None:
            raise OSError(errno.EMFILE, "Too many open files")
        return real(self, video)

    monkeypatch.setattr(Sim, "clip", clip)
    m = write_manifest(tmp_path, n_seeds=3, sim={"render_time": 0.1, "jitter": 0.0})
    result, prov = run(m, poll_interval=0.05)
    assert next(failures, None) is None  # each failure was met
    assert result.exit_code == 0 and result.stats.counts["done"] == 6, result.stats
    assert stats(prov)["creates"] == 6 and stats(prov)["duplicate_paid"] == 0
    check_outputs(m)
    said = host_error(OSError(errno.EMFILE, "Too many open files")).message
    assert "too many open files: raise `ulimit -n` (now " in said and "or lower run.concurrency" in said


def _polled(monkeypatch: pytest.MonkeyPatch, script: list[tuple[float, Any]], *, listed: list[float] | None = None
            ) -> tuple[Any, Any, list[float]]:
    """`Executor._get` of one job against a provider that answers its polls by `script`, one (time, answer) a poll:
    the clock set to that time as it is sent, then the answer raised (an error) or returned (a status); an error
    saying "too many open files" is met with the process out of descriptors (`files_ran_out`), any other with
    descriptors to spare. `listed`: when the run's list of videos was last answered (`ListPoller.answered_at`), as
    each poll is sent. The waits before polls tried again are recorded, not slept: (what `_get` returned, the
    executor, those waits)."""
    from types import SimpleNamespace

    import anyio

    from runner import executor
    from runner.executor import Executor

    now, short, waits = [0.0], [False], []
    steps = iter(script)

    class Provider:
        async def get(self, client: Any, pid: str) -> Any:
            now[0], answer = next(steps)
            short[0] = isinstance(answer, Exception) and "too many open files" in str(answer)
            if listed:
                ex._poller = SimpleNamespace(answered_at=listed.pop(0))
            if isinstance(answer, Exception):
                raise answer
            return answer

    class Pacer:
        gate = anyio.Lock()

        async def wait(self) -> bool:
            return True

        def clock(self) -> float:
            return now[0]

        def ok(self) -> None:
            pass

        def failed(self, exc: Any, *, sent_at: float | None = None) -> None:
            pass

        def limited(self, retry_after: float | None) -> float:
            return retry_after or 1.0

    def waited(seconds: float) -> Any:
        waits.append(seconds)
        return anyio.move_on_after(0)

    async def slept(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(executor, "files_ran_out", lambda: short[0])
    monkeypatch.setattr(executor, "anyio", SimpleNamespace(Event=anyio.Event, move_on_after=waited, sleep=slept))
    ex = Executor.__new__(Executor)
    ex.steady, ex.retries, ex.provider, ex.client, ex.pacer = (lambda: now[0]), len(script), Provider(), None, Pacer()
    ex.run_id, ex._stopping, ex._stop_note, ex._refused, ex._poller = None, None, None, None, None
    ex._files_out_since, ex._files_ran_out, ex._files_out_event = None, False, None
    ex._unanswered, ex._poll_noted, ex.errors = {}, {}, []
    ex._poll_error = ex._error = ex._polls_answered = ex._budget_move = lambda *a, **kw: None
    job = SimpleNamespace(hash="h", key="seed=1")
    return anyio.run(Executor._get, ex, job, "vid-1"), ex, waits


def _short_of_files() -> Any:
    from runner.errors import ServerError

    return ServerError("GET /videos/vid-1: The simulator could not serve the request: too many open files: raise "
                       "`ulimit -n` (now 64) or lower run.concurrency.", status=500, code="INTERNAL_ERROR")


def test_a_poll_failing_otherwise_once_descriptors_are_back_waits_as_the_provider_asks() -> None:
    """Two polls fail for want of file descriptors, then the provider answers 503 with Retry-After 20 s for a minute
    (an outage): each poll of the outage waits the 20 s asked, also once FILES_OUT_AFTER has passed since the first
    descriptor failure (tried again at once, it would be a poll after poll at a provider asking to back off), and
    the run does not stop."""
    from runner.errors import ServerError
    from runner.providers.base import VideoStatus

    outage = ServerError("GET /videos/vid-1: upstream failure", status=503, code="UPSTREAM_ERROR", retry_after=20)
    done = VideoStatus(id="vid-1", status="in_progress", raw_status="in_progress")
    with pytest.MonkeyPatch.context() as mp:
        got, ex, waits = _polled(mp, [(0.0, _short_of_files()), (1.0, _short_of_files()), (3.0, outage),
                                      (16.0, outage), (40.0, outage), (60.0, done)])
    assert got is done and ex.stopping is None and not ex._files_ran_out
    assert all(w <= 15.0 for w in waits[:2]), waits  # tried again as FILES_OUT_AFTER ends at the latest
    assert waits[2:] == [20.0, 20.0, 20.0], waits


@pytest.mark.parametrize("between", ["503", "429", "400", "list"])
def test_only_an_unbroken_stretch_of_polls_failing_for_want_of_descriptors_stops_the_run(between: str) -> None:
    """A poll fails for want of file descriptors at 0 s and another at 20 s, the provider having answered between
    them (a poll answered 503, 429 or 400, or the run's list of videos answered): two short stretches, not 20 s
    of polls failing so, and the run goes on. Polls failing so from 0 s to 20 s, none answered, stop it, as
    "files-out", saying so."""
    from runner.errors import RateLimitedError, RejectedError, ServerError
    from runner.executor import FILES_OUT_AFTER
    from runner.providers.base import VideoStatus

    answered = {"503": ServerError("GET /videos/vid-1: upstream failure", status=503, code="UPSTREAM_ERROR"),
                "429": RateLimitedError("GET /videos/vid-1: slow down", status=429, code="RATE_LIMITED"),
                "400": RejectedError("GET /videos/vid-1: bad request", status=400, code="INVALID_REQUEST"),
                "list": _short_of_files()}[between]
    done = VideoStatus(id="vid-1", status="in_progress", raw_status="in_progress")
    script = [(0.0, _short_of_files()), (10.0, answered), (20.0, _short_of_files()), (30.0, done)]
    with pytest.MonkeyPatch.context() as mp:
        got, ex, _ = _polled(mp, script, listed=[-1.0, 9.0, 9.0, 9.0] if between == "list" else None)
    assert got is done and ex.stopping is None and not ex._files_ran_out
    assert 20.0 - 0.0 >= FILES_OUT_AFTER
    with pytest.MonkeyPatch.context() as mp:
        got, ex, _ = _polled(mp, [(0.0, _short_of_files()), (10.0, _short_of_files()), (20.0, _short_of_files()),
                                  (30.0, done)], listed=[-1.0] * 4)
    assert got is None and ex._files_ran_out and ex.stopping == "files-out"
    assert ex._stop_note.startswith(f"stopped: polls failed for want of file descriptors for {FILES_OUT_AFTER:g} s")


def test_a_run_stopped_for_want_of_file_descriptors_says_so_and_what_to_do_not_that_videos_were_not_saved() -> None:
    """The run's end and `status`'s `next:` for a run stopped "files-out": its polls failed for want of file
    descriptors, to raise `ulimit -n` (the limit the run had, as its jobs' errors say) or lower run.concurrency,
    then to run again, which collects the jobs left in flight at no new cost; not that videos could not be saved."""
    from runner.cli import _next_steps

    errors = [("polls failed for want of file descriptors: too many open files: raise `ulimit -n` (now 24) or lower "
               "run.concurrency; left at the provider, still reserved, and the next run collects it")]
    said = _next_steps({"running": 20}, errors=errors, files_out=True).text
    assert said == ("polls failed for want of file descriptors: raise `ulimit -n` (now 24) or lower run.concurrency "
                    "first, then `gridrun run` collects the 20 jobs left in flight at no new cost"), said
    assert _next_steps({"running": 20}, files_out=True).text.startswith(
        "polls failed for want of file descriptors: raise `ulimit -n` or lower run.concurrency first, then ")


def test_a_run_whose_videos_could_not_be_saved_for_want_of_file_descriptors_says_the_limit_it_had() -> None:
    """The run's end and `status`'s `next:` for a run stopped "write-failed" because its videos' files could not be
    opened for want of file descriptors: to raise `ulimit -n`, with the limit the run had as its jobs' errors say
    it (not the one of the process saying it), or lower run.concurrency, as for a run stopped "files-out"."""
    from runner.cli import _next_steps

    errors = [("stopped sending new jobs: videos cannot be saved (WRITE_FAILED: GET http://sim.local/files/v1.mp4: "
               "cannot write /v/outputs/demo/clay/seed-2.mp4.part: too many open files: raise `ulimit -n` (now 20) or "
               "lower run.concurrency); jobs sent go on, and the next run fetches what they render, at no cost"),
              ("download failed: WRITE_FAILED: GET http://sim.local/files/v2.mp4: cannot write "
               "/v/outputs/demo/clay/seed-3.mp4.part: too many open files: raise `ulimit -n` (now 20) or lower "
               "run.concurrency")]
    said = _next_steps({"running": 2, "done": 10}, unsaved="/v/outputs/demo", errors=errors).text
    assert said == ("videos could not be saved in /v/outputs/demo: raise `ulimit -n` (now 20) or lower "
                    "run.concurrency first, then `gridrun run` collects the 2 jobs left in flight at no new cost"), said
    unsaid = _next_steps({"running": 2}, unsaved="/v/outputs/demo", errors=["too many open files: raise `ulimit -n`"])
    assert unsaid.text.startswith(
        "videos could not be saved in /v/outputs/demo: raise `ulimit -n` or lower run.concurrency first, then ")


# Limits of descriptors below what a run of 20 at once needs, by the loop it goes on (uvloop's holds a few more of
# its own: its epoll, io_uring, wakeup and signal descriptors), each met where descriptors ran out in another place:
# the event loop's own (uvloop's loop itself, at 16, and its signals' socket pair, at 17), a module of gridrun's
# imported late (the simulator's app, at uvloop's 19), the simulator's world and its clips (Pillow's plugins, loaded
# late) and requests, the run's videos and sidecars; and where the built-in simulator, in the run's process, can no
# longer make a finished clip, so that every poll is answered "too many open files" (asyncio's 16, uvloop's 23 and
# 24)
FEW_FILES = {"asyncio": (16, 24), "uvloop": (16, 17, 19, 21, 22, 23, 24, 26)}
# The run's process with FILES_OUT_AFTER shortened, so that one whose polls fail for want of descriptors stops soon
_SHORT_OF_FILES = """
import sys
import runner.executor
runner.executor.FILES_OUT_AFTER = 1.0
sys.argv[0] = "gridrun"
from runner.entry import entry
entry()
"""


@pytest.mark.parametrize(("loop", "limit"), [(loop, n) for loop, limits in sorted(FEW_FILES.items()) for n in limits])
def test_a_run_short_of_file_descriptors_ends_with_what_to_do_not_a_traceback(
    tmp_path: Path, loop: str, limit: int
) -> None:
    """`ulimit -n` too low for `run.concurrency`, with the built-in simulator in the run's process: the run ends
    as a run does (no traceback, not recorded crashed, no polling on), and what ran out of descriptors says to
    raise the limit or lower the concurrency, and nothing else: no file of gridrun's own named (a module that could
    not be imported), no word of an event loop that could not start. A run under a limit high enough then collects
    what it left in flight at no new cost: no job was sent twice."""
    import resource
    import subprocess
    import sys

    if loop == "uvloop":
        pytest.importorskip("uvloop")
    m = write_manifest(tmp_path, n_seeds=10, run={"concurrency": 20},
                       sim={"render_time": 0.3, "jitter": 0.1, "concurrency": 20})

    def few_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRIDRUN_LOOP": loop}
    done = subprocess.run([sys.executable, "-c", _SHORT_OF_FILES, "run", str(m), "--no-report"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120, preexec_fn=few_files, check=False)
    said = done.stdout + done.stderr
    assert "Traceback" not in said and done.returncode in (0, 1), said
    assert "Too many open files" not in said, said  # said with what to do instead
    assert str(ROOT / "runner") not in said and "event loop" not in said, said
    assert done.returncode == 0 or f"raise `ulimit -n` (now {limit}) or lower run.concurrency" in said, said
    try:
        assert api.status(m).run.status in ("done", "failed"), said
    except NotRecordedError:  # out of descriptors before its run was recorded: nothing sent
        assert not (tmp_path / ".gridrun" / "sim-world.jsonl").exists(), said
    again = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(check_outputs(m)) == sorted(job.key for job in api.status(m).jobs) and len(api.status(m).jobs) == 20
    world = [json.loads(line) for line in (tmp_path / ".gridrun" / "sim-world.jsonl").read_text().splitlines()]
    creates = [r["video"]["key"] for r in world if r["t"] == "create"]
    assert len(creates) == len(set(creates)) == 20, creates


def test_a_run_whose_event_loop_cannot_open_its_files_says_what_to_do_not_aborts(tmp_path: Path) -> None:
    """Limits so low that uvloop's first loop of the process finds too few descriptors as it starts: libuv aborted
    the process where its signal lock pipe could not be opened (SIGABRT, not a word said; at 12 and 14 here, as the
    command's own files fell). Each limit ends with what to do, nothing sent, nothing recorded."""
    import resource
    import subprocess
    import sys

    pytest.importorskip("uvloop")
    m = write_manifest(tmp_path, n_seeds=2)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRIDRUN_LOOP": "uvloop"}
    ends = {}
    for limit in range(8, 17):
        def few_files(limit: int = limit) -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

        done = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120, preexec_fn=few_files, check=False)
        ends[limit] = (done.returncode, done.stdout + done.stderr)
    for limit, (code, said) in ends.items():
        assert code == 1 and f"raise `ulimit -n` (now {limit}) or lower run.concurrency" in said, (limit, code, said)
        assert "Traceback" not in said and os.devnull not in said, (limit, said)
    assert not (tmp_path / ".gridrun" / "sim-world.jsonl").exists()


def test_a_command_other_than_run_short_of_file_descriptors_says_to_raise_ulimit_n_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`gridrun cancel` under a low `ulimit -n`, with a job its run left rendering: it has no concurrency to lower,
    so it is told to raise the limit alone, as `status` and `report` are; `run` and `retry`, and a program calling
    the library (no command line), are told to lower run.concurrency too. With the limit raised, cancel cancels."""
    import resource
    import subprocess
    import sys

    from execkit import in_flight

    from runner import limits
    from runner.options import RunOptions

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 30, "jitter": 0.0})
    assert api.run(m, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    assert in_flight(m) == 1
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for limit in (12, 16, 20):
        def few_files(limit: int = limit) -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

        done = subprocess.run([sys.executable, "-m", "runner.cli", "cancel", str(m)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120, preexec_fn=few_files, check=False)
        said = done.stdout + done.stderr
        assert done.returncode == 1 and said.strip().endswith(f"too many open files: raise `ulimit -n` (now {limit})"), \
            (limit, said)
        assert "concurrency" not in said and "Traceback" not in said, said
    for line, concurrency in ((["cancel", "m.yaml"], False), (["status", "--watch"], False), (["report"], False),
                              (["run", "m.yaml"], True), (["retry", "m.yaml"], True), ((), True)):
        monkeypatch.setattr(limits, "command_in_progress", line[0] if line else "")
        assert limits.open_files_fix().endswith(" or lower run.concurrency") == concurrency, line
        assert limits.open_files_fix().startswith(limits.FILES_RAN_OUT), line
    assert in_flight(m) == 1
    done = subprocess.run([sys.executable, "-m", "runner.cli", "cancel", str(m)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and in_flight(m) == 0, done.stdout + done.stderr


def test_an_import_or_an_event_loop_failed_for_want_of_file_descriptors_says_to_raise_ulimit_n(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A module loaded late that could not be opened fails as a name its package lacks, and uvloop's loop that could
    not open its signals' socket pair then refuses to close: with the process out of descriptors, both say to raise
    `ulimit -n`, not to reinstall the package or to report a bug; the built-in simulator answers such a clip as
    too many open files. An import that fails with descriptors to spare is a package to reinstall still."""
    import errno

    from runner import limits
    from runner.cli import _unexpected_line
    from runner.entry import missing_package
    from runner.sim import app
    from runner.sim.engine import Sim

    def broken() -> ImportError:
        return ImportError("cannot import name 'ImageFile' from 'PIL'", name="PIL")

    loop = RuntimeError("Cannot close a running event loop")
    loop.__context__ = OSError(errno.EMFILE, "Too many open files")
    assert limits.too_many_open_files(loop) and _unexpected_line(loop) == limits.open_files_fix()
    monkeypatch.setattr(limits, "files_ran_out", lambda: False)
    assert "pip install --force-reinstall 'pillow" in (missing_package(broken()) or "")
    monkeypatch.setattr(limits, "files_ran_out", lambda: True)
    assert missing_package(broken()) is None and _unexpected_line(broken()) == limits.open_files_fix()

    def clip(self: Sim, video: object) -> None:
        raise broken()

    monkeypatch.setattr(Sim, "clip", clip)
    with pytest.raises(OSError) as said:
        app._clip(Sim.__new__(Sim), None)  # type: ignore[arg-type]
    assert said.value.errno == errno.EMFILE
    assert "raise `ulimit -n`" in app.host_error(said.value).message


def test_a_file_of_code_that_could_not_be_opened_for_want_of_descriptors_is_not_named_a_users_file_is(
    tmp_path: Path,
) -> None:
    """A module of gridrun's, of Python's or of a library, imported late, that could not be opened for want of file
    descriptors: what to do is said alone, not the module's path as a file the user could look at; an output or the
    state that could not be opened so is named still, and a module's file that failed otherwise is named too."""
    import errno

    import httpx

    from runner import limits
    from runner.outputs import write_problem
    from runner.sim import engine

    def emfile(name: str) -> OSError:
        return OSError(errno.EMFILE, "Too many open files", name)

    for module in (engine.__file__, os.__file__, httpx.__file__):
        assert limits.code_file(module), module
        assert write_problem(emfile(module), then="`gridrun run` again") == limits.open_files_fix()
        assert write_problem(emfile(module), folder=tmp_path) == limits.open_files_fix()
    for users in (tmp_path / "outputs" / "a.mp4", tmp_path / ".gridrun" / "state.db", ROOT / "README.md"):
        assert not limits.code_file(users), users
        assert write_problem(emfile(str(users))) == f"{users}: {limits.open_files_fix()}"
    denied = OSError(errno.EACCES, os.strerror(errno.EACCES), engine.__file__)
    assert write_problem(denied).startswith(f"{engine.__file__}: {os.strerror(errno.EACCES)}")


_STATE_SHORT_OF_FILES = """
import os, resource, sqlite3, sys
from runner.state import remedy
folder = sys.argv[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
try:
    sqlite3.connect(os.path.join(folder, "state.db")).execute("CREATE TABLE t (x)")
except sqlite3.Error as exc:
    print(remedy(exc))
for fd in held:
    os.close(fd)
try:
    sqlite3.connect(os.path.join(folder, "missing", "state.db"))
except sqlite3.Error as exc:
    print(remedy(exc))
"""


def test_the_state_that_cannot_be_opened_for_want_of_file_descriptors_says_to_raise_ulimit_n(tmp_path: Path) -> None:
    """SQLite says only "unable to open database file", whether the process ran out of file descriptors or the
    folder cannot be written: out of descriptors, what to do is to raise `ulimit -n`, not to check the folder."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _STATE_SHORT_OF_FILES, str(tmp_path)], env=env, capture_output=True,
                         text=True, timeout=60, check=True)
    short, missing = out.stdout.splitlines()
    assert short == "too many open files: raise `ulimit -n` (now 64) or lower run.concurrency", out.stdout
    assert missing == "check that the folder and its files are writable and on a local disk", out.stdout


def test_a_view_not_made_because_the_state_could_not_be_opened_for_want_of_files_says_what_to_do_once() -> None:
    """The report's own connection to the state refused for want of file descriptors: "report not rebuilt" says
    to raise `ulimit -n`, not the state's path and SQLite's words around it."""
    from runner.errors import StateError
    from runner.limits import open_files_fix
    from runner.live import _why

    exc = StateError(f"/x/.gridrun/state.db: cannot open state: unable to open database file; {open_files_fix()}")
    assert _why(exc) == open_files_fix()


def test_a_live_report_rebuild_that_failed_is_no_error_of_the_run_once_its_final_report_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report could not be rebuilt during the run (out of file descriptors a moment): once the final report
    is written, showing the run as it ended, the run's errors no longer say so; a final report that fails still
    leaves it said."""
    import errno

    from runner import live

    real = live.LiveViews._report_in_thread

    async def failed_once(self: live.LiveViews) -> None:
        real_report, self.report = self.report, lambda final: (_ for _ in ()).throw(
            OSError(errno.EMFILE, "Too many open files"))
        try:
            await real(self)
        finally:
            self.report = real_report

    monkeypatch.setattr(live.LiveViews, "_report_in_thread", failed_once)
    m = write_manifest(tmp_path, n_seeds=3, sim={"render_time": 0.3, "jitter": 0.0})
    result = api.run(m, provider=sim_provider(m), options=RunOptions(report_every=0.01))
    assert result.exit_code == 0 and result.report is not None
    assert not any("report not rebuilt" in e for e in result.stats.last_errors), result.stats.last_errors


def test_a_project_folder_moved_while_its_run_goes_on_is_said_so_where_the_report_cannot_be_rebuilt(
    tmp_path: Path,
) -> None:
    """The project folder renamed during its run: the run goes on into its open state, but the report, read from
    the state at its path, is not to be had. The run says the folder was moved, where its state is now, and what
    to run from there, once, not an exception's name or "nothing has run here"; the next run from the new place
    copies the videos into it at no cost."""
    import threading

    from execkit import in_flight, wait_for

    first = tmp_path / "R1"
    first.mkdir()
    m = write_manifest(first, n_seeds=2, styles=("anime",), sim={"render_time": 1.5, "jitter": 0.0})
    got: list[Any] = []
    ran = threading.Thread(target=lambda: got.append(api.run(m, options=RunOptions(report_every=0.05))))
    ran.start()
    try:
        wait_for(lambda: in_flight(m) == 2)
        first.rename(tmp_path / "R2")
    finally:
        ran.join()
    (result,) = got
    said = [*result.stats.last_errors, result.report_error or ""]
    moved = [e for e in said if "was moved" in e]
    assert moved and result.report is None, said
    assert all(f"its state is now {tmp_path / 'R2' / '.gridrun' / 'state.db'}" in e for e in moved), moved
    assert "gridrun run` from the folder's new place" in moved[0], moved
    assert not any("NotRecordedError" in e or "nothing has run here" in e for e in said), said
    assert len([e for e in result.stats.last_errors if e.startswith("report not rebuilt")]) <= 1, said
    assert result.moved and result.outputs_now == tmp_path / "R2" / "outputs" / "t", result
    again = api.run(tmp_path / "R2" / m.name)
    assert again.exit_code == 0 and again.stats.cached == 2, again.stats


def test_gridrun_run_says_once_at_its_end_that_a_moved_project_folder_left_its_report_unwritten(
    tmp_path: Path,
) -> None:
    """`gridrun run` of a project folder renamed during its run: under its last line, the report not written is said
    once, with what writes it (a run from the folder's new place), not listed among the run's errors and then again
    as a warning, nor beside a rebuild's failure that says the same, nor with `gridrun report`, which cannot."""
    import subprocess
    import sys

    from execkit import in_flight, wait_for

    first = tmp_path / "R1"
    first.mkdir()
    m = write_manifest(first, n_seeds=2, styles=("anime",), sim={"render_time": 1.5, "jitter": 0.0})
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "400"}
    ran = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(m)], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: in_flight(m) == 2)
        first.rename(tmp_path / "R2")
    finally:
        out, err = ran.communicate(timeout=120)
    assert ran.returncode == 0 and "Traceback" not in err, err
    # the videos written after the move went to the old place, made again: named there, with what copies them
    assert out.strip() == ("videos: R1/outputs/t/ (written where the run started: its project folder was moved while "
                           "the run went on, and `gridrun run` from the folder's new place copies them into "
                           "R2/outputs/t/ at no cost)"), out
    end = err[err.index("done 2 |"):]  # the run's last line and what follows it
    assert end.count("was moved") == 1 and "report not rebuilt" not in end, end
    assert "warning: report not written: the state folder" in end, end
    assert "from the folder's new place copies them into it at no cost and writes the report" in end, end
    assert "`gridrun report`" not in end, end


def test_the_videos_line_of_a_run_whose_project_folder_moved_names_where_the_videos_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The `videos:` line of a run whose project folder was moved while it went on: the folder's new place where no
    video was written at the old one after the move; the old place, with what copies them into the new one, where
    some were; and where the state cannot tell where it went, that they moved with it."""
    from runner.cli import _videos_said
    from runner.executor import RunResult, moved_along

    monkeypatch.chdir(tmp_path)
    was, now = tmp_path / "R1" / "outputs" / "t", tmp_path / "R2" / "outputs" / "t"
    assert moved_along(tmp_path / "R1" / ".gridrun" / "state.db", tmp_path / "R2" / ".gridrun" / "state.db",
                       was) == now
    assert moved_along(tmp_path / "R1" / ".gridrun" / "state.db", tmp_path / "R2" / ".gridrun" / "state.db",
                       tmp_path / "elsewhere" / "t") == tmp_path / "elsewhere" / "t"
    # A/proj moved to B/proj reads as A moved to B: an output folder beside the project (A/shared, absolute in its
    # manifest) did not move, and is said where it is
    from runner.executor import outputs_moved

    for folder in ("A/shared", "B/proj/outputs/t"):
        (tmp_path / folder).mkdir(parents=True)
    a, b = tmp_path / "A" / "proj" / ".gridrun" / "state.db", tmp_path / "B" / "proj" / ".gridrun" / "state.db"
    assert outputs_moved(a, b, tmp_path / "A" / "shared") == tmp_path / "A" / "shared"
    assert outputs_moved(a, b, tmp_path / "A" / "proj" / "outputs" / "t") == tmp_path / "B" / "proj" / "outputs" / "t"

    def said(**kw: Any) -> str:
        return _videos_said(RunResult(1, 0, "done", None, was, **kw))  # type: ignore[arg-type]

    assert said() == "R1/outputs/t/"
    assert said(moved=True, outputs_now=was) == "R1/outputs/t/"  # the outputs folder was not in the folder moved
    assert said(moved=True, outputs_now=now) == "R2/outputs/t/"
    assert said(moved=True) == "moved with the project folder that held R1/outputs/t/ while the run went on"
    was.mkdir(parents=True)
    assert said(moved=True, outputs_now=now) == (
        "R1/outputs/t/ (written where the run started: its project folder was moved while the run went on, and "
        "`gridrun run` from the folder's new place copies them into R2/outputs/t/ at no cost)")
    assert said(moved=True).endswith("copies them into it at no cost)")


def test_the_json_end_of_a_run_whose_project_folder_moved_names_the_videos_folder_its_videos_line_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """`gridrun run --json` of a project folder moved as its run ended, every video gone with it: the `end`
    event's `videos` is the folder's new place, as the text's `videos:` line says, not the old path that no
    longer is."""
    from runner import live
    from runner.cli import main

    first = tmp_path / "R1"
    first.mkdir()
    m = write_manifest(first, n_seeds=2, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    real = live.LiveViews.final_report

    def moved_first(self: live.LiveViews) -> Path | None:  # every video written: the folder moved before the end
        if first.exists():
            first.rename(tmp_path / "R2")
        return real(self)

    monkeypatch.setattr(live.LiveViews, "final_report", moved_first)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(m.relative_to(tmp_path)), "--json"]) == 0
    end = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert end["event"] == "end" and end["videos"] == "R2/outputs/t/", end
    assert not first.exists()
    (tmp_path / "R2").rename(first)
    assert main(["run", str(m.relative_to(tmp_path))]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "videos: R2/outputs/t/"


def test_a_changed_manifest_that_drops_jobs_still_in_flight_is_refused_until_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Jobs the last run sent render on (paid); a changed prompt makes them jobs of no plan, which no run
    would follow. The run refuses, recording nothing, and says how to collect them; --leave-in-flight runs."""
    from runner.cli import main
    from runner.errors import InFlightError

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 2.0, "jitter": 0.0})
    first, prov = run(m, timeout=0.2)
    assert first.stats.counts["submitted"] + first.stats.counts["running"] == 2
    m.write_text(m.read_text().replace("a fox,", "a cat,"))
    with pytest.raises(InFlightError, match=r"2 jobs of run 1 \(\$0\.\d\d\) are in flight, .*: 2 sent, not yet seen finished \(`gridrun cancel`"):
        run(m, prov)
    assert api.status(m).run.id == 1 and stats(prov)["creates"] == 2  # nothing recorded, nothing sent
    assert main(["run", str(m), "--no-report"]) == 1
    assert "--leave-in-flight" in capsys.readouterr().err
    prov.app.state.sim.configure({"render_time": 0.1})  # the new jobs render at once
    second, _ = run(m, prov, leave_in_flight=True, poll_interval=0.1)
    assert second.exit_code == 0 and stats(prov)["creates"] == 4
    third, _ = run(m, prov)  # asked once: the next run does not ask again
    assert third.exit_code == 0 and third.stats.cached == 2


def test_a_plan_run_after_its_file_was_edited_keeps_the_planned_manifest_as_its_copy_which_collects_its_jobs(
    tmp_path: Path,
) -> None:
    """A plan made, then its file edited, then the plan run (a notebook's cells): the run's copy (run-N.yaml, the
    state's) is the manifest that made the jobs it sent, so putting that copy back, as the refusal over jobs left
    in flight advises, plans those jobs again and collects them, each paid once."""
    from runner.errors import InFlightError
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 2.0, "jitter": 0.0})
    was = m.read_text()
    plan = api.plan(m)
    m.write_text(was.replace("a fox,", "a cat,"))
    first, prov = run(plan, sim_provider(m), timeout=0.2)
    assert first.stats.counts["submitted"] + first.stats.counts["running"] == 2
    copy = tmp_path / "outputs" / "t" / ".runs" / "run-1.yaml"
    assert copy.read_text() == was
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        assert store.manifest_copy(1) == was
    m.write_text(was.replace("a fox,", "a dog,"))
    with pytest.raises(InFlightError, match="run 1's copy: .*run-1.yaml"):
        run(m, prov)
    shutil.copy(copy, m)
    second, _ = run(m, prov, poll_interval=0.1)
    assert second.exit_code == 0 and second.stats.counts["done"] == 2
    assert stats(prov)["creates"] == 2 and stats(prov)["duplicate_paid"] == 0
    check_outputs(m)


def test_plan_says_in_the_runs_words_that_a_run_would_refuse_over_jobs_left_in_flight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`gridrun plan` shows what a run would do: over jobs the changed manifest drops while they render, that the
    run refuses, as the run says it; its JSON names them. Once the manifest is put back, nothing is said."""
    from runner.cli import main
    from runner.errors import InFlightError

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 2.0, "jitter": 0.0})
    was = m.read_text()
    _, prov = run(m, timeout=0.2)
    m.write_text(was.replace("a fox,", "a cat,"))
    with pytest.raises(InFlightError) as refused:
        run(m, prov)
    capsys.readouterr()
    assert main(["plan", str(m)]) == 0
    assert f"warning: `gridrun run` would refuse to start: {refused.value}\n" in capsys.readouterr().err
    assert main(["plan", str(m), "--json"]) == 0
    left = json.loads(capsys.readouterr().out)["left_in_flight"]
    assert left == {"run": 1, "jobs": ["style=anime,seed=1", "style=anime,seed=2"], "cost_usd": 0.7,
                    "cost_micros": 700_000, "manifest_copy": str(tmp_path / "outputs" / "t" / ".runs" / "run-1.yaml"),
                    "message": str(refused.value)}
    m.write_text(was)
    assert main(["plan", str(m), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["left_in_flight"] is None
    assert main(["plan", str(m)]) == 0 and "refuse" not in capsys.readouterr().err


def test_one_job_left_in_flight_by_a_changed_manifest_is_named_in_the_singular(tmp_path: Path) -> None:
    from runner.errors import InFlightError

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 2.0, "jitter": 0.0})
    first, prov = run(m, timeout=0.2)
    m.write_text(m.read_text().replace("a fox,", "a cat,"))
    with pytest.raises(InFlightError) as exc:
        run(m, prov)
    text = str(exc.value)
    assert text.startswith("1 job of run 1 ($0.35) is in flight, and the manifest no longer has it ("), text
    assert "This run would not follow it." in text and "(what it renders is then not downloaded)" in text


def test_a_state_store_that_cannot_be_written_is_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only state.db opens (SQLite reads it) and fails at the first write."""
    import sqlite3

    from runner.cli import main
    from runner.state import Store

    def read_only(self: object, **kw: object) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(Store, "start_run", read_only)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    assert main(["run", str(m), "--no-report"]) == 1
    out = capsys.readouterr().err
    db = tmp_path / ".gridrun" / "state.db"
    assert f"the state store {db} cannot be used: attempt to write a readonly database; nothing was sent: check " \
           "that the folder and its files are writable and on a local disk, then `gridrun run` again" in out, out


def _disk_full_once_a_job_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Any, Any]:
    """A manifest of 12 jobs whose run's state disk fills once the first job renders (every commit then fails), the
    simulator's provider every `api` call gets, and the executor's own `_follow` (to put back for the next run)."""
    from runner import executor as ex_mod

    follow = ex_mod.Executor._follow

    async def disk_full(self, *args, **kw):
        if not isinstance(self.store.db, FullDisk):
            self.store.db = FullDisk(self.store.db)
        return await follow(self, *args, **kw)

    monkeypatch.setattr(ex_mod.Executor, "_follow", disk_full)
    m = write_manifest(tmp_path, n_seeds=6, styles=("anime", "clay"), sim={"render_time": 0.5})
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    return m, prov, follow


def test_a_state_store_whose_disk_fills_during_the_run_stops_it_with_an_error_and_the_next_run_pays_nothing_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state's disk full once the first job renders, its commits fail (the deferred writes', the next
    intents'): the run ends with what that means and what to do, not the task group's traceback, and sends no
    job it could not record first; the next run collects the jobs sent and pays for none twice."""
    from runner import executor as ex_mod
    from runner.cli import main

    m, prov, follow = _disk_full_once_a_job_renders(tmp_path, monkeypatch)
    assert main(["run", str(m), "--no-report"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err and "ExceptionGroup" not in err, err
    assert f"error: the state store {tmp_path / '.gridrun' / 'state.db'} cannot be used: database or disk is full; " \
           "the run stopped sending jobs. Those it sent go on at the provider, and none was paid twice" in err, err
    assert "free space on its disk, then `gridrun run` again, which collects them at no new cost" in err
    sent = stats(prov)["creates"]
    assert 1 <= sent <= 4  # those whose intents were committed before the disk filled (concurrency 4)
    monkeypatch.setattr(ex_mod.Executor, "_follow", follow)
    assert main(["run", str(m), "--no-report"]) == 0
    assert api.status(m).counts["done"] == 12 and stats(prov)["creates"] == 12


def test_a_state_held_in_a_write_transaction_by_another_program_names_the_file_and_what_to_close(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sqlite3 shell (or a database browser) holds the state in a write transaction as a run begins: the run
    waits for it, then stops before sending anything, naming the state file of `state_dir:` and the program to
    close, not a folder to make writable."""
    from runner import state as state_mod
    from runner.cli import main

    monkeypatch.setattr(state_mod, "BUSY_TIMEOUT", 0.1)
    monkeypatch.setattr(state_mod, "BUSY_PATIENCE", 0.35)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), extra={"state_dir": "kept"})
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert main(["run", str(m), "--no-report"]) == 0
    db = tmp_path / "kept" / "state.db"
    capsys.readouterr()
    with closing(sqlite3.connect(db, isolation_level=None, timeout=0)) as other:
        other.execute("BEGIN IMMEDIATE")
        assert main(["run", str(m), "--no-report"]) == 1
        other.execute("ROLLBACK")
    err = " ".join(capsys.readouterr().err.split())
    assert f"error: the state store {db} cannot be used: database is locked; nothing was sent: another process " \
           "holds state.db in a write transaction, not a gridrun run (this gridrun holds the runner lock): a sqlite3 " \
           "shell or a database browser, say; close it (or end its transaction), then `gridrun run` again" in err, err
    assert stats(prov)["creates"] == 1
    assert api.runs(m)[0].run.status == "done"  # the refused run was never recorded


def test_a_run_waits_past_the_busy_timeout_for_another_programs_write_transaction_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mid-run, a database browser holds the state in a write transaction longer than SQLite's busy timeout:
    the run says why it waits (nothing else moves meanwhile) and goes on once it is closed, not stopped; its
    last errors then say, in the past tense, how long it waited, no longer asking to close the program."""
    from runner import executor as ex_mod
    from runner import state as state_mod

    monkeypatch.setattr(state_mod, "BUSY_TIMEOUT", 0.1)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.3})
    others: list[sqlite3.Connection] = []  # the browser, opened once the run made the state
    told: list[str] = []
    follow, busy = ex_mod.Executor._follow, ex_mod.Executor._state_busy

    async def held(self, *args, **kw):
        if not others:
            self.store.flush()  # the run's deferred writes committed: the state is free for the browser to take
            others.append(sqlite3.connect(self.store.path, isolation_level=None, timeout=0))
            others[0].execute("BEGIN IMMEDIATE")
        return await follow(self, *args, **kw)

    def closed(self, waited: float, ended: bool) -> None:
        busy(self, waited, ended)
        told.append(self.errors[-1])
        if not ended:
            others[0].execute("ROLLBACK")

    monkeypatch.setattr(ex_mod.Executor, "_follow", held)
    monkeypatch.setattr(ex_mod.Executor, "_state_busy", closed)
    try:
        result, prov = run(m)
    finally:
        for other in others:
            other.close()
    assert result.exit_code == 0 and result.stats.counts["done"] == 2, result.stats
    assert told and told[0].startswith(f"state.db ({tmp_path / '.gridrun' / 'state.db'}) is held in a write "
                                       "transaction by another process, not gridrun"), told
    assert "close it" in told[0] and stats(prov)["creates"] == 2
    db = tmp_path / ".gridrun" / "state.db"
    said = [e for e in result.stats.last_errors if e.startswith(f"state.db ({db})")]
    assert len(told) == 2 and said == [told[1]], (told, result.stats.last_errors)
    assert re.fullmatch(rf"state\.db \({re.escape(str(db))}\) was held in a write transaction by another process, "
                        r"not gridrun: the run waited \d+ s for it, nothing else moving; it ended", said[0]), said


def test_jobs_whose_submit_a_held_state_stopped_are_shown_planned_with_nothing_reserved_as_status_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program holds state.db while a run commits its jobs' attempts, past BUSY_PATIENCE: the run stops
    having sent nothing, and its progress shows those jobs planned with nothing reserved, as `status` says, not
    their cost still reserved for a send that never happened."""
    from runner import executor as ex_mod
    from runner import state as state_mod
    from runner.errors import StateWriteError
    from runner.state import Store

    monkeypatch.setattr(state_mod, "BUSY_TIMEOUT", 0.1)
    monkeypatch.setattr(state_mod, "BUSY_PATIENCE", 0.25)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime", "clay"))
    others: list[sqlite3.Connection] = []  # the browser, opened as the run commits its first attempts
    made: list[Any] = []
    begin_submit, init = Store.begin_submit, ex_mod.Executor.__init__

    def held(self: Store, *args: Any, **kw: Any) -> Any:
        if not others:
            self.flush()  # the run's deferred writes committed: the state is free for the browser to take
            others.append(sqlite3.connect(self.path, isolation_level=None, timeout=0))
            others[0].execute("BEGIN IMMEDIATE")
        return begin_submit(self, *args, **kw)

    def kept(self: Any, *args: Any, **kw: Any) -> None:
        init(self, *args, **kw)
        made.append(self)

    monkeypatch.setattr(Store, "begin_submit", held)
    monkeypatch.setattr(ex_mod.Executor, "__init__", kept)
    try:
        with pytest.raises(StateWriteError, match="database is locked; the run stopped sending jobs"):
            run(m, concurrency=2)
    finally:
        for other in others:
            other.close()
    shown = made[0].statistics()
    assert shown.counts["planned"] == 2 and shown.counts["submitting"] == 0, shown.counts
    assert shown.reserved_micros == api.status(m).reserved_micros == 0, shown.reserved_micros


def test_a_full_output_disk_names_the_file_not_written_and_a_run_with_its_jobs_done_stays_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The output folder's disk full: `report` and `export` name the file they could not write and say to free
    space; a run whose jobs are all done cached ends `done` (exit 0), the manifest copy and the report it could
    not write said as such, not recorded as crashed."""
    from runner import outputs
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert main(["run", str(m)]) == 0
    out_dir = tmp_path / "outputs" / "t"
    capsys.readouterr()

    def full(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "write", full)
    assert main(["report", str(m)]) == 1
    assert f"error: {out_dir / 'report.html'}: No space left on device; free space on its disk, then `gridrun " \
           "report` again" in " ".join(capsys.readouterr().err.split())
    assert main(["export", str(m), "--format", "csv"]) == 1
    assert f"error: {out_dir / 'results.csv'}: No space left on device; free space on its disk, then `gridrun " \
           "export` again" in " ".join(capsys.readouterr().err.split())
    assert main(["run", str(m)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"manifest copy not written (the state keeps it): {out_dir / '.runs' / 'run-2.yaml'}: No space left on " \
           "device; free space on its disk" in err, err
    assert f"report not written: {out_dir / 'report.html'}: No space left on device; free space on its disk" in err
    assert api.status(m).run.status == "done" and stats(prov)["creates"] == 1


@pytest.mark.parametrize("new_jobs", [True, False])
def test_a_full_output_disk_as_cached_videos_are_copied_to_new_paths_fails_the_run_saying_to_free_space(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, new_jobs: bool
) -> None:
    """The output template changed, so done videos are to be copied to their new paths, on a full disk: the run
    sends nothing, ends `failed` as a download that cannot be saved does (not `crashed`), `status` says to free
    space first, and `status --runs` does not count the videos it never touched as made earlier; with room, the
    next run copies them."""
    from runner import outputs
    from runner.cli import main

    monkeypatch.setenv("COLUMNS", "400")
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",))
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert main(["run", str(m), "--no-report"]) == 0
    write_manifest(tmp_path, n_seeds=2, styles=("anime", "clay") if new_jobs else ("anime",))
    m.write_text(m.read_text().replace("{{ style }}/seed-{{ seed }}.mp4", "{{ style }}/take-{{ seed }}.mp4"))
    capsys.readouterr()

    def full(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "write", full)
    assert main(["run", str(m), "--no-report"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    if new_jobs:
        assert "sent no new jobs: videos cannot be saved (the videos of 2 done jobs, whole where they were, not " \
               "copied to their new paths: " in err and "No space left on device; free space on its disk" in err, err
        assert "some jobs did not finish" in err, err
    else:  # every job done, none to send or follow: the copies alone are said, not jobs unfinished or in flight
        assert "the videos of 2 done jobs, whole where they were, not copied to their new paths: " in err, err
        assert "No space left on device; free space on its disk; the next run with room copies them" in err, err
        assert "the videos of 2 done jobs were not copied to their new paths (whole where they were): " in err, err
        assert "sent no new jobs" not in err and "jobs in flight are followed" not in err, err
        assert "did not finish" not in err, err
    monkeypatch.undo()
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    snap = api.status(m)
    assert snap.run.status == "failed" and snap.stopping == "write-failed" and stats(prov)["creates"] == 2
    assert main(["status", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "free space on its disk (or make it writable) first" in said, said
    assert main(["status", str(m), "--runs"]) == 0
    said = capsys.readouterr().out
    line = next(ln for ln in said.splitlines() if ln.strip().startswith("2 "))
    assert "made earlier" not in line and "2 not copied" in line, said
    again = api.run(m, report=False)
    assert again.exit_code == 0 and again.stats.cached == 2
    assert (tmp_path / "outputs" / "t" / "anime" / "take-1.mp4").is_file()
    assert stats(prov)["creates"] == (4 if new_jobs else 2)


def test_a_cached_videos_copy_whose_sidecar_does_not_fit_is_taken_back_not_kept_aside_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills between a done video's copy to its new path and its sidecar's: the copy, which no sidecar
    names, is removed with the failure, so that the next run copies it again rather than keep it aside as a file
    not gridrun's."""
    import errno

    from runner import outputs

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    first, prov = run(m)
    m.write_text(m.read_text().replace("{{ style }}/seed-{{ seed }}.mp4", "{{ style }}/take-{{ seed }}.mp4"))
    real = outputs.atomic_write

    def full(path: Any, data: bytes, *args: Any, **kwargs: Any) -> None:
        if Path(path).name == "take-1.json":
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(path))
        real(path, data, *args, **kwargs)

    monkeypatch.setattr(outputs, "atomic_write", full)
    assert run(m, prov)[0].status == "failed"
    monkeypatch.setattr(outputs, "atomic_write", real)
    take = first.outputs_dir / "anime" / "take-1.mp4"
    assert not take.exists() and (first.outputs_dir / "anime" / "seed-1.mp4").is_file()
    again, _ = run(m, prov)
    assert again.exit_code == 0 and again.stats.cached == 1 and take.is_file()
    assert not (first.outputs_dir / ".runs" / "superseded").exists()
    assert not list(first.outputs_dir.rglob("*.mp4.*")) and stats(prov)["creates"] == 1


def test_an_input_image_spoilt_after_the_plan_leaves_its_job_unsent_not_the_run(tmp_path: Path) -> None:
    """The request is built just before the create: an image no longer the one planned (here no longer an image)
    leaves that job unsent and planned (no create sent), and the run goes on with the others."""
    png = tmp_path / "fox.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32 + b"\x00\x00\x00\x00IEND\xaeB`\x82")
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1},
                       extra={"params": {"prompt": "a fox {{ seed }}", "quality": "360p", "duration": 5,
                                         "input_reference": "fox.png"}})
    p = api.plan(m)
    png.write_text("no longer an image")
    prov = sim_provider(m)
    result = api.run(p, provider=prov, report=False)
    assert result.exit_code == 1 and result.stats.counts["planned"] == 2, result.stats.counts
    assert all("not sent: input_reference: " in (j.error or "") and "changed since the plan" in (j.error or "")
               for j in api.status(m).jobs)
    assert stats(prov)["creates"] == 0


@pytest.mark.parametrize("value", [float("nan"), float("-inf"), range(3), {"a": [1, float("inf")]}])
def test_a_request_no_json_carries_is_rejected_not_sent_and_the_run_goes_on(tmp_path: Path, value: Any) -> None:
    """A plan made by a library caller (or an older planner) with a value no JSON carries: its request cannot be
    written, so it certainly was not sent. The job ends rejected, nothing reserved or billed, not left submitting;
    the other jobs are sent and done."""
    import dataclasses

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1},
                       extra={"params": {"prompt": "a fox {{ seed }}", "quality": "360p", "duration": 5,
                                         "motion_strength": 0.5}})
    p = api.plan(m)
    bad = p.jobs[0]._replace(params={**p.jobs[0].params, "motion_strength": value})
    p = dataclasses.replace(p, jobs=(bad, *p.jobs[1:]))
    prov = sim_provider(m)
    result = api.run(p, provider=prov, report=False)
    assert result.exit_code == 1, result
    assert result.stats.counts["rejected"] == 1 and result.stats.counts["done"] == 1, result.stats.counts
    jobs = {j.key: j for j in api.status(m).jobs}
    refused = jobs[bad.key]
    assert refused.state == "rejected" and "not sent: " in (refused.error or "")
    assert "motion_strength" in (refused.error or "") and "JSON" in (refused.error or "")
    assert stats(prov)["creates"] == 1
    snap = api.status(m)
    assert snap.reserved_micros == 0 and snap.spent_micros == p.jobs[1].cost_micros


def test_a_run_that_fails_while_it_sets_up_is_recorded_as_crashed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not left `running`, which `status` would call a killed run to resume."""
    from runner import resume

    def broken(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(resume, "_put_aside", broken)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    with pytest.raises(OSError, match="No space left"):
        run(m)
    assert api.status(m).run.status == "crashed"


@pytest.mark.parametrize(("knob", "value", "problem"), [
    ("poll_interval", 1e308, "poll_interval must be a finite number at most 3,600, got 1e+308"),
    ("concurrency", 10**20, "concurrency must be an integer at most 10,000, got 100000000000000000000"),
    ("retries", 101, "retries must be an integer at most 100, got 101"),
])
def test_knobs_so_large_a_run_would_never_end_are_refused(knob: str, value: float, problem: str) -> None:
    from runner.errors import UsageError

    with pytest.raises(UsageError, match=re.escape(problem)):
        RunOptions(**{knob: value})


def test_a_manifest_knob_above_its_most_is_a_located_error(tmp_path: Path) -> None:
    from runner.errors import ManifestError, ManifestErrors

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"poll_interval": 1e308})
    with pytest.raises((ManifestError, ManifestErrors), match=r"run\.poll_interval"):
        api.plan(m)


def test_plan_calls_an_altered_video_what_the_run_will_do_with_it(tmp_path: Path) -> None:
    """`plan` said "cached" for a video whose file was there but altered; the run then fetched it again."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    run(m)
    jobs = api.status(m).jobs
    with open(jobs[0].output_path, "ab") as f:
        f.write(b"tail")
    reasons = api.diff(api.plan(m)).reasons
    assert reasons[jobs[0].key] == "done, but its file is missing or altered: download again"
    assert reasons[jobs[1].key].startswith("cached")


def test_a_runs_recorded_spending_is_what_it_sent_and_what_it_followed(tmp_path: Path) -> None:
    """The run that follows jobs an earlier one sent counts them, as its budget does: status said $0.00 for
    it while its own progress said $0.70."""
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 1.0, "jitter": 0.0})
    first, prov = run(m, timeout=0.2)
    assert first.stats.counts["done"] == 0 and first.stats.spent_micros == 0
    second, _ = run(m, prov, poll_interval=0.1)
    assert second.stats.counts["done"] == 2 and second.stats.spent_micros == 700_000
    snap = api.status(m)
    assert (snap.run.id, snap.spent_micros, snap.reserved_micros) == (2, 700_000, 0)
    assert snap.manifest_spent_micros == stats(prov)["billed_micros"] == 700_000
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        assert store.money(1) == (0, 0)  # sent by run 1, billed when run 2 saw them complete


def test_status_and_the_report_name_the_run_that_sent_the_jobs_a_run_followed_and_paid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run stopped by a state it could not write (its disk full once the first job renders) leaves the jobs
    it sent in flight, their answers or ends not recorded; the next run finds them by key or id, follows them,
    and counts what they were billed, as its budget does. Its spending read as if it had sent them all:
    `status` and the report now say which part is for creates run 1 sent, naming it."""
    from runner import executor as ex_mod
    from runner.cli import main

    m, prov, follow = _disk_full_once_a_job_renders(tmp_path, monkeypatch)
    assert main(["run", str(m), "--no-report"]) == 1
    sent = stats(prov)["creates"]
    monkeypatch.setattr(ex_mod.Executor, "_follow", follow)
    capsys.readouterr()
    assert main(["run", str(m), "--no-report"]) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert stats(prov)["creates"] == 12  # none sent twice
    snap = api.status(m)
    assert snap.run.id == 2 and sorted(j.sent_run for j in snap.jobs) == [1] * sent + [2] * (12 - sent)
    assert all(j.paid_run == 2 for j in snap.jobs)  # followed by run 2: its spending, as its budget counted them
    one = sent == 1
    note = (f"of it, {usd_text(350_000 * sent)} for {sent} job{'' if one else 's'} run 1 sent, left in flight "
            f"there and billed while this run followed {'it' if one else 'them'}")
    assert f"spent $4.20: {note}" in said, said  # the run's end says it too
    assert main(["status", str(m)]) == 0
    assert note in capsys.readouterr().out
    assert note in api.report(m).read_text(encoding="utf-8")


def test_a_forced_run_killed_between_a_reset_and_its_new_attempt_leaves_the_job_done(tmp_path: Path) -> None:
    """The reset is committed, then the new attempt's intent: a kill between the two left the job planned with
    no attempt to void, and the next plain run paid for it again."""
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    first, prov = run(m)
    job = api.status(m).jobs[0]
    with Store(tmp_path / ".gridrun" / "state.db") as store:
        store.reset(store.jobs_by_hash([job.hash])[job.hash]["id"], "--force")
    assert api.status(m).jobs[0].state == "planned"
    second, _ = run(m, prov)
    assert second.exit_code == 0 and second.stats.cached == 2 and stats(prov)["creates"] == 2
    after = api.status(m).jobs[0]
    assert (after.state, after.provider_id, after.sha256) == ("done", job.provider_id, job.sha256)
    check_outputs(m)


def test_a_forced_job_whose_request_cannot_be_built_is_left_done_not_rejected(tmp_path: Path) -> None:
    png = tmp_path / "fox.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32 + b"\x00\x00\x00\x00IEND\xaeB`\x82")
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1},
                       extra={"params": {"prompt": "a fox {{ seed }}", "quality": "360p", "duration": 5,
                                         "input_reference": "fox.png"}})
    first, prov = run(m)
    before = api.status(m).jobs[0]
    p = api.plan(m)
    png.write_text("no longer an image")
    forced = api.run(p, provider=prov, options=RunOptions(force=True), report=False)
    assert forced.exit_code == 1 and forced.stats.counts["done"] == 1, forced.stats.counts
    after = api.status(m).jobs[0]
    assert (after.state, after.sha256) == ("done", before.sha256) and stats(prov)["creates"] == 1


def test_two_manifests_sharing_a_state_folder_count_each_render_once_and_alike(tmp_path: Path) -> None:
    """Manifest b follows jobs (the same requests) that a run of manifest a sent: the render is b's money in
    its run's figures and in its manifest's, and a's in neither."""
    a = write_manifest(tmp_path, n_seeds=1, styles=("anime",), name="a", sim={"render_time": 1.0, "jitter": 0.0})
    b = write_manifest(tmp_path, n_seeds=1, styles=("anime",), name="b", sim={"render_time": 1.0, "jitter": 0.0})
    first, prov = run(a, timeout=0.2)
    second, _ = run(b, prov, poll_interval=0.1)
    assert second.stats.counts["done"] == 1
    snap_b, snap_a = api.status(b), api.status(a)
    assert snap_b.spent_micros == snap_b.manifest_spent_micros == 350_000
    assert snap_a.spent_micros == snap_a.manifest_spent_micros == 0


def _interrupted_force(m: Path, key: str, *, begun: bool) -> None:
    """The state a --force run killed mid-way leaves for the job `key`: reset, and its intent `begun` or not."""
    from runner.state import Store

    with Store(m.parent / ".gridrun" / "state.db") as store:
        row = next(r for r in store.run_job_rows(store.latest_run("t").id) if r["key"] == key)
        store.reset(row["id"], "--force")
        if begun:
            store.begin_submit(store.latest_run("t").id, [row["id"]])


def test_a_job_a_killed_force_left_reset_keeps_its_video_when_the_manifest_changes(tmp_path: Path) -> None:
    """Put back as it was before the changed plan can write over its file: aside, and found again later."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    first, prov = run(m)
    old = {j.key: j.sha256 for j in api.status(m).jobs}
    _interrupted_force(m, "style=anime,seed=1", begun=False)
    text = m.read_text()
    m.write_text(text.replace("a fox, {{ style }} style", "a fox, {{ style }} style{{ ' v2' if seed == 1 else '' }}"))
    second, _ = run(m, prov)
    assert second.exit_code == 0 and stats(prov)["creates"] == 3
    aside = list((tmp_path / "outputs" / "t" / ".runs" / "superseded").rglob("seed-1.mp4"))
    assert [sha256(f) for f in aside] == [old["style=anime,seed=1"]]
    m.write_text(text)
    third, _ = run(m, prov)
    assert third.exit_code == 0 and third.stats.cached == 2 and stats(prov)["creates"] == 3
    assert {j.key: j.sha256 for j in api.status(m).jobs} == old
    check_outputs(m)


def test_jobs_a_killed_force_left_submitting_follow_a_changed_output_template(tmp_path: Path) -> None:
    """Their videos are copied to the new names, as a plain run's are: not taken for lost and `expired` (here
    the provider's URLs have expired, so fetching them again would fail)."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",),
                       sim={"render_time": 0.1, "jitter": 0.0, "refresh_urls": False})
    first, prov = run(m)
    assert first.exit_code == 0
    for key in ("style=anime,seed=1", "style=anime,seed=2"):
        _interrupted_force(m, key, begun=True)
    prov.app.state.sim.configure({"url_ttl": 0})
    m.write_text(m.read_text().replace("output: '{{ style }}/seed-{{ seed }}.mp4'", "output: v2/{{ style }}-{{ seed }}.mp4"))
    second, _ = run(m, prov)
    assert second.exit_code == 0 and second.stats.counts["done"] == 2, second.stats.counts
    assert stats(prov)["creates"] == 2
    assert sorted(Path(j.output_path).relative_to(tmp_path / "outputs" / "t").as_posix() for j in api.status(m).jobs) \
        == ["v2/anime-1.mp4", "v2/anime-2.mp4"]
    check_outputs(m)


def test_retry_unknown_without_a_request_log_sends_again_and_keeps_the_attempt_it_settles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider's log cannot say whether the lost create arrived, and it does not honour keys: retry
    --unknown sends the job again with a new key, as asked, and keeps the attempt it settles on record; it
    neither voids it nor puts the job back as it was."""
    import dataclasses

    from runner.state import Store

    _settle_soon(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"retries": 0},
                       sim={"render_time": 0.1, "jitter": 0.0, "honour_idempotency": False})
    prov = sim_provider(m)
    prov.caps = dataclasses.replace(prov.caps, honours_idempotency_keys=False)
    first, _ = run(m, prov)
    no_log = {"route": "requests", "fault": "server_error", "p": 1.0, "status": 503}
    prov.app.state.sim.configure({"script": [{"route": "create", "fault": "reset_after", "p": 1.0}, no_log]})
    forced, _ = run(m, prov, force=True, request_timeout=3.0)  # unknown once the log is a timeout and LOG_SETTLE late
    assert forced.stats.counts["unknown"] == 1, forced.stats.counts
    prov.app.state.sim.configure({"script": [no_log]})
    again, _ = run(m, prov, retry_unknown=True, poll_interval=0.1, request_timeout=3.0)
    assert again.exit_code == 0 and again.stats.counts["done"] == 1, again.stats.counts
    assert stats(prov)["creates"] == 3
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        jid = store.jobs_by_hash([api.status(m).jobs[0].hash])[api.status(m).jobs[0].hash]["id"]
        assert [(a["n"], a["state"]) for a in store.attempts(jid)] == [(1, "done"), (2, "failed"), (3, "done")]


def test_plan_calls_a_job_a_killed_force_left_reset_what_the_next_run_will_find(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    run(m)
    _interrupted_force(m, "style=anime,seed=1", begun=False)
    d = api.diff(api.plan(m))
    assert d.reasons["style=anime,seed=1"].startswith("cached") and d.new == 0


def test_failure_retries_send_a_failed_job_again_in_the_same_run(tmp_path: Path) -> None:
    """Each new attempt is a new paid create, up to run.failure_retries per job; by default none."""
    fail_twice = [{"route": "create", "nth": [1, 2], "fault": "job_failure", "code": "UPSTREAM_ERROR"}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"script": fail_twice})
    plain, prov = run(m)
    assert plain.exit_code == 1 and plain.stats.counts["failed"] == 1 and stats(prov)["creates"] == 1

    (tmp_path / "again").mkdir()
    m = write_manifest(tmp_path / "again", n_seeds=1, styles=("anime",), sim={"script": fail_twice},
                       run={"failure_retries": 2})
    result, prov = run(m)
    assert result.exit_code == 0 and result.stats.counts["done"] == 1, result.stats.counts
    assert stats(prov)["creates"] == 3 and stats(prov)["duplicate_paid"] == 0
    s = result.stats  # its pace counts the job once, not once per failed render
    assert round(s.per_minute * min(300.0, s.elapsed) / 60) == 1, (s.per_minute, s.elapsed)
    job = api.status(m).jobs[0]
    assert job.attempts == 3 and job.state == "done"
    assert result.stats.spent_micros == job.cost_micros  # the failed renders were not billed
    check_outputs(m)

    (tmp_path / "short").mkdir()
    m = write_manifest(tmp_path / "short", n_seeds=1, styles=("anime",), sim={"script": fail_twice},
                       run={"failure_retries": 1})
    short, prov = run(m)
    assert short.exit_code == 1 and short.stats.counts["failed"] == 1 and stats(prov)["creates"] == 2


def test_failure_retries_are_not_spent_on_a_failure_that_would_repeat(tmp_path: Path) -> None:
    """A render refused by content moderation fails alike when the same request is sent again: with two failure
    retries allowed, the run makes one create, the job ends failed, and its error (the run's last errors, `status`)
    says it was not sent again and what to change."""
    moderated = [{"route": "create", "nth": [1, 2, 3], "fault": "job_failure", "code": "CONTENT_POLICY_VIOLATION"}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"script": moderated},
                       run={"failure_retries": 2})
    result, prov = run(m)
    assert result.exit_code == 1 and result.stats.counts["failed"] == 1 and stats(prov)["creates"] == 1
    (job,) = api.status(m).jobs
    assert job.state == "failed" and job.attempts == 1
    said = "not sent again by run.failure_retries: CONTENT_POLICY_VIOLATION would repeat for the same request"
    assert said in (job.error or "") and "change the prompt" in (job.error or ""), job.error
    assert any(said in e for e in result.stats.last_errors), result.stats.last_errors


@pytest.mark.parametrize("code", ["moderation", "nsfw"])
def test_a_lone_lower_case_word_in_the_providers_code_field_is_read_as_its_code(tmp_path: Path, code: str) -> None:
    """A gateway's code field of one word in lower case, no underscore ("moderation", "nsfw"), is the provider's
    code all the same: a verdict the same request meets again, on which no failure retry is spent."""
    moderated = [{"route": "create", "nth": [1, 2, 3], "fault": "job_failure", "code": code}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"script": moderated},
                       run={"failure_retries": 2})
    result, prov = run(m)
    assert result.exit_code == 1 and result.stats.counts["failed"] == 1 and stats(prov)["creates"] == 1
    (job,) = api.status(m).jobs
    said = f"not sent again by run.failure_retries: {code} would repeat for the same request"
    assert job.state == "failed" and job.attempts == 1 and said in (job.error or ""), job.error


def test_a_lone_lower_case_word_is_a_code_only_from_the_code_field_not_from_free_text() -> None:
    """Read from the provider's structured code field, a single lower-case word is a code; in a recorded message's
    free text, a word before a colon is not (it needs an underscore there), nor is gridrun's own "failed" given
    for a failure with no code."""
    from runner.options import failure_code

    assert failure_code("moderation", "moderation: The content was flagged.") == "moderation"
    assert failure_code(" NSFW ", "NSFW: flagged") == "NSFW"
    assert failure_code("moderation_blocked", "moderation_blocked: blocked") == "moderation_blocked"
    assert failure_code(None, "failed: the render failed: moderation") is None
    assert failure_code(None, "failed: the provider gave no reason") is None
    assert failure_code("the render failed", "the render failed: flagged: moderation") is None
    assert failure_code(None, "failed: CONTENT_POLICY_VIOLATION: flagged") == "CONTENT_POLICY_VIOLATION"


@pytest.mark.parametrize("code", ["INTERNAL_ERROR", "TIMEOUT", "SOME_NEW_CODE"])
def test_failure_retries_are_spent_on_a_failure_that_may_pass_when_sent_again(tmp_path: Path, code: str) -> None:
    """A transient failure (or one of a code gridrun does not know) is sent again, up to run.failure_retries."""
    fail_twice = [{"route": "create", "nth": [1, 2], "fault": "job_failure", "code": code}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"script": fail_twice},
                       run={"failure_retries": 2})
    result, prov = run(m)
    assert result.exit_code == 0 and result.stats.counts["done"] == 1 and stats(prov)["creates"] == 3
    assert "would repeat" not in " ".join(result.stats.last_errors)


def test_a_failure_retry_a_killed_run_left_unsent_is_not_made_when_its_failure_would_repeat(tmp_path: Path) -> None:
    """A failure retry an earlier gridrun decided after a moderation failure, never sent (the process killed): the
    next run allowing failure retries does not make it; the job stays failed, no create sent."""
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"script": [
        {"route": "create", "nth": 1, "fault": "job_failure", "code": "CONTENT_POLICY_VIOLATION"}]})
    result, prov = run(m)
    assert result.stats.counts["failed"] == 1 and stats(prov)["creates"] == 1
    db = tmp_path / ".gridrun" / "state.db"
    with closing(Store(db)) as store:
        (jid,) = [r["id"] for r in store.db.execute("SELECT id FROM jobs")]
        error = store.job_row(jid)["error"]
        store.reset(jid, f"failure retry 1 of 2, after: {error}")  # as an earlier gridrun left it, unsent
    again, prov2 = run(m, failure_retries=2)
    assert again.exit_code == 1 and stats(prov2)["creates"] == 0, stats(prov2)
    (job,) = api.status(m).jobs
    assert job.state == "failed" and job.attempts == 1, job


def test_cancel_of_jobs_the_changed_manifest_dropped_says_how_to_collect_them(tmp_path: Path) -> None:
    """They finished before the cancel reached them: a plain run would refuse to start over them, so cancel
    points at the manifest copy that collects them."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.5, "jitter": 0.0})
    api.run(m, options={"timeout": 0.2}, report=False)
    m.write_text(m.read_text().replace("a fox,", "a cat,"))
    time.sleep(0.7)
    result = api.cancel(m)
    assert sorted(result.finished) == sorted(result.dropped) and len(result.dropped) == 2, result
    assert result.copy is not None and result.copy.is_file() and "a fox," in result.copy.read_text()


def test_cancel_stops_a_job_an_earlier_run_left_rendering_that_a_run_with_leave_in_flight_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1 leaves 2 jobs rendering; the manifest drops one and run 2 (--leave-in-flight) leaves the other. The
    dropped one is in no latest run, yet still reserved and paid for at the provider: `status` says what holds
    that reserve and that `cancel` stops it, and `cancel` cancels both, after which nothing stays reserved."""
    from runner.cli import main

    monkeypatch.setenv("COLUMNS", "400")
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 30.0, "jitter": 0.0})
    assert api.run(m, options={"timeout": 0.2}, report=False).status == "incomplete"
    write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 30.0, "jitter": 0.0})
    second = api.run(m, options={"timeout": 0.2, "leave_in_flight": True}, report=False)
    assert second.status == "incomplete" and second.run_id == 2
    snap = api.status(m)
    assert (snap.reserved_micros, snap.manifest_reserved_micros) == (350_000, 700_000)
    assert snap.left_rendering == (("style=anime,seed=2", 1, 350_000),)
    capsys.readouterr()
    assert main(["status", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert ("$0.35 of it reserved by 1 job run 1 sent, left in flight (style=anime,seed=2): run 2 does not have it, "
            "so no run follows it; `gridrun cancel` cancels it at the provider") in said, said
    result = api.cancel(m)
    assert sorted(result.cancelled) == ["style=anime,seed=1", "style=anime,seed=2"], result
    assert not (result.still_running or result.dropped or result.errors)
    snap = api.status(m)
    assert (snap.reserved_micros, snap.manifest_reserved_micros, snap.left_rendering) == (0, 0, ())
    assert main(["status", str(m)]) == 0 and "left in flight" not in capsys.readouterr().out


def test_what_cancel_is_charged_for_jobs_ended_runs_left_counts_in_the_spent_of_the_run_that_sent_them(
    tmp_path: Path,
) -> None:
    """Run 1 leaves 2 jobs rendering and ends; the manifest drops one and run 2 (--leave-in-flight) leaves the other
    and ends. `cancel` is charged for both (`cancel_charge`), which run 1 sent: each run's figures, kept as it left
    its jobs, have them as cancelled, run 1's spent counts both charges (as its export's `paid_in_run` does) and no
    run reserves them, so that the runs' spent sum to what the manifest spent."""
    from runner.export import export_rows
    from runner.state import Store

    sim = {"render_time": 30.0, "jitter": 0.0, "cancel_charge": 0.5}
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim=sim)
    assert api.run(m, options={"timeout": 0.2}, report=False).status == "incomplete"
    write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim=sim)
    assert api.run(m, options={"timeout": 0.2, "leave_in_flight": True}, report=False).run_id == 2
    assert sorted(api.cancel(m).cancelled) == ["style=anime,seed=1", "style=anime,seed=2"]
    charged = api.status(m).manifest_spent_micros
    assert charged == 2 * round(api.plan(m).jobs[0].cost_micros * 0.5)
    assert api.run(m, report=False).run_id == 3  # run 2 is now shown as it left its jobs too
    assert {s.run.id: (s.spent_micros, s.reserved_micros) for s in api.runs(m)} == \
           {3: (0, 0), 2: (0, 0), 1: (charged, 0)}
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        first, second = (store.snapshot(n, manifest_name="t") for n in (1, 2))
    assert (first.spent_micros, first.reserved_micros, second.spent_micros, second.reserved_micros) == \
           (charged, 0, 0, 0)
    assert [j.state for j in (*first.jobs, *second.jobs)] == ["cancelled"] * 3
    rows = export_rows(first)
    assert [r["paid_in_run"] for r in rows] == [1, 1], rows
    assert sum(r["cost_this_run_usd"] for r in rows) == pytest.approx(charged / 1e6)


def test_status_of_a_job_left_rendering_says_cancel_waits_for_the_live_run_and_names_the_copy_that_collects_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While run 2 holds the state `cancel` refuses: `status` says it cancels the job run 1 left rendering once run
    2 ends, and, as `cancel` does, that the manifest put back as run 1 had it collects it."""
    from runner.cli import main

    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(tmp_path)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 30.0, "jitter": 0.0})
    api.run(m, options={"timeout": 0.2}, report=False)
    write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 30.0, "jitter": 0.0})
    seen: list[str] = []

    def look(_: object) -> None:
        if not seen and api.status(m).run.id == 2:
            main(["status", str(m)])
            seen.append(" ".join(capsys.readouterr().out.split()))

    api.run(m, options={"timeout": 1.0, "leave_in_flight": True}, report=False, on_progress=look)
    copy = ("put the manifest back as the run that sent it had it (outputs/t/.runs/run-1.yaml): copy it back to t.yaml "
            "and run that to collect it")
    assert f"`gridrun cancel` cancels it at the provider once run 2 ends, or {copy}" in seen[0], seen
    assert main(["status", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert f"`gridrun cancel` cancels it at the provider, or {copy}" in said, said


def test_cancel_names_a_job_an_earlier_run_left_that_finished_first_with_that_runs_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job run 1 left rendering and run 2 (--leave-in-flight) left too, finished before `cancel`: named with run
    1's copy of the manifest that collects it, and recorded rendered and paid, so that it is no longer reserved and
    `status` names that copy, not `cancel` (which has nothing left to do); a run does not refuse to start over it
    (run 2 does not have it), and the manifest put back downloads it, paying nothing more."""
    from runner.cli import main

    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(tmp_path)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.5, "jitter": 0.0})
    api.run(m, options={"timeout": 0.2}, report=False)
    write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.5, "jitter": 0.0})
    assert api.run(m, options={"leave_in_flight": True}, report=False).exit_code == 0
    time.sleep(0.5)
    capsys.readouterr()
    assert main(["cancel", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert ("1 job finished or still rendering that the manifest no longer has (style=anime,seed=2): put the "
            "manifest back as the run that sent it had it (outputs/t/.runs/run-1.yaml)") in said, said
    assert said.endswith(": copy it back to t.yaml and run that to download the job; a run of the manifest as it is "
                         "leaves it"), said
    cost = api.plan(m).jobs[0].cost_micros
    snap = api.status(m)
    assert (snap.left_rendering, snap.left_rendered) == ((), (("style=anime,seed=2", 1, cost),))
    assert (snap.manifest_spent_micros, snap.manifest_reserved_micros) == (2 * cost, 0)
    assert api.status_json(snap)["left_rendered"][0]["manifest_copy"] == str(tmp_path / "outputs/t/.runs/run-1.yaml")
    assert main(["status", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert (f"1 job run 1 sent rendered and paid (${cost / 1e6:,.2f}), not downloaded (style=anime,seed=2): run 2 "
            "does not have it; put the manifest back as the run that sent it had it (outputs/t/.runs/run-1.yaml): "
            "copy it back to t.yaml and run that to download it") in said, said
    assert "gridrun cancel" not in said, said
    assert main(["cancel", str(m)]) == 0 and "nothing in flight to cancel" in capsys.readouterr().out
    assert api.run(m, report=False).exit_code == 0  # not refused over it
    shutil.copy(tmp_path / "outputs/t/.runs/run-1.yaml", m)
    again = api.run(m, report=False)
    assert again.exit_code == 0 and again.stats.spent_micros == 0 and len(check_outputs(m)) == 2
    assert {s.run.id: s.spent_micros for s in api.runs(m)} == {4: 0, 3: 0, 2: cost, 1: cost}


def test_a_manifest_copy_removed_by_hand_is_written_again_from_the_state_before_a_message_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The output folder's .runs/ tidied by hand: `cancel` writes run 1's copy again from the state before naming
    it; `status`, which writes nothing, says it is missing and that `status --manifest-copy 1` writes it again."""
    from runner.cli import main

    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(tmp_path)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.5, "jitter": 0.0})
    was = m.read_text()
    api.run(m, options={"timeout": 0.2}, report=False)
    write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.5, "jitter": 0.0})
    assert api.run(m, options={"leave_in_flight": True}, report=False).exit_code == 0
    copy = tmp_path / "outputs/t/.runs/run-1.yaml"
    shutil.rmtree(copy.parent)
    time.sleep(0.5)
    capsys.readouterr()
    assert main(["cancel", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "put the manifest back as the run that sent it had it (outputs/t/.runs/run-1.yaml)" in said, said
    assert copy.read_text() == was
    copy.unlink()
    assert main(["status", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert ("(outputs/t/.runs/run-1.yaml; it is missing: `gridrun status t.yaml --manifest-copy 1` writes it again "
            "from the state): copy it back to t.yaml and run that to download it") in said, said
    assert not copy.exists()
    assert main(["status", str(m), "--manifest-copy", "1"]) == 0
    assert capsys.readouterr().out == "run 1's manifest copy: outputs/t/.runs/run-1.yaml\n"
    assert copy.read_text() == was
    assert main(["status", str(m)]) == 0 and "missing" not in capsys.readouterr().out


def test_a_manifest_copy_is_found_and_written_only_in_the_output_folder_of_the_manifest_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project moved: `status --manifest-copy 1` names the copy in its output folder now, never making the
    folder the run recorded (the old project's path, or the mount point of an output disk not mounted); a copy
    removed where no manifest's output folder may take it is given as text on stdout, nothing written."""
    from runner.cli import main

    monkeypatch.setenv("COLUMNS", "400")
    old = tmp_path / "a"
    old.mkdir()
    m = write_manifest(old, n_seeds=1, styles=("anime",))
    was = m.read_text()
    assert api.run(m, report=False).exit_code == 0
    new = tmp_path / "b"
    old.rename(new)
    monkeypatch.chdir(new)
    capsys.readouterr()
    assert main(["status", "t.yaml", "--manifest-copy", "1"]) == 0
    assert capsys.readouterr().out == "run 1's manifest copy: outputs/t/.runs/run-1.yaml\n"
    assert not old.exists()
    (new / "outputs/t/.runs/run-1.yaml").unlink()
    for argv in (["status", "t.yaml"], ["status"], ["status", "--state", ".gridrun"]):  # with and without a manifest
        assert main([*argv, "--manifest-copy", "1"]) == 0, argv
        said = capsys.readouterr()
        assert said.out == was, argv
        assert "run 1's manifest copy is missing and was not written again" in " ".join(said.err.split()), said.err
        assert not old.exists() and not (new / "outputs/t/.runs/run-1.yaml").exists()


def test_the_refusal_over_jobs_left_in_flight_writes_the_copy_it_names_again_when_it_was_removed(tmp_path: Path) -> None:
    from runner.errors import InFlightError

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 2.0, "jitter": 0.0})
    was = m.read_text()
    _, prov = run(m, timeout=0.2)
    copy = tmp_path / "outputs" / "t" / ".runs" / "run-1.yaml"
    shutil.rmtree(copy.parent)
    m.write_text(was.replace("a fox,", "a cat,"))
    left = api.diff(api.plan(m)).left_behind
    assert left is not None and left.copy == copy and "missing" not in left.message()
    assert copy.read_text() == was
    copy.unlink()
    with pytest.raises(InFlightError, match="run 1's copy: .*run-1.yaml\\) "):
        run(m, prov)
    assert copy.read_text() == was


def test_cancel_stops_the_jobs_of_a_manifest_mid_edit_and_takes_the_runs_copy_the_messages_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manifest that no longer loads (a typo mid-edit) while its jobs render: `cancel` takes it as the state
    recorded it for its run, says so, and stops its jobs, not those of another manifest sharing the state; and
    `cancel <outputs>/.runs/run-N.yaml`, the copy messages name, acts in the state that run wrote in."""
    from runner.cli import main

    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(tmp_path)
    slow = {"render_time": 30.0, "jitter": 0.0}
    a = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim=slow)
    b = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim=slow, name="b",
                       extra={"params": {"prompt": "an owl, {{ style }} style", "quality": "360p", "duration": 5}})
    for m in (a, b):
        api.run(m, options={"timeout": 0.2}, report=False)
    flying = ("submitted", "running")
    assert sum(api.status(b).counts[s] for s in flying) == 2
    a.write_text(a.read_text() + "matrix: [oops\n")
    capsys.readouterr()
    assert main(["cancel", "t.yaml"]) == 0
    out, err = capsys.readouterr()
    assert "cancelled 2 jobs at the provider" in out, (out, err)
    assert err.startswith("warning: t.yaml does not load (t.yaml:"), err
    assert "cancelling the jobs of 't' with the manifest as its run 1 had it" in " ".join(err.split()), err
    assert sum(api.status(b).counts[s] for s in flying) == 2  # another manifest's: left alone
    assert main(["cancel", "outputs/b/.runs/run-2.yaml"]) == 0
    out, err = capsys.readouterr()
    assert "cancelled 2 jobs at the provider" in out and not err, (out, err)
    assert api.status(b).counts["cancelled"] == 2


def test_status_of_a_manifest_mid_edit_reads_its_state_as_cancel_does_with_the_same_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manifest that no longer loads (a typo mid-edit) while its run goes on: `status` (plain, --runs, --json,
    --watch, --manifest-copy) takes it as the state recorded it for its latest run, as `cancel` does, with the
    same warning; a manifest file no state records is refused as before."""
    from runner.cli import main

    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(tmp_path)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 30.0, "jitter": 0.0})
    api.run(m, options={"timeout": 0.2}, report=False)
    m.write_text(m.read_text() + "matrix: [oops\n")
    warning = "showing the runs of 't' with the manifest as its run 1 had it (the state keeps its copy)"
    for extra in ([], ["--runs"], ["--json"], ["--watch", "--json"], ["--manifest-copy", "1"]):
        capsys.readouterr()
        code = main(["status", "t.yaml", *extra])
        out, err = capsys.readouterr()
        assert code in (0, 4), (extra, code, out, err)  # a watch exits with the run's code: incomplete
        assert err.startswith("warning: t.yaml does not load (t.yaml:"), (extra, err)
        assert warning in " ".join(err.split()) and "error" not in err, (extra, err)
        assert ("run 1" if not extra else "t" if extra == ["--runs"] else "1") in out, (extra, out)
    assert json.loads(main_out(main, capsys, ["status", "t.yaml", "--json"]))["run"] == 1
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "t.yaml").write_text(m.read_text())
    assert main(["status", "elsewhere/t.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: elsewhere/t.yaml:") and "warning" not in err, err


def main_out(main: Any, capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out


def test_a_failure_retry_the_budget_stops_leaves_the_job_failed_in_every_figure(tmp_path: Path) -> None:
    fail_first = [{"route": "create", "nth": [1], "fault": "job_failure", "code": "UPSTREAM_ERROR"}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime", "clay"), sim={"script": fail_first},
                       run={"concurrency": 1, "failure_retries": 1})
    one = api.plan(m).jobs[0].cost_micros / 1e6
    result, prov = run(m, budget_usd=one, allow_partial=True)
    counts = {k: v for k, v in result.stats.counts.items() if v}
    assert counts == {"done": 1, "failed": 1} and result.exit_code == 1 and result.status == "failed", counts
    assert sorted(j.state for j in api.status(m).jobs) == ["done", "failed"]
    assert stats(prov)["creates"] == 2


def test_a_409_to_a_create_is_no_refusal_the_key_is_looked_up_and_sent_again(tmp_path: Path) -> None:
    """A 409 says the provider knows the attempt's key (in progress, or used): something may have been made
    with it. Not `rejected` (nothing paid), which `retry` would pay for again: found by its key, or sent again
    with the same key."""
    conflict = [{"route": "create", "nth": [1], "fault": "server_error", "status": 409}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"script": conflict, "render_time": 0.1})
    result, prov = run(m)
    assert result.exit_code == 0 and result.stats.counts["done"] == 1, result.stats.counts
    assert stats(prov)["creates"] == 1 and stats(prov)["duplicate_paid"] == 0


def test_a_create_answered_with_another_jobs_video_is_not_taken_for_its_own(tmp_path: Path) -> None:
    """Two jobs, and the provider answers the second create with the first job's video (a replay gone wrong):
    the second job is unknown, not filed with the first's video and cost."""
    from runner.providers.base import VideoStatus

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 1},
                       sim={"render_time": 0.1, "concurrency": 1})
    prov = sim_provider(m)
    real = prov.submit
    first: list[VideoStatus] = []

    async def replaying(client: Any, body: Any) -> VideoStatus:
        status = await real(client, body)
        first.append(status)
        return first[0]

    prov.submit = replaying  # type: ignore[method-assign]
    result, _ = run(m, prov)
    counts = {k: v for k, v in result.stats.counts.items() if v}
    assert counts == {"done": 1, "unknown": 1}, counts
    unknown = next(j for j in api.status(m).jobs if j.state == "unknown")
    assert f"answered with video {first[0].id}, which job" in (unknown.error or "")
    assert len(check_outputs(m)) == 1


def test_creates_that_fail_every_time_with_nothing_in_the_request_log_are_not_unknown(tmp_path: Path) -> None:
    """502 to every create, and the request log (read after each) has no video for the key: nothing was paid,
    so the job is planned again (sent by the next run), not unknown with its cost held back."""
    failing = [{"route": "create", "p": 1, "fault": "server_error", "status": 502}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"script": failing}, run={"retries": 0})
    result, prov = run(m)
    assert result.stats.counts["planned"] == 1 and result.stats.counts["unknown"] == 0, result.stats.counts
    assert result.stats.reserved_micros == 0 and stats(prov)["creates"] == 0
    job = api.status(m).jobs[0]
    assert job.state == "planned" and "its request log has no video for this attempt (nothing paid)" in (job.error or "")



def test_jobs_refused_for_the_balance_are_sent_by_the_next_plain_run_once_it_is_topped_up(tmp_path: Path) -> None:
    """A create refused for the account (402) made nothing: the job is planned again, the refusal its error, not
    `rejected` (which only `retry` sends); after a top-up a plain run sends it and the rest, each paid once."""
    m = write_manifest(tmp_path, n_seeds=4, styles=("anime",), run={"concurrency": 1},
                       sim={"render_time": 0.05, "jitter": 0.0, "balance": 0.7,  # two videos of $0.35
                            # no balance endpoint (404): only the create refused says the balance is too low
                            "script": [{"route": "balance", "p": 1, "fault": "not_found"}]})
    first, prov = run(m)
    assert first.exit_code == 1 and first.stats.stopping == "fatal"
    assert first.stats.counts["done"] == 2 and first.stats.counts["planned"] == 2 and not first.stats.counts["rejected"]
    assert stats(prov)["creates"] == 2 and first.stats.reserved_micros == 0
    refused = [j for j in api.status(m).jobs if j.error]
    assert len(refused) == 1 and refused[0].state == "planned" and refused[0].attempts == 0
    assert "not sent, nothing paid" in refused[0].error and "INSUFFICIENT_BALANCE" in refused[0].error
    prov.app.state.sim.configure({"balance": 10.0})  # topped up
    second, _ = run(m, prov)
    assert second.exit_code == 0 and second.stats.counts["done"] == 4 and second.stats.cached == 2
    assert stats(prov)["creates"] == 4 and stats(prov)["duplicate_paid"] == 0
    assert all(j.state == "done" and j.attempts == 1 for j in api.status(m).jobs)


# A model gridrun is told of (a capabilities file) that the simulator does not know: it answers 404 MODEL_NOT_FOUND.
UNKNOWN_MODEL_CAPS = """\
provider: sim
models:
  pixverse-v9:
    params:
      prompt: {type: string, required: true}
      seed: {type: integer}
      quality: {type: string, enum: [360p, 540p], default: 540p}
      duration: {type: integer, enum: [5], default: 5}
    prices: {currency: USD, base_5s: {360p: 0.35, 540p: 0.35}, duration_factor: {5: 1.0}}
"""


@pytest.mark.parametrize(("model", "fault", "code"), [
    ("pixverse-v9", None, "MODEL_NOT_FOUND"),
    ("pixverse-v5.6", {"route": "create", "p": 1, "fault": "model_disabled"}, "MODEL_DISABLED"),
])
def test_a_model_the_provider_does_not_take_stops_the_run_at_the_first_refusal(
    tmp_path: Path, model: str, fault: dict[str, Any] | None, code: str
) -> None:
    """Every job of the run asks for its one model: a 404 MODEL_NOT_FOUND or MODEL_DISABLED stops the run as a
    refused key or balance does, so at most the creates already under way are sent, not one per job. Nothing was
    made: the jobs stay planned, nothing paid or reserved, and the run ends `refused` (exit 1)."""
    (tmp_path / "caps.yaml").write_text(UNKNOWN_MODEL_CAPS)
    m = write_manifest(tmp_path, n_seeds=20, styles=("anime", "clay"), run={"concurrency": 3},
                       sim={"script": [fault] if fault else []},
                       extra={"model": model, "capabilities": ["caps.yaml"]})
    result, prov = run(m)
    assert (result.exit_code, result.status, result.refused) == (1, "refused", code)
    assert 1 <= stats(prov)["requests"]["create"] <= 3 and stats(prov)["creates"] == 0, stats(prov)
    assert result.stats.counts["planned"] == 40 and not result.stats.counts["rejected"], result.stats.counts
    assert (result.stats.spent_micros, result.stats.reserved_micros) == (0, 0)
    jobs = api.status(m).jobs
    assert all(j.state == "planned" and j.attempts == 0 for j in jobs)
    assert any(code in (j.error or "") and "nothing paid" in (j.error or "") for j in jobs)


def test_a_refused_resend_of_a_create_that_may_have_been_taken_is_unknown_not_rejected(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first send is taken and billed but its answer lost, the log cannot be read, and the resend is refused
    (402): `rejected` would say nothing was paid, and `retry` would pay again."""
    _settle_soon(monkeypatch)
    script = [{"route": "create", "nth": [1], "fault": "reset_after_create"},
              {"route": "requests", "p": 1.0, "fault": "server_error", "status": 503},
              {"route": "create", "nth": [2], "fault": "insufficient_balance"}]
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"script": script, "render_time": 0.1},
                       run={"retries": 1})
    result, prov = run(m)
    job = api.status(m).jobs[0]
    assert job.state == "unknown" and "may have been paid" in (job.error or ""), (job.state, job.error)
    assert stats(prov)["creates"] == 1 and result.stats.reserved_micros == job.cost_estimate_micros


def test_a_resend_that_cannot_connect_after_a_lost_answer_is_unknown_not_voided(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An earlier send may have reached the provider: that this one could not connect proves nothing of it."""
    _settle_soon(monkeypatch)
    from runner.errors import ConnectError, OutcomeUnknownError

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1}, run={"retries": 1})
    prov = sim_provider(m)
    submit = prov.submit
    calls: list[int] = []

    async def lossy(client: Any, body: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            await submit(client, body)
            raise OutcomeUnknownError("the answer was lost")
        raise ConnectError("could not connect; the request was not sent")

    async def no_log(*args: Any, **kw: Any) -> Any:
        raise LookupError("no request log")

    prov.submit, prov.find_by_key = lossy, no_log  # type: ignore[method-assign]
    result, _ = run(m, prov)
    job = api.status(m).jobs[0]
    assert job.state == "unknown" and job.attempts == 1, (job.state, job.error)
    assert stats(prov)["creates"] == 1 and len(calls) > 1


def test_renders_seen_late_teach_the_estimate_the_providers_own_render_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first guess too long (3 s here, 60 s for PixVerse) has the first polls come late: what the estimate
    learns is the render as the provider stamped it, not when the run got round to seeing it."""
    from runner.pacing import RenderTimes

    taught: list[float] = []
    real = RenderTimes.seen
    monkeypatch.setattr(RenderTimes, "seen", lambda self, s, job=None: (taught.append(s), real(self, s, job))[1])
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), run={"concurrency": 3},
                       sim={"render_time": 3.0, "jitter": 0.0, "concurrency": 3})
    prov = sim_provider(m)
    prov.app.state.sim.configure({"render_time": 0.2})  # renders far quicker than the manifest says
    result, _ = run(m, prov)
    assert result.exit_code == 0 and len(taught) == 3
    assert max(taught) <= 2.0 < 0.8 * 3.0, taught  # each render took 0.2 s; its completion was seen after 2.4 s


def test_a_done_jobs_missing_or_garbled_sidecar_is_written_again_from_the_state_at_no_cost(tmp_path: Path) -> None:
    """A video whole on disk whose sidecar is gone, `{}`, or another job's: the next run writes it again from
    the state (the fields the download wrote, the cost the provider reported included), fetching nothing; a
    copy made for a changed output template gets one too."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    first, prov = run(m)
    out = first.outputs_dir / "anime"
    sides = {n: out / f"seed-{n}.json" for n in (1, 2)}
    before = {n: json.loads(p.read_text()) for n, p in sides.items()}
    assert all(doc["cost_reported_usd"] is not None for doc in before.values()), before
    sides[1].unlink()
    sides[2].write_text("{}")
    second, _ = run(m, prov)
    assert second.exit_code == 0 and second.stats.cached == 2
    assert stats(prov)["creates"] == 2 and stats(prov)["downloads"] == 2
    for n, p in sides.items():
        doc = json.loads(p.read_text())
        assert set(doc) == set(before[n])
        times = ("completed_at", "downloaded_at")  # the state's clock, not the provider's or the disk thread's
        same = {k: v for k, v in doc.items() if k not in times}
        assert same == {k: v for k, v in before[n].items() if k not in times}, n
        assert all(doc[t] == pytest.approx(before[n][t], abs=2.0) for t in times)
    check_outputs(m)
    shutil.copy(sides[2], sides[1])  # names the other job
    assert run(m, prov)[0].stats.cached == 2
    assert json.loads(sides[1].read_text())["key"] == before[1]["key"]
    sides[1].unlink()
    text = m.read_text().replace("{{ style }}/seed-{{ seed }}.mp4", "{{ style }}/take-{{ seed }}.mp4")
    m.write_text(text)
    moved, _ = run(m, prov)
    assert moved.exit_code == 0 and moved.stats.cached == 2
    assert (out / "take-1.json").is_file() and json.loads((out / "take-1.json").read_text())["key"] == before[1]["key"]
    assert stats(prov)["creates"] == 2 and stats(prov)["downloads"] == 2
    check_outputs(m)
    from runner.state import Store

    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        mended = [json.loads(r[0])["was"] for r in store.db.execute(
            "SELECT detail FROM events WHERE kind='sidecar-mended' ORDER BY id")]
    assert mended == ["missing", "unreadable", "another video's", "missing"]


def test_a_re_render_whose_sidecar_was_not_written_has_the_next_run_write_its_own_over_the_earlier_takes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A --force re-render whose sidecar could not be written (a full disk) leaves the earlier take's sidecar
    beside the new video; the simulator renders the same bytes again, so hash and digest match: the next run
    still writes the sidecar of the take the state records (its provider id, attempt and run), at no cost."""
    import errno

    import runner.outputs as outputs_mod
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    first, prov = run(m)
    side = first.outputs_dir / "anime" / "seed-1.json"
    was = json.loads(side.read_text())
    real = outputs_mod.atomic_write

    def full(path: Any, data: bytes, *args: Any, **kwargs: Any) -> None:
        if os.fspath(path) == str(side):
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(path))
        real(path, data, *args, **kwargs)

    monkeypatch.setattr(outputs_mod, "atomic_write", full)
    forced, _ = run(m, prov, force=True)
    monkeypatch.setattr(outputs_mod, "atomic_write", real)
    assert forced.stats.counts["done"] == 1 and stats(prov)["creates"] == 2
    assert json.loads(side.read_text()) == was  # the earlier take's, beside the new video
    assert run(m, prov)[0].stats.cached == 1
    doc = json.loads(side.read_text())
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        row = store.db.execute("SELECT provider_id, done_run_id, attempts FROM jobs").fetchone()
        mended = [json.loads(r[0])["was"] for r in store.db.execute(
            "SELECT detail FROM events WHERE kind='sidecar-mended'")]
    assert doc["provider_id"] == row[0] != was["provider_id"], (doc, tuple(row))
    assert (doc["run_id"], doc["attempt"]) == (row[1], row[2]) == (2, 2)
    assert mended == ["another take's"] and stats(prov)["creates"] == 2


def test_a_sidecar_is_renamed_in_unsynced_and_a_power_cut_that_empties_it_is_mended(
    tmp_path: Path, disk_steps: list[str]
) -> None:
    """The video's data is synced before its rename; the sidecar, a copy of the state, is not (one fsync less
    per download); the folder's one sync after both renames keeps both names. What a power cut can leave,
    an empty sidecar, the next run writes again from the state, at no cost."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    first, prov = run(m)
    saved = [s for s in disk_steps if "seed-1" in s or s.startswith("fsync")]
    at = saved.index("rename to seed-1.mp4")
    assert saved[at - 1:at + 3] == ["fsync file", "rename to seed-1.mp4", "rename to seed-1.json", "fsync folder"]
    side = first.outputs_dir / "anime" / "seed-1.json"
    before = json.loads(side.read_text())
    side.write_bytes(b"")
    second, _ = run(m, prov)
    assert second.exit_code == 0 and second.stats.cached == 1
    assert stats(prov)["creates"] == 1 and stats(prov)["downloads"] == 1
    assert json.loads(side.read_text())["sha256"] == before["sha256"]


# No seed in the request: the simulator draws one for each render, so a forced take differs from the earlier.
_SEEDLESS = {"matrix": {"style": ["anime", "clay"]}, "output": "{{ style }}.mp4"}


def _takes(outputs: Path, job_hash: str) -> dict[str, str]:
    """The earlier takes of a job kept under .runs/superseded/: their folder's name -> the video's SHA-256."""
    folder = outputs / ".runs" / "superseded" / job_hash[:16]
    return {p.parent.name: sha256(p) for p in folder.glob("*/*.mp4")} if folder.is_dir() else {}


def test_a_forced_rerender_keeps_each_earlier_paid_take_under_superseded(tmp_path: Path) -> None:
    """--force pays for new renders; each earlier video, verified, is kept with its sidecar under
    .runs/superseded/<hash>/<sha256 prefix>/ before the new download replaces it, and the state says where.
    A second --force keeps the second take beside the first."""
    from runner.state import Store

    m = write_manifest(tmp_path, sim={"render_time": 0.1, "jitter": 0.0}, extra=_SEEDLESS)  # each render differs
    first, prov = run(m)
    jobs = {j.key: j for j in api.status(m).jobs}
    takes1 = {k: j.sha256 for k, j in jobs.items()}
    forced, _ = run(m, prov, force=True)
    assert forced.exit_code == 0 and stats(prov)["creates"] == 4
    takes2 = {j.key: j.sha256 for j in api.status(m).jobs}
    assert all(takes2[k] != takes1[k] for k in jobs)
    for key, job in jobs.items():
        assert _takes(first.outputs_dir, job.hash) == {takes1[key][:16]: takes1[key]}
        kept = first.outputs_dir / ".runs" / "superseded" / job.hash[:16] / takes1[key][:16] / Path(job.output_path).name
        side = json.loads(kept.with_suffix(".json").read_text())
        assert side["sha256"] == takes1[key] and side["attempt"] == 1 and side["provider_id"] == job.provider_id
    check_outputs(m)
    run(m, prov, force=True)
    assert stats(prov)["creates"] == 6
    for key, job in jobs.items():
        assert _takes(first.outputs_dir, job.hash) == {takes1[key][:16]: takes1[key], takes2[key][:16]: takes2[key]}
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        events = [json.loads(r[0]) for r in store.db.execute("SELECT detail FROM events WHERE kind='superseded' ORDER BY id")]
    assert sorted(e["sha256"] for e in events) == sorted([*takes1.values(), *takes2.values()])
    assert all(Path(e["path"]).is_file() and sha256(Path(e["path"])) == e["sha256"] for e in events)
    assert sorted(e["by_attempt"] for e in events) == [2, 2, 3, 3]
    check_outputs(m)


def test_a_forced_download_that_cannot_replace_the_earlier_take_leaves_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new take's rename fails after the earlier take was kept: the earlier one is still in place (and
    kept), the job waits downloading, and the next run saves the new one without paying again."""
    import runner.providers.download as download

    m = write_manifest(tmp_path, sim={"render_time": 0.1, "jitter": 0.0}, extra={**_SEEDLESS, "matrix": {"style": ["anime"]}})
    first, prov = run(m)
    job = api.status(m).jobs[0]
    video = Path(job.output_path)
    real = download.os.replace

    def refuse(src, dst, *a, **kw):
        if str(dst) == str(video):
            raise OSError(28, "No space left on device")
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(download.os, "replace", refuse)
    forced, _ = run(m, prov, force=True, retries=0)
    assert forced.stats.counts["downloading"] == 1, forced.stats.counts
    assert sha256(video) == job.sha256 and _takes(first.outputs_dir, job.hash) == {job.sha256[:16]: job.sha256}
    monkeypatch.setattr(download.os, "replace", real)
    again, _ = run(m, prov)
    assert again.exit_code == 0 and again.stats.counts["done"] == 1
    assert sha256(video) != job.sha256 and _takes(first.outputs_dir, job.hash) == {job.sha256[:16]: job.sha256}
    assert stats(prov)["creates"] == 2
    check_outputs(m)


def test_a_lost_answer_is_not_proven_unsent_by_a_log_read_before_the_create_could_have_landed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every create's answer is lost (a gateway holding the request) and the request log, read at once after each,
    has nothing yet: a create still on its way may land later and be billed, so a miss read sooner than the request
    timeout (and LOG_SETTLE) after the send proves nothing. The job is unknown, its key kept, not planned again as
    "nothing paid", which a later run would send once the provider has forgotten the key."""
    from runner import executor
    from runner.errors import OutcomeUnknownError

    monkeypatch.setattr(executor, "LOG_SETTLE", 0.05)  # the resends' pause; the request timeout stays 30 s
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1}, run={"retries": 0})
    prov = sim_provider(m)
    sent: list[str] = []

    async def held(client: Any, body: Any) -> Any:
        sent.append(body["idempotency_key"])
        raise OutcomeUnknownError("no answer within the request timeout")

    async def empty_log(*args: Any, **kw: Any) -> Any:
        return None

    prov.submit, prov.find_by_key = held, empty_log  # type: ignore[method-assign]
    result, _ = run(m, prov)
    job = api.status(m).jobs[0]
    assert job.state == "unknown" and job.attempts == 1, (job.state, job.error)
    assert result.stats.reserved_micros == job.cost_estimate_micros
    assert len(set(sent)) == 1  # every send with the attempt's one key


def test_a_lost_create_a_gateway_holds_past_the_log_reads_is_not_paid_for_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every create of the job is held by a gateway (`held`: its answer lost, the request not yet at the provider),
    so the request log, read at once after each send, has nothing. Those misses prove nothing before the request
    timeout (and LOG_SETTLE) after the send: the job is `unknown` with its key kept, not voided as "nothing paid".
    The held creates land (one video for the key), and the next run, once the provider has forgotten the key
    (`idempotency_window`), finds that video in the log: a voided job would have been sent again there, and a
    second video paid for."""
    from runner import executor

    monkeypatch.setattr(executor, "LOG_SETTLE", 0.05)  # the resends' pause; the request timeout stays 30 s
    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"retries": 0},
                       sim={"render_time": 0.1, "jitter": 0.0, "idempotency_window": 600.0,
                            "script": [{"route": "create", "p": 1.0, "fault": "held"}]})
    prov = sim_provider(m)
    sim = prov.app.state.sim
    later = 0.0
    sim.clock = lambda: time.time() + later  # the provider's clock, moved on below
    first, _ = run(m, prov)
    job = api.status(m).jobs[0]
    assert stats(prov)["creates"] == 0 and len(sim.held) >= 2  # sent again with the same key, held too
    assert sim.release_held() >= 2  # they land: one video, for the one key
    sim.configure({"script": []})
    later = 1200.0  # the key forgotten: a create with it now makes (and bills) a second video
    again, _ = run(m, prov, poll_interval=0.1)
    assert stats(prov)["creates"] == 1 and stats(prov)["duplicate_paid"] == 0, (stats(prov), job.state, job.error)
    assert job.state == "unknown" and job.attempts == 1, (job.state, job.error)
    assert first.stats.reserved_micros == job.cost_estimate_micros
    assert again.exit_code == 0 and again.stats.counts["done"] == 1, (again.stats.counts, api.status(m).jobs[0].error)
    assert api.status(m).jobs[0].attempts == 1
    check_outputs(m)


def test_a_create_whose_sends_are_all_held_is_resent_with_its_key_at_most_most_resends_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a provider that honours keys, a create whose every send a gateway holds (no answer, nothing in the log
    yet) is sent again with the same key MOST_RESENDS times, however many retries the manifest allows, then left
    `unknown`: how the provider treats a key still being processed is not published, and one that ignored it
    would bill each send once they land."""
    from runner import executor

    monkeypatch.setattr(executor, "LOG_SETTLE", 0.05)  # the resends' pause; the request timeout stays 30 s
    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"retries": 5},
                       sim={"render_time": 0.1, "jitter": 0.0,
                            "script": [{"route": "create", "p": 1.0, "fault": "held"}]})
    prov = sim_provider(m)
    sim = prov.app.state.sim
    result, _ = run(m, prov)
    job = api.status(m).jobs[0]
    assert sim.requests["create"] == len(sim.held) == 1 + executor.MOST_RESENDS, sim.requests
    assert len({body["idempotency_key"] for body, _ in sim.held}) == 1
    assert result.exit_code == 1 and job.state == "unknown" and job.attempts == 1, (job.state, job.error)
    assert sim.release_held() == 1 + executor.MOST_RESENDS
    assert stats(prov)["creates"] == 1 and stats(prov)["duplicate_paid"] == 0


def _held_lands_in_the_settle_wait(monkeypatch: pytest.MonkeyPatch, sim: Any) -> list[float]:
    """The executor's pauses as long as the request timeout (600 s here; its other pauses are under a second) are
    the wait before a miss in the request log is believed: the creates `sim` holds land there, and the pause is
    cut short. Returns those pauses' lengths, as they come."""
    from runner import executor

    long: list[float] = []
    sleep_out = executor.sleep_out

    async def waits(steady: Any, seconds: float, wake: Any = None) -> None:
        if seconds > 100.0:
            long.append(seconds)
            sim.release_held()
            seconds = 0.0
        await sleep_out(steady, seconds, wake)

    monkeypatch.setattr(executor, "sleep_out", waits)
    return long


def test_a_key_refused_with_409_is_looked_up_once_an_earlier_send_answered_5xx_could_have_landed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gateway answers the first create 502 yet holds it on its way to the provider; the sends of the same key
    after it are refused 409 (the key is known, in progress). Before the last miss would void the attempt, the
    log is read only once that create could have landed (the request timeout and LOG_SETTLE after the last
    send): it lands during that wait (the executor's one long pause, cut short here), and the log's entry is
    the job's video, downloaded. Read at once, the miss would void the job as nothing paid."""
    from runner import executor
    from runner.errors import RejectedError, ServerError

    monkeypatch.setattr(executor, "LOG_SETTLE", 0.05)
    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"retries": 0},
                       sim={"render_time": 0.1, "jitter": 0.0})
    prov = sim_provider(m)
    sim = prov.app.state.sim
    sends: list[int] = []

    async def gateway(client: Any, body: Any) -> Any:
        sends.append(len(sends) + 1)
        if len(sends) == 1:
            sim.hold(body)
            raise ServerError("HTTP 502: Simulated upstream failure", status=502, code="ALL_PROVIDERS_EXHAUSTED")
        if not sim.held:
            return await submit(client, body)
        raise RejectedError("HTTP 409: idempotency_key is in use by a request in progress", status=409,
                            code="IDEMPOTENCY_CONFLICT")

    submit = prov.submit
    prov.submit = gateway  # type: ignore[method-assign]
    waits = _held_lands_in_the_settle_wait(monkeypatch, sim)
    result, _ = run(m, prov, poll_interval=0.1, request_timeout=600.0)
    job = api.status(m).jobs[0]
    assert result.exit_code == 0 and job.state == "done" and job.attempts == 1, (job.state, job.error)
    assert len(sends) == 3 and len(waits) == 1, (sends, waits)
    assert stats(prov)["creates"] == 1 and stats(prov)["duplicate_paid"] == 0
    check_outputs(m)


def test_a_create_held_and_landing_before_the_log_is_read_is_found_where_keys_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a provider that ignores keys, a create a gateway held lands after the run gave up on its answer, while
    the run waits (the request timeout and LOG_SETTLE after the send) before it reads the request log: the log's
    entry is the job's video, downloaded; nothing is sent again (a second send would be a second paid video
    there). Read at once, the log would have had nothing."""
    from runner import executor

    monkeypatch.setattr(executor, "LOG_SETTLE", 0.05)
    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"retries": 0},
                       sim={"render_time": 0.1, "jitter": 0.0, "honour_idempotency": False,
                            "script": [{"route": "create", "nth": 1, "fault": "held"}]})
    prov = sim_provider(m)
    assert not prov.caps.honours_idempotency_keys
    sim = prov.app.state.sim
    waits = _held_lands_in_the_settle_wait(monkeypatch, sim)
    result, _ = run(m, prov, poll_interval=0.1, request_timeout=600.0)
    job = api.status(m).jobs[0]
    assert result.exit_code == 0 and job.state == "done" and job.attempts == 1, (job.state, job.error)
    assert len(waits) == 1 and sim.requests["create"] == 1
    assert stats(prov)["creates"] == 1 and stats(prov)["duplicate_paid"] == 0, stats(prov)
    check_outputs(m)


def test_a_video_fetched_again_keeps_what_its_render_counted_when_first_seen(tmp_path: Path) -> None:
    """A done job's missing video is fetched again at no cost: what the provider now says the render cost (its
    figure read anew) rewrites neither the job's cost nor what the run that paid for it spent."""
    from runner.export import summary

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    first, prov = run(m)
    assert first.exit_code == 0 and first.stats.spent_micros == 700_000
    Path(api.status(m).jobs[0].output_path).unlink()
    prov.app.state.sim.configure({"cost_factor": 1.5})  # the provider's figure for the same video now reads $0.525
    again, _ = run(m, prov)
    assert again.exit_code == 0 and again.stats.spent_micros == 0 and stats(prov)["creates"] == 2
    assert {j.cost_micros for j in api.status(m).jobs} == {350_000}
    with closing(sqlite3.connect(tmp_path / ".gridrun" / "state.db")) as db:
        assert {r[0] for r in db.execute("SELECT billed_micros FROM attempts")} == {350_000}
    assert summary(api.status(m))["cost_by_run"] == {str(first.run_id): 0.7}
    check_outputs(m)


@pytest.mark.parametrize(("rule", "told"), [
    ({"fault": "server_error", "status": 502}, "polls fail, still polling: HTTP 502"),
    ({"fault": "malformed_json"}, "polls fail, still polling: HTTP 200, MALFORMED_RESPONSE"),
    ({"fault": "unknown_status", "value": "rendering"}, "provider reports an unknown status 'rendering'"),
])
def test_polls_that_keep_failing_are_told_once_per_job_and_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rule: dict[str, Any], told: str
) -> None:
    """A gateway answering every poll with an error page (or what gridrun cannot read) is told among the last
    errors, which `status` shows too: once per job and kind of failure, not once per poll; and no longer once a
    poll is answered, so that a run that ended done does not end saying its polls fail."""
    from runner import executor as ex_mod
    monkeypatch.setattr(ex_mod, "backoff", lambda attempt, retry_after: 0.05)
    monkeypatch.setattr(ex_mod, "HEARTBEAT", 0.01)  # the last errors seen many times while the polls fail
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"poll_interval": 0.1},
                       sim={"script": [{"route": "get", "nth": list(range(1, 9)), **rule}]})
    prov = sim_provider(m)
    seen: list[tuple[str, ...]] = []
    result = api.run(m, provider=prov, options=RunOptions(), report=False,
                     on_progress=lambda s: seen.append(s.last_errors))
    assert result.exit_code == 0 and stats(prov)["requests"]["get"] >= 9
    told_lines = {e for errors in seen for e in errors if told in e}
    assert len(told_lines) == 1, seen  # not once per poll
    assert "more job" not in next(iter(told_lines)) and "video_" not in next(iter(told_lines))
    assert not [e for e in result.stats.last_errors if told in e], result.stats.last_errors  # answered since
    assert all(not j.error for j in api.status(m).jobs)  # answered again: no longer said in `status`


def test_a_long_pause_a_poll_is_asked_for_is_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 429 on a poll asking to wait long holds every request: the run says so, as it does for a create."""
    from runner import pacing
    from runner.sim.config import SimConfig
    from runner.sim.serve import running_server
    monkeypatch.setattr(pacing, "MAX_PAUSE", 0.1)
    monkeypatch.setenv("LUMENFALL_API_KEY", "k")
    config = SimConfig.from_dict({"render_time": 0.2, "jitter": 0.0, "script": [
        {"route": "get", "nth": 1, "fault": "rate_limited", "retry_after": 3000, "retry_style": "seconds"}]})
    with running_server(config) as url:
        # polled every 0.1 s, not first at 90 % of the model's minute-long render time: the poll's 429 is the point
        m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), provider="lumenfall", base_url=url, sim={},
                           run={"poll_interval": 0.1})
        result = api.run(m, report=False)
    assert result.exit_code == 0
    assert any("asks to wait 3,000 s" in e for e in result.stats.last_errors), result.stats.last_errors


def test_the_progress_line_says_a_long_pause_the_provider_asked_for() -> None:
    from runner.progress import line
    from runner.stats import RunStatistics
    s = RunStatistics(run_id=1, total=3, counts={"submitted": 3}, cached=0, spent_micros=0, reserved_micros=0,
                      budget_micros=None, elapsed=5.0, eta=None, per_minute=None, requests=None, stopping=None,
                      last_errors=(), paused=290.2)
    assert "paused by the provider (HTTP 429), 4:51 left" in line(s)


def test_a_download_past_the_size_cap_is_not_fetched_again_and_waits_for_the_next_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.providers import download

    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 100)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    result, prov = run(m)
    assert result.exit_code == 1
    job = api.status(m).jobs[0]
    assert job.state == "downloading" and "no video is that large" in (job.error or ""), job.error
    assert stats(prov)["requests"].get("file") == 1, stats(prov)["requests"]  # each try would stream as much again
    assert not list(tmp_path.rglob("*.part"))
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 8 * 1024**3)
    again, _ = run(m, prov)
    assert again.exit_code == 0 and stats(prov)["creates"] == 1
    check_outputs(m)


@pytest.mark.parametrize("as_json", [False, True])
def test_a_state_held_by_another_program_is_said_once_in_plain_and_json_output_as_the_run_waits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    """Output to a file or a pipe (no live display): a sqlite3 shell holds state.db as a run begins. Once the run
    has waited SQLite's busy timeout it says, once, which file is held and what to close (a plain line, or a JSON
    `held` event), not only progress lines with no counts; the run's end, through the error, says it again."""
    from runner import state as state_mod
    from runner.cli import main

    monkeypatch.setattr(state_mod, "BUSY_TIMEOUT", 0.1)
    monkeypatch.setattr(state_mod, "BUSY_PATIENCE", 0.45)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    prov = sim_provider(m)
    monkeypatch.setattr(api, "_provider", lambda p: prov)
    assert main(["run", str(m), "--no-report"]) == 0
    db = tmp_path / ".gridrun" / "state.db"
    capsys.readouterr()
    with closing(sqlite3.connect(db, isolation_level=None, timeout=0)) as other:
        other.execute("BEGIN IMMEDIATE")
        assert main(["run", str(m), "--no-report", *(["--json"] if as_json else [])]) == 1
        other.execute("ROLLBACK")
    got = capsys.readouterr()
    held = f"state.db ({db}) is held in a write transaction by another process, not gridrun"
    if as_json:
        events = [json.loads(x) for x in got.out.splitlines()]
        said = [e for e in events if e["event"] == "held"]
        assert len(said) == 1 and said[0]["message"].startswith(held), events
        assert events[-1]["event"] == "end" and events[-1]["last_errors"][-1].startswith(held), events[-1]
    else:
        lines = got.err.splitlines()
        said = [x for x in lines if x.startswith(f"  • {held}")]
        assert len(said) == 2 and "close it" in said[0], got.err  # as it waits, and again as the run ends
        assert not any(x.startswith(" | ") for x in lines), got.err
    assert stats(prov)["creates"] == 1


def test_jobs_an_earlier_run_sent_and_this_one_collects_at_once_are_no_pace_and_give_no_eta(tmp_path: Path) -> None:
    """A run that collects renders an earlier run (or the run before a sleep) left at the provider: they end at
    once, which is no pace; counted, the ETA came out as the elapsed time and grew a second every second. The
    run's progress and `status` of it show no pace and no ETA until jobs it sent itself end."""
    from runner.state import Store
    from runner.stats import run_statistics

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 1.0, "jitter": 0.0})
    first, prov = run(m, timeout=0.2)
    assert first.status == "incomplete", first.status
    second, _ = run(m, prov)
    assert second.stats.counts["done"] == 2 and stats(prov)["creates"] == 2, second.stats.counts
    assert second.stats.per_minute is None and second.stats.eta is None, second.stats
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        assert run_statistics(store.snapshot(second.run_id)).per_minute is None


def test_the_jobs_a_run_starts_with_are_written_ahead_in_one_commit(tmp_path: Path) -> None:
    """Every slot free as the run starts: the first jobs are all sent in the same moment, so their attempts are
    written ahead together (one commit, one fsync), not one or two at a time."""
    manifest = write_manifest(tmp_path, n_seeds=4, styles=("anime", "clay"), run={"concurrency": 8})
    assert api.run(manifest, provider=sim_provider(manifest), report=False).exit_code == 0
    with closing(sqlite3.connect(tmp_path / ".gridrun" / "state.db")) as db:
        written = db.execute("SELECT COUNT(*), COUNT(DISTINCT started_at) FROM attempts").fetchone()
    assert written == (8, 1)


def test_a_run_that_followed_a_job_another_manifest_sent_names_that_manifest(tmp_path: Path) -> None:
    """Two manifests share the state folder and a job: a's run leaves it rendering at its timeout, b's run follows
    it and sees it billed. `status` of b names the run that sent it with its manifest ("run 1 of a"), since b's own
    list of runs does not show it."""
    a = write_manifest(tmp_path, n_seeds=1, styles=("anime",), name="a", sim={"render_time": 1.5, "jitter": 0.0})
    b = write_manifest(tmp_path, n_seeds=2, styles=("anime",), name="b", sim={"render_time": 1.5, "jitter": 0.0})
    prov = sim_provider(a)
    left = api.run(a, provider=prov, options=RunOptions(timeout=0.3, poll_interval=0.1), report=False)
    assert left.status == "incomplete", left.status
    assert api.run(b, provider=prov, options=RunOptions(poll_interval=0.1), report=False).exit_code == 0
    assert stats(prov)["creates"] == 2
    note = api.status(b).followed_note()
    assert note is not None and "for 1 job run 1 of a sent" in note, note


def test_a_long_pause_is_counted_down_to_its_end() -> None:
    """A pause is long by what the provider asked (a 429's Retry-After of 40 s), not by what is left of it: the
    progress line counts it down to its end, not hidden once less than 30 s is left; a short one is not shown."""
    from types import SimpleNamespace

    from runner.executor import Executor
    from runner.pacing import Pacer

    now = [0.0]
    pacer = Pacer(lambda: now[0])
    run_ = SimpleNamespace(pacer=pacer, _ended=False)
    pacer.limited(40.0)
    shown = []
    for at in (0.0, 15.0, 35.0, 39.5, 40.5):
        now[0] = at
        shown.append(Executor._paused(run_))  # type: ignore[arg-type]
    assert shown == [40.0, 25.0, 5.0, 0.5, None]
    pacer.limited(10.0)  # asked at 40.5: a short pause of its own
    now[0] = 41.0
    assert Executor._paused(run_) is None  # type: ignore[arg-type]


def test_content_downloads_answered_429_wait_and_are_fetched(tmp_path: Path) -> None:
    """The OpenAI shape serves the bytes at the API itself, under its request limit: 429s to `/videos/{id}/content`
    are waited out (its Retry-After), not tries of the download burnt at once, and the paid video is fetched."""
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={
        "omit_output": True,
        "script": [{"route": "content", "nth": list(range(1, 7)), "fault": "rate_limited", "retry_after": 0.05}]})
    result, prov = run(m, retries=1)
    s = stats(prov)
    assert s["faults"].get("rate_limited") == 6 and s["requests"]["content"] == 7
    assert result.exit_code == 0 and result.stats.counts["done"] == 1
    assert (s["creates"], s["downloads"]) == (1, 1)
    check_outputs(m)


def test_content_downloads_always_answered_429_record_why_and_the_next_step(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={
        "omit_output": True, "script": [{"route": "content", "p": 1.0, "fault": "rate_limited", "retry_after": 0.05}]})
    result, prov = run(m, retries=0)
    assert result.exit_code == 1 and stats(prov)["downloads"] == 0 and stats(prov)["creates"] == 1
    [job] = api.status(m).jobs
    assert job.state == "downloading"
    assert "HTTP 429" in job.error and "rate limited" in job.error and "gridrun run" in job.error, job.error
    assert any("HTTP 429" in e for e in result.stats.last_errors), result.stats.last_errors
    again, _ = run(m, prov, retries=0)  # every run says why, and pays nothing
    assert "HTTP 429" in api.status(m).jobs[0].error and stats(prov)["creates"] == 1
    assert again.stats.spent_micros == 0


def test_content_downloads_under_the_api_request_limit_wait_their_turn(tmp_path: Path) -> None:
    """Under the API's request limit (a token bucket: 2 a second, a burst of 1), fetches from the content route
    wait the run's pacer as its polls and creates do: every paid video is fetched in the one run."""
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime", "clay"),
                       sim={"omit_output": True, "rate_limit": 2, "rate_burst": 1, "render_time": 0.5})
    result, prov = run(m)
    assert result.exit_code == 0 and result.stats.counts["done"] == 4, api.status(m).jobs
    s = stats(prov)
    assert (s["creates"], s["downloads"], s["duplicate_paid"]) == (4, 4, 0)
    check_outputs(m)


def test_jobs_left_in_flight_when_only_an_input_image_changed_are_refused_naming_that_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run 1 leaves its jobs rendering; then a checkout changes only the input image (the manifest as run 1 had
    it). The refusal over the jobs in flight names that image, with its digests then and now and how to put it
    back, not only the manifest's copy, which is the manifest as it is; the plan's "differ from run 1" note too."""
    from runner.cli import main
    from runner.errors import InFlightError

    monkeypatch.setenv("COLUMNS", "400")
    png = tmp_path / "assets" / "in.png"
    png.parent.mkdir()
    fox = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32 + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    moon = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32 + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    png.write_bytes(fox)
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 30.0, "jitter": 0.0},
                       extra={"params": {"prompt": "a fox {{ seed }}", "quality": "360p", "duration": 5,
                                         "input_reference": "assets/in.png"}})
    assert api.run(m, options={"timeout": 0.2}, report=False).status == "incomplete"
    png.write_bytes(moon)
    then, now = hashlib.sha256(fox).hexdigest()[:12], hashlib.sha256(moon).hexdigest()[:12]
    said = f"assets/in.png: its content differs from run 1's (sha256 {then} then, {now} now)"
    with pytest.raises(InFlightError) as refused:
        api.run(m, report=False)
    message = str(refused.value)
    assert said in message, message
    assert "put that file back (e.g. git checkout <ref> -- assets/in.png)" in message, message
    assert main(["plan", str(m)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"2 jobs differ from run 1 (the same parameters; input image {said}: put that file back" in out, out


def test_an_input_image_changed_under_a_job_of_a_state_that_recorded_no_digest_is_named_with_its_digest_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A job recorded by a gridrun that kept no digest of its input images (its request record empty): the plan's
    "differ from run 1" note still names the image the job sends, with its digest now, as what may differ."""
    from runner.cli import main

    monkeypatch.setenv("COLUMNS", "400")
    png = tmp_path / "in.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32 + b"\x00\x00\x00\x00IEND\xaeB`\x82")
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0},
                       extra={"params": {"prompt": "a fox {{ seed }}", "quality": "360p", "duration": 5,
                                         "input_reference": "in.png"}})
    assert api.run(m, report=False).exit_code == 0
    with closing(sqlite3.connect(tmp_path / ".gridrun" / "state.db")) as db, db:
        db.execute("UPDATE jobs SET request='{}'")
    moon = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32 + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    png.write_bytes(moon)
    assert main(["plan", str(m)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (f"1 job differs from run 1 (the same parameters; input image in.png: its content may differ from run 1's "
            f"(sha256 {hashlib.sha256(moon).hexdigest()[:12]} now; run 1's was not recorded): put that file back") \
        in out, out


def test_cancel_status_report_and_export_read_the_runs_jobs_when_a_data_file_does_not_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data file saved mid-edit (a quote left open) or moved away while jobs render: `status`, `report`, `export`
    and `cancel` read the run as the state recorded its jobs, with a warning naming the data file and its error,
    and `cancel` stops the jobs in flight; a run's copy of its manifest reads its data files where its run did,
    beside the file it was made from, not in .runs/."""
    from runner.cli import main

    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rows.csv").write_text("id,prompt\nr1,a fox\nr2,an owl\n", encoding="utf-8")
    m = write_manifest(tmp_path, sim={"render_time": 30.0, "jitter": 0.0}, extra={
        "params": {"prompt": "{{ r.prompt }}", "quality": "360p", "duration": 5},
        "matrix": {"r": {"file": "rows.csv"}}, "output": "{{ r.id }}.mp4"})
    api.run(m, options={"timeout": 0.2}, report=False)
    flying = ("submitted", "running")
    assert sum(api.status(m).counts[s] for s in flying) == 2
    (tmp_path / "rows.csv").write_text('id,prompt\nr1,a fox\nr2,"an owl\n', encoding="utf-8")
    said = "rows.csv:3:1: matrix.r: not valid CSV: a quoted field is never closed"
    for argv in (["status", "t.yaml"], ["status", "t.yaml", "--runs"], ["report", "t.yaml"],
                 ["export", "t.yaml"]):
        capsys.readouterr()
        assert main(argv) == 0, argv
        err = " ".join(capsys.readouterr().err.split())
        assert err.startswith(f"warning: t.yaml does not load ({said}"), (argv, err)
        assert "as its run 1 recorded its jobs, its data file rows.csv not read" in err, (argv, err)
    snap = api.status(m)
    assert snap.warnings and said in snap.warnings[0]
    (tmp_path / "rows.csv").rename(tmp_path / "rows.moved.csv")
    capsys.readouterr()
    assert main(["status", "outputs/t/.runs/run-1.yaml"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"data file 'rows.csv': no such file (looked for {tmp_path}/rows.csv)" in err, err
    assert ".runs/rows.csv" not in err
    result = api.cancel(m)
    assert sorted(result.cancelled) == sorted(j.key for j in snap.jobs), result
    assert len(result.warnings) == 1 and "data file 'rows.csv': no such file" in result.warnings[0], result.warnings
    assert "cancelling the jobs of 't' as its run 1 recorded its jobs" in result.warnings[0]
    assert api.status(m).counts["cancelled"] == 2


def test_the_eta_of_jobs_still_to_be_created_waits_for_the_providers_pause() -> None:
    """While creates wait out a pause the provider asked for (a 503's Retry-After of 40 s), the jobs not sent yet
    end no sooner than their render time after it: the ETA said ~0:01 for the whole pause."""
    from types import SimpleNamespace

    from runner.executor import Executor
    from runner.pacing import Pacer

    now = [100.0]
    pacer = Pacer(lambda: now[0])
    job = SimpleNamespace(key="a")
    run_ = SimpleNamespace(pacer=pacer, _rendering={}, renders=SimpleNamespace(expected=lambda _: 0.5,
                                                                          ends=lambda sent: [s + 0.5 for s, _ in sent]),
                           plan=SimpleNamespace(jobs=[job]), concurrency=4)

    def ends_in(unsent: int, sending: int = 0) -> float | None:
        return Executor._ends_in(run_, now[0], unsent, sending)  # type: ignore[arg-type]

    assert (ends_in(2), ends_in(0, 2)) == (0.5, 0.5)
    pacer.limited(40.0, status=503)
    assert (ends_in(2), ends_in(0, 2), ends_in(5)) == (40.5, 40.5, 41.0)
    now[0] = 130.0
    assert ends_in(2) == 10.5
    run_._rendering = {"b": (99.0, job)}  # rendering since before the pause: it ends as expected, unpaused
    assert Executor._ends_in(run_, 130.0, 0) == 0.0  # type: ignore[arg-type]


@pytest.mark.parametrize("route", ["file", "content"])
def test_polls_get_a_request_slot_while_slow_downloads_hold_every_download_slot(tmp_path: Path, route: str) -> None:
    """Every video's host sends half the file, then nothing for half a minute: the downloads hold their slots,
    whether at a host of files or at the API's own content route (the OpenAI shape), which counts among the API's
    requests. The simulator renders HTTP_CONNECTIONS videos at a time, so the last jobs finish rendering while the
    first ones' downloads hang: their polls still get a request slot, and every job is seen downloading (paid,
    recorded) before any download has ended."""
    from runner.executor import DOWNLOAD_CONNECTIONS, HTTP_CONNECTIONS

    assert DOWNLOAD_CONNECTIONS < HTTP_CONNECTIONS
    n = HTTP_CONNECTIONS + 8
    m = write_manifest(tmp_path, n_seeds=n // 2, run={"concurrency": n}, sim={
        "render_time": 1.0, "jitter": 0.0, "concurrency": HTTP_CONNECTIONS, "omit_output": route == "content",
        "script": [{"route": route, "p": 1.0, "fault": "stall_body", "delay": 30.0}]})
    seen: list[dict[str, int]] = []

    def watch(s: Any) -> None:
        counts = {k: v for k, v in s.counts.items() if v}
        if counts.get("downloading") == n or counts.get("done"):
            seen.append(counts)
            raise KeyboardInterrupt

    provider = sim_provider(m)
    with pytest.raises(KeyboardInterrupt):
        api.run(m, provider=provider, report=False, on_progress=watch)
    assert seen == [{"downloading": n}], seen
    assert [j.state for j in api.status(m).jobs] == ["downloading"] * n
    assert stats(provider)["creates"] == n and stats(provider)["duplicate_paid"] == 0


def test_downloads_from_another_host_than_the_apis_take_as_many_slots_as_the_apis_calls(tmp_path: Path) -> None:
    """Every video's host (the simulator's `/files/`, not the API's own route) sends half the file, then nothing
    for half a minute: HTTP_CONNECTIONS downloads are under way at once, none waiting for a slot, as they take
    none of the API's; only downloads from the API's own host are held to DOWNLOAD_CONNECTIONS."""
    from runner.executor import DOWNLOAD_CONNECTIONS, HTTP_CONNECTIONS

    assert DOWNLOAD_CONNECTIONS < HTTP_CONNECTIONS
    n = HTTP_CONNECTIONS
    m = write_manifest(tmp_path, n_seeds=n // 2, run={"concurrency": n}, sim={
        "render_time": 0.5, "jitter": 0.0, "concurrency": n,
        "script": [{"route": "file", "p": 1.0, "fault": "stall_body", "delay": 30.0}]})
    provider = sim_provider(m)
    seen: list[tuple[int, dict[str, int]]] = []

    def watch(s: Any) -> None:
        counts = {k: v for k, v in s.counts.items() if v}
        files = stats(provider)["requests"].get("file", 0)
        if files >= n or counts.get("done"):
            seen.append((files, counts))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        api.run(m, provider=provider, report=False, on_progress=watch)
    assert seen and seen[0][0] == n and "done" not in seen[0][1], seen
    assert stats(provider)["creates"] == n and stats(provider)["duplicate_paid"] == 0


@pytest.mark.parametrize("edited", [False, True])
def test_cancel_of_a_runs_copy_names_the_manifest_the_run_was_made_from_for_what_a_run_does_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, edited: bool
) -> None:
    """`cancel outputs/t/.runs/run-1.yaml` after the run stopped with its jobs rendering, which finish before the
    cancel asks: the run that downloads them is of the file the run was made from (a copy in .runs/ is refused),
    and, once that file is edited since (renamed), of the copy put back there first."""
    import time

    from runner.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "400")
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 1.0, "jitter": 0.0})
    assert main(["run", str(m), "--no-report", "--timeout", "0.3"]) == 4  # left rendering
    if edited:
        m.write_text(m.read_text().replace("name: t", "name: t2"))
    time.sleep(1.5)  # the renders end before the cancel is asked
    capsys.readouterr()
    assert main(["cancel", "outputs/t/.runs/run-1.yaml"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    command = ("cp outputs/t/.runs/run-1.yaml " + m.name + " && " if edited else "") + f"gridrun run {m.name}"
    assert f"2 jobs finished first: `{command}` downloads them" in out, out
