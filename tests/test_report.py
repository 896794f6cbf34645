from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent / "browser"))

from demo_state import Clock, build_state, encode_mp4, fox_jobs, renamed_run  # noqa: E402

from runner.report import REPORTS_DIR, ReportMemo, ensure_posters, poster_path, render, write_report  # noqa: E402
from runner.state import JobState, Snapshot, Store  # noqa: E402

HOSTILE = "<img src=x onerror=alert(1)></script><script>alert(2)</script> & 'quotes' \u2028"


def page_data(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="gridrun-data">(.*?)</script>', html, re.S)
    assert m, "no data block"
    data: dict[str, Any] = json.loads(m.group(1))
    return data


def snap(tmp_path: Path, jobs: list[dict[str, Any]] | None = None, **kw: Any) -> tuple[Store, int, Snapshot]:
    store, run_id = build_state(tmp_path, fox_jobs() if jobs is None else jobs, **kw)
    return store, run_id, store.snapshot(run_id)


def outputs(tmp_path: Path) -> Path:
    return tmp_path / "outputs" / "fox-styles"


def test_render_is_pure_and_deterministic(tmp_path: Path) -> None:
    _, _, s = snap(tmp_path)
    before = sorted(p.name for p in outputs(tmp_path).rglob("*"))
    a = render(s, base_dir=outputs(tmp_path))
    b = render(s, base_dir=outputs(tmp_path))
    assert a == b
    assert sorted(p.name for p in outputs(tmp_path).rglob("*")) == before
    assert a.startswith("<!doctype html>")


def test_grid_defaults_to_the_two_keys_with_most_values(tmp_path: Path) -> None:
    _, _, s = snap(tmp_path)
    data = page_data(render(s, base_dir=outputs(tmp_path)))
    assert data["view"]["x"] == "seed" and data["view"]["y"] == "style"
    axes = {a["id"]: a["values"] for a in data["axes"]}
    assert axes == {"style": ["anime", "clay", "cyberpunk"], "seed": ["1", "2", "3", "4"]}
    assert len(data["items"]) == 12
    first = data["items"][0]
    assert first["key"] == "style=anime,seed=1" and first["ix"] == [0, 0]


def test_a_long_axis_runs_down_the_page_and_a_single_axis_flows(tmp_path: Path) -> None:
    jobs = [{"values": {"prompt_id": f"p{i}", "seed": s}, "state": "planned"} for i in range(20) for s in (1, 2, 3)]
    _, _, s = snap(tmp_path / "a", jobs, axes=("prompt_id", "seed"))
    assert page_data(render(s, base_dir=tmp_path))["view"] | {"modes": {}} == {"x": "seed", "y": "prompt_id", "modes": {}}
    jobs = [{"values": {"prompt_id": f"p{i}"}, "state": "planned"} for i in range(5)]
    _, _, s = snap(tmp_path / "b", jobs, axes=("prompt_id",))
    view = page_data(render(s, base_dir=tmp_path))["view"]
    assert view["x"] == "prompt_id" and view["y"] is None


ZIPPED = [("a cat", "dogs"), ("a rocket", "clouds"), ("a city", "daylight")]


def zip_jobs() -> list[dict[str, Any]]:
    """style × a zip of subject and avoid (as manifests/zip-pairs.yaml), one combination excluded."""
    return [{"values": {"style": style, "subject": subject, "avoid": avoid}, "state": "planned"}
            for style in ("anime", "clay") for subject, avoid in ZIPPED if (style, subject) != ("clay", "a rocket")]


def test_keys_that_vary_together_are_never_x_and_y_and_a_key_the_cell_fixes_stacks(tmp_path: Path) -> None:
    """Zipped keys (each value of one comes with one of the other) on X and Y would make a grid with one card a
    row: the default crosses one of them with the next key instead, and stacks the other, which adds no card to
    a cell. So does a key that follows another (a camera per shot), found from the jobs, not the manifest."""
    _, _, s = snap(tmp_path / "zip", zip_jobs(), axes=("style", "subject", "avoid"))
    view = page_data(render(s, base_dir=tmp_path))["view"]
    assert view == {"x": "subject", "y": "style", "modes": {"avoid": "stack"}}
    jobs = [{"values": {"shot": f"s{i}", "seed": seed, "camera": "wide" if i < 3 else "close"}, "state": "planned"}
            for i in range(6) for seed in (1, 2, 3)]
    _, _, s = snap(tmp_path / "follows", jobs, axes=("shot", "seed", "camera"))
    assert page_data(render(s, base_dir=tmp_path))["view"] == {"x": "shot", "y": "seed", "modes": {"camera": "stack"}}


def test_other_keys_become_super_axes_sweeps_group_and_repeats_stack(tmp_path: Path) -> None:
    jobs = []
    for sweep in ("styles", "quality"):
        for style in ("anime", "clay"):
            for seed in (1, 2):
                for q in ("540p", "1080p"):
                    for r in (0, 1):
                        key = f"{sweep}:style={style},seed={seed},quality={q}" + (f"#{r}" if r else "")
                        jobs.append({"values": {"style": style, "seed": seed, "quality": q}, "state": "planned",
                                     "sweep": sweep, "key": key, "params": {"quality": q, "repeat": r}})
    _, _, s = snap(tmp_path, jobs, axes=("style", "seed", "quality"))
    data = page_data(render(s, base_dir=tmp_path))
    ids = [a["id"] for a in data["axes"]]
    assert ids == ["@sweep", "style", "seed", "quality", "@repeat"]
    assert data["view"]["modes"] == {"@sweep": "group", "quality": "group", "@repeat": "stack"}
    by_key = {i["key"]: i for i in data["items"]}
    assert by_key["quality:style=clay,seed=2,quality=1080p#1"]["ix"] == [1, 1, 1, 1, 1]
    assert by_key["quality:style=clay,seed=2,quality=1080p#1"]["sweep"] == "quality"


def test_a_value_ending_in_a_number_sign_is_no_take_of_a_repeat(tmp_path: Path) -> None:
    """"bug #1" is a matrix value: its key ends as a repeat's take would, yet the jobs are first takes."""
    jobs = [{"values": {"issue": v}, "state": "planned", "key": f"issue={v}" + (f"#{r}" if r else ""),
             "params": {"repeat": r}} for v in ("bug #1", "bug #2") for r in (0, 1)]
    _, _, s = snap(tmp_path / "a", jobs, axes=("issue",))
    data = page_data(render(s, base_dir=tmp_path))
    assert [(a["id"], a["values"]) for a in data["axes"]] == [("issue", ["bug #1", "bug #2"]), ("@repeat", ["0", "1"])]
    assert {i["key"]: i["ix"] for i in data["items"]} == {
        "issue=bug #1": [0, 0], "issue=bug #1#1": [0, 1], "issue=bug #2": [1, 0], "issue=bug #2#1": [1, 1]}
    _, _, s = snap(tmp_path / "b", [j for j in jobs if j["params"]["repeat"] == 0], axes=("issue",))
    data = page_data(render(s, base_dir=tmp_path))
    assert [a["id"] for a in data["axes"]] == ["issue"], "no repeat, no repeat axis"


def test_a_key_missing_from_some_jobs_is_labelled_unset(tmp_path: Path) -> None:
    """A key an `include` adds to one job is "(unset)" in the others only when their request has no such
    parameter: `quality`, set by `params:` (or the model's default) in every other job, reads as theirs."""
    jobs = fox_jobs({}) + [{"values": {"style": "comic", "seed": 42, "quality": "1080p", "mood": "dark"},
                            "state": "planned"}]
    _, _, s = snap(tmp_path, jobs)
    data = page_data(render(s, base_dir=tmp_path))
    axes = {a["id"]: a["values"] for a in data["axes"]}
    assert axes["quality"] == ["540p", "1080p"]
    assert axes["mood"] == [None, "dark"]  # None: the jobs without the key, which the page shows as (unset)
    assert axes["seed"] == ["1", "2", "3", "4", "42"]
    qi = [a["id"] for a in data["axes"]].index("quality")
    first = data["items"][0]
    assert first["key"] == "style=anime,seed=1" and axes["quality"][first["ix"][qi]] == "540p"


def test_a_sweep_without_a_key_is_placed_apart_from_a_value_reading_unset(tmp_path: Path) -> None:
    """Sweep `one` sets `mood` to the text "(unset)" or "calm"; sweep `two` has no `mood`: its jobs sit on an entry of
    their own that no value can equal (null, shown as (unset) by the page), not with the jobs whose mood is the text."""
    jobs = [{"values": {"mood": m, "n": n}, "state": "planned", "sweep": "one", "key": f"one:mood={m},n={n}"}
            for m in ("(unset)", "calm") for n in (1, 2)]
    jobs += [{"values": {"n": n}, "state": "planned", "sweep": "two", "key": f"two:n={n}"} for n in (1, 2)]
    _, _, s = snap(tmp_path, jobs, axes=("mood", "n"))
    data = page_data(render(s, base_dir=tmp_path))
    axes = {a["id"]: a["values"] for a in data["axes"]}
    assert axes["mood"] == ["(unset)", "calm", None]
    mi = [a["id"] for a in data["axes"]].index("mood")
    by_value: dict[Any, list[str]] = {}
    for item in data["items"]:
        by_value.setdefault(axes["mood"][item["ix"][mi]], []).append(item["key"])
    assert by_value == {"(unset)": ["one:mood=(unset),n=1", "one:mood=(unset),n=2"],
                        "calm": ["one:mood=calm,n=1", "one:mood=calm,n=2"], None: ["two:n=1", "two:n=2"]}


def test_parameters_shared_by_every_job_are_factored_out(tmp_path: Path) -> None:
    _, _, s = snap(tmp_path)
    data = page_data(render(s, base_dir=tmp_path))
    assert data["common"] == {"quality": "540p", "duration": 5, "aspect_ratio": "16:9"}
    assert set(data["items"][0]["jobs"][0]["p"]) == {"prompt", "seed"}
    assert data["paramOrder"] == ["prompt", "quality", "duration", "aspect_ratio", "seed"]


@pytest.mark.parametrize("rebuilt", [False, True], ids=["fresh", "rebuilt-with-memo"])
def test_hostile_prompt_stays_data(tmp_path: Path, rebuilt: bool) -> None:
    _, _, s = snap(tmp_path, fox_jobs(prompt=HOSTILE + " {style}"), manifest_name="<b>fox</b>")
    memo = ReportMemo() if rebuilt else None
    if memo is not None:
        render(s, base_dir=outputs(tmp_path), memo=memo)  # the second build puts in the texts it kept
    html = render(s, base_dir=outputs(tmp_path), memo=memo)
    assert "<img src=x" not in html
    assert "<b>fox</b>" not in html and "&lt;b&gt;fox&lt;/b&gt;" in html
    # Exactly our own two script elements and their closing tags: the prompt cannot close one early.
    assert len(re.findall(r"<script\b", html)) == 2
    assert len(re.findall(r"</script>", html)) == 2
    data = page_data(html)
    assert data["items"][0]["jobs"][0]["p"]["prompt"] == HOSTILE + " anime"


def test_no_network_references(tmp_path: Path) -> None:
    _, _, s = snap(tmp_path)
    html = render(s, base_dir=outputs(tmp_path))
    assert not re.search(r"https?://", html)
    assert "<link rel=\"stylesheet\"" not in html
    assert len(re.findall(r"<script\b", html)) == 2
    for name in ("report.css", "report.js", "report.html.j2"):
        assert not re.search(r"https?://|//cdn", (REPORTS_DIR / name).read_text())


def test_videos_and_posters_are_linked_relative_to_the_report(tmp_path: Path) -> None:
    jobs = [{"values": {"style": "a b#c?", "seed": 1}, "state": "done"}, {"values": {"style": "x", "seed": 2}, "state": "planned"}]
    _, _, s = snap(tmp_path, jobs)
    inside = page_data(render(s, base_dir=outputs(tmp_path)))
    done, planned = (i["jobs"][0] for i in inside["items"])
    assert done["src"] == "a%20b%23c%3F/1.mp4" and done["poster"] == "a%20b%23c%3F/1.jpg"
    assert "src" not in planned and planned["state"] == "planned"
    elsewhere = page_data(render(s, base_dir=tmp_path / "share"))
    assert elsewhere["items"][0]["jobs"][0]["src"] == "../outputs/fox-styles/a%20b%23c%3F/1.mp4"


def test_totals_show_jobs_by_state_spend_and_wall_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.records import RunRecord

    states = {("clay", 2): "failed", ("clay", 3): "running", ("cyberpunk", 4): "planned"}
    _, _, s = snap(tmp_path, fox_jobs(states), end_status=None)
    monkeypatch.setattr(RunRecord, "process_gone", lambda self: True)
    assert page_data(render(s, base_dir=outputs(tmp_path)))["live"] is False, "a killed run's page does not reload"
    monkeypatch.setattr(RunRecord, "process_gone", lambda self: False)
    html = render(s, base_dir=outputs(tmp_path))
    assert '<b>12</b> jobs' in html
    assert re.search(r'data-group="done"><b>9</b> done', html)
    assert re.search(r'data-group="pending"><b>1</b> pending', html)
    assert re.search(r'data-group="running"><b>1</b> running', html)
    assert re.search(r'data-group="failed"><b>1</b> failed', html)
    # the states it has, not every state (results.json's summary counts every one, zeros included)
    assert re.search(r'<span class="states">planned 1 · running 1 · done 9 · failed 1</span>', html)
    assert 'class="spent">$1.80<' in html
    assert "$0.20" in html  # one job in flight
    assert "wall time" in html and "snapshot" in html
    # without the page's script the header says its times are UTC (the script writes them in the reader's zone)
    assert re.search(r'started <time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>', html)
    assert re.search(r'snapshot <time datetime="[^"]+Z">[^<]+ UTC</time>', html)
    assert page_data(html)["live"] is True


@pytest.mark.parametrize("end", ["interrupted", "crashed", "gone"])
def test_an_ended_runs_header_counts_the_jobs_it_left_at_the_provider_as_left_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, end: str,
) -> None:
    """A run that stopped (interrupted, crashed, or killed: `gone`) runs nothing: the jobs it left at the provider
    are counted "left in flight", as their cells say "submitted when the run stopped", not "running"."""
    from runner.records import RunRecord

    states = {("clay", 2): "submitted", ("clay", 3): "running", ("cyberpunk", 4): "planned"}
    _, _, s = snap(tmp_path, fox_jobs(states), end_status=None if end == "gone" else end)
    monkeypatch.setattr(RunRecord, "process_gone", lambda self: end == "gone")
    html = render(s, base_dir=outputs(tmp_path))
    assert re.findall(r'class="badge run-(\w+)"', html) == [end]
    chips = re.findall(r'data-group="(\w+)"><b>(\d+)</b> ([\w ]+)<', html)
    assert chips == [("done", "9", "done"), ("running", "2", "left in flight"), ("pending", "1", "pending")]


