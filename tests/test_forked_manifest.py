"""Two manifests sharing one state folder, b a fork of a under another `name:` (the usual A/B): a video one of them
paid for is cached for the other, and a `--force` in b re-renders it for b; a's videos, and its runs' history, stay
a's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from runner import api
from runner.cli import main
from runner.options import RunOptions

from execkit import sha256, sim_provider, stats, write_manifest


def _fork(tmp_path: Path, sim: dict[str, Any] | None = None) -> tuple[Path, Path, Any]:
    """a.yaml and b.yaml, the same manifest under two names, and one simulator for both (`sim`: its knobs)."""
    a = write_manifest(tmp_path, name="a", sim=sim,  # no seed: each render of a request differs
                       extra={"matrix": {"style": ["anime", "clay"]}, "output": "{{ style }}.mp4"})
    b = tmp_path / "b.yaml"
    b.write_text(a.read_text().replace("name: a\n", "name: b\n"))
    return a, b, sim_provider(a)


def _videos(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*.mp4")) if ".runs" not in p.parts}


def _forced_in_b(tmp_path: Path) -> tuple[Path, Path, Any, dict[str, str], dict[str, str]]:
    """a pays (run 1), b finds it cached (run 2), b --force re-renders it (run 3): a's and b's videos after."""
    a, b, prov = _fork(tmp_path)
    assert api.run(a, provider=prov).run_id == 1
    assert api.run(b, provider=prov).stats.cached == 2
    assert api.run(b, provider=prov, options={"force": True}).run_id == 3
    mine, theirs = _videos(tmp_path / "outputs" / "a"), _videos(tmp_path / "outputs" / "b")
    assert len(mine) == len(theirs) == 2 and not set(mine.values()) & set(theirs.values())
    assert stats(prov)["creates"] == 4
    return a, b, prov, mine, theirs


def test_a_plain_run_of_a_keeps_its_own_videos_after_a_forced_rerender_in_b(tmp_path: Path) -> None:
    """a's next plain run finds its own takes whole where they are and caches them as they are: nothing paid, nothing
    replaced; b's next plain run does the same with b's re-renders."""
    a, b, prov, mine, theirs = _forced_in_b(tmp_path)
    again = api.run(a, provider=prov)
    assert again.stats.cached == 2 and stats(prov)["creates"] == 4
    assert _videos(tmp_path / "outputs" / "a") == mine
    for path, digest in mine.items():  # each sidecar names the take beside it
        side = json.loads((tmp_path / "outputs" / "a" / path).with_suffix(".json").read_text())
        assert side["sha256"] == digest
    assert api.run(b, provider=prov).stats.cached == 2 and stats(prov)["creates"] == 4
    assert _videos(tmp_path / "outputs" / "b") == theirs
    assert _videos(tmp_path / "outputs" / "a") == mine


def test_a_keeps_its_own_videos_when_bs_folder_is_removed(tmp_path: Path) -> None:
    """b's folder (its re-renders) removed, a's plain run caches a's own takes: nothing fetched, nothing kept aside."""
    a, _, prov, mine, _ = _forced_in_b(tmp_path)
    shutil.rmtree(tmp_path / "outputs" / "b")
    again = api.run(a, provider=prov)
    assert again.stats.cached == 2 and stats(prov)["creates"] == 4
    assert _videos(tmp_path / "outputs" / "a") == mine
    assert not (tmp_path / "outputs" / "a" / ".runs" / "superseded").exists()


def test_each_manifests_latest_run_shows_its_own_videos_once_the_other_ran(tmp_path: Path) -> None:
    """a caches its own takes (run 4), then b its re-renders (run 5): the status of each one's latest run names its
    own videos, where it left them."""
    a, b, prov, mine, theirs = _forced_in_b(tmp_path)
    assert api.run(a, provider=prov).stats.cached == 2
    assert api.run(b, provider=prov).stats.cached == 2 and stats(prov)["creates"] == 4
    for m, videos in ((a, mine), (b, theirs)):
        folder = tmp_path / "outputs" / m.stem
        jobs = api.status(m).jobs
        assert {Path(j.output_path).relative_to(folder).as_posix(): j.sha256 for j in jobs} == videos
        assert {j.paid_run for j in jobs} == {1 if m == a else 3}  # the run that paid for the take it has


def test_as_report_and_export_of_its_run_show_it_as_it_left_it_after_bs_forced_rerender(tmp_path: Path) -> None:
    """a's latest run, run 1, as it left it: its own attempt, cost and video, not b's run 3's re-render."""
    a, _, _, mine, _ = _forced_in_b(tmp_path)
    snap = api.status(a)
    assert snap.run.id == 1
    folder = tmp_path / "outputs" / "a"
    for job in snap.jobs:
        assert (job.attempts, job.paid_run, job.sha256) == (1, 1, mine[Path(job.output_path).relative_to(folder).as_posix()])
    assert snap.spent_micros > 0
    api.export(a, formats=["json"])
    doc = json.loads((folder / "results.json").read_text())
    assert doc["summary"]["cost_this_run_usd"] == doc["summary"]["spent_usd"] > 0
    assert set(doc["summary"]["cost_by_run"]) == {"1"}
    for row in doc["rows"]:
        assert (row["attempts"], row["paid_in_run"]) == (1, 1)
        assert not row["output_path"].startswith("..")


