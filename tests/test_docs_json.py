"""reports/EXPORTS.md names every field `status --json`, `status --runs --json` and `run --json` print, so that its
field lists cannot fall behind what a real run emits."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from execkit import write_manifest

from runner.cli import main

DOC = Path(__file__).resolve().parent.parent / "reports" / "EXPORTS.md"


def _section(title: str) -> str:
    """The text of EXPORTS.md under the `### ` heading that starts with `title`, to the next heading."""
    text = DOC.read_text(encoding="utf-8")
    at = text.index(f"\n### {title}")
    end = text.find("\n#", at + 1)
    return text[at : end if end >= 0 else len(text)]


def _named(text: str) -> set[str]:
    """The fields a section's tables name in their first column (`a`, `b[].c`)."""
    rows = re.findall(r"^\| ([^|]+) \|", text, flags=re.MULTILINE)
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row)}


def _row(text: str, first: str) -> set[str]:
    """Every name in backquotes on the table row of `text` whose first cell is `first`."""
    (row,) = re.findall(rf"^\| `{re.escape(first)}` \|.*$", text, flags=re.MULTILINE)
    return set(re.findall(r"`([^`]+)`", row))


def _keys(doc: dict[str, Any]) -> set[str]:
    """A JSON object's keys, with those of the objects in its lists as `list[].key`."""
    keys = set(doc)
    for key, value in doc.items():
        if isinstance(value, list):
            keys |= {f"{key}[].{k}" for item in value if isinstance(item, dict) for k in item}
    return keys


def _json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_every_field_status_and_run_print_as_json_is_in_exports_md(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    m = write_manifest(tmp_path, n_seeds=3, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0})
    capsys.readouterr()
    assert main(["run", str(m), "--no-report", "--json"]) == 0
    first = _json_lines(capsys.readouterr().out)
    # a --force run whose re-renders fail, and a job that fails outright: problems, rerenders_failed
    write_manifest(tmp_path, n_seeds=4, styles=("anime",), sim={"render_time": 0.1, "jitter": 0.0, "failure_rate": 1.0},
                   run={"retries": 0})
    main(["run", str(m), "--json", "--force"])
    events = first + _json_lines(capsys.readouterr().out)
    assert main(["status", str(m), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["problems"] and status["rerenders_failed"], status
    assert main(["status", str(m), "--runs", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert len(runs) == 2

    assert _keys(status) - _named(_section("`gridrun status M --json`")) == set()
    assert set().union(*map(_keys, runs)) - _named(_section("`gridrun status M --runs --json`")) == set()
    run_doc = _section("`gridrun run M --json`")
    progress = _named(run_doc.split("The fields of `progress`", 1)[1])
    kinds = {e["event"] for e in events}
    assert {"balance", "progress", "end"} <= kinds, kinds
    for event in events:
        kind = event["event"]
        said = progress | _row(run_doc, kind) if kind in ("progress", "end") else _row(run_doc, kind)
        assert set(event) - {"event"} - said == set(), event
