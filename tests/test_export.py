from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent / "browser"))

from demo_state import Clock, build_state, fox_jobs, renamed_run  # noqa: E402

from runner.errors import UsageError  # noqa: E402
from runner.export import ROW_FIELDS, export_rows, iso, summary, write_exports  # noqa: E402
from runner.report import export_rows as reexported  # noqa: E402
from runner.state import JobState, Store  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def run(tmp_path: Path, jobs: list[dict[str, Any]] | None = None, **kw: Any) -> tuple[Store, int]:
    states = {("clay", 2): "failed", ("clay", 3): "running", ("cyberpunk", 4): "planned"}
    return build_state(tmp_path, fox_jobs(states) if jobs is None else jobs, **kw)


def test_one_row_per_job_in_plan_order_with_documented_columns(tmp_path: Path) -> None:
    store, run_id = run(tmp_path)
    rows = export_rows(store.snapshot(run_id))
    assert reexported is export_rows
    assert [r["key"] for r in rows][:3] == ["style=anime,seed=1", "style=anime,seed=2", "style=anime,seed=3"]
    assert len(rows) == 12
    for row in rows:
        assert tuple(row) == ROW_FIELDS
    done = rows[0]
    assert done["values"] == {"style": "anime", "seed": 1}
    assert done["state"] == "done" and done["error"] is None
    assert done["output_path"] == "anime/1.mp4"
    assert re.fullmatch(r"[0-9a-f]{64}", done["sha256"]) and re.fullmatch(r"[0-9a-f]{64}", done["hash"])
    assert done["cost_estimate_usd"] == 0.2 and done["cost_reported_usd"] == 0.2
    assert done["prompt"] == "a red fox running through fresh snow, anime style"
    assert done["attempts"] == 1 and done["provider_id"].startswith("vid_")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", done["submitted_at"])
    assert done["render_seconds"] is not None and done["render_seconds"] > 0
    assert (done["width"], done["height"], done["duration"]) == (96, 54, 1.0)
    failed = next(r for r in rows if r["key"] == "style=clay,seed=2")
    assert failed["state"] == "failed" and "moderation" in failed["error"]
    assert failed["cost_reported_usd"] is None and failed["sha256"] is None
    pending = next(r for r in rows if r["key"] == "style=cyberpunk,seed=4")
    assert pending["state"] == "planned" and pending["submitted_at"] is None and pending["attempts"] == 0


def test_iso_times_are_utc_with_milliseconds() -> None:
    assert iso(0.25) == "1970-01-01T00:00:00.250Z"
    assert iso(1_764_000_000.9996) == "2025-11-24T16:00:01.000Z"
    assert iso(None) is None


def test_write_exports_writes_every_format_into_the_run_folder(tmp_path: Path) -> None:
    store, run_id = run(tmp_path)
    paths = write_exports(store, manifest_name="fox-styles")
    out = tmp_path / "outputs" / "fox-styles"
    assert paths == [out / "results.jsonl", out / "results.csv", out / "results.json"]
    lines = (out / "results.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == export_rows(store.snapshot(run_id))
    doc = json.loads((out / "results.json").read_text())
    assert doc["version"] == 2 and len(doc["rows"]) == 12
    counts = doc["summary"]["counts"]
    assert {k: n for k, n in counts.items() if n} == {"planned": 1, "running": 1, "done": 9, "failed": 1}
    assert list(counts) == [s.value for s in JobState]  # every state, zeros included, as `status --json`
    assert doc["summary"]["groups"] == {"pending": 1, "running": 1, "done": 9, "failed": 1, "unknown": 0,
                                        "expired": 0, "cancelled": 0}
    assert doc["summary"]["spent_usd"] == 1.8 and doc["summary"]["reserved_usd"] == 0.2
    assert not list(out.glob(".*tmp"))


def test_csv_spreads_values_into_columns(tmp_path: Path) -> None:
    jobs = fox_jobs({})[:2] + [{"values": {"style": "comic", "seed": 42, "extra": {"lora": "x", "w": 0.5}}, "state": "planned"}]
    store, run_id = run(tmp_path, jobs)
    (path,) = write_exports(store, formats=["csv"], directory=tmp_path / "x")
    assert path == tmp_path / "x" / "results.csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    header = path.read_text().splitlines()[0].split(",")
    assert header[:6] == ["key", "sweep", "hash", "values.style", "values.seed", "values.extra"]
    assert header[6:] == list(ROW_FIELDS[4:])
    assert rows[0]["values.style"] == "anime" and rows[0]["values.seed"] == "1" and rows[0]["values.extra"] == ""
    assert json.loads(rows[2]["values.extra"]) == {"lora": "x", "w": 0.5}
    assert rows[2]["sha256"] == "" and rows[2]["sweep"] == ""


def test_csv_writes_money_as_fixed_decimals_and_json_as_numbers(tmp_path: Path) -> None:
    """Money columns read as money in a spreadsheet: at least 2 decimals, at most 6, never an exponent (a float
    would write 0.8 beside 0.35, 1e-06, 990000.0); JSON keeps them numbers."""
    from runner.export import to_csv, to_jsonl

    store, run_id = run(tmp_path)
    rows = export_rows(store.snapshot(run_id))[:4]
    figures = [(0.8, 0.35, 0.0, 1e-06), (990000.0, None, 1.6, 2.310045), (0.077003, 0.5, 12.0, 0.1),
               (1e-05, 0.000123, 1234567.5, 0.2)]
    money = ("cost_estimate_usd", "cost_reported_usd", "cost_this_run_usd", "cost_usd")
    for row, values in zip(rows, figures):
        row.update(zip(money, values))
    table = list(csv.DictReader(io.StringIO(to_csv(rows, ("style", "seed")))))
    assert [[r[c] for c in money] for r in table] == [
        ["0.80", "0.35", "0.00", "0.000001"], ["990000.00", "", "1.60", "2.310045"],
        ["0.077003", "0.50", "12.00", "0.10"], ["0.00001", "0.000123", "1234567.50", "0.20"]]
    assert [json.loads(line)["cost_usd"] for line in to_jsonl(rows).splitlines()] == [1e-06, 2.310045, 0.1, 0.2]


def test_every_format_names_the_run_its_rows_describe_in_a_last_column(tmp_path: Path) -> None:
    """results.* are written by `gridrun export` alone, so a later run leaves them as they were: each row says
    which run it describes (`run`, the last column of version 2 as it came out, where later columns follow it)."""
    store, run_id = run(tmp_path)
    out = tmp_path / "outputs" / "fox-styles"
    write_exports(store, manifest_name="fox-styles")
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    # columns added since come after it: those before it keep their places
    assert ROW_FIELDS.index("run") == 25 and header[-10:] == ["run", "provider", "endpoint", "simulated", "ended_at",
                                                               "error_code", "failed_attempts", "same_code", "request_id",
                                                               "cost_with_failed_attempts_usd"]
    assert {r["run"] for r in csv.DictReader(io.StringIO((out / "results.csv").read_text()))} == {str(run_id)}
    assert {json.loads(line)["run"] for line in (out / "results.jsonl").read_text().splitlines()} == {run_id}
    doc = json.loads((out / "results.json").read_text())
    assert {r["run"] for r in doc["rows"]} == {doc["summary"]["run"]["id"]} == {run_id}


def test_csv_text_cells_a_spreadsheet_would_run_as_formulas_are_kept_as_text(tmp_path: Path) -> None:
    evil = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://evil","x")', "+1+2", "-2+3", "@SUM(A1)",
            "-inf", "-nan", "-1_0"]  # numbers to Python, not to a spreadsheet
    jobs = [{"values": {"style": v, "seed": i}, "state": "planned"} for i, v in enumerate(evil)]
    jobs.append({"values": {"style": "fine", "seed": -3}, "state": "planned"})
    jobs.append({"values": {"style": "-0.5", "seed": 9}, "state": "planned"})  # a number read as text
    jobs.append({"values": {"style": "float", "seed": float("-inf")}, "state": "planned"})
    store, _ = run(tmp_path, jobs)
    (path,) = write_exports(store, formats=["csv"], directory=tmp_path / "x")
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [r["values.style"] for r in rows] == ["'" + v for v in evil] + ["fine", "-0.5", "float"]
    assert rows[-3]["values.seed"] == "-3"  # a number stays a number
    assert rows[-1]["values.seed"] == "'-inf"


