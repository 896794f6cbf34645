"""`gridrun status --json` from another process reads a run that is going on (no lock), and the same
counts once it has ended."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from execkit import write_manifest

IN_FLIGHT = ("submitting", "submitted", "running", "downloading")


def _gridrun(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runner.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _status(manifest: Path) -> tuple[int, dict[str, Any] | None, str]:
    r = _gridrun("status", str(manifest), "--json", cwd=manifest.parent)
    return r.returncode, (json.loads(r.stdout) if r.returncode == 0 else None), r.stderr


@pytest.mark.timeout(150)
def test_status_reads_a_live_run_from_another_process(tmp_path: Path) -> None:
    # 32 jobs, 4 at a time, 1 s each: the run lasts about 8 s.
    manifest = write_manifest(tmp_path, n_seeds=16, styles=("anime", "clay"), run={"concurrency": 4},
                              sim={"render_time": 1.0, "jitter": 0.0, "concurrency": 4})
    total = 32
    with open(tmp_path / "run.out", "wb") as out, open(tmp_path / "run.err", "wb") as err:
        runner = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", str(manifest)], cwd=tmp_path,
                                  stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    try:
        live: list[dict[str, int]] = []
        paced: dict[str, Any] = {}
        answered = False
        deadline = time.monotonic() + 90
        while runner.poll() is None and time.monotonic() < deadline:
            code, doc, stderr = _status(manifest)
            assert "lock" not in stderr.lower(), stderr
            if code != 0:
                # Only before the run has recorded itself may status find nothing to show.
                assert not answered, f"status failed during the run: {stderr}"
                assert "no state yet" in stderr or "no run" in stderr, stderr
                continue
            answered = True
            assert doc is not None and doc["jobs"] == total
            if doc["status"] != "running":
                break
            counts = doc["counts"]
            assert sum(counts.values()) == total
            live.append(counts)
            if counts.get("done", 0) and sum(counts.get(s, 0) for s in IN_FLIGHT):
                paced = doc
            flying = sum(counts.get(s, 0) for s in IN_FLIGHT)
            distinct = {json.dumps(c, sort_keys=True) for c in live}
            if flying and counts.get("done", 0) and len(distinct) >= 2:
                break
        assert live, "status never saw the run while it was going on"
        last = live[-1]
        assert sum(last.get(s, 0) for s in IN_FLIGHT) > 0, live
        assert 0 < last.get("done", 0) < total, live
        assert len({json.dumps(c, sort_keys=True) for c in live}) >= 2, f"counts did not change: {live}"
        # the ETA is what remains at the pace seen so far
        assert paced["per_minute"] > 0 and paced["eta"] is not None, paced
        remaining = total - paced["counts"]["done"]
        assert paced["eta"] == pytest.approx(remaining / paced["per_minute"] * 60, rel=0.01), paced
        assert runner.wait(timeout=max(1.0, deadline - time.monotonic())) == 0, (tmp_path / "run.err").read_text()
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()

    code, doc, stderr = _status(manifest)
    assert code == 0, stderr
    assert doc is not None
    assert doc["status"] == "done"
    assert doc["counts"].get("done") == total == doc["jobs"]
    assert not any(doc["counts"].get(s) for s in (*IN_FLIGHT, "planned", "failed", "unknown", "expired"))
    assert doc["problems"] == []
    assert doc["reserved_usd"] == 0
    assert doc["eta"] is None and doc["per_minute"] > 0 and doc["elapsed"] > 0
    plain = _gridrun("status", str(manifest), cwd=tmp_path)
    assert plain.returncode == 0 and "done 32" in plain.stdout, plain.stdout + plain.stderr
    assert "saved/min" in plain.stdout and "taken" in plain.stdout, plain.stdout
