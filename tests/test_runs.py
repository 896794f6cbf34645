"""The runs of a manifest: run ids count the runs of every manifest sharing a state folder, so each command that
takes one keeps to the manifest's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner import api
from runner.cli import main

from execkit import write_manifest


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
    assert main(["report", str(t), "--compare", "1", "3"]) == 0
    assert (tmp_path / "outputs" / "t" / "compare-1-3.html").is_file()