def test_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    store, _ = run(tmp_path)
    with pytest.raises(UsageError, match="xml"):
        write_exports(store, formats=["jsonl", "xml"])
    assert not (tmp_path / "outputs" / "fox-styles" / "results.jsonl").exists()


def test_summary_counts_cached_jobs_apart(tmp_path: Path) -> None:
    clock = Clock()
    store, run_id = run(tmp_path, fox_jobs({})[:3], clock=clock)
    snap = store.snapshot(run_id)
    run2 = store.start_run(manifest_name="fox-styles", manifest_path="m.yaml", manifest_copy="", outputs_dir=snap.run.outputs_dir,
                           provider="sim", model="m", axes=["style", "seed"], budget_micros=None)
    ids = store.add_jobs(run2, [{"hash": j.hash, "key": j.key, "values": j.values, "params": j.params, "output_path": j.output_path,
                                 "cost_estimate_micros": j.cost_estimate_micros} for j in snap.jobs])
    for job_id in ids.values():
        store.mark_cached(run2, job_id, run_id)
    s = summary(store.snapshot(run2))
    assert s["cached"] == 3 and s["estimate_usd"] == 0 and s["spent_usd"] == 0
    assert [r["cached_from_run"] for r in export_rows(store.snapshot(run2))] == [run_id] * 3


def test_a_rerendered_jobs_reported_cost_is_its_new_attempts_not_the_earlier_ones(tmp_path: Path) -> None:
    """A --force run sends a done job again: in flight, its row reports no cost (the earlier attempt's is not
    this one's); a new attempt that never reached the provider puts the job back with its cost."""
    clock = Clock()
    store, run_id = run(tmp_path, fox_jobs({})[:2], clock=clock)
    snap = store.snapshot(run_id)
    paid = export_rows(snap)[1]["cost_reported_usd"]
    assert paid
    run2 = store.start_run(manifest_name="fox-styles", manifest_path="m.yaml", manifest_copy="", outputs_dir=snap.run.outputs_dir,
                           provider="sim", model="m", axes=["style", "seed"], budget_micros=None)
    ids = store.add_jobs(run2, [{"hash": j.hash, "key": j.key, "values": j.values, "params": j.params, "output_path": j.output_path,
                                 "cost_estimate_micros": j.cost_estimate_micros} for j in snap.jobs])
    first, second = (ids[j.hash] for j in snap.jobs)
    for job_id in (first, second):
        store.reset(job_id, "--force")
    store.begin_submit(run2, [first, second])
    store.transition(first, JobState.SUBMITTED, provider_id="video_new")
    rows = export_rows(store.snapshot(run2))
    assert [(r["state"], r["cost_reported_usd"]) for r in rows] == [("submitted", None), ("submitting", None)]
    assert summary(store.snapshot(run2))["done_cost_usd"] == 0
    store.void_attempt(second, "never reached the provider")
    rows = export_rows(store.snapshot(run2))
    assert [(r["state"], r["cost_reported_usd"]) for r in rows] == [("submitted", None), ("done", paid)]


def test_exports_md_documents_every_column() -> None:
    text = (REPO / "reports" / "EXPORTS.md").read_text().split("\n## ", 1)[0]  # the columns' table; not the others
    documented: list[str] = []
    for line in text.splitlines():
        m = re.match(r"\| (`[^|]+`) \|", line)
        if m:
            documented += re.findall(r"`([a-z_0-9]+)`", m.group(1))
    assert documented == list(ROW_FIELDS)


