"""Which done jobs of a run have a video made earlier (kept, not made by the run, not found cached by it): one answer
per job, which `status --runs`, the report's header, its cards and table, and the export all say alike, for every
run of a history (an earlier run's as it left them)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from execkit import sim_provider, write_manifest
from test_interrupt import _detached_force_run, _rerenders_in_flight, _world
from test_runs import page_items

from runner import api
from runner.export import export_rows, summary
from runner.options import RunOptions
from runner.state import Store


def _chips(html: str) -> dict[str, int]:
    return {label: int(n.replace(",", "")) for n, label in
            re.findall(r'<span class="chip cached[^"]*"[^>]*><b>([\d,]+)</b> ([^<]+)</span>', html)}


def _told(m: Path) -> dict[int, dict[str, Any]]:
    """Every run of the manifest as each place says it: its line of `status --runs` (done, cached, made, made
    earlier, not copied), its report's header chips and estimate of the jobs left to pay for, the jobs its cards
    and its table read without JavaScript say were made earlier, and its export's rows (state, cached from, paid
    in) and cached count."""
    out: dict[int, dict[str, Any]] = {}
    for line in api.runs(m):
        rid = line.run.id
        html = api.report(m, run_id=rid).read_text()
        flat = " ".join(html.split())
        estimate = re.search(r"estimate of the jobs (?:neither cached nor made earlier|not cached)</dt><dd>([^<]*)<", flat)
        with Store(m.parent / ".gridrun" / "state.db", readonly=True) as store:
            snap = store.snapshot(rid)
        out[rid] = {
            "runs": (line.done, line.cached, line.made, line.made_earlier, line.not_copied),
            "chips": _chips(html),
            "estimate": estimate.group(1) if estimate else None,
            "cards": sorted(k for k, item in page_items(html).items() if item["jobs"][0].get("kept")),
            "table": flat.count("(made earlier in run"),
            "rows": {r["key"]: (r["state"], r["cached_from_run"], r["paid_in_run"]) for r in export_rows(snap)},
            "cached": summary(snap)["cached"],
            "export_estimate": summary(snap)["estimate_usd"],
        }
    return out


def _header_agrees(told: dict[int, dict[str, Any]]) -> None:
    """The header's chips are `status --runs`'s counts (its made earlier parted into those kept and those the run
    stopped before re-rendering); the cards and table name made earlier only jobs it counts so; the export's
    estimate is the header's."""
    for rid, t in told.items():
        _, cached, _, earlier, _ = t["runs"]
        chips = dict(t["chips"])
        unsent = chips.pop("not re-rendered (the run stopped first)", 0)
        assert chips == {k: n for k, n in (("cached", cached), ("made earlier", earlier - unsent)) if n}, (rid, t)
        assert len(t["cards"]) == t["table"] <= earlier, (rid, t)
        assert t["estimate"] in (None, f"${t['export_estimate']:,.2f}"), (rid, t)  # the export writes the same figure


def _two(tmp_path: Path) -> Path:
    return write_manifest(tmp_path, extra={"matrix": {"style": ["anime", "clay"]}, "output": "{{ style }}.mp4"})


def test_plain_and_cached_runs(tmp_path: Path) -> None:
    m = _two(tmp_path)
    prov = sim_provider(m)
    for _ in range(2):
        assert api.run(m, provider=prov, report=False).exit_code == 0
    told = _told(m)
    _header_agrees(told)
    assert {r: t["runs"] for r, t in told.items()} == {1: (2, 0, 2, 0, 0), 2: (2, 2, 0, 0, 0)}
    assert {r: (t["cards"], t["cached"]) for r, t in told.items()} == {1: ([], 0), 2: ([], 2)}
    assert told[2]["estimate"] == "$0.00" and told[1]["estimate"] != "$0.00"
    assert set(told[2]["rows"].values()) == {("done", 1, 1)}


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
def test_force_re_renders_and_a_later_cached_run(tmp_path: Path, outcome: str) -> None:
    m = _two(tmp_path)
    prov = sim_provider(m)
    assert api.run(m, provider=prov, report=False).exit_code == 0
    if outcome == "failed":
        prov.app.state.sim.configure({"failure_rate": 1.0})
    api.run(m, provider=prov, options=RunOptions(force=True, failure_retries=0), report=False)
    prov.app.state.sim.configure({"failure_rate": 0.0})
    assert api.run(m, provider=prov, report=False).exit_code == 0
    told = _told(m)
    _header_agrees(told)
    keys = sorted(told[1]["rows"])
    if outcome == "succeeded":
        assert {r: t["runs"] for r, t in told.items()} == {1: (2, 0, 2, 0, 0), 2: (2, 0, 2, 0, 0), 3: (2, 2, 0, 0, 0)}
        assert [t["cards"] for t in told.values()] == [[], [], []]
        assert set(told[3]["rows"].values()) == {("done", 2, 2)}
    else:
        assert {r: t["runs"] for r, t in told.items()} == {1: (2, 0, 2, 0, 0), 2: (2, 0, 0, 2, 0), 3: (2, 2, 0, 0, 0)}
        assert {r: t["cards"] for r, t in told.items()} == {1: [], 2: keys, 3: []}
        assert set(told[2]["rows"].values()) == {("done", 1, 1)} and told[2]["cached"] == 2
        assert told[2]["estimate"] == "$0.00"
        assert set(told[3]["rows"].values()) == {("done", 1, 1)}
    assert told[3]["estimate"] == "$0.00"


