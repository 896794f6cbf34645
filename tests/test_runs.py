"""The runs of a manifest: run ids count the runs of every manifest sharing a state folder, so each command that
takes one keeps to the manifest's own."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from runner import api
from runner.cli import main
from runner.plan import relpath

from execkit import sha256, sim_provider, write_manifest


def two_manifests(tmp_path: Path) -> tuple[Path, Path]:
    """Manifests t and u in one folder (one state), run as t, u, t: t's runs are 1 and 3, u's is 2."""
    t = write_manifest(tmp_path, n_seeds=1, styles=("anime",), name="t")
    u = write_manifest(tmp_path, n_seeds=1, styles=("clay",), name="u")
    for m in (t, u, t):
        assert api.run(m, report=False).exit_code == 0
    return t, u


def test_compare_with_a_run_of_another_manifest_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t, u = two_manifests(tmp_path)
    capsys.readouterr()
    assert main(["report", str(t), "--compare", "1", "2"]) == 2
    err = capsys.readouterr().err
    assert f"run 2 is a run of u ({u})" in err and "not of t" in err and "Traceback" not in err, err
    assert "runs of t recorded: 1, 3" in err, err
    assert not list(tmp_path.rglob("compare-*.html"))
    assert main(["report", str(t), "--compare", "1", "99"]) == 2
    err = capsys.readouterr().err
    assert "no run 99; runs of t recorded: 1, 3" in err, err
    hint = f"(`gridrun status {t.resolve()} --runs` lists them)"  # a command that works from wherever it was typed
    assert hint in " ".join(err.split()), err
    assert main(["report", str(t), "--compare", "1", "3"]) == 0
    assert (tmp_path / "outputs" / "t" / "compare-1-3.html").is_file()


def page_runs(html: str) -> list[int]:
    m = re.search(r'<script type="application/json" id="gridrun-data">(.*?)</script>', html, re.DOTALL)
    assert m, "no data block"
    return [r["id"] for r in json.loads(m.group(1))["runs"]]


def test_report_and_export_of_an_earlier_run_are_written_beside_the_latest_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 1 pays, run 2 finds every job cached: `--run 1` builds run 1's report and results again, under names
    of their own, and leaves run 2's (report.html, results.*) as they were."""
    m = write_manifest(tmp_path, n_seeds=1)
    prov = sim_provider(m)
    first = api.run(m, provider=prov)
    second = api.run(m, provider=prov)
    assert (first.run_id, second.run_id, second.stats.cached) == (1, 2, 2)
    folder = tmp_path / "outputs" / "t"
    assert main(["export", str(m), "--format", "json"]) == 0
    latest = {p.name: p.read_bytes() for p in (folder / "report.html", folder / "results.json")}
    assert page_runs(latest["report.html"].decode()) == [2]
    capsys.readouterr()
    assert main(["report", str(m), "--run", "1"]) == 0
    assert capsys.readouterr().out.strip() == f"report: {relpath(folder / 'report-run-1.html', Path.cwd())}"
    assert page_runs((folder / "report-run-1.html").read_text()) == [1]
    assert main(["export", str(m), "--run", "1", "--format", "json", "--format", "csv"]) == 0
    assert capsys.readouterr().out.split() == [relpath(folder / f"results-run-1.{f}", Path.cwd()) for f in ("json", "csv")]
    doc = json.loads((folder / "results-run-1.json").read_text())
    assert doc["summary"]["run"]["id"] == 1 and doc["summary"]["spent_usd"] > 0
    assert {p.name: p.read_bytes() for p in (folder / "report.html", folder / "results.json")} == latest
    # the latest run named by its id is the latest run's report, where it always was
    assert main(["report", str(m), "--run", "2"]) == 0 and not (folder / "report-run-2.html").exists()
    assert page_runs((folder / "report.html").read_text()) == [2]


def test_report_and_export_of_a_run_of_another_manifest_or_none_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t, u = two_manifests(tmp_path)
    capsys.readouterr()
    for command in ("report", "export"):
        assert main([command, str(t), "--run", "2"]) == 2
        err = capsys.readouterr().err
        assert f"run 2 is a run of u ({u}), not of t" in err and "runs of t recorded: 1, 3" in err, err
        assert main([command, str(t), "--run", "9"]) == 2
        assert "no run 9; runs of t recorded: 1, 3" in capsys.readouterr().err
    assert not list(tmp_path.rglob("report*.html")) and not list(tmp_path.rglob("results*"))
    assert main(["report", str(t), "--run", "1"]) == 0 and main(["export", str(t), "--run", "1"]) == 0
    assert (tmp_path / "outputs" / "t" / "report-run-1.html").is_file()
    assert len(list((tmp_path / "outputs" / "t").glob("results-run-1.*"))) == 3


