"""`gridrun init`: the first manifest of a project where no example is at hand (an installed gridrun). It writes
the demo, which plans and runs as the checkout's does, its schema line pointing at the schema this gridrun checks
against; it never overwrites a file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from runner.cli import main

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "manifests" / "demo.yaml"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_init_writes_the_demo_with_an_absolute_schema_line_and_it_plans_as_said(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "init")
    assert (code, err) == (0, "")
    written = (tmp_path / "demo.yaml").read_text(encoding="utf-8")
    first, rest = written.split("\n", 1)
    assert rest == DEMO.read_text(encoding="utf-8").split("\n", 1)[1]
    assert first.startswith("# yaml-language-server: $schema=file://")
    schema = Path(unquote(urlparse(first.split("$schema=", 1)[1]).path))
    assert schema.is_absolute() and json.loads(schema.read_text(encoding="utf-8"))["title"]
    assert "wrote demo.yaml: 12 jobs" in out and "next: gridrun plan demo.yaml, then gridrun run demo.yaml" in out
    assert f"its schema, for an editor: {schema}" in out

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = run_cli(capsys, "plan", "--json", "../demo.yaml")
    assert code == 0, err
    plan = json.loads(out)
    assert len(plan["jobs"]) == 12  # the count init says
    assert not (tmp_path / ".gridrun").exists()  # planning wrote no state


def test_init_never_overwrites_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "grid.yaml").write_text("version: 1\n# my own manifest\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "init", "grid.yaml")
    assert code == 2 and out == ""
    assert "grid.yaml already exists, and is left as it is: name another file (gridrun init NEW.yaml)" in err
    assert (tmp_path / "grid.yaml").read_text(encoding="utf-8") == "version: 1\n# my own manifest\n"
    (tmp_path / "folder.yaml").mkdir()
    code, out, err = run_cli(capsys, "init", "folder.yaml")
    assert code == 2 and "folder.yaml already exists" in err


def test_init_into_a_missing_folder_says_which_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "init", "grids/fox.yaml")
    assert code == 2 and out == ""
    assert "grids/fox.yaml: there is no folder grids to write it in (mkdir -p grids first)" in err
    assert os.listdir(tmp_path) == []


def test_init_dash_writes_the_manifest_to_standard_output(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "init", "-")
    assert (code, err) == (0, "")
    assert out.split("\n", 1)[1] == DEMO.read_text(encoding="utf-8").split("\n", 1)[1]
    assert os.listdir(tmp_path) == []


def test_init_refuses_a_name_the_other_commands_would_read_as_an_option(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "init", "--", "-grid.yaml")
    assert code == 2 and "-grid.yaml: a manifest whose name begins with '-'" in err
    assert os.listdir(tmp_path) == []


def test_init_names_the_manifest_after_its_file_so_two_in_one_folder_share_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`init grid.yaml` beside the demo: named grid, its runs and output folder its own (outputs/grid/), and plan
    warns of no shared history; a stem that is no name (a space in it) keeps the demo's name."""
    monkeypatch.chdir(tmp_path)
    for file in ("demo.yaml", "grid.yaml", "fox.v2.yaml", "my grid.yaml"):
        assert run_cli(capsys, "init", file)[0] == 0
    names = {f: next(x for x in (tmp_path / f).read_text(encoding="utf-8").splitlines() if x.startswith("name:"))
             for f in ("demo.yaml", "grid.yaml", "fox.v2.yaml", "my grid.yaml")}
    assert names["grid.yaml"] == "name: grid                    # names its runs and its output folder, outputs/grid/"
    assert names["fox.v2.yaml"].startswith("name: fox.v2 ") and names["fox.v2.yaml"].endswith("outputs/fox.v2/")
    assert names["demo.yaml"] == names["my grid.yaml"] == DEMO.read_text(encoding="utf-8").splitlines()[3]
    demo = (tmp_path / "demo.yaml").read_text(encoding="utf-8")
    (tmp_path / "demo.yaml").write_text(demo.replace("render_time: 2.0", "render_time: 0.05"), encoding="utf-8")
    assert run_cli(capsys, "run", "demo.yaml", "--no-report")[0] == 0
    code, out, err = run_cli(capsys, "plan", "--json", "grid.yaml")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["name"] == "grid" and Path(plan["outputs_dir"]).name == "grid", plan["outputs_dir"]
    assert not any("also the name of" in w for w in plan["warnings"]), plan["warnings"]


@pytest.mark.parametrize("stem", ["2025", "1", "1e3", "0x1F", "0o17", "true", "null"])
def test_init_quotes_a_name_yaml_would_read_as_a_number_true_or_null_so_its_plan_reads_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, stem: str) -> None:
    """`init 2025.yaml`: `name: "2025"`, a string its own plan takes, where a bare 2025 is the number 2025."""
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "init", f"{stem}.yaml")[0] == 0
    name = next(x for x in (tmp_path / f"{stem}.yaml").read_text(encoding="utf-8").splitlines() if x.startswith("name:"))
    assert name == f'name: "{stem}"'.ljust(30) + f"# names its runs and its output folder, outputs/{stem}/"
    code, out, err = run_cli(capsys, "plan", "--json", f"{stem}.yaml")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["name"] == stem and Path(plan["outputs_dir"]).name == stem, plan["outputs_dir"]