def test_the_header_counts_rejected_jobs_apart_from_failed_ones_as_status_does(tmp_path: Path) -> None:
    """A rejected create was never paid for, a failed render may have been: the header's chips count them apart,
    as `status` does ("failed 2, rejected 3"), and the page's status groups keep rejected as its own."""
    states = {("clay", 1): "failed", ("clay", 2): "failed", ("clay", 3): "rejected", ("clay", 4): "rejected",
              ("cyberpunk", 1): "rejected"}
    _, _, s = snap(tmp_path, fox_jobs(states), seconds=0.5, one_clip=True)
    html = render(s, base_dir=outputs(tmp_path))
    chips = re.findall(r'data-group="(\w+)"><b>(\d+)</b> (\w+)<', html)
    assert chips == [("done", "7", "done"), ("failed", "2", "failed"), ("rejected", "3", "rejected")]
    groups = page_data(html)["groups"]
    assert (groups["failed"], groups["rejected"], groups["submitted"]) == ("failed", "rejected", "running")


def test_numbers_that_json_cannot_hold_do_not_break_the_page(tmp_path: Path) -> None:
    jobs = [{"values": {"style": "a", "seed": 1}, "state": "planned", "params": {"guidance": float("nan")}}]
    _, _, s = snap(tmp_path, jobs)
    assert page_data(render(s, base_dir=tmp_path))["common"]["guidance"] == "nan"


def test_integers_a_script_would_round_are_written_as_their_decimal_text(tmp_path: Path) -> None:
    """A 64-bit id or seed beyond ±(2^53 − 1) is in the page data as its decimal text (in a list, the list as
    JSON text), which the page shows as it is, where a number would be read rounded; smaller ones stay numbers."""
    big, small = 2**53 + 1, 2**53 - 1
    jobs = [{"values": {"style": "a", "seed": 1}, "state": "done",
             "params": {"big_id": big, "ids": [1, -1234567890123456789], "small": small, "shared": -(2**63)}},
            {"values": {"style": "a", "seed": 2}, "state": "done",
             "params": {"big_id": 1234567890123456789, "ids": [1, 2], "small": 3, "shared": -(2**63)}}]
    _, _, s = snap(tmp_path, jobs)
    data = page_data(render(s, base_dir=tmp_path))
    assert data["common"]["shared"] == "-9223372036854775808"
    p = {it["key"]: it["jobs"][0]["p"] for it in data["items"]}
    assert p["style=a,seed=1"]["big_id"] == "9007199254740993" and p["style=a,seed=1"]["small"] == small
    assert p["style=a,seed=1"]["ids"] == "[1,-1234567890123456789]" and p["style=a,seed=2"]["ids"] == [1, 2]
    assert p["style=a,seed=2"]["big_id"] == "1234567890123456789"


def test_an_axis_of_integers_a_float_would_round_is_in_exact_order(tmp_path: Path) -> None:
    """Seeds beyond 2^53, which a float reads as one number, are ordered as the integers they are, among smaller
    ones and fractions; an axis that is not all numbers keeps its order of first appearance."""
    seeds = [2**53 + 1, 2**53, 1, 0.5, -(2**63), 2**64 + 3, 2**64 + 2]
    jobs = [{"values": {"style": "a" if i % 2 else "b", "seed": v}, "state": "done", "params": {"trace_id": v}}
            for i, v in enumerate(seeds)]
    _, _, s = snap(tmp_path, jobs)
    axes = {a["id"]: a["values"] for a in page_data(render(s, base_dir=tmp_path))["axes"]}
    assert axes["seed"] == [str(v) for v in sorted(seeds)], axes
    assert axes["style"] == ["b", "a"], axes


def two_runs(tmp_path: Path) -> tuple[Store, int, int]:
    clock = Clock()
    store = Store(tmp_path / ".gridrun" / "state.db", clock=clock)
    a_jobs = fox_jobs({("clay", 1): "failed"})[:8]
    b_jobs = fox_jobs({})[1:]
    for j in b_jobs:
        if j["values"] == {"style": "anime", "seed": 2}:
            j["params"] = {"quality": "1080p"}
            j["cost"] = 400_000
    _, a = build_state(tmp_path, a_jobs, store=store, clock=clock)
    _, b = build_state(tmp_path, b_jobs, store=store, clock=clock, hash_salt="b")
    return store, a, b


def test_compare_puts_same_keys_side_by_side_and_marks_differences(tmp_path: Path) -> None:
    store, a, b = two_runs(tmp_path)
    html = render(store.snapshot(a), compare=store.snapshot(b), base_dir=outputs(tmp_path))
    data = page_data(html)
    items = {i["key"]: i for i in data["items"]}
    assert len(items) == 12 and [r["id"] for r in data["runs"]] == [a, b]
    assert items["style=anime,seed=1"]["only"] == "a" and items["style=anime,seed=1"]["jobs"][1] is None
    assert items["style=cyberpunk,seed=4"]["only"] == "b" and items["style=cyberpunk,seed=4"]["jobs"][0] is None
    changed = items["style=anime,seed=2"]
    assert changed["diff"] == ["quality"] and changed["dcost"] == 200_000
    assert "diff" not in items["style=anime,seed=3"] and "dstate" not in items["style=anime,seed=3"]
    # failed free in run A, done in run B: the outcome changed, and what was paid with it
    assert items["style=clay,seed=1"]["dstate"] is True and items["style=clay,seed=1"]["dcost"] == 200_000
    assert data["compare"] == {"both": 7, "renamed": 0, "onlyA": 1, "onlyB": 4, "differ": 2}
    # Both runs wrote anime/3.mp4 with different bytes: only the one on disk (run B's) is linked; run A's is not kept.
    same = items["style=anime,seed=3"]
    assert same["jobs"][0]["replaced"] is True and "src" not in same["jobs"][0] and "src" in same["jobs"][1]
    assert "run 1 vs run 2" in html


def test_compare_sets_what_each_run_paid_side_by_side_and_counts_a_changed_outcome_as_a_difference(
    tmp_path: Path,
) -> None:
    """Run A was stopped early, run B went on with the same jobs: a job nobody paid for counts $0, never its
    estimate, so a job pending in A and failed free in B differs in status, not in cost; one A left submitted
    and B unknown, or pending in A and done in B, differs too; a job done alike in both does not."""
    clock = Clock()
    store = Store(tmp_path / ".gridrun" / "state.db", clock=clock)
    states = {"a": ("planned", "failed"), "b": ("submitted", "unknown"), "c": ("planned", "done"),
              "d": ("done", "done"), "e": ("planned", "planned")}
    runs = [[{"values": {"animal": k}, "state": pair[side], "estimate": 350_000, "cost": 350_000, "failed_cost": 0}
             for k, pair in states.items()] for side in (0, 1)]
    _, a = build_state(tmp_path, runs[0], store=store, clock=clock, axes=("animal",), end_status="crashed")
    _, b = build_state(tmp_path, runs[1], store=store, clock=clock, axes=("animal",), hash_salt="b")
    html = render(store.snapshot(a), compare=store.snapshot(b), base_dir=outputs(tmp_path))
    data = page_data(html)
    marks = {i["key"]: (i.get("dstate", False), i.get("dcost", 0)) for i in data["items"]}
    assert marks == {"animal=a": (True, 0), "animal=b": (True, 0), "animal=c": (True, 350_000),
                     "animal=d": (False, 0), "animal=e": (False, 0)}
    assert data["compare"]["differ"] == 3
    assert "<b>3</b> differ in parameters, status, take or what was paid</span>" in html


def test_compare_pairs_a_job_renamed_between_the_runs_by_its_hash(tmp_path: Path) -> None:
    """An axis of one value added after run A renames every job (its key names the new value), not its hash:
    the compare shows each job once, in both runs, as "key A → key B", unchanged (run B cached the very video run
    A paid for: "Δ paid" is run B's $0 less run A's cost, "the same video", no difference); a job whose hash
    changed too is not the same job: it is paired with run A's of the same values on the axes both runs have
    (run A had no `look`), as a likely counterpart that differs."""
    store, a = build_state(tmp_path, fox_jobs()[:4])
    # the fourth job changed along with the new axis: another hash
    other = {"hash": "f" * 64, "key": "style=anime,seed=4,look=x", "values": {"style": "anime", "seed": 4, "look": "x"},
             "params": {"prompt": "other"}, "output_path": str(outputs(tmp_path) / "other.mp4"),
             "cost_estimate_micros": 200_000}
    b = renamed_run(store, a, "look", "x", keep=3, extra=[other])
    html = render(store.snapshot(a), compare=store.snapshot(b), base_dir=outputs(tmp_path))
    data = page_data(html)
    items = {i["key"]: i for i in data["items"]}
    assert set(items) == {"style=anime,seed=1,look=x", "style=anime,seed=2,look=x", "style=anime,seed=3,look=x",
                          "style=anime,seed=4,look=x"}
    moved = items["style=anime,seed=1,look=x"]
    assert moved["was"] == "style=anime,seed=1" and "only" not in moved
    assert all(j is not None and j["state"] == "done" for j in moved["jobs"])
    assert not {"diff", "dstate", "take"} & set(moved)
    a_job, b_job = moved["jobs"]
    assert a_job["paid"] == a and b_job["cached"] == a and moved["dcost"] == -a_job["cost"] < 0 and moved["same"]
    counterpart = items["style=anime,seed=4,look=x"]
    assert (counterpart["was"], counterpart["by"], counterpart["av"]) == ("style=anime,seed=4", "axes", {"look": [None, "x"]})
    assert "only" not in counterpart and "same" not in counterpart and "prompt" in counterpart["diff"]
    assert data["compare"] == {"both": 3, "renamed": 3, "onlyA": 0, "onlyB": 0, "differ": 1, "byAxes": 1}
    assert "<b>3</b> jobs in both runs (3 under new keys)</span>" in html
    assert "<b>1</b> differ in parameters, status, take or what was paid</span>" in html