def test_as_latest_run_names_its_own_videos_after_b_copied_them(tmp_path: Path) -> None:
    """b finds a's videos cached and copies them into its own folder: a's run still names a's files."""
    a, b, prov = _fork(tmp_path)
    api.run(a, provider=prov)
    assert api.run(b, provider=prov).stats.cached == 2 and stats(prov)["creates"] == 2
    folder = (tmp_path / "outputs" / "a").resolve()
    assert {Path(j.output_path).parent for j in api.status(a).jobs} == {folder}


def test_as_latest_run_shows_its_jobs_done_once_b_collected_those_it_left_in_flight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """a's run leaves its jobs rendering at its timeout; b, with the same jobs, follows them to the end: a's latest
    run shows them done, nothing reserved and no next step (nothing follows them), as `cancel` finds nothing."""
    a, b, prov = _fork(tmp_path, sim={"render_time": 1.5, "jitter": 0.0})
    left = api.run(a, provider=prov, options=RunOptions(timeout=0.3), report=False)
    assert left.status == "incomplete"
    assert api.run(b, provider=prov, report=False).exit_code == 0 and stats(prov)["creates"] == 2
    snap = api.status(a)
    assert snap.run.id == 1
    assert {j.state for j in snap.jobs} == {"done"} and snap.reserved_micros == 0 == snap.manifest_reserved_micros
    assert main(["status", str(a)]) == 0
    shown = capsys.readouterr().out
    assert "running" not in shown and "next:" not in shown, shown


def test_plan_names_the_take_each_manifests_run_will_keep_after_bs_forced_rerender(tmp_path: Path) -> None:
    """After b's --force (run 3), a's plan says a's run caches its own take of run 1, as the run then does; once a
    ran, b's plan says b's caches its own of run 3. Looking writes nothing."""
    a, b, prov, mine, theirs = _forced_in_b(tmp_path)
    db = tmp_path / ".gridrun" / "state.db"
    before = db.read_bytes()
    d = api.diff(api.plan(a))
    assert d is not None and set(d.reasons.values()) == {"cached: its own take, done in run 1"}
    assert db.read_bytes() == before and _videos(tmp_path / "outputs" / "a") == mine
    assert api.run(a, provider=prov).stats.cached == 2
    d = api.diff(api.plan(b))
    assert d is not None and set(d.reasons.values()) == {"cached: its own take, done in run 3"}
    assert api.run(b, provider=prov).stats.cached == 2 and stats(prov)["creates"] == 4
    assert _videos(tmp_path / "outputs" / "a") == mine and _videos(tmp_path / "outputs" / "b") == theirs


def test_a_renamed_sweep_keeps_its_manifests_own_take_not_the_latest_rerender_of_another(tmp_path: Path) -> None:
    """a pays (run 1), b (one sweep `base`, the same requests) caches it (run 2), a --force re-renders (run 3), b keeps
    its own take (run 4), a runs again (run 5: the record names a's re-render). b's sweep is then renamed: the same
    jobs under new keys and paths. b's plan says its run caches b's own take of run 1, and the run copies that one to
    the new paths, not a's re-render; nothing is paid."""
    a, _, prov = _fork(tmp_path)
    b = tmp_path / "b.yaml"
    b.write_text(a.read_text().replace("name: a\n", "name: b\n").replace("output: '{{ style }}.mp4'\n", "")
                 .replace("matrix:\n", "sweeps:\n- name: base\n  matrix:\n").replace("\n  style:", "\n    style:")
                 .replace("\n  - anime\n  - clay\n", "\n    - anime\n    - clay\n"))
    assert [j.key for j in api.plan(b).jobs] == ["base/style=anime", "base/style=clay"]
    assert api.run(a, provider=prov).run_id == 1
    assert api.run(b, provider=prov).stats.cached == 2
    assert api.run(a, provider=prov, options={"force": True}).run_id == 3
    assert api.run(b, provider=prov).stats.cached == 2
    base = _videos(tmp_path / "outputs" / "b")
    assert api.run(a, provider=prov).run_id == 5
    forced = _videos(tmp_path / "outputs" / "a")
    assert len(base) == 2 and not set(base.values()) & set(forced.values())
    b.write_text(b.read_text().replace("- name: base\n", "- name: main\n"))
    p = api.plan(b)
    assert [j.key for j in p.jobs] == ["main/style=anime", "main/style=clay"]
    d = api.diff(p)
    assert d is not None and set(d.reasons.values()) == {"cached: its own take, done in run 1 of a"}, d.reasons
    assert api.run(b, provider=prov).stats.cached == 2 and stats(prov)["creates"] == 4
    now = _videos(tmp_path / "outputs" / "b")
    assert {k.removeprefix("main/"): v for k, v in now.items() if k.startswith("main/")} == \
        {k.removeprefix("base/"): v for k, v in base.items()}
    for path, digest in now.items():  # each sidecar names the take beside it: b's own, of run 1
        side = json.loads((tmp_path / "outputs" / "b" / path).with_suffix(".json").read_text())
        assert side["sha256"] == digest and side["run_id"] == 1
    assert _videos(tmp_path / "outputs" / "a") == forced
    assert {j.key: j.sha256 for j in api.status(b).jobs} == \
        {f"main/{k.removeprefix('base/').removesuffix('.mp4')}": v for k, v in base.items()}
