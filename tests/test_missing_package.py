"""A package gridrun depends on that is missing or does not import (installed with `--no-deps`, removed or broken
by another tool) is said in one line naming it and the command that installs it, exit 2: not a bug to report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("json_lines", [False, True], ids=["said", "json"])
def test_a_missing_pyav_is_named_with_its_install_command_not_as_a_bug(tmp_path: Path, json_lines: bool) -> None:
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "sitecustomize.py").write_text("import sys\nsys.modules['av'] = None  # as if not installed\n")
    shutil.copy(ROOT / "manifests" / "demo.yaml", tmp_path / "demo.yaml")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hidden), os.environ.get("PYTHONPATH", "")])}
    words = ["run", "demo.yaml", *(["--json"] if json_lines else [])]
    out = subprocess.run([sys.executable, "-c", "from runner.entry import entry; entry()", *words], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2, (out.returncode, out.stderr)
    said = out.stderr.strip()
    assert said == "error: gridrun needs the package av, which is not installed: `pip install 'av>=17'`", said
    if json_lines:
        end = json.loads(out.stdout.splitlines()[-1])
        assert (end["event"], end["exit_code"], end["errors"]) == ("end", 2, [said.removeprefix("error: ")]), end


@pytest.mark.parametrize(("module", "words"), [
    ("yaml", ["run", "demo.yaml"]), ("yaml", ["retry", "demo.yaml", "--json"]), ("yaml", ["plan", "demo.yaml"]),
    ("jsonschema", ["run", "demo.yaml"]), ("jsonschema", ["validate", "demo.yaml"]),
    ("rich", ["plan", "demo.yaml"]), ("rich", ["run", "demo.yaml", "--json"]), ("rich", ["status", "demo.yaml"]),
    ("rich", ["--version"]),
], ids=lambda v: v if isinstance(v, str) else "-".join(v))
def test_a_missing_package_is_one_line_under_every_command(tmp_path: Path, module: str, words: list[str]) -> None:
    """Whichever command meets it first: the library's own imports (pyyaml, jsonschema) under `run`, whose
    error would otherwise look for a run this process stopped, and rich, which the command line itself imports."""
    from runner.entry import DEPENDENCIES

    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "sitecustomize.py").write_text(f"import sys\nsys.modules[{module!r}] = None  # as if not installed\n")
    shutil.copy(ROOT / "manifests" / "demo.yaml", tmp_path / "demo.yaml")
    if module == "jsonschema":  # imported to explain a manifest its schema refuses
        (tmp_path / "demo.yaml").write_text((tmp_path / "demo.yaml").read_text() + "\nunknown_field: 1\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hidden), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", "from runner.entry import entry; entry()", *words], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    requirement = DEPENDENCIES[module][0]
    name = requirement.partition(">")[0]
    said = out.stderr.strip()
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert said == f"error: gridrun needs the package {name}, which is not installed: `pip install '{requirement}'`", \
        said
    if "--json" in words:
        end = json.loads(out.stdout.splitlines()[-1])
        assert (end["event"], end["exit_code"], end["errors"]) == ("end", 2, [said.removeprefix("error: ")]), end


@pytest.mark.parametrize(("error", "said", "code"), [
    (ModuleNotFoundError("No module named 'aiohttp'", name="aiohttp"),
     ("gridrun needs the package aiohttp, which is not installed: `pip install 'aiohttp>=3.10'`, or set "
      "GRIDRUN_HTTP=httpx to send over httpx instead"), 2),
    (ImportError("cannot import name 'Image' from 'PIL'", name="PIL"),
     ("gridrun needs the package pillow, which does not import (cannot import name 'Image' from 'PIL'): "
      "`pip install --force-reinstall 'pillow>=10.1'`"), 2),
    (ModuleNotFoundError("No module named 'runner.gone'", name="runner.gone"),
     "unexpected error, a bug in gridrun: ModuleNotFoundError: No module named 'runner.gone'", 1),
], ids=["aiohttp", "broken", "own-module"])
def test_a_package_gridrun_needs_is_told_from_a_bug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, error: ImportError,
    said: str, code: int,
) -> None:
    """aiohttp has a stand-in (httpx's own transport), which the line names; a package that is there but does not
    import is reinstalled; one of gridrun's own modules missing is a bug all the same."""
    from runner import cli

    m = tmp_path / "m.yaml"
    m.write_text("version: 1\nname: t\nmodel: pixverse-v5.6\nparams:\n  prompt: a fox\n  quality: 360p\n")

    def fails(args: object, **_: object) -> int:
        raise error

    monkeypatch.setattr(cli, "cmd_plan", fails)
    assert cli.main(["plan", str(m)]) == code
    assert f"error: {said}" in capsys.readouterr().err.replace("\n", " ")


def _without_jinja2(tmp_path: Path) -> dict[str, str]:
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "sitecustomize.py").write_text("import sys\nsys.modules['jinja2'] = None  # as if not installed\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(hidden), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("json_lines", [False, True], ids=["said", "json"])
def test_a_run_without_jinja2_is_refused_before_it_sends_unless_it_writes_no_report(
    tmp_path: Path, json_lines: bool,
) -> None:
    """jinja2 writes the report: a run that would pay for its videos and then write no page, saying nothing, is
    refused before anything is recorded or sent, the package named with its install command; --no-report runs."""
    shutil.copy(ROOT / "manifests" / "demo.yaml", tmp_path / "demo.yaml")
    env = _without_jinja2(tmp_path)
    words = ["run", "demo.yaml", *(["--json"] if json_lines else [])]
    out = subprocess.run([sys.executable, "-c", "from runner.entry import entry; entry()", *words], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    said = out.stderr.strip()
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert said == "error: gridrun needs the package jinja2, which is not installed: `pip install 'jinja2>=3.1'`", \
        said
    assert not (tmp_path / ".gridrun").exists() and not (tmp_path / "outputs").exists()
    if json_lines:
        end = json.loads(out.stdout.splitlines()[-1])
        assert (end["event"], end["exit_code"], end["errors"]) == ("end", 2, [said.removeprefix("error: ")]), end
    else:
        assert "report" not in out.stdout and "videos" not in out.stdout, out.stdout
    # the same run without its report goes on: it needs no jinja2
    out = subprocess.run([sys.executable, "-c", "from runner.entry import entry; entry()", "run", "demo.yaml",
                          "--no-report"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, (out.returncode, out.stderr)
    assert len(list((tmp_path / "outputs" / "demo").rglob("*.mp4"))) == 12


@pytest.mark.parametrize("words", [["run", "demo.yaml"], ["run", "demo.yaml", "--json"], ["report", "demo.yaml"]],
                         ids=["run", "run-json", "report"])
def test_a_missing_markupsafe_is_named_with_its_install_command_not_as_a_bug(tmp_path: Path, words: list[str]) -> None:
    """markupsafe, which jinja2 needs and the report escapes its text with, missing beside a jinja2 that is there:
    named with its install command, exit 2, as jinja2 itself is; a run is refused before anything is recorded."""
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "sitecustomize.py").write_text("import sys\nsys.modules['markupsafe'] = None  # as if not installed\n")
    shutil.copy(ROOT / "manifests" / "demo.yaml", tmp_path / "demo.yaml")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hidden), os.environ.get("PYTHONPATH", "")])}
    if words[0] == "report":  # a run to report on, which needs neither
        done = subprocess.run([sys.executable, "-c", "from runner.entry import entry; entry()", "run", "demo.yaml",
                               "--no-report"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                              check=False)
        assert done.returncode == 0, done.stderr
    out = subprocess.run([sys.executable, "-c", "from runner.entry import entry; entry()", *words], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    said = out.stderr.strip()
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert said == ("error: gridrun needs the package markupsafe, which is not installed: "
                    "`pip install 'markupsafe>=2.0'`"), said
    if words[0] == "run":
        assert not (tmp_path / ".gridrun").exists() and not (tmp_path / "outputs").exists()
    if "--json" in words:
        end = json.loads(out.stdout.splitlines()[-1])
        assert (end["event"], end["exit_code"], end["errors"]) == ("end", 2, [said.removeprefix("error: ")]), end


def test_posters_are_made_without_jinja2(tmp_path: Path) -> None:
    """The posters (first frames) are the report module's, which imports jinja2 only to write the page."""
    shutil.copy(ROOT / "manifests" / "demo.yaml", tmp_path / "demo.yaml")
    env = _without_jinja2(tmp_path)
    run = subprocess.run([sys.executable, "-c", "from runner.entry import entry; entry()", "run", "demo.yaml",
                          "--no-report"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                         check=False)
    assert run.returncode == 0, run.stderr
    videos = sorted((tmp_path / "outputs" / "demo").rglob("*.mp4"))
    code = ("import sys; from runner.outputs import poster_path; from runner.report import make_posters; make_posters(sys.argv[1:]); "
            "assert 'jinja2' not in sys.modules or sys.modules['jinja2'] is None; "
            "print(*(poster_path(v) for v in sys.argv[1:]), sep='\\n')")
    out = subprocess.run([sys.executable, "-c", code, *map(str, videos)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    posters = [Path(line) for line in out.stdout.splitlines()]
    assert len(posters) == 12 and all(p.is_file() and p.stat().st_size > 0 for p in posters), posters