def test_a_moved_project_gets_no_report_in_its_old_place_and_a_run_puts_it_right(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The state records absolute paths: after the project folder moves, `report` and `export` refuse (and do
    not make the old folder again); `run` finds the videos where the manifest now puts them, paying nothing."""
    from execkit import write_manifest

    from runner import api
    from runner.cli import main

    old = tmp_path / "old"
    old.mkdir()
    m = write_manifest(old, n_seeds=1, styles=("anime",))
    api.run(m)
    new = tmp_path / "new"
    old.rename(new)
    moved = new / m.name
    for command in ("report", "export"):
        assert main([command, str(moved)]) == 1  # not a usage error: what the state names is gone
        err = capsys.readouterr().err
        assert "output folder is gone (moved or deleted" in err and "Traceback" not in err, err
        assert f"The manifest now names {new / 'outputs' / 't'}: `gridrun run` on it" in err, err
        assert not old.exists()
    again = api.run(moved)
    assert again.exit_code == 0 and again.stats.cached == 1 and again.stats.spent_micros == 0
    assert again.report is not None and again.report.parent == new / "outputs" / "t"
    assert main(["export", str(moved)]) == 0 and (new / "outputs" / "t" / "results.csv").is_file()
    # run 1's folder is gone: the comparison goes where run 2 put its report, and links the videos there
    assert main(["report", str(moved), "--compare", "1", "2"]) == 0
    page = (new / "outputs" / "t" / "compare-1-2.html").read_text()
    assert "anime" in page and not old.exists()
    assert main(["report", str(moved), "--compare", "1", "1"]) == 2  # a run beside itself compares nothing
    assert not (new / "outputs" / "t" / "compare-1-1.html").exists() and not old.exists()


def test_a_copied_project_writes_no_report_or_results_into_the_original(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy's state names the original's folder, which is still there: `report` and `export` of the copy
    refuse rather than write the copy's run over the original's files; `run` in the copy puts it right."""
    import shutil

    from execkit import write_manifest

    from runner import api
    from runner.cli import main

    first = tmp_path / "p1"
    first.mkdir()
    m = write_manifest(first, n_seeds=1, styles=("anime",))
    api.run(m)
    m.write_text(m.read_text().replace("a fox", "a bear"))
    api.run(m)
    second = tmp_path / "p2"
    shutil.copytree(first, second, symlinks=True)
    m.write_text(m.read_text().replace("a bear", "a wolf"))
    api.run(m)
    api.export(m)
    original = first / "outputs" / "t"
    before = {p.name: p.read_bytes() for p in original.iterdir() if p.is_file()}
    assert "run 3" in before["report.html"].decode()
    copy = second / m.name
    for argv in (["report", str(copy)], ["export", str(copy)], ["report", str(copy), "--compare", "1", "2"]):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert "copied or moved" in err and "`gridrun run`" in err and "Traceback" not in err, err
        assert {p.name: p.read_bytes() for p in original.iterdir() if p.is_file()} == before
    assert not list((second / "outputs" / "t").glob("results.*"))
    assert not list(tmp_path.rglob("compare-*.html"))
    # the state folder alone (no manifest to compare with): the run's recorded folder, as before
    monkeypatch.chdir(second)
    assert api.export(None, formats=["csv"]) == [original / "results.csv"]
    again = api.run(copy)
    assert again.exit_code == 0 and again.stats.cached == 1 and again.stats.spent_micros == 0
    assert again.report is not None and again.report.parent == second / "outputs" / "t"
    assert main(["report", str(copy)]) == 0 and "run 3" in (second / "outputs" / "t" / "report.html").read_text()
    assert main(["export", str(copy)]) == 0 and (second / "outputs" / "t" / "results.csv").is_file()
    assert main(["report", str(copy), "--compare", "1", "2"]) == 0
    assert (second / "outputs" / "t" / "compare-1-2.html").is_file() and not (original / "compare-1-2.html").exists()


def test_checkouts_sharing_a_state_dir_each_report_and_export_their_own_folders_latest_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two checkouts whose manifests name one `state_dir:` folder, each run once (the second copies the videos,
    paying nothing): `report` and `export` in the first write the latest run of its own folder, saying that the
    state's latest run wrote the other checkout's; `status` names that run's manifest file. `report --run` of the
    other checkout's run is written beside it, as an earlier run's."""
    from execkit import write_manifest

    from runner import api
    from runner.cli import main

    shared = tmp_path / "shared-state"
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    m1 = write_manifest(one, n_seeds=1, styles=("anime",), extra={"state_dir": str(shared)})
    m2 = two / m1.name
    shutil.copyfile(m1, m2)
    assert api.run(m1).exit_code == 0
    second = api.run(m2)
    assert second.exit_code == 0 and second.stats.cached == 1 and second.stats.spent_micros == 0
    mine = one / "outputs" / "t"
    theirs = {p.name: p.read_bytes() for p in (two / "outputs" / "t").iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["report", str(m1)]) == 0, capsys.readouterr().err
    err = " ".join(capsys.readouterr().err.split())
    assert (f"run 2 of the state wrote {two / 'outputs' / 't'} (another checkout sharing this state, manifest "
            f"{m2}): this is run 1, the latest run of {mine}; `gridrun report --run 2` writes that run's report here "
            "too (report-run-2.html)") in err, err
    page = (mine / "report.html").read_text()
    assert "<title>t · run 1" in page and "two/" not in page
    assert main(["export", str(m1)]) == 0, capsys.readouterr().err
    assert "run 2 of the state wrote" in capsys.readouterr().err
    doc = json.loads((mine / "results.json").read_text())
    assert doc["summary"]["run"]["id"] == 1 and doc["rows"][0]["output_path"] == "anime/seed-1.mp4"
    assert {p.name: p.read_bytes() for p in (two / "outputs" / "t").iterdir() if p.is_file()} == theirs
    assert main(["report", str(m1), "--run", "2"]) == 0
    assert (mine / "report-run-2.html").is_file()
    capsys.readouterr()
    assert main(["status", str(m1)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"run 2 was made from {m2}" in out, out
    assert main(["status", str(m1), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["run"], doc["manifest_path"]) == (2, str(m2)), doc
    # a third checkout that never ran: no run wrote its folder, so nothing is written there, and the refusal says so
    three = tmp_path / "three"
    (three / "outputs" / "t").mkdir(parents=True)
    shutil.copyfile(m1, three / m1.name)
    assert main(["report", str(three / m1.name)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "no run of this state wrote this folder yet" in err and "`gridrun run`" in err, err
    assert not list((three / "outputs" / "t").iterdir())
    # the other checkout's own report is its run's, as before
    assert main(["report", str(m2)]) == 0 and "run 2" in (two / "outputs" / "t" / "report.html").read_text()
    assert "another checkout" not in capsys.readouterr().err


def _deny_reading(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make gridrun's reading of the videos in `folder` refused as a teammate's folder this user may not enter
    refuses it (EACCES), whoever runs the test (root reads everything)."""
    import os

    from runner import outputs

    class Denying:
        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        @staticmethod
        def stat(path: Any, *args: Any, **kw: Any) -> os.stat_result:
            if str(path).startswith(str(folder) + os.sep):
                raise PermissionError(13, "Permission denied", str(path))
            return os.stat(path, *args, **kw)

    monkeypatch.setattr(outputs, "os", Denying())


def test_a_video_not_readable_here_holds_its_take_only_where_reports_ask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`holds_take` refused reading a video: not the take for a run (which fetches or refuses as before); in an
    `unreadable_videos` block (report, export) the take, recorded with the owner and mode of what refused it."""
    from runner.outputs import holds_take, unreadable_videos, unreadable_why

    folder = tmp_path / "clay"
    folder.mkdir()
    video = folder / "seed-1.mp4"
    video.write_bytes(b"video")
    _deny_reading(monkeypatch, folder)
    assert holds_take(video, "h", "0" * 64) is False
    with unreadable_videos() as found:
        assert holds_take(video, "h", "0" * 64) is True
        assert unreadable_why(str(video)) == found[str(video)]
    st = folder.stat()
    assert found == {str(video): f"its folder {folder}: owner uid {st.st_uid}, group {st.st_gid}, "
                                 f"mode {st.st_mode & 0o7777:04o}"}
    assert unreadable_why(str(video)) is None
    with unreadable_videos() as found:  # a file that is not there is not taken for one that is
        assert holds_take(tmp_path / "gone.mp4", "h", "0" * 64) is False
    assert found == {}


@pytest.mark.parametrize("how", ["mocked", "chmod"])
def test_videos_this_user_may_not_read_are_named_not_readable_not_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A teammate's videos this user may not read (their folder mode 0700, say): `export` keeps their
    `output_path` and `report` shows them as not readable here, naming the file and its folder's owner and mode,
    with a warning line; neither calls them missing nor advises a paid retry."""
    import os

    from execkit import write_manifest

    from runner import api
    from runner.cli import main

    if how == "chmod" and os.geteuid() == 0:
        pytest.skip("root reads every file")
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime", "clay"))
    assert api.run(m).exit_code == 0
    out = tmp_path / "outputs" / "t"
    denied = out / "clay"
    if how == "mocked":
        _deny_reading(monkeypatch, denied)
    else:
        denied.chmod(0o000)
    try:
        capsys.readouterr()
        assert main(["export", str(m)]) == 0
        err = " ".join(capsys.readouterr().err.split())
        assert (f"warning: 1 video could not be read here: Permission denied: {denied / 'seed-1.mp4'} (its folder "
                f"{denied}: owner uid {os.geteuid()}") in err, err
        assert "retry" not in err
        rows = {r["key"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
        assert rows["style=clay,seed=1"]["output_path"] == "clay/seed-1.mp4"
        assert rows["style=clay,seed=1"]["state"] == "done"
        assert rows["style=anime,seed=1"]["output_path"] == "anime/seed-1.mp4"
        assert main(["report", str(m)]) == 0
        err = " ".join(capsys.readouterr().err.split())
        assert "warning: 1 video could not be read here: Permission denied" in err and "retry" not in err, err
        page = (out / "report.html").read_text()
        assert "<td>video not readable here (permission denied): clay/seed-1.mp4 (its folder" in page
        data = json.loads(re.search(r'<script type="application/json" id="gridrun-data">(.*?)</script>', page, re.DOTALL)[1])
        clay = [j for it in data["items"] for j in it["jobs"] if j and j["p"].get("style") == "clay"]
        assert clay and all("unread" in j and "missing" not in j and "replaced" not in j and "src" not in j
                            for j in clay), clay
    finally:
        if how == "chmod":
            denied.chmod(0o755)


def test_an_earlier_runs_results_written_into_a_renamed_output_folder_name_its_videos_from_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 1 writes into outputs/t; the manifest then names `outputs_dir: renamed` and run 2 finds the videos
    there, paying nothing. `export --run 1` writes results-run-1.* into renamed/ beside run 2's: each row's
    `output_path` names the video from that folder (as report-run-1.html links it), not from outputs/t."""
    import yaml
    from execkit import sim_provider, write_manifest

    from runner import api
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1)
    prov = sim_provider(m)
    first = api.run(m, provider=prov, report=False)
    doc = yaml.safe_load(m.read_text())
    m.write_text(yaml.safe_dump({**doc, "outputs_dir": "renamed"}, sort_keys=False))
    second = api.run(m, provider=prov, report=False)
    assert (first.exit_code, second.exit_code, second.stats.cached, second.stats.spent_micros) == (0, 0, 2, 0)
    assert main(["export", str(m), "--run", str(first.run_id), "--format", "csv", "--format", "jsonl"]) == 0
    capsys.readouterr()
    renamed = tmp_path / "renamed"
    table = list(csv.DictReader(io.StringIO((renamed / f"results-run-{first.run_id}.csv").read_text())))
    lines = (renamed / f"results-run-{first.run_id}.jsonl").read_text().splitlines()
    for paths in ([r["output_path"] for r in table], [json.loads(line)["output_path"] for line in lines]):
        assert paths == ["anime/seed-1.mp4", "clay/seed-1.mp4"]
        assert all((renamed / p).is_file() for p in paths)


def test_an_earlier_runs_video_is_named_where_this_user_can_read_it_before_where_it_cannot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1 writes into outputs/t, run 2 (`outputs_dir: renamed`) copies the videos there; renamed/clay is then
    not readable by this user. `export --run 1` names run 1's own copy, which it can read, not the other, and warns
    of nothing: no video it names is unreadable."""
    import yaml
    from execkit import sim_provider, write_manifest

    from runner import api
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1)
    prov = sim_provider(m)
    first = api.run(m, provider=prov, report=False)
    doc = yaml.safe_load(m.read_text())
    m.write_text(yaml.safe_dump({**doc, "outputs_dir": "renamed"}, sort_keys=False))
    assert api.run(m, provider=prov, report=False).exit_code == 0
    _deny_reading(monkeypatch, tmp_path / "renamed" / "clay")
    capsys.readouterr()
    assert main(["export", str(m), "--run", str(first.run_id), "--format", "jsonl"]) == 0
    err = capsys.readouterr().err
    assert "could not be read" not in err, err
    lines = (tmp_path / "renamed" / f"results-run-{first.run_id}.jsonl").read_text().splitlines()
    assert [json.loads(line)["output_path"] for line in lines] == ["anime/seed-1.mp4", "../outputs/t/clay/seed-1.mp4"]


def test_a_run_of_cached_jobs_exports_what_they_cost_and_the_run_that_paid_in_columns_its_summary_sums(
    tmp_path: Path,
) -> None:
    """Run, then run again with every job cached: the second run paid nothing, and its export says so
    without hiding what its videos cost. Each row keeps the cost of its video and names run 1 as the one
    that paid; the summary's figure named after a column is that column's sum, in the JSON and the CSV."""
    from execkit import sim_provider, write_manifest

    from runner import api

    m = write_manifest(tmp_path)
    prov = sim_provider(m)
    first = api.run(m, provider=prov, report=False)
    second = api.run(m, provider=prov, report=False)
    assert (first.exit_code, second.exit_code, second.stats.cached) == (0, 0, 6)
    plan_total = api.plan(m).total_usd
    assert plan_total > 0
    json_path, csv_path = api.export(m, formats=("json", "csv"))
    doc = json.loads(json_path.read_text())
    s, rows = doc["summary"], doc["rows"]
    assert s["run"]["id"] == second.run_id and s["spent_usd"] == 0 and s["cached"] == 6
    paid = [(r["paid_in_run"], r["cached_from_run"], r["cost_this_run_usd"]) for r in rows]
    assert paid == [(first.run_id, first.run_id, 0)] * 6
    made = sum(r["cost_usd"] for r in rows)
    assert made == pytest.approx(plan_total)  # the sim bills its price table: what the plan estimated
    assert [r["cost_reported_usd"] for r in rows] == [r["cost_usd"] for r in rows]  # believed, as reported
    assert s["cost_usd"] == pytest.approx(made)
    assert s["cost_by_run"] == {str(first.run_id): pytest.approx(made)}
    assert s["cost_estimate_usd"] == pytest.approx(sum(r["cost_estimate_usd"] for r in rows))
    assert s["cost_estimate_usd"] == pytest.approx(plan_total)
    assert s["cost_this_run_usd"] == 0 and s["cost_unreported"] == 0
    table = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    for column in ("cost_usd", "cost_estimate_usd", "cost_this_run_usd"):
        assert sum(float(r[column]) for r in table) == pytest.approx(s[column]), column
    assert {r["paid_in_run"] for r in table} == {str(first.run_id)}


def test_the_run_that_paid_is_each_rows_own_even_once_a_later_run_rerendered_the_job(tmp_path: Path) -> None:
    """Run 1 pays, run 2 re-renders every job (--force) and pays again: run 1's export, read later, still has
    run 1 paying its own attempts, and run 2's has run 2 paying; each summary splits the cost by that run."""
    from execkit import sim_provider, write_manifest

    from runner import api
    from runner.executor import RunOptions

    m = write_manifest(tmp_path, n_seeds=1)
    prov = sim_provider(m)
    first = api.run(m, provider=prov, report=False)
    second = api.run(m, provider=prov, options=RunOptions(force=True), report=False)
    store = Store(tmp_path / ".gridrun" / "state.db")
    for run_id in (first.run_id, second.run_id):
        snap = store.snapshot(run_id)
        rows = export_rows(snap)
        assert [r["paid_in_run"] for r in rows] == [run_id] * 2
        assert [r["cost_this_run_usd"] for r in rows] == [r["cost_usd"] for r in rows]
        s = summary(snap)
        assert s["cost_this_run_usd"] == s["cost_usd"] == pytest.approx(s["spent_usd"])
        assert s["spent_usd"] > 0
        assert s["cost_by_run"] == {str(run_id): s["cost_usd"]}


@pytest.mark.parametrize("factor, doubted", [(1_000_000, True), (1.2, False)])
def test_a_rows_cost_is_the_one_counted_and_its_reported_cost_the_providers_figure_flagged_when_doubted(
    tmp_path: Path, factor: float, doubted: bool,
) -> None:
    """The provider reports each render at `factor` times the price table: a figure outside 0.2x-5x of the
    estimate is doubted, and the estimate counts. Each row's `cost_usd` is the figure counted (what `spent`
    sums), its `cost_reported_usd` the provider's figure as reported (as the sidecar's field of that name),
    and `cost_doubted` says which of the two cases it is; the summary's figures named after a column are
    that column's sum, in the JSON and the CSV."""
    from execkit import sim_provider, write_manifest

    from runner import api

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"cost_factor": factor})
    result = api.run(m, provider=sim_provider(m), report=False)
    assert result.exit_code == 0 and result.stats.counts["done"] == 2
    json_path, csv_path = api.export(m, formats=("json", "csv"))
    doc = json.loads(json_path.read_text())
    s, rows = doc["summary"], doc["rows"]
    estimate = rows[0]["cost_estimate_usd"]
    counted = estimate if doubted else round(estimate * factor, 6)
    assert [(r["cost_usd"], r["cost_reported_usd"], r["cost_doubted"]) for r in rows] == \
        [(counted, round(estimate * factor, 6), doubted)] * 2
    side = json.loads(Path(api.status(m).jobs[0].output_path).with_suffix(".json").read_text())
    assert (side["cost_usd"], side["cost_reported_usd"]) == (rows[0]["cost_usd"], rows[0]["cost_reported_usd"])
    assert s["cost_usd"] == s["cost_this_run_usd"] == s["done_cost_usd"] == s["spent_usd"] == pytest.approx(2 * counted)
    assert s["cost_by_run"] == {str(result.run_id): s["cost_usd"]}
    assert s["cost_doubted"] == (2 if doubted else 0) and s["cost_unreported"] == s["done_unreported"] == 0
    assert "cost_reported_usd" not in s and "cost_reported_by_run" not in s and "done_reported_usd" not in s
    table = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    for column in ("cost_usd", "cost_estimate_usd", "cost_this_run_usd"):
        assert sum(float(r[column]) for r in table) == pytest.approx(s[column]), column
    assert sum(r["cost_doubted"] == "true" for r in table) == s["cost_doubted"]


