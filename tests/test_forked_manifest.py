"""Two manifests sharing one state folder, b a fork of a under another `name:` (the usual A/B): a video one of them
paid for is cached for the other, and a `--force` in b re-renders it for b; a's videos, and its runs' history, stay
a's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from runner import api

from execkit import sha256, sim_provider, stats, write_manifest


def _fork(tmp_path: Path) -> tuple[Path, Path, Any]:
    """a.yaml and b.yaml, the same manifest under two names, and one simulator for both."""
    a = write_manifest(tmp_path, name="a",  # no seed: each render of a request differs
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