@pytest.mark.parametrize("argv", [
    ["report", "--run", "99999999999999999999"], ["export", "--run", str(2**63)], ["report", "--run", str(-2**63 - 1)],
    ["report", "--compare", "1", "99999999999999999999"],
])
def test_a_run_id_past_sqlites_integers_is_no_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """SQLite stores integers of 64 bits: a larger id is told as any other id of no run, not an OverflowError."""
    t, _ = two_manifests(tmp_path)
    capsys.readouterr()
    assert main([argv[0], str(t), *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert re.search(r"no run -?\d{19,}; runs of t recorded: 1, 3", err) and "Traceback" not in err, err


def test_each_runs_line_counts_its_jobs_and_money_as_its_snapshot_does(tmp_path: Path) -> None:
    """Run 1 is left in flight, run 2 resumes it to the end, run 3 re-renders and fails: each run's line has its
    jobs as that run left them, as its report does, not as the latest run moved them since; also for a run
    that ended before its jobs were kept."""
    import sqlite3

    from runner.executor import RunOptions
    from runner.state import Store

    m = write_manifest(tmp_path, n_seeds=1, sim={"render_time": 1.0, "jitter": 0.0})
    prov = sim_provider(m)
    api.run(m, provider=prov, options=RunOptions(timeout=0.2), report=False)
    api.run(m, provider=prov, report=False, argv=("run", str(m)))
    prov.app.state.sim.configure({"failure_rate": 1.0})
    for job in api.status(m).jobs:
        Path(job.output_path).unlink()  # gone: no earlier video for a failed re-render to leave done
    api.run(m, provider=prov, options=RunOptions(force=True), report=False, argv=("run", str(m), "--force"))

    def check(expected_done: list[int]) -> None:
        found = api.runs(m)
        assert [s.run.id for s in found] == [3, 2, 1]
        assert [s.done for s in found] == expected_done
        assert [s.run.argv for s in found] == [("run", str(m), "--force"), ("run", str(m)), ()]
        with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
            for s in found:
                snap = store.snapshot(s.run.id)
                assert (s.jobs, s.done, s.cached) == (len(snap.jobs), snap.counts["done"],
                                                      sum(j.cached_from_run is not None for j in snap.jobs))
                assert (s.spent_micros, s.reserved_micros) == (snap.spent_micros, snap.reserved_micros), s.run.id

    check([0, 2, 0])
    db = sqlite3.connect(tmp_path / ".gridrun" / "state.db")
    with db:
        db.execute("UPDATE run_jobs SET final=NULL WHERE run_id=2")  # as a gridrun before `final` left it
    db.close()
    check([0, 2, 0])


def test_status_runs_lists_the_manifests_runs_and_how_each_was_started(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = write_manifest(tmp_path, n_seeds=1, styles=("anime",), name="t")
    u = write_manifest(tmp_path, n_seeds=1, styles=("clay",), name="u")
    for argv in (["run", str(t)], ["run", str(u), "--budget", "5"], ["run", "--force", str(t)], ["retry", str(t)]):
        assert main([*argv, "--no-report"]) == 0
    capsys.readouterr()
    assert main(["status", str(t), "--runs", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["run"], r["manifest"], r["done"], r["jobs"], r["cached"]) for r in rows] == \
        [(4, "t", 1, 1, 1), (3, "t", 1, 1, 0), (1, "t", 1, 1, 0)]
    assert [r["started_with"] for r in rows] == ["retry --no-report", "run --force --no-report", "run --no-report"]
    assert rows[0]["spent_usd"] == 0 and rows[1]["spent_usd"] == rows[2]["spent_usd"] > 0
    assert rows[2]["argv"] == ["run", str(t), "--no-report"] and rows[2]["status"] == "done"
    assert main(["status", str(t), "--runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = [w for w in lines[1].split() if not w.startswith("(")]  # "started (+0100)": the offset said once
    assert lines[0] == "t: 3 runs, newest first" and header[:6] == ["run", "started", "status", "done", "spent",
                                                                     "started"]
    assert [line.split()[0] for line in lines[2:]] == ["4", "3", "1"]
    assert "1/1, 1 cached" in lines[2] and "$0.00" in lines[2] and "retry --no-report" in lines[2]
    # the state folder's every run, with their manifests, without a manifest
    assert main(["status", "--runs", "--state", str(tmp_path / ".gridrun")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "runs of the state folder: 4 runs, newest first"
    rows = [line.split() for line in lines[2:] if line[:3].strip()]  # a long cell goes on in the next line
    assert [row[:2] for row in rows] == [["4", "t"], ["3", "t"], ["2", "u"], ["1", "t"]]
    assert "run --budget 5" in " ".join(rows[2])
    with pytest.raises(SystemExit) as refused:  # as argparse refuses a command line, with the usage
        main(["status", str(t), "--runs", "--watch"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: gridrun status") and "error: --runs lists the runs recorded" in err


def page_items(html: str) -> dict[str, dict[str, Any]]:
    m = re.search(r'<script type="application/json" id="gridrun-data">(.*?)</script>', html, re.DOTALL)
    assert m, "no data block"
    return {it["key"]: it for it in json.loads(m.group(1))["items"]}


def forced_twice(tmp_path: Path, **sim: Any) -> tuple[Path, Path]:
    """Run 1 renders the two jobs of manifest t; run 2 renders both again (`--force`), with `sim` knobs. No
    `seed` parameter: each render is another video."""
    from runner.executor import RunOptions

    m = write_manifest(tmp_path, extra={"matrix": {"style": ["anime", "clay"]}, "output": "{{ style }}.mp4"})
    prov = sim_provider(m)
    assert api.run(m, provider=prov, report=False).exit_code == 0
    prov.app.state.sim.configure(sim)
    api.run(m, provider=prov, options=RunOptions(force=True), report=False)
    return m, tmp_path / "outputs" / "t"


def test_an_earlier_runs_report_results_and_comparison_link_its_own_videos_after_a_re_render(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 2's re-renders take the place of run 1's videos, which are kept under .runs/superseded/: run 1's
    report (video and poster), its results and its comparison with run 2 name those copies, whose bytes are
    the SHA-256 run 1 recorded; run 2's report links its own videos at the output paths, as before."""
    m, folder = forced_twice(tmp_path)
    for argv in (["report", str(m), "--run", "1"], ["report", str(m), "--compare", "1", "2"], ["report", str(m)],
                 ["export", str(m), "--run", "1", "--format", "json"]):
        assert main(argv) == 0
    capsys.readouterr()
    run1 = page_items((folder / "report-run-1.html").read_text())
    compared = page_items((folder / "compare-1-2.html").read_text())
    latest = page_items((folder / "report.html").read_text())
    rows = json.loads((folder / "results-run-1.json").read_text())["rows"]
    assert len(rows) == len(run1) == 2
    for row in rows:
        mine, theirs = run1[row["key"]]["jobs"][0], latest[row["key"]]["jobs"][0]
        assert row["output_path"].startswith(".runs/superseded/"), row
        assert sha256(folder / row["output_path"]) == row["sha256"] == mine["sha"] != theirs["sha"]
        assert unquote(mine["src"]) == row["output_path"] and (folder / unquote(mine["poster"])).is_file()
        a, b = compared[row["key"]]["jobs"]
        assert "overwritten" not in compared[row["key"]] and (a["src"], b["src"]) == (mine["src"], theirs["src"])
        assert theirs["src"] == f"{row['values']['style']}.mp4"
        assert sha256(folder / theirs["src"]) == theirs["sha"]


def test_an_earlier_runs_video_that_a_re_render_replaced_and_nothing_kept_is_said_to_be_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With its kept copy deleted, run 1's video is nowhere: its report and comparison link nothing for it (the
    page says "its video is no longer kept (replaced or edited since)") and its results give no output path."""
    m, folder = forced_twice(tmp_path)
    shutil.rmtree(folder / ".runs" / "superseded")
    for argv in (["report", str(m), "--run", "1"], ["report", str(m), "--compare", "1", "2"],
                 ["export", str(m), "--run", "1", "--format", "json"]):
        assert main(argv) == 0
    capsys.readouterr()
    for page in ("report-run-1.html", "compare-1-2.html"):
        for item in page_items((folder / page).read_text()).values():
            job = item["jobs"][0]
            assert job["state"] == "done" and job["replaced"] is True and "src" not in job and "poster" not in job
            assert job["later"] is True  # a later render is the job's take: nothing fetches this one back
            assert "overwritten" not in item
    rows = json.loads((folder / "results-run-1.json").read_text())["rows"]
    assert [(r["state"], r["output_path"]) for r in rows] == [("done", None)] * 2


def set_aside(root: Path) -> tuple[Path, Path]:
    """In `root`, run 1 renders two jobs of manifest t; run 2, after a prompt edit, renders two others at the same
    output paths, which sets run 1's videos aside under .runs/superseded/<hash16>/ (no take folder)."""
    root.mkdir()
    m = write_manifest(root, extra={"matrix": {"style": ["anime", "clay"]}, "output": "{{ style }}.mp4"})
    assert api.run(m, report=False).exit_code == 0
    m.write_text(m.read_text().replace("a fox", "a bear"))
    assert api.run(m, report=False).exit_code == 0
    return m, root / "outputs" / "t"


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("original", ["kept", "moved away"])
def test_an_earlier_runs_videos_a_manifest_edit_set_aside_are_the_copys_own_in_a_copied_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], original: str
) -> None:
    """A copied project whose run 1's videos a prompt edit set aside: once a run in the copy found its videos,
    run 1's report and results name the copy's own set-aside files (not the original's), and its posters are
    written beside them in the copy; nothing is written into the original project, kept or moved away."""
    set_aside(tmp_path / "p1")
    second = tmp_path / "p2"
    shutil.copytree(tmp_path / "p1", second, symlinks=True)
    for poster in (second / "outputs").rglob("*.jpg"):
        poster.unlink()  # made again beside the copy's own videos
    if original == "moved away":
        (tmp_path / "p1").rename(tmp_path / "away")
    kept = tmp_path / ("p1" if original == "kept" else "away")
    before = _tree(kept / "outputs")
    copy, folder = second / "t.yaml", second / "outputs" / "t"
    assert api.run(copy, report=False).exit_code == 0
    for argv in (["report", str(copy), "--run", "1"], ["export", str(copy), "--run", "1", "--format", "json"]):
        assert main(argv) == 0, argv
    capsys.readouterr()
    assert _tree(kept / "outputs") == before
    run1 = page_items((folder / "report-run-1.html").read_text())
    rows = json.loads((folder / "results-run-1.json").read_text())["rows"]
    assert len(rows) == len(run1) == 2
    for row in rows:
        job = run1[row["key"]]["jobs"][0]
        assert row["output_path"] == unquote(job["src"]), (row, job)
        assert row["output_path"] == f".runs/superseded/{row['hash'][:16]}/{row['values']['style']}.mp4"
        assert sha256(folder / row["output_path"]) == row["sha256"] == job["sha"]
        assert (folder / unquote(job["poster"])).is_file()


def test_a_copys_report_of_an_earlier_run_writes_no_poster_into_the_project_it_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A copy that no longer holds run 1's set-aside videos, which the original still does: `report --run 1` and
    `--compare 1 3` in the copy write no poster beside the original's videos (nor anything else there)."""
    set_aside(tmp_path / "p1")
    second = tmp_path / "p2"
    shutil.copytree(tmp_path / "p1", second, symlinks=True)
    shutil.rmtree(second / "outputs" / "t" / ".runs" / "superseded")
    for poster in (tmp_path / "p1" / "outputs" / "t" / ".runs" / "superseded").rglob("*.jpg"):
        poster.unlink()
    before = _tree(tmp_path / "p1" / "outputs")
    copy = second / "t.yaml"
    assert api.run(copy, report=False).exit_code == 0
    for argv in (["report", str(copy), "--run", "1"], ["report", str(copy), "--compare", "1", "3"]):
        assert main(argv) == 0, argv
    capsys.readouterr()
    assert _tree(tmp_path / "p1" / "outputs") == before
    assert (second / "outputs" / "t" / "report-run-1.html").is_file()


def test_an_earlier_runs_video_a_manifest_edit_set_aside_and_since_deleted_is_said_to_be_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the set-aside copies deleted by hand, run 1's videos are nowhere: its report links nothing for them
    ("its video is no longer kept (replaced or edited since)") and its results give no output path."""
    m, folder = set_aside(tmp_path / "p")
    shutil.rmtree(folder / ".runs" / "superseded")
    for argv in (["report", str(m), "--run", "1"], ["export", str(m), "--run", "1", "--format", "json"]):
        assert main(argv) == 0, argv
    capsys.readouterr()
    for item in page_items((folder / "report-run-1.html").read_text()).values():
        job = item["jobs"][0]
        assert job["state"] == "done" and job["replaced"] is True and "src" not in job and "poster" not in job
    rows = json.loads((folder / "results-run-1.json").read_text())["rows"]
    assert [(r["state"], r["output_path"]) for r in rows] == [("done", None)] * 2
    assert not (folder / ".runs" / "superseded").exists()


def test_an_earlier_runs_video_still_in_place_after_a_failed_re_render_is_linked_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 2's re-renders fail: nothing replaced run 1's videos, which its report and results link where run 1
    saved them."""
    m, folder = forced_twice(tmp_path, failure_rate=1.0)
    assert main(["report", str(m), "--run", "1"]) == 0
    assert main(["export", str(m), "--run", "1", "--format", "json"]) == 0
    capsys.readouterr()
    run1 = page_items((folder / "report-run-1.html").read_text())
    for row in json.loads((folder / "results-run-1.json").read_text())["rows"]:
        assert row["output_path"] == run1[row["key"]]["jobs"][0]["src"] == f"{row['values']['style']}.mp4"
        assert sha256(folder / row["output_path"]) == row["sha256"]


def _this_run(m: Path, run_id: int) -> dict[str, Any]:
    """What run `run_id`'s summary says it did itself (results.json `summary`)."""
    from runner.export import summary
    from runner.state import Store

    with Store(m.parent / ".gridrun" / "state.db", readonly=True) as store:
        s = summary(store.snapshot(run_id))
    return {k: s[k] for k in ("done_estimate_usd", "done_cost_usd", "done_unreported", "render_seconds_total",
                              "render_seconds_median")}


NOTHING_MADE = {"done_estimate_usd": 0.0, "done_cost_usd": 0.0, "done_unreported": 0, "render_seconds_total": 0.0,
                "render_seconds_median": None}


def test_a_run_that_only_fetched_deleted_videos_again_made_none_of_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 1 renders two videos, which are then deleted by hand; run 2 fetches them again, paying nothing: its
    summary, report header and `status --runs` line count no video, cost or render time as its own (they are
    run 1's, whose figures stay as they were)."""
    m = write_manifest(tmp_path, n_seeds=1)
    assert api.run(m, report=False).exit_code == 0
    made = _this_run(m, 1)
    assert made["done_cost_usd"] > 0 and made["render_seconds_total"] > 0
    for job in api.status(m).jobs:
        Path(job.output_path).unlink()
    again = api.run(m, report=False)
    assert again.exit_code == 0 and again.stats.spent_micros == 0
    assert _this_run(m, 2) == NOTHING_MADE
    assert _this_run(m, 1) == made
    assert main(["report", str(m)]) == 0
    page = " ".join((tmp_path / "outputs" / "t" / "report.html").read_text().split())
    assert "<dt>done in this run: cost / estimated</dt><dd>$0.00 / $0.00</dd>" in page
    assert "<dt>render time: total / median</dt><dd>0.0 s / –</dd>" in page
    capsys.readouterr()
    assert main(["status", str(m), "--runs"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.split()[:1] in (["1"], ["2"])}
    assert "2/2, 2 made earlier" in lines["2"] and "made earlier" not in lines["1"], lines
    rows = {r["run"]: r for r in api.runs_json(api.runs(m))}
    assert (rows[2]["done"], rows[2]["cached"], rows[2]["made"]) == (2, 0, 0)
    assert (rows[1]["done"], rows[1]["cached"], rows[1]["made"]) == (2, 0, 2)



def test_the_report_header_counts_a_video_fetched_again_after_it_was_edited_as_status_runs_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 1 renders two videos; one is edited in place, and run 2 fetches it again at no cost, the other cached:
    run 2's report header says what its line of `status --runs` does ("1 cached", "1 made earlier"), and leaves
    no estimate to pay for either."""
    m = write_manifest(tmp_path, n_seeds=1)
    assert api.run(m, report=False).exit_code == 0
    edited = api.status(m).jobs[0]
    with open(edited.output_path, "ab") as f:
        f.write(b"XX")
    again = api.run(m, report=False)
    assert again.exit_code == 0 and again.stats.spent_micros == 0
    line = next(s for s in api.runs(m) if s.run.id == again.run_id)  # its line of `status --runs`
    assert (line.done, line.cached, line.made_earlier) == (2, 1, 1), line
    assert main(["report", str(m)]) == 0
    capsys.readouterr()
    page = " ".join((tmp_path / "outputs" / "t" / "report.html").read_text().split())
    chips = {label: n for n, label in
             re.findall(r'<span class="chip cached[^"]*"[^>]*><b>([\d,]+)</b> ([^<]+)</span>', page)}
    assert chips == {"cached": "1", "made earlier": "1"}, chips
    assert "<dt>estimate of the jobs neither cached nor made earlier</dt><dd>$0.00</dd>" in page


def test_a_compare_of_a_run_and_its_re_render_counts_each_new_take_as_a_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 2 rendered both jobs again (`--force`), paying the same as run 1: each is another take, which the
    compare counts among the jobs that differ and marks, so "differences only" keeps it."""
    m, folder = forced_twice(tmp_path)
    assert main(["report", str(m), "--compare", "1", "2"]) == 0
    capsys.readouterr()
    html = (folder / "compare-1-2.html").read_text()
    compared = page_items(html)
    assert len(compared) == 2 and all(item.get("take") is True for item in compared.values()), compared
    assert "<b>2</b> differ in parameters, status, take or what was paid" in html


def test_a_run_of_another_manifest_sharing_the_state_is_named_with_its_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Manifest u asks what t rendered in run 1: its plan, its report's header and cards name that run "run 1 of
    t", not as one of u's own; the export keeps the run's number alone."""
    t = write_manifest(tmp_path, n_seeds=1, styles=("anime",), name="t")
    u = write_manifest(tmp_path, n_seeds=1, styles=("anime",), name="u")
    assert api.run(t, report=False).exit_code == 0
    capsys.readouterr()
    assert main(["plan", str(u)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "cached: done in run 1 of t" in out, out
    assert api.run(u, report=False).exit_code == 0
    assert main(["report", str(u)]) == 0
    assert main(["export", str(u), "--format", "json"]) == 0
    capsys.readouterr()
    html = (tmp_path / "outputs" / "u" / "report.html").read_text()
    m = re.search(r'<script type="application/json" id="gridrun-data">(.*?)</script>', html, re.DOTALL)
    assert m and json.loads(m.group(1))["otherRuns"] == {"1": "t"}
    assert "(run 1 of t)" in html
    rows = json.loads((tmp_path / "outputs" / "u" / "results.json").read_text())["rows"]
    assert [(r["cached_from_run"], r["paid_in_run"]) for r in rows] == [(1, 1)]


def test_status_runs_at_80_columns_keeps_its_header_words_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long `done` cell (cached, made earlier) goes on in the next line at a comma; the column naming how each
    run was started keeps its name whole."""
    import dataclasses

    from runner import cli

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    assert main(["run", str(m), "--no-report", "--allow-partial"]) == 0
    found = api.runs(m)
    monkeypatch.setattr(api, "runs", lambda *a, **k: [dataclasses.replace(s, jobs=12, done=12, cached=9, made=0)
                                                      for s in found])
    monkeypatch.setattr(cli.out, "width", 80)
    monkeypatch.setenv("COLUMNS", "80")  # drawn at the console's width off a terminal, not as wide as its rows
    capsys.readouterr()
    assert main(["status", str(m), "--runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # the start's offset from UTC, said once in the header: "started (+0100)"
    assert [w for w in lines[1].split() if not w.startswith("(")] == ["run", "started", "status", "done", "spent",
                                                                      "started", "with"], lines
    assert all(len(line) <= 80 for line in lines), lines
    words = " ".join(lines[2:]).split()
    assert {"12/12,", "cached,", "made", "earlier", "--no-report", "--allow-partial"} <= set(words), lines


def _links_hold_their_takes(folder: Path, page: str) -> dict[str, list[dict[str, Any]]]:
    """Every video the page links is the take of the job it links it for (its SHA-256); the page's jobs by key."""
    items = page_items((folder / page).read_text())
    for key, item in items.items():
        for job in item["jobs"]:
            if job is not None and "src" in job:
                assert not unquote(job["src"]).startswith(".."), (page, key, job["src"])
                assert sha256(folder / unquote(job["src"])) == job["sha"], (page, key, job["src"])
    return {key: item["jobs"] for key, item in items.items()}


def test_an_earlier_runs_video_edited_and_kept_aside_is_not_shown_as_the_take_put_back_in_its_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 1 renders fox videos, run 2 (prompt edited) bear videos at the same paths; the bear clay video is edited
    in place, and run 3 (the fox prompt back) keeps the edited file aside as one it cannot tell for its own and
    puts the fox take back at clay.mp4. Run 2's clay take is on disk nowhere: its report, results and comparison
    with run 3 link it to nothing (not to the fox video at its old path), and run 3's is linked at clay.mp4."""
    m, folder = set_aside(tmp_path / "p")
    with open(folder / "clay.mp4", "ab") as f:
        f.write(b"trimmed by hand")
    m.write_text(m.read_text().replace("a bear", "a fox"))
    assert api.run(m, report=False).exit_code == 0
    for argv in (["report", str(m), "--compare", "2", "3"], ["report", str(m), "--run", "2"],
                 ["export", str(m), "--run", "2", "--format", "json"]):
        assert main(argv) == 0, argv
    capsys.readouterr()
    compared = _links_hold_their_takes(folder, "compare-2-3.html")
    a, b = compared["style=clay"]
    assert "src" not in a and a["replaced"] is True, a
    assert unquote(b["src"]) == "clay.mp4", b
    assert "overwritten" not in page_items((folder / "compare-2-3.html").read_text())["style=clay"]
    assert "src" in compared["style=anime"][0] and "src" in compared["style=anime"][1]
    run2 = _links_hold_their_takes(folder, "report-run-2.html")
    assert "src" not in run2["style=clay"][0] and "src" in run2["style=anime"][0]
    rows = {r["key"]: r for r in json.loads((folder / "results-run-2.json").read_text())["rows"]}
    assert rows["style=clay"]["output_path"] is None
    assert sha256(folder / rows["style=anime"]["output_path"]) == rows["style=anime"]["sha256"]


def test_a_copys_report_of_an_earlier_run_whose_kept_videos_it_lost_links_nothing_outside_its_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A copy whose set-aside videos of run 1 were deleted, while the original still has its own: run 1's report,
    comparison and results in the copy say the videos are not kept, rather than link the original's."""
    set_aside(tmp_path / "p1")
    second = tmp_path / "p2"
    shutil.copytree(tmp_path / "p1", second, symlinks=True)
    shutil.rmtree(second / "outputs" / "t" / ".runs" / "superseded")
    copy, folder = second / "t.yaml", second / "outputs" / "t"
    assert api.run(copy, report=False).exit_code == 0
    for argv in (["report", str(copy), "--run", "1"], ["report", str(copy), "--compare", "1", "3"],
                 ["export", str(copy), "--run", "1", "--format", "json"]):
        assert main(argv) == 0, argv
    capsys.readouterr()
    for jobs in _links_hold_their_takes(folder, "report-run-1.html").values():
        assert jobs[0]["replaced"] is True and "src" not in jobs[0], jobs
    for jobs in _links_hold_their_takes(folder, "compare-1-3.html").values():
        assert jobs[0]["replaced"] is True and "src" not in jobs[0] and "src" in jobs[1], jobs
    rows = json.loads((folder / "results-run-1.json").read_text())["rows"]
    assert [(r["state"], r["output_path"]) for r in rows] == [("done", None)] * 2


def test_an_earlier_runs_videos_in_the_folder_outputs_dir_named_before_are_still_linked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`outputs_dir:` changed between runs: run 1's videos stay in the folder this state wrote then, which is the
    project's own (its lock names this state), so run 1's report and results still link them."""
    m = write_manifest(tmp_path, extra={"matrix": {"style": ["anime", "clay"]}, "output": "{{ style }}.mp4"})
    assert api.run(m, report=False).exit_code == 0
    m.write_text(m.read_text().replace("a fox", "a bear") + "outputs_dir: renders\n")
    assert api.run(m, report=False).exit_code == 0
    old, new = tmp_path / "outputs" / "t", tmp_path / "renders"
    assert main(["export", str(m), "--run", "1", "--format", "json"]) == 0
    capsys.readouterr()
    rows = json.loads((new / "results-run-1.json").read_text())["rows"]
    assert len(rows) == 2
    for row in rows:
        assert row["state"] == "done" and row["output_path"] is not None, row
        video = (new / row["output_path"]).resolve()
        assert video.parent == old.resolve() and sha256(video) == row["sha256"], row


def test_an_earlier_runs_videos_without_sidecars_are_hashed_once_while_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1's videos lost their sidecars: the first export of run 1 reads each to tell it holds run 1's take, the
    next ones read none (the state folder remembers their digests while the files are unchanged). A video edited in
    place since is read again, and is not the take."""
    import os

    from runner import outputs

    m = write_manifest(tmp_path, extra={"matrix": {"style": ["anime", "clay"]}, "output": "{{ style }}.mp4"})
    for _ in range(2):
        assert api.run(m, report=False).exit_code == 0
    folder = tmp_path / "outputs" / "t"
    hour_ago = os.stat(folder / "anime.mp4").st_mtime_ns - 3600 * 10**9
    for style in ("anime", "clay"):
        (folder / f"{style}.json").unlink()
        os.utime(folder / f"{style}.mp4", ns=(hour_ago, hour_ago))  # downloaded a while ago
    read: list[str] = []
    real = outputs.sha256_file
    monkeypatch.setattr(outputs, "sha256_file", lambda path: read.append(Path(path).name) or real(path))

    def export() -> dict[str, Any]:
        assert main(["export", str(m), "--run", "1", "--format", "json"]) == 0
        capsys.readouterr()
        return {r["key"]: r["output_path"] for r in json.loads((folder / "results-run-1.json").read_text())["rows"]}

    assert export() == {"style=anime": "anime.mp4", "style=clay": "clay.mp4"}
    assert sorted(read) == ["anime.mp4", "clay.mp4"]
    read.clear()
    assert export() == {"style=anime": "anime.mp4", "style=clay": "clay.mp4"}
    assert read == []
    with open(folder / "anime.mp4", "ab") as f:
        f.write(b"trimmed by hand")
    os.utime(folder / "anime.mp4", ns=(hour_ago, hour_ago))  # its time put back: the change is still seen
    assert export() == {"style=anime": None, "style=clay": "clay.mp4"}
    assert read == ["anime.mp4"]


def test_each_earlier_runs_videos_are_linked_in_its_own_folder_after_outputs_dir_changed_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`outputs_dir:` A, then B (run 2 caches run 1's videos into it), then C (a style added), where the anime copy
    is then edited in place: run 1's results link A's anime video, run 2's B's, the take each run left in its own
    folder, not "not kept" because the copy recorded now (C's) is edited; the clay copy in C, intact, is linked."""
    for home, styles in (("A", ["anime", "clay"]), ("B", ["anime", "clay"]), ("C", ["anime", "clay", "comic"])):
        m = write_manifest(tmp_path, extra={"matrix": {"style": styles}, "output": "{{ style }}.mp4",
                                            "outputs_dir": home})
        assert api.run(m, report=False).exit_code == 0
    with open(tmp_path / "C" / "anime.mp4", "ab") as f:
        f.write(b"trimmed by hand")
    for run, home in ((1, "A"), (2, "B")):
        assert main(["export", str(m), "--run", str(run), "--format", "json"]) == 0
        capsys.readouterr()
        rows = json.loads((tmp_path / "C" / f"results-run-{run}.json").read_text())["rows"]
        assert {r["key"]: r["output_path"] for r in rows} == {
            "style=anime": f"../{home}/anime.mp4", "style=clay": "clay.mp4"}, run
        for row in rows:
            assert sha256(tmp_path / "C" / row["output_path"]) == row["sha256"], row
    assert main(["export", str(m), "--format", "json"]) == 0  # the latest run's: not C's edited file, B's copy
    rows = json.loads((tmp_path / "C" / "results.json").read_text())["rows"]
    assert {r["key"]: r["output_path"] for r in rows} == {
        "style=anime": "../B/anime.mp4", "style=clay": "clay.mp4", "style=comic": "comic.mp4"}
    (tmp_path / "B" / "anime.mp4").unlink()  # run 2's copy gone: run 1's in A, the same take, is run 2's too
    assert main(["export", str(m), "--run", "2", "--format", "json"]) == 0
    rows = json.loads((tmp_path / "C" / "results-run-2.json").read_text())["rows"]
    assert {r["key"]: r["output_path"] for r in rows}["style=anime"] == "../A/anime.mp4"


def test_the_latest_runs_video_edited_in_place_is_not_linked_as_its_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run's anime video is edited in place after the run: its report and results no longer link it as the
    job's take (as those of an earlier run do not); the clay one, untouched, is."""
    m = write_manifest(tmp_path, extra={"matrix": {"style": ["anime", "clay"]}, "output": "{{ style }}.mp4"})
    assert api.run(m, report=False).exit_code == 0
    folder = tmp_path / "outputs" / "t"
    with open(folder / "anime.mp4", "ab") as f:
        f.write(b"trimmed by hand")
    for argv in (["report", str(m)], ["export", str(m), "--format", "json"]):
        assert main(argv) == 0, argv
    capsys.readouterr()
    jobs = _links_hold_their_takes(folder, "report.html")
    assert "src" not in jobs["style=anime"][0] and "src" in jobs["style=clay"][0]
    rows = {r["key"]: r["output_path"] for r in json.loads((folder / "results.json").read_text())["rows"]}
    assert rows == {"style=anime": None, "style=clay": "clay.mp4"}


def test_another_jobs_video_copied_over_one_with_its_times_kept_is_not_linked_as_its_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cp -p clay.mp4 anime.mp4` (a restore, `rsync -a`): the video is no newer than anime's sidecar, but not the
    length it records: the report and results do not link it as anime's take, as `plan` would fetch it again."""
    import shutil as sh

    m = write_manifest(tmp_path, extra={"matrix": {"style": ["anime", "clay"]}, "output": "{{ style }}.mp4"})
    assert api.run(m, report=False).exit_code == 0
    folder = tmp_path / "outputs" / "t"
    assert (folder / "anime.mp4").stat().st_size != (folder / "clay.mp4").stat().st_size
    assert json.loads((folder / "anime.json").read_text())["bytes"] == (folder / "anime.mp4").stat().st_size
    sh.copy2(folder / "clay.mp4", folder / "anime.mp4")
    assert main(["export", str(m), "--format", "json"]) == 0
    capsys.readouterr()
    rows = {r["key"]: r for r in json.loads((folder / "results.json").read_text())["rows"]}
    assert rows["style=anime"]["output_path"] is None and rows["style=clay"]["output_path"] == "clay.mp4", rows


def test_no_such_run_names_the_manifest_given_when_another_of_its_name_ran_last(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """t.yaml and a variant of it keeping `name: t` share the state, the variant ran last: `report t.yaml --run 99`
    sends the user to `status t.yaml --runs`, the file they named, not the variant."""
    t = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    hq = tmp_path / "t-hq.yaml"
    hq.write_text(t.read_text().replace("360p", "540p"))
    for m in (t, hq):
        assert api.run(m, report=False).exit_code == 0
    capsys.readouterr()
    for argv in (["report", str(t), "--run", "99"], ["report", str(t), "--compare", "1", "99"]):
        assert main(argv) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert f"(`gridrun status {t.resolve()} --runs` lists them)" in err and "t-hq" not in err, err


def test_an_earlier_runs_set_aside_video_edited_in_place_is_not_linked_as_its_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 1's anime video, set aside by a prompt edit, is then edited in place (its sidecar left as it was): run 1's
    report and results no longer link it as run 1's take, whose bytes are nowhere; the clay one, untouched, is."""
    import os

    m, folder = set_aside(tmp_path / "p")
    aside = next((folder / ".runs" / "superseded").glob("*/anime.mp4"))
    with open(aside, "ab") as f:
        f.write(b"trimmed by hand")
    later = aside.with_suffix(".json").stat().st_mtime_ns + 1_000_000_000
    os.utime(aside, ns=(later, later))  # edited after its sidecar was written
    for argv in (["report", str(m), "--run", "1"], ["export", str(m), "--run", "1", "--format", "json"]):
        assert main(argv) == 0, argv
    capsys.readouterr()
    jobs = _links_hold_their_takes(folder, "report-run-1.html")
    assert "src" not in jobs["style=anime"][0] and jobs["style=anime"][0]["replaced"] is True
    assert "src" in jobs["style=clay"][0]
    rows = {r["key"]: r["output_path"] for r in json.loads((folder / "results-run-1.json").read_text())["rows"]}
    assert rows["style=anime"] is None and rows["style=clay"] is not None


def test_a_compare_sets_what_each_run_paid_for_a_job_not_what_its_take_cost_when_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 3 caches the takes run 2 paid for: it paid nothing for them. Compared with run 2 or run 1, each job's
    "Δ paid" is run 3's $0 less what the other run paid; compared the other way round, what run 2 paid less run
    3's $0. Against run 1 (another take) the jobs differ; against run 2 (the very video run 3 cached) they do
    not: the same video, only paid by one of the runs."""
    m, folder = forced_twice(tmp_path)
    assert api.run(m, report=False).exit_code == 0  # run 3: cached, $0
    for argv in (["report", str(m), "--compare", "2", "3"], ["report", str(m), "--compare", "1", "3"],
                 ["report", str(m), "--compare", "3", "2"]):
        assert main(argv) == 0
    capsys.readouterr()
    for a, b in ((2, 3), (1, 3), (3, 2)):
        html = (folder / f"compare-{a}-{b}.html").read_text()
        for item in page_items(html).values():
            paid = [j["cost"] if j.get("paid") == run else 0 for j, run in zip(item["jobs"], (a, b))]
            assert paid.count(0) == 1 and item.get("dcost") == paid[1] - paid[0] != 0, (a, b, item)
            assert item.get("same", False) is (1 not in (a, b)) and item.get("take", False) is (1 in (a, b)), item
        assert f"<b>{2 if 1 in (a, b) else 0}</b> differ in parameters, status, take or what was paid" in html


def test_status_runs_counts_the_videos_a_failed_re_render_kept_as_made_earlier_not_cached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 2's re-renders (`--force`) fail: each job is done as before, its earlier video kept. `status --runs`
    says so as README does ("2 made earlier"), not "2 cached": run 2 found nothing cached, it tried again."""
    m, _ = forced_twice(tmp_path, failure_rate=1.0)
    rows = {r["run"]: r for r in api.runs_json(api.runs(m))}
    assert (rows[2]["done"], rows[2]["cached"], rows[2]["made"]) == (2, 0, 0)
    assert rows[2]["status"] == "failed" and rows[2]["all_done_since"] is False  # its jobs were done as it ended
    assert main(["status", str(m), "--runs"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.split()[:1] == ["2"]}
    assert "2/2, 2 made earlier" in lines["2"] and "cached" not in lines["2"], lines
    assert "all done since" not in lines["2"], lines


def test_the_report_of_a_run_whose_re_renders_failed_says_which_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 2's re-renders (`--force`) fail, each job done as before: its report says so in the header, as `status`
    does, and gives each job the error of its failed re-render (its cell, the details view, the table read
    without JavaScript); run 1's report says nothing of it."""
    m, folder = forced_twice(tmp_path, failure_rate=1.0)
    for argv in (["report", str(m)], ["report", str(m), "--run", "1"]):
        assert main(argv) == 0
    capsys.readouterr()
    html = (folder / "report.html").read_text()
    note = ("2 re-renders of done jobs (--force) failed: the earlier videos kept, the jobs done as before"
            " (`gridrun run --force` tries again, paying again)")
    assert f'<p class="rerenders-failed">{note}</p>' in html
    errors = api.status(m).rerenders_failed
    assert len(errors) == 2 and all(error for _, error in errors)
    items = page_items(html)
    for key, error in errors:
        job = items[key]["jobs"][0]
        assert job["state"] == "done" and job["rerr"] == error
        assert f"re-render (--force) failed, the earlier video kept: {error}" in html  # the table without JavaScript
    earlier = (folder / "report-run-1.html").read_text()
    assert '<p class="rerenders-failed">' not in earlier
    assert all("rerr" not in item["jobs"][0] for item in page_items(earlier).values())


def test_an_earlier_runs_report_still_says_which_of_its_re_renders_failed_after_later_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 2's re-renders (`--force`) fail; run 3 caches both jobs, run 4 (`--force`) re-renders them: run 2's
    report and its compare with run 1 still say which failed and why, as its own report did, though the jobs'
    latest attempts are run 4's."""
    from runner.executor import RunOptions

    m, folder = forced_twice(tmp_path, failure_rate=1.0)
    errors = api.status(m).rerenders_failed
    assert len(errors) == 2 and all(error for _, error in errors)
    assert api.run(m, report=False).exit_code == 0  # run 3: cached
    assert api.run(m, options=RunOptions(force=True), report=False).exit_code == 0  # run 4: new takes
    for argv in (["report", str(m), "--run", "2"], ["report", str(m), "--compare", "1", "2"]):
        assert main(argv) == 0
    capsys.readouterr()
    html = (folder / "report-run-2.html").read_text()
    assert '<p class="rerenders-failed">2 re-renders of done jobs (--force) failed' in html
    items = page_items(html)
    for key, error in errors:
        assert items[key]["jobs"][0]["rerr"] == error
    compared = page_items((folder / "compare-1-2.html").read_text())
    assert {key: compared[key]["jobs"][1].get("rerr") for key, _ in errors} == dict(errors)


def test_a_run_whose_re_renders_failed_is_not_billed_for_the_earlier_videos_after_a_later_re_render(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 2's re-renders (`--force`) fail, paying nothing; run 3 (`--force`) re-renders both jobs. Run 2's export
    and report still give each job's video to run 1, which made it: run 2's own figures sum to what it paid ($0),
    and its header says the videos cost what they did in run 1."""
    from runner.executor import RunOptions

    m, folder = forced_twice(tmp_path, failure_rate=1.0)
    made = _this_run(m, 1)["done_cost_usd"]
    assert api.run(m, options=RunOptions(force=True), report=False).exit_code == 0  # run 3: new takes
    for argv in (["export", str(m), "--run", "2", "--format", "json"], ["report", str(m), "--run", "2"]):
        assert main(argv) == 0
    capsys.readouterr()
    doc = json.loads((folder / "results-run-2.json").read_text())
    assert [(r["paid_in_run"], r["cost_this_run_usd"]) for r in doc["rows"]] == [(1, 0.0)] * 2
    s = doc["summary"]
    assert s["spent_usd"] == s["cost_this_run_usd"] == 0.0 and s["cost_by_run"] == {"1": pytest.approx(made)}
    html = (folder / "report-run-2.html").read_text()
    money = dict(re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", html, re.DOTALL))
    assert re.sub(r"<[^>]+>", "", money["these 2 jobs cost when made"]) == f"${made:,.2f} (run 1)"


def test_a_compare_names_the_run_that_sent_a_new_take_apart_from_the_run_that_paid_for_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 2 (`--force`) sends both re-renders and stops before they end (its timeout); run 3, a plain run, collects
    them and is charged for them. A compare of runs 1 and 3 says each new take was sent by run 2 and paid in
    run 3, not "rendered in run 3"."""
    from runner.executor import RunOptions

    m = write_manifest(tmp_path, extra={"matrix": {"style": ["anime", "clay"]}, "output": "{{ style }}.mp4"},
                       sim={"render_time": 1.0, "jitter": 0.0})
    prov = sim_provider(m)
    assert api.run(m, provider=prov, report=False).exit_code == 0
    api.run(m, provider=prov, options=RunOptions(force=True, timeout=0.2), report=False)
    assert api.run(m, provider=prov, report=False).exit_code == 0
    assert main(["report", str(m), "--compare", "1", "3"]) == 0
    capsys.readouterr()
    items = page_items((tmp_path / "outputs" / "t" / "compare-1-3.html").read_text())
    assert len(items) == 2
    for item in items.values():
        assert item.get("take") is True and item["jobs"][1]["paid"] == 3 and item["jobs"][1]["sent"] == 2, item
        assert "sent" not in item["jobs"][0]  # run 1 sent and paid for its own take


def test_a_re_render_of_unknown_outcome_shows_the_earlier_take_still_at_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 2's re-renders (`--force`) are sent, their creates' answers lost: each job ends `unknown`,
    its earlier video still whole at its path (nothing new arrived to move it aside). The report shows that take
    as it does a re-render in flight (its link, poster, what it cost and the run that made it), marked as a
    re-render of unknown outcome, and `status` counts it among the re-renders; the job's state stays `unknown`."""
    from execkit import quick_backoff

    from runner import executor as ex_mod
    from runner.executor import RunOptions
    from runner.outputs import poster_path

    monkeypatch.setattr(ex_mod, "LOG_SETTLE", 0.2)
    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, extra={"matrix": {"style": ["anime", "clay"]}, "output": "{{ style }}.mp4"})
    folder = tmp_path / "outputs" / "t"
    prov = sim_provider(m)
    assert api.run(m, provider=prov, report=False).exit_code == 0
    # each create is made, its answer lost, while the provider's request log is down
    prov.app.state.sim.configure({"script": [{"route": "create", "nth": list(range(1, 13)), "fault": "reset_after"},
                                             {"route": "requests", "p": 1.0, "fault": "server_error"}]})
    api.run(m, provider=prov, options=RunOptions(force=True, request_timeout=1.0), report=False)
    snap = api.status(m)
    assert [j.state for j in snap.jobs] == ["unknown", "unknown"], [(j.key, j.state) for j in snap.jobs]
    assert all(j.earlier is not None and j.earlier.run == 1 and Path(j.earlier.output_path).is_file()
               for j in snap.jobs), snap.jobs
    assert main(["status", str(m), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rerendering"] == 2
    assert main(["report", str(m)]) == 0
    capsys.readouterr()
    html = (folder / "report.html").read_text()
    items = page_items(html)
    for job in snap.jobs:
        shown = items[job.key]["jobs"][0]
        assert job.earlier is not None
        path = Path(job.earlier.output_path)
        assert shown["state"] == "unknown"
        assert shown["src"] == path.relative_to(folder).as_posix(), shown
        assert shown["poster"] == poster_path(path).relative_to(folder).as_posix(), shown
        assert shown["rerender"] == {"cost": job.earlier.cost_micros, "run": 1}, shown
    assert "unknown (a re-render of unknown outcome: run 1's take shown, kept until a new one arrives)" in html


def test_the_report_of_a_run_whose_re_renders_failed_counts_their_videos_as_made_earlier_not_cached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 2's re-renders (`--force`) fail, each job put back done as it was: `status --runs` says "2 made
    earlier", and so does the page's header, not "2 cached"; each job's line in the table read without
    JavaScript says its video was made earlier in run 1. The export's `cached` keeps its meaning (the jobs with a
    `cached_from_run`). The same page of run 2 after a later run says the same."""
    m, folder = forced_twice(tmp_path, failure_rate=1.0)

    def header(html: str) -> str:
        return html[html.index('<div class="counts">'):html.index('<dl class="money">')]

    assert main(["report", str(m)]) == 0
    html = (folder / "report.html").read_text()
    assert '<b>2</b> made earlier</span>' in header(html) and "cached</span>" not in header(html), header(html)
    assert html.count("done (made earlier in run 1)") == 2 and "(cached from run 1)" not in html
    assert all(item["jobs"][0]["kept"] is True for item in page_items(html).values())
    assert main(["export", str(m), "--format", "json"]) == 0
    assert json.loads((folder / "results.json").read_text())["summary"]["cached"] == 2
    assert api.run(m, provider=sim_provider(m), report=False).exit_code == 0  # run 3: both cached
    assert main(["report", str(m)]) == 0
    assert main(["report", str(m), "--run", "2"]) == 0
    capsys.readouterr()
    latest = (folder / "report.html").read_text()
    assert '<b>2</b> cached</span>' in header(latest) and "made earlier" not in header(latest)
    earlier = (folder / "report-run-2.html").read_text()
    assert '<b>2</b> made earlier</span>' in header(earlier) and "cached</span>" not in header(earlier)