def test_an_earlier_runs_rows_keep_the_figure_its_own_attempt_reported_once_a_later_run_rerendered_the_job(
    tmp_path: Path,
) -> None:
    """Run 1's renders are reported at 1.2x the price (believed), run 2 re-renders them (--force) at a figure
    in micro-dollars (doubted): run 1's export, read later, has its own attempts' figures as reported, not
    run 2's, and nothing doubted."""
    from execkit import sim_provider, write_manifest

    from runner import api
    from runner.executor import RunOptions

    m = write_manifest(tmp_path, n_seeds=1, sim={"cost_factor": 1.2})
    prov = sim_provider(m)
    first = api.run(m, provider=prov, report=False)
    prov.app.state.sim.configure({"cost_factor": 1_000_000})
    second = api.run(m, provider=prov, options=RunOptions(force=True), report=False)
    assert (first.exit_code, second.exit_code) == (0, 0)
    store = Store(tmp_path / ".gridrun" / "state.db")
    figures = {run_id: [(r["cost_usd"], r["cost_reported_usd"], r["cost_doubted"])
                        for r in export_rows(store.snapshot(run_id))] for run_id in (first.run_id, second.run_id)}
    assert figures == {first.run_id: [(0.42, 0.42, False)] * 2, second.run_id: [(0.35, 350_000.0, True)] * 2}