def test_compare_places_a_paired_job_by_the_value_of_an_axis_one_run_dropped(tmp_path: Path) -> None:
    """Run B moved axis `look` (one value) out of the matrix: its jobs are run A's, under shorter keys. Each pair
    is shown at the look run A gave it, not under "look = (unset)"; a plain report of run A too."""
    jobs = [{"values": {"style": st, "seed": sd, "look": "x"}, "state": "done"} for st in ("anime", "clay")
            for sd in (1, 2)]
    store, a = build_state(tmp_path, jobs, axes=("style", "seed", "look"))
    left = store.snapshot(a)
    b = store.start_run(manifest_name=left.run.manifest_name, manifest_path=left.run.manifest_path,
                        manifest_copy="", outputs_dir=left.run.outputs_dir, provider=left.run.provider,
                        model=left.run.model, axes=["style", "seed"], budget_micros=None)
    ids = store.add_jobs(b, [{"hash": j.hash, "key": j.key.replace(",look=x", ""),
                              "values": {k: v for k, v in j.values.items() if k != "look"}, "params": j.params,
                              "output_path": j.output_path, "cost_estimate_micros": j.cost_estimate_micros}
                             for j in left.jobs])
    for j in left.jobs:
        store.mark_cached(b, ids[j.hash], a)
    store.end_run(b, "done")
    data = page_data(render(store.snapshot(a), compare=store.snapshot(b), base_dir=outputs(tmp_path)))
    assert data["compare"]["both"] == 4 and data["compare"]["renamed"] == 4
    axes = {x["id"]: x["values"] for x in data["axes"]}
    assert axes["look"] == ["x"]
    single = page_data(render(store.snapshot(a), base_dir=outputs(tmp_path)))
    assert {x["id"]: x["values"] for x in single["axes"]}["look"] == ["x"]


def test_numeric_axis_values_are_in_numeric_order_and_others_in_order_of_appearance(tmp_path: Path) -> None:
    jobs = [{"values": {"style": st, "seed": sd}, "state": "planned"} for st, sd in
            (("noir", 1), ("anime", 2), ("noir", 10), ("anime", 4), ("noir", 3))]
    _, _, s = snap(tmp_path, jobs)
    data = page_data(render(s, base_dir=tmp_path))
    axes = {a["id"]: a["values"] for a in data["axes"]}
    assert axes["seed"] == ["1", "2", "3", "4", "10"]
    assert axes["style"] == ["noir", "anime"]
    seeds = {i["key"]: axes["seed"][i["ix"][[a["id"] for a in data["axes"]].index("seed")]] for i in data["items"]}
    assert seeds["style=noir,seed=3"] == "3" and seeds["style=noir,seed=10"] == "10"


def test_write_report_writes_atomically_into_the_outputs_folder(tmp_path: Path) -> None:
    store, run_id, _ = snap(tmp_path)
    store.close()
    ro = Store(tmp_path / ".gridrun" / "state.db", readonly=True)
    path = write_report(ro, manifest_name="fox-styles")
    assert path == outputs(tmp_path) / "report.html"
    assert page_data(path.read_text())["runs"][0]["id"] == run_id
    assert not list(outputs(tmp_path).glob(".*tmp"))
    assert (outputs(tmp_path) / "anime" / "1.jpg").exists()
    other = write_report(ro, run_id=run_id, path=tmp_path / "elsewhere" / "r.html")
    assert page_data(other.read_text())["items"][0]["jobs"][0]["src"].startswith("../outputs/")


def test_write_report_compare_defaults_beside_run_a(tmp_path: Path) -> None:
    store, a, b = two_runs(tmp_path)
    path = write_report(store, compare=(a, b))
    assert path == outputs(tmp_path) / f"compare-{a}-{b}.html"
    assert page_data(path.read_text())["compare"]["onlyB"] == 4


def test_ensure_posters_writes_first_frames_once(tmp_path: Path) -> None:
    jobs = [{"values": {"style": "a", "seed": 1}, "state": "done"}, {"values": {"style": "b", "seed": 1}, "state": "done"},
            {"values": {"style": "c", "seed": 1}, "state": "running"}]
    _, _, s = snap(tmp_path, jobs)
    broken = Path(s.jobs[1].output_path)
    broken.write_bytes(b"not a video")
    ensure_posters(s)
    good = poster_path(s.jobs[0].output_path)
    assert good.name == "1.jpg" and good.read_bytes()[:2] == b"\xff\xd8"
    assert not poster_path(broken).exists()
    from PIL import Image

    with Image.open(good) as im:
        assert im.size == (96, 54)
        r, g, b = im.convert("RGB").getpixel((60, 27))  # type: ignore[misc]
        assert r > g and r > b  # the first clip is red-ish (hue 0)
    mtime = good.stat().st_mtime_ns
    ensure_posters(s)
    assert good.stat().st_mtime_ns == mtime


def _opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths opened from now on, by `open`, `io.open` (pathlib) or `os.open`."""
    import builtins
    import io
    import os

    seen: list[str] = []

    def counting(real: Any) -> Any:
        def opener(file: Any, *args: Any, **kw: Any) -> Any:
            if isinstance(file, (str, bytes, os.PathLike)):
                seen.append(os.fsdecode(file))
            return real(file, *args, **kw)
        return opener

    monkeypatch.setattr(builtins, "open", counting(builtins.open))
    monkeypatch.setattr(io, "open", counting(io.open))
    monkeypatch.setattr(os, "open", counting(os.open))
    return seen


def test_a_report_of_a_folder_unchanged_since_the_last_reads_no_sidecar_nor_poster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a report checks of each done job's files (its video holds its take, told from its sidecar; its poster
    is an image) is remembered while the files stay as they were: a second report of an unchanged folder opens
    none of them, and one of a folder where a sidecar, a video or a poster was changed by hand since checks those
    again, and tells what changed."""
    import hashlib
    import os
    import time

    from runner.outputs import SIDECAR_FIELDS

    jobs = [{"values": {"style": s, "seed": 1}, "state": "done"} for s in ("a", "b", "c", "d")]
    store, run_id, s = snap(tmp_path, jobs)
    videos = [Path(j.output_path) for j in s.jobs]
    for job, video in zip(s.jobs, videos):
        doc: dict[str, Any] = dict.fromkeys(SIDECAR_FIELDS)
        doc.update(key=job.key, hash=job.hash, sha256=job.sha256, request=job.params, provider_id=job.provider_id,
                   bytes=video.stat().st_size)
        video.with_suffix(".json").write_text(json.dumps(doc))
    write_report(store, run_id=run_id)  # writes the posters

    def settle() -> None:  # files written a while ago, as a run leaves them: videos, then sidecars, then posters
        hour = time.time() - 3600
        for video in videos:
            for n, f in enumerate((video, video.with_suffix(".json"), poster_path(video))):
                os.utime(f, (hour + n, hour + n))

    settle()
    write_report(store, run_id=run_id)
    opened = _opened(monkeypatch)
    page = write_report(store, run_id=run_id)
    looked = [p for p in opened if p.startswith(str(outputs(tmp_path))) and p.endswith((".json", ".jpg", ".mp4"))]
    assert looked == [], looked
    assert all("src" in it["jobs"][0] and "poster" in it["jobs"][0] for it in page_data(page.read_text())["items"])
    monkeypatch.undo()

    # by hand: b's sidecar now names another take, c's video is edited in place, d's poster is garbled
    side = videos[1].with_suffix(".json")
    side.write_text(side.read_text().replace(str(s.jobs[1].sha256), hashlib.sha256(b"other").hexdigest()))
    videos[2].write_bytes(videos[2].read_bytes() + b"edited")
    poster_path(videos[3]).write_bytes(b"garbled, no image")
    settle()
    items = {it["key"]: it["jobs"][0] for it in page_data(write_report(store, run_id=run_id).read_text())["items"]}
    assert "src" in items[s.jobs[0].key] and "src" in items[s.jobs[3].key], items
    for job in s.jobs[1:3]:
        assert items[job.key].get("replaced") and "src" not in items[job.key], (job.key, items[job.key])
    assert poster_path(videos[3]).read_bytes()[:2] == b"\xff\xd8"  # written again, an image


def test_ensure_posters_refreshes_a_stale_poster_and_shrinks_big_frames(tmp_path: Path) -> None:
    jobs = [{"values": {"style": "a", "seed": 1}, "state": "done"}]
    _, _, s = snap(tmp_path, jobs)
    video = Path(s.jobs[0].output_path)
    poster = poster_path(video)
    from PIL import Image

    from runner.outputs import POSTER_MARK

    Image.new("RGB", (8, 8)).save(poster, format="JPEG", comment=POSTER_MARK)
    import os

    os.utime(poster, (1, 1))
    encode_mp4(video, size=(640, 360), seconds=0.2)
    ensure_posters(s)
    with Image.open(poster) as im:
        assert im.size == (480, 270)


def test_ensure_posters_writes_over_an_image_with_no_mark_only_when_a_run_kept_it(tmp_path: Path) -> None:
    """A .jpg older than its video at a poster's place, with no poster mark (the user's, or an earlier version's
    poster), is left as it is by a report, which can record no keep; once a copy of it is kept under the job's
    folder in .runs/superseded/ (a run kept it), the report writes the poster over it."""
    import os
    import shutil

    from PIL import Image

    from runner.outputs import gridrun_poster, superseded_dir

    jobs = [{"values": {"style": "a", "seed": 1}, "state": "done"}]
    _, _, s = snap(tmp_path, jobs)
    poster = poster_path(s.jobs[0].output_path)
    Image.new("RGB", (8, 8), (0, 255, 0)).save(poster, format="JPEG", quality=82)
    mine = poster.read_bytes()
    os.utime(poster, (1, 1))
    ensure_posters(s)
    assert poster.read_bytes() == mine
    kept = superseded_dir(s.run.outputs_dir) / s.jobs[0].hash[:16] / "0123456789abcdef" / poster.name
    kept.parent.mkdir(parents=True)
    shutil.copyfile(poster, kept)
    ensure_posters(s)
    assert gridrun_poster(poster) and kept.read_bytes() == mine


@pytest.mark.parametrize("size", [(202, 114), (96, 54)])
def test_a_poster_is_the_first_frame_whatever_its_row_padding(tmp_path: Path, size: tuple[int, int]) -> None:
    """202 pixels of four bytes are 808 a row, which FFmpeg pads to 832: the poster must not shear."""
    import av
    import numpy as np
    from PIL import Image

    from runner.report import _make_poster

    video = tmp_path / "v.mp4"
    encode_mp4(video, size=size, seconds=0.2, hue=0.6)
    assert _make_poster(video, tmp_path / "v.jpg")
    with av.open(str(video)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    with Image.open(tmp_path / "v.jpg") as im:
        poster = np.asarray(im.convert("RGB")).astype(int)
    assert poster.shape == first.shape
    assert np.abs(poster - first).mean() < 4  # JPEG's loss only


def test_a_poster_carries_gridruns_mark_and_an_image_of_the_users_does_not(tmp_path: Path) -> None:
    """What tells a run that the .jpg beside a video is gridrun's poster, not an image of the user's to keep
    before writing over it: the mark in the poster's first comment, which other JPEGs lack."""
    from PIL import Image

    from runner.outputs import POSTER_MARK, gridrun_poster
    from runner.report import _make_poster

    video = tmp_path / "v.mp4"
    encode_mp4(video, size=(96, 54), seconds=0.2)
    assert _make_poster(video, tmp_path / "v.jpg") and gridrun_poster(tmp_path / "v.jpg")
    image = Image.new("RGB", (16, 16), (1, 2, 3))
    for name, save in [("plain", {}), ("comment", {"comment": b"gridrun poster, or so it says"}),
                       ("exif", {"exif": Image.Exif()})]:
        image.save(tmp_path / f"{name}.jpg", format="JPEG", **save)
        assert not gridrun_poster(tmp_path / f"{name}.jpg"), name
    image.save(tmp_path / "exif-marked.jpg", format="JPEG", exif=b"Exif\x00\x00" + b"\x00" * 300, comment=POSTER_MARK)
    assert gridrun_poster(tmp_path / "exif-marked.jpg")  # found after the other segments before the image
    (tmp_path / "text.jpg").write_bytes(POSTER_MARK)
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "v.jpg").read_bytes()[:24])
    assert not any(gridrun_poster(tmp_path / n) for n in ("text.jpg", "cut.jpg", "missing.jpg"))


@pytest.mark.parametrize("n", [2000])
def test_render_lays_out_thousands_of_jobs(tmp_path: Path, n: int) -> None:
    jobs = [{"values": {"prompt_id": f"p{i // 10}", "seed": i % 10}, "state": "planned", "prompt": f"prompt {i}"} for i in range(n)]
    _, _, s = snap(tmp_path, jobs, axes=("prompt_id", "seed"))
    html = render(s, base_dir=tmp_path)  # its speed: bench/report_bench.py
    assert len(page_data(html)["items"]) == n


def test_an_empty_run_and_a_run_without_a_matrix_render(tmp_path: Path) -> None:
    clock = Clock()
    store = Store(tmp_path / ".gridrun" / "state.db", clock=clock)
    _, empty = build_state(tmp_path, [], store=store, clock=clock, manifest_name="empty", axes=())
    _, single = build_state(tmp_path, [{"values": {}, "state": "done", "key": "only"}], store=store, clock=clock,
                            manifest_name="single", axes=())
    data = page_data(render(store.snapshot(empty), base_dir=tmp_path))
    assert data["items"] == [] and data["axes"] == [] and data["view"] == {"x": None, "y": None, "modes": {}}
    data = page_data(render(store.snapshot(single), base_dir=tmp_path))
    assert [i["key"] for i in data["items"]] == ["only"] and data["items"][0]["ix"] == []


