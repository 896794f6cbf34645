"""An output folder that holds a report.html or results.* gridrun did not write (`outputs_dir:` at an existing
folder): the file is kept under .runs/superseded/files/ before gridrun's takes its place, and `plan` says so;
files an older gridrun wrote there are replaced as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from execkit import write_manifest

from runner import api
from runner.cli import main
from runner.plan import relpath

FOREIGN = {"report.html": "<html><body>precious page</body></html>\n", "results.csv": "a,b\n1,2\n",
           "results.json": '{"mine": true}\n', "results.jsonl": '{"mine": 1}\n'}

# How an older gridrun's report and exports began (fewer columns, an older page).
OLDER = {
    "report.html": ('<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" '
                    'content="width=device-width, initial-scale=1">\n<meta name="generator" content="gridrun">\n'
                    "<title>old</title>\n</head><body></body></html>\n"),
    "results.csv": "key,sweep,hash,values.style,prompt,state\nstyle=anime,,abc,anime,a fox,done\n",
    "results.json": '{\n "version": 1,\n "summary": {},\n "rows": []\n}\n',
    "results.jsonl": '{"key":"style=anime","hash":"abc"}\n',
}


def _setup(tmp_path: Path, files: dict[str, str]) -> tuple[Path, Path]:
    folder = tmp_path / "site"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return write_manifest(tmp_path, n_seeds=1, styles=("anime",), extra={"outputs_dir": "site"}), folder


def _kept(folder: Path) -> dict[str, str]:
    kept = folder / ".runs" / "superseded" / "files"
    return {p.name: p.read_text() for p in kept.glob("*/*")} if kept.is_dir() else {}


def test_a_report_and_exports_gridrun_did_not_write_are_kept_before_its_own_take_their_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m, folder = _setup(tmp_path, FOREIGN)
    assert main(["plan", str(m)]) == 0
    err = capsys.readouterr().err
    assert (f"outputs_dir: {folder.resolve()} holds report.html, results.csv, results.json, results.jsonl, which "
            "gridrun did not write: the report or export that takes their place keeps them under "
            ".runs/superseded/files/ first") in err, err
    assert api.run(m).exit_code == 0
    assert _kept(folder) == {"report.html": FOREIGN["report.html"]}
    assert '<meta name="generator" content="gridrun">' in (folder / "report.html").read_text()
    api.export(m)
    assert _kept(folder) == FOREIGN
    assert (folder / "results.csv").read_text().startswith("key,sweep,hash,")
    api.report(m)  # gridrun's own, now: replaced, nothing more kept
    api.export(m)
    assert len(list((folder / ".runs" / "superseded" / "files").glob("*/*"))) == 4
    assert main(["plan", str(m)]) == 0
    assert "did not write" not in capsys.readouterr().err


def test_a_report_and_exports_an_older_gridrun_wrote_are_replaced_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m, folder = _setup(tmp_path, {**OLDER, "results-run-1.csv": "anything\n"})
    assert main(["plan", str(m)]) == 0
    assert "did not write" not in capsys.readouterr().err
    assert api.run(m).exit_code == 0
    api.export(m)
    assert _kept(folder) == {}
    assert "<title>old</title>" not in (folder / "report.html").read_text()
    assert (folder / "results.json").read_text().startswith('{\n "version": 2,')



def test_gridrun_report_and_export_say_where_they_kept_a_file_gridrun_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`gridrun report` and `gridrun export` writing over a report.html or results.csv gridrun did not write say,
    each, where they kept it; writing over their own again says nothing."""
    m, folder = _setup(tmp_path, {})
    assert api.run(m, report=False).exit_code == 0
    for name in ("report.html", "results.csv"):
        (folder / name).write_text(FOREIGN[name])
    capsys.readouterr()
    assert main(["report", str(m)]) == 0
    assert main(["export", str(m), "--format", "csv"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    for name in ("report.html", "results.csv"):
        [kept] = (folder / ".runs" / "superseded" / "files").glob(f"*/{name}")
        assert kept.read_text() == FOREIGN[name]
        said = f"warning: {relpath(folder / name, Path.cwd())} was not written by gridrun: kept at " \
               f"{relpath(kept, Path.cwd())}"
        assert said in err, (said, err)
    assert main(["report", str(m)]) == 0 and main(["export", str(m), "--format", "csv"]) == 0
    assert "not written by gridrun" not in capsys.readouterr().err
