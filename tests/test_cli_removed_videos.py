"""Videos of jobs done deleted from the output folder while the run goes on: the run ends as it did (its jobs are
done and paid), but its end says which are gone and that a run fetches them again at no cost; `status` (and
`status --json`) says the same of videos deleted or moved away after the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from execkit import write_manifest

from runner import api


def test_a_run_whose_done_videos_were_removed_says_so_at_its_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    run = api.run

    def removed_as_it_ends(*args: Any, **kw: Any) -> Any:
        result = run(*args, **kw)
        (tmp_path / "outputs" / "t" / "anime" / "seed-1.mp4").unlink()  # deleted by hand as the run went on
        return result

    monkeypatch.setattr(api, "run", removed_as_it_ends)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["run", str(m), "--no-report"]) == 0  # its exit code as it was: its jobs are done and paid
    said = " ".join(capsys.readouterr().err.split())
    assert ("warning: 1 video of jobs done was removed from the output folder during the run (style=anime,seed=1): "
            "`gridrun run` fetches it again at no cost while the provider keeps it") in said, said
    assert "seed=2" not in said, said


def test_status_names_done_videos_deleted_or_moved_out_of_the_output_folder_after_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.cli import main

    monkeypatch.setenv("COLUMNS", "400")
    m = write_manifest(tmp_path, n_seeds=5, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(m), "--no-report"]) == 0
    capsys.readouterr()
    assert main(["status", str(m)]) == 0
    assert "no longer in the output folder" not in capsys.readouterr().out
    assert main(["status", str(m), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["missing_videos"], doc["missing_videos_note"]) == ([], None), doc

    folder = tmp_path / "outputs" / "t" / "anime"
    for n in (1, 2, 4):  # deleted by hand
        (folder / f"seed-{n}.mp4").unlink()
    (folder / "seed-5.mp4").rename(tmp_path / "kept.mp4")  # moved out of the output folder
    assert main(["status", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    note = ("4 videos of jobs done are no longer in the output folder (outputs/t/anime/seed-1.mp4, "
            "outputs/t/anime/seed-2.mp4, outputs/t/anime/seed-4.mp4 and 1 more): `gridrun run` fetches them again at "
            "no cost while the provider keeps them")
    assert f"warning: {note}" in said, said
    assert "seed-3.mp4" not in said, said
    assert main(["status", str(m), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["missing_videos"] == [{"key": f"style=anime,seed={n}", "path": str(folder / f"seed-{n}.mp4")}
                                     for n in (1, 2, 4, 5)], doc["missing_videos"]
    assert doc["missing_videos_note"].startswith(note), doc["missing_videos_note"]
    assert main(["status", "--json"]) == 0  # no manifest given: the command names the manifest's file
    assert "`gridrun run t.yaml` fetches them again" in json.loads(capsys.readouterr().out)["missing_videos_note"]

    assert main(["run", str(m), "--no-report"]) == 0  # fetched again, at no cost
    capsys.readouterr()
    assert all((folder / f"seed-{n}.mp4").is_file() for n in range(1, 6))
    assert main(["status", str(m), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["missing_videos"] == []


def test_status_of_a_project_folder_moved_since_the_run_finds_its_videos_where_they_moved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.cli import main

    monkeypatch.setenv("COLUMNS", "400")
    before = tmp_path / "before"
    before.mkdir()
    write_manifest(before, n_seeds=3, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0})
    monkeypatch.chdir(before)
    assert main(["run", "t.yaml", "--no-report"]) == 0
    after = tmp_path / "after"
    before.rename(after)  # the project folder renamed: its videos moved with it, where a run finds them
    monkeypatch.chdir(after)
    capsys.readouterr()
    for given in (["t.yaml"], []):
        assert main(["status", *given]) == 0
        assert "no longer in the output folder" not in capsys.readouterr().out
    assert main(["status", "t.yaml", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["missing_videos"] == []

    (after / "outputs" / "t" / "anime" / "seed-2.mp4").unlink()  # one deleted since: named where it was
    assert main(["status", "t.yaml", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["missing_videos"] == [{"key": "style=anime,seed=2",
                                      "path": str(after / "outputs" / "t" / "anime" / "seed-2.mp4")}], doc
    assert main(["status", "t.yaml"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "1 video of jobs done is no longer in the output folder (outputs/t/anime/seed-2.mp4)" in said, said


def test_status_of_a_manifest_whose_state_dir_is_elsewhere_names_a_missing_video_where_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.cli import main

    monkeypatch.setenv("COLUMNS", "400")
    project = tmp_path / "project"
    project.mkdir()
    write_manifest(project, n_seeds=2, styles=("anime",), sim={"render_time": 0.05, "jitter": 0.0},
                   extra={"state_dir": "../shared/.gridrun"})
    monkeypatch.chdir(project)
    assert main(["run", "t.yaml", "--no-report"]) == 0
    (project / "outputs" / "t" / "anime" / "seed-1.mp4").unlink()
    # a file at the place a shared state's folder would put it, were the project moved there, is not the video
    decoy = tmp_path / "shared" / "outputs" / "t" / "anime" / "seed-1.mp4"
    decoy.parent.mkdir(parents=True)
    decoy.write_bytes(b"not the video")
    capsys.readouterr()
    assert main(["status", "t.yaml", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["missing_videos"] == [{"key": "style=anime,seed=1",
                                      "path": str(project / "outputs" / "t" / "anime" / "seed-1.mp4")}], doc
