"""The compare's pairing of jobs that neither key nor hash pairs: by the axes both runs have, then by output path,
each only one to one, and shown as counterparts, not as one job."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent / "browser"))

from demo_state import Clock, build_state

from runner.report import render
from runner.state import Store


def page_data(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="gridrun-data">(.*?)</script>', html, re.DOTALL)
    assert m, "no data block"
    data: dict[str, Any] = json.loads(m.group(1))
    return data


def static_keys(html: str) -> list[str]:
    """The job column of the page's table for a browser without JavaScript."""
    table = re.search(r'<table class="static-jobs">.*?<tbody>(.*?)</tbody>', html, re.DOTALL)
    assert table is not None
    return [re.sub(r"<[^>]+>", "", re.split(r"<t[hd][^>]*>", row)[1]) for row in table.group(1).strip().split("\n")]


def key_of(values: dict[str, Any], take: int) -> str:
    return ",".join(f"{k}={v}" for k, v in values.items()) + (f"#{take}" if take else "")


def takes(values: list[dict[str, Any]], prompt: str, output: str, repeat: int = 3) -> list[dict[str, Any]]:
    """Each combination of `values` `repeat` times, as `repeat:` makes them ("style=anime#1"); `prompt` and
    `output` formatted with the values and the take."""
    return [{"values": v, "key": key_of(v, n), "prompt": prompt.format(**v), "output": output.format(**v, n=n),
             "state": "done"} for v in values for n in range(repeat)]