def test_a_job_an_earlier_run_sent_is_paid_in_the_run_that_saw_it_complete(tmp_path: Path) -> None:
    """Run 1 sends two jobs and is killed while they render; run 2 follows them and sees them complete: the
    charge is run 2's, in its rows (`paid_in_run`, `cost_this_run_usd`), its summary and its `spent_usd`, and
    run 1, as it left them, paid nothing (as `gridrun status --runs` counts them)."""
    clock = Clock()
    store, run1 = run(tmp_path, [{"values": {"style": "anime", "seed": s}, "state": "running"} for s in (1, 2)],
                      clock=clock, end_status="crashed")
    snap1 = store.snapshot(run1)
    run2 = store.start_run(manifest_name="fox-styles", manifest_path="m.yaml", manifest_copy="",
                           outputs_dir=snap1.run.outputs_dir, provider="sim", model="m", axes=["style", "seed"],
                           budget_micros=None)
    ids = store.add_jobs(run2, [{"hash": j.hash, "key": j.key, "values": j.values, "params": j.params,
                                 "output_path": j.output_path, "cost_estimate_micros": j.cost_estimate_micros}
                                for j in snap1.jobs])
    for job_id in ids.values():
        store.transition(job_id, JobState.DOWNLOADING, completed_at=clock.now, cost_micros=200_000,
                         cost_reported_micros=200_000)
        store.transition(job_id, JobState.DONE, sha256="0" * 64, cost_micros=200_000, downloaded_at=clock.now)
    store.end_run(run2, "done")
    rows = export_rows(store.snapshot(run2))
    assert [(r["paid_in_run"], r["cost_this_run_usd"], r["cost_usd"]) for r in rows] == [(run2, 0.2, 0.2)] * 2
    s = summary(store.snapshot(run2))
    assert s["cost_by_run"] == {str(run2): 0.4} and s["spent_usd"] == s["cost_this_run_usd"] == 0.4
    left = store.snapshot(run1)
    assert left.spent_micros == 0 and [r["paid_in_run"] for r in export_rows(left)] == [None, None]