def test_a_rebuild_with_a_memo_equals_a_fresh_build_and_reuses_the_jobs_that_did_not_move(tmp_path: Path) -> None:
    store, run_id, _ = snap(tmp_path, fox_jobs({("anime", 1): "running", ("clay", 2): "running"}))
    memo = ReportMemo()
    first = store.snapshot(run_id, reuse=memo.records)
    render(first, base_dir=outputs(tmp_path), memo=memo)
    moved = next(i for i, j in enumerate(first.jobs) if j.state == "running")
    store.transition(first.jobs[moved].id, JobState.FAILED, error="boom")

    second = store.snapshot(run_id, reuse=memo.records)
    assert second.jobs == store.snapshot(run_id).jobs
    reused = [a is b for a, b in zip(first.jobs, second.jobs)]
    assert reused.count(False) == 1 and not reused[moved]
    html = render(second, base_dir=outputs(tmp_path), memo=memo)
    assert html == render(second, base_dir=outputs(tmp_path))
    assert page_data(html)["items"][moved]["jobs"][0]["err"] == "boom"


def test_rebuilds_with_a_memo_keep_the_text_of_each_unmoved_item_and_equal_fresh_builds(tmp_path: Path) -> None:
    store, run_id, _ = snap(tmp_path, fox_jobs({k: "running" for k in [("anime", 1), ("clay", 2), ("clay", 3)]},
                                               prompt=HOSTILE + " {style}"))
    memo = ReportMemo()
    base = outputs(tmp_path)
    texts: dict[int, str] = {}
    moves = [(("clay", 2), JobState.FAILED, {"error": "</script>&'"}), (("anime", 1), JobState.DOWNLOADING, {}),
             (("clay", 3), JobState.CANCELLED, {"error": "cancelled"})]
    for step in range(len(moves) + 1):
        current = store.snapshot(run_id, reuse=memo.records)
        html = render(current, base_dir=base, memo=memo)
        assert html == render(current, base_dir=base), f"build {step} differs from a fresh one"
        kept = {j.id: memo.item(j) for j in current.jobs}
        assert all(v is not None for v in kept.values())
        reused = [j.id for j in current.jobs if j.id in texts and kept[j.id][1] is texts[j.id]]  # type: ignore[index]
        # Every item but the one moved before this build kept its text (the very same string).
        assert len(reused) == (0 if step == 0 else len(current.jobs) - 1)
        texts = {i: t[1] for i, t in kept.items()}  # type: ignore[index]
        if step < len(moves):
            (style, seed), to, fields = moves[step]
            job = next(j for j in current.jobs if j.values == {"style": style, "seed": seed})
            store.transition(job.id, to, **fields)
    assert page_data(html)["items"][0]["jobs"][0]["p"]["prompt"].startswith(HOSTILE)


def test_rebuilds_with_a_memo_keep_the_plain_table_row_of_each_unmoved_item(tmp_path: Path) -> None:
    """The table for a browser without JavaScript is a row a job: a rebuild writes again only the rows of the jobs
    that moved, the others' kept as they were, and the page is the one a fresh build writes."""
    store, run_id, _ = snap(tmp_path, fox_jobs({k: "running" for k in [("anime", 1), ("clay", 2), ("clay", 3)]}))
    memo = ReportMemo()
    base = outputs(tmp_path)
    first = store.snapshot(run_id, reuse=memo.records)
    render(first, base_dir=base, memo=memo)
    rows = {j.id: memo.row(memo.item(j)[0]) for j in first.jobs}  # type: ignore[index]
    assert all(rows.values())
    moved = next(j for j in first.jobs if j.values == {"style": "clay", "seed": 2})
    store.transition(moved.id, JobState.FAILED, error="boom <b>")
    second = store.snapshot(run_id, reuse=memo.records)
    html = render(second, base_dir=base, memo=memo)
    assert html == render(second, base_dir=base)
    again = {j.id: memo.row(memo.item(j)[0]) for j in second.jobs}  # type: ignore[index]
    assert [again[i] is rows[i] for i in rows] == [i != moved.id for i in rows]
    assert "<td>failed: boom &lt;b&gt;" in again[moved.id] and again[moved.id] in html  # type: ignore[operator]


def test_a_rebuild_with_a_memo_after_the_run_ended_says_its_jobs_in_flight_were_left_so(tmp_path: Path) -> None:
    """A row kept from a build while the run went on reads "submitted"; once the run ended, the same unmoved job
    reads "submitted when the run stopped" in the next build, as a fresh build writes it."""
    store, run_id, _ = snap(tmp_path, fox_jobs({("anime", 1): "submitted", ("clay", 2): "done"}), end_status=None)
    memo = ReportMemo()
    base = outputs(tmp_path)
    going = render(store.snapshot(run_id, reuse=memo.records), base_dir=base, memo=memo)
    assert "<td>submitted<" in going and "<td>submitted when" not in going
    store.end_run(run_id, "interrupted")
    ended = store.snapshot(run_id, reuse=memo.records)
    html = render(ended, base_dir=base, memo=memo)
    assert html == render(ended, base_dir=base)
    assert "<td>submitted when the run stopped" in html


def test_the_manifests_description_heads_the_report_as_text(tmp_path: Path) -> None:
    """The schema's `description` ("shown in the plan and the report"), from the manifest as the run began."""
    from execkit import write_manifest

    from runner import api

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), extra={"description": "A <b>fox</b> & its styles"})
    result = api.run(m)
    assert result.exit_code == 0
    page = result.report.read_text()
    assert '<p class="description">A &lt;b&gt;fox&lt;/b&gt; &amp; its styles</p>' in page
    m.write_text(m.read_text().replace("A <b>fox</b>", "Changed"))  # the run's own copy is what counts
    assert "A &lt;b&gt;fox" in api.report(m).read_text()


def test_a_run_compared_with_itself_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runner.cli import main

    assert main(["report", str(tmp_path / "m.yaml"), "--compare", "3", "3"]) == 2
    err = capsys.readouterr().err
    assert "--compare takes two different runs (run 3 was given twice)" in err and "Traceback" not in err
    assert not list(tmp_path.rglob("compare-*.html"))


def test_one_job_is_counted_as_one_job(tmp_path: Path) -> None:
    store, run_id = build_state(tmp_path, [{"values": {}, "state": "done", "key": "only"}], axes=())
    html = render(store.snapshot(run_id), base_dir=tmp_path)
    assert '<b>1</b> job</span>' in html and "1</b> jobs" not in html


def header_money(html: str) -> dict[str, str]:
    """The report header's money figures, label -> text as a reader sees them (tags dropped)."""
    block = re.search(r'<dl class="money">(.*?)</dl>', html, re.DOTALL)
    assert block, "no money figures"
    pairs = re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", block.group(1), re.DOTALL)
    return {dt: re.sub(r"<[^>]+>", "", dd) for dt, dd in pairs}


def test_a_run_of_cached_jobs_reports_this_runs_spend_apart_from_what_its_videos_cost(tmp_path: Path) -> None:
    """Run, then run again with every job cached: the second run's report says it paid nothing, what the
    videos it shows cost and which run paid, and the plan's estimate for all its jobs (what `plan` totals),
    not the $0.00 of the jobs it had to send; each cached job carries its cost and the run that paid."""
    from execkit import sim_provider, write_manifest

    from runner import api

    m = write_manifest(tmp_path)
    prov = sim_provider(m)
    first = api.run(m, provider=prov)
    second = api.run(m, provider=prov)
    assert (first.exit_code, second.exit_code, second.stats.cached) == (0, 0, 6)
    plan_total = f"${api.plan(m).total_usd:,.2f}"
    assert second.report is not None
    html = second.report.read_text()
    assert f"run {second.run_id}</title>" in html
    money = header_money(html)
    assert money["this run paid"] == "$0.00"
    assert money["these 6 jobs cost when made"] == f"{plan_total} (run {first.run_id})"
    assert money["plan estimate (all 6 jobs)"] == plan_total
    assert money["estimate of the jobs not cached"] == "$0.00"
    assert money["done in this run: cost / estimated"] == "$0.00 / $0.00"
    jobs = [item["jobs"][0] for item in page_data(html)["items"]]
    assert [(j["cached"], j["paid"]) for j in jobs] == [(first.run_id, first.run_id)] * 6
    assert all(j["cost"] > 0 for j in jobs)
    store = Store(tmp_path / ".gridrun" / "state.db")
    first_html = write_report(store, run_id=first.run_id, path=tmp_path / "first.html").read_text()
    first_money = header_money(first_html)
    paid_then = first_money["these 6 jobs cost when made"]
    assert paid_then == f"{first_money['this run spent (simulated)']} (run {first.run_id})"  # a simulator's figure
    assert "estimate of the jobs not cached" not in first_money


def test_a_doubted_reported_cost_is_shown_as_the_estimate_counted_with_the_figure_as_reported(tmp_path: Path) -> None:
    """The provider reports each render in micro-dollars (a million times the price): the header's cost of
    the jobs is what counted (the estimate), labelled as such and saying how many figures were doubted, and
    each job carries both figures, the counted one and the one reported, with the doubt."""
    from execkit import sim_provider, write_manifest

    from runner import api

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"cost_factor": 1_000_000})
    result = api.run(m, provider=sim_provider(m))
    assert result.exit_code == 0 and result.report is not None
    html = result.report.read_text()
    money = header_money(html)
    assert money["this run spent (simulated)"] == "$0.70" and "this run paid" not in money
    assert money["these 2 jobs cost when made"] == f"$0.70 (run {result.run_id}) (2 doubted: the estimate counted)"
    assert money["done in this run: cost / estimated"] == "$0.70 / $0.70"
    assert not any("reported" in label for label in money)
    jobs = [item["jobs"][0] for item in page_data(html)["items"]]
    assert [(j["cost"], j["rep"], j["doubt"]) for j in jobs] == [(350_000, 350_000_000_000, True)] * 2


