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
