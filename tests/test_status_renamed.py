"""`status` of a manifest file whose `name:` was edited while its run goes on: the state has no run of the new
name, but the run going on (the state's runner lock names this very file) is that file's, shown under the name it
started with rather than "no run recorded ... runs it first"."""

from __future__ import annotations

from pathlib import Path

import pytest
from execkit import running, write_manifest

from runner import api


@pytest.mark.timeout(120)
def test_status_of_a_file_renamed_while_its_run_goes_on_shows_that_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 2},
                       sim={"render_time": 30, "jitter": 0.0, "concurrency": 2})
    with running(m, flying=2):
        m.write_text(m.read_text().replace("name: t\n", "name: t-v2\n"))
        monkeypatch.chdir(tmp_path)
        capsys.readouterr()
        code = main(["status", str(m)])
        out, err = capsys.readouterr()
        snap = api.status(m)
    said = " ".join((out + err).split())
    assert code == 0 and "runs it first" not in said, said
    assert "t run 1 (running" in said, said
    assert "the manifest's name: is t-v2 now, but the run going on (pid " in said, said
    assert snap.run.id == 1 and snap.run.manifest_name == "t" and snap.warnings, snap.warnings