@pytest.mark.timeout(120)
def test_a_killed_runs_report_and_results_show_it_gone_as_status_does(tmp_path: Path) -> None:
    """A run killed before it could record its end stays `running` in the state: its report, rebuilt after,
    badges it `gone`, as `status` shows it, and is not live; results.json's summary says `gone` too."""
    import os
    import signal
    import subprocess

    from execkit import write_manifest

    from runner import api

    m = write_manifest(tmp_path, n_seeds=4, run={"concurrency": 2}, sim={"render_time": 0.5, "jitter": 0.0})
    killed = subprocess.run([sys.executable, "-m", "runner.cli", "run", str(m), "--no-report"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "GRIDRUN_CRASH_AT": "after-submit:2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert api.status_json(api.status(m))["status"] == "gone"
    html = api.report(m).read_text()
    assert re.findall(r'class="badge run-(\w+)">(\w+)<', html) == [("gone", "gone")]
    data = page_data(html)
    assert data["live"] is False and data["runs"][0]["status"] == "gone"
    results = next(p for p in api.export(m, formats=("json",)) if p.suffix == ".json")
    assert json.loads(results.read_text())["summary"]["run"]["status"] == "gone"


@pytest.mark.parametrize(("every", "build", "within"), [
    (10.0, 0.1, 60.1),     # nothing moved: rebuilt after REPORT_STALE, then the build
    (300.0, 0.1, 300.1),   # a long `report_every` waits longer
    (10.0, 2.0, 82.0),     # a slow build is followed by none for REPORT_SHARE times its time
])
def test_a_live_page_is_told_the_longest_its_run_leaves_it_unbuilt(every: float, build: float, within: float) -> None:
    from runner.live import rebuilt_within

    assert rebuilt_within(every, build) == pytest.approx(within)


def test_the_header_reserves_as_status_does_unknown_jobs_of_an_earlier_run_under_every_run(tmp_path: Path) -> None:
    """Run 1 leaves a job of unknown outcome and one rendering; run 2 follows both. The job in flight is
    reserved by run 2, the unknown one stays run 1's: the header's figure for the run and its "all runs" one
    are status's two, and its label does not claim the unknown job it lists."""
    from runner import api

    clock = Clock()
    jobs = [{"values": {"style": "anime", "seed": 1}, "state": "unknown"},
            {"values": {"style": "anime", "seed": 2}, "state": "running"}]
    store, run1 = build_state(tmp_path, jobs, clock=clock, end_status="crashed")
    left = store.snapshot(run1)
    run2 = store.start_run(manifest_name="fox-styles", manifest_path="m.yaml", manifest_copy="",
                           outputs_dir=left.run.outputs_dir, provider="sim", model="m", axes=["style", "seed"],
                           budget_micros=None)
    store.add_jobs(run2, [{"hash": j.hash, "key": j.key, "values": j.values, "params": j.params,
                           "output_path": j.output_path, "cost_estimate_micros": j.cost_estimate_micros}
                          for j in left.jobs])
    store.end_run(run2, "incomplete")
    snap = store.snapshot(run2)
    status = api.status_json(snap)
    assert (status["reserved_usd"], status["manifest_reserved_usd"]) == (0.2, 0.4)
    html = render(snap, base_dir=outputs(tmp_path))
    assert [j["jobs"][0]["state"] for j in page_data(html)["items"]] == ["unknown", "running"]
    money = header_money(html)
    assert money["reserved by this run (in flight, or of unknown outcome that it sent)"] == "$0.20"
    assert money["all runs of fox-styles: spent / reserved"] == "$0.00 / $0.40"
    alone = render(left, base_dir=outputs(tmp_path / "alone"))  # a run whose figures are all there is
    assert not any(label.startswith("all runs") for label in header_money(alone))


def test_the_headers_counts_have_thousands_separators_as_the_cli_writes_them(tmp_path: Path) -> None:
    jobs = [{"values": {"n": i}, "state": "done" if i < 1000 else "planned"} for i in range(1500)]
    store, run_id = build_state(tmp_path, jobs, axes=("n",), seconds=0.2, one_clip=True, end_status="incomplete")
    html = render(store.snapshot(run_id), base_dir=outputs(tmp_path))
    assert "<b>1,500</b> jobs" in html and 'data-group="done"><b>1,000</b> done' in html
    assert "planned 500 · done 1,000" in html
    money = header_money(html)
    assert "these 1,000 jobs cost when made" in money and "plan estimate (all 1,500 jobs)" in money


def test_rebuilds_with_a_memo_read_the_manifests_description_once_and_equal_fresh_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's live report is rebuilt again and again: the description comes from its manifest's copy, parsed once."""
    from execkit import write_manifest

    from runner import api, yamlsource

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",), extra={"description": "A <b>fox</b> & its styles"})
    result = api.run(m, report=False)
    assert result.exit_code == 0
    parsed: list[str] = []
    load_plain = yamlsource.load_plain

    def counted(text: str) -> Any:
        parsed.append(text)
        return load_plain(text)

    monkeypatch.setattr(yamlsource, "load_plain", counted)
    memo = ReportMemo()
    store = Store(tmp_path / ".gridrun" / "state.db", readonly=True)
    try:
        built = [write_report(store, run_id=result.run_id, path=tmp_path / f"r{i}.html", posters=False, memo=memo).read_text()
                 for i in range(3)]
        fresh = write_report(store, run_id=result.run_id, path=tmp_path / "fresh.html", posters=False).read_text()
    finally:
        store.close()
    assert len(parsed) == 2  # the memo's builds once, the fresh build once

    def timeless(page: str) -> str:  # each build says when it read the state
        return re.sub(r'"taken":[0-9.]+', '"taken":0', page)

    assert [timeless(p) for p in built] == [timeless(fresh)] * 3
    assert '<p class="description">A &lt;b&gt;fox&lt;/b&gt; &amp; its styles</p>' in fresh


def test_the_page_without_javascript_says_which_command_writes_its_data(tmp_path: Path) -> None:
    """A run writes no results.jsonl / results.csv: the note for a browser without JavaScript names the command
    that does, rather than pointing at files that are not there."""
    _, _, s = snap(tmp_path)
    html = render(s, base_dir=outputs(tmp_path))
    note = re.search(r"<noscript>(.*?)</noscript>", html, re.DOTALL)
    assert note is not None
    assert "<code>gridrun export</code> with the manifest writes the same data" in note.group(1)
    assert "a run does not write them" in note.group(1)


def test_an_earlier_runs_page_says_which_run_its_figure_of_every_run_is_as_of(tmp_path: Path) -> None:
    """The figure of every run of the manifest counts runs after an earlier run's own: its page says up to which."""
    store, a, b = two_runs(tmp_path)
    earlier = header_money(render(store.snapshot(a), base_dir=outputs(tmp_path)))
    assert f"all runs of fox-styles so far, to run {b}: spent / reserved" in earlier, earlier
    assert not any(k.startswith("all runs of fox-styles:") for k in earlier)
    compared = header_money(render(store.snapshot(a), compare=store.snapshot(b), base_dir=outputs(tmp_path)))
    assert f"all runs of fox-styles so far, to run {b}: spent / reserved" in compared, compared
    latest = header_money(render(store.snapshot(b), base_dir=outputs(tmp_path)))
    assert not any("so far" in k for k in latest), latest


def test_a_key_an_include_adds_reads_the_parameter_only_when_the_other_jobs_share_it(tmp_path: Path) -> None:
    """An include that sets `prompt` on one job: the others' prompts, rendered from a template, differ from job to
    job, so they read `(unset)` and the swept keys stay the grid; an include that sets `quality` on one job reads
    the 540p every other job shares."""
    jobs: list[dict[str, Any]] = [
        {"values": {"style": st, "seed": sd}, "state": "planned", "prompt": f"a fox, {st} style, take {sd}"}
        for st in ("anime", "clay", "comic", "cyberpunk") for sd in (1, 2, 3)]
    jobs[0] = {"values": {"style": "anime", "seed": 1, "prompt": "a special fox"}, "state": "planned",
               "prompt": "a special fox"}
    _, _, s = snap(tmp_path / "p", jobs, axes=("style", "seed", "prompt"))
    data = page_data(render(s, base_dir=tmp_path))
    axes = {a["id"]: a["values"] for a in data["axes"]}
    assert axes["prompt"] == ["a special fox", None]
    assert {data["view"]["x"], data["view"]["y"]} == {"style", "seed"}
    jobs = [{"values": {"style": st}, "state": "planned"} for st in ("anime", "clay", "comic")]
    jobs[0] = {"values": {"style": "anime", "quality": "720p"}, "state": "planned", "params": {"quality": "720p"}}
    _, _, s = snap(tmp_path / "q", jobs, axes=("style", "quality"))
    axes = {a["id"]: a["values"] for a in page_data(render(s, base_dir=tmp_path))["axes"]}
    assert axes["quality"] == ["720p", "540p"]


def dropped_axis_runs(tmp_path: Path, jobs: list[dict[str, Any]], axes: tuple[str, ...], drop: str,
                      seed: int) -> tuple[Store, int, int]:
    """Run A of `jobs`; run B drops matrix key `drop` and keeps one seed: the jobs of that seed are run A's, renamed
    (their records now lack the key), cached; the others are not in run B."""
    from runner.jobs import job_key

    for job in jobs:
        job["key"] = job_key(None, job["values"].items(), 0)
    store, a = build_state(tmp_path, jobs, axes=axes)
    left = store.snapshot(a)
    b = store.start_run(manifest_name=left.run.manifest_name, manifest_path=left.run.manifest_path,
                        manifest_copy="", outputs_dir=left.run.outputs_dir, provider=left.run.provider,
                        model=left.run.model, axes=[x for x in axes if x != drop], budget_micros=None)
    moved = [j for j in left.jobs if j.values["seed"] == seed]
    ids = store.add_jobs(b, [{"hash": j.hash, "key": job_key(None, ((k, v) for k, v in j.values.items() if k != drop), 0),
                              "values": {k: v for k, v in j.values.items() if k != drop}, "params": j.params,
                              "output_path": j.output_path, "cost_estimate_micros": j.cost_estimate_micros}
                             for j in moved])
    for j in moved:
        store.mark_cached(b, ids[j.hash], a)
    store.end_run(b, "done")
    return store, a, b


def test_a_dropped_axis_is_read_back_from_a_key_only_as_it_was(tmp_path: Path) -> None:
    """A value holding `,seed=` and one over 40 characters (shortened in keys) of an axis a later run dropped:
    each job sits at the value its run gave it, one column a value, in the run's report and in the compare."""
    long = "a very long look value that is more than forty characters long"
    jobs = [{"values": {"look": lk, "seed": sd}, "state": "done", "output": f"{i}-{sd}"}
            for i, lk in enumerate(("a,seed=9", "b", long)) for sd in (1, 2)]
    store, a, b = dropped_axis_runs(tmp_path / "p", jobs, ("look", "seed"), "seed", 1)
    for data in (page_data(render(store.snapshot(a), base_dir=tmp_path)),
                 page_data(render(store.snapshot(a), compare=store.snapshot(b), base_dir=tmp_path))):
        axes = {x["id"]: x["values"] for x in data["axes"]}
        assert axes == {"look": ["a,seed=9", "b", long], "seed": ["1", "2"]}
        ids = [x["id"] for x in data["axes"]]
        placed = {i.get("was", i["key"]): (axes["look"][i["ix"][ids.index("look")]], axes["seed"][i["ix"][ids.index("seed")]])
                  for i in data["items"]}
        assert placed["look=a,seed=9,seed=1"] == ("a,seed=9", "1")
        assert placed["look=a,seed=9,seed=2"] == ("a,seed=9", "2")


def test_a_dropped_axis_of_a_value_over_forty_characters_is_one_column(tmp_path: Path) -> None:
    """A job whose key shortens the value of an axis a later run dropped sits in the column of the full value, the
    one its record-keeping sibling shows."""
    tag = "a label that is well over forty characters in length"
    jobs = [{"values": {"tag": tag, "seed": sd}, "state": "done"} for sd in (1, 2)]
    store, a, b = dropped_axis_runs(tmp_path / "t", jobs, ("tag", "seed"), "tag", 1)
    for data in (page_data(render(store.snapshot(a), base_dir=tmp_path)),
                 page_data(render(store.snapshot(a), compare=store.snapshot(b), base_dir=tmp_path))):
        assert {x["id"]: x["values"] for x in data["axes"]}["tag"] == [tag]


def test_text_values_that_look_like_numbers_keep_their_order(tmp_path: Path) -> None:
    """Version strings ("1.2", "1.9", "1.10") are text, laid out as written; the same as YAML numbers sort."""
    jobs = [{"values": {"version": v}, "state": "planned"} for v in ("1.2", "1.9", "1.10")]
    _, _, s = snap(tmp_path / "t", jobs, axes=("version",))
    assert page_data(render(s, base_dir=tmp_path))["axes"][0]["values"] == ["1.2", "1.9", "1.10"]
    jobs = [{"values": {"version": v}, "state": "planned"} for v in (1.2, 1.9, 1.10, 1)]
    _, _, s = snap(tmp_path / "n", jobs, axes=("version",))
    assert page_data(render(s, base_dir=tmp_path))["axes"][0]["values"] == ["1", "1.1", "1.2", "1.9"]


def test_a_bidirectional_override_in_the_description_is_written_as_in_a_string(tmp_path: Path) -> None:
    """U+202E in the description would reverse the header after it: it is shown as `\\u202e`, as every value of
    the page is; Hebrew and Arabic stay as they are."""
    _, _, s = snap(tmp_path)
    page = render(s, base_dir=outputs(tmp_path), description="evil \u202eredro\u202c desc, عربي")
    assert '<p class="description">evil \\u202eredro\\u202c desc, عربي</p>' in page
    assert "\u202e" not in page and "\u202c" not in page


def static_rows(html: str) -> list[list[str]]:
    """The cells of the page's table for a browser without JavaScript, one list a row, tags left out."""
    table = re.search(r'<table class="static-jobs">.*?<tbody>(.*?)</tbody>', html, re.DOTALL)
    assert table is not None
    return [[re.sub(r"<[^>]+>", "", cell) for cell in re.split(r"<t[hd][^>]*>", row)[1:]]
            for row in table.group(1).strip().split("\n")]


def test_the_table_without_javascript_shows_no_estimate_as_the_cost_of_a_job_that_ended(tmp_path: Path) -> None:
    """As the grid's cards: a rejected job was paid nothing, a failed or cancelled one without a figure had none
    reported; only a job not sent or in flight shows its estimate."""
    states = {("anime", 1): "rejected", ("anime", 2): "failed", ("anime", 3): "cancelled", ("anime", 4): "planned",
              ("clay", 1): "submitted", ("clay", 2): "done"}
    jobs = [dict(j, estimate=350_000) for j in fox_jobs(states) if (j["values"]["style"], j["values"]["seed"]) in states]
    _, _, s = snap(tmp_path, jobs, end_status=None)
    rows = {r[0]: r[2] for r in static_rows(render(s, base_dir=outputs(tmp_path)))}
    assert rows == {"style=anime,seed=1": "$0.00 (nothing paid)", "style=anime,seed=2": "– (not reported)",
                    "style=anime,seed=3": "– (not reported)", "style=anime,seed=4": "~$0.35 estimated",
                    "style=clay,seed=1": "~$0.35 estimated", "style=clay,seed=2": "$0.20"}, rows


def test_the_table_without_javascript_shows_a_cached_job_as_cached_at_the_run_that_paid(tmp_path: Path) -> None:
    """A job run B took from run A's cache cost run B nothing: its row says so and names run A, as the grid's
    cell does ("$0.35 · run 1"), on run B's page and in run B's columns of the compare page."""
    jobs = [{"values": {"style": st, "seed": 1}, "state": "done"} for st in ("anime", "clay")]
    store, a = build_state(tmp_path, jobs)
    left = store.snapshot(a)
    b = store.start_run(manifest_name=left.run.manifest_name, manifest_path=left.run.manifest_path,
                        manifest_copy="", outputs_dir=left.run.outputs_dir, provider=left.run.provider,
                        model=left.run.model, axes=["style", "seed"], budget_micros=None)
    ids = store.add_jobs(b, [{"hash": j.hash, "key": j.key, "values": j.values, "params": j.params,
                              "output_path": j.output_path, "cost_estimate_micros": j.cost_estimate_micros}
                             for j in left.jobs])
    store.mark_cached(b, ids[left.jobs[0].hash], a)
    store.end_run(b, "done")
    cost = f"${left.jobs[0].cost_micros / 1_000_000:,.2f}"
    rows = {r[0]: r[1:] for r in static_rows(render(store.snapshot(b), base_dir=outputs(tmp_path)))}
    cached = rows[left.jobs[0].key]
    assert cached[:2] == [f"done (cached from run {a})", f"{cost} · run {a}"], cached
    own = {r[0]: r[1:] for r in static_rows(render(store.snapshot(a), base_dir=outputs(tmp_path)))}
    assert own[left.jobs[0].key][:2] == ["done", cost]  # run A paid it: its own page names no other run
    compared = {r[0]: r[1:] for r in static_rows(
        render(store.snapshot(a), compare=store.snapshot(b), base_dir=outputs(tmp_path)))}
    assert compared[left.jobs[0].key][:2] == ["done", cost]
    assert compared[left.jobs[0].key][3:5] == [f"done (cached from run {a})", f"{cost} · run {a}"]


@pytest.mark.parametrize("end_status", [None, "interrupted"], ids=["going on", "stopped"])
def test_the_table_without_javascript_says_a_job_a_stopped_run_left_in_flight_is_not_being_worked_on(
        tmp_path: Path, end_status: str | None) -> None:
    """A job submitted or rendering when its run stopped is not in progress now: its row says so, as its card does
    ("submitted when the run stopped"); on the page of a run going on it reads as it is."""
    states = {("anime", 1): "submitted", ("anime", 2): "running", ("anime", 3): "planned"}
    jobs = [j for j in fox_jobs(states) if j["values"]["style"] == "anime"]
    _, _, s = snap(tmp_path, jobs, end_status=end_status)
    rows = {r[0]: r[1] for r in static_rows(render(s, base_dir=outputs(tmp_path)))}
    if end_status is None:
        assert rows == {"style=anime,seed=1": "submitted", "style=anime,seed=2": "running",
                        "style=anime,seed=3": "pending", "style=anime,seed=4": "done"}, rows
    else:
        assert rows == {"style=anime,seed=1": "submitted when the run stopped",
                        "style=anime,seed=2": "running when the run stopped",
                        "style=anime,seed=3": "pending", "style=anime,seed=4": "done"}, rows


def test_the_table_without_javascript_says_a_force_runs_unsent_jobs_are_to_be_re_rendered_then_were_not(
        tmp_path: Path) -> None:
    """A done job a --force run has not sent yet is not cached: its row says it is to be re-rendered, its earlier
    take shown; once the run stopped before sending it, that it was not re-rendered, as its card says."""
    from execkit import sim_provider, write_manifest

    from runner import api, resume
    from runner.options import RunOptions

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    assert api.run(m, provider=sim_provider(m)).exit_code == 0
    with Store(m.parent / ".gridrun" / "state.db") as store:
        rid = resume.prepare(api.plan(m), store, RunOptions(force=True), budget_micros=None).run_id
    for status, note in [(None, "to be re-rendered: run 1's take ($0.35) shown, kept until a new one arrives"),
                         ("crashed", "not re-rendered: the run stopped before sending it; run 1's take ($0.35) kept")]:
        if status is not None:
            with Store(m.parent / ".gridrun" / "state.db") as store:
                store.end_run(rid, status)
        rows = static_rows(api.report(m, run_id=rid).read_text())
        assert [r[1:3] for r in rows] == [[f"done ({note})", "$0.35 · run 1"]] * 2, rows


def test_the_page_of_a_run_going_on_says_without_javascript_that_it_does_not_update_itself(tmp_path: Path) -> None:
    """The live page read without JavaScript never reloads: it says it is a snapshot, of when, and to reload it;
    the page of a run that ended says nothing of the kind."""
    _, run_id, s = snap(tmp_path / "live", fox_jobs({("anime", 1): "running"}), end_status=None)
    note = re.search(r"<noscript>(.*?)</noscript>", render(s, base_dir=outputs(tmp_path / "live")), re.DOTALL)
    assert note is not None
    said = re.sub(r"<[^>]+>", "", note.group(1))
    assert re.search(rf"This page is a snapshot of run {run_id} taken \d{{4}}-\d\d-\d\d [0-9:]+ UTC, while the run "
                     r"was going on: without JavaScript it does not update itself\. Reload it to see how far the run "
                     r"has got\.", said), said
    _, _, s = snap(tmp_path / "ended", fox_jobs())
    note = re.search(r"<noscript>(.*?)</noscript>", render(s, base_dir=outputs(tmp_path / "ended")), re.DOTALL)
    assert note is not None and "snapshot" not in note.group(1)


def test_compare_of_two_runs_that_wrote_one_path_links_the_take_on_disk_not_the_later_download(
    tmp_path: Path,
) -> None:
    """Run B's download replaced run A's anime/3.mp4, then run A's video was put back there by hand: the compare
    links run A's take (the file's bytes are its) and not run B's, whichever run downloaded last."""
    clock = Clock()
    store = Store(tmp_path / ".gridrun" / "state.db", clock=clock)
    _, a = build_state(tmp_path, fox_jobs({})[:8], store=store, clock=clock)
    video = outputs(tmp_path) / "anime" / "3.mp4"
    was = video.read_bytes()
    _, b = build_state(tmp_path, fox_jobs({})[1:], store=store, clock=clock, hash_salt="b")
    assert video.read_bytes() != was
    video.write_bytes(was)
    data = page_data(render(store.snapshot(a), compare=store.snapshot(b), base_dir=outputs(tmp_path)))
    same = {i["key"]: i for i in data["items"]}["style=anime,seed=3"]
    assert same["overwritten"] == 1 and same["jobs"][0]["src"] == "anime/3.mp4" and "src" not in same["jobs"][1]


def test_a_second_compare_of_two_runs_that_wrote_one_path_hashes_no_video_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The compare's check of which run's take is on a path both runs wrote hashes the file there once: the
    digests remembered in the state folder (as snapshots keep them) answer the next compare, which reads no video."""
    import os

    from runner import outputs as outputs_module

    clock = Clock()
    store = Store(tmp_path / ".gridrun" / "state.db", clock=clock)
    _, a = build_state(tmp_path, fox_jobs({})[:8], store=store, clock=clock)
    video = outputs(tmp_path) / "anime" / "3.mp4"
    was = video.read_bytes()
    _, b = build_state(tmp_path, fox_jobs({})[1:], store=store, clock=clock, hash_salt="b")
    video.write_bytes(was)
    for f in outputs(tmp_path).rglob("*"):  # settled: a file modified in the last seconds is not remembered
        past = f.stat().st_mtime - 60
        os.utime(f, (past, past))
    hashed: list[str] = []
    real = outputs_module.sha256_file

    def counting(path: Path) -> str:
        hashed.append(str(path))
        return real(path)

    monkeypatch.setattr(outputs_module, "sha256_file", counting)
    first = write_report(store, compare=(a, b))
    assert str(video) in hashed, hashed
    hashed.clear()
    store.close()
    store = Store(tmp_path / ".gridrun" / "state.db", clock=clock)  # another command: what the state folder remembers
    again = write_report(store, compare=(a, b))
    assert hashed == [], hashed
    same = {i["key"]: i for i in page_data(again.read_text())["items"]}["style=anime,seed=3"]
    assert again == first and same["overwritten"] == 1 and same["jobs"][0]["src"] == "anime/3.mp4", same


def test_a_report_writes_its_snapshots_stamp_under_runs_which_the_live_page_names(tmp_path: Path) -> None:
    """Beside each report in its output folder, the stamp of its snapshot (a small script under .runs/, where no
    manifest's output may go): the live page loads it to reload only when the run wrote a newer snapshot; the
    finished page's stamp moves too, so that a live page still open comes to it."""
    from runner.report import stamp_path

    store, run_id = build_state(tmp_path, fox_jobs(), end_status=None)
    report = write_report(store, run_id=run_id, refresh=30)
    stamp = stamp_path(report)
    assert stamp == outputs(tmp_path) / ".runs" / "report.html.stamp.js"
    data = page_data(report.read_text())
    assert data["live"] is True and data["stamp"] == ".runs/report.html.stamp.js"
    text = stamp.read_text()
    assert text.startswith("window.gridrunStamp = ") and text.endswith(";\n")
    assert json.loads(text[len("window.gridrunStamp = "):-2]) == {"taken": data["runs"][0]["taken"]}
    store.end_run(run_id, "completed")
    report = write_report(store, run_id=run_id)
    data = page_data(report.read_text())
    assert data["live"] is False and data["stamp"] is None
    assert json.loads(stamp.read_text()[len("window.gridrunStamp = "):-2]) == {"taken": data["runs"][0]["taken"]}


def _a_live_page(tmp_path: Path) -> tuple[Any, int, Path, str, Path, str]:
    """A run going on, its live page written: (store, run id, page, its text, its stamp, the stamp's text)."""
    from runner.report import stamp_path

    store, run_id = build_state(tmp_path, fox_jobs(), end_status=None)
    report = write_report(store, run_id=run_id, refresh=30)
    stamp = stamp_path(report)
    return store, run_id, report, report.read_text(), stamp, stamp.read_text()


def test_a_page_the_ended_run_cannot_write_over_is_told_out_of_date_by_its_stamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's page, written live, then its final page refused for want of room: the live page stays, and its
    stamp says at once that it is out of date, of which run, and what writes it again; where a new stamp cannot be
    written either, it is written over the old one in place. A page refused while its run goes on changes no
    stamp; once there is room the page is written and its stamp says nothing of the kind, nor after a write of that
    same page refused again."""
    import errno
    import importlib
    import os

    from runner.outputs import stamp_ended

    report_module = importlib.import_module("runner.report")  # `runner.report` is the function
    monkeypatch.chdir(tmp_path)
    store, run_id, report, live_page, stamp, live_stamp = _a_live_page(tmp_path)
    real = report_module.atomic_write
    refused = [".html"]

    def atomic_write(path: Any, data: Any, **kw: Any) -> None:
        if str(path).endswith(tuple(refused)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data, **kw)

    monkeypatch.setattr(report_module, "atomic_write", atomic_write)
    with pytest.raises(OSError):
        write_report(store, run_id=run_id, refresh=30)  # the run goes on: its next page tells
    assert stamp.read_text() == live_stamp and stamp_ended(report) is None
    store.end_run(run_id, "done")
    said = (f"This page is out of date: run {run_id} ended; `gridrun report fox-styles.yaml` writes it again once "
            "there is room.")
    for stamps in ("written", "refused too"):
        if stamps == "refused too":
            refused.append(".js")
            stamp.write_text(live_stamp)
        with pytest.raises(OSError):
            write_report(store, run_id=run_id)
        assert report.read_text() == live_page, stamps
        text = stamp.read_text()
        assert text.startswith("window.gridrunStamp = ") and text.endswith(";\n"), text
        ended = {"run": run_id, "full": True, "interrupted": False, "text": said}
        assert json.loads(text[len("window.gridrunStamp = "):-2])["ended"] == ended, stamps
        assert stamp_ended(report) == ended
        assert not [p.name for p in stamp.parent.iterdir() if p.name.startswith(".")], stamps  # no temporary left
    monkeypatch.setattr(report_module, "atomic_write", real)
    write_report(store, run_id=run_id)
    assert page_data(report.read_text())["live"] is False and stamp_ended(report) is None
    monkeypatch.setattr(report_module, "atomic_write", atomic_write)
    with pytest.raises(OSError):  # the page there is the run's last already
        write_report(store, run_id=run_id)
    assert stamp_ended(report) is None


@pytest.mark.parametrize(("raised", "then"), [
    (KeyboardInterrupt(), ""), (RuntimeError("no"), " again once it can be written"),
])
def test_a_page_the_ended_run_left_for_a_ctrl_c_or_an_error_is_told_out_of_date_by_its_stamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raised: BaseException, then: str
) -> None:
    """The run's page, written live, then its final page not written: a Ctrl-C while it was built (or an error)
    leaves the live page, and its stamp says at once that it is out of date and that `gridrun report` writes it. A
    run going on changes no stamp; `mark_out_of_date` (a Ctrl-C before the final page was begun) says the same."""
    import importlib

    from runner.outputs import stamp_ended
    from runner.report import mark_out_of_date

    report_module = importlib.import_module("runner.report")  # `runner.report` is the function
    monkeypatch.chdir(tmp_path)
    store, run_id, report, live_page, stamp, live_stamp = _a_live_page(tmp_path)

    def render(*args: Any, **kw: Any) -> str:
        raise raised

    monkeypatch.setattr(report_module, "render", render)
    with pytest.raises(type(raised)):
        write_report(store, run_id=run_id, refresh=30)  # the run goes on: its next page tells
    mark_out_of_date(store, run_id, report)
    assert stamp.read_text() == live_stamp and stamp_ended(report) is None
    store.end_run(run_id, "done")
    with pytest.raises(type(raised)):
        write_report(store, run_id=run_id)
    said = f"This page is out of date: run {run_id} ended; `gridrun report fox-styles.yaml` writes it{then}."
    ended = {"run": run_id, "full": False, "interrupted": isinstance(raised, KeyboardInterrupt), "text": said}
    assert report.read_text() == live_page and stamp_ended(report) == ended
    stamp.write_text(live_stamp)
    mark_out_of_date(store, run_id, report)
    said = f"This page is out of date: run {run_id} ended; `gridrun report fox-styles.yaml` writes it."
    assert stamp_ended(report) == {"run": run_id, "full": False, "interrupted": True, "text": said}
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    write_report(store, run_id=run_id)
    assert page_data(report.read_text())["live"] is False and stamp_ended(report) is None
    mark_out_of_date(store, run_id, report)  # the page there is the run's last already
    assert stamp_ended(report) is None


def _paused_report(monkeypatch: pytest.MonkeyPatch, where: str, meanwhile: Any) -> None:
    """`write_report` paused (a Ctrl-Z, a slow disk) `where`: "render", between reading its snapshot and laying out
    its page, or "write", just before writing its page; `meanwhile()` runs in that pause, once."""
    import importlib

    report_module = importlib.import_module("runner.report")  # `runner.report` is the function
    real = {"render": report_module.render, "write": report_module.atomic_write}[where]
    paused = [False]

    def hooked(*args: Any, **kw: Any) -> Any:
        if not paused[0] and (where == "render" or str(args[0]).endswith(".html")):
            paused[0] = True
            meanwhile()
        return real(*args, **kw)

    monkeypatch.setattr(report_module, "render" if where == "render" else "atomic_write", hooked)


@pytest.mark.parametrize("where", ["render", "write"])
def test_a_report_read_while_its_run_went_on_never_writes_over_the_page_the_run_ended_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A `gridrun report` that read the state while the run went on, and writes after the run ended and wrote its
    final page, builds its page again from the state as it is now: the page, and its stamp, stay the finished
    run's (not "running" for ever in an open tab)."""
    from runner.report import stamp_path

    store, run_id, report, _, stamp, _ = _a_live_page(tmp_path)
    final: list[tuple[str, str]] = []

    def the_run_ends() -> None:
        store.end_run(run_id, "done")
        with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as other:  # the run's process
            page = write_report(other, run_id=run_id)
        final.append((page.read_text(), stamp.read_text()))

    _paused_report(monkeypatch, where, the_run_ends)
    assert write_report(store, refresh=30) == report  # no run named: the latest, as `gridrun report M` takes it
    data = page_data(report.read_text())
    assert data["live"] is False and data["runs"][0]["status"] == "done", data["runs"][0]
    assert (report.read_text(), stamp_path(report).read_text()) == final[0]


def test_a_report_read_before_a_newer_live_page_was_written_leaves_that_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two pages of a run going on: the one read earlier, written last, does not take the place of the newer."""
    import time

    store, run_id, report, _, stamp, _ = _a_live_page(tmp_path)
    newer: list[tuple[str, str]] = []

    def a_newer_page() -> None:
        start = time.time()
        while time.time() < start + 0.002:  # a later snapshot, to the stamp's millisecond
            pass
        write_report(store, run_id=run_id, refresh=30)
        newer.append((report.read_text(), stamp.read_text()))

    _paused_report(monkeypatch, "render", a_newer_page)
    assert write_report(store, run_id=run_id, refresh=30) == report
    assert (report.read_text(), stamp.read_text()) == newer[0]
    assert page_data(report.read_text())["live"] is True


def test_a_video_deleted_after_the_run_is_told_missing_not_replaced_or_edited(tmp_path: Path) -> None:
    """A done job whose video file is gone is `missing` (`gridrun run` fetches it again); one whose path holds
    another file is replaced or edited, not missing."""
    store, run_id = build_state(tmp_path, fox_jobs())
    folder = outputs(tmp_path)
    (folder / "anime" / "2.mp4").unlink()
    (folder / "anime" / "3.mp4").write_bytes(b"edited by hand")
    data = page_data(write_report(store, run_id=run_id).read_text())
    jobs = {it["key"]: it["jobs"][0] for it in data["items"]}
    assert {k: (j.get("replaced"), j.get("missing")) for k, j in jobs.items() if j.get("replaced")} == {
        "style=anime,seed=2": (True, True), "style=anime,seed=3": (True, None)}
    assert data["runs"][0]["latest"] is True


def test_the_table_without_javascript_says_why_a_video_has_no_link_and_names_each_link_after_its_job(
        tmp_path: Path) -> None:
    """A done job whose video is gone says so in the table for a browser without JavaScript, in the grid's
    words, not "–"; each video's link is named after its job, as the grid's poster is, not "video" for all."""
    store, run_id = build_state(tmp_path, fox_jobs())
    folder = outputs(tmp_path)
    (folder / "anime" / "2.mp4").unlink()
    (folder / "anime" / "3.mp4").write_bytes(b"edited by hand")
    html = write_report(store, run_id=run_id).read_text()
    rows = {r[0]: r[3] for r in static_rows(html)}
    assert rows["style=anime,seed=2"] == ("video file missing: `gridrun run` fetches it again (free) while its"
                                          " download link lasts (else `gridrun retry` renders it again, paid)")
    # edited by hand: the latest run fetches it again as it does a deleted one, keeping the file there aside
    assert rows["style=anime,seed=3"] == ("its video was replaced or edited since: `gridrun run` keeps that file under"
                                          " .runs/superseded/ and fetches the video again (free) while its download"
                                          " link lasts (else `gridrun retry` renders it again, paid)")
    alts = re.findall(r'<table class="static-jobs">.*', html, re.DOTALL)[0]
    alts = re.findall(r'<img src="[^"]*" alt="([^"]*)"', alts)
    assert sorted(alts) == sorted(f"first frame of style={st},seed={n}" for st in ("anime", "clay", "cyberpunk")
                                  for n in (1, 2, 3, 4) if (st, n) not in (("anime", 2), ("anime", 3)))


def test_a_path_is_inside_the_output_folder_only_where_its_links_lead_inside(tmp_path: Path) -> None:
    """The folders holding the videos are resolved once for all of them; a link anywhere on a path still counts
    where it leads, whether the link is the file itself, its folder, or a folder above."""
    from runner.report import _inside

    root, away = tmp_path / "out", tmp_path / "away"
    (root / "sub").mkdir(parents=True)
    away.mkdir()
    (root / "a.mp4").write_bytes(b"x")
    (root / "sub" / "b.mp4").write_bytes(b"x")
    (away / "c.mp4").write_bytes(b"x")
    (root / "out.mp4").symlink_to(away / "c.mp4")         # the file itself a link out
    (root / "back.mp4").symlink_to(root / "sub" / "b.mp4")  # a link that stays inside
    (root / "gone").symlink_to(away)                       # a folder that is a link out
    inside = _inside(root)
    for _ in range(2):  # the second time from the folders resolved the first
        assert inside(str(root / "a.mp4")) and inside(str(root / "sub" / "b.mp4"))
        assert inside(str(root / "back.mp4"))
        assert not inside(str(root / "out.mp4"))
        assert not inside(str(root / "gone" / "c.mp4"))
        assert not inside(str(away / "c.mp4"))
        assert not inside(str(root / "sub" / ".." / ".." / "away" / "c.mp4"))
        assert inside(str(root / "sub" / ".." / "a.mp4"))
        assert inside(str(root / "not-yet.mp4"))
    assert _inside(None)("/anywhere") and not _inside(tmp_path / "loop")(str(root / "a.mp4"))


def test_the_runs_that_paid_for_the_jobs_are_a_bounded_line_with_the_whole_list_in_its_title() -> None:
    from runner.report import _paid_by

    # a project grown a job at a time: run 1 made two jobs, each later run one, run 17 one of a dearer size
    by_run = {str(r): 0.70 if r in (1, 17) else 0.35 for r in range(1, 31)}
    line, whole = _paid_by(by_run, {})
    assert line.startswith("run 1: $0.70 · ") and "run 17: $0.70" in line
    assert line.count("run ") == 5 and line.endswith("… 25 more runs: $8.75"), line
    assert whole is not None and whole.count(" · ") == 29 and "run 30: $0.35" in whole
    few = {str(r): 0.35 for r in range(1, 7)}
    assert _paid_by(few, {}) == (" · ".join(f"run {r}: $0.35" for r in range(1, 7)), None)
    assert _paid_by({"4": 0.35}, {4: "grid"}) == ("run 4 of grid", None)



def test_the_header_names_a_few_runs_that_paid_and_titles_the_whole_list(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import html as html_lib

    import yaml

    from runner import api

    monkeypatch.setattr(sys.modules["runner.report"], "PAID_BY_SHOWN", 1, raising=False)
    m = tmp_path / "grown.yaml"
    for looks in (["a"], ["a", "b"], ["a", "b", "c"], ["a", "b", "c", "d"]):  # one look more each run
        m.write_text(yaml.safe_dump({
            "version": 1, "name": "grown", "provider": "sim", "model": "pixverse-v5.6",
            "params": {"prompt": "a fox, {{ look }} style", "duration": 5}, "matrix": {"look": looks},
            "output": "{{ look }}.mp4", "sim": {"render_time": 0.05, "jitter": 0}}))
        assert api.run(m, report=False).exit_code == 0
    page = " ".join(api.report(m).read_text().split())
    found = re.search(r'<small title="([^"]*)">\(([^)]*)\)</small>', page)
    assert found, "no header line of the runs that paid, with a title"
    whole = " · ".join(f"run {r}: $0.35" for r in range(1, 5))
    assert (html_lib.unescape(found.group(1)), found.group(2)) == (whole, "run 1: $0.35 · … 3 more runs: $1.05")


@pytest.mark.parametrize("left", [b"", b"garbage\n"], ids=["empty", "garbled"])
def test_ensure_posters_writes_again_a_poster_that_is_no_image(tmp_path: Path, left: bytes) -> None:
    """A poster that is no image at all (empty, as a power cut leaves a new file renamed into place before its
    data reached the disk; or garbled), newer than its video, is written again: the grid would show a broken
    image for good. A non-empty one is kept first under .runs/superseded/, as a file with no poster mark is."""
    from runner.outputs import gridrun_poster, superseded_dir

    jobs = [{"values": {"style": "a", "seed": 1}, "state": "done"}]
    _, _, s = snap(tmp_path, jobs)
    ensure_posters(s)
    poster = poster_path(s.jobs[0].output_path)
    poster.write_bytes(left)
    ensure_posters(s)
    assert poster.read_bytes()[:2] == b"\xff\xd8" and gridrun_poster(poster)
    kept = [p.read_bytes() for p in superseded_dir(s.run.outputs_dir).rglob(poster.name)]
    assert kept == ([left] if left else [])


def test_ensure_posters_leaves_an_image_of_another_format_where_a_poster_goes(tmp_path: Path) -> None:
    """An image there that is no JPEG (a PNG of the user's named .jpg) is an image still: left as it is."""
    from PIL import Image

    jobs = [{"values": {"style": "a", "seed": 1}, "state": "done"}]
    _, _, s = snap(tmp_path, jobs)
    poster = poster_path(s.jobs[0].output_path)
    Image.new("RGB", (8, 8), (0, 255, 0)).save(poster, format="PNG")
    mine = poster.read_bytes()
    ensure_posters(s)
    assert poster.read_bytes() == mine


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names a descriptor's file through /proc")
def test_posters_are_synced_before_their_rename_and_their_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poster is written as a video is: its data synced before it is renamed into place, and its folder once
    after, so that a power cut leaves the poster whole or none, never an empty file."""
    import os

    from runner import outputs as outputs_mod

    synced: list[str] = []
    real = outputs_mod.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(outputs_mod, "fsync", fsync)
    jobs = [{"values": {"style": "a", "seed": 1}, "state": "done"}, {"values": {"style": "a", "seed": 2}, "state": "done"}]
    _, _, s = snap(tmp_path, jobs)
    ensure_posters(s)
    poster = poster_path(s.jobs[0].output_path)
    assert poster.is_file()
    tmps = [p for p in synced if os.path.basename(p).startswith(".1.jpg.") or os.path.basename(p).startswith(".2.jpg.")]
    assert len(tmps) == 2, synced
    assert synced.count(str(poster.parent)) == 1, synced


def test_the_runs_in_brackets_after_what_the_jobs_cost_add_up_to_it(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Renders whose videos expired before they were fetched, then a retry that renders them again: the header's
    "these N jobs cost when made" is what the current takes cost, all paid by the retry, and the runs in brackets
    after it split that figure (run 2 alone), not the cost with the expired attempts (run 1 and run 2); the
    export's `cost_by_run` still splits the latter."""
    import yaml
    from execkit import sim_provider, write_manifest

    from runner import api
    from runner import executor as ex_mod
    from runner.export import summary

    monkeypatch.setattr(ex_mod, "backoff", lambda attempt, retry_after: 0.0)
    m = write_manifest(tmp_path, n_seeds=1, sim={"url_ttl": 0, "refresh_urls": False})
    first = api.run(m, provider=sim_provider(m), report=False)
    assert first.exit_code == 1 and {j.state for j in api.status(m).jobs} == {"expired"}
    doc = yaml.safe_load(m.read_text())
    del doc["sim"]["url_ttl"], doc["sim"]["refresh_urls"]
    m.write_text(yaml.safe_dump(doc, sort_keys=False))
    second = api.run(m, provider=sim_provider(m), options={"retry_failed": True}, report=False)
    assert second.exit_code == 0
    money = header_money(api.report(m).read_text())
    assert money["these 2 jobs cost when made"].startswith(f"$0.70 (run {second.run_id}) ("), money
    s = summary(api.status(m))
    assert s["cost_by_run"] == {str(first.run_id): 0.7, str(second.run_id): 0.7}


def test_a_run_that_only_followed_jobs_left_in_flight_says_its_simulated_spending_is_made_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """Run 1 stops waiting (`--timeout`) with its jobs rendering at the simulator; run 2 sends nothing and collects
    them, their bills its spending: `status` and its report's header say where those jobs were sent and that what
    it spent is made-up figures, nothing paid, as they do for a run that sent its own."""
    from execkit import write_manifest

    from runner import api
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.5, "jitter": 0.0})
    monkeypatch.chdir(tmp_path)
    assert api.run(m, report=False, options={"timeout": 0.1}).exit_code == 4
    second = api.run(m)
    assert second.exit_code == 0 and second.report is not None
    snap = api.status(m)
    assert (snap.endpoints, snap.spent_micros, snap.spent_simulated_micros) == ((), 700_000, 700_000)
    note = ("sim / pixverse-v5.6, sent nothing, followed jobs an earlier run sent to the simulator built in (in process)"
            " (simulated: what it spent is made-up figures, nothing paid)")
    assert snap.sent_to_note() == note
    assert main(["status", str(m)]) == 0
    assert note in " ".join(capsys.readouterr().out.split())
    page = " ".join(second.report.read_text().split())
    assert f'<p class="sent-to">{note}</p>' in page


def test_a_run_that_only_followed_jobs_at_a_served_simulator_says_nothing_paid_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As above, the jobs sent to a simulator served over HTTP: the line names it a simulator and says once that
    nothing was paid, not at the place and again after what it spent."""
    from execkit import served, write_manifest

    from runner import api
    from runner.sim.app import create_app
    from runner.sim.config import SimConfig

    with served(create_app(SimConfig(render_time=0.5, jitter=0.0))) as origin:
        m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), base_url=f"{origin}/v1", sim={})
        monkeypatch.chdir(tmp_path)
        assert api.run(m, report=False, options={"timeout": 0.1}).exit_code == 4
        assert api.run(m, report=False).exit_code == 0
        note = api.status(m).sent_to_note()
    assert note == (f"sim / pixverse-v5.6, sent nothing, followed jobs an earlier run sent to {origin}/v1: a simulator"
                    " (simulated: what it spent is made-up figures, nothing paid)"), note
    assert note.count("nothing paid") == 1, note


def test_a_cancelled_re_renders_charge_is_worded_as_such_not_as_an_attempt_sent_again(tmp_path: Path) -> None:
    """Run 1 makes the videos; run 2 (--force) stops waiting with their re-renders rendering, and `cancel` is
    charged for them: the header's "+$x" after what the jobs cost calls them cancelled re-renders, the earlier
    videos kept (nothing was sent again), and each card's data says how its charged attempt ended, the run its
    charge counts for, and that it came after the take kept."""
    from execkit import write_manifest

    from runner import api

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    assert api.run(m, report=False).exit_code == 0
    write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 30.0, "jitter": 0.0, "cancel_charge": 0.5})
    assert api.run(m, options={"force": True, "timeout": 0.2}, report=False).run_id == 2
    assert len(api.cancel(m).cancelled) == 2
    snap = api.status(m)
    bills = [b for j in snap.jobs for b in snap.earlier_billed.get(j.key, ())]
    assert [(b.state, b.run, b.rerender, b.micros) for b in bills] == [("cancelled", 2, True, 175_000)] * 2
    html = api.report(m).read_text()
    money = header_money(html)
    assert money["these 2 jobs cost when made"] == "$0.70 (run 1) (+$0.35 for cancelled re-renders, billed, the earlier videos kept)"
    assert [it["jobs"][0]["xk"] for it in page_data(html)["items"]] == [[["cancelled", 2, 1]]] * 2


def test_jobs_cancelled_with_a_charge_are_no_videos_cost_when_made_but_their_own_billed_note(tmp_path: Path) -> None:
    """Run 1 stops waiting with its renders going on and `cancel` is charged for them: no video was made, so the
    header does not call their charge what "these jobs cost when made"; it says it apart, billed with no video,
    and the money figures (what the run paid, every run's spending) stay what `status --json` says; after a
    retry makes the videos, run 2's page says what they cost and the cancelled attempts sent again."""
    from execkit import write_manifest

    from runner import api
    from runner.export import summary

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 30.0, "jitter": 0.0, "cancel_charge": 0.5})
    assert api.run(m, options={"timeout": 0.2}, report=False).run_id == 1
    assert len(api.cancel(m).cancelled) == 2
    s = summary(api.status(m))
    assert s["spent_usd"] == 0.35 and s["counts"].get("cancelled") == 2
    money = header_money(api.report(m).read_text())
    assert not any("cost when made" in dt for dt in money), money
    assert money["videos made"] == "none (+$0.35 for cancelled renders, billed, no video)", money
    assert money["this run spent (simulated)"].startswith("$0.35"), money
    write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    assert api.run(m, options={"retry_failed": True}, report=False).exit_code == 0
    money = header_money(api.report(m, run_id=1).read_text())
    assert money["videos made"] == "none (+$0.35 for cancelled renders, billed, no video)", money
    money = header_money(api.report(m).read_text())
    assert money["these 2 jobs cost when made"].startswith("$0.70 (run 2) (+$0.35 for cancelled attempts"), money


def test_the_header_words_one_billed_attempt_sent_again_with_its_article() -> None:
    from runner.records import EarlierBilled
    from runner.report import _earlier_attempts_note

    class Snap:
        def __init__(self, bills: dict[str, tuple[EarlierBilled, ...]]) -> None:
            self.jobs = [type("J", (), {"key": k})() for k in bills]
            self.earlier_billed = bills

    assert _earlier_attempts_note(Snap({})) is None  # type: ignore[arg-type]
    one = Snap({"a": (EarlierBilled(1, 350_000, "expired"),)})
    assert _earlier_attempts_note(one) == "(+$0.35 for an expired attempt, billed and sent again)"  # type: ignore[arg-type]
    both = Snap({"a": (EarlierBilled(1, 350_000, "failed"),), "b": (EarlierBilled(1, 350_000, "expired"),
                                                                   EarlierBilled(2, 175_000, "cancelled", True))})
    assert _earlier_attempts_note(both) == ("(+$0.70 for failed or expired attempts, billed and sent again; "  # type: ignore[arg-type]
                                            "+$0.175 for a cancelled re-render, billed, the earlier video kept)")


def test_the_header_says_what_may_have_been_billed_for_attempts_retry_unknown_sent_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two jobs of unknown outcome (their videos lost by the provider) that `retry --unknown` sent again: their
    earlier attempts, in no figure of spent or reserved, may have been billed. The report's header says so after
    what every run spent, as `status` does, word for word (a simulator's attempts, said as simulated)."""
    from execkit import sim_provider, write_manifest

    from runner import api
    from runner.cli import main
    from runner.executor import RunOptions

    monkeypatch.setenv("COLUMNS", "400")
    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 3.0, "jitter": 0.0})
    api.run(m, provider=sim_provider(m), options=RunOptions(timeout=0.3), report=False)
    assert api.run(m, provider=sim_provider(m), report=False).stats.counts["unknown"] == 2  # a fresh world
    m.write_text(m.read_text().replace("render_time: 3.0", "render_time: 0.05"))
    again = api.run(m, provider=sim_provider(m), options=RunOptions(retry_unknown=True))
    assert again.stats.counts["done"] == 2 and again.report is not None
    note = ("all runs: $0.70 more may have been billed by a simulator for 2 jobs of unknown outcome run 1 sent "
            "(style=anime,seed=1, style=anime,seed=2), which `gridrun retry --unknown` sent again: their earlier "
            "attempts, counted in no figure above, simulated (made-up figures, nothing paid)")
    assert main(["status", str(m)]) == 0
    assert note in " ".join(capsys.readouterr().out.split())
    money = header_money(again.report.read_text())
    labels = list(money)
    assert money["attempts sent again by retry --unknown"].replace("&#39;", "'") == note, money
    # where every run spent what this one did, no all-runs line: the note follows the run's own spent and reserve
    assert "all runs of t: spent / reserved" not in labels
    assert labels[labels.index("attempts sent again by retry --unknown") - 1].startswith("reserved by this run")


