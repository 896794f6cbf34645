"""Videos of jobs done deleted from the output folder while the run goes on: the run ends as it did (its jobs are
done and paid), but its end says which are gone and that a run fetches them again at no cost."""

from __future__ import annotations

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