def test_videos_fetched_again_and_a_retry_of_failed_jobs_beside_done_ones(tmp_path: Path) -> None:
    """Run 1 makes the anime video; run 2, the manifest grown by clay, finds it cached and fails clay; the anime
    video is deleted by hand; run 3 (`retry`) fetches it again and makes clay."""
    m = write_manifest(tmp_path, extra={"matrix": {"style": ["anime"]}, "output": "{{ style }}.mp4"})
    prov = sim_provider(m)
    assert api.run(m, provider=prov, report=False).exit_code == 0
    write_manifest(tmp_path, extra={"matrix": {"style": ["anime", "clay"]}, "output": "{{ style }}.mp4"})
    prov.app.state.sim.configure({"failure_rate": 1.0})
    api.run(m, provider=prov, options=RunOptions(failure_retries=0), report=False)
    assert sorted(j.state for j in api.status(m).jobs) == ["done", "failed"]
    done = next(j for j in api.status(m).jobs if j.state == "done")
    Path(done.output_path).unlink()
    prov.app.state.sim.configure({"failure_rate": 0.0})
    again = api.run(m, provider=prov, options=RunOptions(retry_failed=True), report=False)
    assert again.exit_code == 0 and again.run_id == 3
    told = _told(m)
    _header_agrees(told)
    assert {r: t["runs"] for r, t in told.items()} == {1: (1, 0, 1, 0, 0), 2: (1, 1, 0, 0, 0), 3: (2, 0, 1, 1, 0)}
    assert [t["cards"] for t in told.values()] == [[], [], []]
    assert told[3]["rows"][done.key] == ("done", None, 1)
    assert told[3]["estimate"] != "$0.00" and told[2]["estimate"] != "$0.00"  # the clay job is theirs to pay for


@pytest.mark.timeout(120)
def test_re_renders_cancelled_by_cancel_then_a_later_run(tmp_path: Path) -> None:
    m, first, forced = _detached_force_run(tmp_path, in_world=True)
    _rerenders_in_flight(m)
    from runner.cli import main

    assert main(["cancel", str(m)]) == 0
    told = _told(m)
    _header_agrees(told)
    # 3 re-renders cancelled, 3 never sent: each job's video is the first run's, made earlier
    assert told[forced.run_id]["runs"] == (6, 0, 0, 6, 0)
    assert told[forced.run_id]["chips"] == {"made earlier": 3, "not re-rendered (the run stopped first)": 3}
    assert told[forced.run_id]["estimate"] == "$0.00"
    assert told[first.run_id]["runs"] == (6, 0, 6, 0, 0)


@pytest.mark.timeout(120)
def test_a_killed_run_whose_re_renders_a_later_run_collects_cancelled(tmp_path: Path) -> None:
    m, first, forced = _detached_force_run(tmp_path, in_world=True)
    rerenders = _rerenders_in_flight(m)
    world = _world(m)
    for video, _ in rerenders.values():
        world.cancel(video)
    world.world.close()
    later = api.run(m, report=False)
    assert later.exit_code == 0
    told = _told(m)
    _header_agrees(told)
    assert {r: t["runs"] for r, t in told.items()} == {
        first.run_id: (6, 0, 6, 0, 0), forced.run_id: (3, 0, 0, 3, 0), later.run_id: (6, 3, 0, 3, 0)}
    assert told[later.run_id]["cards"] == sorted(rerenders) and told[forced.run_id]["cards"] == []
    assert (told[later.run_id]["estimate"], told[forced.run_id]["estimate"]) == ("$0.00", "$1.05")  # 3 in flight


