"""What a command imports before it does anything: a command that needs no manifest, no state and no request
(`--help`, `--version`, a command line it refuses) loads none of the library, nor the packages behind it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The console script, its modules written last to standard error as it ends: by argparse's exit (`sys.exit`),
# or by `os._exit`, which a command that ran ends with (skipping `atexit`).
CHILD = """\
import atexit, json, os, sys
said = []
def say():
    if not said:
        said.append(True)
        sys.stderr.write(json.dumps(sorted(sys.modules)))
        sys.stderr.flush()
atexit.register(say)
real_exit = os._exit
os._exit = lambda code: (say(), real_exit(code))
sys.argv[0] = "gridrun"
from runner.entry import entry
entry()
"""

# Not needed to read a command line or say it is wrong.
UNNEEDED = ("runner.api", "runner.manifest", "runner.plan", "runner.state", "runner.executor", "runner.report",
            "runner.providers", "jsonschema", "referencing", "yaml", "httpx", "anyio", "asyncio", "jinja2",
            "decimal")


def _imported(args: list[str], cwd: Path) -> set[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          check=False, env=env)
    return set(json.loads(done.stderr[done.stderr.rindex("[\"") :]))


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["run", "--help"], ["rnu", "m.yaml"]],
                         ids=["help", "version", "run-help", "usage-error"])
def test_a_command_line_alone_imports_none_of_the_library(tmp_path: Path, args: list[str]) -> None:
    imported = _imported(args, tmp_path)
    assert "runner.cli" in imported
    loaded = sorted(m for m in imported if any(m == u or m.startswith(u + ".") for u in UNNEEDED))
    assert loaded == [], loaded


# Only a run (and `cancel`) sends requests or renders: the rest never need the executor or the HTTP stack.
UNSENT = ("runner.executor", "runner.pacing", "runner.balance", "runner.providers.base", "runner.providers.transport",
          "runner.providers.download", "httpx", "httpcore", "anyio", "asyncio", "aiohttp", "jinja2")


def test_commands_that_send_nothing_import_no_executor_nor_http(tmp_path: Path) -> None:
    manifest = (ROOT / "manifests" / "demo.yaml").read_text(encoding="utf-8")
    manifest = manifest.replace("render_time: 2.0", "render_time: 0.1").replace("jitter: 0.3", "jitter: 0.0")
    (tmp_path / "demo.yaml").write_text(manifest, encoding="utf-8")
    ran = _imported(["run", "demo.yaml", "--no-report"], tmp_path)
    assert {"runner.executor", "httpx"} <= ran  # the run itself did import them
    for args in (["validate", "demo.yaml"], ["plan", "demo.yaml"], ["status", "demo.yaml"],
                 ["status", "demo.yaml", "--runs"]):
        imported = _imported(args, tmp_path)
        assert "runner.plan" in imported, args
        loaded = sorted(m for m in imported if any(m == u or m.startswith(u + ".") for u in UNSENT))
        assert loaded == [], (args, loaded)


def test_planning_a_manifest_with_a_base_url_imports_no_http(tmp_path: Path) -> None:
    """A `base_url:` is checked as the manifest is planned (a password in it, a host the key should not go to):
    that check needs no HTTP client, and neither `plan` nor `validate` loads one for it."""
    manifest = (ROOT / "manifests" / "demo.yaml").read_text(encoding="utf-8")
    (tmp_path / "demo.yaml").write_text(f"base_url: http://127.0.0.1:8765/v1\n{manifest}", encoding="utf-8")
    for args in (["validate", "demo.yaml"], ["plan", "demo.yaml"]):
        imported = _imported(args, tmp_path)
        assert "runner.plan" in imported, args
        loaded = sorted(m for m in imported if any(m == u or m.startswith(u + ".") for u in UNSENT))
        assert loaded == [], (args, loaded)


def test_a_valid_manifest_is_planned_without_jsonschema(tmp_path: Path) -> None:
    """A manifest the schema allows is found valid by `manifest.schema_allows`, as jsonschema would find it: jsonschema
    (and the packages under it) is imported only to explain a manifest that is not valid."""
    manifest = (ROOT / "manifests" / "demo.yaml").read_text(encoding="utf-8")
    (tmp_path / "demo.yaml").write_text(manifest, encoding="utf-8")
    (tmp_path / "bad.yaml").write_text(manifest.replace("\nname:", "\nnmae:", 1), encoding="utf-8")
    for args in (["validate", "demo.yaml"], ["plan", "demo.yaml"]):
        imported = _imported(args, tmp_path)
        assert "runner.manifest" in imported, args
        assert not {"jsonschema", "referencing"} & imported, args
    assert "jsonschema" in _imported(["validate", "bad.yaml"], tmp_path)