def test_the_table_without_javascript_says_a_jobs_billed_attempts_beside_its_take_as_the_grid_does(
    tmp_path: Path,
) -> None:
    """A job's charge for attempts that left it no video reads in the table without JavaScript as on its card
    (report.js `costOf`): "+$x" after its cost, for what each attempt was and the run its charge counts for, before
    the run that made the take; a charge of attempts not described one by one is an earlier or failed attempt."""
    from execkit import write_manifest

    from runner import api
    from runner.report import _static_jobs

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    assert api.run(m, report=False).exit_code == 0
    write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 30.0, "jitter": 0.0, "cancel_charge": 0.5})
    assert api.run(m, options={"force": True, "timeout": 0.2}, report=False).run_id == 2
    assert len(api.cancel(m).cancelled) == 2
    rows = {r[0]: r[2] for r in static_rows(api.report(m).read_text())}
    assert rows == dict.fromkeys(("style=anime,seed=1", "style=anime,seed=2"),
                                 "$0.35 (+$0.175 for a cancelled re-render, run 2) · run 1"), rows

    def cost(**job: Any) -> str:
        table = str(_static_jobs({"runs": [{"id": 2}], "otherRuns": {"1": "grid"},
                                  "items": [{"key": "k", "jobs": [{"state": "done", "cost": 350_000, **job}]}]}))
        return static_rows(table)[0][2]

    assert cost() == "$0.35"
    assert cost(xa=350_000, xn=1, xk=[["expired", 1, 0]]) == "$0.35 (+$0.35 for an expired attempt, run 1 of grid)"
    assert cost(xa=700_000, xn=2, xk=[["failed", 2, 0], ["failed", 2, 0]]) == "$0.35 (+$0.70 for 2 failed attempts, run 2)"
    assert cost(xa=525_000, xn=3, xk=[["failed", 1, 0], ["cancelled", 2, 1], [None, None, 0]]) == (
        "$0.35 (+$0.525 for a failed attempt, run 1 of grid; a cancelled re-render, run 2; an earlier attempt)")
    assert cost(xa=700_000, xn=2, xf=True) == "$0.35 (+$0.70 for 2 failed attempts)"
    assert cost(xa=350_000, xn=1) == "$0.35 (+$0.35 for an earlier attempt)"