def test_a_run_that_made_its_videos_keeps_them_made_once_a_later_run_finds_them_gone(tmp_path: Path) -> None:
    """Run 1 makes and pays for both videos; they are deleted by hand and the provider no longer has them (a fresh
    simulator), so run 2 finds them expired. What run 1 made stays what it made, in every place that tells it."""
    m = _two(tmp_path)
    assert api.run(m, provider=sim_provider(m), report=False).exit_code == 0
    before = _told(m)
    for job in api.status(m).jobs:
        Path(job.output_path).unlink()
    later = api.run(m, provider=sim_provider(m), report=False)
    assert later.exit_code == 1 and later.stats.counts["expired"] == 2
    told = _told(m)
    _header_agrees(told)
    assert told[1] == before[1]
    assert told[1]["runs"] == (2, 0, 2, 0, 0)
    assert set(told[1]["rows"].values()) == {("done", None, 1)}
    assert told[2]["runs"][0] == 0


def test_jobs_a_force_run_has_not_sent_are_to_be_re_rendered_then_not_re_rendered_not_made_earlier(
        tmp_path: Path) -> None:
    """A --force run records, as it starts, the done jobs it is to render again; each is reset only as it is sent.
    Its live page says those not sent yet are to be re-rendered (not plain done, nor made earlier); once the run is
    gone before sending them (killed), its page says they were not re-rendered: the run stopped first."""
    from runner import resume

    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    assert api.run(m, provider=sim_provider(m), report=False).exit_code == 0
    with Store(m.parent / ".gridrun" / "state.db") as store:
        started = resume.prepare(api.plan(m), store, RunOptions(force=True), budget_micros=None)
        rid = started.run_id
        assert len(started.resets) == 3
        snap = store.snapshot(rid)
        assert sorted(snap.rerenders_unsent) == sorted(j.key for j in snap.jobs)
        html = api.report(m, run_id=rid).read_text()
        assert "<b>3</b> to be re-rendered</span>" in html and "made earlier</span>" not in html
        assert all(it["jobs"][0]["unsent"] for it in page_items(html).values())
        store.end_run(rid, "crashed")  # killed before it sent any: nothing put back, nothing cached
    html = api.report(m, run_id=rid).read_text()
    assert _chips(html) == {"not re-rendered (the run stopped first)": 3}


def test_a_killed_force_runs_page_says_not_re_rendered_after_a_later_run_re_renders_them(tmp_path: Path) -> None:
    """The page of a --force run killed before sending its re-renders is history: it says they were not
    re-rendered (the run stopped first) even once a later run has re-rendered them."""
    from runner import resume

    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    assert api.run(m, provider=sim_provider(m), report=False).exit_code == 0
    with Store(m.parent / ".gridrun" / "state.db") as store:
        rid = resume.prepare(api.plan(m), store, RunOptions(force=True), budget_micros=None).run_id
        store.end_run(rid, "crashed")
    before = _chips(api.report(m, run_id=rid).read_text())
    assert before == {"not re-rendered (the run stopped first)": 3}
    later = api.run(m, options={"force": True}, provider=sim_provider(m), report=False)
    assert later.exit_code == 0 and later.run_id > rid
    assert _chips(api.report(m, run_id=rid).read_text()) == before


def test_done_jobs_a_force_run_left_unsent_are_made_earlier_whatever_stopped_it(tmp_path: Path) -> None:
    """The done jobs a --force run was to re-render and never sent keep the first run's videos: made earlier, not
    cached, in `status --runs` and the report's header alike, whether the run stopped at its budget (which puts
    them back as they were) or was killed before sending them (which leaves them so)."""
    from runner import resume

    stopped = tmp_path / "stopped"
    killed = tmp_path / "killed"
    lines = {}
    for folder in (stopped, killed):
        folder.mkdir()
        m = write_manifest(folder, n_seeds=3, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
        assert api.run(m, provider=sim_provider(m), report=False).exit_code == 0
        if folder == stopped:  # the budget fits one re-render of the three
            one = api.plan(m).total_usd / 3
            forced = api.run(m, provider=sim_provider(m), report=False,
                             options=RunOptions(force=True, budget_usd=one * 1.5, allow_partial=True))
            assert forced.status == "budget" and forced.stats.cached == 2, forced.stats
        else:
            with Store(m.parent / ".gridrun" / "state.db") as store:
                rid = resume.prepare(api.plan(m), store, RunOptions(force=True), budget_micros=None).run_id
                store.end_run(rid, "crashed")
        told = _told(m)
        _header_agrees(told)
        lines[folder] = told[max(told)]["runs"]
    # (done, cached, made, made earlier, not copied)
    assert lines == {stopped: (3, 0, 1, 2, 0), killed: (3, 0, 0, 3, 0)}