def compare(tmp_path: Path, a_jobs: list[dict[str, Any]], a_axes: tuple[str, ...], b_jobs: list[dict[str, Any]],
            b_axes: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    clock = Clock()
    store = Store(tmp_path / ".gridrun" / "state.db", clock=clock)
    _, a = build_state(tmp_path, a_jobs, axes=a_axes, store=store, clock=clock, one_clip=True)
    _, b = build_state(tmp_path, b_jobs, axes=b_axes, store=store, clock=clock, hash_salt="b", one_clip=True)
    html = render(store.snapshot(a), compare=store.snapshot(b), base_dir=tmp_path / "outputs" / "fox-styles")
    return html, page_data(html)


STYLES = [{"style": "anime"}, {"style": "clay"}]


def test_an_axis_added_and_used_by_the_prompt_pairs_each_take_by_the_axes_both_runs_have(tmp_path: Path) -> None:
    """`light: [dusk]` added after run A, and `, {{ light }}` to the prompt: every key and hash changed. Each take of
    run A pairs with run B's take of the same style and repeat, one card a pair, counted apart from the jobs both
    runs have, the new axis and the prompt named as what differs; the grid has no row of "(unset)" jobs."""
    a_jobs = takes(STYLES, "a fox, {style} style", "{style}-{n}")
    b_jobs = takes([{**v, "light": "dusk"} for v in STYLES], "a fox, {style} style, {light}", "{style}-{n}")
    html, data = compare(tmp_path, a_jobs, ("style",), b_jobs, ("style", "light"))
    assert data["compare"] == {"both": 0, "renamed": 0, "onlyA": 0, "onlyB": 0, "differ": 6, "byAxes": 6}
    items = {i["key"]: i for i in data["items"]}
    assert len(items) == 6
    pair = items["style=clay,light=dusk#2"]
    assert pair["was"] == "style=clay#2" and pair["by"] == "axes" and "only" not in pair
    assert pair["jobs"][0]["hash"] != pair["jobs"][1]["hash"]  # two jobs, not one
    assert pair["diff"] == ["light", "prompt"] and pair["av"] == {"light": [None, "dusk"]}
    assert {(i["was"], i["key"]) for i in items.values()} == {
        (key_of(v, n), key_of({**v, "light": "dusk"}, n)) for v in STYLES for n in range(3)}
    # one row: the new axis has the one value run B gave it, no "(unset)" beside it
    assert {a["id"]: a["values"] for a in data["axes"]}["light"] == ["dusk"]
    assert "<b>6</b> paired by shared axes</span>" in html and "<b>0</b> jobs in both runs</span>" in html
    assert "style=clay#2 → style=clay,light=dusk#2 (paired by the axes both runs have: not the same job)" in \
        static_keys(html)


def test_jobs_matching_several_on_the_shared_axes_are_left_unpaired_and_say_so(tmp_path: Path) -> None:
    """`light: [dusk, dawn]` added: each job of run A matches two of run B on style and take. Nothing is guessed:
    every job stays in its run alone, each saying how many of each run match it."""
    a_jobs = takes(STYLES, "a fox, {style} style", "{style}-{n}")
    b_jobs = takes([{**v, "light": lt} for v in STYLES for lt in ("dusk", "dawn")], "a fox, {style} style, {light}",
                   "{style}-{light}-{n}")
    html, data = compare(tmp_path, a_jobs, ("style",), b_jobs, ("style", "light"))
    assert data["compare"] == {"both": 0, "renamed": 0, "onlyA": 6, "onlyB": 12, "differ": 0, "ambiguous": [6, 12]}
    assert all("by" not in i and "was" not in i for i in data["items"])
    assert {tuple(i["amb"]) for i in data["items"]} == {(1, 2)}
    assert "<b>18</b> left unpaired: each matches several of the other run's</span>" in html


def test_an_axis_of_one_value_removed_pairs_each_job_and_one_of_several_values_pairs_none(tmp_path: Path) -> None:
    """Run B drops `look` from the matrix and the prompt. Of one value (`look: [x]`), each job pairs with the one
    of its style and seed, `look` shown as run A's value and none in run B; of two (`look: [x, y]`), each job of
    run B matches two of run A's, and none pairs."""
    seeds = [{"style": st, "seed": sd} for st in ("anime", "clay") for sd in (1, 2)]
    b_jobs = takes(seeds, "a fox, {style} style", "{style}-{seed}-b", repeat=1)
    one = takes([{**v, "look": "x"} for v in seeds], "a fox, {style} style, {look}", "{style}-{seed}-{look}", repeat=1)
    _, data = compare(tmp_path / "one", one, ("style", "seed", "look"), b_jobs, ("style", "seed"))
    assert data["compare"] == {"both": 0, "renamed": 0, "onlyA": 0, "onlyB": 0, "differ": 4, "byAxes": 4}
    pair = next(i for i in data["items"] if i["key"] == "style=clay,seed=2")
    assert pair["was"] == "style=clay,seed=2,look=x" and pair["by"] == "axes"
    assert pair["av"] == {"look": ["x", None]} and pair["diff"] == ["look", "prompt"]
    assert {a["id"]: a["values"] for a in data["axes"]}["look"] == ["x"]

    two = takes([{**v, "look": lk} for v in seeds for lk in ("x", "y")], "a fox, {style} style, {look}",
                "{style}-{seed}-{look}", repeat=1)
    _, data = compare(tmp_path / "two", two, ("style", "seed", "look"), b_jobs, ("style", "seed"))
    assert data["compare"] == {"both": 0, "renamed": 0, "onlyA": 8, "onlyB": 4, "differ": 0, "ambiguous": [8, 4]}
    assert {tuple(i["amb"]) for i in data["items"]} == {(2, 1)}


def test_shared_axes_compare_values_as_the_plan_coerced_them(tmp_path: Path) -> None:
    """Seed 1 (a number), "1" (text) and true are three values: jobs that agree on them only as text do not pair;
    seed 2 in both runs does."""
    a_jobs = takes([{"seed": 1}, {"seed": 2}], "a fox", "a-{seed}", repeat=1)
    b_jobs = takes([{"seed": v, "light": "dusk"} for v in ("1", True, 2)], "a fox, {light}", "b-{seed}", repeat=1)
    _, data = compare(tmp_path, a_jobs, ("seed",), b_jobs, ("seed", "light"))
    assert data["compare"] == {"both": 0, "renamed": 0, "onlyA": 1, "onlyB": 2, "differ": 1, "byAxes": 1}
    assert [(i["was"], i["key"]) for i in data["items"] if "by" in i] == [("seed=2", "seed=2,light=dusk")]


def test_jobs_no_shared_axis_tells_apart_pair_by_output_path_one_to_one(tmp_path: Path) -> None:
    """Run B renamed the axis `style` to `look` and kept the output paths: no axis is shared, so the two jobs of
    each run all match; the one output path each pair wrote pairs them instead. A path two jobs of run A wrote
    pairs nothing."""
    a_jobs = takes(STYLES, "a fox, {style} style", "{style}", repeat=1)
    b_jobs = takes([{"look": "anime"}, {"look": "clay"}], "a fox, {look} look", "{look}", repeat=1)
    html, data = compare(tmp_path / "renamed", a_jobs, ("style",), b_jobs, ("look",))
    assert data["compare"] == {"both": 0, "renamed": 0, "onlyA": 0, "onlyB": 0, "differ": 2, "byPath": 2}
    pair = next(i for i in data["items"] if i["key"] == "look=clay")
    assert pair["was"] == "style=clay" and pair["by"] == "path"
    assert pair["av"] == {"style": ["clay", None], "look": [None, "clay"]}
    assert "<b>2</b> paired by output path</span>" in html

    shared = [{"values": v, "key": key_of(v, 0), "prompt": "a fox", "output": "one", "state": "planned"} for v in STYLES]
    b_jobs = takes([{"look": "anime"}], "a fox, {look} look", "one", repeat=1)
    _, data = compare(tmp_path / "shared", shared, ("style",), b_jobs, ("look",))
    assert data["compare"]["onlyA"] == 2 and data["compare"]["onlyB"] == 1 and "byPath" not in data["compare"]


def _run(m: Path) -> None:
    from runner.cli import main

    assert main(["run", str(m)]) == 0


def _compare_of_runs(tmp_path: Path, name: str) -> dict[str, Any]:
    store = Store(tmp_path / ".gridrun" / "state.db")
    try:
        html = render(store.snapshot(1, manifest_name=name), compare=store.snapshot(2, manifest_name=name),
                      base_dir=tmp_path / "outputs" / name)
    finally:
        store.close()
    return page_data(html)


SHOTS = """\
version: 1
name: shots
provider: sim
model: pixverse-v5.6
params: {{prompt: "{{{{ shot.prompt }}}}", quality: 360p, duration: 5}}
{body}sim: {{render_time: 0.05, jitter: 0}}
"""


@pytest.mark.parametrize("body, output", [
    ("matrix:\n  shot: {file: shots.csv}\noutput: \"{{ shot.id }}.mp4\"\n", "2.mp4"),
    (("sweeps:\n  - name: final\n    matrix: {shot: {file: shots.csv}, seed: [1]}\n"
      "output: \"{{ sweep }}/{{ shot.id }}-{{ seed }}.mp4\"\n"), "final/2-1.mp4"),
], ids=["csv", "sweep"])
def test_an_edited_data_file_row_pairs_with_its_new_version_by_the_output_path_both_runs_wrote(
        tmp_path: Path, body: str, output: str) -> None:
    """A row's prompt edited in the CSV between two runs changes its key, hash and axis value; run B's job writes
    the path run A's wrote, and run A's video is set aside under .runs/superseded/: the two pair by that path."""
    m = tmp_path / "m.yaml"
    m.write_text(SHOTS.format(body=body), encoding="utf-8")
    (tmp_path / "shots.csv").write_text("id,prompt\n1,a red fox\n2,an owl\n", encoding="utf-8")
    _run(m)
    (tmp_path / "shots.csv").write_text("id,prompt\n1,a red fox\n2,an owl at night\n", encoding="utf-8")
    _run(m)
    assert list((tmp_path / "outputs" / "shots" / ".runs" / "superseded").glob("*/*.mp4"))  # run A's video, aside
    data = _compare_of_runs(tmp_path, "shots")
    assert data["compare"] == {"both": 1, "renamed": 0, "onlyA": 0, "onlyB": 0, "differ": 1, "byPath": 1}
    pair = next(i for i in data["items"] if i.get("by") == "path")
    assert "an owl at night" in pair["key"] and "an owl" in pair["was"]
    assert (tmp_path / "outputs" / "shots" / output).is_file()


def test_an_axis_renamed_with_the_output_paths_kept_pairs_by_output_path_after_real_runs(tmp_path: Path) -> None:
    """The README's case: `style` renamed `look`, the output paths kept. Run B's videos replace run A's (set aside
    under .runs/superseded/); each job pairs with the one that wrote its path."""
    m = tmp_path / "m.yaml"
    text = SHOTS.replace('"{{{{ shot.prompt }}}}"', '"a fox, {{{{ {axis} }}}} style"')
    body = "matrix:\n  {axis}: [anime, clay]\noutput: \"{{{{ {axis} }}}}.mp4\"\n"
    m.write_text(text.format(body=body.format(axis="style"), axis="style"), encoding="utf-8")
    _run(m)
    m.write_text(text.format(body=body.format(axis="look"), axis="look"), encoding="utf-8")
    _run(m)
    data = _compare_of_runs(tmp_path, "shots")
    assert data["compare"] == {"both": 0, "renamed": 0, "onlyA": 0, "onlyB": 0, "differ": 2, "byPath": 2}
    pair = next(i for i in data["items"] if i["key"] == "look=clay")
    assert pair["was"] == "style=clay" and pair["by"] == "path"
