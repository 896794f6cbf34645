"""A `.part` file a stopped run's download left beside a job's former output path is removed once the job's
output path changes: no download writes there any more."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from execkit import check_outputs, quick_backoff, sim_provider, stats, write_manifest

from runner import api
from runner.options import RunOptions
from runner.state import Store


def left_downloading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, age: float) -> tuple[Path, object, Path]:
    """A manifest whose one job is paid and left downloading, a cut `.part` of its video beside its output
    (`age` seconds old), and its output template then changed."""
    quick_backoff(monkeypatch)
    m = write_manifest(tmp_path, n_seeds=1, styles=("anime",),
                       sim={"script": [{"route": "file", "p": 1.0, "fault": "reset_mid_body"}]})
    prov = sim_provider(m)
    assert api.run(m, provider=prov, options=RunOptions(retries=0), report=False).exit_code == 1
    job = api.status(m).jobs[0]
    assert job.state == "downloading"
    part = Path(job.output_path + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"\0" * 100_000)  # as a run killed mid-download leaves it, with its record
    Path(str(part) + ".take").write_text('{"gridrun": "part"}')
    os.utime(part, (time.time() - age, time.time() - age))
    prov.app.state.sim.configure({"script": []})
    m.write_text(m.read_text().replace("{{ style }}/seed-{{ seed }}.mp4", "final/{{ style }}-{{ seed }}.mp4"))
    return m, prov, part


def test_a_part_file_beside_a_jobs_former_output_path_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m, prov, part = left_downloading(tmp_path, monkeypatch, age=60)
    result = api.run(m, provider=prov, options=RunOptions(), report=False)
    assert result.exit_code == 0 and stats(prov)["creates"] == 1
    assert not part.exists() and not list(tmp_path.rglob("*.part")) and not list(tmp_path.rglob("*.take"))
    job = api.status(m).jobs[0]
    assert job.state == "done" and Path(job.output_path).name == "anime-1.mp4"
    check_outputs(m)
    with Store(tmp_path / ".gridrun" / "state.db", readonly=True) as store:
        removed = [json.loads(r[0]) for r in store.db.execute("SELECT detail FROM events WHERE kind='part-removed'")]
    assert removed == [{"path": str(part), "size": 100_000}], removed


def test_a_part_file_written_since_the_run_began_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process may still stream into it."""
    m, prov, part = left_downloading(tmp_path, monkeypatch, age=-3600)
    assert api.run(m, provider=prov, options=RunOptions(), report=False).exit_code == 0
    assert part.exists()
