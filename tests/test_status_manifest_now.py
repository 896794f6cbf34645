"""The steps `status` and a run's end propose after a run whose manifest file was edited since: built from what
a run of the manifest as it is now does, not from the state alone (the manifest as that run had it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from execkit import in_flight, write_manifest

from runner import api
from runner.options import RunOptions
from runner.state import Store


def test_status_after_an_edit_that_drops_the_jobs_in_flight_gives_the_ways_on_a_run_gives_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=1, styles=("anime", "clay"), run={"concurrency": 2},
                       sim={"render_time": 30, "jitter": 0.0})
    assert api.run(m, report=False, options=RunOptions(timeout=0.3)).status == "incomplete"
    assert in_flight(m) == 2
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["status", str(m)]) == 0
    assert "collects the 2 jobs left in flight" in " ".join(capsys.readouterr().out.split())
    m.write_text(m.read_text().replace("- anime\n  - clay\n", "- comic\n"))
    assert main(["status", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    tail = said[said.index("next:"):]
    assert "collects the 2 jobs" not in tail, tail
    assert "`gridrun run` of the manifest as it is now refuses to start: 2 jobs of run 1" in tail, tail
    assert "run-1.yaml" in tail and "--leave-in-flight" in tail, tail
    assert main(["status", str(m), "--json"]) == 0  # the same step, planned as the manifest is now
    doc = json.loads(capsys.readouterr().out)
    assert " ".join(tail.removeprefix("next: ").split()) == " ".join(doc["next"].split()), (tail, doc["next"])
    # its ways on are a choice (the manifest put back by hand, or the jobs in flight left behind): no command to run
    assert doc["next_note"] is None and doc["next_commands"] == [], doc


def test_a_prompt_edited_while_the_run_goes_on_is_said_at_its_end_and_by_status_with_the_retry_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime",), run={"concurrency": 1, "retries": 0},
                       sim={"render_time": 0.05, "jitter": 0.0, "failure_rate": 1.0,
                            "failure_code": "INTERNAL_ERROR"})
    begin = Store.begin_submit

    def edited_as_sent(self: Store, *args: Any, **kw: Any) -> Any:
        m.write_text(m.read_text().replace("a fox", "a wolf"))  # another branch checked out as the run sends
        return begin(self, *args, **kw)

    monkeypatch.setattr(Store, "begin_submit", edited_as_sent)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["run", str(m), "--no-report"]) == 1
    monkeypatch.setattr(Store, "begin_submit", begin)
    ran = " ".join(capsys.readouterr().err.split())
    assert "`gridrun retry` sends" in ran, ran
    assert ("warning: the manifest file was edited while the run went on: the manifest changed since run 1: 2 jobs "
            "differ from run 1") in ran, ran
    assert "a run or retry of it as it is now sends those jobs as they are now" in ran, ran
    assert main(["status", str(m)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "note: the manifest changed since run 1: 2 jobs differ from run 1" in said, said
    assert main(["status", str(m), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert f"next: {doc['next']} note: {doc['next_note']}" in said, (said, doc)
    assert doc["next_note"].startswith("the manifest changed since run 1: 2 jobs differ from run 1"), doc
    assert doc["next_commands"] == [f"gridrun retry {m}"], doc  # the manifest as given