def test_a_failed_render_the_provider_charged_nothing_for_is_paid_by_no_run(tmp_path: Path) -> None:
    """The provider fails some renders and reports $0 for them: no run paid for those jobs. Their rows have
    no `paid_in_run`, `cost_usd` or `cost_this_run_usd` (the $0 stays in `cost_reported_usd`), the summary's
    `cost_by_run` and the report header's "these N jobs cost when made" count the done jobs only, and the
    state records no billed attempt for them."""
    from execkit import sim_provider, write_manifest

    from runner import api
    from runner.report import write_report

    m = write_manifest(tmp_path, n_seeds=4, sim={"failure_rate": 0.5, "seed": 3})
    result = api.run(m, provider=sim_provider(m))
    store = Store(tmp_path / ".gridrun" / "state.db")
    snap = store.snapshot(result.run_id)
    rows = export_rows(snap)
    failed = [r for r in rows if r["state"] == "failed"]
    done = [r for r in rows if r["state"] == "done"]
    assert failed and done and len(failed) + len(done) == len(rows)
    assert {(r["cost_reported_usd"], r["paid_in_run"], r["cost_usd"], r["cost_this_run_usd"]) for r in failed} == \
        {(0.0, None, None, None)}
    assert {r["paid_in_run"] for r in done} == {result.run_id}
    s = summary(snap)
    assert s["cost_by_run"] == {str(result.run_id): s["cost_usd"]} and s["cost_usd"] == s["spent_usd"]
    html = write_report(store, run_id=result.run_id, path=tmp_path / "r.html").read_text()
    assert f"these {len(done)} jobs cost when made</dt>" in html
    billed = store.db.execute("SELECT a.billed_micros, a.billed_run_id FROM attempts a JOIN jobs j ON j.id = a.job_id"
                              " WHERE j.state = 'failed'").fetchall()
    assert [tuple(b) for b in billed] == [(None, None)] * len(failed)


