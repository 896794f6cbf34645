"""gridrun installed from a wheel, not only from a checkout: the wheel carries every module and every file
read at run time (the manifest schema, the report's templates), and the demo runs from it; its metadata carries
the licence and the version `gridrun --version` prints."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_every_module_and_data_file_and_runs_the_demo(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("runner", "schemas", "reports", "manifests"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", ".gridrun", "outputs"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr
    # what setuptools would stop building one day, or data it ships by accident rather than as configured
    said = built.stdout + built.stderr
    assert "SetuptoolsDeprecationWarning" not in said and "is absent from the `packages`" not in said, said
    wheel = next((tmp_path / "dist").glob("gridrun-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())

    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "runner").rglob("*.py") if "__pycache__" not in p.parts}
    expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "runner" / "providers" / "data").iterdir()}
    expected |= {f"runner/{p.relative_to(ROOT).as_posix()}" for folder in ("schemas", "reports")
                 for p in (ROOT / folder).iterdir() if p.is_file()}
    assert "runner/schemas/manifest.schema.json" in expected and "runner/reports/report.html.j2" in expected
    expected.add("runner/py.typed")  # type checkers read the package's annotations (PEP 561)
    expected.add("runner/manifests/demo.yaml")  # what `gridrun init` writes
    assert sorted(expected - names) == []
    assert [n for n in names if n.startswith("runner/manifests/")] == ["runner/manifests/demo.yaml"]

    import runner

    info = f"gridrun-{runner.__version__}.dist-info"
    assert zipfile.ZipFile(wheel).read(f"{info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
    metadata = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode().split("\n\n", 1)[0].splitlines()
    assert f"Version: {runner.__version__}" in metadata and "License-Expression: MIT" in metadata, metadata

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    code = ("import sys, runner.cli\n"
            "assert runner.cli.__file__.startswith(sys.argv[1]), runner.cli.__file__\n"
            "sys.argv = ['gridrun', *sys.argv[2:]]\n"
            "runner.cli.entry()\n")
    # the demo as an installed gridrun writes it, with no checkout beside it, then run
    for argv in (["init"], ["run", "demo.yaml"]):
        ran = subprocess.run([sys.executable, "-c", code, str(site), *argv], cwd=work, capture_output=True,
                             text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(site)})
        assert ran.returncode == 0, ran.stderr
    schema = site / "runner" / "schemas" / "manifest.schema.json"
    assert (work / "demo.yaml").read_text(encoding="utf-8").startswith(
        f"# yaml-language-server: $schema={schema.resolve().as_uri()}\n")
    assert "report: outputs/demo/report.html" in ran.stdout
    report = (work / "outputs" / "demo" / "report.html").read_text(encoding="utf-8")
    assert report.count(".mp4") >= 12
