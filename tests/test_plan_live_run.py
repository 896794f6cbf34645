"""`plan` (and `recover`) taken while a run of the manifest goes on (the state's runner lock held by it): it says first that the
run goes on and sends what its own plan holds, and gives no refusal over jobs that run follows itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from execkit import running, write_manifest


@pytest.mark.timeout(120)
def test_plan_while_a_run_goes_on_names_it_first_and_gives_no_left_in_flight_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.cli import main

    m = write_manifest(tmp_path, n_seeds=2, styles=("anime", "clay"), run={"concurrency": 2},
                       sim={"render_time": 30, "jitter": 0.0, "concurrency": 2})
    with running(m, flying=2):
        # the prompt changed while the run goes on: every job differs, the two in flight are no longer the plan's
        m.write_text(m.read_text().replace("a fox", "a wolf"))
        monkeypatch.chdir(tmp_path)
        capsys.readouterr()
        assert main(["plan", str(m)]) == 0
        err = capsys.readouterr().err
        assert main(["recover", str(m), "--dry-run"]) == 0
        recovered = " ".join(capsys.readouterr().out.split())
    said = " ".join(err.split())
    assert said.startswith("note: run 1 of this manifest is going on (pid "), said
    assert ("it sends the 2 jobs it planned and has not sent yet ($0.70) and follows the 2 in flight, as its "
            "manifest copy outputs/t/.runs/run-1.yaml has them, whatever the file says now; `gridrun run` is "
            "refused until it ends") in said, said
    assert "--leave-in-flight" not in said and "would refuse to start" not in said, said
    assert recovered.startswith("note: run 1 of this manifest is going on (pid "), recovered
    assert "; but run 1, going on, sends those it planned itself: `gridrun plan` once it ends says" in recovered, \
        recovered