def test_render_seconds_are_bounded_by_the_providers_stamps_not_the_poll_schedule(tmp_path: Path) -> None:
    """A render of 0.1 s first polled after 3 s: its render time is bounded by the provider's own stamps (whole
    seconds each: at most their difference + 1 s), not the 3 s until the run saw it finished, which
    `completed_at` still says."""
    from execkit import sim_provider, write_manifest

    from runner import api

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), run={"poll_interval": 3},
                       sim={"render_time": 0.1, "jitter": 0.0})
    assert api.run(m, provider=sim_provider(m), report=False).exit_code == 0
    job = api.status(m).jobs[0]
    assert job.completed_at - job.submitted_at >= 3
    assert job.render_seconds is not None and job.render_seconds <= 2
    api.export(m, formats=["json"])
    row = json.loads((tmp_path / "outputs" / "t" / "results.json").read_text())["rows"][0]
    assert row["render_seconds"] == round(job.render_seconds, 3)


def test_report_of_a_project_whose_output_folder_is_gone_gives_advice_that_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The output folder removed (or its disk not mounted), `run` refuses until it is back or made knowingly:
    `report` says that, not that `run` writes the report; its advice followed, run and report work."""
    from execkit import write_manifest

    from runner import api
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    api.run(m)
    folder = tmp_path / "outputs" / "t"
    shutil.rmtree(folder)
    assert main(["report", str(m)]) == 1
    err = capsys.readouterr().err
    assert "output folder is gone" in err and "Traceback" not in err, err
    assert f"mkdir -p {folder / '.runs'}" in err and "Mount that disk" in err, err
    (folder / ".runs").mkdir(parents=True)
    again = api.run(m)
    assert again.exit_code == 0 and again.stats.spent_micros == 0
    assert main(["report", str(m)]) == 0 and (folder / "report.html").is_file()


@pytest.mark.parametrize("what", ["file", "link"])
def test_report_and_export_of_a_project_whose_output_folder_is_a_file_say_so_with_advice_that_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str
) -> None:
    """A file (or a link to nothing) where the output folder was: no `mkdir -p` makes the folder there, so the
    advice is to move it away first; followed, run and report work."""
    from execkit import write_manifest

    from runner import api
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",))
    api.run(m)
    folder = tmp_path / "outputs" / "t"
    folder.rename(tmp_path / "outputs" / "t.bak")
    if what == "file":
        folder.write_text("hi\n")
    else:
        folder.symlink_to(tmp_path / "unmounted")
    for command in ("report", "export"):
        assert main([command, str(m)]) == 1
        err = " ".join(capsys.readouterr().err.split())
        said = "a file, not a folder" if what == "file" else "a link to nothing (its target moved, or its disk not mounted)"
        assert f"{folder}: run 1's output folder is {said}. Move that away" in err, err
        assert f"(mkdir -p {folder / '.runs'})" in err and "is gone" not in err, err
    folder.unlink()
    (folder / ".runs").mkdir(parents=True)
    again = api.run(m)
    assert again.exit_code == 0 and again.stats.spent_micros == 0
    assert main(["report", str(m)]) == 0 and (folder / "report.html").is_file()


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _as_written(text: str) -> str:
    """A text cell as results.csv holds it: with the leading `'` of a cell a spreadsheet would run."""
    guarded = text.startswith(("=", "+", "-", "@", "\t", "\r"))
    try:
        number = float(text)
        guarded = guarded and not (text.strip() == text and number - number == 0 and "_" not in text)
    except ValueError:
        pass
    return "'" + text if guarded else text


def test_csv_cells_holding_a_carriage_return_or_line_feed_read_back_as_one_row(tmp_path: Path) -> None:
    """A bare CR (a prompts file from an old Mac, a data file) is quoted like an LF: a CSV reader reads the
    row whole, with the values results.jsonl gives; lines still end with LF alone."""
    texts = ["a\rb", "\rCR", "old\rmac", "two\r\nlines", "lf\nonly", "plain"]
    jobs = [{"values": {"style": t, "seed": i}, "prompt": f"p\r{t}", "state": "planned"} for i, t in enumerate(texts)]
    store, _ = run(tmp_path, jobs)
    csv_path, jsonl_path = write_exports(store, formats=["csv", "jsonl"], directory=tmp_path / "x")
    table = _read_csv(csv_path)
    rows = [json.loads(line) for line in jsonl_path.read_text(encoding="utf-8").split("\n") if line]
    assert len(table) == len(rows) == len(texts)
    assert [r["values.style"] for r in table] == [_as_written(r["values"]["style"]) for r in rows]
    assert [r["values.style"] for r in table] == [_as_written(t) for t in texts]
    assert [r["prompt"] for r in table] == [f"p\r{t}" for t in texts]
    data = csv_path.read_bytes()
    assert data.split(b"\n", 1)[0].endswith(b",run,provider,endpoint,simulated,ended_at,error_code,failed_attempts,"
                                           b"same_code,request_id,cost_with_failed_attempts_usd") and data.endswith(
                                               b",1,,,,,,,,,\n")
    assert b'"old\rmac"' in data and b",plain," in data  # quoted only where it must be


def test_jsonl_rows_stay_one_a_line_for_readers_that_break_at_unicode_line_separators(tmp_path: Path) -> None:
    """U+2028, U+2029 and NEL in a value or a prompt are written escaped: `str.splitlines` (and readers that break
    lines where it does) gives one line a job, each a whole JSON object with the text as it was."""
    texts = ["a\u2028b", "c\u2029d", "e\x85f", "caf\u00e9 \u2028\u2029\x85"]
    jobs = [{"values": {"style": t, "seed": i}, "prompt": f"p\u2028{t}", "state": "planned"}
            for i, t in enumerate(texts)]
    store, _ = run(tmp_path, jobs)
    (jsonl_path,) = write_exports(store, formats=["jsonl"], directory=tmp_path / "x")
    text = jsonl_path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) == text.count("\n") == len(texts)
    rows = [json.loads(line) for line in lines]
    assert [r["values"]["style"] for r in rows] == texts
    assert [r["prompt"] for r in rows] == [f"p\u2028{t}" for t in texts]
    assert "caf\u00e9" in text  # other text is written as it is


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(cells=st.lists(st.tuples(st.text(), st.text()), min_size=1, max_size=4))
def test_csv_reads_back_any_text_in_values_and_prompts(cells: list[tuple[str, str]]) -> None:
    from runner.export import to_csv

    rows = []
    for i, (value, prompt) in enumerate(cells):
        row: dict[str, Any] = dict.fromkeys(ROW_FIELDS)
        row.update(key=f"k{i}", values={"v": value}, prompt=prompt, state="done", attempts=1, cost_doubted=False,
                   run=1, cost_estimate_usd=0.35)
        rows.append(row)
    table = list(csv.DictReader(io.StringIO(to_csv(rows, ["v"]), newline="")))
    assert [(r["key"], r["values.v"], r["prompt"]) for r in table] == [
        (f"k{i}", _as_written(v), _as_written(p)) for i, (v, p) in enumerate(cells)]


class _MicroClock(Clock):
    """Times with microseconds, as a run's clock has them (1796532012.430503: to 15 significant digits,
    1796532012.4305, it is the millisecond before)."""

    def __call__(self) -> float:
        self.now += 2.0
        return self.now


def test_an_earlier_runs_export_gives_the_times_its_export_gave_while_it_was_the_latest(tmp_path: Path) -> None:
    """A run's record of its jobs as it left them keeps their times to the last digit: `export --run N` after a
    later run writes the times `export` wrote while N was the latest."""
    store, run1 = run(tmp_path, fox_jobs({}), clock=_MicroClock(1796532012.430503 - 2.0), one_clip=True)
    times = ("submitted_at", "completed_at", "downloaded_at", "render_seconds")
    out = tmp_path / "outputs" / "fox-styles"
    (latest,) = write_exports(store, manifest_name="fox-styles", formats=["jsonl"])
    then = [{t: json.loads(line)[t] for t in ("key", *times)} for line in latest.read_text().splitlines()]
    assert renamed_run(store, run1, "take", 1) > run1
    (earlier,) = write_exports(store, run_id=run1, manifest_name="fox-styles", formats=["jsonl"])
    assert earlier == out / f"results-run-{run1}.jsonl"
    assert [{t: json.loads(line)[t] for t in ("key", *times)} for line in earlier.read_text().splitlines()] == then
    with store.db:
        final = {r[0]: json.loads(r[1]) for r in store.db.execute("SELECT job_id, final FROM run_jobs WHERE run_id=?",
                                                                 (run1,))}
    for job in store.snapshot(run1).jobs:
        assert [final[job.id][t] for t in times[:3]] == [job.submitted_at, job.completed_at, job.downloaded_at]


def test_an_export_that_cannot_write_one_file_writes_none(tmp_path: Path) -> None:
    """A folder where results.csv goes: the error names it, and results.jsonl and results.json are as they were,
    not of another moment than the third."""
    from runner.outputs import write_problem

    store, _ = run(tmp_path)
    out = tmp_path / "outputs" / "fox-styles"
    before = {p.name: p.read_bytes() for p in write_exports(store, manifest_name="fox-styles")}
    with store.db:
        store.db.execute("UPDATE jobs SET error='changed since' WHERE id=(SELECT MIN(id) FROM jobs)")
    (out / "results.csv").unlink()
    (out / "results.csv").mkdir()
    with pytest.raises(IsADirectoryError) as caught:
        write_exports(store, manifest_name="fox-styles")
    assert write_problem(caught.value) == f"{out / 'results.csv'}: Is a directory; no results file was written"
    assert {p.name: p.read_bytes() for p in out.glob("results*") if p.is_file()} == {
        n: b for n, b in before.items() if n != "results.csv"}
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".results")) == []


def test_an_export_stopped_between_its_files_says_which_were_written(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    store, _ = run(tmp_path)
    out = tmp_path / "outputs" / "fox-styles"
    replace = os.replace

    def refused(src: Any, dst: Any) -> None:
        if str(dst).endswith("results.csv"):
            raise PermissionError(13, "Permission denied")
        replace(src, dst)

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(PermissionError) as caught:
        write_exports(store, manifest_name="fox-styles")
    assert caught.value.filename == str(out / "results.csv")
    assert "written before it: results.jsonl (the others are as they were)" in str(caught.value)
    assert sorted(p.name for p in out.glob("*results*")) == ["results.jsonl"]
